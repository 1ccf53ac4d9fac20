package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/fiscalcode"
	"sportello/messaging/preferences"
)

// record writes every outcome of a batch in one short transaction.
func (d *Delivery) record(ctx context.Context, outs []outcome) error {
	if err := d.ensureStatements(ctx); err != nil {
		return err
	}
	now := d.now()
	err := d.db.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error { return d.writeOutcomes(ctx, tx, outs, now) })
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	notified := false
	for _, o := range outs {
		switch {
		case o.status == StatusRejected && o.reason != nil: // nil: rejected before this batch
			d.log.Debug("message rejected", "message_id", o.job.ID, "fiscal_code", fiscalcode.Mask(o.job.FiscalCode), "reason", *o.reason)
		case o.status == StatusProcessed && (o.email || o.decided.Webhook):
			notified = true
		}
	}
	if notified {
		d.wakeNotifier()
	}
	return nil
}

// writeOutcomes is the outcome transaction: the batch's inbox rows, then
// (knowing which really entered the inbox) statuses, notices, recipient
// rows and the outbox deletion, one statement each (statements.go).
func (d *Delivery) writeOutcomes(ctx context.Context, tx *sqlx.Tx, outs []outcome, now time.Time) error {
	var delivered jsonRows
	for i := range outs {
		if o := &outs[i]; o.status == StatusProcessed {
			delivered.add(o.job.ID, o.job.FiscalCode, o.job.ServiceID)
		}
	}
	if delivered.n > 0 {
		res, err := tx.StmtContext(ctx, d.stmts.inbox).ExecContext(ctx, now, delivered.String())
		if err != nil {
			return fmt.Errorf("inbox: %w", err)
		}
		// Fewer rows than messages: some were in the inbox already (a
		// batch redone after a crash), or a profile went away since the
		// decision and its message must be rejected instead.
		if n, _ := res.RowsAffected(); n < int64(delivered.n) {
			if err := d.rejectNotInInbox(ctx, tx, outs, delivered.String()); err != nil {
				return err
			}
		}
	}
	type statusKey struct{ status, reason string }
	var statusOrder []statusKey
	byStatus := map[statusKey]*jsonRows{}
	var notices, byRecipient, all jsonRows
	for i := range outs {
		o := &outs[i]
		j := o.job
		all.add(j.ID)
		if (o.status == StatusProcessed || o.status == StatusRejected) && (j.Status == StatusAccepted || j.Status == "THROTTLED") {
			k := statusKey{status: o.status}
			if o.reason != nil {
				k.reason = *o.reason
			}
			if byStatus[k] == nil {
				byStatus[k] = &jsonRows{}
				statusOrder = append(statusOrder, k)
			}
			byStatus[k].add(j.ID)
		}
		if o.status == StatusProcessed {
			if o.email {
				notices.add(j.ID, ChannelEmail)
			}
			if o.decided.Webhook {
				notices.add(j.ID, ChannelWebhook)
			}
		} else {
			// A delivered message is found by its recipient through the
			// inbox; any other outcome through messages_by_recipient.
			byRecipient.add(j.FiscalCode, j.ID)
		}
	}
	for _, k := range statusOrder {
		var reason *string
		if k.reason != "" {
			reason = &k.reason
		}
		if _, err := tx.StmtContext(ctx, d.stmts.setStatus).ExecContext(ctx, k.status, reason, now, byStatus[k].String()); err != nil {
			return fmt.Errorf("status %s: %w", k.status, err)
		}
	}
	if notices.n > 0 {
		if _, err := tx.StmtContext(ctx, d.stmts.notify).ExecContext(ctx, now, now, notices.String()); err != nil {
			return fmt.Errorf("notifications: %w", err)
		}
	}
	if byRecipient.n > 0 {
		if _, err := tx.StmtContext(ctx, d.stmts.byRecipient).ExecContext(ctx, byRecipient.String()); err != nil {
			return fmt.Errorf("recipients: %w", err)
		}
	}
	if _, err := tx.StmtContext(ctx, d.stmts.unqueue).ExecContext(ctx, all.String()); err != nil {
		return fmt.Errorf("unqueue: %w", err)
	}
	return nil
}

// rejectNotInInbox turns the PROCESSED outcomes whose message has no inbox
// row (the profile went away since the decision) into USER_NOT_FOUND;
// delivered is the JSON given to the inbox statement.
func (d *Delivery) rejectNotInInbox(ctx context.Context, tx *sqlx.Tx, outs []outcome, delivered string) error {
	rows, err := tx.StmtContext(ctx, d.stmts.notInInbox).QueryContext(ctx, delivered)
	if err != nil {
		return fmt.Errorf("inbox check: %w", err)
	}
	defer rows.Close()
	missing := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("inbox check: %w", err)
		}
		missing[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("inbox check: %w", err)
	}
	for i := range outs {
		if o := &outs[i]; o.status == StatusProcessed && missing[o.job.ID] {
			o.status, o.reason, o.email, o.decided = StatusRejected, ptr(ReasonUserNotFound), false, preferences.Decision{}
		}
	}
	return nil
}

// jsonRows builds the JSON array a batch statement reads with json_each:
// ["a", "b"] when rows have one value, [["a", 1], ...] otherwise.
type jsonRows struct {
	b []byte
	n int
}

func (r *jsonRows) add(vals ...any) {
	if r.n == 0 {
		r.b = append(r.b, '[')
	} else {
		r.b = append(r.b, ',')
	}
	r.n++
	if len(vals) > 1 {
		r.b = append(r.b, '[')
	}
	for i, v := range vals {
		if i > 0 {
			r.b = append(r.b, ',')
		}
		switch v := v.(type) {
		case string:
			r.b = appendJSONString(r.b, v)
		case int64:
			r.b = strconv.AppendInt(r.b, v, 10)
		default:
			panic(fmt.Sprintf("jsonRows: unsupported %T", v))
		}
	}
	if len(vals) > 1 {
		r.b = append(r.b, ']')
	}
}

// String is the array, "[]" when empty. It must be bound as text: SQLite
// reads a BLOB argument to json_each as its binary JSONB format.
func (r *jsonRows) String() string {
	if r.n == 0 {
		return "[]"
	}
	return string(r.b) + "]"
}

// appendJSONString quotes s as JSON. Ids and fiscal codes are plain ASCII
// and are copied as they are; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
