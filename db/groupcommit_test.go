package db_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"

	"sportello/db"
)

func TestGroupCommitterSharesTransactionsAndIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "g.db")
	d, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	d.W.MustExec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`)
	g := db.NewGroupCommitter(d, 64)
	const q = `INSERT INTO t (v) VALUES (?)`
	if err := g.Prepare(ctx, q); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 500)
	for i := range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := "v" + string(rune('A'+i%26)) + string(rune('a'+i/26))
			if i%50 == 7 {
				v = "dup" // all but one of these must fail alone
			}
			errs[i] = g.Do(ctx, func(tx *db.GTx) error { _, err := tx.Exec(q, v); return err })
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed != 9 {
		t.Fatalf("%d failures, want 9 (duplicates beyond the first)", failed)
	}
	g.Close()
	if err := g.Do(ctx, func(*db.GTx) error { return nil }); !errors.Is(err, db.ErrCommitterClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	d.Close()
	// Everything acknowledged is on disk after reopening.
	d2, err := db.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	var n int
	_ = d2.R.Get(&n, `SELECT count(*) FROM t`)
	if n != 491 {
		t.Fatalf("%d rows after reopen, want 491", n)
	}
}
