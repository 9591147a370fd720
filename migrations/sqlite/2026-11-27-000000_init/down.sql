DROP TABLE notifications_seen;
DROP TABLE idempotency_keys;
DROP TABLE refunds;
DROP TABLE payment_events;
DROP TABLE payments;
DROP TABLE connector_accounts;
DROP TABLE api_keys;
DROP TABLE merchants;
