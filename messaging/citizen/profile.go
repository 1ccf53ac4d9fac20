package citizen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/preferences"
	"sportello/templates/i18n"
)

// Languages a profile may prefer (IO's list).
var profileLanguages = []string{"it_IT", "en_GB", "de_DE", "fr_FR", "es_ES"}

// Profile is IO's citizen profile as the API shows it.
type Profile struct {
	FiscalCode                 string              `json:"fiscal_code"`
	Email                      string              `json:"email,omitempty"`
	IsEmailEnabled             bool                `json:"is_email_enabled"`
	IsEmailValidated           bool                `json:"is_email_validated"`
	IsInboxEnabled             bool                `json:"is_inbox_enabled"`
	IsWebhookEnabled           bool                `json:"is_webhook_enabled"`
	PreferredLanguages         []string            `json:"preferred_languages"`
	AcceptedTosVersion         int                 `json:"accepted_tos_version"`
	BlockedInboxOrChannels     map[string][]string `json:"blocked_inbox_or_channels"`
	ServicePreferencesSettings Settings            `json:"service_preferences_settings"`
	Version                    int                 `json:"version"`
}

// Settings is service_preferences_settings.
type Settings struct {
	Mode    string `json:"mode"`
	Version int    `json:"version"`
}

type profileRow struct {
	FiscalCode         string    `db:"fiscal_code"`
	Email              string    `db:"email"`
	IsEmailEnabled     bool      `db:"is_email_enabled"`
	IsEmailValidated   bool      `db:"is_email_validated"`
	IsInboxEnabled     bool      `db:"is_inbox_enabled"`
	IsWebhookEnabled   bool      `db:"is_webhook_enabled"`
	PreferredLanguages string    `db:"preferred_languages"`
	AcceptedTosVersion int       `db:"accepted_tos_version"`
	Blocked            string    `db:"blocked_inbox_or_channels"`
	Mode               string    `db:"preferences_mode"`
	PrefVersion        int       `db:"preferences_version"`
	Version            int       `db:"version"`
	CreatedAt          time.Time `db:"created_at"`
	UpdatedAt          time.Time `db:"updated_at"`
}

func (p *profileRow) api() Profile {
	out := Profile{FiscalCode: p.FiscalCode, Email: p.Email, IsEmailEnabled: p.IsEmailEnabled, IsEmailValidated: p.IsEmailValidated,
		IsInboxEnabled: p.IsInboxEnabled, IsWebhookEnabled: p.IsWebhookEnabled, AcceptedTosVersion: p.AcceptedTosVersion,
		ServicePreferencesSettings: Settings{Mode: p.Mode, Version: p.PrefVersion}, Version: p.Version,
		PreferredLanguages: []string{}, BlockedInboxOrChannels: map[string][]string{}}
	_ = json.Unmarshal([]byte(p.PreferredLanguages), &out.PreferredLanguages)
	_ = json.Unmarshal([]byte(p.Blocked), &out.BlockedInboxOrChannels)
	return out
}

const profileCols = `fiscal_code, email, is_email_enabled, is_email_validated, is_inbox_enabled, is_webhook_enabled,
	preferred_languages, accepted_tos_version, blocked_inbox_or_channels, preferences_mode, preferences_version,
	version, created_at, updated_at`

func loadProfile(ctx context.Context, q sqlx.QueryerContext, fc string) (*profileRow, error) {
	var p profileRow
	if err := sqlx.GetContext(ctx, q, &p, `SELECT `+profileCols+` FROM profiles WHERE fiscal_code = ?`, fc); err != nil {
		return nil, db.NotFound(err)
	}
	return &p, nil
}

