//! Simulator of HiPay Enterprise (gateway, hosted page, tokenization).
//! Under construction: mounted, but serves nothing yet.

use actix_web::web;

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/hipay";

/// Settings of this simulator (test credentials it accepts, where it posts notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HipayConfig {
    /// HTTP Basic user name.
    pub api_username: String,
    /// HTTP Basic password.
    pub api_password: String,
    /// The secret passphrase signing notifications and redirect-back URLs.
    pub passphrase: String,
    /// `sha1`, `sha256` or `sha512`.
    pub signature_algorithm: String,
}

impl Default for HipayConfig {
    fn default() -> Self {
        HipayConfig {
            api_username: "passerelle_sandbox".to_owned(),
            api_password: "passerelle_sandbox_password".to_owned(),
            passphrase: "passerelle_sandbox_passphrase".to_owned(),
            signature_algorithm: "sha256".to_owned(),
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Hipay {
    _base_url: String,
}

impl Hipay {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        _config: HipayConfig,
        listener_base_url: &str,
        _specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        Ok(Hipay {
            _base_url: format!("{listener_base_url}{PATH_PREFIX}"),
        })
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, _cfg: &mut web::ServiceConfig) {}
}
