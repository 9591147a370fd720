DROP TABLE plugins;
DROP TABLE plugin_versions;
