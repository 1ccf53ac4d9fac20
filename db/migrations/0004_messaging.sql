-- Messages, the delivery outbox, citizen profiles, preferences and inboxes.

-- id is time-ordered (ULID-like) so inserts append to the B-tree.
CREATE TABLE messages (
    id                 TEXT PRIMARY KEY,
    service_id         INTEGER NOT NULL REFERENCES services(id),
    institution_id     INTEGER NOT NULL,
    fiscal_code        TEXT NOT NULL,
    mode               TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    content            TEXT,              -- JSON MessageContent; NULL once retention deletes it
    time_to_live       INTEGER NOT NULL,
    feature_level_type TEXT NOT NULL DEFAULT 'STANDARD',
    require_secure_channels INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL DEFAULT 'ACCEPTED'
                       CHECK (status IN ('ACCEPTED', 'THROTTLED', 'FAILED', 'PROCESSED', 'REJECTED')),
    rejection_reason   TEXT,
    idempotency_key    TEXT,
    body_hash          TEXT,
    created_at         TIMESTAMP NOT NULL,
    processed_at       TIMESTAMP,
    content_deleted_at TIMESTAMP
);
CREATE INDEX messages_service ON messages(service_id, id);
CREATE INDEX messages_recipient ON messages(fiscal_code, id);
CREATE UNIQUE INDEX messages_idempotency ON messages(service_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Work for the delivery pipeline. A row exists until the message is
-- processed; workers lease rows (lease_until) so a crashed worker's rows
-- come back after the lease expires.
CREATE TABLE outbox (
    message_id   TEXT PRIMARY KEY REFERENCES messages(id),
    available_at TIMESTAMP NOT NULL,
    lease_until  TIMESTAMP,
    attempts     INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Per-channel notification state (email, webhook).
CREATE TABLE notifications (
    message_id      TEXT NOT NULL REFERENCES messages(id),
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    status          TEXT NOT NULL CHECK (status IN ('SENT', 'THROTTLED', 'EXPIRED', 'FAILED')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP,
    last_error      TEXT NOT NULL DEFAULT '',
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (message_id, channel)
) WITHOUT ROWID;
CREATE INDEX notifications_due ON notifications(status, next_attempt_at);

-- Citizen profile (IO's Profile). preferred_languages and
-- blocked_inbox_or_channels are JSON.
CREATE TABLE profiles (
    fiscal_code               TEXT PRIMARY KEY,
    email                     TEXT NOT NULL DEFAULT '',
    is_email_enabled          INTEGER NOT NULL DEFAULT 1,
    is_email_validated        INTEGER NOT NULL DEFAULT 0,
    is_inbox_enabled          INTEGER NOT NULL DEFAULT 1,
    is_webhook_enabled        INTEGER NOT NULL DEFAULT 1,
    preferred_languages       TEXT NOT NULL DEFAULT '[]',
    accepted_tos_version      INTEGER NOT NULL DEFAULT 0,
    blocked_inbox_or_channels TEXT NOT NULL DEFAULT '{}',
    preferences_mode          TEXT NOT NULL DEFAULT 'LEGACY' CHECK (preferences_mode IN ('LEGACY', 'AUTO', 'MANUAL')),
    preferences_version       INTEGER NOT NULL DEFAULT 0,
    version                   INTEGER NOT NULL DEFAULT 0,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL
) WITHOUT ROWID;

CREATE TABLE service_preferences (
    fiscal_code        TEXT NOT NULL REFERENCES profiles(fiscal_code) ON DELETE CASCADE,
    service_id         INTEGER NOT NULL REFERENCES services(id),
    is_inbox_enabled   INTEGER NOT NULL,
    is_email_enabled   INTEGER NOT NULL,
    is_webhook_enabled INTEGER NOT NULL,
    settings_version   INTEGER NOT NULL,
    updated_at         TIMESTAMP NOT NULL,
    PRIMARY KEY (fiscal_code, service_id)
) WITHOUT ROWID;

-- The citizen's inbox: one row per delivered message (the primary key makes
-- a second delivery of the same message a no-op).
CREATE TABLE inbox (
    message_id  TEXT PRIMARY KEY REFERENCES messages(id),
    fiscal_code TEXT NOT NULL,
    service_id  INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    is_read     INTEGER NOT NULL DEFAULT 0,
    is_archived INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX inbox_citizen ON inbox(fiscal_code, message_id);

-- Outgoing e-mail when no SMTP server is configured (readable by platform
-- admins in the console), and a record of what was sent when one is.
CREATE TABLE mail_outbox (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT,
    to_addr     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    sent_at     TIMESTAMP
);
