package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// adminSections lets feature files add panels to the console home.
var adminSections []func(a *App, r *http.Request) (partial string, data any, err error)

func (a *App) adminHome(w http.ResponseWriter, r *http.Request) {
	var counts struct {
		Institutions int `db:"institutions"`
		Suspended    int `db:"suspended"`
		Users        int `db:"users"`
	}
	if err := a.DB.R.GetContext(r.Context(), &counts, `SELECT
		(SELECT count(*) FROM institutions) AS institutions,
		(SELECT count(*) FROM institutions WHERE status = 'suspended') AS suspended,
		(SELECT count(*) FROM users) AS users`); err != nil {
		a.serverError(w, r, err)
		return
	}
	var sections []dashboardSection
	for _, s := range adminSections {
		name, data, err := s(a, r)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		if name != "" {
			sections = append(sections, dashboardSection{name, data})
		}
	}
	a.render(w, r, http.StatusOK, "admin_home", &Page{Title: a.T(r, "admin.title"), Section: "admin", Platform: true,
		Data: map[string]any{"Counts": counts, "Sections": sections}})
}

type adminInstitutionRow struct {
	Institution
	Members int `db:"members"`
}

// adminInstitutionsPageSize is how many institutions one page of the
// console's list shows: it stopped at the first 500 with nothing saying so.
const adminInstitutionsPageSize = 100

func (a *App) adminInstitutions(w http.ResponseWriter, r *http.Request) {
	q, page := r.URL.Query().Get("q"), pageOf(r)
	var rows []adminInstitutionRow
	err := a.DB.R.SelectContext(r.Context(), &rows, `SELECT i.id, i.name, i.fiscal_code, i.pec, i.status, i.created_at,
		(SELECT count(*) FROM memberships m WHERE m.institution_id = i.id) AS members
		FROM institutions i
		WHERE ? = '' OR i.name LIKE '%' || ? || '%' OR i.fiscal_code LIKE ? || '%'
		ORDER BY i.name COLLATE NOCASE, i.id LIMIT ? OFFSET ?`, q, q, q, adminInstitutionsPageSize+1, (page-1)*adminInstitutionsPageSize)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	rows, more := onePage(rows, adminInstitutionsPageSize)
	prev, next := pageLinks("/admin/institutions", url.Values{"q": {q}}, page, more)
	a.render(w, r, http.StatusOK, "admin_institutions", &Page{Title: a.T(r, "admin.institutions.title"), Section: "institutions", Platform: true,
		Data: map[string]any{"Institutions": rows, "Q": q, "Prev": prev, "Next": next}})
}

// suspendInstitution suspends or reactivates an institution; its members
// cannot act on it while suspended, and its API keys stop working.
func (a *App) suspendInstitution(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, v := r.Context(), viewerOf(r)
		iid, _ := strconv.ParseInt(mux.Vars(r)["iid"], 10, 64)
		status, action := "active", "institution.reactivate"
		if suspend {
			status, action = "suspended", "institution.suspend"
		}
		var reason string
		if suspend {
			reason = truncate(plainLine(r.FormValue("reason")), 500)
		}
		var name string
		err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
			if err := tx.GetContext(ctx, &name, `SELECT name FROM institutions WHERE id = ?`, iid); err != nil {
				return db.NotFound(err)
			}
			res, err := tx.ExecContext(ctx, `UPDATE institutions SET status = ? WHERE id = ? AND status <> ?`, status, iid, status)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errNoChange // already so: no event for nothing
			}
			if err := db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &iid,
				Action: action, Target: name, Detail: reason, ClientIP: a.Resolver.String(r), At: time.Time{}}); err != nil {
				return err
			}
			// Its members can no longer open its pages to find out why.
			return a.queueInstitutionMail(ctx, tx, iid, name, suspend, reason)
		})
		if errors.Is(err, db.ErrNotFound) {
			a.notFound(w, r)
			return
		} else if errors.Is(err, errNoChange) {
			if suspend {
				a.flash(w, r, "info", "admin.institution.suspended.already", name)
			} else {
				a.flash(w, r, "info", "admin.institution.reactivated.already", name)
			}
			http.Redirect(w, r, "/admin/institutions", http.StatusSeeOther)
			return
		} else if err != nil {
			a.serverError(w, r, err)
			return
		}
		if a.Hooks.InstitutionChanged != nil {
			a.Hooks.InstitutionChanged(iid)
		}
		if suspend {
			a.flash(w, r, "success", "admin.institution.suspended", name)
		} else {
			a.flash(w, r, "success", "admin.institution.reactivated", name)
		}
		http.Redirect(w, r, "/admin/institutions", http.StatusSeeOther)
	}
}
