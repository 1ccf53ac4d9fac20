package portal

import (
	"encoding/csv"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sportello/db"
)

const auditPageSize = 50

func auditFilterFrom(r *http.Request) db.AuditFilter {
	q := r.URL.Query()
	before, _ := strconv.ParseInt(q.Get("before"), 10, 64)
	action := q.Get("action")
	return db.AuditFilter{Action: action, ActionExact: knownAuditAction(action), Actor: q.Get("actor"), BeforeID: before, Limit: auditPageSize + 1}
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
	q := url.Values{}
	for k, v := range map[string]string{"action": f.Action, "actor": f.Actor, "institution": r.URL.Query().Get("institution")} {
		if v != "" {
			q.Set(k, v)
		}
	}
	csvLink := r.URL.Path + ".csv"
	if len(q) > 0 {
		csvLink += "?" + q.Encode()
	}
	olderLink := ""
	if older > 0 {
		oq := maps.Clone(q)
		oq.Set("before", strconv.FormatInt(older, 10))
		olderLink = r.URL.Path + "?" + oq.Encode()
	}
	// The console's institution filter: kept by the form and the older
	// link, and said on the page with a way out.
	var inst map[string]any
	if page.Platform && f.InstitutionID != nil {
		var name string
		_ = a.DB.R.GetContext(r.Context(), &name, `SELECT name FROM institutions WHERE id = ?`, *f.InstitutionID)
		clear := url.Values{}
		for k, v := range q {
			if k != "institution" {
				clear[k] = v
			}
		}
		all := r.URL.Path
		if len(clear) > 0 {
			all += "?" + clear.Encode()
		}
		inst = map[string]any{"ID": *f.InstitutionID, "Name": name, "All": all}
	}
	rows := a.auditRows(r, evs)
	for i := range rows {
		if rows[i].Actor == "" {
			continue
		}
		aq := maps.Clone(q)
		aq.Set("actor", rows[i].Actor)
		rows[i].ActorURL = r.URL.Path + "?" + aq.Encode()
	}
	if page.Platform {
		a.nameInstitutions(r, rows)
	}
	page.Data = map[string]any{"Events": rows, "Older": olderLink, "Action": f.Action, "Actor": f.Actor, "CSV": csvLink,
		"Actions": a.auditActionOptions(r, f.Action), "Inst": inst}
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

// auditCSVChunk is how many events one read of the export takes: the
// export is read newest first in keyset chunks (id < the last one
// written), each written out before the next is read, so a server
// exporting a year's log holds one chunk, not the file, and no read
// stays open while a slow client downloads. So the export needs no cap
// either: it is every matching event (a compliance archive that stops at
// some row count without saying so is worse than a long download).
const auditCSVChunk = 500

// auditCSV writes the filtered events as CSV for spreadsheets and
// compliance archives, newest first, with the same filters as the page.
func (a *App) auditCSV(w http.ResponseWriter, r *http.Request, f db.AuditFilter, name string) {
	f.BeforeID, f.Limit = 0, auditCSVChunk
	evs, err := a.DB.AuditEvents(r.Context(), f)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.csv"`, name, a.now().Format("20060102-1504")))
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "time_utc", "actor", "institution_id", "action", "target", "detail", "client_ip"})
	for {
		for _, ev := range evs {
			inst := ""
			if ev.InstitutionID != nil {
				inst = strconv.FormatInt(*ev.InstitutionID, 10)
			}
			_ = cw.Write([]string{strconv.FormatInt(ev.ID, 10), ev.At.UTC().Format(time.RFC3339), csvCell(ev.Actor), inst,
				csvCell(ev.Action), csvCell(ev.Target), csvCell(ev.Detail), csvCell(ev.ClientIP)})
		}
		cw.Flush()
		if len(evs) < f.Limit || cw.Error() != nil {
			return
		}
		f.BeforeID = evs[len(evs)-1].ID
		if evs, err = a.DB.AuditEvents(r.Context(), f); err != nil {
			// The status is sent: cut the download rather than end it
			// as if the file were whole.
			a.Logger.Error("audit export", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// csvCell defuses spreadsheet formulas: the actor of a failed login is
// whatever was typed in the e-mail field, and "=HYPERLINK(...)" must stay
// text when an auditor opens the file. Excel with Italian settings splits
// a .csv on ";" (the list separator there), not on ","; so every part of a
// cell after a ";" is also the start of a cell and is defused the same way
// ("x;=1+1" was a formula in an Italian spreadsheet).
func csvCell(s string) string {
	if !strings.ContainsAny(s, "=+-@\t\r") {
		return s
	}
	parts := strings.Split(s, ";")
	for i, p := range parts {
		if formulaStart(p) {
			parts[i] = "'" + p
		}
	}
	return strings.Join(parts, ";")
}

// formulaStart says whether a spreadsheet would read p as a formula: its
// first character, past spaces and quotes, starts one.
func formulaStart(p string) bool {
	if p != "" && (p[0] == '\t' || p[0] == '\r') {
		return true
	}
	p = strings.TrimLeft(p, ` "`)
	return p != "" && strings.ContainsRune("=+-@", rune(p[0]))
}

func (a *App) instAuditCSV(w http.ResponseWriter, r *http.Request) {
	f := auditFilterFrom(r)
	iid := instID(r)
	f.InstitutionID = &iid
	a.auditCSV(w, r, f, fmt.Sprintf("sportello-audit-ente-%d", iid))
}

func (a *App) adminAuditCSV(w http.ResponseWriter, r *http.Request) {
	f := auditFilterFrom(r)
	if id, err := strconv.ParseInt(r.URL.Query().Get("institution"), 10, 64); err == nil {
		f.InstitutionID = &id
	}
	a.auditCSV(w, r, f, "sportello-audit")
}
