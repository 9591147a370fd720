//! The REST API: OAuth2 token, Orders v2, Payments v2; authentication,
//! `PayPal-Request-Id` idempotency, `Prefer`, `PayPal-Mock-Response`
//! negative testing, and the JSON representations.

use std::time::{Duration, Instant};

use actix_web::{
    http::{header, StatusCode},
    web::{Bytes, Data, Path},
    HttpRequest, HttpResponse,
};
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{
    error::PaypalError,
    state::{
        exponent, now_rfc3339, rfc3339, Authorization, AuthorizationStatus, Capture, CaptureStatus,
        FaultMode, Funding, Inner, Intent, Money, Order, OrderStatus, PaypalState, PurchaseUnit,
        Refund, StoredAnswer, CURRENCIES,
    },
    validate::{self, member, Operation, Violation},
    webhooks::{self, Event},
    FAULT_HEADER,
};
use crate::util;

/// Header naming an idempotent request.
pub(crate) const REQUEST_ID: &str = "PayPal-Request-Id";
/// Header of PayPal's negative testing.
pub(crate) const MOCK_RESPONSE: &str = "PayPal-Mock-Response";

/// The payee shown in purchase units.
const MERCHANT_ID: &str = "PASSERELLESBX";
const MERCHANT_EMAIL: &str = "sb-merchant@business.example.com";

// ---------------------------------------------------------------------------
// Authentication

/// The client id of the caller: from the bearer token (even expired) or
/// the Basic credentials of the token endpoint.
pub(crate) fn account_of(state: &PaypalState, req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(token) = value.strip_prefix("Bearer ") {
        return state
            .lock()
            .tokens
            .get(token.trim())
            .map(|(client, _)| client.clone());
    }
    basic_credentials(value).map(|(id, _)| id)
}

fn basic_credentials(value: &str) -> Option<(String, String)> {
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The client id of a valid bearer token, else PayPal's 401.
fn authenticate(state: &PaypalState, req: &HttpRequest) -> Result<String, PaypalError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(PaypalError::authentication_failure());
    };
    let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(PaypalError::authentication_failure());
    };
    let inner = state.lock();
    match inner.tokens.get(token.trim()) {
        None => Err(PaypalError::invalid_token(
            "Token signature verification failed",
        )),
        Some((_, expiry)) if *expiry <= Instant::now() => Err(PaypalError::invalid_token(
            "Access Token not found in cache",
        )),
        Some((client, _)) => Ok(client.clone()),
    }
}

/// `POST /v1/oauth2/token` (Basic client_id:secret, form body
/// `grant_type=client_credentials`).
pub(crate) async fn token(
    state: Data<PaypalState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    let credentials = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(basic_credentials);
    let authenticated = credentials.is_some_and(|(id, secret)| {
        constant_time_eq(id.as_bytes(), state.config.client_id.as_bytes())
            & constant_time_eq(secret.as_bytes(), state.config.client_secret.as_bytes())
    });
    if !authenticated {
        return Err(PaypalError::oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client Authentication failed",
        ));
    }
    let grant = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned());
    match grant.as_deref() {
        Some("client_credentials") => {}
        None => {
            return Err(PaypalError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Grant Type is NULL",
            ))
        }
        Some(_) => {
            return Err(PaypalError::oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unsupported grant_type",
            ))
        }
    }
    let lifetime = state.config.token_lifetime_secs;
    let access_token = format!(
        "A21AA{}{}{}",
        util::random_id(""),
        util::random_id(""),
        util::random_id("")
    );
    let expiry = Instant::now() + Duration::from_secs(lifetime);
    state.lock().tokens.insert(
        access_token.clone(),
        (state.config.client_id.clone(), expiry),
    );
    Ok(HttpResponse::Ok().json(json!({
        "scope": "https://uri.paypal.com/services/payments/futurepayments https://uri.paypal.com/services/payments/realtimepayment https://uri.paypal.com/services/payments/payment/authcapture openid https://uri.paypal.com/services/payments/refund https://uri.paypal.com/services/applications/webhooks https://uri.paypal.com/services/payments/orders/client_sdk_orders_api",
        "access_token": access_token,
        "token_type": "Bearer",
        "app_id": "APP-80W284485P519543T",
        "expires_in": lifetime,
        "nonce": format!("{}{}", now_rfc3339(), util::random_id("")),
    })))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------
// Request headers

/// `Prefer: return=representation` (else minimal).
fn wants_representation(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("Prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=representation"))
}

/// The notification fault named by [`FAULT_HEADER`] for this request.
fn notification_fault(req: &HttpRequest) -> Option<FaultMode> {
    req.headers()
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(FaultMode::parse)
        .filter(|m| m.is_notification())
}

