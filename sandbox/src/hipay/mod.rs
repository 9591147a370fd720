//! Simulator of HiPay Enterprise: the stage gateway, the hosted page API and
//! the tokenization vault, with HiPay's test cards, browser pages, signed
//! notifications and fault injection. See `docs/sandbox/hipay.md`.
//!
//! Layout: [`api`] (JSON APIs), [`pages`] (hosted page, 3-D Secure page,
//! redirects back), [`notify`] (signed notifications), [`control`] (test-only
//! endpoints), [`schema`] (request validation against HiPay's documents),
//! [`state`], [`cards`], [`money`], [`sign`], [`form`], [`error`].

mod api;
mod cards;
mod control;
mod error;
mod fault;
mod form;
mod money;
mod notify;
mod pages;
mod schema;
pub mod sign;
mod state;

use actix_web::web;

pub use sign::{notification_signature, redirect_hash, Algorithm, SIGNATURE_HEADER};
use state::HipayState;

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/hipay";

/// Stands in for `https://stage-secure-gateway.hipay-tpp.com/rest`.
pub const GATEWAY_PATH: &str = "/gateway";
/// Stands in for `https://stage-api.hipay.com`.
pub const API_PATH: &str = "/api";
/// Stands in for `https://stage-secure2-vault.hipay-tpp.com/rest`.
pub const VAULT_PATH: &str = "/vault";

/// Request header selecting a fault for this request only.
pub use crate::faults::FAULT_HEADER;

pub use crate::faults::FAULT_DELAY;

/// Merchant account number shown in answers (`mid`).
pub(crate) const MID: &str = "00001326589";
/// Issuer shown for every test card.
pub(crate) const ISSUER: &str = "HIPAY SANDBOX BANK";
/// Issuing country shown for every test card.
pub(crate) const CARD_COUNTRY: &str = "FR";

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
pub(crate) struct Hipay(web::Data<HipayState>);

impl Hipay {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    /// Fails on an unknown `signature_algorithm`.
    pub(crate) fn new(
        config: HipayConfig,
        listener_base_url: &str,
        specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        let spec = crate::openapi::ApiSpec::load(specs, schema::SPEC_FILES)?;
        let state = HipayState::new(config, format!("{listener_base_url}{PATH_PREFIX}"), spec)?;
        Ok(Hipay(web::Data::new(state)))
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, cfg: &mut web::ServiceConfig) {
        let gateway = web::scope(GATEWAY_PATH)
            .service(
                web::resource("/v1/order")
                    .post(api::create_order)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/v1/maintenance/transaction/{reference}")
                    .post(api::maintenance)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/v1/transaction/{reference}")
                    .get(api::get_transaction)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/v1/transaction")
                    .get(api::get_transactions)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .default_service(web::to(api::not_found));
        let hosted = web::scope(API_PATH)
            .service(
                web::resource("/v1/hpayment")
                    .post(api::create_hpayment)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .default_service(web::to(api::not_found));
        let vault = web::scope(VAULT_PATH)
            .service(
                web::resource("/v2/token/create")
                    .post(api::token_create)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/v2/token/")
                    .delete(api::token_delete)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/v2/token/{token}")
                    .get(api::token_lookup)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .default_service(web::to(api::not_found));
        cfg.service(
            web::scope(PATH_PREFIX)
                .app_data(self.0.clone())
                .service(gateway)
                .service(hosted)
                .service(vault)
                .route("/forward/{id}", web::get().to(pages::forward_page))
                .route(
                    "/forward/{id}/approve",
                    web::post().to(pages::forward_approve),
                )
                .route("/forward/{id}/fail", web::post().to(pages::forward_fail))
                .route(
                    "/forward/{id}/cancel",
                    web::post().to(pages::forward_cancel),
                )
                .route("/pay/{id}", web::get().to(pages::pay_page))
                .route("/pay/{id}", web::post().to(pages::pay_submit))
                .route("/pay/{id}/cancel", web::post().to(pages::pay_cancel))
                .route("/_sandbox/faults", web::post().to(control::set_faults))
                .route(
                    "/_sandbox/validation",
                    web::get().to(control::get_validation),
                )
                .route(
                    "/_sandbox/transactions/{reference}",
                    web::get().to(control::get_transaction),
                )
                .route(
                    "/_sandbox/orders/{orderid}",
                    web::get().to(control::get_order),
                ),
        );
    }
}
