//! The Checkout API v71 handlers: errors, authentication, faults,
//! idempotency, `/payments`, `/payments/details` and the modifications.

use std::time::Duration;

use actix_web::{
    body::BoxBody,
    http::{header::HeaderValue, StatusCode},
    web::{Bytes, Data, Path},
    HttpRequest, HttpResponse, ResponseError,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::{
    currency,
    notify::{self, Item},
    state::{
        psp_reference, AdyenState, Fault, Inner, LateFailure, Modification, Payment, ResultCode,
        StoredAnswer, ThreeDs,
    },
    validate::Operation,
    FAULT_DELAY,
};

pub(crate) use crate::faults::FAULT_HEADER;
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;
const INSUFFICIENT_BALANCE: &str = "Insufficient balance on payment";

// ---------------------------------------------------------------------------
// Errors

/// An error in Adyen's `ServiceError` format.
#[derive(Debug, thiserror::Error)]
#[error("{status} {error_code}: {message}")]
pub(crate) struct ApiError {
    status: StatusCode,
    error_code: String,
    message: String,
    error_type: &'static str,
    psp_reference: Option<String>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        error_code: &str,
        message: impl Into<String>,
        error_type: &'static str,
    ) -> Self {
        ApiError {
            status,
            error_code: error_code.to_owned(),
            message: message.into(),
            error_type,
            psp_reference: None,
        }
    }

    /// 422, `errorType: validation`; carries a fresh pspReference like Adyen's.
    pub(crate) fn validation(error_code: &str, message: impl Into<String>) -> Self {
        let mut err = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            error_code,
            message,
            "validation",
        );
        err.psp_reference = Some(psp_reference());
        err
    }

    /// 400 `702`: the body cannot be read as JSON.
    pub(crate) fn unreadable(detail: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "702",
            format!("Unexpected input: {detail}"),
            "validation",
        )
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "000",
            "HTTP Status Response - Unauthorized",
            "security",
        )
    }

    fn invalid_merchant_account() -> Self {
        let mut err = Self::new(
            StatusCode::FORBIDDEN,
            "901",
            "Invalid Merchant Account",
            "security",
        );
        err.psp_reference = Some(psp_reference());
        err
    }

    fn unknown_payment() -> Self {
        Self::validation("167", "Original pspReference required for this operation")
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "000",
            message,
            "internal",
        )
    }

    pub(crate) fn body(&self) -> Value {
        let mut body = json!({
            "status": self.status.as_u16(),
            "errorCode": self.error_code,
            "message": self.message,
            "errorType": self.error_type,
        });
        if let Some(psp) = &self.psp_reference {
            body["pspReference"] = Value::String(psp.clone());
        }
        body
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        HttpResponse::build(self.status).json(self.body())
    }
}

/// Fallback for unknown paths under the API.
pub(crate) async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "000", "Not Found", "validation").error_response()
}

/// Fallback for a known path with another method.
pub(crate) async fn method_not_allowed() -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "000",
        "HTTP Status Response - Method Not Allowed",
        "validation",
    )
    .error_response()
}

// ---------------------------------------------------------------------------
// The request pipeline

/// What an operation produced: status, JSON body, webhooks to send.
type Outcome = Result<(StatusCode, Value, Vec<Item>), ApiError>;

fn authenticate(state: &AdyenState, req: &HttpRequest) -> Result<(), ApiError> {
    let key = req
        .headers()
        .get("X-API-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match key {
        Some(key) if key == state.config.api_key => Ok(()),
        _ => Err(ApiError::unauthorized()),
    }
}

/// The fault named by `X-Sandbox-Fault`, if any (unknown modes are ignored).
fn header_fault(req: &HttpRequest) -> Option<Fault> {
    req.headers()
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(Fault::parse)
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::unreadable("a JSON object is expected")),
        Err(err) => Err(ApiError::unreadable(&err.to_string())),
    }
}

struct Idempotency {
    key: String,
    fingerprint: [u8; 32],
}

fn idempotency(req: &HttpRequest, body: &[u8]) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::validation(
            "000",
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        ));
    }
    let canonical = serde_json::from_slice::<Value>(body)
        .map(|v| canonical(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
    let mut hasher = Sha256::new();
    hasher.update(req.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    Ok(Some(Idempotency {
        key: key.to_owned(),
        fingerprint: hasher.finalize().into(),
    }))
}

/// JSON with sorted object members, so that member order does not matter.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            let inner: Vec<String> = members
                .into_iter()
                .map(|(k, v)| format!("{}:{}", Value::String(k.clone()), canonical(v)))
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", inner.join(","))
        }
        scalar => scalar.to_string(),
    }
}

