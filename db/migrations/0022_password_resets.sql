-- "Forgot your password?": single-use links, valid one hour, stored only as
-- the SHA-256 of the token (like invitations and sessions). The e-mail
-- carrying the link goes through mail_outbox: the delivery pipeline sends
-- it when SMTP is configured; without SMTP platform admins read it in the
-- console, as they do for every other mail.
CREATE TABLE password_resets (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX password_resets_user ON password_resets(user_id);
