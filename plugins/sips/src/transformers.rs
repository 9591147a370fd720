//! Worldline Sips 2.0 wire format (Paypage JSON, Office JSON, the `Data`
//! payment response) and its mapping to the contract's types.
//!
//! Everything provider-specific about *data* lives here; `lib.rs` only
//! sequences calls.

use crate::seal::{self, Algorithm};
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{crypto, money};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// Paypage JSON interface version sent with `paymentInit`.
pub const PAYPAGE_INTERFACE_VERSION: &str = "IR_WS_2.20";
/// Office JSON cash management interface version.
pub const CASH_INTERFACE_VERSION: &str = "CR_WS_2.3";
/// Office JSON diagnostic interface version.
pub const DIAGNOSTIC_INTERFACE_VERSION: &str = "DR_WS_2.9";

/// Largest amount Sips takes: 12 digits of minor units.
pub const MAX_AMOUNT: u64 = 999_999_999_999;

/// `capture_day_limit` when the account does not set it: the days a card
/// authorization stays valid at Sips (six), so that a manual capture sent
/// on the last day still finds a live authorization.
pub const DEFAULT_CAPTURE_DAY_LIMIT: u32 = 6;
/// The largest `captureDay` Sips takes (two digits).
pub const MAX_CAPTURE_DAY: u32 = 99;

/// The currencies Sips 2.0 processes (its data dictionary's `currencyCode`
/// list). Anything else is refused before any call.
pub const CURRENCIES: &[&str] = &[
    "AED", "ARS", "AUD", "BGN", "BHD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP",
    "HKD", "HUF", "ILS", "INR", "JPY", "KRW", "KWD", "MXN", "MYR", "NOK", "NZD", "PLN", "RON",
    "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TND", "TRY", "TWD", "UAH", "USD", "XOF", "XPF",
    "ZAR",
];

/// The ISO 4217 numeric code Sips wants (`"978"`, `"036"`: always 3 digits),
/// or `invalid-request` field `currency` for a currency Sips does not take.
pub fn currency_code(currency: &str) -> Result<String> {
    let numeric = CURRENCIES
        .contains(&currency)
        .then(|| money::numeric_code(currency))
        .flatten()
        .ok_or_else(|| {
            ConnectorError::invalid_request(
                "currency",
                format!("Worldline Sips does not process {currency:?}"),
            )
        })?;
    Ok(format!("{numeric:03}"))
}

/// The alphabetic code of a Sips numeric `currencyCode`, for amounts Sips reports.
pub fn currency_alpha(numeric: &str) -> Option<&'static str> {
    CURRENCIES
        .iter()
        .copied()
        .find(|c| money::numeric_code(c).is_some_and(|n| format!("{n:03}") == numeric))
}

/// The `transactionReference` of a payment: its host id without the
/// characters Sips refuses (it takes 1–35 alphanumerics). Host ids are
/// `pay_` + 24 alphanumerics, so this stays unique and readable; a longer
/// id is shortened to a hash so that it stays stable across calls.
pub fn transaction_reference(payment_id: &str) -> String {
    let cleaned: String = payment_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if !cleaned.is_empty() && cleaned.len() <= 35 {
        cleaned
    } else {
        let digest = crypto::hex_lower(crypto::sha256(payment_id));
        format!("p{}", &digest[..34])
    }
}

// ---------------------------------------------------------------- settings

/// How Sips encodes the `Data` it posts back (`responseEncoding`, answered
/// as `Encode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseEncoding {
    /// RFC 4648 section 4 (`+`, `/`, `=` padding).
    Base64,
    /// RFC 4648 section 5 (`-`, `_`; padding optional).
    Base64url,
}

impl ResponseEncoding {
    /// The `responseEncoding` / `Encode` value naming it.
    pub fn name(self) -> &'static str {
        match self {
            ResponseEncoding::Base64 => "base64",
            ResponseEncoding::Base64url => "base64url",
        }
    }

    /// Reads an `Encode` value (case-insensitive, as Sips' own samples
    /// compare it loosely).
    pub fn parse(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("base64") {
            Some(ResponseEncoding::Base64)
        } else if name.eq_ignore_ascii_case("base64url") {
            Some(ResponseEncoding::Base64url)
        } else {
            None
        }
    }

    /// The bytes `data` encodes.
    fn decode(self, data: &str) -> Option<Vec<u8>> {
        let data = data.trim();
        match self {
            ResponseEncoding::Base64 => crypto::base64_decode(data),
            ResponseEncoding::Base64url => crypto::base64url_decode(data.trim_end_matches('=')),
        }
    }
}

/// The account's non-secret Sips settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `captureDay` of a manual capture: the days left to validate the
    /// transaction before it expires (1 to 99), and the longest native
    /// capture delay.
    pub capture_day_limit: u32,
    /// `responseEncoding` asked of Sips, if any.
    pub response_encoding: Option<ResponseEncoding>,
}

