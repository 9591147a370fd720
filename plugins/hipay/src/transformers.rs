//! HiPay Enterprise's wire format (psp-notes, HiPay's gateway.yaml) and its
//! mapping to the contract's types.
//!
//! Everything provider-specific about *data* lives here; `lib.rs` only
//! sequences calls.

use passerelle_connector_sdk::http::form_decode;
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{crypto, money};
use serde::Deserialize;
use serde_json::Value;

/// Currencies of HiPay's gateway.yaml (`Common.currency`). Codes the SDK
/// does not know (withdrawn ones such as FRF) are dropped by
/// [`supported_currencies`].
const HIPAY_CURRENCIES: &[&str] = &[
    "FRF", "SKK", "EEK", "TMT", "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG",
    "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN",
    "BWP", "BYR", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LTL", "LVL", "LYD", "MAD", "MDL",
    "MGA", "MKD", "MMK", "MNT", "MOP", "MRO", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLL",
    "SOS", "SRD", "STD", "SVC", "SYP", "SZL", "THB", "TJS", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VEF", "VND", "VUV", "TMM", "WST", "XAF", "XCD",
    "XOF", "XPF", "YER", "ZAR", "ZMK", "ZWL",
];

/// HiPay's currencies that the SDK can convert exactly, sorted.
pub fn supported_currencies() -> Vec<String> {
    let mut out: Vec<String> = HIPAY_CURRENCIES
        .iter()
        .filter(|c| money::is_known(c))
        .map(|c| c.to_string())
        .collect();
    out.sort();
    out
}

/// True when HiPay takes `code` and the SDK knows its exponent.
pub fn is_supported_currency(code: &str) -> bool {
    money::is_known(code) && HIPAY_CURRENCIES.contains(&code)
}

// ---------------------------------------------------------------- signatures

/// The hash algorithm chosen in HiPay's back office (Integration > Security).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `sha1`, `sha256`, `sha512` (case-insensitive, `SHA-256` accepted).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// Lowercase hex digest of `data`.
    pub fn hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Sha1 => crypto::hex_encode(crypto::sha1(data)),
            Algorithm::Sha256 => crypto::hex_encode(crypto::sha256(data)),
            Algorithm::Sha512 => crypto::hex_encode(crypto::sha512(data)),
        }
    }
}

/// `X-Allopass-Signature`: hex SHA(raw body + passphrase), as HiPay's PHP
/// SDK computes it (`HiPay\Fullservice\Helper\Signature::getStringToCompute`).
pub fn notification_signature(algorithm: Algorithm, passphrase: &str, body: &[u8]) -> String {
    let mut data = Vec::with_capacity(body.len() + passphrase.len());
    data.extend_from_slice(body);
    data.extend_from_slice(passphrase.as_bytes());
    algorithm.hex(&data)
}

/// The `hash` of a redirect-back URL: for every parameter but `hash` with a
/// non-empty value, sorted by name, name + value + passphrase (the
/// passphrase after *each* parameter), then SHA in hex.
pub fn redirect_hash(
    algorithm: Algorithm,
    passphrase: &str,
    params: &[(String, String)],
) -> String {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| k != "hash" && !v.is_empty())
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    for (k, v) in sorted {
        text.push_str(k);
        text.push_str(v);
        text.push_str(passphrase);
    }
    algorithm.hex(text.as_bytes())
}

/// Constant-time check of a hex signature (either case) against the expected
/// lowercase one.
pub fn signature_matches(expected: &str, received: &str) -> bool {
    let received = received.trim().to_ascii_lowercase();
    crypto::constant_time_eq(expected.as_bytes(), received.as_bytes())
}

// ------------------------------------------------------------------ amounts

/// Minor units as HiPay's decimal string ("10.50", "1000", "1.005").
pub fn to_decimal(minor: u64, currency: &str) -> Result<String> {
    money::to_decimal_string(minor, currency).map_err(|_| {
        ConnectorError::invalid_request("currency", format!("unsupported currency {currency:?}"))
    })
}

