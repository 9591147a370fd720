//! A small key-value cache kept by the host per plugin and account (OAuth
//! tokens and the like). Entries may vanish at any time: always be ready to
//! recompute a value.

/// The value stored under `key`, if it is still there.
pub fn get(key: &str) -> Option<String> {
    crate::host::cache_get(key)
}

/// Stores `value` (at most 16 KiB) for `ttl_seconds`.
pub fn set(key: &str, value: &str, ttl_seconds: u32) {
    crate::host::cache_set(key, value, ttl_seconds)
}

/// Removes `key`.
pub fn delete(key: &str) {
    crate::host::cache_delete(key)
}