impl Settings {
    /// Reads `capture_day_limit` and `response_encoding` from the account.
    pub fn from_account(account: &Account) -> Result<Self> {
        let capture_day_limit = match account.optional("capture_day_limit") {
            None => DEFAULT_CAPTURE_DAY_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|days| (1..=MAX_CAPTURE_DAY).contains(days))
                .ok_or_else(|| {
                    ConnectorError::invalid_config(
                        "capture_day_limit",
                        "the capture day limit is a number of days from 1 to 99",
                    )
                })?,
        };
        let response_encoding = match account.optional("response_encoding") {
            None => None,
            Some(name) => Some(ResponseEncoding::parse(name).ok_or_else(|| {
                ConnectorError::invalid_config(
                    "response_encoding",
                    "the response encoding is base64 or base64url",
                )
            })?),
        };
        Ok(Settings {
            capture_day_limit,
            response_encoding,
        })
    }

    /// The capture window in hours: how long a manual authorization stays
    /// capturable, and the longest native capture delay.
    pub fn capture_window_hours(&self) -> u32 {
        self.capture_day_limit * 24
    }
}

// ---------------------------------------------------------------- requests

/// The sealing parameters of an account: merchant, key, key version, algorithm.
pub struct Credentials {
    pub merchant_id: String,
    pub secret_key: String,
    pub key_version: String,
    pub algorithm: Algorithm,
}

impl core::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The secret key must never reach a log line.
        f.write_str("Credentials { .. }")
    }
}

impl Credentials {
    /// Adds `merchantId`, `keyVersion`, `sealAlgorithm` and the `seal` to
    /// `body`, so the seal covers exactly the JSON that is sent.
    pub fn seal_request(&self, mut body: Map<String, Value>) -> Value {
        body.insert("merchantId".into(), json!(self.merchant_id));
        let key_version = self
            .key_version
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(self.key_version.clone()));
        body.insert("keyVersion".into(), key_version);
        body.insert("sealAlgorithm".into(), json!(self.algorithm.name()));
        let seal = seal::json_seal(
            self.algorithm,
            &self.secret_key,
            &Value::Object(body.clone()),
        );
        body.insert("seal".into(), Value::String(seal));
        Value::Object(body)
    }
}

