package gateway

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// checkpointer moves WAL checkpoints off the commit path. By default
// SQLite checkpoints inside the commit that crosses 1000 WAL pages: that
// commit copies pages into the database file and fsyncs it while every
// send of the batch (and the batches queued behind it) waits. Here the
// writer connection never checkpoints; a separate connection does it in
// the background (PASSIVE: it never blocks the writer), and only when the
// WAL grows past walLimit does it wait for a full RESTART.
type checkpointer struct {
	conn  *sqlx.DB
	every time.Duration
	stop  chan struct{}
	done  chan struct{}
}

// checkpointEvery is how often the PASSIVE checkpoint runs. A checkpoint
// copies the newest version of every page written since the last one, and
// the hot pages (table and index tails, the small outbox) are rewritten by
// nearly every commit: checkpointing each second instead of every 100 ms
// copies them once instead of ten times and gave about 6 % more sends
// (docs/benchmarks.md); every 3 s gave nothing more.
const checkpointEvery = time.Second

// walLimit is the WAL size (pages) past which a blocking checkpoint runs,
// so a reader that never lets go cannot grow the file without bound.
const walLimit = 64000

func (g *Gateway) startCheckpointer(ctx context.Context) error {
	conn, err := sqlx.Open("sqlite3", "file:"+g.cfg.DB.Path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL")
	if err != nil {
		return err
	}
	conn.SetMaxOpenConns(1)
	if _, err := g.cfg.DB.W.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		conn.Close()
		return err
	}
	c := &checkpointer{conn: conn, every: checkpointEvery, stop: make(chan struct{}), done: make(chan struct{})}
	g.ckpt = c
	go func() {
		defer close(c.done)
		everyTick(g.log, "checkpoint", c.every, c.stop, func() {
			var busy, logPages, done int
			if err := conn.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done); err != nil {
				g.log.Warn("gateway: checkpoint", "err", err)
				return
			}
			if logPages > walLimit {
				if err := conn.QueryRow(`PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &logPages, &done); err != nil {
					g.log.Warn("gateway: checkpoint", "err", err)
				}
			}
		})
	}()
	return nil
}

// stopCheckpointer gives checkpoints back to the writer connection, so the
// database keeps checkpointing if it stays open without the gateway.
func (g *Gateway) stopCheckpointer(ctx context.Context) {
	if g.ckpt == nil {
		return
	}
	close(g.ckpt.stop)
	<-g.ckpt.done
	_, _ = g.cfg.DB.W.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 1000`)
	g.ckpt.conn.Close()
	g.ckpt = nil
}
