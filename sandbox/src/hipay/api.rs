//! The JSON APIs: tokenization (vault), order and hosted-page creation,
//! maintenance and transaction queries.

use actix_web::{
    http::{header, StatusCode},
    web::{Bytes, Data, Path, Query},
    HttpRequest, HttpResponse,
};
use base64::Engine;
use rand::Rng;
use serde_json::{json, Map, Value};
use url::Url;

use super::{
    cards::{self, Scenario},
    error::HipayError,
    fault::ApiFault,
    form::Form,
    money,
    notify::{self, Pending},
    schema::{self, Endpoint},
    state::{
        FaultMode, HipayState, HostedPage, Inner, LastOperation, MaintenanceRecord, OrderInfo,
        ReturnUrls, StoredCard, ThreeDs, Transaction, TxState,
    },
    CARD_COUNTRY, FAULT_HEADER, ISSUER, MID,
};
use crate::util;

/// Most attempts an order may have.
const MAX_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------
// Authentication and headers

fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks Basic credentials and the `Accept` header; answers the account.
pub(crate) fn authenticate(state: &HipayState, req: &HttpRequest) -> Result<String, HipayError> {
    let Some((user, password)) = basic_credentials(req) else {
        return Err(HipayError::credentials());
    };
    let user_ok = constant_time_eq(user.as_bytes(), state.config.api_username.as_bytes());
    let password_ok = constant_time_eq(password.as_bytes(), state.config.api_password.as_bytes());
    if !(user_ok && password_ok) {
        return Err(HipayError::credentials());
    }
    if let Some(accept) = req.headers().get(header::ACCEPT) {
        let accept = accept.to_str().unwrap_or("").to_ascii_lowercase();
        let json_ok = accept.is_empty()
            || accept.contains("application/json")
            || accept.contains("*/*")
            || accept.contains("application/*");
        if !json_ok {
            return Err(HipayError::new(
                StatusCode::NOT_ACCEPTABLE,
                1_010_201,
                "Invalid Parameter",
                "the sandbox answers JSON only: send Accept: application/json",
            ));
        }
    }
    Ok(user)
}

/// A notification fault asked for by the request's `X-Sandbox-Fault`.
pub(crate) fn request_fault(req: &HttpRequest) -> Option<FaultMode> {
    req.headers()
        .get(FAULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(FaultMode::parse)
        .filter(|m| m.is_notification())
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(body.to_string())
}

/// Fallback for unknown paths under the API prefixes.
pub(crate) async fn not_found() -> HttpResponse {
    super::error::error_response(
        StatusCode::NOT_FOUND,
        404,
        "Not Found",
        "no such endpoint in the HiPay sandbox",
    )
}

/// Fallback for a known path with another method.
pub(crate) async fn method_not_allowed() -> Result<HttpResponse, HipayError> {
    Err(HipayError::method_not_allowed())
}

// ---------------------------------------------------------------------------
// Identifiers

fn random_digits(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    let data: Vec<u8> = (0..bytes).map(|_| rng.random()).collect();
    hex::encode(data)
}

fn new_reference(inner: &Inner) -> String {
    loop {
        let reference = format!("8{}", random_digits(11));
        if !inner.transactions.contains_key(&reference) {
            return reference;
        }
    }
}

// ---------------------------------------------------------------------------
// Vault (tokenization)

fn token_json(card: &StoredCard) -> Value {
    json!({
        "token": card.token,
        "request_id": card.request_id,
        "card_hash": card.card_hash,
        "card_id": card.card_id,
        "brand": card.brand,
        "pan": format!("xxxxxxxxxxxx{}", card.last4),
        "card_holder": card.holder,
        "card_expiry_month": card.expiry_month,
        "card_expiry_year": card.expiry_year,
        "issuer": ISSUER,
        "country": CARD_COUNTRY,
        "domestic_network": "",
        "card_type": "CREDIT",
        "card_category": "CLASSIC",
        "forbidden_issuer_country": false,
        "multi_use": if card.multi_use { 1 } else { 0 },
    })
}

/// `POST {base}/vault/v2/token/create`
pub(crate) async fn token_create(
    state: Data<HipayState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    let form = Form::parse(&req, &body)?;
    schema::check(&state, Endpoint::TokenCreate, &form)?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let number: String = form
            .required("card_number")?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if !crate::util::is_card_number(&number) {
            return Err(HipayError::invalid("card_number", "invalid card number"));
        }
        let month: u32 = form
            .required("card_expiry_month")?
            .parse()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| HipayError::invalid("card_expiry_month", "expected 1 to 12"))?;
        let mut year: i64 = form
            .required("card_expiry_year")?
            .parse()
            .map_err(|_| HipayError::invalid("card_expiry_year", "expected a year"))?;
        if (0..100).contains(&year) {
            year += 2000;
        }
        let (now_year, now_month) = util::current_year_month();
        if !(1000..=9999).contains(&year) || (year, month) < (now_year, now_month) {
            return Err(HipayError::invalid(
                "card_expiry_year",
                "the card is expired or the date is invalid",
            ));
        }
        let brand = cards::brand(&number);
        let card = StoredCard {
            token: random_hex(32),
            request_id: "0".to_owned(),
            card_hash: random_hex(20),
            card_id: {
                let h = random_hex(16);
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            },
            brand,
            last4: number[number.len() - 4..].to_owned(),
            holder: form.required("card_holder")?.to_owned(),
            expiry_month: format!("{month:02}"),
            expiry_year: format!("{year:04}"),
            multi_use: form.get("multi_use") == Some("1"),
            scenario: cards::scenario(&number),
        };
        let answer = token_json(&card);
        tracing::debug!(token = %card.token, brand, last4 = %card.last4, "hipay: card tokenized");
        state.lock().tokens.insert(card.token.clone(), card);
        Ok(json_response(StatusCode::CREATED, &answer))
    })();
    fault.finish(answer).await
}

