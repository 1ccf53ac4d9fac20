package portal

import (
	"net/http"
)

// dashboardSections lets feature files (services, keys, deliveries) add
// their summary to the institution dashboard from their own init; each
// returns the template name of a partial and its data, or "" to skip.
var dashboardSections []func(a *App, r *http.Request) (partial string, data any, err error)

type dashboardSection struct {
	Partial string
	Data    any
}

func (a *App) dashboard(w http.ResponseWriter, r *http.Request) {
	ctx, iid := r.Context(), instID(r)
	var counts struct {
		Members     int `db:"members"`
		Invitations int `db:"invitations"`
	}
	if err := a.DB.R.GetContext(ctx, &counts, `SELECT
		(SELECT count(*) FROM memberships WHERE institution_id = ?) AS members,
		(SELECT count(*) FROM invitations WHERE institution_id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?) AS invitations`,
		iid, iid, a.now()); err != nil {
		a.serverError(w, r, err)
		return
	}
	var sections []dashboardSection
	for _, s := range dashboardSections {
		name, data, err := s(a, r)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		if name != "" {
			sections = append(sections, dashboardSection{name, data})
		}
	}
	a.render(w, r, http.StatusOK, "dashboard", &Page{Title: instCtxOf(r).Inst.Name, Section: "dashboard", Data: map[string]any{
		"Members": counts.Members, "Invitations": counts.Invitations, "Sections": sections,
	}})
}
