-- Mail written for a citizen (address validation, e-mail notices) names
-- the citizen's fiscal code; account deletion deletes it by that code and
-- the data export lists it.
--
-- Deletion used to match the profile's current address: mail sent to an
-- earlier address stayed, and when two citizens share an address,
-- deleting one deleted the other's validation mail.
--
-- Existing rows: a notice names its message, whose recipient is known.
-- A validation mail names only its address (its text, dropped once sent,
-- holds the code only inside a signed token), and who has that address
-- now does not say who it was sent to: an address changed since, or
-- shared, would tie one citizen's mail to another (listed in the wrong
-- export, kept after the right one's deletion). Those rows stay untied
-- until retention deletes them with the rest of the mail of their age.
ALTER TABLE mail_outbox ADD COLUMN fiscal_code TEXT;
CREATE INDEX mail_outbox_citizen ON mail_outbox(fiscal_code) WHERE fiscal_code IS NOT NULL;

UPDATE mail_outbox SET fiscal_code = (SELECT m.fiscal_code FROM messages m WHERE m.id = mail_outbox.message_id)
    WHERE message_id IS NOT NULL;
