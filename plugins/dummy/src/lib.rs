//! The reference connector, for the local dummy PSP (docs/dummy-psp.md).
//!
//! Read this one first when writing a connector. It shows the shape every
//! connector follows:
//!
//! - `lib.rs` (this file): the flow of each operation — check the request,
//!   call the provider, hand the answer to `transformers`.
//! - `transformers.rs`: the provider's request/response types and their
//!   mapping to the contract's types.
//!
//! Rules worth copying:
//! - Refuse what you cannot serve *before* any HTTP call (currency, method):
//!   an `invalid-request` is free, a half-made payment is not.
//! - Classify every failure by what a retry would do (see
//!   `passerelle_connector_sdk::error`). When in doubt whether the provider
//!   acted, say `retryable`: the host then syncs instead of guessing.
//! - Trust the provider's API, never the shopper's browser, for an outcome.
//! - Never log the account or card data.

use passerelle_connector_sdk::http::percent_encode;
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{clock, crypto, info, money, warn};
use serde::de::DeserializeOwned;

#[cfg(test)]
mod tests;
pub mod transformers;

use transformers::{CaptureBody, Charge, ChargeList, ChargeRequest, Event, Refund, RefundBody};

/// Re-exported so a native user of this crate (the host's benchmark) can
/// drive the SDK's test kit without depending on the SDK itself.
pub use passerelle_connector_sdk as sdk;

/// How far a notification's timestamp may be from our clock, in seconds:
/// older ones could be replays of a captured request.
pub const SIGNATURE_TOLERANCE_SECS: u64 = 300;

/// The connector. A unit struct: the host creates a fresh instance for every
/// call, so there is no state to keep here.
pub struct Dummy;

passerelle_connector_sdk::export_connector!(Dummy);

impl Connector for Dummy {
    /// The dummy PSP keeps an authorization seven days and takes any number
    /// of partial captures, unless the account's settings say otherwise (so
    /// that the host's handling of both can be tried without a real
    /// provider); it has no delayed capture of its own (the host holds
    /// delayed captures for it).
    fn capabilities(account: Account) -> Result<AccountCapabilities> {
        Api::new(&account)?;
        let settings = Settings::read(&account)?;
        Ok(AccountCapabilities {
            authorization_validity: vec![AuthorizationValidity {
                payment_method: "*".into(),
                hours: settings.authorization_validity_hours,
            }],
            multiple_partial_captures: settings.multiple_partial_captures,
            native_capture_delay_max_hours: None,
        })
    }

    fn describe() -> ConnectorInfo {
        let field = |name: &str, label: &str| CredentialField {
            name: name.into(),
            label: label.into(),
            secret: true,
            required: true,
        };
        ConnectorInfo {
            id: "dummy".into(),
            name: "Dummy PSP".into(),
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
            // Any currency the PSP takes; `check_currency` still refuses
            // codes that are not ISO 4217.
            currencies: Vec::new(),
            credential_fields: vec![
                field("api_key", "API key"),
                field("webhook_secret", "Webhook signing secret"),
                CredentialField {
                    name: "authorization_validity_hours".into(),
                    label: "Hours an authorization stays capturable (default 168)".into(),
                    secret: false,
                    required: false,
                },
                CredentialField {
                    name: "multiple_partial_captures".into(),
                    label: "Several partial captures per payment: true (default) or false".into(),
                    secret: false,
                    required: false,
                },
            ],
        }
    }

    fn validate_config(account: Account) -> Result<()> {
        // Same checks as a real call makes, without the call.
        Api::new(&account)?;
        account.require("webhook_secret")?;
        Settings::read(&account)?;
        Ok(())
    }

    fn authorize(account: Account, request: AuthorizeRequest) -> Result<PaymentOutcome> {
        check_currency(&request.amount)?;
        let card = match &request.payment_method {
            PaymentMethod::Card(card) => card,
            PaymentMethod::Other(other) => {
                return Err(ConnectorError::invalid_request(
                    "payment_method",
                    format!("the dummy PSP takes cards only, not {:?}", other.kind),
                ))
            }
        };
        let api = Api::new(&account)?;
        let body = ChargeRequest::new(&request, card);
        let charge: Charge = api.call(
            api.post("/v1/charges", &request.idempotency_key)
                .json(&body),
        )?;
        info!(
            "charge {} for {} is {}",
            charge.id, request.reference, charge.status
        );
        charge.into_outcome()
    }

