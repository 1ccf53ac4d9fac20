package main

import (
	"context"
	"net/http"
	"strings"
	"time"

	"sportello/db"
	"sportello/messaging/delivery"
)

// readiness answers GET /readyz: whether this instance can do its work
// now, for a load balancer or an orchestrator to route around it. /healthz
// only says the process serves HTTP; on a full disk it said ok while every
// send got a 500, and it said ok while delivery was stuck.
type readiness struct {
	db      *db.DB
	dataDir string
	// minFree is the free space the data directory's disk must keep: below
	// it SQLite's next WAL growth or checkpoint may fail.
	minFree uint64
	// lastSendFailure is when a send last failed to commit; the instance
	// is unready for sendFailureWindow after one.
	lastSendFailure func() time.Time
	now             func() time.Time
}

const (
	readyMinFree      = 64 << 20
	sendFailureWindow = 10 * time.Second
	// deliveryOverdue is how long due work (an accepted message, a notice
	// due for an attempt) may wait before the instance is unready. A
	// running pipeline delivers within a second even at its 20,000 msg/s
	// ceiling, above what the gateway accepts (docs/benchmarks.md), and
	// tries a due notice within 200 ms; five minutes is far past any burst
	// or restart catch-up, so only a stuck or failing delivery loop (or
	// one starved for hours of backlog) trips it, and it is short enough
	// that citizens' notices are not an hour late before anyone looks.
	// Notices waiting for a retry (their next attempt ahead) do not count.
	deliveryOverdue = 5 * time.Minute
)

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var failing []string
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var one int
	if err := rd.db.R.GetContext(ctx, &one, `SELECT 1`); err != nil {
		failing = append(failing, `"database"`)
	} else if late, err := delivery.Overdue(ctx, rd.db.R, rd.now().Add(-deliveryOverdue)); late || err != nil {
		// An outbox that cannot be read is delivery that cannot run.
		failing = append(failing, `"delivery"`)
	}
	if free, ok := freeBytes(rd.dataDir); ok && free < rd.minFree {
		failing = append(failing, `"disk"`)
	}
	if t := rd.lastSendFailure(); !t.IsZero() && rd.now().Sub(t) < sendFailureWindow {
		failing = append(failing, `"sends"`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if len(failing) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","failing":[` + strings.Join(failing, ",") + `]}` + "\n"))
		return
	}
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}
