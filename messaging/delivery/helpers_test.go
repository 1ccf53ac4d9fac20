package delivery

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"sportello/db"
	"sportello/db/dbtest"
	"sportello/messaging/delivery/deliverytest"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	ctx   context.Context
	db    *db.DB
	clock *testClock
	inst  int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), db: dbtest.Open(t), clock: &testClock{t: time.Now().UTC()}}
	var err error
	if e.inst, err = deliverytest.Institution(e.ctx, e.db, "Comune di Prova"); err != nil {
		t.Fatal(err)
	}
	return e
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (e *env) delivery(cfg Config) *Delivery {
	e.t.Helper()
	cfg.DB, cfg.Now, cfg.Logger = e.db, e.clock.Now, quietLogger()
	d, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

func (e *env) service(name string, o deliverytest.ServiceOpts) deliverytest.Service {
	e.t.Helper()
	s, err := deliverytest.AddService(e.ctx, e.db, e.inst, name, o)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) profile(p deliverytest.Profile) {
	e.t.Helper()
	if err := deliverytest.PutProfile(e.ctx, e.db, p); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) pref(fc string, sid int64, inbox, email, webhook bool, version int) {
	e.t.Helper()
	if err := deliverytest.PutPreference(e.ctx, e.db, fc, sid, inbox, email, webhook, version); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) send(m deliverytest.Message) string {
	e.t.Helper()
	if m.CreatedAt.IsZero() {
		m.CreatedAt = e.clock.Now()
	}
	id, err := deliverytest.Insert(e.ctx, e.db, m)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// requeue puts a message back in the outbox, as a replayed batch does.
func (e *env) requeue(id string) {
	e.t.Helper()
	if _, err := e.db.W.ExecContext(e.ctx, `INSERT INTO outbox (message_id, available_at) VALUES (?, ?)`, id, e.clock.Now()); err != nil {
		e.t.Fatal(err)
	}
}

// drain processes batches until the outbox has nothing due.
func (e *env) drain(d *Delivery) int {
	e.t.Helper()
	total := 0
	for {
		n, err := d.ProcessBatch(e.ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func (e *env) count(q string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.db.R.GetContext(e.ctx, &n, q, args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

type msgState struct {
	Status string  `db:"status"`
	Reason *string `db:"rejection_reason"`
}

func (e *env) state(id string) (string, string) {
	e.t.Helper()
	var s msgState
	if err := e.db.R.GetContext(e.ctx, &s, `SELECT status, rejection_reason FROM messages WHERE id = ?`, id); err != nil {
		e.t.Fatal(err)
	}
	if s.Reason == nil {
		return s.Status, ""
	}
	return s.Status, *s.Reason
}

// notices maps channel → status for a message.
func (e *env) notices(id string) map[string]string {
	e.t.Helper()
	var rows []struct {
		Channel string `db:"channel"`
		Status  string `db:"status"`
	}
	if err := e.db.R.SelectContext(e.ctx, &rows, `SELECT channel, status FROM notifications WHERE message_id = ?`, id); err != nil {
		e.t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range rows {
		m[r.Channel] = r.Status
	}
	return m
}
