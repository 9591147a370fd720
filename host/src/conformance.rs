//! `passerelle plugin test`: the conformance kit a connector author runs
//! before publishing a package.
//!
//! It installs the package in a private runtime (same limits as the
//! server), points a test account at the embedded PSP sandbox (or at
//! `--against URL`) and runs a fixed list of scenarios: the checks the
//! host relies on when it routes real payments through a connector. Each
//! scenario passes, fails or is skipped (the connector does not declare the
//! operation it needs), with a one-line reason and its duration. Any
//! [`PluginError`] (a trap, a limit hit) is a failure: the server would cut
//! the plugin off for it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::egress::Egress;
use crate::package::{Package, PackagePolicy};
use crate::runtime::bindings::types::{
    Account, AuthorizeRequest, BrowserInfo, CancelRequest, CaptureMethod, CaptureRequest, Card,
    ConnectorError, ConnectorInfo, Environment, ErrorKind, HttpHeader, ModificationOutcome,
    ModificationStatus, Money, Notification, Operation, OtherMethod, PaymentMethod, PaymentOutcome,
    PaymentRef, PaymentStatus, RefundRequest, Shopper,
};
use crate::runtime::manifest::operation_name;
use crate::runtime::{LoadedPlugin, PluginError, PluginRuntime, RuntimeLimits};

/// The card the kit pays with unless told otherwise: every simulator of the
/// sandbox authorizes it without 3-D Secure (`docs/sandbox/*.md`).
pub const DEFAULT_CARD: &str = "4111111111111111";
/// Amount of the test payments, in minor units.
const AMOUNT: u64 = 1000;
const CAPTURE: u64 = 600;
const REFUND: u64 = 200;
/// ISO 4217's code for testing: no provider settles it, and it is not in
/// the host's currency table, so a connector must refuse it.
const UNSUPPORTED_CURRENCY: &str = "XTS";

/// Plugin ids with a simulator in the embedded sandbox.
pub use passerelle_sandbox::PROVIDERS as SANDBOX_PROVIDERS;

#[derive(Debug, Clone, Default)]
pub struct KitOptions {
    /// The PSP base URL for the test account; default: the embedded sandbox.
    pub against: Option<String>,
    /// Account credentials; default: the sandbox's test credentials for
    /// known ids, else none.
    pub credentials: Option<BTreeMap<String, String>>,
    /// Card number for the authorizations (default [`DEFAULT_CARD`]).
    pub card: Option<String>,
    /// Merchant reference of the authorizations (default: unique per run).
    /// Some simulators pick outcomes from it.
    pub reference: Option<String>,
    /// Keys to check the package's signature with (default: none, so a
    /// signature is reported as `untrusted`, never required).
    pub trusted: crate::package::TrustedKeys,
}

/// Why the kit could not run at all (as opposed to a failing scenario).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error(
        "no sandbox simulator for plugin {0:?} (there are: {list}); give the PSP's test URL with --against",
        list = SANDBOX_PROVIDERS.join(", ")
    )]
    NoSimulator(String),
    #[error("cannot start the PSP sandbox: {0}")]
    Sandbox(std::io::Error),
    #[error("cannot set up the plugin runtime: {0}")]
    Runtime(String),
    #[error("the plugin does not load: {0}")]
    Install(PluginError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub plugin: String,
    pub version: String,
    pub digest: String,
    /// `signed`, `unsigned`, `untrusted` or `invalid: ...` (against the
    /// keys given, if any: a signature is reported, not required).
    pub trust: String,
    /// Where the test account pointed.
    pub target: String,
    pub scenarios: Vec<ScenarioResult>,
}