fn token_not_found() -> HipayError {
    HipayError::new(
        StatusCode::NOT_FOUND,
        404,
        "Card token not found",
        "Card token not found",
    )
}

/// `GET {base}/vault/v2/token/{token}?request_id=0`
pub(crate) async fn token_lookup(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let query = Form::from_bytes(req.query_string().as_bytes());
        let request_id = query.required("request_id")?;
        let inner = state.lock();
        let card = inner
            .tokens
            .get(path.as_str())
            .filter(|c| c.request_id == request_id)
            .ok_or_else(token_not_found)?;
        Ok(json_response(StatusCode::OK, &token_json(card)))
    })();
    fault.finish(answer).await
}

/// `DELETE {base}/vault/v2/token/` with `card_token`
pub(crate) async fn token_delete(
    state: Data<HipayState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    let form = Form::parse(&req, &body)?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let token = form.required("card_token")?;
        match state.lock().tokens.remove(token) {
            Some(_) => Ok(HttpResponse::NoContent().finish()),
            None => Err(token_not_found()),
        }
    })();
    fault.finish(answer).await
}

// ---------------------------------------------------------------------------
// Orders and transactions

fn optional_url(form: &Form, name: &str) -> Result<Option<Url>, HipayError> {
    match form.get(name) {
        None => Ok(None),
        Some(text) => match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(Some(url)),
            _ => Err(HipayError::invalid(
                name,
                "expected an absolute http(s) URL",
            )),
        },
    }
}