/// A decimal amount from HiPay as minor units. Trailing zeros beyond the
/// currency's decimals ("1000.00" for JPY) are tolerated; anything else
/// that does not convert exactly is `None`.
pub fn parse_amount(text: &str, currency: &str) -> Option<u64> {
    let text = text.trim();
    if let Ok(v) = money::from_decimal_string(text, currency) {
        return Some(v);
    }
    let (int, frac) = text.split_once('.')?;
    let trimmed = frac.trim_end_matches('0');
    let candidate = if trimmed.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{trimmed}")
    };
    money::from_decimal_string(&candidate, currency).ok()
}

// ----------------------------------------------------------------- responses

/// A HiPay value that may be a JSON string or number ("116" or 116).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn field(value: &Value, name: &str) -> Option<String> {
    value.get(name).and_then(text_of).filter(|s| !s.is_empty())
}

/// `POST {vault}/v2/token/create` answer (the parts we use).
#[derive(Debug, Deserialize)]
pub struct Token {
    pub token: String,
    #[serde(default)]
    pub brand: String,
}

impl Token {
    /// HiPay's `payment_product` for the vault's brand name.
    pub fn payment_product(&self) -> &'static str {
        match self.brand.to_ascii_uppercase().as_str() {
            "VISA" => "visa",
            "MASTERCARD" => "mastercard",
            "AMERICAN EXPRESS" | "AMEX" => "american-express",
            "MAESTRO" => "maestro",
            "BCMC" | "BANCONTACT" => "bcmc",
            "DINERS" | "DINERS CLUB" => "diners",
            "JCB" => "jcb",
            "DISCOVER" => "discover",
            // Carte Bancaire and anything unbranded go through the CB network.
            _ => "cb",
        }
    }
}

/// A transaction (`POST /v1/order`, `GET /v1/transaction/...`) or a
/// maintenance `Operation` answer: the fields both share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub state: Option<String>,
    pub status: String,
    pub message: String,
    pub reference: String,
    pub forward_url: Option<String>,
    pub reason_code: Option<String>,
    pub reason_message: Option<String>,
    pub currency: Option<String>,
    pub authorized: Option<String>,
    pub captured: Option<String>,
    pub refunded: Option<String>,
    pub order_id: Option<String>,
    /// `threeDSecure`: the 3-D Secure ECI, enrollment status (`Y`, `N`,
    /// `U`, `E`) and authentication status (`Y`, `A`, `U`, `N`, `E`).
    pub three_ds_eci: Option<String>,
    pub three_ds_enrollment: Option<String>,
    pub three_ds_authentication: Option<String>,
}

