package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"sportello/gateway"
)

func TestWeeklyQuotaIsExactUnderConcurrencyAndSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	// Sunday 23:10 in Rome (CET, UTC+1): the week ends in 50 minutes.
	e.clock.Set(time.Date(2026, 11, 29, 22, 10, 0, 0, time.UTC))
	id, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	// Refused requests do not count: a validation error and a forbidden
	// recipient first.
	if r := e.do("POST", "/api/v1/messages/"+mario, testKey, msg("short")); r.StatusCode != 400 {
		t.Fatalf("%d", r.StatusCode)
	}
	if r := e.do("POST", "/api/v1/messages/"+anna, testKey, msg("Promemoria TARI")); r.StatusCode != 403 {
		t.Fatalf("%d", r.StatusCode)
	}
	const n = 1200
	var wg sync.WaitGroup
	statuses := make([]int, n)
	retry := make([]string, n)
	sem := make(chan struct{}, 64)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	body := `{"content":{"subject":"Promemoria TARI","markdown":"Gentile cittadino, le ricordiamo che la scadenza per il pagamento della TARI è fissata al 31 dicembre."}}`
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			path := "/api/v1/messages/" + mario
			method := "POST"
			if i%10 == 3 { // profile look-ups spend the same quota
				method, path = "GET", "/api/v1/profiles/"+mario
			}
			var rd *stringsReader
			if method == "POST" {
				rd = newStringsReader(body)
			}
			req, _ := http.NewRequest(method, e.srv.URL+path, orNilReader(rd))
			req.Header.Set("Ocp-Apim-Subscription-Key", testKey)
			res, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			statuses[i] = res.StatusCode
			retry[i] = res.Header.Get("Retry-After")
		}()
	}
	wg.Wait()
	counts := map[int]int{}
	for i, s := range statuses {
		counts[s]++
		if s == 429 && retry[i] != strconv.Itoa(50*60) {
			t.Fatalf("429 Retry-After %q, want the seconds to Monday 00:00 in Rome", retry[i])
		}
	}
	// Successes are 201 (sends) and 404 (look-ups of a citizen without a profile).
	if counts[201]+counts[404] != 1000 || counts[429] != 200 {
		t.Fatalf("statuses %v, want exactly 1000 successes and 200 refusals", counts)
	}
	if got := e.count(`SELECT used FROM quota_usage WHERE service_id = ?`, id); got != 1000 {
		t.Fatalf("stored quota %d", got)
	}
	if got := e.count(`SELECT COUNT(*) FROM messages WHERE service_id = ?`, id); got != counts[201] {
		t.Fatalf("%d messages stored for %d 201s", got, counts[201])
	}
	// A restart does not refill the quota.
	e.restart()
	r := e.do("POST", "/api/v1/messages/"+mario, testKey, msg("Promemoria TARI"))
	if r.StatusCode != 429 || r.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("after restart: %d remaining %q", r.StatusCode, r.Header.Get("RateLimit-Remaining"))
	}
	r.problem(t)
	// Monday 00:00 in Rome is Sunday 23:00 UTC: a new week.
	e.clock.Advance(50 * time.Minute)
	r = e.do("POST", "/api/v1/messages/"+mario, testKey, msg("Promemoria TARI"))
	if r.StatusCode != 201 {
		t.Fatalf("next week: %d %s", r.StatusCode, r.body)
	}
	if got := r.Header.Get("RateLimit-Remaining"); got != "999" {
		t.Fatalf("remaining %q", got)
	}
	if got := r.Header.Get("RateLimit-Policy"); got != `"weekly";q=1000;w=604800` {
		t.Fatalf("policy %q", got)
	}
	if got := r.Header.Get("RateLimit"); got != fmt.Sprintf(`"weekly";r=999;t=%d`, 7*24*3600) {
		t.Fatalf("RateLimit %q", got)
	}
}

