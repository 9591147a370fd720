//! HiPay Enterprise connector (REST Gateway API, secure vault, hosted page).
//!
//! Flows:
//! - card: tokenize at the vault (`POST {vault}/v2/token/create`), then
//!   `POST {gateway}/v1/order` with the token (`Authorization` for manual
//!   capture, `Sale` for automatic). A `forwarding` answer is a 3-D Secure
//!   redirect; the shopper comes back to the return URL.
//! - `hosted_page`: `POST {api}/v1/hpayment`; the shopper pays on HiPay's page.
//! - complete: verify the return `hash`, then ask HiPay (`GET` the
//!   transaction): the browser's parameters never decide an outcome.
//! - capture / refund / cancel: `POST {gateway}/v1/maintenance/transaction/{ref}`,
//!   without `amount` for a full capture or refund (gateway.yaml); a capture
//!   or refund first reads the transaction, and a repeat of one whose
//!   outcome was unknown is sent again only if HiPay's totals show it did
//!   not happen (HiPay has no idempotency key: see [`ledger`]). "Requested"
//!   answers (117, 124, 175) are `pending` until the notification or a sync.
//! - notifications: form-encoded, `X-Allopass-Signature` = SHA(body + passphrase).
//!
//! The host's payment id is HiPay's `orderid`, so a transaction can always be
//! found again by order (a retried authorize after a timeout, the hosted page).

use passerelle_connector_sdk::http::percent_encode;
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{info, warn};
use serde_json::Value;

pub mod ledger;
#[cfg(test)]
mod tests;
pub mod transformers;

use ledger::{Progress, SentOperation};
use transformers::{
    error_from_response, is_supported_currency, json_body, notification_signature, redirect_hash,
    refund_reference, signature_matches, supported_currencies, to_decimal, Algorithm,
    NotificationFields, Token, Totals, Transaction,
};

/// Re-exported so a native user of this crate can drive the SDK's test kit.
pub use passerelle_connector_sdk as sdk;

/// The payment method type of HiPay's hosted payment page.
pub const HOSTED_PAGE: &str = "hosted_page";

/// HiPay's stage hosts.
pub const TEST_GATEWAY: &str = "https://stage-secure-gateway.hipay-tpp.com/rest";
pub const TEST_VAULT: &str = "https://stage-secure2-vault.hipay-tpp.com/rest";
pub const TEST_API: &str = "https://stage-api.hipay.com";
/// HiPay's production hosts.
pub const LIVE_GATEWAY: &str = "https://secure-gateway.hipay-tpp.com/rest";
pub const LIVE_VAULT: &str = "https://secure2-vault.hipay-tpp.com/rest";
pub const LIVE_API: &str = "https://api.hipay.com";

/// Per-request timeout asked of the host (it caps it with its own). Three
/// calls (vault, order, a duplicate-order lookup) must fit in the host's
/// 60 s budget for one plugin call.
const TIMEOUT_MS: u32 = 15_000;

/// HiPay answers notifications with a plain 200; any body does.
const NOTIFICATION_ANSWER: &str = "OK";

/// How long a card authorization stays capturable: "typically within 7
/// days after authorization" before HiPay expires it (status 114, HiPay's
/// transaction status list; HiPay's PHP SDK `TransactionStatus::EXPIRED`).
/// The hosted page pays by card too.
const AUTHORIZATION_VALIDITY_HOURS: u32 = 7 * 24;

/// The account setting naming the 3-D Secure request.
const AUTHENTICATION_INDICATOR: &str = "authentication_indicator";

pub struct Hipay;

passerelle_connector_sdk::export_connector!(Hipay);

impl Connector for Hipay {
    /// HiPay allows several partial captures (status 119 "Partially
    /// Captured", a capture "for the shipped part of the order" in its
    /// status list; gateway.yaml: "Amount is required for partial
    /// maintenances") and has no capture delay of its own (only
    /// `Authorization` or `Sale`): the host holds delayed captures.
    fn capabilities(_account: Account) -> Result<AccountCapabilities> {
        Ok(AccountCapabilities {
            authorization_validity: ["card", HOSTED_PAGE]
                .into_iter()
                .map(|method| AuthorizationValidity {
                    payment_method: method.into(),
                    hours: AUTHORIZATION_VALIDITY_HOURS,
                })
                .collect(),
            multiple_partial_captures: true,
            native_capture_delay_max_hours: None,
        })
    }

