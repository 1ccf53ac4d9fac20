package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The journey: register, log in, invite, accept in another
// session, change the role, and see it all in the audit log.
func TestOnboardingJourney(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "maria@comune1.example.it")
	page := admin.get(fmt.Sprintf("/i/%d/", inst))
	if page.Status != 200 {
		t.Fatalf("dashboard: %d", page.Status)
	}
	mustContain(t, page, "Comune di Prova 1", "L'ente Comune di Prova 1 è registrato", "Sei amministratore")

	// Log out, log in again: the session is new.
	r := admin.post("/logout", nil)
	if r.Status != http.StatusSeeOther || admin.get(fmt.Sprintf("/i/%d/", inst)).Status != http.StatusSeeOther {
		t.Fatal("logout did not end the session")
	}
	admin = e.login("maria@comune1.example.it", testPassword)

	colleague := e.inviteAndJoin(admin, inst, "luca@comune1.example.it", "operator")
	page = colleague.get(fmt.Sprintf("/i/%d/", inst))
	mustContain(t, page, "Benvenuto in Comune di Prova 1", "Sei operatore")
	// An operator cannot manage members.
	var lucaID int64
	if err := e.DB.R.Get(&lucaID, `SELECT id FROM users WHERE email = 'luca@comune1.example.it'`); err != nil {
		t.Fatal(err)
	}
	if r := colleague.post(fmt.Sprintf("/i/%d/members/%d/role", inst, lucaID), url.Values{"role": {"admin"}}); r.Status != http.StatusForbidden {
		t.Fatalf("operator promoted self: %d", r.Status)
	}
	// The admin promotes the colleague.
	r = admin.post(fmt.Sprintf("/i/%d/members/%d/role", inst, lucaID), url.Values{"role": {"admin"}})
	mustContain(t, admin.follow(r), "Il ruolo di Luca Bianchi è stato aggiornato.")
	mustContain(t, colleague.get(fmt.Sprintf("/i/%d/", inst)), "Sei amministratore")

	audit := admin.get(fmt.Sprintf("/i/%d/audit", inst))
	mustContain(t, audit, "institution.register", "member.invite", "member.join", "member.role", "luca@comune1.example.it")
	if e.count(`SELECT count(*) FROM audit_events WHERE action = 'login' AND actor = 'maria@comune1.example.it'`) != 1 {
		t.Error("login not audited")
	}
}

func TestRegistrationRefusesBadInputAndChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "first@comune.example.it")
	good := url.Values{
		"inst_name": {"Comune di Altrove"}, "inst_fiscal_code": {orgCode(2)}, "inst_pec": {"pec@pec.example.it"},
		"name": {"Anna Verdi"}, "email": {"anna@altrove.example.it"}, "password": {testPassword}, "password_confirm": {testPassword},
	}
	badCheck := orgCode(2)
	badCheck = badCheck[:10] + string('0'+(badCheck[10]-'0'+1)%10)
	cases := []struct {
		name, field, value, want string
	}{
		{"check digit", "inst_fiscal_code", badCheck, "cifra di controllo non corrisponde"},
		{"short code", "inst_fiscal_code", "1234", "11 cifre"},
		{"duplicate institution", "inst_fiscal_code", orgCode(1), "Questo ente è già registrato. Chiedi a un amministratore"},
		{"weak password", "password", "password1234", "tra le più usate"},
		{"short password", "password", "corta", "almeno 12 caratteri"},
		{"bad pec", "inst_pec", "not-an-email", "indirizzo email valido"},
		{"taken email", "email", "first@comune.example.it", "Esiste già un account"},
	}
	before := e.count(`SELECT count(*) FROM institutions`)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range good {
				f[k] = v
			}
			f.Set(tc.field, tc.value)
			if tc.field == "password" {
				f.Set("password_confirm", tc.value)
			}
			r := e.newClient().post("/register", f)
			if r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d", r.Status)
			}
			mustContain(t, r, tc.want, `id="f-`+tc.field+`-error"`, `aria-invalid="true"`)
			if strings.Contains(r.Body, testPassword) {
				t.Error("password echoed back into the page")
			}
		})
	}
	if after := e.count(`SELECT count(*) FROM institutions`); after != before {
		t.Fatalf("institutions %d → %d", before, after)
	}
	if e.count(`SELECT count(*) FROM users WHERE email = 'anna@altrove.example.it'`) != 0 {
		t.Fatal("user created by a refused registration")
	}
}