/// The error `PayPal-Mock-Response: {"mock_application_codes": "CODE"}` asks for.
fn mock_error(state: &PaypalState, req: &HttpRequest) -> Result<(), PaypalError> {
    let Some(value) = req.headers().get(MOCK_RESPONSE) else {
        return Ok(());
    };
    let parsed: Option<Value> = value
        .to_str()
        .ok()
        .and_then(|v| serde_json::from_str(v).ok());
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("mock_application_codes"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let Some(code) = code else {
        return Err(PaypalError::invalid_request(vec![Violation::header(
            MOCK_RESPONSE,
            "INVALID_PARAMETER_VALUE",
            "PayPal-Mock-Response must be a JSON object with mock_application_codes",
        )]));
    };
    Err(match code.as_str() {
        "INTERNAL_SERVER_ERROR" => PaypalError::internal(),
        "PERMISSION_DENIED" => PaypalError::permission_denied(),
        "INVALID_RESOURCE_ID" => PaypalError::resource_not_found(state),
        "MISSING_REQUIRED_PARAMETER"
        | "INVALID_PARAMETER_VALUE"
        | "INVALID_PARAMETER_SYNTAX"
        | "INVALID_STRING_LENGTH"
        | "MALFORMED_REQUEST_JSON" => {
            let issue: &'static str = match code.as_str() {
                "MISSING_REQUIRED_PARAMETER" => "MISSING_REQUIRED_PARAMETER",
                "INVALID_PARAMETER_VALUE" => "INVALID_PARAMETER_VALUE",
                "INVALID_PARAMETER_SYNTAX" => "INVALID_PARAMETER_SYNTAX",
                "INVALID_STRING_LENGTH" => "INVALID_STRING_LENGTH",
                _ => "MALFORMED_REQUEST_JSON",
            };
            PaypalError::invalid_request(vec![Violation::body("/", None, issue)])
        }
        other => PaypalError::unprocessable(state, other),
    })
}

// ---------------------------------------------------------------------------
// Idempotent execution

/// What an operation produced: status, body (none: empty), notifications.
type Outcome = Result<(StatusCode, Option<Value>, Vec<Event>), PaypalError>;

/// Runs `op` under the state lock, honouring `PayPal-Request-Id`: a known id
/// (for the same account and endpoint) replays the first answer without
/// running `op`. Successful answers are remembered. Notifications are handed
/// to the background once the lock is released.
fn run(
    state: &PaypalState,
    req: &HttpRequest,
    account: &str,
    op: impl FnOnce(&mut Inner) -> Outcome,
) -> Result<HttpResponse, PaypalError> {
    let key = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|id| {
            (
                account.to_owned(),
                format!("{} {}", req.method(), req.path()),
                id.to_owned(),
            )
        });
    let (status, body, events) = {
        let mut inner = state.lock();
        if let Some(key) = &key {
            if let Some(stored) = inner.idempotency.get(key) {
                tracing::debug!(request_id = %key.2, "paypal: idempotent replay");
                let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
                return Ok(respond(status, stored.body.clone()));
            }
        }
        let (status, body, events) = op(&mut inner)?;
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        if let Some(key) = key {
            inner.idempotency.insert(
                key,
                StoredAnswer {
                    status: status.as_u16(),
                    body: body.clone(),
                },
            );
        }
        (status, body, events)
    };
    webhooks::dispatch(state, account, events, notification_fault(req));
    Ok(respond(status, body))
}

fn respond(status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.insert_header(("Paypal-Debug-Id", util::random_id("").to_ascii_lowercase()));
    if body.is_empty() {
        builder.finish()
    } else {
        builder.content_type("application/json").body(body)
    }
}

// ---------------------------------------------------------------------------
// Amounts

/// The business rules of an amount (syntax was checked by the schema).
fn parse_money(state: &PaypalState, value: &Value, field: &str) -> Result<Money, PaypalError> {
    let currency = value
        .get("currency_code")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !CURRENCIES.contains(&currency) {
        return Err(PaypalError::unprocessable_field(
            state,
            &format!("{field}/currency_code"),
            Some(currency),
            "INVALID_CURRENCY_CODE",
        ));
    }
    let text = value
        .get("value")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value_field = format!("{field}/value");
    if text.starts_with('-') {
        return Err(PaypalError::unprocessable_field(
            state,
            &value_field,
            Some(text),
            "CANNOT_BE_ZERO_OR_NEGATIVE",
        ));
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let exp = exponent(currency);
    if frac.len() > exp as usize {
        let issue = if exp == 0 {
            "DECIMALS_NOT_SUPPORTED"
        } else {
            "DECIMAL_PRECISION"
        };
        return Err(PaypalError::unprocessable_field(
            state,
            &value_field,
            Some(text),
            if state.issues.contains_key(issue) {
                issue
            } else {
                "DECIMAL_PRECISION"
            },
        ));
    }
    let int: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| {
            PaypalError::unprocessable_field(state, &value_field, Some(text), "MAX_VALUE_EXCEEDED")
        })?
    };
    let frac_value: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().unwrap_or(0) * 10u64.pow(exp - frac.len() as u32)
    };
    let minor = int
        .checked_mul(10u64.pow(exp))
        .and_then(|v| v.checked_add(frac_value))
        .filter(|v| *v <= 99_999_999_999_999_999)
        .ok_or_else(|| {
            PaypalError::unprocessable_field(state, &value_field, Some(text), "MAX_VALUE_EXCEEDED")
        })?;
    if minor == 0 {
        return Err(PaypalError::unprocessable_field(
            state,
            &value_field,
            Some(text),
            "CANNOT_BE_ZERO_OR_NEGATIVE",
        ));
    }
    Ok(Money {
        minor,
        currency: currency.to_owned(),
    })
}

fn opt_str(obj: &Map<String, Value>, name: &str) -> Option<String> {
    member(obj, name).and_then(Value::as_str).map(str::to_owned)
}

/// PayPal's fee on `gross`: 3.49 % plus a fixed 0.49 (49 minor units), at most the gross.
fn fee(gross: &Money) -> Money {
    let fee = (gross.minor.saturating_mul(349) / 10_000).saturating_add(49);
    gross.with(fee.min(gross.minor))
}

// ---------------------------------------------------------------------------
// Representations

fn link(href: String, rel: &str, method: &str) -> Value {
    json!({"href": href, "rel": rel, "method": method})
}

