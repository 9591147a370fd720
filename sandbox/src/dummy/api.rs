//! The dummy PSP's JSON API (`{base}/v1/...`): errors, authentication,
//! validation, idempotency and the charge, capture, void and refund handlers.

use actix_web::{
    body::BoxBody,
    dev::Payload,
    http::{header, StatusCode},
    web::{Bytes, Data, Path},
    FromRequest, HttpRequest, HttpResponse, ResponseError,
};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use url::Url;

use super::{
    card::{self, CardOutcome},
    notify::{self, Pending},
    state::{Charge, ChargeStatus, DummyState, Inner, Refund, StoredAnswer},
};
use crate::util;

/// Header naming an idempotent request.
pub(crate) const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Header set on an answer replayed for a repeated idempotency key.
pub(crate) const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

// ---------------------------------------------------------------------------
// Errors

/// An API error: `{"error":{"code","message","param"?}}` with a 4xx/5xx status.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    param: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            param: None,
        }
    }

    fn with_param(mut self, param: &str) -> Self {
        self.param = Some(param.to_owned());
        self
    }

    /// 400 `invalid_request` about the request as a whole.
    pub(crate) fn request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 400 `invalid_request` about one field.
    pub(crate) fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::request(message).with_param(param)
    }

    fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn charge_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such charge: {id}"),
        )
    }

    fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "invalid_state", message)
    }

    fn amount_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "amount_too_large", message).with_param("amount")
    }

    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

/// The JSON error answer.
pub(crate) fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    param: Option<&str>,
) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: ErrorDetail {
            code,
            message,
            param,
        },
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        error_response(self.status, self.code, &self.message, self.param.as_deref())
    }
}

/// Fallback for unknown paths under `/v1/`.
pub(crate) async fn not_found() -> HttpResponse {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such endpoint", None)
}

/// Fallback for a known path with another method.
pub(crate) async fn method_not_allowed() -> HttpResponse {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this endpoint",
        None,
    )
}

fn state_of(req: &HttpRequest) -> Result<&Data<DummyState>, ApiError> {
    req.app_data::<Data<DummyState>>()
        .ok_or_else(|| ApiError::internal("dummy state missing"))
}

// ---------------------------------------------------------------------------
// Authentication

/// Extractor succeeding when `Authorization: Bearer <api key>` is right.
pub(crate) struct Authenticated;

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(authenticate(req))
    }
}

fn authenticate(req: &HttpRequest) -> Result<Authenticated, ApiError> {
    let state = state_of(req)?;
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing Authorization header (expected: Bearer <api key>)",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token {
        Some(token) if token == state.config.api_key => Ok(Authenticated),
        _ => Err(ApiError::unauthorized("invalid API key")),
    }
}

// ---------------------------------------------------------------------------
// Idempotency

/// The `Idempotency-Key` of a request and the fingerprint of the request.
pub(crate) struct Idempotency {
    key: String,
    fingerprint: [u8; 32],
}

fn idempotency(req: &HttpRequest, body: &[u8]) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::invalid(IDEMPOTENCY_KEY, "Idempotency-Key must be ASCII"))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::invalid(
            IDEMPOTENCY_KEY,
            format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"),
        ));
    }
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str().as_bytes());
    hasher.update(b"\n");
    hasher.update(req.path().as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_body(body));
    Ok(Some(Idempotency {
        key: key.to_owned(),
        fingerprint: hasher.finalize().into(),
    }))
}

/// The body with JSON whitespace and member order normalised (raw bytes when
/// it is not JSON), so that "the same body" means the same JSON value.
fn canonical_body(body: &[u8]) -> Vec<u8> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Vec::new();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => {
            let mut out = Vec::with_capacity(body.len());
            write_canonical(&value, &mut out);
            out
        }
        Err(_) => body.to_vec(),
    }
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(Value::String(key.clone()).to_string().as_bytes());
                out.push(b':');
                write_canonical(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
    }
}

/// What an operation produced: status, JSON body, notifications to send.
type Outcome = Result<(StatusCode, Vec<u8>, Vec<Pending>), ApiError>;