// ProfileUpdate is the PUT body: absent fields keep their value (all of
// them take IO's defaults on the first PUT). Version, when given, must
// match the stored one (optimistic concurrency, 409 otherwise).
type ProfileUpdate struct {
	Email                      *string              `json:"email"`
	IsEmailEnabled             *bool                `json:"is_email_enabled"`
	IsInboxEnabled             *bool                `json:"is_inbox_enabled"`
	IsWebhookEnabled           *bool                `json:"is_webhook_enabled"`
	PreferredLanguages         *[]string            `json:"preferred_languages"`
	AcceptedTosVersion         *int                 `json:"accepted_tos_version"`
	BlockedInboxOrChannels     *map[string][]string `json:"blocked_inbox_or_channels"`
	ServicePreferencesSettings *struct {
		Mode string `json:"mode"`
	} `json:"service_preferences_settings"`
	Version *int `json:"version"`
}

// Errors of profile writes.
var (
	errConflict     = errors.New("version conflict")
	errNoProfile    = db.ErrNotFound
	errLegacyReturn = errors.New("cannot return to LEGACY")
)

// validate lists field problems as catalog keys.
func (u *ProfileUpdate) validate() map[string]string {
	bad := map[string]string{}
	if u.Email != nil && *u.Email != "" {
		a, err := mail.ParseAddress(*u.Email)
		if err != nil || a.Address != *u.Email || len(*u.Email) > 254 {
			bad["email"] = "citizen.field.email"
		}
	}
	if u.PreferredLanguages != nil {
		for _, l := range *u.PreferredLanguages {
			if !slices.Contains(profileLanguages, l) {
				bad["preferred_languages"] = "citizen.field.languages"
			}
		}
	}
	if u.AcceptedTosVersion != nil && *u.AcceptedTosVersion < 0 {
		bad["accepted_tos_version"] = "citizen.field.tos"
	}
	if u.BlockedInboxOrChannels != nil {
		for svc, chans := range *u.BlockedInboxOrChannels {
			if chans == nil {
				// JSON null: a list is wanted ([] blocks nothing).
				bad["blocked_inbox_or_channels."+svc] = "citizen.field.blocked_null"
			}
			for _, c := range chans {
				if c != preferences.ChannelInbox && c != preferences.ChannelEmail && c != preferences.ChannelWebhook {
					bad["blocked_inbox_or_channels"] = "citizen.field.blocked"
				}
			}
		}
	}
	if s := u.ServicePreferencesSettings; s != nil && s.Mode != preferences.Legacy && s.Mode != preferences.Auto && s.Mode != preferences.Manual {
		bad["service_preferences_settings.mode"] = "citizen.field.mode"
	}
	return bad
}

