package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/channels"
	"sportello/messaging/fiscalcode"
	"sportello/templates/i18n"
)

// Channel statuses (IO's names). A notice waiting for its first attempt is
// THROTTLED with zero attempts, as IO shows a not-yet-delivered channel.
const (
	NoticeSent      = "SENT"
	NoticeThrottled = "THROTTLED"
	NoticeExpired   = "EXPIRED"
	NoticeFailed    = "FAILED"
)

// notice is one due e-mail or push notification.
type notice struct {
	MessageID     string    `db:"message_id"`
	Channel       string    `db:"channel"`
	Attempts      int       `db:"attempts"`
	CreatedAt     time.Time `db:"created_at"`
	TTL           int64     `db:"time_to_live"`
	FiscalCode    string    `db:"fiscal_code"`
	Content       *string   `db:"content"`
	Secure        bool      `db:"require_secure_channels"`
	ServicePublic string    `db:"public_id"`
	ServiceName   string    `db:"service_name"`
	Email         *string   `db:"email"`
	EmailOK       *bool     `db:"email_ok"`
	Languages     *string   `db:"preferred_languages"`
}

type noticeResult struct {
	n      notice
	status string
	err    error
	// keepLastError: expired untried, the previous try's error stays.
	keepLastError bool
	next          *time.Time
	mailRow       *channels.Mail
	sentAt        *time.Time
}

// noticeChannels are the channels with notices, each sent by its own loop.
var noticeChannels = []string{ChannelEmail, ChannelWebhook}

// noticeSlots is how many attempts of one channel run at once. Each
// channel has its own: with one pool shared by both, a push receiver
// answering after the client's 10 s timeout filled every slot, and
// e-mail notices waited behind it.
const noticeSlots = 8

// noticeRecordBatch caps how many finished attempts one write records.
// Outcomes are written as attempts finish, a few per transaction when
// several finish together: a mail or push that went out is recorded within
// a write's time, so a crash right after cannot send it again (recorded
// once per round, 122 mails had reached the server while the database
// said 13, and a kill -9 sent the others again at the next start).
const noticeRecordBatch = 32

// noticeLoop sends due notices of one channel until ctx ends.
func (d *Delivery) noticeLoop(ctx context.Context, channel string) error {
	for {
		n, err := d.sendDue(ctx, channel)
		if err != nil && ctx.Err() == nil {
			d.log.Error("sending notices failed", "channel", channel, "err", err)
		}
		if n > 0 {
			continue
		}
		if !d.waitNotices(ctx, d.nkick[channel]) {
			return nil
		}
	}
}

// mailLoop sends queued mail (address validation, review decisions) until
// ctx ends, beside the notice loops rather than after them.
func (d *Delivery) mailLoop(ctx context.Context) error {
	for {
		n, err := d.SendQueuedMail(ctx)
		if err != nil && ctx.Err() == nil {
			d.log.Warn("queued mail", "err", err)
		}
		if n > 0 {
			continue
		}
		if !d.waitNotices(ctx, nil) {
			return nil
		}
	}
}

// waitNotices waits NotifyPoll or a kick; false means stop.
func (d *Delivery) waitNotices(ctx context.Context, kick <-chan struct{}) bool {
	t := time.NewTimer(d.cfg.NotifyPoll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-kick:
	case <-t.C:
	}
	return true
}

// SendDueNotices makes one attempt for every due notice (up to 200 per
// channel, the channels side by side) and records the results; it returns
// how many it handled. Run's loops do the same one channel each.
func (d *Delivery) SendDueNotices(ctx context.Context) (int, error) {
	var wg sync.WaitGroup
	ns := make([]int, len(noticeChannels))
	errs := make([]error, len(noticeChannels))
	for i, ch := range noticeChannels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ns[i], errs[i] = d.sendDue(ctx, ch)
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range ns {
		total += n
	}
	return total, errors.Join(errs...)
}

