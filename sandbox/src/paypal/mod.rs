//! Simulator of PayPal: OAuth2 client credentials, Orders v2, Payments v2,
//! the buyer approval site and webhooks (registration, SHA256withRSA
//! signatures, verification API). Documented in `docs/sandbox/paypal.md`.
//!
//! Layout: [`api`] (REST API handlers), [`error`] (PayPal's error bodies),
//! [`validate`] (request schema checks), [`approval`] (the buyer's approval
//! page), [`webhooks`] (registration, signing, background delivery,
//! verification), [`control`] (test-only endpoints), [`state`] (orders,
//! authorizations, captures, refunds, tokens, idempotency, faults).

mod api;
mod approval;
mod control;
mod error;
mod state;
mod validate;
mod webhooks;

use actix_web::{
    body::BoxBody,
    dev::{Service, ServiceRequest, ServiceResponse},
    web,
};

use crate::faults::{apply_request_fault, ApiFuture, FaultAnswers};
use state::{FaultMode, PaypalState};

/// Path under which this simulator is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/paypal";

pub use crate::faults::FAULT_DELAY;

/// Header choosing a fault for one request.
pub use crate::faults::FAULT_HEADER;

/// Path (under the base URL) of the certificate the webhooks are signed with.
pub const CERT_PATH: &str = "/certs/CERT-passerelle-sandbox-paypal";

const CA_CERT_PEM: &str = include_str!("ca-cert.pem");
const SIGNING_CERT_PEM: &str = include_str!("signing-cert.pem");
const SIGNING_KEY_PEM: &str = include_str!("signing-key.pem");

/// The certificate authority (PEM) that issued the sandbox's webhook signing
/// certificate: configure it as the trust root of PayPal webhook signature
/// checks when talking to the sandbox (instead of PayPal's real CAs).
pub fn ca_certificate_pem() -> &'static str {
    CA_CERT_PEM
}

/// The certificate (PEM) served at `PAYPAL-CERT-URL`, issued by
/// [`ca_certificate_pem`].
pub fn signing_certificate_pem() -> &'static str {
    SIGNING_CERT_PEM
}

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
    /// Lifetime of the access tokens issued by `/v1/oauth2/token`, in
    /// seconds (PayPal: 32400).
    pub token_lifetime_secs: u64,
}

impl Default for PaypalConfig {
    fn default() -> Self {
        PaypalConfig {
            client_id: "passerelle-sandbox-client".to_owned(),
            client_secret: "passerelle-sandbox-secret".to_owned(),
            webhook_id: "WH-PASSERELLE-SANDBOX".to_owned(),
            webhook_url: None,
            token_lifetime_secs: 32_400,
        }
    }
}

/// Shared state of a running simulator.
#[derive(Clone)]
pub(crate) struct Paypal(web::Data<PaypalState>);

impl Paypal {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(
        config: PaypalConfig,
        listener_base_url: &str,
        specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        let state = PaypalState::new(
            config,
            format!("{listener_base_url}{PATH_PREFIX}"),
            PATH_PREFIX.to_owned(),
            specs,
        )?;
        Ok(Paypal(web::Data::new(state)))
    }

    /// Registers the routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, cfg: &mut web::ServiceConfig) {
        let state = self.0.clone();
        let faults_v1 = self.0.clone();
        let faults_v2 = self.0.clone();
        let checks_v1 = self.0.clone();
        let checks_v2 = self.0.clone();
        // The last `wrap_fn` runs first: requests are recorded and checked
        // against the documents before any fault applies.
        let v1 = web::scope("/v1")
            .wrap_fn(move |req, srv| apply_fault(&faults_v1, req, srv))
            .wrap_fn(move |req, srv| check_request(&checks_v1, req, srv))
            .route("/oauth2/token", web::post().to(api::token))
            .route(
                "/notifications/webhooks",
                web::post().to(webhooks::create_webhook),
            )
            .route(
                "/notifications/webhooks",
                web::get().to(webhooks::list_webhooks),
            )
            .route(
                "/notifications/webhooks/{id}",
                web::delete().to(webhooks::delete_webhook),
            )
            .route(
                "/notifications/verify-webhook-signature",
                web::post().to(webhooks::verify_signature),
            )
            .default_service(web::to(error::not_found));
        let v2 = web::scope("/v2")
            .wrap_fn(move |req, srv| apply_fault(&faults_v2, req, srv))
            .wrap_fn(move |req, srv| check_request(&checks_v2, req, srv))
            .route("/checkout/orders", web::post().to(api::create_order))
            .route("/checkout/orders/{id}", web::get().to(api::get_order))
            .route(
                "/checkout/orders/{id}/capture",
                web::post().to(api::capture_order),
            )
            .route(
                "/checkout/orders/{id}/authorize",
                web::post().to(api::authorize_order),
            )
            .route(
                "/payments/authorizations/{id}",
                web::get().to(api::get_authorization),
            )
            .route(
                "/payments/authorizations/{id}/capture",
                web::post().to(api::capture_authorization),
            )
            .route(
                "/payments/authorizations/{id}/void",
                web::post().to(api::void_authorization),
            )
            .route("/payments/captures/{id}", web::get().to(api::get_capture))
            .route(
                "/payments/captures/{id}/refund",
                web::post().to(api::refund_capture),
            )
            .route("/payments/refunds/{id}", web::get().to(api::get_refund))
            .default_service(web::to(error::not_found));
        cfg.service(
            web::scope(PATH_PREFIX)
                .app_data(state)
                .service(v1)
                .service(v2)
                .route(CERT_PATH, web::get().to(webhooks::certificate))
                .route("/checkoutnow", web::get().to(approval::page))
                .route(
                    "/checkoutnow/{id}/approve",
                    web::post().to(approval::approve),
                )
                .route("/checkoutnow/{id}/cancel", web::post().to(approval::cancel))
                .route(
                    "/checkoutnow/{id}/approve-echeck",
                    web::post().to(approval::approve_echeck),
                )
                .route(
                    "/checkoutnow/{id}/approve-declined-card",
                    web::post().to(approval::approve_declined_card),
                )
                .route("/_sandbox/faults", web::post().to(control::set_faults))
                .route("/_sandbox/orders/{id}", web::get().to(control::get_order))
                .route("/_sandbox/events", web::get().to(control::events))
                .route("/_sandbox/validation", web::get().to(control::validation))
                .route(
                    "/_sandbox/captures/{id}/complete",
                    web::post().to(control::complete_capture),
                )
                .route(
                    "/_sandbox/captures/{id}/deny",
                    web::post().to(control::deny_capture),
                ),
        );
    }
}

