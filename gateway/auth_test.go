package gateway_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/gateway"
	"sportello/gateway/clientip"
	"sportello/gateway/keys"
)

func TestUnauthenticatedRequestsGet401(t *testing.T) {
	e := newEnv(t)
	_, testKey, _ := e.service(svcOpts{})
	path := "/api/v1/messages/" + mario
	for name, key := range map[string]string{
		"missing":   "",
		"malformed": "hello",
		"unknown":   keys.Generate(keys.Test),
		"truncated": testKey[:len(testKey)-1],
	} {
		r := e.do("POST", path, key, msg("Promemoria TARI"))
		if r.StatusCode != 401 {
			t.Fatalf("%s key: status %d", name, r.StatusCode)
		}
		r.problem(t)
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%s: no WWW-Authenticate", name)
		}
	}
	// The bearer form is accepted too.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/profiles/"+"AAAAAA00A00A000A", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 { // authenticated; the sandbox citizen has a profile
		t.Fatalf("bearer: %d", res.StatusCode)
	}
}

func TestRevokedAndRotatedKeysStopAtOnce(t *testing.T) {
	e := newEnv(t)
	id, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	if r := e.do("POST", "/api/v1/messages/"+mario, testKey, msg("Promemoria TARI")); r.StatusCode != 201 {
		t.Fatalf("before rotation: %d %s", r.StatusCode, r.body)
	}
	var newKey string
	ctx := context.Background()
	if err := e.d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		newKey, err = keys.Issue(ctx, tx, id, keys.Test, keys.Primary, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The cache still trusts the old key until the portal's hook fires:
	// that is the one lookup the cache saves.
	e.g.Invalidate(id)
	if r := e.do("POST", "/api/v1/messages/"+mario, testKey, msg("Promemoria TARI")); r.StatusCode != 401 {
		t.Fatalf("rotated key: %d", r.StatusCode)
	}
	if r := e.do("POST", "/api/v1/messages/"+mario, newKey, msg("Promemoria TARI")); r.StatusCode != 201 {
		t.Fatalf("new key: %d %s", r.StatusCode, r.body)
	}
	if err := e.d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := keys.Revoke(ctx, tx, id, keys.Test, keys.Primary, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.g.Invalidate(id)
	if r := e.do("POST", "/api/v1/messages/"+mario, newKey, msg("Promemoria TARI")); r.StatusCode != 401 {
		t.Fatalf("revoked key: %d", r.StatusCode)
	}
}

func TestCacheExpiresWithoutHook(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.CacheTTL = time.Minute })
	id, testKey, _ := e.service(svcOpts{})
	// The sandbox citizen has a profile from the migrations.
	if r := e.do("GET", "/api/v1/profiles/AAAAAA00A00A000A", testKey, nil); r.StatusCode != 200 {
		t.Fatalf("%d", r.StatusCode)
	}
	e.d.W.MustExec(`UPDATE services SET suspended_at = ? WHERE id = ?`, time.Now(), id)
	e.clock.Advance(2 * time.Minute)
	if r := e.do("GET", "/api/v1/profiles/AAAAAA00A00A000A", testKey, nil); r.StatusCode != 403 {
		t.Fatalf("after TTL: %d", r.StatusCode)
	}
}

func TestSuspensionAndUnapprovedLiveKeysGet403(t *testing.T) {
	e := newEnv(t)
	id, testKey, liveKey := e.service(svcOpts{approved: true})
	ok := func(key string) {
		t.Helper()
		if r := e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", key, msg("Promemoria TARI")); r.StatusCode != 201 {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
	}
	refused := func(key, word string) {
		t.Helper()
		r := e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", key, msg("Promemoria TARI"), "Accept-Language", "en")
		if r.StatusCode != 403 {
			t.Fatalf("status %d, want 403", r.StatusCode)
		}
		if p := r.problem(t); !strings.Contains(p.Detail, word) {
			t.Fatalf("detail %q lacks %q", p.Detail, word)
		}
	}
	ok(testKey)
	ok(liveKey)
	e.d.W.MustExec(`UPDATE services SET suspended_at = ? WHERE id = ?`, time.Now(), id)
	e.g.Invalidate(id)
	refused(testKey, "suspended")
	refused(liveKey, "suspended")
	e.d.W.MustExec(`UPDATE services SET suspended_at = NULL WHERE id = ?`, id)
	e.g.Invalidate(id)
	ok(liveKey)
	var inst int64
	_ = e.d.R.Get(&inst, `SELECT institution_id FROM services WHERE id = ?`, id)
	e.d.W.MustExec(`UPDATE institutions SET status = 'suspended' WHERE id = ?`, inst)
	e.g.InvalidateInstitution(inst)
	refused(liveKey, "suspended")

	e.d.W.MustExec(`UPDATE institutions SET status = 'active' WHERE id = ?`, inst)
	e.g.InvalidateInstitution(inst)
	ok(liveKey)

	// One key suspended: that key gets its own 403 (not a 401: the
	// integrator learns it is held, not unknown), the service's other
	// keys work, and it works again once reactivated.
	e.d.W.MustExec(`UPDATE api_keys SET suspended_at = ?, suspended_reason = 'prova' WHERE key_hash = ?`, time.Now(), keys.Hash(testKey))
	e.g.Invalidate(id)
	refused(testKey, "suspended by the platform administrators")
	r := e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", testKey, msg("Promemoria TARI"))
	if p := r.problem(t); p.Type != "/docs/api#problem-key_suspended" || !strings.Contains(p.Detail, "sospesa") ||
		r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("suspended key: %s %+v", r.Header.Get("Content-Type"), p)
	}
	ok(liveKey)
	e.d.W.MustExec(`UPDATE api_keys SET suspended_at = NULL, suspended_reason = '' WHERE key_hash = ?`, keys.Hash(testKey))
	e.g.Invalidate(id)
	ok(testKey)

	// Live keys of a service without an approved version do not work.
	id2, _, _ := e.service(svcOpts{})
	ctx := context.Background()
	var live keys.Pair
	_ = e.d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		var err error
		live, err = keys.IssuePair(ctx, tx, id2, keys.Live, 0)
		return err
	})
	refused(live.Primary, "approved")
}

