ALTER TABLE payments DROP COLUMN amount_capture_pending;