/// Middleware of the API scopes: the fault named by [`FAULT_HEADER`], else
/// one pending fault of the caller's account (request faults only; the
/// notification faults are consumed when notifications are sent).
fn apply_fault<S>(state: &PaypalState, req: ServiceRequest, srv: &S) -> ApiFuture
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let from_header = req
        .headers()
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(FaultMode::parse);
    let mode = match from_header {
        Some(Some(mode)) => Some(mode),
        Some(None) => {
            let response = error::PaypalError::invalid_request(vec![validate::Violation::header(
                FAULT_HEADER,
                "INVALID_PARAMETER_VALUE",
                "unknown sandbox fault mode",
            )]);
            return Box::pin(std::future::ready(Ok(
                req.into_response(actix_web::ResponseError::error_response(&response))
            )));
        }
        None => {
            let account = api::account_of(state, req.request());
            account.and_then(|account| state.lock().take_request_fault(&account))
        }
    };
    let Some(mode) = mode else {
        return Box::pin(srv.call(req));
    };
    if mode.is_notification() {
        // Handled where the notifications are sent.
        return Box::pin(srv.call(req));
    }
    tracing::debug!(fault = %mode.name(), path = %req.path(), "paypal: injecting fault");
    apply_request_fault(mode, req, srv, &FAULT_ANSWERS)
}

/// Middleware of the API scopes: records the request (`GET
/// {base}/_sandbox/validation`) with the documented operation it is an
/// instance of, then refuses what PayPal refuses before reading a body: a
/// POST without a JSON media type (415), documented headers out of their
/// schema (400). Bodies are checked by their handlers (`validate::check`).
fn check_request<S>(state: &PaypalState, req: ServiceRequest, srv: &S) -> ApiFuture
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let method = req.method().as_str().to_owned();
    let path = req
        .path()
        .strip_prefix(state.base_path.as_str())
        .unwrap_or(req.path())
        .to_owned();
    let operation = validate::find_operation(&state.operations, &method, &path);
    let documented = operation.map(|op| format!("{} {}", op.method, op.template));
    let checked = documented.is_some() && state.spec.is_some();
    {
        let mut inner = state.lock();
        inner.record(state::RequestRecord {
            method: method.clone(),
            path: path.clone(),
            operation: operation.and_then(|op| op.operation_id.clone()),
            checked,
        });
        if let (true, Some(documented)) = (checked, &documented) {
            inner.checked(documented.clone());
        }
    }
    let refuse = |req: ServiceRequest, error: error::PaypalError| -> ApiFuture {
        if let Some(documented) = &documented {
            state.lock().refused(documented.clone(), error.body.clone());
        }
        Box::pin(std::future::ready(Ok(req.into_response(
            actix_web::ResponseError::error_response(&error),
        ))))
    };
    if validate::needs_json_media_type(&method, &path) {
        let content_type = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if !validate::is_json_media_type(content_type) {
            tracing::debug!(path = %path, "paypal: POST without a JSON content type");
            return refuse(req, error::PaypalError::unsupported_media_type());
        }
    }
    if let Some(operation) = operation {
        let headers = req.headers();
        let violations = validate::check_headers(operation, |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        if !violations.is_empty() {
            return refuse(req, error::PaypalError::invalid_request(violations));
        }
    }
    Box::pin(srv.call(req))
}

/// PayPal's own error shapes for the faults that answer in its place.
const FAULT_ANSWERS: FaultAnswers = FaultAnswers {
    timeout: error::service_unavailable,
    internal_error: error::internal_server_error,
    malformed_body: "<html><body>upstream connect error</body></html>{\"id\":\"",
};
