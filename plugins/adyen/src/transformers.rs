//! Adyen Checkout API v71's wire format and its mapping to the contract's
//! types: request bodies, `resultCode`s, `ServiceError`s, standard webhooks
//! and their HMAC signature.
//!
//! Everything provider-specific about *data* lives here; `lib.rs` only
//! sequences calls, so the mappings are testable without any HTTP.

use std::collections::BTreeMap;

use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{crypto, money};
use serde::{Deserialize, Serialize};

// ------------------------------------------------------------------ amounts

/// Currencies whose minor unit at Adyen differs from ISO 4217: (code, ISO
/// exponent, Adyen exponent). Adyen's "Currency codes and minor units"
/// (<https://docs.adyen.com/development-resources/currency-codes>) marks
/// CLP "2 (differs from standard)" and CVE "0 (differs from standard)", and
/// its note names all four: "For CLP, CVE, IDR, and ISK the standard has a
/// different number of decimals than shown in our currency codes table".
/// Without IDR here, an IDR 15,000.00 payment (ISO minor units 1500000)
/// went to Adyen as IDR 1,500,000: 100 times too much.
pub const ADYEN_EXPONENT_EXCEPTIONS: &[(&str, u8, u8)] =
    &[("CLP", 0, 2), ("CVE", 2, 0), ("IDR", 2, 0), ("ISK", 0, 2)];

/// The exponents (ISO, Adyen) of `currency`, or `invalid-request` field
/// `currency` when Adyen cannot take it: not ISO 4217, or with more decimals
/// than Adyen's table has (Adyen has no 4-decimal currency).
pub fn exponents(currency: &str) -> Result<(u8, u8)> {
    let unsupported = || {
        ConnectorError::invalid_request(
            "currency",
            format!("Adyen does not support the currency {currency:?}"),
        )
    };
    let iso = money::exponent(currency).ok_or_else(unsupported)?;
    if iso > 3 {
        return Err(unsupported());
    }
    let adyen = ADYEN_EXPONENT_EXCEPTIONS
        .iter()
        .find(|(code, _, _)| *code == currency)
        .map_or(iso, |(_, _, adyen)| *adyen);
    Ok((iso, adyen))
}

/// Passerelle's amount (ISO minor units) as Adyen's `{value, currency}`.
/// An amount Adyen's coarser unit cannot hold exactly (CVE 1.50, Adyen
/// counts whole escudos) is refused rather than rounded.
pub fn to_adyen_amount(money: &Money) -> Result<Amount> {
    let (iso, adyen) = exponents(&money.currency)?;
    let value = if adyen >= iso {
        money
            .minor_units
            .checked_mul(10u64.pow(u32::from(adyen - iso)))
            .ok_or_else(|| ConnectorError::invalid_request("amount", "amount too large"))?
    } else {
        let factor = 10u64.pow(u32::from(iso - adyen));
        if money.minor_units % factor != 0 {
            return Err(ConnectorError::invalid_request(
                "amount",
                format!(
                    "Adyen takes {} amounts with {adyen} decimals only",
                    money.currency
                ),
            ));
        }
        money.minor_units / factor
    };
    Ok(Amount {
        value,
        currency: money.currency.clone(),
    })
}

/// Adyen's `{value, currency}` in Passerelle's ISO minor units; `None` when
/// the currency is unknown or the value does not convert exactly.
pub fn from_adyen_amount(amount: &Amount) -> Option<Money> {
    let (iso, adyen) = exponents(&amount.currency).ok()?;
    let minor = if iso >= adyen {
        amount
            .value
            .checked_mul(10u64.pow(u32::from(iso - adyen)))?
    } else {
        let factor = 10u64.pow(u32::from(adyen - iso));
        if amount.value % factor != 0 {
            return None;
        }
        amount.value / factor
    };
    Some(Money::new(minor, amount.currency.clone()))
}

/// `{"value": <minor units>, "currency": "EUR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub value: u64,
    pub currency: String,
}

// ----------------------------------------------------------------- requests

