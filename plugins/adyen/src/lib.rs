//! The Adyen connector: Checkout API v71 (`docs/connectors/adyen.md`).
//!
//! - `lib.rs` (this file): the flow of each operation.
//! - `transformers.rs`: Adyen's wire format, status mapping and webhook HMAC.
//!
//! Adyen decides modifications (capture, cancel, refund) asynchronously:
//! they answer `received`, reported `pending`, and the webhook settles them.
//! v71 has no GET of a payment, so `sync` reports the last result Adyen gave
//! (kept in `connector-data`).

use passerelle_connector_sdk::http::percent_encode;
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{clock, crypto, info, warn};
use serde::de::DeserializeOwned;

#[cfg(test)]
mod tests;
pub mod transformers;

use transformers::{
    DetailsRequest, ModificationRequest, ModificationResponse, NotificationRequest, PaymentData,
    PaymentRequest, PaymentResponse, RETURN_DETAIL_KEYS,
};

/// Re-exported so a native user of this crate can drive the SDK's test kit.
pub use passerelle_connector_sdk as sdk;

/// Adyen's Checkout test endpoint.
pub const TEST_BASE_URL: &str = "https://checkout-test.adyen.com/v71";

/// Adyen's Idempotency-Key limit.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 64;

/// What Adyen wants back from a webhook endpoint.
const ACCEPTED: &str = "[accepted]";

/// The connector. A unit struct: the host creates a fresh instance per call.
pub struct Adyen;

passerelle_connector_sdk::export_connector!(Adyen);

impl Connector for Adyen {
    /// Cards stay capturable 28 days at Adyen (12 for Cartes Bancaires,
    /// reported per payment as `capture-before-ms`); several partial
    /// captures only where the merchant account has them enabled (the
    /// `multiple_partial_captures` setting); Adyen delays an automatic
    /// capture itself by up to 672 hours (`captureDelayHours`).
    fn capabilities(account: Account) -> Result<AccountCapabilities> {
        Ok(AccountCapabilities {
            authorization_validity: vec![AuthorizationValidity {
                payment_method: "card".into(),
                hours: transformers::CARD_AUTHORIZATION_HOURS,
            }],
            multiple_partial_captures: multiple_partial_captures(&account)?,
            native_capture_delay_max_hours: Some(transformers::MAX_CAPTURE_DELAY_HOURS),
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
            id: "adyen".into(),
            name: "Adyen".into(),
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
            payment_methods: vec!["card".into()],
            // Any ISO 4217 currency Adyen's table can express;
            // `transformers::exponents` refuses the others.
            currencies: Vec::new(),
            credential_fields: vec![
                field("api_key", "API key", true, true),
                field("merchant_account", "Merchant account", false, true),
                field("hmac_key", "Webhook HMAC key (hex)", true, true),
                field(
                    "live_url_prefix",
                    "Live URL prefix (live accounts)",
                    false,
                    false,
                ),
                field(
                    MULTIPLE_PARTIAL_CAPTURES,
                    "Multiple partial captures enabled by Adyen on this merchant account (true/false, default false)",
                    false,
                    false,
                ),
            ],
        }
    }

    fn validate_config(account: Account) -> Result<()> {
        Api::new(&account)?;
        hmac_key(&account)?;
        multiple_partial_captures(&account)?;
        Ok(())
    }

    fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
        // Refused before any call: an invalid-request is free, a half-made
        // payment is not.
        transformers::exponents(&request.amount.currency)?;
        // Adyen takes a zero amount as a "zero-value auth" (a card check),
        // which moves no money and cannot be captured: not a payment.
        if request.amount.minor_units == 0 {
            return Err(ConnectorError::invalid_request(
                "amount",
                "the amount must be positive (Adyen's zero-value authorisations are card checks, not payments)",
            ));
        }
        let card = match &request.payment_method {
            PaymentMethod::Card(card) => card,
            PaymentMethod::Other(other) => {
                return Err(ConnectorError::invalid_request(
                    "payment_method",
                    format!("this connector takes cards only, not {:?}", other.kind),
                ))
            }
        };
        let api = Api::new(&account)?;
        let body = PaymentRequest::new(&request, card, &api.merchant_account)?;
        let answer: PaymentResponse =
            api.call(api.post("/payments", &request.idempotency_key).json(&body))?;
        info!(
            "payment {} is {} at Adyen",
            request.payment_id, answer.result_code
        );
        let known = PaymentData {
            capture: capture_name(&request).into(),
            ..PaymentData::default()
        };
        let outcome = answer.into_outcome(known, clock::now_ms())?;
        // An answer with an action may come without pspReference (v71
        // gives it with /payments/details); the payment goes on under our
        // reference (Adyen's `merchantReference`) until Adyen's arrives.
        // Money reserved under no reference could not be captured.
        if outcome.connector_reference.is_none()
            && matches!(
                outcome.status,
                PaymentStatus::Authorized | PaymentStatus::Captured
            )
        {
            return Err(ConnectorError::retryable(
                "invalid_response",
                "Adyen authorised a payment without a pspReference",
            ));
        }
        Ok(outcome)
    }

