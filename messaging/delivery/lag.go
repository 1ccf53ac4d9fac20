package delivery

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// sqlOverdue says whether work due at or before ?1 is still waiting: the
// oldest outbox row (message ids sort by the time they were accepted, and
// a row is due from then on, so the first row by key is the longest
// waiting one: one step into the primary key, where min(available_at)
// would read the whole outbox, and an index on it would cost every send a
// write), or a notice due for an attempt (notifications_due). A notice
// waiting for a retry has its next_attempt_at ahead and is not overdue;
// neither is mail kept in mail_outbox for want of an SMTP server.
const sqlOverdue = `SELECT EXISTS (SELECT 1 FROM (SELECT available_at FROM outbox ORDER BY message_id LIMIT 1) WHERE available_at <= ?1)
	OR EXISTS (SELECT 1 FROM notifications WHERE status = 'THROTTLED' AND next_attempt_at <= ?1)`

// Overdue reports whether a message or a notice due at or before cutoff
// is still waiting for delivery: with delivery running, the outbox drains
// in well under a second (docs/benchmarks.md) and a due notice is tried
// within NotifyPoll, so work that old means delivery is stuck or far
// behind. It reads two index entries, cheap enough for a readiness probe.
func Overdue(ctx context.Context, q sqlx.QueryerContext, cutoff time.Time) (bool, error) {
	var late bool
	err := sqlx.GetContext(ctx, q, &late, sqlOverdue, cutoff.UTC())
	return late, err
}
