-- Delivery claims outbox rows in memory (messaging/delivery, claims): a
-- row leaves the outbox in the transaction that records its outcome, so
-- after a crash every remaining row is simply processed again. The lease
-- columns are no longer written.
ALTER TABLE outbox DROP COLUMN lease_until;
ALTER TABLE outbox DROP COLUMN attempts;