/// `POST /payments`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRequest<'a> {
    pub amount: Amount,
    pub merchant_account: &'a str,
    /// The host's payment id: unique, so Adyen's reports and webhooks name
    /// exactly this payment (the merchant's order reference goes in
    /// `merchantOrderReference`).
    pub reference: &'a str,
    pub merchant_order_reference: &'a str,
    pub payment_method: CardDetails<'a>,
    pub return_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_delay_hours: Option<u32>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_data: BTreeMap<&'static str, &'static str>,
    pub authentication_data: AuthenticationData,
    /// `Web`: the shopper pays in a browser (3-D Secure 2's browser flow).
    pub channel: &'static str,
    /// The shopper's browser, which 3-D Secure 2 needs: "For 3D Secure,
    /// the full object is required for web integrations" (v71
    /// `PaymentRequest.browserInfo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_info: Option<BrowserInfoData<'a>>,
    /// The shop's origin, "Required for browser-based (`channel` **Web**)
    /// 3D Secure 2 transactions" (v71 `PaymentRequest.origin`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shopper_email: Option<&'a str>,
    /// Required by Visa and JCB for 3-D Secure 2 without `shopperEmail`
    /// (v71 `PaymentRequest.shopperIP`).
    #[serde(rename = "shopperIP", skip_serializing_if = "Option::is_none")]
    pub shopper_ip: Option<&'a str>,
}

/// `browserInfo`: every member of v71's `BrowserInfo` (all but
/// `javaScriptEnabled` required there).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrowserInfoData<'a> {
    pub accept_header: &'a str,
    pub user_agent: &'a str,
    pub language: &'a str,
    pub color_depth: u8,
    pub screen_height: u32,
    pub screen_width: u32,
    pub time_zone_offset: i32,
    pub java_enabled: bool,
    #[serde(rename = "javaScriptEnabled")]
    pub javascript_enabled: bool,
}

impl<'a> From<&'a BrowserInfo> for BrowserInfoData<'a> {
    fn from(browser: &'a BrowserInfo) -> Self {
        BrowserInfoData {
            accept_header: &browser.accept_header,
            user_agent: &browser.user_agent,
            language: &browser.language,
            color_depth: browser.color_depth,
            screen_height: browser.screen_height,
            screen_width: browser.screen_width,
            time_zone_offset: browser.time_zone_offset,
            java_enabled: browser.java_enabled,
            javascript_enabled: browser.javascript_enabled,
        }
    }
}

/// Adyen's longest capture delay: "Maximum value: **672** (28 days)" (v71
/// `PaymentRequest.captureDelayHours`).
pub const MAX_CAPTURE_DELAY_HOURS: u32 = 672;

/// v71 `PaymentRequest.origin`: "maxLength": 80.
const MAX_ORIGIN_LEN: usize = 80;

/// `authenticationData`: 3-D Secure goes through Adyen's redirect page, the
/// only flow a server-side connector can hand to a browser (native 3DS2
/// needs Adyen's JavaScript on the shop's page).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationData {
    #[serde(rename = "threeDSRequestData")]
    pub three_ds_request_data: ThreeDsRequestData,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ThreeDsRequestData {
    #[serde(rename = "nativeThreeDS")]
    pub native_three_ds: &'static str,
}

/// The raw card (`type: scheme`). No `Debug`: it holds the full card
/// number, and a stray `{:?}` must not be able to print it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardDetails<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub number: &'a str,
    /// Two digits ("03"), as Adyen documents it.
    pub expiry_month: String,
    pub expiry_year: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<&'a str>,
}

impl core::fmt::Debug for CardDetails<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CardDetails { .. }")
    }
}

