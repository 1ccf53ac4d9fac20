package delivery

import (
	"context"
	"database/sql"
	"fmt"

	"sportello/db"
)

// sqlClaim reads the first due outbox rows with what the decision needs
// about each message. The outbox is read first, in its own key order, and
// only then joined: written as a plain join, SQLite's planner scanned the
// whole messages table and sorted it (TestClaimReadsTheOutboxFirst).
// Rows held by a batch in flight (?2, a JSON list of ids) are skipped
// before the join, so they cost an outbox index step, not a message read.
const sqlClaim = `SELECT m.id, m.service_id, m.fiscal_code, m.status, m.require_secure_channels, m.created_at,
		s.public_id, s.require_secure_channels AS svc_secure
	FROM (SELECT message_id FROM outbox WHERE available_at <= ?1
		AND message_id NOT IN (SELECT value FROM json_each(?2)) ORDER BY message_id LIMIT ?3) o
	JOIN messages m ON m.id = o.message_id JOIN services s ON s.id = m.service_id
	ORDER BY o.message_id`

// The outcome transaction writes a whole batch with one statement per kind
// of effect, each taking the batch's message ids (and what else it needs)
// as one JSON array: a statement per message was about 500 calls into
// SQLite per batch, and that Go-side work ran while the batch held the
// single writer the gateway's sends wait for (docs/benchmarks.md).
// Prepared once on the writer connection.
const (
	// The inbox row is written only while the profile exists, checked in
	// the same transaction: a citizen deleting the account between the
	// decision and this write must not get a row back. ?2 is
	// [[message_id, fiscal_code, service_id], ...].
	sqlInbox = `INSERT OR IGNORE INTO inbox (message_id, fiscal_code, service_id, created_at)
		SELECT j.value->>0, j.value->>1, j.value->>2, ?1 FROM json_each(?2) j
		WHERE EXISTS (SELECT 1 FROM profiles p WHERE p.fiscal_code = j.value->>1)`
	// The ids of ?1 ([[message_id, fiscal_code, ...], ...], the rows given
	// to sqlInbox) that have no inbox row.
	sqlNotInInbox = `SELECT j.value->>0 FROM json_each(?1) j
		WHERE NOT EXISTS (SELECT 1 FROM inbox i WHERE i.fiscal_code = j.value->>1 AND i.message_id = j.value->>0)`
	sqlSetStatus = `UPDATE messages SET status = ?1, rejection_reason = ?2, processed_at = ?3
		WHERE id IN (SELECT value FROM json_each(?4))`
	// ?3 is [[message_id, channel], ...].
	sqlNotify = `INSERT OR IGNORE INTO notifications (message_id, channel, status, attempts, next_attempt_at, updated_at)
		SELECT j.value->>0, j.value->>1, 'THROTTLED', 0, ?1, ?2 FROM json_each(?3) j`
	sqlUnqueue = `DELETE FROM outbox WHERE message_id IN (SELECT value FROM json_each(?1))`
	// A decided message that is not in the inbox stays findable by its
	// recipient (export, account deletion); migration 0023 says why this
	// is not an index on messages. ?1 is [[fiscal_code, message_id], ...].
	sqlByRecipient = `INSERT OR IGNORE INTO messages_by_recipient (fiscal_code, message_id)
		SELECT j.value->>0, j.value->>1 FROM json_each(?1) j`
)

type statements struct {
	setStatus, inbox, notInInbox, notify, unqueue, byRecipient *sql.Stmt
}

func prepare(ctx context.Context, d *db.DB) (*statements, error) {
	s := &statements{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{{&s.setStatus, sqlSetStatus}, {&s.inbox, sqlInbox}, {&s.notInInbox, sqlNotInInbox}, {&s.notify, sqlNotify},
		{&s.unqueue, sqlUnqueue}, {&s.byRecipient, sqlByRecipient}} {
		st, err := d.W.PrepareContext(ctx, p.q)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		*p.dst = st
	}
	return s, nil
}

func (s *statements) close() {
	for _, st := range []*sql.Stmt{s.setStatus, s.inbox, s.notInInbox, s.notify, s.unqueue, s.byRecipient} {
		if st != nil {
			st.Close()
		}
	}
}

// ensureStatements prepares the statements once (Run does it at start;
// tests calling ProcessBatch directly get them here).
func (d *Delivery) ensureStatements(ctx context.Context) error {
	d.stmtOnce.Lock()
	defer d.stmtOnce.Unlock()
	if d.stmts != nil {
		return nil
	}
	st, err := prepare(ctx, d.db)
	if err != nil {
		return err
	}
	d.stmts = st
	return nil
}