    fn complete(account: Account, request: CompleteRequest) -> Result<PaymentOutcome> {
        // None when Adyen's action answer came without it: the details
        // answer gives it.
        let known_psp = request
            .payment
            .connector_reference
            .as_deref()
            .filter(|id| !id.is_empty());
        let known = PaymentData::parse(request.payment.connector_data.as_deref());
        let details: std::collections::BTreeMap<String, String> = request
            .params
            .iter()
            .filter(|(k, v)| RETURN_DETAIL_KEYS.contains(&k.as_str()) && !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if details.is_empty() {
            return Err(ConnectorError::invalid_request(
                "redirectResult",
                "the shopper came back without redirectResult",
            ));
        }
        let api = Api::new(&account)?;
        let body = DetailsRequest {
            details,
            payment_data: known.action.as_ref().and_then(|a| a.payment_data.clone()),
        };
        // Adyen answers the same result to the same redirectResult, so a
        // repeated return is harmless; no idempotency key needed.
        let answer: PaymentResponse =
            api.call(Request::post(format!("{}/payments/details", api.base)).json(&body))?;
        // The browser's parameters are the shopper's to forge: a
        // redirectResult of another payment must not settle this one.
        check_details_answer(&answer, known_psp, &request.payment.payment_id)?;
        let mut outcome = answer.into_outcome(known, clock::now_ms())?;
        if let Some(psp) = known_psp {
            outcome.connector_reference = Some(psp.to_string());
        }
        Ok(outcome)
    }

    fn capture(account: Account, request: CaptureRequest) -> Result<ModificationOutcome> {
        let amount = same_currency_amount(&request.amount, &request.payment.amount)?;
        let psp = psp_reference(&request.payment)?;
        let api = Api::new(&account)?;
        let body = ModificationRequest {
            merchant_account: &api.merchant_account,
            amount: Some(amount),
            reference: &request.payment.payment_id,
        };
        api.modify(psp, "captures", &request.idempotency_key, &body)
    }

    fn cancel(account: Account, request: CancelRequest) -> Result<ModificationOutcome> {
        let psp = psp_reference(&request.payment)?;
        let api = Api::new(&account)?;
        let body = ModificationRequest {
            merchant_account: &api.merchant_account,
            amount: None,
            reference: &request.payment.payment_id,
        };
        api.modify(psp, "cancels", &request.idempotency_key, &body)
    }

    fn refund(account: Account, request: RefundRequest) -> Result<ModificationOutcome> {
        let amount = same_currency_amount(&request.amount, &request.payment.amount)?;
        let psp = psp_reference(&request.payment)?;
        let api = Api::new(&account)?;
        let body = ModificationRequest {
            merchant_account: &api.merchant_account,
            amount: Some(amount),
            // The host's refund id: Adyen's reports then name the refund.
            reference: &request.refund_id,
        };
        api.modify(psp, "refunds", &request.idempotency_key, &body)
    }

    fn sync(account: Account, payment: PaymentRef) -> Result<PaymentOutcome> {
        // Checkout v71 has no GET of a payment: report the last result
        // Adyen gave (kept in connector-data). Webhooks carry everything
        // that happened since; the host applies them.
        Api::new(&account)?;
        let known = PaymentData::parse(payment.connector_data.as_deref());
        // A payment waiting for the shopper may not have Adyen's reference
        // yet (v71 gives it with /payments/details): what Adyen said last
        // is all there is to report.
        let psp = match psp_reference(&payment) {
            Ok(psp) => Some(psp.to_string()),
            Err(_) if !known.result.is_empty() => None,
            Err(e) => return Err(e),
        };
        if known.result.is_empty() {
            return Ok(PaymentOutcome {
                status: PaymentStatus::Pending,
                connector_reference: psp,
                provider_status: None,
                amount_authorized: None,
                amount_captured: None,
                connector_data: None,
                three_ds: None,
                capture_before_ms: None,
            });
        }
        let status = transformers::map_result_code(
            &known.result,
            known.is_automatic(),
            known.refusal_code.as_deref(),
            known.refusal_reason.as_deref(),
            known.action.as_ref(),
        )?;
        let reserved = matches!(status, PaymentStatus::Authorized | PaymentStatus::Captured);
        let captured = matches!(status, PaymentStatus::Captured);
        let capturable = matches!(status, PaymentStatus::Authorized);
        Ok(PaymentOutcome {
            status,
            connector_reference: psp,
            provider_status: Some(known.result.clone()),
            amount_authorized: if reserved { known.amount } else { None },
            amount_captured: if captured { known.amount } else { None },
            connector_data: None,
            three_ds: transformers::three_ds_result(&known.three_ds),
            capture_before_ms: known.capture_before_ms.filter(|_| capturable),
        })
    }

    fn handle_notification(
        account: Account,
        notification: Notification,
    ) -> Result<NotificationOutcome> {
        let key = hmac_key(&account)?;
        let merchant_account = account.require("merchant_account")?;
        // Adyen signs each item inside the body, so the body is parsed
        // first; nothing in it is used before its item verifies.
        let request: NotificationRequest =
            serde_json::from_slice(&notification.body).map_err(|e| {
                ConnectorError::invalid_request("body", format!("not an Adyen notification: {e}"))
            })?;
        if request.notification_items.is_empty() {
            return Err(ConnectorError::invalid_request(
                "notificationItems",
                "an Adyen notification without items",
            ));
        }
        let mut events = Vec::new();
        for wrapper in request.notification_items {
            let item = wrapper.item;
            transformers::verify_item(&key, &item)
                .inspect_err(|e| warn!("rejected an Adyen notification: {}", e.message))?;
            // One HMAC key may serve several merchant accounts of a
            // company: items of another account are not this account's.
            if item.merchant_account_code != merchant_account {
                info!(
                    "ignored an Adyen {} for another merchant account",
                    item.event_code
                );
                continue;
            }
            events.push(item.into_event()?);
        }
        Ok(NotificationOutcome {
            events,
            response_status: 200,
            response_content_type: "text/plain".into(),
            response_body: ACCEPTED.into(),
        })
    }
}

/// The capture kept in connector-data: an `Authorised` answer to an
/// `automatic` payment is captured, unless Adyen delays the capture.
fn capture_name(request: &AuthorizeRequest) -> &'static str {
    match (request.capture_method, request.capture_delay_hours) {
        (CaptureMethod::Automatic, None | Some(0)) => "automatic",
        (CaptureMethod::Automatic, Some(_)) => "delayed",
        (CaptureMethod::Manual, _) => "manual",
    }
}

