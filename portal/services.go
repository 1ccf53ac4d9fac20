package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway/keys"
	"sportello/portal/servicecard"
)

func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		inst.Handle("/services", a.inst("services", "read", a.servicesList)).Methods("GET")
		inst.Handle("/services", a.inst("services", "write", a.createService)).Methods("POST")
		inst.Handle("/services/new", a.inst("services", "write", a.newServicePage)).Methods("GET")
		inst.Handle("/services/{sid}", a.inst("services", "read", a.servicePage)).Methods("GET")
		inst.Handle("/services/{sid}/card", a.inst("services", "read", a.cardPage)).Methods("GET")
		inst.Handle("/services/{sid}/card", a.inst("services", "write", a.saveCard)).Methods("POST")
		inst.Handle("/services/{sid}/checklist", a.inst("services", "read", a.checklistPage)).Methods("GET")
		inst.Handle("/services/{sid}/checklist", a.inst("services", "write", a.saveChecklist)).Methods("POST")
		inst.Handle("/services/{sid}/checklist/{item}", a.inst("services", "write", a.saveChecklistItem)).Methods("POST")
		inst.Handle("/services/{sid}/submit", a.inst("services", "submit", a.submitService)).Methods("POST")
		inst.Handle("/services/{sid}/withdraw", a.inst("services", "submit", a.withdrawService)).Methods("POST")
		inst.Handle("/services/{sid}/discard", a.inst("services", "write", a.discardDraft)).Methods("POST")
		inst.Handle("/services/{sid}/delete", a.inst("services", "delete", a.deleteService)).Methods("POST")
	})
	dashboardSections = append(dashboardSections, servicesDashboard)
}

// serviceRow is a service in lists, with what to do next.
type serviceRow struct {
	*serviceCtx
	Answered, Total int
	Missing         []string // i18n keys
}