/// The merchant account a request concerns: its `merchantAccount`, else the
/// payment's (path or redirectResult).
fn account_of(
    state: &AdyenState,
    obj: Option<&Map<String, Value>>,
    psp: Option<&str>,
) -> Option<String> {
    if let Some(account) = obj
        .and_then(|o| o.get("merchantAccount"))
        .and_then(Value::as_str)
    {
        return Some(account.to_owned());
    }
    let inner = state.lock();
    let psp = match psp {
        Some(psp) => Some(psp.to_owned()),
        None => obj
            .and_then(|o| o.get("details"))
            .and_then(|d| d.get("redirectResult"))
            .and_then(Value::as_str)
            .and_then(|token| inner.redirect_results.get(token).cloned()),
    };
    psp.and_then(|psp| inner.payments.get(&psp).map(|p| p.merchant_account.clone()))
}

fn json_response(status: StatusCode, body: Vec<u8>, idem_key: Option<&str>) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.content_type("application/json");
    if let Some(key) = idem_key.and_then(|k| HeaderValue::from_str(k).ok()) {
        builder.insert_header((IDEMPOTENCY_KEY, key));
    }
    builder.body(body)
}

/// Runs one API call: authentication, faults, validation, idempotency, the
/// operation under the state lock, then the webhooks.
async fn pipeline(
    state: Data<AdyenState>,
    req: HttpRequest,
    body: Bytes,
    op: Operation,
    psp: Option<String>,
) -> HttpResponse {
    let idem_key = req
        .headers()
        .get(IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned());
    // Authentication and validation come first, faults or not: a request
    // the real Adyen would refuse is refused here too, so a fault cannot
    // hide a malformed request from a test.
    let obj = match check_request(&state, &req, &body, op) {
        Ok(obj) => obj,
        Err(err) => return error_response(&err, idem_key.as_deref()),
    };
    let account = account_of(&state, Some(&obj), psp.as_deref());
    let from_header = header_fault(&req);
    let api_fault = match from_header {
        Some(f) if !f.is_notification() => Some(f),
        Some(_) => None,
        None => account
            .as_deref()
            .and_then(|a| state.lock().take_fault(a, false)),
    };
    let notification_fault = from_header.filter(|f| f.is_notification());
    match api_fault {
        Some(Fault::Timeout) => {
            tokio::time::sleep(FAULT_DELAY).await;
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "000",
                "Gateway Timeout",
                "internal",
            )
            .error_response();
        }
        Some(Fault::Http500) => {
            let mut err = ApiError::internal("An unexpected error occurred");
            err.psp_reference = Some(psp_reference());
            return err.error_response();
        }
        Some(Fault::Malformed) => {
            return HttpResponse::Ok()
                .content_type("application/json")
                .body("{\"pspReference\":\"8816178952045\",\"resultCode\":<html>Bad Gateway");
        }
        Some(Fault::Delay(ms)) => tokio::time::sleep(Duration::from_millis(ms)).await,
        _ => {}
    }
    let result = process(&state, &req, &body, &obj, op, psp.as_deref());
    let response = match result {
        Ok((status, body, items)) => {
            notify::dispatch(&state, items, notification_fault);
            json_response(status, body, idem_key.as_deref())
        }
        Err(err) => error_response(&err, idem_key.as_deref()),
    };
    if api_fault == Some(Fault::TimeoutAfterEffect) {
        tokio::time::sleep(FAULT_DELAY).await;
    }
    response
}

/// An error answer, echoing the request's `Idempotency-Key`.
fn error_response(err: &ApiError, idem_key: Option<&str>) -> HttpResponse {
    let mut response = err.error_response();
    if let Some(key) = idem_key.and_then(|k| HeaderValue::from_str(k).ok()) {
        response.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("idempotency-key"),
            key,
        );
    }
    response
}

