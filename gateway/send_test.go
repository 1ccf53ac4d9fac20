package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sportello/gateway"
)

func TestValidationRulesAnswerWithFieldDetails(t *testing.T) {
	e := newEnv(t)
	_, _, liveKey := e.service(svcOpts{approved: true, maxPayment: 50000})
	md := strings.Repeat("m", 80)
	content := func(kv ...any) map[string]any {
		c := map[string]any{"subject": "Promemoria TARI", "markdown": md}
		for i := 0; i+1 < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	pay := func(kv ...any) map[string]any {
		p := map[string]any{"amount": 1000, "notice_number": "012345678901234567"}
		for i := 0; i+1 < len(kv); i += 2 {
			p[kv[i].(string)] = kv[i+1]
		}
		return p
	}
	badCheck := mario[:15] + string(rune('A'+(mario[15]-'A'+1)%26))
	cases := []struct {
		name          string
		path          string
		body          any
		field, rule   string
		limit, value  any // nil: not checked
		status        int
		messageHasAll []string
	}{
		{"content missing", "/" + mario, map[string]any{}, "content", "required", nil, nil, 400, nil},
		{"subject short", "/" + mario, map[string]any{"content": content("subject", "Breve")}, "content.subject", "min_length", 10.0, 5.0, 400, []string{"10", "5"}},
		{"subject long", "/" + mario, map[string]any{"content": content("subject", strings.Repeat("s", 121))}, "content.subject", "max_length", 120.0, 121.0, 400, []string{"120", "121"}},
		{"markdown short", "/" + mario, map[string]any{"content": content("markdown", strings.Repeat("è", 79))}, "content.markdown", "min_length", 80.0, 79.0, 400, []string{"80", "79"}},
		{"markdown long", "/" + mario, map[string]any{"content": content("markdown", strings.Repeat("m", 10001))}, "content.markdown", "max_length", 10000.0, 10001.0, 400, nil},
		{"ttl low", "/" + mario, map[string]any{"content": content(), "time_to_live": 3599}, "time_to_live", "min", 3600.0, 3599.0, 400, nil},
		{"ttl high", "/" + mario, map[string]any{"content": content(), "time_to_live": 604801}, "time_to_live", "max", 604800.0, 604801.0, 400, nil},
		{"due date", "/" + mario, map[string]any{"content": content("due_date", "31/12/2026")}, "content.due_date", "date_time", nil, "31/12/2026", 400, nil},
		{"notice number", "/" + mario, map[string]any{"content": content("payment_data", pay("notice_number", "412345678901234567"))}, "content.payment_data.notice_number", "pattern", `^[0123][0-9]{17}$`, "412345678901234567", 400, nil},
		{"notice number missing", "/" + mario, map[string]any{"content": content("payment_data", pay("notice_number", ""))}, "content.payment_data.notice_number", "required", nil, nil, 400, nil},
		{"amount missing", "/" + mario, map[string]any{"content": content("payment_data", map[string]any{"notice_number": "012345678901234567"})}, "content.payment_data.amount", "required", nil, nil, 400, nil},
		{"amount zero", "/" + mario, map[string]any{"content": content("payment_data", pay("amount", 0))}, "content.payment_data.amount", "min", 1.0, nil, 400, nil},
		{"amount huge", "/" + mario, map[string]any{"content": content("payment_data", pay("amount", int64(10000000000)))}, "content.payment_data.amount", "max", 9999999999.0, 10000000000.0, 400, nil},
		{"amount over service max", "/" + mario, map[string]any{"content": content("payment_data", pay("amount", 50001))}, "content.payment_data.amount", "max_payment", 50000.0, 50001.0, 400, []string{"50000", "50001"}},
		{"payee", "/" + mario, map[string]any{"content": content("payment_data", pay("payee", map[string]string{"fiscal_code": "12345678901"}))}, "content.payment_data.payee.fiscal_code", "organization_fiscal_code", nil, "12345678901", 400, nil},
		{"feature level", "/" + mario, map[string]any{"content": content(), "feature_level_type": "PREMIUM"}, "feature_level_type", "enum", "STANDARD|ADVANCED", "PREMIUM", 400, nil},
		{"fiscal code format", "/RSSMRA85T10A56", map[string]any{"content": content()}, "fiscal_code", "pattern", nil, nil, 400, nil},
		{"fiscal code check character", "/" + badCheck, map[string]any{"content": content()}, "fiscal_code", "check_character", nil, nil, 400, nil},
		{"fiscal code missing", "", map[string]any{"content": content()}, "fiscal_code", "required", nil, nil, 400, nil},
		{"fiscal code twice", "/" + mario, map[string]any{"content": content(), "fiscal_code": mario}, "fiscal_code", "conflict", nil, nil, 400, nil},
		{"wrong type", "/" + mario, map[string]any{"content": content("require_secure_channels", "yes")}, "content.require_secure_channels", "type", "boolean", "string", 400, nil},
		{"wrong type ttl", "/" + mario, map[string]any{"content": content(), "time_to_live": "3600"}, "time_to_live", "type", "integer", "string", 400, nil},
		{"not an object", "/" + mario, `[]`, "", "type", "object", "array", 400, []string{"The request body must be of type object"}},
		{"lone surrogate escape", "/" + mario, `{"content":{"subject":"Scadenza \ud800 TARI","markdown":"` + md + `"}}`, "content.subject", "characters", nil, "U+FFFD", 400, []string{"U+FFFD"}},
		{"blank subject", "/" + mario, map[string]any{"content": content("subject", strings.Repeat(" ", 6)+strings.Repeat("\u200b", 6))}, "content.subject", "blank", nil, nil, 400, []string{"only spaces or invisible characters"}},
		{"blank markdown", "/" + mario, map[string]any{"content": content("markdown", strings.Repeat(" \n", 50))}, "content.markdown", "blank", nil, nil, 400, nil},
		{"emoji count twice, as in IO", "/" + mario, map[string]any{"content": content("subject", "🗑🗑🗑🗑")}, "content.subject", "min_length", 10.0, 8.0, 400, nil},
		{"NUL in markdown", "/" + mario, map[string]any{"content": content("markdown", md+"\x00")}, "content.markdown", "characters", nil, "U+0000", 400, nil},
		{"text direction override", "/" + mario, map[string]any{"content": content("subject", "Promemoria \u202eIRAT")}, "content.subject", "characters", nil, "U+202E", 400, nil},
		{"newline in subject", "/" + mario, map[string]any{"content": content("subject", "Promemoria\nTARI")}, "content.subject", "characters", nil, "U+000A", 400, nil},
		{"not UTF-8", "/" + mario, "{\"content\":{\"subject\":\"Pagamento entro luned\xec\"}}", "", "encoding", nil, 44.0, 400, []string{"not UTF-8", "44"}},
		{"payee is a person", "/" + mario, map[string]any{"content": content("payment_data", pay("payee", map[string]string{"fiscal_code": anna}))}, "content.payment_data.payee.fiscal_code", "organization_fiscal_code", nil, anna[:3] + "************" + anna[15:], 400, nil},
		{"due date offset of a day", "/" + mario, map[string]any{"content": content("due_date", "2026-12-31T23:00:00+24:00")}, "content.due_date", "date_time", nil, nil, 400, nil},
		{"due date past year 9999", "/" + mario, map[string]any{"content": content("due_date", "9999-12-31T23:59:59-23:59")}, "content.due_date", "date_time", nil, nil, 400, nil},
		{"syntax", "/" + mario, `{"content": {"subject": "Promemoria"`, "", "syntax", nil, nil, 400, nil},
		{"syntax offset", "/" + mario, `{"content": }`, "", "syntax", nil, 13.0, 400, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/messages"+c.path, liveKey, c.body, "Accept-Language", "en")
			if r.StatusCode != c.status {
				t.Fatalf("status %d: %s", r.StatusCode, r.body)
			}
			p := r.problem(t)
			if len(p.Errors) != 1 {
				t.Fatalf("errors %+v", p.Errors)
			}
			fe := p.Errors[0]
			if fe.Field != c.field || fe.Rule != c.rule || fe.Message == "" || strings.Contains(fe.Message, "%!") {
				t.Fatalf("got %+v, want field %q rule %q", fe, c.field, c.rule)
			}
			if c.limit != nil && fmt.Sprint(fe.Limit) != fmt.Sprint(c.limit) {
				t.Fatalf("limit %v, want %v", fe.Limit, c.limit)
			}
			if c.value != nil && fmt.Sprint(fe.Value) != fmt.Sprint(c.value) {
				t.Fatalf("value %v, want %v", fe.Value, c.value)
			}
			for _, s := range c.messageHasAll {
				if !strings.Contains(fe.Message, s) {
					t.Fatalf("message %q lacks %q", fe.Message, s)
				}
			}
		})
	}
	// Several broken rules are reported together, in Italian by default.
	r := e.do("POST", "/api/v1/messages/"+mario, liveKey, map[string]any{"content": content("subject", "x", "markdown", "y"), "time_to_live": 1})
	p := r.problem(t)
	if len(p.Errors) != 3 || !strings.Contains(p.Errors[0].Message, "almeno") {
		t.Fatalf("errors %+v", p.Errors)
	}
	// Limits that are not field rules.
	big := `{"content":{"subject":"Promemoria TARI","markdown":"` + strings.Repeat("a", 200<<10) + `"}}`
	if r := e.do("POST", "/api/v1/messages/"+mario, liveKey, big); r.StatusCode != 413 {
		t.Fatalf("large body: %d", r.StatusCode)
	} else {
		r.problem(t)
	}
	if r := e.do("POST", "/api/v1/messages/"+mario, liveKey, nil, "Content-Type", "text/plain"); r.StatusCode != 415 {
		t.Fatalf("text body: %d", r.StatusCode)
	}
	// JSON is UTF-8: a body declared in another charset would be stored
	// garbled, so it is refused; utf-8 in any spelling is fine.
	for ct, want := range map[string]int{"application/json; charset=ISO-8859-1": 415, "application/json; charset=windows-1252": 415,
		"application/json; charset=UTF-8": 201, "application/json;charset=utf-8": 201} {
		if r := e.do("POST", "/api/v1/messages/"+mario, liveKey, map[string]any{"content": content()}, "Content-Type", ct); r.StatusCode != want {
			t.Fatalf("%s: %d, want %d", ct, r.StatusCode, want)
		}
	}
	e.d.W.MustExec(`DELETE FROM outbox`)
	e.d.W.MustExec(`DELETE FROM messages`)
	if n := e.count(`SELECT COUNT(*) FROM messages`); n != 0 {
		t.Fatalf("%d invalid messages stored", n)
	}
	// The limits themselves are accepted.
	ok := map[string]any{"time_to_live": 604800, "feature_level_type": "ADVANCED", "content": content(
		"subject", strings.Repeat("s", 120), "markdown", strings.Repeat("m", 10000), "due_date", "2026-12-31T23:00:00+01:00",
		"payment_data", pay("amount", 50000, "payee", map[string]string{"fiscal_code": "00000000000"}))}
	if r := e.do("POST", "/api/v1/messages/"+mario, liveKey, ok); r.StatusCode != 201 {
		t.Fatalf("valid limits: %d %s", r.StatusCode, r.body)
	}
	// RFC 3339 allows a lower-case t and z and fractions of a second; the
	// due date is kept in UTC with its fraction.
	// Markdown keeps its lines and tabs.
	r = e.do("POST", "/api/v1/messages/"+mario, liveKey, map[string]any{"content": content("due_date", "2026-12-31t23:00:00.250+01:00",
		"markdown", md+"\n\n- una voce\tcon tab\r\n")})
	if r.StatusCode != 201 {
		t.Fatalf("lower-case due date, markdown with lines: %d %s", r.StatusCode, r.body)
	}
	var stored string
	if err := e.d.R.Get(&stored, `SELECT json_extract(content, '$.due_date') FROM messages WHERE id = ?`, strings.Trim(strings.TrimPrefix(string(r.body), `{"id":`), `"}`)); err != nil || stored != "2026-12-31T22:00:00.25Z" {
		t.Fatalf("stored due date %q (%v), want 2026-12-31T22:00:00.25Z", stored, err)
	}
}

