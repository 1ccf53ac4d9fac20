package portal

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway"
	"sportello/gateway/keys"
)

// The keys page of a service: its test and live key pairs (secrets shown
// once), rotation and revocation, this week's test quota and a chart of
// API requests per day.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		inst.Handle("/services/{sid}/keys", a.inst("keys", "read", a.keysPage)).Methods("GET")
		inst.Handle("/services/{sid}/keys/regenerate", a.inst("keys", "manage", a.regenerateKey)).Methods("POST")
		inst.Handle("/services/{sid}/keys/revoke", a.inst("keys", "manage", a.revokeKey)).Methods("POST")
		inst.Handle("/services/{sid}/keys/live", a.inst("keys", "manage", a.createLiveKeys)).Methods("POST")
	})
}

// keySlot is one slot of the page: the active key in it, if any.
type keySlot struct {
	Mode keys.Mode
	Slot keys.Slot
	Key  *keys.Info // nil: no active key (revoked or never issued)
}

// keysView is the keys page's data.
type keysView struct {
	S        *serviceCtx
	Tab      string
	Secrets  []secretView
	Test     []keySlot
	Live     []keySlot
	HasLive  bool
	Approved bool
	Quota    quotaView
	Chart    *usageChart
}

type secretView struct{ Name, Value string }

type quotaView struct {
	Used, Limit int
	Percent     int
	Resets      time.Time
}

func (a *App) keysPage(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	v, err := a.keysView(r.Context(), sc)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	// Secrets stashed by the action that created them, in a stable order.
	secrets := a.popSecrets(w, r, sc.Service.ID)
	for _, name := range []string{"test_primary", "test_secondary", "live_primary", "live_secondary"} {
		if s, ok := secrets[name]; ok {
			v.Secrets = append(v.Secrets, secretView{Name: name, Value: s})
		}
	}
	a.render(w, r, http.StatusOK, "service_keys", &Page{Title: a.T(r, "keys.title") + " · " + sc.Service.Name, Section: "services", Data: v})
}

func (a *App) keysView(ctx context.Context, sc *serviceCtx) (*keysView, error) {
	s := sc.Service
	active, err := keys.Active(ctx, a.DB.R, s.ID)
	if err != nil {
		return nil, err
	}
	v := &keysView{S: sc, Tab: "keys", Approved: s.InProduction()}
	for _, m := range []keys.Mode{keys.Test, keys.Live} {
		for _, sl := range []keys.Slot{keys.Primary, keys.Secondary} {
			ks := keySlot{Mode: m, Slot: sl}
			for i := range active {
				if active[i].Mode == m && active[i].Slot == sl {
					ks.Key = &active[i]
				}
			}
			if m == keys.Test {
				v.Test = append(v.Test, ks)
			} else {
				v.Live = append(v.Live, ks)
				v.HasLive = v.HasLive || ks.Key != nil
			}
		}
	}
	now := a.now()
	week, next := gateway.WeekOf(now)
	v.Quota = quotaView{Limit: gateway.DefaultWeeklyQuota, Resets: next}
	if err := a.DB.R.GetContext(ctx, &v.Quota.Used, `SELECT COALESCE(SUM(used), 0) FROM quota_usage WHERE service_id = ? AND week_start = ?`, s.ID, week); err != nil {
		return nil, err
	}
	v.Quota.Percent = min(100, v.Quota.Used*100/max(1, v.Quota.Limit))
	if v.Chart, err = a.usageChart(ctx, s.ID, now); err != nil {
		return nil, err
	}
	return v, nil
}

// keyForm reads and checks the mode and slot of a key action.
func keyForm(r *http.Request) (keys.Mode, keys.Slot, bool) {
	m, s := keys.Mode(r.PostFormValue("mode")), keys.Slot(r.PostFormValue("slot"))
	return m, s, m.Valid() && s.Valid()
}

