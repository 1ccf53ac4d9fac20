package main

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sportello/db"
	"sportello/messaging/delivery"
	"sportello/messaging/send"
)

// BenchmarkCommitPath measures the send path's commit alone, without HTTP:
// 64 goroutines each put a message and its outbox row through the
// pipelined group commit (commit, then WAL fsync before the answer), with
// background checkpoints as the gateway runs them.
//
//	go test -run '^$' -bench CommitPath -benchtime 4s ./bench
func BenchmarkCommitPath(b *testing.B) { commitPath(b, 0, false) }

// agedMessages is how many messages the retention benchmarks store 31
// days old: what a month-old bulk send to all residents leaves.
const agedMessages = 300_000

// BenchmarkCommitPathAged is BenchmarkCommitPath on a table that also
// holds the aged messages, without the retention job: the baseline for
// BenchmarkCommitPathDuringRetention.
func BenchmarkCommitPathAged(b *testing.B) { commitPath(b, agedMessages, false) }

// BenchmarkCommitPathDuringRetention is BenchmarkCommitPathAged while the
// retention job empties the aged messages. Sends are counted only while
// the job runs (it may finish before the sends do), and the job's own
// speed is reported as rows per second of its run, so a change to how
// retention shares the single writer is measured on both sides.
func BenchmarkCommitPathDuringRetention(b *testing.B) { commitPath(b, agedMessages, true) }

// commitPath runs the commit-path benchmark; aged > 0 first stores that
// many delivered messages 31 days old, and purge runs one retention pass
// beside the sends.
func commitPath(b *testing.B, aged int, purge bool) {
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
	if aged > 0 {
		if err := storeAged(ctx, d, res.LiveService.InternalID, aged); err != nil {
			b.Fatal(err)
		}
		d.W.MustExec("PRAGMA wal_checkpoint(TRUNCATE)")
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
	type done struct {
		at      time.Time
		latency time.Duration
	}
	var (
		seq   atomic.Int64
		mu    sync.Mutex
		sends []done
	)
	purgeCtx, stopPurge := context.WithCancel(ctx)
	var (
		purgeEnd  time.Time // zero while the job runs
		purged    int64
		purgeDone = make(chan struct{})
	)
	b.SetParallelism(32) // 64 goroutines on 2 cores, as the HTTP bench's clients
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(purgeDone)
		if !purge {
			return
		}
		del, err := delivery.New(delivery.Config{DB: d, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			return
		}
		n, err := del.PurgeContent(purgeCtx)
		purged = n
		if err == nil {
			purgeEnd = time.Now()
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		var mine []done
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
			end := time.Now()
			mine = append(mine, done{end, end.Sub(now)})
		}
		mu.Lock()
		sends = append(sends, mine...)
		mu.Unlock()
	})
	end := time.Now()
	b.StopTimer()
	stopPurge()
	<-purgeDone
	// With the job beside them, only the sends it overlapped count.
	window := end
	if purge && !purgeEnd.IsZero() && purgeEnd.Before(end) {
		window = purgeEnd
	}
	var latencies []time.Duration
	for _, s := range sends {
		if !s.at.After(window) {
			latencies = append(latencies, s.latency)
		}
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(len(latencies))/window.Sub(start).Seconds(), "sends/s")
	if len(latencies) > 0 {
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99_ms")
	}
	if purge {
		ran := end
		if !purgeEnd.IsZero() {
			ran = purgeEnd
		}
		b.ReportMetric(float64(purged)/ran.Sub(start).Seconds(), "purged/s")
		finished := 0.0
		if !purgeEnd.IsZero() {
			finished = 1
		}
		b.ReportMetric(finished, "purge_finished")
	}
}

// storeAged inserts n delivered messages created 31 days ago: just past
// the default retention.
func storeAged(ctx context.Context, d *db.DB, serviceID int64, n int) error {
	tx, err := d.W.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live, status, created_at, processed_at)
		VALUES (?, ?, 1, ?, 'live', ?, 3600, 'PROCESSED', ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	cfs := fiscalCodes(5000)
	content := `{"subject":"Avviso di pagamento TARI 2026","markdown":"Gentile contribuente, le ricordiamo che la seconda rata della TARI 2026 scade il 16 dicembre."}`
	start := time.Now().Add(-31 * 24 * time.Hour)
	for i := range n {
		at := start.Add(time.Duration(i) * time.Millisecond)
		if _, err := st.ExecContext(ctx, send.NewID(at), serviceID, cfs[i%len(cfs)], content, at, at); err != nil {
			return err
		}
	}
	return tx.Commit()
}