/// Authentication, the body as a JSON object, its validation against the
/// official document and the merchant account: everything Adyen checks
/// before it acts.
fn check_request(
    state: &AdyenState,
    req: &HttpRequest,
    body: &[u8],
    op: Operation,
) -> Result<Map<String, Value>, ApiError> {
    authenticate(state, req)?;
    let obj = parse_object(body)?;
    state.validator.check(op, &obj)?;
    if let Some(account) = obj.get("merchantAccount").and_then(Value::as_str) {
        if account != state.config.merchant_account {
            return Err(ApiError::invalid_merchant_account());
        }
    }
    Ok(obj)
}

/// The idempotent operation on a checked request; the answer body and the
/// webhooks to send.
fn process(
    state: &AdyenState,
    req: &HttpRequest,
    body: &[u8],
    obj: &Map<String, Value>,
    op: Operation,
    psp: Option<&str>,
) -> Result<(StatusCode, Vec<u8>, Vec<Item>), ApiError> {
    let idem = idempotency(req, body)?;
    let mut inner = state.lock();
    if let Some(idem) = &idem {
        if let Some(stored) = inner.idempotency.get(&idem.key) {
            if stored.fingerprint != idem.fingerprint {
                return Err(ApiError::validation(
                    "000",
                    "Idempotency-Key was already used with a different request",
                ));
            }
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            return Ok((status, stored.body.clone(), Vec::new()));
        }
    }
    let (status, answer, items) = run_op(state, &mut inner, op, obj, psp)?;
    let answer = serde_json::to_vec(&answer).map_err(|e| ApiError::internal(e.to_string()))?;
    if let Some(idem) = idem {
        inner.idempotency.insert(
            idem.key,
            StoredAnswer {
                fingerprint: idem.fingerprint,
                status: status.as_u16(),
                body: answer.clone(),
            },
        );
    }
    Ok((status, answer, items))
}

fn run_op(
    state: &AdyenState,
    inner: &mut Inner,
    op: Operation,
    obj: &Map<String, Value>,
    psp: Option<&str>,
) -> Outcome {
    match op {
        Operation::Payments => create_payment(state, inner, obj),
        Operation::PaymentDetails => payment_details(inner, obj),
        Operation::StandaloneCancels => standalone_cancel(inner, obj),
        Operation::Captures | Operation::Cancels | Operation::Refunds | Operation::Reversals => {
            modify(state, inner, op, obj, psp.unwrap_or_default())
        }
    }
}

// ---------------------------------------------------------------------------
// Handlers

/// `POST /payments`
pub(crate) async fn payments(
    state: Data<AdyenState>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    pipeline(state, req, body, Operation::Payments, None).await
}

/// `POST /payments/details`
pub(crate) async fn details(
    state: Data<AdyenState>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    pipeline(state, req, body, Operation::PaymentDetails, None).await
}

/// `POST /cancels`
pub(crate) async fn cancels_by_reference(
    state: Data<AdyenState>,
    req: HttpRequest,
    body: Bytes,
) -> HttpResponse {
    pipeline(state, req, body, Operation::StandaloneCancels, None).await
}

/// `POST /payments/{paymentPspReference}/{captures|cancels|refunds|reversals}`
pub(crate) async fn modification(
    state: Data<AdyenState>,
    req: HttpRequest,
    path: Path<(String, String)>,
    body: Bytes,
) -> HttpResponse {
    let (psp, kind) = path.into_inner();
    let op = match kind.as_str() {
        "captures" => Operation::Captures,
        "cancels" => Operation::Cancels,
        "refunds" => Operation::Refunds,
        "reversals" => Operation::Reversals,
        _ => return not_found().await,
    };
    pipeline(state, req, body, op, Some(psp)).await
}

// ---------------------------------------------------------------------------
// Payments