/// The order described by a `/v1/order` or `/v1/hpayment` form.
pub(crate) fn order_info(form: &Form) -> Result<OrderInfo, HipayError> {
    let currency = form.required("currency")?.to_owned();
    let decimals = money::exponent(&currency);
    let amount_text = form.required("amount")?;
    let amount = money::parse(amount_text, decimals).ok_or_else(|| {
        HipayError::bad(
            1_010_205,
            "Invalid Parameter",
            format!("amount: {amount_text:?} is not a valid amount in {currency}"),
        )
    })?;
    let decimal_or_zero = |name: &str| -> Result<String, HipayError> {
        match form.get(name) {
            None => Ok(money::format(0, decimals)),
            Some(text) => money::parse(text, decimals)
                .map(|v| money::format(v, decimals))
                .ok_or_else(|| HipayError::invalid(name, "not a valid amount")),
        }
    };
    let text = |name: &str| form.get(name).unwrap_or("").to_owned();
    // Both documents give 0 as the default (bypass 3-D Secure).
    let authentication_indicator =
        match form.get("authentication_indicator") {
            None => 0,
            Some(text) => text.parse::<u8>().ok().filter(|i| *i <= 2).ok_or_else(|| {
                HipayError::invalid("authentication_indicator", "expected 0, 1 or 2")
            })?,
        };
    let cdata = (1..=10)
        .filter_map(|i| {
            let name = format!("cdata{i}");
            form.get(&name).map(|v| (name, v.to_owned()))
        })
        .collect();
    Ok(OrderInfo {
        id: form.required("orderid")?.to_owned(),
        amount,
        currency,
        decimals,
        shipping: decimal_or_zero("shipping")?,
        tax: decimal_or_zero("tax")?,
        description: text("description"),
        cid: text("cid"),
        language: form.get("language").unwrap_or("en_GB").to_owned(),
        email: text("email"),
        ipaddr: text("ipaddr"),
        date_created: money::now_date(),
        operation: form.get("operation").unwrap_or("Authorization").to_owned(),
        authentication_indicator,
        urls: ReturnUrls {
            accept: optional_url(form, "accept_url")?,
            decline: optional_url(form, "decline_url")?,
            pending: optional_url(form, "pending_url")?,
            exception: optional_url(form, "exception_url")?,
            cancel: optional_url(form, "cancel_url")?,
        },
        notify_url: optional_url(form, "notify_url")?,
        cdata,
    })
}

/// Refuses an order id that already has a live transaction, or too many
/// attempts; answers the next attempt number.
pub(crate) fn check_order_id(inner: &Inner, order_id: &str) -> Result<u32, HipayError> {
    let refs = inner.orders.get(order_id).map(Vec::as_slice).unwrap_or(&[]);
    let live = refs.iter().any(|r| {
        inner
            .transactions
            .get(r)
            .is_some_and(|tx| !matches!(tx.state, TxState::Declined | TxState::Error))
    });
    if live {
        return Err(HipayError::bad(
            3_010_004,
            "Duplicate Order",
            format!("Order was already processed: {order_id}"),
        ));
    }
    if refs.len() >= MAX_ATTEMPTS {
        return Err(HipayError::bad(
            3_010_003,
            "Max Attempts Exceeded",
            "You have exceeded the maximum number of payment attempts for this order",
        ));
    }
    Ok(u32::try_from(refs.len())
        .unwrap_or(u32::MAX)
        .saturating_add(1))
}

/// `threeDSecure` when 3-D Secure was bypassed (`authentication_indicator`
/// 0): nothing was asked of the directory.
fn not_checked() -> ThreeDs {
    ThreeDs::default()
}

fn not_enrolled() -> ThreeDs {
    ThreeDs {
        enrollment_status: "N",
        enrollment_message: "Cardholder Not Enrolled",
        authentication_status: "",
        authentication_message: "",
        eci: "",
    }
}

/// ECI of a successful 3-D Secure authentication.
fn authenticated_eci(brand: &str) -> &'static str {
    if brand == "MASTERCARD" {
        "2"
    } else {
        "5"
    }
}

pub(crate) fn authenticated(brand: &str) -> ThreeDs {
    ThreeDs {
        enrollment_status: "Y",
        enrollment_message: "Authentication Available",
        authentication_status: "Y",
        authentication_message: "Authentication Successful",
        eci: authenticated_eci(brand),
    }
}

/// Authorizes (and for `Sale` captures) the full amount; answers the
/// statuses to notify.
pub(crate) fn authorize(tx: &mut Transaction) -> Vec<u16> {
    tx.state = TxState::Completed;
    tx.reason = None;
    tx.forward_url = None;
    tx.authorized = tx.order.amount;
    tx.authorization_code = format!("test{}", random_digits(3));
    tx.date_authorized = money::now_date();
    tx.date_updated = tx.date_authorized.clone();
    tx.fraud_result = "ACCEPTED";
    tx.fraud_review = "";
    if tx.order.operation == "Sale" {
        tx.captured = tx.order.amount;
        tx.status = 118;
        vec![116, 117, 118]
    } else {
        tx.status = 116;
        vec![116]
    }
}

