//! The dummy PSP: the counterpart of the reference `dummy` connector
//! (`plugins/dummy`). Its API is specified in `docs/dummy-psp.md`.
//!
//! Layout: [`api`] (JSON API under `/v1/`), [`threeds`] (the 3-D Secure
//! page), [`notify`] (signed notifications), [`control`] (test-only control
//! endpoints), [`state`] (in-memory charges, refunds, idempotency, faults),
//! [`card`] (test cards).

mod api;
mod card;
mod control;
mod notify;
mod state;
mod threeds;

use actix_web::{
    body::BoxBody,
    dev::{Service, ServiceRequest, ServiceResponse},
    http::StatusCode,
    web, HttpResponse,
};

use crate::faults::ApiFuture;
pub use notify::{sign, signature_header, SIGNATURE_HEADER};
use state::{DummyState, FaultMode};

/// Path under which the dummy PSP is mounted on the sandbox listener.
pub const PATH_PREFIX: &str = "/dummy";

pub use crate::faults::FAULT_DELAY;

/// Settings of the dummy PSP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DummyConfig {
    /// The one API key accepted (`Authorization: Bearer <api key>`).
    pub api_key: String,
    /// Key of the HMAC-SHA256 signing notifications.
    pub webhook_secret: String,
}

impl Default for DummyConfig {
    fn default() -> Self {
        DummyConfig {
            api_key: "sk_dummy_test".to_owned(),
            webhook_secret: "whsec_dummy_test".to_owned(),
        }
    }
}

/// Shared state of a running dummy PSP.
#[derive(Clone)]
pub(crate) struct Dummy(web::Data<DummyState>);

impl Dummy {
    /// `listener_base_url` is the sandbox's base, e.g. `http://127.0.0.1:4000`.
    pub(crate) fn new(config: DummyConfig, listener_base_url: &str) -> std::io::Result<Self> {
        let state = DummyState::new(
            config,
            format!("{listener_base_url}{PATH_PREFIX}"),
            PATH_PREFIX.to_owned(),
        )?;
        Ok(Dummy(web::Data::new(state)))
    }

    /// Registers the dummy PSP's routes under [`PATH_PREFIX`].
    pub(crate) fn configure(&self, cfg: &mut web::ServiceConfig) {
        let state = self.0.clone();
        let faults = self.0.clone();
        let api = web::scope("/v1")
            .wrap_fn(move |req, srv| apply_fault(&faults, req, srv))
            .service(
                web::resource("/charges")
                    .post(api::create_charge)
                    .get(api::search_charges)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/charges/{id}")
                    .get(api::get_charge)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/charges/{id}/capture")
                    .post(api::capture)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/charges/{id}/void")
                    .post(api::void)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/charges/{id}/refunds")
                    .post(api::create_refund)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .service(
                web::resource("/charges/{id}/refunds/{refund_id}")
                    .get(api::get_refund)
                    .default_service(web::to(api::method_not_allowed)),
            )
            .default_service(web::to(api::not_found));
        cfg.service(
            web::scope(PATH_PREFIX)
                .app_data(state)
                .service(api)
                .route("/3ds/{id}", web::get().to(threeds::page))
                .route("/3ds/{id}/approve", web::post().to(threeds::approve))
                .route("/3ds/{id}/fail", web::post().to(threeds::fail))
                .route("/_sandbox/charges", web::get().to(control::list_charges))
                .route("/_sandbox/charges/{id}", web::get().to(control::get_charge))
                .route("/_sandbox/faults", web::post().to(control::set_faults)),
        );
    }
}

/// Middleware of `/v1/`: consumes one pending fault, if any, and misbehaves
/// accordingly; otherwise passes the request on.
fn apply_fault<S>(state: &DummyState, req: ServiceRequest, srv: &S) -> ApiFuture
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let Some(mode) = state.lock().take_fault() else {
        return Box::pin(srv.call(req));
    };
    tracing::debug!(fault = mode.as_str(), path = %req.path(), "dummy: injecting fault");
    match mode {
        FaultMode::Timeout => Box::pin(async move {
            actix_web::rt::time::sleep(FAULT_DELAY).await;
            Ok(req.into_response(api::error_response(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                "simulated timeout: the request had no effect",
                None,
            )))
        }),
        FaultMode::TimeoutAfterEffect => {
            let call = srv.call(req);
            Box::pin(async move {
                let response = call.await?;
                actix_web::rt::time::sleep(FAULT_DELAY).await;
                Ok(response)
            })
        }
        FaultMode::Http500 => Box::pin(std::future::ready(Ok(req.into_response(
            api::error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "simulated internal error: the request had no effect",
                None,
            ),
        )))),
        FaultMode::Garbage => Box::pin(std::future::ready(Ok(req.into_response(
            HttpResponse::Ok()
                .content_type("application/json")
                .body("<html><body>502 Bad Gateway</body></html>\u{0}{\"id\":\"ch_"),
        )))),
    }
}