/// A documented test holder name: resultCode, refusalReason, refusalReasonCode.
fn holder_name_outcome(holder: &str) -> Option<(ResultCode, &'static str, &'static str)> {
    // "DECLINED : 06 : ERROR" customises the raw scheme answer: the first part counts.
    let name = holder.split(':').next().unwrap_or_default().trim();
    Some(match name {
        "UNKNOWN" => (ResultCode::Error, "Unknown", "0"),
        "DECLINED" => (ResultCode::Refused, "Refused", "2"),
        "REFERRAL" => (ResultCode::Refused, "Referral", "3"),
        "ERROR" => (ResultCode::Error, "Acquirer Error", "4"),
        "BLOCK_CARD" => (ResultCode::Refused, "Blocked Card", "5"),
        "CARD_EXPIRED" => (ResultCode::Refused, "Expired Card", "6"),
        "INVALID_AMOUNT" => (ResultCode::Refused, "Invalid Amount", "7"),
        "INVALID_CARD_NUMBER" => (ResultCode::Refused, "Invalid Card Number", "8"),
        "ISSUER_UNAVAILABLE" => (ResultCode::Refused, "Issuer Unavailable", "9"),
        "NOT_SUPPORTED" => (ResultCode::Refused, "Not supported", "10"),
        "NOT_3D_AUTHENTICATED" => (ResultCode::Refused, "3D Not Authenticated", "11"),
        "NOT_ENOUGH_BALANCE" => (ResultCode::Refused, "Not enough balance", "12"),
        "PENDING" => (ResultCode::Received, "", "13"),
        "ACQUIRER_FRAUD" => (ResultCode::Refused, "Acquirer Fraud", "14"),
        "CANCELLED" => (ResultCode::Refused, "Cancelled", "15"),
        "SHOPPER_CANCELLED" => (ResultCode::Refused, "Shopper Cancelled", "16"),
        _ => return None,
    })
}

/// A card field: the raw one, or the `encrypted...` one with its `test_` prefix.
fn card_field(method: &Map<String, Value>, raw: &str, encrypted: &str) -> Option<String> {
    if let Some(v) = method.get(raw).and_then(Value::as_str) {
        return Some(v.trim().to_owned());
    }
    method
        .get(encrypted)
        .and_then(Value::as_str)
        .map(|v| v.strip_prefix("test_").unwrap_or(v).trim().to_owned())
}

fn brand_of(number: &str) -> &'static str {
    match number.as_bytes().first() {
        Some(b'4') => "visa",
        Some(b'5') | Some(b'2') => "mc",
        Some(b'3') => "amex",
        _ => "scheme",
    }
}

pub(crate) const AUTHORISED_CARD: &str = "4111111111111111";
pub(crate) const THREE_DS_CARD: &str = "4212345678901237";