/// How a payment goes through 3-D Secure, from the card, the merchant's
/// `authentication_indicator` and whether the browser data came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Authentication {
    /// No 3-D Secure: bypassed (indicator 0), or the card is not enrolled.
    None,
    /// Challenge: `forwarding`, 140, the shopper goes to `forwardUrl`.
    Challenge,
    /// Authenticated without a challenge (3DS `Y`).
    Frictionless,
    /// The issuer requires strong authentication and got none: 178.
    SoftDecline,
}

fn authentication(scenario: Scenario, indicator: u8, browser_info: bool) -> Authentication {
    let asked = indicator > 0;
    match scenario {
        Scenario::Challenge if asked => Authentication::Challenge,
        Scenario::ChallengeUnlessBrowserInfo if asked && browser_info => {
            Authentication::Frictionless
        }
        Scenario::ChallengeUnlessBrowserInfo if asked => Authentication::Challenge,
        Scenario::SoftDeclineUnlessAuthenticated if asked && browser_info => {
            Authentication::Challenge
        }
        Scenario::SoftDeclineUnlessAuthenticated => Authentication::SoftDecline,
        _ => Authentication::None,
    }
}

/// Starts a payment of `order` with `card`: creates the transaction and
/// runs the card's scenario. Answers the reference and the notifications.
pub(crate) fn pay(
    state: &HipayState,
    inner: &mut Inner,
    account: &str,
    order: OrderInfo,
    product: &str,
    card: StoredCard,
    browser_info: bool,
) -> Result<(String, Vec<Pending>), HipayError> {
    let attempt = check_order_id(inner, &order.id)?;
    let reference = new_reference(inner);
    let now = money::now_date();
    let mut tx = Transaction {
        reference: reference.clone(),
        account: account.to_owned(),
        order,
        attempt_id: attempt,
        payment_product: product.to_owned(),
        card,
        state: TxState::Pending,
        status: 142,
        reason: None,
        authorized: 0,
        captured: 0,
        refunded: 0,
        authorization_code: String::new(),
        date_created: now.clone(),
        date_updated: now,
        date_authorized: String::new(),
        forward_url: None,
        eci: "7".to_owned(),
        three_ds: not_enrolled(),
        fraud_result: "ACCEPTED",
        fraud_review: "",
        cancelled: false,
        maintenance: Vec::new(),
        last_operation: None,
    };
    if tx.order.authentication_indicator == 0 {
        tx.three_ds = not_checked();
    }
    let authentication = authentication(
        tx.card.scenario,
        tx.order.authentication_indicator,
        browser_info,
    );
    let statuses = if authentication == Authentication::SoftDecline {
        // No 3-D Secure ran: the issuer declined the unauthenticated payment.
        tx.three_ds = not_checked();
        tx.state = TxState::Declined;
        tx.status = 178;
        vec![178]
    } else if authentication == Authentication::Challenge {
        let forward_id = random_hex(16);
        tx.state = TxState::Forwarding;
        tx.status = 140;
        tx.forward_url = Some(format!("{}/forward/{forward_id}", state.base_url));
        tx.three_ds = ThreeDs {
            enrollment_status: "Y",
            enrollment_message: "Authentication Available",
            authentication_status: "",
            authentication_message: "",
            eci: "",
        };
        inner.forwards.insert(forward_id, reference.clone());
        vec![140]
    } else {
        if authentication == Authentication::Frictionless {
            tx.three_ds = authenticated(tx.card.brand);
        }
        match tx.card.scenario {
            Scenario::Refuse => {
                tx.state = TxState::Declined;
                tx.status = 163;
                tx.reason = Some(("4010202".to_owned(), "Invalid Card Number".to_owned()));
                vec![163]
            }
            _ if tx.card.holder.trim().eq_ignore_ascii_case("ERROR") => {
                tx.state = TxState::Error;
                tx.status = 113;
                tx.reason = Some(("4000004".to_owned(), "Technical Problem".to_owned()));
                vec![113]
            }
            _ if tx.card.holder.trim().eq_ignore_ascii_case("PENDING") => {
                tx.state = TxState::Pending;
                tx.status = 112;
                tx.authorized = tx.order.amount;
                tx.authorization_code = format!("test{}", random_digits(3));
                tx.date_authorized = tx.date_created.clone();
                tx.fraud_result = "CHALLENGED";
                tx.fraud_review = "pending";
                vec![112]
            }
            _ => authorize(&mut tx),
        }
    };
    tracing::debug!(
        reference = %reference, order = %tx.order.id, status = tx.status,
        last4 = %tx.card.last4, "hipay: transaction created"
    );
    let pending = notify::about(&tx, &statuses);
    inner
        .orders
        .entry(tx.order.id.clone())
        .or_default()
        .push(reference.clone());
    inner.transactions.insert(reference.clone(), tx);
    Ok((reference, pending))
}

