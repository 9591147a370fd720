-- 3-D Secure and the capture window (contract 1.1.0).
-- `three_ds`: JSON of the authentication result the provider reported.
-- `capture_before_ms`: when the authorization stops being capturable (Unix
-- ms), from the connector's declared validity or the provider's own date.
-- `delayed_capture`: JSON of an `automatic_delayed` capture: the hours
-- asked, who applies the delay (the provider natively, or the host's
-- janitor) and, once authorized, when it falls due. The janitor finds due
-- work through `reconcile_after`, so this needs no column of its own.
ALTER TABLE payments ADD COLUMN three_ds TEXT;
ALTER TABLE payments ADD COLUMN capture_before_ms BIGINT;
ALTER TABLE payments ADD COLUMN delayed_capture TEXT;