impl<'a> PaymentRequest<'a> {
    /// The `/payments` body for an `authorize` paid by `card`.
    pub fn new(
        request: &'a AuthorizeRequest,
        card: &'a Card,
        merchant_account: &'a str,
    ) -> Result<Self> {
        let automatic = request.capture_method == CaptureMethod::Automatic;
        let mut additional_data = BTreeMap::new();
        if !automatic {
            // Per-payment manual capture, whatever the account's default.
            additional_data.insert("manualCapture", "true");
        }
        // 0 captures at once; more delays Adyen's automatic capture; manual
        // payments leave it out.
        let capture_delay_hours = match (automatic, request.capture_delay_hours) {
            (false, _) => None,
            (true, None) => Some(0),
            (true, Some(hours)) if hours <= MAX_CAPTURE_DELAY_HOURS => Some(hours),
            (true, Some(_)) => {
                return Err(ConnectorError::invalid_request(
                    "capture_delay_hours",
                    format!("Adyen delays a capture by {MAX_CAPTURE_DELAY_HOURS} hours at most"),
                ))
            }
        };
        let shopper = request.shopper.as_ref();
        let origin = match shopper.and_then(|s| s.origin.as_deref()) {
            // "Do not include subdirectories and a trailing slash."
            Some(origin) => Some(origin.trim_end_matches('/')).filter(|o| !o.is_empty()),
            None => None,
        };
        if origin.is_some_and(|o| o.len() > MAX_ORIGIN_LEN) {
            return Err(ConnectorError::invalid_request(
                "origin",
                format!("Adyen takes an origin of {MAX_ORIGIN_LEN} characters at most"),
            ));
        }
        Ok(PaymentRequest {
            amount: to_adyen_amount(&request.amount)?,
            merchant_account,
            reference: &request.payment_id,
            merchant_order_reference: &request.reference,
            payment_method: CardDetails {
                kind: "scheme",
                number: &card.number,
                expiry_month: format!("{:02}", card.exp_month),
                expiry_year: format!("{:04}", card.exp_year),
                cvc: card.cvc.as_deref(),
                holder_name: card.holder_name.as_deref(),
            },
            return_url: &request.return_url,
            capture_delay_hours,
            additional_data,
            authentication_data: AuthenticationData {
                three_ds_request_data: ThreeDsRequestData {
                    native_three_ds: "disabled",
                },
            },
            channel: "Web",
            browser_info: shopper
                .and_then(|s| s.browser.as_ref())
                .map(BrowserInfoData::from),
            origin,
            shopper_email: shopper.and_then(|s| s.email.as_deref()),
            shopper_ip: shopper.and_then(|s| s.ip_address.as_deref()),
        })
    }
}

/// `POST /payments/details`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailsRequest {
    pub details: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_data: Option<String>,
}

/// The return parameters `/payments/details` takes (`details` members of
/// the v71 spec that a redirect brings back).
pub const RETURN_DETAIL_KEYS: &[&str] = &["redirectResult", "payload", "MD", "PaRes"];

/// `POST /payments/{pspReference}/captures` and `/refunds`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModificationRequest<'a> {
    pub merchant_account: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    pub reference: &'a str,
}

// ---------------------------------------------------------------- responses

/// The answer of `/payments` and `/payments/details`. Unknown members are
/// ignored so Adyen can add some without breaking us.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    #[serde(default)]
    pub psp_reference: Option<String>,
    pub result_code: String,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub merchant_reference: Option<String>,
    #[serde(default)]
    pub refusal_reason: Option<String>,
    #[serde(default)]
    pub refusal_reason_code: Option<String>,
    #[serde(default)]
    pub action: Option<Action>,
    /// Strings per v71; read leniently (a value of another type is ignored).
    #[serde(default)]
    pub additional_data: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub payment_method: Option<ResponsePaymentMethod>,
}

/// `paymentMethod` of an `Authorised` answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponsePaymentMethod {
    /// The card brand: `visa`, `mc`, `cartebancaire`, ...
    #[serde(default)]
    pub brand: Option<String>,
}

/// `action` of a `RedirectShopper` (and the other actions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Form fields for a `POST` redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, String>>,
    /// Older flows want it back in `/payments/details`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_data: Option<String>,
}

/// What this connector keeps with the payment (`connector-data`): what
/// `/payments/details` needs after a redirect, and the last result Adyen
/// gave, which `sync` reports (v71 has no GET of a payment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentData {
    /// `automatic`, `delayed` (Adyen captures after `captureDelayHours`) or
    /// `manual`: only an `Authorised` automatic payment is captured at once.
    #[serde(default)]
    pub capture: String,
    /// The last `resultCode`.
    #[serde(default)]
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal_reason: Option<String>,
    /// Adyen's authorised amount, in ISO minor units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Adyen's 3-D Secure members of `additionalData` (see
    /// [`THREE_DS_KEYS`]), which `sync` reports again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub three_ds: BTreeMap<String, String>,
    /// When the authorization stops being capturable, where it is shorter
    /// than the connector's `authorization-validity` (Cartes Bancaires).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_before_ms: Option<u64>,
}

