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

	"sportello/gateway"
	"sportello/gateway/keys"
)

var secretRE = regexp.MustCompile(`<code class="secret" id="secret-([a-z_]+)">(sp_(?:test|live)_[A-Za-z0-9_-]{43})</code>`)

func secretsOn(r resp) map[string]string {
	out := map[string]string{}
	for _, m := range secretRE.FindAllStringSubmatch(r.Body, -1) {
		out[m[1]] = m[2]
	}
	return out
}

func TestKeysPageShowsSecretsOnceAndRotates(t *testing.T) {
	e := newTestEnv(t)
	var mu sync.Mutex
	var changed []int64
	e.App.Hooks.ServiceChanged = func(id int64) { mu.Lock(); changed = append(changed, id); mu.Unlock() }
	admin, inst := e.registerInst(1, "admin@comune1.example.it")
	sid := e.createService(admin, inst, "Tributi")
	var svcID int64
	_ = e.DB.R.Get(&svcID, `SELECT id FROM services WHERE public_id = ?`, sid)
	keysURL := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)

	// Right after creation the keys page shows both test keys, once.
	page := admin.get(keysURL)
	if page.Status != http.StatusOK {
		t.Fatalf("%d %s", page.Status, snippet(page.Body))
	}
	sec := secretsOn(page)
	if len(sec) != 2 || !strings.HasPrefix(sec["test_primary"], "sp_test_") || sec["test_secondary"] == "" {
		t.Fatalf("secrets on first view: %v", sec)
	}
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, keys.Hash(sec["test_primary"])); n != 1 {
		t.Fatal("shown key is not the stored one")
	}
	mustContain(t, page, keys.Display(sec["test_primary"]), keys.Display(sec["test_secondary"]), "mai usata",
		"0 richieste usate su 1000", `href="/docs/api"`, "data-confirm=", "<svg")
	if again := admin.get(keysURL); len(secretsOn(again)) != 0 || strings.Contains(again.Body, sec["test_primary"]) {
		t.Fatal("secrets shown twice")
	}

	// Regenerating the primary key: a new secret, the old key revoked, the
	// secondary untouched, the gateway told.
	r := admin.post(keysURL+"/regenerate", url.Values{"mode": {"test"}, "slot": {"primary"}})
	page = admin.follow(r)
	fresh := secretsOn(page)
	if len(fresh) != 1 || fresh["test_primary"] == "" || fresh["test_primary"] == sec["test_primary"] {
		t.Fatalf("after regenerate: %v", fresh)
	}
	mustContain(t, page, "Chiave rigenerata")
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE key_hash = ? AND revoked_at IS NOT NULL`, keys.Hash(sec["test_primary"])); n != 1 {
		t.Fatal("old primary still active")
	}
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL`, keys.Hash(sec["test_secondary"])); n != 1 {
		t.Fatal("secondary touched by the primary's rotation")
	}
	// Revoking the secondary leaves its slot empty.
	page = admin.follow(admin.post(keysURL+"/revoke", url.Values{"mode": {"test"}, "slot": {"secondary"}}))
	mustContain(t, page, "Chiave revocata", "Nessuna chiave attiva")
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE service_id = ? AND mode = 'test' AND revoked_at IS NULL`, svcID); n != 1 {
		t.Fatalf("%d active test keys", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM audit_events WHERE action IN ('key.regenerate', 'key.revoke')`); n != 2 {
		t.Fatalf("%d audit events", n)
	}
	mu.Lock()
	if len(changed) != 2 || changed[0] != svcID {
		t.Fatalf("ServiceChanged calls %v", changed)
	}
	mu.Unlock()
	// Bad input is refused without change.
	if r := admin.post(keysURL+"/regenerate", url.Values{"mode": {"prod"}, "slot": {"primary"}}); r.Status != http.StatusBadRequest {
		t.Fatalf("bad mode: %d", r.Status)
	}
	if r := admin.post(keysURL+"/regenerate", url.Values{"mode": {"live"}, "slot": {"primary"}}); r.Status != http.StatusBadRequest {
		t.Fatalf("live key of an unapproved service: %d", r.Status)
	}

	// Operators see the page but cannot touch keys.
	op := e.inviteAndJoin(admin, inst, "op@comune1.example.it", "operator")
	page = op.get(keysURL)
	if page.Status != http.StatusOK || strings.Contains(page.Body, "/keys/regenerate") {
		t.Fatalf("operator view: %d", page.Status)
	}
	if r := op.post(keysURL+"/regenerate", url.Values{"mode": {"test"}, "slot": {"primary"}}); r.Status != http.StatusForbidden {
		t.Fatalf("operator regenerate: %d", r.Status)
	}
}