fn to_json(value: &impl Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(|err| ApiError::internal(err.to_string()))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body)
}

/// Runs `op` under the state lock, honouring the idempotency key: a known key
/// with the same fingerprint replays the remembered answer without running
/// `op`; with another fingerprint it is a 409. Successful answers are
/// remembered. Notifications are handed to the background after the lock is
/// released, once the answer is ready.
fn run(
    state: &DummyState,
    idempotency: Option<Idempotency>,
    op: impl FnOnce(&mut Inner) -> Outcome,
) -> Result<HttpResponse, ApiError> {
    let (status, body, pending) = {
        let mut inner = state.lock();
        if let Some(idem) = &idempotency {
            if let Some(stored) = inner.idempotency.get(&idem.key) {
                if stored.fingerprint != idem.fingerprint {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "idempotency_conflict",
                        "this Idempotency-Key was already used with another request",
                    ));
                }
                tracing::debug!(key = %idem.key, "dummy: idempotent replay");
                let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
                return Ok(HttpResponse::build(status)
                    .content_type("application/json")
                    .insert_header((IDEMPOTENT_REPLAYED, "true"))
                    .body(stored.body.clone()));
            }
        }
        let (status, body, pending) = op(&mut inner)?;
        if let Some(idem) = idempotency {
            inner.idempotency.insert(
                idem.key,
                StoredAnswer {
                    fingerprint: idem.fingerprint,
                    status: status.as_u16(),
                    body: body.clone(),
                },
            );
        }
        (status, body, pending)
    };
    notify::dispatch(state, pending);
    Ok(json_response(status, body))
}

// ---------------------------------------------------------------------------
// Field validation

/// Parses a JSON object body; an empty body is `{}` when `optional`.
fn parse_object(body: &[u8], optional: bool) -> Result<Map<String, Value>, ApiError> {
    if optional && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::request("the body must be a JSON object")),
        Err(err) => Err(ApiError::request(format!(
            "the body is not valid JSON: {err}"
        ))),
    }
}

/// A member, `None` when absent or `null`.
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn required<'a>(
    obj: &'a Map<String, Value>,
    name: &str,
    param: &str,
) -> Result<&'a Value, ApiError> {
    member(obj, name).ok_or_else(|| ApiError::invalid(param, format!("{param} is required")))
}

fn as_amount(value: &Value, param: &str) -> Result<u64, ApiError> {
    value.as_u64().filter(|a| *a > 0).ok_or_else(|| {
        ApiError::invalid(
            param,
            format!("{param} must be an integer greater than 0 (minor units)"),
        )
    })
}

fn as_str<'a>(value: &'a Value, param: &str) -> Result<&'a str, ApiError> {
    value
        .as_str()
        .ok_or_else(|| ApiError::invalid(param, format!("{param} must be a string")))
}

fn as_bool(value: &Value, param: &str) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| ApiError::invalid(param, format!("{param} must be true or false")))
}

fn as_int_in(value: &Value, param: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    value
        .as_i64()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            ApiError::invalid(
                param,
                format!("{param} must be an integer from {min} to {max}"),
            )
        })
}

fn as_http_url(value: &Value, param: &str) -> Result<Url, ApiError> {
    let text = as_str(value, param)?;
    Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| ApiError::invalid(param, format!("{param} must be an absolute http(s) URL")))
}

fn opt_string(
    obj: &Map<String, Value>,
    name: &str,
    param: &str,
    max_chars: usize,
) -> Result<Option<String>, ApiError> {
    let Some(value) = member(obj, name) else {
        return Ok(None);
    };
    let text = as_str(value, param)?;
    if text.chars().count() > max_chars {
        return Err(ApiError::invalid(
            param,
            format!("{param} must be at most {max_chars} characters"),
        ));
    }
    Ok(Some(text.to_owned()))
}

