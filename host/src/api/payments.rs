//! `/v1/payments`: the storefront API.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::auth::Merchant;
use super::body::{check_printable, parse_object, read_body, typed};
use super::error::ApiError;
use super::{idempotency, AppState};
use crate::money;
use crate::payments::{
    BrowserInput, CaptureMethod, CardInput, CreatePayment, PaymentError, PaymentMethodInput,
    RefundRequest, ShopperInput, MAX_CAPTURE_DELAY_HOURS,
};
use crate::redact::is_valid_card_number;

/// Largest amount accepted, in minor units (one billion EUR).
const MAX_AMOUNT: u64 = 100_000_000_000;

/// `POST /v1/payments`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePayment, example = json!({"amount": 4200, "currency": "EUR", "reference": "order-1042",
    "capture_method": "manual", "return_url": "https://shop.example/checkout/done",
    "payment_method": {"type": "card", "card": {"number": "4111111111111111", "exp_month": 3, "exp_year": 2030, "cvc": "737"}}}))]
struct CreateBody {
    /// In the currency's minor units (1050 is 10.50 EUR), 1 to 100000000000.
    #[schema(minimum = 1, maximum = 100_000_000_000_u64)]
    amount: u64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    currency: String,
    /// The shop's own reference, 1 to 128 characters.
    #[schema(max_length = 128)]
    reference: String,
    #[serde(default = "automatic")]
    #[schema(value_type = Option<super::openapi::CaptureMethodName>)]
    capture_method: CaptureMethod,
    /// With `automatic_delayed`: hours between authorization and capture.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 168)]
    capture_delay_hours: Option<u32>,
    payment_method: PaymentMethodBody,
    /// Where the shopper's browser goes once the payment is complete
    /// (absolute http(s) URL), with `payment_id`.
    return_url: String,
    /// The connector account's name; the merchant's default when absent.
    #[serde(default)]
    connector: Option<String>,
    #[serde(default)]
    shopper: Option<ShopperBody>,
    /// At most 50 keys of 1 to 40 characters, values at most 500.
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn automatic() -> CaptureMethod {
    CaptureMethod::Automatic
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PaymentMethodInput)]
struct PaymentMethodBody {
    /// `card`, or a method the connector declares (with `details`).
    #[serde(rename = "type")]
    #[schema(example = "card")]
    kind: String,
    #[serde(default)]
    card: Option<CardBody>,
    /// Details for non-card methods, handed to the connector as JSON.
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// The card: never stored nor logged (only its last four digits).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CardInput)]
struct CardBody {
    /// 12 to 19 digits passing the Luhn check.
    #[schema(example = "4111111111111111")]
    number: String,
    #[schema(minimum = 1, maximum = 12)]
    exp_month: u8,
    #[schema(minimum = 2000, maximum = 2099)]
    exp_year: u16,
    /// 3 or 4 digits.
    #[serde(default)]
    cvc: Option<String>,
    #[serde(default)]
    holder_name: Option<String>,
}

/// The shopper, for 3-D Secure 2 (PSD2).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Shopper)]
struct ShopperBody {
    email: Option<String>,
    ip_address: Option<String>,
    /// The shop's origin, `https://shop.example` (3-D Secure 2).
    origin: Option<String>,
    browser: Option<BrowserBody>,
}

/// What the shopper's browser reports (its JavaScript collects it): every
/// field is required, as 3-D Secure 2's browser flow requires them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Browser)]
struct BrowserBody {
    accept_header: String,
    user_agent: String,
    /// `navigator.language`, a BCP 47 tag.
    #[schema(example = "fr-FR")]
    language: String,
    /// `screen.colorDepth`: 1, 4, 8, 15, 16, 24, 30, 32 or 48.
    #[schema(example = 24)]
    color_depth: u8,
    #[schema(minimum = 1, maximum = 65535)]
    screen_height: u32,
    #[schema(minimum = 1, maximum = 65535)]
    screen_width: u32,
    /// Minutes from local time to UTC (`Date.getTimezoneOffset()`).
    #[schema(minimum = -840, maximum = 720)]
    time_zone_offset: i32,
    java_enabled: bool,
    javascript_enabled: bool,
}

/// `screen.colorDepth` values that EMV 3-D Secure accepts.
const COLOR_DEPTHS: [u8; 9] = [1, 4, 8, 15, 16, 24, 30, 32, 48];

fn validate_shopper(s: ShopperBody) -> Result<ShopperInput, ApiError> {
    if let Some(email) = &s.email {
        check_len("shopper.email", email, 254)?;
        let valid = email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
        if !valid || email.chars().any(char::is_whitespace) {
            return Err(ApiError::invalid(
                "shopper.email",
                "shopper.email must be an email address",
            ));
        }
    }
    if let Some(ip) = &s.ip_address {
        if ip.parse::<std::net::IpAddr>().is_err() {
            return Err(ApiError::invalid(
                "shopper.ip_address",
                "shopper.ip_address must be an IPv4 or IPv6 address",
            ));
        }
    }
    let origin = match &s.origin {
        None => None,
        Some(origin) => {
            let parsed = url::Url::parse(origin)
                .ok()
                .filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host_str().is_some()
                        && u.path() == "/"
                        && u.query().is_none()
                        && u.fragment().is_none()
                        && u.username().is_empty()
                        && origin.len() <= 255
                })
                .ok_or_else(|| {
                    ApiError::invalid(
                        "shopper.origin",
                        "shopper.origin must be an origin: scheme, host and optional port (https://shop.example)",
                    )
                })?;
            // The canonical form, without the trailing slash URL parsing adds.
            Some(parsed.origin().ascii_serialization())
        }
    };
    let browser = match s.browser {
        None => None,
        Some(b) => {
            check_len("shopper.browser.accept_header", &b.accept_header, 2048)?;
            check_len("shopper.browser.user_agent", &b.user_agent, 2048)?;
            let language_ok = (1..=35).contains(&b.language.len())
                && b.language.starts_with(|c: char| c.is_ascii_alphabetic())
                && b.language
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !language_ok {
                return Err(ApiError::invalid(
                    "shopper.browser.language",
                    "shopper.browser.language must be a BCP 47 language tag (navigator.language, \"fr-FR\")",
                ));
            }
            if !COLOR_DEPTHS.contains(&b.color_depth) {
                return Err(ApiError::invalid(
                    "shopper.browser.color_depth",
                    format!("shopper.browser.color_depth must be one of {COLOR_DEPTHS:?} (screen.colorDepth)"),
                ));
            }
            for (param, value) in [
                ("shopper.browser.screen_height", b.screen_height),
                ("shopper.browser.screen_width", b.screen_width),
            ] {
                if !(1..=65_535).contains(&value) {
                    return Err(ApiError::invalid(
                        param,
                        format!("{param} must be 1 to 65535 pixels"),
                    ));
                }
            }
            // UTC+14 (Kiribati) to UTC-12: -840 to 720 minutes.
            if !(-840..=720).contains(&b.time_zone_offset) {
                return Err(ApiError::invalid(
                    "shopper.browser.time_zone_offset",
                    "shopper.browser.time_zone_offset must be -840 to 720 minutes (Date.getTimezoneOffset())",
                ));
            }
            Some(BrowserInput {
                accept_header: b.accept_header,
                user_agent: b.user_agent,
                language: b.language,
                color_depth: b.color_depth,
                screen_height: b.screen_height,
                screen_width: b.screen_width,
                time_zone_offset: b.time_zone_offset,
                java_enabled: b.java_enabled,
                javascript_enabled: b.javascript_enabled,
            })
        }
    };
    Ok(ShopperInput {
        email: s.email,
        ip_address: s.ip_address,
        browser,
        origin,
    })
}