    fn describe() -> ConnectorInfo {
        let field = |name: &str, label: &str, secret: bool, required: bool| CredentialField {
            name: name.into(),
            label: label.into(),
            secret,
            required,
        };
        ConnectorInfo {
            id: "hipay".into(),
            name: "HiPay Enterprise".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            operations: vec![
                Operation::Authorize,
                Operation::Complete,
                Operation::Capture,
                Operation::PartialCapture,
                Operation::Cancel,
                Operation::Refund,
                Operation::PartialRefund,
                Operation::Sync,
                Operation::Notifications,
            ],
            payment_methods: vec!["card".into(), HOSTED_PAGE.into()],
            currencies: supported_currencies(),
            credential_fields: vec![
                field("api_username", "API username", false, true),
                field("api_password", "API password", true, true),
                field("passphrase", "Secret passphrase", true, true),
                field(
                    "signature_algorithm",
                    "Hash algorithm (sha1, sha256, sha512; default sha256)",
                    false,
                    false,
                ),
                field(
                    AUTHENTICATION_INDICATOR,
                    "3-D Secure: 1 = when available (default), 2 = mandatory",
                    false,
                    false,
                ),
            ],
        }
    }

    fn validate_config(account: Account) -> Result<()> {
        Api::new(&account)?;
        Secrets::new(&account)?;
        authentication_indicator(&account)?;
        Ok(())
    }

    fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
        check_currency(&request.amount)?;
        let amount = to_decimal(request.amount.minor_units, &request.amount.currency)?;
        let api = Api::new(&account)?;
        let operation = match request.capture_method {
            CaptureMethod::Manual => "Authorization",
            CaptureMethod::Automatic => "Sale",
        };
        let indicator = authentication_indicator(&account)?;
        let mut order = order_fields(&request, operation, &amount, indicator);
        match &request.payment_method {
            PaymentMethod::Card(card) => {
                let token = api.tokenize(card)?;
                order.push(("payment_product", token.payment_product().to_string()));
                order.push(("cardtoken", token.token));
                // The hosted page collects the browser data itself.
                let shopper = request.shopper.as_ref();
                if let Some(browser) = shopper.and_then(|s| s.browser.as_ref()) {
                    let ip = shopper.and_then(|s| s.ip_address.as_deref());
                    if let Some(json) = browser_info_json(browser, ip) {
                        order.push(("browser_info", json));
                    }
                }
                let response = api.send(api.gateway_post("/v1/order").form(&order))?;
                if response.is_success() {
                    let tx = Transaction::from_json(&json_body(&response)?)?;
                    info!(
                        "order {} is transaction {} status {}",
                        request.payment_id, tx.reference, tx.status
                    );
                    return tx.into_outcome(&request.amount.currency);
                }
                let error = error_from_response(&response);
                // 3010004 Duplicate Order: this order already has a live
                // transaction, so this is a repeat of an authorize whose
                // answer was lost. Report that transaction.
                if error.code == "3010004" {
                    return api
                        .transaction_by_order(&request.payment_id)?
                        .ok_or(error)?
                        .into_outcome(&request.amount.currency);
                }
                Err(error)
            }
            PaymentMethod::Other(other) if other.kind == HOSTED_PAGE => {
                let response = api.send(api.hosted_post("/v1/hpayment").form(&order))?;
                if !response.is_success() {
                    return Err(error_from_response(&response));
                }
                let body = json_body(&response)?;
                let url = body
                    .get("forwardUrl")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        ConnectorError::retryable(
                            "invalid_response",
                            "hosted page answer without forwardUrl",
                        )
                    })?;
                Ok(PaymentOutcome {
                    status: PaymentStatus::RequiresAction(Redirect {
                        url: url.to_string(),
                        method: HttpMethod::Get,
                        form: Vec::new(),
                    }),
                    // No transaction until the shopper pays: complete or a
                    // notification finds it by order id.
                    connector_reference: None,
                    provider_status: None,
                    amount_authorized: None,
                    amount_captured: None,
                    connector_data: None,
                    three_ds: None,
                    capture_before_ms: None,
                })
            }
            PaymentMethod::Other(other) => Err(ConnectorError::invalid_request(
                "payment_method",
                format!(
                    "HiPay takes \"card\" or \"{HOSTED_PAGE}\", not {:?}",
                    other.kind
                ),
            )),
        }
    }

    fn complete(account: Account, request: CompleteRequest) -> Result<PaymentOutcome> {
        let secrets = Secrets::new(&account)?;
        verify_return(&secrets, &request.params)?;
        let payment = &request.payment;
        if let Some((_, order)) = request.params.iter().find(|(k, _)| k == "orderid") {
            if order != &payment.payment_id {
                return Err(ConnectorError::invalid_request(
                    "orderid",
                    "the return URL names another order than this payment's",
                ));
            }
        }
        let api = Api::new(&account)?;
        let tx = match payment.connector_reference.as_deref() {
            Some(reference) if !reference.is_empty() => Some(api.transaction(reference)?),
            _ => api.transaction_by_order(&payment.payment_id)?,
        };
        match tx {
            Some(tx) => tx.into_outcome(&payment.amount.currency),
            // Back (signed) from the hosted page with no transaction at all:
            // the shopper cancelled before paying.
            None => Ok(PaymentOutcome {
                status: PaymentStatus::Canceled,
                connector_reference: None,
                provider_status: None,
                amount_authorized: None,
                amount_captured: None,
                connector_data: None,
                three_ds: None,
                capture_before_ms: None,
            }),
        }
    }

    fn capture(account: Account, request: CaptureRequest) -> Result<ModificationOutcome> {
        check_same_currency(&request.amount, &request.payment.amount)?;
        let api = Api::new(&account)?;
        let reference = transaction_reference(&request.payment)?;
        let now = api.transaction(reference)?;
        let totals = now.totals(&request.amount.currency)?;
        let attempt = sent_operation("capture", reference, &request.amount, &totals, &now);
        if let Some((progress, _)) =
            already_at_hipay(&request.idempotency_key, &attempt, &totals, &now)
        {
            return Ok(ModificationOutcome {
                status: settled_status(progress),
                connector_reference: None,
                provider_status: Some(now.status),
            });
        }
        // gateway.yaml: "Do not specify amount for full captures or
        // refunds." Full: the whole authorization, nothing captured yet.
        let full = request.amount.minor_units == totals.authorized && totals.captured == 0;
        let op = api.maintenance(
            reference,
            "capture",
            (!full).then_some(&request.amount),
            &request.idempotency_key,
        )?;
        info!(
            "capture of {} ({}) answered {}",
            reference,
            if full { "full" } else { "partial" },
            op.status
        );
        Ok(ModificationOutcome {
            status: op.modification_status(),
            connector_reference: None,
            provider_status: Some(op.status),
        })
    }

    fn cancel(account: Account, request: CancelRequest) -> Result<ModificationOutcome> {
        let api = Api::new(&account)?;
        let reference = transaction_reference(&request.payment)?;
        let op = api.maintenance(reference, "cancel", None, &request.idempotency_key)?;
        Ok(ModificationOutcome {
            status: op.modification_status(),
            connector_reference: None,
            provider_status: Some(op.status),
        })
    }

    fn refund(account: Account, request: RefundRequest) -> Result<ModificationOutcome> {
        check_same_currency(&request.amount, &request.payment.amount)?;
        let api = Api::new(&account)?;
        let reference = transaction_reference(&request.payment)?;
        // The refund's name is the refunded total once it is done (see
        // `refund_reference`): read what HiPay has refunded so far.
        let now = api.transaction(reference)?;
        let totals = now.totals(&request.amount.currency)?;
        let attempt = sent_operation("refund", reference, &request.amount, &totals, &now);
        let named = |sent: &SentOperation| {
            refund_reference(
                reference,
                sent.refunded_before
                    .saturating_add(request.amount.minor_units),
            )
        };
        if let Some((progress, earlier)) =
            already_at_hipay(&request.idempotency_key, &attempt, &totals, &now)
        {
            // Made: refunded (125, 126) or still requested (124) as HiPay
            // shows it now.
            let status = match (progress, now.status.as_str()) {
                (Progress::Done, "125" | "126") => ModificationStatus::Succeeded,
                _ => ModificationStatus::Pending,
            };
            return Ok(ModificationOutcome {
                status,
                connector_reference: Some(named(&earlier)),
                provider_status: Some(now.status),
            });
        }
        // Full: everything captured, nothing refunded yet.
        let full = request.amount.minor_units == totals.captured && totals.refunded == 0;
        let op = api.maintenance(
            reference,
            "refund",
            (!full).then_some(&request.amount),
            &request.idempotency_key,
        )?;
        Ok(ModificationOutcome {
            status: op.modification_status(),
            connector_reference: Some(named(&attempt)),
            provider_status: Some(op.status),
        })
    }

    fn sync(account: Account, payment: PaymentRef) -> Result<PaymentOutcome> {
        let api = Api::new(&account)?;
        let tx = match payment.connector_reference.as_deref() {
            Some(reference) if !reference.is_empty() => api.transaction(reference)?,
            _ => api
                .transaction_by_order(&payment.payment_id)?
                .ok_or_else(|| {
                    ConnectorError::rejected("3000001", "HiPay has no transaction for this order")
                })?,
        };
        tx.into_outcome(&payment.amount.currency)
    }

    fn handle_notification(
        account: Account,
        notification: Notification,
    ) -> Result<NotificationOutcome> {
        let secrets = Secrets::new(&account)?;
        // Verify before parsing: nothing in an unverified body is trusted.
        verify_notification(
            &secrets,
            notification.header("X-Allopass-Signature"),
            &notification.body,
        )
        .inspect_err(|e| warn!("rejected a notification: {}", e.message))?;
        let event = NotificationFields::parse(&notification.body)?.into_event()?;
        Ok(NotificationOutcome {
            events: vec![event],
            response_status: 200,
            response_content_type: "text/plain".into(),
            response_body: NOTIFICATION_ANSWER.into(),
        })
    }
}

