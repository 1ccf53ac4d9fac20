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
const sqlClaim = `SELECT m.id, m.service_id, m.fiscal_code, m.status, m.require_secure_channels, m.created_at,
		s.public_id, s.require_secure_channels AS svc_secure
	FROM (SELECT message_id FROM outbox WHERE available_at <= ? ORDER BY message_id LIMIT ?) o
	JOIN messages m ON m.id = o.message_id JOIN services s ON s.id = m.service_id
	ORDER BY o.message_id`

// Hot statements of the outcome transaction, prepared once on the writer
// connection: SQLite then skips a parse per row.
const (
	sqlSetStatus = `UPDATE messages SET status = ?, rejection_reason = ?, processed_at = ? WHERE id = ?`
	// The inbox row is written only while the profile exists, checked in
	// the same transaction: a citizen deleting the account between the
	// decision and this write must not get a row back.
	sqlInbox = `INSERT OR IGNORE INTO inbox (message_id, fiscal_code, service_id, created_at)
		SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM profiles WHERE fiscal_code = ?)`
	sqlInboxHas = `SELECT count(*) FROM inbox WHERE message_id = ?`
	sqlNotify   = `INSERT OR IGNORE INTO notifications (message_id, channel, status, attempts, next_attempt_at, updated_at)
		VALUES (?, ?, 'THROTTLED', 0, ?, ?)`
	sqlUnqueue = `DELETE FROM outbox WHERE message_id = ?`
	// A decided message that is not in the inbox stays findable by its
	// recipient (export, account deletion); migration 0023 says why this
	// is not an index on messages.
	sqlByRecipient = `INSERT OR IGNORE INTO messages_by_recipient (fiscal_code, message_id) VALUES (?, ?)`
)

type statements struct {
	setStatus, inbox, inboxHas, notify, unqueue, byRecipient *sql.Stmt
}

func prepare(ctx context.Context, d *db.DB) (*statements, error) {
	s := &statements{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{{&s.setStatus, sqlSetStatus}, {&s.inbox, sqlInbox}, {&s.inboxHas, sqlInboxHas}, {&s.notify, sqlNotify}, {&s.unqueue, sqlUnqueue},
		{&s.byRecipient, sqlByRecipient}} {
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
	for _, st := range []*sql.Stmt{s.setStatus, s.inbox, s.inboxHas, s.notify, s.unqueue, s.byRecipient} {
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
