package send

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sportello/db"
)

func TestPipelineSharesCommitsIsolatesFailuresAndKeepsWriterFull(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d.W.MustExec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`)
	p, err := NewPipeline(d, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	const q = `INSERT INTO t (v) VALUES (?)`
	if err := p.Prepare(ctx, q); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 600)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := fmt.Sprint("v", i)
			if i%100 == 7 {
				v = "dup" // all but one of these fail, alone
			}
			errs[i] = p.Do(ctx, func(tx *Tx) error { _, err := tx.Exec(q, v); return err })
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed != 5 {
		t.Fatalf("%d failures, want 5", failed)
	}
	// The writer connection goes back to the pool with synchronous=FULL
	// (2), so other writers keep durable commits.
	var sync int
	if err := d.W.Get(&sync, `PRAGMA synchronous`); err != nil || sync != 2 {
		t.Fatalf("synchronous = %d (%v), want 2 (FULL)", sync, err)
	}
	p.Close()
	if err := p.Do(ctx, func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	d.Close()
	// Everything acknowledged is there after reopening.
	d2, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var n int
	_ = d2.R.Get(&n, `SELECT COUNT(*) FROM t`)
	if n != 595 {
		t.Fatalf("%d rows, want 595 (594 distinct values and one \"dup\")", n)
	}
}

func TestNewIDIsOrderedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	base := mustTime("2026-11-25T10:00:00Z")
	for i := 0; i < 2000; i++ {
		id := NewID(base.Add(timeMs(i)))
		if len(id) != 26 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		if id[:10] < prev[:min(10, len(prev))] {
			t.Fatalf("%s sorts before %s", id, prev)
		}
		seen[id] = true
		prev = id
	}
}

func TestIDFloorBoundsIDsOfThatMoment(t *testing.T) {
	at := mustTime("2026-11-25T10:00:00Z")
	floor := IDFloor(at)
	if len(floor) != 26 || floor[10:] != "0000000000000000" {
		t.Fatalf("floor %q: want 26 characters ending in zeros", floor)
	}
	for i := 0; i < 100; i++ {
		if id := NewID(at); id < floor {
			t.Fatalf("id %s of the same millisecond sorts below the floor %s", id, floor)
		}
		if id := NewID(at.Add(-time.Millisecond)); id >= floor {
			t.Fatalf("id %s of the millisecond before is not below the floor %s", id, floor)
		}
	}
}

// A panic inside one caller's operation must not end the process or take
// the batch's other sends with it: that caller gets an error, its partial
// writes are rolled back, and the others commit.
func TestPipelineTurnsAPanickingOperationIntoItsError(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	d.W.MustExec(`CREATE TABLE t (v TEXT NOT NULL)`)
	p, err := NewPipeline(d, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end, not deferred: after a hang, Close would wait for
	// the stuck writer and the test would never report.
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Do(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(`INSERT INTO t (v) VALUES (?)`, fmt.Sprint("v", i)); err != nil {
					return err
				}
				if i == 42 {
					var m map[string]int
					m["boom"]++ // a bug in an operation: nil map write
				}
				return nil
			})
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		// Without the recovery the panic unwinds through NoSyncConn, whose
		// deferred PRAGMA waits for the open transaction's connection: the
		// writer hangs and every send with it.
		t.Fatal("sends still waiting after 20 s: the writer hangs")
	}
	for i, err := range errs {
		if i == 42 {
			if err == nil || !strings.Contains(err.Error(), "panicked") {
				t.Fatalf("panicking operation: err = %v, want a panic error", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("operation %d: %v", i, err)
		}
	}
	var n, bad int
	_ = d.R.Get(&n, `SELECT COUNT(*) FROM t`)
	_ = d.R.Get(&bad, `SELECT COUNT(*) FROM t WHERE v = 'v42'`)
	if n != 199 || bad != 0 {
		t.Fatalf("%d rows (want 199), %d of the panicking operation (want 0)", n, bad)
	}
	p.Close()
	d.Close()
}

// Sync is a barrier that needs no writer: it returns on an idle pipeline,
// concurrent calls all return (sharing fsyncs) while sends go on, and
// after Close it says so.
func TestSyncIsABarrierWithoutTheWriter(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.W.MustExec(`CREATE TABLE t (v TEXT NOT NULL)`)
	p, err := NewPipeline(d, 64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx); err != nil {
		t.Fatalf("idle: %v", err)
	}
	// The writer is held elsewhere (as delivery would hold it): Sync does
	// not wait for it.
	conn, err := d.W.Connx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Sync(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sync waited for the writer")
	}
	conn.Close()
	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				errs[i] = p.Sync(ctx)
			} else {
				errs[i] = p.Do(ctx, func(tx *Tx) error { _, err := tx.Exec(`INSERT INTO t (v) VALUES ('x')`); return err })
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	p.Close()
	if err := p.Sync(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