/// The merchant's order reference as Sips `orderId` (at most 32 characters,
/// no `|` or `=`, which would break the `Data` field): left out otherwise.
fn order_id(reference: &str) -> Option<&str> {
    (!reference.is_empty()
        && reference.len() <= 32
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then_some(reference)
}

/// `captureMode` and `captureDay` of a payment.
///
/// - Manual: `VALIDATION` with the account's capture day limit: Sips keeps
///   the authorization that many days for a validation, after which the
///   transaction expires. (With `captureDay` 0 it would expire at the
///   payment day's remittance.)
/// - Automatic: `AUTHOR_CAPTURE` day 0, captured in that day's remittance.
/// - Automatic with a delay: `AUTHOR_CAPTURE` with the delay in whole
///   days, rounded up (Sips counts days, not hours): 1 to 24 hours is one
///   day, 25 hours two. At most the capture day limit.
pub fn capture_mode(
    request: &AuthorizeRequest,
    settings: &Settings,
) -> Result<(&'static str, u32)> {
    match (&request.capture_method, request.capture_delay_hours) {
        (CaptureMethod::Manual, _) => Ok(("VALIDATION", settings.capture_day_limit)),
        (CaptureMethod::Automatic, None) => Ok(("AUTHOR_CAPTURE", 0)),
        (CaptureMethod::Automatic, Some(hours)) => {
            let days = hours.div_ceil(24);
            if days > settings.capture_day_limit {
                return Err(ConnectorError::invalid_request(
                    "capture_delay_hours",
                    format!(
                        "Sips delays a capture by at most {} hours on this account ({} days)",
                        settings.capture_window_hours(),
                        settings.capture_day_limit
                    ),
                ));
            }
            Ok(("AUTHOR_CAPTURE", days))
        }
    }
}

/// The body of `paymentInit` (before sealing).
pub fn payment_init_body(
    request: &AuthorizeRequest,
    currency_code: &str,
    settings: &Settings,
) -> Result<Map<String, Value>> {
    let mut body = Map::new();
    body.insert("amount".into(), json!(request.amount.minor_units));
    body.insert("currencyCode".into(), json!(currency_code));
    body.insert("interfaceVersion".into(), json!(PAYPAGE_INTERFACE_VERSION));
    body.insert("normalReturnUrl".into(), json!(request.return_url));
    body.insert(
        "automaticResponseUrl".into(),
        json!(request.notification_url),
    );
    body.insert("orderChannel".into(), json!("INTERNET"));
    body.insert(
        "transactionReference".into(),
        json!(transaction_reference(&request.payment_id)),
    );
    let (mode, day) = capture_mode(request, settings)?;
    body.insert("captureMode".into(), json!(mode));
    body.insert("captureDay".into(), json!(day));
    if let Some(encoding) = settings.response_encoding {
        body.insert("responseEncoding".into(), json!(encoding.name()));
    }
    if let Some(order_id) = order_id(&request.reference) {
        body.insert("orderId".into(), json!(order_id));
    }
    Ok(body)
}

/// The body of a cash management operation (`validate`, `cancel`, `refund`).
pub fn cash_body(reference: &str, amount: u64, currency_code: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("transactionReference".into(), json!(reference));
    body.insert("operationAmount".into(), json!(amount));
    body.insert("currencyCode".into(), json!(currency_code));
    body.insert("interfaceVersion".into(), json!(CASH_INTERFACE_VERSION));
    body
}

/// The body of `diagnostic/getTransactionData`.
pub fn diagnostic_body(reference: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("transactionReference".into(), json!(reference));
    body.insert(
        "interfaceVersion".into(),
        json!(DIAGNOSTIC_INTERFACE_VERSION),
    );
    body
}

// --------------------------------------------------------------- answers

/// Checks the seal of a Sips JSON answer. Successful answers must carry a
/// valid one (it is what makes the redirect URL or a status trustworthy);
/// error answers may come unsealed (Sips does not seal an answer to a
/// request whose own seal or merchant it could not check).
pub fn check_answer_seal(answer: &Value, credentials: &Credentials, must: bool) -> Result<()> {
    match answer.get("seal").and_then(Value::as_str) {
        Some(given) => {
            let data = seal::json_seal_string(answer);
            // Sips seals the answer with the request's algorithm.
            if seal::verify(credentials.algorithm, &credentials.secret_key, &data, given) {
                Ok(())
            } else {
                Err(ConnectorError::retryable(
                    "invalid_response_seal",
                    "the Sips answer's seal does not match: not trusted",
                ))
            }
        }
        None if must => Err(ConnectorError::retryable(
            "invalid_response_seal",
            "the Sips answer carries no seal: not trusted",
        )),
        None => Ok(()),
    }
}

/// The answer of `paymentInit`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct InitAnswer {
    pub redirection_status_code: String,
    #[serde(default)]
    pub redirection_status_message: Option<String>,
    #[serde(default)]
    pub redirection_url: Option<String>,
    #[serde(default)]
    pub redirection_data: Option<String>,
    #[serde(default)]
    pub redirection_version: Option<String>,
}

/// What this connector keeps with a payment: the redirect, so that a sync
/// before the shopper paid can hand it back (Sips does not know a
/// transaction until the shopper paid), and the seal algorithm the payment
/// response will use.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, Default)]
pub struct ConnectorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_algorithm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirection_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirection_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirection_version: Option<String>,
}

impl ConnectorData {
    pub fn parse(data: Option<&str>) -> ConnectorData {
        data.and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }

    /// The shopper's redirect, if one was issued.
    pub fn redirect(&self) -> Option<Redirect> {
        Some(post_redirect(
            self.redirection_url.clone()?,
            self.redirection_version.clone().unwrap_or_default(),
            self.redirection_data.clone()?,
        ))
    }
}

/// The browser POSTs `redirectionVersion` and `redirectionData` to `redirectionUrl`.
pub fn post_redirect(url: String, version: String, data: String) -> Redirect {
    Redirect {
        url,
        method: HttpMethod::Post,
        form: vec![
            ("redirectionVersion".into(), version),
            ("redirectionData".into(), data),
        ],
    }
}

impl InitAnswer {
    /// The outcome of `authorize`: the redirect to Sips' payment pages.
    pub fn into_outcome(self, reference: String, algorithm: Algorithm) -> Result<PaymentOutcome> {
        match self.redirection_status_code.as_str() {
            "00" => {}
            code => return Err(init_error(code, self.redirection_status_message)),
        }
        let (Some(url), Some(data)) = (self.redirection_url, self.redirection_data) else {
            return Err(ConnectorError::retryable(
                "invalid_response",
                "paymentInit accepted without redirectionUrl or redirectionData",
            ));
        };
        let version = self.redirection_version.unwrap_or_default();
        let stored = ConnectorData {
            seal_algorithm: Some(algorithm.name().into()),
            redirection_url: Some(url.clone()),
            redirection_data: Some(data.clone()),
            redirection_version: Some(version.clone()),
        };
        Ok(PaymentOutcome {
            status: PaymentStatus::RequiresAction(post_redirect(url, version, data)),
            connector_reference: Some(reference),
            provider_status: Some("00".into()),
            amount_authorized: None,
            amount_captured: None,
            connector_data: serde_json::to_string(&stored).ok(),
            three_ds: None,
            capture_before_ms: None,
        })
    }
}

