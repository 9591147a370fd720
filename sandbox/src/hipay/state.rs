//! In-memory state of the HiPay simulator: vault tokens, orders and their
//! transactions, hosted pages, 3-D Secure forwards and pending faults.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Mutex, MutexGuard},
};

use url::Url;

use super::{cards::Scenario, notify::Notifier, sign::Algorithm, HipayConfig};

/// A tokenized card. The card number itself is never stored: only its last
/// four digits and the scenario it selects.
#[derive(Clone, Debug)]
pub(crate) struct StoredCard {
    pub token: String,
    pub request_id: String,
    pub card_hash: String,
    pub card_id: String,
    pub brand: &'static str,
    pub last4: String,
    pub holder: String,
    pub expiry_month: String,
    pub expiry_year: String,
    pub multi_use: bool,
    pub scenario: Scenario,
}

impl StoredCard {
    /// The masked number, as HiPay shows it in redirect parameters.
    pub fn pan(&self) -> String {
        format!("************{}", self.last4)
    }
}

/// `state` of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxState {
    Completed,
    Forwarding,
    Pending,
    Declined,
    Error,
}

impl TxState {
    pub fn as_str(self) -> &'static str {
        match self {
            TxState::Completed => "completed",
            TxState::Forwarding => "forwarding",
            TxState::Pending => "pending",
            TxState::Declined => "declined",
            TxState::Error => "error",
        }
    }
}

/// Status codes the simulator produces, with HiPay's messages.
pub(crate) fn status_message(status: u16) -> &'static str {
    match status {
        109 => "Authentication Failed",
        111 => "Denied",
        112 => "Authorized and Pending",
        113 => "Refused",
        115 => "Cancelled",
        116 => "Authorized",
        117 => "Capture Requested",
        118 => "Captured",
        119 => "Partially Captured",
        124 => "Refund Requested",
        125 => "Refunded",
        126 => "Partially Refunded",
        140 => "Authentication requested",
        141 => "Authenticated",
        142 => "Authorization Requested",
        163 => "Authorization Refused",
        175 => "Authorization Cancellation requested",
        177 => "Challenge Requested",
        178 => "Soft Declined",
        _ => "",
    }
}

/// The merchant's order as sent with `POST /v1/order` or `/v1/hpayment`.
#[derive(Clone, Debug, Default)]
pub(crate) struct OrderInfo {
    pub id: String,
    pub amount: u64,
    pub currency: String,
    pub decimals: u32,
    pub shipping: String,
    pub tax: String,
    pub description: String,
    pub cid: String,
    pub language: String,
    pub email: String,
    pub ipaddr: String,
    pub date_created: String,
    /// `Authorization` or `Sale`.
    pub operation: String,
    /// `authentication_indicator`: 0 (the documented default) bypasses
    /// 3-D Secure, 1 asks for it when available, 2 makes it mandatory.
    pub authentication_indicator: u8,
    pub urls: ReturnUrls,
    pub notify_url: Option<Url>,
    pub cdata: Vec<(String, String)>,
}

/// Where the shopper's browser goes back to.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReturnUrls {
    pub accept: Option<Url>,
    pub decline: Option<Url>,
    pub pending: Option<Url>,
    pub exception: Option<Url>,
    pub cancel: Option<Url>,
}

/// Outcome of 3-D Secure, as reported in `threeDSecure`.
#[derive(Clone, Debug, Default)]
pub(crate) struct ThreeDs {
    pub enrollment_status: &'static str,
    pub enrollment_message: &'static str,
    pub authentication_status: &'static str,
    pub authentication_message: &'static str,
    pub eci: &'static str,
}

/// A maintenance request as received (for `/_sandbox` inspection): the
/// amount exactly as sent, `None` when the request had none (a full
/// operation).
#[derive(Clone, Debug)]
pub(crate) struct MaintenanceRecord {
    pub operation: String,
    pub operation_id: Option<String>,
    pub amount: Option<String>,
}

/// The last maintenance operation sent with an `operation_id`, echoed in
/// notifications as `operation[...]` (HiPay's notification fields).
#[derive(Clone, Debug)]
pub(crate) struct LastOperation {
    pub kind: String,
    pub id: String,
    /// HiPay's own reference of the operation.
    pub reference: String,
    /// What the operation moved, in minor units.
    pub amount: u64,
    pub date: String,
}

