package citizen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sportello/db"
	"sportello/db/dbtest"
	"sportello/messaging/delivery"
	"sportello/messaging/delivery/deliverytest"
	"sportello/messaging/fiscalcode"
)

var (
	testKey      = []byte("0123456789abcdef0123456789abcdef")
	testEmailKey = []byte("fedcba9876543210fedcba9876543210")
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     testing.TB
	ctx   context.Context
	db    *db.DB
	clock *clock
	srv   *httptest.Server
	api   *API
	inst  int64
	del   *delivery.Delivery
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), db: dbtest.Open(t), clock: &clock{t: time.Now().UTC()}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var err error
	e.api, err = New(Config{DB: e.db, Logger: log, Now: e.clock.Now, TokenKey: testKey, EmailKey: testEmailKey, Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	if e.inst, err = deliverytest.Institution(e.ctx, e.db, "Comune di Prova"); err != nil {
		t.Fatal(err)
	}
	if e.del, err = delivery.New(delivery.Config{DB: e.db, Logger: log, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return e
}

// person returns a valid person fiscal code (check character computed).
func person(n int) string {
	first := fmt.Sprintf("RSSMRA%02dA01H%03d", n%100, n%1000)
	return first + string(fiscalcode.CheckChar(first))
}

func (e *env) service(name string, o deliverytest.ServiceOpts) deliverytest.Service {
	e.t.Helper()
	s, err := deliverytest.AddService(e.ctx, e.db, e.inst, name, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// call does an API request as fc ("" = no token) and decodes JSON into out.
func (e *env) call(fc, method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if fc != "" {
		req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, fc, e.clock.Now()))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
	return resp.StatusCode
}

func (e *env) send(s deliverytest.Service, fc string, m deliverytest.Message) string {
	e.t.Helper()
	m.Service, m.FiscalCode = s, fc
	if m.CreatedAt.IsZero() {
		m.CreatedAt = e.clock.Now()
	}
	id, err := deliverytest.Insert(e.ctx, e.db, m)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) deliver() {
	e.t.Helper()
	for {
		n, err := e.del.ProcessBatch(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (e *env) status(id string) string {
	e.t.Helper()
	var s struct {
		Status string  `db:"status"`
		Reason *string `db:"rejection_reason"`
	}
	if err := e.db.R.Get(&s, `SELECT status, rejection_reason FROM messages WHERE id = ?`, id); err != nil {
		e.t.Fatal(err)
	}
	if s.Reason != nil {
		return s.Status + "/" + *s.Reason
	}
	return s.Status
}

func TestTokens(t *testing.T) {
	now := time.Now()
	fc := person(1)
	tok := IssueToken(testKey, fc, now)
	if got, err := VerifyToken(testKey, tok, now.Add(23*time.Hour)); err != nil || got != fc {
		t.Fatalf("valid token refused: %v", err)
	}
	if _, err := VerifyToken(testKey, tok, now.Add(24*time.Hour)); err == nil {
		t.Fatal("token accepted after 24 h")
	}
	if _, err := VerifyToken([]byte("another key of thirty-two bytes!"), tok, now); err == nil {
		t.Fatal("token accepted with another key")
	}
	other := IssueToken(testKey, person(2), now)
	forged := tok[:strings.LastIndex(tok, ".")] + other[strings.LastIndex(other, "."):]
	if _, err := VerifyToken(testKey, forged, now); err == nil {
		t.Fatal("token accepted with another token's signature")
	}

	e := newEnv(t)
	if code := e.call("", "GET", "/citizen/v1/profile", nil, nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/citizen/v1/profile", nil)
	req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, fc, e.clock.Now().Add(-25*time.Hour)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("expired token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestProfileLifecycle(t *testing.T) {
	e := newEnv(t)
	fc := person(3)
	var p Profile
	if code := e.call(fc, "GET", "/citizen/v1/profile", nil, nil); code != 404 {
		t.Fatalf("before first access: %d", code)
	}
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "anna@example.it", "preferred_languages": []string{"it_IT"}}, &p); code != 201 {
		t.Fatalf("first PUT: %d", code)
	}
	if p.FiscalCode != fc || p.Email != "anna@example.it" || !p.IsInboxEnabled || p.IsEmailValidated ||
		p.ServicePreferencesSettings.Mode != "LEGACY" || p.ServicePreferencesSettings.Version != 0 || p.Version != 0 {
		t.Fatalf("created profile %+v", p)
	}
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "AUTO"}, "version": 0}, &p); code != 200 {
		t.Fatalf("mode change: %d", code)
	}
	if p.ServicePreferencesSettings.Mode != "AUTO" || p.ServicePreferencesSettings.Version != 1 || p.Version != 1 {
		t.Fatalf("after AUTO: %+v", p)
	}
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "MANUAL"}}, &p); code != 200 {
		t.Fatal(code)
	}
	if p.ServicePreferencesSettings.Version != 2 {
		t.Fatalf("second mode change did not bump the settings version: %+v", p.ServicePreferencesSettings)
	}
	// Same mode again: no bump.
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "MANUAL"}}, &p)
	if p.ServicePreferencesSettings.Version != 2 {
		t.Fatalf("unchanged mode bumped the version: %+v", p.ServicePreferencesSettings)
	}
	var prob struct {
		Title  string         `json:"title"`
		Errors []fieldProblem `json:"errors"`
	}
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"is_inbox_enabled": false, "version": 1}, &prob); code != 409 {
		t.Fatalf("stale profile version: %d", code)
	}
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "LEGACY"}}, &prob); code != 409 {
		t.Fatalf("back to LEGACY: %d", code)
	}
	prob.Errors = nil
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "not an address", "preferred_languages": []string{"klingon"},
		"service_preferences_settings": map[string]string{"mode": "SOMETIMES"}, "blocked_inbox_or_channels": map[string][]string{"x": {"SMS"}}}, &prob); code != 400 {
		t.Fatalf("invalid body: %d", code)
	}
	if len(prob.Errors) != 4 {
		t.Fatalf("field problems %+v, want 4", prob.Errors)
	}
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"emial": "typo@example.it"}, nil); code != 400 {
		t.Fatalf("unknown field: %d", code)
	}
	var got Profile
	e.call(fc, "GET", "/citizen/v1/profile", nil, &got)
	if got.ServicePreferencesSettings.Mode != "MANUAL" || got.Email != "anna@example.it" {
		t.Fatalf("stored profile %+v", got)
	}
}