// saveProfile creates (first access) or updates the profile. A changed
// address must be validated again; a changed mode bumps the settings
// version, which invalidates per-service choices made under the old mode.
func (a *API) saveProfile(ctx context.Context, fc string, u ProfileUpdate) (*profileRow, bool, error) {
	now := a.now()
	var out *profileRow
	created := false
	err := a.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		p, err := loadProfile(ctx, tx, fc)
		if errors.Is(err, db.ErrNotFound) {
			created = true
			p = &profileRow{FiscalCode: fc, IsEmailEnabled: true, IsInboxEnabled: true, IsWebhookEnabled: true,
				PreferredLanguages: "[]", Blocked: "{}", Mode: preferences.Legacy, CreatedAt: now}
		} else if err != nil {
			return err
		}
		if !created && u.Version != nil && *u.Version != p.Version {
			return errConflict
		}
		emailChanged := u.Email != nil && *u.Email != p.Email
		if emailChanged {
			p.Email, p.IsEmailValidated = *u.Email, false
		}
		if u.IsEmailEnabled != nil {
			p.IsEmailEnabled = *u.IsEmailEnabled
		}
		if u.IsInboxEnabled != nil {
			p.IsInboxEnabled = *u.IsInboxEnabled
		}
		if u.IsWebhookEnabled != nil {
			p.IsWebhookEnabled = *u.IsWebhookEnabled
		}
		if u.PreferredLanguages != nil {
			b, _ := json.Marshal(*u.PreferredLanguages)
			p.PreferredLanguages = string(b)
		}
		if u.AcceptedTosVersion != nil {
			p.AcceptedTosVersion = *u.AcceptedTosVersion
		}
		if u.BlockedInboxOrChannels != nil {
			b, _ := json.Marshal(*u.BlockedInboxOrChannels)
			p.Blocked = string(b)
		}
		migrateBlocks := false
		if s := u.ServicePreferencesSettings; s != nil && s.Mode != p.Mode {
			// IO: once a citizen has chosen AUTO or MANUAL there is no way
			// back to LEGACY (its blocks would silently come back).
			if s.Mode == preferences.Legacy {
				return errLegacyReturn
			}
			migrateBlocks = p.Mode == preferences.Legacy && s.Mode == preferences.Auto
			p.Mode = s.Mode
			p.PrefVersion++
		}
		if !created {
			p.Version++
		}
		p.UpdatedAt = now
		_, err = tx.ExecContext(ctx, `INSERT INTO profiles (`+profileCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fiscal_code) DO UPDATE SET email = excluded.email, is_email_enabled = excluded.is_email_enabled,
			is_email_validated = excluded.is_email_validated, is_inbox_enabled = excluded.is_inbox_enabled,
			is_webhook_enabled = excluded.is_webhook_enabled, preferred_languages = excluded.preferred_languages,
			accepted_tos_version = excluded.accepted_tos_version, blocked_inbox_or_channels = excluded.blocked_inbox_or_channels,
			preferences_mode = excluded.preferences_mode, preferences_version = excluded.preferences_version,
			version = excluded.version, updated_at = excluded.updated_at`,
			p.FiscalCode, p.Email, p.IsEmailEnabled, p.IsEmailValidated, p.IsInboxEnabled, p.IsWebhookEnabled,
			p.PreferredLanguages, p.AcceptedTosVersion, p.Blocked, p.Mode, p.PrefVersion, p.Version, p.CreatedAt, p.UpdatedAt)
		if err != nil {
			return err
		}
		if migrateBlocks {
			if err := migrateLegacyBlocks(ctx, tx, p, now); err != nil {
				return err
			}
		}
		out = p
		if emailChanged && p.Email != "" {
			return a.queueValidation(ctx, tx, p)
		}
		return nil
	})
	return out, created, err
}

// legacyBlocksToPreferences turns a profile's blocked_inbox_or_channels
// into per-service preferences at its current settings version: each
// blocked service gets a preference with the blocked channels off and the
// others on. It is what IO does when a citizen leaves LEGACY for AUTO
// (MigrateServicePreferenceFromLegacy): without it AUTO's default, every
// channel on, would silently lift the blocks. Services the citizen never
// blocked keep AUTO's default; an id that names no service is skipped.
// Migration 0031 runs the same statement for profiles that switched
// before this existed.
const legacyBlocksToPreferences = `INSERT INTO service_preferences (fiscal_code, service_id, is_inbox_enabled,
		is_email_enabled, is_webhook_enabled, settings_version, updated_at)
	SELECT p.fiscal_code, s.id,
		NOT EXISTS (SELECT 1 FROM json_each(b.value) WHERE value = 'INBOX'),
		NOT EXISTS (SELECT 1 FROM json_each(b.value) WHERE value = 'EMAIL'),
		NOT EXISTS (SELECT 1 FROM json_each(b.value) WHERE value = 'WEBHOOK'),
		p.preferences_version, ?
	FROM profiles p, json_each(CASE WHEN json_valid(p.blocked_inbox_or_channels) THEN p.blocked_inbox_or_channels ELSE '{}' END) b
	JOIN services s ON s.public_id = b.key
	WHERE p.fiscal_code = ? AND json_type(b.value) = 'array' AND json_array_length(b.value) > 0
	ON CONFLICT (fiscal_code, service_id) DO UPDATE SET is_inbox_enabled = excluded.is_inbox_enabled,
		is_email_enabled = excluded.is_email_enabled, is_webhook_enabled = excluded.is_webhook_enabled,
		settings_version = excluded.settings_version, updated_at = excluded.updated_at`

// migrateLegacyBlocks runs legacyBlocksToPreferences for p, already saved
// in tx with its new mode and settings version.
func migrateLegacyBlocks(ctx context.Context, tx *sqlx.Tx, p *profileRow, now time.Time) error {
	_, err := tx.ExecContext(ctx, legacyBlocksToPreferences, now, p.FiscalCode)
	return err
}

func (a *API) getProfile(w http.ResponseWriter, r *http.Request, fc string) {
	p, err := loadProfile(r.Context(), a.db.R, fc)
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_profile")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p.api())
}

func (a *API) putProfile(w http.ResponseWriter, r *http.Request, fc string) {
	var u ProfileUpdate
	if be := decode(r, &u); be != nil {
		a.badBody(w, r, be)
		return
	}
	if bad := u.validate(); len(bad) > 0 {
		a.problem(w, r, http.StatusBadRequest, "citizen.error.invalid", a.fields(r, bad)...)
		return
	}
	p, created, err := a.saveProfile(r.Context(), fc, u)
	switch {
	case errors.Is(err, errConflict):
		a.problem(w, r, http.StatusConflict, "citizen.error.profile_version")
		return
	case errors.Is(err, errLegacyReturn):
		a.problem(w, r, http.StatusConflict, "citizen.error.legacy_return")
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, p.api())
}

func (a *API) fields(r *http.Request, bad map[string]string) []fieldProblem {
	var out []fieldProblem
	for _, f := range sortedKeys(bad) {
		out = append(out, fieldProblem{Field: f, Detail: a.cat.T(lang(r), bad[f])})
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// deleteAccount removes the profile, preferences and inbox, and deletes
// the content of every delivered or rejected message addressed to the
// citizen (statuses stay, for the senders). Messages still queued are
// rejected as USER_NOT_FOUND by the pipeline. E-mail and push notices
// still waiting for a (re)try are cancelled: a push carries the fiscal
// code and a message id, and must not reach a device after the citizen
// left (the notifier also checks the profile right before each try).
//
// The bulk of it (the inbox rows and the content of their messages, then
// of the other messages addressed to the citizen) goes first in chunks
// of deleteChunk messages, each its own transaction: in one transaction,
// a citizen with 20,000 messages held the single writer 0.3 s (2.4 s with
// a cold cache), and every gateway send waited for it. The last transaction, the one that
// removes the profile, then does every step again over what is left
// (messages that arrived meanwhile), as it did alone before. If it fails,
// the account is still there, with part of its inbox gone: the citizen
// asked for that, and asking again finishes it.
func (a *API) deleteAccount(ctx context.Context, fc string) error {
	if _, err := loadProfile(ctx, a.db.R, fc); err != nil {
		return err
	}
	for _, source := range []string{"inbox", "messages_by_recipient"} {
		for after := ""; ; {
			var n int
			if err := a.db.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error {
				var err error
				n, after, err = a.purgeChunk(ctx, tx, fc, source, after)
				return err
			}); err != nil {
				return err
			}
			if n < deleteChunk {
				break
			}
		}
	}
	now := a.now()
	return a.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := loadProfile(ctx, tx, fc); err != nil {
			return err
		}
		for _, q := range []string{
			// Delivered messages stay findable by recipient once their
			// inbox rows are gone (their content is deleted below; the
			// statuses stay, for the senders).
			`INSERT OR IGNORE INTO messages_by_recipient (fiscal_code, message_id)
				SELECT fiscal_code, message_id FROM inbox WHERE fiscal_code = ?`,
			`DELETE FROM inbox WHERE fiscal_code = ?`,
			`DELETE FROM service_preferences WHERE fiscal_code = ?`,
			`DELETE FROM profiles WHERE fiscal_code = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, fc); err != nil {
				return err
			}
		}
		// After the inbox rows were copied above, every message that has
		// notices is in messages_by_recipient.
		if _, err := tx.ExecContext(ctx, `UPDATE notifications SET status = 'FAILED', next_attempt_at = NULL,
				last_error = 'account deleted', updated_at = ?
			WHERE status = 'THROTTLED' AND message_id IN (SELECT message_id FROM messages_by_recipient WHERE fiscal_code = ?)`,
			now, fc); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE messages SET content = NULL, content_deleted_at = ?
			WHERE id IN (SELECT message_id FROM messages_by_recipient WHERE fiscal_code = ?)
				AND content IS NOT NULL AND status IN ('PROCESSED', 'REJECTED', 'FAILED')`, now, fc); err != nil {
			return err
		}
		// The citizen's mail by fiscal code, not by address: mail to an
		// earlier address goes too, another citizen's mail to a shared
		// address stays.
		if _, err := tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE fiscal_code = ?`, fc); err != nil {
			return err
		}
		return nil
	})
}

