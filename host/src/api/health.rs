//! Probes and metrics: `GET /health/live`, `GET /health/ready` and
//! `GET /metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::auth::Admin;
use super::error::ApiError;
use super::AppState;
use crate::metrics::METRICS;
use crate::store::{pending_migrations, MigrationCheckError};

/// How many backlog entries a scrape reads at most (the gauge saturates
/// there: a backlog that large needs an operator anyway).
const BACKLOG_SCAN_LIMIT: i64 = 1000;

/// What the readiness probe needs beyond the application state.
pub struct Health {
    database_url: String,
    shutting_down: AtomicBool,
}

impl Health {
    pub fn new(database_url: String) -> Arc<Self> {
        Arc::new(Self {
            database_url,
            shutting_down: AtomicBool::new(false),
        })
    }

    /// From now on the node answers not ready (it is draining).
    pub fn set_shutting_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }
}

/// The process is up and answering.
#[utoipa::path(get, path = "/health/live", tag = "operations", summary = "Liveness probe", responses((status = 200, description = "The process answers", body = super::openapi::Live)))]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

/// Ready for traffic: the database answers, every migration is applied,
/// every active connector is loaded and the node is not shutting down.
/// 503 otherwise, saying what is not ready.
#[utoipa::path(get, path = "/health/ready", tag = "operations", summary = "Readiness probe", responses((status = 200, description = "Ready for traffic", body = super::openapi::Ready), (status = 503, description = "Not ready: `not_ready` says what", body = super::openapi::Ready)))]
pub async fn ready(state: web::Data<AppState>, health: web::Data<Arc<Health>>) -> HttpResponse {
    let mut not_ready: Vec<&'static str> = Vec::new();

    let database = match state.payments.store().ping().await {
        Ok(()) => "ok",
        Err(error) => {
            tracing::warn!(%error, "readiness: the database does not answer");
            not_ready.push("database");
            "unreachable"
        }
    };

    let url = health.database_url.clone();
    let migrations = match tokio::task::spawn_blocking(move || pending_migrations(&url)).await {
        Ok(Ok(pending)) if pending.is_empty() => "ok",
        // The store migrated its own in-memory database at start.
        Ok(Err(MigrationCheckError::InMemory)) => "ok",
        Ok(Ok(_)) => {
            not_ready.push("migrations");
            "pending"
        }
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: cannot read the applied migrations");
            not_ready.push("migrations");
            "unknown"
        }
        Err(error) => {
            tracing::warn!(%error, "readiness: the migration check failed");
            not_ready.push("migrations");
            "unknown"
        }
    };

    let mut loaded = Vec::new();
    let mut not_loaded = Vec::new();
    match state.registry.list().await {
        Ok(views) => {
            for view in views {
                let wanted = !view.record.disabled && view.record.active_version.is_some();
                match (&view.active, wanted) {
                    (Some(_), _) => loaded.push(view.record.id.clone()),
                    (None, true) => not_loaded.push(view.record.id.clone()),
                    (None, false) => {}
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "readiness: cannot list the plugins");
            not_ready.push("plugins");
        }
    }
    if !not_loaded.is_empty() && !not_ready.contains(&"plugins") {
        not_ready.push("plugins");
    }

    let shutting_down = health.shutting_down.load(Ordering::SeqCst);
    if shutting_down {
        not_ready.push("shutting_down");
    }

    let body = serde_json::json!({
        "status": if not_ready.is_empty() { "ready" } else { "not_ready" },
        "not_ready": not_ready,
        "checks": {
            "database": database,
            "migrations": migrations,
            "plugins": { "loaded": loaded, "not_loaded": not_loaded },
            "shutting_down": shutting_down,
        },
    });
    if not_ready.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics` on the main listener: for the admin key only.
#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics", description = "The Prometheus text exposition. On `--metrics-listen` it is served without a key.", security(("admin_key" = [])), responses((status = 200, description = "The metrics", content_type = "text/plain", body = String), (status = "4XX", description = "Refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn metrics_admin(
    _admin: Admin,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    exposition(&state).await
}

/// `GET /metrics` on `--metrics-listen`: no key (that address is meant to
/// be reachable by the scraper only).
pub async fn metrics_open(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    exposition(&state).await
}

async fn exposition(state: &AppState) -> Result<HttpResponse, ApiError> {
    match state
        .payments
        .reconciliation_backlog(BACKLOG_SCAN_LIMIT)
        .await
    {
        Ok((items, _stale_claims)) => {
            let refunds = items.iter().filter(|i| i.object == "refund").count();
            let payments = items.len() - refunds;
            METRICS
                .janitor_backlog
                .with_label_values(&["payment"])
                .set(i64::try_from(payments).unwrap_or(i64::MAX));
            METRICS
                .janitor_backlog
                .with_label_values(&["refund"])
                .set(i64::try_from(refunds).unwrap_or(i64::MAX));
        }
        // The other metrics are still worth scraping.
        Err(error) => tracing::warn!(%error, "metrics: cannot read the janitor backlog"),
    }
    let text = METRICS.render().map_err(|error| {
        tracing::error!(%error, "metrics: cannot encode");
        ApiError::internal()
    })?;
    Ok(HttpResponse::build(StatusCode::OK)
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}

/// The routes of this module on the main listener.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/metrics", web::get().to(metrics_admin));
}
