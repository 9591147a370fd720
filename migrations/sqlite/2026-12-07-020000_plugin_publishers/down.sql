DROP TABLE plugin_secret_fields;
DROP TABLE plugin_publishers;
