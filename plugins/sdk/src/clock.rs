//! Wall-clock time from the host (the sandbox has no clock of its own).

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    crate::host::now_ms()
}

/// Unix time in whole seconds.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}
