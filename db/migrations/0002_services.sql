-- Services: a stable identity (services) with versioned card content
-- (service_versions). The version in force is the last approved one; a
-- service being edited also has a working version (draft, submitted or
-- rejected). The runtime columns on services (recipients, CIDRs, payment cap,
-- secure channels, limits) are what the gateway reads on every request.

CREATE TABLE services (
    id                       INTEGER PRIMARY KEY,
    public_id                TEXT NOT NULL UNIQUE,        -- opaque id used in URLs and the API
    institution_id           INTEGER NOT NULL REFERENCES institutions(id),
    name                     TEXT NOT NULL,               -- name of the latest version, for lists
    live_version_id          INTEGER,                     -- approved version in force, NULL until first approval
    working_version_id       INTEGER,                     -- draft / submitted / rejected version, NULL when none
    -- Operational settings, not part of review (as in IO's subscription):
    authorized_recipients    TEXT NOT NULL DEFAULT '[]',  -- JSON array of person fiscal codes (test mode)
    authorized_cidrs         TEXT NOT NULL DEFAULT '[]',  -- JSON array of CIDRs, empty = any
    -- Copied from the version in force (or the latest draft before first approval):
    max_payment_cents        INTEGER NOT NULL DEFAULT 0,
    require_secure_channels  INTEGER NOT NULL DEFAULT 0,
    is_visible               INTEGER NOT NULL DEFAULT 1,
    -- Live rate limit, adjustable by platform admins:
    rate_limit_requests      INTEGER NOT NULL DEFAULT 150,
    rate_limit_window_s      INTEGER NOT NULL DEFAULT 5,
    suspended_at             TIMESTAMP,
    deleted_at               TIMESTAMP,
    created_at               TIMESTAMP NOT NULL,
    created_by               INTEGER REFERENCES users(id)
);
CREATE INDEX services_institution ON services(institution_id);

CREATE TABLE service_versions (
    id                       INTEGER PRIMARY KEY,
    service_id               INTEGER NOT NULL REFERENCES services(id),
    version_no               INTEGER NOT NULL,
    state                    TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'approved', 'rejected', 'superseded')),
    card                     TEXT NOT NULL,               -- JSON: the service card fields
    checklist                TEXT NOT NULL DEFAULT '{}',  -- JSON: privacy checklist items
    created_at               TIMESTAMP NOT NULL,
    created_by               INTEGER REFERENCES users(id),
    updated_at               TIMESTAMP NOT NULL,
    updated_by               INTEGER REFERENCES users(id),
    submitted_at             TIMESTAMP,
    decided_at               TIMESTAMP,
    decided_by               INTEGER REFERENCES users(id),
    decision_reason          TEXT NOT NULL DEFAULT '',
    UNIQUE (service_id, version_no)
);
CREATE INDEX service_versions_state ON service_versions(state, submitted_at);

-- Every lifecycle transition, shown as the service's timeline.
CREATE TABLE service_events (
    id          INTEGER PRIMARY KEY,
    service_id  INTEGER NOT NULL REFERENCES services(id),
    version_id  INTEGER REFERENCES service_versions(id),
    at          TIMESTAMP NOT NULL,
    actor_user_id INTEGER REFERENCES users(id),
    kind        TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX service_events_service ON service_events(service_id, id);
