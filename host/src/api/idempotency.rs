//! `Idempotency-Key`: the same key and body give the same answer and one
//! provider call, even for concurrent duplicates; the same key with another
//! body is refused with 422.
//!
//! The first request inserts an `in_progress` record (the primary key makes
//! that race-free across processes); duplicates wait for it to finish and
//! replay its stored answer. Answers whose outcome at the provider is
//! unknown (5xx) are not stored, so a retry with the same key runs again,
//! and the provider dedupes it on the key we derived from this one.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::crypto::now_rfc3339;
use crate::store::models::IdempotencyRecord;
use crate::store::{IdempotencyBegin, Store};

const MAX_KEY_LEN: usize = 255;
/// How long a duplicate waits for the first request to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(90);
const POLL_EVERY: Duration = Duration::from_millis(20);

/// The validated `Idempotency-Key` header, if any.
pub fn key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| {
            ApiError::invalid(
                "Idempotency-Key",
                "the Idempotency-Key header must be printable ASCII",
            )
        })?
        .trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(ApiError::invalid(
            "Idempotency-Key",
            format!("the Idempotency-Key header must be 1 to {MAX_KEY_LEN} characters"),
        ));
    }
    Ok(Some(key.to_string()))
}

/// A fingerprint of what was asked: method, path and the body's canonical
/// JSON (keys sorted), so formatting differences do not count as a change.
pub fn fingerprint(req: &HttpRequest, body: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update([0]);
    hasher.update(req.path());
    hasher.update([0]);
    hasher.update(body.to_string());
    hex::encode(hasher.finalize())
}

/// The outcome of a handler: status and JSON body.
pub type Answer = Result<(StatusCode, serde_json::Value), ApiError>;

fn respond(status: StatusCode, body: serde_json::Value, replayed: bool) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    if replayed {
        builder.insert_header(("Idempotent-Replayed", "true"));
    }
    builder.json(body)
}

/// Runs `work` at most once per (merchant, key).
pub async fn run<F, Fut>(
    store: &Store,
    merchant_id: &str,
    key: Option<String>,
    fingerprint: String,
    work: F,
) -> HttpResponse
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = (Answer, bool)>,
{
    let Some(key) = key else {
        return match work().await.0 {
            Ok((status, body)) => respond(status, body, false),
            Err(e) => actix_web::ResponseError::error_response(&e),
        };
    };
    let now = now_rfc3339();
    let begin = store
        .begin_idempotent(IdempotencyRecord {
            merchant_id: merchant_id.to_string(),
            key: key.clone(),
            request_hash: fingerprint.clone(),
            state: "in_progress".into(),
            response_status: None,
            response_body: None,
            created_at: now.clone(),
            updated_at: now,
        })
        .await;
    match begin {
        Err(e) => {
            tracing::error!(error = %e, "idempotency store failed");
            actix_web::ResponseError::error_response(&ApiError::internal())
        }
        Ok(IdempotencyBegin::Existing(existing)) => {
            replay(store, merchant_id, &key, &fingerprint, existing).await
        }
        Ok(IdempotencyBegin::Started) => {
            let (answer, outcome_unknown) = work().await;
            let (status, body) = match answer {
                Ok(ok) => ok,
                Err(e) => (e.status, e.body()),
            };
            let stored = if outcome_unknown || status.is_server_error() {
                store.delete_idempotent(merchant_id, &key).await
            } else {
                store
                    .finish_idempotent(
                        merchant_id,
                        &key,
                        i32::from(status.as_u16()),
                        body.to_string(),
                        now_rfc3339(),
                    )
                    .await
            };
            if let Err(e) = stored {
                tracing::error!(error = %e, "could not record an idempotent answer");
            }
            respond(status, body, false)
        }
    }
}

async fn replay(
    store: &Store,
    merchant_id: &str,
    key: &str,
    fingerprint: &str,
    mut record: IdempotencyRecord,
) -> HttpResponse {
    if record.request_hash != fingerprint {
        return actix_web::ResponseError::error_response(
            &ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_error",
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            .with_param("Idempotency-Key"),
        );
    }
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    while record.state != "done" {
        if tokio::time::Instant::now() >= deadline {
            return actix_web::ResponseError::error_response(&ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_error",
                "idempotency_request_in_progress",
                "a request with this Idempotency-Key is still in progress",
            ));
        }
        tokio::time::sleep(POLL_EVERY).await;
        match store.get_idempotent(merchant_id, key).await {
            Ok(Some(r)) => record = r,
            // The first attempt ended with an unknown outcome and released
            // the key: tell the client to retry (it will run again).
            Ok(None) => {
                return actix_web::ResponseError::error_response(&ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_error",
                    "idempotency_retry",
                    "the first request with this Idempotency-Key failed; retry it",
                ))
            }
            Err(e) => {
                tracing::error!(error = %e, "idempotency store failed");
                return actix_web::ResponseError::error_response(&ApiError::internal());
            }
        }
    }
    let status = record
        .response_status
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = record
        .response_body
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    respond(status, body, true)
}