fn insert_opt(obj: &mut Map<String, Value>, name: &str, value: &Option<String>) {
    if let Some(value) = value {
        obj.insert(name.to_owned(), json!(value));
    }
}

fn payer(order: &Order) -> Option<Value> {
    let payer_id = order.payer_id.as_ref()?;
    Some(json!({
        "name": {"given_name": "Sandbox", "surname": "Buyer"},
        "email_address": "sb-buyer@personal.example.com",
        "payer_id": payer_id,
        "address": {"country_code": "FR"},
    }))
}

fn payment_source(order: &Order) -> Option<Value> {
    match &order.payer_id {
        Some(payer_id) => Some(json!({"paypal": {
            "email_address": "sb-buyer@personal.example.com",
            "account_id": payer_id,
            "account_status": "VERIFIED",
            "name": {"given_name": "Sandbox", "surname": "Buyer"},
            "address": {"country_code": "FR"},
        }})),
        None if order.with_payment_source => Some(json!({"paypal": {}})),
        None => None,
    }
}

fn order_links(base: &str, order: &Order) -> Value {
    let self_href = format!("{base}/v2/checkout/orders/{}", order.id);
    let mut links = vec![link(self_href.clone(), "self", "GET")];
    match order.status {
        OrderStatus::Created | OrderStatus::PayerActionRequired => {
            let rel = if order.with_payment_source {
                "payer-action"
            } else {
                "approve"
            };
            links.push(link(
                format!("{base}/checkoutnow?token={}", order.id),
                rel,
                "GET",
            ));
            if !order.with_payment_source {
                links.push(link(self_href.clone(), "update", "PATCH"));
                let action = match order.intent {
                    Intent::Capture => "capture",
                    Intent::Authorize => "authorize",
                };
                links.push(link(format!("{self_href}/{action}"), action, "POST"));
            }
        }
        OrderStatus::Approved => {
            links.push(link(self_href.clone(), "update", "PATCH"));
            let action = match order.intent {
                Intent::Capture => "capture",
                Intent::Authorize => "authorize",
            };
            links.push(link(format!("{self_href}/{action}"), action, "POST"));
        }
        OrderStatus::Completed => {}
    }
    Value::Array(links)
}

/// The order; `full` adds the amounts and details (`return=representation`
/// and GET), otherwise the minimal form (`id`, `status`, `payment_source`,
/// `links`, and the payments once there are some).
pub(crate) fn order_json(base: &str, inner: &Inner, order: &Order, full: bool) -> Value {
    let mut obj = Map::new();
    obj.insert("id".to_owned(), json!(order.id));
    if full {
        obj.insert("intent".to_owned(), json!(order.intent.as_str()));
    }
    obj.insert("status".to_owned(), json!(order.status.as_str()));
    if let Some(ps) = payment_source(order) {
        obj.insert("payment_source".to_owned(), ps);
    }
    let has_payments = order
        .units
        .iter()
        .any(|u| !u.capture_ids.is_empty() || !u.authorization_ids.is_empty());
    if full || has_payments {
        let units: Vec<Value> = order
            .units
            .iter()
            .map(|unit| {
                let mut u = Map::new();
                u.insert("reference_id".to_owned(), json!(unit.reference_id));
                if full {
                    u.insert("amount".to_owned(), unit.amount.to_json());
                    u.insert(
                        "payee".to_owned(),
                        json!({"email_address": MERCHANT_EMAIL, "merchant_id": MERCHANT_ID}),
                    );
                    insert_opt(&mut u, "description", &unit.description);
                    insert_opt(&mut u, "custom_id", &unit.custom_id);
                    insert_opt(&mut u, "invoice_id", &unit.invoice_id);
                    insert_opt(&mut u, "soft_descriptor", &unit.soft_descriptor);
                }
                let mut payments = Map::new();
                let captures: Vec<Value> = unit
                    .capture_ids
                    .iter()
                    .filter_map(|id| inner.captures.get(id))
                    .map(|c| capture_json(base, c, true))
                    .collect();
                let authorizations: Vec<Value> = unit
                    .authorization_ids
                    .iter()
                    .filter_map(|id| inner.authorizations.get(id))
                    .map(|a| authorization_json(base, a, true))
                    .collect();
                if !authorizations.is_empty() {
                    payments.insert("authorizations".to_owned(), Value::Array(authorizations));
                }
                if !captures.is_empty() {
                    payments.insert("captures".to_owned(), Value::Array(captures));
                }
                if !payments.is_empty() {
                    u.insert("payments".to_owned(), Value::Object(payments));
                }
                Value::Object(u)
            })
            .collect();
        obj.insert("purchase_units".to_owned(), Value::Array(units));
    }
    if let Some(payer) = payer(order) {
        if full || has_payments {
            obj.insert("payer".to_owned(), payer);
        }
    }
    if full {
        obj.insert("create_time".to_owned(), json!(order.create_time));
        if order.update_time != order.create_time {
            obj.insert("update_time".to_owned(), json!(order.update_time));
        }
    }
    obj.insert("links".to_owned(), order_links(base, order));
    Value::Object(obj)
}

