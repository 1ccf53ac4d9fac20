-- Accounts, institutions, memberships, invitations, server-side sessions and
-- the append-only audit log.

CREATE TABLE users (
    id                  INTEGER PRIMARY KEY,
    email               TEXT NOT NULL UNIQUE COLLATE NOCASE,
    name                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    is_platform_admin   INTEGER NOT NULL DEFAULT 0,
    created_at          TIMESTAMP NOT NULL,
    password_changed_at TIMESTAMP NOT NULL
);

CREATE TABLE institutions (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    fiscal_code TEXT NOT NULL UNIQUE,
    pec         TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE memberships (
    institution_id INTEGER NOT NULL REFERENCES institutions(id),
    user_id        INTEGER NOT NULL REFERENCES users(id),
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    created_at     TIMESTAMP NOT NULL,
    PRIMARY KEY (institution_id, user_id)
);
CREATE INDEX memberships_user ON memberships(user_id);

CREATE TABLE invitations (
    id             INTEGER PRIMARY KEY,
    institution_id INTEGER NOT NULL REFERENCES institutions(id),
    email          TEXT NOT NULL COLLATE NOCASE,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'operator')),
    token_hash     TEXT NOT NULL UNIQUE,
    invited_by     INTEGER NOT NULL REFERENCES users(id),
    created_at     TIMESTAMP NOT NULL,
    expires_at     TIMESTAMP NOT NULL,
    accepted_at    TIMESTAMP,
    accepted_by    INTEGER REFERENCES users(id),
    revoked_at     TIMESTAMP
);
CREATE INDEX invitations_institution ON invitations(institution_id);

-- The cookie carries a random session token; only its SHA-256 is stored, so
-- a copy of the database cannot be used to hijack sessions.
CREATE TABLE sessions (
    id_hash              TEXT PRIMARY KEY,
    user_id              INTEGER NOT NULL REFERENCES users(id),
    current_institution  INTEGER REFERENCES institutions(id),
    created_at           TIMESTAMP NOT NULL,
    last_seen_at         TIMESTAMP NOT NULL,
    expires_at           TIMESTAMP NOT NULL,
    client_ip            TEXT NOT NULL DEFAULT '',
    user_agent           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE audit_events (
    id             INTEGER PRIMARY KEY,
    at             TIMESTAMP NOT NULL,
    actor_user_id  INTEGER,
    actor          TEXT NOT NULL DEFAULT '',
    institution_id INTEGER,
    action         TEXT NOT NULL,
    target         TEXT NOT NULL DEFAULT '',
    client_ip      TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_institution ON audit_events(institution_id, id);
CREATE INDEX audit_events_action ON audit_events(action, id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
