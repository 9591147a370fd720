//! PayPal's wire format (Orders v2, Payments v2, webhooks) and its mapping
//! to the contract's types. `lib.rs` only sequences the calls.

use passerelle_connector_sdk::money;
use passerelle_connector_sdk::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

// ---------------------------------------------------------------- amounts

/// The currencies PayPal's REST API takes, with the number of decimals PayPal
/// wants in `value`. HUF and TWD have two decimals in ISO 4217 but none at
/// PayPal; no 3-decimal currency (KWD, BHD...) is supported at all.
pub const CURRENCIES: &[(&str, u8)] = &[
    ("AUD", 2),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 0),
    ("ILS", 2),
    ("JPY", 0),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("PHP", 2),
    ("PLN", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TWD", 0),
    ("USD", 2),
];

fn paypal_decimals(currency: &str) -> Option<u8> {
    CURRENCIES
        .iter()
        .find(|(c, _)| *c == currency)
        .map(|(_, d)| *d)
}

/// Refuses, before any call, a currency PayPal does not take.
pub fn check_currency(currency: &str) -> Result<()> {
    match (paypal_decimals(currency), money::exponent(currency)) {
        (Some(_), Some(_)) => Ok(()),
        _ => Err(ConnectorError::invalid_request(
            "currency",
            format!("PayPal does not support the currency {currency:?}"),
        )),
    }
}

/// PayPal's `{"currency_code", "value"}` for `amount` (ISO minor units).
pub fn to_paypal_amount(amount: &Money) -> Result<Amount> {
    check_currency(&amount.currency)?;
    let iso = money::exponent(&amount.currency).unwrap_or(0);
    let paypal = paypal_decimals(&amount.currency).unwrap_or(iso);
    // Drop the ISO decimals PayPal does not take (HUF, TWD): only whole units.
    let drop = u32::from(iso.saturating_sub(paypal));
    let factor = 10u64.pow(drop);
    if amount.minor_units % factor != 0 {
        return Err(ConnectorError::invalid_request(
            "amount",
            format!(
                "PayPal takes whole units of {} only (minor units must be a multiple of {factor})",
                amount.currency
            ),
        ));
    }
    let value = if paypal == 0 {
        (amount.minor_units / factor).to_string()
    } else {
        money::to_decimal_string(amount.minor_units, &amount.currency).map_err(|e| {
            ConnectorError::invalid_request("currency", format!("cannot convert the amount: {e}"))
        })?
    };
    Ok(Amount {
        currency_code: amount.currency.clone(),
        value,
    })
}

impl Amount {
    /// Back to ISO minor units ("10.50" EUR → 1050, "1000" HUF → 100000).
    pub fn minor_units(&self) -> Result<u64> {
        money::from_decimal_string(&self.value, &self.currency_code).map_err(|e| {
            ConnectorError::retryable(
                "invalid_response",
                format!("PayPal sent an amount we cannot read: {e}"),
            )
        })
    }

    pub fn to_money(&self) -> Result<Money> {
        Ok(Money::new(self.minor_units()?, self.currency_code.clone()))
    }
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub currency_code: String,
    pub value: String,
}

/// `POST /v2/checkout/orders`.
#[derive(Debug, Serialize)]
pub struct CreateOrder {
    pub intent: &'static str,
    pub purchase_units: Vec<PurchaseUnitRequest>,
    pub payment_source: PaymentSourceRequest,
}

#[derive(Debug, Serialize)]
pub struct PurchaseUnitRequest {
    /// 1 to 256 characters (`purchase_unit_request.reference_id`): PayPal
    /// answers 400 `INVALID_STRING_LENGTH` to an empty one.
    pub reference_id: String,
    /// The host's payment id: echoed in captures and authorizations, so a
    /// webhook names the payment even without our order id (1 to 127
    /// characters, omitted rather than sent empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    pub amount: Amount,
}

#[derive(Debug, Serialize)]
pub struct PaymentSourceRequest {
    pub paypal: PaypalSourceRequest,
}