fn seller_protection() -> Value {
    json!({"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]})
}

pub(crate) fn capture_json(base: &str, capture: &Capture, full: bool) -> Value {
    let self_href = format!("{base}/v2/payments/captures/{}", capture.id);
    let mut links = vec![
        link(self_href.clone(), "self", "GET"),
        link(format!("{self_href}/refund"), "refund", "POST"),
    ];
    links.push(match &capture.authorization_id {
        Some(auth) => link(
            format!("{base}/v2/payments/authorizations/{auth}"),
            "up",
            "GET",
        ),
        None => link(
            format!("{base}/v2/checkout/orders/{}", capture.order_id),
            "up",
            "GET",
        ),
    });
    if !full {
        return json!({"id": capture.id, "status": capture.status.as_str(), "links": links});
    }
    let fee = fee(&capture.amount);
    let mut obj = Map::new();
    obj.insert("id".to_owned(), json!(capture.id));
    obj.insert("status".to_owned(), json!(capture.status.as_str()));
    if let Some(reason) = capture.status_reason {
        obj.insert("status_details".to_owned(), json!({"reason": reason}));
    }
    obj.insert("amount".to_owned(), capture.amount.to_json());
    obj.insert("final_capture".to_owned(), json!(capture.final_capture));
    obj.insert("seller_protection".to_owned(), seller_protection());
    if capture.status != CaptureStatus::Pending && capture.status != CaptureStatus::Declined {
        obj.insert(
            "seller_receivable_breakdown".to_owned(),
            json!({
                "gross_amount": capture.amount.to_json(),
                "paypal_fee": fee.to_json(),
                "net_amount": capture.amount.with(capture.amount.minor - fee.minor).to_json(),
            }),
        );
    }
    insert_opt(&mut obj, "invoice_id", &capture.invoice_id);
    insert_opt(&mut obj, "custom_id", &capture.custom_id);
    insert_opt(&mut obj, "note_to_payer", &capture.note_to_payer);
    let mut related = json!({"order_id": capture.order_id});
    if let Some(auth) = &capture.authorization_id {
        related["authorization_id"] = json!(auth);
    }
    obj.insert(
        "supplementary_data".to_owned(),
        json!({"related_ids": related}),
    );
    obj.insert("create_time".to_owned(), json!(capture.create_time));
    obj.insert("update_time".to_owned(), json!(capture.update_time));
    obj.insert("links".to_owned(), Value::Array(links));
    Value::Object(obj)
}

pub(crate) fn authorization_json(base: &str, auth: &Authorization, full: bool) -> Value {
    let self_href = format!("{base}/v2/payments/authorizations/{}", auth.id);
    let links = json!([
        link(self_href.clone(), "self", "GET"),
        link(format!("{self_href}/capture"), "capture", "POST"),
        link(format!("{self_href}/void"), "void", "POST"),
        link(format!("{self_href}/reauthorize"), "reauthorize", "POST"),
        link(
            format!("{base}/v2/checkout/orders/{}", auth.order_id),
            "up",
            "GET"
        ),
    ]);
    if !full {
        return json!({"id": auth.id, "status": auth.status.as_str(), "links": links});
    }
    let mut obj = Map::new();
    obj.insert("id".to_owned(), json!(auth.id));
    obj.insert("status".to_owned(), json!(auth.status.as_str()));
    obj.insert("amount".to_owned(), auth.amount.to_json());
    insert_opt(&mut obj, "invoice_id", &auth.invoice_id);
    insert_opt(&mut obj, "custom_id", &auth.custom_id);
    obj.insert("seller_protection".to_owned(), seller_protection());
    obj.insert(
        "supplementary_data".to_owned(),
        json!({"related_ids": {"order_id": auth.order_id}}),
    );
    obj.insert("expiration_time".to_owned(), json!(auth.expiration_time));
    obj.insert("create_time".to_owned(), json!(auth.create_time));
    obj.insert("update_time".to_owned(), json!(auth.update_time));
    obj.insert("links".to_owned(), links);
    Value::Object(obj)
}

pub(crate) fn refund_json(base: &str, inner: &Inner, refund: &Refund, full: bool) -> Value {
    let links = json!([
        link(
            format!("{base}/v2/payments/refunds/{}", refund.id),
            "self",
            "GET"
        ),
        link(
            format!("{base}/v2/payments/captures/{}", refund.capture_id),
            "up",
            "GET"
        ),
    ]);
    if !full {
        return json!({"id": refund.id, "status": "COMPLETED", "links": links});
    }
    let capture = inner.captures.get(&refund.capture_id);
    let capture_fee = capture.map(|c| fee(&c.amount).minor).unwrap_or(0);
    let capture_amount = capture.map(|c| c.amount.minor).unwrap_or(1).max(1);
    let refunded_fee = refund.amount.with(
        u64::try_from(
            u128::from(capture_fee) * u128::from(refund.amount.minor) / u128::from(capture_amount),
        )
        .unwrap_or(0),
    );
    let mut obj = Map::new();
    obj.insert("id".to_owned(), json!(refund.id));
    obj.insert("status".to_owned(), json!("COMPLETED"));
    obj.insert("amount".to_owned(), refund.amount.to_json());
    insert_opt(&mut obj, "invoice_id", &refund.invoice_id);
    insert_opt(&mut obj, "note_to_payer", &refund.note_to_payer);
    obj.insert(
        "seller_payable_breakdown".to_owned(),
        json!({
            "gross_amount": refund.amount.to_json(),
            "paypal_fee": refunded_fee.to_json(),
            "net_amount": refund.amount.with(refund.amount.minor - refunded_fee.minor).to_json(),
            "total_refunded_amount": refund.amount.with(capture.map(|c| c.refunded).unwrap_or(0)).to_json(),
        }),
    );
    obj.insert("create_time".to_owned(), json!(refund.create_time));
    obj.insert("update_time".to_owned(), json!(refund.create_time));
    obj.insert("links".to_owned(), links);
    Value::Object(obj)
}

// ---------------------------------------------------------------------------
// Events

fn summary(verb: &str, amount: &Money) -> String {
    format!("{verb} {} {}", amount.value(), amount.currency)
}

pub(crate) fn capture_event(base: &str, capture: &Capture) -> Event {
    let (event_type, verb) = match capture.status {
        CaptureStatus::Pending => ("PAYMENT.CAPTURE.PENDING", "Payment pending for"),
        CaptureStatus::Declined => ("PAYMENT.CAPTURE.DENIED", "Payment denied for"),
        _ => ("PAYMENT.CAPTURE.COMPLETED", "Payment completed for"),
    };
    Event {
        event_type,
        resource_type: "capture",
        summary: summary(verb, &capture.amount),
        resource: capture_json(base, capture, true),
    }
}

// ---------------------------------------------------------------------------
// Orders

/// `POST /v2/checkout/orders`
pub(crate) async fn create_order(
    state: Data<PaypalState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    let obj = validate::check_recorded(&state, Operation::CreateOrder, &body)?;
    mock_error(&state, &req)?;
    let full = wants_representation(&req);
    let base = state.base_url.clone();
    let order = new_order(&state, &obj, &account)?;
    run(&state, &req, &account.clone(), move |inner| {
        let answer = order_json(&base, inner, &order, full);
        tracing::debug!(order = %order.id, "paypal: order created");
        inner.orders.insert(order.id.clone(), order);
        Ok((StatusCode::CREATED, Some(answer), Vec::new()))
    })
}

fn new_order(
    state: &PaypalState,
    obj: &Map<String, Value>,
    account: &str,
) -> Result<Order, PaypalError> {
    let intent = match obj.get("intent").and_then(Value::as_str) {
        Some("AUTHORIZE") => Intent::Authorize,
        _ => Intent::Capture,
    };
    let raw_units = obj
        .get("purchase_units")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if intent == Intent::Authorize && raw_units.len() > 1 {
        return Err(PaypalError::unprocessable(state, "UNSUPPORTED_INTENT"));
    }
    let mut units = Vec::with_capacity(raw_units.len());
    for (i, raw) in raw_units.iter().enumerate() {
        let empty = Map::new();
        let unit = raw.as_object().unwrap_or(&empty);
        let field = format!(
            "/purchase_units/@reference_id=='{}'/amount",
            opt_str(unit, "reference_id").unwrap_or_else(|| "default".to_owned())
        );
        let amount = parse_money(state, unit.get("amount").unwrap_or(&Value::Null), &field)?;
        let reference_id = match opt_str(unit, "reference_id") {
            Some(r) => r,
            None if raw_units.len() > 1 => {
                return Err(PaypalError::unprocessable_field(
                    state,
                    &format!("/purchase_units/{i}/reference_id"),
                    None,
                    "REFERENCE_ID_REQUIRED",
                ))
            }
            None => "default".to_owned(),
        };
        if units
            .iter()
            .any(|u: &PurchaseUnit| u.reference_id == reference_id)
        {
            return Err(PaypalError::unprocessable_field(
                state,
                &format!("/purchase_units/{i}/reference_id"),
                Some(&reference_id),
                "DUPLICATE_REFERENCE_ID",
            ));
        }
        if let Some(first) = units.first() {
            let first: &PurchaseUnit = first;
            if first.amount.currency != amount.currency {
                return Err(PaypalError::unprocessable(state, "MULTI_CURRENCY_ORDER"));
            }
        }
        units.push(PurchaseUnit {
            reference_id,
            amount,
            invoice_id: opt_str(unit, "invoice_id"),
            custom_id: opt_str(unit, "custom_id"),
            description: opt_str(unit, "description"),
            soft_descriptor: opt_str(unit, "soft_descriptor"),
            authorization_ids: Vec::new(),
            capture_ids: Vec::new(),
        });
    }
    let payment_source = member(obj, "payment_source").and_then(Value::as_object);
    if let Some(ps) = payment_source {
        if let Some(other) = ps.keys().find(|k| k.as_str() != "paypal") {
            return Err(PaypalError::unprocessable_field(
                state,
                &format!("/payment_source/{other}"),
                None,
                "PAYMENT_SOURCE_NOT_SUPPORTED",
            ));
        }
    }
    let context = payment_source
        .and_then(|ps| ps.get("paypal"))
        .and_then(|p| p.get("experience_context"))
        .or_else(|| member(obj, "application_context"))
        .and_then(Value::as_object);
    let now = now_rfc3339();
    let with_payment_source = payment_source.is_some_and(|ps| ps.contains_key("paypal"));
    Ok(Order {
        id: order_id(),
        account: account.to_owned(),
        intent,
        status: if with_payment_source {
            OrderStatus::PayerActionRequired
        } else {
            OrderStatus::Created
        },
        units,
        with_payment_source,
        return_url: context.and_then(|c| opt_str(c, "return_url")),
        cancel_url: context.and_then(|c| opt_str(c, "cancel_url")),
        brand_name: context.and_then(|c| opt_str(c, "brand_name")),
        payer_id: None,
        funding: Funding::Instant,
        create_time: now.clone(),
        update_time: now,
    })
}

/// PayPal-style ids: 17 upper-case alphanumeric characters.
fn paypal_id() -> String {
    super::state::paypal_chars(17)
}

fn order_id() -> String {
    paypal_id()
}

fn find_order<'a>(
    state: &PaypalState,
    inner: &'a mut Inner,
    id: &str,
    account: &str,
) -> Result<&'a mut Order, PaypalError> {
    inner
        .orders
        .get_mut(id)
        .filter(|o| o.account == account)
        .ok_or_else(|| PaypalError::resource_not_found(state))
}

