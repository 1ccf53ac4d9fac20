// Package citizen is the citizen side of Sportello: the /citizen/v1 JSON API
// that an app backend calls on behalf of a signed-in citizen (profile,
// per-service preferences, inbox, export, account deletion) and, in
// development mode, a tiny web app with a test login to try it in a browser.
package citizen

import (
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"sportello/db"
	"sportello/messaging/fiscalcode"
	"sportello/templates/i18n"
)

// Config is what the citizen API needs.
type Config struct {
	DB       *db.DB
	Logger   *slog.Logger
	Now      func() time.Time
	TokenKey []byte // signs development tokens (a key for this purpose only)
	// EmailKey signs e-mail validation links: a key of its own, used for
	// nothing else (not TokenKey, not the push webhook key).
	EmailKey []byte
	Dev      bool // serve the test login page and the citizen web app
	Catalog  *i18n.Catalog
	// Identity overrides the development tokens (a SPID/CIE adapter).
	Identity Identity
	// Secure marks the web app's cookie Secure (https deployments).
	Secure bool
	// BaseURL is the public address, for the e-mail validation link.
	BaseURL string
}

// API serves /citizen/.
type API struct {
	cfg   Config
	db    *db.DB
	log   *slog.Logger
	cat   *i18n.Catalog
	id    Identity
	mux   *http.ServeMux
	pages map[string]*template.Template // lang → page set
}