impl Report {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.scenarios
            .iter()
            .filter(|s| s.verdict == verdict)
            .count()
    }

    pub fn passed(&self) -> bool {
        self.count(Verdict::Fail) == 0
    }

    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Conformance of {} {} (digest {}, {})\nPSP: {}\n\n",
            self.plugin, self.version, self.digest, self.trust, self.target
        );
        let width = self
            .scenarios
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        for s in &self.scenarios {
            out.push_str(&format!(
                "{:<4}  {:<width$}  {:>6} ms  {}\n",
                s.verdict.as_str().to_uppercase(),
                s.name,
                s.duration_ms,
                s.detail
            ));
        }
        out.push_str(&format!(
            "\n{} passed, {} failed, {} skipped\n",
            self.count(Verdict::Pass),
            self.count(Verdict::Fail),
            self.count(Verdict::Skip)
        ));
        out
    }
}

/// The scenarios, in the order they run (later ones use the payment the
/// `authorize` scenario made).
#[derive(Debug, Clone, Copy)]
enum Scenario {
    Describe,
    ValidateEmpty,
    ValidateGiven,
    Authorize,
    PartialCapture,
    PartialRefund,
    Sync,
    Cancel,
    Notification,
    UnsupportedCurrency,
    ZeroAmount,
}

/// (scenario, name, operations it needs: any of them).
const SCENARIOS: &[(Scenario, &str, &[Operation])] = &[
    (Scenario::Describe, "describe", &[]),
    (Scenario::ValidateEmpty, "validate-config-empty", &[]),
    (Scenario::ValidateGiven, "validate-config", &[]),
    (Scenario::Authorize, "authorize", &[Operation::Authorize]),
    (
        Scenario::PartialCapture,
        "partial-capture",
        &[Operation::PartialCapture, Operation::Capture],
    ),
    (
        Scenario::PartialRefund,
        "partial-refund",
        &[Operation::PartialRefund, Operation::Refund],
    ),
    (Scenario::Sync, "sync", &[Operation::Sync]),
    (Scenario::Cancel, "authorize-cancel", &[Operation::Cancel]),
    (
        Scenario::Notification,
        "notification-garbage",
        &[Operation::Notifications],
    ),
    (
        Scenario::UnsupportedCurrency,
        "unsupported-currency",
        &[Operation::Authorize],
    ),
    (Scenario::ZeroAmount, "zero-amount", &[Operation::Authorize]),
];

type Outcome = (Verdict, String);

fn pass(detail: impl Into<String>) -> Outcome {
    (Verdict::Pass, detail.into())
}

fn fail(detail: impl Into<String>) -> Outcome {
    (Verdict::Fail, detail.into())
}

fn skip(detail: impl Into<String>) -> Outcome {
    (Verdict::Skip, detail.into())
}

fn describe_error(e: &ConnectorError) -> String {
    format!("{} error {}: {}", kind_name(e.kind), e.code, e.message)
}

/// The WIT name of an error kind.
fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Retryable => "retryable",
        ErrorKind::Rejected => "rejected",
        ErrorKind::InvalidConfig => "invalid-config",
        ErrorKind::InvalidRequest => "invalid-request",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::InvalidSignature => "invalid-signature",
    }
}

fn status_name(status: &PaymentStatus) -> String {
    match status {
        PaymentStatus::Authorized => "authorized".into(),
        PaymentStatus::Captured => "captured".into(),
        PaymentStatus::Pending => "pending".into(),
        PaymentStatus::RequiresAction(_) => "requires-action".into(),
        PaymentStatus::Refused(r) => format!("refused ({}: {})", r.code, r.reason),
        PaymentStatus::Canceled => "canceled".into(),
    }
}