func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	_, _, liveKey := e.service(svcOpts{approved: true})
	path := "/api/v1/messages/" + mario
	first := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Idempotency-Key", "req-1")
	if first.StatusCode != 201 {
		t.Fatalf("%d %s", first.StatusCode, first.body)
	}
	again := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Idempotency-Key", "req-1")
	if again.StatusCode != 201 || string(again.body) != string(first.body) || again.Header.Get("Location") != first.Header.Get("Location") ||
		again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %d %s (first %s)", again.StatusCode, again.body, first.body)
	}
	other := e.do("POST", path, liveKey, msg("Promemoria IMU!"), "Idempotency-Key", "req-1")
	if other.StatusCode != 422 {
		t.Fatalf("same key, other body: %d", other.StatusCode)
	}
	other.problem(t)
	// The same key and body to another recipient is another request, not a
	// retry: answering it with the first message's id would lose it.
	elsewhere := e.do("POST", "/api/v1/messages/"+anna, liveKey, msg("Promemoria TARI"), "Idempotency-Key", "req-1")
	if elsewhere.StatusCode != 422 {
		t.Fatalf("same key and body, other recipient: %d %s (Location %s)", elsewhere.StatusCode, elsewhere.body, elsewhere.Header.Get("Location"))
	}
	elsewhere.problem(t)
	// Concurrent retries of one request store one message.
	var wg sync.WaitGroup
	ids := make([]string, 20)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Idempotency-Key", "req-2")
			if r.StatusCode != 201 {
				t.Errorf("%d %s", r.StatusCode, r.body)
			}
			ids[i] = string(r.body)
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("different ids %v", ids)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM messages`); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	// The key is bounded: it is stored with the message.
	long := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Idempotency-Key", strings.Repeat("k", 256))
	if p := long.problem(t); long.StatusCode != 400 || p.Errors[0].Field != "Idempotency-Key" || p.Errors[0].Rule != "max_length" {
		t.Fatalf("long key: %d %s", long.StatusCode, long.body)
	}
	// After 24 hours the key may be used again.
	e.clock.Advance(25 * time.Hour)
	if r := e.do("POST", path, liveKey, msg("Promemoria IMU!"), "Idempotency-Key", "req-1"); r.StatusCode != 201 || string(r.body) == string(first.body) {
		t.Fatalf("after 24h: %d %s", r.StatusCode, r.body)
	}
}

func TestAcceptedMessageSurvivesRestartAndOnlyItsServiceReadsIt(t *testing.T) {
	e := newEnv(t)
	_, _, liveKey := e.service(svcOpts{approved: true})
	_, otherTest, otherLive := e.service(svcOpts{approved: true, recipients: []string{mario}})
	body := map[string]any{"fiscal_code": mario, "content": map[string]any{"subject": "Promemoria TARI",
		"markdown": strings.Repeat("Testo del messaggio. ", 5), "due_date": "2026-12-31T23:00:00Z",
		"require_secure_channels": true}}
	r := e.do("POST", "/api/v1/messages", liveKey, body)
	if r.StatusCode != 201 {
		t.Fatalf("%d %s", r.StatusCode, r.body)
	}
	var created struct{ ID string }
	_ = json.Unmarshal(r.body, &created)
	loc := r.Header.Get("Location")
	if created.ID == "" || loc != "/api/v1/messages/"+mario+"/"+created.ID {
		t.Fatalf("id %q location %q", created.ID, loc)
	}
	e.restart()
	g := e.do("GET", loc, liveKey, nil)
	if g.StatusCode != 200 {
		t.Fatalf("GET after restart: %d %s", g.StatusCode, g.body)
	}
	var got struct {
		Message struct {
			ID         string `json:"id"`
			FiscalCode string `json:"fiscal_code"`
			Content    struct {
				Subject string `json:"subject"`
				DueDate string `json:"due_date"`
			} `json:"content"`
			TTL       int    `json:"time_to_live"`
			CreatedAt string `json:"created_at"`
		} `json:"message"`
		Status       string            `json:"status"`
		Notification map[string]string `json:"notification"`
	}
	if err := json.Unmarshal(g.body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "ACCEPTED" || got.Message.Content.Subject != "Promemoria TARI" || got.Message.TTL != 3600 ||
		got.Message.FiscalCode != mario || got.Notification == nil {
		t.Fatalf("message %s", g.body)
	}
	// IO's format: UTC, exactly three fractional digits (Go's default has
	// up to nine and drops trailing zeros; Python before 3.11 refuses it).
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(got.Message.CreatedAt) {
		t.Errorf("created_at %q is not IO's format", got.Message.CreatedAt)
	}
	if n := e.count(`SELECT COUNT(*) FROM outbox WHERE message_id = ?`, created.ID); n != 1 {
		t.Fatal("no outbox row")
	}
	if n := e.count(`SELECT require_secure_channels FROM messages WHERE id = ?`, created.ID); n != 1 {
		t.Fatal("require_secure_channels not stored")
	}
	// Another service, another fiscal code or an unknown id: 404.
	for _, c := range []struct{ key, path string }{
		{otherLive, loc},
		{otherTest, loc},
		{liveKey, "/api/v1/messages/" + anna + "/" + created.ID},
		{liveKey, "/api/v1/messages/" + mario + "/01ARZ3NDEKTSV4RRFFQ69G5FAV"},
	} {
		r := e.do("GET", c.path, c.key, nil)
		if r.StatusCode != 404 {
			t.Fatalf("%s: %d", c.path, r.StatusCode)
		}
		r.problem(t)
	}
	// Delivery state shows up per channel.
	e.d.W.MustExec(`INSERT INTO notifications (message_id, channel, status, updated_at) VALUES (?, 'email', 'SENT', ?)`, created.ID, time.Now())
	e.d.W.MustExec(`UPDATE messages SET status = 'PROCESSED' WHERE id = ?`, created.ID)
	g = e.do("GET", loc, liveKey, nil)
	_ = json.Unmarshal(g.body, &got)
	if got.Status != "PROCESSED" || got.Notification["email"] != "SENT" {
		t.Fatalf("after delivery: %s", g.body)
	}
}

func TestProfileLookup(t *testing.T) {
	e := newEnv(t)
	id, _, liveKey := e.service(svcOpts{approved: true})
	var public string
	_ = e.d.R.Get(&public, `SELECT public_id FROM services WHERE id = ?`, id)
	now := time.Now().UTC()
	e.d.W.MustExec(`INSERT INTO profiles (fiscal_code, preferred_languages, created_at, updated_at) VALUES (?, '["it_IT","en_GB"]', ?, ?)`, mario, now, now)
	e.d.W.MustExec(`INSERT INTO profiles (fiscal_code, blocked_inbox_or_channels, created_at, updated_at) VALUES (?, ?, ?, ?)`, anna, `{"`+public+`":["INBOX"]}`, now, now)
	check := func(r resp, allowed bool, langs string) {
		t.Helper()
		if r.StatusCode != 200 {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
		var p struct {
			SenderAllowed      bool     `json:"sender_allowed"`
			PreferredLanguages []string `json:"preferred_languages"`
		}
		_ = json.Unmarshal(r.body, &p)
		if p.SenderAllowed != allowed || strings.Join(p.PreferredLanguages, ",") != langs {
			t.Fatalf("profile %s", r.body)
		}
	}
	check(e.do("GET", "/api/v1/profiles/"+mario, liveKey, nil), true, "it_IT,en_GB")
	check(e.do("POST", "/api/v1/profiles", liveKey, map[string]string{"fiscal_code": mario}), true, "it_IT,en_GB")
	check(e.do("GET", "/api/v1/profiles/"+anna, liveKey, nil), false, "")
	// MANUAL mode: not allowed until the citizen turns the service on.
	e.d.W.MustExec(`UPDATE profiles SET preferences_mode = 'MANUAL', preferences_version = 1 WHERE fiscal_code = ?`, mario)
	check(e.do("GET", "/api/v1/profiles/"+mario, liveKey, nil), false, "it_IT,en_GB")
	e.d.W.MustExec(`INSERT INTO service_preferences VALUES (?, ?, 1, 1, 1, 1, ?)`, mario, id, now)
	check(e.do("GET", "/api/v1/profiles/"+mario, liveKey, nil), true, "it_IT,en_GB")
	// No profile, or inbox off: 404 with a plain explanation.
	r := e.do("GET", "/api/v1/profiles/"+cf("VRDLGU70C12F205"), liveKey, nil)
	if r.StatusCode != 404 || !strings.Contains(r.problem(t).Detail, "app") {
		t.Fatalf("no profile: %d %s", r.StatusCode, r.body)
	}
	e.d.W.MustExec(`UPDATE profiles SET is_inbox_enabled = 0 WHERE fiscal_code = ?`, mario)
	if r := e.do("GET", "/api/v1/profiles/"+mario, liveKey, nil); r.StatusCode != 404 {
		t.Fatalf("inbox off: %d", r.StatusCode)
	}
	if r := e.do("GET", "/api/v1/profiles/NOTACODE", liveKey, nil); r.StatusCode != 400 {
		t.Fatalf("bad code: %d", r.StatusCode)
	}
}

func TestUsageAndLastUsedAreWrittenInBatches(t *testing.T) {
	e := newEnv(t)
	id, testKey, liveKey := e.service(svcOpts{approved: true, rate: [2]int{2, 60}})
	for range 3 {
		e.do("POST", "/api/v1/messages/"+mario, liveKey, msg("Promemoria TARI"))
	}
	e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", testKey, msg("Promemoria TARI"))
	e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", testKey, msg("short"))
	// Nothing is written per request...
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE last_used_at IS NOT NULL`); n != 0 {
		t.Fatalf("%d keys written per request", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM usage_daily`); n != 0 {
		t.Fatal("usage written per request")
	}
	// ...but on flush (here: at close).
	e.restart()
	day := e.clock.Now().Format("2006-01-02")
	for _, c := range []struct {
		mode, outcome string
		want          int
	}{{"live", "accepted", 2}, {"live", "throttled", 1}, {"test", "client_error", 1}, {"test", "accepted", 1}} {
		var n int
		_ = e.d.R.Get(&n, `SELECT COALESCE(SUM(count), 0) FROM usage_daily WHERE service_id = ? AND day = ? AND mode = ? AND outcome = ?`, id, day, c.mode, c.outcome)
		if n != c.want {
			t.Fatalf("%s %s: %d, want %d", c.mode, c.outcome, n, c.want)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM api_keys WHERE service_id = ? AND slot = 'primary' AND revoked_at IS NULL AND last_used_at IS NOT NULL`, id); n != 2 {
		t.Fatalf("%d keys with last_used_at", n)
	}
	if r := e.do("GET", "/api/v1/nothing", liveKey, nil); r.StatusCode != 404 {
		t.Fatal(r.StatusCode)
	} else {
		r.problem(t)
	}
	r := e.do("GET", "/api/v1/openapi.yaml", "", nil)
	if r.StatusCode != 200 || !strings.HasPrefix(string(r.body), "openapi: 3") {
		t.Fatalf("openapi: %d", r.StatusCode)
	}
	_ = http.StatusOK
}

