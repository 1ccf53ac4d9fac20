package portal

import (
	"database/sql"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// The console's page of platform admins: who they are, adding a colleague
// (a new account gets a one-hour link to choose its password, shown once),
// and taking the rights away from one who leaves (never one's own, never
// the last). Before it, admins could only be added from the command line
// and never removed.
func init() {
	featureRoutes = append(featureRoutes, func(a *App, root, inst *mux.Router) {
		root.Handle("/admin/admins", a.platform("admin", "read", a.platformAdminsPage)).Methods("GET")
		root.Handle("/admin/admins", a.platform("admin", "admins", a.addPlatformAdmin)).Methods("POST")
		root.Handle("/admin/admins/{uid:[0-9]+}/revoke", a.platform("admin", "admins", a.revokePlatformAdmin)).Methods("POST")
	})
}

type platformAdminRow struct {
	ID        int64     `db:"id"`
	Name      string    `db:"name"`
	Email     string    `db:"email"`
	CreatedAt time.Time `db:"created_at"`
}

func (a *App) platformAdminsPage(w http.ResponseWriter, r *http.Request) {
	a.renderPlatformAdmins(w, r, http.StatusOK, emptyForm(), "")
}

func (a *App) renderPlatformAdmins(w http.ResponseWriter, r *http.Request, status int, f *Form, newLink string) {
	var admins []platformAdminRow
	if err := a.DB.R.SelectContext(r.Context(), &admins, `SELECT id, name, email, created_at FROM users
		WHERE is_platform_admin = 1 ORDER BY name COLLATE NOCASE, email`); err != nil {
		a.serverError(w, r, err)
		return
	}
	p := &Page{Title: a.T(r, "admins.title"), Section: "admins", Platform: true, Form: f,
		Data: map[string]any{"Admins": admins, "NewLink": newLink}}
	if !f.Valid() {
		p.Title = a.T(r, "form.errors_title") + " · " + p.Title
	}
	a.render(w, r, status, "admin_admins", p)
}

// addPlatformAdmin gives platform rights to the person with this address:
// an existing account (an institution's member, say) is promoted as it is;
// otherwise an account is made with no usable password and a one-hour link
// to choose one, shown here once, to hand over.
func (a *App) addPlatformAdmin(w http.ResponseWriter, r *http.Request) {
	ctx, v := r.Context(), viewerOf(r)
	f := newForm(r)
	email, name := strings.ToLower(f.Get("email")), f.Get("name")
	if !validEmail(email) {
		f.Fail("email", a.T(r, "field.email"))
	}
	if n := len([]rune(name)); n > 100 {
		f.Fail("name", a.T(r, "card.err.too_long", 100))
	}
	a.refuseBadCharacters(r, f, "name")
	if !f.Valid() {
		a.renderPlatformAdmins(w, r, http.StatusUnprocessableEntity, f, "")
		return
	}
	if name == "" {
		name = a.T(r, "admins.default_name")
	}
	now := a.now()
	// Hashed before the write transaction: the slow hash must not hold the
	// writer. Nobody knows this password; the link below sets the first.
	unusable := a.hasher.Hash(newToken())
	var link string
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		var u struct {
			ID      int64 `db:"id"`
			IsAdmin bool  `db:"is_platform_admin"`
		}
		err := tx.GetContext(ctx, &u, `SELECT id, is_platform_admin FROM users WHERE email = ?`, email)
		switch {
		case err == nil && u.IsAdmin:
			return errNoChange
		case err == nil:
			if _, err := tx.ExecContext(ctx, `UPDATE users SET is_platform_admin = 1 WHERE id = ?`, u.ID); err != nil {
				return err
			}
		case errors.Is(err, sql.ErrNoRows):
			res, err := tx.ExecContext(ctx, `INSERT INTO users (email, name, password_hash, is_platform_admin, created_at, password_changed_at)
				VALUES (?, ?, ?, 1, ?, ?)`, email, name, unusable, now, now)
			if err != nil {
				return err
			}
			u.ID, _ = res.LastInsertId()
			tok, err := issueResetTx(ctx, tx, u.ID, now)
			if err != nil {
				return err
			}
			link = ResetLink(a.BaseURL, tok)
		default:
			return err
		}
		if err := a.Enforcer.SetPlatformAdmin(u.ID, true); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email,
			Action: "admin.grant", Target: email, ClientIP: a.Resolver.String(r)})
	})
	if errors.Is(err, errNoChange) {
		f.Fail("email", a.T(r, "admins.already"))
		a.renderPlatformAdmins(w, r, http.StatusUnprocessableEntity, f, "")
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	if link == "" {
		a.flash(w, r, "success", "admins.granted", email)
		http.Redirect(w, r, "/admin/admins", http.StatusSeeOther)
		return
	}
	a.renderPlatformAdmins(w, r, http.StatusOK, emptyForm(), link)
}

// revokePlatformAdmin takes platform rights away from another admin. The
// account stays (with its memberships, if any); its next request no longer
// reaches the console, since casbin's role follows the users row.
func (a *App) revokePlatformAdmin(w http.ResponseWriter, r *http.Request) {
	ctx, v := r.Context(), viewerOf(r)
	uid, _ := strconv.ParseInt(mux.Vars(r)["uid"], 10, 64)
	if uid == v.User.ID {
		a.flash(w, r, "error", "admins.not_self")
		http.Redirect(w, r, "/admin/admins", http.StatusSeeOther)
		return
	}
	var email string
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &email, `SELECT email FROM users WHERE id = ? AND is_platform_admin = 1`, uid); err != nil {
			return db.NotFound(err)
		}
		var n int
		if err := tx.GetContext(ctx, &n, `SELECT count(*) FROM users WHERE is_platform_admin = 1`); err != nil {
			return err
		}
		if n <= 1 {
			// Two admins removing each other at once: the second write
			// finds one admin left and keeps them.
			return errLastAdmin
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET is_platform_admin = 0 WHERE id = ?`, uid); err != nil {
			return err
		}
		if err := a.Enforcer.SetPlatformAdmin(uid, false); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email,
			Action: "admin.revoke", Target: email, ClientIP: a.Resolver.String(r)})
	})
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
		return
	case errors.Is(err, errLastAdmin):
		a.flash(w, r, "error", "admins.last")
	case err != nil:
		a.serverError(w, r, err)
		return
	default:
		a.flash(w, r, "success", "admins.revoked", email)
	}
	http.Redirect(w, r, "/admin/admins", http.StatusSeeOther)
}