fn create_payment(state: &AdyenState, inner: &mut Inner, obj: &Map<String, Value>) -> Outcome {
    let amount = &obj["amount"];
    let value = amount["value"].as_i64().unwrap_or(-1);
    let value = u64::try_from(value)
        .map_err(|_| ApiError::validation("137", "Invalid amount specified"))?;
    let currency = amount["currency"].as_str().unwrap_or_default().to_owned();
    let merchant_account = obj["merchantAccount"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reference = obj["reference"].as_str().unwrap_or_default().to_owned();
    let return_url = obj["returnUrl"].as_str().unwrap_or_default().to_owned();
    let method = obj["paymentMethod"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let method_type = method
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !matches!(method_type, "scheme" | "card") {
        let mut err = ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "905",
            "Payment details are not supported",
            "configuration",
        );
        err.psp_reference = Some(psp_reference());
        return Err(err);
    }
    let number = card_field(&method, "number", "encryptedCardNumber").unwrap_or_default();
    if !crate::util::is_card_number(&number) {
        return Err(ApiError::validation("101", "Invalid card number"));
    }
    let month = card_field(&method, "expiryMonth", "encryptedExpiryMonth")
        .and_then(|m| m.parse::<u32>().ok())
        .filter(|m| (1..=12).contains(m));
    let year = card_field(&method, "expiryYear", "encryptedExpiryYear")
        .and_then(|y| y.parse::<i64>().ok())
        .filter(|y| (2000..=2099).contains(y));
    let (Some(month), Some(year)) = (month, year) else {
        return Err(ApiError::validation("129", "Expiry Date Invalid"));
    };
    let cvc = card_field(&method, "cvc", "encryptedSecurityCode");
    let holder = method
        .get("holderName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let (auto_capture, capture_delay_hours) = capture_delay(obj)?;
    let browser_info = has_browser_info(obj);

    let mut result = ResultCode::Authorised;
    let mut refusal: Option<(&str, &str)> = None;
    let is_test_card = number == AUTHORISED_CARD || number == THREE_DS_CARD;
    let expired = (year, month) < crate::util::current_year_month();
    if let Some((code, reason, reason_code)) = holder_name_outcome(&holder) {
        result = code;
        if code != ResultCode::Received {
            refusal = Some((reason, reason_code));
        }
    } else if expired {
        result = ResultCode::Refused;
        refusal = Some(("Expired Card", "6"));
    } else if is_test_card
        && ((month, year) != (3, 2030) || cvc.as_deref().is_some_and(|c| c != "737"))
    {
        // A wrong CVC or expiry on a test card gives a generic refusal.
        result = ResultCode::Refused;
        refusal = Some(("Refused", "2"));
    } else if number == THREE_DS_CARD && !browser_info {
        // The issuer wants 3-D Secure 2, which a browser flow cannot run
        // without the browser's data: the issuer's soft decline, which
        // Adyen answers with refusal reason 38 "Authentication required"
        // (docs.adyen.com/development-resources/refusal-reasons).
        result = ResultCode::Refused;
        refusal = Some(("Authentication required", "38"));
    } else if number == THREE_DS_CARD {
        result = ResultCode::RedirectShopper;
    }
    let late_failure = match holder.trim().to_ascii_lowercase().as_str() {
        "capture failed" => Some(LateFailure::Capture),
        "refund failed" => Some(LateFailure::Refund),
        _ => None,
    };
    let psp = inner.new_psp_reference();
    let brand = brand_of(&number);
    let mut payment = Payment {
        psp_reference: psp.clone(),
        merchant_account,
        merchant_reference: reference,
        value,
        formatted_amount: currency::format_amount(value, &currency),
        currency,
        result_code: result,
        refusal_reason: refusal.map(|r| r.0.to_owned()),
        refusal_reason_code: refusal.map(|r| r.1.to_owned()),
        card_summary: number[number.len() - 4..].to_owned(),
        brand,
        captured: 0,
        refunded: 0,
        cancelled: false,
        capture_closed: false,
        auto_capture,
        capture_delay_hours,
        // Known once the payment has a final result: no authentication
        // for a card outside 3-D Secure, the page's outcome otherwise.
        three_ds: (result != ResultCode::RedirectShopper && result != ResultCode::Received)
            .then_some(ThreeDs::NotOffered),
        browser_info,
        return_url,
        modifications: Vec::new(),
        late_failure,
        redirect_outcome: None,
        details_answer: None,
        expiry: format!("{month:02}/{year}"),
        seq: inner.payments.len() as u64,
    };
    let mut items = Vec::new();
    if result == ResultCode::Authorised {
        authorise(&mut payment);
    }
    if matches!(
        result,
        ResultCode::Authorised | ResultCode::Refused | ResultCode::Error
    ) {
        items.push(authorisation_item(&payment));
    }
    let mut answer = payment_answer(&payment);
    if result == ResultCode::RedirectShopper {
        answer["action"] = json!({
            "type": "redirect",
            "url": format!("{}/threeDS/redirect/{psp}", state.base_url),
            "method": "GET",
            "paymentMethodType": "scheme",
        });
    }
    tracing::debug!(
        psp = %psp, result = result.as_str(), value, currency = %payment.currency,
        card_summary = %payment.card_summary, "adyen: payment"
    );
    inner.payments.insert(psp, payment);
    Ok((StatusCode::OK, answer, items))
}

/// Adyen's longest `captureDelayHours`: "Maximum value: **672** (28 days)"
/// (the v71 document, `PaymentRequest.captureDelayHours`).
pub(crate) const MAX_CAPTURE_DELAY_HOURS: i64 = 672;

/// `captureDelayHours`: (captured at once, delayed by these hours). Without
/// it the account's default applies, which is manual capture here.
fn capture_delay(obj: &Map<String, Value>) -> Result<(bool, Option<u32>), ApiError> {
    let Some(hours) = obj.get("captureDelayHours").filter(|v| !v.is_null()) else {
        return Ok((false, None));
    };
    match hours.as_i64() {
        Some(0) => Ok((true, None)),
        Some(h @ 1..=MAX_CAPTURE_DELAY_HOURS) => Ok((true, u32::try_from(h).ok())),
        _ => Err(ApiError::validation(
            "000",
            format!("Field 'captureDelayHours' is not valid: 0 to {MAX_CAPTURE_DELAY_HOURS} hours"),
        )),
    }
}

/// Whether `browserInfo` has every member the v71 document requires of it
/// (checked by the schema too when the documents are loaded).
fn has_browser_info(obj: &Map<String, Value>) -> bool {
    const REQUIRED: &[&str] = &[
        "acceptHeader",
        "colorDepth",
        "javaEnabled",
        "language",
        "screenHeight",
        "screenWidth",
        "timeZoneOffset",
        "userAgent",
    ];
    obj.get("browserInfo")
        .and_then(Value::as_object)
        .is_some_and(|info| {
            REQUIRED
                .iter()
                .all(|k| info.get(*k).is_some_and(|v| !v.is_null()))
        })
}

/// Marks a payment authorised: captured at once with `captureDelayHours:
/// 0`, captured when the delay elapses with more.
pub(crate) fn authorise(payment: &mut Payment) {
    payment.result_code = ResultCode::Authorised;
    payment.refusal_reason = None;
    payment.refusal_reason_code = None;
    if payment.auto_capture && payment.capture_delay_hours.is_none() {
        payment.captured = payment.value;
        payment.capture_closed = true;
    }
}

/// The `/payments` (or `/payments/details`) answer for the payment as it is.
/// An answer with an action (`RedirectShopper`) carries no `pspReference`:
/// v71 gives it "in the `/payments/details` response" for payment methods
/// that need an action (the document's `PaymentResponse.pspReference`, and
/// its `ideal` and `card-3d-secure-2-web` examples).
pub(crate) fn payment_answer(payment: &Payment) -> Value {
    if payment.result_code == ResultCode::RedirectShopper {
        return json!({"resultCode": payment.result_code.as_str()});
    }
    let mut answer = json!({
        "pspReference": payment.psp_reference,
        "resultCode": payment.result_code.as_str(),
        "amount": {"value": payment.value, "currency": payment.currency},
        "merchantReference": payment.merchant_reference,
    });
    if let (Some(reason), Some(code)) = (&payment.refusal_reason, &payment.refusal_reason_code) {
        answer["refusalReason"] = Value::String(reason.clone());
        answer["refusalReasonCode"] = Value::String(code.clone());
    }
    let mut additional = Map::new();
    if payment.result_code == ResultCode::Authorised {
        answer["paymentMethod"] = json!({"brand": payment.brand, "type": "scheme"});
        additional.insert("cardSummary".into(), json!(payment.card_summary));
        additional.insert("authCode".into(), json!("064123"));
    }
    if let Some(three_ds) = payment.three_ds {
        for (key, value) in three_ds.additional_data() {
            additional.insert((*key).into(), json!(value));
        }
    }
    if !additional.is_empty() {
        answer["additionalData"] = Value::Object(additional);
    }
    answer
}

/// The AUTHORISATION webhook item of a payment with a final result.
pub(crate) fn authorisation_item(payment: &Payment) -> Item {
    let success = payment.result_code == ResultCode::Authorised;
    let reason = if success {
        format!("064123:{}:{}", payment.card_summary, payment.expiry)
    } else {
        payment
            .refusal_reason
            .clone()
            .unwrap_or_else(|| payment.result_code.as_str().to_owned())
    };
    let mut extra = vec![("cardSummary", payment.card_summary.clone())];
    if let Some(code) = &payment.refusal_reason_code {
        extra.push(("refusalReasonCode", code.clone()));
    }
    notify::item(
        "AUTHORISATION",
        &payment.psp_reference,
        None,
        &payment.merchant_account,
        &payment.merchant_reference,
        payment.value,
        &payment.currency,
        success,
        &reason,
        payment.brand,
        &extra,
    )
}

fn payment_details(inner: &mut Inner, obj: &Map<String, Value>) -> Outcome {
    let token = obj["details"]
        .get("redirectResult")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::validation(
                "000",
                "Required field 'details.redirectResult' is not provided.",
            )
        })?;
    let psp = inner
        .redirect_results
        .get(token)
        .cloned()
        .ok_or_else(|| ApiError::validation("14_018", "Invalid payload provided"))?;
    let payment = inner
        .payments
        .get_mut(&psp)
        .ok_or_else(|| ApiError::validation("14_018", "Invalid payload provided"))?;
    if let Some(answer) = &payment.details_answer {
        return Ok((StatusCode::OK, answer.clone(), Vec::new()));
    }
    match payment.redirect_outcome {
        Some(super::state::RedirectOutcome::Approved) => {
            payment.three_ds = Some(ThreeDs::Authenticated);
            authorise(payment);
        }
        Some(super::state::RedirectOutcome::Failed) => {
            payment.three_ds = Some(ThreeDs::Failed);
            payment.result_code = ResultCode::Refused;
            payment.refusal_reason = Some("3D Not Authenticated".into());
            payment.refusal_reason_code = Some("11".into());
        }
        Some(super::state::RedirectOutcome::Cancelled) => {
            payment.result_code = ResultCode::Cancelled;
        }
        None => return Err(ApiError::validation("14_018", "Invalid payload provided")),
    }
    let answer = payment_answer(payment);
    payment.details_answer = Some(answer.clone());
    let items = vec![authorisation_item(payment)];
    Ok((StatusCode::OK, answer, items))
}