impl Transaction {
    /// Reads a transaction object (camelCase, as the REST API answers).
    pub fn from_json(value: &Value) -> Result<Self> {
        let status = field(value, "status").ok_or_else(|| invalid_response("no status"))?;
        let reference = field(value, "transactionReference")
            .ok_or_else(|| invalid_response("no transactionReference"))?;
        let reason = value.get("reason");
        let three_ds = value.get("threeDSecure");
        let three_ds_field = |name: &str| {
            three_ds
                .and_then(|t| field(t, name))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        Ok(Transaction {
            state: field(value, "state"),
            status,
            message: field(value, "message").unwrap_or_default(),
            reference,
            forward_url: field(value, "forwardUrl"),
            reason_code: reason.and_then(|r| field(r, "code")),
            reason_message: reason.and_then(|r| field(r, "message")),
            currency: field(value, "currency"),
            authorized: field(value, "authorizedAmount"),
            captured: field(value, "capturedAmount"),
            refunded: field(value, "refundedAmount"),
            order_id: value.get("order").and_then(|o| field(o, "id")),
            three_ds_eci: three_ds_field("eci"),
            three_ds_enrollment: three_ds_field("enrollmentStatus"),
            three_ds_authentication: three_ds_field("authenticationStatus"),
        })
    }

    /// `GET /v1/transaction...` wraps the transaction (or, by order id, the
    /// list of attempts, oldest first) in `{"transaction": ...}`: the latest.
    pub fn from_lookup(value: &Value) -> Result<Self> {
        match value.get("transaction") {
            Some(Value::Array(items)) => items
                .last()
                .ok_or_else(|| invalid_response("empty transaction list"))
                .and_then(Self::from_json),
            Some(tx @ Value::Object(_)) => Self::from_json(tx),
            _ => Err(invalid_response("no transaction")),
        }
    }

    fn amount(&self, text: &Option<String>, currency: &str) -> Option<u64> {
        text.as_deref().and_then(|t| parse_amount(t, currency))
    }

    /// The refusal: HiPay's reason when it gives one, else its status.
    fn refusal(&self) -> Refusal {
        Refusal {
            code: self
                .reason_code
                .clone()
                .unwrap_or_else(|| self.status.clone()),
            reason: self
                .reason_message
                .clone()
                .unwrap_or_else(|| self.message.clone()),
        }
    }

    /// Where the shopper must go when HiPay asks for them: a `forwarding`
    /// transaction, or one whose authentication or challenge is requested
    /// (140, 177) or that was soft-declined (178) and comes with a
    /// `forwardUrl` to authenticate.
    fn redirect(&self) -> Result<Option<Redirect>> {
        let forwarding = self.state.as_deref() == Some("forwarding");
        let asks_shopper = matches!(self.status.as_str(), "140" | "177" | "178");
        match &self.forward_url {
            Some(url) if forwarding || asks_shopper => Ok(Some(Redirect {
                url: url.clone(),
                method: HttpMethod::Get,
                form: Vec::new(),
            })),
            None if forwarding => Err(invalid_response(
                "forwarding transaction without forwardUrl",
            )),
            _ => Ok(None),
        }
    }

    /// Where the payment stands, in the contract's terms.
    pub fn payment_status(&self) -> Result<PaymentStatus> {
        if let Some(redirect) = self.redirect()? {
            return Ok(PaymentStatus::RequiresAction(redirect));
        }
        let refused_by_state = matches!(self.state.as_deref(), Some("declined" | "error"));
        match status_class(&self.status) {
            Some(StatusClass::InProgress) if refused_by_state => {
                Ok(PaymentStatus::Refused(self.refusal()))
            }
            Some(StatusClass::InProgress) => Ok(PaymentStatus::Pending),
            Some(StatusClass::Authorized) => Ok(PaymentStatus::Authorized),
            Some(StatusClass::Captured) => Ok(PaymentStatus::Captured),
            Some(StatusClass::Refused) => Ok(PaymentStatus::Refused(self.refusal())),
            Some(StatusClass::SoftDeclined) => Ok(PaymentStatus::Refused(soft_decline_refusal(
                self.reason_code.as_deref(),
                self.reason_message.as_deref().unwrap_or(&self.message),
            ))),
            Some(StatusClass::Canceled) => Ok(PaymentStatus::Canceled),
            // A code HiPay's lists do not have: trust the state.
            None if refused_by_state => Ok(PaymentStatus::Refused(self.refusal())),
            None if self.state.as_deref() == Some("pending") => Ok(PaymentStatus::Pending),
            None => Err(ConnectorError::retryable(
                "unexpected_status",
                format!(
                    "HiPay reported an unknown transaction status {:?}",
                    self.status
                ),
            )),
        }
    }

    /// How 3-D Secure went, from the transaction's status (104-109) or
    /// its `threeDSecure` (HiPay's PHP SDK, `ThreeDSecureStatus`: the
    /// enrollment `Y`/`N`/`U`/`E`, the authentication `Y` successful, `A`
    /// attempted, `U` could not be performed, `N` failed, `E` error).
    /// `None` while it is under way or where HiPay says nothing usable.
    pub fn three_ds(&self, status: &PaymentStatus) -> Option<ThreeDsResult> {
        let by_status = match self.status.as_str() {
            "104" => Some(ThreeDsStatus::NotEnrolled),
            "105" | "108" => Some(ThreeDsStatus::Unavailable),
            "106" => Some(ThreeDsStatus::Authenticated),
            "107" => Some(ThreeDsStatus::Attempted),
            "109" => Some(ThreeDsStatus::Failed),
            _ => None,
        };
        let by_authentication = match self.three_ds_authentication.as_deref() {
            Some("Y") => Some(ThreeDsStatus::Authenticated),
            Some("A") => Some(ThreeDsStatus::Attempted),
            Some("U" | "E") => Some(ThreeDsStatus::Unavailable),
            Some("N") => Some(ThreeDsStatus::Failed),
            _ => None,
        };
        let by_enrollment = match self.three_ds_enrollment.as_deref() {
            Some("N") => Some(ThreeDsStatus::NotEnrolled),
            Some("U" | "E") => Some(ThreeDsStatus::Unavailable),
            _ => None,
        };
        // Nothing asked of the directory (`authentication_indicator` 0, an
        // exemption): not performed, once the payment is past that step.
        let settled = !matches!(
            status,
            PaymentStatus::Pending | PaymentStatus::RequiresAction(_)
        );
        let nothing_asked = self.three_ds_enrollment.is_none()
            && self.three_ds_authentication.is_none()
            && self.three_ds_eci.is_none();
        let three_ds_status = by_status
            .or(by_authentication)
            .or(by_enrollment)
            .or((settled && nothing_asked).then_some(ThreeDsStatus::NotPerformed))?;
        Some(ThreeDsResult {
            status: three_ds_status,
            // HiPay's v1 answers give neither the protocol version nor the
            // liability shift.
            version: None,
            liability_shift: None,
            eci: self.three_ds_eci.clone(),
        })
    }

    /// The outcome of an operation that answered this transaction.
    pub fn into_outcome(self, currency: &str) -> Result<PaymentOutcome> {
        let status = self.payment_status()?;
        let reserved = matches!(status, PaymentStatus::Authorized | PaymentStatus::Captured);
        let authorized = self.amount(&self.authorized, currency);
        let captured = self.amount(&self.captured, currency);
        let three_ds = self.three_ds(&status);
        Ok(PaymentOutcome {
            status,
            connector_reference: Some(self.reference),
            provider_status: Some(self.status),
            amount_authorized: if reserved { authorized } else { None },
            amount_captured: captured,
            // The order id is the host's payment id: nothing else to keep.
            connector_data: None,
            three_ds,
            // HiPay gives no per-transaction date: the validity declared
            // in `capabilities` applies.
            capture_before_ms: None,
        })
    }

    /// HiPay's authorized, captured and refunded totals in minor units (an
    /// absent one is 0).
    pub fn totals(&self, currency: &str) -> Result<Totals> {
        let read = |text: &Option<String>, what: &str| -> Result<u64> {
            match text.as_deref() {
                None => Ok(0),
                Some(t) => parse_amount(t, currency)
                    .ok_or_else(|| invalid_response(&format!("unreadable {what}"))),
            }
        };
        Ok(Totals {
            authorized: read(&self.authorized, "authorizedAmount")?,
            captured: read(&self.captured, "capturedAmount")?,
            refunded: read(&self.refunded, "refundedAmount")?,
        })
    }

    /// A maintenance answer's status.
    pub fn modification_status(&self) -> ModificationStatus {
        match self.status.as_str() {
            // Done: captured, refunded, cancelled.
            "118" | "119" | "125" | "126" | "115" | "143" => ModificationStatus::Succeeded,
            "173" | "165" => ModificationStatus::Refused(self.refusal()),
            // 117 / 124 / 175 "requested", or anything else HiPay accepted:
            // the notification or a sync settles it.
            _ => ModificationStatus::Pending,
        }
    }
}

/// HiPay's totals for one transaction, in minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub authorized: u64,
    pub captured: u64,
    pub refunded: u64,
}