/// The `order` object of answers.
pub(crate) fn order_json(order: &OrderInfo, attempts: u32) -> Value {
    json!({
        "id": order.id,
        "dateCreated": order.date_created,
        "attempts": attempts.to_string(),
        "amount": money::format(order.amount, order.decimals),
        "shipping": order.shipping,
        "tax": order.tax,
        "decimals": order.decimals.to_string(),
        "currency": order.currency,
        "customerId": order.cid,
        "language": order.language,
        "email": order.email,
    })
}

/// A transaction as `POST /v1/order` and `GET /v1/transaction` show it.
pub(crate) fn transaction_json(tx: &Transaction) -> Value {
    let mut obj = Map::new();
    obj.insert("state".into(), json!(tx.state.as_str()));
    if let Some((code, message)) = &tx.reason {
        obj.insert("reason".into(), json!({"code": code, "message": message}));
    }
    if let Some(url) = &tx.forward_url {
        obj.insert("forwardUrl".into(), json!(url));
    }
    let rest = json!({
        "test": "true",
        "mid": MID,
        "attemptId": tx.attempt_id.to_string(),
        "authorizationCode": tx.authorization_code,
        "transactionReference": tx.reference,
        "dateCreated": tx.date_created,
        "dateUpdated": tx.date_updated,
        "dateAuthorized": tx.date_authorized,
        "status": tx.status.to_string(),
        "message": tx.message(),
        "authorizedAmount": tx.amount(tx.authorized),
        "capturedAmount": tx.amount(tx.captured),
        "refundedAmount": tx.amount(tx.refunded),
        "creditedAmount": tx.amount(0),
        "decimals": tx.order.decimals.to_string(),
        "currency": tx.order.currency,
        "ipAddress": tx.order.ipaddr,
        "ipCountry": "",
        "deviceId": "",
        "cdata1": "", "cdata2": "", "cdata3": "", "cdata4": "",
        "avsResult": "",
        "cvcResult": "",
        "eci": tx.eci,
        "paymentProduct": tx.payment_product,
        "paymentMethod": {
            "token": tx.card.token,
            "brand": tx.card.brand,
            "pan": tx.card.pan(),
            "cardHolder": tx.card.holder,
            "cardExpiryMonth": tx.card.expiry_month,
            "cardExpiryYear": tx.card.expiry_year,
            "issuer": ISSUER,
            "country": CARD_COUNTRY,
        },
        "threeDSecure": {
            "eci": tx.three_ds.eci,
            "enrollmentStatus": tx.three_ds.enrollment_status,
            "enrollmentMessage": tx.three_ds.enrollment_message,
            "authenticationStatus": tx.three_ds.authentication_status,
            "authenticationMessage": tx.three_ds.authentication_message,
            "authenticationToken": "",
            "xid": "",
        },
        "fraudScreening": {
            "scoring": "0",
            "result": tx.fraud_result,
            "review": tx.fraud_review,
        },
        "order": order_json(&tx.order, tx.attempt_id),
        "debitAgreement": {"id": "", "status": ""},
    });
    if let Value::Object(rest) = rest {
        obj.extend(rest);
    }
    for (name, value) in &tx.order.cdata {
        obj.insert(name.clone(), json!(value));
    }
    Value::Object(obj)
}

