package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// retention deletes message content older than Retention, in small batches
// so each write transaction stays short (the gateway shares the writer).
// Status, timestamps and per-channel outcomes stay: senders can still
// query what happened, but the text is gone (seed 001: content is kept
// only as long as delivery needs it).
func (d *Delivery) retention(ctx context.Context) error {
	for {
		if _, err := d.PurgeContent(ctx); err != nil && ctx.Err() == nil {
			d.log.Error("retention failed", "err", err)
		}
		if !sleepCtx(ctx, d.cfg.RetentionInterval) {
			return nil
		}
	}
}

// retentionPace is how much longer than a batch took the job waits before
// the next one while it catches up: 3 keeps it to at most a quarter of the
// single writer's time. A month after an institution's bulk send, hundreds
// of thousands of messages age out within minutes. Purged back to back,
// each batch waiting for its fsync, 300,000 of them went in 1.2–1.4 s
// during which the sends beside them fell to a fifth of their throughput
// (p99 13–90 ms); paced and unsynced, the purge takes about four times as
// long and the sends keep 0.7–0.95 of theirs (p99 6–8 ms)
// (BenchmarkCommitPathDuringRetention, docs/benchmarks.md).
const retentionPace = 3

// PurgeContent runs one retention pass and returns how many messages lost
// their content. Messages still waiting for delivery keep theirs. Batches
// commit without waiting for an fsync: a crash can only bring back content
// that the next pass empties again.
func (d *Delivery) PurgeContent(ctx context.Context) (int64, error) {
	now := d.now()
	cutoff := now.Add(-d.cfg.Retention)
	var total int64
	for {
		var n int64
		began := time.Now()
		err := d.db.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error {
			res, err := tx.ExecContext(ctx, `UPDATE messages SET content = NULL, content_deleted_at = ?
				WHERE id IN (SELECT id FROM messages INDEXED BY messages_content_retention
					WHERE content IS NOT NULL AND created_at < ? AND status IN ('PROCESSED', 'REJECTED', 'FAILED')
					AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.message_id = messages.id AND n.status = 'THROTTLED')
					LIMIT 1000)`, now, cutoff)
			if err != nil {
				return err
			}
			n, _ = res.RowsAffected()
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("purge content: %w", err)
		}
		total += n
		if n < 1000 {
			break
		}
		if !sleepCtx(ctx, retentionPace*time.Since(began)) {
			return total, ctx.Err()
		}
	}
	err := d.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE created_at < ?`, cutoff)
		return err
	})
	if err != nil {
		return total, fmt.Errorf("purge mail: %w", err)
	}
	if total > 0 {
		d.log.Info("retention: message content deleted", "messages", total, "older_than", cutoff)
	}
	return total, nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