func TestAuthorizedCIDRs(t *testing.T) {
	e := newEnv(t)
	_, _, liveKey := e.service(svcOpts{approved: true, cidrs: []string{"10.0.0.0/8", "192.0.2.7"}})
	path := "/api/v1/messages/" + mario
	r := e.do("POST", path, liveKey, msg("Promemoria TARI"), "Accept-Language", "en")
	if r.StatusCode != 403 || !strings.Contains(r.problem(t).Detail, "127.0.0.1") {
		t.Fatalf("loopback outside the CIDRs: %d %s", r.StatusCode, r.body)
	}
	// X-Forwarded-For from an untrusted peer is ignored.
	if r := e.do("POST", path, liveKey, msg("Promemoria TARI"), "X-Forwarded-For", "10.1.2.3"); r.StatusCode != 403 {
		t.Fatalf("spoofed XFF: %d", r.StatusCode)
	}
	// Behind a trusted proxy the forwarded address counts.
	e2 := newEnv(t, func(c *gateway.Config) {
		c.Resolver = clientip.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	})
	_, _, liveKey2 := e2.service(svcOpts{approved: true, cidrs: []string{"10.0.0.0/8", "192.0.2.7"}})
	for _, xff := range []string{"10.1.2.3", "192.0.2.7"} {
		if r := e2.do("POST", path, liveKey2, msg("Promemoria TARI"), "X-Forwarded-For", xff); r.StatusCode != 201 {
			t.Fatalf("trusted XFF %s: %d %s", xff, r.StatusCode, r.body)
		}
	}
	if r := e2.do("POST", path, liveKey2, msg("Promemoria TARI"), "X-Forwarded-For", "192.0.2.8"); r.StatusCode != 403 {
		t.Fatalf("outside address via proxy: %d", r.StatusCode)
	}
}

func TestTestKeysReachOnlyAuthorizedRecipients(t *testing.T) {
	e := newEnv(t)
	_, testKey, liveKey := e.service(svcOpts{approved: true, recipients: []string{mario}})
	for _, to := range []string{mario, "AAAAAA00A00A000A"} {
		if r := e.do("POST", "/api/v1/messages/"+to, testKey, msg("Promemoria TARI")); r.StatusCode != 201 {
			t.Fatalf("to %s: %d %s", to, r.StatusCode, r.body)
		}
	}
	r := e.do("POST", "/api/v1/messages/"+anna, testKey, msg("Promemoria TARI"))
	if r.StatusCode != 403 {
		t.Fatalf("unauthorized recipient: %d", r.StatusCode)
	}
	if p := r.problem(t); strings.Contains(p.Detail, anna) {
		t.Fatal("the full fiscal code is echoed")
	}
	// Profile look-ups too, so a test key cannot probe who is registered.
	if r := e.do("GET", "/api/v1/profiles/"+anna, testKey, nil); r.StatusCode != 403 {
		t.Fatalf("profile of unauthorized recipient: %d", r.StatusCode)
	}
	if r := e.do("POST", "/api/v1/profiles", testKey, map[string]string{"fiscal_code": anna}); r.StatusCode != 403 {
		t.Fatalf("POST profile of unauthorized recipient: %d", r.StatusCode)
	}
	// A live key may write to anyone.
	if r := e.do("POST", "/api/v1/messages/"+anna, liveKey, msg("Promemoria TARI")); r.StatusCode != 201 {
		t.Fatalf("live: %d %s", r.StatusCode, r.body)
	}
	if n := e.count(`SELECT COUNT(*) FROM messages WHERE fiscal_code = ?`, anna); n != 1 {
		t.Fatalf("%d messages to the refused recipient", n)
	}
}

