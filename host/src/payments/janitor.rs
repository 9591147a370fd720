//! The janitor: every unknown outcome settles by itself.
//!
//! A payment whose authorization answer was lost stays `processing`; a
//! capture or cancellation the provider accepted waits for a notification
//! that may never come; a refund whose answer was lost stays `pending`.
//! Every node runs this reconciler. Each tick it takes the payments due for
//! another look (`reconcile_after`), claims each one through the payment's
//! lock (the same lease row every operation takes, so two nodes never work
//! on one payment and a busy payment is simply skipped), asks the connector
//! (`sync`; a refund is sent again under its own key, which the provider
//! dedupes) and records the attempt as an event with cause `janitor`.
//! Attempts back off exponentially. Past the provider's window (per
//! connector, counted from the payment's creation) an outcome still unknown
//! is given up with a clear `failure_code` rather than left forever.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{
    apply_outcome, capture_attempts, connector_error, event, status_of, PaymentError,
    PaymentStatus, Payments,
};
use crate::crypto::{now_rfc3339, now_unix_ms, parse_rfc3339_ms};
use crate::store::models::{PaymentRecord, RefundRecord};

/// How many payments (and refunds) one tick looks at, at most.
const BATCH: i64 = 50;

/// `failure_code` of an outcome the provider never settled in its window.
pub const OUTCOME_UNKNOWN_EXPIRED: &str = "outcome_unknown_expired";

#[derive(Debug, Clone)]
pub struct JanitorSettings {
    /// Off: nothing is reconciled in the background (sync by hand only).
    pub enabled: bool,
    /// How often each node looks for due work.
    pub interval: Duration,
    /// How long after an outcome became unknown the first look comes (the
    /// provider's answer or notification usually settles it before).
    pub grace: Duration,
    /// The longest pause between two looks at one payment.
    pub max_backoff: Duration,
    /// How long after its creation a payment's unknown outcome is given up.
    pub window: Duration,
    /// The same, per connector (plugin id), where the provider differs.
    pub windows: BTreeMap<String, Duration>,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(5),
            grace: Duration::from_secs(60),
            max_backoff: Duration::from_secs(3600),
            window: Duration::from_secs(7 * 24 * 3600),
            windows: BTreeMap::new(),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl JanitorSettings {
    pub fn grace_ms(&self) -> i64 {
        ms(self.grace)
    }

    fn window_for(&self, connector: &str) -> Duration {
        self.windows.get(connector).copied().unwrap_or(self.window)
    }

    /// Keeps `reconcile_after` in step with the payment about to be
    /// written: set (after the grace) when its outcome is unsettled; at the
    /// time of its next timed work (a delayed capture, the end of its
    /// authorization) when settled; cleared when nothing is left to do.
    pub(super) fn schedule(&self, current: &PaymentRecord, next: &mut PaymentRecord, now_ms: i64) {
        if unsettled(next).is_some() {
            if next.reconcile_after.is_none() {
                next.reconcile_after = Some(now_ms + self.grace_ms());
            }
            return;
        }
        let Some((_, at)) = timed_work(next, self.grace_ms()) else {
            next.reconcile_after = None;
            next.reconcile_attempts = 0;
            return;
        };
        // A look that failed keeps its backoff; anything else (the outcome
        // just settled, the work changed) starts from the work's own time.
        let backing_off = unsettled(current).is_none()
            && next.reconcile_attempts > 0
            && next.reconcile_after.is_some_and(|after| after > at);
        if !backing_off {
            next.reconcile_attempts = 0;
            next.reconcile_after = Some(at);
        }
    }

    /// The pause before look number `attempts + 1`.
    fn backoff_ms(&self, attempts: i32) -> i64 {
        let factor = 1_i64 << attempts.clamp(0, 20);
        self.grace_ms()
            .saturating_mul(factor)
            .min(ms(self.max_backoff))
    }
}

/// What a payment's outcome waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unsettled {
    AuthorizationOutcome,
    ShopperAction,
    Capture,
    Cancel,
}

impl Unsettled {
    /// Its name in events and in the reconciliation listing.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationOutcome => "authorization_outcome_unknown",
            Self::ShopperAction => "shopper_action_pending",
            Self::Capture => "capture_pending",
            Self::Cancel => "cancel_pending",
        }
    }
}

