package citizen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/jmoiron/sqlx"

	"sportello/db"
	"sportello/messaging/preferences"
)

type serviceRow struct {
	ID         int64  `db:"id"`
	PublicID   string `db:"public_id"`
	Secure     bool   `db:"require_secure_channels"`
	MaxPayment int64  `db:"max_payment_cents"`
	Card       string `db:"card"`
	OrgName    string `db:"org_name"`
	OrgCode    string `db:"org_code"`
	// CardName is the card's name read alone, without the card (the app
	// page's list, which needs nothing else of it).
	CardName string `db:"card_name"`
}

// Visible approved services: the version in force (live_version_id) of
// services neither hidden, suspended nor deleted, of active institutions.
const visibleServices = `SELECT s.id, s.public_id, s.require_secure_channels, s.max_payment_cents, v.card,
		i.name AS org_name, i.fiscal_code AS org_code` + visibleFrom

const visibleFrom = `
	FROM services s
	JOIN service_versions v ON v.id = s.live_version_id
	JOIN institutions i ON i.id = s.institution_id
	WHERE s.is_visible = 1 AND s.deleted_at IS NULL AND s.suspended_at IS NULL AND i.status = 'active'`

// visibleOrder is the order of the citizens' list.
const visibleOrder = ` ORDER BY s.name COLLATE NOCASE, s.id`

// card is the service as citizens see it: the card fields (IO's names)
// plus the organisation and the service id.
func (s *serviceRow) card() map[string]any {
	out := map[string]any{}
	_ = json.Unmarshal([]byte(s.Card), &out)
	out["service_id"] = s.PublicID
	out["organization_name"] = s.OrgName
	out["organization_fiscal_code"] = s.OrgCode
	out["require_secure_channels"] = s.Secure
	out["max_payment_cents"] = s.MaxPayment
	return out
}

func (s *serviceRow) name() string {
	if s.CardName != "" {
		return s.CardName
	}
	var c struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal([]byte(s.Card), &c)
	return c.Name
}

func (a *API) visibleServices(ctx context.Context) ([]serviceRow, error) {
	var rows []serviceRow
	err := a.db.R.SelectContext(ctx, &rows, visibleServices+visibleOrder)
	return rows, err
}

// visibleServiceNames is visibleServices with, of the card, only its name
// (CardName): reading and decoding every card took half the time of an
// app page with 2,000 services.
func (a *API) visibleServiceNames(ctx context.Context) ([]serviceRow, error) {
	var rows []serviceRow
	err := a.db.R.SelectContext(ctx, &rows, `SELECT s.id, s.public_id, s.require_secure_channels, s.max_payment_cents,
		COALESCE(CASE WHEN json_valid(v.card) THEN json_extract(v.card, '$.name') END, '') AS card_name, i.name AS org_name, i.fiscal_code AS org_code`+visibleFrom+visibleOrder)
	return rows, err
}

func (a *API) visibleService(ctx context.Context, publicID string) (*serviceRow, error) {
	var s serviceRow
	if err := a.db.R.GetContext(ctx, &s, visibleServices+` AND s.public_id = ?`, publicID); err != nil {
		return nil, db.NotFound(err)
	}
	return &s, nil
}

// reachingService is a service that can write to the citizen: approved
// (its live keys write to anyone; hidden or suspended ones too, since
// they write or may write again), or not yet approved with the citizen
// among its authorized test recipients (its test keys write to them, and
// delivery applies the citizen's preferences as for any other). Deleted
// services cannot write and are not found. The card is the one in force,
// else the draft's.
const reachingService = `SELECT s.id, s.public_id, s.require_secure_channels, s.max_payment_cents, COALESCE(v.card, '{}') AS card,
		i.name AS org_name, i.fiscal_code AS org_code
	FROM services s
	LEFT JOIN service_versions v ON v.id = COALESCE(s.live_version_id, s.working_version_id)
	JOIN institutions i ON i.id = s.institution_id
	WHERE s.public_id = ? AND s.deleted_at IS NULL AND (s.live_version_id IS NOT NULL OR EXISTS (SELECT 1
		FROM json_each(CASE WHEN json_valid(s.authorized_recipients) THEN s.authorized_recipients ELSE '[]' END)
		WHERE value = ?))`

