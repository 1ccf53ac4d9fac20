-- An e-mail's text is kept only until it is handed to the SMTP server.
--
-- Without an SMTP server, mail_outbox is where platform admins read what
-- Sportello wrote; once mail goes out, a row is the record of what was
-- sent to whom and when, and its text is not needed for that. Keeping it
-- would leave every citizen's address-confirmation link readable in the
-- admin console (an admin could confirm an address the citizen never
-- received mail at) and in every backup.
UPDATE mail_outbox SET body = '' WHERE sent_at IS NOT NULL;
