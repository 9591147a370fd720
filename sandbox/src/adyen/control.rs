//! Test-only control endpoints (`{base}/_sandbox/...`), without authentication.

use actix_web::{
    http::StatusCode,
    web::{Bytes, Data, Path},
    HttpResponse,
};
use serde_json::{json, Value};

use super::{
    api::{apply_modification, authorisation_item, authorise},
    notify,
    state::{AdyenState, Fault, ResultCode},
    validate::Operation,
};

fn bad_request(message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(
        json!({"status": 400, "errorCode": "000", "message": message, "errorType": "validation"}),
    )
}

fn parse(body: &[u8]) -> Result<serde_json::Map<String, Value>, Box<HttpResponse>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Box::new(bad_request("the body must be a JSON object"))),
    }
}

/// `POST {base}/_sandbox/faults` `{"account","mode","count"?}`
pub(crate) async fn set_faults(state: Data<AdyenState>, body: Bytes) -> HttpResponse {
    let obj = match parse(&body) {
        Ok(obj) => obj,
        Err(res) => return *res,
    };
    let account = obj
        .get("account")
        .and_then(Value::as_str)
        .unwrap_or(&state.config.merchant_account)
        .to_owned();
    let Some(mode) = obj.get("mode").and_then(Value::as_str) else {
        return bad_request("mode is required");
    };
    let count = match obj.get("count").filter(|v| !v.is_null()) {
        None => 1,
        Some(v) => match v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .filter(|c| *c >= 1)
        {
            Some(c) => c,
            None => return bad_request("count must be a positive integer"),
        },
    };
    let mut inner = state.lock();
    if mode == "none" {
        inner.faults.remove(&account);
        return HttpResponse::Ok().json(json!({"account": account, "mode": "none", "count": 0}));
    }
    let Some(fault) = Fault::parse(mode) else {
        return bad_request(
            "mode must be none, delay:<ms>, timeout, timeout_after_effect, http_500, malformed, \
notification_drop, notification_duplicate or notification_out_of_order",
        );
    };
    inner.faults.insert(account.clone(), (fault, count));
    HttpResponse::Ok().json(json!({"account": account, "mode": fault.name(), "count": count}))
}

/// `POST {base}/_sandbox/webhooks` `{"merchantAccount","url"}` (`url: null` removes it).
pub(crate) async fn set_webhook(state: Data<AdyenState>, body: Bytes) -> HttpResponse {
    let obj = match parse(&body) {
        Ok(obj) => obj,
        Err(res) => return *res,
    };
    let Some(account) = obj.get("merchantAccount").and_then(Value::as_str) else {
        return bad_request("merchantAccount is required");
    };
    let mut inner = state.lock();
    match obj.get("url").and_then(Value::as_str) {
        Some(url) => {
            if url::Url::parse(url).is_err() {
                return bad_request("url must be an absolute URL");
            }
            inner.webhooks.insert(account.to_owned(), url.to_owned());
        }
        None => {
            inner.webhooks.remove(account);
        }
    }
    HttpResponse::Ok().json(json!({"merchantAccount": account, "url": obj.get("url")}))
}

/// `POST {base}/_sandbox/references` `{"luhn_valid": bool}`: whether every
/// pspReference issued from now on passes the Luhn check (a card-number
/// look-alike, as about one Adyen reference in ten is). Lets a test count on
/// one instead of hoping for it.
pub(crate) async fn set_references(state: Data<AdyenState>, body: Bytes) -> HttpResponse {
    let obj = match parse(&body) {
        Ok(obj) => obj,
        Err(res) => return *res,
    };
    let Some(luhn_valid) = obj.get("luhn_valid").and_then(Value::as_bool) else {
        return bad_request("luhn_valid must be true or false");
    };
    state.lock().luhn_references = luhn_valid;
    HttpResponse::Ok().json(json!({"luhn_valid": luhn_valid}))
}

/// `GET {base}/_sandbox/payments/{pspReference}`: the payment's state.
pub(crate) async fn get_payment(state: Data<AdyenState>, path: Path<String>) -> HttpResponse {
    let inner = state.lock();
    match inner.payments.get(path.as_str()) {
        Some(payment) => HttpResponse::Ok().json(payment),
        None => HttpResponse::NotFound().json(json!({"status": 404, "errorCode": "000", "message": "no such payment", "errorType": "validation"})),
    }
}

