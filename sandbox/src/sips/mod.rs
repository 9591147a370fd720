//! Simulator of Worldline Sips 2.0 (Paypage JSON and Office JSON).
//! Under construction: mounted, but serves nothing yet.

use actix_web::web;

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/sips";

/// Settings of this simulator (test credentials it accepts, where it posts notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipsConfig {
    pub merchant_id: String,
    pub secret_key: String,
    pub key_version: u32,
}

impl Default for SipsConfig {
    /// Worldline's public simulation credentials.
    fn default() -> Self {
        SipsConfig {
            merchant_id: "002001000000001".to_owned(),
            secret_key: "002001000000001_KEY1".to_owned(),
            key_version: 1,
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Sips {
    _base_url: String,
}

impl Sips {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        _config: SipsConfig,
        listener_base_url: &str,
        _specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        Ok(Sips {
            _base_url: format!("{listener_base_url}{PATH_PREFIX}"),
        })
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, _cfg: &mut web::ServiceConfig) {}
}