func TestInvitationSingleUseAndExpiry(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "admin@comune.example.it")
	invite := func(email string) string {
		r := admin.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {email}, "role": {"operator"}})
		m := regexp.MustCompile(`http://sportello.test(/invite/[A-Za-z0-9_-]+)`).FindStringSubmatch(r.Body)
		if m == nil {
			t.Fatalf("no link: %s", snippet(r.Body))
		}
		return m[1]
	}
	form := url.Values{"name": {"Piero Neri"}, "password": {testPassword}, "password_confirm": {testPassword}}

	link := invite("piero@comune.example.it")
	if r := e.newClient().post(link, form); r.Status != http.StatusSeeOther {
		t.Fatalf("first accept: %d", r.Status)
	}
	r := e.newClient().post(link, form)
	if r.Status != http.StatusGone {
		t.Fatalf("second use: %d", r.Status)
	}
	mustContain(t, r, "Questo invito è già stato usato.")

	expired := invite("paola@comune.example.it")
	e.clock.Advance(49 * time.Hour)
	r = e.newClient().post(expired, url.Values{"name": {"Paola"}, "password": {testPassword}, "password_confirm": {testPassword}})
	if r.Status != http.StatusGone {
		t.Fatalf("expired invite: %d", r.Status)
	}
	mustContain(t, r, "Questo invito è scaduto")
	if e.count(`SELECT count(*) FROM users WHERE email = 'paola@comune.example.it'`) != 0 {
		t.Fatal("expired invitation created an account")
	}
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "admin@comune.example.it")
	req, _ := http.NewRequest("POST", e.Srv.URL+fmt.Sprintf("/i/%d/members/invite", inst), strings.NewReader("email=evil%40x.example.it&role=admin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	r := admin.do(req)
	if r.Status != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", r.Status)
	}
	mustContain(t, r, "Richiesta rifiutata")
	req, _ = http.NewRequest("POST", e.Srv.URL+fmt.Sprintf("/i/%d/members/invite", inst), strings.NewReader("email=evil%40x.example.it&role=admin"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example.com")
	if r := admin.do(req); r.Status != http.StatusForbidden {
		t.Fatalf("foreign Origin POST: %d", r.Status)
	}
	if e.count(`SELECT count(*) FROM invitations`) != 0 {
		t.Fatal("forged request created an invitation")
	}
}

func TestSecurityHeadersAndCookie(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient()
	r := c.post("/register", url.Values{
		"inst_name": {"Comune X"}, "inst_fiscal_code": {orgCode(5)}, "inst_pec": {"p@pec.example.it"},
		"name": {"Ada"}, "email": {"ada@x.example.it"}, "password": {testPassword}, "password_confirm": {testPassword},
	})
	cookie := r.Header.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Lax"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("cookie %q lacks %s", cookie, want)
		}
	}
	page := c.get("/")
	csp := page.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %s", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Error("CSP allows inline code")
	}
	if page.Header.Get("X-Content-Type-Options") != "nosniff" || page.Header.Get("Referrer-Policy") == "" {
		t.Error("missing nosniff or Referrer-Policy")
	}
	if strings.Contains(page.Body, "<script>") || strings.Contains(page.Body, " style=") {
		t.Error("inline script or style in page")
	}
	if hsts := page.Header.Get("Strict-Transport-Security"); hsts != "" {
		t.Errorf("HSTS %q on a plain-http portal", hsts)
	}
}