/// `POST {base}/gateway/v1/order`
pub(crate) async fn create_order(
    state: Data<HipayState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    let form = Form::parse(&req, &body)?;
    schema::check(&state, Endpoint::Order, &form)?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let product = form.required("payment_product")?;
        if !cards::is_card_product(product) {
            return Err(HipayError::bad(
                1_020_001,
                "No route to acquirer",
                format!("The payment product {product} is not configured for this sandbox account"),
            ));
        }
        let order = order_info(&form)?;
        let browser_info = form.has_group("browser_info");
        let (answer, pending) = {
            let mut inner = state.lock();
            let token = form.required("cardtoken")?;
            let card = inner.tokens.get(token).cloned().ok_or_else(|| {
                HipayError::bad(
                    3_040_001,
                    "Unknown Token",
                    "The specified token was not found in the secure vault.",
                )
            })?;
            let (reference, pending) = pay(
                &state,
                &mut inner,
                &account,
                order,
                product,
                card,
                browser_info,
            )?;
            let tx = inner
                .transactions
                .get(&reference)
                .ok_or_else(|| HipayError::internal("transaction vanished"))?;
            (transaction_json(tx), pending)
        };
        notify::dispatch(&state, pending, request_fault(&req));
        Ok(json_response(StatusCode::OK, &answer))
    })();
    fault.finish(answer).await
}

/// `POST {base}/api/v1/hpayment`
pub(crate) async fn create_hpayment(
    state: Data<HipayState>,
    req: HttpRequest,
    body: Bytes,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    let form = Form::parse(&req, &body)?;
    schema::check(&state, Endpoint::Hpayment, &form)?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let order = order_info(&form)?;
        let id = {
            let h = random_hex(16);
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        };
        let answer = {
            let mut inner = state.lock();
            check_order_id(&inner, &order.id)?;
            let answer = json!({
                "forwardUrl": format!("{}/pay/{id}", state.base_url),
                "test": "true",
                "mid": MID,
                "order": order_json(&order, 0),
            });
            inner.hosted.insert(
                id.clone(),
                HostedPage {
                    id,
                    account,
                    order,
                    transaction: None,
                    cancelled: false,
                },
            );
            answer
        };
        Ok(json_response(StatusCode::OK, &answer))
    })();
    fault.finish(answer).await
}

fn wrong_status(code: u32, message: &str, tx: &Transaction) -> HipayError {
    HipayError::bad(
        code,
        message,
        format!(
            "transaction {} is {} ({})",
            tx.reference,
            tx.status,
            tx.message()
        ),
    )
}

/// The answer of a maintenance operation (`Operation`).
fn operation_json(tx: &Transaction, operation: &str, status: u16) -> Value {
    json!({
        "operation": operation,
        "test": "true",
        "mid": MID,
        "authorizationCode": tx.authorization_code,
        "transactionReference": tx.reference,
        "dateCreated": tx.date_created,
        "dateUpdated": tx.date_updated,
        "dateAuthorized": tx.date_authorized,
        "status": status.to_string(),
        "message": super::state::status_message(status),
        "authorizedAmount": tx.amount(tx.authorized),
        "capturedAmount": tx.amount(tx.captured),
        "refundedAmount": tx.amount(tx.refunded),
        "decimals": tx.order.decimals.to_string(),
        "currency": tx.order.currency,
    })
}