func (a *App) keyAudit(ctx context.Context, tx *sqlx.Tx, r *http.Request, s *Service, action, detail string) error {
	v := viewerOf(r)
	return db.Audit(ctx, tx, db.AuditEvent{At: a.now(), ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &s.InstitutionID,
		Action: action, Target: s.Name + " (" + s.PublicID + ")", Detail: detail, ClientIP: a.Resolver.String(r)})
}

func (a *App) keysURL(s *Service) string {
	return fmt.Sprintf("/i/%d/services/%s/keys", s.InstitutionID, s.PublicID)
}

// regenerateKey replaces one key: the other key of the pair keeps working,
// so integrators rotate without downtime.
func (a *App) regenerateKey(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	s := sc.Service
	m, sl, ok := keyForm(r)
	if !ok || (m == keys.Live && !s.InProduction()) {
		a.renderError(w, r, http.StatusBadRequest, "keys.error.bad_request")
		return
	}
	ctx := r.Context()
	var key string
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if key, err = keys.Issue(ctx, tx, s.ID, m, sl, viewerOf(r).User.ID); err != nil {
			return err
		}
		return a.keyAudit(ctx, tx, r, s, "key.regenerate", string(m)+" "+string(sl)+" "+keys.Display(key))
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	// The old key must stop working now, not when the cache expires.
	a.serviceChanged(s.ID)
	a.stashSecret(w, r, s.ID, string(m)+"_"+string(sl), key)
	a.flash(w, r, "success", "keys.flash.regenerated")
	http.Redirect(w, r, a.keysURL(s), http.StatusSeeOther)
}

// revokeKey ends one key at once (a leaked key), leaving its slot empty
// until it is regenerated.
func (a *App) revokeKey(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	s := sc.Service
	m, sl, ok := keyForm(r)
	if !ok {
		a.renderError(w, r, http.StatusBadRequest, "keys.error.bad_request")
		return
	}
	ctx := r.Context()
	var revoked bool
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if revoked, err = keys.Revoke(ctx, tx, s.ID, m, sl, a.now()); err != nil || !revoked {
			return err
		}
		return a.keyAudit(ctx, tx, r, s, "key.revoke", string(m)+" "+string(sl))
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.serviceChanged(s.ID)
	if revoked {
		a.flash(w, r, "success", "keys.flash.revoked")
	} else {
		a.flash(w, r, "info", "keys.flash.none")
	}
	http.Redirect(w, r, a.keysURL(s), http.StatusSeeOther)
}

// createLiveKeys issues the live pair of an approved service that has none.
func (a *App) createLiveKeys(w http.ResponseWriter, r *http.Request) {
	sc, ok := a.serviceOf(w, r)
	if !ok {
		return
	}
	s := sc.Service
	if !s.InProduction() {
		a.renderError(w, r, http.StatusConflict, "keys.error.not_approved")
		return
	}
	if s.SuspendedAt != nil {
		a.renderError(w, r, http.StatusConflict, "keys.live.suspended")
		return
	}
	ctx := r.Context()
	var pair keys.Pair
	var existed bool
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT COUNT(*) FROM api_keys WHERE service_id = ? AND mode = 'live' AND revoked_at IS NULL`, s.ID); err != nil {
			return err
		}
		if existed = n > 0; existed {
			return nil
		}
		var err error
		if pair, err = keys.IssuePair(ctx, tx, s.ID, keys.Live, viewerOf(r).User.ID); err != nil {
			return err
		}
		return a.keyAudit(ctx, tx, r, s, "key.create_live", keys.Display(pair.Primary)+" "+keys.Display(pair.Secondary))
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if existed {
		// A second click (or a second tab): the keys exist and were shown once.
		a.flash(w, r, "info", "keys.flash.live_exist")
		http.Redirect(w, r, a.keysURL(s), http.StatusSeeOther)
		return
	}
	a.serviceChanged(s.ID)
	a.stashSecret(w, r, s.ID, "live_primary", pair.Primary)
	a.stashSecret(w, r, s.ID, "live_secondary", pair.Secondary)
	a.flash(w, r, "success", "keys.flash.live_created")
	http.Redirect(w, r, a.keysURL(s), http.StatusSeeOther)
}
