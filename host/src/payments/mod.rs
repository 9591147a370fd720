//! Payments: the state machine applied to what connectors answer.
//!
//! Every money-moving operation follows the same discipline:
//! 1. read the payment, then take its lock (one operation at a time per
//!    payment across every node: a lease row in the database, see
//!    [`Payments::lock`]) and read it again;
//! 2. check the state machine and the amount invariants
//!    (captured ≤ authorized, refunded ≤ captured);
//! 3. persist the intent first when a crash could otherwise lose track of
//!    money (a payment before its authorization, a refund before its call);
//! 4. call the connector with an idempotency key the provider can dedupe on;
//! 5. write the outcome and its event with an optimistic version check.

mod janitor;
pub mod state;
mod view;

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use serde_json::json;

use crate::crypto::{new_id, now_rfc3339, now_unix_ms, SecretBox};
use crate::runtime::bindings::types as wit;
use crate::runtime::{LoadedPlugin, PluginError, PluginRuntime};
use crate::store::models::{
    ConnectorAccountRecord, DelayedCapture, NotificationSeenRecord, PaymentEventRecord,
    PaymentLockRecord, PaymentRecord, RefundRecord,
};
use crate::store::{PaymentLockAttempt, Store, StoreError};
pub use janitor::{JanitorSettings, ReconciliationItem};
pub use state::PaymentStatus;
pub use view::{EventView, PaymentView, RefundView};

/// Largest `connector-data` a connector may keep on a payment.
const MAX_CONNECTOR_DATA_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("payment {0} not found")]
    NotFound(String),
    #[error("{message}")]
    InvalidState { code: &'static str, message: String },
    #[error("{param}: {message}")]
    Invalid { param: String, message: String },
    /// The provider refused the operation (its code and reason).
    #[error("declined: {code}: {message}")]
    Declined { code: String, message: String },
    /// The provider could not be reached or failed; the outcome may be unknown.
    #[error("connector unavailable: {message}")]
    ConnectorUnavailable { message: String },
    #[error("connector misconfigured: {message}")]
    ConnectorMisconfigured { message: String },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("the payment was changed concurrently")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<StoreError> for PaymentError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => PaymentError::Busy,
            other => PaymentError::Store(other),
        }
    }
}

impl PaymentError {
    /// Errors after which the outcome at the provider is unknown: the
    /// idempotency layer lets the merchant retry these with the same key
    /// (the provider dedupes on the key we derive from it).
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            PaymentError::ConnectorUnavailable { .. }
                | PaymentError::Plugin(_)
                | PaymentError::Busy
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMethod {
    Automatic,
    Manual,
    /// Captured in full `capture_delay_hours` after authorization, unless
    /// canceled before: by the provider where it has a native delay, by
    /// the host's janitor otherwise.
    AutomaticDelayed,
}

impl CaptureMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Manual => "manual",
            Self::AutomaticDelayed => "automatic_delayed",
        }
    }
}

/// The longest delay `automatic_delayed` accepts: a week.
pub const MAX_CAPTURE_DELAY_HOURS: u32 = 168;

pub struct CardInput {
    pub number: String,
    pub exp_month: u8,
    pub exp_year: u16,
    pub cvc: Option<String>,
    pub holder_name: Option<String>,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the number or the CVC.
        f.debug_struct("CardInput")
            .field("last4", &last4(&self.number))
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum PaymentMethodInput {
    Card(CardInput),
    Other {
        kind: String,
        details: serde_json::Value,
    },
}

#[derive(Debug, Default)]
pub struct ShopperInput {
    pub email: Option<String>,
    pub ip_address: Option<String>,
    pub browser: Option<BrowserInput>,
    /// The shop's origin (scheme, host and port).
    pub origin: Option<String>,
}

/// The shopper's browser as its JavaScript reports it (3-D Secure 2).
#[derive(Debug, Clone)]
pub struct BrowserInput {
    pub accept_header: String,
    pub user_agent: String,
    pub language: String,
    pub color_depth: u8,
    pub screen_height: u32,
    pub screen_width: u32,
    pub time_zone_offset: i32,
    pub java_enabled: bool,
    pub javascript_enabled: bool,
}

/// A validated request to create a payment.
#[derive(Debug)]
pub struct CreatePayment {
    pub merchant_id: String,
    pub amount: u64,
    pub currency: String,
    pub reference: String,
    pub capture_method: CaptureMethod,
    /// With `AutomaticDelayed`: 1 to [`MAX_CAPTURE_DELAY_HOURS`].
    pub capture_delay_hours: Option<u32>,
    pub payment_method: PaymentMethodInput,
    pub return_url: String,
    /// The connector account's name; `None` routes to the merchant's default.
    pub connector: Option<String>,
    pub shopper: Option<ShopperInput>,
    pub metadata: BTreeMap<String, String>,
    pub idempotency_key: Option<String>,
}

fn last4(number: &str) -> String {
    number
        .get(number.len().saturating_sub(4)..)
        .unwrap_or_default()
        .to_string()
}

/// A connector account with its plugin, ready to call.
struct ResolvedAccount {
    record: ConnectorAccountRecord,
    plugin: Arc<LoadedPlugin>,
    account: wit::Account,
}

/// In-process lock stripes: payments hash onto a fixed set of mutexes, so
/// the memory they take never grows with the number of payments (nor with
/// requests naming payments that do not exist).
const LOCK_STRIPES: usize = 256;
/// How long an operation waits for another node to release a payment.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// A refund to make: its id is chosen by the caller (the idempotency
/// claim) so that a retry resumes the same refund.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub refund_id: String,
    /// A retry resuming an earlier attempt: its refund may exist already.
    pub resumed: bool,
    pub amount: Option<u64>,
    pub reason: Option<String>,
    /// The merchant's `Idempotency-Key`, if any.
    pub idempotency_key: Option<String>,
}

pub struct Payments {
    store: Store,
    runtime: Arc<PluginRuntime>,
    secrets: SecretBox,
    public_url: String,
    stripes: Vec<Arc<tokio::sync::Mutex<()>>>,
    janitor: JanitorSettings,
    /// Each account's capabilities, by plugin version (digest), account id
    /// and the account's last change: asked once, not on every payment.
    capabilities: dashmap::DashMap<(String, String, String), wit::AccountCapabilities>,
}

/// How long a payment's lock lease lasts without renewal: what a node that
/// dies holding one makes others wait at most. Its holder renews it every
/// third of that for as long as it works on the payment.
const LOCK_LEASE: Duration = Duration::from_secs(10);

/// A payment's lock: the in-process stripe and the database lease. The
/// lease is renewed while the guard lives and released when it is dropped.
struct PaymentLock {
    _stripe: tokio::sync::OwnedMutexGuard<()>,
    store: Store,
    payment_id: String,
    owner: String,
    renewal: tokio::task::JoinHandle<()>,
    /// The lease went with the operation's last write (see
    /// [`Payments::save_releasing`]): nothing left to release.
    released: bool,
}

impl PaymentLock {
    /// Holds the lease `owner` took on `payment_id`: renews it while held.
    fn held(
        stripe: tokio::sync::OwnedMutexGuard<()>,
        store: &Store,
        payment_id: &str,
        owner: String,
    ) -> Self {
        let lease = lease_ms();
        let renewal = {
            let (store, id, owner) = (store.clone(), payment_id.to_string(), owner.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LOCK_LEASE / 3).await;
                    let until = now_unix_ms() + lease;
                    match store.renew_payment_lock(&id, &owner, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::error!(payment = %id, "payment lock lost while held");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(payment = %id, error = %e, "payment lock not renewed")
                        }
                    }
                }
            })
        };
        Self {
            _stripe: stripe,
            store: store.clone(),
            payment_id: payment_id.to_string(),
            owner,
            renewal,
            released: false,
        }
    }

    /// The lease was deleted by a committed write.
    fn mark_released(&mut self) {
        self.renewal.abort();
        self.released = true;
    }
}

fn lease_ms() -> i64 {
    i64::try_from(LOCK_LEASE.as_millis()).unwrap_or(i64::MAX / 4)
}

/// A payment read under its lock, with its connector account (`None` if the
/// account was deleted since).
struct LockedPayment {
    lock: PaymentLock,
    payment: PaymentRecord,
    account: Option<ConnectorAccountRecord>,
}

impl Drop for PaymentLock {
    fn drop(&mut self) {
        self.renewal.abort();
        if self.released {
            return;
        }
        let store = self.store.clone();
        let payment_id = std::mem::take(&mut self.payment_id);
        let owner = std::mem::take(&mut self.owner);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = store.unlock_payment(&payment_id, &owner).await {
                    // The lease expires by itself; until then the payment waits.
                    tracing::warn!(payment = %payment_id, error = %e, "payment lock not released");
                }
            });
        }
    }
}

