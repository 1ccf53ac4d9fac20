package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/jmoiron/sqlx"

	"sportello/gateway"
	"sportello/gateway/keys"
)

// The OpenAPI document is a promise to integrators and to the code they
// generate from it. This test provokes, on the real handler and a real
// SQLite file, every response code the document lists for each operation
// (a 500 in a gateway whose quota table is gone), and checks each answer
// against the document:
// the status is one the operation lists, the Content-Type one it
// describes, the body validates against its schema (required fields,
// types, enums, patterns), no object in it carries a field the schema does
// not name, and the headers the response describes are there.
func TestAnswersMatchTheOpenAPIDocument(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(gateway.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t)
	_, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	_, _, liveKey := e.service(svcOpts{approved: true, maxPayment: 50000})
	_, _, slowKey := e.service(svcOpts{approved: true, rate: [2]int{1, 3600}})
	suspID, suspKey, _ := e.service(svcOpts{})
	e.d.W.MustExec(`UPDATE services SET suspended_at = ? WHERE id = ?`, time.Now(), suspID)
	_, heldKey, _ := e.service(svcOpts{})
	e.d.W.MustExec(`UPDATE api_keys SET suspended_at = ?, suspended_reason = 'prova' WHERE key_hash = ?`, time.Now(), keys.Hash(heldKey))
	_, cidrKey, _ := e.service(svcOpts{cidrs: []string{"192.0.2.0/24"}})
	unapprovedLive := e.liveKeyOfUnapprovedService()
	spentID, spentKey, _ := e.service(svcOpts{recipients: []string{mario}})
	week, _ := gateway.WeekOf(e.clock.Now())
	e.d.W.MustExec(`INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, ?, ?)`, spentID, week, gateway.DefaultWeeklyQuota)
	now := time.Now().UTC()
	e.d.W.MustExec(`INSERT INTO profiles (fiscal_code, preferred_languages, created_at, updated_at) VALUES (?, '["it_IT","en_GB"]', ?, ?)`, mario, now, now)

	body := msg("Promemoria TARI")
	full := map[string]any{"time_to_live": 7200, "feature_level_type": "ADVANCED", "content": map[string]any{
		"subject": "Avviso di pagamento TARI", "markdown": strings.Repeat("Testo del messaggio. ", 5),
		"due_date": "2026-12-31T23:00:00+01:00", "require_secure_channels": true,
		"payment_data": map[string]any{"amount": 1000, "notice_number": "012345678901234567", "invalid_after_due_date": true,
			"payee": map[string]any{"fiscal_code": "00000000000"}}}}
	big := `{"content":{"subject":"Promemoria TARI","markdown":"` + strings.Repeat("a", 200<<10) + `"}}`
	inBody := func(cf string) map[string]any {
		m := msg("Promemoria TARI")
		m["fiscal_code"] = cf
		return m
	}

	sent := e.do("POST", "/api/v1/messages/"+mario, liveKey, full, "Idempotency-Key", "conf-1")
	if sent.StatusCode != 201 {
		t.Fatalf("send: %d %s", sent.StatusCode, sent.body)
	}
	msgPath := sent.Header.Get("Location")
	testSent := e.do("POST", "/api/v1/messages/"+mario, testKey, body)
	if testSent.StatusCode != 201 {
		t.Fatalf("test send: %d %s", testSent.StatusCode, testSent.body)
	}
	_ = e.do("GET", "/api/v1/profiles/"+mario, slowKey, nil) // spends the only token

	const (
		sendPath    = "/messages/{fiscal_code}"
		sendInBody  = "/messages"
		messagePath = "/messages/{fiscal_code}/{id}"
		profilePath = "/profiles/{fiscal_code}"
		profilePost = "/profiles"
	)
	type call struct {
		name, method, path string
		want               int
		do                 func() resp
		headers            []string // expected beyond those the response documents
	}
	calls := []call{
		{"send", "POST", sendPath, 201, func() resp { return sent }, nil},
		{"send with a test key", "POST", sendPath, 201, func() resp { return testSent }, nil},
		{"send retried", "POST", sendPath, 201, func() resp {
			return e.do("POST", "/api/v1/messages/"+mario, liveKey, full, "Idempotency-Key", "conf-1")
		}, []string{"Idempotent-Replayed"}},
		{"send invalid", "POST", sendPath, 400, func() resp { return e.do("POST", "/api/v1/messages/"+mario, liveKey, msg("Breve")) }, nil},
		{"send not JSON", "POST", sendPath, 400, func() resp { return e.do("POST", "/api/v1/messages/"+mario, liveKey, `{"content":`) }, nil},
		{"send without key", "POST", sendPath, 401, func() resp { return e.do("POST", "/api/v1/messages/"+mario, "", body) }, []string{"WWW-Authenticate"}},
		{"send with unknown key", "POST", sendPath, 401, func() resp {
			return e.do("POST", "/api/v1/messages/"+mario, "sp_live_"+strings.Repeat("x", 43), body)
		}, nil},
		{"send to a non-test recipient", "POST", sendPath, 403, func() resp { return e.do("POST", "/api/v1/messages/"+anna, testKey, body) }, nil},
		{"send suspended", "POST", sendPath, 403, func() resp { return e.do("POST", "/api/v1/messages/"+mario, suspKey, body) }, nil},
		{"send with a suspended key", "POST", sendPath, 403, func() resp { return e.do("POST", "/api/v1/messages/"+mario, heldKey, body) }, nil},
		{"send outside CIDRs", "POST", sendPath, 403, func() resp { return e.do("POST", "/api/v1/messages/"+mario, cidrKey, body) }, nil},
		{"send live unapproved", "POST", sendPath, 403, func() resp { return e.do("POST", "/api/v1/messages/"+mario, unapprovedLive, body) }, nil},
		{"send too large", "POST", sendPath, 413, func() resp { return e.do("POST", "/api/v1/messages/"+mario, liveKey, big) }, nil},
		{"send not JSON type", "POST", sendPath, 415, func() resp {
			return e.do("POST", "/api/v1/messages/"+mario, liveKey, "x", "Content-Type", "text/plain")
		}, nil},
		{"send key reused", "POST", sendPath, 422, func() resp {
			return e.do("POST", "/api/v1/messages/"+mario, liveKey, body, "Idempotency-Key", "conf-1")
		}, nil},
		{"send rate limited", "POST", sendPath, 429, func() resp { return e.do("POST", "/api/v1/messages/"+mario, slowKey, body) }, nil},
		{"send week spent", "POST", sendPath, 429, func() resp { return e.do("POST", "/api/v1/messages/"+mario, spentKey, body) }, nil},

		{"send, code in body", "POST", sendInBody, 201, func() resp { return e.do("POST", "/api/v1/messages", liveKey, inBody(mario)) }, nil},
		{"send, code twice", "POST", sendInBody, 400, func() resp { return e.do("POST", "/api/v1/messages/"+mario, liveKey, inBody(mario)) }, nil},
		{"send, code missing", "POST", sendInBody, 400, func() resp { return e.do("POST", "/api/v1/messages", liveKey, body) }, nil},
		{"send, code in body, no key", "POST", sendInBody, 401, func() resp { return e.do("POST", "/api/v1/messages", "", inBody(mario)) }, nil},
		{"send, code in body, non-test", "POST", sendInBody, 403, func() resp { return e.do("POST", "/api/v1/messages", testKey, inBody(anna)) }, nil},
		{"send, code in body, too large", "POST", sendInBody, 413, func() resp { return e.do("POST", "/api/v1/messages", liveKey, big) }, nil},
		{"send, code in body, not JSON", "POST", sendInBody, 415, func() resp {
			return e.do("POST", "/api/v1/messages", liveKey, "x", "Content-Type", "text/plain")
		}, nil},
		{"send, code in body, key reused", "POST", sendInBody, 422, func() resp {
			return e.do("POST", "/api/v1/messages", liveKey, inBody(anna), "Idempotency-Key", "conf-1")
		}, nil},
		{"send, code in body, rate limited", "POST", sendInBody, 429, func() resp { return e.do("POST", "/api/v1/messages", slowKey, inBody(mario)) }, nil},

		{"message", "GET", messagePath, 200, func() resp { return e.do("GET", msgPath, liveKey, nil) }, nil},
		{"message, test key", "GET", messagePath, 200, func() resp { return e.do("GET", testSent.Header.Get("Location"), testKey, nil) }, nil},
		{"message, bad code", "GET", messagePath, 400, func() resp { return e.do("GET", "/api/v1/messages/RSSMRA85T10A56/x", liveKey, nil) }, nil},
		{"message, no key", "GET", messagePath, 401, func() resp { return e.do("GET", msgPath, "", nil) }, nil},
		{"message, non-test", "GET", messagePath, 403, func() resp { return e.do("GET", "/api/v1/messages/"+anna+"/x", testKey, nil) }, nil},
		{"message, unknown", "GET", messagePath, 404, func() resp { return e.do("GET", "/api/v1/messages/"+mario+"/nope", liveKey, nil) }, nil},
		{"message, rate limited", "GET", messagePath, 429, func() resp { return e.do("GET", msgPath, slowKey, nil) }, nil},

		{"profile", "GET", profilePath, 200, func() resp { return e.do("GET", "/api/v1/profiles/"+mario, liveKey, nil) }, nil},
		{"profile, bad code", "GET", profilePath, 400, func() resp { return e.do("GET", "/api/v1/profiles/RSSMRA85T10A56", liveKey, nil) }, nil},
		{"profile, no key", "GET", profilePath, 401, func() resp { return e.do("GET", "/api/v1/profiles/"+mario, "", nil) }, nil},
		{"profile, non-test", "GET", profilePath, 403, func() resp { return e.do("GET", "/api/v1/profiles/"+anna, testKey, nil) }, nil},
		{"profile, none", "GET", profilePath, 404, func() resp { return e.do("GET", "/api/v1/profiles/"+anna, liveKey, nil) }, nil},
		{"profile, week spent", "GET", profilePath, 429, func() resp { return e.do("GET", "/api/v1/profiles/"+mario, spentKey, nil) }, nil},

		{"profile by POST", "POST", profilePost, 200, func() resp {
			return e.do("POST", "/api/v1/profiles", liveKey, map[string]string{"fiscal_code": mario})
		}, nil},
		{"profile by POST, bad code", "POST", profilePost, 400, func() resp {
			return e.do("POST", "/api/v1/profiles", liveKey, map[string]string{"fiscal_code": "x"})
		}, nil},
		{"profile by POST, no key", "POST", profilePost, 401, func() resp {
			return e.do("POST", "/api/v1/profiles", "", map[string]string{"fiscal_code": mario})
		}, nil},
		{"profile by POST, non-test", "POST", profilePost, 403, func() resp {
			return e.do("POST", "/api/v1/profiles", testKey, map[string]string{"fiscal_code": anna})
		}, nil},
		{"profile by POST, none", "POST", profilePost, 404, func() resp {
			return e.do("POST", "/api/v1/profiles", liveKey, map[string]string{"fiscal_code": anna})
		}, nil},
		{"profile by POST, too large", "POST", profilePost, 413, func() resp { return e.do("POST", "/api/v1/profiles", liveKey, big) }, nil},
		{"profile by POST, not JSON", "POST", profilePost, 415, func() resp {
			return e.do("POST", "/api/v1/profiles", liveKey, "x", "Content-Type", "text/plain")
		}, nil},
		{"profile by POST, rate limited", "POST", profilePost, 429, func() resp {
			return e.do("POST", "/api/v1/profiles", slowKey, map[string]string{"fiscal_code": mario})
		}, nil},

		{"document", "GET", "/openapi.yaml", 200, func() resp { return e.do("GET", "/api/v1/openapi.yaml", "", nil) }, nil},
	}

	// A 500: the test quota's table is gone (in a gateway of its own).
	broken := newEnv(t)
	_, brokenKey, _ := broken.service(svcOpts{recipients: []string{mario}})
	broken.d.W.MustExec(`DROP TABLE quota_usage`)
	calls = append(calls,
		call{"send, database failing", "POST", sendPath, 500, func() resp { return broken.do("POST", "/api/v1/messages/"+mario, brokenKey, body) }, nil},
		call{"send, code in body, database failing", "POST", sendInBody, 500, func() resp {
			return broken.do("POST", "/api/v1/messages", brokenKey, inBody(mario))
		}, nil},
		call{"message, database failing", "GET", messagePath, 500, func() resp { return broken.do("GET", "/api/v1/messages/"+mario+"/x", brokenKey, nil) }, nil},
		call{"profile, database failing", "GET", profilePath, 500, func() resp { return broken.do("GET", "/api/v1/profiles/"+mario, brokenKey, nil) }, nil},
		call{"profile by POST, database failing", "POST", profilePost, 500, func() resp {
			return broken.do("POST", "/api/v1/profiles", brokenKey, map[string]string{"fiscal_code": mario})
		}, nil})

	covered := map[string]bool{}
	for _, c := range calls {
		key := c.method + " " + c.path + " " + strconv.Itoa(c.want)
		covered[key] = true
		t.Run(c.name, func(t *testing.T) {
			r := c.do()
			if r.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, c.want, r.body)
			}
			op := doc.Paths.Find(c.path).GetOperation(c.method)
			checkAgainstDocument(t, op, r, c.headers)
		})
	}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Find(path).Operations() {
			for code := range op.Responses.Map() {
				key := method + " " + path + " " + code
				if !covered[key] {
					t.Errorf("%s is documented but not checked here", key)
				}
			}
		}
	}

	// Answers outside the operations: an unknown path, a known path with
	// another method, too many requests without a key. The description
	// promises problem+json, an Allow header on the 405, and on the 429
	// the TooMany headers.
	t.Run("unknown path", func(t *testing.T) {
		r := e.do("GET", "/api/v1/nothing", liveKey, nil)
		if r.StatusCode != 404 {
			t.Fatalf("status %d", r.StatusCode)
		}
		checkBody(t, doc.Components.Schemas["Problem"].Value, r)
	})
	t.Run("wrong method", func(t *testing.T) {
		r := e.do("DELETE", "/api/v1/profiles/"+mario, liveKey, nil)
		if r.StatusCode != 405 || r.Header.Get("Allow") == "" {
			t.Fatalf("status %d, Allow %q", r.StatusCode, r.Header.Get("Allow"))
		}
		checkBody(t, doc.Components.Schemas["Problem"].Value, r)
	})
	t.Run("too many without a key", func(t *testing.T) {
		r := e.do("GET", "/api/v1/profiles/"+mario, "", nil)
		for i := 0; i < 100 && r.StatusCode != 429; i++ {
			r = e.do("GET", "/api/v1/profiles/"+mario, "", nil)
		}
		if r.StatusCode != 429 {
			t.Fatalf("status %d", r.StatusCode)
		}
		op := doc.Paths.Find(profilePath).GetOperation("GET")
		checkAgainstDocument(t, op, r, nil)
	})
}