    fn complete(account: Account, request: CompleteRequest) -> Result<PaymentOutcome> {
        let id = charge_id(&request.payment)?;
        // The browser's parameters are the shopper's to forge: use them only
        // to catch a mix-up, and ask the PSP for the outcome.
        if let Some((_, charge)) = request.params.iter().find(|(k, _)| k == "charge") {
            if charge != id {
                return Err(ConnectorError::invalid_request(
                    "charge",
                    "the return URL names another charge than this payment's",
                ));
            }
        }
        let api = Api::new(&account)?;
        let charge: Charge = api.call(api.get(&charge_path(id, "")))?;
        charge.into_outcome()
    }

    fn capture(account: Account, request: CaptureRequest) -> Result<ModificationOutcome> {
        check_same_currency(&request.amount, &request.payment.amount)?;
        let id = charge_id(&request.payment)?;
        let api = Api::new(&account)?;
        let body = CaptureBody {
            amount: request.amount.minor_units,
            final_capture: request.final_capture,
        };
        let charge: Charge = api.call(
            api.post(&charge_path(id, "/capture"), &request.idempotency_key)
                .json(&body),
        )?;
        // A 200 means the capture happened; the charge stays `authorized`
        // until the whole amount is captured, so report its status as is.
        Ok(ModificationOutcome {
            status: ModificationStatus::Succeeded,
            connector_reference: None,
            provider_status: Some(charge.status),
        })
    }

    fn cancel(account: Account, request: CancelRequest) -> Result<ModificationOutcome> {
        let id = charge_id(&request.payment)?;
        let api = Api::new(&account)?;
        let charge: Charge =
            api.call(api.post(&charge_path(id, "/void"), &request.idempotency_key))?;
        Ok(ModificationOutcome {
            status: ModificationStatus::Succeeded,
            connector_reference: None,
            provider_status: Some(charge.status),
        })
    }

    fn refund(account: Account, request: RefundRequest) -> Result<ModificationOutcome> {
        check_same_currency(&request.amount, &request.payment.amount)?;
        let id = charge_id(&request.payment)?;
        let api = Api::new(&account)?;
        let body = RefundBody {
            amount: request.amount.minor_units,
            reason: request.reason.as_deref(),
        };
        let refund: Refund = api.call(
            api.post(&charge_path(id, "/refunds"), &request.idempotency_key)
                .json(&body),
        )?;
        Ok(ModificationOutcome {
            status: refund.modification_status()?,
            // The refund's own id: notifications about it carry this one.
            connector_reference: Some(refund.id),
            provider_status: Some(refund.status),
        })
    }

    fn sync(account: Account, payment: PaymentRef) -> Result<PaymentOutcome> {
        let api = Api::new(&account)?;
        let charge: Charge = match charge_id(&payment) {
            Ok(id) => api.call(api.get(&charge_path(id, "")))?,
            // The answer to the charge was lost: find it by our payment id.
            Err(_) => {
                let query = percent_encode(&payment.payment_id);
                let found: ChargeList =
                    api.call(api.get(&format!("/v1/charges?payment_id={query}")))?;
                found.data.into_iter().next().ok_or_else(|| {
                    // Not (yet) at the PSP: the outcome stays unknown.
                    ConnectorError::retryable(
                        "charge_not_found",
                        "the dummy PSP has no charge for this payment",
                    )
                })?
            }
        };
        charge.into_outcome()
    }

    fn handle_notification(
        account: Account,
        notification: Notification,
    ) -> Result<NotificationOutcome> {
        let secret = account.require("webhook_secret")?;
        // Verify before parsing: nothing in an unverified body is trusted.
        verify_signature(
            secret,
            notification.header("Dummy-Signature"),
            &notification.body,
            clock::now_secs(),
        )
        .inspect_err(|e| warn!("rejected a notification: {}", e.message))?;
        let event: Event = serde_json::from_slice(&notification.body).map_err(|e| {
            ConnectorError::invalid_request("body", format!("not a dummy PSP event: {e}"))
        })?;
        let event = event.into_notification_event()?;
        Ok(NotificationOutcome {
            events: vec![event],
            response_status: 200,
            response_content_type: "application/json".into(),
            response_body: r#"{"received":true}"#.into(),
        })
    }
}

