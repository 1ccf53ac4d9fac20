package db

import (
	"context"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// AuditEvent is one line of the append-only audit log.
type AuditEvent struct {
	ID            int64     `db:"id"`
	At            time.Time `db:"at"`
	ActorUserID   *int64    `db:"actor_user_id"`
	Actor         string    `db:"actor"` // e-mail or "system", kept even if the user goes away
	InstitutionID *int64    `db:"institution_id"`
	Action        string    `db:"action"` // e.g. "login", "member.invite"
	Target        string    `db:"target"`
	ClientIP      string    `db:"client_ip"`
	Detail        string    `db:"detail"`
}

// Audit appends an event; call it inside the transaction of the change it
// records so the log and the data never disagree.
func Audit(ctx context.Context, ex sqlx.ExecerContext, ev AuditEvent) error {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	_, err := ex.ExecContext(ctx, `INSERT INTO audit_events
		(at, actor_user_id, actor, institution_id, action, target, client_ip, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.At.UTC(), ev.ActorUserID, ev.Actor, ev.InstitutionID, ev.Action, ev.Target, ev.ClientIP, ev.Detail)
	return err
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	InstitutionID *int64
	Action        string // prefix match: "member" matches "member.invite"
	ActionExact   bool   // Action is a whole code: "login" does not match "login.failed"
	Actor         string // the whole actor, case aside (index audit_events_actor)
	BeforeID      int64  // pagination: events with id < BeforeID
	Limit         int
}

// AuditEvents lists events newest first.
func (d *DB) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	q, args := auditQuery(f)
	var out []AuditEvent
	err := d.R.SelectContext(ctx, &out, q, args...)
	return out, err
}

// auditQuery is the statement AuditEvents runs for f, and its arguments.
func auditQuery(f AuditFilter) (string, []any) {
	q := `SELECT id, at, actor_user_id, actor, institution_id, action, target, client_ip, detail
	      FROM audit_events WHERE 1=1`
	var args []any
	actor := strings.TrimSpace(f.Actor)
	if f.InstitutionID != nil && actor != "" {
		// One person's events, then those of the institution: the "+"
		// keeps the planner off audit_events_institution, which would read
		// every event of the institution to find the person's few.
		q += ` AND +institution_id = ?`
		args = append(args, *f.InstitutionID)
	} else if f.InstitutionID != nil {
		q += ` AND institution_id = ?`
		args = append(args, *f.InstitutionID)
	}
	if f.Action != "" && f.ActionExact {
		q += ` AND action = ?`
		args = append(args, f.Action)
	} else if f.Action != "" {
		q += ` AND action LIKE ? ESCAPE '\'`
		args = append(args, likeEscape(f.Action)+"%")
	}
	if actor != "" {
		q += ` AND actor = ? COLLATE NOCASE`
		args = append(args, actor)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	return q, args
}

func likeEscape(s string) string {
	r := make([]rune, 0, len(s))
	for _, c := range s {
		if c == '%' || c == '_' || c == '\\' {
			r = append(r, '\\')
		}
		r = append(r, c)
	}
	return string(r)
}