func TestLiveKeysAfterApproval(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(2, "admin@comune2.example.it")
	sid := e.createService(admin, inst, "Tributi")
	keysURL := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)
	admin.get(keysURL) // consume the test secrets
	mustContain(t, admin.get(keysURL), "dopo l'approvazione")
	if r := admin.post(keysURL+"/live", nil); r.Status != http.StatusConflict {
		t.Fatalf("live keys before approval: %d", r.Status)
	}
	// Approval is the services engineer's flow; here the version in force is set directly.
	e.DB.W.MustExec(`UPDATE services SET live_version_id = working_version_id, working_version_id = NULL WHERE public_id = ?`, sid)
	e.DB.W.MustExec(`UPDATE service_versions SET state = 'approved' WHERE id = (SELECT live_version_id FROM services WHERE public_id = ?)`, sid)
	page := admin.get(keysURL)
	mustContain(t, page, "Crea le chiavi di produzione")
	page = admin.follow(admin.post(keysURL+"/live", nil))
	sec := secretsOn(page)
	if !strings.HasPrefix(sec["live_primary"], "sp_live_") || !strings.HasPrefix(sec["live_secondary"], "sp_live_") {
		t.Fatalf("live secrets %v", sec)
	}
	mustContain(t, page, "150 richieste ogni 5 secondi")
	// A second click creates nothing.
	page = admin.follow(admin.post(keysURL+"/live", nil))
	mustContain(t, page, "esistono già")
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE mode = 'live'`); n != 2 {
		t.Fatalf("%d live keys", n)
	}
}

func TestKeysPageQuotaAndUsageChart(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(3, "admin@comune3.example.it")
	sid := e.createService(admin, inst, "Tributi")
	var svcID int64
	_ = e.DB.R.Get(&svcID, `SELECT id FROM services WHERE public_id = ?`, sid)
	now := e.clock.Now()
	week, _ := gateway.WeekOf(now)
	e.DB.W.MustExec(`INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, ?, 37)`, svcID, week)
	e.DB.W.MustExec(`INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, '2001-01-01', 999)`, svcID)
	today := now.UTC().Format("2006-01-02")
	threeDaysAgo := now.UTC().AddDate(0, 0, -3).Format("2006-01-02")
	for _, row := range []struct {
		day, mode, outcome string
		n                  int
	}{{today, "test", "accepted", 30}, {today, "live", "accepted", 12}, {today, "test", "client_error", 5}, {threeDaysAgo, "test", "throttled", 4},
		{now.UTC().AddDate(0, 0, -40).Format("2006-01-02"), "test", "accepted", 5000}} {
		e.DB.W.MustExec(`INSERT INTO usage_daily (service_id, day, mode, outcome, count) VALUES (?, ?, ?, ?, ?)`, svcID, row.day, row.mode, row.outcome, row.n)
	}
	page := admin.get(fmt.Sprintf("/i/%d/services/%s/keys", inst, sid))
	mustContain(t, page, "37 richieste usate su 1000", `<progress max="1000" value="37"`,
		"51 richieste in 30 giorni, al massimo 47 in un giorno", `class="bar-ok"`, `class="bar-error"`, `class="bar-pending"`,
		"<td>42</td><td>5</td><td>0</td><td>0</td><td>47</td>", "<td>0</td><td>0</td><td>4</td><td>0</td><td>4</td>",
		"<title>"+now.UTC().Format("02/01")+" · Accettate: 42</title>")
	if strings.Contains(page.Body, "5000") {
		t.Fatal("usage older than 30 days shown")
	}
	if c := strings.Count(page.Body, "<rect "); c != 3 {
		t.Fatalf("%d bars, want 3 (accepted and client errors today, throttled three days ago)", c)
	}
	if strings.Contains(page.Body, "legend-server") {
		t.Fatal("server errors in the legend of a month without any")
	}
	// Server errors are drawn as a bar of their own and named in the legend.
	e.DB.W.MustExec(`INSERT INTO usage_daily (service_id, day, mode, outcome, count) VALUES (?, ?, 'live', 'server_error', 2)`, svcID, today)
	page = admin.get(fmt.Sprintf("/i/%d/services/%s/keys", inst, sid))
	mustContain(t, page, `class="bar-server"`, `class="legend-server"`, "Errori del sistema: 2</title>",
		"53 richieste in 30 giorni, al massimo 49 in un giorno", "<td>42</td><td>5</td><td>0</td><td>2</td><td>49</td>")
	if c := strings.Count(page.Body, "<rect "); c != 4 {
		t.Fatalf("%d bars, want 4 with today's server errors", c)
	}
	// Another institution's service: not found (no IDOR).
	other, inst2 := e.registerInst(4, "admin@comune4.example.it")
	if r := other.get(fmt.Sprintf("/i/%d/services/%s/keys", inst2, sid)); r.Status != http.StatusNotFound {
		t.Fatalf("other institution: %d", r.Status)
	}
	_ = time.Now
}

func TestAPIDocsPageIsPublic(t *testing.T) {
	e := newTestEnv(t)
	c := e.newClient()
	r := c.get("/docs/api")
	if r.Status != http.StatusOK {
		t.Fatalf("%d", r.Status)
	}
	mustContain(t, r, "Ocp-Apim-Subscription-Key", "AAAAAA00A00A000A", "http://sportello.test/api/v1/messages/",
		`id="problem-validation"`, `id="problem-quota_exceeded"`, "RateLimit-Policy", "Retry-After", "/api/v1/openapi.yaml",
		"openapi: 3.0.3", "content.markdown", "150 richieste ogni 5 secondi")
	for _, code := range gateway.ProblemCodes {
		mustContain(t, r, `id="problem-`+code+`"`)
	}
	if strings.Contains(r.Body, "%!") {
		t.Fatal("a text lacks its arguments")
	}
}

// The chart's days are Italian days, as the gateway counts them: at 00:30
// on Monday in Rome (Sunday 23:30 UTC) Monday is today, the last bar.
func TestUsageChartEndsOnTheItalianToday(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(5, "admin@comune5.example.it")
	sid := e.createService(admin, inst, "Tributi")
	var svcID int64
	_ = e.DB.R.Get(&svcID, `SELECT id FROM services WHERE public_id = ?`, sid)
	e.DB.W.MustExec(`INSERT INTO usage_daily (service_id, day, mode, outcome, count) VALUES (?, '2026-11-30', 'test', 'accepted', 7)`, svcID)
	c, err := e.App.usageChart(context.Background(), svcID, time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	last := c.Days[len(c.Days)-1]
	if got := last.Day.Format("2006-01-02"); got != "2026-11-30" || last.Accepted != 7 || c.Total != 7 {
		t.Fatalf("last day %s with %d accepted (total %d), want 2026-11-30 with 7", got, last.Accepted, c.Total)
	}
}

// A new key is shown once, on its own service's page, to the person who
// made it: not on another service's page (a redirect never followed, a
// second tab), and not to the next person who signs in on the same
// browser.
func TestNewKeysAreShownOnlyForTheirServiceAndUser(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "admin@comune1.example.it")
	first := e.createService(admin, inst, "Tributi")
	e.createService(admin, inst, "Anagrafe") // its redirect is not followed
	firstKeys := fmt.Sprintf("/i/%d/services/%s/keys", inst, first)
	if sec := secretsOn(admin.get(firstKeys)); len(sec) != 0 {
		t.Fatalf("Tributi's page shows keys stashed for Anagrafe: %v", sec)
	}
	if sec := secretsOn(admin.get(fmt.Sprintf("/i/%d/services/%s", inst, first))); len(sec) != 0 {
		t.Fatalf("Tributi's overview shows keys stashed for Anagrafe: %v", sec)
	}

	// Another person signs in on the same browser after a regeneration
	// whose page was never shown.
	_, other := e.registerInst(2, "admin@comune2.example.it")
	admin.post(firstKeys+"/regenerate", url.Values{"mode": {"test"}, "slot": {"primary"}})
	admin.post("/logout", nil)
	if r := admin.post("/login", url.Values{"email": {"admin@comune2.example.it"}, "password": {testPassword}}); r.Status != http.StatusSeeOther {
		t.Fatalf("second login: %d", r.Status)
	}
	theirs := e.createService(admin, other, "Tributi 2")
	if sec := secretsOn(admin.get(fmt.Sprintf("/i/%d/services/%s/keys", other, theirs))); len(sec) != 2 || !strings.HasPrefix(sec["test_primary"], "sp_test_") {
		t.Fatalf("their own new keys: %v", sec)
	}
	var shown int
	for _, p := range []string{firstKeys, fmt.Sprintf("/i/%d/services/%s/keys", other, theirs)} {
		shown += len(secretsOn(admin.get(p)))
	}
	if shown != 0 {
		t.Fatalf("%d secrets still shown after their page was seen", shown)
	}
}

// Only local paths are redirect targets: browsers drop tabs and newlines
// and read a backslash as a slash, so those would leave the site.
func TestSafeNextStaysOnTheSite(t *testing.T) {
	for next, want := range map[string]string{
		"/i/1/services": "/i/1/services", "/": "/", "/docs/api?x=1#y": "/docs/api?x=1#y",
		"": "/f", "//evil.example": "/f", "/\\evil.example": "/f", "/\t/evil.example/phish": "/f",
		"/\n/evil.example": "/f", "/a\\b": "/f", "https://evil.example": "/f", "evil.example": "/f",
		"/\x7f/evil.example": "/f", "javascript:alert(1)": "/f",
	} {
		if got := safeNext(next, "/f"); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
}

// An operator may create a service (services/write) but not manage keys:
// the new service's test keys exist, but the operator is not shown them.
// An admin sees their state and regenerates one to get a secret.
func TestOperatorCreatingAServiceIsNotShownItsKeys(t *testing.T) {
	e := newTestEnv(t)
	admin, inst := e.registerInst(1, "admin@comune1.example.it")
	operator := e.inviteAndJoin(admin, inst, "op@comune1.example.it", "operator")
	r := operator.post(fmt.Sprintf("/i/%d/services", inst), url.Values{"name": {"Servizio di un operatore"}, "scope": {"LOCAL"}})
	if r.Status != http.StatusSeeOther || strings.HasSuffix(r.Location, "/keys") {
		t.Fatalf("operator's create: %d %q, want the service page", r.Status, r.Location)
	}
	page := operator.follow(r)
	mustContain(t, page, "le vede e le gestisce un amministratore")
	var sid string
	_ = e.DB.R.Get(&sid, `SELECT public_id FROM services WHERE name = 'Servizio di un operatore'`)
	keysURL := fmt.Sprintf("/i/%d/services/%s/keys", inst, sid)
	if sec := secretsOn(operator.get(keysURL)); len(sec) != 0 || strings.Contains(page.Body, "sp_test_") {
		t.Fatalf("operator shown the new service's keys: %v", sec)
	}
	if n := e.count(`SELECT count(*) FROM api_keys k JOIN services s ON s.id = k.service_id WHERE s.public_id = ? AND k.mode = 'test' AND k.revoked_at IS NULL`, sid); n != 2 {
		t.Fatalf("%d test keys, want 2", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE action = 'key.create_test' AND actor = 'op@comune1.example.it' AND detail LIKE 'sp_test_%'`); n != 1 {
		t.Fatal("the test keys' creation is not in the audit log")
	}
	if sec := secretsOn(admin.get(keysURL)); len(sec) != 0 {
		t.Fatalf("the admin was shown the operator's keys without regenerating: %v", sec)
	}
	page = admin.follow(admin.post(keysURL+"/regenerate", url.Values{"mode": {"test"}, "slot": {"primary"}}))
	if sec := secretsOn(page); !strings.HasPrefix(sec["test_primary"], "sp_test_") {
		t.Fatalf("admin's regenerate: %v", sec)
	}
}