/// A `redirectionStatusCode` other than `00`.
fn init_error(code: &str, message: Option<String>) -> ConnectorError {
    let message = format!(
        "paymentInit: {} ({})",
        message.unwrap_or_else(|| describe_code(code).into()),
        code
    );
    match code {
        "03" => ConnectorError::invalid_config("merchant_id", message).with_code("03"),
        "34" => ConnectorError::invalid_config("secret_key", message).with_code("34"),
        "90" | "97" | "99" => ConnectorError::retryable(code, message),
        _ => ConnectorError::rejected(code, message),
    }
}

/// The answer of a cash management operation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CashAnswer {
    pub response_code: String,
    #[serde(default)]
    pub acquirer_response_code: Option<String>,
    #[serde(default)]
    pub new_status: Option<String>,
    #[serde(default)]
    pub error_field_name: Option<String>,
}

impl CashAnswer {
    /// The outcome of a capture, cancel or refund. Office operations are
    /// synchronous at Sips: `00` means done (a refund then waits in
    /// `TO_CREDIT` for the day's remittance, and no notification follows).
    pub fn into_outcome(self, reference: Option<String>) -> Result<ModificationOutcome> {
        let code = self.response_code.as_str();
        let status = match code {
            "00" => ModificationStatus::Succeeded,
            "60" => ModificationStatus::Pending,
            "03" | "34" | "12" | "30" | "90" | "97" | "99" => {
                return Err(office_error(code, self.error_field_name.as_deref()))
            }
            c if describe_known(c).is_some() => ModificationStatus::Refused(Refusal {
                code: c.into(),
                reason: refusal_reason(c, self.acquirer_response_code.as_deref()),
            }),
            other => {
                return Err(ConnectorError::retryable(
                    "unexpected_status",
                    format!("Sips answered an unknown responseCode {other:?}"),
                ))
            }
        };
        Ok(ModificationOutcome {
            status,
            connector_reference: reference,
            provider_status: Some(match self.new_status {
                Some(s) if code == "00" => s,
                _ => self.response_code,
            }),
        })
    }
}

/// An Office `responseCode` that is not an answer about the transaction.
pub fn office_error(code: &str, field: Option<&str>) -> ConnectorError {
    let mut message = format!("Sips Office: {} ({code})", describe_code(code));
    if let Some(field) = field {
        message.push_str(&format!(", field {field}"));
    }
    match code {
        "03" => ConnectorError::invalid_config("merchant_id", message).with_code("03"),
        "34" => ConnectorError::invalid_config("secret_key", message).with_code("34"),
        "90" | "97" | "99" => ConnectorError::retryable(code, message),
        _ => ConnectorError::rejected(code, message),
    }
}

/// The answer of `diagnostic/getTransactionData`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TransactionData {
    pub response_code: String,
    #[serde(default)]
    pub transaction_reference: Option<String>,
    #[serde(default)]
    pub transaction_status: Option<String>,
    #[serde(default, deserialize_with = "amount_opt")]
    pub amount: Option<u64>,
    #[serde(default, deserialize_with = "amount_opt")]
    pub origin_amount: Option<u64>,
    #[serde(default, deserialize_with = "amount_opt")]
    pub captured_amount: Option<u64>,
    #[serde(default)]
    pub acquirer_response_code: Option<String>,
    #[serde(default)]
    pub transaction_response_code: Option<String>,
    #[serde(default)]
    pub error_field_name: Option<String>,
    #[serde(default)]
    pub capture_mode: Option<String>,
    #[serde(default, deserialize_with = "number_opt")]
    pub capture_day: Option<u64>,
    #[serde(default)]
    pub capture_limit_date: Option<String>,
    #[serde(default)]
    pub transaction_date_time: Option<String>,
    #[serde(default)]
    pub holder_authent_status: Option<String>,
    #[serde(default)]
    pub holder_authent_relegation: Option<String>,
    #[serde(default)]
    pub holder_authent_program: Option<String>,
    #[serde(default)]
    pub guarantee_indicator: Option<String>,
}

impl TransactionData {
    /// The 3-D Secure result the diagnostic reports.
    fn authentication(&self) -> Authentication<'_> {
        Authentication {
            status: self.holder_authent_status.as_deref(),
            relegation: self.holder_authent_relegation.as_deref(),
            guarantee: self.guarantee_indicator.as_deref(),
            program: self.holder_authent_program.as_deref(),
        }
    }

    /// The capture window the diagnostic reports.
    fn window(&self) -> CaptureWindow<'_> {
        CaptureWindow {
            limit_date: self.capture_limit_date.as_deref(),
            transaction_date_time: self.transaction_date_time.as_deref(),
            capture_day: self.capture_day,
        }
    }
}

