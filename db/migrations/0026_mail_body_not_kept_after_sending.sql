-- An e-mail's text is kept only until it leaves Sportello: sent to the
-- SMTP server, or refused by it for good.
--
-- Without an SMTP server, mail_outbox is where platform admins read what
-- Sportello wrote; once mail has gone, a row is the record of what was
-- sent to whom and when, and its text is not needed for that. Keeping it
-- would leave every citizen's address-confirmation link readable in the
-- admin console (an admin could confirm an address the citizen never
-- received mail at) and in every backup.
--
-- A permanent refusal used to be recorded as sent (so it was not retried
-- forever); it now has its own time and the server's reply. Rows marked
-- before this migration cannot be told apart and stay "sent"; their text
-- is cleared like the others'.
ALTER TABLE mail_outbox ADD COLUMN refused_at TIMESTAMP;
ALTER TABLE mail_outbox ADD COLUMN refusal TEXT;
UPDATE mail_outbox SET body = '' WHERE sent_at IS NOT NULL;