/// The credential naming Adyen's "multiple partial captures" account setting.
const MULTIPLE_PARTIAL_CAPTURES: &str = "multiple_partial_captures";

/// Whether the merchant account has Adyen's "multiple partial captures":
/// off by default ("By default, any unclaimed amount after a partial
/// capture gets cancelled. This does not apply if you enabled multiple
/// partial captures on your account", v71 `POST
/// /payments/{paymentPspReference}/captures`; Adyen's support enables it).
fn multiple_partial_captures(account: &Account) -> Result<bool> {
    match account.optional(MULTIPLE_PARTIAL_CAPTURES).map(str::trim) {
        None | Some("") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(ConnectorError::invalid_config(
            MULTIPLE_PARTIAL_CAPTURES,
            "multiple_partial_captures is true or false",
        )),
    }
}

/// Whether a `/payments/details` answer is this payment's: its pspReference
/// when we know it, else its `merchantReference`, which is our payment id.
/// An answer that names neither cannot be told apart from another
/// payment's and settles nothing (Adyen's AUTHORISATION webhook will).
fn check_details_answer(
    answer: &PaymentResponse,
    known_psp: Option<&str>,
    payment_id: &str,
) -> Result<()> {
    let foreign = || {
        ConnectorError::invalid_request(
            "redirectResult",
            "the return parameters belong to another Adyen payment",
        )
    };
    if let Some(reference) = answer.merchant_reference.as_deref() {
        if reference != payment_id {
            return Err(foreign());
        }
    }
    match (known_psp, answer.psp_reference.as_deref()) {
        (Some(known), Some(given)) if known != given => Err(foreign()),
        (Some(_), _) => Ok(()),
        (None, _) if answer.merchant_reference.is_some() => Ok(()),
        (None, _) => Err(ConnectorError::invalid_request(
            "redirectResult",
            "Adyen's answer names neither this payment's pspReference nor its reference",
        )),
    }
}