// Usage is counted per Italian calendar day, like the weekly quota: at
// 00:30 on a Monday in Rome (23:30 UTC on Sunday) a request counts on
// Monday, the day whose quota week it used.
func TestUsageDayIsTheItalianDay(t *testing.T) {
	e := newEnv(t)
	id, testKey, _ := e.service(svcOpts{approved: true})
	e.clock.Set(time.Date(2026, 11, 29, 23, 30, 0, 0, time.UTC)) // Monday 30 November, 00:30 in Rome
	if r := e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", testKey, msg("Promemoria TARI")); r.StatusCode != 201 {
		t.Fatalf("send: %d %s", r.StatusCode, r.body)
	}
	e.restart() // flushes the meter
	var days []string
	_ = e.d.R.Select(&days, `SELECT day FROM usage_daily WHERE service_id = ?`, id)
	if len(days) != 1 || days[0] != "2026-11-30" {
		t.Fatalf("usage days %v, want [2026-11-30]", days)
	}
	if week, _ := gateway.WeekOf(e.clock.Now()); week != "2026-11-30" {
		t.Fatalf("quota week %s: the day and the week disagree", week)
	}
}

// Test and live keys are two different senders for idempotency: a key an
// integrator used while testing must not turn the first live message into
// a "retry" of the test one, which no citizen would ever receive.
func TestIdempotencyKeysAreSeparateForTestAndLive(t *testing.T) {
	e := newEnv(t)
	_, testKey, liveKey := e.service(svcOpts{approved: true, recipients: []string{mario}})
	path := "/api/v1/messages/" + mario
	test := e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "tari-rata-1")
	live := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Idempotency-Key", "tari-rata-1")
	if test.StatusCode != 201 || live.StatusCode != 201 || live.Header.Get("Idempotent-Replayed") != "" || string(live.body) == string(test.body) {
		t.Fatalf("test %d %s, live %d %s (replayed %q): want two messages", test.StatusCode, test.body, live.StatusCode, live.body, live.Header.Get("Idempotent-Replayed"))
	}
	again := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Idempotency-Key", "tari-rata-1")
	if again.StatusCode != 201 || string(again.body) != string(live.body) {
		t.Fatalf("live retry: %d %s, want %s", again.StatusCode, again.body, live.body)
	}
	if n := e.count(`SELECT COUNT(*) FROM messages WHERE mode = 'live'`); n != 1 {
		t.Fatalf("%d live messages, want 1", n)
	}
}

