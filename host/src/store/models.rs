//! Rows of the Passerelle database, shared by the SQLite and PostgreSQL backends.
//!
//! Times are RFC 3339 strings in UTC with millisecond precision
//! (`2026-11-27T13:56:16.123Z`): they read well in either database and sort
//! as text. Amounts are `i64` minor units. Statuses are stored as their
//! lower-case API names.

use diesel::prelude::*;

use super::schema::{
    api_keys, connector_accounts, idempotency_keys, merchants, notifications_seen, payment_events,
    payment_locks, payments, plugin_versions, plugins, refunds,
};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = merchants)]
pub struct MerchantRecord {
    pub id: String,
    pub name: String,
    pub created_at: String,
    /// The connector account (by name) that serves payments naming none.
    pub default_connector: Option<String>,
}

/// An API key, stored as the SHA-256 hex digest of the full key. `prefix`
/// keeps the first characters (`sk_test_ab12`) so operators can tell keys apart.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRecord {
    pub id: String,
    /// `None` for admin keys.
    pub merchant_id: Option<String>,
    /// `secret` (storefront API) or `admin`.
    pub kind: String,
    pub key_hash: String,
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A merchant's account at one connector. `config_ciphertext` is the
/// AES-256-GCM sealed JSON object of credential values (never in clear).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = connector_accounts)]
pub struct ConnectorAccountRecord {
    pub id: String,
    pub merchant_id: String,
    /// The merchant's name for it, unique per merchant ("dummy", "adyen-eu").
    pub name: String,
    /// The plugin id ("dummy", "adyen").
    pub connector: String,
    /// `test` or `live`.
    pub environment: String,
    pub base_url: Option<String>,
    pub config_ciphertext: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = payments)]
#[diesel(treat_none_as_null = true)]
pub struct PaymentRecord {
    pub id: String,
    pub merchant_id: String,
    pub connector_account_id: String,
    pub connector: String,
    pub reference: String,
    pub amount: i64,
    pub currency: String,
    /// `automatic` or `manual`.
    pub capture_method: String,
    /// One of the API statuses (`requires_action`, `processing`, ...).
    pub status: String,
    pub amount_authorized: i64,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    pub connector_reference: Option<String>,
    /// Opaque connector state (never card data), at most 16 KiB.
    pub connector_data: Option<String>,
    /// JSON of the pending `next_action`, when the shopper must act.
    pub next_action: Option<String>,
    pub return_url: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub provider_status: Option<String>,
    /// `card`, or the other method's type.
    pub payment_method_type: String,
    /// Last four digits only; the full number is never stored.
    pub card_last4: Option<String>,
    /// JSON object of the merchant's metadata.
    pub metadata: String,
    /// Optimistic-lock counter, incremented by every update.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// Captures the provider accepted but has not confirmed yet.
    pub amount_capture_pending: i64,
    /// The provider accepted a cancellation it has not confirmed yet.
    pub cancel_pending: bool,
    /// When the reconciler should next ask the provider about an unsettled
    /// outcome (Unix ms); `None` when nothing is unsettled.
    pub reconcile_after: Option<i64>,
    /// How many times the reconciler asked since the outcome became unsettled.
    pub reconcile_attempts: i32,
    /// JSON of the 3-D Secure result (`ThreeDsView`), once the provider tells it.
    pub three_ds: Option<String>,
    /// When the authorization stops being capturable (Unix ms).
    pub capture_before_ms: Option<i64>,
    /// JSON of the `automatic_delayed` capture (`DelayedCapture`).
    pub delayed_capture: Option<String>,
}

/// An `automatic_delayed` capture, as stored in `payments.delayed_capture`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DelayedCapture {
    /// Hours after authorization.
    pub hours: u32,
    /// The provider applies the delay itself (its native capture delay);
    /// otherwise the host's janitor captures when it falls due.
    pub by_provider: bool,
    /// When it falls due (Unix ms), set once the payment is authorized.
    pub at_ms: Option<i64>,
    /// The host sent it (or the provider's capture was confirmed): the
    /// janitor does not try again; the merchant may still capture or cancel.
    #[serde(default)]
    pub done: bool,
}