/// `POST /v1/payments/{id}/capture`; an empty body captures all that is capturable.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CaptureRequest)]
struct CaptureBody {
    /// At most `amount_capturable`; all of it when absent.
    #[serde(default)]
    amount: Option<u64>,
    /// No further capture will follow (the rest of the authorization is released).
    #[serde(default, rename = "final")]
    final_capture: bool,
}

/// `POST /v1/payments/{id}/refunds`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RefundRequest)]
struct RefundBody {
    /// At most what was captured and not refunded yet; all of it when absent.
    #[serde(default)]
    amount: Option<u64>,
    /// 1 to 500 characters.
    #[serde(default)]
    reason: Option<String>,
}

/// No fields.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Empty)]
struct EmptyBody {}

/// Text fields are 1 to `max` characters, with no control characters (a
/// NUL cannot even be stored in PostgreSQL text, and none belongs in a
/// reference or a reason).
fn check_len(param: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid(
            param,
            format!("{param} must be 1 to {max} characters"),
        ));
    }
    check_printable(param, value)
}

fn validate_create(
    merchant_id: String,
    body: CreateBody,
    idempotency_key: Option<String>,
) -> Result<CreatePayment, ApiError> {
    if body.amount == 0 || body.amount > MAX_AMOUNT {
        return Err(ApiError::invalid(
            "amount",
            format!("amount must be a positive integer in the currency's minor units, at most {MAX_AMOUNT}"),
        ));
    }
    let code = body.currency.to_ascii_uppercase();
    if !money::is_known(&code) {
        return Err(ApiError::invalid(
            "currency",
            format!("{:?} is not an ISO 4217 currency code", body.currency),
        ));
    }
    check_len("reference", &body.reference, 128)?;
    let return_url = url::Url::parse(&body.return_url)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && body.return_url.len() <= 2048
        })
        .ok_or_else(|| {
            ApiError::invalid("return_url", "return_url must be an absolute http(s) URL")
        })?;
    if let Some(c) = &body.connector {
        check_len("connector", c, 64)?;
    }
    if body.metadata.len() > 50 {
        return Err(ApiError::invalid(
            "metadata",
            "metadata holds at most 50 keys",
        ));
    }
    for (k, v) in &body.metadata {
        // The key itself may be unprintable: name it by escaping.
        let param = format!("metadata.{}", k.escape_default());
        if k.is_empty() || k.len() > 40 || v.len() > 500 {
            return Err(ApiError::invalid(
                param,
                "metadata keys are 1 to 40 characters and values at most 500",
            ));
        }
        check_printable(&param, k)?;
        check_printable(&param, v)?;
    }
    let payment_method = match body.payment_method.kind.as_str() {
        "card" => {
            let card = body
                .payment_method
                .card
                .ok_or_else(|| ApiError::missing("payment_method.card"))?;
            if !is_valid_card_number(&card.number) {
                return Err(ApiError::invalid(
                    "payment_method.card.number",
                    "the card number is invalid (12 to 19 digits passing the Luhn check)",
                ));
            }
            if !(1..=12).contains(&card.exp_month) {
                return Err(ApiError::invalid(
                    "payment_method.card.exp_month",
                    "exp_month must be 1 to 12",
                ));
            }
            if !(2000..=2099).contains(&card.exp_year) {
                return Err(ApiError::invalid(
                    "payment_method.card.exp_year",
                    "exp_year must be a four-digit year",
                ));
            }
            if let Some(cvc) = &card.cvc {
                if !(3..=4).contains(&cvc.len()) || !cvc.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ApiError::invalid(
                        "payment_method.card.cvc",
                        "cvc must be 3 or 4 digits",
                    ));
                }
            }
            if let Some(name) = &card.holder_name {
                check_len("payment_method.card.holder_name", name, 128)?;
            }
            PaymentMethodInput::Card(CardInput {
                number: card.number,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
                cvc: card.cvc,
                holder_name: card.holder_name,
            })
        }
        other => {
            check_len("payment_method.type", other, 40)?;
            if body.payment_method.card.is_some() {
                return Err(ApiError::invalid(
                    "payment_method.card",
                    "card details go with type \"card\" only",
                ));
            }
            PaymentMethodInput::Other {
                kind: other.to_string(),
                details: body
                    .payment_method
                    .details
                    .unwrap_or(serde_json::Value::Object(Default::default())),
            }
        }
    };
    let shopper = body.shopper.map(validate_shopper).transpose()?;
    let capture_delay_hours = match (body.capture_method, body.capture_delay_hours) {
        (CaptureMethod::AutomaticDelayed, Some(hours))
            if (1..=MAX_CAPTURE_DELAY_HOURS).contains(&hours) =>
        {
            Some(hours)
        }
        (CaptureMethod::AutomaticDelayed, _) => {
            return Err(ApiError::invalid(
                "capture_delay_hours",
                format!("capture_method \"automatic_delayed\" needs capture_delay_hours, 1 to {MAX_CAPTURE_DELAY_HOURS}"),
            ))
        }
        (_, Some(_)) => {
            return Err(ApiError::invalid(
                "capture_delay_hours",
                "capture_delay_hours goes with capture_method \"automatic_delayed\" only",
            ))
        }
        (_, None) => None,
    };
    Ok(CreatePayment {
        merchant_id,
        amount: body.amount,
        currency: code,
        reference: body.reference,
        capture_method: body.capture_method,
        capture_delay_hours,
        payment_method,
        return_url: return_url.to_string(),
        connector: body.connector,
        shopper,
        metadata: body.metadata,
        idempotency_key,
    })
}