impl PaymentData {
    pub fn parse(data: Option<&str>) -> PaymentData {
        data.and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default()
    }

    pub fn is_automatic(&self) -> bool {
        self.capture == "automatic"
    }
}

impl PaymentResponse {
    /// The payment's status for `resultCode`, given the capture method.
    pub fn payment_status(&self, automatic: bool) -> Result<PaymentStatus> {
        map_result_code(
            &self.result_code,
            automatic,
            self.refusal_reason_code.as_deref(),
            self.refusal_reason.as_deref(),
            self.action.as_ref(),
        )
    }

    /// The outcome of a `/payments` or `/payments/details` answer. `known`
    /// is what the connector kept from before (capture method, action);
    /// `now_ms` the time of the answer.
    pub fn into_outcome(self, known: PaymentData, now_ms: u64) -> Result<PaymentOutcome> {
        let automatic = known.is_automatic();
        let status = self.payment_status(automatic)?;
        let amount = match &self.amount {
            Some(a) => Some(from_adyen_amount(a).map(|m| m.minor_units).ok_or_else(|| {
                ConnectorError::retryable(
                    "invalid_response",
                    "Adyen answered an amount that does not convert",
                )
            })?),
            None => known.amount,
        };
        let reserved = matches!(status, PaymentStatus::Authorized | PaymentStatus::Captured);
        let captured = matches!(status, PaymentStatus::Captured);
        let three_ds = three_ds_members(&self.additional_data);
        let three_ds = if three_ds.is_empty() {
            known.three_ds
        } else {
            three_ds
        };
        // Only an authorization still to capture has a deadline.
        let capture_before_ms = match status {
            PaymentStatus::Authorized => {
                let brand = self
                    .payment_method
                    .as_ref()
                    .and_then(|m| m.brand.as_deref());
                capture_before_ms(brand, now_ms).or(known.capture_before_ms)
            }
            _ => None,
        };
        let data = PaymentData {
            capture: known.capture,
            result: self.result_code.clone(),
            refusal_code: self.refusal_reason_code.clone(),
            refusal_reason: self.refusal_reason.clone(),
            amount,
            // A new action replaces the old one; a final result keeps none.
            action: match &status {
                PaymentStatus::RequiresAction(_) => self.action.clone().or(known.action),
                _ => None,
            },
            three_ds,
            capture_before_ms,
        };
        Ok(PaymentOutcome {
            status,
            connector_reference: self.psp_reference,
            provider_status: Some(self.result_code),
            amount_authorized: if reserved { amount } else { None },
            amount_captured: if captured { amount } else { None },
            three_ds: three_ds_result(&data.three_ds),
            capture_before_ms: data.capture_before_ms,
            connector_data: serde_json::to_string(&data).ok(),
        })
    }
}

// ------------------------------------------------------------ 3-D Secure

/// The `additionalData` members where Adyen reports 3-D Secure (v71
/// `ResponseAdditionalDataCommon`): "threeDOffered — whether 3DS was
/// offered", "threeDOfferedResponse — the raw enrollment result from the
/// 3DS directory services", "threeDAuthenticated — whether 3DS
/// authentication was completed", "threeDAuthenticatedResponse — the raw
/// 3DS authentication result from the card issuer", "liabilityShift",
/// "eci", "threeDSVersion".
pub const THREE_DS_KEYS: &[&str] = &[
    "threeDOffered",
    "threeDOfferedResponse",
    "threeDAuthenticated",
    "threeDAuthenticatedResponse",
    "liabilityShift",
    "eci",
    "threeDSVersion",
];

