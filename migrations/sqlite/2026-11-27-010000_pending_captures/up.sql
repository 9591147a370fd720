-- Captures a provider has accepted but not yet confirmed (Adyen answers
-- "received", HiPay "capture requested"): reserved against the
-- authorization so no second capture can exceed it, moved into
-- amount_captured by the provider's notification.
ALTER TABLE payments ADD COLUMN amount_capture_pending BIGINT NOT NULL DEFAULT 0;