fn answer<T: serde::Serialize>(
    status: StatusCode,
    result: Result<T, PaymentError>,
) -> (idempotency::Answer, bool) {
    match result {
        Ok(value) => match serde_json::to_value(value) {
            Ok(v) => (Ok((status, v)), false),
            Err(_) => (Err(ApiError::internal()), false),
        },
        Err(e) => {
            let unknown = e.outcome_unknown();
            (Err(ApiError::from(e)), unknown)
        }
    }
}

/// The body of a POST that may carry an `Idempotency-Key`: the key, the
/// JSON object, and the request's fingerprint for the idempotency check.
async fn read_idempotent(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Option<String>, serde_json::Value, String), ApiError> {
    let key = idempotency::key(req)?;
    let value = parse_object(&read_body(payload).await?)?;
    let fingerprint = idempotency::fingerprint(&state.secrets, req, &value);
    Ok((key, value, fingerprint))
}

/// An optional amount (capture, refund) is absent or positive.
fn check_optional_amount(amount: Option<u64>) -> Result<(), ApiError> {
    if amount == Some(0) {
        return Err(ApiError::invalid(
            "amount",
            "amount must be a positive integer in minor units",
        ));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/payments", tag = "payments", summary = "Create a payment", security(("secret_key" = [])), params(("Idempotency-Key" = Option<String>, Header, description = "The same key with the same body answers the same, with one call to the provider; with another body, 422. Remembered 24 h.")), request_body = CreateBody, responses((status = 201, description = "The payment", body = crate::payments::PaymentView), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    merchant: Merchant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (key, value, fingerprint) = read_idempotent(&state, &req, payload).await?;
    let request = validate_create(
        merchant.id.clone(),
        typed::<CreateBody>(value)?,
        key.clone(),
    )?;
    let payments = state.payments.clone();
    Ok(idempotency::run(
        state.payments.store(),
        state.idempotency,
        &merchant.id,
        key,
        fingerprint,
        "pay",
        |claim| async move {
            answer(
                StatusCode::CREATED,
                payments
                    .create(request, &claim.resource_id, claim.resumed)
                    .await,
            )
        },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/payments/{id}", tag = "payments", summary = "Show a payment", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)")), responses((status = 200, description = "The payment", body = crate::payments::PaymentView), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn get(
    state: web::Data<AppState>,
    merchant: Merchant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = state.payments.get(&merchant.id, &path).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(get, path = "/v1/payments/{id}/events", tag = "payments", summary = "A payment's history", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)")), responses((status = 200, description = "Every transition with its time and cause", body = super::openapi::EventList), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn events(
    state: web::Data<AppState>,
    merchant: Merchant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let events = state.payments.events(&merchant.id, &path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"object": "list", "data": events})))
}