// sendDue makes one attempt for every due notice of a channel (up to 200),
// noticeSlots at a time, and records each outcome as it finishes.
func (d *Delivery) sendDue(ctx context.Context, channel string) (int, error) {
	now := d.now()
	var due []notice
	err := d.db.R.SelectContext(ctx, &due, `SELECT n.message_id, n.channel, n.attempts, m.created_at, m.time_to_live,
			m.fiscal_code, m.content, (m.require_secure_channels OR s.require_secure_channels) AS require_secure_channels,
			s.public_id, s.name AS service_name,
			p.email, (p.is_email_enabled AND p.is_email_validated) AS email_ok, p.preferred_languages
		FROM notifications n
		JOIN messages m ON m.id = n.message_id
		JOIN services s ON s.id = m.service_id
		LEFT JOIN profiles p ON p.fiscal_code = m.fiscal_code
		WHERE n.status = 'THROTTLED' AND n.next_attempt_at <= ? AND n.channel = ?
		ORDER BY n.next_attempt_at LIMIT 200`, now, channel)
	if err != nil {
		return 0, fmt.Errorf("due notices: %w", err)
	}
	if len(due) == 0 {
		return 0, nil
	}
	finished := make(chan noticeResult, len(due))
	recorded := make(chan error, 1)
	go func() { recorded <- d.recordAsFinished(context.WithoutCancel(ctx), finished) }()
	// A slow webhook or mail server must not serialise the batch.
	sem := make(chan struct{}, noticeSlots)
	var wg sync.WaitGroup
	for i := range due {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := d.attempt(ctx, now, due[i])
			if ctx.Err() != nil && r.status == NoticeThrottled && errors.Is(r.err, context.Canceled) {
				// Shutting down: an attempt cut short by the cancellation is
				// not the receiver's fault; it stays due.
				return
			}
			finished <- r
		}()
	}
	wg.Wait()
	close(finished)
	if err := <-recorded; err != nil {
		return 0, err
	}
	return len(due), nil
}

