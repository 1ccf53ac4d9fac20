package portal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/policies"
)

// InvitationTTL is how long an invitation link stays valid.
const InvitationTTL = 48 * time.Hour

type memberRow struct {
	UserID    int64     `db:"user_id"`
	Name      string    `db:"name"`
	Email     string    `db:"email"`
	Role      string    `db:"role"`
	CreatedAt time.Time `db:"created_at"`
}

type invitationRow struct {
	ID        int64     `db:"id"`
	Email     string    `db:"email"`
	Role      string    `db:"role"`
	CreatedAt time.Time `db:"created_at"`
	ExpiresAt time.Time `db:"expires_at"`
	InvitedBy string    `db:"invited_by_name"`
	Expired   bool      `db:"-"`
}

func (a *App) membersPage(w http.ResponseWriter, r *http.Request) {
	a.renderMembers(w, r, http.StatusOK, emptyForm(), "")
}

func (a *App) renderMembers(w http.ResponseWriter, r *http.Request, status int, f *Form, newLink string) {
	ctx, iid := r.Context(), instID(r)
	var members []memberRow
	if err := a.DB.R.SelectContext(ctx, &members, `SELECT m.user_id, u.name, u.email, m.role, m.created_at
		FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.institution_id = ? ORDER BY u.name COLLATE NOCASE`, iid); err != nil {
		a.serverError(w, r, err)
		return
	}
	var invites []invitationRow
	if err := a.DB.R.SelectContext(ctx, &invites, `SELECT i.id, i.email, i.role, i.created_at, i.expires_at, u.name AS invited_by_name
		FROM invitations i JOIN users u ON u.id = i.invited_by
		WHERE i.institution_id = ? AND i.accepted_at IS NULL AND i.revoked_at IS NULL
		ORDER BY i.id DESC`, iid); err != nil {
		a.serverError(w, r, err)
		return
	}
	now := a.now()
	for i := range invites {
		invites[i].Expired = now.After(invites[i].ExpiresAt)
	}
	if f.Value("role") == "" {
		f.Values.Set("role", "operator")
	}
	a.render(w, r, status, "members", &Page{Title: a.T(r, "members.title"), Section: "members", Form: f, Data: map[string]any{
		"Members": members, "Invitations": invites, "NewLink": newLink, "Mailed": a.Mailer != nil,
	}})
}

// invite creates a single-use invitation and shows its link once.
func (a *App) invite(w http.ResponseWriter, r *http.Request) {
	ctx, iid, v := r.Context(), instID(r), viewerOf(r)
	f := newForm(r)
	email, role := strings.ToLower(f.Get("email")), f.Get("role")
	if !validEmail(email) {
		f.Fail("email", a.T(r, "field.email"))
	}
	if role != "admin" && role != "operator" {
		f.Fail("role", a.T(r, "members.role.invalid"))
	}
	if f.Valid() {
		var n int
		if err := a.DB.R.GetContext(ctx, &n, `SELECT count(*) FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.institution_id = ? AND u.email = ?`, iid, email); err != nil {
			a.serverError(w, r, err)
			return
		}
		if n > 0 {
			f.Fail("email", a.T(r, "members.invite.already_member"))
		}
	}
	if !f.Valid() {
		a.renderMembers(w, r, http.StatusUnprocessableEntity, f, "")
		return
	}
	tok := newToken()
	now := a.now()
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		// A new invitation for the same address replaces pending ones.
		if _, err := tx.ExecContext(ctx, `UPDATE invitations SET revoked_at = ? WHERE institution_id = ? AND email = ? AND accepted_at IS NULL AND revoked_at IS NULL`,
			now, iid, email); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO invitations (institution_id, email, role, token_hash, invited_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, iid, email, role, hashToken(tok), v.User.ID, now, now.Add(InvitationTTL)); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &iid,
			Action: "member.invite", Target: email, Detail: "role=" + role, ClientIP: a.Resolver.String(r)})
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	link := strings.TrimRight(a.BaseURL, "/") + "/invite/" + tok
	if a.Mailer != nil {
		a.mailInvitation(r, email, link, role)
	}
	a.renderMembers(w, r, http.StatusOK, emptyForm(), link)
}

