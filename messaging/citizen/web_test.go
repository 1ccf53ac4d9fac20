package citizen

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"sportello/messaging/delivery/deliverytest"
)

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t  testing.TB
	e  *env
	hc *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.hc.Get(b.e.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) post(path string, v url.Values) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location") + string(body)
}

// The acceptance journey in the dev web app: sign in with a fiscal
// code, choose MANUAL, enable one service, read its message; the other
// service's message is rejected.
func TestDevWebJourney(t *testing.T) {
	e := newEnv(t)
	a := e.service("Tributi", deliverytest.ServiceOpts{})
	other := e.service("Anagrafe", deliverytest.ServiceOpts{})
	fc := person(9)
	b := e.browser()
	if code, _ := b.get("/citizen/app"); code != http.StatusSeeOther {
		t.Fatalf("app without login: %d", code)
	}
	code, body := b.get("/citizen/login")
	if code != 200 || !strings.Contains(body, "DEV") || !strings.Contains(body, `name="fiscal_code"`) {
		t.Fatalf("login page %d", code)
	}
	if code, _ := b.post("/citizen/login", url.Values{"fiscal_code": {"NOTACODE"}}); code != http.StatusUnprocessableEntity {
		t.Fatalf("bad fiscal code: %d", code)
	}
	if code, _ := b.post("/citizen/login", url.Values{"fiscal_code": {strings.ToLower(fc)}}); code != http.StatusSeeOther {
		t.Fatalf("login: %d", code)
	}
	_, body = b.get("/citizen/app")
	if !strings.Contains(body, `value="MANUAL"`) {
		t.Fatal("first access page lacks the mode choice")
	}
	if strings.Contains(body, fc) {
		t.Fatal("the page shows the full fiscal code")
	}
	if code, _ := b.post("/citizen/app/profile", url.Values{"mode": {"MANUAL"}, "is_inbox_enabled": {"on"}, "email": {""}}); code != http.StatusSeeOther {
		t.Fatalf("save profile: %d", code)
	}
	_, body = b.get("/citizen/app")
	if !strings.Contains(body, "/citizen/app/services/"+a.PublicID) || !strings.Contains(body, "Anagrafe") {
		t.Fatal("services not listed")
	}
	if code, _ := b.post("/citizen/app/services/"+a.PublicID, url.Values{"enable": {"1"}}); code != http.StatusSeeOther {
		t.Fatalf("enable service: %d", code)
	}
	ida := e.send(a, fc, deliverytest.Message{Subject: "Rinnovo carta d'identità", Markdown: "Il suo documento scade tra **trenta giorni**: prenoti un appuntamento all'ufficio anagrafe."})
	idb := e.send(other, fc, deliverytest.Message{})
	e.deliver()
	if s := e.status(idb); s != "REJECTED/SERVICE_NOT_ALLOWED" {
		t.Fatalf("other service: %s", s)
	}
	_, body = b.get("/citizen/app/messages")
	if !strings.Contains(body, "Rinnovo carta d&#39;identità") || !strings.Contains(body, "/citizen/app/messages/"+ida) {
		t.Fatalf("inbox page lacks the message:\n%s", body)
	}
	code, body = b.get("/citizen/app/messages/" + ida)
	if code != 200 || !strings.Contains(body, "<strong>trenta giorni</strong>") {
		t.Fatalf("message page %d", code)
	}
	var read bool
	_ = e.db.R.Get(&read, `SELECT is_read FROM inbox WHERE message_id = ?`, ida)
	if !read {
		t.Fatal("opening the message did not mark it read")
	}
	if code, _ := b.get("/citizen/app/messages/" + idb); code != 404 {
		t.Fatalf("rejected message page: %d", code)
	}
	// A cross-site form post is refused.
	req, _ := http.NewRequest("POST", e.srv.URL+"/citizen/app/delete", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site delete: %d", resp.StatusCode)
	}
}

