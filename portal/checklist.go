package portal

import (
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
	Form   *Form // values and errors of this item's form
	Checks map[string]bool
}

func (a *App) checklistPage(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	a.renderChecklist(w, r, http.StatusOK, sc, "", nil)
}

// renderChecklist shows every item; failedItem's form keeps what was typed
// and its errors.
func (a *App) renderChecklist(w http.ResponseWriter, r *http.Request, status int, sc *serviceCtx, failedItem string, failed *Form) {
	sv, err := a.serviceView(r, sc)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	cur := sc.Current()
	var items []checklistItemView
	for _, def := range servicecard.Items {
		st := cur.Checklist.Get(def.ID)
		f := emptyForm()
		f.Values.Set("state", st.State)
		f.Values.Set("justification", st.Justification)
		f.Values.Set("evidence", st.Evidence)
		for k, v := range st.Fields {
			f.Values.Set("f_"+k, v)
		}
		if def.ID == failedItem && failed != nil {
			f = failed
		}
		checks := map[string]bool{}
		for _, fld := range def.Fields {
			if fld.Kind == "checks" {
				for _, v := range strings.Split(f.Value("f_"+fld.Name), ",") {
					checks[v] = true
				}
			}
		}
		items = append(items, checklistItemView{Def: def, State: st, Form: f, Checks: checks})
	}
	a.render(w, r, status, "service_checklist", &Page{Title: a.T(r, "checklist.title") + " · " + sc.Service.Name, Section: "services",
		Data: map[string]any{"S": sv, "Tab": "checklist", "Items": items, "Failed": failedItem}})
}

// saveChecklistItem records one answer, who gave it and when, in the
// version being edited (a new draft if the service is approved).
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
	st := servicecard.ItemState{State: f.Get("state"), Justification: f.Get("justification"), Evidence: f.Get("evidence"), Fields: map[string]string{}}
	for _, fld := range def.Fields {
		v := f.Get("f_" + fld.Name)
		if fld.Kind == "checks" {
			vals := f.Values["f_"+fld.Name]
			sort.Strings(vals)
			v = strings.Join(vals, ",")
			f.Values.Set("f_"+fld.Name, v)
		}
		if v != "" {
			st.Fields[fld.Name] = v
		}
	}
	for field, p := range servicecard.ValidateItem(def, st, &sc.Current().Card) {
		f.Fail(field, a.T(r, p.Key, p.Args...))
	}
	if sc.Working != nil && sc.Working.State == "submitted" {
		f.Fail("state", a.T(r, "services.under_review"))
	}
	if !f.Valid() {
		a.renderChecklist(w, r, http.StatusUnprocessableEntity, sc, def.ID, f)
		return
	}
	v := viewerOf(r)
	st.ChangedBy, st.ChangedByName, st.ChangedAt = v.User.ID, v.User.Name, a.now()
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		ver, err := a.openDraft(ctx, tx, r, sc)
		if err != nil {
			return err
		}
		ver.Checklist[def.ID] = st
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
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &sc.Service.InstitutionID,
			Action: "service.checklist", Target: sc.Service.Name + " (" + sc.Service.PublicID + ")",
			Detail: fmt.Sprintf("version %d: %s → %s", ver.VersionNo, def.ID, st.State), ClientIP: a.Resolver.String(r)})
	})
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