// Behind TLS (an https base URL) the portal tells browsers to stay on
// https, and its cookie is Secure.
func TestHTTPSPortalSendsHSTSAndSecureCookies(t *testing.T) {
	e := newTestEnv(t, func(d *Deps) { d.BaseURL = "https://sportello.example.it" })
	page := e.newClient().get("/login")
	if hsts := page.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(hsts, "max-age=") {
		t.Fatalf("Strict-Transport-Security %q", hsts)
	}
	// Registering signs the new admin in: the session cookie is set.
	r := e.newClient().post("/register", url.Values{
		"inst_name": {"Comune di Prova"}, "inst_fiscal_code": {orgCode(1)}, "inst_pec": {"protocollo@pec.example.it"},
		"name": {"Maria Rossi"}, "email": {"maria@comune.example.it"}, "password": {testPassword}, "password_confirm": {testPassword},
	})
	cookies := r.Header.Values("Set-Cookie")
	if len(cookies) == 0 {
		t.Fatal("no cookie set: nothing to check")
	}
	for _, cookie := range cookies {
		if !strings.Contains(cookie, "Secure") {
			t.Errorf("cookie %q is not Secure", cookie)
		}
	}
}

func TestSessionRotationAndLogoutEverywhere(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "a@comune.example.it")
	c1 := e.login("a@comune.example.it", testPassword)
	c2 := e.login("a@comune.example.it", testPassword)
	if e.count(`SELECT count(*) FROM sessions`) < 2 {
		t.Fatal("sessions not recorded")
	}
	// Logging in again from c1 rotates its session id: the old row goes away.
	before := e.count(`SELECT count(*) FROM sessions`)
	r := c1.post("/login", url.Values{"email": {"a@comune.example.it"}, "password": {testPassword}})
	if r.Status != http.StatusSeeOther || e.count(`SELECT count(*) FROM sessions`) != before {
		t.Fatalf("re-login did not replace the session (%d)", r.Status)
	}
	r = c1.post("/account/sessions/end", nil)
	if r.Status != http.StatusSeeOther {
		t.Fatalf("end sessions: %d", r.Status)
	}
	for i, c := range []*client{c1, c2} {
		if r := c.get("/account"); r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Location, "/login") {
			t.Errorf("client %d still signed in: %d", i+1, r.Status)
		}
	}
}

func TestPasswordChangeEndsOtherSessions(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "a@comune.example.it")
	c1 := e.login("a@comune.example.it", testPassword)
	c2 := e.login("a@comune.example.it", testPassword)
	newPw := "un'altra frase lunga 2026"
	r := c1.post("/account/password", url.Values{"current_password": {"sbagliata!!!!!"}, "password": {newPw}, "password_confirm": {newPw}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("wrong current password: %d", r.Status)
	}
	mustContain(t, r, "La password attuale non è corretta.")
	r = c1.post("/account/password", url.Values{"current_password": {testPassword}, "password": {newPw}, "password_confirm": {newPw}})
	mustContain(t, c1.follow(r), "Password cambiata")
	if r := c2.get("/account"); r.Status != http.StatusSeeOther {
		t.Fatal("other session survived the password change")
	}
	e.login("a@comune.example.it", newPw)
}

func TestIdleTimeout(t *testing.T) {
	e := newTestEnv(t)
	c, inst := e.registerInst(1, "a@comune.example.it")
	e.clock.Advance(IdleTimeout + time.Minute)
	if r := c.get(fmt.Sprintf("/i/%d/", inst)); r.Status != http.StatusSeeOther {
		t.Fatalf("idle session still valid: %d", r.Status)
	}
}

func TestLoginThrottleDoesNotRevealAccounts(t *testing.T) {
	e := newTestEnv(t)
	e.App.throttle.sleep = func(time.Duration) {} // the slowing is not what is tested
	e.registerInst(1, "a@comune.example.it")
	c := e.newClient()
	var known, unknown string
	for i := 0; i < 10; i++ {
		r := c.post("/login", url.Values{"email": {"a@comune.example.it"}, "password": {"sbagliata-" + fmt.Sprint(i)}})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.Status)
		}
		known = r.Body
	}
	unknown = c.post("/login", url.Values{"email": {"nessuno@comune.example.it"}, "password": {"x"}}).Body
	if !strings.Contains(known, "Email o password non corrette.") || !strings.Contains(unknown, "Email o password non corrette.") {
		t.Fatal("failure messages differ between known and unknown accounts")
	}
	// The account is now refused even with the right password.
	r := c.post("/login", url.Values{"email": {"a@comune.example.it"}, "password": {testPassword}})
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("after 10 failures: %d", r.Status)
	}
	mustContain(t, r, "Troppi tentativi")
	if e.count(`SELECT count(*) FROM audit_events WHERE action = 'login.failed'`) < 10 {
		t.Error("failed logins not audited")
	}
}