func (a *App) serviceRows(r *http.Request) ([]serviceRow, error) {
	ctx := r.Context()
	var ss []Service
	if err := a.DB.R.SelectContext(ctx, &ss, `SELECT `+serviceColumns+` FROM services
		WHERE institution_id = ? AND deleted_at IS NULL ORDER BY name COLLATE NOCASE`, instID(r)); err != nil {
		return nil, err
	}
	rows := make([]serviceRow, 0, len(ss))
	for i := range ss {
		sc, err := a.withVersions(ctx, a.DB.R, &ss[i])
		if err != nil {
			return nil, err
		}
		row := serviceRow{serviceCtx: sc}
		if cur := sc.Current(); cur != nil {
			row.Answered, row.Total = cur.Checklist.Progress()
			row.Missing = cur.Card.Missing()
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (a *App) servicesList(w http.ResponseWriter, r *http.Request) {
	rows, err := a.serviceRows(r)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "services", &Page{Title: a.T(r, "services.title"), Section: "services", Data: rows})
}

func (a *App) newServicePage(w http.ResponseWriter, r *http.Request) {
	f := emptyForm()
	f.Values.Set("scope", "LOCAL")
	a.render(w, r, http.StatusOK, "service_new", &Page{Title: a.T(r, "services.new.title"), Section: "services", Form: f})
}

// createService creates the service with its first draft and its test key
// pair, then shows the keys once.
func (a *App) createService(w http.ResponseWriter, r *http.Request) {
	ctx, iid, v := r.Context(), instID(r), viewerOf(r)
	f := newForm(r)
	name, scope := f.Get("name"), f.Get("scope")
	card, problems := servicecard.Parse(func(k string) string {
		switch k {
		case "name":
			return name
		case "scope":
			return scope
		}
		return ""
	})
	for field, p := range problems {
		f.Fail(field, a.T(r, p.Key, p.Args...))
	}
	if !f.Valid() {
		a.render(w, r, http.StatusUnprocessableEntity, "service_new", &Page{Title: a.T(r, "services.new.title"), Section: "services", Form: f})
		return
	}
	cardJSON, _ := json.Marshal(card)
	s := &Service{PublicID: newPublicID(), InstitutionID: iid, Name: card.Name}
	var pair keys.Pair
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		// A double click, a second tab or a repeated request must not make
		// two services: another one not yet approved with this name is
		// refused (checked inside the write transaction, so two requests at
		// once cannot both pass).
		var dup int
		if err := tx.GetContext(ctx, &dup, `SELECT count(*) FROM services WHERE institution_id = ? AND deleted_at IS NULL
			AND live_version_id IS NULL AND lower(name) = lower(?)`, iid, card.Name); err != nil {
			return err
		}
		if dup > 0 {
			return errDuplicateDraft
		}
		now := a.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO services (public_id, institution_id, name, created_at, created_by) VALUES (?, ?, ?, ?, ?)`,
			s.PublicID, iid, s.Name, now, v.User.ID)
		if err != nil {
			return err
		}
		s.ID, _ = res.LastInsertId()
		res, err = tx.ExecContext(ctx, `INSERT INTO service_versions (service_id, version_no, state, card, checklist, created_at, created_by, updated_at, updated_by)
			VALUES (?, 1, 'draft', ?, '{}', ?, ?, ?, ?)`, s.ID, string(cardJSON), now, v.User.ID, now, v.User.ID)
		if err != nil {
			return err
		}
		vid, _ := res.LastInsertId()
		if _, err := tx.ExecContext(ctx, `UPDATE services SET working_version_id = ? WHERE id = ?`, vid, s.ID); err != nil {
			return err
		}
		if pair, err = keys.IssuePair(ctx, tx, s.ID, keys.Test, v.User.ID); err != nil {
			return err
		}
		if err := a.serviceEvent(ctx, tx, r, s, &vid, "create", ""); err != nil {
			return err
		}
		return a.keyAudit(ctx, tx, r, s, "key.create_test", keys.Display(pair.Primary)+" "+keys.Display(pair.Secondary))
	})
	if errors.Is(err, errDuplicateDraft) {
		f.Fail("name", a.T(r, "services.new.duplicate", card.Name))
		a.render(w, r, http.StatusUnprocessableEntity, "service_new", &Page{Title: a.T(r, "services.new.title"), Section: "services", Form: f})
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	// Every service has its test keys from the start, but only someone who
	// may manage keys sees them: an operator (services/write, not
	// keys/manage) could otherwise create a service just to take a working
	// key. An admin regenerates one to see it.
	if !a.Enforcer.Allowed(v.User.ID, instDomain(iid), "keys", "manage") {
		a.flash(w, r, "success", "services.created_no_keys", s.Name)
		http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s", iid, s.PublicID), http.StatusSeeOther)
		return
	}
	a.stashSecret(w, r, s.ID, "test_primary", pair.Primary)
	a.stashSecret(w, r, s.ID, "test_secondary", pair.Secondary)
	a.flash(w, r, "success", "services.created", s.Name)
	http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s/keys", iid, s.PublicID), http.StatusSeeOther)
}

// serviceView is what the service pages show.
type serviceView struct {
	*serviceCtx
	Events   []ServiceEvent
	Missing  []string // i18n keys of what blocks submission
	Pending  []string // checklist item ids to do
	Answered int
	Total    int
	Editable bool // the current version can be changed (not under review)
}

func (a *App) serviceView(r *http.Request, sc *serviceCtx) (*serviceView, error) {
	evs, err := a.serviceEvents(r.Context(), sc.Service.ID)
	if err != nil {
		return nil, err
	}
	sv := &serviceView{serviceCtx: sc, Events: evs}
	if cur := sc.Current(); cur != nil {
		sv.Missing = cur.Card.Missing()
		sv.Pending = cur.Checklist.Pending()
		sv.Answered, sv.Total = cur.Checklist.Progress()
	}
	sv.Editable = sc.Working == nil || sc.Working.State != "submitted"
	return sv, nil
}

func (a *App) servicePage(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	a.renderService(w, r, http.StatusOK, sc, nil)
}

// renderService shows the overview; refusal lists why a submission failed.
func (a *App) renderService(w http.ResponseWriter, r *http.Request, status int, sc *serviceCtx, refusal []string) {
	sv, err := a.serviceView(r, sc)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, status, "service", &Page{Title: sc.Service.Name, Section: "services",
		Data: map[string]any{"S": sv, "Tab": "overview", "Refusal": refusal, "Secrets": a.popSecrets(w, r, sc.Service.ID)}})
}

// cardForm fills a form from a card and the runtime settings.
func cardForm(c *servicecard.Card, s *Service) *Form {
	f := emptyForm()
	for _, field := range servicecard.Fields {
		f.Values.Set(field, c.Value(field))
	}
	f.Values.Set("recipients", strings.Join(s.Recipients(), "\n"))
	f.Values.Set("cidrs", strings.Join(s.CIDRs(), "\n"))
	return f
}

func (a *App) cardPage(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	a.renderCard(w, r, http.StatusOK, sc, cardForm(&sc.Current().Card, sc.Service))
}

func (a *App) renderCard(w http.ResponseWriter, r *http.Request, status int, sc *serviceCtx, f *Form) {
	sv, err := a.serviceView(r, sc)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	preview, _ := servicecard.Parse(f.Get)
	a.render(w, r, status, "service_card", &Page{Title: a.T(r, "card.title") + " · " + sc.Service.Name, Section: "services", Form: f,
		Data: map[string]any{"S": sv, "Tab": "card", "Preview": preview, "Topics": servicecard.Topics,
			"Description": servicecard.RenderMarkdown(preview.Description)}})
}

// saveCard validates the whole card; nothing is stored unless every field
// is valid. Recipients and networks are runtime settings: they apply at
// once, without review.
func (a *App) saveCard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	f := newForm(r)
	submitted := sc.Working != nil && sc.Working.State == "submitted"
	if submitted {
		// Under review the card's fields are read-only (not sent); only
		// the technical settings can change. The page shows the card as
		// it is under review.
		shown := cardForm(&sc.Current().Card, sc.Service)
		shown.Values.Set("recipients", f.Values.Get("recipients"))
		shown.Values.Set("cidrs", f.Values.Get("cidrs"))
		f = shown
	}
	card, problems := servicecard.Parse(f.Get)
	if !submitted {
		// Under review only the technical settings are saved, so only they
		// are checked: a card stored before a rule existed (a tab in a
		// name, refused since) must not block them until withdrawn.
		for field, p := range problems {
			f.Fail(field, a.T(r, p.Key, p.Args...))
		}
	}
	recipients, bad := servicecard.ParseRecipients(f.Values.Get("recipients"))
	if len(bad) > 0 {
		f.Fail("recipients", a.T(r, "card.recipients.bad", strings.Join(bad, ", ")))
	} else if len(recipients) > 100 {
		f.Fail("recipients", a.T(r, "card.recipients.many", 100))
	}
	cidrs, bad := servicecard.ParseCIDRs(f.Values.Get("cidrs"))
	if len(bad) > 0 {
		f.Fail("cidrs", a.T(r, "card.cidrs.bad", strings.Join(bad, ", ")))
	}
	if !f.Valid() {
		a.renderCard(w, r, http.StatusUnprocessableEntity, sc, f)
		return
	}
	if submitted {
		a.saveRuntimeSettings(w, r, sc, recipients, cidrs)
		return
	}
	// Nothing changed on the card: no version is opened (on an approved
	// service an unchanged save would leave a draft to review); the
	// runtime settings are stored if they changed.
	cur := sc.Current()
	if cur.Checklist.ForcesSecure() {
		card.RequireSecureChannels = true
	}
	newJSON, _ := json.Marshal(card)
	curJSON, _ := json.Marshal(cur.Card)
	if string(newJSON) == string(curJSON) {
		a.saveRuntimeSettings(w, r, sc, recipients, cidrs)
		return
	}
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		ver, err := a.openDraft(ctx, tx, r, sc)
		if err != nil {
			return err
		}
		if ver.Checklist.ForcesSecure() {
			card.RequireSecureChannels = true
		}
		cardJSON, _ := json.Marshal(card)
		if _, err := tx.ExecContext(ctx, `UPDATE service_versions SET card = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			string(cardJSON), a.now(), viewerOf(r).User.ID, ver.ID); err != nil {
			return err
		}
		rj, _ := json.Marshal(nonNil(recipients))
		cj, _ := json.Marshal(nonNil(cidrs))
		// Before the first approval the draft's name, payment cap and secure
		// flag are the ones in force (test mode); afterwards only approval
		// moves them: services.name is what citizens read in their inbox and
		// in notice mails, and a draft's name is not reviewed yet.
		if _, err := tx.ExecContext(ctx, `UPDATE services SET name = CASE WHEN live_version_id IS NULL THEN ? ELSE name END,
			authorized_recipients = ?, authorized_cidrs = ?,
			max_payment_cents = CASE WHEN live_version_id IS NULL THEN ? ELSE max_payment_cents END,
			require_secure_channels = CASE WHEN live_version_id IS NULL THEN ? ELSE require_secure_channels END
			WHERE id = ? AND institution_id = ?`, card.Name, string(rj), string(cj), card.MaxPaymentCents, card.RequireSecureChannels,
			sc.Service.ID, sc.Service.InstitutionID); err != nil {
			return err
		}
		v := viewerOf(r)
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &sc.Service.InstitutionID,
			Action: "service.card", Target: card.Name + " (" + sc.Service.PublicID + ")", Detail: fmt.Sprintf("version %d", ver.VersionNo), ClientIP: a.Resolver.String(r)})
	})
	if errors.Is(err, errSubmitted) {
		a.flash(w, r, "error", "services.under_review")
	} else if err != nil {
		a.serverError(w, r, err)
		return
	} else {
		a.serviceChanged(sc.Service.ID)
		a.flash(w, r, "success", "card.saved")
	}
	http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s/card", sc.Service.InstitutionID, sc.Service.PublicID), http.StatusSeeOther)
}

