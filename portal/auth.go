package portal

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/fiscalcode"
	"sportello/policies"
)

// ---- login / logout ----

func (a *App) loginPage(w http.ResponseWriter, r *http.Request) {
	if viewerOf(r) != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next"), "/"), http.StatusSeeOther)
		return
	}
	f := emptyForm()
	f.Values.Set("next", r.URL.Query().Get("next"))
	a.render(w, r, http.StatusOK, "login", &Page{Title: a.T(r, "login.title"), Form: f})
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	email, pw := f.Get("email"), f.Raw("password")
	ip := a.Resolver.String(r)
	page := &Page{Title: a.T(r, "login.title"), Form: f}
	f.Values.Del("password")

	allowed, delay, retry := a.throttle.Attempt(email, ip)
	if !allowed {
		mins := int(retry.Minutes()) + 1
		f.Fail("email", a.T(r, "login.throttled", mins))
		w.Header().Set("Retry-After", fmt.Sprint(int(retry.Seconds())+1))
		a.render(w, r, http.StatusTooManyRequests, "login", page)
		return
	}
	if delay > 0 {
		a.throttle.sleep(delay)
	}
	u, err := a.userByEmail(r.Context(), email)
	ok := false
	switch {
	case err == nil:
		ok, err = a.hasher.Verify(u.PasswordHash, pw)
	case errors.Is(err, db.ErrNotFound):
		// Same work as a real check, so timing does not tell who exists.
		_, _ = a.hasher.Verify(a.dummyHash(), pw)
		err = nil
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if !ok || email == "" {
		_ = db.Audit(r.Context(), a.DB.W, db.AuditEvent{Actor: truncate(email, 120), Action: "login.failed", ClientIP: ip})
		f.Fail("email", a.T(r, "login.invalid"))
		a.render(w, r, http.StatusUnauthorized, "login", page)
		return
	}
	a.throttle.Succeed(email, ip)
	err = a.writeTx(r.Context(), func(tx *sqlx.Tx) error {
		if err := a.startSession(w, r, tx, u.ID); err != nil {
			return err
		}
		return db.Audit(r.Context(), tx, db.AuditEvent{ActorUserID: &u.ID, Actor: u.Email, Action: "login", ClientIP: ip})
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, safeNext(f.Get("next"), "/"), http.StatusSeeOther)
}

// dummyHash is computed once, lazily, with the app's cost.
func (a *App) dummyHash() string {
	a.dummyOnce.Do(func() { a.dummy = a.hasher.dummy() })
	return a.dummy
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if v := viewerOf(r); v != nil {
		_ = db.Audit(r.Context(), a.DB.W, db.AuditEvent{ActorUserID: &v.User.ID, Actor: v.User.Email, Action: "logout", ClientIP: a.Resolver.String(r)})
	}
	if err := a.endSession(w, r); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "logout.done")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// ---- registration of an institution ----

var registerFields = []string{"inst_name", "inst_fiscal_code", "inst_pec", "name", "email", "password", "password_confirm"}

func (a *App) registerPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "register", &Page{Title: a.T(r, "register.title"), Form: emptyForm()})
}

// checkInstitutionFields validates an institution's name and PEC, at
// registration and in the institution's settings.
func (a *App) checkInstitutionFields(r *http.Request, f *Form, name, pec string) {
	a.refuseBadCharacters(r, f, "inst_name", "inst_pec")
	switch {
	case runeLen(name) < 3:
		f.Fail("inst_name", a.T(r, "register.inst_name.short"))
	case runeLen(name) > 200:
		f.Fail("inst_name", a.T(r, "field.too_long", 200))
	}
	if !validEmail(pec) {
		f.Fail("inst_pec", a.T(r, "field.email"))
	}
}

