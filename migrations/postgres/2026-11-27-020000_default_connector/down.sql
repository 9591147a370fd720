ALTER TABLE merchants DROP COLUMN default_connector;
