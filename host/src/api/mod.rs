//! The HTTP API: storefront payments, the shopper's return from redirects,
//! provider notifications, health and the admin API (merchants, API keys,
//! connector accounts, plugins).

mod admin;
mod auth;
pub mod body;
pub mod error;
pub mod health;
mod idempotency;
pub mod observe;
pub(crate) mod openapi;
mod payments;
mod plugins;
mod reconciliation;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use error::ApiError;
pub use idempotency::IdempotencySettings;

use crate::crypto::SecretBox;
use crate::payments::{NotificationAnswer, Payments};
use crate::runtime::bindings::types as wit;
use crate::runtime::PluginRuntime;

pub struct AppState {
    pub payments: Arc<Payments>,
    pub runtime: Arc<PluginRuntime>,
    /// Installed plugin versions and the operator's actions on them.
    pub registry: Arc<crate::registry::PluginRegistry>,
    /// Seals connector credentials written through the admin API, and
    /// keys the fingerprints of idempotent requests.
    pub secrets: SecretBox,
    pub idempotency: IdempotencySettings,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .configure(openapi::configure)
        .service(
            web::scope("/v1")
                .route("/payments", web::post().to(payments::create))
                .route("/payments/{id}", web::get().to(payments::get))
                .route("/payments/{id}/events", web::get().to(payments::events))
                .route("/payments/{id}/capture", web::post().to(payments::capture))
                .route("/payments/{id}/cancel", web::post().to(payments::cancel))
                .route("/payments/{id}/sync", web::post().to(payments::sync))
                .route(
                    "/payments/{id}/refunds",
                    web::post().to(payments::create_refund),
                )
                .route(
                    "/payments/{id}/refunds",
                    web::get().to(payments::list_refunds),
                )
                .route("/payments/{id}/return", web::get().to(shopper_return))
                .route("/payments/{id}/return", web::post().to(shopper_return))
                .route("/webhooks/{account}", web::post().to(webhook))
                .route("/admin/plugins", web::get().to(plugins::list))
                .route("/admin/plugins", web::post().to(plugins::install))
                .route("/admin/plugins/{id}", web::get().to(plugins::show))
                .route("/admin/plugins/{id}", web::delete().to(plugins::remove))
                .route(
                    "/admin/plugins/{id}/activate",
                    web::post().to(plugins::activate),
                )
                .route(
                    "/admin/plugins/{id}/rollback",
                    web::post().to(plugins::rollback),
                )
                .route(
                    "/admin/plugins/{id}/disable",
                    web::post().to(plugins::disable),
                )
                .route(
                    "/admin/plugins/{id}/enable",
                    web::post().to(plugins::enable),
                )
                .route(
                    "/admin/plugins/{id}/versions/{version}",
                    web::delete().to(plugins::remove_version),
                )
                .route(
                    "/admin/reconciliation",
                    web::get().to(reconciliation::backlog),
                )
                .route("/admin/merchants", web::post().to(admin::create_merchant))
                .route("/admin/merchants", web::get().to(admin::list_merchants))
                .route("/admin/merchants/{id}", web::get().to(admin::get_merchant))
                .route(
                    "/admin/merchants/{id}/api_keys",
                    web::post().to(admin::create_api_key),
                )
                .route(
                    "/admin/merchants/{id}/api_keys",
                    web::get().to(admin::list_api_keys),
                )
                .route(
                    "/admin/api_keys/{id}/revoke",
                    web::post().to(admin::revoke_api_key),
                )
                .route(
                    "/admin/merchants/{id}/connector_accounts",
                    web::post().to(admin::create_account),
                )
                .route(
                    "/admin/merchants/{id}/connector_accounts",
                    web::get().to(admin::list_accounts),
                )
                .route(
                    "/admin/connector_accounts/{id}",
                    web::get().to(admin::get_account),
                )
                .route(
                    "/admin/connector_accounts/{id}",
                    web::patch().to(admin::update_account),
                ),
        )
        .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "route_not_found",
        format!("no route for {} {}", req.method(), req.path()),
    ))
}

#[utoipa::path(get, path = "/health", tag = "operations", summary = "Database and plugins", responses((status = 200, description = "Healthy", body = openapi::Health), (status = 503, description = "The database is unreachable", body = openapi::Health)))]
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let database = state.payments.store().ping().await.is_ok();
    let plugins: Vec<_> = state
        .runtime
        .list()
        .iter()
        .map(|p| p.id().to_string())
        .collect();
    let body = serde_json::json!({
        "status": if database { "ok" } else { "degraded" },
        "database": if database { "ok" } else { "unreachable" },
        "plugins": plugins,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if database {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// The shopper's browser lands here after 3-D Secure or a hosted page.
/// The payment is completed through its connector (which asks the provider:
/// the browser's word alone proves nothing), then the browser goes on to
/// the merchant's `return_url` with `payment_id`.
#[utoipa::path(method(get, post), path = "/v1/payments/{id}/return", tag = "shopper", summary = "The shopper's browser back from a redirect", description = "The browser lands here after 3-D Secure or a hosted page (the provider's parameters in the query or a form body); Passerelle asks the connector, then redirects to the payment's `return_url` with `payment_id`.", params(("id" = String, Path, description = "The payment's id")), responses((status = 303, description = "On to the shop's `return_url`", headers(("Location" = String, description = "The shop's return_url with payment_id"))), (status = "4XX", description = "Refused", body = openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = openapi::ErrorBody)))]
async fn shopper_return(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    if req.method() == actix_web::http::Method::POST {
        let body = body::read_body(payload).await?;
        params.extend(url::form_urlencoded::parse(&body).into_owned());
    }
    let target = state.payments.complete(&path, params).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, target))
        .finish())
}

/// A provider notification for one connector account.
#[utoipa::path(post, path = "/v1/webhooks/{account}", tag = "shopper", summary = "A provider's notification", description = "The connector verifies the signature; duplicates are ignored. The answer is what the provider expects (its own status, media type and body).", params(("account" = String, Path, description = "The connector account's id")), request_body(content = String, content_type = "*/*", description = "The provider's notification, as it sends it"), responses((status = 200, description = "Accepted, in the form the provider expects"), (status = "4XX", description = "Refused", body = openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = openapi::ErrorBody)))]
async fn webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = body::read_body(payload).await?;
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| wit::HttpHeader {
            name: n.as_str().to_string(),
            value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
        })
        .collect();
    let notification = wit::Notification {
        method: req.method().as_str().to_string(),
        uri,
        headers,
        body: body.to_vec(),
    };
    match state.payments.notification(&path, notification).await? {
        NotificationAnswer::Accepted {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Ok(HttpResponse::build(status)
                .content_type(content_type)
                .body(body))
        }
        NotificationAnswer::Rejected(error) => {
            let (status, code) = match error.kind {
                wit::ErrorKind::InvalidSignature => (StatusCode::UNAUTHORIZED, "signature_invalid"),
                _ => (StatusCode::BAD_REQUEST, "notification_invalid"),
            };
            Err(ApiError::new(
                status,
                "invalid_request_error",
                code,
                error.message,
            ))
        }
    }
}