// recordAsFinished writes outcomes as they arrive: it waits for one, takes
// whatever else has finished meanwhile (up to noticeRecordBatch) and
// records them in one transaction. A failed write is returned after the
// round; its notices stay due and are tried again.
func (d *Delivery) recordAsFinished(ctx context.Context, finished <-chan noticeResult) error {
	var errs []error
	batch := make([]noticeResult, 0, noticeRecordBatch)
	for r := range finished {
		batch = append(batch[:0], r)
	more:
		for len(batch) < noticeRecordBatch {
			select {
			case r, ok := <-finished:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		if err := d.recordNotices(ctx, d.now(), batch); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// errAccountDeleted fails a notice whose citizen has no profile any more.
var errAccountDeleted = fmt.Errorf("account deleted: %w", channels.ErrPermanent)

// attempt makes one delivery attempt and classifies the result.
//
// Retries are spaced by backoff and the last one is at the end of the
// time to live: a temporary failure before it schedules the next try no
// later than expiry, and a temporary failure at or after it expires the
// notice, keeping the error. The notifier may reach that last try late (a
// busy round, a restart); within RetryMax, the longest wait between
// tries, it still makes it, later than that the notice is too old to send
// and expires untried, keeping the error of its previous try.
func (d *Delivery) attempt(ctx context.Context, now time.Time, n notice) noticeResult {
	r := noticeResult{n: n}
	expiry := n.CreatedAt.Add(time.Duration(n.TTL) * time.Second)
	if now.After(expiry.Add(d.cfg.RetryMax)) {
		r.status, r.keepLastError = NoticeExpired, true
		return r
	}
	// The account may have been deleted since the notice was read (or
	// since it was queued, if the deletion did not cancel it): a push
	// names the fiscal code and the message, and must not go out for a
	// citizen who left. Checked right before the try, on the read pool.
	var exists bool
	var err error
	panicked := false
	if qerr := d.db.R.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM profiles WHERE fiscal_code = ?)`, n.FiscalCode); qerr != nil {
		err = fmt.Errorf("profile check: %w", qerr)
	} else if !exists {
		err = errAccountDeleted
	} else {
		// The attempts run in goroutines of their own, outside supervise: a
		// panic in a channel (a mail server's odd reply hitting a bug) is
		// caught here and counts as a failed try, retried with back-off.
		panicked, err = runRecovering(ctx, func(ctx context.Context) error {
			switch n.Channel {
			case ChannelEmail:
				return d.sendEmail(ctx, now, n, &r)
			case ChannelWebhook:
				return d.sendPush(ctx, n)
			default:
				return fmt.Errorf("unknown channel %q: %w", n.Channel, channels.ErrPermanent)
			}
		})
	}
	if panicked {
		err = fmt.Errorf("channel panicked: %w", err)
	}
	last := !now.Before(expiry) // this was the try at the end of the time to live
	switch {
	case err == nil:
		r.status = NoticeSent
	case channels.Permanent(err):
		r.status, r.err = NoticeFailed, err
		if errors.Is(err, errAccountDeleted) {
			r.err = errors.New("account deleted") // as the deletion itself records it
		}
	case last:
		r.status, r.err = NoticeExpired, err
	case errors.Is(err, errNoMailer):
		// Written to mail_outbox for platform admins to read, not sent:
		// the notice is not SENT. Nothing changes until the process
		// restarts with SMTP (Run then makes these notices due at once),
		// so the next look is at the end of the time to live.
		r.err, r.status, r.next = err, NoticeThrottled, &expiry
	default:
		r.err = err
		next := now.Add(d.backoff(n.Attempts + 1))
		if next.After(expiry) {
			next = expiry
		}
		r.status, r.next = NoticeThrottled, &next
	}
	if err != nil {
		d.log.Warn("notice not delivered", "message_id", n.MessageID, "channel", n.Channel,
			"fiscal_code", fiscalcode.Mask(n.FiscalCode), "status", r.status, "err", err)
	}
	return r
}

// backoff is RetryBase doubled per attempt, capped at RetryMax.
func (d *Delivery) backoff(attempt int) time.Duration {
	b := d.cfg.RetryBase
	for i := 1; i < attempt && b < d.cfg.RetryMax; i++ {
		b *= 2
	}
	return min(b, d.cfg.RetryMax)
}

// errNoMailer is the outcome of an e-mail notice without an SMTP server:
// the mail is queued in mail_outbox, not sent.
var errNoMailer = errors.New("no SMTP server configured: the mail waits in the mail outbox")

func (d *Delivery) sendEmail(ctx context.Context, now time.Time, n notice, r *noticeResult) error {
	if n.Email == nil || *n.Email == "" || n.EmailOK == nil || !*n.EmailOK {
		return fmt.Errorf("no validated e-mail address: %w", channels.ErrPermanent)
	}
	lang := languageOf(n.Languages)
	m := channels.Mail{To: *n.Email, MessageID: n.MessageID + "@sportello",
		Subject: d.catalog.T(lang, "delivery.email.subject", n.ServiceName), Body: d.emailBody(lang, n)}
	r.mailRow = &m
	if d.mailer == nil {
		return errNoMailer
	}
	if err := d.mailer.Send(ctx, m); err != nil {
		r.mailRow = nil
		return err
	}
	r.sentAt = &now
	return nil
}

// makeQueuedNoticesDue runs at start with a mailer: e-mail notices whose
// mail waited in mail_outbox while there was no SMTP server are tried at
// once instead of at the end of their time to live.
func (d *Delivery) makeQueuedNoticesDue(ctx context.Context) error {
	if d.mailer == nil {
		return nil
	}
	now := d.now()
	return d.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE notifications SET next_attempt_at = ?
			WHERE channel = 'email' AND status = 'THROTTLED' AND next_attempt_at > ?
				AND message_id IN (SELECT message_id FROM mail_outbox
					WHERE message_id IS NOT NULL AND sent_at IS NULL AND failed_at IS NULL)`, now, now)
		return err
	})
}

// emailBody is a notice, not the message: the content stays in the inbox.
// Secure messages never get here (no e-mail for them, see preferences).
func (d *Delivery) emailBody(lang string, n notice) string {
	subject := ""
	if c, err := ParseContent(n.Content); err == nil && c != nil && !n.Secure {
		subject = c.Subject
	}
	var b strings.Builder
	b.WriteString(d.catalog.T(lang, "delivery.email.intro", n.ServiceName))
	b.WriteString("\n")
	if subject != "" {
		b.WriteString(d.catalog.T(lang, "delivery.email.subject_line", subject))
		b.WriteString("\n")
	}
	b.WriteString("\n")
	if d.cfg.BaseURL != "" {
		b.WriteString(d.catalog.T(lang, "delivery.email.read_at", strings.TrimRight(d.cfg.BaseURL, "/")+"/citizen/app/messages/"+n.MessageID))
	} else {
		b.WriteString(d.catalog.T(lang, "delivery.email.read_app"))
	}
	b.WriteString("\n")
	return b.String()
}

