package portal

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/portal/servicecard"
)

func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		root.Handle("/admin/reviews", a.platform("admin", "read", a.reviewQueue)).Methods("GET")
		root.Handle("/admin/reviews/{sid}", a.platform("admin", "read", a.reviewPage)).Methods("GET")
		root.Handle("/admin/reviews/{sid}/approve", a.platform("admin", "review", a.approveService)).Methods("POST")
		root.Handle("/admin/reviews/{sid}/reject", a.platform("admin", "review", a.rejectService)).Methods("POST")
		root.Handle("/admin/services", a.platform("admin", "read", a.adminServices)).Methods("GET")
		root.Handle("/admin/services/{sid}/suspend", a.platform("admin", "suspend", a.suspendService(true))).Methods("POST")
		root.Handle("/admin/services/{sid}/reactivate", a.platform("admin", "suspend", a.suspendService(false))).Methods("POST")
		root.Handle("/admin/services/{sid}/limits", a.platform("admin", "limits", a.setLimits)).Methods("POST")
	})
	adminSections = append(adminSections, func(a *App, r *http.Request) (string, any, error) {
		q, err := a.queue(r)
		return "admin_queue", q, err
	})
}

type queueRow struct {
	PublicID    string    `db:"public_id"`
	Name        string    `db:"name"`
	Institution string    `db:"institution"`
	VersionNo   int       `db:"version_no"`
	SubmittedAt time.Time `db:"submitted_at"`
	FirstTime   bool      `db:"first_time"`
	Waited      string    `db:"-"`
}

// queue lists submitted versions, oldest first, with how long each waited.
func (a *App) queue(r *http.Request) ([]queueRow, error) {
	var rows []queueRow
	err := a.DB.R.SelectContext(r.Context(), &rows, `SELECT s.public_id, json_extract(v.card, '$.name') AS name, i.name AS institution,
		v.version_no, v.submitted_at, s.live_version_id IS NULL AS first_time
		FROM service_versions v JOIN services s ON s.id = v.service_id JOIN institutions i ON i.id = s.institution_id
		WHERE v.state = 'submitted' AND s.deleted_at IS NULL ORDER BY v.submitted_at`)
	now := a.now()
	for i := range rows {
		rows[i].Waited = a.waited(r, now.Sub(rows[i].SubmittedAt))
	}
	return rows, err
}

func (a *App) waited(r *http.Request, d time.Duration) string {
	switch {
	case d < time.Hour:
		return a.T(r, "review.waited.minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return a.T(r, "review.waited.hours", int(d.Hours()))
	}
	return a.T(r, "review.waited.days", int(d.Hours()/24))
}

func (a *App) reviewQueue(w http.ResponseWriter, r *http.Request) {
	rows, err := a.queue(r)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "review_queue", &Page{Title: a.T(r, "review.queue.title"), Section: "reviews", Platform: true, Data: rows})
}

// anyService loads a service of any institution (platform admins only).
func (a *App) anyService(w http.ResponseWriter, r *http.Request) (*serviceCtx, *Institution, bool) {
	var s Service
	err := a.DB.R.GetContext(r.Context(), &s, `SELECT `+serviceColumns+` FROM services WHERE public_id = ? AND deleted_at IS NULL`, mux.Vars(r)["sid"])
	if err == nil {
		var sc *serviceCtx
		if sc, err = a.withVersions(r.Context(), a.DB.R, &s); err == nil {
			var inst *Institution
			if inst, err = a.institutionByID(r.Context(), s.InstitutionID); err == nil {
				return sc, inst, true
			}
		}
	}
	if errors.Is(db.NotFound(err), db.ErrNotFound) {
		a.notFound(w, r)
	} else {
		a.serverError(w, r, err)
	}
	return nil, nil, false
}

// diffRow is one card field, in force and proposed.
type diffRow struct {
	Field, Old, New string
	Changed         bool
}

