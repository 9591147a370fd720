ALTER TABLE payments DROP COLUMN delayed_capture;
ALTER TABLE payments DROP COLUMN capture_before_ms;
ALTER TABLE payments DROP COLUMN three_ds;
