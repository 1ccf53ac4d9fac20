package portal

import (
	"net/http"
	"strconv"

	"sportello/db"
)

const auditPageSize = 50

func auditFilterFrom(r *http.Request) db.AuditFilter {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	return db.AuditFilter{Action: q.Get("action"), Actor: q.Get("actor"), BeforeID: before, Limit: auditPageSize + 1}
}

// auditPage lists events newest first, with "older" pagination by id.
func (a *App) auditPage(w http.ResponseWriter, r *http.Request, f db.AuditFilter, page *Page) {
	evs, err := a.DB.AuditEvents(r.Context(), f)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	var older int64
	if len(evs) > auditPageSize {
		evs = evs[:auditPageSize]
		older = evs[len(evs)-1].ID
	}
	page.Data = map[string]any{"Events": evs, "Older": older, "Action": f.Action, "Actor": f.Actor}
	a.render(w, r, http.StatusOK, "audit", page)
}

// instAuditPage: an institution admin sees the institution's events only
// (the filter is fixed server-side, whatever the query string says).
func (a *App) instAuditPage(w http.ResponseWriter, r *http.Request) {
	f := auditFilterFrom(r)
	iid := instID(r)
	f.InstitutionID = &iid
	a.auditPage(w, r, f, &Page{Title: a.T(r, "audit.title"), Section: "audit"})
}

// adminAuditPage: platform admins see every event, filterable by institution.
func (a *App) adminAuditPage(w http.ResponseWriter, r *http.Request) {
	f := auditFilterFrom(r)
	if id, err := strconv.ParseInt(r.URL.Query().Get("institution"), 10, 64); err == nil {
		f.InstitutionID = &id
	}
	a.auditPage(w, r, f, &Page{Title: a.T(r, "audit.title"), Section: "audit", Platform: true})
}