/// The passphrase and algorithm that sign notifications and returns.
pub struct Secrets {
    passphrase: String,
    algorithm: Algorithm,
}

impl Secrets {
    pub fn new(account: &Account) -> Result<Self> {
        let passphrase = account.require("passphrase")?.to_string();
        let algorithm = match account.optional("signature_algorithm") {
            None => Algorithm::Sha256,
            Some(name) => Algorithm::parse(name).ok_or_else(|| {
                ConnectorError::invalid_config(
                    "signature_algorithm",
                    "signature_algorithm must be sha1, sha256 or sha512",
                )
            })?,
        };
        Ok(Secrets {
            passphrase,
            algorithm,
        })
    }
}

/// Checks `X-Allopass-Signature` against SHA(raw body + passphrase).
pub fn verify_notification(secrets: &Secrets, header: Option<&str>, body: &[u8]) -> Result<()> {
    let received = header
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| ConnectorError::invalid_signature("missing X-Allopass-Signature header"))?;
    let expected = notification_signature(secrets.algorithm, &secrets.passphrase, body);
    if signature_matches(&expected, received) {
        Ok(())
    } else {
        Err(ConnectorError::invalid_signature(
            "X-Allopass-Signature does not match",
        ))
    }
}

/// Checks the `hash` HiPay adds to the URL it sends the shopper back to.
pub fn verify_return(secrets: &Secrets, params: &[(String, String)]) -> Result<()> {
    let received = params
        .iter()
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ConnectorError::invalid_signature("return URL without hash"))?;
    let expected = redirect_hash(secrets.algorithm, &secrets.passphrase, params);
    if signature_matches(&expected, received) {
        Ok(())
    } else {
        Err(ConnectorError::invalid_signature(
            "return URL hash does not match",
        ))
    }
}