// deleteChunk is how many messages one transaction of an account
// deletion's first passes takes.
const deleteChunk = 500

// sqlPurgeNotices cancels the waiting notices of a chunk's messages (?2, a
// JSON array of ids), found by their key: with "status = 'THROTTLED'" as
// written, SQLite read every waiting notice of the platform through
// notifications_due, once a chunk (TestAccountDeletionChunksUseKeys).
const sqlPurgeNotices = `UPDATE notifications SET status = 'FAILED', next_attempt_at = NULL, last_error = 'account deleted', updated_at = ?
	WHERE +status = 'THROTTLED' AND message_id IN (SELECT value FROM json_each(?))`

// purgeChunk does deleteAccount's steps for the next deleteChunk
// messages of fc (ids above after) found in source, inbox or
// messages_by_recipient: inbox rows move to messages_by_recipient, waiting
// notices are cancelled, content is deleted. It returns how many messages
// it took and the last one's id.
func (a *API) purgeChunk(ctx context.Context, tx *sqlx.Tx, fc, source, after string) (int, string, error) {
	var ids string
	if err := tx.GetContext(ctx, &ids, `SELECT json_group_array(message_id) FROM (SELECT message_id FROM `+source+`
		WHERE fiscal_code = ? AND message_id > ? ORDER BY message_id LIMIT ?)`, fc, after, deleteChunk); err != nil {
		return 0, "", err
	}
	var list []string
	if err := json.Unmarshal([]byte(ids), &list); err != nil || len(list) == 0 {
		return 0, "", err
	}
	now := a.now()
	type step struct {
		q    string
		args []any
	}
	steps := []step{
		{sqlPurgeNotices, []any{now, ids}},
		{`UPDATE messages SET content = NULL, content_deleted_at = ?
			WHERE id IN (SELECT value FROM json_each(?)) AND content IS NOT NULL AND status IN ('PROCESSED', 'REJECTED', 'FAILED')`, []any{now, ids}},
	}
	if source == "inbox" {
		steps = append(steps,
			step{`INSERT OR IGNORE INTO messages_by_recipient (fiscal_code, message_id) SELECT ?, value FROM json_each(?)`, []any{fc, ids}},
			step{`DELETE FROM inbox WHERE fiscal_code = ? AND message_id IN (SELECT value FROM json_each(?))`, []any{fc, ids}})
	}
	for _, st := range steps {
		if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
			return 0, "", err
		}
	}
	return len(list), list[len(list)-1], nil
}

func (a *API) deleteProfile(w http.ResponseWriter, r *http.Request, fc string) {
	err := a.deleteAccount(r.Context(), fc)
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_profile")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// languageOf picks the catalog language of a stored preferred_languages.
func languageOf(raw string) string {
	var langs []string
	_ = json.Unmarshal([]byte(raw), &langs)
	for _, l := range langs {
		if s := i18n.Supported(l); s != "" {
			return s
		}
	}
	return i18n.Default
}