// IO hands integrators fake fiscal codes for their tests, of the form
// ^[A-Z]{6}[0-9]{2}A[0-9]{2}Y[0-9]{3}X$ (no real birthplace code starts
// with Y), whose last letter is no check character. An integrator coming
// from IO keeps using theirs: once among the service's test recipients it
// is a recipient like any other, not a 400 check_character.
func TestIOSandboxFiscalCodes(t *testing.T) {
	e := newEnv(t)
	const ioSandbox = "ISPXNB32A82Y766X"
	_, testKey, _ := e.service(svcOpts{recipients: []string{ioSandbox}})
	r := e.do("POST", "/api/v1/messages/"+ioSandbox, testKey, msg("Promemoria TARI"))
	if r.StatusCode != 201 {
		t.Fatalf("send to an IO sandbox code: %d %s", r.StatusCode, r.body)
	}
	if g := e.do("GET", r.Header.Get("Location"), testKey, nil); g.StatusCode != 200 {
		t.Fatalf("read: %d %s", g.StatusCode, g.body)
	}
	// Another sandbox code is not among the recipients: 403, as any other.
	if r := e.do("POST", "/api/v1/messages/AAAAAA00A00Y000X", testKey, msg("Promemoria TARI")); r.StatusCode != 403 {
		t.Fatalf("sandbox code outside the test list: %d %s", r.StatusCode, r.body)
	}
}

