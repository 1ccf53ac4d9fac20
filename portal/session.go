package portal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/gob"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/sessions"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/templates/i18n"
)

// The cookie (gorilla/sessions, signed and encrypted) carries only a random
// session token, the chosen language and flash messages. The session itself
// lives in the sessions table, so logout, password change and "log out
// everywhere" really end it.
const cookieName = "sportello"

// Flash is a one-time message shown on the next page.
type Flash struct {
	Kind string // "success", "error", "info"
	Text string
}

func init() {
	gob.Register(Flash{})
	gob.Register(map[string]string{})
}

// Viewer is the signed-in user of a request.
type Viewer struct {
	User      User
	SessionID string // hash of the token: identifies the row, not a secret
}

type ctxKey int

const (
	viewerKey ctxKey = iota
	langKey
	instKey
	cookieKey
)

func viewerOf(r *http.Request) *Viewer {
	v, _ := r.Context().Value(viewerKey).(*Viewer)
	return v
}

func langOf(r *http.Request) string {
	if l, ok := r.Context().Value(langKey).(string); ok {
		return l
	}
	return i18n.Negotiate(r.Header.Get("Accept-Language"))
}

func newToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// cookie returns the request's gorilla session (new and empty when absent
// or tampered with).
func (a *App) cookie(r *http.Request) *sessions.Session {
	if s, ok := r.Context().Value(cookieKey).(*sessions.Session); ok {
		return s
	}
	s, _ := a.store.Get(r, cookieName)
	return s
}

// withSession resolves the viewer and language of every request.
func (a *App) withSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := a.store.Get(r, cookieName) // a bad cookie yields a fresh session
		ctx := context.WithValue(r.Context(), cookieKey, s)
		lang, _ := s.Values["lang"].(string)
		if lang = i18n.Supported(lang); lang == "" {
			lang = i18n.Negotiate(r.Header.Get("Accept-Language"))
		}
		ctx = context.WithValue(ctx, langKey, lang)
		if tok, ok := s.Values["sid"].(string); ok && tok != "" {
			v, err := a.lookupSession(ctx, tok)
			switch {
			case err == nil:
				ctx = context.WithValue(ctx, viewerKey, v)
			case errors.Is(err, db.ErrNotFound):
				delete(s.Values, "sid") // expired or revoked
				_ = s.Save(r, w)
			default:
				a.serverError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// lookupSession returns the viewer of a live session and slides its idle
// timeout; the touch is written at most once a minute to spare the writer.
func (a *App) lookupSession(ctx context.Context, tok string) (*Viewer, error) {
	id := hashToken(tok)
	var row struct {
		UserID   int64     `db:"user_id"`
		LastSeen time.Time `db:"last_seen_at"`
		Expires  time.Time `db:"expires_at"`
	}
	err := a.DB.R.GetContext(ctx, &row, `SELECT user_id, last_seen_at, expires_at FROM sessions WHERE id_hash = ?`, id)
	if err != nil {
		return nil, db.NotFound(err)
	}
	now := a.now()
	if now.After(row.Expires) || now.Sub(row.LastSeen) > IdleTimeout {
		_, _ = a.DB.W.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, id)
		return nil, db.ErrNotFound
	}
	if now.Sub(row.LastSeen) > time.Minute {
		if _, err := a.DB.W.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, now, id); err != nil {
			return nil, err
		}
	}
	u, err := a.userByID(ctx, row.UserID)
	if err != nil {
		return nil, err
	}
	return &Viewer{User: u, SessionID: id}, nil
}

