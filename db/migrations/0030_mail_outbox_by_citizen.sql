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
-- holds the code only inside a signed token); it is tied to the citizen
-- when exactly one profile has that address now. The others (an address
-- since changed, or shared) stay untied until retention deletes them with
-- the rest of the mail of their age.
ALTER TABLE mail_outbox ADD COLUMN fiscal_code TEXT;
CREATE INDEX mail_outbox_citizen ON mail_outbox(fiscal_code) WHERE fiscal_code IS NOT NULL;

UPDATE mail_outbox SET fiscal_code = (SELECT m.fiscal_code FROM messages m WHERE m.id = mail_outbox.message_id)
    WHERE message_id IS NOT NULL;

-- One pass over profiles (the address is not indexed), then look-ups by key.
CREATE TEMP TABLE validation_owner (email TEXT PRIMARY KEY, fiscal_code TEXT NOT NULL, n INTEGER NOT NULL);
INSERT INTO validation_owner (email, fiscal_code, n)
    SELECT email, min(fiscal_code), count(*) FROM profiles
    WHERE email IN (SELECT to_addr FROM mail_outbox WHERE message_id IS NULL)
    GROUP BY email;
UPDATE mail_outbox SET fiscal_code = (SELECT o.fiscal_code FROM validation_owner o WHERE o.email = mail_outbox.to_addr AND o.n = 1)
    WHERE message_id IS NULL
        AND (body LIKE '%/citizen/email-validation?token=%'
            OR subject IN ('Conferma il tuo indirizzo e-mail', 'Confirm your e-mail address'));
DROP TABLE validation_owner;