#[derive(Debug, Serialize)]
pub struct PaypalSourceRequest {
    pub experience_context: ExperienceContext,
}

#[derive(Debug, Serialize)]
pub struct ExperienceContext {
    pub return_url: String,
    pub cancel_url: String,
    pub user_action: &'static str,
    pub shipping_preference: &'static str,
}

/// The query parameter added to the cancel URL: PayPal sends the buyer back
/// to `cancel_url` with the same `token` as on approval, so without it a
/// cancel could not be told from a return.
pub const CANCEL_PARAM: &str = "paypal_cancel";

/// Truncates to at most `max` characters (PayPal's length limits).
fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// The longest `purchase_units[].reference_id` PayPal takes.
const REFERENCE_ID_MAX: usize = 256;

/// The purchase unit's `reference_id`: the merchant reference, else the
/// payment id, else `default` (what PayPal names a single unit sent without
/// one). Never empty: the schema says 1 to 256 characters and PayPal
/// answers 400 `INVALID_STRING_LENGTH` to `""`.
pub fn reference_id(reference: &str, payment_id: &str) -> String {
    [reference, payment_id]
        .iter()
        .find(|s| !s.is_empty())
        .map(|s| truncate(s, REFERENCE_ID_MAX))
        .unwrap_or_else(|| "default".to_string())
}

impl CreateOrder {
    pub fn new(request: &AuthorizeRequest) -> Result<Self> {
        let amount = to_paypal_amount(&request.amount)?;
        let separator = if request.return_url.contains('?') {
            '&'
        } else {
            '?'
        };
        Ok(CreateOrder {
            intent: match request.capture_method {
                CaptureMethod::Automatic => "CAPTURE",
                CaptureMethod::Manual => "AUTHORIZE",
            },
            purchase_units: vec![PurchaseUnitRequest {
                reference_id: reference_id(&request.reference, &request.payment_id),
                custom_id: Some(truncate(&request.payment_id, 127)).filter(|c| !c.is_empty()),
                amount,
            }],
            payment_source: PaymentSourceRequest {
                paypal: PaypalSourceRequest {
                    experience_context: ExperienceContext {
                        return_url: request.return_url.clone(),
                        cancel_url: format!("{}{separator}{CANCEL_PARAM}=1", request.return_url),
                        user_action: "PAY_NOW",
                        // A digital or already-addressed order: the shop
                        // owns shipping, not PayPal.
                        shipping_preference: "NO_SHIPPING",
                    },
                },
            },
        })
    }
}

/// `POST /v2/payments/authorizations/{id}/capture`.
#[derive(Debug, Serialize)]
pub struct CaptureBody {
    pub amount: Amount,
    pub final_capture: bool,
}

/// `POST /v2/payments/captures/{id}/refund`.
#[derive(Debug, Serialize)]
pub struct RefundBody {
    pub amount: Amount,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note_to_payer: Option<String>,
}

// --------------------------------------------------------------- responses

#[derive(Debug, Clone, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
}

/// The link relations PayPal sends the buyer to approve an order at:
/// `payer-action` for orders created with `payment_source.paypal`,
/// `approve` for the others.
const APPROVAL_RELS: &[&str] = &["payer-action", "approve"];

/// The first approval link of `links`.
pub fn approval_link(links: &[Link]) -> Option<&str> {
    APPROVAL_RELS
        .iter()
        .find_map(|rel| links.iter().find(|l| l.rel == *rel))
        .map(|l| l.href.as_str())
        .filter(|href| !href.is_empty())
}

/// An order. The document marks no member required (`id` and `status` are
/// read-only: in PayPal's answers, absent from the example it documents for
/// the create answer): missing ones are empty, and
/// [`Order::payment_outcome`] says what such an answer means.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Order {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub intent: Option<String>,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub payment_source: Option<PaymentSourceResponse>,
}