func TestLiveRateLimitHeadersAndRetryAfter(t *testing.T) {
	e := newEnv(t)
	_, _, liveKey := e.service(svcOpts{approved: true, rate: [2]int{3, 6}})
	path := "/api/v1/messages/" + mario
	for i := 2; i >= 0; i-- {
		r := e.do("POST", path, liveKey, msg("Promemoria TARI"))
		if r.StatusCode != 201 {
			t.Fatalf("%d %s", r.StatusCode, r.body)
		}
		if got := r.Header.Get("RateLimit-Remaining"); got != strconv.Itoa(i) {
			t.Fatalf("remaining %q, want %d", got, i)
		}
		if r.Header.Get("RateLimit-Policy") != `"live";q=3;w=6` || r.Header.Get("RateLimit-Limit") != "3" {
			t.Fatalf("policy %q limit %q", r.Header.Get("RateLimit-Policy"), r.Header.Get("RateLimit-Limit"))
		}
		if r.Header.Get("Retry-After") != "" {
			t.Fatal("Retry-After on a success")
		}
	}
	r := e.do("POST", path, liveKey, msg("Promemoria TARI"))
	if r.StatusCode != 429 {
		t.Fatalf("4th request: %d", r.StatusCode)
	}
	r.problem(t)
	// One token every 2 seconds.
	if r.Header.Get("Retry-After") != "2" || r.Header.Get("RateLimit") != `"live";r=0;t=6` || r.Header.Get("RateLimit-Reset") != "6" {
		t.Fatalf("429 headers: Retry-After %q RateLimit %q Reset %q", r.Header.Get("Retry-After"), r.Header.Get("RateLimit"), r.Header.Get("RateLimit-Reset"))
	}
	// Refused requests are also metered as throttled; validation errors
	// spend a token like any call.
	e.clock.Advance(2 * time.Second)
	if r := e.do("POST", path, liveKey, msg("Promemoria TARI")); r.StatusCode != 201 {
		t.Fatalf("after Retry-After: %d", r.StatusCode)
	}
	// An admin raises the limit; the bucket follows after the hook.
	var id int64
	_ = e.d.R.Get(&id, `SELECT service_id FROM api_keys WHERE mode = 'live' LIMIT 1`)
	e.d.W.MustExec(`UPDATE services SET rate_limit_requests = 100, rate_limit_window_s = 1 WHERE id = ?`, id)
	e.g.Invalidate(id)
	e.clock.Advance(time.Second)
	r = e.do("POST", path, liveKey, msg("Promemoria TARI"))
	if r.StatusCode != 201 || r.Header.Get("RateLimit-Policy") != `"live";q=100;w=1` {
		t.Fatalf("raised limit: %d %q", r.StatusCode, r.Header.Get("RateLimit-Policy"))
	}
}

// While the gateway runs, the writer never checkpoints inside a commit (a
// background connection does); after Close it checkpoints again by itself.
func TestCheckpointsMoveOffTheWriterAndBack(t *testing.T) {
	e := newEnv(t)
	var n int
	if err := e.d.W.Get(&n, `PRAGMA wal_autocheckpoint`); err != nil || n != 0 {
		t.Fatalf("running: wal_autocheckpoint = %d (%v), want 0", n, err)
	}
	_, _, liveKey := e.service(svcOpts{approved: true})
	for range 20 {
		if r := e.do("POST", "/api/v1/messages/"+mario, liveKey, msg("Promemoria TARI")); r.StatusCode != 201 {
			t.Fatal(r.StatusCode)
		}
	}
	e.stop()
	if err := e.d.W.Get(&n, `PRAGMA wal_autocheckpoint`); err != nil || n != 1000 {
		t.Fatalf("after Close: wal_autocheckpoint = %d (%v), want 1000", n, err)
	}
}

// What a test key's request costs, as the headers tell it: a new message
// and a read spend a unit; a retry answered from its Idempotency-Key, a
// reused key (422) and a refused request do not, and their RateLimit
// headers say so instead of showing the unit they held for a moment.
func TestQuotaHeadersShowWhatWasCounted(t *testing.T) {
	e := newEnv(t)
	_, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	path := "/api/v1/messages/" + mario
	steps := []struct {
		name      string
		do        func() resp
		status    int
		remaining string
	}{
		{"new message", func() resp { return e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "k1") }, 201, "999"},
		{"retry", func() resp { return e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "k1") }, 201, "999"},
		{"key reused", func() resp { return e.do("POST", path, testKey, msg("Promemoria IMU!"), "Idempotency-Key", "k1") }, 422, "999"},
		{"invalid", func() resp { return e.do("POST", path, testKey, msg("short")) }, 400, "999"},
		{"profile read", func() resp { return e.do("GET", "/api/v1/profiles/"+mario, testKey, nil) }, 404, "998"},
		{"another message", func() resp { return e.do("POST", path, testKey, msg("Promemoria IMU!")) }, 201, "997"},
	}
	for _, s := range steps {
		r := s.do()
		if r.StatusCode != s.status || r.Header.Get("RateLimit-Remaining") != s.remaining {
			t.Fatalf("%s: %d RateLimit-Remaining %q, want %d %s (%s)", s.name, r.StatusCode, r.Header.Get("RateLimit-Remaining"), s.status, s.remaining, r.body)
		}
	}
}

