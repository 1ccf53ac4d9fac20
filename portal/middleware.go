package portal

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"sportello/messaging/fiscalcode"
)

// SecurityHeaders sets the headers every Sportello response carries. The CSP
// allows only same-origin scripts, styles and images: no inline script or
// style, no third-party calls from pages.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		next.ServeHTTP(w, r)
	})
}

// strictTransport tells browsers to use https only, for a year, when the
// portal's base URL is https (behind a TLS proxy): a first plain-http
// request could otherwise be intercepted before its redirect.
func strictTransport(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// middleware wraps the router, outermost first: recover and log → headers →
// CSRF (cross-origin protection) → session → router (then per-route authz).
func (a *App) middleware(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Logger.Warn("cross-origin request refused", "method", r.Method, "path", logPath(r), "origin", r.Header.Get("Origin"))
		a.renderError(w, r, http.StatusForbidden, "error.crossorigin")
	}))
	h = a.withSession(h)
	h = cop.Handler(h)
	h = SecurityHeaders(h)
	if a.secure {
		h = strictTransport(h)
	}
	return a.observe(h)
}

// statusRecorder notes the status a handler answered and whether its
// answer has started.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	started bool
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status, s.started = code, true
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// observe is the outermost layer: one recorder per request gives the
// request log its status and tells a panic's recovery whether the answer
// had started. A handler's panic (a bug) is logged with its stack and
// answered with a 500. Pages are rendered into a buffer before they are
// written, but a download streams (the audit CSV): if the answer had
// started, the connection is cut, so the file arrives broken rather than
// looking whole with an error line in it.
func (a *App) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.Logger.Error("panic", "err", fmt.Sprint(v), "answer_started", rec.started, "stack", string(debug.Stack()))
				if rec.started {
					panic(http.ErrAbortHandler)
				}
				http.Error(w, "Errore interno / Internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(rec, r)
		a.Logger.Debug("request", "method", r.Method, "path", logPath(r), "status", rec.status, "dur", time.Since(start))
	})
}

// logPath is a request's path as log lines show it: the tokens of
// invitation and password-reset links cut, and fiscal codes masked (a
// mistyped API address lands on the portal with its fiscal code in it).
func logPath(r *http.Request) string {
	p := r.URL.Path
	for _, prefix := range []string{"/invite/", "/password/reset/"} {
		if strings.HasPrefix(p, prefix) && len(p) > len(prefix) {
			return prefix + "…"
		}
	}
	return fiscalcode.MaskIn(p)
}

// serverError logs err and shows a generic error page.
func (a *App) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.Logger.Error("server error", "method", r.Method, "path", logPath(r), slog.Any("err", err))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, "<!doctype html><title>%s</title><h1>%s</h1>",
		a.T(r, "error.internal.title"), a.T(r, "error.internal.body"))
}

// renderError shows the error page with a translated message.
func (a *App) renderError(w http.ResponseWriter, r *http.Request, status int, key string) {
	a.render(w, r, status, "error", &Page{Title: a.T(r, key+".title"), Data: map[string]any{
		"Status": status, "Message": a.T(r, key+".body"),
	}})
}

func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.renderError(w, r, http.StatusNotFound, "error.notfound")
}

func (a *App) forbidden(w http.ResponseWriter, r *http.Request) {
	a.renderError(w, r, http.StatusForbidden, "error.forbidden")
}