// saveRuntimeSettings stores the authorized test fiscal codes and networks
// alone: they apply at once, need no review, and open no version.
func (a *App) saveRuntimeSettings(w http.ResponseWriter, r *http.Request, sc *serviceCtx, recipients, cidrs []string) {
	ctx := r.Context()
	back := fmt.Sprintf("/i/%d/services/%s/card", sc.Service.InstitutionID, sc.Service.PublicID)
	if strings.Join(recipients, "\n") == strings.Join(sc.Service.Recipients(), "\n") && strings.Join(cidrs, "\n") == strings.Join(sc.Service.CIDRs(), "\n") {
		a.flash(w, r, "info", "card.unchanged")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	rj, _ := json.Marshal(nonNil(recipients))
	cj, _ := json.Marshal(nonNil(cidrs))
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE services SET authorized_recipients = ?, authorized_cidrs = ? WHERE id = ? AND institution_id = ?`,
			string(rj), string(cj), sc.Service.ID, sc.Service.InstitutionID); err != nil {
			return err
		}
		v := viewerOf(r)
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &sc.Service.InstitutionID,
			Action: "service.settings", Target: sc.Service.Name + " (" + sc.Service.PublicID + ")",
			Detail: fmt.Sprintf("recipients %d, networks %d", len(recipients), len(cidrs)), ClientIP: a.Resolver.String(r)})
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.serviceChanged(sc.Service.ID)
	a.flash(w, r, "success", "card.settings_saved")
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// discardDraft drops the open draft of an approved service: the version
// in force stays, as if the edit had never started (audited).
func (a *App) discardDraft(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	back := fmt.Sprintf("/i/%d/services/%s", sc.Service.InstitutionID, sc.Service.PublicID)
	if sc.Live == nil || sc.Working == nil || sc.Working.State == "submitted" {
		a.flash(w, r, "info", "services.discard.nothing")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'superseded' WHERE id = ? AND state IN ('draft', 'rejected')`, sc.Working.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errChangedMeanwhile
		}
		if _, err := tx.ExecContext(ctx, `UPDATE services SET working_version_id = NULL, name = ? WHERE id = ? AND institution_id = ?`,
			sc.Live.Card.Name, sc.Service.ID, sc.Service.InstitutionID); err != nil {
			return err
		}
		return a.serviceEvent(ctx, tx, r, sc.Service, &sc.Working.ID, "discard", "")
	})
	if errors.Is(err, errChangedMeanwhile) {
		a.flash(w, r, "error", "services.changed_meanwhile")
	} else if err != nil {
		a.serverError(w, r, err)
		return
	} else {
		a.serviceChanged(sc.Service.ID)
		a.flash(w, r, "success", "services.discarded", sc.Live.VersionNo)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (a *App) serviceChanged(id int64) {
	if a.Hooks.ServiceChanged != nil {
		a.Hooks.ServiceChanged(id)
	}
}

// submitService sends the working version for review, or refuses with the
// list of what is missing.
func (a *App) submitService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	if sc.Working == nil || sc.Working.State == "submitted" {
		a.flash(w, r, "info", "services.nothing_to_submit")
		http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s", sc.Service.InstitutionID, sc.Service.PublicID), http.StatusSeeOther)
		return
	}
	ver := sc.Working
	var refusal []string
	for _, key := range ver.Card.Missing() {
		refusal = append(refusal, a.T(r, key))
	}
	for _, id := range ver.Checklist.Pending() {
		refusal = append(refusal, a.T(r, "missing.checklist_item", a.T(r, "checklist."+id+".title")))
	}
	dup, err := liveNameTaken(ctx, a.DB.R, sc.Service.InstitutionID, sc.Service.ID, ver.Card.Name)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if dup {
		refusal = append(refusal, a.T(r, "missing.unique_name", ver.Card.Name))
	}
	if len(refusal) > 0 {
		a.renderService(w, r, http.StatusUnprocessableEntity, sc, refusal)
		return
	}
	err = a.writeTx(ctx, func(tx *sqlx.Tx) error {
		// Submit exactly what was checked: if the card or checklist changed
		// since (another tab, a colleague), nothing happens and the person
		// looks again.
		res, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'submitted', submitted_at = ?, decision_reason = ''
			WHERE id = ? AND state IN ('draft', 'rejected') AND card = ? AND checklist = ?`, a.now(), ver.ID, ver.CardJSON, ver.ChecklistJSON)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errChangedMeanwhile
		}
		return a.serviceEvent(ctx, tx, r, sc.Service, &ver.ID, "submit", "")
	})
	if errors.Is(err, errChangedMeanwhile) {
		a.flash(w, r, "error", "services.changed_meanwhile")
		http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s", sc.Service.InstitutionID, sc.Service.PublicID), http.StatusSeeOther)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "services.submitted")
	http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s", sc.Service.InstitutionID, sc.Service.PublicID), http.StatusSeeOther)
}

func (a *App) withdrawService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	if sc.Working != nil && sc.Working.State == "submitted" {
		err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE service_versions SET state = 'draft', submitted_at = NULL WHERE id = ? AND state = 'submitted'`, sc.Working.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return nil
			}
			return a.serviceEvent(ctx, tx, r, sc.Service, &sc.Working.ID, "withdraw", "")
		})
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		a.flash(w, r, "success", "services.withdrawn")
	}
	http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s", sc.Service.InstitutionID, sc.Service.PublicID), http.StatusSeeOther)
}

// deleteService is soft and final: the row stays for the audit trail and
// message history, its keys are revoked at once.
func (a *App) deleteService(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	if r.FormValue("confirm_name") != sc.Service.Name {
		a.flash(w, r, "error", "services.delete.confirm_mismatch")
		http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s", sc.Service.InstitutionID, sc.Service.PublicID), http.StatusSeeOther)
		return
	}
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		now := a.now()
		if _, err := tx.ExecContext(ctx, `UPDATE services SET deleted_at = ? WHERE id = ? AND institution_id = ?`, now, sc.Service.ID, sc.Service.InstitutionID); err != nil {
			return err
		}
		if err := keys.RevokeAll(ctx, tx, sc.Service.ID, now); err != nil {
			return err
		}
		return a.serviceEvent(ctx, tx, r, sc.Service, nil, "delete", "")
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.serviceChanged(sc.Service.ID)
	a.flash(w, r, "success", "services.deleted", sc.Service.Name)
	http.Redirect(w, r, fmt.Sprintf("/i/%d/services", sc.Service.InstitutionID), http.StatusSeeOther)
}