func TestServicesAndPreferences(t *testing.T) {
	e := newEnv(t)
	fc := person(4)
	tributi := e.service("Tributi", deliverytest.ServiceOpts{})
	e.service("Nascosto", deliverytest.ServiceOpts{Hidden: true})
	e.service("Bozza", deliverytest.ServiceOpts{Draft: true})
	var list struct {
		Items []map[string]any `json:"items"`
	}
	if code := e.call(fc, "GET", "/citizen/v1/services", nil, &list); code != 200 {
		t.Fatal(code)
	}
	if len(list.Items) != 1 || list.Items[0]["service_id"] != tributi.PublicID || list.Items[0]["name"] != "Tributi" ||
		list.Items[0]["organization_name"] != "Comune di Prova" || list.Items[0]["scope"] != "LOCAL" {
		t.Fatalf("services %+v", list.Items)
	}
	path := "/citizen/v1/services/" + tributi.PublicID + "/preferences"
	if code := e.call(fc, "GET", path, nil, nil); code != 404 {
		t.Fatalf("preferences without a profile: %d", code)
	}
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{}, nil)
	if code := e.call(fc, "PUT", path, map[string]any{"is_inbox_enabled": true, "is_email_enabled": true, "is_webhook_enabled": true, "settings_version": 0}, nil); code != 409 {
		t.Fatalf("per-service preference in LEGACY: %d", code)
	}
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "MANUAL"}}, nil)
	var pref ServicePreference
	e.call(fc, "GET", path, nil, &pref)
	if pref.IsInboxEnabled || pref.SettingsVersion != 1 {
		t.Fatalf("MANUAL default %+v, want off at version 1", pref)
	}
	if code := e.call(fc, "PUT", path, map[string]any{"is_inbox_enabled": true, "is_email_enabled": false, "is_webhook_enabled": true, "settings_version": 1}, &pref); code != 200 {
		t.Fatalf("PUT preference: %d", code)
	}
	e.call(fc, "GET", path, nil, &pref)
	if !pref.IsInboxEnabled || pref.IsEmailEnabled || !pref.IsWebhookEnabled {
		t.Fatalf("stored preference %+v", pref)
	}
	if code := e.call(fc, "PUT", path, map[string]any{"is_inbox_enabled": false, "is_email_enabled": false, "is_webhook_enabled": false, "settings_version": 0}, nil); code != 409 {
		t.Fatalf("stale settings version: %d, want 409", code)
	}
	// Changing mode invalidates the stored choice.
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "AUTO"}}, nil)
	e.call(fc, "GET", path, nil, &pref)
	if !pref.IsInboxEnabled || !pref.IsEmailEnabled || pref.SettingsVersion != 2 {
		t.Fatalf("after switching to AUTO %+v, want AUTO defaults at version 2", pref)
	}
	if code := e.call(fc, "PUT", path, map[string]any{"is_inbox_enabled": false, "is_email_enabled": false, "is_webhook_enabled": false, "settings_version": 1}, nil); code != 409 {
		t.Fatalf("version from the old mode: %d, want 409", code)
	}
	if code := e.call(fc, "PUT", path, map[string]any{"is_inbox_enabled": false}, nil); code != 400 {
		t.Fatalf("missing fields: %d", code)
	}
	if code := e.call(fc, "GET", "/citizen/v1/services/nope/preferences", nil, nil); code != 404 {
		t.Fatalf("unknown service: %d", code)
	}
}

// The issue's acceptance journey through the API and the real pipeline:
// MANUAL, one service enabled, its message arrives, another's is rejected.
func TestManualJourney(t *testing.T) {
	e := newEnv(t)
	fc := person(5)
	a := e.service("Tributi", deliverytest.ServiceOpts{})
	b := e.service("Anagrafe", deliverytest.ServiceOpts{})
	var p Profile
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "MANUAL"}}, &p)
	if code := e.call(fc, "PUT", "/citizen/v1/services/"+a.PublicID+"/preferences", map[string]any{"is_inbox_enabled": true,
		"is_email_enabled": false, "is_webhook_enabled": false, "settings_version": p.ServicePreferencesSettings.Version}, nil); code != 200 {
		t.Fatal(code)
	}
	ida := e.send(a, fc, deliverytest.Message{Subject: "La sua pratica è stata approvata"})
	idb := e.send(b, fc, deliverytest.Message{})
	e.deliver()
	if s := e.status(ida); s != "PROCESSED" {
		t.Fatalf("enabled service: %s", s)
	}
	if s := e.status(idb); s != "REJECTED/SERVICE_NOT_ALLOWED" {
		t.Fatalf("other service: %s", s)
	}
	var list struct {
		Items []MessageItem `json:"items"`
	}
	e.call(fc, "GET", "/citizen/v1/messages", nil, &list)
	if len(list.Items) != 1 || list.Items[0].ID != ida || list.Items[0].Subject != "La sua pratica è stata approvata" {
		t.Fatalf("inbox %+v", list.Items)
	}
}

