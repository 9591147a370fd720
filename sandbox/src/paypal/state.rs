//! In-memory state of the PayPal simulator: access tokens, orders,
//! authorizations, captures, refunds, registered webhooks, remembered
//! idempotent answers, pending faults and the events sent.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
    time::Instant,
};

use ring::{rand::SystemRandom, signature::RsaKeyPair};
use serde_json::Value;

use super::{webhooks::Outbox, PaypalConfig, SIGNING_KEY_PEM};

/// An amount in minor units of `currency`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Money {
    pub minor: u64,
    pub currency: String,
}

/// Digits after the decimal point PayPal uses for `currency`.
pub(crate) fn exponent(currency: &str) -> u32 {
    match currency {
        "JPY" | "HUF" | "TWD" => 0,
        _ => 2,
    }
}

/// The currencies PayPal accepts for payments.
pub(crate) const CURRENCIES: &[&str] = &[
    "AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN",
    "TWD", "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD",
];

impl Money {
    /// `{"currency_code": "EUR", "value": "10.00"}`.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({"currency_code": self.currency, "value": self.value()})
    }

    /// The decimal string (`"10.00"`, `"1000"` for JPY).
    pub(crate) fn value(&self) -> String {
        let exp = exponent(&self.currency);
        if exp == 0 {
            return self.minor.to_string();
        }
        let factor = 10u64.pow(exp);
        format!(
            "{}.{:0width$}",
            self.minor / factor,
            self.minor % factor,
            width = exp as usize
        )
    }

    pub(crate) fn with(&self, minor: u64) -> Money {
        Money {
            minor,
            currency: self.currency.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Intent {
    Capture,
    Authorize,
}

impl Intent {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Intent::Capture => "CAPTURE",
            Intent::Authorize => "AUTHORIZE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrderStatus {
    Created,
    PayerActionRequired,
    Approved,
    Completed,
}

impl OrderStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Created => "CREATED",
            OrderStatus::PayerActionRequired => "PAYER_ACTION_REQUIRED",
            OrderStatus::Approved => "APPROVED",
            OrderStatus::Completed => "COMPLETED",
        }
    }
}

/// How the buyer funds the payment, chosen on the approval page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Funding {
    /// PayPal balance or card: captures complete at once.
    Instant,
    /// eCheck: captures stay `PENDING` (reason `ECHECK`) until cleared.
    Echeck,
    /// A card its issuer declines: the order's capture or authorization
    /// answers 422 `INSTRUMENT_DECLINED` and the order waits for the buyer
    /// again, who may pick another funding source on the approval page.
    Declined,
}