/// The 3-D Secure members of an answer's `additionalData` (strings only;
/// `N/A` and empty values left out).
pub fn three_ds_members(
    additional: &BTreeMap<String, serde_json::Value>,
) -> BTreeMap<String, String> {
    THREE_DS_KEYS
        .iter()
        .filter_map(|key| {
            let value = additional.get(*key)?.as_str()?.trim();
            (!value.is_empty() && value != "N/A").then(|| ((*key).to_string(), value.to_string()))
        })
        .collect()
}

/// What Adyen's members say of 3-D Secure; `None` when the answer has none
/// of them (Adyen includes them when the merchant enabled them in Customer
/// Area, Developers, Additional data).
///
/// The raw responses are EMV 3-D Secure's: `threeDAuthenticatedResponse`
/// is the issuer's transaction status (`Y` authenticated, `A` attempted,
/// `N` not authenticated, `R` rejected, `U` could not be performed),
/// `threeDOfferedResponse` the directory's enrolment answer (`Y`, `N` not
/// enrolled, `U` unavailable).
pub fn three_ds_result(members: &BTreeMap<String, String>) -> Option<ThreeDsResult> {
    if members.is_empty() {
        return None;
    }
    let get = |key: &str| members.get(key).map(String::as_str);
    let flag = |key: &str| match get(key) {
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    };
    let offered = flag("threeDOffered");
    let authenticated = flag("threeDAuthenticated");
    if offered.is_none() && authenticated.is_none() {
        return None;
    }
    let status = match (get("threeDAuthenticatedResponse"), authenticated) {
        (Some("A"), _) => ThreeDsStatus::Attempted,
        (_, Some(true)) => ThreeDsStatus::Authenticated,
        (Some("N" | "R"), _) => ThreeDsStatus::Failed,
        (Some("U"), _) => ThreeDsStatus::Unavailable,
        // Offered, not completed: the shopper failed or left it.
        _ if offered == Some(true) => ThreeDsStatus::Failed,
        _ => match get("threeDOfferedResponse") {
            Some("N") => ThreeDsStatus::NotEnrolled,
            Some("U") => ThreeDsStatus::Unavailable,
            _ => ThreeDsStatus::NotPerformed,
        },
    };
    Some(ThreeDsResult {
        status,
        version: get("threeDSVersion").map(str::to_string),
        liability_shift: flag("liabilityShift"),
        eci: get("eci").map(str::to_string),
    })
}

// ------------------------------------------------------ authorization validity

/// How long Adyen keeps an authorization capturable: "Adyen expires an
/// authorisation request automatically after 28 days from the day the
/// payment is authorised, for all major global card networks, except
/// Cartes Bancaires", "12 days ... for Cartes Bancaires"
/// (<https://www.adyen.help/hc/en-us/articles/115001179684>).
pub const CARD_AUTHORIZATION_HOURS: u32 = 28 * 24;
/// Cartes Bancaires' shorter validity (same source).
pub const CARTES_BANCAIRES_AUTHORIZATION_HOURS: u32 = 12 * 24;

/// The deadline of an authorization by `brand`, where it is shorter than
/// [`CARD_AUTHORIZATION_HOURS`] (which `capabilities` declares for cards).
pub fn capture_before_ms(brand: Option<&str>, now_ms: u64) -> Option<u64> {
    match brand {
        Some("cartebancaire") => {
            Some(now_ms.saturating_add(u64::from(CARTES_BANCAIRES_AUTHORIZATION_HOURS) * 3_600_000))
        }
        _ => None,
    }
}

