-- Which publisher owns each plugin id: the one of its first install (the
-- project's own for bundled connectors). An install of another version of
-- the id by another publisher, or an unverified (development mode) install
-- over an id whose packages are verified, is refused: the id names the code
-- that receives its accounts' credentials and card data.
CREATE TABLE plugin_publishers (
    plugin_id TEXT PRIMARY KEY NOT NULL,
    publisher TEXT NOT NULL,
    -- bundled, signed, or unverified (unsigned or untrusted, development mode).
    trust TEXT NOT NULL,
    -- The key that signed the install that bound (or last verified) the id.
    signed_by TEXT,
    bound_at TEXT NOT NULL
);

-- Every credential field any version of a plugin ever declared secret. The
-- admin API masks these whatever the version loaded now says: a value
-- written while its field was secret is never shown in clear.
CREATE TABLE plugin_secret_fields (
    plugin_id TEXT NOT NULL,
    field TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (plugin_id, field)
);