// liveKeyOfUnapprovedService issues live keys to a service that has no
// approved version (as a platform admin's mistake or a revoked approval
// would leave it).
func (e *env) liveKeyOfUnapprovedService() string {
	e.t.Helper()
	id, _, _ := e.service(svcOpts{})
	var key string
	err := e.d.WriteTx(context.Background(), func(tx *sqlx.Tx) error {
		p, err := keys.IssuePair(context.Background(), tx, id, keys.Live, 0)
		key = p.Primary
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return key
}

// checkAgainstDocument checks one answer against the response the
// operation documents for its status.
func checkAgainstDocument(t *testing.T, op *openapi3.Operation, r resp, extraHeaders []string) {
	t.Helper()
	ref := op.Responses.Status(r.StatusCode)
	if ref == nil || ref.Value == nil {
		t.Fatalf("status %d is not documented for %s", r.StatusCode, op.OperationID)
	}
	doc := ref.Value
	for name, h := range doc.Headers {
		if name == "Idempotent-Replayed" { // only on a retry: asked for by extraHeaders
			continue
		}
		got := r.Header.Get(name)
		if got == "" {
			t.Errorf("documented header %s missing", name)
			continue
		}
		if h.Value != nil && h.Value.Schema != nil && h.Value.Schema.Value.Type.Is("integer") {
			if _, err := strconv.Atoi(got); err != nil {
				t.Errorf("header %s: %q is not an integer", name, got)
			}
		}
	}
	for _, name := range extraHeaders {
		if r.Header.Get(name) == "" {
			t.Errorf("header %s missing", name)
		}
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if len(doc.Content) == 0 {
		if len(r.body) > 0 {
			t.Errorf("undocumented body (%s): %s", ct, r.body)
		}
		return
	}
	if err != nil {
		t.Fatalf("Content-Type %q: %v", ct, err)
	}
	media := doc.Content.Get(mt)
	if media == nil {
		t.Fatalf("Content-Type %q, documented: %v", ct, mediaTypes(doc.Content))
	}
	if media.Schema == nil {
		return
	}
	checkBody(t, media.Schema.Value, r)
}

func mediaTypes(c openapi3.Content) []string {
	var out []string
	for k := range c {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkBody validates a JSON body against schema and looks for fields the
// schema does not name.
func checkBody(t *testing.T, schema *openapi3.Schema, r resp) {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	if err := schema.VisitJSON(v, openapi3.MultiErrors(), openapi3.VisitAsResponse(), openapi3.EnableFormatValidation()); err != nil {
		t.Errorf("body does not match the schema: %v\n%s", err, r.body)
	}
	for _, f := range undocumentedFields(schema, v, "") {
		t.Errorf("undocumented field %s: %s", f, r.body)
	}
	if m, ok := v.(map[string]any); ok && strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		if m["status"] != float64(r.StatusCode) {
			t.Errorf("problem status %v, HTTP status %d", m["status"], r.StatusCode)
		}
	}
}

// undocumentedFields lists the fields of objects in v that schema (with
// its allOf parts) does not name, where it names any.
func undocumentedFields(schema *openapi3.Schema, v any, at string) []string {
	props := map[string]*openapi3.Schema{}
	var items *openapi3.Schema
	var collect func(s *openapi3.Schema)
	collect = func(s *openapi3.Schema) {
		for name, p := range s.Properties {
			props[name] = p.Value
		}
		if s.Items != nil {
			items = s.Items.Value
		}
		for _, part := range s.AllOf {
			collect(part.Value)
		}
	}
	collect(schema)
	var out []string
	switch x := v.(type) {
	case map[string]any:
		if len(props) == 0 {
			return nil
		}
		for k, sub := range x {
			p, ok := props[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s", at, k))
				continue
			}
			out = append(out, undocumentedFields(p, sub, at+"."+k)...)
		}
	case []any:
		if items != nil {
			for i, sub := range x {
				out = append(out, undocumentedFields(items, sub, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	sort.Strings(out)
	return out
}