// languageOf picks the catalog language from preferred_languages
// (["en_GB", ...]); Italian when none matches.
func languageOf(raw *string) string {
	if raw == nil {
		return i18n.Default
	}
	var langs []string
	_ = json.Unmarshal([]byte(*raw), &langs)
	for _, l := range langs {
		if s := i18n.Supported(l); s != "" {
			return s
		}
	}
	return i18n.Default
}

// PushPayload is the body posted to the push webhook. Subject is left out
// when the message requires secure channels (an anonymous notice).
type PushPayload struct {
	MessageID   string    `json:"message_id"`
	FiscalCode  string    `json:"fiscal_code"`
	ServiceID   string    `json:"service_id"`
	ServiceName string    `json:"service_name"`
	Subject     string    `json:"subject,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

func (d *Delivery) sendPush(ctx context.Context, n notice) error {
	if d.push == nil {
		return fmt.Errorf("push not configured: %w", channels.ErrPermanent)
	}
	p := PushPayload{MessageID: n.MessageID, FiscalCode: n.FiscalCode, ServiceID: n.ServicePublic,
		ServiceName: n.ServiceName, CreatedAt: n.CreatedAt.UTC()}
	if c, err := ParseContent(n.Content); err == nil && c != nil && !n.Secure {
		p.Subject = c.Subject
	}
	body, err := json.Marshal(p)
	if err != nil {
		return errors.Join(channels.ErrPermanent, err)
	}
	return d.push.Send(ctx, n.MessageID, body)
}

// recordNotices writes finished results in one transaction.
func (d *Delivery) recordNotices(ctx context.Context, now time.Time, rs []noticeResult) error {
	return d.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		for _, r := range rs {
			lastErr := ""
			if r.err != nil {
				lastErr = truncate(r.err.Error(), 500)
			}
			attempts := r.n.Attempts
			if !r.keepLastError { // every outcome but an untried expiry was a try
				attempts++
			}
			if _, err := tx.ExecContext(ctx, `UPDATE notifications SET status = ?, attempts = ?, next_attempt_at = ?,
				last_error = CASE WHEN ? THEN last_error ELSE ? END, updated_at = ? WHERE message_id = ? AND channel = ?`,
				r.status, attempts, r.next, r.keepLastError, lastErr, now, r.n.MessageID, r.n.Channel); err != nil {
				return err
			}
			if err := recordNoticeMail(ctx, tx, now, r, lastErr); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordNoticeMail keeps mail_outbox in step with an e-mail notice: one
// row per notice, queued (with its text, for admins to read) while there
// is no SMTP server, sent (text dropped, as for queued mail, mailqueue.go)
// once a mailer took it, given up on (text and reason kept) when the
// notice failed or expired while queued. The row names the citizen, for
// account deletion and the data export (migration 0030).
func recordNoticeMail(ctx context.Context, tx *sqlx.Tx, now time.Time, r noticeResult, lastErr string) error {
	if r.n.Channel != ChannelEmail {
		return nil
	}
	if r.mailRow != nil && r.sentAt != nil {
		res, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET sent_at = ?, body = '', to_addr = ?, subject = ?
			WHERE message_id = ? AND sent_at IS NULL AND failed_at IS NULL`, now, r.mailRow.To, r.mailRow.Subject, r.n.MessageID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO mail_outbox (message_id, fiscal_code, to_addr, subject, body, created_at, sent_at)
			VALUES (?, ?, ?, ?, '', ?, ?)`, r.n.MessageID, r.n.FiscalCode, r.mailRow.To, r.mailRow.Subject, now, now)
		return err
	}
	if r.mailRow != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO mail_outbox (message_id, fiscal_code, to_addr, subject, body, created_at)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS (SELECT 1 FROM mail_outbox WHERE message_id = ?1)`,
			r.n.MessageID, r.n.FiscalCode, r.mailRow.To, r.mailRow.Subject, r.mailRow.Body, now); err != nil {
			return err
		}
	}
	if r.status == NoticeFailed || r.status == NoticeExpired {
		reason := lastErr
		if reason == "" {
			reason = "notice " + strings.ToLower(r.status)
		}
		_, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET failed_at = ?, failure = ?
			WHERE message_id = ? AND sent_at IS NULL AND failed_at IS NULL`, now, reason, r.n.MessageID)
		return err
	}
	return nil
}

// truncate cuts s to at most n bytes, at a character boundary: the text
// is stored and shown, so it must stay valid UTF-8.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
