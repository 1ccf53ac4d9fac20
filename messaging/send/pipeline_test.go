package send

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