#[derive(Clone, Debug)]
pub(crate) struct PurchaseUnit {
    pub reference_id: String,
    pub amount: Money,
    pub invoice_id: Option<String>,
    pub custom_id: Option<String>,
    pub description: Option<String>,
    pub soft_descriptor: Option<String>,
    pub authorization_ids: Vec<String>,
    pub capture_ids: Vec<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Order {
    pub id: String,
    pub account: String,
    pub intent: Intent,
    pub status: OrderStatus,
    pub units: Vec<PurchaseUnit>,
    /// The request carried `payment_source.paypal` (answers use the
    /// `payer-action` link then).
    pub with_payment_source: bool,
    pub return_url: Option<String>,
    pub cancel_url: Option<String>,
    pub brand_name: Option<String>,
    pub payer_id: Option<String>,
    pub funding: Funding,
    pub create_time: String,
    pub update_time: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthorizationStatus {
    Created,
    PartiallyCaptured,
    Captured,
    Voided,
}

impl AuthorizationStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            AuthorizationStatus::Created => "CREATED",
            AuthorizationStatus::PartiallyCaptured => "PARTIALLY_CAPTURED",
            AuthorizationStatus::Captured => "CAPTURED",
            AuthorizationStatus::Voided => "VOIDED",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Authorization {
    pub id: String,
    pub order_id: String,
    pub amount: Money,
    pub status: AuthorizationStatus,
    /// Sum of the captures taken from it (minor units).
    pub captured: u64,
    pub invoice_id: Option<String>,
    pub custom_id: Option<String>,
    pub create_time: String,
    pub update_time: String,
    pub expiration_time: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CaptureStatus {
    Completed,
    Pending,
    Declined,
    PartiallyRefunded,
    Refunded,
}

impl CaptureStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CaptureStatus::Completed => "COMPLETED",
            CaptureStatus::Pending => "PENDING",
            CaptureStatus::Declined => "DECLINED",
            CaptureStatus::PartiallyRefunded => "PARTIALLY_REFUNDED",
            CaptureStatus::Refunded => "REFUNDED",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Capture {
    pub id: String,
    pub order_id: String,
    pub authorization_id: Option<String>,
    pub amount: Money,
    pub status: CaptureStatus,
    /// `status_details.reason` (e.g. `ECHECK` while pending).
    pub status_reason: Option<&'static str>,
    pub final_capture: bool,
    /// Sum of the refunds (minor units).
    pub refunded: u64,
    pub invoice_id: Option<String>,
    pub custom_id: Option<String>,
    pub note_to_payer: Option<String>,
    pub create_time: String,
    pub update_time: String,
}

#[derive(Clone, Debug)]
pub(crate) struct Refund {
    pub id: String,
    pub capture_id: String,
    pub amount: Money,
    pub invoice_id: Option<String>,
    pub note_to_payer: Option<String>,
    pub create_time: String,
}

/// A webhook registered through `POST /v1/notifications/webhooks`.
#[derive(Clone, Debug)]
pub(crate) struct Webhook {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
}

impl Webhook {
    pub(crate) fn wants(&self, event_type: &str) -> bool {
        self.event_types.iter().any(|t| t == "*" || t == event_type)
    }
}

/// A remembered answer to a request carrying `PayPal-Request-Id`.
#[derive(Clone, Debug)]
pub(crate) struct StoredAnswer {
    pub status: u16,
    pub body: Vec<u8>,
}

pub(crate) use crate::faults::FaultMode;

#[derive(Debug, Default)]
pub(crate) struct Inner {
    /// Access token → (client id, expiry).
    pub tokens: HashMap<String, (String, Instant)>,
    pub orders: HashMap<String, Order>,
    pub authorizations: HashMap<String, Authorization>,
    pub captures: HashMap<String, Capture>,
    pub refunds: HashMap<String, Refund>,
    pub webhooks: Vec<Webhook>,
    /// (account, method and path, PayPal-Request-Id) → answer.
    pub idempotency: HashMap<(String, String, String), StoredAnswer>,
    /// Pending fault per account, and how many more times it applies (> 0).
    pub faults: HashMap<String, (FaultMode, u32)>,
    /// Events created, in order: (event id, event type, resource id, body).
    pub events: Vec<(String, String, String, Vec<u8>)>,
    /// The API requests received, oldest first (at most
    /// [`MAX_RECORDED_REQUESTS`]), and how they were checked.
    pub requests: Vec<RequestRecord>,
    /// Requests checked against the documents, by documented operation
    /// (`"POST /v2/checkout/orders"`).
    pub checked: BTreeMap<String, u64>,
    /// The latest refusals of the checks (at most [`KEPT_REFUSALS`]):
    /// PayPal's error body plus its `operation`.
    pub refusals: VecDeque<Value>,
}

/// How many refusals [`Inner::refusals`] keeps.
pub(crate) const KEPT_REFUSALS: usize = 50;

/// How many API requests [`Inner::requests`] keeps (the oldest go first).
pub(crate) const MAX_RECORDED_REQUESTS: usize = 10_000;

/// One API request, as `GET {base}/_sandbox/validation` lists it.
#[derive(Clone, Debug)]
pub(crate) struct RequestRecord {
    pub method: String,
    pub path: String,
    /// The `operationId` of the official document describing it (none: the
    /// OAuth token endpoint, the simulator's own routes, unknown paths).
    pub operation: Option<String>,
    /// Whether the official documents were loaded, so that the request was
    /// checked against them (headers here, the body in its handler).
    pub checked: bool,
}

impl Inner {
    pub(crate) fn record(&mut self, record: RequestRecord) {
        if self.requests.len() >= MAX_RECORDED_REQUESTS {
            self.requests.remove(0);
        }
        self.requests.push(record);
    }

    /// One request of `operation` (`"POST /v2/checkout/orders"`) checked.
    pub(crate) fn checked(&mut self, operation: String) {
        *self.checked.entry(operation).or_default() += 1;
    }

    /// A request of `operation` refused by the checks, with `answer`.
    pub(crate) fn refused(&mut self, operation: String, mut answer: Value) {
        if self.refusals.len() >= KEPT_REFUSALS {
            self.refusals.pop_front();
        }
        answer["operation"] = Value::String(operation);
        self.refusals.push_back(answer);
    }
}

impl Inner {
    fn take_if(&mut self, account: &str, notification: bool) -> Option<FaultMode> {
        let (mode, remaining) = *self.faults.get(account)?;
        if mode.is_notification() != notification {
            return None;
        }
        if remaining > 1 {
            self.faults
                .insert(account.to_owned(), (mode, remaining - 1));
        } else {
            self.faults.remove(account);
        }
        Some(mode)
    }

    /// Consumes one pending request fault of `account`.
    pub(crate) fn take_request_fault(&mut self, account: &str) -> Option<FaultMode> {
        self.take_if(account, false)
    }

    /// Consumes one pending notification fault of `account`.
    pub(crate) fn take_notification_fault(&mut self, account: &str) -> Option<FaultMode> {
        self.take_if(account, true)
    }
}

/// Everything the simulator's handlers share.
pub(crate) struct PaypalState {
    pub config: PaypalConfig,
    /// Absolute base URL, e.g. `http://127.0.0.1:4000/paypal`.
    pub base_url: String,
    /// Path of the base URL, e.g. `/paypal`.
    pub base_path: String,
    /// Client delivering webhooks (5 s timeout, no redirects).
    pub http: reqwest::Client,
    /// The webhook signing key.
    pub key: std::sync::Arc<RsaKeyPair>,
    pub rng: SystemRandom,
    /// Issue name → description, from the official documents, to describe
    /// the issues the way PayPal does.
    pub issues: HashMap<String, String>,
    /// The documents, for [`crate::openapi`] validation (none: off).
    pub spec: Option<crate::openapi::ApiSpec>,
    /// The documented operations and their header parameters (empty when
    /// the documents are not found).
    pub operations: Vec<super::validate::DocumentedOperation>,
    pub outbox: Outbox,
    inner: Mutex<Inner>,
}

impl PaypalState {
    pub(crate) fn new(
        config: PaypalConfig,
        base_url: String,
        base_path: String,
        specs: &crate::SpecSource,
    ) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent("PayPal/AUHD-214.0-58337208")
            .build()
            .map_err(std::io::Error::other)?;
        let der = pem_body(SIGNING_KEY_PEM)
            .ok_or_else(|| std::io::Error::other("paypal: the signing key is not PEM"))?;
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|err| std::io::Error::other(format!("paypal: signing key: {err}")))?;
        let documents = load_specs(specs);
        Ok(PaypalState {
            config,
            base_url,
            base_path,
            http,
            key: std::sync::Arc::new(key),
            rng: SystemRandom::new(),
            issues: issue_descriptions(&documents),
            operations: super::validate::documented_operations(&documents),
            spec: crate::openapi::ApiSpec::load(
                specs,
                &[
                    "paypal/checkout_orders_v2.json",
                    "paypal/payments_payment_v2.json",
                ],
            )?,
            outbox: Outbox::default(),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Locks the state (a panic while it was held does not make it unusable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The DER bytes of the first PEM block of `pem`.
pub(crate) fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The PayPal OpenAPI documents (`paypal/checkout_orders_v2.json`,
/// `paypal/payments_payment_v2.json`) found through `source`; empty when
/// there are none.
fn load_specs(source: &crate::SpecSource) -> Vec<Value> {
    let Some(dir) = source.resolve_dir() else {
        return Vec::new();
    };
    ["checkout_orders_v2.json", "payments_payment_v2.json"]
        .iter()
        .filter_map(|name| {
            let bytes = std::fs::read(dir.join("paypal").join(name)).ok()?;
            serde_json::from_slice(&bytes).ok()
        })
        .collect()
}

/// Issue name → description, from the `{"title": ISSUE, "properties":
/// {"issue": {"enum": [ISSUE]}, "description": {"enum": [TEXT]}}}` entries.
fn issue_descriptions(specs: &[Value]) -> HashMap<String, String> {
    fn walk(value: &Value, out: &mut HashMap<String, String>) {
        match value {
            Value::Object(map) => {
                let issue = map
                    .get("properties")
                    .and_then(|p| p.pointer("/issue/enum/0"))
                    .and_then(Value::as_str);
                let description = map
                    .get("properties")
                    .and_then(|p| p.pointer("/description/enum/0"))
                    .and_then(Value::as_str);
                if let (Some(issue), Some(description)) = (issue, description) {
                    out.entry(issue.to_owned())
                        .or_insert_with(|| description.trim().to_owned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = HashMap::new();
    specs.iter().for_each(|spec| walk(spec, &mut out));
    out
}

/// RFC 3339 UTC time of `secs` since the Unix epoch (`2026-01-01T00:00:00Z`).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // H. Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Now, as [`rfc3339`].
pub(crate) fn now_rfc3339() -> String {
    rfc3339(crate::util::now_secs())
}

/// `n` characters of PayPal's id alphabet (`[2-9A-HJ-NP-Z]`: no 0, 1, I, O).
pub(crate) fn paypal_chars(n: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_490_904_245), "2017-03-30T20:04:05Z");
        assert_eq!(rfc3339(1_709_164_800 + 3_661), "2024-02-29T01:01:01Z");
    }

    #[test]
    fn money_values() {
        let m = Money {
            minor: 1050,
            currency: "EUR".to_owned(),
        };
        assert_eq!(m.value(), "10.50");
        assert_eq!(m.with(5).value(), "0.05");
        let y = Money {
            minor: 1050,
            currency: "JPY".to_owned(),
        };
        assert_eq!(y.value(), "1050");
    }
}