// testServicesReaching lists the services not yet approved that have fc
// among their authorized test recipients (they can write to fc, but are
// not in the citizens' list), with their draft's card.
func (a *API) testServicesReaching(ctx context.Context, fc string) ([]serviceRow, error) {
	var rows []serviceRow
	err := a.db.R.SelectContext(ctx, &rows, `SELECT s.id, s.public_id, s.require_secure_channels, s.max_payment_cents,
			COALESCE(v.card, '{}') AS card, i.name AS org_name, i.fiscal_code AS org_code
		FROM services s
		LEFT JOIN service_versions v ON v.id = s.working_version_id
		JOIN institutions i ON i.id = s.institution_id
		WHERE s.deleted_at IS NULL AND s.live_version_id IS NULL AND EXISTS (SELECT 1
			FROM json_each(CASE WHEN json_valid(s.authorized_recipients) THEN s.authorized_recipients ELSE '[]' END)
			WHERE value = ?)
		ORDER BY s.name COLLATE NOCASE, s.id`, fc)
	return rows, err
}

// serviceReaching returns the service publicID if it can write to fc.
func (a *API) serviceReaching(ctx context.Context, publicID, fc string) (*serviceRow, error) {
	var s serviceRow
	if err := a.db.R.GetContext(ctx, &s, reachingService, publicID, fc); err != nil {
		return nil, db.NotFound(err)
	}
	return &s, nil
}

func (a *API) listServices(w http.ResponseWriter, r *http.Request, fc string) {
	rows, err := a.visibleServices(r.Context())
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(rows))
	for i := range rows {
		items = append(items, rows[i].card())
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

func (a *API) getService(w http.ResponseWriter, r *http.Request, fc string) {
	s, err := a.visibleService(r.Context(), r.PathValue("sid"))
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_service")
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.card())
}

// ServicePreference is IO's per-service preference.
type ServicePreference struct {
	IsInboxEnabled   bool `json:"is_inbox_enabled"`
	IsEmailEnabled   bool `json:"is_email_enabled"`
	IsWebhookEnabled bool `json:"is_webhook_enabled"`
	SettingsVersion  int  `json:"settings_version"`
}

// storedPreference is a row of service_preferences.
type storedPreference struct {
	ServiceID int64 `db:"service_id"`
	Inbox     bool  `db:"is_inbox_enabled"`
	Email     bool  `db:"is_email_enabled"`
	Webhook   bool  `db:"is_webhook_enabled"`
	Version   int   `db:"settings_version"`
}

// effectivePreference is what applies now: the stored choice made under
// the current settings version, else the mode's default. In LEGACY the
// answer is derived from blocked_inbox_or_channels. The bool says whether
// a stored choice applies.
func effectivePreference(ctx context.Context, q sqlx.QueryerContext, p *profileRow, s *serviceRow) (ServicePreference, bool, error) {
	if p.Mode != preferences.Auto && p.Mode != preferences.Manual {
		pref, stored := preferenceFrom(p, s, nil)
		return pref, stored, nil
	}
	var row storedPreference
	err := sqlx.GetContext(ctx, q, &row, `SELECT service_id, is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version
		FROM service_preferences WHERE fiscal_code = ? AND service_id = ?`, p.FiscalCode, s.ID)
	if errors.Is(db.NotFound(err), db.ErrNotFound) {
		pref, stored := preferenceFrom(p, s, nil)
		return pref, stored, nil
	} else if err != nil {
		return ServicePreference{SettingsVersion: p.PrefVersion}, false, err
	}
	pref, stored := preferenceFrom(p, s, &row)
	return pref, stored, nil
}

