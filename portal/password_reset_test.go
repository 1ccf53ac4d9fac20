package portal

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"sportello/messaging/channels"
)

var resetLink = regexp.MustCompile(`/password/reset/([A-Za-z0-9_-]+)`)

// mailedResets wires the portal to a real SMTP server on loopback and
// returns a function giving the token of the newest reset mail to addr.
func (e *testEnv) mailedResets() func(addr string) string {
	e.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	inbox := &smtpInbox{}
	srv := smtp.NewServer(inbox)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	go srv.Serve(ln)
	e.t.Cleanup(func() { srv.Close() })
	mailer, err := channels.ParseSMTPURL("smtp://"+ln.Addr().String(), "sportello@example.it")
	if err != nil {
		e.t.Fatal(err)
	}
	e.App.Mailer = mailer
	seen := 0
	return func(addr string) string {
		e.t.Helper()
		for i := 0; i < 250; i++ {
			inbox.mu.Lock()
			msgs := append([]string(nil), inbox.msgs...)
			inbox.mu.Unlock()
			for j := len(msgs) - 1; j >= seen; j-- {
				if strings.HasPrefix(msgs[j], "To-Envelope: "+addr+"\n") {
					if m := resetLink.FindStringSubmatch(strings.ReplaceAll(msgs[j], "=\r\n", "")); m != nil {
						seen = len(msgs)
						return m[1]
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		e.t.Fatalf("no reset mail to %s", addr)
		return ""
	}
}

func TestPasswordReset(t *testing.T) {
	e := newTestEnv(t)
	lastResetToken := e.mailedResets()
	const email = "anna@comune.example.it"
	signedIn, _ := e.registerInst(1, email)
	anon := e.newClient()

	// The login page offers the way out.
	mustContain(t, anon.get("/login"), `href="/password/forgot"`, "Password dimenticata?")

	// A malformed address is a field error; nothing is stored.
	r := anon.post("/password/forgot", url.Values{"email": {"non-una-email"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad email: %d", r.Status)
	}
	mustContain(t, r, "Scrivi un indirizzo email valido")

	// An unknown address gets the same answer as a known one, and no mail.
	unknown := anon.post("/password/forgot", url.Values{"email": {"nessuno@comune.example.it"}})
	known := anon.post("/password/forgot", url.Values{"email": {email}})
	if unknown.Status != 200 || known.Status != 200 {
		t.Fatalf("forgot: %d / %d", unknown.Status, known.Status)
	}
	mustContain(t, unknown, "corrisponde a un account")
	mustContain(t, known, "corrisponde a un account")
	// The link travels only by mail: never in the outbox admins can read.
	if n := e.count(`SELECT count(*) FROM mail_outbox`); n != 0 {
		t.Fatalf("%d reset mails stored in the mail outbox", n)
	}
	if n := e.count(`SELECT count(*) FROM password_resets`); n != 1 {
		t.Fatalf("%d reset links, want 1", n)
	}
	tok := lastResetToken(email)
	if n := e.count(`SELECT count(*) FROM password_resets WHERE token_hash = ?`, tok); n != 0 {
		t.Fatal("the token is stored in clear")
	}

	// A newer request makes the older link useless.
	anon.post("/password/forgot", url.Values{"email": {email}})
	newer := lastResetToken(email)
	if r := anon.get("/password/reset/" + tok); r.Status != http.StatusGone {
		t.Fatalf("older link after a newer one: %d", r.Status)
	}
	tok = newer

	page := anon.get("/password/reset/" + tok)
	if page.Status != 200 {
		t.Fatalf("reset page: %d", page.Status)
	}
	mustContain(t, page, "Scegli una nuova password", `autocomplete="new-password"`)

	// Weak or mismatched passwords are refused next to the field; the link
	// stays usable.
	r = anon.post("/password/reset/"+tok, url.Values{"password": {"corta"}, "password_confirm": {"corta"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("short password: %d", r.Status)
	}
	mustContain(t, r, "almeno 12 caratteri")
	r = anon.post("/password/reset/"+tok, url.Values{"password": {"una nuova frase segreta 7"}, "password_confirm": {"un'altra frase"}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("mismatch: %d", r.Status)
	}
	mustContain(t, r, "non coincidono")

	const newPassword = "una nuova frase segreta 7"
	r = anon.post("/password/reset/"+tok, url.Values{"password": {newPassword}, "password_confirm": {newPassword}})
	if r.Status != http.StatusSeeOther || r.Location != "/login" {
		t.Fatalf("reset: %d %q %s", r.Status, r.Location, snippet(r.Body))
	}
	mustContain(t, anon.follow(r), "Password aggiornata")

	// The old sessions are over, the old password no longer works, the new one does.
	if r := signedIn.get("/account"); r.Status != http.StatusSeeOther {
		t.Fatalf("session opened before the reset still works: %d", r.Status)
	}
	if r := e.newClient().post("/login", url.Values{"email": {email}, "password": {testPassword}}); r.Status != http.StatusUnauthorized {
		t.Fatalf("old password: %d", r.Status)
	}
	e.login(email, newPassword)

	// The link works once.
	if r := anon.post("/password/reset/"+tok, url.Values{"password": {"ancora un'altra frase 9"}, "password_confirm": {"ancora un'altra frase 9"}}); r.Status != http.StatusGone {
		t.Fatalf("second use: %d", r.Status)
	}
	mustContain(t, anon.get("/password/reset/"+tok), "non è valido", `href="/password/forgot"`)
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action IN ('password.reset.request', 'password.reset')`); n != 3 {
		t.Fatalf("%d audit events, want 2 requests and 1 reset", n)
	}

	// Links expire after an hour.
	anon.post("/password/forgot", url.Values{"email": {email}})
	late := lastResetToken(email)
	e.clock.Advance(PasswordResetTTL + time.Minute)
	if r := anon.get("/password/reset/" + late); r.Status != http.StatusGone {
		t.Fatalf("expired link: %d", r.Status)
	}
}

// Repeated requests for one address are refused before they flood its inbox.
func TestPasswordResetRequestsAreThrottled(t *testing.T) {
	e := newTestEnv(t)
	e.registerInst(1, "anna@comune.example.it")
	e.App.resetThrottle.sleep = func(time.Duration) {}
	c := e.newClient()
	var last resp
	for i := 0; i < throttleAccountMax+1; i++ {
		last = c.post("/password/forgot", url.Values{"email": {"anna@comune.example.it"}})
	}
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("request %d: %d, want 429", throttleAccountMax+1, last.Status)
	}
	mustContain(t, last, "Troppi tentativi")
	if n := e.count(`SELECT count(*) FROM password_resets`); n != throttleAccountMax {
		t.Fatalf("%d reset links issued, want %d", n, throttleAccountMax)
	}
}