/// Sips spells numbers (`captureDay`) as JSON numbers or digit strings.
fn number_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    amount_opt(d)
}

/// Sips spells amounts as JSON numbers or digit strings.
fn amount_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("amount is not a whole number")),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom("amount is not digits")),
        Some(_) => Err(serde::de::Error::custom("amount of the wrong type")),
    }
}

impl TransactionData {
    /// Where the payment stands. `25` (unknown transaction) is what Sips
    /// says before the shopper paid: the payment still awaits the shopper
    /// when we issued a redirect, else it is pending.
    pub fn into_outcome(self, reference: &str, stored: &ConnectorData) -> Result<PaymentOutcome> {
        match self.response_code.as_str() {
            "00" => {}
            "25" => {
                let status = match stored.redirect() {
                    Some(redirect) => PaymentStatus::RequiresAction(redirect),
                    None => PaymentStatus::Pending,
                };
                return Ok(PaymentOutcome {
                    status,
                    connector_reference: Some(reference.into()),
                    provider_status: Some("25".into()),
                    amount_authorized: None,
                    amount_captured: None,
                    connector_data: None,
                    three_ds: None,
                    capture_before_ms: None,
                });
            }
            code => return Err(office_error(code, self.error_field_name.as_deref())),
        }
        let raw = self.transaction_status.clone().ok_or_else(|| {
            ConnectorError::retryable(
                "invalid_response",
                "getTransactionData answered without transactionStatus",
            )
        })?;
        let amount = self.amount;
        // A deferred automatic capture (`AUTHOR_CAPTURE` with a capture
        // day) waits in TO_CAPTURE for Sips to capture it on its day: still
        // an authorization. A validated transaction (or a day-0 automatic
        // one) also waits in TO_CAPTURE, for that night's remittance: the
        // merchant has nothing more to do, it is captured.
        let deferred = self.capture_mode.as_deref() == Some("AUTHOR_CAPTURE")
            && self.capture_day.is_some_and(|day| day > 0);
        let mut capture_before_ms = None;
        let (status, authorized, captured) = match raw.as_str() {
            "TO_VALIDATE" => {
                capture_before_ms = self.window().deadline_ms();
                (PaymentStatus::Authorized, amount, Some(0))
            }
            "TO_CAPTURE" if deferred => (PaymentStatus::Authorized, amount, Some(0)),
            "TO_CAPTURE" => (PaymentStatus::Captured, amount, amount),
            // After refunds the payment itself stays captured; credits are
            // counted by the host.
            "CAPTURED" | "TO_CREDIT" | "CREDITED" => {
                let captured = self.captured_amount.or(amount);
                (PaymentStatus::Captured, captured, captured)
            }
            "AUTHORISATION_REQUESTED"
            | "TO_AUTHORIZE"
            | "TO_CHALLENGE"
            | "PENDING"
            | "WAITING_AUTHOR" => (PaymentStatus::Pending, None, None),
            "REFUSED" | "CAPTURE_REFUSED" | "REFUSED_RISK" => {
                let code = self
                    .transaction_response_code
                    .clone()
                    .unwrap_or_else(|| raw.clone());
                let reason = refusal_reason(&code, self.acquirer_response_code.as_deref());
                (PaymentStatus::Refused(Refusal { code, reason }), None, None)
            }
            // EXPIRED: not validated within its capture day; the
            // authorization is gone and nothing can be captured any more.
            "CANCELLED" | "ABORTED" | "EXPIRED" => (PaymentStatus::Canceled, None, None),
            other => {
                return Err(ConnectorError::retryable(
                    "unexpected_status",
                    format!("Sips reported an unknown transactionStatus {other:?}"),
                ))
            }
        };
        let three_ds = self.authentication().result();
        Ok(PaymentOutcome {
            status,
            connector_reference: Some(
                self.transaction_reference
                    .unwrap_or_else(|| reference.into()),
            ),
            provider_status: Some(raw),
            amount_authorized: authorized,
            amount_captured: captured,
            connector_data: None,
            three_ds,
            capture_before_ms,
        })
    }
}

// ------------------------------------------------------ payment response

/// The payment response Sips posts (browser return and automatic
/// response): `Data`, `Seal`, `InterfaceVersion`, `Encode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentResponse {
    /// `Data` decoded (`key=value|...`), in order.
    pub fields: Vec<(String, String)>,
}