func (a *App) revokeInvitation(w http.ResponseWriter, r *http.Request) {
	ctx, iid, v := r.Context(), instID(r), viewerOf(r)
	id, _ := strconv.ParseInt(mux.Vars(r)["id"], 10, 64)
	var email string
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		// Scoped by institution: an id from another institution matches nothing.
		if err := tx.GetContext(ctx, &email, `SELECT email FROM invitations WHERE id = ? AND institution_id = ? AND accepted_at IS NULL AND revoked_at IS NULL`, id, iid); err != nil {
			return db.NotFound(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invitations SET revoked_at = ? WHERE id = ?`, a.now(), id); err != nil {
			return err
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &iid,
			Action: "member.invite.revoke", Target: email, ClientIP: a.Resolver.String(r)})
	})
	if errors.Is(err, db.ErrNotFound) {
		a.notFound(w, r)
		return
	} else if err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "members.invite.revoked", email)
	http.Redirect(w, r, fmt.Sprintf("/i/%d/members", iid), http.StatusSeeOther)
}

var errLastAdmin = errors.New("last admin")

// changeRole sets a member's role; the last admin cannot be demoted.
func (a *App) changeRole(w http.ResponseWriter, r *http.Request) {
	role := r.FormValue("role")
	if role != "admin" && role != "operator" {
		a.flash(w, r, "error", "members.role.invalid")
		http.Redirect(w, r, fmt.Sprintf("/i/%d/members", instID(r)), http.StatusSeeOther)
		return
	}
	a.updateMember(w, r, role)
}

// removeMember removes a member; the last admin cannot be removed.
func (a *App) removeMember(w http.ResponseWriter, r *http.Request) { a.updateMember(w, r, "") }

func (a *App) updateMember(w http.ResponseWriter, r *http.Request, newRole string) {
	ctx, iid, v := r.Context(), instID(r), viewerOf(r)
	uid, _ := strconv.ParseInt(mux.Vars(r)["uid"], 10, 64)
	var target memberRow
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &target, `SELECT m.user_id, u.name, u.email, m.role, m.created_at
			FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.institution_id = ? AND m.user_id = ?`, iid, uid); err != nil {
			return db.NotFound(err)
		}
		if target.Role == "admin" && newRole != "admin" {
			var admins int
			if err := tx.GetContext(ctx, &admins, `SELECT count(*) FROM memberships WHERE institution_id = ? AND role = 'admin'`, iid); err != nil {
				return err
			}
			if admins <= 1 {
				return errLastAdmin
			}
		}
		action, detail := "member.remove", "role was "+target.Role
		if newRole == "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE institution_id = ? AND user_id = ?`, iid, uid); err != nil {
				return err
			}
			// A removed member's open sessions keep no power here: every
			// request re-reads the membership, so nothing else to end.
		} else {
			if newRole == target.Role {
				return nil
			}
			action, detail = "member.role", target.Role+" → "+newRole
			if _, err := tx.ExecContext(ctx, `UPDATE memberships SET role = ? WHERE institution_id = ? AND user_id = ?`, newRole, iid, uid); err != nil {
				return err
			}
		}
		return db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, InstitutionID: &iid,
			Action: action, Target: target.Email, Detail: detail, ClientIP: a.Resolver.String(r)})
	})
	switch {
	case errors.Is(err, db.ErrNotFound):
		a.notFound(w, r)
		return
	case errors.Is(err, errLastAdmin):
		a.flash(w, r, "error", "members.last_admin")
		http.Redirect(w, r, fmt.Sprintf("/i/%d/members", iid), http.StatusSeeOther)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	if err := a.Enforcer.SetInstitutionRole(uid, iid, policies.RoleFor(newRole)); err != nil {
		a.serverError(w, r, err)
		return
	}
	if newRole == "" {
		a.flash(w, r, "success", "members.removed", target.Name)
		if uid == v.User.ID {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
	} else {
		a.flash(w, r, "success", "members.role.changed", target.Name)
	}
	http.Redirect(w, r, fmt.Sprintf("/i/%d/members", iid), http.StatusSeeOther)
}

// ---- accepting an invitation ----

type pendingInvitation struct {
	ID              int64      `db:"id"`
	InstitutionID   int64      `db:"institution_id"`
	InstitutionName string     `db:"institution_name"`
	Email           string     `db:"email"`
	Role            string     `db:"role"`
	ExpiresAt       time.Time  `db:"expires_at"`
	AcceptedAt      *time.Time `db:"accepted_at"`
	RevokedAt       *time.Time `db:"revoked_at"`
}

// lookupInvitation returns the invitation of a token and the i18n key of
// why it cannot be used ("" when usable).
func (a *App) lookupInvitation(ctx context.Context, tok string) (*pendingInvitation, string, error) {
	var inv pendingInvitation
	err := a.DB.R.GetContext(ctx, &inv, `SELECT i.id, i.institution_id, n.name AS institution_name, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at
		FROM invitations i JOIN institutions n ON n.id = i.institution_id WHERE i.token_hash = ?`, hashToken(tok))
	if err = db.NotFound(err); errors.Is(err, db.ErrNotFound) {
		return nil, "invite.invalid", nil
	} else if err != nil {
		return nil, "", err
	}
	switch {
	case inv.AcceptedAt != nil:
		return &inv, "invite.used", nil
	case inv.RevokedAt != nil:
		return &inv, "invite.invalid", nil
	case a.now().After(inv.ExpiresAt):
		return &inv, "invite.expired", nil
	}
	return &inv, "", nil
}

func (a *App) invitationPage(w http.ResponseWriter, r *http.Request) {
	a.renderInvitation(w, r, http.StatusOK, emptyForm())
}

func (a *App) renderInvitation(w http.ResponseWriter, r *http.Request, status int, f *Form) {
	tok := mux.Vars(r)["token"]
	inv, problem, err := a.lookupInvitation(r.Context(), tok)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if problem != "" {
		a.render(w, r, http.StatusGone, "invite", &Page{Title: a.T(r, "invite.title"), Data: map[string]any{"Problem": a.T(r, problem)}})
		return
	}
	data := map[string]any{"Invitation": inv, "Token": tok}
	v := viewerOf(r)
	switch {
	case v != nil && !strings.EqualFold(v.User.Email, inv.Email):
		data["WrongUser"] = true
	case v != nil:
		data["CanAccept"] = true
	default:
		if _, err := a.userByEmail(r.Context(), inv.Email); err == nil {
			data["NeedLogin"] = true
		} else if errors.Is(err, db.ErrNotFound) {
			data["NeedAccount"] = true
		} else {
			a.serverError(w, r, err)
			return
		}
	}
	a.render(w, r, status, "invite", &Page{Title: a.T(r, "invite.title"), Form: f, Data: data})
}

// acceptInvitation joins the institution, creating the account first when
// the invited address has none. The token is consumed in the same
// transaction, so it works exactly once.
func (a *App) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	ctx, tok := r.Context(), mux.Vars(r)["token"]
	inv, problem, err := a.lookupInvitation(ctx, tok)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if problem != "" {
		a.render(w, r, http.StatusGone, "invite", &Page{Title: a.T(r, "invite.title"), Data: map[string]any{"Problem": a.T(r, problem)}})
		return
	}
	v := viewerOf(r)
	f := newForm(r)
	var hash, name string
	if v == nil {
		if _, err := a.userByEmail(ctx, inv.Email); err == nil {
			http.Redirect(w, r, "/login?next=/invite/"+tok, http.StatusSeeOther)
			return
		}
		a.refuseBadCharacters(r, f, "name")
		name = f.Get("name")
		pw := f.Raw("password")
		if name == "" {
			f.Fail("name", a.T(r, "field.required"))
		} else if runeLen(name) < 2 {
			f.Fail("name", a.T(r, "field.too_short", 2))
		} else if runeLen(name) > 100 {
			f.Fail("name", a.T(r, "field.too_long", 100))
		}
		if p := passwordProblem(pw, inv.Email, name); p != "" {
			f.Fail("password", a.T(r, p, MinPasswordLength))
		} else if pw != f.Raw("password_confirm") {
			f.Fail("password_confirm", a.T(r, "password.mismatch"))
		}
		f.Values.Del("password")
		f.Values.Del("password_confirm")
		if !f.Valid() {
			a.renderInvitation(w, r, http.StatusUnprocessableEntity, f)
			return
		}
		hash = a.hasher.Hash(pw)
	} else if !strings.EqualFold(v.User.Email, inv.Email) {
		a.renderInvitation(w, r, http.StatusForbidden, f)
		return
	}
	var userID int64
	var stale bool
	err = a.writeTx(ctx, func(tx *sqlx.Tx) error {
		now := a.now()
		res, err := tx.ExecContext(ctx, `UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?`, now, inv.ID, now)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			stale = true // used in a concurrent request
			return nil
		}
		actor := inv.Email
		if v != nil {
			userID = v.User.ID
		} else {
			res, err := tx.ExecContext(ctx, `INSERT INTO users (email, name, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?)`,
				inv.Email, name, hash, now, now)
			if err != nil {
				return err
			}
			userID, _ = res.LastInsertId()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE invitations SET accepted_by = ? WHERE id = ?`, userID, inv.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (institution_id, user_id, role, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (institution_id, user_id) DO NOTHING`, inv.InstitutionID, userID, inv.Role, now); err != nil {
			return err
		}
		if err := db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &userID, Actor: actor, InstitutionID: &inv.InstitutionID,
			Action: "member.join", Target: inv.Email, Detail: "role=" + inv.Role, ClientIP: a.Resolver.String(r)}); err != nil {
			return err
		}
		if v == nil {
			return a.startSession(w, r, tx, userID)
		}
		return nil
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if stale {
		a.render(w, r, http.StatusGone, "invite", &Page{Title: a.T(r, "invite.title"), Data: map[string]any{"Problem": a.T(r, "invite.used")}})
		return
	}
	if err := a.Enforcer.SetInstitutionRole(userID, inv.InstitutionID, policies.RoleFor(inv.Role)); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "invite.accepted", inv.InstitutionName)
	http.Redirect(w, r, fmt.Sprintf("/i/%d/", inv.InstitutionID), http.StatusSeeOther)
}