/// Adyen's `resultCode` in the contract's terms, for every value of v71's
/// `PaymentResponse.resultCode` enum. Codes an action goes with
/// (`RedirectShopper`, `IdentifyShopper`, `ChallengeShopper`,
/// `PresentToShopper`) send the shopper to the action's URL when it is a
/// browser redirect; any other action (native 3-D Secure 2's `threeDS2`,
/// QR codes, vouchers, SDKs) needs Adyen's client-side code, so the payment
/// waits for its AUTHORISATION webhook.
pub fn map_result_code(
    code: &str,
    automatic: bool,
    refusal_code: Option<&str>,
    refusal_reason: Option<&str>,
    action: Option<&Action>,
) -> Result<PaymentStatus> {
    let refusal = |default: &str| Refusal {
        code: refusal_code
            .filter(|c| !c.is_empty())
            .unwrap_or(default)
            .to_string(),
        reason: refusal_reason.unwrap_or(default).to_string(),
    };
    Ok(match code {
        // Funds reserved; with `captureDelayHours: 0` Adyen also captures
        // them at once and sends no CAPTURE webhook.
        "Authorised" | "PartiallyAuthorised" if automatic => PaymentStatus::Captured,
        "Authorised" | "PartiallyAuthorised" => PaymentStatus::Authorized,
        "Refused" => PaymentStatus::Refused(refusal("Refused")),
        // A final failure at Adyen or the acquirer: no money moved.
        "Error" => PaymentStatus::Refused(refusal("Error")),
        // Cancelled before processing completed (the shopper left the
        // authentication, say): no money moved. Reported as a refusal, not
        // a cancellation: this answer comes back with the shopper's return,
        // and Passerelle never lets a return cancel a payment.
        "Cancelled" => PaymentStatus::Refused(refusal("Cancelled")),
        // Accepted; the AUTHORISATION webhook tells the outcome.
        "Pending" | "Received" => PaymentStatus::Pending,
        // Authentication-only results: no authorisation yet.
        "AuthenticationFinished" | "AuthenticationNotRequired" => PaymentStatus::Pending,
        // In v71's enum but not among its documented values: the
        // AUTHORISATION webhook tells what it meant for the money.
        "Success" => PaymentStatus::Pending,
        "RedirectShopper" | "IdentifyShopper" | "ChallengeShopper" | "PresentToShopper" => {
            match action.and_then(redirect_of) {
                Some(redirect) => PaymentStatus::RequiresAction(redirect),
                None => PaymentStatus::Pending,
            }
        }
        // Adyen behaving unexpectedly: retryable, so the host asks again
        // rather than recording a wrong outcome.
        other => {
            return Err(ConnectorError::retryable(
                "unexpected_status",
                format!("Adyen reported an unknown resultCode {other:?}"),
            ))
        }
    })
}

/// The browser redirect an `action` describes: a `redirect` action (v71
/// `CheckoutRedirectAction`) with a URL.
pub fn redirect_of(action: &Action) -> Option<Redirect> {
    if action
        .kind
        .as_deref()
        .is_some_and(|kind| kind != "redirect")
    {
        return None;
    }
    let url = action.url.clone().filter(|u| !u.is_empty())?;
    let post = action
        .method
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("POST"));
    Some(Redirect {
        url,
        method: if post {
            HttpMethod::Post
        } else {
            HttpMethod::Get
        },
        form: if post {
            action
                .data
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect()
        } else {
            Vec::new()
        },
    })
}

/// The answer of every modification: `201 {"status": "received", ...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModificationResponse {
    pub psp_reference: String,
    pub status: String,
}

impl ModificationResponse {
    /// `received` is Adyen's only answer: accepted, outcome by webhook.
    pub fn into_outcome(self) -> Result<ModificationOutcome> {
        if self.status != "received" {
            return Err(ConnectorError::retryable(
                "unexpected_status",
                format!(
                    "Adyen answered a modification with status {:?}",
                    self.status
                ),
            ));
        }
        Ok(ModificationOutcome {
            status: ModificationStatus::Pending,
            connector_reference: Some(self.psp_reference),
            provider_status: Some(self.status),
        })
    }
}

/// Adyen's `ServiceError`, the body of every non-2xx answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceError {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_type: Option<String>,
}

/// The request member an Adyen validation `errorCode` is about.
fn field_of_error_code(code: &str) -> Option<&'static str> {
    Some(match code {
        "100" | "137" => "amount",
        "138" => "currency",
        "101" => "card.number",
        "129" => "card.expiry",
        "130" => "reference",
        "14_030" => "return_url",
        _ => return None,
    })
}