func TestMessagesListDetailStatus(t *testing.T) {
	e := newEnv(t)
	fc, other := person(6), person(7)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{}, nil)
	e.call(other, "PUT", "/citizen/v1/profile", map[string]any{}, nil)
	var ids []string
	for i := range 25 {
		e.clock.Advance(time.Millisecond * 2) // distinct, increasing ids
		ids = append(ids, e.send(s, fc, deliverytest.Message{Subject: fmt.Sprintf("Comunicazione numero %02d", i)}))
	}
	e.clock.Advance(2 * time.Millisecond)
	special := e.send(s, fc, deliverytest.Message{
		Subject:  "Avviso di pagamento TARI 2026",
		Markdown: "Gentile cittadino, **paghi entro fine mese**. <script>alert(1)</script> [link](javascript:alert(2)) e [sito](https://example.it). Testo di riempimento per arrivare alla lunghezza.",
		DueDate:  "2026-12-31T23:59:59Z",
		Payment:  map[string]any{"amount": 12345, "notice_number": "012345678901234567"},
	})
	otherID := e.send(s, other, deliverytest.Message{})
	e.deliver()

	type page struct {
		Items []MessageItem `json:"items"`
		Next  string        `json:"next"`
	}
	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		var p page
		url := "/citizen/v1/messages?page_size=10"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		if code := e.call(fc, "GET", url, nil, &p); code != 200 {
			t.Fatal(code)
		}
		for _, it := range p.Items {
			got = append(got, it.ID)
		}
		if p.Next == "" {
			break
		}
		cursor = p.Next
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(got) != 26 || got[0] != special || got[25] != ids[0] {
		t.Fatalf("listed %d messages, first %s last %s", len(got), got[0], got[len(got)-1])
	}
	for i := 1; i < len(got); i++ {
		if got[i] >= got[i-1] {
			t.Fatal("not newest first")
		}
	}
	var d MessageDetail
	if code := e.call(fc, "GET", "/citizen/v1/messages/"+special, nil, &d); code != 200 {
		t.Fatal(code)
	}
	if !strings.Contains(d.HTML, "<strong>paghi entro fine mese</strong>") || strings.Contains(d.HTML, "<script") ||
		strings.Contains(d.HTML, "javascript:") || !strings.Contains(d.HTML, `href="https://example.it"`) {
		t.Fatalf("rendered HTML not sanitized as expected: %s", d.HTML)
	}
	if d.PaymentData == nil || d.PaymentData.Amount != 12345 || d.DueDate != "2026-12-31T23:59:59Z" || !d.HasPayment {
		t.Fatalf("detail %+v", d)
	}
	if code := e.call(fc, "GET", "/citizen/v1/messages/"+otherID, nil, nil); code != 404 {
		t.Fatalf("another citizen's message: %d", code)
	}
	if code := e.call(fc, "PUT", "/citizen/v1/messages/"+otherID+"/status", map[string]any{"is_read": true}, nil); code != 404 {
		t.Fatalf("status of another citizen's message: %d", code)
	}
	e.call(fc, "PUT", "/citizen/v1/messages/"+special+"/status", map[string]any{"is_read": true}, nil)
	e.call(fc, "PUT", "/citizen/v1/messages/"+ids[0]+"/status", map[string]any{"is_archived": true}, nil)
	count := func(filter string) int {
		var p page
		e.call(fc, "GET", "/citizen/v1/messages?page_size=100&filter="+filter, nil, &p)
		return len(p.Items)
	}
	if r, u, a, all := count("read"), count("unread"), count("archived"), count(""); r != 1 || u != 24 || a != 1 || all != 25 {
		t.Fatalf("read %d unread %d archived %d inbox %d", r, u, a, all)
	}
	if code := e.call(fc, "GET", "/citizen/v1/messages?filter=spam", nil, nil); code != 400 {
		t.Fatalf("bad filter: %d", code)
	}
}

