package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"sportello/messaging/channels"
)

// Mail not tied to a message (e-mail address validation, written by the
// citizen API, review outcomes written by the portal) waits in mail_outbox
// with sent_at NULL. With SMTP configured the notifier sends it and keeps
// only the record (addressee, subject, times): a confirmation link must not
// stay readable once it is in the citizen's mailbox. Without SMTP it stays
// for platform admins to read.

type queuedMail struct {
	ID      int64  `db:"id"`
	To      string `db:"to_addr"`
	Subject string `db:"subject"`
	Body    string `db:"body"`
}

// SendQueuedMail sends up to 50 waiting mails and marks them sent; it
// returns how many went out. A failing server pauses it for a minute.
func (d *Delivery) SendQueuedMail(ctx context.Context) (int, error) {
	if d.mailer == nil || d.now().Before(d.mailPausedUntil) {
		return 0, nil
	}
	var mails []queuedMail
	if err := d.db.R.SelectContext(ctx, &mails, `SELECT id, to_addr, subject, body FROM mail_outbox
		WHERE sent_at IS NULL AND message_id IS NULL ORDER BY id LIMIT 50`); err != nil {
		return 0, fmt.Errorf("queued mail: %w", err)
	}
	var sent []int64
	var failed []int64 // refused for good: marked sent so they are not retried forever
	var sendErr error
	for _, m := range mails {
		err := d.mailer.Send(ctx, channels.Mail{To: m.To, Subject: m.Subject, Body: m.Body, MessageID: fmt.Sprintf("mail-%d@sportello", m.ID)})
		if err == nil {
			sent = append(sent, m.ID)
			continue
		}
		d.log.Warn("queued mail not sent", "mail_id", m.ID, "err", err)
		if channels.Permanent(err) {
			failed = append(failed, m.ID)
			continue
		}
		sendErr = err
		d.mailPausedUntil = d.now().Add(time.Minute)
		break
	}
	if len(sent)+len(failed) > 0 {
		now := d.now()
		if err := d.db.WriteTx(context.WithoutCancel(ctx), func(tx *sqlx.Tx) error {
			for _, id := range append(sent, failed...) {
				if _, err := tx.Exec(`UPDATE mail_outbox SET sent_at = ?, body = '' WHERE id = ?`, now, id); err != nil {
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