/// Verifies and parses the payment response form. The seal is computed
/// over `Data` exactly as received (before any Base64 decoding).
///
/// `preferred` is the algorithm the payment was initialised with; the other
/// one is tried too, since both need the secret key (an account may switch
/// algorithms while payments are under way).
pub fn verify_payment_response(
    params: &[(String, String)],
    secret: &str,
    preferred: Algorithm,
) -> Result<PaymentResponse> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let data = get("Data")
        .filter(|d| !d.is_empty())
        .ok_or_else(|| ConnectorError::invalid_request("Data", "no Data in the Sips response"))?;
    let given = get("Seal")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConnectorError::invalid_signature("no Seal in the Sips response"))?;
    let ok = seal::verify(preferred, secret, data, given)
        | seal::verify(preferred.other(), secret, data, given);
    if !ok {
        return Err(ConnectorError::invalid_signature(
            "the Sips response's Seal does not match its Data",
        ));
    }
    // `Encode` names the encoding of `Data`; the seal above covers the
    // encoded text, as posted.
    let decoded;
    let text = match get("Encode").filter(|e| !e.is_empty()) {
        None => data,
        Some(name) => {
            let encoding = ResponseEncoding::parse(name).ok_or_else(|| {
                ConnectorError::invalid_request(
                    "Encode",
                    format!("unknown Sips response encoding {name:?}"),
                )
            })?;
            let bytes = encoding.decode(data).ok_or_else(|| {
                ConnectorError::invalid_request("Data", format!("Data is not {}", encoding.name()))
            })?;
            decoded = String::from_utf8(bytes)
                .map_err(|_| ConnectorError::invalid_request("Data", "Data is not UTF-8"))?;
            decoded.as_str()
        }
    };
    Ok(PaymentResponse {
        fields: parse_data(text),
    })
}

/// `key=value|key=value|...` (a value may itself contain `=`).
pub fn parse_data(data: &str) -> Vec<(String, String)> {
    data.split('|')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

impl PaymentResponse {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| {
            ConnectorError::invalid_request("Data", format!("the Sips response has no {name}"))
        })
    }

    pub fn transaction_reference(&self) -> Result<&str> {
        self.require("transactionReference")
    }

    pub fn response_code(&self) -> Result<&str> {
        self.require("responseCode")
    }

    pub fn amount(&self) -> Option<u64> {
        self.get("amount").and_then(|a| a.parse().ok())
    }

    /// The payment's status. `00` is an authorization, captured at once
    /// when the capture mode is `AUTHOR_CAPTURE` day 0 or `IMMEDIATE`.
    pub fn payment_status(&self) -> Result<PaymentStatus> {
        let code = self.response_code()?;
        Ok(match code {
            "00" => {
                let mode = self.get("captureMode").unwrap_or("AUTHOR_CAPTURE");
                let day: u32 = self
                    .get("captureDay")
                    .and_then(|d| d.parse().ok())
                    .unwrap_or(0);
                match mode {
                    "IMMEDIATE" => PaymentStatus::Captured,
                    "AUTHOR_CAPTURE" if day == 0 => PaymentStatus::Captured,
                    _ => PaymentStatus::Authorized,
                }
            }
            "60" => PaymentStatus::Pending,
            "17" => PaymentStatus::Canceled,
            c if describe_known(c).is_some() => PaymentStatus::Refused(Refusal {
                code: c.into(),
                reason: refusal_reason(c, self.get("acquirerResponseCode")),
            }),
            other => {
                return Err(ConnectorError::retryable(
                    "unexpected_status",
                    format!("Sips answered an unknown responseCode {other:?}"),
                ))
            }
        })
    }

    /// The 3-D Secure result the payment response reports.
    fn authentication(&self) -> Authentication<'_> {
        Authentication {
            status: self.get("holderAuthentStatus"),
            relegation: self.get("holderAuthentRelegation"),
            guarantee: self.get("guaranteeIndicator"),
            program: self.get("holderAuthentProgram"),
        }
    }

    /// When an authorization awaiting validation expires.
    fn capture_before_ms(&self, status: &PaymentStatus) -> Option<u64> {
        if *status != PaymentStatus::Authorized || self.get("captureMode") != Some("VALIDATION") {
            return None;
        }
        CaptureWindow {
            limit_date: self.get("captureLimitDate"),
            transaction_date_time: self.get("transactionDateTime"),
            capture_day: self.get("captureDay").and_then(|d| d.parse().ok()),
        }
        .deadline_ms()
    }

    /// The outcome of `complete`.
    pub fn into_outcome(self) -> Result<PaymentOutcome> {
        let status = self.payment_status()?;
        let amount = self.amount();
        let (authorized, captured) = match status {
            PaymentStatus::Authorized => (amount, Some(0)),
            PaymentStatus::Captured => (amount, amount),
            _ => (None, None),
        };
        let three_ds = self.authentication().result();
        let capture_before_ms = self.capture_before_ms(&status);
        Ok(PaymentOutcome {
            status,
            connector_reference: Some(self.transaction_reference()?.to_string()),
            provider_status: Some(self.response_code()?.to_string()),
            amount_authorized: authorized,
            amount_captured: captured,
            connector_data: None,
            three_ds,
            capture_before_ms,
        })
    }

    /// The event of an automatic response. Its id is stable for the same
    /// outcome of the same transaction, so a repeated or replayed automatic
    /// response is dropped by the host's deduplication.
    pub fn into_event(self) -> Result<NotificationEvent> {
        let status = self.payment_status()?;
        let reference = self.transaction_reference()?.to_string();
        let code = self.response_code()?.to_string();
        let date_time = self.get("transactionDateTime").map(str::to_string);
        let amount = match (
            self.amount(),
            self.get("currencyCode").and_then(currency_alpha),
        ) {
            (Some(minor), Some(currency)) => Some(Money::new(minor, currency)),
            _ => None,
        };
        Ok(NotificationEvent {
            event_id: format!(
                "{reference}:{code}:{}",
                date_time.as_deref().unwrap_or_default()
            ),
            connector_reference: reference,
            merchant_reference: self.get("orderId").map(str::to_string),
            kind: NotificationEventKind::Payment(status),
            amount,
            provider_status: Some(code),
            occurred_at_ms: date_time.as_deref().and_then(parse_iso8601_ms),
        })
    }
}

