package portal

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"sportello/gateway"
	"sportello/gateway/keys"
	"sportello/templates/i18n"
)

// withGateway serves the real API beside the portal, on the same database,
// with the portal's ServiceChanged hook wired to its cache as serve.go
// wires it; apiStatus calls it with a key and returns the answer.
func (e *testEnv) withGateway() func(key string) (int, string, string) {
	e.t.Helper()
	gw, err := gateway.New(gateway.Config{DB: e.DB, Catalog: i18n.MustLoad(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	e.t.Cleanup(func() { srv.Close(); _ = gw.Close(e.t.Context()) })
	e.App.Hooks.ServiceChanged = gw.Invalidate
	return func(key string) (int, string, string) {
		e.t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/profiles/AAAAAA00A00A000A", nil)
		req.Header.Set("Ocp-Apim-Subscription-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			e.t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Content-Type"), string(b)
	}
}

// A platform admin suspends one key with a reason, and reactivates it: the
// gateway refuses that key with a 403 key_suspended at once and accepts it
// again at once, the other key keeps working, the institution reads the
// reason on its keys page and in a mail, the audit log has both, and no
// member of the institution can lift the suspension (not even by
// regenerating or revoking the key).
func TestPlatformAdminSuspendsOneKey(t *testing.T) {
	e := newTestEnv(t)
	api := e.withGateway()
	admin, inst := e.registerInst(1, "admin@comune1.example.it")
	sid := e.createService(admin, inst, "Tributi")
	keysURL := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)
	sec := secretsOn(admin.get(keysURL))
	primary, secondary := sec["test_primary"], sec["test_secondary"]
	works := func(key, when string) {
		t.Helper()
		if code, _, body := api(key); code == http.StatusUnauthorized || code == http.StatusForbidden {
			t.Fatalf("%s: %d %s", when, code, body)
		}
	}
	works(primary, "before") // and cached
	var keyID int64
	if err := e.DB.R.Get(&keyID, `SELECT id FROM api_keys WHERE key_hash = ?`, keys.Hash(primary)); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprint(keyID)
	pa := e.platformAdmin("root@sportello.example.it")
	page := pa.get(keysURL)
	mustContain(t, page, `action="`+keysURL+`/suspend"`, `name="key" value="`+id+`"`, `name="reason" required maxlength="500"`)

	// A reason is required: blank (or only invisible characters) is
	// refused next to the field, nothing changes.
	r := pa.post(keysURL+"/suspend", url.Values{"key": {id}, "reason": {"  \u202e "}})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("no reason: %d", r.Status)
	}
	mustContain(t, r, `id="held-`+id+`-error"`, "Scrivi il motivo della sospensione", `aria-invalid="true"`)
	if n := e.count(`SELECT count(*) FROM api_keys WHERE suspended_at IS NOT NULL`); n != 0 {
		t.Fatal("suspended without a reason")
	}
	works(primary, "after a refused suspension")

	r = pa.post(keysURL+"/suspend", url.Values{"key": {id}, "reason": {"Invii ripetuti\u202e allo stesso cittadino\n"}})
	mustContain(t, pa.follow(r), "Chiave di prova primaria sospesa")
	code, ct, body := api(primary)
	if code != http.StatusForbidden || ct != "application/problem+json" || !strings.Contains(body, `"type":"/docs/api#problem-key_suspended"`) ||
		!strings.Contains(body, "sospesa dall'amministrazione della piattaforma") {
		t.Fatalf("suspended key at once: %d %s %s", code, ct, body)
	}
	works(secondary, "the other key")
	var reason string
	_ = e.DB.R.Get(&reason, `SELECT suspended_reason FROM api_keys WHERE id = ?`, keyID)
	if reason != "Invii ripetuti allo stesso cittadino" {
		t.Errorf("stored reason %q", reason)
	}
	var detail string
	_ = e.DB.R.Get(&detail, `SELECT detail FROM audit_events WHERE action = 'key.suspend' AND actor = 'root@sportello.example.it'`)
	if detail != "test primary "+keys.Display(primary)+": Invii ripetuti allo stesso cittadino" {
		t.Errorf("audit detail %q", detail)
	}
	var mail struct{ To, Subject, Body string }
	if err := e.DB.R.QueryRow(`SELECT to_addr, subject, body FROM mail_outbox ORDER BY id DESC LIMIT 1`).Scan(&mail.To, &mail.Subject, &mail.Body); err != nil {
		t.Fatal(err)
	}
	if mail.To != "admin@comune1.example.it" || mail.Subject != "Sportello: una chiave del servizio «Tributi» è sospesa" ||
		!strings.Contains(mail.Body, "chiave di prova primaria "+keys.Display(primary)) || !strings.Contains(mail.Body, "«Invii ripetuti allo stesso cittadino»") ||
		!strings.Contains(mail.Body, "http://sportello.test"+keysURL) {
		t.Errorf("mail %+v", mail)
	}

	// The console's list of services says which services have a held key.
	mustContain(t, pa.get("/admin/services?q=Tributi"), `<span class="badge badge-danger">1 chiave sospesa</span>`)

	// The institution reads why, and cannot lift it.
	page = admin.get(keysURL)
	mustContain(t, page, "sospesa", "Sospesa dalla piattaforma il", "Invii ripetuti allo stesso cittadino",
		"solo gli amministratori della piattaforma possono riattivarla")
	if strings.Contains(page.Body, "/keys/reactivate") || strings.Contains(page.Body, "/keys/suspend") {
		t.Error("the institution is offered suspension controls")
	}
	op := e.inviteAndJoin(admin, inst, "op@comune1.example.it", "operator")
	for who, c := range map[string]*client{"admin": admin, "operator": op} {
		if r := c.post(keysURL+"/reactivate", url.Values{"key": {id}}); r.Status != http.StatusForbidden {
			t.Errorf("%s reactivates: %d", who, r.Status)
		}
		if r := c.post(keysURL+"/suspend", url.Values{"key": {id}, "reason": {"x"}}); r.Status != http.StatusForbidden {
			t.Errorf("%s suspends: %d", who, r.Status)
		}
	}
	for _, action := range []string{"regenerate", "revoke"} {
		r := admin.post(keysURL+"/"+action, url.Values{"mode": {"test"}, "slot": {"primary"}})
		if r.Status != http.StatusConflict {
			t.Errorf("institution admin %s a suspended key: %d", action, r.Status)
		}
		mustContain(t, r, "Chiave sospesa")
	}
	if n := e.count(`SELECT count(*) FROM api_keys WHERE id = ? AND revoked_at IS NULL AND suspended_at IS NOT NULL`, keyID); n != 1 {
		t.Fatal("the suspended key was replaced")
	}
	if code, _, _ := api(primary); code != http.StatusForbidden {
		t.Fatalf("still suspended: %d", code)
	}

	// Reactivated: the same key works at once; a second click says so.
	page = pa.get(keysURL)
	mustContain(t, page, `action="`+keysURL+`/reactivate"`)
	mustContain(t, pa.follow(pa.post(keysURL+"/reactivate", url.Values{"key": {id}})), "Chiave di prova primaria riattivata")
	works(primary, "after reactivation")
	mustContain(t, pa.follow(pa.post(keysURL+"/reactivate", url.Values{"key": {id}})), "non era sospesa")
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action IN ('key.suspend', 'key.reactivate')`); n != 2 {
		t.Errorf("%d audit events", n)
	}
	if n := e.count(`SELECT count(*) FROM mail_outbox WHERE subject = 'Sportello: la chiave del servizio «Tributi» funziona di nuovo'`); n != 1 {
		t.Errorf("%d reactivation mails", n)
	}
	if strings.Contains(admin.get(keysURL).Body, "Sospesa dalla piattaforma") {
		t.Error("the keys page still says suspended")
	}
	// A key of another service cannot be reached through this one's URL.
	sid2 := e.createService(admin, inst, "Anagrafe")
	var other int64
	_ = e.DB.R.Get(&other, `SELECT k.id FROM api_keys k JOIN services s ON s.id = k.service_id WHERE s.public_id = ? LIMIT 1`, sid2)
	pa.follow(pa.post(keysURL+"/suspend", url.Values{"key": {fmt.Sprint(other)}, "reason": {"prova"}}))
	if n := e.count(`SELECT count(*) FROM api_keys WHERE suspended_at IS NOT NULL`); n != 0 {
		t.Error("a key of another service was suspended")
	}
}