/// Runs the kit on a package.
pub async fn run(package: &Package, options: KitOptions) -> Result<Report, KitError> {
    let id = package.manifest.id.clone();
    let trust = match (PackagePolicy {
        trusted: options.trusted.clone(),
        allow_unsigned: true,
    })
    .verify(package)
    {
        Ok(trust) => trust.as_str().to_string(),
        Err(e) => format!("invalid: {e}"),
    };
    let (sandbox, base_url) = match &options.against {
        Some(url) => (None, url.trim_end_matches('/').to_string()),
        None => {
            if !SANDBOX_PROVIDERS.contains(&id.as_str()) {
                return Err(KitError::NoSimulator(id));
            }
            let sandbox =
                passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig::default())
                    .await
                    .map_err(KitError::Sandbox)?;
            let url = sandbox
                .provider_base_url(&id)
                .ok_or_else(|| KitError::NoSimulator(id.clone()))?;
            (Some(sandbox), url)
        }
    };
    let target = match &sandbox {
        Some(_) => format!("embedded sandbox, {base_url}"),
        None => base_url.clone(),
    };
    let result = run_against(package, &options, &base_url).await;
    if let Some(sandbox) = sandbox {
        sandbox.stop().await;
    }
    let (version, scenarios) = result?;
    Ok(Report {
        plugin: id,
        version,
        digest: package.digest(),
        trust,
        target,
        scenarios,
    })
}