/// `payment_source` of an order: only a card source carries an
/// authentication result (`card_response.authentication_result`); the
/// PayPal wallet's (`paypal`) carries none.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentSourceResponse {
    #[serde(default)]
    pub card: Option<CardSourceResponse>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CardSourceResponse {
    #[serde(default)]
    pub authentication_result: Option<AuthenticationResult>,
}

/// `authentication_response`: `liability_shift` and `three_d_secure`
/// (`enrollment_status`, `authentication_status`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthenticationResult {
    #[serde(default)]
    pub liability_shift: Option<String>,
    #[serde(default)]
    pub three_d_secure: Option<ThreeDSecureResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ThreeDSecureResult {
    #[serde(default)]
    pub enrollment_status: Option<String>,
    #[serde(default)]
    pub authentication_status: Option<String>,
}

impl AuthenticationResult {
    /// The contract's 3-D Secure result, per PayPal's "3D Secure response
    /// parameters" (developer.paypal.com/docs/checkout/advanced/customize/3d-secure/response-parameters/).
    pub fn three_ds(&self) -> ThreeDsResult {
        let secure = self.three_d_secure.as_ref();
        let authentication = secure.and_then(|s| s.authentication_status.as_deref());
        let enrollment = secure.and_then(|s| s.enrollment_status.as_deref());
        let status = match (authentication, enrollment) {
            // Y: successful authentication.
            (Some("Y"), _) => ThreeDsStatus::Authenticated,
            // A: authentication attempted.
            (Some("A"), _) => ThreeDsStatus::Attempted,
            // N failed, R rejected; C and D: a challenge was required
            // (D decoupled) and this answer carries no success.
            (Some("N" | "R" | "C" | "D"), _) => ThreeDsStatus::Failed,
            // U: unable to complete the authentication.
            (Some("U"), _) => ThreeDsStatus::Unavailable,
            // I: information only, no authentication asked.
            (Some("I"), _) => ThreeDsStatus::NotPerformed,
            // No result: the enrollment says why.
            (_, Some("N")) => ThreeDsStatus::NotEnrolled,
            (_, Some("U")) => ThreeDsStatus::Unavailable,
            // B: the system bypassed authentication; Y without a result.
            _ => ThreeDsStatus::NotPerformed,
        };
        ThreeDsResult {
            status,
            version: None,
            // YES: shifted; POSSIBLE: "might shift to the card issuer,
            // continue with authorization"; NO: with the merchant;
            // UNKNOWN: the authentication system was not available.
            liability_shift: match self.liability_shift.as_deref() {
                Some("YES" | "POSSIBLE") => Some(true),
                Some("NO") => Some(false),
                _ => None,
            },
            eci: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PurchaseUnit {
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub payments: Option<Payments>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Payments {
    #[serde(default)]
    pub authorizations: Vec<PaymentResource>,
    #[serde(default)]
    pub captures: Vec<PaymentResource>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusDetails {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RelatedIds {
    #[serde(default)]
    pub order_id: Option<String>,
    #[serde(default)]
    pub authorization_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SupplementaryData {
    #[serde(default)]
    pub related_ids: Option<RelatedIds>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProcessorResponse {
    #[serde(default)]
    pub response_code: Option<String>,
}

/// An authorization, capture or refund: they share their useful fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PaymentResource {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub status_details: Option<StatusDetails>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub supplementary_data: Option<SupplementaryData>,
    #[serde(default)]
    pub processor_response: Option<ProcessorResponse>,
    /// An authorization's end of validity (RFC 3339), set per
    /// authorization by PayPal.
    #[serde(default)]
    pub expiration_time: Option<String>,
    #[serde(default)]
    pub links: Vec<Link>,
}

impl PaymentResource {
    fn related(&self) -> Option<&RelatedIds> {
        self.supplementary_data.as_ref()?.related_ids.as_ref()
    }

    pub fn order_id(&self) -> Option<&str> {
        self.related()?.order_id.as_deref()
    }

    pub fn authorization_id(&self) -> Option<&str> {
        self.related()?.authorization_id.as_deref()
    }

    /// The id at the end of the `rel: "up"` link (a refund's capture).
    pub fn up_id(&self) -> Option<&str> {
        let link = self.links.iter().find(|l| l.rel == "up")?;
        link.href
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .filter(|s| !s.is_empty())
    }

    fn reason(&self) -> String {
        self.status_details
            .as_ref()
            .and_then(|d| d.reason.clone())
            .or_else(|| {
                self.processor_response
                    .as_ref()
                    .and_then(|p| p.response_code.clone())
            })
            .unwrap_or_default()
    }

    fn refusal(&self) -> Refusal {
        Refusal {
            code: self.status.clone(),
            reason: self.reason(),
        }
    }

    /// A capture's status as a modification (capture of an authorization).
    pub fn capture_modification_status(&self) -> Result<ModificationStatus> {
        Ok(match self.status.as_str() {
            "COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED" => ModificationStatus::Succeeded,
            "PENDING" => ModificationStatus::Pending,
            "DECLINED" | "FAILED" => ModificationStatus::Refused(self.refusal()),
            other => return Err(unexpected("capture", other)),
        })
    }

    /// A refund's status.
    pub fn refund_status(&self) -> Result<ModificationStatus> {
        Ok(match self.status.as_str() {
            "COMPLETED" => ModificationStatus::Succeeded,
            "PENDING" => ModificationStatus::Pending,
            "FAILED" | "CANCELLED" => ModificationStatus::Refused(self.refusal()),
            other => return Err(unexpected("refund", other)),
        })
    }

    /// A capture's status as the status of the payment it settles (an
    /// order captured at once, intent CAPTURE).
    pub fn capture_payment_status(&self) -> Result<PaymentStatus> {
        Ok(match self.status.as_str() {
            "COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED" => PaymentStatus::Captured,
            // eCheck and the like: the money moves later; a webhook or a
            // sync tells.
            "PENDING" => PaymentStatus::Pending,
            "DECLINED" | "FAILED" => PaymentStatus::Refused(self.refusal()),
            other => return Err(unexpected("capture", other)),
        })
    }

    /// An authorization's status, given what was captured from it.
    pub fn authorization_payment_status(&self, captured: u64) -> Result<PaymentStatus> {
        Ok(match self.status.as_str() {
            "CREATED" if captured == 0 => PaymentStatus::Authorized,
            "CREATED" | "PARTIALLY_CAPTURED" | "CAPTURED" => PaymentStatus::Captured,
            "PENDING" => PaymentStatus::Pending,
            "DENIED" => PaymentStatus::Refused(self.refusal()),
            // Voided or expired after a partial capture: the captured part stays.
            "VOIDED" | "EXPIRED" if captured > 0 => PaymentStatus::Captured,
            "VOIDED" | "EXPIRED" => PaymentStatus::Canceled,
            other => return Err(unexpected("authorization", other)),
        })
    }
}

fn unexpected(what: &str, status: &str) -> ConnectorError {
    // Unknown to this connector: retryable, so the host asks again instead
    // of recording a wrong outcome.
    ConnectorError::retryable(
        "unexpected_status",
        format!("PayPal reported an unknown {what} status {status:?}"),
    )
}

/// What later calls need, kept by the host with the payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorData {
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capture_ids: Vec<String>,
    /// Where the buyer approves the order (its `payer-action`/`approve`
    /// link at creation): where a declined funding source sends them
    /// back, since an approved order's links no longer carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approve_url: Option<String>,
    /// How many times PayPal declined the buyer's funding source and sent
    /// them back to choose another: each new try of the capture (or
    /// authorization) gets its own `PayPal-Request-Id`, so PayPal never
    /// answers it with the remembered answer of the previous try.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub funding_retries: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ConnectorData {
    pub fn parse(data: Option<&str>) -> Option<Self> {
        serde_json::from_str(data?).ok()
    }

    pub fn encode(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}

/// Statuses that count as captured money.
fn is_captured(status: &str) -> bool {
    matches!(status, "COMPLETED" | "PARTIALLY_REFUNDED" | "REFUNDED")
}

impl Order {
    pub fn authorizations(&self) -> impl Iterator<Item = &PaymentResource> {
        self.purchase_units
            .iter()
            .filter_map(|u| u.payments.as_ref())
            .flat_map(|p| p.authorizations.iter())
    }

    pub fn captures(&self) -> impl Iterator<Item = &PaymentResource> {
        self.purchase_units
            .iter()
            .filter_map(|u| u.payments.as_ref())
            .flat_map(|p| p.captures.iter())
    }

    /// The link the buyer approves the order at.
    pub fn approve_link(&self) -> Option<&str> {
        approval_link(&self.links)
    }

    fn captured_minor(&self) -> Result<u64> {
        let mut total = 0u64;
        for capture in self.captures().filter(|c| is_captured(&c.status)) {
            if let Some(amount) = &capture.amount {
                total = total.saturating_add(amount.minor_units()?);
            }
        }
        Ok(total)
    }

    pub fn connector_data(&self, previous: Option<&ConnectorData>) -> ConnectorData {
        ConnectorData {
            order_id: self.id.clone(),
            intent: self
                .intent
                .clone()
                .or_else(|| previous.and_then(|p| p.intent.clone())),
            authorization_id: self
                .authorizations()
                .next()
                .map(|a| a.id.clone())
                .or_else(|| previous.and_then(|p| p.authorization_id.clone())),
            capture_ids: self.captures().map(|c| c.id.clone()).collect(),
            approve_url: self
                .approve_link()
                .map(str::to_string)
                .or_else(|| previous.and_then(|p| p.approve_url.clone())),
            funding_retries: previous.map_or(0, |p| p.funding_retries),
        }
    }

    /// Where the payment stands, from the order and its payments.
    pub fn payment_outcome(&self, previous: Option<&ConnectorData>) -> Result<PaymentOutcome> {
        let known_id = previous
            .map(|p| p.order_id.as_str())
            .filter(|id| !id.is_empty());
        if self.id.is_empty() && known_id.is_none() {
            // An answer naming no order (the create example of PayPal's
            // document is one): nothing can be captured or authorized
            // without the order id, so nothing can be charged. A refusal
            // ends the payment instead of leaving it waiting on an order
            // no sync can find.
            return Ok(PaymentOutcome {
                status: PaymentStatus::Refused(Refusal {
                    code: "NO_ORDER_ID".into(),
                    reason: "PayPal's answer names no order".into(),
                }),
                connector_reference: None,
                provider_status: Some(self.status.clone()).filter(|s| !s.is_empty()),
                amount_authorized: None,
                amount_captured: None,
                connector_data: None,
                three_ds: None,
                capture_before_ms: None,
            });
        }
        let mut amount_authorized = None;
        let mut amount_captured = None;
        let mut capture_before_ms = None;
        let (status, provider_status) = match self.status.as_str() {
            // No status (a minimal answer the document allows): the order
            // exists; a sync reads where it stands.
            "" => (PaymentStatus::Pending, String::new()),
            "CREATED" | "PAYER_ACTION_REQUIRED" => match self.approve_link() {
                Some(url) => (
                    PaymentStatus::RequiresAction(Redirect {
                        url: url.to_string(),
                        method: HttpMethod::Get,
                        form: Vec::new(),
                    }),
                    self.status.clone(),
                ),
                None => (PaymentStatus::Pending, self.status.clone()),
            },
            // Approved by the buyer, not yet captured or authorized.
            "SAVED" | "APPROVED" => (PaymentStatus::Pending, self.status.clone()),
            "VOIDED" => (PaymentStatus::Canceled, self.status.clone()),
            "COMPLETED" => {
                let captured = self.captured_minor()?;
                amount_captured = Some(captured);
                if let Some(auth) = self.authorizations().next() {
                    let status = auth.authorization_payment_status(captured)?;
                    // PayPal dates each authorization (`expiration_time`,
                    // 29 days after it): the host's limit for captures.
                    capture_before_ms = auth.expiration_time.as_deref().and_then(parse_rfc3339_ms);
                    if matches!(status, PaymentStatus::Authorized | PaymentStatus::Captured) {
                        amount_authorized = match &auth.amount {
                            Some(a) => Some(a.minor_units()?),
                            None => None,
                        };
                    }
                    (status, auth.status.clone())
                } else if let Some(capture) = self.captures().next() {
                    let status = capture.capture_payment_status()?;
                    if status == PaymentStatus::Captured {
                        amount_authorized = Some(captured);
                    }
                    (status, capture.status.clone())
                } else {
                    (PaymentStatus::Pending, self.status.clone())
                }
            }
            other => return Err(unexpected("order", other)),
        };
        let mut data = self.connector_data(previous);
        if self.id.is_empty() {
            data.order_id = known_id.unwrap_or_default().to_string();
        }
        Ok(PaymentOutcome {
            status,
            connector_reference: Some(data.order_id.clone()),
            provider_status: Some(provider_status).filter(|s| !s.is_empty()),
            amount_authorized,
            amount_captured,
            connector_data: data.encode(),
            three_ds: self.three_ds(),
            capture_before_ms,
        })
    }

    /// The 3-D Secure result PayPal reports for a card source; none for the
    /// PayPal wallet (the buyer logs in to PayPal, no 3-D Secure).
    pub fn three_ds(&self) -> Option<ThreeDsResult> {
        self.payment_source
            .as_ref()?
            .card
            .as_ref()?
            .authentication_result
            .as_ref()
            .map(AuthenticationResult::three_ds)
    }
}

// ------------------------------------------------------------------ errors

/// PayPal's error body: `{"name","message","debug_id","details":[{"issue",
/// "description","field"}]}`, or OAuth's `{"error","error_description"}`.
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub debug_id: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_description: Option<String>,
    /// HATEOAS links (`information_link`; where PayPal sends the buyer
    /// back, `payer-action`, when it says so).
    #[serde(default)]
    pub links: Vec<Link>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub issue: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

impl ErrorBody {
    /// The most specific code: the first detail's issue, else the name.
    pub fn code(&self) -> Option<String> {
        self.details
            .iter()
            .find_map(|d| d.issue.clone())
            .or_else(|| self.name.clone())
            .or_else(|| self.error.clone())
    }

    pub fn message(&self) -> String {
        let text = self
            .details
            .iter()
            .find_map(|d| d.description.clone())
            .or_else(|| self.message.clone())
            .or_else(|| self.error_description.clone())
            .unwrap_or_default();
        match &self.debug_id {
            Some(id) => format!("{text} (debug_id {id})"),
            None => text,
        }
    }
}

/// Reads a non-2xx answer: 401/403 are the account's credentials, other
/// 4xx are PayPal's business refusals (`rejected` with PayPal's issue code),
/// 5xx and anything unreadable are `retryable`.
pub fn error_from_response(response: &Response) -> ConnectorError {
    let body = response.json::<ErrorBody>().ok();
    match (response.status, body) {
        (401 | 403, body) => {
            let body = body.unwrap_or_default();
            ConnectorError::invalid_config(
                "client_secret",
                format!("PayPal refused the credentials: {}", body.message()),
            )
            .with_code(
                body.code()
                    .unwrap_or_else(|| format!("http_{}", response.status)),
            )
        }
        (400..=499, Some(body)) if body.code().is_some() => {
            let code = body.code().unwrap_or_default();
            ConnectorError::rejected(code, body.message())
        }
        (status, _) => classify_http_status(status, &response.body),
    }
}

/// 422 issues that mean the buyer's funding was refused for good, not that
/// our request was wrong: a refusal of the payment.
pub const REFUSAL_ISSUES: &[&str] = &[
    "PAYER_CANNOT_PAY",
    "TRANSACTION_REFUSED",
    "PAYER_ACCOUNT_RESTRICTED",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED",
    "PAYEE_ACCOUNT_RESTRICTED",
    "COMPLIANCE_VIOLATION",
    "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
    "CARD_EXPIRED",
];

/// 422 issues of an order's capture or authorization that the buyer fixes
/// on PayPal: the funding source was declined and PayPal asks to send the
/// buyer back to choose another ("Handle funding failures",
/// developer.paypal.com/docs/checkout/standard/customize/handle-funding-failures/;
/// `orders.capture-422` / `orders.authorize-422` of `checkout_orders_v2.json`:
/// `INSTRUMENT_DECLINED`; `REDIRECT_PAYER_FOR_ALTERNATE_FUNDING`, "Redirect
/// the payer to select another funding source"; `PAYER_ACTION_REQUIRED`,
/// "instruct the buyer to return to PayPal"). The payment is not over.
pub const BUYER_ACTION_ISSUES: &[&str] = &[
    "INSTRUMENT_DECLINED",
    "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
    "PAYER_ACTION_REQUIRED",
];

/// A non-2xx answer: the error, and the approval link its body carries
/// (PayPal's HATEOAS `links`), if any.
pub fn error_with_approval_link(response: &Response) -> (ConnectorError, Option<String>) {
    let link = response
        .json::<ErrorBody>()
        .ok()
        .and_then(|body| approval_link(&body.links).map(str::to_string));
    (error_from_response(response), link)
}

// ----------------------------------------------------------- notifications

/// A webhook body.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    pub event_type: String,
    #[serde(default)]
    pub create_time: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource: Value,
}

/// Whom an event is about, before the order is known.
#[derive(Debug, PartialEq, Eq)]
pub enum Subject {
    /// The order id (the payment's connector reference).
    Order(String),
    /// A refund's capture, whose order must be looked up.
    Capture(String),
}

/// An event mapped, save for the order id of a refund's capture.
#[derive(Debug, PartialEq, Eq)]
pub struct MappedEvent {
    pub subject: Subject,
    pub merchant_reference: Option<String>,
    pub kind: NotificationEventKind,
    pub amount: Option<Money>,
    pub provider_status: Option<String>,
}

fn invalid_body(message: impl Into<String>) -> ConnectorError {
    ConnectorError::invalid_request("body", message)
}

impl Event {
    pub fn map(&self) -> Result<MappedEvent> {
        let kind_of = self.event_type.as_str();
        let resource_type = self.resource_type.as_deref().unwrap_or_default();
        if kind_of.starts_with("CHECKOUT.ORDER.") || resource_type == "checkout-order" {
            let order: Order = serde_json::from_value(self.resource.clone())
                .map_err(|e| invalid_body(format!("not an order resource: {e}")))?;
            if order.id.is_empty() {
                return Err(invalid_body("the order resource has no id"));
            }
            let merchant_reference = order
                .purchase_units
                .iter()
                .find_map(|u| u.custom_id.clone());
            let amount = match order.purchase_units.first().and_then(|u| u.amount.as_ref()) {
                Some(a) => Some(a.to_money().map_err(|e| invalid_body(e.message))?),
                None => None,
            };
            let kind = match kind_of {
                "CHECKOUT.ORDER.COMPLETED" => {
                    let outcome = order
                        .payment_outcome(None)
                        .map_err(|e| invalid_body(e.message))?;
                    NotificationEventKind::Payment(outcome.status)
                }
                "CHECKOUT.ORDER.VOIDED" => NotificationEventKind::Payment(PaymentStatus::Canceled),
                // Approved: the shopper's return (or a sync) captures it;
                // recorded, nothing to apply yet.
                other => NotificationEventKind::Other(other.to_string()),
            };
            return Ok(MappedEvent {
                subject: Subject::Order(order.id.clone()),
                merchant_reference,
                kind,
                amount,
                provider_status: Some(order.status),
            });
        }
        let resource: PaymentResource = serde_json::from_value(self.resource.clone())
            .map_err(|e| invalid_body(format!("not a payment resource: {e}")))?;
        let amount = match &resource.amount {
            Some(a) => Some(a.to_money().map_err(|e| invalid_body(e.message))?),
            None => None,
        };
        let order = || {
            resource
                .order_id()
                .map(|id| Subject::Order(id.to_string()))
                .ok_or_else(|| invalid_body("the resource names no order"))
        };
        let from_authorization = resource.authorization_id().is_some();
        let (subject, kind) = match kind_of {
            "PAYMENT.AUTHORIZATION.CREATED" => {
                let status = resource
                    .authorization_payment_status(0)
                    .map_err(|e| invalid_body(e.message))?;
                (order()?, NotificationEventKind::Payment(status))
            }
            "PAYMENT.AUTHORIZATION.VOIDED" => (
                order()?,
                NotificationEventKind::Payment(PaymentStatus::Canceled),
            ),
            "PAYMENT.AUTHORIZATION.DENIED" => (
                order()?,
                NotificationEventKind::Payment(PaymentStatus::Refused(resource.refusal())),
            ),
            "PAYMENT.CAPTURE.COMPLETED"
            | "PAYMENT.CAPTURE.PENDING"
            | "PAYMENT.CAPTURE.DENIED"
            | "PAYMENT.CAPTURE.DECLINED" => {
                if from_authorization {
                    // The host recorded this capture when it asked for it;
                    // the event confirms (or refuses) that capture.
                    let status = resource
                        .capture_modification_status()
                        .map_err(|e| invalid_body(e.message))?;
                    (order()?, NotificationEventKind::Capture(status))
                } else {
                    let status = resource
                        .capture_payment_status()
                        .map_err(|e| invalid_body(e.message))?;
                    (order()?, NotificationEventKind::Payment(status))
                }
            }
            "PAYMENT.CAPTURE.REFUNDED"
            | "PAYMENT.REFUND.PENDING"
            | "PAYMENT.REFUND.FAILED"
            | "PAYMENT.REFUND.COMPLETED"
            | "PAYMENT.REFUND.CANCELLED" => {
                let status = resource
                    .refund_status()
                    .map_err(|e| invalid_body(e.message))?;
                let capture = resource
                    .up_id()
                    .ok_or_else(|| invalid_body("the refund names no capture"))?;
                let subject = match resource.order_id() {
                    Some(order) => Subject::Order(order.to_string()),
                    None => Subject::Capture(capture.to_string()),
                };
                (
                    subject,
                    NotificationEventKind::Refund((resource.id.clone(), status)),
                )
            }
            other => {
                let subject = match resource.order_id() {
                    Some(order) => Subject::Order(order.to_string()),
                    None => Subject::Order(resource.id.clone()),
                };
                (subject, NotificationEventKind::Other(other.to_string()))
            }
        };
        Ok(MappedEvent {
            subject,
            merchant_reference: resource.custom_id.clone(),
            kind,
            amount,
            provider_status: Some(resource.status.clone()),
        })
    }
}

// ------------------------------------------------------------------ time

/// RFC 3339 ("2017-03-30T20:04:05Z", "2017-03-30T20:04:05.613Z",
/// "2017-03-30T22:04:05+02:00") to Unix milliseconds; `None` when malformed.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: core::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut ms = 0i64;
        for (i, c) in frac[..digits].bytes().take(3).enumerate() {
            ms += i64::from(c - b'0') * 10i64.pow(2 - i as u32);
        }
        millis = ms;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let tz = rest.get(1..)?;
            if tz.len() != 5 || tz.as_bytes()[2] != b':' {
                return None;
            }
            let h: i64 = tz.get(0..2)?.parse().ok()?;
            let m: i64 = tz.get(3..5)?.parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    u64::try_from(secs * 1000 + millis).ok()
}