// New builds the handler.
func New(cfg Config) (*API, error) {
	if cfg.DB == nil {
		return nil, errors.New("citizen: DB is required")
	}
	if len(cfg.TokenKey) < 16 && cfg.Identity == nil {
		return nil, errors.New("citizen: TokenKey of at least 16 bytes is required")
	}
	if len(cfg.EmailKey) < 16 {
		return nil, errors.New("citizen: EmailKey of at least 16 bytes is required")
	}
	if hmac.Equal(cfg.EmailKey, cfg.TokenKey) {
		return nil, errors.New("citizen: EmailKey and TokenKey must be different keys")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Catalog == nil {
		c, err := i18n.Load()
		if err != nil {
			return nil, err
		}
		cfg.Catalog = c
	}
	a := &API{cfg: cfg, db: cfg.DB, log: cfg.Logger, cat: cfg.Catalog, id: cfg.Identity, mux: http.NewServeMux()}
	if a.id == nil {
		a.id = DevTokens{Key: cfg.TokenKey, Now: cfg.Now}
	}
	a.routes()
	if cfg.Dev {
		if err := a.webRoutes(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Handler serves everything under /citizen/. A handler that panics (a
// bug) gets a 500 — a problem on the API, a short page on the app's pages —
// instead of net/http's dropped connection, and a log line with its stack.
// If the answer had already started, it cannot be changed: the connection
// is cut, so the client sees a broken answer, not a 200 with an error
// appended.
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &startWatch{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("citizen api: handler panicked", "method", r.Method, "route", r.Pattern,
				"answer_started", sw.started, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			switch {
			case sw.started:
				panic(http.ErrAbortHandler)
			case strings.HasPrefix(r.URL.Path, "/citizen/v1/"):
				a.problem(w, r, http.StatusInternalServerError, "citizen.error.internal")
			default:
				http.Error(w, a.cat.T(webLang(r), "citizen.error.internal"), http.StatusInternalServerError)
			}
		}()
		// Every answer holds a citizen's data (or says there is none):
		// no cache keeps it, no browser guesses another type than the one
		// declared. The app's pages add their CSP on top (web.go).
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		a.mux.ServeHTTP(sw, r)
	})
}

// startWatch notes whether a handler has started its answer.
type startWatch struct {
	http.ResponseWriter
	started bool
}

func (s *startWatch) WriteHeader(code int) {
	s.started = true
	s.ResponseWriter.WriteHeader(code)
}

func (s *startWatch) Write(b []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *startWatch) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (a *API) now() time.Time { return a.cfg.Now().UTC() }

func (a *API) routes() {
	h := func(pattern string, f func(w http.ResponseWriter, r *http.Request, fc string)) {
		a.mux.Handle(pattern, a.authed(f))
	}
	h("GET /citizen/v1/profile", a.getProfile)
	h("PUT /citizen/v1/profile", a.putProfile)
	h("DELETE /citizen/v1/profile", a.deleteProfile)
	h("GET /citizen/v1/services", a.listServices)
	h("GET /citizen/v1/services/{sid}", a.getService)
	h("GET /citizen/v1/services/{sid}/preferences", a.getPreference)
	h("PUT /citizen/v1/services/{sid}/preferences", a.putPreference)
	h("GET /citizen/v1/messages", a.listMessages)
	h("GET /citizen/v1/messages/{id}", a.getMessage)
	h("PUT /citizen/v1/messages/{id}/status", a.putMessageStatus)
	h("GET /citizen/v1/export", a.export)
	h("POST /citizen/v1/email-validation-process", a.postEmailValidation)
	a.mux.HandleFunc("GET /citizen/email-validation", a.confirmEmail)
	a.mux.HandleFunc(apiCatchAll, func(w http.ResponseWriter, r *http.Request) {
		if allow := a.allowed(r); allow != "" {
			w.Header().Set("Allow", allow)
			a.problem(w, r, http.StatusMethodNotAllowed, "citizen.error.method")
			return
		}
		a.problem(w, r, http.StatusNotFound, "citizen.error.not_found")
	})
}

// apiCatchAll answers every /citizen/v1/ request no route takes. It
// matches any method, so the mux never answers 405 by itself.
const apiCatchAll = "/citizen/v1/"

var apiMethods = []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch}

// allowed lists the methods a route has for r's path ("" when none: the
// path is unknown), as the Allow header of a 405 says them.
func (a *API) allowed(r *http.Request) string {
	var out []string
	for _, m := range apiMethods {
		probe := &http.Request{Method: m, URL: r.URL, Host: r.Host, Header: http.Header{}}
		if _, pattern := a.mux.Handler(probe); pattern != apiCatchAll && pattern != "" {
			out = append(out, m)
			if m == http.MethodGet {
				out = append(out, http.MethodHead)
			}
		}
	}
	return strings.Join(out, ", ")
}

// authed resolves the citizen and refuses anything else with 401.
func (a *API) authed(f func(w http.ResponseWriter, r *http.Request, fc string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fc, err := a.id.Authenticate(r)
		if err != nil {
			a.unauthorized(w, r, err)
			return
		}
		f(w, r, fc)
	})
}

// unauthorized answers 401 saying why: no credential at all (the
// challenge alone, RFC 6750 §3), or a token that came but is expired or
// not valid (error="invalid_token", and a problem of its own, so an app
// knows to refresh a session rather than suspect a bug).
func (a *API) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	key, challenge := "citizen.error.unauthenticated", `Bearer realm="citizen"`
	switch {
	case errors.Is(err, ErrTokenExpired):
		key, challenge = "citizen.error.token_expired", `Bearer realm="citizen", error="invalid_token", error_description="the token expired"`
	case errors.Is(err, ErrTokenInvalid):
		key, challenge = "citizen.error.token_invalid", `Bearer realm="citizen", error="invalid_token", error_description="the token is not valid"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	a.problem(w, r, http.StatusUnauthorized, key)
}

// lang picks the response language from Accept-Language.
func lang(r *http.Request) string { return i18n.Negotiate(r.Header.Get("Accept-Language")) }

// fieldProblem is one invalid field of a request body.
type fieldProblem struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// problem writes an RFC 9457 problem with a translated title.
func (a *API) problem(w http.ResponseWriter, r *http.Request, status int, key string, fields ...fieldProblem) {
	body := map[string]any{
		// A stable identifier, not an address: there is no page to fetch.
		"type":   "urn:sportello:citizen:problem:" + strings.TrimPrefix(key, "citizen.error."),
		"title":  a.cat.T(lang(r), key),
		"status": status,
	}
	if len(fields) > 0 {
		body["errors"] = fields
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func (a *API) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("citizen api", "method", r.Method, "path", fiscalcode.MaskIn(r.URL.Path), "err", err)
	a.problem(w, r, http.StatusInternalServerError, "citizen.error.internal")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
