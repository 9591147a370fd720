//! Office JSON: `cashManagement/validate|cancel|refund` and
//! `diagnostic/getTransactionData`.

use actix_web::{web::Bytes, web::Data, HttpRequest, HttpResponse};
use rand::Rng;
use serde_json::{json, Map, Value};

use super::{
    api_fault, basic_date, iso_date_time,
    paypage::{check_seal_fields, parse_amount},
    sealed_json,
    state::{Operation, SipsState, Status, Transaction},
    text_of, with_fault,
};
use crate::util;

/// The Office operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Validate,
    Cancel,
    Refund,
    Diagnostic,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Validate => "validate",
            Op::Cancel => "cancel",
            Op::Refund => "refund",
            Op::Diagnostic => "getTransactionData",
        }
    }

    fn interface_prefix(self) -> &'static str {
        match self {
            Op::Diagnostic => "DR_WS_2.",
            _ => "CR_WS_2.",
        }
    }
}

/// `POST {base}/rs-services/v2/cashManagement/validate`
pub(crate) async fn validate(
    state: Data<SipsState>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    handle(&state, &req, &body, Op::Validate).await
}

/// `POST {base}/rs-services/v2/cashManagement/cancel`
pub(crate) async fn cancel(state: Data<SipsState>, req: HttpRequest, body: Bytes) -> HttpResponse {
    handle(&state, &req, &body, Op::Cancel).await
}

/// `POST {base}/rs-services/v2/cashManagement/refund`
pub(crate) async fn refund(state: Data<SipsState>, req: HttpRequest, body: Bytes) -> HttpResponse {
    handle(&state, &req, &body, Op::Refund).await
}

/// `POST {base}/rs-services/v2/diagnostic/getTransactionData`
pub(crate) async fn get_transaction_data(
    state: Data<SipsState>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    handle(&state, &req, &body, Op::Diagnostic).await
}

async fn handle(state: &SipsState, req: &HttpRequest, body: &[u8], op: Op) -> HttpResponse {
    let parsed: Option<Map<String, Value>> =
        serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| match v {
                Value::Object(map) => Some(map),
                _ => None,
            });
    let account = parsed
        .as_ref()
        .and_then(|m| m.get("merchantId"))
        .and_then(text_of)
        .unwrap_or_default();
    let fault = api_fault(state, req, &account);
    with_fault(fault, op.name(), || process(state, parsed, op)).await
}

/// An Office error: `responseCode` and, for 12/30, `errorFieldName`.
struct OfficeError(&'static str, Option<&'static str>);

fn answer(
    mut body: Map<String, Value>,
    code: &str,
    secret: Option<&str>,
    algorithm: Option<&str>,
) -> HttpResponse {
    body.insert("responseCode".into(), Value::String(code.into()));
    sealed_json(body, secret, algorithm)
}

fn error_answer(err: OfficeError, secret: Option<&str>, algorithm: Option<&str>) -> HttpResponse {
    let mut body = Map::new();
    if let Some(field) = err.1 {
        body.insert("errorFieldName".into(), Value::String(field.into()));
    }
    answer(body, err.0, secret, algorithm)
}

fn process(state: &SipsState, parsed: Option<Map<String, Value>>, op: Op) -> HttpResponse {
    let Some(request) = parsed else {
        return error_answer(OfficeError("30", None), None, None);
    };
    let Some(merchant_id) = request.get("merchantId").and_then(text_of) else {
        return error_answer(OfficeError("12", Some("merchantId")), None, None);
    };
    let Some((secret, key_version)) = state.merchant_key(&merchant_id) else {
        return error_answer(OfficeError("03", None), None, None);
    };
    if let Err((code, field, _)) = check_seal_fields(&request, key_version, secret) {
        let field = (code != "34").then_some(field);
        return error_answer(OfficeError(code, field), None, None);
    }
    let algorithm = request.get("sealAlgorithm").and_then(Value::as_str);
    match operate(state, &merchant_id, &request, op) {
        Ok(body) => answer(body, "00", Some(secret), algorithm),
        Err(err) => error_answer(err, Some(secret), algorithm),
    }
}

fn field(request: &Map<String, Value>, name: &'static str) -> Result<String, OfficeError> {
    match request.get(name) {
        None | Some(Value::Null) => Err(OfficeError("12", Some(name))),
        Some(v) => text_of(v).ok_or(OfficeError("30", Some(name))),
    }
}

