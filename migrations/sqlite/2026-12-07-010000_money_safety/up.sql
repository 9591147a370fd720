-- Money safety under faults (one node or several).

-- An idempotency claim names the resource it works on (the payment or
-- refund id, chosen before the provider is called) so that a retry after a
-- failed write resumes that very operation, with the same provider key.
-- A claim is leased: a request that died mid-call leaves a lease that
-- expires, after which a retry may take the claim over and resume it.
-- Every row expires (`expires_at`, Unix ms) and is then forgotten.
ALTER TABLE idempotency_keys ADD COLUMN resource_id TEXT;
ALTER TABLE idempotency_keys ADD COLUMN lease_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN expires_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);

-- One money-moving operation at a time per payment, across every node on
-- this database: a lease row per payment being worked on. A node that dies
-- holding one loses it when it expires (Unix ms).
CREATE TABLE payment_locks (
    payment_id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- The reconciler ("janitor"): a payment whose outcome is not settled
-- (processing, capture or cancellation pending) is looked at again from
-- `reconcile_after` (Unix ms; NULL: nothing to settle), with backoff.
-- `cancel_pending`: the provider accepted a cancellation, not yet confirmed.
ALTER TABLE payments ADD COLUMN cancel_pending BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN reconcile_after BIGINT;
ALTER TABLE payments ADD COLUMN reconcile_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX payments_reconcile_after ON payments (reconcile_after);

-- A refund keeps the key the provider dedupes it on, so the janitor can ask
-- again about a refund whose answer was lost without making a second one.
ALTER TABLE refunds ADD COLUMN psp_key TEXT;
CREATE INDEX refunds_status ON refunds (status);