/// What is unsettled about a payment, if anything.
pub(super) fn unsettled(p: &PaymentRecord) -> Option<Unsettled> {
    match status_of(p) {
        PaymentStatus::Processing => Some(Unsettled::AuthorizationOutcome),
        PaymentStatus::RequiresAction => Some(Unsettled::ShopperAction),
        _ if p.amount_capture_pending > 0 => Some(Unsettled::Capture),
        _ if p.cancel_pending => Some(Unsettled::Cancel),
        _ => None,
    }
}

/// Work that falls due at a time on a settled, authorized payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TimedWork {
    /// An `automatic_delayed` capture the host holds.
    DelayedCapture,
    /// The provider's own delayed capture should have happened: ask.
    ProviderCaptureCheck,
    /// The authorization lapses: confirm with the provider, then cancel.
    AuthorizationExpiry,
}

impl TimedWork {
    fn as_str(self) -> &'static str {
        match self {
            Self::DelayedCapture => "delayed_capture",
            Self::ProviderCaptureCheck => "provider_capture_check",
            Self::AuthorizationExpiry => "authorization_expiry",
        }
    }
}

/// The next timed work of a payment and when it falls due (Unix ms).
pub(super) fn timed_work(p: &PaymentRecord, grace_ms: i64) -> Option<(TimedWork, i64)> {
    if status_of(p) != PaymentStatus::RequiresCapture {
        return None;
    }
    match p.delayed_capture() {
        Some(delayed) if !delayed.done => {
            let at = delayed.at_ms?;
            Some(if delayed.by_provider {
                // The provider captures; it lets the host know (a
                // notification, a sync) a little after.
                (TimedWork::ProviderCaptureCheck, at.saturating_add(grace_ms))
            } else {
                (TimedWork::DelayedCapture, at)
            })
        }
        // A capture the provider holds is never "expired" by the host: the
        // money may have moved; only the provider's word settles it.
        Some(delayed) if delayed.by_provider => None,
        _ => p
            .capture_before_ms
            .map(|before| (TimedWork::AuthorizationExpiry, before)),
    }
}

/// `failure_code` of an authorization that lapsed before any capture.
pub const AUTHORIZATION_EXPIRED: &str = "authorization_expired";

/// One line of the operator's view of what the janitor waits on.
#[derive(Debug, Serialize)]
pub struct ReconciliationItem {
    pub object: &'static str,
    pub id: String,
    pub payment_id: String,
    pub connector: String,
    pub status: String,
    pub waiting_for: &'static str,
    pub attempts: i32,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub payments_examined: usize,
    pub refunds_examined: usize,
    pub expired_idempotency_keys: usize,
}