/// Applies a maintenance operation; answers (answer status, statuses to notify).
fn maintain(
    tx: &mut Transaction,
    operation: &str,
    amount: Option<u64>,
) -> Result<(u16, Vec<u16>), HipayError> {
    let closed = matches!(
        tx.state,
        TxState::Declined | TxState::Error | TxState::Forwarding
    );
    match operation {
        "capture" => {
            if tx.cancelled {
                return Err(wrong_status(
                    3_020_111,
                    "Operation Not Permitted : transaction cancelled",
                    tx,
                ));
            }
            if closed || !matches!(tx.status, 116..=119) {
                return Err(wrong_status(
                    3_020_102,
                    "Action denied : Wrong transaction status",
                    tx,
                ));
            }
            let remaining = tx.authorized - tx.captured;
            if remaining == 0 {
                return Err(wrong_status(3_020_106, "Authorization Completed", tx));
            }
            let amount = amount.unwrap_or(remaining);
            if amount == 0 {
                return Err(HipayError::bad(
                    3_020_108,
                    "Invalid Amount",
                    "The capture amount must be a positive amount",
                ));
            }
            if amount > tx.authorized {
                return Err(HipayError::bad(3_020_109, "Amount Limit Exceeded", "The capture amount must be less than or equal to the original transaction amount"));
            }
            if amount > remaining {
                return Err(HipayError::bad(
                    3_020_110,
                    "Amount Limit Exceeded",
                    "The partial capture amount must be less than or equal to the remaining amount",
                ));
            }
            tx.captured += amount;
            tx.status = if tx.captured == tx.authorized {
                118
            } else {
                119
            };
            Ok((118, vec![117, tx.status]))
        }
        "refund" => {
            if tx.captured == 0 || closed {
                return Err(wrong_status(
                    3_020_202,
                    "Operation Not Permitted : transaction not captured",
                    tx,
                ));
            }
            let remaining = tx.captured - tx.refunded;
            if remaining == 0 {
                return Err(wrong_status(3_020_206, "Already Refunded", tx));
            }
            let amount = amount.unwrap_or(remaining);
            if amount == 0 {
                return Err(HipayError::bad(
                    3_020_208,
                    "Invalid Amount",
                    "The refund amount must be a positive amount",
                ));
            }
            if amount > tx.captured {
                return Err(HipayError::bad(3_020_209, "Amount Limit Exceeded", "The refund amount must be less than or equal to the original transaction amount"));
            }
            if amount > remaining {
                return Err(HipayError::bad(
                    3_020_210,
                    "Amount Limit Exceeded",
                    "The partial refund amount must be less than or equal to the remaining amount",
                ));
            }
            tx.refunded += amount;
            tx.status = if tx.refunded == tx.captured { 125 } else { 126 };
            Ok((124, vec![124, tx.status]))
        }
        "cancel" => {
            if tx.cancelled {
                return Err(wrong_status(3_020_403, "Authorization Voided", tx));
            }
            if closed || tx.captured > 0 || !matches!(tx.status, 112 | 116) {
                return Err(wrong_status(
                    3_020_401,
                    "Action denied : Wrong transaction status",
                    tx,
                ));
            }
            tx.cancelled = true;
            tx.status = 115;
            Ok((175, vec![175, 115]))
        }
        "acceptChallenge" | "denyChallenge" => {
            if tx.status != 112 {
                return Err(wrong_status(
                    3_020_401,
                    "Action denied : Wrong transaction status",
                    tx,
                ));
            }
            if operation == "acceptChallenge" {
                let statuses = authorize(tx);
                tx.fraud_review = "allowed";
                Ok((tx.status, statuses))
            } else {
                tx.state = TxState::Declined;
                tx.status = 111;
                tx.fraud_review = "denied";
                Ok((111, vec![111]))
            }
        }
        other => Err(HipayError::bad(
            3_000_101,
            "Unsupported Operation",
            format!("the sandbox does not support the {other} operation"),
        )),
    }
}

