//! A connector written in Python (`examples/python-dummy`, built with
//! componentize-py) runs in the host like a Rust one: the whole contract
//! against the dummy PSP of the sandbox, signed notifications included. And
//! the WASI 0.2 the interpreter imports gives it nothing: a hostile Python
//! component (`fixtures/wasi-probe`) finds no file, no environment and no
//! network, and the CPU and memory limits still stop it.
//!
//! Then the operator's path, through the real server: `passerelle plugin
//! pack`, `passerelle admin plugins install --activate`, a connector account
//! with `passerelle admin accounts create`, and payments through the HTTP
//! API (3-D Secure, partial captures, refunds, a notification).
//!
//! The components are built by `examples/python-dummy/build.sh` (run by
//! `scripts/test` before the tests), not by this test.
//!
//! Run: `cargo nextest run -p passerelle --test python_connector`
//! (`--no-capture` prints compile and call timings).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{shared_compile_cache, Backend, TestServer};
use passerelle::egress::Egress;
use passerelle::runtime::bindings::types as wit;
use passerelle::runtime::{LoadedPlugin, PluginError, PluginRuntime, RuntimeLimits};
use passerelle_sandbox::{Sandbox, SandboxConfig, SandboxHandle};
use serde_json::{json, Value};

const PYTHON_DUMMY_MANIFEST: &str = include_str!("../../examples/python-dummy/manifest.toml");
const PROBE_MANIFEST: &str = include_str!("fixtures/wasi-probe/manifest.toml");

const CARD_OK: &str = "4111111111111111";
const CARD_REFUSED: &str = "4000000000000002";
const CARD_3DS: &str = "4000000000003220";
/// The sandbox's dummy PSP credentials (`DummyConfig::default()`).
const API_KEY: &str = "sk_dummy_test";
const WEBHOOK_SECRET: &str = "whsec_dummy_test";

// ---------------------------------------------------------------------------
// Captured logs: one global subscriber for the whole test binary (the calls
// run on tokio worker threads, so a thread-local default would miss them).

fn logs() -> &'static common::logs::LogBuffer {
    common::logs::capture(tracing::Level::DEBUG)
}

fn captured_logs() -> String {
    common::logs::captured(tracing::Level::DEBUG)
}

// ---------------------------------------------------------------------------
// Harness.

/// A component built by `examples/python-dummy/build.sh`.
fn component(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/examples")
        .join(name)
        .join("component.wasm");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. Build the Python components first: examples/python-dummy/build.sh \
             (scripts/test runs it)",
            path.display()
        )
    })
}

async fn install(
    runtime: &PluginRuntime,
    manifest: &str,
    name: &str,
) -> (Arc<LoadedPlugin>, Duration) {
    let bytes = component(name);
    let started = Instant::now();
    let plugin = runtime
        .install(manifest, &bytes)
        .await
        .unwrap_or_else(|e| panic!("installing {name}: {e}"));
    let elapsed = started.elapsed();
    eprintln!(
        "{name}: {:.1} MB component, compiled and described in {elapsed:.2?}",
        bytes.len() as f64 / 1e6
    );
    (plugin, elapsed)
}

async fn sandbox() -> SandboxHandle {
    Sandbox::start(SandboxConfig::default())
        .await
        .expect("sandbox starts")
}

fn account(base_url: &str) -> wit::Account {
    wit::Account {
        id: "acc_python".into(),
        environment: wit::Environment::Test,
        base_url: Some(base_url.into()),
        config: vec![
            ("api_key".into(), API_KEY.into()),
            ("webhook_secret".into(), WEBHOOK_SECRET.into()),
        ],
    }
}