/// `GET /v2/checkout/orders/{id}`
pub(crate) async fn get_order(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    mock_error(&state, &req)?;
    let inner = state.lock();
    let order = inner
        .orders
        .get(path.as_str())
        .filter(|o| o.account == account)
        .ok_or_else(|| PaypalError::resource_not_found(&state))?;
    let body = order_json(&state.base_url, &inner, order, true);
    Ok(respond(StatusCode::OK, body.to_string().into_bytes()))
}

/// The invoice ids already used by completed payments of other orders.
fn invoice_used(inner: &Inner, order: &Order) -> bool {
    order
        .units
        .iter()
        .filter_map(|u| u.invoice_id.as_ref())
        .any(|invoice| {
            inner.orders.values().any(|other| {
                other.id != order.id
                    && other.status == OrderStatus::Completed
                    && other
                        .units
                        .iter()
                        .any(|u| u.invoice_id.as_ref() == Some(invoice))
            })
        })
}

/// `POST /v2/checkout/orders/{id}/capture`
pub(crate) async fn capture_order(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    complete_order(state, req, path.into_inner(), body, Intent::Capture).await
}

/// `POST /v2/checkout/orders/{id}/authorize`
pub(crate) async fn authorize_order(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    complete_order(state, req, path.into_inner(), body, Intent::Authorize).await
}

