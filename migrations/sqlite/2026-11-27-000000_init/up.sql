-- Passerelle schema, SQLite flavour. Keep in step with ../../postgres and
-- host/src/store/schema.rs: both backends share one diesel schema, so column
-- types are limited to TEXT, INTEGER (i32) and BIGINT (i64). Times are
-- RFC 3339 UTC strings.

CREATE TABLE merchants (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    merchant_id TEXT REFERENCES merchants (id),
    kind TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE INDEX api_keys_merchant_id ON api_keys (merchant_id);

CREATE TABLE connector_accounts (
    id TEXT PRIMARY KEY NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    name TEXT NOT NULL,
    connector TEXT NOT NULL,
    environment TEXT NOT NULL,
    base_url TEXT,
    config_ciphertext TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (merchant_id, name)
);

CREATE TABLE payments (
    id TEXT PRIMARY KEY NOT NULL,
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    connector_account_id TEXT NOT NULL REFERENCES connector_accounts (id),
    connector TEXT NOT NULL,
    reference TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    capture_method TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_authorized BIGINT NOT NULL,
    amount_captured BIGINT NOT NULL,
    amount_refunded BIGINT NOT NULL,
    connector_reference TEXT,
    connector_data TEXT,
    next_action TEXT,
    return_url TEXT NOT NULL,
    failure_code TEXT,
    failure_message TEXT,
    provider_status TEXT,
    payment_method_type TEXT NOT NULL,
    card_last4 TEXT,
    metadata TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX payments_connector_reference ON payments (connector_account_id, connector_reference);
CREATE INDEX payments_merchant_created ON payments (merchant_id, created_at);

CREATE TABLE payment_events (
    id TEXT PRIMARY KEY NOT NULL,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    seq BIGINT NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    cause TEXT NOT NULL,
    detail TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (payment_id, seq)
);

CREATE TABLE refunds (
    id TEXT PRIMARY KEY NOT NULL,
    payment_id TEXT NOT NULL REFERENCES payments (id),
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    connector_reference TEXT,
    failure_code TEXT,
    failure_message TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX refunds_payment_id ON refunds (payment_id);
CREATE INDEX refunds_connector_reference ON refunds (connector_reference);

CREATE TABLE idempotency_keys (
    merchant_id TEXT NOT NULL REFERENCES merchants (id),
    "key" TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    response_status INTEGER,
    response_body TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (merchant_id, "key")
);

CREATE TABLE notifications_seen (
    connector_account_id TEXT NOT NULL REFERENCES connector_accounts (id),
    event_id TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (connector_account_id, event_id)
);