func TestExportAndDelete(t *testing.T) {
	e := newEnv(t)
	fc := person(8)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	var p Profile
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "luca@example.it", "service_preferences_settings": map[string]string{"mode": "AUTO"}}, &p)
	e.call(fc, "PUT", "/citizen/v1/services/"+s.PublicID+"/preferences", map[string]any{"is_inbox_enabled": true,
		"is_email_enabled": false, "is_webhook_enabled": true, "settings_version": p.ServicePreferencesSettings.Version}, nil)
	blocked := e.service("Anagrafe", deliverytest.ServiceOpts{})
	e.call(fc, "PUT", "/citizen/v1/services/"+blocked.PublicID+"/preferences", map[string]any{"is_inbox_enabled": false,
		"is_email_enabled": false, "is_webhook_enabled": false, "settings_version": p.ServicePreferencesSettings.Version}, nil)
	first := e.send(s, fc, deliverytest.Message{Subject: "Primo messaggio di prova"})
	refused := e.send(blocked, fc, deliverytest.Message{Subject: "Messaggio di un servizio bloccato"})
	e.send(s, person(9), deliverytest.Message{Subject: "Messaggio per un'altra persona"})
	e.deliver()
	// Not delivered yet: found through the outbox, not messages_by_recipient.
	pending := e.send(s, fc, deliverytest.Message{Subject: "Messaggio in attesa di consegna"})

	var ex Export
	var raw map[string]any
	if code := e.call(fc, "GET", "/citizen/v1/export", nil, &raw); code != 200 {
		t.Fatal(code)
	}
	b, _ := json.Marshal(raw)
	_ = json.Unmarshal(b, &ex)
	if ex.Profile.Email != "luca@example.it" || len(ex.ServicePreferences) != 2 || len(ex.Messages) != 3 {
		t.Fatalf("export %s", b)
	}
	got := map[string]string{}
	for _, m := range ex.Messages {
		got[m.ID] = fmt.Sprintf("%s inbox=%v", m.Status, m.InInbox)
	}
	want := map[string]string{first: "PROCESSED inbox=true", refused: "REJECTED inbox=false", pending: "ACCEPTED inbox=false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("exported messages %v, want %v", got, want)
	}
	for _, text := range []string{"Primo messaggio di prova", "Messaggio di un servizio bloccato", "Messaggio in attesa di consegna"} {
		if !strings.Contains(string(b), text) {
			t.Fatalf("export lacks %q", text)
		}
	}
	if strings.Contains(string(b), "altra persona") {
		t.Fatal("export holds another person's message")
	}

	if code := e.call(fc, "DELETE", "/citizen/v1/profile", nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if code := e.call(fc, "GET", "/citizen/v1/profile", nil, nil); code != 404 {
		t.Fatalf("profile after delete: %d", code)
	}
	if code := e.call(fc, "DELETE", "/citizen/v1/profile", nil, nil); code != 404 {
		t.Fatalf("second delete: %d", code)
	}
	var n int
	_ = e.db.R.Get(&n, `SELECT count(*) FROM inbox WHERE fiscal_code = ?`, fc)
	var prefs int
	_ = e.db.R.Get(&prefs, `SELECT count(*) FROM service_preferences WHERE fiscal_code = ?`, fc)
	if n != 0 || prefs != 0 {
		t.Fatalf("after delete: inbox %d, preferences %d", n, prefs)
	}
	for id, kept := range map[string]bool{first: false, refused: false, pending: true} {
		var content *string
		_ = e.db.R.Get(&content, `SELECT content FROM messages WHERE id = ?`, id)
		if (content != nil) != kept {
			t.Fatalf("after delete: message %s content kept %v, want %v", id, content != nil, kept)
		}
	}
	later := e.send(s, fc, deliverytest.Message{})
	e.deliver()
	if st := e.status(later); st != "REJECTED/USER_NOT_FOUND" {
		t.Fatalf("message after deletion: %s", st)
	}
	// Back with a new account: the export still lists every message once
	// addressed to this fiscal code (their inbox rows are gone), without
	// the deleted content.
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "AUTO"}}, nil)
	var again Export
	if code := e.call(fc, "GET", "/citizen/v1/export", nil, &again); code != 200 {
		t.Fatalf("export after re-registration: %d", code)
	}
	listed := map[string]bool{}
	for _, m := range again.Messages {
		listed[m.ID] = true
		deleted := m.ID == first || m.ID == refused
		if m.InInbox || (deleted && (m.ContentJSON != nil || m.ContentDeletedAt == nil)) {
			t.Fatalf("after deletion, message %s in inbox %v with content %v", m.ID, m.InInbox, m.ContentJSON)
		}
	}
	for _, id := range []string{first, refused, pending, later} {
		if !listed[id] {
			t.Fatalf("export after re-registration lacks %s: %v", id, listed)
		}
	}
}

// A new address is validated through the link mailed to it; only then do
// e-mail notices go out.
func TestEmailValidation(t *testing.T) {
	e := newEnv(t)
	fc := person(10)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	var p Profile
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "giulia@example.it"}, &p)
	if p.IsEmailValidated {
		t.Fatal("a new address starts validated")
	}
	first := e.send(s, fc, deliverytest.Message{})
	e.deliver()
	var notices int
	_ = e.db.R.Get(&notices, `SELECT count(*) FROM notifications WHERE message_id = ? AND channel = 'email'`, first)
	if notices != 0 {
		t.Fatal("e-mail notice queued for an unvalidated address")
	}
	var body string
	if err := e.db.R.Get(&body, `SELECT body FROM mail_outbox WHERE to_addr = 'giulia@example.it' AND message_id IS NULL`); err != nil {
		t.Fatalf("no validation mail: %v", err)
	}
	i := strings.Index(body, "/citizen/email-validation?token=")
	if i < 0 {
		t.Fatalf("mail without link: %s", body)
	}
	link := strings.Fields(body[i:])[0]
	resp, err := http.Get(e.srv.URL + link + "x") // tampered
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("tampered link: %d", resp.StatusCode)
	}
	resp, err = http.Get(e.srv.URL + link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("validation link: %d", resp.StatusCode)
	}
	e.call(fc, "GET", "/citizen/v1/profile", nil, &p)
	if !p.IsEmailValidated {
		t.Fatal("address not validated by the link")
	}
	if code := e.call(fc, "POST", "/citizen/v1/email-validation-process", nil, nil); code != 409 {
		t.Fatalf("validation of a validated address: %d", code)
	}
	second := e.send(s, fc, deliverytest.Message{})
	e.deliver()
	_ = e.db.R.Get(&notices, `SELECT count(*) FROM notifications WHERE message_id = ? AND channel = 'email'`, second)
	if notices != 1 {
		t.Fatal("no e-mail notice after validation")
	}
	// Changing the address un-validates it; the old link no longer works.
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "giulia.nuova@example.it"}, &p)
	resp, _ = http.Get(e.srv.URL + link)
	resp.Body.Close()
	e.call(fc, "GET", "/citizen/v1/profile", nil, &p)
	if resp.StatusCode != 400 || p.IsEmailValidated {
		t.Fatalf("old link after an address change: %d, validated %v", resp.StatusCode, p.IsEmailValidated)
	}
	if code := e.call(fc, "POST", "/citizen/v1/email-validation-process", nil, nil); code != 202 {
		t.Fatalf("resend: %d", code)
	}
}

