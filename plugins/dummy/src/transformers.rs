//! The dummy PSP's wire format (docs/dummy-psp.md) and its mapping to the
//! contract's types.
//!
//! Everything provider-specific about *data* lives here; `lib.rs` only
//! sequences calls. Keeping the two apart means a provider API change is
//! usually a change to this file alone, and the mappings can be tested
//! without any HTTP.

use passerelle_connector_sdk::prelude::*;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- requests

/// `POST /v1/charges`.
#[derive(Debug, Serialize)]
pub struct ChargeRequest<'a> {
    pub amount: u64,
    pub currency: &'a str,
    pub reference: &'a str,
    /// The host's payment id: the PSP echoes it and can be searched by it,
    /// so a charge whose answer was lost can still be found.
    pub payment_id: &'a str,
    /// True captures at once; false only reserves the funds.
    pub capture: bool,
    pub card: CardRequest<'a>,
    pub return_url: &'a str,
    pub notification_url: &'a str,
}

/// The card inside a [`ChargeRequest`]. No `Debug`: it holds the full card
/// number, and a stray `{:?}` must not be able to print it.
#[derive(Serialize)]
pub struct CardRequest<'a> {
    pub number: &'a str,
    pub exp_month: u8,
    pub exp_year: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cvc: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder_name: Option<&'a str>,
}

impl core::fmt::Debug for CardRequest<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("CardRequest { .. }")
    }
}

impl<'a> ChargeRequest<'a> {
    /// The charge for an `authorize` paid by `card`.
    pub fn new(request: &'a AuthorizeRequest, card: &'a Card) -> Self {
        ChargeRequest {
            amount: request.amount.minor_units,
            currency: &request.amount.currency,
            reference: &request.reference,
            payment_id: &request.payment_id,
            capture: request.capture_method == CaptureMethod::Automatic,
            card: CardRequest {
                number: &card.number,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
                cvc: card.cvc.as_deref(),
                holder_name: card.holder_name.as_deref(),
            },
            return_url: &request.return_url,
            notification_url: &request.notification_url,
        }
    }
}

/// `POST /v1/charges/{id}/capture`.
#[derive(Debug, Serialize)]
pub struct CaptureBody {
    pub amount: u64,
    /// True ends further captures even if some amount remains.
    #[serde(rename = "final")]
    pub final_capture: bool,
}

/// `POST /v1/charges/{id}/refunds`.
#[derive(Debug, Serialize)]
pub struct RefundBody<'a> {
    pub amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

// --------------------------------------------------------------- responses

/// `GET /v1/charges?payment_id=...`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChargeList {
    pub data: Vec<Charge>,
}

/// A charge as the PSP reports it. Unknown fields are ignored so the PSP can
/// add some without breaking us.
#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    /// Kept as a string: it is also the operator-facing `provider-status`,
    /// and an unknown value must be reported, not fail the parse.
    pub status: String,
    pub amount: u64,
    pub currency: String,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub payment_id: Option<String>,
    #[serde(default)]
    pub amount_captured: u64,
    #[serde(default)]
    pub refusal_code: Option<String>,
    #[serde(default)]
    pub refusal_reason: Option<String>,
    #[serde(default)]
    pub redirect_url: Option<String>,
    /// `authenticated` or `failed` once the shopper went through the PSP's
    /// 3-D Secure page.
    #[serde(default)]
    pub three_d_secure: Option<String>,
}

impl Charge {
    /// The 3-D Secure result, where the PSP reports one. The dummy PSP's
    /// page is a full authentication: liability shifts when it succeeds.
    fn three_ds(&self) -> Option<ThreeDsResult> {
        let status = match self.three_d_secure.as_deref()? {
            "authenticated" => ThreeDsStatus::Authenticated,
            "failed" => ThreeDsStatus::Failed,
            _ => return None,
        };
        Some(ThreeDsResult {
            status,
            version: Some("2.2.0".into()),
            liability_shift: Some(status == ThreeDsStatus::Authenticated),
            eci: None,
        })
    }

    /// Where the payment stands, in the contract's terms.
    pub fn payment_status(&self) -> Result<PaymentStatus> {
        Ok(match self.status.as_str() {
            "requires_action" => {
                // The PSP's 3-D Secure page is a plain GET: no form to post.
                let url = self.redirect_url.clone().ok_or_else(|| {
                    ConnectorError::retryable(
                        "invalid_response",
                        "requires_action charge without redirect_url",
                    )
                })?;
                PaymentStatus::RequiresAction(Redirect {
                    url,
                    method: HttpMethod::Get,
                    form: Vec::new(),
                })
            }
            "authorized" => PaymentStatus::Authorized,
            "captured" => PaymentStatus::Captured,
            "refused" => PaymentStatus::Refused(Refusal {
                code: self
                    .refusal_code
                    .clone()
                    .unwrap_or_else(|| "refused".into()),
                reason: self.refusal_reason.clone().unwrap_or_default(),
            }),
            "canceled" => PaymentStatus::Canceled,
            // A status this connector does not know is the PSP behaving
            // unexpectedly: retryable, so the host asks again (sync) instead
            // of recording a wrong outcome.
            other => {
                return Err(ConnectorError::retryable(
                    "unexpected_status",
                    format!("the dummy PSP reported an unknown charge status {other:?}"),
                ))
            }
        })
    }