/// The order fields common to `/v1/order` and `/v1/hpayment`.
fn order_fields(
    request: &AuthorizeRequest,
    operation: &str,
    amount: &str,
    authentication_indicator: &str,
) -> Vec<(&'static str, String)> {
    let description: String = if request.reference.is_empty() {
        request.payment_id.clone()
    } else {
        request.reference.chars().take(255).collect()
    };
    let mut f = vec![
        ("orderid", request.payment_id.clone()),
        ("operation", operation.to_string()),
        ("description", description),
        ("currency", request.amount.currency.clone()),
        ("amount", amount.to_string()),
    ];
    // Every outcome comes back to the host's return URL, which asks HiPay.
    for name in [
        "accept_url",
        "decline_url",
        "pending_url",
        "exception_url",
        "cancel_url",
    ] {
        f.push((name, request.return_url.clone()));
    }
    f.push(("notify_url", request.notification_url.clone()));
    // Without it HiPay bypasses 3-D Secure (gateway.yaml and hpayment.yaml:
    // default 0), and PSD2 issuers soft-decline (178).
    f.push((
        "authentication_indicator",
        authentication_indicator.to_string(),
    ));
    // The merchant's own reference, echoed in notifications and returns.
    f.push(("cdata1", request.reference.chars().take(255).collect()));
    if let Some(shopper) = &request.shopper {
        if let Some(email) = shopper.email.as_deref().filter(|e| !e.is_empty()) {
            f.push(("email", email.to_string()));
        }
        if let Some(ip) = shopper.ip_address.as_deref().filter(|i| !i.is_empty()) {
            f.push(("ipaddr", ip.to_string()));
        }
        if let Some(browser) = &shopper.browser {
            if !browser.accept_header.is_empty() {
                f.push(("http_accept", browser.accept_header.clone()));
            }
            if !browser.user_agent.is_empty() {
                f.push(("http_user_agent", browser.user_agent.clone()));
            }
            if let Some(language) = hipay_language(&browser.language) {
                f.push(("language", language));
            }
        }
    }
    f
}

/// The account's `authentication_indicator`: `1` (3-D Secure when
/// available, the default) or `2` (mandatory). HiPay's own default, `0`
/// (bypass), is not offered: PSD2 issuers soft-decline payments without
/// strong authentication.
fn authentication_indicator(account: &Account) -> Result<&'static str> {
    match account.optional(AUTHENTICATION_INDICATOR).map(str::trim) {
        None | Some("") | Some("1") => Ok("1"),
        Some("2") => Ok("2"),
        Some(_) => Err(ConnectorError::invalid_config(
            AUTHENTICATION_INDICATOR,
            "authentication_indicator must be 1 (3-D Secure when available) or 2 \
             (mandatory); 0 (bypass) would have EEA issuers soft-decline",
        )),
    }
}

/// `browser_info` as HiPay's PHP SDK sends it: one form field holding the
/// JSON object (`BrowserInfo::toJson` through `RequestSerializer`), with
/// gateway.yaml's names and types (`java_enabled`/`javascript_enabled`
/// booleans, `color_depth`/`screen_height`/`screen_width` integers,
/// `timezone` a string). `None` without a language, which HiPay requires.
fn browser_info_json(browser: &BrowserInfo, ip: Option<&str>) -> Option<String> {
    let language = bcp47_within(&browser.language, 8)?;
    let mut obj = serde_json::Map::new();
    let mut put = |name: &str, value: Value| {
        obj.insert(name.to_string(), value);
    };
    put("java_enabled", Value::Bool(browser.java_enabled));
    put(
        "javascript_enabled",
        Value::Bool(browser.javascript_enabled),
    );
    if let Some(ip) = ip.map(str::trim).filter(|i| !i.is_empty() && i.len() <= 45) {
        put("ipaddr", Value::from(ip));
    }
    for (name, value) in [
        ("http_accept", &browser.accept_header),
        ("http_user_agent", &browser.user_agent),
    ] {
        if !value.is_empty() {
            put(
                name,
                Value::from(value.chars().take(2048).collect::<String>()),
            );
        }
    }
    put("language", Value::from(language));
    if let Some(depth) = hipay_color_depth(browser.color_depth) {
        put("color_depth", Value::from(depth));
    }
    // gateway.yaml: at most 6 digits.
    for (name, pixels) in [
        ("screen_height", browser.screen_height),
        ("screen_width", browser.screen_width),
    ] {
        if (1..=999_999).contains(&pixels) {
            put(name, Value::from(pixels));
        }
    }
    // `getTimezoneOffset()`, "-120" in Paris in summer; at most 5 characters.
    let timezone = browser.time_zone_offset.to_string();
    if timezone.len() <= 5 {
        put("timezone", Value::from(timezone));
    }
    serde_json::to_string(&obj).ok()
}

/// The deepest colour depth of gateway.yaml's list (1, 4, 8, 15, 16, 24,
/// 32, 48) that is not above the browser's: a 30-bit screen is sent as 24.
fn hipay_color_depth(depth: u8) -> Option<u8> {
    [48, 32, 24, 16, 15, 8, 4, 1]
        .into_iter()
        .find(|listed| *listed <= depth)
}

