package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"sportello/db"
	"sportello/policies"
)

// instContext is the institution a /i/{iid}/ request acts on.
type instContext struct {
	Inst *Institution
	Role string // membership role; "" for a platform admin who is not a member
}

func instCtxOf(r *http.Request) *instContext {
	ic, _ := r.Context().Value(instKey).(*instContext)
	return ic
}

func instDomain(id int64) string { return policies.Institution(id) }

// signedIn requires a signed-in viewer, sending others to the login page.
func (a *App) signedIn(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r)
		if v == nil {
			a.toLogin(w, r)
			return
		}
		// The users row, read for this request, is the truth about who is
		// a platform admin; casbin's copy follows it. "sportello admin
		// create" writes the row from another process while the server
		// runs, and its admin got 403 until a restart.
		if err := a.Enforcer.SetPlatformAdmin(v.User.ID, v.User.IsPlatformAdmin); err != nil {
			a.serverError(w, r, err)
			return
		}
		h(w, r)
	})
}

func (a *App) toLogin(w http.ResponseWriter, r *http.Request) {
	next := ""
	if r.Method == http.MethodGet {
		next = "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, "/login"+next, http.StatusSeeOther)
}

// inst guards a route under /i/{iid}/: the viewer must be signed in, a
// member of the institution (or a platform admin), the institution must be
// active (platform admins may still look), and casbin must allow obj/act.
// A non-member gets 404, so institution ids cannot be probed.
func (a *App) inst(obj, act string, h http.HandlerFunc) http.Handler {
	return a.signedIn(func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r)
		iid, err := strconv.ParseInt(mux.Vars(r)["iid"], 10, 64)
		if err != nil {
			a.notFound(w, r)
			return
		}
		inst, err := a.institutionByID(r.Context(), iid)
		if errors.Is(err, db.ErrNotFound) {
			a.notFound(w, r)
			return
		} else if err != nil {
			a.serverError(w, r, err)
			return
		}
		role, err := a.roleIn(r.Context(), v.User.ID, iid)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		if role == "" && !v.User.IsPlatformAdmin {
			a.notFound(w, r)
			return
		}
		ctx := context.WithValue(r.Context(), instKey, &instContext{Inst: inst, Role: role})
		r = r.WithContext(ctx)
		if inst.Suspended() && !v.User.IsPlatformAdmin {
			a.renderError(w, r, http.StatusForbidden, "error.suspended")
			return
		}
		if !a.Enforcer.Allowed(v.User.ID, instDomain(iid), obj, act) {
			a.forbidden(w, r)
			return
		}
		h(w, r)
	})
}

// platform guards an admin-console route.
func (a *App) platform(obj, act string, h http.HandlerFunc) http.Handler {
	return a.signedIn(func(w http.ResponseWriter, r *http.Request) {
		if !a.Enforcer.Allowed(viewerOf(r).User.ID, policies.PlatformDomain, obj, act) {
			a.forbidden(w, r)
			return
		}
		h(w, r)
	})
}

// instID is the institution of the current /i/ request.
func instID(r *http.Request) int64 { return instCtxOf(r).Inst.ID }
