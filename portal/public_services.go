package portal

import (
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

// publicServices lists what citizens will find: approved, visible services
// of active institutions, as their cards are in force.
func (a *App) publicServices(w http.ResponseWriter, r *http.Request) {
	var rows []struct {
		PublicID    string `db:"public_id"`
		Institution string `db:"institution"`
		VersionID   int64  `db:"live_version_id"`
	}
	if err := a.DB.R.SelectContext(r.Context(), &rows, `SELECT s.public_id, i.name AS institution, s.live_version_id
		FROM services s JOIN institutions i ON i.id = s.institution_id
		WHERE s.live_version_id IS NOT NULL AND s.is_visible = 1 AND s.deleted_at IS NULL AND s.suspended_at IS NULL AND i.status = 'active'
		ORDER BY i.name COLLATE NOCASE, s.name COLLATE NOCASE`); err != nil {
		a.serverError(w, r, err)
		return
	}
	var out []publicService
	for _, row := range rows {
		v, err := loadVersion(r.Context(), a.DB.R, row.VersionID)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		out = append(out, publicService{PublicID: row.PublicID, Institution: row.Institution, Card: v.Card, Description: servicecard.RenderMarkdown(v.Card.Description)})
	}
	a.render(w, r, http.StatusOK, "public_services", &Page{Title: a.T(r, "public.title"), Data: out})
}
