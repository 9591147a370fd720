//! In-memory state of the Adyen simulator: payments, modifications,
//! idempotency keys, faults, webhook endpoints.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use rand::Rng;
use serde::Serialize;

use super::AdyenConfig;

/// `resultCode` of a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum ResultCode {
    Authorised,
    Refused,
    Error,
    Cancelled,
    Received,
    RedirectShopper,
}

impl ResultCode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResultCode::Authorised => "Authorised",
            ResultCode::Refused => "Refused",
            ResultCode::Error => "Error",
            ResultCode::Cancelled => "Cancelled",
            ResultCode::Received => "Received",
            ResultCode::RedirectShopper => "RedirectShopper",
        }
    }
}

/// How 3-D Secure went for a payment, as Adyen reports it in the
/// answer's `additionalData` (the v71 document's `ResponseAdditionalDataCommon`:
/// `threeDOffered`, `threeDOfferedResponse`, `threeDAuthenticated`,
/// `threeDAuthenticatedResponse`, `liabilityShift`, `eci`, `threeDSVersion`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum ThreeDs {
    /// No authentication took place (a card outside 3-D Secure, or a
    /// payment refused before it could start); the values of the v71
    /// document's own example answer (`split-balanceplatform`).
    NotOffered,
    /// The shopper authenticated on the issuer's page.
    Authenticated,
    /// The shopper failed the authentication (or the issuer refused it).
    Failed,
}

impl ThreeDs {
    /// The `additionalData` members that report it.
    pub(crate) fn additional_data(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ThreeDs::NotOffered => &[
                ("threeDOffered", "false"),
                ("threeDOfferedResponse", "N/A"),
                ("threeDAuthenticated", "false"),
                ("threeDAuthenticatedResponse", "N/A"),
                ("liabilityShift", "false"),
                ("eci", "N/A"),
            ],
            ThreeDs::Authenticated => &[
                ("threeDOffered", "true"),
                ("threeDOfferedResponse", "Y"),
                ("threeDAuthenticated", "true"),
                ("threeDAuthenticatedResponse", "Y"),
                ("liabilityShift", "true"),
                ("eci", "05"),
                ("threeDSVersion", "2.2.0"),
            ],
            ThreeDs::Failed => &[
                ("threeDOffered", "true"),
                ("threeDOfferedResponse", "Y"),
                ("threeDAuthenticated", "false"),
                ("threeDAuthenticatedResponse", "N"),
                ("liabilityShift", "false"),
                ("eci", "N/A"),
                ("threeDSVersion", "2.2.0"),
            ],
        }
    }
}

/// A modification that later fails at the acquirer (holder names
/// `capture failed` / `refund failed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LateFailure {
    Capture,
    Refund,
}

/// A capture, cancel, refund or reversal, as notified.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Modification {
    pub psp_reference: String,
    pub event_code: &'static str,
    pub value: u64,
    pub currency: String,
    pub success: bool,
    pub reason: String,
    pub reference: Option<String>,
}

/// A payment. The card number is never stored, only its last four digits.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Payment {
    pub psp_reference: String,
    pub merchant_account: String,
    pub merchant_reference: String,
    /// In Adyen's minor units (`docs/sandbox/adyen.md`, "Amounts").
    pub value: u64,
    pub currency: String,
    /// `value` read with Adyen's decimals: `15000 IDR`, `10.50 EUR`.
    pub formatted_amount: String,
    pub result_code: ResultCode,
    pub refusal_reason: Option<String>,
    pub refusal_reason_code: Option<String>,
    pub card_summary: String,
    pub brand: &'static str,
    pub captured: u64,
    pub refunded: u64,
    pub cancelled: bool,
    /// No more captures are possible (final or partial capture without
    /// multiple partial captures, cancel, full capture).
    pub capture_closed: bool,
    pub auto_capture: bool,
    /// A delayed automatic capture (`captureDelayHours` > 0) not run yet:
    /// the hours Adyen waits before capturing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capture_delay_hours: Option<u32>,
    /// How 3-D Secure went, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub three_ds: Option<ThreeDs>,
    /// The request carried a complete `browserInfo`.
    pub browser_info: bool,
    pub return_url: String,
    pub modifications: Vec<Modification>,
    /// `MM/YYYY`.
    #[serde(skip)]
    pub expiry: String,
    /// Creation order.
    #[serde(skip)]
    pub seq: u64,
    #[serde(skip)]
    pub late_failure: Option<LateFailure>,
    /// The outcome chosen on the 3-D Secure page, applied by `/payments/details`.
    #[serde(skip)]
    pub redirect_outcome: Option<RedirectOutcome>,
    /// `/payments/details` already completed the payment (its answer).
    #[serde(skip)]
    pub details_answer: Option<serde_json::Value>,
}

/// What the shopper did on the 3-D Secure page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RedirectOutcome {
    Approved,
    Failed,
    Cancelled,
}

/// A remembered successful answer to a request with an `Idempotency-Key`.
#[derive(Clone, Debug)]
pub(crate) struct StoredAnswer {
    pub fingerprint: [u8; 32],
    pub status: u16,
    pub body: Vec<u8>,
}