/// What a HiPay transaction status says about the payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    /// Not settled yet: created, 3-D Secure steps, fraud review, waiting
    /// for the acquirer or the shopper. The `state` tells a refusal.
    InProgress,
    Authorized,
    /// Captured, and everything that can follow a capture (refunds,
    /// settlement, disputes).
    Captured,
    Refused,
    /// 178: the issuer wants strong customer authentication.
    SoftDeclined,
    Canceled,
}

/// The class of every status of HiPay's transaction status list
/// (developer.hipay.com "Transaction status", as transcribed in
/// hipay/hipay-docs `platform-hipay-enterprise/appendix/1-appendix.md`,
/// and the codes HiPay's own modules handle beyond it: 134, 144, 168, 169,
/// 172, 174, 177, 178, 180-183 in hipay/hipay-payments-sylius
/// `src/Payment/HiPayStatus.php`, hipay/hipay-fullservice-sdk-magento2
/// `Cron/ProcessNotifications.php`); `None` for any other code.
pub fn status_class(code: &str) -> Option<StatusClass> {
    use StatusClass::*;
    Some(match code {
        // 101 created; 103-108 3-D Secure enrollment and authentication
        // steps; 112 authorized and pending (fraud review); 140/141
        // authentication requested/done; 142 authorization requested; 144
        // reference rendered; 150/151 acquirer (not) found; 160 enrollment
        // unknown; 161 risk accepted; 172 in progress; 174 awaiting
        // terminal; 177 challenge requested; 200 pending payment.
        "101" | "103" | "104" | "105" | "106" | "107" | "108" | "112" | "140" | "141" | "142"
        | "144" | "150" | "151" | "160" | "161" | "172" | "174" | "177" | "200" => InProgress,
        // 116 authorized; 117 capture requested; 173 capture refused (the
        // authorization stands); 175 cancellation requested.
        "116" | "117" | "173" | "175" => Authorized,
        // 118/119 (partially) captured; 120-123 collected, settled; 124-126
        // refund requested, (partially) refunded; 129 charged back; 131/132
        // (partially) debited; 134 dispute lost; 165 refund refused; 166
        // issuer credited; 168 debited (cardholder credit); 169 credit
        // requested; 180/181 (partial) chargeback; 182/183 (partial) refund
        // by RDR.
        "118" | "119" | "120" | "121" | "122" | "123" | "124" | "125" | "126" | "129" | "131"
        | "132" | "134" | "165" | "166" | "168" | "169" | "180" | "181" | "182" | "183" => Captured,
        // 109 authentication failed; 110 blocked; 111 denied; 113 refused;
        // 163 authorization refused.
        "109" | "110" | "111" | "113" | "163" => Refused,
        "178" => SoftDeclined,
        // 114 expired; 115 cancelled; 143 authorization cancelled.
        "114" | "115" | "143" => Canceled,
        _ => return None,
    })
}