/// A BCP 47 tag cut to its leading subtags that fit in `max` characters
/// ("zh-Hant-TW" in 8 is "zh-Hant"); `None` when not even the first fits.
fn bcp47_within(tag: &str, max: usize) -> Option<String> {
    let tag = tag.trim();
    let mut out = String::new();
    for subtag in tag.split('-') {
        let needed = out.len() + usize::from(!out.is_empty()) + subtag.len();
        if subtag.is_empty() || !subtag.bytes().all(|b| b.is_ascii_alphanumeric()) || needed > max {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(subtag);
    }
    (!out.is_empty()).then_some(out)
}

/// HiPay's `language` is a locale such as `fr_FR`; anything else is left out.
fn hipay_language(language: &str) -> Option<String> {
    let b = language.as_bytes();
    let ok = b.len() == 5
        && b[..2].iter().all(u8::is_ascii_alphabetic)
        && (b[2] == b'_' || b[2] == b'-')
        && b[3..].iter().all(u8::is_ascii_alphabetic);
    ok.then(|| {
        format!(
            "{}_{}",
            language[..2].to_ascii_lowercase(),
            language[3..].to_ascii_uppercase()
        )
    })
}

/// HiPay's three hosts for one account, and its credentials.
struct Api {
    gateway: String,
    vault: String,
    hosted: String,
    username: String,
    password: String,
}

impl Api {
    fn new(account: &Account) -> Result<Self> {
        // A custom base URL (the sandbox, a proxy) serves the three APIs
        // under /gateway, /vault and /api.
        let custom = account
            .base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        let (gateway, vault, hosted) = if custom.is_some() {
            let base = base_url(account, "", "")?;
            (
                format!("{base}/gateway"),
                format!("{base}/vault"),
                format!("{base}/api"),
            )
        } else if account.is_live() {
            (LIVE_GATEWAY.into(), LIVE_VAULT.into(), LIVE_API.into())
        } else {
            (TEST_GATEWAY.into(), TEST_VAULT.into(), TEST_API.into())
        };
        Ok(Api {
            gateway,
            vault,
            hosted,
            username: account.require("api_username")?.to_string(),
            password: account.require("api_password")?.to_string(),
        })
    }

    fn gateway_post(&self, path: &str) -> Request {
        Request::post(format!("{}{path}", self.gateway))
    }

    fn hosted_post(&self, path: &str) -> Request {
        Request::post(format!("{}{path}", self.hosted))
    }

    /// Sends with Basic auth and `Accept: application/json`.
    fn send(&self, request: Request) -> Result<Response> {
        request
            .basic_auth(&self.username, &self.password)
            .header("Accept", "application/json")
            .timeout_ms(TIMEOUT_MS)
            .send()
    }

    /// Tokenizes the card at the vault. The card data goes to HiPay only.
    fn tokenize(&self, card: &Card) -> Result<Token> {
        let holder = card
            .holder_name
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
            // The vault requires a holder; HiPay does not check it against the card.
            .unwrap_or("Card Holder");
        let mut fields = vec![
            ("card_number", card.number.clone()),
            ("card_expiry_month", format!("{:02}", card.exp_month)),
            ("card_expiry_year", format!("{:04}", card.exp_year)),
            ("card_holder", holder.to_string()),
            ("multi_use", "0".to_string()),
        ];
        if let Some(cvc) = card.cvc.as_deref().filter(|c| !c.is_empty()) {
            fields.push(("cvc", cvc.to_string()));
        }
        let request = Request::post(format!("{}/v2/token/create", self.vault)).form(&fields);
        let response = self.send(request)?;
        if !response.is_success() {
            return Err(error_from_response(&response));
        }
        response.json()
    }

    /// `GET /v1/transaction/{reference}`.
    fn transaction(&self, reference: &str) -> Result<Transaction> {
        let url = format!(
            "{}/v1/transaction/{}",
            self.gateway,
            percent_encode(reference)
        );
        let response = self.send(Request::get(url))?;
        if !response.is_success() {
            return Err(error_from_response(&response));
        }
        Transaction::from_lookup(&json_body(&response)?)
    }

    /// `GET /v1/transaction?orderid=`: the order's latest transaction, or
    /// `None` when the order has none (404).
    fn transaction_by_order(&self, order_id: &str) -> Result<Option<Transaction>> {
        let url = format!(
            "{}/v1/transaction?orderid={}",
            self.gateway,
            percent_encode(order_id)
        );
        let response = self.send(Request::get(url))?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(error_from_response(&response));
        }
        Transaction::from_lookup(&json_body(&response)?).map(Some)
    }

    /// `POST /v1/maintenance/transaction/{reference}`.
    fn maintenance(
        &self,
        reference: &str,
        operation: &str,
        amount: Option<&Money>,
        idempotency_key: &str,
    ) -> Result<Transaction> {
        let mut fields = vec![
            ("operation", operation.to_string()),
            // A label HiPay echoes in the operation's notifications
            // (`operation[id]`), not an idempotency key: see `ledger`.
            ("operation_id", idempotency_key.to_string()),
        ];
        if let Some(amount) = amount {
            fields.push(("amount", to_decimal(amount.minor_units, &amount.currency)?));
            fields.push(("currency", amount.currency.clone()));
        }
        let url = format!(
            "{}/v1/maintenance/transaction/{}",
            self.gateway,
            percent_encode(reference)
        );
        let response = self.send(Request::post(url).form(&fields))?;
        if !response.is_success() {
            return Err(error_from_response(&response));
        }
        Transaction::from_json(&json_body(&response)?)
    }
}