// Requests without a valid key carry RateLimit headers too, and one client
// address sending too many of them gets 429 with Retry-After, without
// affecting other addresses or the valid keys.
func TestUnauthenticatedRequestsAreLimitedPerClient(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) {
		c.Resolver = clientip.Resolver{Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	})
	_, testKey, _ := e.service(svcOpts{})
	path := "/api/v1/profiles/" + mario
	bad := keys.Generate(keys.Test)
	for i := 1; i <= 60; i++ {
		r := e.do("GET", path, bad, nil, "X-Forwarded-For", "198.51.100.7")
		if r.StatusCode != 401 {
			t.Fatalf("bad key #%d: status %d, want 401", i, r.StatusCode)
		}
		if got, want := r.Header.Get("RateLimit-Remaining"), strconv.Itoa(60-i); got != want {
			t.Fatalf("bad key #%d: RateLimit-Remaining %q, want %q", i, got, want)
		}
		if !strings.HasPrefix(r.Header.Get("RateLimit-Policy"), `"unauthenticated";q=60;w=60`) {
			t.Fatalf("RateLimit-Policy %q", r.Header.Get("RateLimit-Policy"))
		}
	}
	r := e.do("GET", path, "", nil, "X-Forwarded-For", "198.51.100.7")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("61st request without a valid key: %d, Retry-After %q; want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if p := r.problem(t); p.Type != "/docs/api#problem-auth_throttled" {
		t.Fatalf("problem type %q", p.Type)
	}
	// Another address is not affected, nor is a valid key from the same one.
	if r := e.do("GET", path, bad, nil, "X-Forwarded-For", "198.51.100.8"); r.StatusCode != 401 {
		t.Fatalf("other client: %d, want 401", r.StatusCode)
	}
	if r := e.do("GET", path, testKey, nil, "X-Forwarded-For", "198.51.100.7"); r.StatusCode == 401 || r.StatusCode == 429 {
		t.Fatalf("valid key from the limited address: %d", r.StatusCode)
	}
	// The bucket refills with time.
	e.clock.Advance(2 * time.Second)
	if r := e.do("GET", path, bad, nil, "X-Forwarded-For", "198.51.100.7"); r.StatusCode != 401 {
		t.Fatalf("after 2 s: %d, want 401 again", r.StatusCode)
	}
}

// sendThrough posts an empty send with key to handler h, served on the
// send route of a server of its own (for handlers tests build with bugs).
func sendThrough(t *testing.T, h http.Handler, key string) (*http.Response, error) {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST /api/v1/messages/{fiscal_code}", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/messages/"+mario, strings.NewReader(`{}`))
	req.Header.Set("Ocp-Apim-Subscription-Key", key)
	return http.DefaultClient.Do(req)
}