impl PaymentRecord {
    pub fn delayed_capture(&self) -> Option<DelayedCapture> {
        self.delayed_capture
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
    }

    pub fn set_delayed_capture(&mut self, delayed: Option<DelayedCapture>) {
        self.delayed_capture = delayed.and_then(|d| serde_json::to_string(&d).ok());
    }
}

/// One transition or notable fact in a payment's life.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = payment_events)]
pub struct PaymentEventRecord {
    pub id: String,
    pub payment_id: String,
    /// Position in the payment's history, from 1.
    pub seq: i64,
    pub from_status: Option<String>,
    pub to_status: String,
    /// What caused it: `api.create`, `api.capture`, `shopper.return`,
    /// `notification`, `sync`, ...
    pub cause: String,
    /// JSON with details (amounts, provider status, error).
    pub detail: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = refunds)]
#[diesel(treat_none_as_null = true)]
pub struct RefundRecord {
    pub id: String,
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub reason: Option<String>,
    pub connector_reference: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The key the provider dedupes this refund on: asking again with it
    /// (after a lost answer) can never make a second refund.
    pub psp_key: Option<String>,
}

/// A stored answer to an idempotent request.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = idempotency_keys)]
pub struct IdempotencyRecord {
    pub merchant_id: String,
    pub key: String,
    /// Keyed fingerprint (HMAC-SHA-256 hex) of method, path and body, the
    /// card security code left out.
    pub request_hash: String,
    /// `in_progress` or `done`.
    pub state: String,
    pub response_status: Option<i32>,
    pub response_body: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The payment or refund id this request creates, chosen before the
    /// provider is called: a retry resumes it under the same provider key.
    pub resource_id: Option<String>,
    /// Until when (Unix ms) the request holding the claim owns it; after
    /// that a retry may take it over and resume.
    pub lease_until: i64,
    /// When (Unix ms) the key is forgotten.
    pub expires_at: i64,
}

/// One operation at a time per payment, across every node.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = payment_locks)]
pub struct PaymentLockRecord {
    pub payment_id: String,
    pub owner: String,
    pub expires_at: i64,
}

/// A provider notification already processed, for deduplication.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications_seen)]
pub struct NotificationSeenRecord {
    pub connector_account_id: String,
    pub event_id: String,
    pub received_at: String,
}

/// One version of a plugin. `package` is `None` for versions bundled in the
/// binary.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = plugin_versions)]
pub struct PluginVersionRecord {
    pub plugin_id: String,
    pub version: String,
    pub digest: String,
    pub publisher: String,
    /// `bundled`, `signed`, `untrusted` or `unsigned`.
    pub trust: String,
    pub signed_by: Option<String>,
    pub manifest_toml: String,
    pub package: Option<Vec<u8>>,
    pub installed_at: String,
}

/// A version's row without its package bytes, for listings.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = plugin_versions)]
pub struct PluginVersionSummary {
    pub plugin_id: String,
    pub version: String,
    pub digest: String,
    pub publisher: String,
    pub trust: String,
    pub signed_by: Option<String>,
    pub installed_at: String,
}

/// Which version of a plugin serves calls.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = plugins, treat_none_as_null = true)]
pub struct PluginRecord {
    pub id: String,
    pub active_version: Option<String>,
    pub previous_version: Option<String>,
    pub disabled: bool,
    pub updated_at: String,
}

/// Which publisher owns a plugin id (see `registry::PluginRegistry::install`).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = super::schema::plugin_publishers, treat_none_as_null = true)]
pub struct PluginPublisherRecord {
    pub plugin_id: String,
    pub publisher: String,
    /// `bundled`, `signed` or `unverified`.
    pub trust: String,
    pub signed_by: Option<String>,
    pub bound_at: String,
}

/// A credential field some version of a plugin declared secret.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = super::schema::plugin_secret_fields)]
pub struct PluginSecretFieldRecord {
    pub plugin_id: String,
    pub field: String,
    pub recorded_at: String,
}
