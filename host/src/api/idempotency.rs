//! `Idempotency-Key`: the same key and body give the same answer and one
//! provider operation, even for concurrent duplicates, failed writes and
//! crashes; the same key with another body is refused with 422.
//!
//! The first request inserts an `in_progress` claim (the primary key makes
//! that race-free across processes and nodes). The claim names the payment
//! or refund the request creates, chosen before the provider is called, and
//! is leased. Duplicates wait for it and replay its stored answer. When the
//! outcome at the provider is unknown (5xx, a failed write after the
//! provider call), the claim is kept but its lease given back: the retry
//! *resumes* the same payment or refund, which reaches the provider under
//! the same key (it dedupes), so it can never charge or refund twice. A
//! claim whose holder died keeps its lease until it expires; then a retry
//! takes it over and resumes in the same way. Keys expire (24 h by default)
//! and are forgotten.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use super::error::ApiError;
use crate::crypto::{new_id, now_rfc3339, now_unix_ms, SecretBox};
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
/// It is keyed (HMAC under a key derived from the master key) because the
/// body may hold a card number, and the card security code is left out
/// altogether: nothing stored may let anyone search for either.
pub fn fingerprint(secrets: &SecretBox, req: &HttpRequest, body: &serde_json::Value) -> String {
    let mut body = body.clone();
    if let Some(card) = body
        .get_mut("payment_method")
        .and_then(|m| m.get_mut("card"))
        .and_then(|c| c.as_object_mut())
    {
        card.remove("cvc");
    }
    secrets.fingerprint(&[
        req.method().as_str().as_bytes(),
        req.path().as_bytes(),
        body.to_string().as_bytes(),
    ])
}

/// How long idempotency claims are leased and keys remembered.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencySettings {
    /// How long a request owns its claim; a retry waits that long for a
    /// request that died before taking the claim over.
    pub lease: Duration,
    /// How long a key is remembered.
    pub ttl: Duration,
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(120),
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a handler works on under an idempotency claim.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The id of the payment or refund to create: new on a first request,
    /// the claim's own on a retry, so the retry resumes the same one.
    pub resource_id: String,
    /// A retry taking over an earlier attempt's claim.
    pub resumed: bool,
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

/// Runs `work` at most once per (merchant, key): again only to resume an
/// attempt whose outcome was unknown, on the same resource.
/// `resource_prefix` names the kind of id the request creates (`pay`, `re`).
pub async fn run<F, Fut>(
    store: &Store,
    settings: IdempotencySettings,
    merchant_id: &str,
    key: Option<String>,
    fingerprint: String,
    resource_prefix: &str,
    work: F,
) -> HttpResponse
where
    F: FnOnce(Claim) -> Fut,
    Fut: std::future::Future<Output = (Answer, bool)>,
{
    let Some(key) = key else {
        let claim = Claim {
            resource_id: new_id(resource_prefix),
            resumed: false,
        };
        return match work(claim).await.0 {
            Ok((status, body)) => respond(status, body, false),
            Err(e) => actix_web::ResponseError::error_response(&e),
        };
    };
    let now = now_rfc3339();
    let now_ms = now_unix_ms();
    let resource_id = new_id(resource_prefix);
    let begin = store
        .begin_idempotent(
            IdempotencyRecord {
                merchant_id: merchant_id.to_string(),
                key: key.clone(),
                request_hash: fingerprint.clone(),
                state: "in_progress".into(),
                response_status: None,
                response_body: None,
                created_at: now.clone(),
                updated_at: now,
                resource_id: Some(resource_id.clone()),
                lease_until: now_ms + millis(settings.lease),
                expires_at: now_ms + millis(settings.ttl),
            },
            now_ms,
        )
        .await;
    let claim = match begin {
        Err(e) => {
            tracing::error!(error = %e, "idempotency store failed");
            return actix_web::ResponseError::error_response(&ApiError::internal());
        }
        Ok(IdempotencyBegin::Existing(existing)) => {
            match wait_or_take_over(store, settings, merchant_id, &key, &fingerprint, *existing)
                .await
            {
                Waited::Replay(response) => return response,
                Waited::TookOver(record) => Claim {
                    // A claim from before resource ids were recorded has
                    // none: nothing was created under it that we know of.
                    resource_id: record.resource_id.unwrap_or(resource_id),
                    resumed: true,
                },
            }
        }
        Ok(IdempotencyBegin::Started) => Claim {
            resource_id,
            resumed: false,
        },
    };
    if claim.resumed {
        tracing::info!(resource = %claim.resource_id, "resuming an idempotent request whose outcome was unknown");
    }
    let (answer, outcome_unknown) = work(claim).await;
    let (status, body) = match answer {
        Ok(ok) => ok,
        Err(e) => (e.status, e.body()),
    };
    let stored = if outcome_unknown || status.is_server_error() {
        store.release_idempotent(merchant_id, &key).await
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

enum Waited {
    /// The answer to send: the stored one, or an error.
    Replay(HttpResponse),
    /// This request now holds the claim and must resume its work.
    TookOver(IdempotencyRecord),
}

/// A duplicate of a request that holds (or held) the claim: replay its
/// answer once it has one, or take the claim over when its lease has run
/// out (its holder died, or gave it back after an unknown outcome).
async fn wait_or_take_over(
    store: &Store,
    settings: IdempotencySettings,
    merchant_id: &str,
    key: &str,
    fingerprint: &str,
    mut record: IdempotencyRecord,
) -> Waited {
    if record.request_hash != fingerprint {
        return Waited::Replay(actix_web::ResponseError::error_response(
            &ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_error",
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
            )
            .with_param("Idempotency-Key"),
        ));
    }
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        if record.state == "done" {
            return Waited::Replay(replay(record));
        }
        let now_ms = now_unix_ms();
        if record.lease_until < now_ms {
            match store
                .take_over_idempotent(merchant_id, key, now_ms, now_ms + millis(settings.lease))
                .await
            {
                Ok(true) => return Waited::TookOver(record),
                // Another retry took it first: wait for that one.
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "idempotency store failed");
                    return Waited::Replay(actix_web::ResponseError::error_response(
                        &ApiError::internal(),
                    ));
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Waited::Replay(actix_web::ResponseError::error_response(&ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_error",
                "idempotency_request_in_progress",
                "a request with this Idempotency-Key is still in progress",
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
        match store.get_idempotent(merchant_id, key).await {
            Ok(Some(r)) => record = r,
            // Expired and forgotten meanwhile: the client may send it anew.
            Ok(None) => {
                return Waited::Replay(actix_web::ResponseError::error_response(&ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_error",
                    "idempotency_retry",
                    "the first request with this Idempotency-Key expired; retry it",
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "idempotency store failed");
                return Waited::Replay(actix_web::ResponseError::error_response(
                    &ApiError::internal(),
                ));
            }
        }
    }
}

fn replay(record: IdempotencyRecord) -> HttpResponse {
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
