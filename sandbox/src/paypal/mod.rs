//! Simulator of PayPal (OAuth2, Orders v2, Payments v2, webhooks).
//! Under construction: mounted, but serves nothing yet.

use actix_web::web;

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/paypal";

/// Settings of this simulator (test credentials it accepts, where it posts notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaypalConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The webhook id the signatures are computed with.
    pub webhook_id: String,
    /// Where webhooks are posted; none: not sent (also settable through the
    /// webhooks API).
    pub webhook_url: Option<String>,
}

impl Default for PaypalConfig {
    fn default() -> Self {
        PaypalConfig {
            client_id: "passerelle-sandbox-client".to_owned(),
            client_secret: "passerelle-sandbox-secret".to_owned(),
            webhook_id: "WH-PASSERELLE-SANDBOX".to_owned(),
            webhook_url: None,
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Paypal {
    _base_url: String,
}

impl Paypal {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        _config: PaypalConfig,
        listener_base_url: &str,
        _specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        Ok(Paypal {
            _base_url: format!("{listener_base_url}{PATH_PREFIX}"),
        })
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, _cfg: &mut web::ServiceConfig) {}
}