/// A payment attempt of an order.
#[derive(Clone, Debug)]
pub(crate) struct Transaction {
    pub reference: String,
    pub account: String,
    pub order: OrderInfo,
    pub attempt_id: u32,
    pub payment_product: String,
    pub card: StoredCard,
    pub state: TxState,
    pub status: u16,
    pub reason: Option<(String, String)>,
    pub authorized: u64,
    pub captured: u64,
    pub refunded: u64,
    pub authorization_code: String,
    pub date_created: String,
    pub date_updated: String,
    pub date_authorized: String,
    pub forward_url: Option<String>,
    pub eci: String,
    pub three_ds: ThreeDs,
    pub fraud_result: &'static str,
    pub fraud_review: &'static str,
    pub cancelled: bool,
    /// Every maintenance request received, oldest first.
    pub maintenance: Vec<MaintenanceRecord>,
    pub last_operation: Option<LastOperation>,
}

impl Transaction {
    pub fn message(&self) -> &'static str {
        status_message(self.status)
    }

    pub fn amount(&self, minor: u64) -> String {
        super::money::format(minor, self.order.decimals)
    }
}

/// State of a hosted payment page.
#[derive(Clone, Debug)]
pub(crate) struct HostedPage {
    pub id: String,
    pub account: String,
    pub order: OrderInfo,
    /// The transaction paying it, once the shopper paid.
    pub transaction: Option<String>,
    pub cancelled: bool,
}

pub(crate) use crate::faults::FaultMode;

/// Faults pending for an account.
#[derive(Clone, Debug)]
pub(crate) struct PendingFault {
    pub mode: FaultMode,
    pub remaining: u32,
    /// Only requests whose path (under the simulator's prefix) starts with
    /// this take the fault, e.g. `/gateway/v1/maintenance/`.
    pub path_prefix: Option<String>,
}

/// What request validation did, for `GET /_sandbox/validation`.
#[derive(Default)]
pub(crate) struct ValidationLog {
    /// Requests checked, by operation ("POST /v1/order").
    pub checked: BTreeMap<&'static str, u64>,
    /// The latest refusals, oldest first (at most [`MAX_VIOLATIONS_KEPT`]).
    pub violations: VecDeque<String>,
}

/// How many refusals `/_sandbox/validation` keeps.
pub(crate) const MAX_VIOLATIONS_KEPT: usize = 50;

impl ValidationLog {
    pub fn record(&mut self, operation: &'static str, violation: Option<String>) {
        *self.checked.entry(operation).or_insert(0) += 1;
        if let Some(v) = violation {
            if self.violations.len() == MAX_VIOLATIONS_KEPT {
                self.violations.pop_front();
            }
            self.violations.push_back(format!("{operation}: {v}"));
        }
    }
}

/// Everything behind the lock.
#[derive(Default)]
pub(crate) struct Inner {
    pub tokens: HashMap<String, StoredCard>,
    pub transactions: HashMap<String, Transaction>,
    /// Order id → its transactions' references, oldest first.
    pub orders: HashMap<String, Vec<String>>,
    /// 3-D Secure forward id → transaction reference.
    pub forwards: HashMap<String, String>,
    pub hosted: HashMap<String, HostedPage>,
    /// Account → its pending faults.
    pub faults: HashMap<String, PendingFault>,
    pub validation: ValidationLog,
}

impl Inner {
    /// Consumes one pending fault of `account` of the wanted kind, for a
    /// request to `path` (`None` for a notification).
    pub fn take_fault(
        &mut self,
        account: &str,
        notification: bool,
        path: Option<&str>,
    ) -> Option<FaultMode> {
        let entry = self.faults.get_mut(account)?;
        if entry.mode.is_notification() != notification {
            return None;
        }
        if let (Some(prefix), Some(path)) = (&entry.path_prefix, path) {
            if !path.starts_with(prefix.as_str()) {
                return None;
            }
        }
        let mode = entry.mode;
        entry.remaining = entry.remaining.saturating_sub(1);
        if entry.remaining == 0 {
            self.faults.remove(account);
        }
        Some(mode)
    }
}

/// Shared state of a running simulator.
pub(crate) struct HipayState {
    pub config: HipayConfig,
    pub algorithm: Algorithm,
    /// `http://127.0.0.1:PORT/hipay`
    pub base_url: String,
    pub notifier: Notifier,
    /// HiPay's documents, when found (validation by `crate::openapi`).
    pub spec: Option<crate::openapi::ApiSpec>,
    inner: Mutex<Inner>,
}

impl HipayState {
    pub fn new(
        config: HipayConfig,
        base_url: String,
        spec: Option<crate::openapi::ApiSpec>,
    ) -> std::io::Result<Self> {
        let algorithm = Algorithm::parse(&config.signature_algorithm).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "hipay: unknown signature_algorithm {:?} (sha1, sha256 or sha512)",
                    config.signature_algorithm
                ),
            )
        })?;
        Ok(HipayState {
            config,
            algorithm,
            base_url,
            notifier: Notifier::new()?,
            spec,
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The state, even if a panicking thread poisoned the lock.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
