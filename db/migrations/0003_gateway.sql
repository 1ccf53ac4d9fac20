-- API keys, weekly test quota, usage metering and idempotency.

-- Only the SHA-256 of a key is stored; display_prefix keeps its first
-- characters so people can tell keys apart. One active key per
-- (service, mode, slot); regenerating revokes the old row and inserts a new one.
CREATE TABLE api_keys (
    id             INTEGER PRIMARY KEY,
    service_id     INTEGER NOT NULL REFERENCES services(id),
    mode           TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    slot           TEXT NOT NULL CHECK (slot IN ('primary', 'secondary')),
    key_hash       TEXT NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    created_at     TIMESTAMP NOT NULL,
    created_by     INTEGER REFERENCES users(id),
    revoked_at     TIMESTAMP,
    last_used_at   TIMESTAMP
);
CREATE UNIQUE INDEX api_keys_active_slot ON api_keys(service_id, mode, slot) WHERE revoked_at IS NULL;

-- Test-mode quota: requests counted per service and calendar week
-- (week_start = the Monday, Europe/Rome, as YYYY-MM-DD).
CREATE TABLE quota_usage (
    service_id INTEGER NOT NULL REFERENCES services(id),
    week_start TEXT NOT NULL,
    used       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, week_start)
) WITHOUT ROWID;

-- Requests per service, day (UTC, YYYY-MM-DD), mode and outcome, for the
-- usage chart. Written in batches by the gateway's meter, not per request.
CREATE TABLE usage_daily (
    service_id INTEGER NOT NULL REFERENCES services(id),
    day        TEXT NOT NULL,
    mode       TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('accepted', 'client_error', 'throttled', 'server_error')),
    count      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, day, mode, outcome)
) WITHOUT ROWID;
