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
)

// /readyz says whether this instance can take sends now: ok on a fresh
// server; unready while sends fail to commit (here the quota table a test
// key's send writes is gone, as good as a full disk) and for a while after;
// unready when the data directory's disk is nearly full or the database
// does not answer.
func TestReadinessReportsWhatStopsSends(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseServeConfig([]string{"--addr", "127.0.0.1:0", "--data", dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := build(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close(ctx)
	seeded, err := demo.Seed(ctx, a.db)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	ready := func() (int, string) {
		t.Helper()
		res, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
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
	if code, body := ready(); code != 503 || body != `{"status":"unavailable","failing":["sends"]}` {
		t.Fatalf("after a failed send: %d %s", code, body)
	}

	// The same check with a clock past the window, a disk that must keep
	// more than it has, and then a closed database.
	var rd readiness
	rd = readiness{db: a.db, dataDir: dir, minFree: math.MaxUint64,
		lastSendFailure: func() time.Time { return time.Now().Add(-sendFailureWindow) }, now: time.Now}
	w := httptest.NewRecorder()
	rd.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"failing":["disk"]`) {
		t.Fatalf("disk nearly full: %d %s", w.Code, w.Body)
	}
	a.db.Close()
	rd.minFree = 0
	w = httptest.NewRecorder()
	rd.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
	if w.Code != 503 || !strings.Contains(w.Body.String(), `"failing":["database"]`) {
		t.Fatalf("database closed: %d %s", w.Code, w.Body)
	}
}