/// `POST {base}/gateway/v1/maintenance/transaction/{reference}`
pub(crate) async fn maintenance(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
    body: Bytes,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    let form = Form::parse(&req, &body)?;
    schema::check(&state, Endpoint::Maintenance, &form)?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let operation = form.required("operation")?.to_owned();
        let (answer, pending) = {
            let mut inner = state.lock();
            let tx = inner
                .transactions
                .get_mut(path.as_str())
                .ok_or_else(|| HipayError::unknown_transaction(&path))?;
            let operation_id = form.get("operation_id").map(str::to_owned);
            let amount_text = form.get("amount").map(str::to_owned);
            // `operation_id` is the merchant's label for the operation, echoed
            // in its notifications (gateway.yaml `Maintenance.operation_id`):
            // HiPay does not deduplicate on it, so a repeated request acts again.
            tx.maintenance.push(MaintenanceRecord {
                operation: operation.clone(),
                operation_id: operation_id.clone(),
                amount: amount_text.clone(),
            });
            if let Some(currency) = form.get("currency") {
                if currency != tx.order.currency {
                    let code = if operation == "refund" {
                        3_020_205
                    } else {
                        3_020_105
                    };
                    return Err(HipayError::bad(
                        code,
                        "Currency Mismatch",
                        format!("the transaction is in {}", tx.order.currency),
                    ));
                }
            }
            let amount = match &amount_text {
                None => None,
                Some(text) => Some(money::parse(text, tx.order.decimals).ok_or_else(|| {
                    HipayError::bad(
                        1_010_205,
                        "Invalid Parameter",
                        format!(
                            "amount: {text:?} is not a valid amount in {}",
                            tx.order.currency
                        ),
                    )
                })?),
            };
            let (captured, refunded) = (tx.captured, tx.refunded);
            let (status, statuses) = maintain(tx, &operation, amount)?;
            tx.date_updated = money::now_date();
            // Notifications carry `operation[...]` only about an operation
            // sent with an `operation_id`.
            tx.last_operation = operation_id.map(|id| LastOperation {
                kind: operation.clone(),
                id,
                reference: random_digits(12),
                amount: match operation.as_str() {
                    "capture" => tx.captured - captured,
                    "refund" => tx.refunded - refunded,
                    _ => tx.authorized,
                },
                date: tx.date_updated.clone(),
            });
            let answer = operation_json(tx, &operation, status);
            let body = answer.to_string().into_bytes();
            tracing::debug!(reference = %tx.reference, %operation, status = tx.status, "hipay: maintenance");
            (body, notify::about(tx, &statuses))
        };
        notify::dispatch(&state, pending, request_fault(&req));
        Ok(HttpResponse::Ok()
            .content_type("application/json")
            .body(answer))
    })();
    fault.finish(answer).await
}

/// `GET {base}/gateway/v1/transaction/{reference}`
pub(crate) async fn get_transaction(
    state: Data<HipayState>,
    req: HttpRequest,
    path: Path<String>,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    schema::check_lookup(&state, "GET", "/v1/transaction/{transaction_reference}")?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let inner = state.lock();
        let tx = inner
            .transactions
            .get(path.as_str())
            .ok_or_else(|| HipayError::unknown_transaction(&path))?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"transaction": transaction_json(tx)}),
        ))
    })();
    fault.finish(answer).await
}

#[derive(serde::Deserialize)]
pub(crate) struct OrderQuery {
    orderid: Option<String>,
}

/// `GET {base}/gateway/v1/transaction?orderid=...`: one transaction as an
/// object, several as an array (oldest first).
pub(crate) async fn get_transactions(
    state: Data<HipayState>,
    req: HttpRequest,
    query: Query<OrderQuery>,
) -> Result<HttpResponse, HipayError> {
    let account = authenticate(&state, &req)?;
    schema::check_lookup(&state, "GET", "/v1/transaction")?;
    let fault = ApiFault::begin(&state, &req, &account).await?;
    let answer = (|| -> Result<HttpResponse, HipayError> {
        let order_id = query
            .orderid
            .as_deref()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .ok_or_else(|| HipayError::missing("orderid"))?;
        let inner = state.lock();
        let list: Vec<Value> = inner
            .orders
            .get(order_id)
            .map(|refs| {
                refs.iter()
                    .filter_map(|r| inner.transactions.get(r))
                    .map(transaction_json)
                    .collect()
            })
            .unwrap_or_default();
        let transaction = match list.len() {
            0 => {
                return Err(HipayError::new(
                    StatusCode::NOT_FOUND,
                    3_000_001,
                    "Unknown Order",
                    format!("Order not found: {order_id}"),
                ))
            }
            1 => list.into_iter().next().unwrap_or(Value::Null),
            _ => Value::Array(list),
        };
        Ok(json_response(
            StatusCode::OK,
            &json!({"transaction": transaction}),
        ))
    })();
    fault.finish(answer).await
}
