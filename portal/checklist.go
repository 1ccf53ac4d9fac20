package portal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/portal/servicecard"
)

// checklistItemView is one item as the checklist page shows it.
type checklistItemView struct {
	Def    servicecard.ItemDef
	State  servicecard.ItemState
	Form   *Form // values and errors of this item (field names without the item prefix)
	Checks map[string]bool
	// Shown is the digest of the answer the page was built with: the
	// save counts the item as changed only if what comes back differs
	// from it (see saveChecklist).
	Shown string
	// Answers are the extra fields in words (review page).
	Answers []labelValue
}

func (a *App) checklistPage(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	a.renderChecklist(w, r, http.StatusOK, sc, nil)
}

// storedItemForm fills an item's form from its recorded answer.
func storedItemForm(st servicecard.ItemState) *Form {
	f := emptyForm()
	f.Values.Set("state", st.State)
	f.Values.Set("justification", st.Justification)
	f.Values.Set("evidence", st.Evidence)
	for k, v := range st.Fields {
		f.Values.Set("f_"+k, v)
	}
	return f
}

// checklistFieldOrder is the order of an item's inputs on the page, for
// its errors in the summary.
func checklistFieldOrder(def servicecard.ItemDef) []string {
	order := []string{"state"}
	for _, fld := range def.Fields {
		order = append(order, "f_"+fld.Name)
	}
	return append(order, "justification", "evidence")
}

// renderChecklist shows every item; forms holds, by item id, what was typed
// and its errors (items not in it show their recorded answer).
func (a *App) renderChecklist(w http.ResponseWriter, r *http.Request, status int, sc *serviceCtx, forms map[string]*Form) {
	sv, err := a.serviceView(r, sc)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	cur := sc.Current()
	var items []checklistItemView
	var errs []FieldError
	for _, def := range servicecard.Items {
		st := cur.Checklist.Get(def.ID)
		f := storedItemForm(st)
		shown := answerDigest(st)
		if typed, ok := forms[def.ID]; ok && typed != nil {
			f = typed
			if d := typed.Values.Get("shown"); d != "" {
				shown = d // a page coming back with errors still shows the first answer's changes
			}
		}
		checks := map[string]bool{}
		for _, fld := range def.Fields {
			if fld.Kind == "checks" {
				for _, v := range strings.Split(f.Value("f_"+fld.Name), ",") {
					checks[v] = true
				}
			}
		}
		title := a.T(r, "checklist."+def.ID+".title")
		for _, fe := range f.ErrorList(checklistFieldOrder(def)...) {
			errs = append(errs, FieldError{Field: def.ID + "-" + fe.Field, Message: title + ": " + fe.Message})
		}
		items = append(items, checklistItemView{Def: def, State: st, Form: f, Checks: checks, Shown: shown})
	}
	a.render(w, r, status, "service_checklist", &Page{Title: a.T(r, "checklist.title") + " · " + sc.Service.Name, Section: "services",
		Data: map[string]any{"S": sv, "Tab": "checklist", "Items": items, "Errors": errs}})
}

// itemAnswer reads one item's answer from a form whose fields carry the
// item's names without prefix (state, f_basis, justification…); checks
// are joined sorted, and written back so the page shows them.
func itemAnswer(def servicecard.ItemDef, f *Form) servicecard.ItemState {
	st := servicecard.ItemState{State: f.Get("state"), Justification: f.Get("justification"), Evidence: f.Get("evidence"), Fields: map[string]string{}}
	for _, fld := range def.Fields {
		v := f.Get("f_" + fld.Name)
		if fld.Kind == "checks" {
			vals := append([]string(nil), f.Values["f_"+fld.Name]...)
			sort.Strings(vals)
			v = strings.Join(vals, ",")
			f.Values.Set("f_"+fld.Name, v)
		}
		if v != "" {
			st.Fields[fld.Name] = v
		}
	}
	return st
}

