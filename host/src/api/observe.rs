//! The middleware around every request: its id (`X-Request-Id`), a tracing
//! span carrying that id for every log line of the request (plugin log lines
//! included), the request log line and the HTTP metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use tracing::Instrument;

use super::error::ApiError;
use crate::metrics::METRICS;
use crate::store::accounting::{accounted, StoreWork};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// The longest `X-Request-Id` accepted.
pub const MAX_REQUEST_ID_LEN: usize = 128;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered by this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// A fresh request id: `req_` and 32 hex digits.
fn generate() -> String {
    format!("req_{:032x}", rand::random::<u128>())
}

/// The caller's `X-Request-Id`, when it is 1 to 128 printable ASCII
/// characters (no spaces or control characters); `Err` when it is not.
fn accepted(value: &HeaderValue) -> Result<String, ()> {
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_REQUEST_ID_LEN
        || !bytes.iter().all(u8::is_ascii_graphic)
    {
        return Err(());
    }
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| ())
}

/// The route pattern (`/v1/payments/{id}`): a bounded label, never the raw
/// path with its ids.
fn route_label(req: &ServiceRequest) -> String {
    req.match_pattern()
        .unwrap_or_else(|| "unmatched".to_string())
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = route_label(&req);
    let given = req.headers().get(&REQUEST_ID_HEADER).map(accepted);
    let (id, invalid) = match given {
        Some(Ok(id)) => (id, false),
        Some(Err(())) => (generate(), true),
        None => (generate(), false),
    };
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    crate::telemetry::join_caller_trace(&span, req.headers());
    METRICS.http_in_flight.inc();
    let store_work = std::sync::Arc::new(StoreWork::default());
    let line = RequestLine {
        path: req.path().to_string(),
        version: req.version(),
        method,
        route,
        started,
        store: store_work.clone(),
    };
    let work = async move {
        let result = if invalid {
            let error = ApiError::invalid(
                "X-Request-Id",
                format!(
                    "X-Request-Id must be 1 to {MAX_REQUEST_ID_LEN} printable ASCII characters \
                     without spaces"
                ),
            );
            Ok(req.into_response(error.error_response()))
        } else {
            next.call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
        };
        match result {
            Ok(mut response) => {
                let status = response.status().as_u16();
                line.finish(response.headers_mut(), status);
                Ok(response)
            }
            // An error no inner service turned into an answer: answer it
            // here, while the request id is known, so that it carries it.
            Err(error) => {
                let mut response = HttpResponse::from_error(error);
                let status = response.status().as_u16();
                line.finish(response.headers_mut(), status);
                Err(
                    actix_web::error::InternalError::from_response("request failed", response)
                        .into(),
                )
            }
        }
    };
    let result = REQUEST_ID
        .scope(id, accounted(store_work, work.instrument(span)))
        .await;
    METRICS.http_in_flight.dec();
    result
}

/// What the request's log line and metrics say of it.
struct RequestLine {
    method: String,
    route: String,
    path: String,
    version: actix_web::http::Version,
    started: Instant,
    store: std::sync::Arc<StoreWork>,
}

impl RequestLine {
    /// The request's log line, its metrics and its `X-Request-Id` answer
    /// header.
    fn finish(&self, headers: &mut actix_web::http::header::HeaderMap, status: u16) {
        let RequestLine {
            method,
            route,
            path,
            version,
            started,
            store,
        } = self;
        let elapsed = started.elapsed();
        // The path without its query string: a shopper's return or a
        // provider's notification may carry tokens there.
        tracing::info!(
            target: "passerelle::http",
            store_round_trips = store.round_trips(),
            store_statements = store.statements(),
            "{method} {path} {version:?} {status} {}ms",
            elapsed.as_millis()
        );
        METRICS.http_request(method, route, status, elapsed, store);
        if headers.contains_key("idempotent-replayed") {
            METRICS.idempotency_replays.inc();
        }
        if route == "/v1/webhooks/{account}" {
            METRICS.notifications.with_label_values(&["received"]).inc();
            let result = match status {
                200..=299 => "verified",
                401 => "rejected_signature",
                400 => "rejected_invalid",
                _ => "rejected_other",
            };
            METRICS.notifications.with_label_values(&[result]).inc();
        }
        if let Some(value) = current_request_id().and_then(|id| HeaderValue::from_str(&id).ok()) {
            headers.insert(REQUEST_ID_HEADER, value);
        }
    }
}