// A retry answered from its Idempotency-Key costs nothing, so it must not
// hold a quota unit while it is answered either: retries of a committed
// message get its id even when the week is spent, and a burst of them does
// not make new sends look as if the week were over.
func TestRetriesNeitherHoldNorNeedQuota(t *testing.T) {
	e := newEnv(t)
	id, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	path := "/api/v1/messages/" + mario
	first := e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "k1")
	if first.StatusCode != 201 {
		t.Fatalf("%d %s", first.StatusCode, first.body)
	}
	// Spend the rest of the week, leaving two units, behind the server's
	// back, then restart so the counter is read again.
	e.stop()
	e.d.W.MustExec(`UPDATE quota_usage SET used = 998 WHERE service_id = ?`, id)
	e.start()
	var wg sync.WaitGroup
	codes := make([]int, 60)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "k1").StatusCode
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 201 {
			t.Fatalf("retry %d: %d, want 201 (a retry costs nothing)", i, c)
		}
	}
	for _, k := range []string{"k2", "k3"} {
		if r := e.do("POST", path, testKey, msg("Promemoria IMU!"), "Idempotency-Key", k); r.StatusCode != 201 {
			t.Fatalf("new send %s with units left: %d %s", k, r.StatusCode, r.body)
		}
	}
	// The week is spent now; a retry of a committed message still gets
	// its id, a new message does not.
	if r := e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "k1"); r.StatusCode != 201 || string(r.body) != string(first.body) ||
		r.Header.Get("Retry-After") != "" || r.Header.Get("RateLimit-Remaining") != "0" {
		t.Fatalf("retry after the quota: %d %s Retry-After %q Remaining %q, want 201 %s, no Retry-After, 0 left",
			r.StatusCode, r.body, r.Header.Get("Retry-After"), r.Header.Get("RateLimit-Remaining"), first.body)
	}
	if r := e.do("POST", path, testKey, msg("Promemoria IMU!"), "Idempotency-Key", "k4"); r.StatusCode != 429 {
		t.Fatalf("new send after the quota: %d", r.StatusCode)
	}
}

// Duplicates of a send that is still being committed wait for it instead
// of each holding a quota unit meanwhile: 200 concurrent copies of one new
// request, with 3 units left, store one message and answer every copy
// with its id, and the units they did not spend are still there.
func TestConcurrentCopiesOfANewSendHoldOneUnit(t *testing.T) {
	e := newEnv(t)
	id, testKey, _ := e.service(svcOpts{recipients: []string{mario}})
	e.stop()
	week, _ := gateway.WeekOf(e.clock.Now())
	e.d.W.MustExec(`INSERT INTO quota_usage (service_id, week_start, used) VALUES (?, ?, 997)`, id, week)
	e.start()
	path := "/api/v1/messages/" + mario
	// The writer is busy (as when delivery holds it): the first copy waits
	// in the pipeline while the others arrive.
	writer, err := e.d.W.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(500*time.Millisecond, func() { writer.Close() })
	var wg sync.WaitGroup
	codes := make([]int, 200)
	ids := make([]string, 200)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.do("POST", path, testKey, msg("Promemoria TARI"), "Idempotency-Key", "new-1")
			codes[i], ids[i] = r.StatusCode, string(r.body)
		}()
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != 201 || ids[i] != ids[0] {
			t.Fatalf("copy %d: %d %s, want 201 %s", i, codes[i], ids[i], ids[0])
		}
	}
	for _, k := range []string{"new-2", "new-3"} {
		if r := e.do("POST", path, testKey, msg("Promemoria IMU!"), "Idempotency-Key", k); r.StatusCode != 201 {
			t.Fatalf("send %s with units left: %d %s", k, r.StatusCode, r.body)
		}
	}
	if n := e.count(`SELECT COUNT(*) FROM messages WHERE service_id = ?`, id); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}
}
