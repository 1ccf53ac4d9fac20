-- The inbox is stored in its citizen's order: the primary key is
-- (fiscal_code, message_id), and the separate inbox_citizen index goes.
--
-- Before, every delivered message was written twice: the inbox row in
-- message order (an append) and the inbox_citizen entry in citizen order
-- (a random leaf page per message, 38 % of the WAL pages of a send run,
-- docs/benchmarks.md). Now it is one B-tree insert into that same random
-- leaf, and a citizen's inbox page is read from consecutive rows instead
-- of one index step and one row look-up per message. A message has one
-- recipient, so the key still allows one inbox row per message; every
-- look-up of a single row names the citizen (the app, export, delivery).
CREATE TABLE inbox_by_citizen (
    fiscal_code TEXT NOT NULL,
    message_id  TEXT NOT NULL REFERENCES messages(id),
    service_id  INTEGER NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    is_read     INTEGER NOT NULL DEFAULT 0,
    is_archived INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (fiscal_code, message_id)
) WITHOUT ROWID;

INSERT INTO inbox_by_citizen (fiscal_code, message_id, service_id, created_at, is_read, is_archived)
    SELECT fiscal_code, message_id, service_id, created_at, is_read, is_archived FROM inbox;

DROP TABLE inbox;
ALTER TABLE inbox_by_citizen RENAME TO inbox;