/// Checks `Dummy-Signature: t=<secs>,v1=<hex>`: HMAC-SHA256 keyed with the
/// webhook secret over `"<t>.<raw body>"`, and `t` within
/// [`SIGNATURE_TOLERANCE_SECS`] of `now_secs`.
pub fn verify_signature(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    now_secs: u64,
) -> Result<()> {
    let header = header
        .ok_or_else(|| ConnectorError::invalid_signature("missing Dummy-Signature header"))?;
    let parsed = transformers::parse_signature_header(header)
        .ok_or_else(|| ConnectorError::invalid_signature("malformed Dummy-Signature header"))?;
    if now_secs.abs_diff(parsed.timestamp_secs) > SIGNATURE_TOLERANCE_SECS {
        return Err(ConnectorError::invalid_signature(
            "Dummy-Signature timestamp too far from now (replay?)",
        ));
    }
    let mut payload = Vec::with_capacity(parsed.timestamp.len() + 1 + body.len());
    payload.extend_from_slice(parsed.timestamp.as_bytes());
    payload.push(b'.');
    payload.extend_from_slice(body);
    let expected = crypto::hex_encode(crypto::hmac_sha256(secret, &payload));
    // Constant-time: an early-exit `==` would leak how much of a forgery is right.
    if parsed
        .signatures
        .iter()
        .any(|sig| crypto::constant_time_eq(expected.as_bytes(), sig.as_bytes()))
    {
        Ok(())
    } else {
        Err(ConnectorError::invalid_signature(
            "Dummy-Signature does not match",
        ))
    }
}

/// The PSP's API for one account: base URL and key, read once per call.
struct Api {
    base: String,
    api_key: String,
}

impl Api {
    fn new(account: &Account) -> Result<Self> {
        // The dummy PSP has no public URL: the account's base URL (the
        // sandbox) is mandatory, hence the empty defaults.
        let base = base_url(account, "", "")?;
        let api_key = account.require("api_key")?.to_string();
        Ok(Api { base, api_key })
    }

    fn get(&self, path: &str) -> Request {
        Request::get(format!("{}{path}", self.base))
    }

    /// A POST carrying `idempotency_key`: the PSP answers a repeat of the
    /// same call (after a timeout, say) with the first result instead of
    /// acting twice.
    fn post(&self, path: &str, idempotency_key: &str) -> Request {
        Request::post(format!("{}{path}", self.base)).header("Idempotency-Key", idempotency_key)
    }

    /// Sends `request` with the credentials and reads the answer as `T`.
    fn call<T: DeserializeOwned>(&self, request: Request) -> Result<T> {
        // Transport errors (timeout, connect) are mapped by the SDK; a body
        // that is not the JSON we expect is `retryable` (`Response::json`).
        let response = request
            .bearer(&self.api_key)
            .header("Accept", "application/json")
            .send()?;
        if response.is_success() {
            response.json()
        } else {
            Err(transformers::error_from_response(&response))
        }
    }
}

/// `/v1/charges/{id}{suffix}`, the id escaped: it came from outside and must
/// not be able to change the path.
fn charge_path(id: &str, suffix: &str) -> String {
    format!("/v1/charges/{}{suffix}", percent_encode(id))
}

/// The PSP's charge id, which every operation after `authorize` needs.
fn charge_id(payment: &PaymentRef) -> Result<&str> {
    payment
        .connector_reference
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ConnectorError::invalid_request(
                "connector_reference",
                "the payment has no dummy PSP charge id",
            )
        })
}

/// Refuses a currency code that is not ISO 4217, so a typo never reaches the PSP.
fn check_currency(amount: &Money) -> Result<()> {
    if money::is_known(&amount.currency) {
        Ok(())
    } else {
        Err(ConnectorError::invalid_request(
            "currency",
            format!("unknown currency {:?}", amount.currency),
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

/// The account's optional settings.
struct Settings {
    authorization_validity_hours: u32,
    multiple_partial_captures: bool,
}

impl Settings {
    fn read(account: &Account) -> Result<Settings> {
        let authorization_validity_hours = match account.optional("authorization_validity_hours") {
            None => 7 * 24,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|hours| (1..=8784).contains(hours))
                .ok_or_else(|| {
                    ConnectorError::invalid_config(
                        "authorization_validity_hours",
                        "authorization_validity_hours must be a number of hours, 1 to 8784",
                    )
                })?,
        };
        let multiple_partial_captures = match account.optional("multiple_partial_captures") {
            None => true,
            Some(text) => match text.trim() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConnectorError::invalid_config(
                        "multiple_partial_captures",
                        "multiple_partial_captures must be true or false",
                    ))
                }
            },
        };
        Ok(Settings {
            authorization_validity_hours,
            multiple_partial_captures,
        })
    }
}