fn money(minor_units: u64) -> wit::Money {
    wit::Money {
        minor_units,
        currency: "EUR".into(),
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{nanos:x}")
}

fn authorize_request(
    card: &str,
    amount: u64,
    capture: wit::CaptureMethod,
    notification_url: &str,
) -> wit::AuthorizeRequest {
    let reference = unique("order");
    wit::AuthorizeRequest {
        payment_id: format!("pay_{reference}"),
        idempotency_key: format!("idem_{reference}"),
        reference,
        amount: money(amount),
        capture_method: capture,
        capture_delay_hours: None,
        payment_method: wit::PaymentMethod::Card(wit::Card {
            number: card.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: Some("737".into()),
            holder_name: Some("Ada Lovelace".into()),
        }),
        shopper: None,
        return_url: "https://shop.example/return?cart=7".into(),
        notification_url: notification_url.into(),
        metadata: Vec::new(),
    }
}

fn payment_ref(request: &wit::AuthorizeRequest, outcome: &wit::PaymentOutcome) -> wit::PaymentRef {
    wit::PaymentRef {
        payment_id: request.payment_id.clone(),
        reference: request.reference.clone(),
        amount: request.amount.clone(),
        connector_reference: outcome.connector_reference.clone(),
        connector_data: outcome.connector_data.clone(),
    }
}

/// The connector's own answer; a host-side failure (trap, limit) fails the test.
fn answer<T>(
    what: &str,
    result: Result<Result<T, wit::ConnectorError>, PluginError>,
) -> Result<T, wit::ConnectorError> {
    result.unwrap_or_else(|e| {
        // A Python exception's traceback went to stderr, hence to the log.
        let logs = captured_logs();
        let tail = &logs[logs.len().saturating_sub(3000)..];
        panic!("{what}: the plugin failed: {e}\n--- log tail ---\n{tail}")
    })
}

fn ok<T: std::fmt::Debug>(
    what: &str,
    result: Result<Result<T, wit::ConnectorError>, PluginError>,
) -> T {
    answer(what, result).unwrap_or_else(|e| panic!("{what}: connector error {e:?}"))
}

fn err<T: std::fmt::Debug>(
    what: &str,
    result: Result<Result<T, wit::ConnectorError>, PluginError>,
) -> wit::ConnectorError {
    match answer(what, result) {
        Ok(v) => panic!("{what}: expected a connector error, got {v:?}"),
        Err(e) => e,
    }
}

/// One notification the sandbox POSTed, as the host's webhook endpoint
/// would hand it to the connector.
fn as_notification(raw: &RawRequest) -> wit::Notification {
    wit::Notification {
        method: "POST".into(),
        uri: raw.path.clone(),
        headers: raw
            .headers
            .iter()
            .map(|(name, value)| wit::HttpHeader {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: raw.body.clone(),
    }
}

/// An HTTP request received by [`Webhooks`].
#[derive(Debug, Clone)]
struct RawRequest {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON notification")
    }
}

/// A loopback endpoint collecting the notifications the dummy PSP sends, so
/// the connector is fed real signed ones.
struct Webhooks {
    url: String,
    received: mpsc::Receiver<RawRequest>,
}

impl Webhooks {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://127.0.0.1:{}/v1/webhooks/acc_python",
            listener.local_addr().unwrap().port()
        );
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.trim().to_string(), value.trim().to_string()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let _ = reader.get_mut().write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                if tx
                    .send(RawRequest {
                        path,
                        headers,
                        body,
                    })
                    .is_err()
                {
                    return;
                }
            }
        });
        Webhooks { url, received }
    }

    /// The next notification of type `kind` (earlier ones of other types are skipped).
    fn next(&self, kind: &str) -> RawRequest {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let raw = self
                .received
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {kind} notification from the dummy PSP"));
            if raw.json()["type"] == kind {
                return raw;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The Python dummy connector.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dummy_covers_the_contract() {
    logs();
    let sandbox = sandbox().await;
    let base = sandbox.dummy_base_url();
    let webhooks = Webhooks::start();
    let runtime = PluginRuntime::new(RuntimeLimits::default(), Egress::new().unwrap())
        .unwrap()
        .with_compile_cache(shared_compile_cache());
    let (plugin, _) = install(&runtime, PYTHON_DUMMY_MANIFEST, "python-dummy").await;
    let account = account(&base);

    // describe: what the Rust dummy declares, under its own id.
    let info = &plugin.info;
    assert_eq!(info.id, "python-dummy");
    assert_eq!(info.version, plugin.manifest.version);
    assert_eq!(info.operations.len(), 9, "{:?}", info.operations);
    assert_eq!(info.payment_methods, ["card"]);
    let fields: Vec<(&str, bool, bool)> = info
        .credential_fields
        .iter()
        .map(|f| (f.name.as_str(), f.secret, f.required))
        .collect();
    assert_eq!(
        fields,
        [("api_key", true, true), ("webhook_secret", true, true)]
    );
    assert_eq!(
        (plugin.memory_limit_mb(), plugin.cpu_limit_ms()),
        (32, 200),
        "the manifest's limits"
    );

    // validate-config: the checks a call makes, without the call.
    ok(
        "validate",
        runtime.validate_config(&plugin, account.clone()).await,
    );
    let mut no_key = account.clone();
    no_key.config.retain(|(k, _)| k != "api_key");
    let e = err("validate", runtime.validate_config(&plugin, no_key).await);
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (wit::ErrorKind::InvalidConfig, Some("api_key"))
    );
    let mut no_base = account.clone();
    no_base.base_url = None;
    let e = err("validate", runtime.validate_config(&plugin, no_base).await);
    assert_eq!(e.field.as_deref(), Some("base_url"));

    // Refused before any HTTP call: not a currency, not a card.
    let mut request = authorize_request(CARD_OK, 1000, wit::CaptureMethod::Manual, &webhooks.url);
    request.amount.currency = "EUX".into();
    let e = err(
        "authorize",
        runtime.authorize(&plugin, account.clone(), request).await,
    );
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (wit::ErrorKind::InvalidRequest, Some("currency"))
    );
    let mut request = authorize_request(CARD_OK, 1000, wit::CaptureMethod::Manual, &webhooks.url);
    request.payment_method = wit::PaymentMethod::Other(wit::OtherMethod {
        kind: "paypal".into(),
        details_json: "{}".into(),
    });
    let e = err(
        "authorize",
        runtime.authorize(&plugin, account.clone(), request).await,
    );
    assert_eq!(e.field.as_deref(), Some("payment_method"));

    // Wrong API key: the PSP's 401 is the account's fault.
    let mut bad_key = account.clone();
    bad_key.config[0].1 = "sk_wrong".into();
    let request = authorize_request(CARD_OK, 1000, wit::CaptureMethod::Manual, &webhooks.url);
    let e = err(
        "authorize",
        runtime.authorize(&plugin, bad_key, request).await,
    );
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (wit::ErrorKind::InvalidConfig, Some("api_key"))
    );

    // Declined card: the PSP's code and reason.
    let request = authorize_request(
        CARD_REFUSED,
        1000,
        wit::CaptureMethod::Manual,
        &webhooks.url,
    );
    let outcome = ok(
        "authorize",
        runtime.authorize(&plugin, account.clone(), request).await,
    );
    match &outcome.status {
        wit::PaymentStatus::Refused(r) => {
            assert_eq!(
                (r.code.as_str(), r.reason.as_str()),
                ("card_declined", "Insufficient funds")
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // Automatic capture: captured at once.
    let request = authorize_request(CARD_OK, 1500, wit::CaptureMethod::Automatic, &webhooks.url);
    let outcome = ok(
        "authorize",
        runtime.authorize(&plugin, account.clone(), request).await,
    );
    assert!(
        matches!(outcome.status, wit::PaymentStatus::Captured),
        "{outcome:?}"
    );
    assert_eq!(outcome.amount_captured, Some(1500));

    // Manual capture: authorized, then captured in two parts, refunded in two.
    let request = authorize_request(CARD_OK, 4200, wit::CaptureMethod::Manual, &webhooks.url);
    let outcome = ok(
        "authorize",
        runtime
            .authorize(&plugin, account.clone(), request.clone())
            .await,
    );
    assert!(
        matches!(outcome.status, wit::PaymentStatus::Authorized),
        "{outcome:?}"
    );
    assert_eq!(outcome.amount_authorized, Some(4200));
    assert_eq!(outcome.provider_status.as_deref(), Some("authorized"));
    let charge_id = outcome.connector_reference.clone().expect("a charge id");
    let manual_reference = request.reference.clone();
    assert!(charge_id.starts_with("ch_"), "{charge_id}");
    let payment = payment_ref(&request, &outcome);

    let capture = |amount: u64, final_capture: bool, key: &str| wit::CaptureRequest {
        payment: payment.clone(),
        amount: money(amount),
        final_capture,
        idempotency_key: format!("{key}-{charge_id}"),
    };
    let done = ok(
        "capture",
        runtime
            .capture(&plugin, account.clone(), capture(3000, false, "cap1"))
            .await,
    );
    assert!(matches!(done.status, wit::ModificationStatus::Succeeded));
    // Partially captured: the charge stays authorized at the PSP.
    assert_eq!(done.provider_status.as_deref(), Some("authorized"));
    let captured = webhooks.next("charge.captured");
    let done = ok(
        "capture",
        runtime
            .capture(&plugin, account.clone(), capture(1200, true, "cap2"))
            .await,
    );
    assert_eq!(done.provider_status.as_deref(), Some("captured"));
    // More than remains: the PSP's own error, naming the field.
    let e = err(
        "capture",
        runtime
            .capture(&plugin, account.clone(), capture(1, true, "cap3"))
            .await,
    );
    assert_eq!(e.kind, wit::ErrorKind::Rejected, "{e:?}");
    // A capture in another currency never reaches the PSP.
    let mut other_currency = capture(100, true, "cap4");
    other_currency.amount.currency = "USD".into();
    let e = err(
        "capture",
        runtime
            .capture(&plugin, account.clone(), other_currency)
            .await,
    );
    assert_eq!(e.field.as_deref(), Some("currency"));

    let refund = |amount: u64, id: &str| wit::RefundRequest {
        payment: payment.clone(),
        refund_id: format!("{id}-{charge_id}"),
        amount: money(amount),
        reason: Some("one item returned".into()),
        idempotency_key: format!("{id}-{charge_id}"),
    };
    let r1 = ok(
        "refund",
        runtime
            .refund(&plugin, account.clone(), refund(1000, "ref1"))
            .await,
    );
    assert!(matches!(r1.status, wit::ModificationStatus::Succeeded));
    let refund_id = r1.connector_reference.clone().expect("a refund id");
    assert!(refund_id.starts_with("re_"), "{refund_id}");
    let refunded = webhooks.next("charge.refunded");
    let r2 = ok(
        "refund",
        runtime
            .refund(&plugin, account.clone(), refund(3200, "ref2"))
            .await,
    );
    assert!(matches!(r2.status, wit::ModificationStatus::Succeeded));
    let e = err(
        "refund",
        runtime
            .refund(&plugin, account.clone(), refund(1, "ref3"))
            .await,
    );
    assert_eq!(
        (e.kind, e.code.as_str(), e.field.as_deref()),
        (wit::ErrorKind::Rejected, "amount_too_large", Some("amount"))
    );

    // sync: where the PSP says the payment stands.
    let synced = ok(
        "sync",
        runtime
            .sync(&plugin, account.clone(), payment.clone())
            .await,
    );
    assert!(
        matches!(synced.status, wit::PaymentStatus::Captured),
        "{synced:?}"
    );
    assert_eq!(synced.amount_captured, Some(4200));

    // Notifications: the PSP's real signed ones are accepted and read...
    let out = ok(
        "notification",
        runtime
            .handle_notification(&plugin, account.clone(), as_notification(&captured))
            .await,
    );
    assert_eq!(out.response_status, 200);
    let [event] = &out.events[..] else {
        panic!("one event expected: {out:?}")
    };
    assert_eq!(event.connector_reference, charge_id);
    assert_eq!(
        event.merchant_reference.as_deref(),
        Some(request.reference.as_str())
    );
    assert_eq!(event.event_id, captured.json()["id"].as_str().unwrap());
    assert!(
        matches!(
            event.kind,
            wit::NotificationEventKind::Payment(wit::PaymentStatus::Authorized)
        ),
        "{event:?}"
    );
    assert_eq!(event.amount.as_ref().map(|m| m.minor_units), Some(3000));
    let out = ok(
        "notification",
        runtime
            .handle_notification(&plugin, account.clone(), as_notification(&refunded))
            .await,
    );
    match &out.events[0].kind {
        wit::NotificationEventKind::Refund((id, wit::ModificationStatus::Succeeded)) => {
            assert_eq!(id, &refund_id)
        }
        other => panic!("expected a refund event, got {other:?}"),
    }
    assert_eq!(
        out.events[0].amount.as_ref().map(|m| m.minor_units),
        Some(1000)
    );

    // ... a forged, unsigned, stale or wrongly keyed one is refused.
    let mut forged = as_notification(&captured);
    forged.body = String::from_utf8(captured.body.clone())
        .unwrap()
        .replace("\"amount_captured\":3000", "\"amount_captured\":4200")
        .into_bytes();
    assert_ne!(forged.body, captured.body, "the forgery changed nothing");
    // (The PSP did sign it: removing the header below changes something.)
    assert!(captured
        .header("Dummy-Signature")
        .is_some_and(|s| s.starts_with("t=")));
    let mut unsigned = as_notification(&captured);
    unsigned
        .headers
        .retain(|h| !h.name.eq_ignore_ascii_case("Dummy-Signature"));
    let stale_t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 3600;
    let mut stale = as_notification(&captured);
    for h in &mut stale.headers {
        if h.name.eq_ignore_ascii_case("Dummy-Signature") {
            h.value = passerelle_sandbox::dummy::signature_header(
                WEBHOOK_SECRET,
                stale_t,
                &captured.body,
            );
        }
    }
    let mut other_secret = account.clone();
    other_secret.config[1].1 = "whsec_other".into();
    for (what, account, notification) in [
        ("forged", account.clone(), forged),
        ("unsigned", account.clone(), unsigned),
        ("stale", account.clone(), stale),
        ("other secret", other_secret, as_notification(&captured)),
    ] {
        let e = err(
            what,
            runtime
                .handle_notification(&plugin, account, notification)
                .await,
        );
        assert_eq!(e.kind, wit::ErrorKind::InvalidSignature, "{what}: {e:?}");
    }

    // cancel: an authorization released.
    let request = authorize_request(CARD_OK, 900, wit::CaptureMethod::Manual, &webhooks.url);
    let outcome = ok(
        "authorize",
        runtime
            .authorize(&plugin, account.clone(), request.clone())
            .await,
    );
    let to_cancel = payment_ref(&request, &outcome);
    let canceled = ok(
        "cancel",
        runtime
            .cancel(
                &plugin,
                account.clone(),
                wit::CancelRequest {
                    payment: to_cancel.clone(),
                    idempotency_key: unique("void"),
                },
            )
            .await,
    );
    assert!(matches!(
        canceled.status,
        wit::ModificationStatus::Succeeded
    ));
    assert_eq!(canceled.provider_status.as_deref(), Some("canceled"));
    let synced = ok(
        "sync",
        runtime.sync(&plugin, account.clone(), to_cancel).await,
    );
    assert!(
        matches!(synced.status, wit::PaymentStatus::Canceled),
        "{synced:?}"
    );

    // 3-D Secure: a redirect, the shopper approves on the PSP's page, and
    // complete asks the PSP (not the browser) for the outcome.
    let request = authorize_request(CARD_3DS, 2500, wit::CaptureMethod::Manual, &webhooks.url);
    let outcome = ok(
        "authorize",
        runtime
            .authorize(&plugin, account.clone(), request.clone())
            .await,
    );
    let redirect = match &outcome.status {
        wit::PaymentStatus::RequiresAction(redirect) => redirect.clone(),
        other => panic!("expected a 3-D Secure redirect, got {other:?}"),
    };
    assert!(matches!(redirect.method, wit::HttpMethod::Get));
    let charge_3ds = outcome.connector_reference.clone().unwrap();
    assert_eq!(redirect.url, format!("{base}/3ds/{charge_3ds}"));
    let payment_3ds = payment_ref(&request, &outcome);
    let complete = |params: Vec<(String, String)>| wit::CompleteRequest {
        payment: payment_3ds.clone(),
        params,
    };
    // Before the shopper acts, the PSP still wants the challenge.
    let pending = ok(
        "complete",
        runtime
            .complete(
                &plugin,
                account.clone(),
                complete(vec![("charge".into(), charge_3ds.clone())]),
            )
            .await,
    );
    assert!(matches!(
        pending.status,
        wit::PaymentStatus::RequiresAction(_)
    ));
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let back = browser
        .post(format!("{}/approve", redirect.url))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    let location = back.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.ends_with(&format!("cart=7&charge={charge_3ds}")),
        "{location}"
    );
    let mixed_up = err(
        "complete",
        runtime
            .complete(
                &plugin,
                account.clone(),
                complete(vec![("charge".into(), "ch_other".into())]),
            )
            .await,
    );
    assert_eq!(mixed_up.field.as_deref(), Some("charge"));
    let completed = ok(
        "complete",
        runtime
            .complete(
                &plugin,
                account.clone(),
                complete(vec![("charge".into(), charge_3ds.clone())]),
            )
            .await,
    );
    assert!(
        matches!(completed.status, wit::PaymentStatus::Authorized),
        "{completed:?}"
    );
    let approved = webhooks.next("charge.authorized");
    let out = ok(
        "notification",
        runtime
            .handle_notification(&plugin, account.clone(), as_notification(&approved))
            .await,
    );
    assert_eq!(out.events[0].connector_reference, charge_3ds);

    // The PSP failing: garbage and 5xx are retryable.
    for (fault, code) in [("garbage", "invalid_response"), ("http_500", "http_500")] {
        reqwest::Client::new()
            .post(format!("{base}/_sandbox/faults"))
            .json(&serde_json::json!({"mode": fault, "count": 1}))
            .send()
            .await
            .unwrap();
        let e = err(
            fault,
            runtime
                .sync(&plugin, account.clone(), payment.clone())
                .await,
        );
        assert_eq!(
            (e.kind, e.code.as_str()),
            (wit::ErrorKind::Retryable, code),
            "{e:?}"
        );
    }

    // The connector logs through the contract, never a card number.
    let logs = captured_logs();
    assert!(
        logs.contains(&format!(
            "charge {charge_id} for {manual_reference} is authorized"
        )),
        "the Python connector's log lines reach the host's log"
    );
    for pan in [CARD_OK, CARD_REFUSED, CARD_3DS] {
        assert!(!logs.contains(pan), "a card number reached the logs");
    }
    assert!(
        !logs.contains("card number masked"),
        "the connector tried to log a card number"
    );

    // One-off figures (no assertion on them): a fresh instance per call.
    let calls = 20;
    let started = Instant::now();
    for _ in 0..calls {
        ok(
            "validate",
            runtime.validate_config(&plugin, account.clone()).await,
        );
    }
    eprintln!(
        "python-dummy: validate-config on a fresh instance: {:.2?} per call",
        started.elapsed() / calls
    );
    sandbox.stop().await;
}

// ---------------------------------------------------------------------------
// The WASI probe.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_components_get_nothing_from_wasi_and_stay_within_limits() {
    logs();
    let sandbox = sandbox().await;
    let runtime = PluginRuntime::new(RuntimeLimits::default(), Egress::new().unwrap())
        .unwrap()
        .with_compile_cache(shared_compile_cache());
    let (probe, _) = install(&runtime, PROBE_MANIFEST, "wasi-probe").await;
    let account = wit::Account {
        id: "acc_probe".into(),
        environment: wit::Environment::Test,
        // A port that is listening: a failed connection is the host's refusal.
        base_url: Some(sandbox.dummy_base_url()),
        config: Vec::new(),
    };
    let request = |reference: &str| {
        let mut r = authorize_request(
            CARD_OK,
            100,
            wit::CaptureMethod::Manual,
            "https://x.example/",
        );
        r.reference = reference.into();
        r
    };

    let outcome = ok(
        "probe",
        runtime
            .authorize(&probe, account.clone(), request("probe"))
            .await,
    );
    let reason = match outcome.status {
        wit::PaymentStatus::Refused(r) => r.reason,
        other => panic!("the probe answers with a refusal, got {other:?}"),
    };
    eprintln!("wasi-probe saw: {reason}");
    let report: Value = serde_json::from_str(&reason)
        .unwrap_or_else(|e| panic!("the probe's report is JSON ({e}): {reason}"));
    // No file system: not /etc/passwd, not the working directory, not "/".
    for probe in ["passwd", "ls_cwd", "ls_root"] {
        let seen = &report[probe];
        assert!(
            seen.get("error").is_some() || seen["ok"] == "[]",
            "{probe}: the plugin could read the file system: {seen}"
        );
    }
    assert!(!reason.contains("root:"), "/etc/passwd leaked: {reason}");
    // No environment, not even the build machine's (the snapshot).
    assert_eq!(report["env"], serde_json::json!({}), "environment leaked");
    // No network outside the contract's `http` import. The errors must be
    // the host's refusals (access denied, name lookup refused), not the
    // probe failing on its own (a module missing from the snapshot), or
    // this would prove nothing.
    for (probe, refusal) in [("socket", "PermissionError"), ("dns", "gaierror")] {
        let seen = report[probe]["error"].as_str().unwrap_or("");
        assert!(
            seen.starts_with(refusal),
            "{probe}: expected the host's refusal ({refusal}), the probe saw {}",
            report[probe]
        );
    }

    // The CPU budget stops an interpreter spinning...
    let started = Instant::now();
    let result = runtime
        .authorize(&probe, account.clone(), request("spin"))
        .await;
    assert!(
        matches!(result, Err(PluginError::CpuLimit { .. })),
        "spin: {result:?}"
    );
    eprintln!("wasi-probe: spin stopped after {:.2?}", started.elapsed());
    // ... and the memory cap one hoarding.
    let result = runtime
        .authorize(&probe, account.clone(), request("hog"))
        .await;
    assert!(
        matches!(result, Err(PluginError::MemoryLimit { limit_mb: 64, .. })),
        "hog: {result:?}"
    );
    // The instance that failed is gone; the next call is fine.
    ok(
        "probe",
        runtime.authorize(&probe, account, request("probe")).await,
    );
    sandbox.stop().await;
}

