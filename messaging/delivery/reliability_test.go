package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/delivery/deliverytest"
)

// A worker that crashes after leasing leaves rows hidden only until the
// lease expires; then another worker processes them.
func TestLeaseExpiryRecoversCrashedWorker(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{LeaseDuration: 10 * time.Second})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "CCCCCC00A00A000C"
	e.profile(deliverytest.DefaultProfile(fc))
	var ids []string
	for range 5 {
		ids = append(ids, e.send(deliverytest.Message{Service: svc, FiscalCode: fc}))
	}
	leased, err := d.lease(e.ctx) // the "crashed" worker: leases, never records
	if err != nil || len(leased) != 5 {
		t.Fatalf("lease: %v %d", err, len(leased))
	}
	if n := e.drain(d); n != 0 {
		t.Fatalf("leased rows were processed again before the lease expired (%d)", n)
	}
	e.clock.Advance(11 * time.Second)
	if n := e.drain(d); n != 5 {
		t.Fatalf("after expiry processed %d, want 5", n)
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

// Processing the same message twice (a lease expired while the first
// worker was still writing, or a crash after the inbox write in another
// design) must leave one inbox row and one notice per channel.
func TestInboxExactlyOnce(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{PushURL: "http://127.0.0.1:9/", PushSecret: []byte("k")})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "DDDDDD00A00A000D"
	e.profile(deliverytest.DefaultProfile(fc))
	id := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})

	// Two workers decide the same message before either records.
	ids, err := d.lease(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	first, err := d.decide(e.ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.decide(e.ctx, ids)
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
	if err := e.db.WriteTx(e.ctx, func(tx *sqlx.Tx) error {
		_, err := tx.Exec(`INSERT INTO outbox (message_id, available_at) VALUES (?, ?)`, id, e.clock.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
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
// resurrect an inbox row.
func TestDeletedProfile(t *testing.T) {
	e := newEnv(t)
	d := e.delivery(Config{})
	svc := e.service("Tributi", deliverytest.ServiceOpts{})
	fc := "EEEEEE00A00A000E"
	e.profile(deliverytest.DefaultProfile(fc))
	before := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	e.drain(d)

	racing := e.send(deliverytest.Message{Service: svc, FiscalCode: fc})
	ids, _ := d.lease(e.ctx)
	outs, err := d.decide(e.ctx, ids) // decided while the profile exists
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
