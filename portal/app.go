// Package portal is Sportello's browser UI: the institutions' portal and the
// platform admins' console. Handlers are methods on App, one file per
// concern; SQL lives in the store_*.go files next to them.
package portal

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/sessions"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/gateway/clientip"
	"sportello/messaging/channels"
	"sportello/policies"
	"sportello/templates/i18n"
)

// Deps is everything the portal needs from the outside.
type Deps struct {
	DB       *db.DB
	Enforcer *policies.Enforcer
	Catalog  *i18n.Catalog
	Logger   *slog.Logger
	Resolver clientip.Resolver
	// BaseURL is the public URL ("https://sportello.example.it"); cookies are
	// Secure when it is https, and invitation links start with it.
	BaseURL string
	// SessionKeys are the gorilla/sessions hash and encryption keys (32 bytes each).
	SessionHashKey, SessionBlockKey []byte
	Now                             func() time.Time
	// PasswordCost tunes argon2id; zero means the production default.
	PasswordCost PasswordCost
	// Mailer sends invitation links by e-mail when an SMTP server is
	// configured; without one the inviter copies the link from the page
	// (it is never stored in clear, not even in a mail queue).
	Mailer channels.Mailer
	// Hooks lets other parts of Sportello (the gateway) react to portal
	// changes; nil fields are skipped.
	Hooks Hooks
}

// Hooks are callbacks into other subsystems.
type Hooks struct {
	// InstitutionChanged is called after an institution is suspended or
	// reactivated, so cached API principals are dropped at once.
	InstitutionChanged func(instID int64)
	// ServiceChanged is called after a service's runtime settings or keys
	// change (suspension, recipients, CIDRs, limits, key rotation).
	ServiceChanged func(serviceID int64)
}

// Timeouts of a portal session.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
)

// App is the portal.
type App struct {
	Deps
	store    *sessions.CookieStore
	pages    *renderer
	throttle *loginThrottle
	// resetThrottle counts "forgot password" requests per address and IP.
	resetThrottle *loginThrottle
	// registerThrottle counts registrations that look an address up.
	registerThrottle *loginThrottle
	// pwChangeThrottle counts wrong current passwords on the account page.
	pwChangeThrottle *loginThrottle
	secure           bool
	router           *mux.Router
	handler          http.Handler
	hasher           passwordHasher

	dummyOnce sync.Once
	dummy     string
}

// New builds the portal and loads role assignments into the enforcer.
func New(ctx context.Context, d Deps) (*App, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if len(d.SessionHashKey) < 32 || len(d.SessionBlockKey) != 32 {
		return nil, fmt.Errorf("portal: session keys must be 32 bytes")
	}
	a := &App{Deps: d, secure: strings.HasPrefix(d.BaseURL, "https://")}
	a.hasher = newPasswordHasher(d.PasswordCost.orDefault())
	a.store = sessions.NewCookieStore(d.SessionHashKey, d.SessionBlockKey)
	a.store.Options = &sessions.Options{
		Path:     "/",
		HttpOnly: true,
		Secure:   a.secure,
		SameSite: http.SameSiteLaxMode,
		MaxAge:   0, // browser-session cookie; the server enforces the timeouts
	}
	a.store.MaxAge(int(AbsoluteTimeout / time.Second))
	a.store.Options.MaxAge = 0
	var err error
	if a.pages, err = newRenderer(d.Catalog); err != nil {
		return nil, err
	}
	a.throttle = newLoginThrottle(d.Now)
	a.resetThrottle = newLoginThrottle(d.Now)
	a.registerThrottle = newLoginThrottle(d.Now)
	a.pwChangeThrottle = newLoginThrottle(d.Now)
	if err := a.loadRoles(ctx); err != nil {
		return nil, err
	}
	a.router = a.routes()
	a.handler = a.middleware(a.router)
	return a, nil
}

// Handler is the portal with its middleware, ready to serve.
func (a *App) Handler() http.Handler { return a.handler }

// Router exposes the route table so other portal features can be mounted.
func (a *App) Router() *mux.Router { return a.router }

// loadRoles copies role assignments from the database into casbin.
func (a *App) loadRoles(ctx context.Context) error {
	var admins []int64
	if err := a.DB.R.SelectContext(ctx, &admins, `SELECT id FROM users WHERE is_platform_admin = 1`); err != nil {
		return err
	}
	for _, id := range admins {
		if err := a.Enforcer.SetPlatformAdmin(id, true); err != nil {
			return err
		}
	}
	var ms []struct {
		InstitutionID int64  `db:"institution_id"`
		UserID        int64  `db:"user_id"`
		Role          string `db:"role"`
	}
	if err := a.DB.R.SelectContext(ctx, &ms, `SELECT institution_id, user_id, role FROM memberships`); err != nil {
		return err
	}
	for _, m := range ms {
		if err := a.Enforcer.SetInstitutionRole(m.UserID, m.InstitutionID, policies.RoleFor(m.Role)); err != nil {
			return err
		}
	}
	return nil
}

// writeTx is a shorthand for the writer transaction.
func (a *App) writeTx(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	return a.DB.WriteTx(ctx, fn)
}

// now is the current time in UTC.
func (a *App) now() time.Time { return a.Now().UTC() }