// cardText is a card field's value as a reviewer reads it: coded values
// (scope, topic, the secure-channels flag) in words.
func (a *App) cardText(r *http.Request, field, v string) string {
	switch field {
	case "scope", "topic":
		if v != "" {
			return a.T(r, field+"."+v)
		}
	case "require_secure_channels":
		if v != "" {
			return a.T(r, "review.yes")
		}
		return a.T(r, "review.no")
	}
	return v
}

// labelValue is one answer of a checklist item, in words.
type labelValue struct{ Label, Value string }

// checklistAnswers lists an item's extra fields with their labels and
// values in words (options translated, the acceptance box as yes/no).
func (a *App) checklistAnswers(r *http.Request, def servicecard.ItemDef, st servicecard.ItemState) []labelValue {
	var out []labelValue
	for _, fld := range def.Fields {
		v, ok := st.Fields[fld.Name]
		if !ok && fld.Kind != "accept" {
			continue
		}
		switch fld.Kind {
		case "select":
			v = a.T(r, "checklist.opt."+v)
		case "checks":
			var words []string
			for _, c := range strings.Split(v, ",") {
				words = append(words, a.T(r, "checklist.opt."+c))
			}
			v = strings.Join(words, ", ")
		case "accept":
			if !ok {
				if st.State == servicecard.Todo {
					continue
				}
				v = a.T(r, "review.no")
			} else {
				v = a.T(r, "review.yes")
			}
		}
		out = append(out, labelValue{Label: a.T(r, "checklist."+def.ID+"."+fld.Name), Value: v})
	}
	return out
}

func (a *App) reviewPage(w http.ResponseWriter, r *http.Request) {
	a.renderReview(w, r, http.StatusOK, emptyForm())
}

