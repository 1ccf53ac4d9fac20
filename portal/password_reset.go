package portal

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/channels"
)

// PasswordResetTTL is how long a "forgot your password" link works.
const PasswordResetTTL = time.Hour

// Staff who sign in a few times a year forget passwords: they ask for a
// link by e-mail, and the link lets them choose a new one. The answer to
// the request never says whether the address has an account. Like
// invitation links, reset links go out only by SMTP, never through the mail
// outbox platform admins read.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		root.HandleFunc("/password/forgot", a.forgotPage).Methods("GET")
		root.HandleFunc("/password/forgot", a.forgot).Methods("POST")
		root.HandleFunc("/password/reset/{token}", a.resetPage).Methods("GET")
		root.HandleFunc("/password/reset/{token}", a.reset).Methods("POST")
	})
}

func (a *App) forgotPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "password_forgot", &Page{Title: a.T(r, "reset.forgot.title"), Form: emptyForm()})
}

func (a *App) forgot(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	email, ip := f.Get("email"), a.Resolver.String(r)
	page := &Page{Title: a.T(r, "reset.forgot.title"), Form: f}
	if !validEmail(email) {
		f.Fail("email", a.T(r, "field.email"))
		a.render(w, r, http.StatusUnprocessableEntity, "password_forgot", page)
		return
	}
	// Every request counts, so nobody can flood an inbox or the outbox.
	allowed, delay, retry := a.resetThrottle.Attempt(email, ip)
	if !allowed {
		f.Fail("email", a.T(r, "login.throttled", int(retry.Minutes())+1))
		a.render(w, r, http.StatusTooManyRequests, "password_forgot", page)
		return
	}
	if delay > 0 {
		a.resetThrottle.sleep(delay)
	}
	u, tok, err := IssuePasswordReset(r.Context(), a.DB, email, a.now(), ip)
	switch {
	case errors.Is(err, db.ErrNotFound):
		// Nothing to send; the page below is the same.
	case err != nil:
		a.serverError(w, r, err)
		return
	case a.Mailer != nil:
		a.mailReset(r, u, tok)
	default:
		// Without SMTP there is no way to reach the person; the link is not
		// stored or logged. A platform admin with access to the server can
		// issue one with "sportello admin reset-link --email ...".
		a.Logger.Info("password reset requested without SMTP configured", "user_id", u.ID)
	}
	page.Data = map[string]any{"Sent": true, "Email": email}
	a.render(w, r, http.StatusOK, "password_forgot", page)
}

// IssuePasswordReset replaces the user's open reset links with a new one
// and returns its token, which exists from now on only in the caller's
// hands (the database keeps its hash). db.ErrNotFound: no such user.
func IssuePasswordReset(ctx context.Context, d *db.DB, email string, now time.Time, clientIP string) (User, string, error) {
	var u User
	if err := d.R.GetContext(ctx, &u, `SELECT `+userColumns+` FROM users WHERE email = ?`, email); err != nil {
		return u, "", db.NotFound(err) // userByEmail needs an App; the CLI has none
	}
	var tok string
	err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		if tok, err = issueResetTx(ctx, tx, u.ID, now); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &u.ID, Actor: u.Email, Action: "password.reset.request", ClientIP: clientIP})
	})
	return u, tok, err
}

// issueResetTx replaces the user's open reset links with a new one, inside
// tx, and returns its token (the database keeps only its hash).
func issueResetTx(ctx context.Context, tx *sqlx.Tx, userID int64, now time.Time) (string, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE password_resets SET used_at = ? WHERE user_id = ? AND used_at IS NULL`, now, userID); err != nil {
		return "", err
	}
	tok := newToken()
	if _, err := tx.ExecContext(ctx, `INSERT INTO password_resets (user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		userID, hashToken(tok), now, now.Add(PasswordResetTTL)); err != nil {
		return "", err
	}
	return tok, nil
}

// ResetLink is the page where the token's holder chooses a new password.
func ResetLink(baseURL, tok string) string {
	return strings.TrimRight(baseURL, "/") + "/password/reset/" + tok
}

// mailReset sends the link straight to the person, in the background like
// invitations: the link is never written to the mail outbox that platform
// admins can read.
func (a *App) mailReset(r *http.Request, u User, tok string) {
	lang := langOf(r)
	m := channels.Mail{To: u.Email, Subject: a.Catalog.T(lang, "reset.mail.subject"),
		Body: a.Catalog.T(lang, "reset.mail.body", u.Name, ResetLink(a.BaseURL, tok))}
	a.mailInBackground(m, "password reset mail not sent", "user_id", u.ID)
}

// resetUser finds the user of a link that is unused and unexpired.
func (a *App) resetUser(ctx context.Context, tok string) (User, error) {
	var id int64
	if err := a.DB.R.GetContext(ctx, &id, `SELECT user_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`,
		hashToken(tok), a.now()); err != nil {
		return User{}, db.NotFound(err)
	}
	return a.userByID(ctx, id)
}

func (a *App) resetPage(w http.ResponseWriter, r *http.Request) {
	if _, err := a.resetUser(r.Context(), mux.Vars(r)["token"]); err != nil {
		a.resetGone(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "password_reset", &Page{Title: a.T(r, "reset.title"), Form: emptyForm()})
}

// resetGone answers a link that is wrong, used or expired.
func (a *App) resetGone(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, db.ErrNotFound) {
		a.serverError(w, r, err)
		return
	}
	a.render(w, r, http.StatusGone, "password_reset", &Page{Title: a.T(r, "reset.title"), Form: emptyForm(),
		Data: map[string]any{"Gone": true}})
}

func (a *App) reset(w http.ResponseWriter, r *http.Request) {
	ctx, tok := r.Context(), mux.Vars(r)["token"]
	u, err := a.resetUser(ctx, tok)
	if err != nil {
		a.resetGone(w, r, err)
		return
	}
	f := newForm(r)
	pw, confirm := f.Raw("password"), f.Raw("password_confirm")
	f.Values = nil // passwords are never echoed back
	if p := passwordProblem(pw, u.Email, u.Name); p != "" {
		f.Fail("password", a.T(r, p, MinPasswordLength))
	} else if pw != confirm {
		f.Fail("password_confirm", a.T(r, "password.mismatch"))
	}
	if !f.Valid() {
		a.render(w, r, http.StatusUnprocessableEntity, "password_reset", &Page{Title: a.T(r, "reset.title"), Form: f})
		return
	}
	hash := a.hasher.Hash(pw)
	err = a.writeTx(ctx, func(tx *sqlx.Tx) error {
		// Spend the link inside the transaction: of two submissions racing,
		// only one changes the password.
		res, err := tx.ExecContext(ctx, `UPDATE password_resets SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`,
			a.now(), hashToken(tok), a.now())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return db.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?`, hash, a.now(), u.ID); err != nil {
			return err
		}
		// Whoever knew the old password is signed out everywhere.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, u.ID); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &u.ID, Actor: u.Email, Action: "password.reset", ClientIP: a.Resolver.String(r)})
	})
	if err != nil {
		a.resetGone(w, r, err)
		return
	}
	a.throttle.Forget(u.Email) // a locked-out account may sign in again at once
	a.flash(w, r, "success", "reset.done")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
