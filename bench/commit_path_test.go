package main

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"sportello/db"
	"sportello/messaging/send"
)

// BenchmarkCommitPath measures the send path's commit alone, without HTTP:
// 64 goroutines each put a message and its outbox row through the
// pipelined group commit (commit, then WAL fsync before the answer), with
// background checkpoints as the gateway runs them.
//
//	go test -run '^$' -bench CommitPath -benchtime 4s ./bench
func BenchmarkCommitPath(b *testing.B) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(b.TempDir(), "x.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	res, err := seed(ctx, d)
	if err != nil {
		b.Fatal(err)
	}
	d.W.MustExec("PRAGMA wal_autocheckpoint=0")
	stopCk := make(chan struct{})
	defer close(stopCk)
	go func() {
		for {
			select {
			case <-stopCk:
				return
			case <-time.After(time.Second): // as gateway.checkpointEvery
				_, _ = d.W.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	const (
		qIns = `INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, created_at) VALUES (?, ?, 1, ?, 'live', ?, 3600, ?)`
		qOut = `INSERT INTO outbox (message_id, available_at) VALUES (?, ?)`
	)
	p, err := send.NewPipeline(d, 512, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	if err := p.Prepare(ctx, qIns, qOut); err != nil {
		b.Fatal(err)
	}
	cfs := fiscalCodes(1000)
	content := `{"subject":"Avviso di pagamento","markdown":"Gentile contribuente, le ricordiamo che la seconda rata della TARI 2026 scade il 16 dicembre. Può pagare con l'avviso pagoPA allegato"}`
	var seq atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores, as the HTTP bench's clients
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			now := time.Now()
			id := send.NewID(now)
			err := p.Do(ctx, func(tx *send.Tx) error {
				if _, err := tx.Exec(qIns, id, res.LiveService.InternalID, cfs[i%1000], content, now); err != nil {
					return err
				}
				_, err := tx.Exec(qOut, id, now)
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "sends/s")
}
