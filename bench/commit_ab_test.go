package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sportello/db"
	"sportello/messaging/send"
)

const qIns = `INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, created_at) VALUES (?, ?, 1, ?, 'live', ?, 3600, ?)`
const qOut = `INSERT INTO outbox (message_id, available_at) VALUES (?, ?)`

// probe runs one committer for 4 seconds and prints sends/s.
func probe(t *testing.T, name string, pipeline bool) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res, err := seed(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	d.W.MustExec("PRAGMA wal_autocheckpoint=0")
	stopCk := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopCk:
				return
			case <-time.After(100 * time.Millisecond):
				d.W.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	defer close(stopCk)
	var do func(ctx context.Context, f func(exec func(q string, a ...any) error) error) error
	if pipeline {
		p, _ := send.NewPipeline(d, 512, nil)
		defer p.Close()
		p.Prepare(ctx, qIns, qOut)
		do = func(ctx context.Context, f func(exec func(q string, a ...any) error) error) error {
			return p.Do(ctx, func(tx *send.Tx) error {
				return f(func(q string, a ...any) error { _, err := tx.Exec(q, a...); return err })
			})
		}
	} else {
		g := db.NewGroupCommitter(d, 512)
		defer g.Close()
		g.Prepare(ctx, qIns, qOut)
		do = func(ctx context.Context, f func(exec func(q string, a ...any) error) error) error {
			return g.Do(ctx, func(tx *db.GTx) error {
				return f(func(q string, a ...any) error { _, err := tx.Exec(q, a...); return err })
			})
		}
	}
	cfs := fiscalCodes(1000)
	var n atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	content := `{"subject":"Avviso di pagamento","markdown":"Gentile contribuente, le ricordiamo che la seconda rata della TARI 2026 scade il 16 dicembre. Può pagare con l'avviso pagoPA allegato"}`
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				now := time.Now()
				id := send.NewID(now)
				if err := do(ctx, func(exec func(q string, a ...any) error) error {
					if err := exec(qIns, id, res.LiveService.InternalID, cfs[(w*31+i)%1000], content, now); err != nil {
						return err
					}
					return exec(qOut, id, now)
				}); err != nil {
					t.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	time.Sleep(4 * time.Second)
	stop.Store(true)
	wg.Wait()
	fmt.Printf("%s: %d sends/s\n", name, n.Load()/4)
}

// TestCommitAB compares the two group committers on the commit path alone
// (no HTTP): 64 goroutines insert a message and its outbox row each.
// It is a measurement, not a check: BENCH_COMMIT_AB=1 go test -run CommitAB -v ./bench
func TestCommitAB(t *testing.T) {
	if os.Getenv("BENCH_COMMIT_AB") == "" {
		t.Skip("set BENCH_COMMIT_AB=1 to run")
	}
	for i := 0; i < 2; i++ {
		probe(t, "groupcommit FULL", false)
		probe(t, "pipeline", true)
	}
}