/// The refusal of a soft decline (178): HiPay's status as the code, so the
/// merchant can tell it from a plain refusal and pay again with 3-D Secure.
pub fn soft_decline_refusal(reason_code: Option<&str>, message: &str) -> Refusal {
    let mut reason = String::from(
        "soft declined: the issuer requires strong customer authentication; \
         pay again with 3-D Secure (authentication_indicator 1 or 2 and the shopper's browser data)",
    );
    if let Some(code) = reason_code {
        reason.push_str(&format!(" [HiPay reason {code}]"));
    }
    if !message.is_empty() {
        reason.push_str(&format!(" ({message})"));
    }
    Refusal {
        code: "178".into(),
        reason,
    }
}

fn invalid_response(what: &str) -> ConnectorError {
    ConnectorError::retryable(
        "invalid_response",
        format!("unexpected HiPay answer: {what}"),
    )
}

/// Parses a 2xx JSON body, garbage being `retryable`.
pub fn json_body(response: &Response) -> Result<Value> {
    response.json::<Value>()
}

/// Reads a non-2xx answer: `{"code": 3020110, "message": "...",
/// "description": "..."}`. 4xx business errors are `rejected` with HiPay's
/// code; 401/403 are the credentials; 5xx and the rest `retryable`.
pub fn error_from_response(response: &Response) -> ConnectorError {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let code = body.as_ref().and_then(|b| field(b, "code"));
    let message = body
        .as_ref()
        .map(|b| {
            let m = field(b, "message").unwrap_or_default();
            match field(b, "description") {
                Some(d) => format!("{m}: {d}"),
                None => m,
            }
        })
        .unwrap_or_default();
    match (response.status, code) {
        (401 | 403, _) => ConnectorError::invalid_config(
            "api_username",
            format!("HiPay refused the API credentials: {message}"),
        )
        .with_code(format!("http_{}", response.status)),
        (400..=499, Some(code)) => ConnectorError::rejected(code, message),
        (status, _) => classify_http_status(status, &response.body),
    }
}

