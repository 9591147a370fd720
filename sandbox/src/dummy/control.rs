//! Test-only control endpoints (`{base}/_sandbox/...`), without authentication.

use actix_web::{
    http::StatusCode,
    web::{Bytes, Data, Path},
    HttpResponse,
};
use serde_json::{json, Value};

use super::{
    api::{self, ApiError},
    state::{DummyState, FaultMode},
};

/// `GET {base}/_sandbox/charges/{id}`: the charge, as the API shows it.
pub(crate) async fn get_charge(
    state: Data<DummyState>,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    api::charge_response(&state, &path)
}

/// `GET {base}/_sandbox/charges?reference=R`: the PSP's ledger, every
/// charge made (with that merchant reference, if given), oldest first, so
/// tests can check that a payment was authorized once and never captured
/// or refunded beyond its amount.
pub(crate) async fn list_charges(
    state: Data<DummyState>,
    query: actix_web::web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let reference = query.get("reference");
    let inner = state.lock();
    let mut charges: Vec<_> = inner
        .charges
        .values()
        .filter(|c| reference.is_none_or(|r| &c.reference == r))
        .collect();
    charges.sort_by(|a, b| a.id.cmp(&b.id));
    let data = charges
        .into_iter()
        .map(|c| serde_json::to_value(c).unwrap_or(Value::Null))
        .collect::<Vec<_>>();
    Ok(HttpResponse::build(StatusCode::OK).json(json!({"object": "list", "data": data})))
}

/// `POST {base}/_sandbox/faults` `{"mode": "...", "count": 1}`: replaces the
/// pending faults. Answers `{"mode": "...", "count": n}`.
pub(crate) async fn set_faults(
    state: Data<DummyState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| ApiError::request(format!("the body is not valid JSON: {err}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ApiError::request("the body must be a JSON object"))?;
    let mode = match obj.get("mode").and_then(Value::as_str) {
        Some("none") => None,
        Some("timeout") => Some(FaultMode::Timeout),
        Some("timeout_after_effect") => Some(FaultMode::TimeoutAfterEffect),
        Some("http_500") => Some(FaultMode::Http500),
        Some("garbage") => Some(FaultMode::Garbage),
        _ => {
            return Err(ApiError::invalid(
                "mode",
                "mode must be one of none, timeout, timeout_after_effect, http_500, garbage",
            ))
        }
    };
    let count = match obj.get("count").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c >= 1)
            .ok_or_else(|| ApiError::invalid("count", "count must be a positive integer"))?,
    };
    let answer = {
        let mut inner = state.lock();
        inner.fault = mode.map(|m| (m, count));
        match inner.fault {
            Some((mode, count)) => json!({"mode": mode.as_str(), "count": count}),
            None => json!({"mode": "none", "count": 0}),
        }
    };
    tracing::debug!(faults = %answer, "dummy: faults set");
    Ok(HttpResponse::build(StatusCode::OK).json(answer))
}
