-- Every queued mail gets a random ref, its Message-ID (mail-<ref>@sportello).
--
-- The Message-ID was built from the row id, an INTEGER PRIMARY KEY without
-- AUTOINCREMENT: SQLite hands out max(id)+1, so after the newest rows were
-- deleted (account deletion, retention) their ids came back, and a new
-- validation mail went out with the Message-ID of an earlier one, which a
-- mailbox may drop as a duplicate. A ref drawn at random is unique across
-- databases too (a restored backup, a second installation); AUTOINCREMENT
-- also keeps the console's "older mail" pages from mixing a reused id into
-- the wrong place. Column defaults cannot be added by ALTER TABLE with a
-- non-constant value, so the table is rebuilt, its rows and ids kept.
CREATE TABLE mail_outbox_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id  TEXT,
    to_addr     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TIMESTAMP NOT NULL,
    sent_at     TIMESTAMP,
    failed_at   TIMESTAMP,
    failure     TEXT,
    ref         TEXT NOT NULL DEFAULT (lower(hex(randomblob(16))))
);
INSERT INTO mail_outbox_new (id, message_id, to_addr, subject, body, created_at, sent_at, failed_at, failure)
    SELECT id, message_id, to_addr, subject, body, created_at, sent_at, failed_at, failure FROM mail_outbox;
DROP TABLE mail_outbox;
ALTER TABLE mail_outbox_new RENAME TO mail_outbox;
CREATE INDEX mail_outbox_message ON mail_outbox(message_id) WHERE message_id IS NOT NULL;