/// Reads a non-2xx answer: 5xx (and anything unexpected) is `retryable`,
/// 401 a wrong API key, 403 a wrong merchant account (or a key without
/// the role), another 4xx `rejected` with Adyen's `errorCode`.
pub fn error_from_response(response: &Response) -> ConnectorError {
    let body: Option<ServiceError> = serde_json::from_slice(&response.body).ok();
    let code = body
        .as_ref()
        .and_then(|b| b.error_code.clone())
        .filter(|c| !c.is_empty());
    let message = body
        .as_ref()
        .and_then(|b| b.message.clone())
        .unwrap_or_default();
    let error_type = body.as_ref().and_then(|b| b.error_type.clone());
    match response.status {
        401 => ConnectorError::invalid_config(
            "api_key",
            format!("Adyen refused the API key: {message}"),
        )
        .with_code(code.unwrap_or_else(|| "http_401".into())),
        403 => {
            let field = if code.as_deref() == Some("901") {
                "merchant_account"
            } else {
                "api_key"
            };
            ConnectorError::invalid_config(field, format!("Adyen refused the request: {message}"))
                .with_code(code.unwrap_or_else(|| "http_403".into()))
        }
        status @ 400..=499 => match code {
            Some(code) => {
                let field = field_of_error_code(&code);
                let error = ConnectorError::rejected(
                    code,
                    format!(
                        "HTTP {status} {}: {message}",
                        error_type.unwrap_or_default()
                    ),
                );
                match field {
                    Some(f) => error.with_field(f),
                    None => error,
                }
            }
            None => classify_http_status(status, &response.body),
        },
        status => {
            let mut error = classify_http_status(status, &response.body);
            if let Some(code) = code {
                error.message = format!("{} (Adyen errorCode {code})", error.message);
            }
            error
        }
    }
}

// ------------------------------------------------------------ notifications

/// A standard webhook: `{"live": "false", "notificationItems": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRequest {
    #[serde(default)]
    pub live: Option<String>,
    pub notification_items: Vec<NotificationItemWrapper>,
}

#[derive(Debug, Deserialize)]
pub struct NotificationItemWrapper {
    #[serde(rename = "NotificationRequestItem")]
    pub item: NotificationItem,
}

/// One `NotificationRequestItem`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationItem {
    #[serde(default)]
    pub additional_data: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub amount: Option<Amount>,
    pub event_code: String,
    #[serde(default)]
    pub event_date: Option<String>,
    #[serde(default)]
    pub merchant_account_code: String,
    #[serde(default)]
    pub merchant_reference: Option<String>,
    #[serde(default)]
    pub original_reference: Option<String>,
    pub psp_reference: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// `"true"` or `"false"`, as a string.
    pub success: String,
}

impl NotificationItem {
    /// `pspReference:originalReference:merchantAccountCode:merchantReference:value:currency:eventCode:success`,
    /// missing members as empty strings, `value` in Adyen's minor units.
    /// Values are not escaped (as psp-notes and Adyen's PHP and Java
    /// libraries do).
    pub fn signing_string(&self) -> String {
        let (value, currency) = match &self.amount {
            Some(a) => (a.value.to_string(), a.currency.as_str()),
            None => (String::new(), ""),
        };
        [
            self.psp_reference.as_str(),
            self.original_reference.as_deref().unwrap_or(""),
            self.merchant_account_code.as_str(),
            self.merchant_reference.as_deref().unwrap_or(""),
            value.as_str(),
            currency,
            self.event_code.as_str(),
            self.success.as_str(),
        ]
        .join(":")
    }

    /// `additionalData.hmacSignature`, when present as a string.
    pub fn hmac_signature(&self) -> Option<&str> {
        self.additional_data
            .get("hmacSignature")
            .and_then(serde_json::Value::as_str)
    }

    fn additional(&self, key: &str) -> Option<&str> {
        self.additional_data
            .get(key)
            .and_then(serde_json::Value::as_str)
    }