async fn run_against(
    package: &Package,
    options: &KitOptions,
    base_url: &str,
) -> Result<(String, Vec<ScenarioResult>), KitError> {
    let egress = Egress::new().map_err(|e| KitError::Runtime(e.to_string()))?;
    let runtime = PluginRuntime::new(RuntimeLimits::default(), egress)
        .map_err(|e| KitError::Runtime(e.to_string()))?;
    let plugin = runtime
        .install(&package.manifest_toml, &package.component)
        .await
        .map_err(KitError::Install)?;
    let credentials = options
        .credentials
        .clone()
        .or_else(|| crate::demo::sandbox_credentials(&plugin.manifest.id))
        .unwrap_or_default();
    let nonce = crate::crypto::new_id("conf");
    let mut kit = Kit {
        runtime,
        info: plugin.info.clone(),
        plugin,
        account: Account {
            id: "acc_conformance".into(),
            environment: Environment::Test,
            base_url: Some(base_url.to_string()),
            config: credentials.into_iter().collect(),
        },
        card: options
            .card
            .clone()
            .unwrap_or_else(|| DEFAULT_CARD.to_string()),
        reference: options.reference.clone().unwrap_or_else(|| nonce.clone()),
        nonce,
        counter: 0,
        payment: None,
    };
    let mut results = Vec::new();
    for (scenario, name, needs) in SCENARIOS {
        let started = Instant::now();
        let (verdict, detail) =
            if !needs.is_empty() && !needs.iter().any(|op| kit.info.operations.contains(op)) {
                let names: Vec<&str> = needs.iter().map(|op| operation_name(*op)).collect();
                skip(format!(
                    "the plugin does not declare {}",
                    names.join(" or ")
                ))
            } else {
                kit.run(*scenario).await
            };
        results.push(ScenarioResult {
            name,
            verdict,
            detail,
            duration_ms: duration_ms(started.elapsed()),
        });
    }
    Ok((kit.plugin.manifest.version.clone(), results))
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The payment the `authorize` scenario made, as later scenarios see it.
struct TestPayment {
    payment: PaymentRef,
    status: PaymentStatus,
    captured: Option<ModificationStatus>,
    refunded: Option<ModificationStatus>,
}

struct Kit {
    runtime: PluginRuntime,
    plugin: Arc<LoadedPlugin>,
    info: ConnectorInfo,
    account: Account,
    card: String,
    reference: String,
    nonce: String,
    counter: u32,
    payment: Option<TestPayment>,
}

impl Kit {
    async fn run(&mut self, scenario: Scenario) -> Outcome {
        match scenario {
            Scenario::Describe => self.describe(),
            Scenario::ValidateEmpty => self.validate_empty().await,
            Scenario::ValidateGiven => self.validate_given().await,
            Scenario::Authorize => self.authorize_first().await,
            Scenario::PartialCapture => self.partial_capture().await,
            Scenario::PartialRefund => self.partial_refund().await,
            Scenario::Sync => self.sync().await,
            Scenario::Cancel => self.authorize_cancel().await,
            Scenario::Notification => self.notification().await,
            Scenario::UnsupportedCurrency => {
                self.must_refuse(UNSUPPORTED_CURRENCY, AMOUNT, "currency XTS")
                    .await
            }
            Scenario::ZeroAmount => self.must_refuse(&self.currency(), 0, "amount 0").await,
        }
    }

    fn describe(&self) -> Outcome {
        let info = &self.info;
        let manifest = &self.plugin.manifest;
        let mut problems = Vec::new();
        if info.id != manifest.id {
            problems.push(format!(
                "id {:?} is not the manifest's {:?}",
                info.id, manifest.id
            ));
        }
        if info.version != manifest.version {
            problems.push(format!(
                "version {:?} is not the manifest's {:?}",
                info.version, manifest.version
            ));
        }
        if info.name.trim().is_empty() {
            problems.push("empty name".into());
        }
        let ops: BTreeSet<&str> = info.operations.iter().map(|o| operation_name(*o)).collect();
        if ops.len() != info.operations.len() {
            problems.push("an operation is listed twice".into());
        }
        if info.payment_methods.iter().any(|m| m.trim().is_empty()) {
            problems.push("an empty payment method".into());
        }
        for currency in &info.currencies {
            if !passerelle_currency::is_known(currency) {
                problems.push(format!("{currency:?} is not an ISO 4217 currency code"));
            }
        }
        let mut names = BTreeSet::new();
        for field in &info.credential_fields {
            if field.name.trim().is_empty() {
                problems.push("a credential field has no name".into());
            } else if !names.insert(field.name.as_str()) {
                problems.push(format!("credential field {:?} is listed twice", field.name));
            }
        }
        if let Err(e) = manifest.check_describe(info) {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            pass(format!(
                "{} operations, methods [{}], currencies [{}], {} credential fields",
                info.operations.len(),
                info.payment_methods.join(", "),
                if info.currencies.is_empty() {
                    "any".to_string()
                } else {
                    info.currencies.join(", ")
                },
                info.credential_fields.len()
            ))
        } else {
            fail(problems.join("; "))
        }
    }

    async fn validate_empty(&self) -> Outcome {
        if !self.info.credential_fields.iter().any(|f| f.required) {
            return skip("the plugin declares no required credential");
        }
        let account = Account {
            config: Vec::new(),
            ..self.account.clone()
        };
        match self.runtime.validate_config(&self.plugin, account).await {
            Err(e) => fail(e.to_string()),
            Ok(Ok(())) => fail("an account without its required credentials was accepted"),
            Ok(Err(e)) if e.kind == ErrorKind::InvalidConfig => {
                pass(format!("refused: {}", describe_error(&e)))
            }
            Ok(Err(e)) => fail(format!(
                "expected invalid-config, got {}",
                describe_error(&e)
            )),
        }
    }

    async fn validate_given(&self) -> Outcome {
        match self
            .runtime
            .validate_config(&self.plugin, self.account.clone())
            .await
        {
            Err(e) => fail(e.to_string()),
            Ok(Ok(())) => pass(format!(
                "{} credential values accepted",
                self.account.config.len()
            )),
            Ok(Err(e)) => fail(format!(
                "refused the test credentials: {}",
                describe_error(&e)
            )),
        }
    }

    /// A currency the connector takes: EUR unless it lists others.
    fn currency(&self) -> String {
        let c = &self.info.currencies;
        if c.is_empty() || c.iter().any(|c| c == "EUR") {
            "EUR".into()
        } else {
            c[0].clone()
        }
    }

    fn payment_method(&self) -> PaymentMethod {
        let methods = &self.info.payment_methods;
        match methods.first() {
            Some(kind) if !methods.iter().any(|m| m == "card") => {
                PaymentMethod::Other(OtherMethod {
                    kind: kind.clone(),
                    details_json: "{}".into(),
                })
            }
            _ => PaymentMethod::Card(Card {
                number: self.card.clone(),
                exp_month: 3,
                exp_year: 2030,
                cvc: Some("737".into()),
                holder_name: Some("Ada Lovelace".into()),
            }),
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}_{}_{}", self.nonce, self.counter)
    }

    async fn authorize(
        &mut self,
        currency: &str,
        amount: u64,
    ) -> Result<(PaymentRef, Result<PaymentOutcome, ConnectorError>), PluginError> {
        let payment_id = self.next_id("pay");
        let reference = if self.counter == 1 {
            self.reference.clone()
        } else {
            format!("{}-{}", self.reference, self.counter)
        };
        let money = Money {
            minor_units: amount,
            currency: currency.to_string(),
        };
        let request = AuthorizeRequest {
            payment_id: payment_id.clone(),
            reference: reference.clone(),
            amount: money.clone(),
            capture_method: CaptureMethod::Manual,
            capture_delay_hours: None,
            payment_method: self.payment_method(),
            // What a browser reports: providers that authenticate (3-D
            // Secure 2) refuse or soft-decline without it.
            shopper: Some(Shopper {
                email: Some("shopper@example.com".into()),
                ip_address: Some("192.0.2.10".into()),
                browser: Some(BrowserInfo {
                    accept_header: "text/html,application/xhtml+xml".into(),
                    user_agent: "Mozilla/5.0 (X11; Linux x86_64) Passerelle-conformance".into(),
                    language: "fr-FR".into(),
                    color_depth: 24,
                    screen_height: 1080,
                    screen_width: 1920,
                    time_zone_offset: -60,
                    java_enabled: false,
                    javascript_enabled: true,
                }),
                origin: Some("https://shop.example".into()),
            }),
            return_url: format!("https://shop.example/return/{payment_id}"),
            // Simulators post notifications here: the discard port of the
            // loopback, so they fail at once instead of going to the network.
            notification_url: "http://127.0.0.1:9/v1/webhooks/acc_conformance".into(),
            idempotency_key: self.next_id("idem"),
            metadata: Vec::new(),
        };
        let outcome = self
            .runtime
            .authorize(&self.plugin, self.account.clone(), request)
            .await?;
        let payment = PaymentRef {
            payment_id,
            reference,
            amount: money,
            connector_reference: outcome
                .as_ref()
                .ok()
                .and_then(|o| o.connector_reference.clone()),
            connector_data: outcome.as_ref().ok().and_then(|o| o.connector_data.clone()),
        };
        Ok((payment, outcome))
    }

    async fn authorize_first(&mut self) -> Outcome {
        let currency = self.currency();
        let (payment, outcome) = match self.authorize(&currency, AMOUNT).await {
            Err(e) => return fail(e.to_string()),
            Ok(r) => r,
        };
        let outcome = match outcome {
            Err(e) => {
                return fail(format!(
                    "a {AMOUNT} {currency} test payment failed: {}",
                    describe_error(&e)
                ))
            }
            Ok(outcome) => outcome,
        };
        let status = status_name(&outcome.status);
        if matches!(
            outcome.status,
            PaymentStatus::Authorized | PaymentStatus::Captured
        ) && outcome.connector_reference.is_none()
        {
            return fail(format!("{status} without a connector reference"));
        }
        if let Some(captured) = outcome.amount_captured {
            if captured > AMOUNT {
                return fail(format!("reports {captured} captured of {AMOUNT}"));
            }
        }
        let detail = format!(
            "{status}{}",
            outcome
                .connector_reference
                .as_deref()
                .map(|r| format!(", reference {r}"))
                .unwrap_or_default()
        );
        self.payment = Some(TestPayment {
            payment,
            status: outcome.status,
            captured: None,
            refunded: None,
        });
        pass(detail)
    }

    /// The authorized payment, or why the scenario cannot run.
    fn authorized(&self) -> Result<&TestPayment, Outcome> {
        match &self.payment {
            None => Err(skip("no payment (authorize did not succeed)")),
            Some(p) if matches!(p.status, PaymentStatus::Authorized) => Ok(p),
            Some(p) => Err(skip(format!(
                "the test payment is {}, not authorized",
                status_name(&p.status)
            ))),
        }
    }

    fn modification(
        result: Result<Result<ModificationOutcome, ConnectorError>, PluginError>,
        what: &str,
    ) -> (Outcome, Option<ModificationStatus>) {
        match result {
            Err(e) => (fail(e.to_string()), None),
            Ok(Err(e)) => (fail(format!("{what}: {}", describe_error(&e))), None),
            Ok(Ok(outcome)) => match outcome.status {
                ModificationStatus::Refused(r) => (
                    fail(format!("{what} refused: {}: {}", r.code, r.reason)),
                    None,
                ),
                status => {
                    let word = if matches!(status, ModificationStatus::Pending) {
                        "pending"
                    } else {
                        "succeeded"
                    };
                    (pass(format!("{what} {word}")), Some(status))
                }
            },
        }
    }

    async fn partial_capture(&mut self) -> Outcome {
        let partial = self.info.operations.contains(&Operation::PartialCapture);
        let payment = match self.authorized() {
            Ok(p) => p.payment.clone(),
            Err(outcome) => return outcome,
        };
        let amount = if partial { CAPTURE } else { AMOUNT };
        let request = CaptureRequest {
            amount: Money {
                minor_units: amount,
                currency: payment.amount.currency.clone(),
            },
            payment,
            final_capture: true,
            idempotency_key: self.next_id("idem"),
        };
        let result = self
            .runtime
            .capture(&self.plugin, self.account.clone(), request)
            .await;
        let what = format!(
            "{} capture of {amount}/{AMOUNT}",
            if partial { "partial" } else { "full" }
        );
        let (outcome, status) = Self::modification(result, &what);
        if let Some(p) = &mut self.payment {
            p.captured = status;
        }
        outcome
    }

    async fn partial_refund(&mut self) -> Outcome {
        let partial = self.info.operations.contains(&Operation::PartialRefund);
        let (payment, captured) = match &self.payment {
            Some(TestPayment {
                payment,
                captured: Some(ModificationStatus::Succeeded | ModificationStatus::Pending),
                ..
            }) => {
                // A pending capture (Adyen confirms captures by notification)
                // is refundable: providers queue the refund behind it.
                let captured = if self.info.operations.contains(&Operation::PartialCapture) {
                    CAPTURE
                } else {
                    AMOUNT
                };
                (payment.clone(), captured)
            }
            _ => return skip("nothing captured to refund"),
        };
        let amount = if partial { REFUND } else { captured };
        let request = RefundRequest {
            refund_id: self.next_id("re"),
            amount: Money {
                minor_units: amount,
                currency: payment.amount.currency.clone(),
            },
            payment,
            reason: Some("conformance kit".into()),
            idempotency_key: self.next_id("idem"),
        };
        let result = self
            .runtime
            .refund(&self.plugin, self.account.clone(), request)
            .await;
        let what = format!(
            "{} refund of {amount}/{captured}",
            if partial { "partial" } else { "full" }
        );
        let (outcome, status) = Self::modification(result, &what);
        if let Some(p) = &mut self.payment {
            p.refunded = status;
        }
        outcome
    }

    async fn sync(&mut self) -> Outcome {
        let Some(test) = &self.payment else {
            return skip("no payment (authorize did not succeed)");
        };
        let captured = matches!(test.captured, Some(ModificationStatus::Succeeded));
        let expected: &[&str] = match (&test.status, captured) {
            (PaymentStatus::Authorized, true) => &["captured"],
            (PaymentStatus::Authorized, false) if test.captured.is_some() => {
                &["authorized", "captured", "pending"]
            }
            (PaymentStatus::Authorized, false) => &["authorized"],
            (PaymentStatus::Captured, _) => &["captured"],
            (PaymentStatus::Pending, _) => &["pending", "authorized", "captured"],
            (PaymentStatus::RequiresAction(_), _) => &["requires-action", "pending"],
            (PaymentStatus::Refused(_), _) => &["refused"],
            (PaymentStatus::Canceled, _) => &["canceled"],
        };
        let refunded = test.refunded.is_some();
        let payment = test.payment.clone();
        let outcome = match self
            .runtime
            .sync(&self.plugin, self.account.clone(), payment)
            .await
        {
            Err(e) => return fail(e.to_string()),
            Ok(Err(e)) => return fail(describe_error(&e)),
            Ok(Ok(outcome)) => outcome,
        };
        let name = status_name(&outcome.status);
        let word = name.split(' ').next().unwrap_or_default();
        if !expected.contains(&word) {
            return fail(format!(
                "says {name}; after what happened expected {}",
                expected.join(" or ")
            ));
        }
        if let Some(authorized) = outcome.amount_authorized {
            if authorized > AMOUNT {
                return fail(format!("reports {authorized} authorized of {AMOUNT}"));
            }
        }
        if let Some(amount) = outcome.amount_captured {
            let partial = self.info.operations.contains(&Operation::PartialCapture);
            let want = if partial { CAPTURE } else { AMOUNT };
            if captured && amount != want {
                return fail(format!("reports {amount} captured, {want} were"));
            }
            if !captured && amount > 0 && test.captured.is_none() {
                return fail(format!("reports {amount} captured, none was"));
            }
        }
        pass(format!(
            "{name}{}",
            if refunded { " (after a refund)" } else { "" }
        ))
    }

    async fn authorize_cancel(&mut self) -> Outcome {
        if !self.info.operations.contains(&Operation::Authorize) {
            return skip("the plugin does not declare authorize");
        }
        let currency = self.currency();
        let (payment, outcome) = match self.authorize(&currency, AMOUNT).await {
            Err(e) => return fail(e.to_string()),
            Ok(r) => r,
        };
        match outcome {
            Err(e) => return fail(format!("second authorize: {}", describe_error(&e))),
            Ok(o) if !matches!(o.status, PaymentStatus::Authorized) => {
                return skip(format!(
                    "the second payment is {}, not authorized",
                    status_name(&o.status)
                ))
            }
            Ok(_) => {}
        }
        let request = CancelRequest {
            payment,
            idempotency_key: self.next_id("idem"),
        };
        let result = self
            .runtime
            .cancel(&self.plugin, self.account.clone(), request)
            .await;
        Self::modification(result, "cancel").0
    }

    async fn notification(&self) -> Outcome {
        let notification = Notification {
            method: "POST".into(),
            uri: "/v1/webhooks/acc_conformance".into(),
            headers: vec![HttpHeader {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body: b"\x00{not json, not signed\xff".to_vec(),
        };
        match self
            .runtime
            .handle_notification(&self.plugin, self.account.clone(), notification)
            .await
        {
            Err(e) => fail(e.to_string()),
            Ok(Ok(o)) => fail(format!(
                "an unsigned garbage notification was accepted ({} events, HTTP {})",
                o.events.len(),
                o.response_status
            )),
            Ok(Err(e))
                if matches!(
                    e.kind,
                    ErrorKind::InvalidSignature | ErrorKind::InvalidRequest
                ) =>
            {
                pass(format!("rejected: {}", describe_error(&e)))
            }
            Ok(Err(e)) => fail(format!(
                "expected invalid-signature or invalid-request, got {}",
                describe_error(&e)
            )),
        }
    }

    /// An authorization the connector must not accept: a non-retryable
    /// error or a refusal passes; an authorization or a trap fails.
    async fn must_refuse(&mut self, currency: &str, amount: u64, what: &str) -> Outcome {
        match self.authorize(currency, amount).await {
            Err(e) => fail(e.to_string()),
            // Retryable says "try again later": the host would, forever.
            Ok((_, Err(e))) if e.kind == ErrorKind::Retryable => fail(format!(
                "{what}: a retryable error, expected a refusal: {}",
                describe_error(&e)
            )),
            Ok((_, Err(e))) => pass(format!("{what}: {}", describe_error(&e))),
            Ok((_, Ok(o))) => match o.status {
                PaymentStatus::Refused(r) => {
                    pass(format!("{what}: refused ({}: {})", r.code, r.reason))
                }
                status => fail(format!("{what} was not refused: {}", status_name(&status))),
            },
        }
    }
}
