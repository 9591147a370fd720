//! Maintenance operations this connector sent, remembered under the host's
//! idempotency key so that a repeat can tell whether the first one already
//! happened at HiPay.
//!
//! HiPay has no idempotency key: gateway.yaml describes `operation_id` as
//! the "Operation merchant ID. This value will be returned to merchant with
//! the notifications related to this operation", and nothing deduplicates
//! on it. The host sends a capture or refund again under the same key when
//! its outcome is unknown (a timeout, a lost answer, the janitor). Before a
//! capture or refund the connector reads the transaction anyway; it keeps
//! what it read (HiPay's totals before the operation) in the per-account
//! cache. When the same key comes back, the totals HiPay shows now say
//! whether the operation moved them, and the operation is sent again only
//! when nothing moved.
//!
//! The cache is the host's: in memory, per node, at most a day, and
//! bounded. Without the entry (another node, a restart, eviction) a repeat
//! looks like a first attempt and is sent again (docs/connectors/hipay.md,
//! "Not supported").

use passerelle_connector_sdk::{cache, crypto};
use serde::{Deserialize, Serialize};

/// The host keeps cache entries at most a day; retries come within minutes
/// (the janitor's first look is a minute after the unknown outcome).
const TTL_SECONDS: u32 = 24 * 3600;

/// A capture or refund as it was about to be sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentOperation {
    /// `capture` or `refund`.
    pub operation: String,
    /// HiPay's transaction reference.
    pub transaction: String,
    /// The amount of the operation, in minor units.
    pub amount: u64,
    /// HiPay's captured and refunded totals just before it was sent.
    pub captured_before: u64,
    pub refunded_before: u64,
    /// HiPay's transaction status just before it was sent.
    pub status_before: String,
}

/// Where a repeated operation stands, from HiPay's totals now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The totals moved by exactly the operation's amount: it happened.
    Done,
    /// The totals did not move, but HiPay shows the operation requested
    /// (117 capture requested, 124 refund requested) where it did not
    /// before: it is under way.
    Requested,
    /// Nothing moved: it did not happen, send it again.
    NotDone,
    /// The totals moved by another amount (other operations in between):
    /// sending again could do it twice, so it is left to HiPay's
    /// notification or a sync.
    Unclear,
}

impl SentOperation {
    /// What HiPay's totals now (`captured`, `refunded`, `status`) say about
    /// this operation.
    pub fn progress(&self, captured: u64, refunded: u64, status: &str) -> Progress {
        let (before, now, requested) = match self.operation.as_str() {
            "capture" => (self.captured_before, captured, "117"),
            _ => (self.refunded_before, refunded, "124"),
        };
        if now == before.saturating_add(self.amount) {
            Progress::Done
        } else if now == before {
            if status == requested && self.status_before != requested {
                Progress::Requested
            } else {
                Progress::NotDone
            }
        } else {
            Progress::Unclear
        }
    }
}

fn cache_key(idempotency_key: &str) -> String {
    let digest = crypto::hex_encode(crypto::sha256(idempotency_key.as_bytes()));
    format!("hipay-op:{}", &digest[..32])
}

/// The operation sent earlier under `idempotency_key`, if it is the same
/// operation (kind, transaction and amount) as `about_to_send`.
pub fn recall(idempotency_key: &str, about_to_send: &SentOperation) -> Option<SentOperation> {
    let text = cache::get(&cache_key(idempotency_key))?;
    let earlier: SentOperation = serde_json::from_str(&text).ok()?;
    let same = earlier.operation == about_to_send.operation
        && earlier.transaction == about_to_send.transaction
        && earlier.amount == about_to_send.amount;
    same.then_some(earlier)
}

/// Remembers an operation before it is sent.
pub fn remember(idempotency_key: &str, operation: &SentOperation) {
    if let Ok(text) = serde_json::to_string(operation) {
        cache::set(&cache_key(idempotency_key), &text, TTL_SECONDS);
    }
}
