//! Test-only control endpoints (`{base}/_sandbox/...`), without authentication.

use actix_web::{
    http::StatusCode,
    web::{Bytes, Data, Path},
    HttpResponse,
};
use serde_json::{json, Value};

use super::{
    api::{capture_event, order_json},
    error::PaypalError,
    state::{now_rfc3339, CaptureStatus, FaultMode, PaypalState},
    validate::Violation,
    webhooks,
};

fn bad(field: &str, description: &str) -> PaypalError {
    PaypalError::invalid_request(vec![Violation {
        field: field.to_owned(),
        value: None,
        location: "body",
        issue: "INVALID_PARAMETER_VALUE",
        description: description.to_owned(),
    }])
}

/// `POST {base}/_sandbox/faults` `{"account": client_id, "mode": "...",
/// "count": 1}`: replaces the account's pending faults. Answers
/// `{"account", "mode", "count"}`.
pub(crate) async fn set_faults(
    state: Data<PaypalState>,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| bad("/", "the body must be JSON"))?;
    let account = value
        .get("account")
        .and_then(Value::as_str)
        .unwrap_or(&state.config.client_id)
        .to_owned();
    let mode_text = value
        .get("mode")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("/mode", "mode is required"))?;
    let mode = match mode_text {
        "none" => None,
        other => Some(FaultMode::parse(other).ok_or_else(|| {
            bad(
                "/mode",
                "mode must be none, delay:<ms>, timeout, timeout_after_effect, http_500, malformed, notification_drop, notification_duplicate or notification_out_of_order",
            )
        })?),
    };
    let count = match value.get("count").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c >= 1)
            .ok_or_else(|| bad("/count", "count must be a positive integer"))?,
    };
    let mut inner = state.lock();
    let answer = match mode {
        Some(mode) => {
            inner.faults.insert(account.clone(), (mode, count));
            json!({"account": account, "mode": mode.name(), "count": count})
        }
        None => {
            inner.faults.remove(&account);
            json!({"account": account, "mode": "none", "count": 0})
        }
    };
    tracing::debug!(faults = %answer, "paypal: faults set");
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET {base}/_sandbox/orders/{id}`: the order as `GET /v2/checkout/orders`
/// shows it, plus `sandbox` details (funding, return and cancel URLs).
pub(crate) async fn get_order(
    state: Data<PaypalState>,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    let inner = state.lock();
    let order = inner
        .orders
        .get(path.as_str())
        .ok_or_else(|| PaypalError::resource_not_found(&state))?;
    let mut body = order_json(&state.base_url, &inner, order, true);
    body["sandbox"] = json!({
        "account": order.account,
        "funding": format!("{:?}", order.funding).to_ascii_uppercase(),
        "return_url": order.return_url,
        "cancel_url": order.cancel_url,
    });
    Ok(HttpResponse::Ok().json(body))
}

/// `GET {base}/_sandbox/events`: the events created so far (whether sent,
/// dropped or with no target), oldest first.
pub(crate) async fn events(state: Data<PaypalState>) -> HttpResponse {
    let inner = state.lock();
    let events: Vec<Value> = inner
        .events
        .iter()
        .map(|(id, kind, resource, body)| {
            json!({
                "id": id,
                "event_type": kind,
                "resource_id": resource,
                "body": serde_json::from_slice::<Value>(body).unwrap_or(Value::Null),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({"events": events}))
}

/// `GET {base}/_sandbox/validation`: whether the official documents were
/// loaded (`documents`), how many requests each documented operation
/// checked (`checked`, by `"POST /v2/checkout/orders"`), the latest
/// refusals (`violations`, at most 50: PayPal's error body plus its
/// `operation`), and every API request received, oldest first (`requests`:
/// `{method, path, operation, checked}`, `operation` the documented
/// `operationId` or null for the OAuth token endpoint and undocumented
/// paths). A connector's tests can assert that everything it sent was
/// checked against the documents and passed.
pub(crate) async fn validation(state: Data<PaypalState>) -> HttpResponse {
    let inner = state.lock();
    let requests: Vec<Value> = inner
        .requests
        .iter()
        .map(|r| {
            json!({
                "method": r.method,
                "path": r.path,
                "operation": r.operation,
                "checked": r.checked,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "documents": state.spec.is_some() && !state.operations.is_empty(),
        "checked": inner.checked,
        "violations": inner.refusals,
        "requests": requests,
    }))
}

/// `POST {base}/_sandbox/captures/{id}/complete`: the eCheck cleared.
pub(crate) async fn complete_capture(
    state: Data<PaypalState>,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    settle(&state, &path, CaptureStatus::Completed)
}

/// `POST {base}/_sandbox/captures/{id}/deny`: the eCheck bounced.
pub(crate) async fn deny_capture(
    state: Data<PaypalState>,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    settle(&state, &path, CaptureStatus::Declined)
}

fn settle(state: &PaypalState, id: &str, to: CaptureStatus) -> Result<HttpResponse, PaypalError> {
    let (account, event, body) = {
        let mut inner = state.lock();
        let capture = inner
            .captures
            .get_mut(id)
            .ok_or_else(|| PaypalError::resource_not_found(state))?;
        if capture.status != CaptureStatus::Pending {
            return Err(PaypalError {
                status: StatusCode::CONFLICT,
                body: json!({"name": "SANDBOX_CONFLICT", "message": "the capture is not PENDING"}),
            });
        }
        capture.status = to;
        capture.status_reason = None;
        capture.update_time = now_rfc3339();
        let capture = capture.clone();
        let account = inner
            .orders
            .get(&capture.order_id)
            .map(|o| o.account.clone())
            .unwrap_or_else(|| state.config.client_id.clone());
        let event = capture_event(&state.base_url, &capture);
        let body = event.resource.clone();
        (account, event, body)
    };
    webhooks::dispatch(state, &account, vec![event], None);
    Ok(HttpResponse::Ok().json(body))
}
