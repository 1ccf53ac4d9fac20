package portal

import (
	"net/http"

	"github.com/gorilla/mux"
)

// routes is the whole route table of the portal: every route names the
// object and action casbin must allow (inst/platform), or is public.
func (a *App) routes() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(a.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.renderError(w, r, http.StatusMethodNotAllowed, "error.method")
	})
	r.PathPrefix("/static/").Handler(a.staticHandler())
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })

	// Public.
	r.HandleFunc("/", a.home).Methods("GET")
	r.HandleFunc("/login", a.loginPage).Methods("GET")
	r.HandleFunc("/login", a.login).Methods("POST")
	r.HandleFunc("/register", a.registerPage).Methods("GET")
	r.HandleFunc("/register", a.register).Methods("POST")
	r.HandleFunc("/lang", a.setLanguage).Methods("POST")
	r.HandleFunc("/invite/{token}", a.invitationPage).Methods("GET")
	r.HandleFunc("/invite/{token}", a.acceptInvitation).Methods("POST")

	// Signed in, any user.
	r.Handle("/logout", a.signedIn(a.logout)).Methods("POST")
	r.Handle("/account", a.signedIn(a.accountPage)).Methods("GET")
	r.Handle("/account/password", a.signedIn(a.changePassword)).Methods("POST")
	r.Handle("/account/sessions/end", a.signedIn(a.logoutEverywhere)).Methods("POST")

	// One institution.
	i := r.PathPrefix("/i/{iid:[0-9]+}").Subrouter()
	i.Handle("/", a.inst("institution", "read", a.dashboard)).Methods("GET")
	i.Handle("/members", a.inst("members", "read", a.membersPage)).Methods("GET")
	i.Handle("/members/invite", a.inst("members", "invite", a.invite)).Methods("POST")
	i.Handle("/members/{uid:[0-9]+}/role", a.inst("members", "manage", a.changeRole)).Methods("POST")
	i.Handle("/members/{uid:[0-9]+}/remove", a.inst("members", "manage", a.removeMember)).Methods("POST")
	i.Handle("/invitations/{id:[0-9]+}/revoke", a.inst("members", "invite", a.revokeInvitation)).Methods("POST")
	i.Handle("/audit", a.inst("audit", "read", a.instAuditPage)).Methods("GET")
	i.Handle("/audit.csv", a.inst("audit", "read", a.instAuditCSV)).Methods("GET")

	// Admin console.
	r.Handle("/admin", a.platform("admin", "read", a.adminHome)).Methods("GET")
	r.Handle("/admin/institutions", a.platform("admin", "read", a.adminInstitutions)).Methods("GET")
	r.Handle("/admin/institutions/{iid:[0-9]+}/suspend", a.platform("admin", "suspend", a.suspendInstitution(true))).Methods("POST")
	r.Handle("/admin/institutions/{iid:[0-9]+}/reactivate", a.platform("admin", "suspend", a.suspendInstitution(false))).Methods("POST")
	r.Handle("/admin/audit", a.platform("admin", "read", a.adminAuditPage)).Methods("GET")
	r.Handle("/admin/audit.csv", a.platform("admin", "read", a.adminAuditCSV)).Methods("GET")

	for _, add := range featureRoutes {
		add(a, r, i)
	}
	return r
}

// featureRoutes lets a feature file (services, keys, reviews) add its routes
// from its own init, without editing this table: each function receives the
// root router and the /i/{iid} subrouter, and guards every route with
// a.inst or a.platform like the routes above.
var featureRoutes []func(a *App, root, inst *mux.Router)