func (a *App) renderReview(w http.ResponseWriter, r *http.Request, status int, f *Form) {
	sc, inst, ok := a.anyService(w, r)
	if !ok {
		return
	}
	sv, err := a.serviceView(r, sc)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	cur := sc.Current()
	var diff []diffRow
	for _, field := range servicecard.Fields {
		newV, oldV := cur.Card.Value(field), ""
		if sc.Live != nil {
			oldV = sc.Live.Card.Value(field)
		}
		row := diffRow{Field: field, New: a.cardText(r, field, newV), Changed: sc.Live != nil && oldV != newV}
		if sc.Live != nil {
			row.Old = a.cardText(r, field, oldV)
		}
		diff = append(diff, row)
	}
	var others []Service
	if err := a.DB.R.SelectContext(r.Context(), &others, `SELECT `+serviceColumns+` FROM services WHERE institution_id = ? AND id <> ? AND deleted_at IS NULL ORDER BY name`,
		inst.ID, sc.Service.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	reviewed := ""
	if sc.Working != nil {
		reviewed = reviewedContent(sc.Working)
	}
	var items []checklistItemView
	for _, def := range servicecard.Items {
		st := cur.Checklist.Get(def.ID)
		items = append(items, checklistItemView{Def: def, State: st, Answers: a.checklistAnswers(r, def, st)})
	}
	a.render(w, r, status, "review", &Page{Title: a.T(r, "review.title", sc.Service.Name), Section: "reviews", Platform: true, Form: f,
		Data: map[string]any{"S": sv, "Inst": inst, "Diff": diff, "Others": others, "Items": items, "Reviewed": reviewed,
			"Description": servicecard.RenderMarkdown(cur.Card.Description)}})
}

// reviewedContent is what the review page showed: a digest of the card
// and the checklist of the submitted version. The decision forms carry it
// back, so an approval puts in force exactly what the admin read. Without
// it, an institution could withdraw, edit and resubmit (the same version
// row) between the page and the click, and unread text would go live.
func reviewedContent(ver *Version) string {
	sum := sha256.Sum256([]byte(ver.CardJSON + "\x00" + ver.ChecklistJSON))
	return hex.EncodeToString(sum[:16])
}

// submittedAsShown loads the submitted version the decision is about and
// checks it is still what the review page showed; otherwise it tells the
// admin and sends them back to the page (now showing the new content).
func (a *App) submittedAsShown(w http.ResponseWriter, r *http.Request, sc *serviceCtx) (*Version, bool) {
	if sc.Working == nil || sc.Working.State != "submitted" {
		a.flash(w, r, "error", "review.not_submitted")
		http.Redirect(w, r, "/admin/reviews", http.StatusSeeOther)
		return nil, false
	}
	shown := r.PostFormValue("reviewed")
	if subtle.ConstantTimeCompare([]byte(shown), []byte(reviewedContent(sc.Working))) != 1 {
		a.flash(w, r, "error", "review.changed_meanwhile")
		http.Redirect(w, r, "/admin/reviews/"+sc.Service.PublicID, http.StatusSeeOther)
		return nil, false
	}
	return sc.Working, true
}

// approveService puts the submitted version in force.
func (a *App) approveService(w http.ResponseWriter, r *http.Request) {
	ctx, v := r.Context(), viewerOf(r)
	sc, _, ok := a.anyService(w, r)
	if !ok {
		return
	}
	ver, ok := a.submittedAsShown(w, r, sc)
	if !ok {
		return
	}
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		// Two versions with the same name may have been submitted while
		// neither was live; the second approval must not make them twins.
		if dup, err := liveNameTaken(ctx, tx, sc.Service.InstitutionID, sc.Service.ID, ver.Card.Name); err != nil {
			return err
		} else if dup {
			return errDuplicateName
		}
		now := a.now()
		res, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'approved', decided_at = ?, decided_by = ?, decision_reason = ''
			WHERE id = ? AND state = 'submitted' AND card = ? AND checklist = ?`, now, v.User.ID, ver.ID, ver.CardJSON, ver.ChecklistJSON)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errSubmitted // withdrawn (and perhaps changed) meanwhile
		}
		if sc.Live != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'superseded' WHERE id = ?`, sc.Live.ID); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE services SET live_version_id = ?, working_version_id = NULL, name = ?,
			max_payment_cents = ?, require_secure_channels = ? WHERE id = ?`,
			ver.ID, ver.Card.Name, ver.Card.MaxPaymentCents, ver.Card.RequireSecureChannels, sc.Service.ID); err != nil {
			return err
		}
		if err := a.serviceEvent(ctx, tx, r, sc.Service, &ver.ID, "approve", ""); err != nil {
			return err
		}
		return a.queueDecisionMail(ctx, tx, sc.Service, ver.ID, ver.Card.Name, "approve", "")
	})
	if errors.Is(err, errSubmitted) {
		a.flash(w, r, "error", "review.changed_meanwhile")
		http.Redirect(w, r, "/admin/reviews/"+sc.Service.PublicID, http.StatusSeeOther)
		return
	} else if errors.Is(err, errDuplicateName) {
		a.flash(w, r, "error", "review.duplicate_name", ver.Card.Name)
		http.Redirect(w, r, "/admin/reviews/"+sc.Service.PublicID, http.StatusSeeOther)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.serviceChanged(sc.Service.ID)
	a.flash(w, r, "success", "review.approved", ver.Card.Name)
	http.Redirect(w, r, "/admin/reviews", http.StatusSeeOther)
}

// rejectService sends the version back with a reason the institution sees.
func (a *App) rejectService(w http.ResponseWriter, r *http.Request) {
	ctx, v := r.Context(), viewerOf(r)
	f := newForm(r)
	reason := f.Get("reason")
	if n := utf8.RuneCountInString(reason); n < 10 {
		f.Fail("reason", a.T(r, "review.reason.required"))
	} else if n > 2000 {
		f.Fail("reason", a.T(r, "card.err.too_long", 2000))
	}
	if !f.Valid() {
		a.renderReview(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	sc, _, ok := a.anyService(w, r)
	if !ok {
		return
	}
	ver, ok := a.submittedAsShown(w, r, sc)
	if !ok {
		return
	}
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'rejected', decided_at = ?, decided_by = ?, decision_reason = ?
			WHERE id = ? AND state = 'submitted' AND card = ? AND checklist = ?`, a.now(), v.User.ID, reason, ver.ID, ver.CardJSON, ver.ChecklistJSON)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errSubmitted
		}
		if err := a.serviceEvent(ctx, tx, r, sc.Service, &ver.ID, "reject", reason); err != nil {
			return err
		}
		return a.queueDecisionMail(ctx, tx, sc.Service, ver.ID, ver.Card.Name, "reject", reason)
	})
	if errors.Is(err, errSubmitted) {
		a.flash(w, r, "error", "review.changed_meanwhile")
		http.Redirect(w, r, "/admin/reviews/"+sc.Service.PublicID, http.StatusSeeOther)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "review.rejected", ver.Card.Name)
	http.Redirect(w, r, "/admin/reviews", http.StatusSeeOther)
}