// A handler that panics (a bug) answers 500 problem+json instead of
// dropping the connection, is metered as a server error, and its log line
// holds neither the path nor the fiscal code.
func TestAPanickingHandlerAnswersAProblemAndIsMetered(t *testing.T) {
	var logs strings.Builder
	e := newEnv(t, func(c *gateway.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	id, _, liveKey := e.service(svcOpts{approved: true})
	res, err := sendThrough(t, e.g.PanicAfterAuth(), liveKey)
	if err != nil {
		t.Fatalf("request failed instead of answering 500: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	p := resp{res, b}.problem(t)
	if res.StatusCode != 500 || !strings.HasSuffix(p.Type, "internal") {
		t.Fatalf("status %d type %q, want 500 internal", res.StatusCode, p.Type)
	}
	if res.Header.Get("RateLimit-Policy") == "" {
		t.Error("the 500 lacks the rate-limit headers every response carries")
	}
	e.stop() // writes the usage counts
	if n := e.metered(id, "server_error"); n != 1 {
		t.Errorf("%d server errors metered, want 1", n)
	}
	out := logs.String()
	if !strings.Contains(out, "handler panicked") || !strings.Contains(out, "{fiscal_code}") {
		t.Errorf("log lacks the panic or the route:\n%s", out)
	}
	if strings.Contains(out, mario) {
		t.Errorf("log holds the request's fiscal code:\n%s", out)
	}
}

// A panic after a test-key request reserved its quota unit gives the unit
// back: the week's allowance is not eaten by a bug until the next restart.
func TestAPanicGivesBackTheReservedQuotaUnit(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	_, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	for i := 0; i < 3; i++ {
		res, err := sendThrough(t, e.g.PanicAfterReserve(), testKey)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 500 {
			t.Fatalf("panicking handler #%d: %d, want 500", i, res.StatusCode)
		}
	}
	r := e.do("POST", "/api/v1/messages/"+mario, testKey, msg("Promemoria TARI"))
	if r.StatusCode != 201 {
		t.Fatalf("send after the panics: %d %s", r.StatusCode, r.body)
	}
	if got := r.Header.Get("RateLimit-Remaining"); got != "999" {
		t.Fatalf("RateLimit-Remaining %q after one send and three panics, want 999 (the panics' units given back)", got)
	}
}

// An aborted response (http.ErrAbortHandler) is not turned into a 500, but
// it is metered like every authenticated request: as a server error, since
// the client got no answer.
func TestAnAbortedRequestIsMetered(t *testing.T) {
	e := newEnv(t)
	id, _, liveKey := e.service(svcOpts{approved: true})
	if res, err := sendThrough(t, e.g.AbortAfterAuth(), liveKey); err == nil {
		res.Body.Close()
		t.Fatalf("aborted request answered %d; want the connection dropped", res.StatusCode)
	}
	e.stop() // writes the usage counts
	if n := e.metered(id, "server_error"); n != 1 {
		t.Errorf("%d requests metered as server errors, want 1 (the client got no answer)", n)
	}
}

// A panic after the answer was written leaves that answer as it is: after
// a 201 the message is committed, and neither a 500 nor a cut connection
// may tell the integrator otherwise (it would send the message again).
// The request is metered as it was answered.
func TestAPanicAfterTheAnswerLeavesTheAnswer(t *testing.T) {
	e := newEnv(t, func(c *gateway.Config) { c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	id, _, liveKey := e.service(svcOpts{approved: true})
	res, err := sendThrough(t, e.g.PanicAfterAnswer(), liveKey)
	if err != nil {
		t.Fatalf("the 201 did not arrive: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 201 || string(b) != `{"id":"01J"}` {
		t.Fatalf("answer %d %q (%v), want the 201 as written", res.StatusCode, b, err)
	}
	e.stop()
	if n := e.metered(id, "accepted"); n != 1 {
		t.Errorf("%d accepted requests metered, want 1", n)
	}
}

// A known path with the wrong method says which methods it takes (405 with
// Allow), an unknown path is a 404: an integrator who types GET for POST
// is not told the operation does not exist.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := newEnv(t)
	_, testKey, _ := e.service(svcOpts{})
	for _, c := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/messages/" + mario, 405, "POST"},
		{"DELETE", "/api/v1/messages/" + mario + "/01JDZ7Q8M4W2C9X1V6B3N5K7R0", 405, "GET, HEAD"},
		{"PUT", "/api/v1/profiles", 405, "POST"},
		{"POST", "/api/v1/openapi.yaml", 405, "GET, HEAD"},
		{"GET", "/api/v1/nothing-here", 404, ""},
	} {
		r := e.do(c.method, c.path, testKey, nil)
		if r.StatusCode != c.status || r.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, r.StatusCode, r.Header.Get("Allow"), c.status, c.allow)
			continue
		}
		if p := r.problem(t); c.status == 405 && !strings.Contains(p.Detail, c.allow) {
			t.Errorf("%s %s: detail %q does not name %s", c.method, c.path, p.Detail, c.allow)
		}
	}
}

// API answers carry fiscal codes and message content: no cache may keep
// them and no browser may sniff another type; the OpenAPI document keeps
// its own caching.
func TestAPIAnswersAreNotCachedOrSniffed(t *testing.T) {
	e := newEnv(t)
	_, testKey, _ := e.service(svcOpts{})
	sent := e.do("POST", "/api/v1/messages/AAAAAA00A00A000A", testKey, msg("Promemoria TARI"))
	if sent.StatusCode != 201 {
		t.Fatalf("send: %d %s", sent.StatusCode, sent.body)
	}
	for name, r := range map[string]resp{
		"401":     e.do("GET", "/api/v1/profiles/AAAAAA00A00A000A", "", nil),
		"201":     sent,
		"message": e.do("GET", sent.Header.Get("Location"), testKey, nil),
		"404":     e.do("GET", "/api/v1/nothing", testKey, nil),
		"405":     e.do("DELETE", "/api/v1/profiles/AAAAAA00A00A000A", testKey, nil),
	} {
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s (%d): Cache-Control %q, X-Content-Type-Options %q", name, r.StatusCode, r.Header.Get("Cache-Control"), r.Header.Get("X-Content-Type-Options"))
		}
	}
	if cc := e.do("GET", "/api/v1/openapi.yaml", "", nil).Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("openapi.yaml Cache-Control %q", cc)
	}
}