// sameAnswer reports whether a new answer says what the recorded one says.
// answerDigest identifies an answer (state, extra fields, justification,
// evidence; not who gave it), for the checklist page's "shown" fields.
func answerDigest(st servicecard.ItemState) string {
	fields := st.Fields
	if fields == nil {
		fields = map[string]string{}
	}
	b, _ := json.Marshal(struct {
		S, J, E string
		F       map[string]string
	}{st.State, st.Justification, st.Evidence, fields})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// saveChecklist records, from the one form of the checklist page, every
// item whose answer changed. Nothing is stored unless every changed item
// is valid: the page comes back with everything typed and each error next
// to its field. Unchanged items keep who answered them and when; with no
// change at all no version is opened.
func (a *App) saveChecklist(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	back := fmt.Sprintf("/i/%d/services/%s/checklist", sc.Service.InstitutionID, sc.Service.PublicID)
	if sc.Working != nil && sc.Working.State == "submitted" {
		a.flash(w, r, "error", "services.under_review")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	posted := newForm(r)
	cur := sc.Current()
	forms := map[string]*Form{}
	changed := map[string]servicecard.ItemState{}
	valid := true
	for _, def := range servicecard.Items {
		f := emptyForm()
		prefix := def.ID + "."
		for k, vs := range posted.Values {
			if name, ok := strings.CutPrefix(k, prefix); ok {
				f.Values[name] = vs
			}
		}
		if _, ok := f.Values["state"]; !ok {
			continue // the item was not on the page that was sent
		}
		st := itemAnswer(def, f)
		forms[def.ID] = f
		// Changed means changed by this person: what comes back differs
		// from what their page showed. Comparing with the answer stored
		// now would take an untouched point of an older page for a change
		// and put its old answer back over a colleague's newer one.
		if shown := f.Values.Get("shown"); shown != "" {
			if answerDigest(st) == shown {
				continue
			}
		} else if answerDigest(st) == answerDigest(cur.Checklist.Get(def.ID)) {
			continue
		}
		for field, p := range servicecard.ValidateItem(def, st, &cur.Card) {
			f.Fail(field, a.T(r, p.Key, p.Args...))
		}
		valid = valid && f.Valid()
		changed[def.ID] = st
	}
	if !valid {
		a.renderChecklist(w, r, http.StatusUnprocessableEntity, sc, forms)
		return
	}
	if len(changed) == 0 {
		a.flash(w, r, "info", "checklist.unchanged")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	err := a.storeChecklist(ctx, r, sc, changed)
	if errors.Is(err, errSubmitted) {
		a.flash(w, r, "error", "services.under_review")
	} else if err != nil {
		a.serverError(w, r, err)
		return
	} else {
		a.serviceChanged(sc.Service.ID)
		a.flash(w, r, "success", "checklist.saved_n", len(changed))
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// storeChecklist writes changed answers into the version being edited (a
// new draft if the service is approved), one audit event per item.
func (a *App) storeChecklist(ctx context.Context, r *http.Request, sc *serviceCtx, changed map[string]servicecard.ItemState) error {
	v := viewerOf(r)
	return a.writeTx(ctx, func(tx *sqlx.Tx) error {
		ver, err := a.openDraft(ctx, tx, r, sc)
		if err != nil {
			return err
		}
		for _, def := range servicecard.Items {
			st, ok := changed[def.ID]
			if !ok {
				continue
			}
			st.ChangedBy, st.ChangedByName, st.ChangedAt = v.User.ID, v.User.Name, a.now()
			ver.Checklist[def.ID] = st
		}
		clJSON, _ := json.Marshal(ver.Checklist)
		card := ver.Card
		if ver.Checklist.ForcesSecure() && !card.RequireSecureChannels {
			card.RequireSecureChannels = true
			if sc.Live == nil {
				if _, err := tx.ExecContext(ctx, `UPDATE services SET require_secure_channels = 1 WHERE id = ?`, sc.Service.ID); err != nil {
					return err
				}
			}
		}
		cardJSON, _ := json.Marshal(card)
		if _, err := tx.ExecContext(ctx, `UPDATE service_versions SET checklist = ?, card = ?, updated_at = ?, updated_by = ? WHERE id = ?`,
			string(clJSON), string(cardJSON), a.now(), v.User.ID, ver.ID); err != nil {
			return err
		}
		for _, def := range servicecard.Items {
			st, ok := changed[def.ID]
			if !ok {
				continue
			}
			if err := db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &sc.Service.InstitutionID,
				Action: "service.checklist", Target: sc.Service.Name + " (" + sc.Service.PublicID + ")",
				Detail: fmt.Sprintf("version %d: %s → %s", ver.VersionNo, def.ID, st.State), ClientIP: a.Resolver.String(r)}); err != nil {
				return err
			}
		}
		return nil
	})
}

// saveChecklistItem records one item's answer (the form's fields without
// item prefix): kept for scripts and older pages; the page sends
// saveChecklist's single form.
func (a *App) saveChecklistItem(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	def, ok := servicecard.ItemByID(mux.Vars(r)["item"])
	if !ok {
		a.notFound(w, r)
		return
	}
	f := newForm(r)
	st := itemAnswer(def, f)
	for field, p := range servicecard.ValidateItem(def, st, &sc.Current().Card) {
		f.Fail(field, a.T(r, p.Key, p.Args...))
	}
	if sc.Working != nil && sc.Working.State == "submitted" {
		f.Fail("state", a.T(r, "services.under_review"))
	}
	if !f.Valid() {
		a.renderChecklist(w, r, http.StatusUnprocessableEntity, sc, map[string]*Form{def.ID: f})
		return
	}
	err := a.storeChecklist(ctx, r, sc, map[string]servicecard.ItemState{def.ID: st})
	if errors.Is(err, errSubmitted) {
		a.flash(w, r, "error", "services.under_review")
	} else if err != nil {
		a.serverError(w, r, err)
		return
	} else {
		a.serviceChanged(sc.Service.ID)
		a.flash(w, r, "success", "checklist.saved", a.T(r, "checklist."+def.ID+".title"))
	}
	http.Redirect(w, r, fmt.Sprintf("/i/%d/services/%s/checklist#item-%s", sc.Service.InstitutionID, sc.Service.PublicID, def.ID), http.StatusSeeOther)
}