// errNoChange: the suspension or reactivation asked for was already so.
var errNoChange = errors.New("nothing to change")

type adminServiceRow struct {
	Service
	Institution string `db:"institution"`
	State       string `db:"-"`
	// SuspendedKeys counts the service's keys a platform admin suspended:
	// the list says so, or a held key is found only by opening every
	// service's keys page.
	SuspendedKeys int `db:"suspended_keys"`
}

// adminServicesPageSize is how many services one page of the console's
// list shows. The list stopped at the first 500 services with no way to
// the others but a search (of 2,000, three quarters were out of reach),
// and read each one's versions: 0.11-0.16 s and 0.7 MB a page.
const adminServicesPageSize = 100

func (a *App) adminServices(w http.ResponseWriter, r *http.Request) {
	a.renderAdminServices(w, r, http.StatusOK, r.URL.Query().Get("q"), nil)
}

// limitsError is a refused limit change, shown in its service's row: what
// was typed stays in the fields, each wrong field marked and explained
// next to it.
type limitsError struct {
	ServiceID         int64
	Requests, Window  string // as typed
	RequestsErr       string
	WindowErr         string
	KeptReq, KeptWind int // the limit that still holds
}

// renderAdminServices shows one page of the list (?page=N, from the URL: a
// refused limit change posts to an action that carries the page it came
// from, so its row is on the page that comes back).
func (a *App) renderAdminServices(w http.ResponseWriter, r *http.Request, status int, q string, le *limitsError) {
	page := pageOf(r)
	var rows []adminServiceRow
	err := a.DB.R.SelectContext(r.Context(), &rows, `SELECT s.id, s.public_id, s.institution_id, s.name, s.live_version_id, s.working_version_id,
		s.authorized_recipients, s.authorized_cidrs, s.max_payment_cents, s.require_secure_channels, s.is_visible, s.rate_limit_requests,
		s.rate_limit_window_s, s.suspended_at, s.deleted_at, s.created_at, i.name AS institution,
		(SELECT count(*) FROM api_keys k WHERE k.service_id = s.id AND k.revoked_at IS NULL AND k.suspended_at IS NOT NULL) AS suspended_keys
		FROM services s JOIN institutions i ON i.id = s.institution_id
		WHERE s.deleted_at IS NULL AND (? = '' OR s.name LIKE '%' || ? || '%' OR i.name LIKE '%' || ? || '%' OR s.public_id = ?)
		ORDER BY i.name COLLATE NOCASE, s.name COLLATE NOCASE, s.id LIMIT ? OFFSET ?`, q, q, q, q,
		adminServicesPageSize+1, (page-1)*adminServicesPageSize)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	rows, more := onePage(rows, adminServicesPageSize)
	for i := range rows {
		sc, err := a.withVersions(r.Context(), a.DB.R, &rows[i].Service)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		rows[i].State = sc.State()
	}
	prev, next := pageLinks("/admin/services", url.Values{"q": {q}}, page, more)
	p := &Page{Title: a.T(r, "admin.services.title"), Section: "admin_services", Platform: true,
		Data: map[string]any{"Services": rows, "Q": q, "Page": page, "Prev": prev, "Next": next, "LimitsErr": le}}
	if le != nil {
		p.Title = a.T(r, "form.errors_title") + " · " + p.Title
	}
	a.render(w, r, status, "admin_services", p)
}

