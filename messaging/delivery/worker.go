package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

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

// loop runs delivery as two stages until ctx ends: this goroutine claims
// and decides batch k+1 while record writes batch k, so the single writer
// is never idle waiting for reads, and only one batch at a time holds it.
func (d *Delivery) loop(ctx context.Context) error {
	toRecord := make(chan []outcome)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.recorder(ctx, toRecord, d.record)
	}()
	defer func() {
		close(toRecord)
		<-recorded
	}()
	for {
		outs, err := d.claimAndDecide(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			d.log.Error("delivery: claim batch", "err", err)
			if !d.sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if len(outs) == 0 {
			if !d.sleep(ctx, d.cfg.PollInterval) {
				return nil
			}
			continue
		}
		select {
		case toRecord <- outs:
		case <-ctx.Done():
			d.claims.release(outs)
			return nil
		}
		if len(outs) < d.cfg.BatchSize && !d.sleep(ctx, d.cfg.BatchPause) {
			return nil
		}
	}
}

// recorder writes the batches the loop hands over until the channel
// closes. It runs in a goroutine of its own, outside supervise, so a panic
// in record is caught here and treated as a failed write: the batch's
// claims are released (its rows stay in the outbox for the next pass),
// the loop backs off, and the process goes on.
func (d *Delivery) recorder(ctx context.Context, batches <-chan []outcome, record func(context.Context, []outcome) error) {
	for outs := range batches {
		// Once claimed, finish the batch even if shutdown starts: the
		// write is short, and a finished batch spares the next run work.
		panicked, err := runRecovering(context.WithoutCancel(ctx), func(ctx context.Context) error { return record(ctx, outs) })
		d.claims.release(outs)
		if err != nil {
			if panicked {
				err = fmt.Errorf("panicked: %w", err)
			}
			d.log.Error("delivery: record batch", "err", err)
			d.sleep(ctx, time.Second) // and the next batch waits: back off
		}
	}
}

// claims are the outbox rows this process has taken into a batch and not
// yet recorded: the next claim skips them, so two batches in flight never
// hold the same message. They are kept in memory, not written: an outbox
// row is deleted in the transaction that records its outcome, so after a
// crash or restart nothing is claimed and every row still in the outbox is
// simply processed again (every effect is idempotent). A lease column
// written per batch cost a write transaction per batch on the writer the
// gateway's sends wait for (docs/benchmarks.md).
type claims struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

// held returns the claimed ids as a JSON list, for sqlClaim to skip.
func (c *claims) held() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids jsonRows
	for id := range c.ids {
		ids.add(id)
	}
	return ids.String()
}

func (c *claims) take(jobs []job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string]struct{}{}
	}
	for _, j := range jobs {
		c.ids[j.ID] = struct{}{}
	}
}

func (c *claims) release(outs []outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range outs {
		delete(c.ids, o.job.ID)
	}
}

// claim takes up to BatchSize due outbox rows that no batch in flight
// holds, with what the decision needs about each message, in one read.
//
// The claimed set is copied before the query starts its read snapshot: a
// row released after the copy was recorded (its outbox row deleted) before
// the snapshot began, so the query cannot return it again.
func (d *Delivery) claim(ctx context.Context) ([]job, error) {
	d.claimMu.Lock()
	defer d.claimMu.Unlock()
	var jobs []job
	if err := d.db.R.SelectContext(ctx, &jobs, sqlClaim, d.now(), d.claims.held(), d.cfg.BatchSize); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	d.claims.take(jobs)
	return jobs, nil
}

// claimAndDecide claims a batch and decides it; on failure nothing stays
// claimed.
func (d *Delivery) claimAndDecide(ctx context.Context) ([]outcome, error) {
	jobs, err := d.claim(ctx)
	if err != nil || len(jobs) == 0 {
		return nil, err
	}
	outs, err := d.decide(ctx, jobs)
	if err != nil {
		held := make([]outcome, len(jobs))
		for i, j := range jobs {
			held[i].job = j
		}
		d.claims.release(held)
		return nil, err
	}
	return outs, nil
}

// ProcessBatch claims, decides and records one batch and returns its size.
// Exposed for tests; Run does the same in two stages.
func (d *Delivery) ProcessBatch(ctx context.Context) (int, error) {
	outs, err := d.claimAndDecide(ctx)
	if err != nil || len(outs) == 0 {
		return 0, err
	}
	defer d.claims.release(outs)
	if err := d.record(context.WithoutCancel(ctx), outs); err != nil {
		return len(outs), err
	}
	return len(outs), nil
}

// job is one claimed message with what the decision needs.
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

// decide reads the batch's profiles and preferences from the read pool and
// applies IO's rules.
func (d *Delivery) decide(ctx context.Context, jobs []job) ([]outcome, error) {
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
