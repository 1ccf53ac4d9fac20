// Package deliverytest inserts institutions, services, profiles and
// accepted messages with plain SQL, the way the gateway's send path and the
// citizen API leave them, so delivery, citizen and benchmark code can be
// exercised alone.
package deliverytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/send"
)

// Service is a seeded, approved, visible service.
type Service struct {
	ID            int64
	PublicID      string
	InstitutionID int64
	Name          string
}

var seq atomic.Int64

// Institution inserts an institution and returns its id.
func Institution(ctx context.Context, d *db.DB, name string) (int64, error) {
	n := seq.Add(1)
	var id int64
	err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO institutions (name, fiscal_code, pec, created_at) VALUES (?, ?, ?, ?)`,
			name, fmt.Sprintf("%011d", n), "pec@example.it", time.Now().UTC())
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// ServiceOpts tunes a seeded service.
type ServiceOpts struct {
	RequireSecure bool
	Hidden        bool
	Draft         bool // no approved version: not listed to citizens
}

// AddService inserts a service with an approved card version.
func AddService(ctx context.Context, d *db.DB, instID int64, name string, o ServiceOpts) (Service, error) {
	s := Service{InstitutionID: instID, Name: name, PublicID: "svc" + randHex(10)}
	card, _ := json.Marshal(map[string]any{
		"name": name, "department_name": "Ufficio tributi", "description": "Avvisi e scadenze del servizio " + name,
		"scope": "LOCAL", "topic": "tasse", "web_url": "https://example.it", "privacy_url": "https://example.it/privacy",
		"email": "info@example.it", "require_secure_channels": o.RequireSecure, "max_payment_cents": 100000,
	})
	now := time.Now().UTC()
	err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO services (public_id, institution_id, name, require_secure_channels, is_visible, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, s.PublicID, instID, name, o.RequireSecure, !o.Hidden, now)
		if err != nil {
			return err
		}
		if s.ID, err = res.LastInsertId(); err != nil {
			return err
		}
		state := "approved"
		if o.Draft {
			state = "draft"
		}
		res, err = tx.ExecContext(ctx, `INSERT INTO service_versions (service_id, version_no, state, card, created_at, updated_at)
			VALUES (?, 1, ?, ?, ?, ?)`, s.ID, state, string(card), now, now)
		if err != nil {
			return err
		}
		vid, _ := res.LastInsertId()
		col := "live_version_id"
		if o.Draft {
			col = "working_version_id"
		}
		_, err = tx.ExecContext(ctx, `UPDATE services SET `+col+` = ? WHERE id = ?`, vid, s.ID)
		return err
	})
	return s, err
}

// Profile is a citizen profile as stored.
type Profile struct {
	FiscalCode     string
	Email          string
	EmailEnabled   bool
	EmailValidated bool
	InboxEnabled   bool
	WebhookEnabled bool
	Mode           string              // LEGACY, AUTO, MANUAL
	Version        int                 // preferences_version
	Blocked        map[string][]string // service public id → channels
	PreferredLangs []string
}

// DefaultProfile has every channel on, a validated address, LEGACY mode.
func DefaultProfile(fc string) Profile {
	return Profile{FiscalCode: fc, Email: "cittadino@example.it", EmailEnabled: true, EmailValidated: true,
		InboxEnabled: true, WebhookEnabled: true, Mode: "LEGACY", PreferredLangs: []string{"it_IT"}}
}

// PutProfile inserts or replaces a profile.
func PutProfile(ctx context.Context, d *db.DB, p Profile) error {
	blocked, _ := json.Marshal(p.Blocked)
	if p.Blocked == nil {
		blocked = []byte("{}")
	}
	langs, _ := json.Marshal(p.PreferredLangs)
	if p.PreferredLangs == nil {
		langs = []byte("[]")
	}
	now := time.Now().UTC()
	return d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO profiles (fiscal_code, email, is_email_enabled, is_email_validated,
			is_inbox_enabled, is_webhook_enabled, preferred_languages, blocked_inbox_or_channels, preferences_mode,
			preferences_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.FiscalCode, p.Email, p.EmailEnabled, p.EmailValidated, p.InboxEnabled, p.WebhookEnabled, string(langs),
			string(blocked), p.Mode, p.Version, now, now)
		return err
	})
}

// PutPreference stores a per-service preference.
func PutPreference(ctx context.Context, d *db.DB, fc string, serviceID int64, inbox, email, webhook bool, version int) error {
	return d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO service_preferences (fiscal_code, service_id, is_inbox_enabled,
			is_email_enabled, is_webhook_enabled, settings_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			fc, serviceID, inbox, email, webhook, version, time.Now().UTC())
		return err
	})
}

// Message is an accepted message to insert.
type Message struct {
	Service    Service
	FiscalCode string
	Mode       string // "test" or "live" (default live)
	Subject    string
	Markdown   string
	Secure     bool
	TTL        int // seconds (default 3600)
	CreatedAt  time.Time
	DueDate    string
	Payment    map[string]any
}

// NewID returns a message id as the send path makes them (send.NewID), so
// that ids compare with send.IDFloor as real ones do: the pages that read
// a time window from a floor id would miss hex ids made here.
func NewID(t time.Time) string { return send.NewID(t) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Row returns the message's id and the two INSERT statements' arguments.
func (m Message) normalized() Message {
	if m.Mode == "" {
		m.Mode = "live"
	}
	if m.TTL == 0 {
		m.TTL = 3600
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now().UTC()
	}
	if m.Subject == "" {
		m.Subject = "Avviso di scadenza della tassa sui rifiuti"
	}
	if m.Markdown == "" {
		m.Markdown = "Gentile cittadino, le ricordiamo che la **rata** della tassa sui rifiuti scade a fine mese. Può pagare online."
	}
	return m
}

// Content is the JSON content column of m.
func (m Message) Content() string {
	m = m.normalized()
	c := map[string]any{"subject": m.Subject, "markdown": m.Markdown}
	if m.Secure {
		c["require_secure_channels"] = true
	}
	if m.DueDate != "" {
		c["due_date"] = m.DueDate
	}
	if m.Payment != nil {
		c["payment_data"] = m.Payment
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// Insert statements, usable with a group committer.
const (
	InsertMessage = `INSERT INTO messages (id, service_id, institution_id, fiscal_code, mode, content, time_to_live,
		require_secure_channels, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	InsertOutbox = `INSERT INTO outbox (message_id, available_at) VALUES (?, ?)`
)

// Insert writes the message and its outbox row in one transaction, as the
// send path does, and returns the message id.
func Insert(ctx context.Context, d *db.DB, m Message) (string, error) {
	m = m.normalized()
	id := NewID(m.CreatedAt)
	err := d.WriteTx(ctx, func(tx *sqlx.Tx) error {
		return InsertTx(ctx, tx, id, m)
	})
	return id, err
}

// InsertTx is Insert inside the caller's transaction.
func InsertTx(ctx context.Context, tx sqlx.ExecerContext, id string, m Message) error {
	m = m.normalized()
	if _, err := tx.ExecContext(ctx, InsertMessage, id, m.Service.ID, m.Service.InstitutionID, m.FiscalCode, m.Mode,
		m.Content(), m.TTL, m.Secure, m.CreatedAt.UTC()); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, InsertOutbox, id, m.CreatedAt.UTC())
	return err
}
