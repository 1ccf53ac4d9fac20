package send

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"sportello/db"
	"sportello/messaging/preferences"
)

// LimitedProfile is IO's answer to a profile look-up: only what a sender
// needs, never the citizen's contacts.
type LimitedProfile struct {
	SenderAllowed      bool     `json:"sender_allowed"`
	PreferredLanguages []string `json:"preferred_languages"`
}

// Profile answers whether the service may write to the citizen. As in IO,
// a missing profile or a disabled inbox is db.ErrNotFound.
func (s *Store) Profile(ctx context.Context, from Sender, fiscalCode string) (*LimitedProfile, error) {
	var p struct {
		Inbox   bool   `db:"is_inbox_enabled"`
		Email   bool   `db:"is_email_enabled"`
		EmailOK bool   `db:"is_email_validated"`
		Webhook bool   `db:"is_webhook_enabled"`
		Langs   string `db:"preferred_languages"`
		Blocked string `db:"blocked_inbox_or_channels"`
		Mode    string `db:"preferences_mode"`
		Version int    `db:"preferences_version"`
	}
	err := s.qProfile.GetContext(ctx, &p, fiscalCode)
	if err != nil {
		return nil, db.NotFound(err)
	}
	if !p.Inbox {
		return nil, db.ErrNotFound
	}
	prof := &preferences.Profile{IsInboxEnabled: p.Inbox, IsEmailEnabled: p.Email, IsEmailValidated: p.EmailOK,
		IsWebhookEnabled: p.Webhook, Mode: p.Mode, Version: p.Version}
	if err := json.Unmarshal([]byte(p.Blocked), &prof.Blocked); err != nil {
		return nil, fmt.Errorf("send: profile blocked channels: %w", err)
	}
	var sp struct {
		Inbox   bool `db:"is_inbox_enabled"`
		Email   bool `db:"is_email_enabled"`
		Webhook bool `db:"is_webhook_enabled"`
		Version int  `db:"settings_version"`
	}
	var pref *preferences.ServicePreference
	err = s.qPreference.GetContext(ctx, &sp, fiscalCode, from.ServiceID)
	switch {
	case err == nil:
		pref = &preferences.ServicePreference{IsInboxEnabled: sp.Inbox, IsEmailEnabled: sp.Email,
			IsWebhookEnabled: sp.Webhook, SettingsVersion: sp.Version}
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("send: service preference: %w", err)
	}
	d := preferences.Decide(prof, from.ServicePublicID, pref, from.RequireSecureChannels)
	out := &LimitedProfile{SenderAllowed: d.Inbox, PreferredLanguages: []string{}}
	if err := json.Unmarshal([]byte(p.Langs), &out.PreferredLanguages); err != nil {
		return nil, fmt.Errorf("send: preferred languages: %w", err)
	}
	return out, nil
}
