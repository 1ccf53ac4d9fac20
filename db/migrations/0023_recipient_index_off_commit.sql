-- Messages by recipient, written by delivery instead of by the send commit.
--
-- messages_recipient (fiscal_code, id) was updated inside the fsynced
-- transaction behind every 201. Fiscal codes arrive in random order, so
-- each message dirtied its own leaf page of that index and every group
-- commit wrote one extra WAL page per message: dropping it raised the
-- gateway's sends by about 20 % on the benchmark machine.
--
-- A delivered message is already found by its recipient through the inbox
-- (inbox_citizen). This table holds the other decided messages (rejected,
-- or delivered to an account since deleted), written in delivery's
-- outcome transaction or by the account deletion, off the 201's path.
-- Messages still waiting in the outbox are found through the outbox, which
-- stays small.
CREATE TABLE messages_by_recipient (
    fiscal_code TEXT NOT NULL,
    message_id  TEXT NOT NULL REFERENCES messages(id),
    PRIMARY KEY (fiscal_code, message_id)
) WITHOUT ROWID;

INSERT INTO messages_by_recipient (fiscal_code, message_id)
    SELECT fiscal_code, id FROM messages
    WHERE id NOT IN (SELECT message_id FROM outbox) AND id NOT IN (SELECT message_id FROM inbox);

DROP INDEX messages_recipient;