func (a *App) register(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	v := viewerOf(r) // a signed-in person registers another institution without retyping themselves
	instName, instCF, pec := f.Get("inst_name"), f.Get("inst_fiscal_code"), strings.ToLower(f.Get("inst_pec"))
	name, email, pw := f.Get("name"), strings.ToLower(f.Get("email")), f.Raw("password")

	a.checkInstitutionFields(r, f, instName, pec)
	a.refuseBadCharacters(r, f, "name", "email")
	switch {
	case instCF == "":
		f.Fail("inst_fiscal_code", a.T(r, "field.required"))
	case len(instCF) != 11 || strings.Trim(instCF, "0123456789") != "":
		f.Fail("inst_fiscal_code", a.T(r, "register.inst_fiscal_code.format"))
	case !fiscalcode.ValidOrganization(instCF):
		f.Fail("inst_fiscal_code", a.T(r, "register.inst_fiscal_code.check"))
	}
	if v == nil {
		switch {
		case name == "":
			f.Fail("name", a.T(r, "field.required"))
		case runeLen(name) < 2:
			f.Fail("name", a.T(r, "field.too_short", 2))
		case runeLen(name) > 100:
			f.Fail("name", a.T(r, "field.too_long", 100))
		}
		if !validEmail(email) {
			f.Fail("email", a.T(r, "field.email"))
		}
		if p := passwordProblem(pw, email, name); p != "" {
			f.Fail("password", a.T(r, p, MinPasswordLength))
		} else if pw != f.Raw("password_confirm") {
			f.Fail("password_confirm", a.T(r, "password.mismatch"))
		}
	}
	ctx := r.Context()
	if f.Valid() {
		var n int
		if err := a.DB.R.GetContext(ctx, &n, `SELECT count(*) FROM institutions WHERE fiscal_code = ?`, instCF); err != nil {
			a.serverError(w, r, err)
			return
		}
		if n > 0 {
			f.Fail("inst_fiscal_code", a.T(r, "register.inst_fiscal_code.taken"))
		}
	}
	if f.Valid() && v == nil {
		// The form tells whether an address already has an account (whoever
		// registers must learn why they cannot), so address look-ups are
		// limited per address and per IP, as failed logins are.
		if allowed, _, retry := a.registerThrottle.Attempt(email, a.Resolver.String(r)); !allowed {
			f.Fail("email", a.T(r, "login.throttled", int(retry.Minutes())+1))
			w.Header().Set("Retry-After", fmt.Sprint(int(retry.Seconds())+1))
			f.Values.Del("password")
			f.Values.Del("password_confirm")
			a.render(w, r, http.StatusTooManyRequests, "register", &Page{Title: a.T(r, "register.title"), Form: f})
			return
		}
		if _, err := a.userByEmail(ctx, email); err == nil {
			f.Fail("email", a.T(r, "register.email.taken"))
		} else if !errors.Is(err, db.ErrNotFound) {
			a.serverError(w, r, err)
			return
		}
	}
	f.Values.Del("password")
	f.Values.Del("password_confirm")
	if !f.Valid() {
		a.render(w, r, http.StatusUnprocessableEntity, "register", &Page{Title: a.T(r, "register.title"), Form: f})
		return
	}
	var hash string
	if v == nil {
		hash = a.hasher.Hash(pw)
	}
	ip := a.Resolver.String(r)
	var instID, userID int64
	err := a.writeTx(ctx, func(tx *sqlx.Tx) error {
		now := a.now()
		res, err := tx.ExecContext(ctx, `INSERT INTO institutions (name, fiscal_code, pec, created_at) VALUES (?, ?, ?, ?)`, instName, instCF, pec, now)
		if err != nil {
			return err // the UNIQUE constraint settles a race between two registrations
		}
		instID, _ = res.LastInsertId()
		actor := email
		if v != nil {
			userID, actor = v.User.ID, v.User.Email
		} else {
			res, err = tx.ExecContext(ctx, `INSERT INTO users (email, name, password_hash, created_at, password_changed_at) VALUES (?, ?, ?, ?, ?)`,
				email, name, hash, now, now)
			if err != nil {
				return err
			}
			userID, _ = res.LastInsertId()
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (institution_id, user_id, role, created_at) VALUES (?, ?, 'admin', ?)`, instID, userID, now); err != nil {
			return err
		}
		if err := db.Audit(ctx, tx, db.AuditEvent{ActorUserID: &userID, Actor: actor, InstitutionID: &instID,
			Action: "institution.register", Target: instName + " (" + instCF + ")", ClientIP: ip}); err != nil {
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
	if err := a.Enforcer.SetInstitutionRole(userID, instID, policies.InstAdmin); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(w, r, "success", "register.done", instName)
	http.Redirect(w, r, fmt.Sprintf("/i/%d/", instID), http.StatusSeeOther)
}

// ---- home ----

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if v == nil {
		a.render(w, r, http.StatusOK, "landing", &Page{Title: a.T(r, "landing.title")})
		return
	}
	ms, err := a.membershipsOf(r.Context(), v.User.ID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if len(ms) == 1 && !v.User.IsPlatformAdmin {
		http.Redirect(w, r, fmt.Sprintf("/i/%d/", ms[0].InstitutionID), http.StatusSeeOther)
		return
	}
	if len(ms) == 0 && v.User.IsPlatformAdmin {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "choose", &Page{Title: a.T(r, "choose.title"), Insts: ms})
}

// truncate cuts s to at most n bytes, at a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// hashPassword is used by the CLI to create platform admins.
func HashPassword(pw string) string { return passwordHasher{cost: DefaultPasswordCost}.Hash(pw) }
