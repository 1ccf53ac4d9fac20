package portal

import (
	"fmt"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
)

type sessionRow struct {
	IDHash    string    `db:"id_hash"`
	CreatedAt time.Time `db:"created_at"`
	LastSeen  time.Time `db:"last_seen_at"`
	ClientIP  string    `db:"client_ip"`
	UserAgent string    `db:"user_agent"`
	Current   bool      `db:"-"`
}

func (a *App) accountPage(w http.ResponseWriter, r *http.Request) {
	a.renderAccount(w, r, http.StatusOK, emptyForm())
}

func (a *App) renderAccount(w http.ResponseWriter, r *http.Request, status int, f *Form) {
	v := viewerOf(r)
	var rows []sessionRow
	if err := a.DB.R.SelectContext(r.Context(), &rows, `SELECT id_hash, created_at, last_seen_at, client_ip, user_agent
		FROM sessions WHERE user_id = ? ORDER BY last_seen_at DESC`, v.User.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	for i := range rows {
		rows[i].Current = rows[i].IDHash == v.SessionID
	}
	a.render(w, r, status, "account", &Page{Title: a.T(r, "account.title"), Form: f, Data: map[string]any{"Sessions": rows}})
}

// changePassword checks the current password, stores the new one and ends
// every session of the user, then opens a fresh one for this browser.
func (a *App) changePassword(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	f := newForm(r)
	cur, pw := f.Raw("current_password"), f.Raw("password")
	f.Values = nil
	// Guesses of the current password are limited, so someone holding a
	// stolen session cannot try passwords without limit and then lock the
	// owner out by changing it. They have a counter of their own: sharing
	// the login one let anyone who knew the address block the owner's
	// password change with ten failed logins.
	ip := a.Resolver.String(r)
	allowed, delay, retry := a.pwChangeThrottle.Attempt(v.User.Email, ip)
	if !allowed {
		f.Fail("current_password", a.T(r, "login.throttled", int(retry.Minutes())+1))
		w.Header().Set("Retry-After", fmt.Sprint(int(retry.Seconds())+1))
		a.renderAccount(w, r, http.StatusTooManyRequests, f)
		return
	}
	if delay > 0 {
		a.pwChangeThrottle.sleep(delay)
	}
	ok, err := a.hasher.Verify(v.User.PasswordHash, cur)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if ok {
		a.pwChangeThrottle.Succeed(v.User.Email, ip)
	}
	if !ok {
		f.Fail("current_password", a.T(r, "account.current.wrong"))
	} else if p := passwordProblem(pw, v.User.Email, v.User.Name); p != "" {
		f.Fail("password", a.T(r, p, MinPasswordLength))
	} else if pw != newForm(r).Raw("password_confirm") {
		f.Fail("password_confirm", a.T(r, "password.mismatch"))
	} else if same, _ := a.hasher.Verify(v.User.PasswordHash, pw); same {
		f.Fail("password", a.T(r, "account.password.same"))
	}
	if !f.Valid() {
		a.renderAccount(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	hash := a.hasher.Hash(pw)
	err = a.writeTx(r.Context(), func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(r.Context(), `UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?`, hash, a.now(), v.User.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(r.Context(), `DELETE FROM sessions WHERE user_id = ?`, v.User.ID); err != nil {
			return err
		}
		if err := db.Audit(r.Context(), tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, Action: "password.change", ClientIP: a.Resolver.String(r)}); err != nil {
			return err
		}
		return a.startSession(w, r, tx, v.User.ID)
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "account.password.changed")
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// logoutEverywhere ends every session of the user, this one included.
func (a *App) logoutEverywhere(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	err := a.writeTx(r.Context(), func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(r.Context(), `DELETE FROM sessions WHERE user_id = ?`, v.User.ID); err != nil {
			return err
		}
		return db.Audit(r.Context(), tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, Action: "sessions.end_all", ClientIP: a.Resolver.String(r)})
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	_ = a.endSession(w, r)
	a.flash(w, r, "success", "account.sessions.ended")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
