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
	To      string `db:"to_addr"`
	Subject string `db:"subject"`
	Body    string `db:"body"`
}

// failedMail is a mail given up on, with the reason: the SMTP server's
// reply to a permanent refusal, or the mailer's panic.
type failedMail struct {
	id     int64
	reason string
}

// SendQueuedMail sends up to 50 waiting mails and records each one sent or
// given up on; it returns how many went out. A failing server pauses it for a
// minute; the mails sent before that are recorded all the same, so none
// goes out twice.
func (d *Delivery) SendQueuedMail(ctx context.Context) (int, error) {
	if d.mailer == nil || d.now().Before(d.mailPausedUntil) {
		return 0, nil
	}
	var mails []queuedMail
	if err := d.db.R.SelectContext(ctx, &mails, `SELECT id, to_addr, subject, body FROM mail_outbox
		WHERE sent_at IS NULL AND failed_at IS NULL AND message_id IS NULL ORDER BY id LIMIT 50`); err != nil {
		return 0, fmt.Errorf("queued mail: %w", err)
	}
	var sent []int64
	var failed []failedMail // not retried: they would fail again
	var sendErr error
	for _, m := range mails {
		// Outside supervise's recovery, like a notice's attempt: a panic
		// in the mailer is a failed try, not a loop restart that would send
		// the mails before this one again.
		panicked, err := runRecovering(ctx, func(ctx context.Context) error {
			return d.mailer.Send(ctx, channels.Mail{To: m.To, Subject: m.Subject, Body: m.Body, MessageID: fmt.Sprintf("mail-%d@sportello", m.ID)})
		})
		if err == nil {
			sent = append(sent, m.ID)
			continue
		}
		if panicked {
			// A bug met on this mail would be met again on every retry and
			// hold up the mails after it: given up on, with the panic's
			// first line (the stack goes to the log only).
			d.log.Error("queued mail: mailer panicked", "mail_id", m.ID, "panic", err)
			first, _, _ := strings.Cut(err.Error(), "\n")
			failed = append(failed, failedMail{m.ID, truncate("mailer panicked: "+first, 500)})
			continue
		}
		d.log.Warn("queued mail not sent", "mail_id", m.ID, "err", err)
		if channels.Permanent(err) {
			failed = append(failed, failedMail{m.ID, truncate(err.Error(), 500)})
			continue
		}
		sendErr = err
		d.mailPausedUntil = d.now().Add(time.Minute)
		break
	}
	if len(sent)+len(failed) > 0 {
		now := d.now()
		if err := d.db.WriteTx(context.WithoutCancel(ctx), func(tx *sqlx.Tx) error {
			for _, id := range sent {
				if _, err := tx.Exec(`UPDATE mail_outbox SET sent_at = ?, body = '' WHERE id = ?`, now, id); err != nil {
					return err
				}
			}
			for _, f := range failed {
				if _, err := tx.Exec(`UPDATE mail_outbox SET failed_at = ?, failure = ? WHERE id = ?`, now, f.reason, f.id); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return 0, fmt.Errorf("mark mail sent: %w", err)
		}
	}
	return len(sent), sendErr
}