func TestLastAdminCannotLeave(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "a@comune.example.it")
	var id int64
	_ = e.DB.R.Get(&id, `SELECT id FROM users WHERE email = 'a@comune.example.it'`)
	for _, path := range []string{fmt.Sprintf("/i/%d/members/%d/remove", inst, id), fmt.Sprintf("/i/%d/members/%d/role", inst, id)} {
		r := admin.post(path, url.Values{"role": {"operator"}})
		mustContain(t, admin.follow(r), "almeno un amministratore")
	}
	if e.count(`SELECT count(*) FROM memberships WHERE role = 'admin' AND institution_id = ?`, inst) != 1 {
		t.Fatal("last admin removed or demoted")
	}
}

func TestSuspendedInstitution(t *testing.T) {
	e := newTestEnv(t)
	member, inst := e.registerInst(1, "a@comune.example.it")
	pa := e.platformAdmin("root@sportello.example.it")
	mustContain(t, pa.get("/admin/institutions"), "Comune di Prova 1")
	r := pa.post(fmt.Sprintf("/admin/institutions/%d/suspend", inst), url.Values{"reason": {"verifica"}})
	mustContain(t, pa.follow(r), "è stato sospeso")
	if r := member.get(fmt.Sprintf("/i/%d/members", inst)); r.Status != http.StatusForbidden {
		t.Fatalf("suspended institution member: %d", r.Status)
	}
	if r := member.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {"x@y.example.it"}, "role": {"operator"}}); r.Status != http.StatusForbidden {
		t.Fatalf("suspended institution invite: %d", r.Status)
	}
	r = pa.post(fmt.Sprintf("/admin/institutions/%d/reactivate", inst), nil)
	pa.follow(r)
	if r := member.get(fmt.Sprintf("/i/%d/members", inst)); r.Status != http.StatusOK {
		t.Fatalf("after reactivation: %d", r.Status)
	}
	// Non-admins cannot reach the console.
	if r := member.get("/admin"); r.Status != http.StatusForbidden {
		t.Fatalf("member on /admin: %d", r.Status)
	}
	mustContain(t, pa.get("/admin/audit?action=institution.s"), "institution.suspend")
}

func TestEnglishAvailable(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient()
	r := c.post("/lang", url.Values{"lang": {"en"}, "next": {"/login"}})
	if r.Location != "/login" {
		t.Fatalf("lang redirect %q", r.Location)
	}
	mustContain(t, c.get("/login"), `<html lang="en">`, "Sign in")
	// No open redirect through the switch.
	if r := c.post("/lang", url.Values{"lang": {"it"}, "next": {"//evil.example.com"}}); r.Location != "/" {
		t.Fatalf("open redirect to %q", r.Location)
	}
}

func TestOnePersonSeveralInstitutions(t *testing.T) {
	e := newTestEnv(t)
	c, inst1 := e.registerInst(1, "a@comune.example.it")
	// Signed in, the person registers a second institution without retyping who they are.
	r := c.post("/register", url.Values{"inst_name": {"Unione dei Comuni"}, "inst_fiscal_code": {orgCode(9)}, "inst_pec": {"unione@pec.example.it"}})
	if r.Status != http.StatusSeeOther {
		t.Fatalf("second registration: %d %s", r.Status, snippet(r.Body))
	}
	home := c.get("/")
	if home.Status != http.StatusOK {
		t.Fatalf("home with two institutions: %d", home.Status)
	}
	mustContain(t, home, "I tuoi enti", "Comune di Prova 1", "Unione dei Comuni")
	mustContain(t, c.get(fmt.Sprintf("/i/%d/", inst1)), "Cambia ente")
}

