package delivery

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/channels"
)

// Mail not tied to a message (e-mail address validation, written by the
// citizen API, review outcomes written by the portal) waits in mail_outbox
// with sent_at and failed_at NULL. With SMTP configured the notifier sends
// it and keeps only the record (addressee, subject, time): a confirmation
// link must not stay readable once it is in someone's mailbox. Mail it
// gives up on (refused for good, or a mailer bug) keeps its text and gets
// the reason. Without SMTP mail stays for platform admins to read.

type queuedMail struct {
	ID      int64  `db:"id"`
	Ref     string `db:"ref"` // random, unique: the Message-ID (migration 0029)
	To      string `db:"to_addr"`
	Subject string `db:"subject"`
	Body    string `db:"body"`
}

// SendQueuedMail sends up to 50 waiting mails and records each one sent or
// given up on as soon as the mailer has answered, so a crash never sends
// again a mail that went out before it (recorded after the whole batch, a
// kill -9 re-sent the ones before it); it returns how many went out. A
// failing server pauses it for a minute.
func (d *Delivery) SendQueuedMail(ctx context.Context) (int, error) {
	if d.mailer == nil || d.now().Before(d.mailPausedUntil) {
		return 0, nil
	}
	var mails []queuedMail
	if err := d.db.R.SelectContext(ctx, &mails, `SELECT id, ref, to_addr, subject, body FROM mail_outbox
		WHERE sent_at IS NULL AND failed_at IS NULL AND message_id IS NULL ORDER BY id LIMIT 50`); err != nil {
		return 0, fmt.Errorf("queued mail: %w", err)
	}
	sent := 0
	for _, m := range mails {
		// Outside supervise's recovery, like a notice's attempt: a panic
		// in the mailer is a failed try, not a loop restart that would send
		// the mails before this one again.
		panicked, err := runRecovering(ctx, func(ctx context.Context) error {
			return d.mailer.Send(ctx, channels.Mail{To: m.To, Subject: m.Subject, Body: m.Body, MessageID: "mail-" + m.Ref + "@sportello"})
		})
		var failure string // not retried: it would fail again
		switch {
		case err == nil:
		case panicked:
			// A bug met on this mail would be met again on every retry and
			// hold up the mails after it: given up on, with the panic's
			// first line (the stack goes to the log only).
			d.log.Error("queued mail: mailer panicked", "mail_id", m.ID, "panic", err)
			first, _, _ := strings.Cut(err.Error(), "\n")
			failure = truncate("mailer panicked: "+first, 500)
		case channels.Permanent(err):
			d.log.Warn("queued mail not sent", "mail_id", m.ID, "err", err)
			failure = truncate(err.Error(), 500)
		default:
			d.log.Warn("queued mail not sent", "mail_id", m.ID, "err", err)
			d.mailPausedUntil = d.now().Add(time.Minute)
			return sent, err
		}
		if err := d.markMail(context.WithoutCancel(ctx), m.ID, failure); err != nil {
			return sent, fmt.Errorf("mark mail sent: %w", err)
		}
		if failure == "" {
			sent++
		}
	}
	return sent, nil
}

// markMail records a queued mail as sent (failure empty: its text goes)
// or as given up on (with the reason; the text stays).
func (d *Delivery) markMail(ctx context.Context, id int64, failure string) error {
	now := d.now()
	return d.db.WriteTx(ctx, func(tx *sqlx.Tx) error {
		if failure == "" {
			_, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET sent_at = ?, body = '' WHERE id = ?`, now, id)
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET failed_at = ?, failure = ? WHERE id = ?`, now, failure, id)
		return err
	})
}