// ------------------------------------------------ 3-D Secure and capture window

/// The 3-D Secure fields of a payment response or diagnostic, as sent.
struct Authentication<'a> {
    /// `holderAuthentStatus`.
    status: Option<&'a str>,
    /// `holderAuthentRelegation`: `Y` when Sips went on without 3-D Secure.
    relegation: Option<&'a str>,
    /// `guaranteeIndicator`: `Y` the payment is guaranteed (liability
    /// shifted to the issuer), `N` not, `U` unknown.
    guarantee: Option<&'a str>,
    /// `holderAuthentProgram`: `3DS`, `3DS_V2`, `NO_AUTHENT`, ...
    program: Option<&'a str>,
}

impl Authentication<'_> {
    /// The contract's 3-D Secure result, when Sips reports a status.
    ///
    /// `holderAuthentStatus` comes with or without a `3D_` prefix
    /// (`3D_SUCCESS` in Sips' simulation answers, `SUCCESS` in newer
    /// programs): both spellings are in Worldline's SDKs' `HolderAuthentStatus`
    /// enums (worldline/sips-sdk-java, worldline/sips-sdk-nodejs).
    fn result(&self) -> Option<ThreeDsResult> {
        let raw = self.status?;
        let status = match raw.strip_prefix("3D_").unwrap_or(raw) {
            "SUCCESS" => ThreeDsStatus::Authenticated,
            "ATTEMPT" => ThreeDsStatus::Attempted,
            "NOTENROLLED" | "NOT_ENROLLED" => ThreeDsStatus::NotEnrolled,
            // Failed, or abandoned by the shopper on the challenge page.
            "FAILURE" | "ABORT" | "CANCEL" => ThreeDsStatus::Failed,
            // Sips could not reach the directory or the issuer.
            "ERROR" => ThreeDsStatus::Unavailable,
            // Skipped on purpose, or outside 3-D Secure altogether.
            "BYPASS" | "NOT_PARTICIPATING" | "NO_AUTHENT" | "SSL" => ThreeDsStatus::NotPerformed,
            // NOT_SPECIFIED and anything new: Sips says nothing usable.
            _ => return None,
        };
        let relegated = self.relegation == Some("Y");
        let liability_shift = match self.guarantee {
            Some("Y") => Some(true),
            Some("N") => Some(false),
            // Relegated to a payment without 3-D Secure: no shift.
            _ if relegated => Some(false),
            _ => None,
        };
        let version = match self.program {
            Some("3DS_V2") => Some("2".to_string()),
            Some("3DS") => Some("1".to_string()),
            _ => None,
        };
        Some(ThreeDsResult {
            status,
            version,
            liability_shift,
            eci: None,
        })
    }
}

/// What a payment response or diagnostic says of the capture window.
struct CaptureWindow<'a> {
    /// `captureLimitDate`, `YYYYMMDD`: the last day of the window.
    limit_date: Option<&'a str>,
    /// `transactionDateTime`: the payment's date and Sips' UTC offset.
    transaction_date_time: Option<&'a str>,
    /// `captureDay`: the window's length in days after the payment day.
    capture_day: Option<u64>,
}

/// Sips' offset from UTC when nothing tells it: Paris summer time, the
/// earlier of its two midnights.
const PARIS_SUMMER_OFFSET_SECS: i64 = 2 * 3600;

