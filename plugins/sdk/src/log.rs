//! Structured logs, forwarded by the host to its tracing under the plugin's
//! name. Never log credentials or card data (the host masks anything that
//! looks like a card number, but do not rely on it).
//!
//! Use the macros: `passerelle_connector_sdk::info!("charge {} is {}", id, status)`.

pub use crate::bindings::passerelle::connector::log::Level;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    crate::host::log(level, message)
}

/// Logs at trace level, `format!`-style.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+)) };
}

/// Logs at debug level, `format!`-style.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs at info level, `format!`-style.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs at warn level, `format!`-style.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs at error level, `format!`-style.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+)) };
}