// Export finds a citizen's messages through indexes
// (inbox, messages_by_recipient, the small outbox), never by scanning the
// messages table: there is no recipient index on it.
func TestExportUsesIndexes(t *testing.T) {
	e := newEnv(t)
	plan := dbtest.Plan(t, e.db, `SELECT id FROM messages WHERE id IN (`+messageIDsAfter+`) ORDER BY id LIMIT ?3`, "X", "", exportChunk)
	for _, bad := range []string{"SCAN m", "SCAN w", "SCAN messages"} {
		if strings.Contains(plan, bad) {
			t.Fatalf("export plan scans messages:\n%s", plan)
		}
	}
	// Each chunk reads its sources from the last id written on, along
	// their keys: the outbox first, then its message by id.
	for _, want := range []string{"SEARCH inbox USING PRIMARY KEY (fiscal_code=? AND message_id>?)",
		"SEARCH messages_by_recipient USING PRIMARY KEY (fiscal_code=? AND message_id>?)",
		"SEARCH o USING PRIMARY KEY (message_id>?)", "SEARCH w USING INDEX sqlite_autoindex_messages_1"} {
		if !strings.Contains(plan, want) {
			t.Fatalf("export plan lacks %q:\n%s", want, plan)
		}
	}
}

// A handler that panics (a bug) answers a 500 problem instead of dropping
// the connection, and the API goes on serving.
func TestAPanickingHandlerAnswersAProblem(t *testing.T) {
	e := newEnv(t)
	e.api.mux.Handle("GET /citizen/v1/boom", e.api.authed(func(http.ResponseWriter, *http.Request, string) {
		panic("a bug in a handler")
	}))
	var p struct {
		Type   string `json:"type"`
		Status int    `json:"status"`
	}
	if code := e.call(person(1), "GET", "/citizen/v1/boom", nil, &p); code != 500 || p.Status != 500 || p.Type != "urn:sportello:citizen:problem:internal" {
		t.Fatalf("status %d, problem %+v; want a 500 internal problem", code, p)
	}
	if code := e.call(person(1), "GET", "/citizen/v1/services", nil, nil); code != 200 {
		t.Fatalf("next request: status %d", code)
	}
}