impl CaptureWindow<'_> {
    /// When an authorization awaiting validation expires (Unix ms): the
    /// end of its capture limit day, at Sips' own offset. A transaction
    /// not validated by that day's remittance expires ("If you do not
    /// validate a given transaction before its capture time expires, this
    /// transaction expires", docs.sips.worldline-solutions.com/en/validation.html).
    /// The limit day is `captureLimitDate` when Sips sends it, else the
    /// payment day plus `captureDay`.
    fn deadline_ms(&self) -> Option<u64> {
        let paid = self.transaction_date_time.and_then(local_date_and_offset);
        let offset = paid.map_or(PARIS_SUMMER_OFFSET_SECS, |(_, offset)| offset);
        let limit_day = match self.limit_date.and_then(parse_basic_date) {
            Some((y, m, d)) => days_from_civil(y, m, d),
            None => {
                let ((y, m, d), _) = paid?;
                days_from_civil(y, m, d) + i64::try_from(self.capture_day?).ok()?
            }
        };
        let secs = (limit_day + 1) * 86_400 - offset;
        u64::try_from(secs).ok().map(|s| s * 1000)
    }
}

/// `YYYYMMDD` (Sips' `captureLimitDate`).
fn parse_basic_date(text: &str) -> Option<(i64, u32, u32)> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year = text[..4].parse().ok()?;
    let month = text[4..6].parse().ok()?;
    let day = text[6..].parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some((year, month, day))
}

// ----------------------------------------------------------------- codes

/// What each Sips `responseCode` means (psp-notes and the Sips data dictionary).
fn describe_known(code: &str) -> Option<&'static str> {
    Some(match code {
        "00" => "accepted",
        "02" => "authorization ceiling exceeded: contact the card issuer",
        "03" => "invalid merchant contract",
        "05" => "authorization refused",
        "11" => "card number blocked",
        "12" => "invalid transaction",
        "14" => "invalid card data",
        "17" => "cancelled by the shopper",
        "24" => "operation not allowed in the transaction's state",
        "25" => "unknown transaction",
        "30" => "format error",
        "34" => "fraud suspected",
        "40" => "function not supported",
        "51" => "amount too high",
        "54" => "card expired",
        "60" => "pending",
        "63" => "security rules not observed",
        "75" => "too many attempts",
        "90" => "service temporarily unavailable",
        "94" => "duplicate transaction",
        "97" => "timeout: transaction refused",
        "99" => "Sips internal error",
        _ => return None,
    })
}

pub fn describe_code(code: &str) -> &'static str {
    describe_known(code).unwrap_or("unknown response code")
}

/// The refusal reason kept on the payment: the code's meaning and, when
/// Sips tells it, the acquirer's (bank's) own code.
pub fn refusal_reason(code: &str, acquirer_code: Option<&str>) -> String {
    let mut reason = describe_code(code).to_string();
    if let Some(acquirer) = acquirer_code.filter(|a| !a.is_empty()) {
        reason.push_str(&format!(" (acquirer code {acquirer})"));
    }
    reason
}

// ------------------------------------------------------------------ dates

/// An ISO 8601 date-time as Sips writes it (`2026-11-27T15:05:25+01:00`,
/// also `Z` and fractional seconds), in its parts.
struct DateTime {
    date: (i64, u32, u32),
    /// Seconds into the local day, and milliseconds.
    seconds: i64,
    millis: i64,
    /// The UTC offset, in seconds east.
    offset: i64,
}

fn parse_date_time(text: &str) -> Option<DateTime> {
    let (date, rest) = text.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    // The offset starts at the first `Z`, `+` or `-` after the time.
    let split = rest.find(['Z', '+', '-']).unwrap_or(rest.len());
    let (time, offset) = rest.split_at(split);
    let mut t = time.splitn(3, ':');
    let hour: i64 = t.next()?.parse().ok()?;
    let minute: i64 = t.next()?.parse().ok()?;
    let seconds = t.next().unwrap_or("0");
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let second: i64 = whole.parse().ok()?;
    let millis: i64 = format!("{:0<3}", fraction)
        .get(..3)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let offset: i64 = match offset {
        "" | "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (h, m) = o[1..].split_once(':').unwrap_or((&o[1..], "0"));
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60)
        }
    };
    Some(DateTime {
        date: (year, month, day),
        seconds: hour * 3600 + minute * 60 + second,
        millis,
        offset,
    })
}

/// Unix milliseconds of an ISO 8601 date-time as Sips writes it.
pub fn parse_iso8601_ms(text: &str) -> Option<u64> {
    let t = parse_date_time(text)?;
    let (year, month, day) = t.date;
    let secs = days_from_civil(year, month, day) * 86_400 + t.seconds - t.offset;
    u64::try_from(secs * 1000 + t.millis).ok()
}

/// The local date of an ISO 8601 date-time and its UTC offset (seconds).
fn local_date_and_offset(text: &str) -> Option<((i64, u32, u32), i64)> {
    parse_date_time(text).map(|t| (t.date, t.offset))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