// allStoredPreferences reads every stored choice of the citizen at once,
// by service id: a page listing all services asked once per service
// (2,000 queries for one page with 2,000 services).
func allStoredPreferences(ctx context.Context, q sqlx.QueryerContext, fc string) (map[int64]*storedPreference, error) {
	var rows []storedPreference
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT service_id, is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version
		FROM service_preferences WHERE fiscal_code = ?`, fc); err != nil {
		return nil, err
	}
	out := make(map[int64]*storedPreference, len(rows))
	for i := range rows {
		out[rows[i].ServiceID] = &rows[i]
	}
	return out, nil
}

// preferenceFrom decides the preference for s from the profile and the
// stored choice (nil when there is none).
func preferenceFrom(p *profileRow, s *serviceRow, row *storedPreference) (ServicePreference, bool) {
	out := ServicePreference{SettingsVersion: p.PrefVersion}
	switch p.Mode {
	case preferences.Auto, preferences.Manual:
		if row != nil && row.Version == p.PrefVersion {
			out.IsInboxEnabled, out.IsEmailEnabled, out.IsWebhookEnabled = row.Inbox, row.Email, row.Webhook
			return out, true
		}
		def := p.Mode == preferences.Auto
		out.IsInboxEnabled, out.IsEmailEnabled, out.IsWebhookEnabled = def, def, def
	default:
		blocked := p.api().BlockedInboxOrChannels[s.PublicID]
		out.IsInboxEnabled = !slices.Contains(blocked, preferences.ChannelInbox)
		out.IsEmailEnabled = !slices.Contains(blocked, preferences.ChannelEmail)
		out.IsWebhookEnabled = !slices.Contains(blocked, preferences.ChannelWebhook)
	}
	return out, false
}

// prefContext loads the profile and the service, answering 404s. Any
// service that can write to the citizen has preferences, not only the
// listed ones: a test service writes to its authorized recipients, who
// must be able to turn it off.
func (a *API) prefContext(w http.ResponseWriter, r *http.Request, fc string) (*profileRow, *serviceRow, bool) {
	p, err := loadProfile(r.Context(), a.db.R, fc)
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_profile")
		return nil, nil, false
	}
	if err != nil {
		a.serverError(w, r, err)
		return nil, nil, false
	}
	s, err := a.serviceReaching(r.Context(), r.PathValue("sid"), fc)
	if errors.Is(err, db.ErrNotFound) {
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_service")
		return nil, nil, false
	}
	if err != nil {
		a.serverError(w, r, err)
		return nil, nil, false
	}
	return p, s, true
}

func (a *API) getPreference(w http.ResponseWriter, r *http.Request, fc string) {
	p, s, ok := a.prefContext(w, r, fc)
	if !ok {
		return
	}
	pref, _, err := effectivePreference(r.Context(), a.db.R, p, s)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pref)
}

// Errors of preference writes.
var (
	errStaleSettings = errors.New("stale settings version")
	errLegacyMode    = errors.New("per-service preferences need AUTO or MANUAL")
)

// savePreference stores a per-service choice made under settingsVersion;
// the version is checked inside the write transaction, so a mode change
// racing with this write cannot be overwritten by a stale choice.
func (a *API) savePreference(ctx context.Context, fc string, s *serviceRow, pref ServicePreference) error {
	return a.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		p, err := loadProfile(ctx, tx, fc)
		if err != nil {
			return err
		}
		if p.Mode == preferences.Legacy {
			return errLegacyMode
		}
		if pref.SettingsVersion != p.PrefVersion {
			return errStaleSettings
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO service_preferences (fiscal_code, service_id, is_inbox_enabled,
			is_email_enabled, is_webhook_enabled, settings_version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fiscal_code, service_id) DO UPDATE SET is_inbox_enabled = excluded.is_inbox_enabled,
			is_email_enabled = excluded.is_email_enabled, is_webhook_enabled = excluded.is_webhook_enabled,
			settings_version = excluded.settings_version, updated_at = excluded.updated_at`,
			fc, s.ID, pref.IsInboxEnabled, pref.IsEmailEnabled, pref.IsWebhookEnabled, pref.SettingsVersion, a.now())
		return err
	})
}

func (a *API) putPreference(w http.ResponseWriter, r *http.Request, fc string) {
	var body struct {
		IsInboxEnabled   *bool `json:"is_inbox_enabled"`
		IsEmailEnabled   *bool `json:"is_email_enabled"`
		IsWebhookEnabled *bool `json:"is_webhook_enabled"`
		SettingsVersion  *int  `json:"settings_version"`
	}
	if be := decode(r, &body); be != nil {
		a.badBody(w, r, be)
		return
	}
	bad := map[string]string{}
	for name, v := range map[string]*bool{"is_inbox_enabled": body.IsInboxEnabled, "is_email_enabled": body.IsEmailEnabled, "is_webhook_enabled": body.IsWebhookEnabled} {
		if v == nil {
			bad[name] = "citizen.field.required"
		}
	}
	if body.SettingsVersion == nil {
		bad["settings_version"] = "citizen.field.required"
	}
	if len(bad) > 0 {
		a.problem(w, r, http.StatusBadRequest, "citizen.error.invalid", a.fields(r, bad)...)
		return
	}
	_, s, ok := a.prefContext(w, r, fc)
	if !ok {
		return
	}
	pref := ServicePreference{IsInboxEnabled: *body.IsInboxEnabled, IsEmailEnabled: *body.IsEmailEnabled,
		IsWebhookEnabled: *body.IsWebhookEnabled, SettingsVersion: *body.SettingsVersion}
	err := a.savePreference(r.Context(), fc, s, pref)
	switch {
	case errors.Is(err, errStaleSettings):
		a.problem(w, r, http.StatusConflict, "citizen.error.stale_settings")
	case errors.Is(err, errLegacyMode):
		a.problem(w, r, http.StatusConflict, "citizen.error.legacy_mode")
	case errors.Is(err, db.ErrNotFound):
		a.problem(w, r, http.StatusNotFound, "citizen.error.no_profile")
	case err != nil:
		a.serverError(w, r, err)
	default:
		writeJSON(w, http.StatusOK, pref)
	}
}
