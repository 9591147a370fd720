//! In-memory state of the dummy PSP: charges, refunds, remembered idempotent
//! answers and pending faults.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use serde::Serialize;
use url::Url;

use super::DummyConfig;

/// Status of a charge, as the API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ChargeStatus {
    RequiresAction,
    Authorized,
    Captured,
    Refused,
    Canceled,
}

impl ChargeStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChargeStatus::RequiresAction => "requires_action",
            ChargeStatus::Authorized => "authorized",
            ChargeStatus::Captured => "captured",
            ChargeStatus::Refused => "refused",
            ChargeStatus::Canceled => "canceled",
        }
    }
}

/// A charge. Only the serialized members are part of the API; the card number
/// itself is never stored, only its last four digits.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Charge {
    pub id: String,
    pub status: ChargeStatus,
    pub amount: u64,
    pub currency: String,
    pub reference: String,
    /// The platform's own id for the payment, when it sends one: searchable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    pub amount_captured: u64,
    pub amount_refunded: u64,
    pub refusal_code: Option<String>,
    pub refusal_reason: Option<String>,
    pub redirect_url: Option<String>,
    /// How 3-D Secure went on the PSP's page: `authenticated` or `failed`
    /// (absent when the card needed none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub three_d_secure: Option<&'static str>,
    pub card_last4: String,
    /// Capture at authorization (also after 3-D Secure).
    #[serde(skip)]
    pub capture: bool,
    #[serde(skip)]
    pub return_url: Url,
    #[serde(skip)]
    pub notification_url: Option<Url>,
}

/// A refund of (part of) a charge.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Refund {
    pub id: String,
    pub charge: String,
    pub amount: u64,
    pub status: &'static str,
    pub reason: Option<String>,
}

/// A remembered successful answer to a request carrying an `Idempotency-Key`.
#[derive(Clone, Debug)]
pub(crate) struct StoredAnswer {
    /// SHA-256 over the method, path and canonical body of the first request.
    pub fingerprint: [u8; 32],
    pub status: u16,
    pub body: Vec<u8>,
}

/// How the next API calls misbehave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FaultMode {
    Timeout,
    TimeoutAfterEffect,
    Http500,
    Garbage,
}

impl FaultMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            FaultMode::Timeout => "timeout",
            FaultMode::TimeoutAfterEffect => "timeout_after_effect",
            FaultMode::Http500 => "http_500",
            FaultMode::Garbage => "garbage",
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub charges: HashMap<String, Charge>,
    pub refunds: HashMap<String, Refund>,
    pub idempotency: HashMap<String, StoredAnswer>,
    /// Pending fault and how many more calls it applies to (> 0).
    pub fault: Option<(FaultMode, u32)>,
}

impl Inner {
    /// Consumes one pending fault, if any.
    pub(crate) fn take_fault(&mut self) -> Option<FaultMode> {
        let (mode, remaining) = self.fault?;
        self.fault = if remaining > 1 {
            Some((mode, remaining - 1))
        } else {
            None
        };
        Some(mode)
    }
}

/// Everything the dummy PSP's handlers share.
pub(crate) struct DummyState {
    pub config: DummyConfig,
    /// Absolute base URL, e.g. `http://127.0.0.1:4000/dummy`.
    pub base_url: String,
    /// Path of the base URL, e.g. `/dummy`.
    pub base_path: String,
    /// Client delivering notifications (5 s timeout, no retries).
    pub http: reqwest::Client,
    inner: Mutex<Inner>,
}

impl DummyState {
    pub(crate) fn new(
        config: DummyConfig,
        base_url: String,
        base_path: String,
    ) -> std::io::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .user_agent(concat!(
                "passerelle-sandbox-dummy/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(DummyState {
            config,
            base_url,
            base_path,
            http,
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