// startSession creates a new server-side session for user, replacing any
// token the browser had (session id rotation at login).
func (a *App) startSession(w http.ResponseWriter, r *http.Request, tx *sqlx.Tx, userID int64) error {
	s := a.cookie(r)
	if old, ok := s.Values["sid"].(string); ok && old != "" {
		if _, err := tx.ExecContext(r.Context(), `DELETE FROM sessions WHERE id_hash = ?`, hashToken(old)); err != nil {
			return err
		}
	}
	tok := newToken()
	now := a.now()
	ua := r.UserAgent()
	if len(ua) > 200 {
		ua = ua[:200]
	}
	if _, err := tx.ExecContext(r.Context(), `INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, hashToken(tok), userID, now, now, now.Add(AbsoluteTimeout), a.Resolver.String(r), ua); err != nil {
		return err
	}
	s.Values["sid"] = tok
	dropSecrets(s.Values) // nothing stashed before signing in is shown after
	return s.Save(r, w)
}

// endSession removes the current session (logout).
func (a *App) endSession(w http.ResponseWriter, r *http.Request) error {
	s := a.cookie(r)
	if tok, ok := s.Values["sid"].(string); ok && tok != "" {
		if _, err := a.DB.W.ExecContext(r.Context(), `DELETE FROM sessions WHERE id_hash = ?`, hashToken(tok)); err != nil {
			return err
		}
	}
	delete(s.Values, "sid")
	dropSecrets(s.Values)
	return s.Save(r, w)
}

// flash queues a message for the next page.
func (a *App) flash(w http.ResponseWriter, r *http.Request, kind, key string, args ...any) {
	s := a.cookie(r)
	s.AddFlash(Flash{Kind: kind, Text: a.T(r, key, args...)})
	_ = s.Save(r, w)
}

func (a *App) popFlashes(w http.ResponseWriter, r *http.Request) []Flash {
	s := a.cookie(r)
	raw := s.Flashes()
	if len(raw) == 0 {
		return nil
	}
	_ = s.Save(r, w)
	out := make([]Flash, 0, len(raw))
	for _, f := range raw {
		if fl, ok := f.(Flash); ok {
			out = append(out, fl)
		}
	}
	return out
}

// setLanguage handles the visible language switch.
func (a *App) setLanguage(w http.ResponseWriter, r *http.Request) {
	lang := i18n.Supported(r.FormValue("lang"))
	if lang == "" {
		lang = i18n.Default
	}
	s := a.cookie(r)
	s.Values["lang"] = lang
	_ = s.Save(r, w)
	http.Redirect(w, r, safeNext(r.FormValue("next"), "/"), http.StatusSeeOther)
}

// safeNext accepts only local paths as redirect targets (no open redirect).
// Browsers drop tabs and newlines from a URL and read a backslash as a
// slash, so "/\t/evil.example" or "/\\evil.example" would leave the site:
// any control character or backslash is refused, then the path must parse
// with neither scheme nor host.
func safeNext(next, fallback string) string {
	if next == "" || next[0] != '/' || (len(next) > 1 && next[1] == '/') {
		return fallback
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return fallback
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return fallback
	}
	return next
}

// stashSecret keeps a one-time secret (a new API key) of a service in the
// encrypted session cookie until that service's page shows it: secrets
// never travel in URLs and are never stored server-side in clear. They are
// stashed for the signed-in user and the service, so a page of another
// service (a redirect that was never followed, a second tab) or another
// user signing in on the same browser never shows them; a newer stash for
// another service replaces an unshown one, and signing in or out drops it.
func (a *App) stashSecret(w http.ResponseWriter, r *http.Request, serviceID int64, name, value string) {
	s := a.cookie(r)
	owner := secretOwner(r, serviceID)
	m, _ := s.Values["secrets"].(map[string]string)
	if m == nil || s.Values["secrets_for"] != owner {
		m = map[string]string{}
	}
	m[name] = value
	s.Values["secrets"] = m
	s.Values["secrets_for"] = owner
	_ = s.Save(r, w)
}

// popSecrets returns and forgets the secrets stashed for this user and
// service; secrets stashed for anything else stay where they are.
func (a *App) popSecrets(w http.ResponseWriter, r *http.Request, serviceID int64) map[string]string {
	s := a.cookie(r)
	m, _ := s.Values["secrets"].(map[string]string)
	if len(m) == 0 || s.Values["secrets_for"] != secretOwner(r, serviceID) {
		return nil
	}
	dropSecrets(s.Values)
	_ = s.Save(r, w)
	return m
}

// secretOwner names who and what stashed secrets are for.
func secretOwner(r *http.Request, serviceID int64) string {
	var user int64
	if v := viewerOf(r); v != nil {
		user = v.User.ID
	}
	return fmt.Sprintf("user %d service %d", user, serviceID)
}

func dropSecrets(values map[any]any) {
	delete(values, "secrets")
	delete(values, "secrets_for")
}