impl Payments {
    /// Runs the janitor on this node until the returned task is aborted.
    pub fn spawn_janitor(self: &std::sync::Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if !self.janitor.enabled {
            return None;
        }
        let payments = self.clone();
        Some(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(payments.janitor.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match payments.reconcile_once().await {
                    Ok(report) if report != TickReport::default() => {
                        tracing::debug!(?report, "janitor tick");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "janitor tick failed"),
                }
            }
        }))
    }

    /// One pass over the work due now.
    pub async fn reconcile_once(&self) -> Result<TickReport, PaymentError> {
        let now = now_unix_ms();
        let mut report = TickReport {
            expired_idempotency_keys: self.store.purge_expired_idempotency(now).await?,
            ..TickReport::default()
        };
        for due in self.store.payments_to_reconcile(now, BATCH).await? {
            // Another node (or request) holds it: it is being worked on.
            // (A payment deleted meanwhile is simply not due any more.)
            let Ok(Some(locked)) = self.lock_within(&due.id, Duration::ZERO).await else {
                continue;
            };
            let payment = locked.payment.clone();
            if payment.reconcile_after.is_none_or(|at| at > now) {
                continue;
            }
            report.payments_examined += 1;
            if let Err(e) = self.reconcile_payment(payment).await {
                tracing::warn!(payment = %due.id, error = %e, "janitor could not settle a payment");
            }
        }
        let grace = self.janitor.grace_ms();
        for refund in self.store.pending_refunds(BATCH).await? {
            let last_touched = parse_rfc3339_ms(&refund.updated_at).unwrap_or(0);
            if last_touched + grace > now {
                continue;
            }
            let Ok(Some(_locked)) = self.lock_within(&refund.payment_id, Duration::ZERO).await
            else {
                continue;
            };
            report.refunds_examined += 1;
            let id = refund.id.clone();
            if let Err(e) = self.reconcile_refund(refund).await {
                tracing::warn!(refund = %id, error = %e, "janitor could not settle a refund");
            }
        }
        Ok(report)
    }

    /// Asks the provider about a payment whose outcome is unsettled, under
    /// its lock, and writes what it learnt (or gives up past the window).
    async fn reconcile_payment(&self, payment: PaymentRecord) -> Result<(), PaymentError> {
        let mut payment = payment;
        let Some(unsettled_now) = unsettled(&payment) else {
            if let Some((work, at)) = timed_work(&payment, self.janitor.grace_ms()) {
                if at <= now_unix_ms() {
                    return self.do_timed_work(payment, work).await;
                }
            }
            let settled = payment.clone();
            return self.save(&mut payment, settled, Vec::new()).await;
        };
        // Captures whose outcome is unknown are sent again under their own
        // key first: the provider answers the first one, never makes a
        // second. (Their errors are recorded as events; the sync follows.)
        if payment.amount_capture_pending > 0 {
            let events = self.store.list_payment_events(&payment.id).await?;
            let unsettled: Vec<_> = capture_attempts(&events)
                .into_iter()
                .filter(|a| !a.settled)
                .collect();
            if !unsettled.is_empty() {
                let resolved = self.account_by_id(&payment.connector_account_id).await?;
                for attempt in unsettled {
                    if let Err(e) = self
                        .send_capture(
                            &mut payment,
                            &resolved,
                            attempt,
                            "janitor",
                            super::Sending::Again(None),
                        )
                        .await
                    {
                        tracing::info!(payment = %payment.id, error = %e, "capture still unsettled");
                    }
                }
            }
        }
        let waiting_for = unsettled_now.as_str();
        let attempt = payment.reconcile_attempts + 1;
        let from = status_of(&payment);
        let failed_attempt = |error: PaymentError| {
            let e = event(
                &payment,
                0,
                Some(from),
                from,
                "janitor",
                json!({"attempt": attempt, "waiting_for": waiting_for, "error": error.to_string()}),
            );
            (payment.clone(), vec![e])
        };
        let (mut next, mut events) = match self.ask_provider(&payment).await {
            Ok(Ok(outcome)) => {
                let provider_status = outcome.provider_status.clone();
                let (next, events) = apply_outcome(&payment, outcome, "janitor");
                let mut events = events;
                if events.is_empty() {
                    events.push(event(
                        &payment,
                        0,
                        Some(from),
                        from,
                        "janitor",
                        json!({"attempt": attempt, "waiting_for": waiting_for, "provider_status": provider_status}),
                    ));
                }
                (next, events)
            }
            // Still unknown: the attempt is recorded, nothing changes.
            Ok(Err(error)) => failed_attempt(connector_error(error)),
            Err(error) => failed_attempt(error),
        };
        let now = now_unix_ms();
        let created = parse_rfc3339_ms(&payment.created_at).unwrap_or(now);
        let window = ms(self.janitor.window_for(&payment.connector));
        if let Some(still) = unsettled(&next) {
            if now >= created.saturating_add(window) {
                give_up(&payment, &mut next, &mut events, still);
            }
        }
        if unsettled(&next).is_some() {
            next.reconcile_attempts = attempt;
            next.reconcile_after = Some(now + self.janitor.backoff_ms(attempt));
        }
        self.save(&mut payment, next, events).await
    }

    /// A delayed capture falling due, a provider's delayed capture to
    /// confirm, or an authorization lapsing.
    async fn do_timed_work(
        &self,
        mut payment: PaymentRecord,
        work: TimedWork,
    ) -> Result<(), PaymentError> {
        let attempt = payment.reconcile_attempts + 1;
        let from = status_of(&payment);
        let retry_later = |payment: &PaymentRecord, error: String| {
            let mut next = payment.clone();
            next.reconcile_attempts = attempt;
            next.reconcile_after = Some(now_unix_ms() + self.janitor.backoff_ms(attempt));
            let e = event(
                payment,
                0,
                Some(from),
                from,
                "janitor",
                json!({"attempt": attempt, "work": work.as_str(), "error": error}),
            );
            (next, vec![e])
        };
        match work {
            TimedWork::DelayedCapture => {
                let key = super::psp_idempotency_key(&payment.id, "capture-delayed", None);
                let result = match self.account_by_id(&payment.connector_account_id).await {
                    Ok(resolved) => {
                        self.capture_locked(
                            &mut payment,
                            &resolved,
                            None,
                            true,
                            Some(key),
                            "janitor",
                            None,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                // Sent: whatever came back (done, pending, refused, unknown)
                // is now the capture's own business (a pending or unknown
                // capture is followed up like any other).
                let mut next = payment.clone();
                if let Some(mut delayed) = next.delayed_capture() {
                    delayed.done = true;
                    next.set_delayed_capture(Some(delayed));
                }
                let mut events = Vec::new();
                if let Err(error) = &result {
                    tracing::warn!(payment = %payment.id, %error, "delayed capture not made");
                    events.push(event(
                        &payment,
                        0,
                        Some(status_of(&payment)),
                        status_of(&payment),
                        "janitor",
                        json!({"work": work.as_str(), "error": error.to_string()}),
                    ));
                }
                self.save(&mut payment, next, events).await
            }
            // Both ask the provider first; what it says about the capture
            // (made, canceled) settles the payment either way.
            TimedWork::ProviderCaptureCheck | TimedWork::AuthorizationExpiry => {
                let expiry = work == TimedWork::AuthorizationExpiry;
                let (next, events) = match self.ask_provider(&payment).await {
                    Ok(Ok(outcome)) => {
                        let (next, events) = apply_outcome(&payment, outcome, "janitor");
                        if status_of(&next) != PaymentStatus::RequiresCapture {
                            (next, events)
                        } else if expiry {
                            expire(&payment, next)
                        } else {
                            retry_later(
                                &next,
                                "the provider does not report the capture yet".into(),
                            )
                        }
                    }
                    // Nothing to ask: the declared validity is the word.
                    Ok(Err(error))
                        if expiry
                            && error.kind
                                == crate::runtime::bindings::types::ErrorKind::Unsupported =>
                    {
                        expire(&payment, payment.clone())
                    }
                    Ok(Err(error)) => retry_later(&payment, connector_error(error).to_string()),
                    Err(error) => retry_later(&payment, error.to_string()),
                };
                self.save(&mut payment, next, events).await
            }
        }
    }

    /// Sends a pending refund again under its own key (the provider answers
    /// the first one, never makes a second) or, past the window, gives it up.
    async fn reconcile_refund(&self, refund: RefundRecord) -> Result<(), PaymentError> {
        let Some(mut payment) = self.store.get_payment(&refund.payment_id).await? else {
            return Ok(());
        };
        let Some(refund) = self.store.get_refund(&refund.id).await? else {
            return Ok(());
        };
        if refund.status != "pending" {
            return Ok(());
        }
        let now = now_unix_ms();
        let created = parse_rfc3339_ms(&refund.created_at).unwrap_or(now);
        if now >= created.saturating_add(ms(self.janitor.window_for(&payment.connector))) {
            let status = status_of(&payment);
            let mut next = payment.clone();
            next.amount_refunded -= refund.amount;
            let mut failed = refund.clone();
            failed.status = "failed".into();
            failed.failure_code = Some(OUTCOME_UNKNOWN_EXPIRED.into());
            failed.failure_message = Some(
                "the provider never confirmed this refund within its window; it is released".into(),
            );
            failed.updated_at = now_rfc3339();
            let e = event(
                &payment,
                0,
                Some(status),
                status,
                "janitor",
                json!({"refund": refund.id, "status": "failed", "failure_code": OUTCOME_UNKNOWN_EXPIRED}),
            );
            self.write(&mut payment, next, vec![e], vec![failed], None, None)
                .await?;
            return Ok(());
        }
        let resolved = self.account_by_id(&payment.connector_account_id).await?;
        self.send_refund(
            &mut payment,
            &resolved,
            refund,
            "janitor",
            super::Sending::Again(None),
        )
        .await?;
        Ok(())
    }

    /// What the janitor waits on, for operators.
    pub async fn reconciliation_backlog(
        &self,
        limit: i64,
    ) -> Result<(Vec<ReconciliationItem>, usize), PaymentError> {
        let mut items = Vec::new();
        let now = now_unix_ms();
        for p in self.store.unsettled_payments(limit).await? {
            // Timed work (a delayed capture, the end of an authorization) is
            // the ordinary life of every manual payment: listed only once it
            // is overdue (the janitor has tried and failed).
            let waiting_for = match unsettled(&p) {
                Some(what) => what.as_str(),
                None => match timed_work(&p, self.janitor.grace_ms()) {
                    Some((work, at)) if at <= now && p.reconcile_attempts > 0 => work.as_str(),
                    _ => continue,
                },
            };
            items.push(ReconciliationItem {
                object: "payment",
                id: p.id.clone(),
                waiting_for,
                payment_id: p.id,
                connector: p.connector,
                status: p.status,
                attempts: p.reconcile_attempts,
                next_attempt_at: p.reconcile_after.map(crate::crypto::format_unix_ms),
                created_at: p.created_at,
            });
        }
        for r in self.store.pending_refunds(limit).await? {
            let connector = self
                .store
                .get_payment(&r.payment_id)
                .await?
                .map(|p| p.connector)
                .unwrap_or_default();
            let next = parse_rfc3339_ms(&r.updated_at)
                .map(|t| crate::crypto::format_unix_ms(t + self.janitor.grace_ms()));
            items.push(ReconciliationItem {
                object: "refund",
                id: r.id,
                payment_id: r.payment_id,
                connector,
                status: r.status,
                waiting_for: "refund_outcome_unknown",
                attempts: 0,
                next_attempt_at: next,
                created_at: r.created_at,
            });
        }
        let stale_claims = self
            .store
            .stale_idempotency_claims(now_unix_ms(), limit)
            .await?
            .len();
        Ok((items, stale_claims))
    }
}

/// The authorization lapsed with nothing captured: the payment is canceled
/// (the provider released the funds), saying why.
fn expire(
    payment: &PaymentRecord,
    mut next: PaymentRecord,
) -> (PaymentRecord, Vec<crate::store::models::PaymentEventRecord>) {
    let from = status_of(payment);
    next.status = PaymentStatus::Canceled.as_str().to_string();
    next.failure_code = Some(AUTHORIZATION_EXPIRED.into());
    next.failure_message = Some(format!(
        "the authorization lapsed at {} without a capture",
        crate::crypto::format_unix_ms(payment.capture_before_ms.unwrap_or_default())
    ));
    let e = event(
        payment,
        0,
        Some(from),
        PaymentStatus::Canceled,
        AUTHORIZATION_EXPIRED,
        json!({"capture_before": payment.capture_before_ms.map(crate::crypto::format_unix_ms)}),
    );
    (next, vec![e])
}

/// Past the provider's window: the outcome is given up, plainly.
fn give_up(
    payment: &PaymentRecord,
    next: &mut PaymentRecord,
    events: &mut Vec<crate::store::models::PaymentEventRecord>,
    what: Unsettled,
) {
    let from = status_of(next);
    let mut to = from;
    let mut detail = json!({"gave_up": what.as_str(), "failure_code": OUTCOME_UNKNOWN_EXPIRED});
    match what {
        Unsettled::AuthorizationOutcome | Unsettled::ShopperAction => {
            to = PaymentStatus::Failed;
            next.status = to.as_str().to_string();
            next.next_action = None;
            next.failure_code = Some(OUTCOME_UNKNOWN_EXPIRED.into());
            next.failure_message = Some(if what == Unsettled::ShopperAction {
                "the shopper never completed the provider's step within its window".into()
            } else {
                "the provider never settled this authorization within its window".into()
            });
        }
        Unsettled::Capture => {
            detail["released"] = json!(next.amount_capture_pending);
            next.amount_capture_pending = 0;
        }
        Unsettled::Cancel => next.cancel_pending = false,
    }
    events.push(event(payment, 0, Some(from), to, "janitor", detail));
}