async fn complete_order(
    state: Data<PaypalState>,
    req: HttpRequest,
    id: String,
    body: Bytes,
    action: Intent,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    validate::check_recorded(&state, Operation::CaptureOrAuthorizeOrder, &body)?;
    mock_error(&state, &req)?;
    let full = wants_representation(&req);
    let st = state.clone();
    run(&state, &req, &account.clone(), move |inner| {
        let state = &st;
        let base = state.base_url.as_str();
        let order = find_order(state, inner, &id, &account)?.clone();
        if order.intent != action {
            return Err(PaypalError::unprocessable_with(
                "ACTION_DOES_NOT_MATCH_INTENT",
                &format!(
                    "Order was created with an intent to '{}'. Please use v2/checkout/orders/order_id/{} to complete the transaction or alternately Create an order with an intent of '{}'.",
                    order.intent.as_str(),
                    order.intent.as_str().to_ascii_lowercase(),
                    action.as_str()
                ),
            ));
        }
        match order.status {
            OrderStatus::Completed => {
                return Err(PaypalError::unprocessable(
                    state,
                    match action {
                        Intent::Capture => "ORDER_ALREADY_CAPTURED",
                        Intent::Authorize => "ORDER_ALREADY_AUTHORIZED",
                    },
                ))
            }
            OrderStatus::Created | OrderStatus::PayerActionRequired => {
                return Err(PaypalError::unprocessable(state, "ORDER_NOT_APPROVED"))
            }
            OrderStatus::Approved => {}
        }
        if invoice_used(inner, &order) {
            return Err(PaypalError::unprocessable(state, "DUPLICATE_INVOICE_ID"));
        }
        if order.funding == Funding::Declined {
            // PayPal's "Handle funding failures": the buyer chooses another
            // funding source for this same order, which waits for them
            // again (its approval link works anew); nothing is captured.
            if let Some(stored) = inner.orders.get_mut(&order.id) {
                stored.status = if stored.with_payment_source {
                    OrderStatus::PayerActionRequired
                } else {
                    OrderStatus::Created
                };
                stored.funding = Funding::Instant;
                stored.update_time = now_rfc3339();
            }
            tracing::debug!(order = %order.id, "paypal: funding source declined");
            return Err(PaypalError::unprocessable(state, "INSTRUMENT_DECLINED"));
        }
        let now = now_rfc3339();
        let mut events = Vec::new();
        let mut updated = order;
        for unit in &mut updated.units {
            match action {
                Intent::Capture => {
                    let pending = updated.funding == Funding::Echeck;
                    let capture = Capture {
                        id: paypal_id(),
                        order_id: updated.id.clone(),
                        authorization_id: None,
                        amount: unit.amount.clone(),
                        status: if pending {
                            CaptureStatus::Pending
                        } else {
                            CaptureStatus::Completed
                        },
                        status_reason: pending.then_some("ECHECK"),
                        final_capture: true,
                        refunded: 0,
                        invoice_id: unit.invoice_id.clone(),
                        custom_id: unit.custom_id.clone(),
                        note_to_payer: None,
                        create_time: now.clone(),
                        update_time: now.clone(),
                    };
                    events.push(capture_event(base, &capture));
                    unit.capture_ids.push(capture.id.clone());
                    inner.captures.insert(capture.id.clone(), capture);
                }
                Intent::Authorize => {
                    let auth = Authorization {
                        id: paypal_id(),
                        order_id: updated.id.clone(),
                        amount: unit.amount.clone(),
                        status: AuthorizationStatus::Created,
                        captured: 0,
                        invoice_id: unit.invoice_id.clone(),
                        custom_id: unit.custom_id.clone(),
                        create_time: now.clone(),
                        update_time: now.clone(),
                        expiration_time: rfc3339(util::now_secs() + 29 * 86_400),
                    };
                    events.push(Event {
                        event_type: "PAYMENT.AUTHORIZATION.CREATED",
                        resource_type: "authorization",
                        summary: summary("A payment authorization was created for", &auth.amount),
                        resource: authorization_json(base, &auth, true),
                    });
                    unit.authorization_ids.push(auth.id.clone());
                    inner.authorizations.insert(auth.id.clone(), auth);
                }
            }
        }
        updated.status = OrderStatus::Completed;
        updated.update_time = now;
        let answer = order_json(base, inner, &updated, full);
        if action == Intent::Capture {
            events.push(Event {
                event_type: "CHECKOUT.ORDER.COMPLETED",
                resource_type: "checkout-order",
                summary: "Checkout Order Completed".to_owned(),
                resource: order_json(base, inner, &updated, true),
            });
        }
        tracing::debug!(order = %updated.id, action = action.as_str(), "paypal: order completed");
        inner.orders.insert(updated.id.clone(), updated);
        Ok((StatusCode::CREATED, Some(answer), events))
    })
}