/// A manifest cannot give a Python component less memory than the
/// interpreter needs and have it fail obscurely: the install itself fails,
/// and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_little_memory_fails_the_install_clearly() {
    logs();
    let runtime = PluginRuntime::new(RuntimeLimits::default(), Egress::new().unwrap())
        .unwrap()
        .with_compile_cache(shared_compile_cache());
    let manifest = PYTHON_DUMMY_MANIFEST.replace("memory_mb = 32", "memory_mb = 8");
    assert_ne!(
        manifest, PYTHON_DUMMY_MANIFEST,
        "the manifest changed shape"
    );
    let result = runtime.install(&manifest, &component("python-dummy")).await;
    match result {
        Err(PluginError::MemoryLimit { limit_mb: 8, .. }) => {}
        Err(other) => panic!("expected a memory-limit failure, got {other}"),
        Ok(_) => panic!("python-dummy described itself in 8 MiB"),
    }
}

// ---------------------------------------------------------------------------
// Through the server, as an operator installs it.

/// Runs `passerelle ARGS` (the CLI under test); returns exit success, the
/// printed JSON and stderr.
async fn passerelle(server: &TestServer, args: &[&str]) -> (bool, Value, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(args)
        .env("PASSERELLE_URL", &server.base_url)
        .env("PASSERELLE_ADMIN_KEY", &server.admin_key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::String(stdout));
    (out.status.success(), value, stderr)
}

