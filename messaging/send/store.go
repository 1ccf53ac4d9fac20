package send

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
)

// Sender is who sends: what the gateway knows about the authenticated key.
type Sender struct {
	ServiceID             int64
	ServicePublicID       string
	InstitutionID         int64
	Mode                  string // "test" or "live"
	RequireSecureChannels bool   // the service's setting; a message may add its own
}

// Submission is one validated message and what makes its insert unique.
type Submission struct {
	Message        *NewMessage
	IdempotencyKey string // "" when none
	BodyHash       string // SHA-256 of the request body, with IdempotencyKey
	// Extra runs in the same transaction when (and only when) a new message
	// is inserted: the gateway counts test quota there, so a counted
	// request and its message are durable together.
	Extra func(tx *Tx) error
}

// Result of a submission.
type Result struct {
	ID       string
	Replayed bool // an earlier message with the same Idempotency-Key and body
}

// ErrIdempotencyMismatch means the Idempotency-Key was used with another body.
var ErrIdempotencyMismatch = errors.New("send: idempotency key reused with a different body")

// IdempotencyWindow is how long an Idempotency-Key is remembered.
const IdempotencyWindow = 24 * time.Hour

// Look-ups of the API (profiles, message status), prepared once on the
// read pool.
const (
	qProfile = `SELECT is_inbox_enabled, is_email_enabled, is_email_validated, is_webhook_enabled,
		preferred_languages, blocked_inbox_or_channels, preferences_mode, preferences_version
		FROM profiles WHERE fiscal_code = ?`
	qPreference = `SELECT is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version
		FROM service_preferences WHERE fiscal_code = ? AND service_id = ?`
	qMessage = `SELECT id, fiscal_code, time_to_live, created_at, content, feature_level_type, status, rejection_reason
		FROM messages WHERE id = ? AND service_id = ? AND fiscal_code = ?`
	qNotifications = `SELECT channel, status FROM notifications WHERE message_id = ?`
)