/// A capture or refund about to be sent, with HiPay's totals before it.
fn sent_operation(
    operation: &str,
    reference: &str,
    amount: &Money,
    totals: &Totals,
    now: &Transaction,
) -> SentOperation {
    SentOperation {
        operation: operation.into(),
        transaction: reference.into(),
        amount: amount.minor_units,
        captured_before: totals.captured,
        refunded_before: totals.refunded,
        status_before: now.status.clone(),
    }
}

/// The operation sent before under the same idempotency key, with where it
/// stands at HiPay, when it is not to be sent again. `None`: never sent (as
/// far as this node's cache knows; it is remembered now), or sent and
/// nothing moved at HiPay: to send.
fn already_at_hipay(
    idempotency_key: &str,
    attempt: &SentOperation,
    totals: &Totals,
    now: &Transaction,
) -> Option<(Progress, SentOperation)> {
    let Some(earlier) = ledger::recall(idempotency_key, attempt) else {
        ledger::remember(idempotency_key, attempt);
        return None;
    };
    match earlier.progress(totals.captured, totals.refunded, &now.status) {
        Progress::NotDone => {
            warn!(
                "{} of {} was not made at HiPay: sent again",
                earlier.operation, earlier.transaction
            );
            None
        }
        progress => {
            info!(
                "{} of {} already reached HiPay ({progress:?}): not sent again",
                earlier.operation, earlier.transaction
            );
            Some((progress, earlier))
        }
    }
}

/// The answer for a repeated capture HiPay already has: done, or left to
/// its notification (requested, or totals that moved by another amount).
fn settled_status(progress: Progress) -> ModificationStatus {
    match progress {
        Progress::Done => ModificationStatus::Succeeded,
        Progress::Requested | Progress::Unclear | Progress::NotDone => ModificationStatus::Pending,
    }
}

/// HiPay's transaction reference, which every maintenance operation needs.
fn transaction_reference(payment: &PaymentRef) -> Result<&str> {
    payment
        .connector_reference
        .as_deref()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ConnectorError::invalid_request(
                "connector_reference",
                "the payment has no HiPay transaction reference",
            )
        })
}

/// Refuses a currency HiPay does not take, before any call.
fn check_currency(amount: &Money) -> Result<()> {
    if is_supported_currency(&amount.currency) {
        Ok(())
    } else {
        Err(ConnectorError::invalid_request(
            "currency",
            format!("HiPay does not support the currency {:?}", amount.currency),
        ))
    }
}

/// A capture or refund must be in the payment's currency.
fn check_same_currency(amount: &Money, payment_amount: &Money) -> Result<()> {
    check_currency(amount)?;
    if amount.currency != payment_amount.currency {
        return Err(ConnectorError::invalid_request(
            "currency",
            format!(
                "{} differs from the payment's {}",
                amount.currency, payment_amount.currency
            ),
        ));
    }
    Ok(())
}