/// `POST {base}/_sandbox/payments/{pspReference}/settle` `{"authorised": bool}`:
/// completes a `Received` (pending) payment and sends its AUTHORISATION webhook.
pub(crate) async fn settle(
    state: Data<AdyenState>,
    path: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let authorised = match parse(&body) {
        Ok(obj) => obj
            .get("authorised")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        Err(_) if body.is_empty() => true,
        Err(res) => return *res,
    };
    let (answer, item) = {
        let mut inner = state.lock();
        let Some(payment) = inner.payments.get_mut(path.as_str()) else {
            return HttpResponse::NotFound().json(json!({"status": 404, "errorCode": "000", "message": "no such payment", "errorType": "validation"}));
        };
        if payment.result_code != ResultCode::Received {
            return HttpResponse::build(StatusCode::CONFLICT).json(json!({"status": 409, "errorCode": "000", "message": "the payment is not pending", "errorType": "validation"}));
        }
        if authorised {
            authorise(payment);
        } else {
            payment.result_code = ResultCode::Refused;
            payment.refusal_reason = Some("Refused".into());
            payment.refusal_reason_code = Some("2".into());
        }
        (
            serde_json::to_value(&*payment).unwrap_or(Value::Null),
            authorisation_item(payment),
        )
    };
    notify::dispatch(&state, vec![item], None);
    HttpResponse::Ok().json(answer)
}

/// `POST {base}/_sandbox/settings` `{"merchantAccount", "multiplePartialCaptures": bool}`:
/// the account's "multiple partial captures" setting (Adyen's support
/// enables it per merchant account; off by default).
pub(crate) async fn set_settings(state: Data<AdyenState>, body: Bytes) -> HttpResponse {
    let obj = match parse(&body) {
        Ok(obj) => obj,
        Err(res) => return *res,
    };
    let Some(account) = obj.get("merchantAccount").and_then(Value::as_str) else {
        return bad_request("merchantAccount is required");
    };
    let Some(multiple) = obj.get("multiplePartialCaptures").and_then(Value::as_bool) else {
        return bad_request("multiplePartialCaptures must be true or false");
    };
    state
        .lock()
        .multiple_partial_captures
        .insert(account.to_owned(), multiple);
    HttpResponse::Ok()
        .json(json!({"merchantAccount": account, "multiplePartialCaptures": multiple}))
}

/// `POST {base}/_sandbox/payments/{pspReference}/capture-delay-elapsed`:
/// the payment's `captureDelayHours` have passed: Adyen captures what is
/// left and sends a CAPTURE webhook. 409 if no delayed capture is due.
pub(crate) async fn capture_delay_elapsed(
    state: Data<AdyenState>,
    path: Path<String>,
) -> HttpResponse {
    let (answer, items) = {
        let mut inner = state.lock();
        let mod_psp = inner.new_psp_reference();
        let Some(payment) = inner.payments.get_mut(path.as_str()) else {
            return HttpResponse::NotFound().json(json!({"status": 404, "errorCode": "000", "message": "no such payment", "errorType": "validation"}));
        };
        if payment.capture_delay_hours.is_none() || payment.result_code != ResultCode::Authorised {
            return HttpResponse::build(StatusCode::CONFLICT).json(json!({"status": 409, "errorCode": "000", "message": "no delayed capture is due", "errorType": "validation"}));
        }
        let rest = (payment.value - payment.captured, payment.currency.clone());
        let items = apply_modification(
            payment,
            Operation::Captures,
            Some(rest),
            None,
            &mod_psp,
            false,
        );
        (
            serde_json::to_value(&*payment).unwrap_or(Value::Null),
            items,
        )
    };
    notify::dispatch(&state, items, None);
    HttpResponse::Ok().json(answer)
}

/// `GET {base}/_sandbox/validation`: whether the official document is
/// loaded, how many requests each operation checked, the latest refusals.
pub(crate) async fn validation(state: Data<AdyenState>) -> HttpResponse {
    HttpResponse::Ok().json(state.validator.report())
}