impl Payments {
    pub fn new(
        store: Store,
        runtime: Arc<PluginRuntime>,
        secrets: SecretBox,
        public_url: String,
        janitor: JanitorSettings,
    ) -> Self {
        Self {
            store,
            runtime,
            secrets,
            public_url: public_url.trim_end_matches('/').to_string(),
            stripes: (0..LOCK_STRIPES)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
            janitor,
            capabilities: dashmap::DashMap::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn return_url_for(&self, payment_id: &str) -> String {
        format!("{}/v1/payments/{payment_id}/return", self.public_url)
    }

    pub fn notification_url_for(&self, account_id: &str) -> String {
        format!("{}/v1/webhooks/{account_id}", self.public_url)
    }

    /// What the account's provider allows around capture (asked once per
    /// plugin version and account change).
    async fn capabilities_of(
        &self,
        resolved: &ResolvedAccount,
    ) -> Result<wit::AccountCapabilities, PaymentError> {
        let key = (
            resolved.plugin.digest.clone(),
            resolved.record.id.clone(),
            resolved.record.updated_at.clone(),
        );
        if let Some(known) = self.capabilities.get(&key) {
            return Ok(known.clone());
        }
        let capabilities = self
            .runtime
            .capabilities(&resolved.plugin, resolved.account.clone())
            .await?
            .map_err(connector_error)?;
        // Bounded: one entry per account version; a changed account leaves
        // its old entry behind, so start over when it grows past reason.
        if self.capabilities.len() > 10_000 {
            self.capabilities.clear();
        }
        self.capabilities.insert(key, capabilities.clone());
        Ok(capabilities)
    }

    /// Takes the lock of an existing payment and reads it under the lock:
    /// first its in-process stripe (no database round trips between
    /// requests of one node), then its lease row, which the database grants
    /// to one holder across nodes, the payment and its account read in the
    /// same round trip. Waits up to [`LOCK_WAIT`] for another holder, then
    /// answers `Busy`; `NotFound` when there is no such payment.
    async fn lock(&self, payment_id: &str) -> Result<LockedPayment, PaymentError> {
        self.lock_within(payment_id, LOCK_WAIT)
            .await?
            .ok_or(PaymentError::Busy)
    }

    /// [`Payments::lock`] of a payment of `merchant_id`; `NotFound` for
    /// another merchant's.
    async fn lock_owned(
        &self,
        merchant_id: &str,
        payment_id: &str,
    ) -> Result<LockedPayment, PaymentError> {
        let locked = self.lock(payment_id).await?;
        if locked.payment.merchant_id != merchant_id {
            return Err(PaymentError::NotFound(payment_id.to_string()));
        }
        Ok(locked)
    }

    /// [`Payments::lock_owned`], with the payment's account ready for its
    /// connector.
    async fn lock_owned_resolved(
        &self,
        merchant_id: &str,
        payment_id: &str,
    ) -> Result<(PaymentLock, PaymentRecord, ResolvedAccount), PaymentError> {
        let LockedPayment {
            lock,
            payment,
            account,
        } = self.lock_owned(merchant_id, payment_id).await?;
        let resolved = self.resolve_locked(&payment, account)?;
        Ok((lock, payment, resolved))
    }

    fn stripe(&self, payment_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        payment_id.hash(&mut hasher);
        self.stripes[(hasher.finish() as usize) % LOCK_STRIPES].clone()
    }

    /// [`Payments::lock`] waiting at most `wait`; `None` if not had by then.
    async fn lock_within(
        &self,
        payment_id: &str,
        wait: Duration,
    ) -> Result<Option<LockedPayment>, PaymentError> {
        let deadline = tokio::time::Instant::now() + wait;
        let Ok(stripe) =
            tokio::time::timeout_at(deadline, self.stripe(payment_id).lock_owned()).await
        else {
            return Ok(None);
        };
        let owner = new_id("lk");
        let mut pause = Duration::from_millis(5);
        loop {
            let now = now_unix_ms();
            match self
                .store
                .lock_and_read_payment(payment_id, &owner, now, now + lease_ms())
                .await?
            {
                PaymentLockAttempt::Locked(found) => {
                    let (payment, account) = *found;
                    return Ok(Some(LockedPayment {
                        lock: PaymentLock::held(stripe, &self.store, payment_id, owner),
                        payment,
                        account,
                    }));
                }
                PaymentLockAttempt::Missing => {
                    return Err(PaymentError::NotFound(payment_id.to_string()))
                }
                PaymentLockAttempt::Held => {}
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(None);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// The account of a payment read under its lock, ready for its connector.
    fn resolve_locked(
        &self,
        payment: &PaymentRecord,
        account: Option<ConnectorAccountRecord>,
    ) -> Result<ResolvedAccount, PaymentError> {
        let record = account.ok_or_else(|| {
            PaymentError::Internal(format!(
                "connector account {} vanished",
                payment.connector_account_id
            ))
        })?;
        self.resolve(record)
    }

    fn resolve(&self, record: ConnectorAccountRecord) -> Result<ResolvedAccount, PaymentError> {
        let plugin = self.runtime.get(&record.connector)?;
        let clear = self.secrets.open(&record.config_ciphertext).map_err(|e| {
            PaymentError::ConnectorMisconfigured {
                message: format!("credentials of account {} cannot be read: {e}", record.id),
            }
        })?;
        let config: BTreeMap<String, String> =
            serde_json::from_slice(&clear).map_err(|_| PaymentError::ConnectorMisconfigured {
                message: format!("credentials of account {} are malformed", record.id),
            })?;
        let environment = match record.environment.as_str() {
            "live" => wit::Environment::Live,
            _ => wit::Environment::Test,
        };
        let account = wit::Account {
            id: record.id.clone(),
            environment,
            base_url: record.base_url.clone(),
            config: config.into_iter().collect(),
        };
        Ok(ResolvedAccount {
            record,
            plugin,
            account,
        })
    }

    async fn account_by_id(&self, id: &str) -> Result<ResolvedAccount, PaymentError> {
        let record =
            self.store.get_connector_account(id).await?.ok_or_else(|| {
                PaymentError::Internal(format!("connector account {id} vanished"))
            })?;
        self.resolve(record)
    }

    /// Routing: the named account, else the merchant's default connector,
    /// else the one called `default`, else the merchant's only account.
    async fn route(
        &self,
        merchant_id: &str,
        name: Option<&str>,
    ) -> Result<ResolvedAccount, PaymentError> {
        let record = match name {
            Some(name) => self
                .store
                .find_connector_account(merchant_id, name)
                .await?
                .ok_or_else(|| PaymentError::Invalid {
                    param: "connector".into(),
                    message: format!("no connector account named {name:?}"),
                })?,
            None => {
                let (merchant, accounts) = self.store.merchant_and_accounts(merchant_id).await?;
                let preferred = merchant
                    .and_then(|m| m.default_connector)
                    .unwrap_or_else(|| "default".to_string());
                let default = accounts.iter().position(|a| a.name == preferred);
                match (default, accounts.len()) {
                    (Some(i), _) => accounts[i].clone(),
                    (None, 1) => accounts[0].clone(),
                    (None, 0) => {
                        return Err(PaymentError::Invalid {
                            param: "connector".into(),
                            message: "this merchant has no connector account".into(),
                        })
                    }
                    (None, _) => {
                        return Err(PaymentError::Invalid {
                            param: "connector".into(),
                            message: "this merchant has several connector accounts: name one"
                                .into(),
                        })
                    }
                }
            }
        };
        self.resolve(record)
    }

    pub async fn get(&self, merchant_id: &str, id: &str) -> Result<PaymentView, PaymentError> {
        let payment = self.load_owned(merchant_id, id).await?;
        self.view(payment).await
    }

    async fn load_owned(&self, merchant_id: &str, id: &str) -> Result<PaymentRecord, PaymentError> {
        match self.store.get_payment(id).await? {
            Some(p) if p.merchant_id == merchant_id => Ok(p),
            _ => Err(PaymentError::NotFound(id.to_string())),
        }
    }

    /// The view of a payment whose account is at hand (no read).
    fn view_with(payment: PaymentRecord, account: &ConnectorAccountRecord) -> PaymentView {
        PaymentView::from_record(payment, account.name.clone())
    }

    async fn view(&self, payment: PaymentRecord) -> Result<PaymentView, PaymentError> {
        let account_name = self
            .store
            .get_connector_account(&payment.connector_account_id)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        Ok(PaymentView::from_record(payment, account_name))
    }

    pub async fn events(
        &self,
        merchant_id: &str,
        id: &str,
    ) -> Result<Vec<EventView>, PaymentError> {
        let payment = self.load_owned(merchant_id, id).await?;
        Ok(self
            .store
            .list_payment_events(&payment.id)
            .await?
            .into_iter()
            .map(EventView::from)
            .collect())
    }

    pub async fn refunds(
        &self,
        merchant_id: &str,
        id: &str,
    ) -> Result<Vec<RefundView>, PaymentError> {
        let payment = self.load_owned(merchant_id, id).await?;
        Ok(self
            .store
            .list_refunds(&payment.id)
            .await?
            .into_iter()
            .map(RefundView::from)
            .collect())
    }

    /// Creates a payment and authorizes it through its connector.
    ///
    /// `payment_id` comes from the idempotency claim. `resumed`: a retry of
    /// a request whose outcome was unknown (a failed write, a crash): if
    /// the payment exists, its authorization is sent again under the same
    /// provider key (the provider answers the first one, never makes a
    /// second), unless its outcome is already known.
    pub async fn create(
        &self,
        request: CreatePayment,
        payment_id: &str,
        resumed: bool,
    ) -> Result<PaymentView, PaymentError> {
        if resumed {
            if let Some(existing) = self.store.get_payment(payment_id).await? {
                if existing.merchant_id != request.merchant_id {
                    return Err(PaymentError::NotFound(payment_id.to_string()));
                }
                return self.resume_create(existing, request).await;
            }
        }
        let resolved = self
            .route(&request.merchant_id, request.connector.as_deref())
            .await?;
        check_supported(&resolved.plugin, &request)?;
        // An automatic capture needs nothing of the capture window: the
        // connector is not asked.
        let capabilities = if request.capture_method == CaptureMethod::Automatic {
            crate::runtime::default_capabilities()
        } else {
            self.capabilities_of(&resolved).await?
        };
        let now = now_rfc3339();
        let now_ms = now_unix_ms();
        let payment_id = payment_id.to_string();
        let (method, request) = AuthorizeInput::split(request);
        let (method_type, card_last4, wit_method) = wit_payment_method(method);
        let validity_hours = authorization_validity_hours(&capabilities, &method_type);
        let plan = capture_plan(&request, &capabilities, validity_hours)?;
        let metadata_json = serde_json::to_string(&request.metadata)
            .map_err(|e| PaymentError::Internal(e.to_string()))?;
        // The payment exists before the provider hears of it, so that a
        // crash mid-call leaves a `processing` payment a sync can settle,
        // never an authorization nobody knows about.
        let payment = PaymentRecord {
            id: payment_id.clone(),
            merchant_id: request.merchant_id.clone(),
            connector_account_id: resolved.record.id.clone(),
            connector: resolved.record.connector.clone(),
            reference: request.reference.clone(),
            amount: request.amount as i64,
            currency: request.currency.clone(),
            capture_method: request.capture_method.as_str().to_string(),
            status: PaymentStatus::Processing.as_str().to_string(),
            amount_authorized: 0,
            amount_captured: 0,
            amount_refunded: 0,
            connector_reference: None,
            connector_data: None,
            next_action: None,
            return_url: request.return_url.clone(),
            failure_code: None,
            failure_message: None,
            provider_status: None,
            payment_method_type: method_type,
            card_last4,
            metadata: metadata_json,
            version: 1,
            created_at: now.clone(),
            updated_at: now.clone(),
            amount_capture_pending: 0,
            cancel_pending: false,
            // Until the provider's answer is written, a crash would leave
            // the outcome unknown: the janitor looks at it after its grace.
            reconcile_after: Some(now_ms + self.janitor.grace_ms()),
            reconcile_attempts: 0,
            three_ds: None,
            // Counted from the creation, a little before the provider's
            // authorization: the host never lets a capture reach the
            // provider after the authorization lapsed.
            capture_before_ms: (request.capture_method != CaptureMethod::Automatic)
                .then(|| now_ms.saturating_add(i64::from(validity_hours) * 3_600_000)),
            delayed_capture: None,
        };
        let mut payment = payment;
        payment.set_delayed_capture(plan.delay_hours.map(|hours| DelayedCapture {
            hours,
            by_provider: plan.by_provider,
            at_ms: None,
            done: false,
        }));
        let created = event(
            &payment,
            1,
            None,
            PaymentStatus::Processing,
            "api.create",
            json!({"amount": request.amount, "currency": request.currency}),
        );
        // Locked from its first moment, in the insert's transaction: a
        // notification racing the answer waits for it.
        let stripe = self.stripe(&payment_id).lock_owned().await;
        let owner = new_id("lk");
        self.store
            .insert_locked_payment(
                payment.clone(),
                vec![created],
                PaymentLockRecord {
                    payment_id: payment_id.clone(),
                    owner: owner.clone(),
                    expires_at: now_unix_ms() + lease_ms(),
                },
            )
            .await?;
        let lock = PaymentLock::held(stripe, &self.store, &payment_id, owner);
        tracing::info!(payment = %payment_id, connector = %payment.connector, amount = request.amount, currency = %request.currency, "payment created");
        self.authorize(payment, resolved, wit_method, request, lock)
            .await
    }

    /// The retry of a creation whose outcome was unknown.
    async fn resume_create(
        &self,
        payment: PaymentRecord,
        request: CreatePayment,
    ) -> Result<PaymentView, PaymentError> {
        let LockedPayment {
            mut lock,
            mut payment,
            account,
        } = self.lock(&payment.id).await?;
        let resolved = self.resolve_locked(&payment, account)?;
        // An answer from the provider was written (only the idempotency
        // record was not): that is the outcome.
        let answered = payment.connector_reference.is_some()
            || status_of(&payment) != PaymentStatus::Processing;
        if answered {
            return Ok(Self::view_with(payment, &resolved.record));
        }
        // Ask the provider first, where it can find the payment by our id:
        // what it made is the outcome, whatever its idempotency promises.
        if let Ok(Ok(outcome)) = self.ask_provider_via(&resolved, &payment).await {
            if outcome.connector_reference.is_some()
                && !matches!(outcome.status, wit::PaymentStatus::Pending)
            {
                let (next, events) = apply_outcome(&payment, outcome, "api.create");
                self.save_releasing(&mut payment, next, events, &mut lock)
                    .await?;
                return Ok(Self::view_with(payment, &resolved.record));
            }
        }
        tracing::info!(payment = %payment.id, "authorization sent again under the same provider key");
        let (method, input) = AuthorizeInput::split(request);
        let wit_method = wit_payment_method(method).2;
        self.authorize(payment, resolved, wit_method, input, lock)
            .await
    }

    /// Sends the authorization of a stored payment, whose lock the caller
    /// took, and writes its outcome.
    async fn authorize(
        &self,
        mut payment: PaymentRecord,
        resolved: ResolvedAccount,
        wit_method: wit::PaymentMethod,
        request: AuthorizeInput,
        mut lock: PaymentLock,
    ) -> Result<PaymentView, PaymentError> {
        let payment_id = payment.id.clone();

        let shopper = request.shopper.map(|s| wit::Shopper {
            email: s.email,
            ip_address: s.ip_address,
            browser: s.browser.map(|b| wit::BrowserInfo {
                accept_header: b.accept_header,
                user_agent: b.user_agent,
                language: b.language,
                color_depth: b.color_depth,
                screen_height: b.screen_height,
                screen_width: b.screen_width,
                time_zone_offset: b.time_zone_offset,
                java_enabled: b.java_enabled,
                javascript_enabled: b.javascript_enabled,
            }),
            origin: s.origin,
        });
        // What the provider is asked follows the stored payment (a resumed
        // creation sends exactly what the first attempt sent): a delayed
        // capture the provider does not hold itself is an authorization
        // the host captures later.
        let (capture_method, capture_delay_hours) =
            match (payment.capture_method.as_str(), payment.delayed_capture()) {
                ("automatic", _) => (wit::CaptureMethod::Automatic, None),
                (_, Some(delayed)) if delayed.by_provider => {
                    (wit::CaptureMethod::Automatic, Some(delayed.hours))
                }
                _ => (wit::CaptureMethod::Manual, None),
            };
        let authorize = wit::AuthorizeRequest {
            payment_id: payment_id.clone(),
            reference: request.reference,
            amount: wit::Money {
                minor_units: request.amount,
                currency: request.currency,
            },
            capture_method,
            capture_delay_hours,
            payment_method: wit_method,
            shopper,
            return_url: self.return_url_for(&payment_id),
            notification_url: self.notification_url_for(&resolved.record.id),
            idempotency_key: psp_idempotency_key(
                &payment_id,
                "authorize",
                request.idempotency_key.as_deref(),
            ),
            metadata: request.metadata.into_iter().collect(),
        };
        let result = self
            .runtime
            .authorize(&resolved.plugin, resolved.account, authorize)
            .await;
        let (next, events) = match result {
            Ok(Ok(outcome)) => apply_outcome(&payment, outcome, "api.create"),
            Ok(Err(error)) => {
                let invalid_field =
                    (error.kind == wit::ErrorKind::InvalidRequest).then(|| error.field.clone());
                let (next, events) = apply_authorize_error(&payment, &error);
                let failed_to = next.clone();
                self.save_releasing(&mut payment, next, events, &mut lock)
                    .await?;
                if let Some(field) = invalid_field {
                    // The connector refused the request itself: tell the
                    // storefront which field, as for any bad input.
                    return Err(PaymentError::Invalid {
                        param: field.unwrap_or_else(|| "payment_method".into()),
                        message: format!("{} (payment {} failed)", error.message, failed_to.id),
                    });
                }
                return Ok(Self::view_with(failed_to, &resolved.record));
            }
            Err(plugin_error) => {
                // The plugin died mid-call: whether it reached the provider is
                // unknown, so the payment waits in `processing` for a sync.
                let busy = matches!(plugin_error, PluginError::Busy { .. });
                let mut next = payment.clone();
                next.failure_code = Some(
                    if busy {
                        CONNECTOR_BUSY
                    } else {
                        "plugin_failed"
                    }
                    .into(),
                );
                next.failure_message = Some(plugin_error.to_string());
                let e = event(
                    &payment,
                    0,
                    Some(PaymentStatus::Processing),
                    PaymentStatus::Processing,
                    "api.create",
                    json!({"error": plugin_error.to_string()}),
                );
                if busy {
                    // The call never started (the plugin's concurrency
                    // limit): nothing reached the provider. The storefront
                    // gets a 503; its retry with the same Idempotency-Key
                    // sends the authorization, else the janitor settles it.
                    self.save_releasing(&mut payment, next, vec![e], &mut lock)
                        .await?;
                    return Err(PaymentError::Plugin(plugin_error));
                }
                (next, vec![e])
            }
        };
        self.save_releasing(&mut payment, next, events, &mut lock)
            .await?;
        Ok(Self::view_with(payment, &resolved.record))
    }

    /// Writes `next` over `current` with the version check, numbering events.
    async fn save(
        &self,
        current: &mut PaymentRecord,
        next: PaymentRecord,
        events: Vec<PaymentEventRecord>,
    ) -> Result<(), PaymentError> {
        self.write(current, next, events, Vec::new(), None, None)
            .await?;
        Ok(())
    }

    /// [`Payments::save`] as the operation's last write: the payment's lock
    /// is released in the same transaction.
    async fn save_releasing(
        &self,
        current: &mut PaymentRecord,
        next: PaymentRecord,
        events: Vec<PaymentEventRecord>,
        lock: &mut PaymentLock,
    ) -> Result<(), PaymentError> {
        self.write(current, next, events, Vec::new(), None, Some(lock))
            .await?;
        Ok(())
    }

    /// Writes a payment's next state, its events and refunds in one
    /// transaction, with the version check; with `seen`, the notification
    /// that caused it is recorded as seen in the same transaction; with
    /// `release`, the payment's lock is released in it (the operation's
    /// last write). `Ok(false)`: that notification was already applied;
    /// nothing written.
    async fn write(
        &self,
        current: &mut PaymentRecord,
        mut next: PaymentRecord,
        events: Vec<PaymentEventRecord>,
        refunds: Vec<RefundRecord>,
        seen: Option<NotificationSeenRecord>,
        release: Option<&mut PaymentLock>,
    ) -> Result<bool, PaymentError> {
        next.version = current.version + 1;
        next.updated_at = now_rfc3339();
        let now_ms = now_unix_ms();
        // A delayed capture's clock starts at the authorization, whichever
        // path (answer, return, notification, sync) brought it.
        if let Some(mut delayed) = next.delayed_capture() {
            if delayed.at_ms.is_none() && status_of(&next) == PaymentStatus::RequiresCapture {
                delayed.at_ms = Some(now_ms.saturating_add(i64::from(delayed.hours) * 3_600_000));
                next.set_delayed_capture(Some(delayed));
            }
        }
        self.janitor.schedule(current, &mut next, now_ms);
        let owner = release.as_ref().map(|lock| lock.owner.clone());
        let written = self
            .store
            .save_payment(next.clone(), current.version, events, refunds, seen, owner)
            .await?;
        if written {
            *current = next;
            if let Some(lock) = release {
                lock.mark_released();
            }
        }
        Ok(written)
    }

    /// The shopper is back from a redirect: ask the connector how it went.
    /// Returns where to send the shopper's browser.
    ///
    /// Anyone who sees the payment id in the shop's return URL can call
    /// this, so the browser's word never finalises a payment: an outcome
    /// the connector derives from the return itself ("the shopper
    /// cancelled") is recorded, not applied; the payment waits for the
    /// provider (its notification, a sync, the janitor).
    pub async fn complete(
        &self,
        payment_id: &str,
        params: Vec<(String, String)>,
    ) -> Result<String, PaymentError> {
        // Read first: a request naming no payment takes no lock.
        let found = self
            .store
            .get_payment(payment_id)
            .await?
            .ok_or_else(|| PaymentError::NotFound(payment_id.to_string()))?;
        if !return_needs_connector(&found) {
            return Ok(append_query(&found.return_url, "payment_id", &found.id));
        }
        let LockedPayment {
            mut lock,
            mut payment,
            account,
        } = self.lock(payment_id).await?;
        let status = status_of(&payment);
        if return_needs_connector(&payment) {
            let resolved = self.resolve_locked(&payment, account)?;
            let request = wit::CompleteRequest {
                payment: payment_ref(&payment),
                params,
            };
            match self
                .runtime
                .complete(&resolved.plugin, resolved.account, request)
                .await
            {
                Ok(Ok(outcome)) if matches!(outcome.status, wit::PaymentStatus::Canceled) => {
                    tracing::info!(payment = %payment.id, "the shopper's return says canceled: recorded, the provider decides");
                    let e = event(
                        &payment,
                        0,
                        Some(status),
                        status,
                        "shopper.return",
                        json!({"shopper_canceled": true, "provider_status": outcome.provider_status}),
                    );
                    let mut next = payment.clone();
                    if next.connector_reference.is_none() {
                        next.connector_reference = outcome.connector_reference;
                    }
                    self.save_releasing(&mut payment, next, vec![e], &mut lock)
                        .await?;
                }
                Ok(Ok(outcome)) => {
                    let (next, events) = apply_outcome(&payment, outcome, "shopper.return");
                    self.save_releasing(&mut payment, next, events, &mut lock)
                        .await?;
                }
                Ok(Err(error)) if status.is_final() || status.can_capture() => {
                    // Settled already: only the 3-D Secure result was to learn.
                    tracing::info!(payment = %payment.id, code = %error.code, "no 3-D Secure result from the return of a settled payment");
                }
                Ok(Err(error)) => {
                    // The payment stays as it was; a notification or a sync
                    // settles it. The shopper still goes back to the shop.
                    tracing::warn!(payment = %payment.id, code = %error.code, message = %error.message, "completion failed");
                    let e = event(
                        &payment,
                        0,
                        Some(status),
                        status,
                        "shopper.return",
                        json!({"error": {"code": error.code, "message": error.message}}),
                    );
                    let unchanged = payment.clone();
                    self.save_releasing(&mut payment, unchanged, vec![e], &mut lock)
                        .await?;
                }
                Err(plugin_error) => {
                    tracing::warn!(payment = %payment.id, error = %plugin_error, "completion failed");
                }
            }
        }
        Ok(append_query(&payment.return_url, "payment_id", &payment.id))
    }

    /// Asks the connector where the payment stands and moves it forward.
    pub async fn sync(&self, merchant_id: &str, id: &str) -> Result<PaymentView, PaymentError> {
        let (mut lock, mut payment, resolved) = self.lock_owned_resolved(merchant_id, id).await?;
        match self.ask_provider_via(&resolved, &payment).await? {
            Ok(outcome) => {
                let (next, events) = apply_outcome(&payment, outcome, "sync");
                self.save_releasing(&mut payment, next, events, &mut lock)
                    .await?;
            }
            Err(error) => return Err(connector_error(error)),
        }
        Ok(Self::view_with(payment, &resolved.record))
    }

    /// The connector's `sync`: without a provider reference (the answer to
    /// the authorization was lost) it may still find the payment by our id.
    async fn ask_provider(
        &self,
        payment: &PaymentRecord,
    ) -> Result<Result<wit::PaymentOutcome, wit::ConnectorError>, PaymentError> {
        let resolved = self.account_by_id(&payment.connector_account_id).await?;
        self.ask_provider_via(&resolved, payment).await
    }

    /// [`Payments::ask_provider`] through an account at hand.
    async fn ask_provider_via(
        &self,
        resolved: &ResolvedAccount,
        payment: &PaymentRecord,
    ) -> Result<Result<wit::PaymentOutcome, wit::ConnectorError>, PaymentError> {
        Ok(self
            .runtime
            .sync(
                &resolved.plugin,
                resolved.account.clone(),
                payment_ref(payment),
            )
            .await?)
    }

    pub async fn capture(
        &self,
        merchant_id: &str,
        id: &str,
        amount: Option<u64>,
        final_capture: bool,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, PaymentError> {
        let (mut lock, mut payment, resolved) = self.lock_owned_resolved(merchant_id, id).await?;
        // With the merchant's key, the provider's key must not depend on
        // anything a notification can change in between (a retry must
        // reach the provider as the same request).
        let keyed_psp_key =
            idempotency_key.map(|_| psp_idempotency_key(&payment.id, "capture", idempotency_key));
        if let Some(psp_key) = &keyed_psp_key {
            if let Some(attempt) = self.capture_attempt(&payment, psp_key).await? {
                if attempt.settled {
                    // Its outcome is written (only the answer was lost).
                    return Ok(Self::view_with(payment, &resolved.record));
                }
                // The retry of a capture whose outcome is unknown: sent
                // again under the same key, its amount already reserved.
                self.send_capture(
                    &mut payment,
                    &resolved,
                    attempt,
                    "api.capture",
                    Sending::Again(Some(&mut lock)),
                )
                .await?;
                return Ok(Self::view_with(payment, &resolved.record));
            }
        }
        if let Some(delayed) = payment.delayed_capture() {
            if delayed.by_provider {
                return Err(PaymentError::InvalidState {
                    code: "capture_scheduled",
                    message: "the provider captures this payment itself when its delay ends; cancel it to release it instead".into(),
                });
            }
        }
        self.capture_locked(
            &mut payment,
            &resolved,
            amount,
            final_capture,
            keyed_psp_key,
            "api.capture",
            Some(&mut lock),
        )
        .await?;
        Ok(Self::view_with(payment, &resolved.record))
    }

    /// Reserves and sends a capture of a payment whose lock the caller
    /// holds: the merchant's (`api.capture`) or a delayed capture falling
    /// due (`janitor`). With `release`, the lock goes with the last write.
    #[allow(clippy::too_many_arguments)]
    async fn capture_locked(
        &self,
        payment: &mut PaymentRecord,
        resolved: &ResolvedAccount,
        amount: Option<u64>,
        final_capture: bool,
        keyed_psp_key: Option<String>,
        cause: &str,
        release: Option<&mut PaymentLock>,
    ) -> Result<(), PaymentError> {
        let status = status_of(payment);
        if !status.can_capture() {
            return Err(PaymentError::InvalidState {
                code: "payment_not_capturable",
                message: format!("a payment in status {status} cannot be captured"),
            });
        }
        if payment.cancel_pending {
            return Err(PaymentError::InvalidState {
                code: "cancel_pending",
                message: "a cancellation is pending at the provider".into(),
            });
        }
        let capturable =
            (payment.amount_authorized - payment.amount_captured - payment.amount_capture_pending)
                .max(0) as u64;
        let amount = amount.unwrap_or(capturable);
        if amount == 0 || amount > capturable {
            return Err(PaymentError::Invalid {
                param: "amount".into(),
                message: format!("amount must be between 1 and the capturable {capturable}"),
            });
        }
        // Checked here, not left to the provider: a capture it would refuse
        // must not be reserved first.
        if payment
            .capture_before_ms
            .is_some_and(|before| now_unix_ms() >= before)
        {
            return Err(PaymentError::InvalidState {
                code: "authorization_expired",
                message: format!(
                    "the authorization could be captured until {}; it has lapsed",
                    crate::crypto::format_unix_ms(payment.capture_before_ms.unwrap_or_default())
                ),
            });
        }
        let mut final_capture = final_capture || amount == capturable;
        // Without the merchant's key, each capture needs a key of its own:
        // what is captured and what is pending (Adyen answers every capture
        // as pending) both move with every capture, so a second partial
        // capture never reuses the first one's key.
        let psp_key = keyed_psp_key.unwrap_or_else(|| {
            psp_idempotency_key(
                &payment.id,
                &format!(
                    "capture-{}-{}-{amount}",
                    payment.amount_captured, payment.amount_capture_pending
                ),
                None,
            )
        });
        require_operation(
            &resolved.plugin,
            if amount < capturable || payment.amount_captured > 0 {
                wit::Operation::PartialCapture
            } else {
                wit::Operation::Capture
            },
        )?;
        if !self
            .capabilities_of(resolved)
            .await?
            .multiple_partial_captures
        {
            if payment.amount_captured > 0 || payment.amount_capture_pending > 0 {
                return Err(PaymentError::InvalidState {
                    code: "multiple_captures_unsupported",
                    message: format!(
                        "connector {} captures a payment once: the rest of this authorization was released by the first capture",
                        payment.connector
                    ),
                });
            }
            // One capture only: whatever it leaves is released.
            final_capture = true;
        }
        // Reserved before the provider hears of it: a lost answer or a
        // crash leaves a pending capture that the janitor (or the
        // merchant's retry) sends again under the same key, never a
        // capture nobody knows about, nor a second one.
        let attempt = CaptureAttempt {
            psp_key,
            amount,
            final_capture,
            counted_at: payment.amount_captured + payment.amount_capture_pending + amount as i64,
            settled: false,
        };
        let mut reserved = payment.clone();
        reserved.amount_capture_pending += amount as i64;
        let e = event(
            payment,
            0,
            Some(status),
            status,
            cause,
            attempt.detail(json!({"in_flight": true})),
        );
        self.save(payment, reserved, vec![e]).await?;
        self.send_capture(payment, resolved, attempt, cause, Sending::First(release))
            .await
    }

    /// Sends a reserved capture to the provider and writes the outcome:
    /// done (the reservation becomes captured money), accepted (it stays
    /// reserved until the provider confirms), refused (released), or
    /// unknown (it stays reserved; sent again later under the same key).
    async fn send_capture(
        &self,
        payment: &mut PaymentRecord,
        resolved: &ResolvedAccount,
        attempt: CaptureAttempt,
        cause: &str,
        sending: Sending<'_>,
    ) -> Result<(), PaymentError> {
        let first_send = sending.is_first();
        let unlock = sending.into_lock();
        let status = status_of(payment);
        let request = wit::CaptureRequest {
            payment: payment_ref(payment),
            amount: money(payment, attempt.amount),
            final_capture: attempt.final_capture,
            idempotency_key: attempt.psp_key.clone(),
        };
        let result = self
            .runtime
            .capture(&resolved.plugin, resolved.account.clone(), request)
            .await;
        let amount = attempt.amount as i64;
        // A notification or a sync may have counted this capture already
        // (its answer was lost, not its effect).
        let counted = payment.amount_captured >= attempt.counted_at;
        let mut next = payment.clone();
        let release = |next: &mut PaymentRecord| {
            if !counted {
                next.amount_capture_pending = (next.amount_capture_pending - amount).max(0);
            }
        };
        let (to, detail, error) = match result {
            Ok(Ok(outcome)) => {
                if outcome.provider_status.is_some() {
                    next.provider_status = outcome.provider_status.clone();
                }
                match outcome.status {
                    wit::ModificationStatus::Succeeded => {
                        if !counted {
                            next.amount_capture_pending =
                                (next.amount_capture_pending - amount).max(0);
                            next.amount_captured += amount;
                        }
                        let to = if attempt.final_capture
                            || next.amount_captured >= next.amount_authorized
                        {
                            PaymentStatus::Succeeded
                        } else {
                            PaymentStatus::PartiallyCaptured
                        };
                        next.status = to.as_str().to_string();
                        (
                            to,
                            json!({"outcome": "succeeded", "already_counted": counted, "connector_reference": outcome.connector_reference}),
                            None,
                        )
                    }
                    // Accepted, not done: it stays reserved until the
                    // provider's notification confirms or refuses it.
                    wit::ModificationStatus::Pending => (
                        status,
                        json!({"outcome": "pending", "pending": true, "connector_reference": outcome.connector_reference}),
                        None,
                    ),
                    wit::ModificationStatus::Refused(refusal) => {
                        release(&mut next);
                        (
                            status,
                            json!({"outcome": "refused", "refused": {"code": refusal.code, "reason": refusal.reason}}),
                            Some(PaymentError::Declined {
                                code: refusal.code,
                                message: refusal.reason,
                            }),
                        )
                    }
                }
            }
            Ok(Err(error)) if error.kind != wit::ErrorKind::Retryable => {
                release(&mut next);
                let detail = json!({"outcome": "failed", "error": {"kind": format!("{:?}", error.kind), "code": error.code, "message": error.message}});
                (status, detail, Some(connector_error(error)))
            }
            Ok(Err(error)) => {
                let detail = json!({"outcome": "unknown", "unknown": true, "error": {"kind": format!("{:?}", error.kind), "code": error.code, "message": error.message}});
                (status, detail, Some(connector_error(error)))
            }
            // The connector was busy: the call never started, so nothing
            // reached the provider. The reservation goes with it (the
            // storefront's 503 means "not done"); an attempt that may have
            // been sent before stays reserved as unknown instead.
            Err(plugin_error @ PluginError::Busy { .. }) if first_send => {
                release(&mut next);
                let detail = json!({"outcome": "not_sent", "not_sent": true, "error": plugin_error.to_string()});
                (status, detail, Some(PaymentError::Plugin(plugin_error)))
            }
            Err(plugin_error) => {
                let detail = json!({"outcome": "unknown", "unknown": true, "error": plugin_error.to_string()});
                (status, detail, Some(PaymentError::Plugin(plugin_error)))
            }
        };
        let e = event(payment, 0, Some(status), to, cause, attempt.detail(detail));
        self.write(payment, next, vec![e], Vec::new(), None, unlock)
            .await?;
        match error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The latest attempt of the capture sent under `psp_key`, if any.
    async fn capture_attempt(
        &self,
        payment: &PaymentRecord,
        psp_key: &str,
    ) -> Result<Option<CaptureAttempt>, PaymentError> {
        let events = self.store.list_payment_events(&payment.id).await?;
        Ok(capture_attempts(&events)
            .into_iter()
            .find(|a| a.psp_key == psp_key))
    }

    pub async fn cancel(
        &self,
        merchant_id: &str,
        id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<PaymentView, PaymentError> {
        let (mut lock, mut payment, resolved) = self.lock_owned_resolved(merchant_id, id).await?;
        let status = status_of(&payment);
        if status == PaymentStatus::Canceled && idempotency_key.is_some() {
            // The retry of a cancellation whose answer was lost, which the
            // provider's notification already confirmed: it is done.
            return Ok(Self::view_with(payment, &resolved.record));
        }
        if !status.can_cancel() || payment.amount_captured > 0 {
            return Err(PaymentError::InvalidState {
                code: "payment_not_cancelable",
                message: format!("a payment in status {status} cannot be canceled"),
            });
        }
        // A capture the provider accepted may still happen: canceling now
        // could end the payment `canceled` with money taken.
        if payment.amount_capture_pending > 0 {
            return Err(PaymentError::InvalidState {
                code: "capture_pending",
                message: format!(
                    "a capture of {} is pending at the provider; cancel once it is settled",
                    payment.amount_capture_pending
                ),
            });
        }
        require_operation(&resolved.plugin, wit::Operation::Cancel)?;
        let request = wit::CancelRequest {
            payment: payment_ref(&payment),
            idempotency_key: psp_idempotency_key(&payment.id, "cancel", idempotency_key),
        };
        let outcome = match self
            .runtime
            .cancel(&resolved.plugin, resolved.account.clone(), request)
            .await?
        {
            Ok(o) => o,
            Err(error) => {
                self.record_failed_operation(&mut payment, "api.cancel", 0, &error, &mut lock)
                    .await?;
                return Err(connector_error(error));
            }
        };
        match outcome.status {
            wit::ModificationStatus::Refused(refusal) => {
                let e = event(
                    &payment,
                    0,
                    Some(status),
                    status,
                    "api.cancel",
                    json!({"refused": {"code": refusal.code, "reason": refusal.reason}}),
                );
                let unchanged = payment.clone();
                self.save_releasing(&mut payment, unchanged, vec![e], &mut lock)
                    .await?;
                Err(PaymentError::Declined {
                    code: refusal.code,
                    message: refusal.reason,
                })
            }
            wit::ModificationStatus::Pending => {
                // The provider confirms the cancellation later (a
                // notification or a sync); until then nothing is released,
                // and no capture may start.
                let e = event(
                    &payment,
                    0,
                    Some(status),
                    status,
                    "api.cancel",
                    json!({"pending": true}),
                );
                let mut next = payment.clone();
                next.cancel_pending = true;
                self.save_releasing(&mut payment, next, vec![e], &mut lock)
                    .await?;
                Ok(Self::view_with(payment, &resolved.record))
            }
            wit::ModificationStatus::Succeeded => {
                let pending = false;
                let mut next = payment.clone();
                next.status = PaymentStatus::Canceled.as_str().to_string();
                next.next_action = None;
                let e = event(
                    &payment,
                    0,
                    Some(status),
                    PaymentStatus::Canceled,
                    "api.cancel",
                    json!({"pending": pending}),
                );
                self.save_releasing(&mut payment, next, vec![e], &mut lock)
                    .await?;
                Ok(Self::view_with(payment, &resolved.record))
            }
        }
    }

    /// Refunds captured money. `request.refund_id` comes from the
    /// idempotency claim: when a refund with that id exists already (a
    /// retry after an unknown outcome), it is resumed, never made twice.
    pub async fn refund(
        &self,
        merchant_id: &str,
        id: &str,
        request: RefundRequest,
    ) -> Result<RefundView, PaymentError> {
        let LockedPayment {
            mut lock,
            mut payment,
            account,
        } = self.lock_owned(merchant_id, id).await?;
        // Only a retry (its id from the idempotency claim) can find its
        // refund already there.
        if request.resumed {
            if let Some(existing) = self.store.get_refund(&request.refund_id).await? {
                if existing.payment_id != payment.id {
                    return Err(PaymentError::NotFound(request.refund_id));
                }
                // A first try refused as busy never reached the provider:
                // this retry makes the refund afresh, under the same id.
                let never_sent = existing.status == "failed"
                    && existing.failure_code.as_deref() == Some(CONNECTOR_BUSY);
                if !never_sent {
                    if existing.status != "pending" {
                        return Ok(RefundView::from(existing));
                    }
                    let resolved = self.resolve_locked(&payment, account)?;
                    return self
                        .send_refund(
                            &mut payment,
                            &resolved,
                            existing,
                            "api.refund",
                            Sending::Again(Some(&mut lock)),
                        )
                        .await;
                }
            }
        }
        let status = status_of(&payment);
        // A canceled payment can hold captured money too: a capture the
        // provider made after all (see the capture notifications).
        let holds_money = status.can_refund()
            || (status == PaymentStatus::Canceled && payment.amount_captured > 0);
        if !holds_money {
            return Err(PaymentError::InvalidState {
                code: "payment_not_refundable",
                message: format!("a payment in status {status} has nothing captured to refund"),
            });
        }
        let refundable = (payment.amount_captured - payment.amount_refunded).max(0) as u64;
        let amount = request.amount.unwrap_or(refundable);
        if amount == 0 || amount > refundable {
            return Err(PaymentError::Invalid {
                param: "amount".into(),
                message: format!("amount must be between 1 and the refundable {refundable}"),
            });
        }
        // The connector first: a refund it cannot take (disabled or removed
        // plugin, operation not offered) must leave nothing behind.
        let resolved = self.resolve_locked(&payment, account)?;
        let partial = amount < refundable;
        require_operation(
            &resolved.plugin,
            if partial {
                wit::Operation::PartialRefund
            } else {
                wit::Operation::Refund
            },
        )?;
        let now = now_rfc3339();
        let refund = RefundRecord {
            psp_key: Some(psp_idempotency_key(
                &payment.id,
                &format!("refund-{}", request.refund_id),
                request.idempotency_key.as_deref(),
            )),
            id: request.refund_id,
            payment_id: payment.id.clone(),
            amount: amount as i64,
            currency: payment.currency.clone(),
            status: "pending".into(),
            reason: request.reason,
            connector_reference: None,
            failure_code: None,
            failure_message: None,
            created_at: now.clone(),
            updated_at: now,
        };
        // Reserve the amount before calling the provider: two refunds racing
        // (here or after a crash) can never exceed what was captured, and a
        // crash leaves a pending refund the janitor asks about again.
        let mut reserved = payment.clone();
        reserved.amount_refunded += amount as i64;
        let e = event(
            &payment,
            0,
            Some(status),
            status,
            "api.refund",
            json!({"refund": refund.id, "amount": amount}),
        );
        self.write(
            &mut payment,
            reserved,
            vec![e],
            vec![refund.clone()],
            None,
            None,
        )
        .await?;
        self.send_refund(
            &mut payment,
            &resolved,
            refund,
            "connector.refund",
            Sending::First(Some(&mut lock)),
        )
        .await
    }

    /// Sends a pending refund to the provider under its own key (again, if
    /// an earlier answer was lost: the provider dedupes) and writes what
    /// it answered.
    async fn send_refund(
        &self,
        payment: &mut PaymentRecord,
        resolved: &ResolvedAccount,
        mut refund: RefundRecord,
        cause: &str,
        sending: Sending<'_>,
    ) -> Result<RefundView, PaymentError> {
        let first_send = sending.is_first();
        let release = sending.into_lock();
        let status = status_of(payment);
        let amount = refund.amount.max(0) as u64;
        let psp_key = refund.psp_key.clone().unwrap_or_else(|| {
            // Refunds from before keys were stored used this one.
            psp_idempotency_key(&payment.id, &format!("refund-{}", refund.id), None)
        });
        let request = wit::RefundRequest {
            payment: payment_ref(payment),
            refund_id: refund.id.clone(),
            amount: money(payment, amount),
            reason: refund.reason.clone(),
            idempotency_key: psp_key,
        };
        let result = self
            .runtime
            .refund(&resolved.plugin, resolved.account.clone(), request)
            .await;
        let mut next = payment.clone();
        let detail;
        let mut not_sent = None;
        match result {
            Ok(Ok(outcome)) => {
                if outcome.connector_reference.is_some() {
                    refund.connector_reference = outcome.connector_reference;
                }
                match outcome.status {
                    wit::ModificationStatus::Succeeded => refund.status = "succeeded".into(),
                    wit::ModificationStatus::Pending => {}
                    wit::ModificationStatus::Refused(refusal) => {
                        refund.status = "failed".into();
                        refund.failure_code = Some(refusal.code);
                        refund.failure_message = Some(refusal.reason);
                        next.amount_refunded -= refund.amount;
                    }
                }
                if refund.status != "failed" {
                    refund.failure_code = None;
                    refund.failure_message = None;
                }
                detail = json!({"refund": refund.id, "status": refund.status});
            }
            Ok(Err(error)) if error.kind != wit::ErrorKind::Retryable => {
                refund.status = "failed".into();
                refund.failure_code = Some(error.code.clone());
                refund.failure_message = Some(error.message.clone());
                next.amount_refunded -= refund.amount;
                detail = json!({"refund": refund.id, "status": "failed", "error": {"code": error.code, "message": error.message}});
            }
            Ok(Err(error)) => {
                // Unknown outcome: the refund stays pending (and reserved)
                // until a notification or the janitor settles it.
                refund.failure_code = Some(error.code.clone());
                refund.failure_message = Some(error.message.clone());
                detail = json!({"refund": refund.id, "status": "pending", "error": {"code": error.code, "message": error.message}});
            }
            // The connector was busy on the first try: the call never
            // started, nothing reached the provider. The refund fails and
            // frees its amount; the storefront gets 503 `connector_busy`
            // and its retry (same Idempotency-Key) makes it afresh.
            Err(plugin_error @ PluginError::Busy { .. }) if first_send => {
                refund.status = "failed".into();
                refund.failure_code = Some(CONNECTOR_BUSY.into());
                refund.failure_message = Some(plugin_error.to_string());
                next.amount_refunded -= refund.amount;
                detail = json!({"refund": refund.id, "status": "failed", "not_sent": true, "error": plugin_error.to_string()});
                not_sent = Some(plugin_error);
            }
            Err(plugin_error) => {
                refund.failure_code = Some("plugin_failed".into());
                refund.failure_message = Some(plugin_error.to_string());
                detail = json!({"refund": refund.id, "status": "pending", "error": plugin_error.to_string()});
            }
        }
        refund.updated_at = now_rfc3339();
        let e = event(payment, 0, Some(status), status, cause, detail);
        self.write(payment, next, vec![e], vec![refund.clone()], None, release)
            .await?;
        match not_sent {
            Some(busy) => Err(PaymentError::Plugin(busy)),
            None => Ok(RefundView::from(refund)),
        }
    }

    async fn record_failed_operation(
        &self,
        payment: &mut PaymentRecord,
        cause: &str,
        amount: u64,
        error: &wit::ConnectorError,
        lock: &mut PaymentLock,
    ) -> Result<(), PaymentError> {
        let status = status_of(payment);
        let e = event(
            payment,
            0,
            Some(status),
            status,
            cause,
            json!({"amount": amount, "error": {"kind": format!("{:?}", error.kind), "code": error.code, "message": error.message}}),
        );
        let unchanged = payment.clone();
        self.save_releasing(payment, unchanged, vec![e], lock).await
    }

    /// A provider notification for one connector account: verified and
    /// parsed by the plugin, then applied to the payments it names.
    pub async fn notification(
        &self,
        account_id: &str,
        notification: wit::Notification,
    ) -> Result<NotificationAnswer, PaymentError> {
        let record = self
            .store
            .get_connector_account(account_id)
            .await?
            .ok_or_else(|| PaymentError::NotFound(account_id.to_string()))?;
        let resolved = self.resolve(record)?;
        let outcome = match self
            .runtime
            .handle_notification(&resolved.plugin, resolved.account, notification)
            .await?
        {
            Ok(outcome) => outcome,
            Err(error) => {
                tracing::warn!(account = %account_id, kind = ?error.kind, code = %error.code, "notification rejected");
                return Ok(NotificationAnswer::Rejected(error));
            }
        };
        // Every item is tried, even after one fails: the provider will send
        // the whole batch again, and the items applied now are then
        // recognised as seen. Only a batch applied in full is acknowledged.
        let mut first_failure = None;
        for item in outcome.events {
            let event_id = item.event_id.clone();
            if let Err(e) = self.apply_notification_event(&resolved.record, item).await {
                tracing::warn!(account = %account_id, event = %event_id, error = %e, "notification item not applied; the provider will retry");
                first_failure.get_or_insert(e);
            }
        }
        if let Some(e) = first_failure {
            return Err(match e {
                // A write that lost a race: still a retry for the provider.
                PaymentError::Busy => PaymentError::ConnectorUnavailable {
                    message: "the notification could not be applied now; send it again".into(),
                },
                other => other,
            });
        }
        Ok(NotificationAnswer::Accepted {
            status: outcome.response_status,
            content_type: outcome.response_content_type,
            body: outcome.response_body,
        })
    }

    /// The payment a notification speaks of: by the provider's reference,
    /// else by the merchant reference the connector echoes when it is our
    /// payment id (when the answer to the authorization was lost, the
    /// provider's reference is known only from this notification).
    async fn find_notified_payment(
        &self,
        account: &ConnectorAccountRecord,
        item: &wit::NotificationEvent,
    ) -> Result<Option<PaymentRecord>, PaymentError> {
        if let Some(found) = self
            .store
            .find_payment_by_connector_reference(&account.id, &item.connector_reference)
            .await?
        {
            return Ok(Some(found));
        }
        let Some(reference) = item.merchant_reference.as_deref() else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_payment(reference)
            .await?
            .filter(|p| p.connector_account_id == account.id))
    }

    async fn apply_notification_event(
        &self,
        account: &ConnectorAccountRecord,
        item: wit::NotificationEvent,
    ) -> Result<(), PaymentError> {
        let Some(found) = self.find_notified_payment(account, &item).await? else {
            tracing::info!(account = %account.id, event = %item.event_id, "notification for an unknown payment ignored");
            return Ok(());
        };
        let LockedPayment {
            mut lock,
            mut payment,
            ..
        } = self.lock(&found.id).await?;
        // Recorded as seen in the same transaction as the change it causes:
        // a write that fails leaves it unseen, so the provider's retry is
        // applied rather than dropped as a duplicate.
        let seen = NotificationSeenRecord {
            connector_account_id: account.id.clone(),
            event_id: item.event_id.clone(),
            received_at: now_rfc3339(),
        };
        let status = status_of(&payment);
        // Learnt here when the answer to the authorization was lost.
        let learnt_reference = payment
            .connector_reference
            .is_none()
            .then(|| item.connector_reference.clone())
            .filter(|r| !r.is_empty());
        let (next, events, refunds) = match item.kind {
            wit::NotificationEventKind::Payment(payment_status) => {
                // A notification does not know the capture method: for an
                // automatic payment, the provider captures what it
                // authorized (Adyen sends no separate CAPTURE then).
                let payment_status = match payment_status {
                    wit::PaymentStatus::Authorized if payment.capture_method == "automatic" => {
                        wit::PaymentStatus::Captured
                    }
                    other => other,
                };
                // The item's amount is what was captured only when it
                // reports a capture (else it is the authorized amount).
                let amount_captured = matches!(payment_status, wit::PaymentStatus::Captured)
                    .then(|| item.amount.as_ref().map(|m| m.minor_units))
                    .flatten();
                let outcome = wit::PaymentOutcome {
                    status: payment_status,
                    connector_reference: learnt_reference,
                    provider_status: item.provider_status,
                    amount_authorized: None,
                    amount_captured,
                    connector_data: None,
                    three_ds: None,
                    capture_before_ms: None,
                };
                let (next, events) = apply_outcome(&payment, outcome, "notification");
                (next, events, Vec::new())
            }
            wit::NotificationEventKind::Refund((reference, refund_status)) => {
                let mut next = payment.clone();
                let mut refunds = Vec::new();
                let mut found = self
                    .store
                    .find_refund_by_connector_reference(&payment.id, &reference)
                    .await?;
                if found.is_none() {
                    // A refund whose answer was lost has no provider
                    // reference yet; connectors echo our refund id.
                    let ours = item.merchant_reference.as_deref();
                    found = self
                        .store
                        .list_refunds(&payment.id)
                        .await?
                        .into_iter()
                        .find(|r| Some(r.id.as_str()) == ours || r.id == reference);
                }
                if let Some(mut refund) = found {
                    if refund.connector_reference.is_none() {
                        refund.connector_reference = Some(reference.clone());
                    }
                    let was = refund.status.clone();
                    match refund_status {
                        wit::ModificationStatus::Succeeded if was == "pending" => {
                            refund.status = "succeeded".into();
                            refund.failure_code = None;
                            refund.failure_message = None;
                        }
                        // A refund can fail after the provider first
                        // reported it done (the acquirer refused it later).
                        wit::ModificationStatus::Refused(r) if was != "failed" => {
                            refund.status = "failed".into();
                            refund.failure_code = Some(r.code);
                            refund.failure_message = Some(r.reason);
                            next.amount_refunded -= refund.amount;
                        }
                        _ => {}
                    }
                    refund.updated_at = now_rfc3339();
                    refunds.push(refund);
                }
                let e = event(
                    &payment,
                    0,
                    Some(status),
                    status,
                    "notification",
                    json!({"event": item.event_id, "refund": reference}),
                );
                (next, vec![e], refunds)
            }
            wit::NotificationEventKind::Capture(capture_status) => {
                let amount = item.amount.as_ref().map(|m| m.minor_units as i64);
                let (next, events) =
                    apply_capture_notification(&payment, capture_status, amount, &item.event_id);
                (next, events, Vec::new())
            }
            wit::NotificationEventKind::Cancel(cancel_status) => {
                let mut next = payment.clone();
                let confirmed = matches!(cancel_status, wit::ModificationStatus::Succeeded);
                if !matches!(cancel_status, wit::ModificationStatus::Pending) {
                    next.cancel_pending = false;
                }
                let to = if confirmed && status.can_cancel() && payment.amount_captured == 0 {
                    next.status = PaymentStatus::Canceled.as_str().to_string();
                    next.next_action = None;
                    next.amount_capture_pending = 0;
                    PaymentStatus::Canceled
                } else {
                    status
                };
                let e = event(
                    &payment,
                    0,
                    Some(status),
                    to,
                    "notification",
                    json!({"event": item.event_id, "cancel": modification_label(&cancel_status)}),
                );
                (next, vec![e], Vec::new())
            }
            wit::NotificationEventKind::Other(_) => {
                let e = event(
                    &payment,
                    0,
                    Some(status),
                    status,
                    "notification",
                    json!({"event": item.event_id, "provider_status": item.provider_status}),
                );
                (payment.clone(), vec![e], Vec::new())
            }
        };
        if !self
            .write(
                &mut payment,
                next,
                events,
                refunds,
                Some(seen),
                Some(&mut lock),
            )
            .await?
        {
            tracing::info!(account = %account.id, event = %item.event_id, "duplicate notification ignored");
        }
        Ok(())
    }
}

/// What the webhook endpoint answers.
pub enum NotificationAnswer {
    Accepted {
        status: u16,
        content_type: String,
        body: String,
    },
    Rejected(wit::ConnectorError),
}

/// One capture as its events record it: what was sent under which key,
/// and whether its outcome is known.
#[derive(Debug, Clone)]
struct CaptureAttempt {
    psp_key: String,
    amount: u64,
    final_capture: bool,
    /// Once `amount_captured` reaches this, the capture is counted: what
    /// was captured and pending before it, plus its amount.
    counted_at: i64,
    /// Its outcome (done, accepted, refused) is written.
    settled: bool,
}

impl CaptureAttempt {
    /// The event detail recording this attempt, with `extra` members.
    fn detail(&self, extra: serde_json::Value) -> serde_json::Value {
        let mut detail = json!({
            "psp_key": self.psp_key,
            "amount": self.amount,
            "final": self.final_capture,
            "counted_at": self.counted_at,
        });
        if let (Some(d), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
            d.extend(extra);
        }
        detail
    }
}

/// The failure code of an operation refused because its connector ran as
/// many calls as it may (nothing reached the provider).
const CONNECTOR_BUSY: &str = "connector_busy";

/// Which send of a reserved capture or refund this is, with the payment's
/// lock when the operation's last write releases it (`None`: the janitor,
/// which releases its own).
enum Sending<'a> {
    /// Just reserved, never sent: a connector too busy to start the call
    /// means nothing reached the provider, so the reservation goes and the
    /// storefront's retry makes the operation afresh.
    First(Option<&'a mut PaymentLock>),
    /// Sent before (the storefront's retry, the janitor's follow-up): it
    /// may have reached the provider, so whatever happens it stays
    /// reserved until its outcome is known.
    Again(Option<&'a mut PaymentLock>),
}

impl<'a> Sending<'a> {
    fn is_first(&self) -> bool {
        matches!(self, Sending::First(_))
    }

    fn into_lock(self) -> Option<&'a mut PaymentLock> {
        match self {
            Sending::First(lock) | Sending::Again(lock) => lock,
        }
    }
}

/// Every capture attempt the events record, the latest state of each, the
/// newest first.
fn capture_attempts(events: &[PaymentEventRecord]) -> Vec<CaptureAttempt> {
    let mut attempts: Vec<CaptureAttempt> = Vec::new();
    // Keys whose latest attempt never ran (the connector was busy): as if
    // never made, so a retry under the same key reserves and sends anew.
    let mut never_sent: Vec<String> = Vec::new();
    for e in events.iter().rev() {
        let Some(detail) = e
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        else {
            continue;
        };
        let (Some(psp_key), Some(amount), Some(counted_at)) = (
            detail["psp_key"].as_str(),
            detail["amount"].as_u64(),
            detail["counted_at"].as_i64(),
        ) else {
            continue;
        };
        if attempts.iter().any(|a| a.psp_key == psp_key) || never_sent.iter().any(|k| k == psp_key)
        {
            continue;
        }
        if detail["not_sent"] == true {
            never_sent.push(psp_key.to_string());
            continue;
        }
        let settled = detail["in_flight"] != true && detail["unknown"] != true;
        attempts.push(CaptureAttempt {
            psp_key: psp_key.to_string(),
            amount,
            final_capture: detail["final"] == true,
            counted_at,
            settled,
        });
    }
    attempts
}

/// What the authorization needs of the storefront's request besides the
/// payment method (which is never stored, so a resumed creation takes it
/// from the retried request).
struct AuthorizeInput {
    merchant_id: String,
    reference: String,
    amount: u64,
    currency: String,
    capture_method: CaptureMethod,
    capture_delay_hours: Option<u32>,
    return_url: String,
    shopper: Option<ShopperInput>,
    metadata: BTreeMap<String, String>,
    idempotency_key: Option<String>,
}

impl AuthorizeInput {
    /// The storefront's request as its payment method and the rest.
    fn split(request: CreatePayment) -> (PaymentMethodInput, AuthorizeInput) {
        (
            request.payment_method,
            AuthorizeInput {
                merchant_id: request.merchant_id,
                reference: request.reference,
                amount: request.amount,
                currency: request.currency,
                capture_method: request.capture_method,
                capture_delay_hours: request.capture_delay_hours,
                return_url: request.return_url,
                shopper: request.shopper,
                metadata: request.metadata,
                idempotency_key: request.idempotency_key,
            },
        )
    }
}

/// The payment method as the connector gets it, with what is stored of it
/// (its type and a card's last four digits).
fn wit_payment_method(method: PaymentMethodInput) -> (String, Option<String>, wit::PaymentMethod) {
    match method {
        PaymentMethodInput::Card(card) => (
            "card".to_string(),
            Some(last4(&card.number)),
            wit::PaymentMethod::Card(wit::Card {
                number: card.number,
                exp_month: card.exp_month,
                exp_year: card.exp_year,
                cvc: card.cvc,
                holder_name: card.holder_name,
            }),
        ),
        PaymentMethodInput::Other { kind, details } => (
            kind.clone(),
            None,
            wit::PaymentMethod::Other(wit::OtherMethod {
                kind,
                details_json: details.to_string(),
            }),
        ),
    }
}

/// Whether the shopper's return must go to the connector: the outcome is
/// still open, or the provider's notification settled it first (it often
/// beats the browser back) but the 3-D Secure result, which only the
/// return's answer carries, is not known yet. The latter only shortly
/// after the last change, so an old payment's return URL cannot be used
/// to make the host call the provider again and again. A settled payment
/// only learns from it: the state machine moves forward only, and a
/// "canceled" return is recorded, never applied.
fn return_needs_connector(payment: &PaymentRecord) -> bool {
    const RECENT_MS: i64 = 15 * 60 * 1000;
    match status_of(payment) {
        PaymentStatus::RequiresAction | PaymentStatus::Processing => true,
        PaymentStatus::RequiresCapture
        | PaymentStatus::PartiallyCaptured
        | PaymentStatus::Succeeded
        | PaymentStatus::Failed => {
            payment.three_ds.is_none()
                && payment.payment_method_type == "card"
                && crate::crypto::parse_rfc3339_ms(&payment.updated_at)
                    .is_some_and(|at| now_unix_ms() - at < RECENT_MS)
        }
        PaymentStatus::Canceled => false,
    }
}

/// How a delayed capture is carried out.
struct CapturePlan {
    delay_hours: Option<u32>,
    /// The provider applies the delay (its native capture delay).
    by_provider: bool,
}

/// Checks `automatic_delayed` against the connector's capabilities: the
/// delay must fall inside the authorization's validity; the provider holds
/// it where its native delay reaches that far, the host otherwise.
fn capture_plan(
    request: &AuthorizeInput,
    capabilities: &wit::AccountCapabilities,
    validity_hours: u32,
) -> Result<CapturePlan, PaymentError> {
    let Some(hours) = request.capture_delay_hours else {
        return Ok(CapturePlan {
            delay_hours: None,
            by_provider: false,
        });
    };
    if hours >= validity_hours {
        return Err(PaymentError::Invalid {
            param: "capture_delay_hours".into(),
            message: format!(
                "the connector keeps an authorization {validity_hours} hours: capture_delay_hours must be less"
            ),
        });
    }
    Ok(CapturePlan {
        delay_hours: Some(hours),
        by_provider: capabilities
            .native_capture_delay_max_hours
            .is_some_and(|max| hours <= max),
    })
}

/// The validity a connector declares for a payment method type ("*" for
/// the rest); a connector that declares none gets the 1.0.0 default.
fn authorization_validity_hours(capabilities: &wit::AccountCapabilities, method: &str) -> u32 {
    let find = |name: &str| {
        capabilities
            .authorization_validity
            .iter()
            .find(|v| v.payment_method == name)
            .map(|v| v.hours)
    };
    find(method)
        .or_else(|| find("*"))
        .unwrap_or(DEFAULT_AUTHORIZATION_VALIDITY_HOURS)
}

/// Seven days: what the host assumes when a connector does not say.
const DEFAULT_AUTHORIZATION_VALIDITY_HOURS: u32 = 7 * 24;

/// The 3-D Secure result as the payment view shows it.
fn three_ds_json(result: &wit::ThreeDsResult) -> serde_json::Value {
    let status = match result.status {
        wit::ThreeDsStatus::Authenticated => "authenticated",
        wit::ThreeDsStatus::Attempted => "attempted",
        wit::ThreeDsStatus::NotEnrolled => "not_enrolled",
        wit::ThreeDsStatus::Failed => "failed",
        wit::ThreeDsStatus::Unavailable => "unavailable",
        wit::ThreeDsStatus::NotPerformed => "not_performed",
    };
    json!({
        "status": status,
        "version": result.version.as_deref().map(|v| crate::redact::clean_external_text(v, 16)),
        "liability_shift": result.liability_shift,
        "eci": result.eci.as_deref().map(|v| crate::redact::clean_external_text(v, 4)),
    })
}

fn check_supported(plugin: &LoadedPlugin, request: &CreatePayment) -> Result<(), PaymentError> {
    let info = &plugin.info;
    if !info.currencies.is_empty() && !info.currencies.iter().any(|c| c == &request.currency) {
        return Err(PaymentError::Invalid {
            param: "currency".into(),
            message: format!(
                "connector {} does not support {}",
                info.id, request.currency
            ),
        });
    }
    let method = match &request.payment_method {
        PaymentMethodInput::Card(_) => "card",
        PaymentMethodInput::Other { kind, .. } => kind.as_str(),
    };
    if !info.payment_methods.iter().any(|m| m == method) {
        return Err(PaymentError::Invalid {
            param: "payment_method.type".into(),
            message: format!(
                "connector {} does not support payment method {method:?}",
                info.id
            ),
        });
    }
    Ok(())
}

/// The key the provider dedupes on: stable for a merchant's retry with the
/// same Idempotency-Key, fresh otherwise.
fn psp_idempotency_key(payment_id: &str, operation: &str, merchant_key: Option<&str>) -> String {
    match merchant_key {
        Some(key) => {
            use sha2::{Digest, Sha256};
            let digest = Sha256::digest(format!("{payment_id}\u{0}{operation}\u{0}{key}"));
            format!("psr-{}", hex::encode(&digest[..16]))
        }
        None => format!("psr-{payment_id}-{operation}"),
    }
}

fn status_of(payment: &PaymentRecord) -> PaymentStatus {
    PaymentStatus::parse(&payment.status).unwrap_or(PaymentStatus::Processing)
}

fn money(payment: &PaymentRecord, amount: u64) -> wit::Money {
    wit::Money {
        minor_units: amount,
        currency: payment.currency.clone(),
    }
}

fn payment_ref(payment: &PaymentRecord) -> wit::PaymentRef {
    wit::PaymentRef {
        payment_id: payment.id.clone(),
        reference: payment.reference.clone(),
        amount: money(payment, payment.amount as u64),
        connector_reference: payment.connector_reference.clone(),
        connector_data: payment.connector_data.clone(),
    }
}

fn event(
    payment: &PaymentRecord,
    seq: i64,
    from: Option<PaymentStatus>,
    to: PaymentStatus,
    cause: &str,
    detail: serde_json::Value,
) -> PaymentEventRecord {
    PaymentEventRecord {
        id: new_id("evt"),
        payment_id: payment.id.clone(),
        seq,
        from_status: from.map(|s| s.as_str().to_string()),
        to_status: to.as_str().to_string(),
        cause: cause.to_string(),
        detail: Some(detail.to_string()),
        created_at: now_rfc3339(),
    }
}

fn connector_error(error: wit::ConnectorError) -> PaymentError {
    match error.kind {
        wit::ErrorKind::Retryable => PaymentError::ConnectorUnavailable {
            message: format!(
                "{}: {} (the outcome is unknown; retry with the same Idempotency-Key or sync)",
                error.code, error.message
            ),
        },
        wit::ErrorKind::InvalidConfig => PaymentError::ConnectorMisconfigured {
            message: format!("{}: {}", error.code, error.message),
        },
        wit::ErrorKind::InvalidRequest => PaymentError::Invalid {
            param: error.field.unwrap_or_else(|| "amount".into()),
            message: error.message,
        },
        wit::ErrorKind::Unsupported => PaymentError::InvalidState {
            code: "operation_unsupported",
            message: error.message,
        },
        wit::ErrorKind::Rejected | wit::ErrorKind::InvalidSignature => PaymentError::Declined {
            code: error.code,
            message: error.message,
        },
    }
}

/// The payment after a connector error on authorization.
fn apply_authorize_error(
    payment: &PaymentRecord,
    error: &wit::ConnectorError,
) -> (PaymentRecord, Vec<PaymentEventRecord>) {
    let from = status_of(payment);
    // Retryable: the provider may have authorized; keep `processing` so a
    // sync settles it. Anything else is a definite failure.
    let to = if error.kind == wit::ErrorKind::Retryable {
        PaymentStatus::Processing
    } else {
        PaymentStatus::Failed
    };
    let mut next = payment.clone();
    next.status = to.as_str().to_string();
    next.failure_code = Some(error.code.clone());
    next.failure_message = Some(error.message.clone());
    let e = event(
        payment,
        0,
        Some(from),
        to,
        "api.create",
        json!({"error": {"kind": format!("{:?}", error.kind), "code": error.code, "message": error.message}}),
    );
    (next, vec![e])
}

/// Moves a payment according to what the connector says, forward only.
fn apply_outcome(
    payment: &PaymentRecord,
    outcome: wit::PaymentOutcome,
    cause: &str,
) -> (PaymentRecord, Vec<PaymentEventRecord>) {
    let from = status_of(payment);
    let mut next = payment.clone();
    if let Some(reference) = outcome.connector_reference {
        next.connector_reference = Some(reference);
    }
    if let Some(provider_status) = outcome.provider_status.clone() {
        next.provider_status = Some(provider_status);
    }
    if let Some(three_ds) = &outcome.three_ds {
        next.three_ds = Some(three_ds_json(three_ds).to_string());
    }
    if let Some(before) = outcome.capture_before_ms {
        if payment.capture_method != "automatic" {
            next.capture_before_ms = Some(i64::try_from(before).unwrap_or(i64::MAX));
        }
    }
    if let Some(data) = outcome.connector_data {
        if data.len() <= MAX_CONNECTOR_DATA_BYTES {
            next.connector_data = Some(data);
        } else {
            tracing::warn!(payment = %payment.id, "connector-data over 16 KiB dropped");
        }
    }
    let amount = payment.amount;
    let to = match outcome.status {
        wit::PaymentStatus::Authorized => {
            next.amount_authorized = outcome
                .amount_authorized
                .map_or(amount, |a| a as i64)
                .min(amount);
            // Still authorized, with part of it captured (a partial
            // capture whose answer was lost shows here on a sync).
            let captured = outcome
                .amount_captured
                .map_or(0, |a| a as i64)
                .min(next.amount_authorized);
            if captured > next.amount_captured {
                let before = next.amount_captured;
                next.amount_captured = captured;
                next.amount_capture_pending =
                    (next.amount_capture_pending - (captured - before)).max(0);
                if captured >= next.amount_authorized {
                    PaymentStatus::Succeeded
                } else {
                    PaymentStatus::PartiallyCaptured
                }
            } else if from == PaymentStatus::PartiallyCaptured {
                PaymentStatus::PartiallyCaptured
            } else {
                PaymentStatus::RequiresCapture
            }
        }
        wit::PaymentStatus::Captured => {
            next.amount_authorized = amount;
            let captured = outcome
                .amount_captured
                .map_or(amount, |a| a as i64)
                .min(amount);
            let before = next.amount_captured;
            next.amount_captured = next.amount_captured.max(captured);
            // What the provider now reports as captured settles pending captures.
            next.amount_capture_pending =
                (next.amount_capture_pending - (next.amount_captured - before)).max(0);
            if next.amount_captured >= next.amount_authorized || payment.capture_method != "manual"
            {
                PaymentStatus::Succeeded
            } else {
                PaymentStatus::PartiallyCaptured
            }
        }
        wit::PaymentStatus::Pending => PaymentStatus::Processing,
        wit::PaymentStatus::RequiresAction(redirect) => {
            let method = match redirect.method {
                wit::HttpMethod::Get => "GET",
                wit::HttpMethod::Post => "POST",
            };
            let mut action = json!({"type": "redirect", "url": redirect.url, "method": method});
            if !redirect.form.is_empty() {
                let form: serde_json::Map<String, serde_json::Value> = redirect
                    .form
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect();
                action["form"] = serde_json::Value::Object(form);
            }
            if from.can_become(PaymentStatus::RequiresAction)
                || from == PaymentStatus::RequiresAction
            {
                next.next_action = Some(action.to_string());
            }
            PaymentStatus::RequiresAction
        }
        wit::PaymentStatus::Refused(refusal) => {
            if from.can_become(PaymentStatus::Failed) {
                next.failure_code = Some(refusal.code);
                next.failure_message = Some(refusal.reason);
            }
            PaymentStatus::Failed
        }
        wit::PaymentStatus::Canceled => {
            next.cancel_pending = false;
            PaymentStatus::Canceled
        }
    };
    let detail = json!({
        "provider_status": outcome.provider_status,
        "amount_captured": next.amount_captured,
    });
    if from == to || from.can_become(to) {
        if from != to || next != *payment {
            next.status = to.as_str().to_string();
            if to != PaymentStatus::RequiresAction {
                next.next_action = None;
            }
            // A move to a good state clears an earlier failure; the same
            // state told again (a repeated notification) keeps what the
            // payment says (a capture after a cancellation, say).
            if from != to && !matches!(to, PaymentStatus::Failed | PaymentStatus::Processing) {
                next.failure_code = None;
                next.failure_message = None;
            }
            let e = event(payment, 0, Some(from), to, cause, detail);
            return (next, vec![e]);
        }
        return (next, Vec::new());
    }
    if from == PaymentStatus::Canceled && next.amount_captured > payment.amount_captured {
        // The provider says it captured after the cancellation (a capture
        // it had accepted before): money was taken. The payment stays
        // canceled, but the amount counts, so the merchant sees it and can
        // refund it through the API.
        let mut late = payment.clone();
        captured_after_cancel(&mut late, next.amount_captured - payment.amount_captured);
        let e = event(
            payment,
            0,
            Some(from),
            from,
            cause,
            json!({"late_capture": true, "amount_captured": late.amount_captured, "provider_status": outcome.provider_status}),
        );
        return (late, vec![e]);
    }
    // A stale signal (say, AUTHORISED after a capture): record it, change nothing.
    let e = event(
        payment,
        0,
        Some(from),
        from,
        cause,
        json!({"ignored": to.as_str(), "provider_status": outcome.provider_status}),
    );
    (payment.clone(), vec![e])
}

fn modification_label(status: &wit::ModificationStatus) -> serde_json::Value {
    match status {
        wit::ModificationStatus::Succeeded => json!("succeeded"),
        wit::ModificationStatus::Pending => json!("pending"),
        wit::ModificationStatus::Refused(r) => {
            json!({"refused": {"code": r.code, "reason": r.reason}})
        }
    }
}

/// Counts `amount` the provider captured on a canceled payment (a capture
/// it had accepted before the cancellation): money was taken, so it shows,
/// and the API can refund it. The payment stays canceled.
fn captured_after_cancel(payment: &mut PaymentRecord, amount: i64) {
    payment.amount_captured += amount;
    payment.failure_code = Some("captured_after_cancel".into());
    payment.failure_message = Some(format!(
        "the provider captured {amount} after the payment was canceled; refund it if it is not owed"
    ));
    tracing::warn!(payment = %payment.id, amount, "capture confirmed on a canceled payment");
}

/// A provider confirms or refuses a capture it had accepted: move the
/// amount from pending into captured, or release it.
fn apply_capture_notification(
    payment: &PaymentRecord,
    capture_status: wit::ModificationStatus,
    amount: Option<i64>,
    event_id: &str,
) -> (PaymentRecord, Vec<PaymentEventRecord>) {
    let from = status_of(payment);
    let mut next = payment.clone();
    // Without an amount, the notification speaks of everything pending.
    let amount = amount.unwrap_or(payment.amount_capture_pending).max(0);
    if !matches!(capture_status, wit::ModificationStatus::Pending) {
        next.amount_capture_pending -= amount.min(next.amount_capture_pending);
    }
    let mut to = from;
    let mut late = false;
    if matches!(capture_status, wit::ModificationStatus::Succeeded)
        && from == PaymentStatus::Canceled
    {
        // The provider captured after all (a capture it had accepted
        // before the cancellation): money was taken. The payment stays
        // canceled, but the amount is counted, so the merchant sees it and
        // can refund it through the API.
        let room = (next.amount_authorized.max(next.amount) - next.amount_captured).max(0);
        captured_after_cancel(&mut next, amount.min(room));
        late = true;
    } else if matches!(capture_status, wit::ModificationStatus::Succeeded) && from.can_capture() {
        // A capture made in the provider's back office counts too, within
        // the authorization.
        let room = (next.amount_authorized - next.amount_captured).max(0);
        next.amount_captured += amount.min(room);
        to = if next.amount_captured >= next.amount_authorized {
            PaymentStatus::Succeeded
        } else {
            PaymentStatus::PartiallyCaptured
        };
    }
    next.status = to.as_str().to_string();
    let e = event(
        payment,
        0,
        Some(from),
        to,
        "notification",
        json!({"event": event_id, "capture": modification_label(&capture_status), "amount": amount, "late_capture": late}),
    );
    (next, vec![e])
}

fn append_query(url: &str, key: &str, value: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            parsed.query_pairs_mut().append_pair(key, value);
            parsed.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// Refuses an operation the connector does not declare in `describe`,
/// before anything is written or sent: the storefront learns it at once
/// instead of from a provider error after a reservation.
fn require_operation(plugin: &LoadedPlugin, operation: wit::Operation) -> Result<(), PaymentError> {
    if plugin.info.operations.contains(&operation) {
        return Ok(());
    }
    Err(PaymentError::InvalidState {
        code: "operation_unsupported",
        message: format!(
            "connector {} does not support {}",
            plugin.id(),
            crate::runtime::manifest::operation_name(operation)
        ),
    })
}