#[utoipa::path(post, path = "/v1/payments/{id}/capture", tag = "payments", summary = "Capture a payment", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)"), ("Idempotency-Key" = Option<String>, Header, description = "The same key with the same body answers the same, with one call to the provider; with another body, 422. Remembered 24 h.")), request_body = CaptureBody, responses((status = 200, description = "The payment", body = crate::payments::PaymentView), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn capture(
    state: web::Data<AppState>,
    merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (key, value, fingerprint) = read_idempotent(&state, &req, payload).await?;
    let body: CaptureBody = typed(value)?;
    check_optional_amount(body.amount)?;
    let payments = state.payments.clone();
    let id = path.into_inner();
    let merchant_id = merchant.id.clone();
    let psp_key = key.clone();
    Ok(idempotency::run(
        state.payments.store(),
        state.idempotency,
        &merchant.id,
        key,
        fingerprint,
        "cap",
        |_| async move {
            answer(
                StatusCode::OK,
                payments
                    .capture(
                        &merchant_id,
                        &id,
                        body.amount,
                        body.final_capture,
                        psp_key.as_deref(),
                    )
                    .await,
            )
        },
    )
    .await)
}

#[utoipa::path(post, path = "/v1/payments/{id}/cancel", tag = "payments", summary = "Release an uncaptured authorization", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)"), ("Idempotency-Key" = Option<String>, Header, description = "The same key with the same body answers the same, with one call to the provider; with another body, 422. Remembered 24 h.")), request_body = EmptyBody, responses((status = 200, description = "The payment", body = crate::payments::PaymentView), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn cancel(
    state: web::Data<AppState>,
    merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (key, value, fingerprint) = read_idempotent(&state, &req, payload).await?;
    let _: EmptyBody = typed(value)?;
    let payments = state.payments.clone();
    let id = path.into_inner();
    let merchant_id = merchant.id.clone();
    let psp_key = key.clone();
    Ok(idempotency::run(
        state.payments.store(),
        state.idempotency,
        &merchant.id,
        key,
        fingerprint,
        "can",
        |_| async move {
            answer(
                StatusCode::OK,
                payments.cancel(&merchant_id, &id, psp_key.as_deref()).await,
            )
        },
    )
    .await)
}

