-- An e-mail's text is kept only until the SMTP server has taken it.
--
-- Without an SMTP server, mail_outbox is where platform admins read what
-- Sportello wrote; once mail has gone, a row is the record of what was
-- sent to whom and when, and its text is not needed for that. Keeping it
-- would leave every citizen's address-confirmation link readable in the
-- admin console (an admin could confirm an address the citizen never
-- received mail at) and in every backup.
--
-- Mail that Sportello gave up on (the server refused it for good, or the
-- mailer failed on it) used to be recorded as sent so it was not retried
-- forever. It now has its own time and reason, and keeps its text: it
-- never reached anyone, and admins may need to read it. Rows marked before
-- this migration cannot be told apart and stay "sent", text cleared.
ALTER TABLE mail_outbox ADD COLUMN failed_at TIMESTAMP;
ALTER TABLE mail_outbox ADD COLUMN failure TEXT;
UPDATE mail_outbox SET body = '' WHERE sent_at IS NOT NULL;