// A panic after the answer started cannot turn it into a 500: the
// connection is cut, so the client never takes a 200 with an error glued
// to it for a success. On the app's pages a panic answers a short page,
// not a JSON problem.
func TestAPanicAfterTheAnswerStartedCutsTheConnection(t *testing.T) {
	e := newEnv(t)
	e.api.mux.Handle("GET /citizen/v1/half", e.api.authed(func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"items":[`))
		panic("a bug while encoding")
	}))
	e.api.mux.HandleFunc("GET /citizen/boom-page", func(http.ResponseWriter, *http.Request) {
		panic("a bug in a page")
	})
	req, _ := http.NewRequest("GET", e.srv.URL+"/citizen/v1/half", nil)
	req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, person(1), e.clock.Now()))
	if res, err := http.DefaultClient.Do(req); err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil {
			t.Fatalf("answer read whole: %d %q; want the connection cut", res.StatusCode, b)
		}
	}
	res, err := http.Get(e.srv.URL + "/citizen/boom-page")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 500 || strings.Contains(res.Header.Get("Content-Type"), "json") || !strings.Contains(string(b), "Errore interno") {
		t.Fatalf("page panic: %d %s %q; want a 500 text page in Italian", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	// In the language the citizen chose on the pages, not the browser's.
	req, _ = http.NewRequest("GET", e.srv.URL+"/citizen/boom-page", nil)
	req.Header.Set("Accept-Language", "it-IT")
	req.AddCookie(&http.Cookie{Name: langCookie, Value: "en"})
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(b), "Internal error") {
		t.Fatalf("page panic with the English switch on: %q", b)
	}
}

// Deleting the account cancels the notices still waiting for a retry: a
// push that failed before the deletion is not sent once the webhook
// recovers (it carried the fiscal code and the message id).
func TestDeleteAccountCancelsPendingNotices(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	push := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer push.Close()
	d, err := delivery.New(delivery.Config{DB: e.db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: e.clock.Now,
		PushURL: push.URL, PushSecret: testKey, RetryBase: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	fc := person(11)
	s := e.service("Tributi", deliverytest.ServiceOpts{})
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"is_email_enabled": false}, nil)
	id := e.send(s, fc, deliverytest.Message{})
	for {
		n, err := d.ProcessBatch(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	notice := func() (status, lastErr string) {
		t.Helper()
		var r struct {
			Status  string `db:"status"`
			LastErr string `db:"last_error"`
		}
		if err := e.db.R.Get(&r, `SELECT status, last_error FROM notifications WHERE message_id = ? AND channel = 'webhook'`, id); err != nil {
			t.Fatal(err)
		}
		return r.Status, r.LastErr
	}
	if st, _ := notice(); st != "THROTTLED" || calls.Load() != 1 {
		t.Fatalf("after a 500: %s with %d calls, want THROTTLED after 1", st, calls.Load())
	}
	if code := e.call(fc, "DELETE", "/citizen/v1/profile", nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	// Cancelled by the deletion itself, not left for the notifier to find.
	if st, why := notice(); st != "FAILED" || why != "account deleted" {
		t.Fatalf("right after the deletion: %s (%q), want FAILED (account deleted)", st, why)
	}
	e.clock.Advance(time.Minute)
	if _, err := d.SendDueNotices(e.ctx); err != nil {
		t.Fatal(err)
	}
	if st, why := notice(); st != "FAILED" || why != "account deleted" || calls.Load() != 1 {
		t.Fatalf("after the deletion: %s (%q) with %d webhook calls, want FAILED (account deleted) and no new call", st, why, calls.Load())
	}
}

// Account deletion deletes the citizen's mail by fiscal code: the
// validation mail to an earlier address too, and not another citizen's
// mail to the same address. The export lists the citizen's mail records
// without their text (a validation link would confirm the address).
func TestDeleteAccountDeletesTheCitizensMailOnly(t *testing.T) {
	e := newEnv(t)
	fc, other := person(12), person(13)
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "vecchio@example.it"}, nil)
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "condiviso@example.it"}, nil)
	e.call(other, "PUT", "/citizen/v1/profile", map[string]any{"email": "condiviso@example.it"}, nil)
	mails := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := e.db.R.Get(&n, `SELECT count(*) FROM mail_outbox WHERE `+q, args...); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if mails(`fiscal_code = ?`, fc) != 2 || mails(`fiscal_code = ?`, other) != 1 {
		t.Fatalf("validation mails by citizen: %d and %d, want 2 and 1", mails(`fiscal_code = ?`, fc), mails(`fiscal_code = ?`, other))
	}
	var ex Export
	if code := e.call(fc, "GET", "/citizen/v1/export", nil, &ex); code != 200 {
		t.Fatal(code)
	}
	if len(ex.Mail) != 2 || ex.Mail[0].To != "vecchio@example.it" || ex.Mail[1].To != "condiviso@example.it" {
		t.Fatalf("exported mail %+v, want both validation mails", ex.Mail)
	}
	var raw map[string]any
	e.call(fc, "GET", "/citizen/v1/export", nil, &raw)
	if b, _ := json.Marshal(raw); strings.Contains(string(b), "token=") {
		t.Fatalf("the export carries a validation link: %s", b)
	}

	if code := e.call(fc, "DELETE", "/citizen/v1/profile", nil, nil); code != 204 {
		t.Fatalf("delete: %d", code)
	}
	if n := mails(`to_addr = 'vecchio@example.it'`); n != 0 {
		t.Errorf("mail to the citizen's earlier address after the deletion: %d, want 0", n)
	}
	if n := mails(`to_addr = 'condiviso@example.it'`); n != 1 || mails(`fiscal_code = ?`, other) != 1 {
		t.Errorf("mail to the shared address after the deletion: %d, want the other citizen's 1", n)
	}
	if plan := dbtest.Plan(t, e.db, `SELECT id FROM mail_outbox WHERE fiscal_code = ?`, fc); !strings.Contains(plan, "mail_outbox_citizen") {
		t.Errorf("mail by citizen does not use its index:\n%s", plan)
	}
}

// E-mail validation links have a key of their own: a link signed with the
// citizen-token key (or any other) is refused.
func TestEmailLinksHaveTheirOwnKey(t *testing.T) {
	e := newEnv(t)
	fc := person(11)
	e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"email": "marta@example.it"}, nil)
	for key, want := range map[string]int{"token key": 400, "email key": 200} {
		k := testKey
		if key == "email key" {
			k = testEmailKey
		}
		resp, err := http.Get(e.srv.URL + "/citizen/email-validation?token=" + emailToken(k, fc, "marta@example.it", e.clock.Now()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("link signed with the %s: %d, want %d", key, resp.StatusCode, want)
		}
	}
	if _, err := New(Config{DB: e.db, TokenKey: testKey, EmailKey: testKey}); err == nil {
		t.Fatal("the same key for tokens and e-mail links accepted")
	}
}

// Leaving LEGACY for AUTO keeps the citizen's blocks: each blocked service
// becomes a per-service preference with the blocked channels off (as IO
// migrates them), instead of AUTO's default letting it write again.
// MANUAL needs no migration: everything starts off there.
func TestLegacyBlocksSurviveTheSwitchToAuto(t *testing.T) {
	e := newEnv(t)
	fc, manual := person(12), person(13)
	blocked := e.service("Tributi", deliverytest.ServiceOpts{})
	noEmail := e.service("Anagrafe", deliverytest.ServiceOpts{})
	free := e.service("Scuola", deliverytest.ServiceOpts{})
	blocks := map[string][]string{blocked.PublicID: {"INBOX", "EMAIL", "WEBHOOK"}, noEmail.PublicID: {"EMAIL"}, free.PublicID: {}, "svcgone": {"INBOX"}}
	for _, who := range []string{fc, manual} {
		if code := e.call(who, "PUT", "/citizen/v1/profile", map[string]any{"blocked_inbox_or_channels": blocks}, nil); code != 201 {
			t.Fatalf("LEGACY profile: %d", code)
		}
	}
	before := e.send(blocked, fc, deliverytest.Message{})
	e.deliver()
	if s := e.status(before); s != "REJECTED/SERVICE_NOT_ALLOWED" {
		t.Fatalf("blocked service in LEGACY: %s", s)
	}
	var p Profile
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "AUTO"}}, &p); code != 200 {
		t.Fatalf("switch to AUTO: %d", code)
	}
	v := p.ServicePreferencesSettings.Version
	for svc, want := range map[string]ServicePreference{
		blocked.PublicID: {false, false, false, v},
		noEmail.PublicID: {true, false, true, v},
		free.PublicID:    {true, true, true, v},
	} {
		var got ServicePreference
		if code := e.call(fc, "GET", "/citizen/v1/services/"+svc+"/preferences", nil, &got); code != 200 || got != want {
			t.Fatalf("after AUTO, %s: %d %+v, want %+v", svc, code, got, want)
		}
	}
	after := e.send(blocked, fc, deliverytest.Message{})
	mail := e.send(noEmail, fc, deliverytest.Message{})
	e.deliver()
	if s := e.status(after); s != "REJECTED/SERVICE_NOT_ALLOWED" {
		t.Fatalf("blocked service after switching to AUTO: %s", s)
	}
	if s := e.status(mail); s != "PROCESSED" {
		t.Fatalf("service with only e-mail blocked: %s", s)
	}
	// The citizen can still lift a block in AUTO.
	if code := e.call(fc, "PUT", "/citizen/v1/services/"+blocked.PublicID+"/preferences", map[string]any{"is_inbox_enabled": true,
		"is_email_enabled": true, "is_webhook_enabled": true, "settings_version": v}, nil); code != 200 {
		t.Fatalf("lift a block: %d", code)
	}
	lifted := e.send(blocked, fc, deliverytest.Message{})
	e.deliver()
	if s := e.status(lifted); s != "PROCESSED" {
		t.Fatalf("after lifting the block: %s", s)
	}

	// LEGACY → MANUAL: the blocks turn nothing on.
	e.call(manual, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "MANUAL"}}, nil)
	var got ServicePreference
	if e.call(manual, "GET", "/citizen/v1/services/"+noEmail.PublicID+"/preferences", nil, &got); got.IsInboxEnabled {
		t.Fatalf("MANUAL after LEGACY: %+v, want off", got)
	}
}

// A known address with the wrong method is a 405 that lists the methods
// it has; an unknown address stays a 404.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, allow string }{
		{"POST", "/citizen/v1/profile", "GET, HEAD, PUT, DELETE"},
		{"PATCH", "/citizen/v1/services/svc1/preferences", "GET, HEAD, PUT"},
		{"GET", "/citizen/v1/email-validation-process", "POST"},
		{"DELETE", "/citizen/v1/messages/01ABC/status", "PUT"},
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, person(1), e.clock.Now()))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Type string `json:"type"`
		}
		_ = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		if res.StatusCode != 405 || res.Header.Get("Allow") != c.allow || p.Type != "urn:sportello:citizen:problem:method" {
			t.Errorf("%s %s: %d Allow %q %+v, want 405 Allow %q", c.method, c.path, res.StatusCode, res.Header.Get("Allow"), p, c.allow)
		}
	}
	if code := e.call(person(1), "POST", "/citizen/v1/nothing-here", nil, nil); code != 404 {
		t.Fatalf("unknown address: %d", code)
	}
}

// The authentication scheme is case-insensitive (RFC 7235).
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	tok := IssueToken(testKey, person(15), e.clock.Now())
	for h, want := range map[string]int{"Bearer " + tok: 200, "bearer " + tok: 200, "BEARER  " + tok: 200, "Basic " + tok: 401, "Bearer": 401, tok: 401} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/citizen/v1/services", nil)
		req.Header.Set("Authorization", h)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Authorization %.12q…: %d, want %d", h, res.StatusCode, want)
		}
	}
}

// No token, an expired one and a forged one are three different answers:
// a problem type and title each, and error="invalid_token" in the
// challenge when a token came but is refused (RFC 6750).
func TestExpiredAndForgedTokensAreToldApart(t *testing.T) {
	e := newEnv(t)
	fc := person(16)
	good := IssueToken(testKey, fc, e.clock.Now())
	forged := good[:strings.LastIndex(good, ".")] + IssueToken(testKey, person(17), e.clock.Now())[strings.LastIndex(good, "."):]
	titles := map[string]bool{}
	for _, c := range []struct {
		name, header, typ, challenge string
	}{
		{"no token", "", "unauthenticated", `Bearer realm="citizen"`},
		{"expired", "Bearer " + IssueToken(testKey, fc, e.clock.Now().Add(-25*time.Hour)), "token_expired", `error="invalid_token"`},
		{"forged", "Bearer " + forged, "token_invalid", `error="invalid_token"`},
		{"another key", "Bearer " + IssueToken([]byte("another key of thirty-two bytes!"), fc, e.clock.Now()), "token_invalid", `error="invalid_token"`},
		{"garbage", "Bearer nonsense", "token_invalid", `error="invalid_token"`},
	} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/citizen/v1/profile", nil)
		if c.header != "" {
			req.Header.Set("Authorization", c.header)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Type, Title string
		}
		_ = json.NewDecoder(res.Body).Decode(&p)
		res.Body.Close()
		ch := res.Header.Get("WWW-Authenticate")
		if res.StatusCode != 401 || p.Type != "urn:sportello:citizen:problem:"+c.typ || !strings.Contains(ch, c.challenge) ||
			(c.typ == "unauthenticated") == strings.Contains(ch, "invalid_token") {
			t.Errorf("%s: %d %+v WWW-Authenticate %q, want type %s and %s", c.name, res.StatusCode, p, ch, c.typ, c.challenge)
		}
		titles[p.Type+p.Title] = true
	}
	if len(titles) != 3 {
		t.Errorf("%d distinct problems, want 3: %v", len(titles), titles)
	}
	if _, err := VerifyToken(testKey, IssueToken(testKey, fc, e.clock.Now()), e.clock.Now().Add(25*time.Hour)); !errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
}

// A service's blocked channels must be a list: null is refused, on that
// service's field, and nothing is stored.
func TestBlockedChannelsNullIsRefused(t *testing.T) {
	e := newEnv(t)
	fc := person(18)
	var prob struct {
		Errors []fieldProblem `json:"errors"`
	}
	req, _ := http.NewRequest("PUT", e.srv.URL+"/citizen/v1/profile", strings.NewReader(`{"blocked_inbox_or_channels":{"svc1":null,"svc2":["EMAIL"]}}`))
	req.Header.Set("Authorization", "Bearer "+IssueToken(testKey, fc, e.clock.Now()))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(res.Body).Decode(&prob)
	res.Body.Close()
	if res.StatusCode != 400 || len(prob.Errors) != 1 || prob.Errors[0].Field != "blocked_inbox_or_channels.svc1" {
		t.Fatalf("null channels: %d %+v, want 400 on blocked_inbox_or_channels.svc1", res.StatusCode, prob.Errors)
	}
	if code := e.call(fc, "GET", "/citizen/v1/profile", nil, nil); code != 404 {
		t.Fatalf("profile stored anyway: %d", code)
	}
	var p Profile
	if code := e.call(fc, "PUT", "/citizen/v1/profile", map[string]any{"blocked_inbox_or_channels": map[string][]string{"svc1": {}}}, &p); code != 201 || p.BlockedInboxOrChannels["svc1"] == nil {
		t.Fatalf("empty list: %d %+v", code, p.BlockedInboxOrChannels)
	}
}

// A service in test mode writes to its authorized test recipients; they
// can read and set its preferences (turn it off) like any other's. Others
// cannot see it, nor anyone a deleted service.
func TestTestServicePreferences(t *testing.T) {
	e := newEnv(t)
	fc, stranger := person(19), person(20)
	draft := e.service("Bozza", deliverytest.ServiceOpts{Draft: true})
	hidden := e.service("Nascosto", deliverytest.ServiceOpts{Hidden: true})
	gone := e.service("Chiuso", deliverytest.ServiceOpts{})
	if _, err := e.db.W.Exec(`UPDATE services SET authorized_recipients = json_array(?) WHERE id = ?`, fc, draft.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.W.Exec(`UPDATE services SET deleted_at = ? WHERE id = ?`, e.clock.Now(), gone.ID); err != nil {
		t.Fatal(err)
	}
	var p Profile
	for _, who := range []string{fc, stranger} {
		e.call(who, "PUT", "/citizen/v1/profile", map[string]any{"service_preferences_settings": map[string]string{"mode": "AUTO"}}, &p)
	}
	first := e.send(draft, fc, deliverytest.Message{Mode: "test"})
	e.deliver()
	if s := e.status(first); s != "PROCESSED" {
		t.Fatalf("test message: %s", s)
	}
	path := "/citizen/v1/services/" + draft.PublicID + "/preferences"
	var pref ServicePreference
	if code := e.call(fc, "GET", path, nil, &pref); code != 200 || !pref.IsInboxEnabled {
		t.Fatalf("test service's preferences for its recipient: %d %+v", code, pref)
	}
	off := map[string]any{"is_inbox_enabled": false, "is_email_enabled": false, "is_webhook_enabled": false, "settings_version": p.ServicePreferencesSettings.Version}
	if code := e.call(fc, "PUT", path, off, nil); code != 200 {
		t.Fatalf("turn the test service off: %d", code)
	}
	second := e.send(draft, fc, deliverytest.Message{Mode: "test"})
	e.deliver()
	if s := e.status(second); s != "REJECTED/SERVICE_NOT_ALLOWED" {
		t.Fatalf("test message after turning the service off: %s", s)
	}
	if code := e.call(fc, "GET", "/citizen/v1/services/"+hidden.PublicID+"/preferences", nil, nil); code != 200 {
		t.Fatalf("hidden approved service: %d", code)
	}
	for who, svc := range map[string]string{stranger: draft.PublicID, fc: gone.PublicID} {
		if code := e.call(who, "GET", "/citizen/v1/services/"+svc+"/preferences", nil, nil); code != 404 {
			t.Fatalf("service that cannot write to the citizen: %d", code)
		}
	}
	if code := e.call(stranger, "PUT", path, off, nil); code != 404 {
		t.Fatalf("PUT by a citizen the test service cannot write to: %d", code)
	}
}

// Every answer of the citizen API, refusals and unknown addresses too, is
// kept by no cache and sniffed by no browser.
func TestCitizenAnswersAreNotCachedOrSniffed(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/citizen/v1/profile"},  // 401 without a token
		{"POST", "/citizen/v1/profile"}, // 405
		{"GET", "/citizen/v1/nothing"},  // 404
	} {
		req, _ := http.NewRequest(c.method, e.srv.URL+c.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s (%d): Cache-Control %q, X-Content-Type-Options %q", c.method, c.path, res.StatusCode,
				res.Header.Get("Cache-Control"), res.Header.Get("X-Content-Type-Options"))
		}
	}
}
