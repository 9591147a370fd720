//! Test-only control endpoints (`{base}/_sandbox/...`), without authentication.

use actix_web::{
    http::StatusCode,
    web::{Bytes, Data, Path},
    HttpResponse,
};
use serde_json::{json, Value};

use super::{
    api::transaction_json,
    error::HipayError,
    state::{FaultMode, HipayState, PendingFault},
};

/// `POST {base}/_sandbox/faults`
/// `{"account": "<api username>", "mode": "...", "count": 1, "path":
/// "/gateway/v1/maintenance/"}`: replaces the account's pending faults
/// (`mode: "none"` clears them); with `path`, only requests whose path
/// under `{base}` starts with it take them.
pub(crate) async fn set_faults(
    state: Data<HipayState>,
    body: Bytes,
) -> Result<HttpResponse, HipayError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|err| HipayError::invalid("body", &format!("not valid JSON: {err}")))?;
    let account = value
        .get("account")
        .and_then(Value::as_str)
        .unwrap_or(&state.config.api_username)
        .to_owned();
    let mode_text = value
        .get("mode")
        .and_then(Value::as_str)
        .ok_or_else(|| HipayError::missing("mode"))?;
    let mode = if mode_text == "none" {
        None
    } else {
        Some(FaultMode::parse(mode_text).ok_or_else(|| {
            HipayError::invalid(
                "mode",
                "expected none, delay:<ms>, timeout, timeout_after_effect, http_500, malformed, \
                 notification_drop, notification_duplicate or notification_out_of_order",
            )
        })?)
    };
    let count = match value.get("count").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c >= 1)
            .ok_or_else(|| HipayError::invalid("count", "expected a positive integer"))?,
    };
    let path_prefix = match value.get("path").filter(|v| !v.is_null()) {
        None => None,
        Some(v) => Some(
            v.as_str()
                .filter(|p| p.starts_with('/'))
                .ok_or_else(|| HipayError::invalid("path", "expected a path such as /gateway/"))?
                .to_owned(),
        ),
    };
    let answer = {
        let mut inner = state.lock();
        match mode {
            Some(mode) => {
                inner.faults.insert(
                    account.clone(),
                    PendingFault {
                        mode,
                        remaining: count,
                        path_prefix: path_prefix.clone(),
                    },
                );
                json!({"account": account, "mode": mode.name(), "count": count, "path": path_prefix})
            }
            None => {
                inner.faults.remove(&account);
                json!({"account": account, "mode": "none", "count": 0})
            }
        }
    };
    tracing::debug!(faults = %answer, "hipay: faults set");
    Ok(HttpResponse::build(StatusCode::OK).json(answer))
}

/// `GET {base}/_sandbox/transactions/{reference}`: the transaction as the
/// gateway shows it, plus sandbox details.
pub(crate) async fn get_transaction(
    state: Data<HipayState>,
    path: Path<String>,
) -> Result<HttpResponse, HipayError> {
    let inner = state.lock();
    let tx = inner
        .transactions
        .get(path.as_str())
        .ok_or_else(|| HipayError::unknown_transaction(&path))?;
    let mut value = transaction_json(tx);
    if let Value::Object(obj) = &mut value {
        obj.insert(
            "sandbox".into(),
            json!({
                "account": tx.account,
                "operation": tx.order.operation,
                "cancelled": tx.cancelled,
                "cardLast4": tx.card.last4,
                "notifyUrl": tx.order.notify_url.as_ref().map(|u| u.as_str()),
                "maintenance": tx.maintenance.iter().map(|m| json!({
                    "operation": m.operation,
                    "operationId": m.operation_id,
                    "amount": m.amount,
                })).collect::<Vec<_>>(),
            }),
        );
    }
    Ok(HttpResponse::Ok().json(value))
}

/// `GET {base}/_sandbox/orders/{orderid}`: the order's transactions, oldest first.
pub(crate) async fn get_order(
    state: Data<HipayState>,
    path: Path<String>,
) -> Result<HttpResponse, HipayError> {
    let inner = state.lock();
    let list: Vec<Value> = inner
        .orders
        .get(path.as_str())
        .map(|refs| {
            refs.iter()
                .filter_map(|r| inner.transactions.get(r))
                .map(transaction_json)
                .collect()
        })
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({"orderid": path.as_str(), "transactions": list})))
}

/// `GET {base}/_sandbox/validation`: whether HiPay's documents were loaded,
/// how many requests each documented operation checked, and the latest
/// refusals.
pub(crate) async fn get_validation(state: Data<HipayState>) -> HttpResponse {
    let inner = state.lock();
    HttpResponse::Ok().json(json!({
        "documents": state.spec.is_some(),
        "checked": inner.validation.checked,
        "violations": inner.validation.violations,
    }))
}