// ---------------------------------------------------------------------------
// Modifications

fn requested_amount(obj: &Map<String, Value>) -> Result<Option<(u64, String)>, ApiError> {
    let Some(amount) = obj.get("amount").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let value = amount["value"]
        .as_i64()
        .and_then(|v| u64::try_from(v).ok())
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::validation("137", "Invalid amount specified"))?;
    Ok(Some((
        value,
        amount["currency"].as_str().unwrap_or_default().to_owned(),
    )))
}

fn modify(
    state: &AdyenState,
    inner: &mut Inner,
    op: Operation,
    obj: &Map<String, Value>,
    psp: &str,
) -> Outcome {
    let amount = requested_amount(obj)?;
    let reference = obj
        .get("reference")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mod_psp = inner.new_psp_reference();
    let account = inner
        .payments
        .get(psp)
        .map(|p| p.merchant_account.clone())
        .ok_or_else(ApiError::unknown_payment)?;
    let multiple_partial_captures = state.multiple_partial_captures(inner, &account);
    let payment = inner
        .payments
        .get_mut(psp)
        .ok_or_else(ApiError::unknown_payment)?;
    let mut answer = json!({
        "merchantAccount": payment.merchant_account,
        "paymentPspReference": payment.psp_reference,
        "pspReference": mod_psp,
        "status": "received",
    });
    if let Some(reference) = &reference {
        answer["reference"] = Value::String(reference.clone());
    }
    if let Some((value, currency)) = &amount {
        answer["amount"] = json!({"value": value, "currency": currency});
    }
    let items = apply_modification(
        payment,
        op,
        amount,
        reference,
        &mod_psp,
        multiple_partial_captures,
    );
    Ok((StatusCode::CREATED, answer, items))
}