/// A validated charge request. The card number itself is not kept.
struct NewCharge {
    amount: u64,
    currency: String,
    reference: String,
    payment_id: Option<String>,
    capture: bool,
    card_last4: String,
    outcome: CardOutcome,
    return_url: Url,
    notification_url: Option<Url>,
}

fn parse_new_charge(body: &[u8]) -> Result<NewCharge, ApiError> {
    let obj = parse_object(body, false)?;

    let amount = as_amount(required(&obj, "amount", "amount")?, "amount")?;

    let currency = as_str(required(&obj, "currency", "currency")?, "currency")?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::invalid(
            "currency",
            "currency must be three upper-case letters (ISO 4217)",
        ));
    }

    let reference = as_str(required(&obj, "reference", "reference")?, "reference")?;
    if !(1..=64).contains(&reference.chars().count()) {
        return Err(ApiError::invalid(
            "reference",
            "reference must be 1 to 64 characters",
        ));
    }

    let payment_id = opt_string(&obj, "payment_id", "payment_id", 64)?;
    if payment_id.as_deref() == Some("") {
        return Err(ApiError::invalid(
            "payment_id",
            "payment_id must be 1 to 64 characters",
        ));
    }

    let capture = match member(&obj, "capture") {
        Some(value) => as_bool(value, "capture")?,
        None => false,
    };

    let card = required(&obj, "card", "card")?
        .as_object()
        .ok_or_else(|| ApiError::invalid("card", "card must be an object"))?;
    let number = as_str(required(card, "number", "card.number")?, "card.number")?;
    if !crate::util::is_card_number(number) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_card_number",
            "the card number is not valid (12 to 19 digits passing the Luhn check)",
        )
        .with_param("card.number"));
    }
    let exp_month = as_int_in(
        required(card, "exp_month", "card.exp_month")?,
        "card.exp_month",
        1,
        12,
    )?;
    let exp_year = as_int_in(
        required(card, "exp_year", "card.exp_year")?,
        "card.exp_year",
        1000,
        9999,
    )?;
    if let Some(cvc) = member(card, "cvc") {
        let cvc = as_str(cvc, "card.cvc")?;
        if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                "card.cvc",
                "card.cvc must be 3 or 4 digits",
            ));
        }
    }
    opt_string(card, "holder_name", "card.holder_name", 128)?;

    let return_url = as_http_url(required(&obj, "return_url", "return_url")?, "return_url")?;
    let notification_url = member(&obj, "notification_url")
        .map(|v| as_http_url(v, "notification_url"))
        .transpose()?;

    let expired = card::is_expired(
        u32::try_from(exp_month).unwrap_or(0),
        exp_year,
        util::current_year_month(),
    );
    Ok(NewCharge {
        amount,
        currency: currency.to_owned(),
        reference: reference.to_owned(),
        payment_id,
        capture,
        card_last4: card::last4(number),
        outcome: card::outcome(number, expired),
        return_url,
        notification_url,
    })
}

// ---------------------------------------------------------------------------
// Handlers

/// `POST /v1/charges`
pub(crate) async fn create_charge(
    _: Authenticated,
    req: HttpRequest,
    state: Data<DummyState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let idem = idempotency(&req, &body)?;
    let new = parse_new_charge(&body)?;
    drop(body);
    run(&state, idem, |inner| {
        let id = util::random_id("ch_");
        let mut charge = Charge {
            id: id.clone(),
            status: ChargeStatus::Authorized,
            amount: new.amount,
            currency: new.currency,
            reference: new.reference,
            payment_id: new.payment_id,
            amount_captured: 0,
            amount_refunded: 0,
            refusal_code: None,
            refusal_reason: None,
            redirect_url: None,
            three_d_secure: None,
            card_last4: new.card_last4,
            capture: new.capture,
            return_url: new.return_url,
            notification_url: new.notification_url,
        };
        match new.outcome {
            CardOutcome::Authorized if new.capture => {
                charge.status = ChargeStatus::Captured;
                charge.amount_captured = charge.amount;
            }
            CardOutcome::Authorized => {}
            CardOutcome::Declined => refuse(&mut charge, "card_declined", "Insufficient funds"),
            CardOutcome::Expired => refuse(&mut charge, "expired_card", "Card expired"),
            CardOutcome::ThreeDSecure => {
                charge.status = ChargeStatus::RequiresAction;
                charge.redirect_url = Some(format!("{}/3ds/{id}", state.base_url));
            }
        }
        tracing::debug!(
            charge = %id, status = charge.status.as_str(), amount = charge.amount,
            currency = %charge.currency, card_last4 = %charge.card_last4,
            "dummy: charge created"
        );
        let body = to_json(&charge)?;
        inner.charges.insert(id, charge);
        Ok((StatusCode::CREATED, body, Vec::new()))
    })
}

