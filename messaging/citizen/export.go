package citizen

import (
	"errors"
	"net/http"
	"time"

	"sportello/db"
)

// Export is everything Sportello stores about one citizen.
type Export struct {
	ExportedAt         time.Time            `json:"exported_at"`
	Profile            Profile              `json:"profile"`
	ServicePreferences []exportedPreference `json:"service_preferences"`
	Messages           []exportedMessage    `json:"messages"`
	Mail               []exportedMail       `json:"mail"`
}

// exportedMail is one e-mail written for the citizen: an address
// validation or a notice of a message. Its text is left out: a validation
// mail's text is the link that confirms the address, and handing it out
// here would let anyone confirm an address they cannot read (the text of
// a sent mail is not kept anyway).
type exportedMail struct {
	MessageID *string    `db:"message_id" json:"message_id,omitempty"`
	To        string     `db:"to_addr" json:"to"`
	Subject   string     `db:"subject" json:"subject"`
	CreatedAt time.Time  `db:"created_at" json:"created_at"`
	SentAt    *time.Time `db:"sent_at" json:"sent_at,omitempty"`
	FailedAt  *time.Time `db:"failed_at" json:"failed_at,omitempty"`
	Failure   *string    `db:"failure" json:"failure,omitempty"`
}

type exportedPreference struct {
	ServiceID        string    `db:"public_id" json:"service_id"`
	ServiceName      string    `db:"name" json:"service_name"`
	IsInboxEnabled   bool      `db:"is_inbox_enabled" json:"is_inbox_enabled"`
	IsEmailEnabled   bool      `db:"is_email_enabled" json:"is_email_enabled"`
	IsWebhookEnabled bool      `db:"is_webhook_enabled" json:"is_webhook_enabled"`
	SettingsVersion  int       `db:"settings_version" json:"settings_version"`
	UpdatedAt        time.Time `db:"updated_at" json:"updated_at"`
}

// exportedMessage covers every message addressed to the citizen, in the
// inbox or not (rejected ones included), with per-channel notices.
type exportedMessage struct {
	ID               string           `db:"id" json:"id"`
	ServiceID        string           `db:"public_id" json:"service_id"`
	ServiceName      string           `db:"name" json:"service_name"`
	Status           string           `db:"status" json:"status"`
	RejectionReason  *string          `db:"rejection_reason" json:"rejection_reason,omitempty"`
	Content          *string          `db:"content" json:"-"`
	ContentJSON      any              `db:"-" json:"content"`
	CreatedAt        time.Time        `db:"created_at" json:"created_at"`
	ProcessedAt      *time.Time       `db:"processed_at" json:"processed_at,omitempty"`
	ContentDeletedAt *time.Time       `db:"content_deleted_at" json:"content_deleted_at,omitempty"`
	InInbox          bool             `db:"in_inbox" json:"in_inbox"`
	IsRead           *bool            `db:"is_read" json:"is_read,omitempty"`
	IsArchived       *bool            `db:"is_archived" json:"is_archived,omitempty"`
	Notifications    []exportedNotice `db:"-" json:"notifications"`
}

type exportedNotice struct {
	MessageID string    `db:"message_id" json:"-"`
	Channel   string    `db:"channel" json:"channel"`
	Status    string    `db:"status" json:"status"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

func (a *API) export(w http.ResponseWriter, r *http.Request, fc string) {
	ctx := r.Context()
	p, err := loadProfile(ctx, a.db.R, fc)
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_profile")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	out := Export{ExportedAt: a.now(), Profile: p.api(), ServicePreferences: []exportedPreference{}, Messages: []exportedMessage{},
		Mail: []exportedMail{}}
	if err := a.db.R.SelectContext(ctx, &out.ServicePreferences, `SELECT s.public_id, s.name, p.is_inbox_enabled, p.is_email_enabled,
		p.is_webhook_enabled, p.settings_version, p.updated_at FROM service_preferences p JOIN services s ON s.id = p.service_id
		WHERE p.fiscal_code = ? ORDER BY s.name`, fc); err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.db.R.SelectContext(ctx, &out.Messages, `SELECT m.id, s.public_id, s.name, m.status, m.rejection_reason, m.content,
		m.created_at, m.processed_at, m.content_deleted_at, i.message_id IS NOT NULL AS in_inbox, i.is_read, i.is_archived
		FROM messages m JOIN services s ON s.id = m.service_id LEFT JOIN inbox i ON i.fiscal_code = m.fiscal_code AND i.message_id = m.id
		WHERE m.id IN (`+messageIDsOf+`) ORDER BY m.id`, fc, fc, fc); err != nil {
		a.serverError(w, r, err)
		return
	}
	var notices []exportedNotice
	if err := a.db.R.SelectContext(ctx, &notices, `SELECT n.message_id, n.channel, n.status, n.updated_at
		FROM notifications n WHERE n.message_id IN (`+messageIDsOf+`)`, fc, fc, fc); err != nil {
		a.serverError(w, r, err)
		return
	}
	byMsg := map[string][]exportedNotice{}
	for _, n := range notices {
		byMsg[n.MessageID] = append(byMsg[n.MessageID], n)
	}
	for i := range out.Messages {
		m := &out.Messages[i]
		m.Notifications = byMsg[m.ID]
		if m.Notifications == nil {
			m.Notifications = []exportedNotice{}
		}
		if m.Content != nil {
			m.ContentJSON = rawJSON(*m.Content)
		}
	}
	if err := a.db.R.SelectContext(ctx, &out.Mail, `SELECT message_id, to_addr, subject, created_at, sent_at, failed_at, failure
		FROM mail_outbox WHERE fiscal_code = ? ORDER BY id`, fc); err != nil {
		a.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="sportello-export.json"`)
	writeJSON(w, http.StatusOK, out)
}

// rawJSON embeds stored JSON as is.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }

// messageIDsOf selects the ids of every message addressed to a fiscal code
// (bind it three times): delivered ones through the inbox, other decided
// ones through messages_by_recipient, those still waiting for delivery
// through the outbox (small). Migration 0023 says why messages has no
// recipient index. CROSS JOIN keeps SQLite reading the outbox first: as a
// plain join its planner scanned all of messages (TestExportUsesIndexes).
const messageIDsOf = `SELECT message_id FROM inbox WHERE fiscal_code = ?
	UNION ALL SELECT message_id FROM messages_by_recipient WHERE fiscal_code = ?
	UNION ALL SELECT o.message_id FROM outbox o CROSS JOIN messages w ON w.id = o.message_id WHERE w.fiscal_code = ?`