// Parallel guesses cannot get past the limit: an attempt counts when it
// starts, not once its (slow) password check has failed. The hash is made
// slow enough here that every request arrives before the first one fails.
func TestLoginThrottleHoldsUnderConcurrentGuesses(t *testing.T) {
	e := newTestEnv(t, func(d *Deps) { d.PasswordCost = PasswordCost{MemoryKiB: 8 * 1024, Time: 3} })
	e.App.throttle.sleep = func(time.Duration) {}
	e.registerInst(1, "a@comune.example.it")
	const guesses = 40
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := 0; i < guesses; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.newClient().post("/login", url.Values{"email": {"a@comune.example.it"}, "password": {fmt.Sprint("sbagliata-", i)}})
			statuses <- r.Status
		}(i)
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[http.StatusUnauthorized] != throttleAccountMax || counts[http.StatusTooManyRequests] != guesses-throttleAccountMax {
		t.Fatalf("answers %v: want %d passwords checked and the rest refused", counts, throttleAccountMax)
	}
}

// Guessing the current password on the account page counts like failed
// logins, so a stolen session cannot try passwords without limit.
func TestPasswordChangeGuessesAreLimited(t *testing.T) {
	e := newTestEnv(t)
	e.App.throttle.sleep = func(time.Duration) {}
	e.App.pwChangeThrottle.sleep = func(time.Duration) {}
	c, _ := e.registerInst(1, "a@comune.example.it")
	// Failed logins by someone who only knows the address do not block
	// the signed-in owner's password change.
	for i := 0; i < throttleAccountMax; i++ {
		e.newClient().post("/login", url.Values{"email": {"a@comune.example.it"}, "password": {fmt.Sprint("altro-", i)}})
	}
	okPw := "una frase nuova e lunga 55"
	if r := c.post("/account/password", url.Values{"current_password": {testPassword}, "password": {okPw}, "password_confirm": {okPw}}); r.Status != http.StatusSeeOther {
		t.Fatalf("owner's password change after others' failed logins: %d, want 303", r.Status)
	}
	testPassword := okPw
	var before string
	_ = e.DB.R.Get(&before, `SELECT password_hash FROM users WHERE email = 'a@comune.example.it'`)
	newPw := "un'altra frase lunga 77"
	for i := 0; i < throttleAccountMax; i++ {
		r := c.post("/account/password", url.Values{"current_password": {fmt.Sprint("sbagliata-", i)}, "password": {newPw}, "password_confirm": {newPw}})
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("guess %d: %d", i, r.Status)
		}
	}
	r := c.post("/account/password", url.Values{"current_password": {testPassword}, "password": {newPw}, "password_confirm": {newPw}})
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("after %d wrong guesses the right one: %d, want 429", throttleAccountMax, r.Status)
	}
	mustContain(t, r, "Troppi tentativi")
	if e.count(`SELECT count(*) FROM users WHERE email = 'a@comune.example.it' AND password_hash = ?`, before) != 1 {
		t.Fatal("password changed after the limit")
	}
}

// At most len(slots) hashes run at once; the next waits for a slot.
func TestPasswordHashingIsBounded(t *testing.T) {
	h := newPasswordHasher(cheapCost)
	for i := 0; i < cap(h.slots); i++ {
		h.slots <- struct{}{}
	}
	done := make(chan string)
	go func() { done <- h.Hash("una frase lunga e sicura") }()
	select {
	case <-done:
		t.Fatal("a hash ran with every slot taken")
	case <-time.After(100 * time.Millisecond):
	}
	<-h.slots
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the hash did not run once a slot was free")
	}
}

