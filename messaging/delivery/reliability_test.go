package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db/dbtest"
	"sportello/messaging/delivery/deliverytest"
)

// A run that crashes after claiming a batch leaves its rows in the outbox:
// while it lives no second batch takes them, and the next run (a new
// process, nothing claimed) processes them at once.
func TestCrashedRunsRowsAreProcessedByTheNext(t *testing.T) {
	e := newEnv(t)
	crashed := e.delivery(Config{})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "CCCCCC00A00A000C"
	e.profile(deliverytest.DefaultProfile(fc))
	var ids []string
	for range 5 {
		ids = append(ids, e.send(deliverytest.Message{Service: svc, FiscalCode: fc}))
	}
	claimed, err := crashed.claim(e.ctx) // claims, never records
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claim: %v %d", err, len(claimed))
	}
	if n := e.drain(crashed); n != 0 {
		t.Fatalf("claimed rows were taken into a second batch (%d)", n)
	}
	if n := e.count(`SELECT count(*) FROM outbox`); n != 5 {
		t.Fatalf("outbox rows after the crash: %d, want 5", n)
	}
	next := e.delivery(Config{})
	if n := e.drain(next); n != 5 {
		t.Fatalf("the next run processed %d, want 5", n)
	}
	for _, id := range ids {
		if s, _ := e.state(id); s != "PROCESSED" {
			t.Errorf("%s: %s", id, s)
		}
	}
	if n := e.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("outbox rows left: %d", n)
	}
}

// A batch that fails to record releases its claims, so the rows are tried
// again; batches in flight never share a message.
func TestClaimsAreDisjointAndReleased(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{BatchSize: 3})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "CCCCCC00A00A000C"
	e.profile(deliverytest.DefaultProfile(fc))
	for range 7 {
		e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	}
	seen := map[string]bool{}
	var batches [][]job
	for range 3 {
		b, err := d.claim(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range b {
			if seen[j.ID] {
				t.Fatalf("%s claimed twice", j.ID)
			}
			seen[j.ID] = true
		}
		batches = append(batches, b)
	}
	if len(batches[0]) != 3 || len(batches[1]) != 3 || len(batches[2]) != 1 {
		t.Fatalf("batch sizes %d %d %d, want 3 3 1", len(batches[0]), len(batches[1]), len(batches[2]))
	}
	if b, _ := d.claim(e.ctx); len(b) != 0 {
		t.Fatalf("claimed %d more while all are in flight", len(b))
	}
	failed := make([]outcome, len(batches[1]))
	for i, j := range batches[1] {
		failed[i].job = j
	}
	d.claims.release(failed) // as the recorder does after a failed write
	again, _ := d.claim(e.ctx)
	if len(again) != 3 || again[0].ID != batches[1][0].ID {
		t.Fatalf("released rows not claimed again: %v", again)
	}
}

