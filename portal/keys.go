package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway"
	"sportello/gateway/keys"
)

// The keys page of a service: its test and live key pairs (secrets shown
// once), rotation and revocation, suspension of one key by a platform
// admin, this week's test quota and a chart of API requests per day.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		inst.Handle("/services/{sid}/keys", a.inst("keys", "read", a.keysPage)).Methods("GET")
		inst.Handle("/services/{sid}/keys/regenerate", a.inst("keys", "manage", a.regenerateKey)).Methods("POST")
		inst.Handle("/services/{sid}/keys/revoke", a.inst("keys", "manage", a.revokeKey)).Methods("POST")
		inst.Handle("/services/{sid}/keys/live", a.inst("keys", "manage", a.createLiveKeys)).Methods("POST")
		// keys/suspend: platform admins only (policies/policy.csv grants
		// it to no institution role), and so is reactivation.
		inst.Handle("/services/{sid}/keys/suspend", a.inst("keys", "suspend", a.suspendKey(true))).Methods("POST")
		inst.Handle("/services/{sid}/keys/reactivate", a.inst("keys", "suspend", a.suspendKey(false))).Methods("POST")
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
	// HeldErr is the key whose suspension was refused for want of a
	// reason (0: none), its row showing the error.
	HeldErr int64
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
	a.renderKeys(w, r, http.StatusOK, sc, v)
}

func (a *App) renderKeys(w http.ResponseWriter, r *http.Request, status int, sc *serviceCtx, v *keysView) {
	p := &Page{Title: a.T(r, "keys.title") + " · " + sc.Service.Name, Section: "services", Data: v}
	if v.HeldErr != 0 {
		p.Title = a.T(r, "form.errors_title") + " · " + p.Title
	}
	a.render(w, r, status, "service_keys", p)
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
		if err := a.notHeld(ctx, tx, r, s, m, sl); err != nil {
			return err
		}
		var err error
		if key, err = keys.Issue(ctx, tx, s.ID, m, sl, viewerOf(r).User.ID); err != nil {
			return err
		}
		return a.keyAudit(ctx, tx, r, s, "key.regenerate", string(m)+" "+string(sl)+" "+keys.Display(key))
	})
	if errors.Is(err, errKeyHeld) {
		a.renderError(w, r, http.StatusConflict, "keys.error.held")
		return
	} else if err != nil {
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
		if err := a.notHeld(ctx, tx, r, s, m, sl); err != nil {
			return err
		}
		var err error
		if revoked, err = keys.Revoke(ctx, tx, s.ID, m, sl, a.now()); err != nil || !revoked {
			return err
		}
		return a.keyAudit(ctx, tx, r, s, "key.revoke", string(m)+" "+string(sl))
	})
	if errors.Is(err, errKeyHeld) {
		a.renderError(w, r, http.StatusConflict, "keys.error.held")
		return
	} else if err != nil {
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

// errKeyHeld: the slot's key is suspended, and the viewer may not lift it.
var errKeyHeld = errors.New("key suspended by the platform")

// notHeld refuses to regenerate or revoke a suspended key for whoever may
// not reactivate it: either would leave the institution a working key in
// the slot the platform admins held.
func (a *App) notHeld(ctx context.Context, tx *sqlx.Tx, r *http.Request, s *Service, m keys.Mode, sl keys.Slot) error {
	if a.Enforcer.Allowed(viewerOf(r).User.ID, instDomain(s.InstitutionID), "keys", "suspend") {
		return nil
	}
	held, err := keys.SlotSuspended(ctx, tx, s.ID, m, sl)
	if err == nil && held {
		err = errKeyHeld
	}
	return err
}

// suspendKey suspends (with a reason, which the institution reads on this
// page and in a mail to its admins) or reactivates one key of a service.
// The key stays the same: the integrator changes nothing, and the gateway
// answers its requests with a 403 key_suspended meanwhile, from now on
// (the cache is told), not a 401 that would say the key is unknown.
func (a *App) suspendKey(suspend bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sc, ok := a.serviceOf(w, r)
		if !ok {
			return
		}
		s := sc.Service
		id, err := strconv.ParseInt(r.PostFormValue("key"), 10, 64)
		if err != nil {
			a.renderError(w, r, http.StatusBadRequest, "keys.error.bad_request")
			return
		}
		ctx := r.Context()
		action, done := "key.reactivate", "keys.flash.reactivated"
		var reason string
		if suspend {
			action, done = "key.suspend", "keys.flash.suspended"
			if reason = truncate(plainLine(r.PostFormValue("reason")), 500); reason == "" {
				v, err := a.keysView(ctx, sc)
				if err != nil {
					a.serverError(w, r, err)
					return
				}
				v.HeldErr = id
				a.renderKeys(w, r, http.StatusUnprocessableEntity, sc, v)
				return
			}
		}
		var k *keys.Info
		err = a.writeTx(ctx, func(tx *sqlx.Tx) error {
			var err error
			if suspend {
				k, err = keys.Suspend(ctx, tx, s.ID, id, reason, a.now())
			} else {
				k, err = keys.Reactivate(ctx, tx, s.ID, id)
			}
			if err != nil {
				return err
			}
			if k == nil { // a second click, two admins at once, a revoked key
				return errNoChange
			}
			detail := string(k.Mode) + " " + string(k.Slot) + " " + k.DisplayPrefix
			if suspend {
				detail += ": " + reason
			}
			if err := a.keyAudit(ctx, tx, r, s, action, detail); err != nil {
				return err
			}
			return a.queueKeyMail(ctx, tx, s, k, suspend, reason)
		})
		if errors.Is(err, errNoChange) {
			a.flash(w, r, "info", done+".already")
			http.Redirect(w, r, a.keysURL(s), http.StatusSeeOther)
			return
		} else if err != nil {
			a.serverError(w, r, err)
			return
		}
		a.serviceChanged(s.ID)
		a.flash(w, r, "success", done, a.T(r, "keys.slot."+string(k.Mode)+"_"+string(k.Slot)))
		http.Redirect(w, r, a.keysURL(s), http.StatusSeeOther)
	}
}