fn operate(
    state: &SipsState,
    merchant_id: &str,
    request: &Map<String, Value>,
    op: Op,
) -> Result<Map<String, Value>, OfficeError> {
    let interface_version = field(request, "interfaceVersion")?;
    if !interface_version.starts_with(op.interface_prefix()) {
        return Err(OfficeError("30", Some("interfaceVersion")));
    }
    let reference = field(request, "transactionReference")?;
    let operation = if op == Op::Diagnostic {
        None
    } else {
        let amount = field(request, "operationAmount")?;
        let amount = parse_amount(&amount).ok_or(OfficeError("30", Some("operationAmount")))?;
        if amount == 0 {
            return Err(OfficeError("12", Some("operationAmount")));
        }
        let currency = field(request, "currencyCode")?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OfficeError("30", Some("currencyCode")));
        }
        Some((amount, currency))
    };

    let now_secs = util::now_secs();
    let mut inner = state.lock();
    let tx = inner
        .transaction_mut(merchant_id, &reference)
        .filter(|tx| tx.status.is_known_to_office())
        .ok_or(OfficeError("25", None))?;
    // The remittances due since the payment ran first: a transaction not
    // validated by its capture limit date has expired, and validating it
    // is refused like any operation its state does not allow (24).
    tx.catch_up(now_secs);
    let Some((amount, currency)) = operation else {
        return Ok(transaction_data(tx));
    };
    if currency != tx.currency_code {
        return Err(OfficeError("12", Some("currencyCode")));
    }
    let now = iso_date_time(now_secs);
    let mut body = Map::new();
    match op {
        Op::Validate => {
            if tx.status != Status::ToValidate {
                return Err(OfficeError("24", None));
            }
            if amount > tx.amount {
                return Err(OfficeError("51", None));
            }
            // One validation per transaction: what is not validated is
            // released, and the transaction leaves TO_VALIDATE (Sips'
            // "Validation" page: docs.sips.worldline-solutions.com/en/validation.html).
            // With `VALIDATION`, `captureDay` is the time left to validate,
            // not a delay after it: "the validated amount will be paid on
            // the day it is validated". That day's remittance is simulated
            // at once.
            tx.amount = amount;
            tx.captured_amount = amount;
            tx.status = Status::Captured;
            body.insert("acquirerResponseCode".into(), json!("00"));
            body.insert(
                "authorisationId".into(),
                json!(tx.authorisation_id.clone().unwrap_or_default()),
            );
            body.insert("newAmount".into(), json!(tx.amount));
        }
        Op::Cancel => {
            if !matches!(tx.status, Status::ToValidate | Status::ToCapture) {
                return Err(OfficeError("24", None));
            }
            if amount > tx.amount {
                return Err(OfficeError("51", None));
            }
            tx.amount -= amount;
            if tx.amount == 0 {
                tx.status = Status::Cancelled;
            }
            body.insert("newAmount".into(), json!(tx.amount));
        }
        Op::Refund => {
            if tx.status != Status::Captured {
                return Err(OfficeError("24", None));
            }
            if amount > tx.captured_amount - tx.refunded_amount {
                return Err(OfficeError("51", None));
            }
            tx.refunded_amount += amount;
            body.insert("acquirerResponseCode".into(), json!("00"));
            body.insert(
                "authorisationId".into(),
                json!(format!("{:06}", rand::rng().random_range(0..1_000_000u32))),
            );
            body.insert(
                "newAmount".into(),
                json!(tx.captured_amount - tx.refunded_amount),
            );
        }
        Op::Diagnostic => {}
    }
    let new_status = if op == Op::Refund {
        "TO_CREDIT"
    } else {
        tx.status.as_str()
    };
    body.insert("newStatus".into(), json!(new_status));
    body.insert("operationDateTime".into(), json!(now));
    tx.operations.push(Operation {
        operation: op.name(),
        operation_amount: amount,
        response_code: "00".into(),
        operation_date_time: now,
    });
    tracing::debug!(
        merchant = merchant_id, reference = %reference, operation = op.name(), amount,
        status = tx.status.as_str(), "sips: office operation"
    );
    Ok(body)
}

/// The answer of `getTransactionData`.
fn transaction_data(tx: &Transaction) -> Map<String, Value> {
    let mut body = Map::new();
    let mut put = |name: &str, value: Value| {
        body.insert(name.to_owned(), value);
    };
    put("transactionReference", json!(tx.transaction_reference));
    put("transactionStatus", json!(tx.status.as_str()));
    put("amount", json!(tx.amount));
    put("originAmount", json!(tx.original_amount));
    put("capturedAmount", json!(tx.captured_amount));
    put("creditedAmount", json!(tx.refunded_amount));
    put("currencyCode", json!(tx.currency_code));
    put("captureMode", json!(tx.capture_mode));
    put("captureDay", json!(tx.capture_day));
    put("orderChannel", json!(tx.order_channel));
    if let Some(secs) = tx.paid_at_secs {
        put("transactionDateTime", json!(iso_date_time(secs)));
    }
    if tx.response_code.as_deref() == Some("00") {
        if let Some(day) = tx.capture_limit_day() {
            put("captureLimitDate", json!(basic_date(day)));
        }
    }
    if let Some(v) = &tx.masked_pan {
        put("maskedPan", json!(v));
        put("paymentMeanBrand", json!("VISA"));
        put("paymentMeanType", json!("CARD"));
    }
    if let Some(v) = &tx.authorisation_id {
        put("authorisationId", json!(v));
    }
    if let Some(v) = &tx.acquirer_response_code {
        put("acquirerResponseCode", json!(v));
    }
    if let Some(a) = &tx.authentication {
        put("holderAuthentStatus", json!(a.status));
        put("holderAuthentRelegation", json!(a.relegation));
        put("holderAuthentProgram", json!(a.program));
        put("guaranteeIndicator", json!(a.guarantee));
    }
    if let Some(v) = &tx.response_code {
        put("transactionResponseCode", json!(v));
    }
    body
}
