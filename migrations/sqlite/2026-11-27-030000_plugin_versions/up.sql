-- Every plugin version the host knows: those bundled in the binary (no
-- package: the binary carries them) and those an operator installed. The
-- package is kept so every node, and every restart, loads the very bytes
-- whose signature was checked.
CREATE TABLE plugin_versions (
    plugin_id TEXT NOT NULL,
    version TEXT NOT NULL,
    -- SHA-256 of the package contents (manifest and component).
    digest TEXT NOT NULL,
    publisher TEXT NOT NULL,
    -- bundled, signed, untrusted (dev mode) or unsigned (dev mode).
    trust TEXT NOT NULL,
    -- The id of the key that signed the package, if any.
    signed_by TEXT,
    manifest_toml TEXT NOT NULL,
    package BLOB,
    installed_at TEXT NOT NULL,
    PRIMARY KEY (plugin_id, version)
);

-- Which version of each plugin serves calls. previous_version is what a
-- rollback returns to.
CREATE TABLE plugins (
    id TEXT PRIMARY KEY NOT NULL,
    active_version TEXT,
    previous_version TEXT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    updated_at TEXT NOT NULL
);