// Names reach the admin console, the audit log, mails and citizens' apps:
// a text-direction override or a control character in one is refused next
// to its field, and nothing is stored.
func TestNamesRefuseControlAndDirectionCharacters(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient()
	r := c.post("/register", url.Values{
		"inst_name": {"Comune \u202eOIDUAR\u202c B"}, "inst_fiscal_code": {orgCode(7)}, "inst_pec": {"protocollo@pec.example.it"},
		"name": {"Maria\x07 Rossi"}, "email": {"maria@comune.example.it"}, "password": {testPassword}, "password_confirm": {testPassword},
	})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("register with a direction override: %d", r.Status)
	}
	mustContain(t, r, `id="f-inst_name-error"`, `id="f-name-error"`, "carattere non ammesso (U+202E)", "carattere non ammesso (U+0007)")
	if e.count(`SELECT count(*) FROM institutions`) != 0 || e.count(`SELECT count(*) FROM users WHERE email = 'maria@comune.example.it'`) != 0 {
		t.Fatal("stored despite the refusal")
	}

	admin, inst := e.registerInst(1, "admin@comune.example.it")
	settings := fmt.Sprintf("/i/%d/settings", inst)
	r = admin.post(settings, url.Values{"inst_name": {"Comune di Prova\u2066 1"}, "inst_pec": {"protocollo1@pec.example.it"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("settings with an isolate: %d", r.Status)
	}
	mustContain(t, r, "carattere non ammesso (U+2066)")

	sid := e.createService(admin, inst, "TARI")
	card := validCard("Pagamenti \u202eATOUQ\u202c")
	r = admin.post(fmt.Sprintf("/i/%d/services/%s/card", inst, sid), card)
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("card with a direction override in the name: %d", r.Status)
	}
	mustContain(t, r, `id="f-name-error"`, "carattere non ammesso (U+202E)")
	// The description is markdown: its line breaks are fine.
	card = validCard("TARI")
	card.Set("description", card.Get("description")+"\n\nSeconda riga.")
	if r := admin.post(fmt.Sprintf("/i/%d/services/%s/card", inst, sid), card); r.Status != http.StatusSeeOther {
		t.Fatalf("description with line breaks: %d %s", r.Status, snippet(r.Body))
	}

	r = admin.post(fmt.Sprintf("/i/%d/members/invite", inst), url.Values{"email": {"piero@comune.example.it"}, "role": {"operator"}})
	link := regexp.MustCompile(`http://sportello.test(/invite/[A-Za-z0-9_-]+)`).FindStringSubmatch(r.Body)
	if link == nil {
		t.Fatalf("no invitation link: %s", snippet(r.Body))
	}
	r = e.newClient().post(link[1], url.Values{"name": {"Piero\x1b[31m Neri"}, "password": {testPassword}, "password_confirm": {testPassword}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("joining with an escape in the name: %d", r.Status)
	}
	mustContain(t, r, "carattere non ammesso (U+001B)")
}

// Registration says when an address already has an account, so probing
// addresses through it is limited per IP like failed logins.
func TestRegistrationLookupsAreLimited(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "a@comune.example.it")
	var last resp
	for i := 0; i <= throttleIPMax; i++ {
		last = e.newClient().post("/register", url.Values{
			"inst_name": {fmt.Sprintf("Comune Sonda %d", i)}, "inst_fiscal_code": {orgCode(100 + i)}, "inst_pec": {"p@pec.example.it"},
			"name": {"Sonda"}, "email": {fmt.Sprintf("persona%d@comune.example.it", i)}, "password": {testPassword}, "password_confirm": {testPassword},
		})
		if i < throttleIPMax-1 && last.Status != http.StatusSeeOther {
			t.Fatalf("registration %d: %d", i, last.Status)
		}
	}
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("registration %d from one IP: %d, want 429", throttleIPMax+1, last.Status)
	}
	mustContain(t, last, "Troppi tentativi")
}

// A platform admin created from the command line while the server runs
// (another process: "sportello admin create") reaches the console at once;
// the server's casbin roles had been loaded at start only, so the new
// admin got 403 until a restart.
func TestPlatformAdminCreatedWhileRunningReachesTheConsole(t *testing.T) {
	e := newTestEnv(t)
	_, inst := e.registerInst(1, "anna@comune.example.it")
	if err := CreatePlatformAdmin(context.Background(), e.DB, "nuovo@sportello.example.it", testPassword); err != nil {
		t.Fatal(err)
	}
	c := e.login("nuovo@sportello.example.it", testPassword)
	if r := c.get("/admin"); r.Status != http.StatusOK {
		t.Fatalf("console for an admin created while running: %d", r.Status)
	}
	if r := c.get(fmt.Sprintf("/i/%d/", inst)); r.Status != http.StatusOK {
		t.Fatalf("an institution's page for that admin: %d", r.Status)
	}
}
