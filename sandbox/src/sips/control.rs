//! Test-only control endpoints (`{base}/_sandbox/...`), without authentication.

use actix_web::{
    http::StatusCode,
    web::{Bytes, Data, Path},
    HttpResponse,
};
use serde_json::{json, Value};

use super::state::{FaultMode, SipsState, Status};
use crate::util;

fn control_error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": message}))
}

/// `POST {base}/_sandbox/faults` `{"account": "<merchantId>", "mode": "...", "count": 1}`:
/// replaces the account's pending fault (`account` defaults to the
/// configured merchant; mode `none` clears). Answers the fault now pending.
pub(crate) async fn set_faults(state: Data<SipsState>, body: Bytes) -> HttpResponse {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&body) else {
        return control_error(StatusCode::BAD_REQUEST, "the body must be a JSON object");
    };
    let account = match obj.get("account") {
        None | Some(Value::Null) => state.config.merchant_id.clone(),
        Some(Value::String(a)) => a.clone(),
        Some(_) => return control_error(StatusCode::BAD_REQUEST, "account must be a string"),
    };
    let mode = match obj.get("mode").and_then(Value::as_str) {
        Some("none") => None,
        Some(text) => match FaultMode::parse(text) {
            Some(mode) => Some(mode),
            None => {
                return control_error(
                    StatusCode::BAD_REQUEST,
                    "mode must be one of none, delay:<ms>, timeout, timeout_after_effect, http_500, malformed, notification_drop, notification_duplicate, notification_out_of_order",
                )
            }
        },
        None => return control_error(StatusCode::BAD_REQUEST, "mode is required"),
    };
    let count = match obj.get("count") {
        None | Some(Value::Null) => 1,
        Some(v) => match v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c >= 1)
        {
            Some(c) => c,
            None => {
                return control_error(StatusCode::BAD_REQUEST, "count must be a positive integer")
            }
        },
    };
    let mut inner = state.lock();
    match mode {
        Some(mode) => {
            inner.faults.insert(account.clone(), (mode, count));
            tracing::debug!(account = %account, fault = %mode.name(), count, "sips: fault set");
            HttpResponse::Ok()
                .json(json!({"account": account, "mode": mode.name(), "count": count}))
        }
        None => {
            inner.faults.remove(&account);
            HttpResponse::Ok().json(json!({"account": account, "mode": "none", "count": 0}))
        }
    }
}

/// `GET {base}/_sandbox/transactions/{merchantId}/{transactionReference}`:
/// the transaction as the simulator holds it.
pub(crate) async fn get_transaction(
    state: Data<SipsState>,
    path: Path<(String, String)>,
) -> HttpResponse {
    let (merchant, reference) = path.into_inner();
    let mut inner = state.lock();
    match inner.transaction_mut(&merchant, &reference) {
        Some(tx) => {
            tx.catch_up(util::now_secs());
            HttpResponse::Ok().json(&*tx)
        }
        None => control_error(StatusCode::NOT_FOUND, "no such transaction"),
    }
}

/// Longest move back in time [`age`] accepts (ten years).
const MAX_AGE_DAYS: u64 = 3650;

/// `POST {base}/_sandbox/transactions/{merchantId}/{transactionReference}/age`
/// `{"days": N}`: the payment happened N days earlier than it did (its
/// `transactionDateTime` and the day its `captureDay` counts from move
/// back), so that the remittances since then apply: a `VALIDATION`
/// transaction whose capture limit date has passed expires, a deferred
/// `AUTHOR_CAPTURE` one is captured. Answers the transaction.
pub(crate) async fn age(
    state: Data<SipsState>,
    path: Path<(String, String)>,
    body: Bytes,
) -> HttpResponse {
    let (merchant, reference) = path.into_inner();
    let days = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(obj)) => obj
            .get("days")
            .and_then(Value::as_u64)
            .filter(|d| (1..=MAX_AGE_DAYS).contains(d)),
        _ => None,
    };
    let Some(days) = days else {
        return control_error(
            StatusCode::BAD_REQUEST,
            "the body must be {\"days\": N} with N from 1 to 3650",
        );
    };
    let mut inner = state.lock();
    let Some(tx) = inner.transaction_mut(&merchant, &reference) else {
        return control_error(StatusCode::NOT_FOUND, "no such transaction");
    };
    let Some(paid_at) = tx.paid_at_secs else {
        return control_error(StatusCode::CONFLICT, "the shopper has not paid yet");
    };
    tx.paid_at_secs = Some(paid_at.saturating_sub(days * 86_400));
    tx.catch_up(util::now_secs());
    HttpResponse::Ok().json(&*tx)
}

/// `POST {base}/_sandbox/transactions/{merchantId}/{transactionReference}/capture`:
/// runs the deferred capture of a `TO_CAPTURE` transaction now (as if its
/// `captureDay` had come).
pub(crate) async fn run_capture(
    state: Data<SipsState>,
    path: Path<(String, String)>,
) -> HttpResponse {
    let (merchant, reference) = path.into_inner();
    let mut inner = state.lock();
    let Some(tx) = inner.transaction_mut(&merchant, &reference) else {
        return control_error(StatusCode::NOT_FOUND, "no such transaction");
    };
    if tx.status != Status::ToCapture {
        return control_error(StatusCode::CONFLICT, "the transaction is not TO_CAPTURE");
    }
    tx.status = Status::Captured;
    tx.captured_amount = tx.amount;
    HttpResponse::Ok().json(&*tx)
}