#[utoipa::path(post, path = "/v1/payments/{id}/sync", tag = "payments", summary = "Ask the connector where the payment stands", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)")), responses((status = 200, description = "The payment", body = crate::payments::PaymentView), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn sync(
    state: web::Data<AppState>,
    merchant: Merchant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = state.payments.sync(&merchant.id, &path).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[utoipa::path(post, path = "/v1/payments/{id}/refunds", tag = "payments", summary = "Refund a payment", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)"), ("Idempotency-Key" = Option<String>, Header, description = "The same key with the same body answers the same, with one call to the provider; with another body, 422. Remembered 24 h.")), request_body = RefundBody, responses((status = 201, description = "The refund", body = crate::payments::RefundView), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn create_refund(
    state: web::Data<AppState>,
    merchant: Merchant,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (key, value, fingerprint) = read_idempotent(&state, &req, payload).await?;
    let body: RefundBody = typed(value)?;
    check_optional_amount(body.amount)?;
    if let Some(reason) = &body.reason {
        check_len("reason", reason, 500)?;
    }
    let payments = state.payments.clone();
    let id = path.into_inner();
    let merchant_id = merchant.id.clone();
    let psp_key = key.clone();
    Ok(idempotency::run(
        state.payments.store(),
        state.idempotency,
        &merchant.id,
        key,
        fingerprint,
        "re",
        |claim| async move {
            answer(
                StatusCode::CREATED,
                payments
                    .refund(
                        &merchant_id,
                        &id,
                        RefundRequest {
                            refund_id: claim.resource_id,
                            resumed: claim.resumed,
                            amount: body.amount,
                            reason: body.reason,
                            idempotency_key: psp_key,
                        },
                    )
                    .await,
            )
        },
    )
    .await)
}

#[utoipa::path(get, path = "/v1/payments/{id}/refunds", tag = "payments", summary = "A payment's refunds", security(("secret_key" = [])), params(("id" = String, Path, description = "The payment's id (`pay_…`)")), responses((status = 200, description = "The refunds", body = super::openapi::RefundList), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "The connector, provider or Passerelle failed; a retry with the same Idempotency-Key resumes", body = super::openapi::ErrorBody)))]
pub async fn list_refunds(
    state: web::Data<AppState>,
    merchant: Merchant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let refunds = state.payments.refunds(&merchant.id, &path).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"object": "list", "data": refunds})))
}