// ---------------------------------------------------------------------------
// Payments: authorizations

/// `GET /v2/payments/authorizations/{id}`
pub(crate) async fn get_authorization(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    mock_error(&state, &req)?;
    let inner = state.lock();
    let auth = inner
        .authorizations
        .get(path.as_str())
        .filter(|a| owned_by(&inner, &a.order_id, &account))
        .ok_or_else(|| PaypalError::resource_not_found(&state))?;
    let body = authorization_json(&state.base_url, auth, true);
    Ok(respond(StatusCode::OK, body.to_string().into_bytes()))
}

fn owned_by(inner: &Inner, order_id: &str, account: &str) -> bool {
    inner
        .orders
        .get(order_id)
        .is_some_and(|o| o.account == account)
}

/// The most the authorization allows to capture in total: the lower of
/// 115 % of the authorized amount and the authorized amount plus 75 units.
fn capture_ceiling(amount: &Money) -> u64 {
    let units75 = 75 * 10u64.pow(exponent(&amount.currency));
    (amount.minor.saturating_mul(115) / 100).min(amount.minor.saturating_add(units75))
}

/// `POST /v2/payments/authorizations/{id}/capture`
pub(crate) async fn capture_authorization(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    let obj = validate::check_recorded(&state, Operation::CaptureAuthorization, &body)?;
    mock_error(&state, &req)?;
    let full = wants_representation(&req);
    let id = path.into_inner();
    let st = state.clone();
    run(&state, &req, &account.clone(), move |inner| {
        let state = &st;
        let base = state.base_url.as_str();
        let auth = inner
            .authorizations
            .get(&id)
            .filter(|a| owned_by(inner, &a.order_id, &account))
            .cloned()
            .ok_or_else(|| PaypalError::resource_not_found(state))?;
        match auth.status {
            AuthorizationStatus::Voided => {
                return Err(PaypalError::unprocessable(state, "AUTHORIZATION_VOIDED"))
            }
            AuthorizationStatus::Captured => {
                return Err(PaypalError::unprocessable(
                    state,
                    "AUTHORIZATION_ALREADY_CAPTURED",
                ))
            }
            AuthorizationStatus::Created | AuthorizationStatus::PartiallyCaptured => {}
        }
        let amount = match member(&obj, "amount") {
            Some(v) => {
                let amount = parse_money(state, v, "/amount")?;
                if amount.currency != auth.amount.currency {
                    return Err(PaypalError::unprocessable(
                        state,
                        "AUTH_CAPTURE_CURRENCY_MISMATCH",
                    ));
                }
                amount
            }
            None => auth
                .amount
                .with(auth.amount.minor.saturating_sub(auth.captured)),
        };
        if amount.minor == 0 || auth.captured + amount.minor > capture_ceiling(&auth.amount) {
            return Err(PaypalError::unprocessable(
                state,
                "MAX_CAPTURE_AMOUNT_EXCEEDED",
            ));
        }
        let final_capture = member(&obj, "final_capture")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let funding = inner
            .orders
            .get(&auth.order_id)
            .map(|o| o.funding)
            .unwrap_or(Funding::Instant);
        let pending = funding == Funding::Echeck;
        let now = now_rfc3339();
        let capture = Capture {
            id: paypal_id(),
            order_id: auth.order_id.clone(),
            authorization_id: Some(auth.id.clone()),
            amount,
            status: if pending {
                CaptureStatus::Pending
            } else {
                CaptureStatus::Completed
            },
            status_reason: pending.then_some("ECHECK"),
            final_capture,
            refunded: 0,
            invoice_id: opt_str(&obj, "invoice_id").or_else(|| auth.invoice_id.clone()),
            custom_id: auth.custom_id.clone(),
            note_to_payer: opt_str(&obj, "note_to_payer"),
            create_time: now.clone(),
            update_time: now.clone(),
        };
        let mut auth = auth;
        auth.captured += capture.amount.minor;
        auth.status = if final_capture || auth.captured >= auth.amount.minor {
            AuthorizationStatus::Captured
        } else {
            AuthorizationStatus::PartiallyCaptured
        };
        auth.update_time = now;
        if let Some(order) = inner.orders.get_mut(&auth.order_id) {
            if let Some(unit) = order
                .units
                .iter_mut()
                .find(|u| u.authorization_ids.contains(&auth.id))
            {
                unit.capture_ids.push(capture.id.clone());
            }
        }
        let answer = capture_json(base, &capture, full);
        let events = vec![capture_event(base, &capture)];
        inner.authorizations.insert(auth.id.clone(), auth);
        inner.captures.insert(capture.id.clone(), capture);
        Ok((StatusCode::CREATED, Some(answer), events))
    })
}

