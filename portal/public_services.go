package portal

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"

	"github.com/gorilla/mux"

	"sportello/portal/servicecard"
)

func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		root.HandleFunc("/services", a.publicServices).Methods("GET")
	})
}

type publicService struct {
	PublicID    string
	Institution string
	Card        servicecard.Card
	Description template.HTML
}

// publicServicesPageSize is how many cards one page of the public list
// shows. The list was every visible service on one page, each card read
// with its own query: with 2,000 services, 0.9 MB and 0.3-0.5 s an answer
// to anyone, signed in or not.
const publicServicesPageSize = 50

// publicServices lists what citizens will find: approved, visible services
// of active institutions, as their cards are in force, a page at a time
// (?page=N). The OFFSET is bounded by the number of visible services.
func (a *App) publicServices(w http.ResponseWriter, r *http.Request) {
	page := pageOf(r)
	var rows []struct {
		PublicID    string `db:"public_id"`
		Institution string `db:"institution"`
		Card        string `db:"card"`
	}
	if err := a.DB.R.SelectContext(r.Context(), &rows, `SELECT s.public_id, i.name AS institution, v.card
		FROM services s JOIN institutions i ON i.id = s.institution_id JOIN service_versions v ON v.id = s.live_version_id
		WHERE s.is_visible = 1 AND s.deleted_at IS NULL AND s.suspended_at IS NULL AND i.status = 'active'
		ORDER BY i.name COLLATE NOCASE, s.name COLLATE NOCASE, s.id LIMIT ? OFFSET ?`,
		publicServicesPageSize+1, (page-1)*publicServicesPageSize); err != nil {
		a.serverError(w, r, err)
		return
	}
	rows, more := onePage(rows, publicServicesPageSize)
	out := make([]publicService, 0, len(rows))
	for _, row := range rows {
		var card servicecard.Card
		if err := json.Unmarshal([]byte(row.Card), &card); err != nil {
			a.serverError(w, r, fmt.Errorf("service %s card: %w", row.PublicID, err))
			return
		}
		out = append(out, publicService{PublicID: row.PublicID, Institution: row.Institution, Card: card, Description: servicecard.RenderMarkdown(card.Description)})
	}
	prev, next := pageLinks("/services", nil, page, more)
	a.render(w, r, http.StatusOK, "public_services", &Page{Title: a.T(r, "public.title"),
		Data: map[string]any{"Services": out, "Prev": prev, "Next": next, "First": "/services", "Page": page}})
}
