-- An Idempotency-Key belongs to one sender: the service's test keys or its
-- live keys. Scoped by service alone, a key an integrator had used while
-- testing made the first live message with that key a "retry" of the test
-- one: answered with the test message's id, and never delivered.
DROP INDEX messages_idempotency;
CREATE UNIQUE INDEX messages_idempotency ON messages(service_id, mode, idempotency_key) WHERE idempotency_key IS NOT NULL;