pub(crate) use crate::faults::FaultMode as Fault;

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub payments: HashMap<String, Payment>,
    /// `redirectResult` → pspReference of the payment.
    pub redirect_results: HashMap<String, String>,
    pub idempotency: HashMap<String, StoredAnswer>,
    /// Pending fault per merchant account, and how many more uses (> 0).
    pub faults: HashMap<String, (Fault, u32)>,
    /// Webhook URL per merchant account (overrides the config).
    pub webhooks: HashMap<String, String>,
    /// "Multiple partial captures" per merchant account (overrides the
    /// config's `multiple_partial_captures`).
    pub multiple_partial_captures: HashMap<String, bool>,
    /// A notification held back by `notification_out_of_order`, with its generation.
    pub held: Option<(u64, super::notify::Outgoing)>,
    pub held_generation: u64,
    /// Every new payment and modification pspReference passes the Luhn
    /// check (`POST /_sandbox/references`), so that a test can count on a
    /// reference that looks like a card number.
    pub luhn_references: bool,
}

impl Inner {
    /// A pspReference for a new payment or modification, honouring
    /// [`Inner::luhn_references`].
    pub(crate) fn new_psp_reference(&self) -> String {
        if self.luhn_references {
            luhn_psp_reference()
        } else {
            psp_reference()
        }
    }

    /// Consumes one pending fault of `account` if it is of the wanted kind.
    pub(crate) fn take_fault(&mut self, account: &str, notification: bool) -> Option<Fault> {
        let (fault, remaining) = *self.faults.get(account)?;
        if fault.is_notification() != notification {
            return None;
        }
        if remaining > 1 {
            self.faults
                .insert(account.to_owned(), (fault, remaining - 1));
        } else {
            self.faults.remove(account);
        }
        Some(fault)
    }
}

pub(crate) struct AdyenState {
    pub config: AdyenConfig,
    /// e.g. `http://127.0.0.1:4000/adyen`
    pub base_url: String,
    /// e.g. `/adyen`
    pub base_path: String,
    pub http: reqwest::Client,
    pub validator: super::validate::Validator,
    inner: Mutex<Inner>,
}

impl AdyenState {
    pub(crate) fn new(
        config: AdyenConfig,
        base_url: String,
        base_path: String,
        validator: super::validate::Validator,
    ) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent("Adyen HttpClient 1.0 (passerelle-sandbox)")
            .build()
            .map_err(std::io::Error::other)?;
        Ok(AdyenState {
            config,
            base_url,
            base_path,
            http,
            validator,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Whether `account` has Adyen's "multiple partial captures" enabled.
    pub(crate) fn multiple_partial_captures(&self, inner: &Inner, account: &str) -> bool {
        inner
            .multiple_partial_captures
            .get(account)
            .copied()
            .unwrap_or(self.config.multiple_partial_captures)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A 16-digit PSP reference, as Adyen's test platform issues them
/// (`8815658961765250`): random digits, so about one in ten passes the Luhn
/// check like a card number would.
pub(crate) fn psp_reference() -> String {
    let mut rng = rand::rng();
    let mut digits: Vec<u8> = (0..16).map(|_| rng.random_range(0..10u8)).collect();
    // No leading zero: the reference reads as a 16-digit number.
    digits[0] = rng.random_range(1..10u8);
    to_text(&digits)
}

/// A 16-digit PSP reference that passes the Luhn check.
pub(crate) fn luhn_psp_reference() -> String {
    let mut digits: Vec<u8> = psp_reference().bytes().take(15).map(|b| b - b'0').collect();
    let check = crate::luhn::check_digit(&digits);
    digits.push(check);
    to_text(&digits)
}

fn to_text(digits: &[u8]) -> String {
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::luhn::is_valid as luhn_valid;

    #[test]
    fn references_are_sixteen_digits() {
        for _ in 0..100 {
            let psp = psp_reference();
            assert_eq!(psp.len(), 16, "{psp}");
            assert!(psp.bytes().all(|b| b.is_ascii_digit()), "{psp}");
            assert_ne!(psp.as_bytes()[0], b'0', "{psp}");
        }
    }

    #[test]
    fn luhn_references_pass_luhn() {
        // Known card numbers check the check digit itself.
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("4000000000003220"));
        assert!(!luhn_valid("4111111111111112"));
        for _ in 0..100 {
            let psp = luhn_psp_reference();
            assert_eq!(psp.len(), 16, "{psp}");
            assert!(psp.bytes().all(|b| b.is_ascii_digit()), "{psp}");
            assert!(luhn_valid(&psp), "{psp}");
        }
    }

    #[test]
    fn the_switch_picks_the_kind_of_reference() {
        let mut inner = Inner {
            luhn_references: true,
            ..Inner::default()
        };
        for _ in 0..20 {
            assert!(luhn_valid(&inner.new_psp_reference()));
        }
        inner.luhn_references = false;
        // Random digits: a tenth pass Luhn, so 100 of them cannot all pass.
        assert!((0..100).any(|_| !luhn_valid(&inner.new_psp_reference())));
    }
}