// A body written for IO, with fields IO knows and Sportello does not
// deliver, is accepted (an integrator changes only the base URL) and those
// fields are not stored: they reach no citizen.
func TestIOOnlyFieldsAreAcceptedAndNotStored(t *testing.T) {
	e := newEnv(t)
	_, _, liveKey := e.service(svcOpts{approved: true})
	body := map[string]any{
		"default_addresses": map[string]any{"email": "someone@example.com"},
		"content": map[string]any{"subject": "Ricetta medica", "markdown": strings.Repeat("Testo del messaggio. ", 5),
			"prescription_data": map[string]any{"nre": "050A00854698121", "iup": "0000X0NFM"},
			"legal_data":        map[string]any{"sender_mail_from": "pec@comune.it", "has_attachment": false, "message_unique_id": "1"},
			"third_party_data":  map[string]any{"id": "ext-1"},
			"eu_covid_cert":     map[string]any{"auth_code": "x"}},
	}
	r := e.do("POST", "/api/v1/messages/"+mario, liveKey, body)
	if r.StatusCode != 201 {
		t.Fatalf("IO body: %d %s", r.StatusCode, r.body)
	}
	var content string
	if err := e.d.R.Get(&content, `SELECT content FROM messages`); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"prescription_data", "legal_data", "third_party_data", "eu_covid_cert", "someone@example.com"} {
		if strings.Contains(content, f) {
			t.Errorf("stored content has %s: %s", f, content)
		}
	}
}
