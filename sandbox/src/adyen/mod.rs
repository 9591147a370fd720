//! Simulator of Adyen Checkout API v71 (stands in for
//! `https://checkout-test.adyen.com/v71`); specified in `docs/sandbox/adyen.md`.
//!
//! Layout: [`api`] (the API, errors, faults, idempotency), [`validate`]
//! (request validation), [`redirect`] (the 3-D Secure page), [`notify`]
//! (standard webhooks), [`signature`] (their HMAC), [`control`] (test-only
//! endpoints), [`state`] (payments, modifications, faults).

mod api;
mod control;
mod currency;
mod notify;
mod redirect;
/// Adyen's HMAC of webhook items (tests sign their own notifications).
pub mod signature;
mod state;
mod validate;

use actix_web::web;

pub use signature::{sign_item, signing_string, verify_item};

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/adyen";

pub use crate::faults::FAULT_DELAY;

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
    /// The account allows several partial captures of one payment (Adyen's
    /// default is off: after a partial capture, the rest is released).
    pub multiple_partial_captures: bool,
}

impl Default for AdyenConfig {
    fn default() -> Self {
        AdyenConfig {
            api_key: "adyen_sandbox_api_key".to_owned(),
            merchant_account: "PasserelleECOM".to_owned(),
            hmac_key_hex: "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
                .to_owned(),
            webhook_url: None,
            multiple_partial_captures: false,
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Adyen(web::Data<state::AdyenState>);

impl Adyen {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        config: AdyenConfig,
        listener_base_url: &str,
        specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        let state = state::AdyenState::new(
            config,
            format!("{listener_base_url}{PATH_PREFIX}"),
            PATH_PREFIX.to_owned(),
            validate::Validator::new(specs)?,
        )?;
        Ok(Adyen(web::Data::new(state)))
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::scope(PATH_PREFIX)
                .app_data(self.0.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/_sandbox/faults", web::post().to(control::set_faults))
                .route("/_sandbox/webhooks", web::post().to(control::set_webhook))
                .route(
                    "/_sandbox/references",
                    web::post().to(control::set_references),
                )
                .route(
                    "/_sandbox/payments/{psp}",
                    web::get().to(control::get_payment),
                )
                .route(
                    "/_sandbox/payments/{psp}/settle",
                    web::post().to(control::settle),
                )
                .route("/_sandbox/settings", web::post().to(control::set_settings))
                .route("/_sandbox/validation", web::get().to(control::validation))
                .route(
                    "/_sandbox/payments/{psp}/capture-delay-elapsed",
                    web::post().to(control::capture_delay_elapsed),
                )
                .route("/threeDS/redirect/{psp}", web::get().to(redirect::page))
                .route(
                    "/threeDS/redirect/{psp}/{action}",
                    web::post().to(redirect::act),
                )
                .service(
                    web::resource("/payments")
                        .post(api::payments)
                        .default_service(web::to(api::method_not_allowed)),
                )
                .service(
                    web::resource("/payments/details")
                        .post(api::details)
                        .default_service(web::to(api::method_not_allowed)),
                )
                .service(
                    web::resource("/cancels")
                        .post(api::cancels_by_reference)
                        .default_service(web::to(api::method_not_allowed)),
                )
                .service(
                    web::resource("/payments/{psp}/{kind}")
                        .post(api::modification)
                        .default_service(web::to(api::method_not_allowed)),
                )
                .default_service(web::to(api::not_found)),
        );
    }
}