// ------------------------------------------------------------- notifications

/// A server-to-server notification: form fields in snake_case.
#[derive(Debug)]
pub struct NotificationFields {
    fields: Vec<(String, String)>,
}

impl NotificationFields {
    pub fn parse(body: &[u8]) -> Result<Self> {
        let text = core::str::from_utf8(body)
            .map_err(|_| ConnectorError::invalid_request("body", "notification is not UTF-8"))?;
        Ok(NotificationFields {
            fields: form_decode(text),
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &str) -> Result<&str> {
        self.get(name).ok_or_else(|| {
            ConnectorError::invalid_request("body", format!("notification without {name}"))
        })
    }

    /// What the notification tells the host.
    pub fn into_event(self) -> Result<NotificationEvent> {
        let reference = self.require("transaction_reference")?.to_string();
        let status = self.require("status")?.to_string();
        if !status.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConnectorError::invalid_request(
                "body",
                "notification status is not a HiPay code",
            ));
        }
        let currency = self.get("currency").map(str::to_string);
        let amount_of = |name: &str| -> Option<Money> {
            let currency = currency.as_deref()?;
            let minor = parse_amount(self.get(name)?, currency)?;
            Some(Money::new(minor, currency))
        };
        let refusal = || Refusal {
            code: self
                .get("reason[code]")
                .unwrap_or(status.as_str())
                .to_string(),
            reason: self
                .get("reason[message]")
                .or(self.get("message"))
                .unwrap_or_default()
                .to_string(),
        };
        let other = |what: &str, amount: Option<Money>| {
            (NotificationEventKind::Other(what.to_string()), amount)
        };
        let refunded = amount_of("refunded_amount");
        let refund_reference =
            refund_reference(&reference, refunded.as_ref().map_or(0, |m| m.minor_units));
        let (kind, amount) = match status.as_str() {
            "116" => (
                NotificationEventKind::Payment(PaymentStatus::Authorized),
                amount_of("authorized_amount"),
            ),
            "118" | "119" => (
                NotificationEventKind::Payment(PaymentStatus::Captured),
                amount_of("captured_amount"),
            ),
            // Requested, not done: the host already holds the amount as
            // pending, and a `capture(pending)` event would release it (the
            // host reads its amount as the capture's own, while HiPay's
            // amounts are the transaction's totals). 118/119 settle it.
            "117" => (
                NotificationEventKind::Other("capture_requested".into()),
                amount_of("captured_amount"),
            ),
            // Which capture was refused HiPay does not say: no amount, so
            // the host releases what it holds as pending.
            "173" => (
                NotificationEventKind::Capture(ModificationStatus::Refused(refusal())),
                None,
            ),
            "124" => (
                NotificationEventKind::Refund((refund_reference, ModificationStatus::Pending)),
                refunded,
            ),
            "125" | "126" => (
                NotificationEventKind::Refund((refund_reference, ModificationStatus::Succeeded)),
                refunded,
            ),
            "165" => (
                NotificationEventKind::Refund((
                    refund_reference,
                    ModificationStatus::Refused(refusal()),
                )),
                refunded,
            ),
            "175" => (
                NotificationEventKind::Cancel(ModificationStatus::Pending),
                amount_of("authorized_amount"),
            ),
            "114" | "115" | "143" => (
                NotificationEventKind::Payment(PaymentStatus::Canceled),
                amount_of("authorized_amount"),
            ),
            "109" | "110" | "111" | "113" | "163" => (
                NotificationEventKind::Payment(PaymentStatus::Refused(refusal())),
                amount_of("authorized_amount"),
            ),
            "178" => (
                NotificationEventKind::Payment(PaymentStatus::Refused(soft_decline_refusal(
                    self.get("reason[code]"),
                    self.get("reason[message]")
                        .or(self.get("message"))
                        .unwrap_or_default(),
                ))),
                amount_of("authorized_amount"),
            ),
            "112" | "142" | "144" | "172" | "174" | "200" => (
                NotificationEventKind::Payment(PaymentStatus::Pending),
                amount_of("authorized_amount"),
            ),
            // Steps the host need not act on: created, 3-D Secure steps
            // (the shopper's return settles those), the acquirer's route,
            // the fraud rules' verdict.
            "101" => other("created", None),
            "103" => other("cardholder_enrolled", None),
            "104" => other("cardholder_not_enrolled", None),
            "105" | "108" | "160" => other("authentication_unavailable", None),
            "106" => other("cardholder_authenticated", None),
            "107" => other("authentication_attempted", None),
            "140" => other("authentication_requested", None),
            "141" => other("authenticated", None),
            "177" => other("challenge_requested", None),
            "150" => other("acquirer_found", None),
            "151" => other("acquirer_not_found", None),
            "161" => other("risk_accepted", None),
            // After the capture: money HiPay moves on its side and disputes,
            // recorded for the operator.
            "120" | "121" => other("collected", amount_of("captured_amount")),
            "122" | "123" => other("settled", amount_of("captured_amount")),
            "129" | "180" | "181" => other("chargeback", amount_of("captured_amount")),
            "134" => other("dispute_lost", amount_of("captured_amount")),
            "131" | "132" => other("debited", amount_of("captured_amount")),
            "166" | "168" | "169" => other("cardholder_credit", amount_of("refunded_amount")),
            "182" | "183" => other("refund_by_rdr", amount_of("refunded_amount")),
            unknown => (
                NotificationEventKind::Other(format!("status_{unknown}")),
                None,
            ),
        };
        // HiPay sends no event id: these fields change with every step of a
        // transaction and are identical in a repeated delivery.
        let event_id = format!(
            "{reference}:{status}:{}:{}:{}:{}",
            self.get("attempt_id").unwrap_or("1"),
            self.get("captured_amount").unwrap_or("0"),
            self.get("refunded_amount").unwrap_or("0"),
            self.get("date_updated").unwrap_or(""),
        );
        let occurred_at_ms = self.get("date_updated").and_then(parse_hipay_date_ms);
        Ok(NotificationEvent {
            event_id,
            connector_reference: reference,
            merchant_reference: self.get("order[id]").map(str::to_string),
            kind,
            amount,
            provider_status: Some(status),
            occurred_at_ms,
        })
    }
}

/// HiPay gives a refund no id of its own, and its notifications carry the
/// transaction's cumulative refunded amount: a refund is named by the
/// transaction and that total once it is done ("800000000001:refund:1500").
pub fn refund_reference(transaction: &str, refunded_total_minor: u64) -> String {
    format!("{transaction}:refund:{refunded_total_minor}")
}

/// HiPay's `2019-02-07T10:07:09+0000` (or `...Z`, `+01:00`) as Unix ms.
pub fn parse_hipay_date_ms(text: &str) -> Option<u64> {
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: core::ops::Range<usize>| -> Option<i64> {
        core::str::from_utf8(b.get(r)?).ok()?.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let rest = &text.trim()[19..];
    let offset_secs = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 {
                return None;
            }
            let oh: i64 = digits[..2].parse().ok()?;
            let om: i64 = digits[2..].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    u64::try_from(secs).ok().map(|s| s * 1000)
}
