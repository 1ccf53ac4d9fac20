-- E-mail notices written while no SMTP server is configured wait in
-- mail_outbox and are sent by the notifier once one is (messaging/delivery,
-- sendEmail). The notifier finds a notice's mail by its message id: when
-- it sends or gives up on it, and at start to make waiting notices due.
-- Only notice mails have a message id; the partial index holds only them.
CREATE INDEX mail_outbox_message ON mail_outbox(message_id) WHERE message_id IS NOT NULL;