func TestWebPagesOnlyInDev(t *testing.T) {
	e := newEnv(t)
	prod, err := New(Config{DB: e.db, TokenKey: testKey, EmailKey: testEmailKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/citizen/login", "/citizen/app"} {
		req, _ := http.NewRequest("GET", p, nil)
		rec := &recorder{h: http.Header{}}
		prod.Handler().ServeHTTP(rec, req)
		if rec.code != http.StatusNotFound {
			t.Errorf("%s without Dev: %d", p, rec.code)
		}
	}
}

type recorder struct {
	h    http.Header
	code int
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(c int)           { r.code = c }

// The language switch sets the pages' language over the browser's, and
// only sends people back to citizen pages.
func TestWebLanguageSwitch(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	_, body := b.get("/citizen/login")
	if !strings.Contains(body, `<html lang="it">`) || !strings.Contains(body, `href="#main"`) {
		t.Fatal("login page: not Italian by default, or no skip link")
	}
	code, loc := b.post("/citizen/lang", url.Values{"lang": {"en"}, "next": {"/citizen/login"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, "/citizen/login") {
		t.Fatalf("switch: %d %q", code, loc)
	}
	if _, body = b.get("/citizen/login"); !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "<title>Test sign-in") {
		t.Fatal("login page (or its title) still not in English after the switch")
	}
	// The pages' titles and errors follow the switch too, not only the
	// template's words (the title and the error came from the browser's
	// language).
	if _, body = b.post("/citizen/login", url.Values{"fiscal_code": {"NOTACODE"}}); !strings.Contains(body, "<title>Test sign-in") ||
		!strings.Contains(body, "Invalid fiscal code.") {
		t.Fatalf("refused sign-in in Italian after choosing English:\n%s", body)
	}
	for _, next := range []string{"//evil.example", "https://evil.example/", "/admin"} {
		if _, loc := b.post("/citizen/lang", url.Values{"lang": {"it"}, "next": {next}}); !strings.HasPrefix(loc, "/citizen/app") {
			t.Errorf("next %q redirected to %q", next, loc)
		}
	}
}

// The app lists a test service to its authorized test recipients, marked
// as such, so they can switch it off.
func TestDevWebListsTestServicesToTheirRecipients(t *testing.T) {
	e := newEnv(t)
	draft := e.service("Bozza in prova", deliverytest.ServiceOpts{Draft: true})
	fc := person(21)
	if _, err := e.db.W.Exec(`UPDATE services SET authorized_recipients = json_array(?) WHERE id = ?`, fc, draft.ID); err != nil {
		t.Fatal(err)
	}
	for who, listed := range map[string]bool{fc: true, person(22): false} {
		b := e.browser()
		b.post("/citizen/login", url.Values{"fiscal_code": {who}})
		b.post("/citizen/app/profile", url.Values{"mode": {"AUTO"}, "is_inbox_enabled": {"on"}})
		_, body := b.get("/citizen/app")
		if strings.Contains(body, "Bozza in prova") != listed || strings.Contains(body, "destinatari di test") != listed {
			t.Fatalf("test service listed %v, want %v:\n%s", !listed, listed, body)
		}
		if !listed {
			continue
		}
		if code, _ := b.post("/citizen/app/services/"+draft.PublicID, url.Values{"enable": {"0"}}); code != http.StatusSeeOther {
			t.Fatalf("switch off: %d", code)
		}
		inbox := true
		if err := e.db.R.Get(&inbox, `SELECT is_inbox_enabled FROM service_preferences WHERE fiscal_code = ? AND service_id = ?`, fc, draft.ID); err != nil || inbox {
			t.Fatalf("test service still on (%v)", err)
		}
	}
}

// The app page reads the citizen's stored choices once for all services
// (one query a service made a page of 2,000 services 140-190 ms) and
// applies each as a single look-up does: a choice made under the current
// settings version applies, one from an earlier version does not, no
// choice is the mode's default.
func TestAppPageAppliesStoredChoicesLikeASingleLookUp(t *testing.T) {
	e := newEnv(t)
	on := e.service("Tributi", deliverytest.ServiceOpts{})
	stale := e.service("Anagrafe", deliverytest.ServiceOpts{})
	e.service("Scuola", deliverytest.ServiceOpts{})
	fc := person(9)
	b := e.citizen(fc, "MANUAL")
	b.post("/citizen/app/services/"+on.PublicID, url.Values{"enable": {"1"}})
	version := e.prefVersion(fc)
	e.db.W.MustExec(`INSERT INTO service_preferences (fiscal_code, service_id, is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version, updated_at)
		VALUES (?, ?, 1, 1, 1, ?, ?)`, fc, stale.ID, version-1, time.Now().UTC())
	_, body := b.get("/citizen/app")
	if n := strings.Count(body, "May write to you") + strings.Count(body, "Può scriverti"); n != 1 {
		t.Fatalf("%d services shown as allowed, want 1 (the one chosen under the current version)", n)
	}
	if i, j := strings.Index(body, "Tributi"), strings.Index(body, "Anagrafe"); i < 0 || j < 0 {
		t.Fatal("services not listed")
	}
}
