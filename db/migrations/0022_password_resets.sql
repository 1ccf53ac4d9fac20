-- "Forgot your password?": single-use links, valid one hour, stored only as
-- the SHA-256 of the token (like invitations and sessions). The link goes
-- out by SMTP only, never through mail_outbox (which platform admins read).
CREATE TABLE password_resets (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX password_resets_user ON password_resets(user_id);