pub(crate) fn refuse(charge: &mut Charge, code: &str, reason: &str) {
    charge.status = ChargeStatus::Refused;
    charge.refusal_code = Some(code.to_owned());
    charge.refusal_reason = Some(reason.to_owned());
}

/// `GET /v1/charges/{id}`
pub(crate) async fn get_charge(
    _: Authenticated,
    state: Data<DummyState>,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    charge_response(&state, &path)
}

/// `GET /v1/charges?payment_id=P`: the charges made for the platform's
/// payment `P`, by id (how a platform that lost the answer to a
/// charge finds out whether it was made).
pub(crate) async fn search_charges(
    _: Authenticated,
    state: Data<DummyState>,
    query: actix_web::web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let payment_id = query
        .get("payment_id")
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid("payment_id", "payment_id is required"))?;
    let inner = state.lock();
    let mut found: Vec<&Charge> = inner
        .charges
        .values()
        .filter(|c| c.payment_id.as_ref() == Some(payment_id))
        .collect();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(json_response(
        StatusCode::OK,
        to_json(&serde_json::json!({"object": "list", "data": found}))?,
    ))
}

/// The charge as JSON (also used by the unauthenticated control endpoint).
pub(crate) fn charge_response(state: &DummyState, id: &str) -> Result<HttpResponse, ApiError> {
    let inner = state.lock();
    let charge = inner
        .charges
        .get(id)
        .ok_or_else(|| ApiError::charge_not_found(id))?;
    Ok(json_response(StatusCode::OK, to_json(charge)?))
}

/// `POST /v1/charges/{id}/capture` `{"amount"?, "final"?}`
pub(crate) async fn capture(
    _: Authenticated,
    req: HttpRequest,
    state: Data<DummyState>,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let idem = idempotency(&req, &body)?;
    let obj = parse_object(&body, true)?;
    let amount = member(&obj, "amount")
        .map(|v| as_amount(v, "amount"))
        .transpose()?;
    let final_capture = match member(&obj, "final") {
        Some(value) => as_bool(value, "final")?,
        None => false,
    };
    let id = path.into_inner();
    run(&state, idem, |inner| {
        let charge = inner
            .charges
            .get_mut(&id)
            .ok_or_else(|| ApiError::charge_not_found(&id))?;
        if charge.status != ChargeStatus::Authorized {
            return Err(ApiError::invalid_state(format!(
                "cannot capture a charge that is {}",
                charge.status.as_str()
            )));
        }
        let remaining = charge.amount - charge.amount_captured;
        let amount = amount.unwrap_or(remaining);
        if amount > remaining {
            return Err(ApiError::amount_too_large(format!(
                "capture of {amount} exceeds the {remaining} that remains"
            )));
        }
        charge.amount_captured += amount;
        if final_capture || charge.amount_captured == charge.amount {
            charge.status = ChargeStatus::Captured;
        }
        tracing::debug!(
            charge = %id, amount, captured = charge.amount_captured,
            status = charge.status.as_str(), "dummy: capture"
        );
        let body = to_json(&*charge)?;
        // Every capture, partial or not, is notified as `charge.captured`.
        let pending = notify::event_for(charge, "charge.captured", None)
            .into_iter()
            .collect();
        Ok((StatusCode::OK, body, pending))
    })
}

