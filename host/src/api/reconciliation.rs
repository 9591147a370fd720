//! `GET /v1/admin/reconciliation`: what the janitor is waiting on.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::auth::Admin;
use super::error::ApiError;
use super::AppState;

/// How many items the listing shows at most.
const LIMIT: i64 = 500;

#[utoipa::path(get, path = "/v1/admin/reconciliation", tag = "operations", summary = "What the janitor waits on", security(("admin_key" = [])), responses((status = 200, description = "Payments and refunds whose outcome is unknown or overdue", body = super::openapi::Reconciliation), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn backlog(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let (items, stale_claims) = state.payments.reconciliation_backlog(LIMIT).await?;
    Ok(HttpResponse::Ok().json(json!({
        "object": "reconciliation",
        "unsettled": items.len(),
        "stale_idempotency_claims": stale_claims,
        "data": items,
    })))
}