/// Applies a modification (the outcome Adyen would notify) and returns the
/// webhook items. `multiple_partial_captures`: the account's setting;
/// without it "any unclaimed amount after a partial capture gets
/// cancelled" (the v71 document, `POST /payments/{paymentPspReference}/captures`).
pub(crate) fn apply_modification(
    payment: &mut Payment,
    op: Operation,
    amount: Option<(u64, String)>,
    reference: Option<String>,
    mod_psp: &str,
    multiple_partial_captures: bool,
) -> Vec<Item> {
    let authorised = payment.result_code == ResultCode::Authorised;
    let same_currency = amount
        .as_ref()
        .is_none_or(|(_, currency)| *currency == payment.currency);
    let (value, currency) = amount.unwrap_or((payment.value, payment.currency.clone()));
    let mut extra: Vec<(&str, String)> = Vec::new();
    let mut late: Option<(&'static str, &'static str)> = None;
    let (event_code, outcome): (&'static str, Result<(), &str>) = match op {
        Operation::Captures => {
            let outcome = if !same_currency {
                Err("Modification in different currency than authorisation")
            } else if !authorised
                || payment.cancelled
                || payment.capture_closed
                || value > payment.value - payment.captured
            {
                Err(INSUFFICIENT_BALANCE)
            } else {
                payment.captured += value;
                // A capture made before a delayed automatic capture ran
                // replaces it.
                payment.capture_delay_hours = None;
                if !multiple_partial_captures || payment.captured == payment.value {
                    payment.capture_closed = true;
                }
                if payment.late_failure == Some(LateFailure::Capture) {
                    payment.captured -= value;
                    late = Some(("CAPTURE_FAILED", "Capture failed"));
                }
                Ok(())
            };
            ("CAPTURE", outcome)
        }
        Operation::Refunds => {
            let outcome = if !same_currency {
                Err("Modification in different currency than authorisation")
            } else if !authorised || value > payment.captured - payment.refunded {
                Err(INSUFFICIENT_BALANCE)
            } else {
                payment.refunded += value;
                if payment.late_failure == Some(LateFailure::Refund) {
                    payment.refunded -= value;
                    late = Some(("REFUND_FAILED", "Refund failed"));
                }
                Ok(())
            };
            ("REFUND", outcome)
        }
        Operation::Cancels | Operation::StandaloneCancels => {
            let outcome = if authorised
                && !payment.cancelled
                && payment.captured == 0
                && !payment.capture_closed
            {
                payment.cancelled = true;
                payment.capture_closed = true;
                payment.capture_delay_hours = None;
                Ok(())
            } else {
                Err(INSUFFICIENT_BALANCE)
            };
            ("CANCELLATION", outcome)
        }
        _ => {
            // Reversal: cancel when nothing is captured, else refund what remains.
            let outcome = if !authorised || payment.cancelled {
                Err(INSUFFICIENT_BALANCE)
            } else if payment.captured == 0 && !payment.capture_closed {
                payment.cancelled = true;
                payment.capture_closed = true;
                payment.capture_delay_hours = None;
                extra.push(("modification.action", "cancel".into()));
                Ok(())
            } else if payment.captured > payment.refunded {
                payment.refunded = payment.captured;
                payment.capture_closed = true;
                extra.push(("modification.action", "refund".into()));
                Ok(())
            } else {
                Err(INSUFFICIENT_BALANCE)
            };
            ("CANCEL_OR_REFUND", outcome)
        }
    };
    let (value, currency) = match op {
        Operation::Captures | Operation::Refunds => (value, currency),
        _ => (payment.value, payment.currency.clone()),
    };
    let success = outcome.is_ok();
    let reason = outcome.err().unwrap_or_default().to_owned();
    let merchant_reference = reference
        .clone()
        .unwrap_or_else(|| payment.merchant_reference.clone());
    tracing::debug!(
        psp = %payment.psp_reference, modification = %mod_psp, event_code, value, success,
        "adyen: modification"
    );
    payment.modifications.push(Modification {
        psp_reference: mod_psp.to_owned(),
        event_code,
        value,
        currency: currency.clone(),
        success,
        reason: reason.clone(),
        reference: reference.clone(),
    });
    let mut items = vec![notify::item(
        event_code,
        mod_psp,
        Some(&payment.psp_reference),
        &payment.merchant_account,
        &merchant_reference,
        value,
        &currency,
        success,
        &reason,
        payment.brand,
        &extra,
    )];
    if let Some((late_code, late_reason)) = late {
        payment.modifications.push(Modification {
            psp_reference: mod_psp.to_owned(),
            event_code: late_code,
            value,
            currency: currency.clone(),
            success: true,
            reason: late_reason.to_owned(),
            reference,
        });
        items.push(notify::item(
            late_code,
            mod_psp,
            Some(&payment.psp_reference),
            &payment.merchant_account,
            &merchant_reference,
            value,
            &currency,
            true,
            late_reason,
            payment.brand,
            &[],
        ));
    }
    items
}

