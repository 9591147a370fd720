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
    pub value: u64,
    pub currency: String,
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
    /// A notification held back by `notification_out_of_order`, with its generation.
    pub held: Option<(u64, super::notify::Outgoing)>,
    pub held_generation: u64,
}

impl Inner {
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

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A 16-character PSP reference (upper-case letters and digits).
pub(crate) fn psp_reference() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}
