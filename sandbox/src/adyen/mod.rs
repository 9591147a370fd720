//! Simulator of Adyen Checkout API v71.
//! Under construction: mounted, but serves nothing yet.

use actix_web::web;

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/adyen";

/// Settings of this simulator (test credentials it accepts, where it posts notifications).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdyenConfig {
    /// The API key accepted in `X-API-Key`.
    pub api_key: String,
    /// The merchant account the key belongs to.
    pub merchant_account: String,
    /// The webhook HMAC key, hex (Adyen hex-decodes it before use).
    pub hmac_key_hex: String,
    /// Where standard webhooks are posted (Customer Area setting); none: not sent.
    pub webhook_url: Option<String>,
}

impl Default for AdyenConfig {
    fn default() -> Self {
        AdyenConfig {
            api_key: "adyen_sandbox_api_key".to_owned(),
            merchant_account: "PasserelleECOM".to_owned(),
            hmac_key_hex: "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
                .to_owned(),
            webhook_url: None,
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Adyen {
    _base_url: String,
}

impl Adyen {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        _config: AdyenConfig,
        listener_base_url: &str,
        _specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        Ok(Adyen {
            _base_url: format!("{listener_base_url}{PATH_PREFIX}"),
        })
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, _cfg: &mut web::ServiceConfig) {}
}
