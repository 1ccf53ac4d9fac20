package portal

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// Institution settings: an institution's admins keep its name and PEC up
// to date (a merger renames a body, a PEC changes provider). The fiscal
// code identifies the institution and is not editable here: a wrong one
// means a new registration, checked by platform admins.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		inst.Handle("/settings", a.inst("institution", "update", a.settingsPage)).Methods("GET")
		inst.Handle("/settings", a.inst("institution", "update", a.saveSettings)).Methods("POST")
	})
}

func (a *App) settingsPage(w http.ResponseWriter, r *http.Request) {
	in := instCtxOf(r).Inst
	f := emptyForm()
	f.Values.Set("inst_name", in.Name)
	f.Values.Set("inst_pec", in.PEC)
	a.render(w, r, http.StatusOK, "institution_settings", &Page{Title: a.T(r, "settings.title"), Section: "settings", Form: f})
}

func (a *App) saveSettings(w http.ResponseWriter, r *http.Request) {
	ctx, in, v := r.Context(), instCtxOf(r).Inst, viewerOf(r)
	f := newForm(r)
	name, pec := f.Get("inst_name"), strings.ToLower(f.Get("inst_pec"))
	a.checkInstitutionFields(r, f, name, pec)
	if !f.Valid() {
		a.render(w, r, http.StatusUnprocessableEntity, "institution_settings", &Page{Title: a.T(r, "settings.title"), Section: "settings", Form: f})
		return
	}
	var changed []string
	if name != in.Name {
		changed = append(changed, "name: "+in.Name+" → "+name)
	}
	if pec != in.PEC {
		changed = append(changed, "pec: "+in.PEC+" → "+pec)
	}
	if len(changed) > 0 {
		err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE institutions SET name = ?, pec = ? WHERE id = ?`, name, pec, in.ID); err != nil {
				return err
			}
			return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &in.ID,
				Action: "institution.update", Target: in.FiscalCode, Detail: strings.Join(changed, "; "), ClientIP: a.Resolver.String(r)})
		})
		if err != nil {
			a.serverError(w, r, err)
			return
		}
	}
	a.flash(w, r, "success", "settings.saved")
	http.Redirect(w, r, fmt.Sprintf("/i/%d/settings", in.ID), http.StatusSeeOther)
}