/// The webhook HMAC key, hex-decoded (Adyen shows it as hex).
fn hmac_key(account: &Account) -> Result<Vec<u8>> {
    let hex = account.require("hmac_key")?;
    crypto::hex_decode(hex)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ConnectorError::invalid_config("hmac_key", "the HMAC key must be hex"))
}

/// The base URL: the account's own (sandbox, proxy) as is, else Adyen's
/// test endpoint, or the live one built from the account's prefix.
fn checkout_base(account: &Account) -> Result<String> {
    let custom = account
        .base_url
        .as_deref()
        .map(str::trim)
        .is_some_and(|u| !u.is_empty());
    if custom || !account.is_live() {
        return base_url(account, TEST_BASE_URL, "");
    }
    let prefix = account.optional("live_url_prefix").ok_or_else(|| {
        ConnectorError::invalid_config(
            "live_url_prefix",
            "a live Adyen account needs its live URL prefix",
        )
    })?;
    // The prefix becomes part of a host name: letters, digits and dashes only.
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ConnectorError::invalid_config(
            "live_url_prefix",
            "the live URL prefix has letters, digits and dashes only",
        ));
    }
    Ok(format!(
        "https://{prefix}-checkout-live.adyenpayments.com/checkout/v71"
    ))
}

/// Adyen's API for one account, read once per call.
struct Api {
    base: String,
    api_key: String,
    merchant_account: String,
}

impl Api {
    fn new(account: &Account) -> Result<Self> {
        Ok(Api {
            base: checkout_base(account)?,
            api_key: account.require("api_key")?.to_string(),
            merchant_account: account.require("merchant_account")?.to_string(),
        })
    }

    /// A POST carrying the host's idempotency key: Adyen answers a repeat
    /// (after a timeout, say) with the first answer instead of acting twice.
    fn post(&self, path: &str, idempotency_key: &str) -> Request {
        Request::post(format!("{}{path}", self.base))
            .header("Idempotency-Key", idempotency_key_for(idempotency_key))
    }

    /// A capture, cancel or refund of payment `psp`.
    fn modify(
        &self,
        psp: &str,
        what: &str,
        idempotency_key: &str,
        body: &ModificationRequest<'_>,
    ) -> Result<ModificationOutcome> {
        let path = format!("/payments/{}/{what}", percent_encode(psp));
        let answer: ModificationResponse =
            self.call(self.post(&path, idempotency_key).json(body))?;
        info!("Adyen received {what} {}", answer.psp_reference);
        answer.into_outcome()
    }

    /// Sends `request` with the API key and reads the answer as `T`.
    fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        let response = request
            .header("X-API-Key", self.api_key.as_str())
            .header("Accept", "application/json")
            .send()?;
        if response.is_success() {
            response.json()
        } else {
            Err(transformers::error_from_response(&response))
        }
    }
}

/// The host's key, or a digest of it when longer than Adyen takes: still
/// stable for the same operation, so a repeat is still recognised.
fn idempotency_key_for(key: &str) -> String {
    if key.len() <= MAX_IDEMPOTENCY_KEY_LEN && !key.is_empty() {
        key.to_string()
    } else {
        format!("psr-{}", &crypto::hex_encode(crypto::sha256(key))[..40])
    }
}

/// Adyen's pspReference of the payment, which every later operation needs.
fn psp_reference(payment: &PaymentRef) -> Result<&str> {
    payment
        .connector_reference
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ConnectorError::invalid_request(
                "connector_reference",
                "the payment has no Adyen pspReference",
            )
        })
}

/// A capture or refund amount in Adyen's units, in the payment's currency.
fn same_currency_amount(amount: &Money, payment_amount: &Money) -> Result<transformers::Amount> {
    if amount.currency != payment_amount.currency {
        return Err(ConnectorError::invalid_request(
            "currency",
            format!(
                "{} differs from the payment's {}",
                amount.currency, payment_amount.currency
            ),
        ));
    }
    transformers::to_adyen_amount(amount)
}
