package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sportello/gateway/demo"
	"sportello/messaging/delivery/deliverytest"
)

// readyServer builds a server on a fresh data dir (its background jobs not
// started) and serves it; ready GETs its /readyz.
func readyServer(t *testing.T) (a *app, dir string, srv *httptest.Server, ready func() (int, string)) {
	t.Helper()
	dir = t.TempDir()
	cfg, err := parseServeConfig([]string{"--addr", "127.0.0.1:0", "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	if a, err = build(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	srv = httptest.NewServer(a.handler)
	t.Cleanup(func() { srv.Close(); a.close(context.Background()) })
	return a, dir, srv, func() (int, string) {
		t.Helper()
		res, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
}

// serviceOf adds an institution with a service to a's database.
func serviceOf(t *testing.T, a *app) deliverytest.Service {
	t.Helper()
	ctx := context.Background()
	inst, err := deliverytest.Institution(ctx, a.db, "Comune di Prova")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := deliverytest.AddService(ctx, a.db, inst, "Tributi", deliverytest.ServiceOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// /readyz says whether this instance can take sends now: ok on a fresh
// server; unready while sends fail to commit (here the quota table a test
// key's send writes is gone, as good as a full disk) and for a while after;
// unready when the data directory's disk is nearly full or the database
// does not answer (and then it does not guess about delivery).
func TestReadinessReportsWhatStopsSends(t *testing.T) {
	ctx := context.Background()
	a, dir, srv, ready := readyServer(t)
	seeded, err := demo.Seed(ctx, a.db)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := ready(); code != 200 || body != `{"status":"ok"}` {
		t.Fatalf("fresh server: %d %s", code, body)
	}

	a.db.W.MustExec(`DROP TABLE outbox`)
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/messages/"+demo.TestFiscalCodes[0],
		strings.NewReader(`{"content":{"subject":"Promemoria TARI","markdown":"`+strings.Repeat("Testo del messaggio. ", 5)+`"}}`))
	req.Header.Set("Ocp-Apim-Subscription-Key", seeded.LiveService.Key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 500 {
		t.Fatalf("send without its outbox table: %d, want 500", res.StatusCode)
	}
	// Without its outbox table delivery cannot run either.
	if code, body := ready(); code != 503 || body != `{"status":"unavailable","failing":["delivery","sends"]}` {
		t.Fatalf("after a failed send: %d %s", code, body)
	}

	// The same check with a clock past the window, a disk that must keep
	// more than it has, and then a closed database.
	var rd readiness
	rd = readiness{db: a.db, dataDir: dir, minFree: math.MaxUint64,
		lastSendFailure: func() time.Time { return time.Now().Add(-sendFailureWindow) }, now: time.Now}
	w := httptest.NewRecorder()
	rd.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"failing":["delivery","disk"]`) { // the outbox is still gone
		t.Fatalf("disk nearly full: %d %s", w.Code, w.Body)
	}
	a.db.Close()
	rd.minFree = 0
	w = httptest.NewRecorder()
	rd.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"failing":["database"]}`) {
		t.Fatalf("database closed: %d %s", w.Code, w.Body)
	}
}

// /readyz is unready while due delivery work has waited longer than
// deliveryOverdue: a message in the outbox, or a notice due for an attempt;
// not for a notice waiting for its retry. Running delivery makes it ready
// again.
func TestReadinessReportsStuckDelivery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _, _, ready := readyServer(t)
	const stuck = `{"status":"unavailable","failing":["delivery"]}`
	svc := serviceOf(t, a)
	now := time.Now().UTC()
	send := func(at time.Time) string {
		t.Helper()
		id, err := deliverytest.Insert(ctx, a.db, deliverytest.Message{Service: svc, FiscalCode: "AAAAAA00A00A000A", CreatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}

	// A message delivered two hours ago whose e-mail notice failed and
	// waits for its retry in ten minutes: nothing is late.
	old := send(now.Add(-2 * time.Hour))
	a.db.W.MustExec(`DELETE FROM outbox WHERE message_id = ?`, old)
	a.db.W.MustExec(`INSERT INTO notifications (message_id, channel, status, attempts, next_attempt_at, last_error, updated_at)
		VALUES (?, 'email', 'THROTTLED', 3, ?, 'connection refused', ?)`, old, now.Add(10*time.Minute), now)
	// A message accepted four minutes ago still in the outbox: not yet late.
	recent := send(now.Add(-4 * time.Minute))
	if code, body := ready(); code != 200 {
		t.Fatalf("retry ahead, message 4 minutes old: %d %s", code, body)
	}
	// The notice's retry due six minutes ago and not tried: late.
	a.db.W.MustExec(`UPDATE notifications SET next_attempt_at = ? WHERE message_id = ?`, now.Add(-6*time.Minute), old)
	if code, body := ready(); code != 503 || body != stuck {
		t.Fatalf("notice overdue: %d %s", code, body)
	}
	a.db.W.MustExec(`UPDATE notifications SET next_attempt_at = ? WHERE message_id = ?`, now.Add(10*time.Minute), old)
	// A message waiting six minutes in the outbox: late, though newer
	// ones are not.
	a.db.W.MustExec(`DELETE FROM outbox WHERE message_id = ?`, recent)
	send(now.Add(-6 * time.Minute))
	send(now)
	if code, body := ready(); code != 503 || body != stuck {
		t.Fatalf("message 6 minutes in the outbox: %d %s", code, body)
	}

	// Delivery running empties the outbox, and the instance is ready.
	for _, job := range a.background {
		go func() { _ = job(ctx) }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := ready()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %d %s with delivery running", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