fn standalone_cancel(inner: &mut Inner, obj: &Map<String, Value>) -> Outcome {
    let account = obj["merchantAccount"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let payment_reference = obj["paymentReference"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let reference = obj
        .get("reference")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mod_psp = inner.new_psp_reference();
    let mut answer = json!({
        "merchantAccount": account,
        "paymentReference": payment_reference,
        "pspReference": mod_psp,
        "status": "received",
    });
    if let Some(reference) = &reference {
        answer["reference"] = Value::String(reference.clone());
    }
    // The latest payment of the account with that merchant reference.
    let target = inner
        .payments
        .values()
        .filter(|p| p.merchant_account == account && p.merchant_reference == payment_reference)
        .max_by_key(|p| p.seq)
        .map(|p| p.psp_reference.clone());
    let items = match target.and_then(|psp| inner.payments.get_mut(&psp)) {
        Some(payment) => apply_modification(
            payment,
            Operation::StandaloneCancels,
            None,
            reference,
            &mod_psp,
            false,
        ),
        None => vec![notify::item(
            "CANCELLATION",
            &mod_psp,
            None,
            &account,
            &payment_reference,
            0,
            "EUR",
            false,
            "Original payment not found",
            "",
            &[],
        )],
    };
    Ok((StatusCode::CREATED, answer, items))
}