/// `POST /v2/payments/authorizations/{id}/void`
pub(crate) async fn void_authorization(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    mock_error(&state, &req)?;
    let full = wants_representation(&req);
    let id = path.into_inner();
    let st = state.clone();
    run(&state, &req, &account.clone(), move |inner| {
        let state = &st;
        let base = state.base_url.as_str();
        let owned = inner
            .authorizations
            .get(&id)
            .is_some_and(|a| owned_by(inner, &a.order_id, &account));
        let auth = inner
            .authorizations
            .get_mut(&id)
            .filter(|_| owned)
            .ok_or_else(|| PaypalError::resource_not_found(state))?;
        match auth.status {
            AuthorizationStatus::Voided => {
                return Err(PaypalError::unprocessable(state, "PREVIOUSLY_VOIDED"))
            }
            AuthorizationStatus::Captured => {
                return Err(PaypalError::unprocessable(state, "PREVIOUSLY_CAPTURED"))
            }
            AuthorizationStatus::Created | AuthorizationStatus::PartiallyCaptured => {}
        }
        auth.status = AuthorizationStatus::Voided;
        auth.update_time = now_rfc3339();
        let resource = authorization_json(base, auth, true);
        let event = Event {
            event_type: "PAYMENT.AUTHORIZATION.VOIDED",
            resource_type: "authorization",
            summary: "A payment authorization was voided".to_owned(),
            resource: resource.clone(),
        };
        if full {
            Ok((StatusCode::OK, Some(resource), vec![event]))
        } else {
            Ok((StatusCode::NO_CONTENT, None, vec![event]))
        }
    })
}

// ---------------------------------------------------------------------------
// Payments: captures and refunds

/// `GET /v2/payments/captures/{id}`
pub(crate) async fn get_capture(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    mock_error(&state, &req)?;
    let inner = state.lock();
    let capture = inner
        .captures
        .get(path.as_str())
        .filter(|c| owned_by(&inner, &c.order_id, &account))
        .ok_or_else(|| PaypalError::resource_not_found(&state))?;
    let body = capture_json(&state.base_url, capture, true);
    Ok(respond(StatusCode::OK, body.to_string().into_bytes()))
}

/// `GET /v2/payments/refunds/{id}`
pub(crate) async fn get_refund(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    mock_error(&state, &req)?;
    let inner = state.lock();
    let refund = inner
        .refunds
        .get(path.as_str())
        .filter(|r| {
            inner
                .captures
                .get(&r.capture_id)
                .is_some_and(|c| owned_by(&inner, &c.order_id, &account))
        })
        .ok_or_else(|| PaypalError::resource_not_found(&state))?;
    let body = refund_json(&state.base_url, &inner, refund, true);
    Ok(respond(StatusCode::OK, body.to_string().into_bytes()))
}

/// `POST /v2/payments/captures/{id}/refund`
pub(crate) async fn refund_capture(
    state: Data<PaypalState>,
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, PaypalError> {
    let account = authenticate(&state, &req)?;
    let obj = validate::check_recorded(&state, Operation::RefundCapture, &body)?;
    mock_error(&state, &req)?;
    let full = wants_representation(&req);
    let id = path.into_inner();
    let st = state.clone();
    run(&state, &req, &account.clone(), move |inner| {
        let state = &st;
        let base = state.base_url.as_str();
        let capture = inner
            .captures
            .get(&id)
            .filter(|c| owned_by(inner, &c.order_id, &account))
            .cloned()
            .ok_or_else(|| PaypalError::resource_not_found(state))?;
        match capture.status {
            CaptureStatus::Refunded => {
                return Err(PaypalError::unprocessable(state, "CAPTURE_FULLY_REFUNDED"))
            }
            CaptureStatus::Pending => {
                return Err(PaypalError::unprocessable(state, "PENDING_CAPTURE"))
            }
            CaptureStatus::Declined => {
                return Err(PaypalError::unprocessable(state, "REFUND_NOT_ALLOWED"))
            }
            CaptureStatus::Completed | CaptureStatus::PartiallyRefunded => {}
        }
        let remaining = capture.amount.minor.saturating_sub(capture.refunded);
        let amount = match member(&obj, "amount") {
            Some(v) => {
                let amount = parse_money(state, v, "/amount")?;
                if amount.currency != capture.amount.currency {
                    return Err(PaypalError::unprocessable(
                        state,
                        "REFUND_CAPTURE_CURRENCY_MISMATCH",
                    ));
                }
                amount
            }
            None => capture.amount.with(remaining),
        };
        if amount.minor > remaining {
            return Err(PaypalError::unprocessable(state, "REFUND_AMOUNT_EXCEEDED"));
        }
        let now = now_rfc3339();
        let refund = Refund {
            id: paypal_id(),
            capture_id: capture.id.clone(),
            amount,
            invoice_id: opt_str(&obj, "invoice_id").or_else(|| capture.invoice_id.clone()),
            note_to_payer: opt_str(&obj, "note_to_payer"),
            create_time: now.clone(),
        };
        let mut capture = capture;
        capture.refunded += refund.amount.minor;
        capture.status = if capture.refunded >= capture.amount.minor {
            CaptureStatus::Refunded
        } else {
            CaptureStatus::PartiallyRefunded
        };
        capture.update_time = now;
        inner.captures.insert(capture.id.clone(), capture);
        let answer = refund_json(base, inner, &refund, full);
        let event = Event {
            event_type: "PAYMENT.CAPTURE.REFUNDED",
            resource_type: "refund",
            summary: summary("A", &refund.amount) + " capture payment was refunded",
            resource: refund_json(base, inner, &refund, true),
        };
        inner.refunds.insert(refund.id.clone(), refund);
        Ok((StatusCode::CREATED, Some(answer), vec![event]))
    })
}