/// `POST /v1/charges/{id}/void`
pub(crate) async fn void(
    _: Authenticated,
    req: HttpRequest,
    state: Data<DummyState>,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let idem = idempotency(&req, &body)?;
    let id = path.into_inner();
    run(&state, idem, |inner| {
        let charge = inner
            .charges
            .get_mut(&id)
            .ok_or_else(|| ApiError::charge_not_found(&id))?;
        let voidable = match charge.status {
            ChargeStatus::RequiresAction => true,
            ChargeStatus::Authorized => charge.amount_captured == 0,
            _ => false,
        };
        if !voidable {
            return Err(ApiError::invalid_state(format!(
                "cannot void a charge that is {}{}",
                charge.status.as_str(),
                if charge.amount_captured > 0 {
                    " with captured funds"
                } else {
                    ""
                }
            )));
        }
        charge.status = ChargeStatus::Canceled;
        charge.redirect_url = None;
        tracing::debug!(charge = %id, "dummy: void");
        let body = to_json(&*charge)?;
        let pending = notify::event_for(charge, "charge.canceled", None)
            .into_iter()
            .collect();
        Ok((StatusCode::OK, body, pending))
    })
}

/// `POST /v1/charges/{id}/refunds` `{"amount"?, "reason"?}`
pub(crate) async fn create_refund(
    _: Authenticated,
    req: HttpRequest,
    state: Data<DummyState>,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let idem = idempotency(&req, &body)?;
    let obj = parse_object(&body, true)?;
    let amount = member(&obj, "amount")
        .map(|v| as_amount(v, "amount"))
        .transpose()?;
    let reason = opt_string(&obj, "reason", "reason", 255)?;
    let id = path.into_inner();
    run(&state, idem, |inner| {
        let charge = inner
            .charges
            .get_mut(&id)
            .ok_or_else(|| ApiError::charge_not_found(&id))?;
        if charge.amount_captured == 0 {
            return Err(ApiError::invalid_state(format!(
                "cannot refund a charge that is {} with nothing captured",
                charge.status.as_str()
            )));
        }
        let refundable = charge.amount_captured - charge.amount_refunded;
        let amount = amount.unwrap_or(refundable);
        if amount == 0 || amount > refundable {
            return Err(ApiError::amount_too_large(format!(
                "refund of {amount} exceeds the {refundable} that remains refundable"
            )));
        }
        charge.amount_refunded += amount;
        let refund = Refund {
            id: util::random_id("re_"),
            charge: id.clone(),
            amount,
            status: "succeeded",
            reason,
        };
        tracing::debug!(
            charge = %id, refund = %refund.id, amount,
            refunded = charge.amount_refunded, "dummy: refund"
        );
        let body = to_json(&refund)?;
        let pending = notify::event_for(charge, "charge.refunded", Some(&refund))
            .into_iter()
            .collect();
        inner.refunds.insert(refund.id.clone(), refund);
        Ok((StatusCode::CREATED, body, pending))
    })
}

/// `GET /v1/charges/{id}/refunds/{refund_id}`
pub(crate) async fn get_refund(
    _: Authenticated,
    state: Data<DummyState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (charge_id, refund_id) = path.into_inner();
    let inner = state.lock();
    if !inner.charges.contains_key(&charge_id) {
        return Err(ApiError::charge_not_found(&charge_id));
    }
    let refund = inner
        .refunds
        .get(&refund_id)
        .filter(|r| r.charge == charge_id)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such refund: {refund_id}"),
            )
        })?;
    Ok(json_response(StatusCode::OK, to_json(refund)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_bodies() {
        assert_eq!(
            canonical_body(br#" { "b": [1, {"d":2,"c":3}], "a": "x" } "#),
            canonical_body(br#"{"a":"x","b":[1,{"c":3,"d":2}]}"#)
        );
        assert_ne!(canonical_body(br#"{"a":1}"#), canonical_body(br#"{"a":2}"#));
        assert_eq!(canonical_body(b"  "), Vec::<u8>::new());
        assert_eq!(canonical_body(b"not json"), b"not json".to_vec());
    }
}