// Processing the same message twice (two processes on one database, or a
// crash after the inbox write in another design) must leave one inbox row
// and one notice per channel.
func TestInboxExactlyOnce(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{PushURL: "http://127.0.0.1:9/", PushSecret: []byte("k")})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "DDDDDD00A00A000D"
	e.profile(deliverytest.DefaultProfile(fc))
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})

	// Two runs (two processes on one database) decide the same message
	// before either records.
	jobs, err := d.claim(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := e.delivery(Config{}).claim(e.ctx)
	if err != nil || len(other) != 1 || len(jobs) != 1 {
		t.Fatalf("claims %d and %d (%v), want the same message twice", len(jobs), len(other), err)
	}
	first, err := d.decide(e.ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.decide(e.ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.record(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := d.record(e.ctx, second); err != nil {
		t.Fatal(err)
	}
	// And a third time through the outbox, as after a replayed row.
	e.requeue(id)
	e.drain(d)
	if n := e.count(`SELECT count(*) FROM inbox WHERE message_id = ?`, id); n != 1 {
		t.Fatalf("inbox rows %d, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM notifications WHERE message_id = ?`, id); n != 2 {
		t.Fatalf("notification rows %d, want 2 (email, webhook)", n)
	}
	if s, _ := e.state(id); s != "PROCESSED" {
		t.Fatalf("status %s", s)
	}
}

// After the citizen deletes the profile, later messages are rejected as
// USER_NOT_FOUND; a message decided just before the deletion does not
// resurrect an inbox row, and the rest of its batch is delivered.
func TestDeletedProfile(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc, stays := "EEEEEE00A00A000E", "FFFFFF00A00A000F"
	e.profile(deliverytest.DefaultProfile(fc))
	e.profile(deliverytest.DefaultProfile(stays))
	before := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)

	racing := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	neighbour := e.send(deliverytest.Message{Service: svc, FiscalCode: stays})
	jobs, _ := d.claim(e.ctx)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d messages, want both in one batch", len(jobs))
	}
	outs, err := d.decide(e.ctx, jobs) // decided while the profile exists
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.WriteTx(e.ctx, func(tx *sqlx.Tx) error {
		for _, q := range []string{`DELETE FROM inbox WHERE fiscal_code = ?`, `DELETE FROM service_preferences WHERE fiscal_code = ?`, `DELETE FROM profiles WHERE fiscal_code = ?`} {
			if _, err := tx.Exec(q, fc); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.record(e.ctx, outs); err != nil {
		t.Fatal(err)
	}
	after := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)
	for _, id := range []string{racing, after} {
		if s, r := e.state(id); s != "REJECTED" || r != "USER_NOT_FOUND" {
			t.Errorf("%s: %s/%s, want REJECTED/USER_NOT_FOUND", id, s, r)
		}
	}
	if s, _ := e.state(before); s != "PROCESSED" {
		t.Errorf("earlier message: %s", s)
	}
	if n := e.count(`SELECT count(*) FROM inbox WHERE fiscal_code = ?`, fc); n != 0 {
		t.Errorf("inbox rows after deletion: %d", n)
	}
	if s, _ := e.state(neighbour); s != "PROCESSED" || e.count(`SELECT count(*) FROM inbox WHERE message_id = ?`, neighbour) != 1 {
		t.Errorf("the other recipient's message in the same batch: %s, want PROCESSED and in the inbox", s)
	}
	// The rejected message is still found by its recipient (data export).
	if n := e.count(`SELECT count(*) FROM messages_by_recipient WHERE fiscal_code = ? AND message_id = ?`, fc, racing); n != 1 {
		t.Errorf("messages_by_recipient rows for the rejected message: %d, want 1", n)
	}
}

// Batch statements read their rows as JSON: values that need escaping
// arrive intact.
func TestJSONRows(t *testing.T) {
	var r jsonRows
	if got := r.String(); got != "[]" {
		t.Errorf("empty: %s", got)
	}
	r.add("01ARZ", "a\"b\\c", int64(42))
	r.add("é\n", "x", int64(-1))
	var back [][]any
	if err := json.Unmarshal([]byte(r.String()), &back); err != nil {
		t.Fatalf("%s: %v", r.String(), err)
	}
	want := [][]any{{"01ARZ", "a\"b\\c", 42.0}, {"é\n", "x", -1.0}}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("got %v, want %v", back, want)
	}
	var ids jsonRows
	ids.add("A")
	ids.add("B")
	if got := ids.String(); got != `["A","B"]` {
		t.Errorf("one value per row: %s", got)
	}
}

// Run processes what arrives and returns when its context ends.
func TestRunProcessesAndStops(t *testing.T) {
	e := newEnv(t)
	e.clock = nil
	d, err := New(Config{DB: e.db, Logger: quietLogger(), PollInterval: 5 * time.Millisecond, BatchSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	e.profile(deliverytest.DefaultProfile("FFFFFF00A00A000F"))
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for range 300 {
		if _, err := deliverytest.Insert(e.ctx, e.db, deliverytest.Message{Service: svc, FiscalCode: "FFFFFF00A00A000F"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.count(`SELECT count(*) FROM inbox`) < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 300 processed", e.count(`SELECT count(*) FROM inbox`))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := e.count(`SELECT count(*) FROM messages WHERE status = 'PROCESSED'`); n != 300 {
		t.Fatalf("processed %d", n)
	}
}

// The claim runs on every batch: it must read the outbox (small) and look
// messages up by id, never scan the messages table (large).
func TestClaimReadsTheOutboxFirst(t *testing.T) {
	e := newEnv(t)
	plan := dbtest.Plan(t, e.db, sqlClaim, e.clock.Now(), `["x"]`, 128)
	if strings.Contains(plan, "SCAN m") || !strings.Contains(plan, "SCAN outbox") ||
		!strings.Contains(plan, "SEARCH m USING INDEX sqlite_autoindex_messages_1") {
		t.Fatalf("claim plan:\n%s", plan)
	}
}

// The batch statements look their rows up by key: a scan of messages,
// inbox or outbox per batch would grow with every message ever stored.
func TestBatchStatementsUseKeys(t *testing.T) {
	e := newEnv(t)
	now := e.clock.Now()
	for name, c := range map[string]struct {
		q    string
		args []any
	}{
		"inbox":       {sqlInbox, []any{now, `[["a","AAAAAA00A00A000A",1]]`}},
		"notInInbox":  {sqlNotInInbox, []any{`["a"]`}},
		"status":      {sqlSetStatus, []any{StatusProcessed, nil, now, `["a"]`}},
		"notify":      {sqlNotify, []any{now, now, `[["a","email"]]`}},
		"unqueue":     {sqlUnqueue, []any{`["a"]`}},
		"byRecipient": {sqlByRecipient, []any{`[["AAAAAA00A00A000A","a"]]`}},
	} {
		plan := dbtest.Plan(t, e.db, c.q, c.args...)
		for _, line := range strings.Split(plan, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "SCAN") && !strings.Contains(line, "VIRTUAL TABLE") {
				t.Errorf("%s scans a table:\n%s", name, plan)
			}
		}
		if !strings.Contains(plan, "SEARCH") && name != "notify" && name != "byRecipient" {
			t.Errorf("%s looks nothing up by key:\n%s", name, plan)
		}
	}
}

// An outbox row that comes back for a message already rejected (a replayed
// batch) is removed again without changing the outcome.
func TestReplayedRejectedMessage(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: "GGGGGG00A00A000G"}) // no profile
	e.drain(d)
	e.requeue(id)
	e.drain(d)
	if s, r := e.state(id); s != "REJECTED" || r != "USER_NOT_FOUND" {
		t.Errorf("state %s/%s, want REJECTED/USER_NOT_FOUND", s, r)
	}
	if n := e.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("outbox rows %d", n)
	}
}

// A background loop that panics is logged and started again instead of
// ending the process; its ordinary errors and a shutdown pass through.
func TestSupervisedLoopRestartsAfterPanic(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	d.restartDelay = time.Millisecond
	runs := 0
	err := d.supervise(e.ctx, "test", func(context.Context) error {
		runs++
		if runs < 3 {
			var m map[string]int
			m["boom"]++ // a nil map write: a real runtime panic
		}
		return nil
	})
	if err != nil || runs != 3 {
		t.Fatalf("runs %d, err %v: want the loop restarted twice and then its nil", runs, err)
	}
	wantErr := errors.New("disk full")
	if err := d.supervise(e.ctx, "test", func(context.Context) error { return wantErr }); !errors.Is(err, wantErr) {
		t.Fatalf("error %v, want %v", err, wantErr)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	d.restartDelay = time.Hour
	done := make(chan error, 1)
	go func() { done <- d.supervise(ctx, "test", func(context.Context) error { panic("always") }) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("supervise did not return after its context ended")
	}
}

// The recorder runs outside supervise: a panic while recording a batch is
// a failed write (logged, the claims released so the rows are retried),
// and the next batch is still recorded.
func TestRecorderSurvivesAPanickingBatch(t *testing.T) {
	e := newEnv(t)
	var logs strings.Builder
	d := e.delivery(Config{})
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	first := []outcome{{job: job{ID: "m1"}}, {job: job{ID: "m2"}}}
	second := []outcome{{job: job{ID: "m3"}}}
	d.claims.take([]job{first[0].job, first[1].job, second[0].job})
	batches := make(chan []outcome, 2)
	batches <- first
	batches <- second
	close(batches)
	var recorded []string
	ctx, cancel := context.WithCancel(e.ctx)
	cancel() // skips the back-off after the failed batch; recording goes on regardless
	d.recorder(ctx, batches, func(_ context.Context, outs []outcome) error {
		if outs[0].job.ID == "m1" {
			var m map[string]int
			m["boom"]++ // a nil map write: a real runtime panic
		}
		for _, o := range outs {
			recorded = append(recorded, o.job.ID)
		}
		return nil
	})
	if len(recorded) != 1 || recorded[0] != "m3" {
		t.Fatalf("recorded %v, want the second batch [m3]", recorded)
	}
	if held := d.claims.held(); held != "[]" {
		t.Fatalf("claims still held after the batches: %s", held)
	}
	if out := logs.String(); !strings.Contains(out, "panicked") || !strings.Contains(out, "nil map") {
		t.Fatalf("the panic is not logged:\n%s", out)
	}
}

// The readiness probe's question reads one outbox key and one index entry
// of the due notices, however long the outbox and the notices are.
func TestOverdueReadsTwoKeys(t *testing.T) {
	e := newEnv(t)
	plan := dbtest.Plan(t, e.db, sqlOverdue, e.clock.Now())
	if !strings.Contains(plan, "SCAN outbox") || strings.Contains(plan, "TEMP B-TREE") ||
		!strings.Contains(plan, "SEARCH notifications USING COVERING INDEX notifications_due (status=? AND next_attempt_at<?)") {
		t.Fatalf("overdue plan:\n%s", plan)
	}
}