async fn payment(server: &TestServer, id: &str) -> Value {
    let (status, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(status, 200, "{p}");
    p
}

/// The shopper approves on the dummy PSP's 3-D Secure page: where the PSP
/// sends the browser back.
async fn approve_3ds(server: &TestServer, next_action: &Value) -> String {
    let url = next_action["url"].as_str().expect("a redirect URL");
    let back = server
        .http
        .post(format!("{url}/approve"))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    back.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_dummy_through_the_server() {
    let server = TestServer::start_with_args(Backend::Sqlite, &["--allow-unsigned-plugins"]).await;
    let scratch = server.data_dir.join("python-dummy");
    std::fs::create_dir_all(&scratch).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let component_path = root.join("target/examples/python-dummy/component.wasm");
    component("python-dummy"); // a clear message when it was not built
    let package = scratch.join("python-dummy.ppkg");
    let manifest = root.join("examples/python-dummy/manifest.toml");

    // Pack (unsigned: the server runs with --allow-unsigned-plugins)...
    let started = Instant::now();
    let (ok, packed, err) = passerelle(
        &server,
        &[
            "plugin",
            "pack",
            "--manifest",
            manifest.to_str().unwrap(),
            "--component",
            component_path.to_str().unwrap(),
            "--out",
            package.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "plugin pack: {err} {packed}");
    eprintln!("plugin pack: {:.2?}", started.elapsed());
    // ... and install and activate it on the running server.
    let started = Instant::now();
    let (ok, installed, err) = passerelle(
        &server,
        &[
            "admin",
            "plugins",
            "install",
            package.to_str().unwrap(),
            "--activate",
        ],
    )
    .await;
    assert!(ok, "admin plugins install: {err} {installed}");
    eprintln!(
        "admin plugins install --activate: {:.2?}",
        started.elapsed()
    );
    assert!(
        installed.to_string().contains("python-dummy"),
        "{installed}"
    );
    // Contract 1.0.0 and 1.1.0 components side by side on one host: the
    // Python component was built against 1.0.0 and is called unchanged;
    // the bundled connectors speak 1.1.0.
    for (plugin, contract) in [
        ("python-dummy", "1.0.0"),
        ("dummy", "1.1.0"),
        ("adyen", "1.1.0"),
    ] {
        let (status, view) = server
            .admin_get(&format!("/v1/admin/plugins/{plugin}"))
            .await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["contract"], contract, "{plugin}: {view}");
    }

    // A connector account of the demo merchant, at the demo's dummy PSP.
    let psp = &server.demo["sandbox"]["dummy"];
    let credentials = scratch.join("credentials.json");
    std::fs::write(
        &credentials,
        json!({"api_key": psp["api_key"], "webhook_secret": psp["webhook_secret"]}).to_string(),
    )
    .unwrap();
    let merchant = server.demo["merchant_id"].as_str().unwrap().to_string();
    let psp_url = server.dummy_psp_url();
    let (ok, account, err) = passerelle(
        &server,
        &[
            "admin",
            "accounts",
            "create",
            "--merchant",
            &merchant,
            "--name",
            "python",
            "--connector",
            "python-dummy",
            "--environment",
            "test",
            "--base-url",
            &psp_url,
            "--credentials-file",
            credentials.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "admin accounts create: {err} {account}");
    assert_eq!(account["credentials"]["api_key"], json!({"set": true}));

    // A 3-D Secure payment, captured in two parts, refunded in part.
    let mut body = common::payment_body(4200, "EUR", common::CARD_3DS, "manual");
    body["connector"] = json!("python");
    let (status, p) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "requires_action", "{p}");
    assert_eq!(p["connector"], "python", "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let back = approve_3ds(&server, &p["next_action"]).await;
    // The browser comes back through Passerelle, which asks the connector.
    let shop = server.http.get(&back).send().await.unwrap();
    assert_eq!(shop.status(), 303, "{back}");
    let shop = shop.headers()["location"].to_str().unwrap().to_string();
    assert!(shop.contains(&format!("payment_id={id}")), "{shop}");
    assert_eq!(payment(&server, &id).await["status"], "requires_capture");

    let path = format!("/v1/payments/{id}/capture");
    let (status, p) = server.post(&path, json!({"amount": 3000})).await;
    assert_eq!(
        (status, p["status"].as_str()),
        (200, Some("partially_captured")),
        "{p}"
    );
    let (status, p) = server.post(&path, json!({})).await;
    assert_eq!(
        (status, p["status"].as_str()),
        (200, Some("succeeded")),
        "{p}"
    );
    assert_eq!(p["amount_captured"], 4200);
    let path = format!("/v1/payments/{id}/refunds");
    let (status, r) = server
        .post(
            &path,
            json!({"amount": 1000, "reason": "one item returned"}),
        )
        .await;
    assert_eq!(
        (status, r["status"].as_str()),
        (201, Some("succeeded")),
        "{r}"
    );
    let (status, r) = server.post(&path, json!({"amount": 3300})).await;
    assert!(
        (400..500).contains(&status),
        "refunding more than captured: {status} {r}"
    );
    let (_, refunds) = server.get(&path).await;
    assert_eq!(refunds["data"][0]["amount"], 1000, "{refunds}");
    assert_eq!(payment(&server, &id).await["amount_refunded"], 1000);

    // A shopper who approves and never comes back: the PSP's signed
    // notification, verified by the Python connector, settles the payment.
    let mut body = common::payment_body(1500, "EUR", common::CARD_3DS, "automatic");
    body["connector"] = json!("python");
    let (status, p) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    let settled = p["id"].as_str().unwrap().to_string();
    approve_3ds(&server, &p["next_action"]).await;
    let mut status = Value::Null;
    for _ in 0..200 {
        status = payment(&server, &settled).await["status"].clone();
        if status != "requires_action" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, "succeeded");
    let (_, events) = server.get(&format!("/v1/payments/{settled}/events")).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cause"] == "notification"),
        "{events}"
    );

    // A declined card: the PSP's code and reason on the payment.
    let mut body = common::payment_body(1000, "EUR", common::CARD_REFUSED, "automatic");
    body["connector"] = json!("python");
    let (_, p) = server.post("/v1/payments", body).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "card_declined", "{p}");

    assert!(server.plugin_calls("python-dummy").await >= 8);
    let logs = server.logs();
    for pan in [common::CARD_OK, common::CARD_3DS, common::CARD_REFUSED] {
        assert!(
            !logs.contains(pan),
            "a card number reached the server's log"
        );
    }

    // The conformance kit a connector author runs passes too.
    let started = Instant::now();
    let (ok, report, err) = passerelle(
        &server,
        &[
            "plugin",
            "test",
            package.to_str().unwrap(),
            "--against",
            &psp_url,
            "--credentials",
            credentials.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "plugin test: {err} {report}");
    eprintln!("plugin test (conformance kit): {:.2?}", started.elapsed());
}
