-- The connector account (by name) that serves a merchant's payments when
-- the storefront names none.
ALTER TABLE merchants ADD COLUMN default_connector TEXT;