// Statements run for every send, prepared once on the writer.
const (
	qFindIdem = `SELECT id, fiscal_code, body_hash, created_at FROM messages WHERE service_id = ? AND mode = ? AND idempotency_key = ?`
	qForget   = `UPDATE messages SET idempotency_key = NULL WHERE id = ?`

	qInsert = `INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live,
		feature_level_type, require_secure_channels, idempotency_key, body_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qOutbox = `INSERT INTO outbox (message_id, available_at) VALUES (?, ?)`
)

// Store writes messages through a group committer and reads them back.
type Store struct {
	d   *db.DB
	gc  *Pipeline
	now func() time.Time
	// Read statements of the hot look-ups, prepared once on the read pool
	// (database/sql then prepares each on a connection once): preparing on
	// every request was a third of a profile look-up's CPU.
	qProfile, qPreference, qMessage, qNotifications, qFindIdem *sqlx.Stmt
}

// NewStore prepares the hot statements on gc; call before traffic starts.
func NewStore(ctx context.Context, d *db.DB, gc *Pipeline, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if err := gc.Prepare(ctx, qFindIdem, qForget, qInsert, qOutbox); err != nil {
		return nil, fmt.Errorf("send: prepare: %w", err)
	}
	s := &Store{d: d, gc: gc, now: now}
	for _, st := range []struct {
		dst   **sqlx.Stmt
		query string
	}{
		{&s.qProfile, qProfile}, {&s.qPreference, qPreference}, {&s.qMessage, qMessage}, {&s.qNotifications, qNotifications},
		{&s.qFindIdem, qFindIdem},
	} {
		prepared, err := d.R.PreparexContext(ctx, st.query)
		if err != nil {
			return nil, fmt.Errorf("send: prepare: %w", err)
		}
		*st.dst = prepared
	}
	return s, nil
}

// Submit stores a validated message and its outbox row. It returns only
// after the transaction holding them committed (synchronous=FULL: fsynced),
// so a nil error means the message survives a power cut.
func (s *Store) Submit(ctx context.Context, from Sender, sub Submission) (Result, error) {
	m := sub.Message
	content, err := contentJSON(m.Content)
	if err != nil {
		return Result{}, fmt.Errorf("send: encode content: %w", err)
	}
	now := s.now().UTC()
	id := NewID(now)
	secure := from.RequireSecureChannels || m.Content.RequireSecureChannels
	var idem, hash any
	if sub.IdempotencyKey != "" {
		idem, hash = sub.IdempotencyKey, sub.BodyHash
	}
	var res Result
	var mismatch bool
	err = s.gc.Do(ctx, func(tx *Tx) error {
		// The op may run again if another op of the batch fails: reset.
		res, mismatch = Result{}, false
		if sub.IdempotencyKey != "" {
			// Looked up inside the shared transaction, so a concurrent retry
			// in the same batch sees the first one's uncommitted row.
			var prev earlier
			err := tx.QueryRow(qFindIdem, from.ServiceID, from.Mode, sub.IdempotencyKey).Scan(&prev.id, &prev.fiscalCode, &prev.bodyHash, &prev.at)
			switch {
			case err == nil && now.Sub(prev.at) < IdempotencyWindow:
				res, mismatch = prev.answer(sub)
				return nil
			case err == nil: // expired: the key may be used again
				if _, err := tx.Exec(qForget, prev.id); err != nil {
					return err
				}
			case !errors.Is(err, sql.ErrNoRows):
				return err
			}
		}
		if _, err := tx.Exec(qInsert, id, from.ServiceID, from.InstitutionID, m.FiscalCode, from.Mode, content,
			*m.TimeToLive, m.FeatureLevelType, secure, idem, hash, now); err != nil {
			return err
		}
		if _, err := tx.Exec(qOutbox, id, now); err != nil {
			return err
		}
		if sub.Extra != nil {
			if err := sub.Extra(tx); err != nil {
				return err
			}
		}
		res = Result{ID: id}
		return nil
	})
	if err != nil {
		return Result{}, fmt.Errorf("send: submit: %w", err)
	}
	if mismatch {
		return Result{}, ErrIdempotencyMismatch
	}
	return res, nil
}

// earlier is the message an Idempotency-Key was first used for.
type earlier struct {
	id, fiscalCode, bodyHash string
	at                       time.Time
}

// answer is what a request with the same key gets: a retry (same body,
// same recipient: the path's fiscal code is not in the body hash) the
// earlier message's id, anything else a mismatch.
func (e earlier) answer(sub Submission) (Result, bool) {
	if e.bodyHash != sub.BodyHash || e.fiscalCode != sub.Message.FiscalCode {
		return Result{}, true
	}
	return Result{ID: e.id, Replayed: true}, false
}

// Replay answers a request whose Idempotency-Key was already used, from
// the read pool, before anything is reserved or queued for the writer: a
// retry costs no quota unit and no write. found is false when the key is
// unknown or expired; Submit then decides inside its transaction, which
// also catches a first request that committed after this look-up.
func (s *Store) Replay(ctx context.Context, from Sender, sub Submission) (res Result, found bool, err error) {
	if sub.IdempotencyKey == "" {
		return Result{}, false, nil
	}
	var prev earlier
	err = s.qFindIdem.QueryRowContext(ctx, from.ServiceID, from.Mode, sub.IdempotencyKey).Scan(&prev.id, &prev.fiscalCode, &prev.bodyHash, &prev.at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Result{}, false, nil
	case err != nil:
		return Result{}, false, fmt.Errorf("send: idempotency look-up: %w", err)
	case s.now().UTC().Sub(prev.at) >= IdempotencyWindow:
		return Result{}, false, nil
	}
	res, mismatch := prev.answer(sub)
	if mismatch {
		return Result{}, true, ErrIdempotencyMismatch
	}
	// The earlier message is committed, but its batch may still wait for
	// its fsync (the first request's 201 waits for it too). A 201 means on
	// disk, so the retry waits for an fsync that starts after this read;
	// the syncer gives one without the writer.
	if err := s.gc.Sync(ctx); err != nil {
		return Result{}, false, fmt.Errorf("send: idempotency sync: %w", err)
	}
	return res, true, nil
}

// Stored is a message as GET /messages/{fiscal_code}/{id} shows it.
type Stored struct {
	Message      StoredMessage     `json:"message"`
	Notification map[string]string `json:"notification"`
	Status       string            `json:"status"`
	// RejectionReason is set with status REJECTED.
	RejectionReason string `json:"rejection_reason,omitempty"`
}

// StoredMessage is IO's CreatedMessageWithContent.
type StoredMessage struct {
	ID               string          `json:"id"`
	FiscalCode       string          `json:"fiscal_code"`
	TimeToLive       int64           `json:"time_to_live"`
	CreatedAt        Timestamp       `json:"created_at"`
	Content          json.RawMessage `json:"content,omitempty"`
	SenderServiceID  string          `json:"sender_service_id"`
	FeatureLevelType string          `json:"feature_level_type"`
}

// Timestamp is a time as IO writes it in its answers: UTC with exactly
// three fractional digits ("2026-12-03T16:05:09.120Z"). Go's default
// writes nanoseconds and drops trailing zeros, which some clients' date
// parsers refuse (Python's before 3.11 takes 3 or 6 digits only).
type Timestamp time.Time

// MarshalJSON writes t in IO's format.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z") + `"`), nil
}

// Get reads a message of the given service; another service's message, or
// one addressed to another fiscal code, is db.ErrNotFound.
func (s *Store) Get(ctx context.Context, from Sender, fiscalCode, id string) (*Stored, error) {
	var row struct {
		ID      string         `db:"id"`
		CF      string         `db:"fiscal_code"`
		TTL     int64          `db:"time_to_live"`
		Created time.Time      `db:"created_at"`
		Content sql.NullString `db:"content"`
		Feature string         `db:"feature_level_type"`
		Status  string         `db:"status"`
		Reason  sql.NullString `db:"rejection_reason"`
	}
	err := s.qMessage.GetContext(ctx, &row, id, from.ServiceID, fiscalCode)
	if err != nil {
		return nil, db.NotFound(err)
	}
	out := &Stored{Status: row.Status, Notification: map[string]string{}, RejectionReason: row.Reason.String,
		Message: StoredMessage{ID: row.ID, FiscalCode: row.CF, TimeToLive: row.TTL, CreatedAt: Timestamp(row.Created),
			SenderServiceID: from.ServicePublicID, FeatureLevelType: row.Feature}}
	if row.Content.Valid {
		out.Message.Content = json.RawMessage(row.Content.String)
	}
	var notes []struct {
		Channel string `db:"channel"`
		Status  string `db:"status"`
	}
	if err := s.qNotifications.SelectContext(ctx, &notes, id); err != nil {
		return nil, fmt.Errorf("send: notifications: %w", err)
	}
	for _, n := range notes {
		out.Notification[n.Channel] = n.Status
	}
	return out, nil
}
