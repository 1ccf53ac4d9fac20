package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/fiscalcode"
	"sportello/messaging/preferences"
)

// Message statuses and rejection reasons (IO's names).
const (
	StatusAccepted  = "ACCEPTED"
	StatusProcessed = "PROCESSED"
	StatusRejected  = "REJECTED"

	ReasonUserNotFound      = "USER_NOT_FOUND"
	ReasonServiceNotAllowed = "SERVICE_NOT_ALLOWED"

	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// worker leases a batch, decides and writes outcomes, until ctx ends.
func (d *Delivery) worker(ctx context.Context) error {
	for {
		n, err := d.ProcessBatch(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.Error("delivery batch failed", "err", err)
			if !d.sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if n >= d.cfg.BatchSize {
			continue // a backlog: go on at once
		}
		if n > 0 {
			if !d.sleep(ctx, d.cfg.BatchPause) {
				return nil
			}
			continue
		}
		// Idle: look for work with a read query so an empty outbox does not
		// take the write lock the gateway needs.
		for {
			if !d.sleep(ctx, d.cfg.PollInterval) {
				return nil
			}
			if ok, err := d.hasWork(ctx); err != nil || ok {
				break
			}
		}
	}
}

func (d *Delivery) hasWork(ctx context.Context) (bool, error) {
	now := d.now()
	var n int
	err := d.db.R.GetContext(ctx, &n, `SELECT count(*) FROM (SELECT 1 FROM outbox
		WHERE available_at <= ? AND (lease_until IS NULL OR lease_until < ?) LIMIT 1)`, now, now)
	return n > 0, err
}

// lease takes up to BatchSize due rows for LeaseDuration.
func (d *Delivery) lease(ctx context.Context) ([]string, error) {
	now := d.now()
	var ids []string
	err := d.db.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error {
		return tx.SelectContext(ctx, &ids, `UPDATE outbox SET lease_until = ?, attempts = attempts + 1
			WHERE message_id IN (SELECT message_id FROM outbox
				WHERE available_at <= ? AND (lease_until IS NULL OR lease_until < ?) LIMIT ?)
			RETURNING message_id`, now.Add(d.cfg.LeaseDuration), now, now, d.cfg.BatchSize)
	})
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	return ids, nil
}

// job is one leased message with what the decision needs.
type job struct {
	ID            string    `db:"id"`
	ServiceID     int64     `db:"service_id"`
	FiscalCode    string    `db:"fiscal_code"`
	Status        string    `db:"status"`
	MsgSecure     bool      `db:"require_secure_channels"`
	CreatedAt     time.Time `db:"created_at"`
	ServicePublic string    `db:"public_id"`
	ServiceSecure bool      `db:"svc_secure"`
}

type profileRow struct {
	FiscalCode       string `db:"fiscal_code"`
	Email            string `db:"email"`
	IsEmailEnabled   bool   `db:"is_email_enabled"`
	IsEmailValidated bool   `db:"is_email_validated"`
	IsInboxEnabled   bool   `db:"is_inbox_enabled"`
	IsWebhookEnabled bool   `db:"is_webhook_enabled"`
	Blocked          string `db:"blocked_inbox_or_channels"`
	Mode             string `db:"preferences_mode"`
	Version          int    `db:"preferences_version"`
}

// Preferences converts a stored profile to the decision's input.
func (p *profileRow) preferences() *preferences.Profile {
	out := &preferences.Profile{
		IsInboxEnabled: p.IsInboxEnabled, IsEmailEnabled: p.IsEmailEnabled, IsEmailValidated: p.IsEmailValidated,
		IsWebhookEnabled: p.IsWebhookEnabled, Mode: p.Mode, Version: p.Version,
	}
	if p.Blocked != "" && p.Blocked != "{}" {
		_ = json.Unmarshal([]byte(p.Blocked), &out.Blocked) // validated on write; a bad value blocks nothing
	}
	return out
}

type prefRow struct {
	FiscalCode       string `db:"fiscal_code"`
	ServiceID        int64  `db:"service_id"`
	IsInboxEnabled   bool   `db:"is_inbox_enabled"`
	IsEmailEnabled   bool   `db:"is_email_enabled"`
	IsWebhookEnabled bool   `db:"is_webhook_enabled"`
	SettingsVersion  int    `db:"settings_version"`
}

type prefKey struct {
	fc  string
	sid int64
}

// outcome is what the write transaction records for one message.
type outcome struct {
	job     job
	status  string
	reason  *string
	decided preferences.Decision
	email   bool // an e-mail notice is due (decision and a known address)
}

// ProcessBatch leases, decides and records one batch; it returns how many
// rows it leased. Exposed for tests and the benchmark.
func (d *Delivery) ProcessBatch(ctx context.Context) (int, error) {
	ids, err := d.lease(ctx)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	outs, err := d.decide(ctx, ids)
	if err != nil {
		return len(ids), err
	}
	// Once leased, finish the batch even if shutdown starts: the write is
	// short, and a finished batch spares the next run a lease timeout.
	if err := d.record(context.WithoutCancel(ctx), outs); err != nil {
		return len(ids), err
	}
	return len(ids), nil
}

// decide reads the batch's messages, profiles and preferences from the
// read pool and applies IO's rules.
func (d *Delivery) decide(ctx context.Context, ids []string) ([]outcome, error) {
	q, args, err := sqlx.In(`SELECT m.id, m.service_id, m.fiscal_code, m.status, m.require_secure_channels, m.created_at,
			s.public_id, s.require_secure_channels AS svc_secure
		FROM messages m JOIN services s ON s.id = m.service_id WHERE m.id IN (?)`, ids)
	if err != nil {
		return nil, err
	}
	var jobs []job
	if err := d.db.R.SelectContext(ctx, &jobs, q, args...); err != nil {
		return nil, fmt.Errorf("load messages: %w", err)
	}
	fcs := make([]string, 0, len(jobs))
	seen := map[string]bool{}
	for _, j := range jobs {
		if !seen[j.FiscalCode] {
			seen[j.FiscalCode] = true
			fcs = append(fcs, j.FiscalCode)
		}
	}
	profiles := map[string]*profileRow{}
	prefs := map[prefKey]*prefRow{}
	if len(fcs) > 0 {
		q, args, _ := sqlx.In(`SELECT fiscal_code, email, is_email_enabled, is_email_validated, is_inbox_enabled,
			is_webhook_enabled, blocked_inbox_or_channels, preferences_mode, preferences_version
			FROM profiles WHERE fiscal_code IN (?)`, fcs)
		var ps []profileRow
		if err := d.db.R.SelectContext(ctx, &ps, q, args...); err != nil {
			return nil, fmt.Errorf("load profiles: %w", err)
		}
		for i := range ps {
			profiles[ps[i].FiscalCode] = &ps[i]
		}
		q, args, _ = sqlx.In(`SELECT fiscal_code, service_id, is_inbox_enabled, is_email_enabled, is_webhook_enabled, settings_version
			FROM service_preferences WHERE fiscal_code IN (?)`, fcs)
		var rs []prefRow
		if err := d.db.R.SelectContext(ctx, &rs, q, args...); err != nil {
			return nil, fmt.Errorf("load preferences: %w", err)
		}
		for i := range rs {
			prefs[prefKey{rs[i].FiscalCode, rs[i].ServiceID}] = &rs[i]
		}
	}
	outs := make([]outcome, 0, len(jobs))
	for _, j := range jobs {
		o := outcome{job: j}
		if j.Status != StatusAccepted && j.Status != "THROTTLED" {
			o.status = j.Status // already decided (should not happen: the outbox row goes in the same tx)
			outs = append(outs, o)
			continue
		}
		p := profiles[j.FiscalCode]
		if p == nil {
			o.status, o.reason = StatusRejected, ptr(ReasonUserNotFound)
			outs = append(outs, o)
			continue
		}
		var sp *preferences.ServicePreference
		if r := prefs[prefKey{j.FiscalCode, j.ServiceID}]; r != nil {
			sp = &preferences.ServicePreference{IsInboxEnabled: r.IsInboxEnabled, IsEmailEnabled: r.IsEmailEnabled,
				IsWebhookEnabled: r.IsWebhookEnabled, SettingsVersion: r.SettingsVersion}
		}
		o.decided = preferences.Decide(p.preferences(), j.ServicePublic, sp, j.MsgSecure || j.ServiceSecure)
		if !o.decided.Inbox {
			o.status, o.reason = StatusRejected, ptr(ReasonServiceNotAllowed)
		} else {
			o.status = StatusProcessed
			o.email = o.decided.Email && p.Email != ""
			o.decided.Webhook = o.decided.Webhook && d.push != nil
		}
		outs = append(outs, o)
	}
	return outs, nil
}

func ptr(s string) *string { return &s }

// record writes every outcome of a batch in one short transaction.
func (d *Delivery) record(ctx context.Context, outs []outcome) error {
	if err := d.ensureStatements(ctx); err != nil {
		return err
	}
	now := d.now()
	notified := false
	err := d.db.WriteTxNoSync(ctx, func(tx *sqlx.Tx) error {
		setStatus := tx.StmtContext(ctx, d.stmts.setStatus)
		inbox := tx.StmtContext(ctx, d.stmts.inbox)
		inboxHas := tx.StmtContext(ctx, d.stmts.inboxHas)
		notify := tx.StmtContext(ctx, d.stmts.notify)
		unqueue := tx.StmtContext(ctx, d.stmts.unqueue)
		byRecipient := tx.StmtContext(ctx, d.stmts.byRecipient)
		for i := range outs {
			o := &outs[i]
			j := o.job
			if o.status == StatusProcessed {
				res, err := inbox.ExecContext(ctx, j.ID, j.FiscalCode, j.ServiceID, now, j.FiscalCode)
				if err != nil {
					return fmt.Errorf("inbox %s: %w", j.ID, err)
				}
				if n, _ := res.RowsAffected(); n == 0 {
					var has int
					if err := inboxHas.QueryRowContext(ctx, j.ID).Scan(&has); err != nil {
						return err
					}
					if has == 0 { // the profile went away since the decision
						o.status, o.reason, o.email, o.decided = StatusRejected, ptr(ReasonUserNotFound), false, preferences.Decision{}
					}
				}
			}
			if o.status == StatusProcessed || o.status == StatusRejected {
				if o.job.Status == StatusAccepted || o.job.Status == "THROTTLED" {
					if _, err := setStatus.ExecContext(ctx, o.status, o.reason, now, j.ID); err != nil {
						return fmt.Errorf("status %s: %w", j.ID, err)
					}
				}
			}
			if o.status == StatusProcessed {
				for _, ch := range []struct {
					on   bool
					name string
				}{{o.email, ChannelEmail}, {o.decided.Webhook, ChannelWebhook}} {
					if !ch.on {
						continue
					}
					if _, err := notify.ExecContext(ctx, j.ID, ch.name, now, now); err != nil {
						return fmt.Errorf("notification %s: %w", j.ID, err)
					}
					notified = true
				}
			}
			// A delivered message is found by its recipient through the
			// inbox; any other outcome through messages_by_recipient.
			if o.status != StatusProcessed {
				if _, err := byRecipient.ExecContext(ctx, j.FiscalCode, j.ID); err != nil {
					return fmt.Errorf("recipient %s: %w", j.ID, err)
				}
			}
			if _, err := unqueue.ExecContext(ctx, j.ID); err != nil {
				return fmt.Errorf("unqueue %s: %w", j.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record outcomes: %w", err)
	}
	for _, o := range outs {
		if o.status == StatusRejected {
			d.log.Debug("message rejected", "message_id", o.job.ID, "fiscal_code", fiscalcode.Mask(o.job.FiscalCode), "reason", *o.reason)
		}
	}
	if notified {
		d.wakeNotifier()
	}
	return nil
}