    /// The outcome of an operation that answered this charge.
    pub fn into_outcome(self) -> Result<PaymentOutcome> {
        let status = self.payment_status()?;
        let three_ds = self.three_ds();
        // Only these two statuses mean the amount is actually reserved.
        let authorized = matches!(status, PaymentStatus::Authorized | PaymentStatus::Captured);
        Ok(PaymentOutcome {
            status,
            amount_authorized: authorized.then_some(self.amount),
            amount_captured: Some(self.amount_captured),
            connector_reference: Some(self.id),
            provider_status: Some(self.status),
            // The dummy PSP needs nothing but its charge id later on.
            connector_data: None,
            three_ds,
            capture_before_ms: None,
        })
    }
}

/// A refund as the PSP reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: u64,
    pub status: String,
}

impl Refund {
    pub fn modification_status(&self) -> Result<ModificationStatus> {
        match self.status.as_str() {
            "succeeded" => Ok(ModificationStatus::Succeeded),
            "pending" => Ok(ModificationStatus::Pending),
            other => Err(ConnectorError::retryable(
                "unexpected_status",
                format!("the dummy PSP reported an unknown refund status {other:?}"),
            )),
        }
    }
}

/// `{"error": {"code": "...", "message": "...", "param": "..."}}`, the body
/// of every 4xx.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    #[serde(default)]
    pub message: String,
    /// The request member at fault ("amount", "card.number"), when one is.
    #[serde(default)]
    pub param: Option<String>,
}

/// Reads a non-2xx answer. The PSP's own error code is the most useful thing
/// to hand the merchant, so a 4xx with a structured body is `rejected` with
/// that code; the generic SDK classification covers the rest (5xx →
/// retryable, unparseable 4xx → rejected `http_<status>`).
pub fn error_from_response(response: &Response) -> ConnectorError {
    let detail = response.json::<ErrorBody>().ok().map(|b| b.error);
    match (response.status, detail) {
        // Our credentials are wrong: nothing the shopper or a retry can fix.
        (401 | 403, detail) => {
            let message = detail.map(|d| d.message).unwrap_or_default();
            ConnectorError::invalid_config(
                "api_key",
                format!("the dummy PSP refused the API key: {message}"),
            )
        }
        // The PSP holds another request under our key: whatever that one
        // did is unknown from here, so this is no refusal; the host asks
        // again (sync) rather than failing a payment that may be paid.
        (409, Some(detail)) if detail.code == "idempotency_conflict" => {
            ConnectorError::retryable(detail.code, detail.message)
        }
        (400..=499, Some(detail)) => {
            let error = ConnectorError::rejected(detail.code, detail.message);
            match detail.param {
                Some(param) => error.with_field(param),
                None => error,
            }
        }
        (status, _) => classify_http_status(status, &response.body),
    }
}

// ------------------------------------------------------------ notifications

/// The JSON body of a notification.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix milliseconds.
    pub created: u64,
    pub charge: Charge,
    #[serde(default)]
    pub refund: Option<Refund>,
}

impl Event {
    /// What the event tells the host.
    pub fn into_notification_event(self) -> Result<NotificationEvent> {
        let currency = self.charge.currency.clone();
        let (kind, amount, provider_status) = match self.kind.as_str() {
            "charge.authorized" | "charge.captured" | "charge.refused" | "charge.canceled" => {
                // A capture event is about the captured amount; the others
                // about the charge's amount.
                let amount = if self.kind == "charge.captured" {
                    self.charge.amount_captured
                } else {
                    self.charge.amount
                };
                let status = self.charge.payment_status()?;
                (
                    NotificationEventKind::Payment(status),
                    Some(amount),
                    self.charge.status.clone(),
                )
            }
            "charge.refunded" => {
                let refund = self.refund.ok_or_else(|| {
                    ConnectorError::invalid_request(
                        "body",
                        "charge.refunded event without its refund",
                    )
                })?;
                let status = refund.modification_status()?;
                (
                    NotificationEventKind::Refund((refund.id, status)),
                    Some(refund.amount),
                    refund.status,
                )
            }
            // Recorded by the host, not acted on: a newer PSP may send more.
            other => (
                NotificationEventKind::Other(other.to_string()),
                None,
                self.charge.status.clone(),
            ),
        };
        Ok(NotificationEvent {
            event_id: self.id,
            connector_reference: self.charge.id,
            // The host's payment id when the charge carries it: the host
            // finds the payment by it even before it learnt the charge id.
            merchant_reference: self.charge.payment_id.or(self.charge.reference),
            kind,
            amount: amount.map(|minor| Money::new(minor, currency)),
            provider_status: Some(provider_status),
            occurred_at_ms: Some(self.created),
        })
    }
}

/// The parts of a `Dummy-Signature: t=<unix seconds>,v1=<hex>` header.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader<'a> {
    /// The timestamp exactly as sent: it is part of the signed payload, so
    /// it must not be re-formatted.
    pub timestamp: &'a str,
    pub timestamp_secs: u64,
    /// Every `v1` value (a PSP rotating its secret may send several).
    pub signatures: Vec<&'a str>,
}

/// Parses a `Dummy-Signature` header; `None` when malformed.
pub fn parse_signature_header(header: &str) -> Option<SignatureHeader<'_>> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=')? {
            ("t", t) => timestamp = Some(t),
            ("v1", sig) => signatures.push(sig),
            // Unknown schemes (a future v2) are ignored.
            _ => {}
        }
    }
    let timestamp = timestamp?;
    if signatures.is_empty() {
        return None;
    }
    Some(SignatureHeader {
        timestamp,
        timestamp_secs: timestamp.parse().ok()?,
        signatures,
    })
}
