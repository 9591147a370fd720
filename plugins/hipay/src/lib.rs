//! Connector under construction (no manifest.toml yet, so it is not bundled).
