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
	Actor         string // how the actor begins, case aside (index audit_events_actor)
	BeforeID      int64  // pagination: events with id < BeforeID
	Limit         int
}

// AuditEvents lists events newest first.
func (d *DB) AuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	dense := false
	if actor := strings.TrimSpace(f.Actor); actor != "" {
		// How many events the actor filter matches decides how to read
		// them: a walk of at most denseActor index entries.
		var n int
		if err := d.R.GetContext(ctx, &n, `SELECT count(*) FROM (SELECT 1 FROM audit_events
			WHERE actor >= ? COLLATE NOCASE AND actor < ? COLLATE NOCASE LIMIT ?)`, actor, actor+"\xff", denseActor); err != nil {
			return nil, err
		}
		dense = n >= denseActor
	}
	q, args := auditQuery(f, dense)
	var out []AuditEvent
	err := d.R.SelectContext(ctx, &out, q, args...)
	return out, err
}

// denseActor is the number of events matching the actor filter from
// which they are read newest first through the log itself rather than
// through the actor index. The index gives them in actor order, to be
// sorted by time: cheap for one person's 20 events, 70 ms for the 50,000
// of an address under attack, where walking the log from its newest
// event meets the first page's rows after a few hundred.
const denseActor = 2000

// auditQuery is the statement AuditEvents runs for f, and its arguments;
// dense says the actor filter matches at least denseActor events.
func auditQuery(f AuditFilter, dense bool) (string, []any) {
	q := `SELECT id, at, actor_user_id, actor, institution_id, action, target, client_ip, detail
	      FROM audit_events WHERE 1=1`
	var args []any
	actor := strings.TrimSpace(f.Actor)
	// byActor: the actor index leads, and a "+" keeps the planner off the
	// indexes of the other filters, which would read every event of an
	// institution or an action to find one person's few.
	byActor := actor != "" && !dense
	plus := ""
	if byActor {
		plus = "+"
	}
	if f.InstitutionID != nil {
		q += ` AND ` + plus + `institution_id = ?`
		args = append(args, *f.InstitutionID)
	}
	if f.Action != "" && f.ActionExact {
		q += ` AND ` + plus + `action = ?`
		args = append(args, f.Action)
	} else if f.Action != "" {
		q += ` AND action LIKE ? ESCAPE '\'`
		args = append(args, likeEscape(f.Action)+"%")
	}
	if actor != "" {
		// A prefix as a range of the NOCASE index: every actor that
		// begins with the text (ASCII case aside) sorts between the text
		// and the text followed by 0xFF, a byte no UTF-8 text holds.
		// Typing "anna" finds anna.rossi@…; the whole address finds only
		// that person (or an address that extends it). A "contains"
		// match, as before, cannot use an index and read the whole log.
		col := "actor"
		if !byActor {
			col = "+actor"
		}
		q += ` AND ` + col + ` >= ? COLLATE NOCASE AND ` + col + ` < ? COLLATE NOCASE`
		args = append(args, actor, actor+"\xff")
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
