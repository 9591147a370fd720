//! What the API shows of payments, refunds and events.

use serde::Serialize;

use super::state::PaymentStatus;
use crate::store::models::{PaymentEventRecord, PaymentRecord, RefundRecord};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Payment)]
pub struct PaymentView {
    #[schema(example = "pay_5a1c0f2e")]
    pub id: String,
    /// `payment`.
    #[schema(value_type = String, example = "payment")]
    pub object: &'static str,
    /// `requires_action`, `processing`, `requires_capture`,
    /// `partially_captured`, `succeeded`, `canceled` or `failed`.
    #[schema(example = "requires_capture")]
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub amount_capturable: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    /// Captures accepted by the provider and awaiting its confirmation.
    pub amount_capture_pending: i64,
    #[schema(value_type = crate::api::openapi::CaptureMethodName)]
    pub capture_method: String,
    /// `automatic_delayed`: the hours asked and when the capture falls due
    /// (once authorized); `capture_scheduled_by` says who captures then
    /// (`provider`: its native delay; `host`: Passerelle's janitor).
    pub capture_delay_hours: Option<u32>,
    pub capture_scheduled_at: Option<String>,
    #[schema(value_type = Option<String>)]
    pub capture_scheduled_by: Option<&'static str>,
    /// Until when an authorized payment can be captured; a capture after it
    /// is refused (409 `authorization_expired`).
    pub capture_before: Option<String>,
    /// How 3-D Secure went, where the provider tells it.
    #[schema(value_type = Option<crate::api::openapi::ThreeDs>)]
    pub three_ds: Option<serde_json::Value>,
    pub reference: String,
    /// The connector account's name.
    pub connector: String,
    /// The plugin that serves it.
    pub connector_plugin: String,
    pub connector_reference: Option<String>,
    pub provider_status: Option<String>,
    #[schema(value_type = Option<crate::api::openapi::NextAction>)]
    pub next_action: Option<serde_json::Value>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    #[schema(value_type = crate::api::openapi::PaymentMethodShown)]
    pub payment_method: serde_json::Value,
    pub return_url: String,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub metadata: serde_json::Value,
    pub created_at: String,
    pub updated_at: String,
}

impl PaymentView {
    pub fn from_record(p: PaymentRecord, account_name: String) -> Self {
        let status = PaymentStatus::parse(&p.status).unwrap_or(PaymentStatus::Processing);
        let amount_capturable = if status.can_capture() {
            (p.amount_authorized - p.amount_captured - p.amount_capture_pending).max(0)
        } else {
            0
        };
        let payment_method = match &p.card_last4 {
            Some(last4) => serde_json::json!({"type": "card", "card": {"last4": last4}}),
            None => serde_json::json!({"type": p.payment_method_type}),
        };
        // The capture window means something only while a capture may come.
        let capture_window_open = status.can_capture()
            || status == PaymentStatus::RequiresAction
            || status == PaymentStatus::Processing;
        let capture_before = (p.capture_method != "automatic" && capture_window_open)
            .then_some(p.capture_before_ms)
            .flatten()
            .map(crate::crypto::format_unix_ms);
        let delayed = p.delayed_capture();
        Self {
            object: "payment",
            capture_delay_hours: delayed.map(|d| d.hours),
            capture_scheduled_at: delayed
                .and_then(|d| d.at_ms)
                .map(crate::crypto::format_unix_ms),
            capture_scheduled_by: delayed.map(|d| if d.by_provider { "provider" } else { "host" }),
            capture_before,
            three_ds: p
                .three_ds
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            status: p.status,
            amount: p.amount,
            currency: p.currency,
            amount_capturable,
            amount_captured: p.amount_captured,
            amount_refunded: p.amount_refunded,
            amount_capture_pending: p.amount_capture_pending,
            capture_method: p.capture_method,
            reference: p.reference,
            connector: account_name,
            connector_plugin: p.connector,
            connector_reference: p.connector_reference,
            provider_status: p.provider_status,
            next_action: p.next_action.and_then(|a| serde_json::from_str(&a).ok()),
            failure_code: p.failure_code,
            failure_message: p.failure_message,
            payment_method,
            return_url: p.return_url,
            metadata: serde_json::from_str(&p.metadata).unwrap_or_default(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            id: p.id,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Refund)]
pub struct RefundView {
    pub id: String,
    /// `refund`.
    #[schema(value_type = String, example = "refund")]
    pub object: &'static str,
    pub payment: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub connector_reference: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<RefundRecord> for RefundView {
    fn from(r: RefundRecord) -> Self {
        Self {
            id: r.id,
            object: "refund",
            payment: r.payment_id,
            amount: r.amount,
            currency: r.currency,
            status: r.status,
            reason: r.reason,
            connector_reference: r.connector_reference,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PaymentEvent)]
pub struct EventView {
    pub id: String,
    pub seq: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    pub cause: String,
    pub detail: Option<serde_json::Value>,
    pub created_at: String,
}

impl From<PaymentEventRecord> for EventView {
    fn from(e: PaymentEventRecord) -> Self {
        Self {
            id: e.id,
            seq: e.seq,
            from_status: e.from_status,
            to_status: e.to_status,
            cause: e.cause,
            detail: e.detail.and_then(|d| serde_json::from_str(&d).ok()),
            created_at: e.created_at,
        }
    }
}