func (a *App) suspendService(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		sc, _, ok := a.anyService(w, r)
		if !ok {
			return
		}
		kind, key := "reactivate", "admin.service.reactivated"
		var at any
		if suspend {
			kind, key, at = "suspend", "admin.service.suspended", a.now()
		}
		err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
			// Only a change is a change: suspending a suspended service
			// (a second click, two admins at once) would move the time it
			// was suspended and add an event for nothing.
			res, err := tx.ExecContext(ctx, `UPDATE services SET suspended_at = ? WHERE id = ? AND (suspended_at IS NULL) = ?`, at, sc.Service.ID, suspend)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return errNoChange
			}
			// The reason is the institution's to read: on the service's
			// page (its history) and in the mail to its admins.
			var reason string
			if suspend {
				reason = truncate(plainLine(r.FormValue("reason")), 500)
			}
			if err := a.serviceEvent(ctx, tx, r, sc.Service, nil, kind, reason); err != nil {
				return err
			}
			return a.queueDecisionMail(ctx, tx, sc.Service, 0, sc.Service.Name, kind, reason)
		})
		if errors.Is(err, errNoChange) {
			a.flash(w, r, "info", key+".already", sc.Service.Name)
			http.Redirect(w, r, "/admin/services", http.StatusSeeOther)
			return
		} else if err != nil {
			a.serverError(w, r, err)
			return
		}
		a.serviceChanged(sc.Service.ID)
		a.flash(w, r, "success", key, sc.Service.Name)
		http.Redirect(w, r, "/admin/services", http.StatusSeeOther)
	}
}

// The bounds of a live rate limit an admin may set.
const (
	maxLimitRequests = 100000
	maxLimitWindow   = 3600 // seconds
)

// setLimits changes a service's live rate limit (requests per window).
func (a *App) setLimits(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, _, ok := a.anyService(w, r)
	if !ok {
		return
	}
	// Spaces around a number (a value pasted from elsewhere) are not an
	// error; a sign, a decimal point or anything else is.
	reqIn, winIn := strings.TrimSpace(r.FormValue("requests")), strings.TrimSpace(r.FormValue("window"))
	n, errN := strconv.Atoi(reqIn)
	win, errW := strconv.Atoi(winIn)
	le := &limitsError{ServiceID: sc.Service.ID, Requests: truncate(reqIn, 20), Window: truncate(winIn, 20),
		KeptReq: sc.Service.RateLimitRequests, KeptWind: sc.Service.RateLimitWindowS}
	if errN != nil || strings.HasPrefix(reqIn, "+") || n < 1 || n > maxLimitRequests {
		le.RequestsErr = a.T(r, "admin.limits.requests.invalid", maxLimitRequests)
	}
	if errW != nil || strings.HasPrefix(winIn, "+") || win < 1 || win > maxLimitWindow {
		le.WindowErr = a.T(r, "admin.limits.window.invalid", maxLimitWindow)
	}
	if le.RequestsErr != "" || le.WindowErr != "" {
		// The list has a form per service: the page comes back with the
		// error in that service's row, next to the wrong field, and what
		// was typed; nothing is stored.
		a.renderAdminServices(w, r, http.StatusUnprocessableEntity, r.URL.Query().Get("q"), le)
		return
	}
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE services SET rate_limit_requests = ?, rate_limit_window_s = ? WHERE id = ?`, n, win, sc.Service.ID); err != nil {
			return err
		}
		// The audit says what the limit was, not only what it became.
		return a.serviceEvent(ctx, tx, r, sc.Service, nil, "limits",
			fmt.Sprintf("%d/%ds → %d/%ds", sc.Service.RateLimitRequests, sc.Service.RateLimitWindowS, n, win))
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.serviceChanged(sc.Service.ID)
	a.flash(w, r, "success", "admin.limits.saved", sc.Service.Name, n, win)
	// Back to the page of the list the change was made on.
	http.Redirect(w, r, pageURL("/admin/services", url.Values{"q": {r.URL.Query().Get("q")}}, pageOf(r)), http.StatusSeeOther)
}
