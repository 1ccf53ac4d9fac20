package gateway_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"sportello/gateway"
)

// lockedBuffer is a log destination safe for the gateway's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestFailingCommitsDoNotFloodTheLog: when every send fails alike (a
// full disk), each still gets its 500, but the log has one line a second
// saying how many similar ones it held back, not one per request.
func TestFailingCommitsDoNotFloodTheLog(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, func(c *gateway.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	_, _, liveKey := e.service(svcOpts{approved: true})
	if _, err := e.d.W.Exec(`CREATE TRIGGER disk_full BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"fiscal_code": mario, "content": map[string]any{"subject": "Promemoria TARI",
		"markdown": strings.Repeat("Testo del messaggio. ", 5)}}
	for i := 0; i < 50; i++ {
		if r := e.do("POST", "/api/v1/messages", liveKey, body); r.StatusCode != 500 {
			t.Fatalf("send %d on a full disk: %d %s", i, r.StatusCode, r.body)
		}
	}
	if n := strings.Count(logs.String(), `msg="gateway: submit"`); n != 1 {
		t.Fatalf("%d log lines for 50 failed sends in the same second, want 1:\n%s", n, logs.String())
	}
	e.clock.Advance(2 * time.Second)
	e.do("POST", "/api/v1/messages", liveKey, body)
	if !strings.Contains(logs.String(), "similar_errors_not_logged=49") {
		t.Fatalf("the next line does not say how many were held back:\n%s", logs.String())
	}
}