    /// What this item tells the host.
    pub fn into_event(self) -> Result<NotificationEvent> {
        let success = match self.success.as_str() {
            "true" => true,
            "false" => false,
            other => {
                return Err(ConnectorError::invalid_request(
                    "success",
                    format!("notification item with success {other:?}"),
                ))
            }
        };
        let reason = self.reason.clone().unwrap_or_default();
        let failed = |default: &str| Refusal {
            code: default.to_string(),
            reason: if reason.is_empty() {
                default.to_string()
            } else {
                reason.clone()
            },
        };
        let modification = |code: &str| {
            if success {
                ModificationStatus::Succeeded
            } else {
                ModificationStatus::Refused(failed(code))
            }
        };
        // Modifications name the payment in originalReference; payment
        // events in pspReference.
        let payment_reference = self
            .original_reference
            .clone()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| self.psp_reference.clone());
        let own = self.psp_reference.clone();
        let kind = match self.event_code.as_str() {
            "AUTHORISATION" if success => NotificationEventKind::Payment(PaymentStatus::Authorized),
            // Adyen's webhook carries the refusal reason only: it is
            // Adyen's fixed vocabulary ("Refused", "Expired Card"), so it is
            // the code too.
            "AUTHORISATION" => {
                let code = if reason.is_empty() {
                    "Refused".to_string()
                } else {
                    reason.clone()
                };
                NotificationEventKind::Payment(PaymentStatus::Refused(Refusal {
                    code,
                    reason: reason.clone(),
                }))
            }
            // The offer expired: the shopper never finished the payment.
            "OFFER_CLOSED" if success => NotificationEventKind::Payment(PaymentStatus::Canceled),
            "CAPTURE" => NotificationEventKind::Capture(modification("CAPTURE_FAILED")),
            "CAPTURE_FAILED" => NotificationEventKind::Capture(ModificationStatus::Refused(
                failed("CAPTURE_FAILED"),
            )),
            "CANCELLATION" => NotificationEventKind::Cancel(modification("CANCELLATION_FAILED")),
            "REFUND" => NotificationEventKind::Refund((own, modification("REFUND_FAILED"))),
            "REFUND_FAILED" => NotificationEventKind::Refund((
                own,
                ModificationStatus::Refused(failed("REFUND_FAILED")),
            )),
            // A reversal: Adyen says which of the two it did.
            "CANCEL_OR_REFUND" => match self.additional("modification.action") {
                Some("refund") => {
                    NotificationEventKind::Refund((own, modification("CANCEL_OR_REFUND")))
                }
                _ => NotificationEventKind::Cancel(modification("CANCEL_OR_REFUND")),
            },
            // Chargebacks, reports, ...: recorded, not acted on.
            other => NotificationEventKind::Other(other.to_string()),
        };
        let amount = self.amount.as_ref().and_then(from_adyen_amount);
        let occurred_at_ms = self.event_date.as_deref().and_then(parse_rfc3339_ms);
        Ok(NotificationEvent {
            // Adyen resends an identical item until acknowledged; these
            // three identify it (a modification has its own pspReference).
            event_id: format!(
                "{}:{}:{}",
                self.event_code, self.psp_reference, self.success
            ),
            connector_reference: payment_reference,
            merchant_reference: self.merchant_reference.clone().filter(|r| !r.is_empty()),
            kind,
            amount,
            provider_status: Some(format!(
                "{}{}",
                self.event_code,
                if success { "" } else { ":false" }
            )),
            occurred_at_ms,
        })
    }
}

/// Base64(HMAC-SHA256(hex-decoded key, signing string)) of an item.
pub fn sign_item(key: &[u8], item: &NotificationItem) -> String {
    crypto::base64_encode(crypto::hmac_sha256(key, item.signing_string()))
}

/// Checks an item's `additionalData.hmacSignature` in constant time.
pub fn verify_item(key: &[u8], item: &NotificationItem) -> Result<()> {
    let given = item.hmac_signature().ok_or_else(|| {
        ConnectorError::invalid_signature("notification item without hmacSignature")
    })?;
    let expected = sign_item(key, item);
    // Constant-time: an early-exit `==` would leak how much of a forgery is right.
    if crypto::constant_time_eq(expected.as_bytes(), given.trim().as_bytes()) {
        Ok(())
    } else {
        Err(ConnectorError::invalid_signature(
            "notification item hmacSignature does not match",
        ))
    }
}

/// `2026-11-27T14:00:00+01:00` (fractional seconds and `Z` allowed) as
/// Unix milliseconds; `None` when malformed.
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
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis = ms.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let rb = rest.as_bytes();
            if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rb[0] == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
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
