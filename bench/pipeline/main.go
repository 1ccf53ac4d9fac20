// Command pipeline measures the delivery pipeline end to end: a producer
// submits messages at a fixed rate through the gateway's send path
// (messaging/send: validated message + outbox row, group-committed), the real delivery
// loop (messaging/delivery) processes them, and the program reports throughput, the outbox backlog
// and the accept-to-processed latency (processed_at − created_at).
//
//	go run ./bench/pipeline -rate 5000 -duration 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/delivery"
	"sportello/messaging/delivery/deliverytest"
	"sportello/messaging/fiscalcode"
	"sportello/messaging/send"
)

func main() {
	rate := flag.Int("rate", 5000, "messages per second submitted")
	dur := flag.Duration("duration", 60*time.Second, "how long to submit")
	citizens := flag.Int("citizens", 20000, "distinct recipients (with profiles)")
	batch := flag.Int("batch", 0, "outbox rows per delivery batch (0: the server's default)")
	dir := flag.String("dir", "", "data directory (default: a temp dir, removed at the end)")
	flag.Parse()
	if err := run(*rate, *dur, *citizens, *batch, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(rate int, dur time.Duration, citizens, batch int, dir string) error {
	ctx := context.Background()
	if dir == "" {
		tmp, err := os.MkdirTemp("", "sportello-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	d, err := db.Open(ctx, filepath.Join(dir, "sportello.db"))
	if err != nil {
		return err
	}
	defer d.Close()

	services, fcs, err := seed(ctx, d, citizens)
	if err != nil {
		return err
	}
	del, err := delivery.New(delivery.Config{DB: d, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		BatchSize: batch})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runDone := make(chan error, 1)
	go func() { runDone <- del.Run(runCtx) }()

	// The gateway's send path: validated messages committed (and fsynced)
	// in shared transactions with their outbox rows.
	gc, err := send.NewPipeline(d, 512, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	store, err := send.NewStore(ctx, d, gc, nil)
	if err != nil {
		return err
	}

	// Backlog sampler.
	var maxBacklog atomic.Int64
	sampleCtx, stopSample := context.WithCancel(ctx)
	defer stopSample()
	var sampleWG sync.WaitGroup
	sampleWG.Add(1)
	go func() {
		defer sampleWG.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
				var n int64
				if err := d.R.Get(&n, `SELECT count(*) FROM outbox`); err == nil && n > maxBacklog.Load() {
					maxBacklog.Store(n)
				}
			}
		}
	}()

	// Producer: a pacer hands out sends at the target rate to a pool of
	// submitters, like concurrent API requests.
	work := make(chan int, rate)
	var accepted, failed atomic.Int64
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				svc := services[(i/7)%len(services)]
				ttl := int64(3600)
				nm := &send.NewMessage{FiscalCode: fcs[i%len(fcs)], TimeToLive: &ttl, Content: &send.MessageContent{
					Subject:  "Avviso di scadenza della tassa sui rifiuti",
					Markdown: "Gentile cittadino, le ricordiamo che la **rata** della tassa sui rifiuti scade a fine mese. Può pagare online.",
				}, FeatureLevelType: "STANDARD"}
				_, err := store.Submit(ctx, send.Sender{ServiceID: svc.ID, ServicePublicID: svc.PublicID,
					InstitutionID: svc.InstitutionID, Mode: "live"}, send.Submission{Message: nm})
				if err != nil {
					failed.Add(1)
					continue
				}
				accepted.Add(1)
			}
		}()
	}
	start := time.Now()
	total := int(float64(rate) * dur.Seconds())
	fmt.Printf("submitting %d messages at %d/s for %s (batch %d)\n", total, rate, dur, batch)
	tick := time.NewTicker(time.Millisecond)
	sent := 0
	for sent < total {
		<-tick.C
		due := int(float64(rate) * time.Since(start).Seconds())
		for ; sent < due && sent < total; sent++ {
			work <- sent
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	submitDur := time.Since(start)
	gc.Close()

	// Wait for the backlog to drain.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var left int
		if err := d.R.Get(&left, `SELECT count(*) FROM outbox`); err != nil {
			return err
		}
		if left == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	drainDur := time.Since(start)
	stopSample()
	sampleWG.Wait()
	stop()
	if err := <-runDone; err != nil {
		return err
	}

	var lat []struct {
		Created   time.Time `db:"created_at"`
		Processed time.Time `db:"processed_at"`
	}
	if err := d.R.Select(&lat, `SELECT created_at, processed_at FROM messages WHERE processed_at IS NOT NULL`); err != nil {
		return err
	}
	ms := make([]float64, len(lat))
	for i, l := range lat {
		ms[i] = float64(l.Processed.Sub(l.Created).Microseconds()) / 1000
	}
	slices.Sort(ms)
	pct := func(p float64) float64 {
		if len(ms) == 0 {
			return 0
		}
		return ms[min(len(ms)-1, int(p*float64(len(ms))))]
	}
	var statuses []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	_ = d.R.Select(&statuses, `SELECT status, count(*) AS n FROM messages GROUP BY status ORDER BY status`)
	var inbox int
	_ = d.R.Get(&inbox, `SELECT count(*) FROM inbox`)

	fmt.Printf("accepted %d (failed %d) in %.1fs: %.0f msg/s submitted\n", accepted.Load(), failed.Load(), submitDur.Seconds(),
		float64(accepted.Load())/submitDur.Seconds())
	fmt.Printf("processed %d, all done %.1fs after start: %.0f msg/s end to end\n", len(lat), drainDur.Seconds(),
		float64(len(lat))/drainDur.Seconds())
	fmt.Printf("statuses %v, inbox rows %d\n", statuses, inbox)
	fmt.Printf("max outbox backlog %d\n", maxBacklog.Load())
	fmt.Printf("accept→processed latency ms: p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n", pct(0.50), pct(0.90), pct(0.99), pct(1))
	return nil
}

// seed creates services and citizens: a third LEGACY, a third AUTO, a
// third MANUAL with one service enabled, 10% with a validated e-mail.
func seed(ctx context.Context, d *db.DB, n int) ([]deliverytest.Service, []string, error) {
	inst, err := deliverytest.Institution(ctx, d, "Comune di Benchmark")
	if err != nil {
		return nil, nil, err
	}
	var services []deliverytest.Service
	for i := range 10 {
		s, err := deliverytest.AddService(ctx, d, inst, fmt.Sprintf("Servizio %d", i), deliverytest.ServiceOpts{})
		if err != nil {
			return nil, nil, err
		}
		services = append(services, s)
	}
	fcs := make([]string, n)
	now := time.Now().UTC()
	err = d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		for i := range n {
			first := fmt.Sprintf("BNCMRK%02dA01H%03d", i/1000%100, i%1000)
			fc := first + string(fiscalcode.CheckChar(first))
			fcs[i] = fc
			mode := []string{"LEGACY", "AUTO", "MANUAL"}[i%3]
			version := map[string]int{"LEGACY": 0, "AUTO": 1, "MANUAL": 1}[mode]
			email := i%10 == 0
			if _, err := tx.ExecContext(ctx, `INSERT INTO profiles (fiscal_code, email, is_email_enabled, is_email_validated,
				is_webhook_enabled, preferences_mode, preferences_version, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`,
				fc, "c"+fmt.Sprint(i)+"@example.it", email, email, mode, version, now, now); err != nil {
				return err
			}
			if mode == "MANUAL" {
				if _, err := tx.ExecContext(ctx, `INSERT INTO service_preferences (fiscal_code, service_id, is_inbox_enabled,
					is_email_enabled, is_webhook_enabled, settings_version, updated_at) VALUES (?, ?, 1, 1, 0, 1, ?)`,
					fc, services[i%len(services)].ID, now); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return services, fcs, err
}
