//! The sandbox's promise, checked through the plugin interface: a trap,
//! panic, infinite loop or memory bomb in a plugin fails that one call with
//! a clear error and the host keeps serving; outbound HTTP reaches only the
//! hosts a plugin's manifest allows, and of those only public addresses
//! (the account's operator-set base URL excepted); files, environment and
//! sockets are out of reach; plugin logs are bounded and card numbers never
//! reach them; other plugins keep their latency while one misbehaves.
//!
//! The misbehaving plugin is `plugins/test-plugins/hostile` (a test-only
//! plugin: `bundled::test_plugins`, never bundled into the server). Its
//! `authorize` does what the request's `reference` says. Each test builds its
//! own `PluginRuntime` with the dummy connector and `hostile` installed.
//!
//! Run: `cargo test -p passerelle --test plugin_limits -- --nocapture` (the
//! timings are printed).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle::bundled::test_plugins::TEST_PLUGINS;
use passerelle::bundled::{BundledPlugin, BUNDLED_PLUGINS};
use passerelle::egress::Egress;
use passerelle::runtime::bindings::types as wit;
use passerelle::runtime::{LoadedPlugin, PluginError, PluginRuntime, RuntimeLimits};

/// `hostile`'s manifest limits (plugins/test-plugins/hostile/manifest.toml).
const HOSTILE_CPU_MS: u32 = 500;
const HOSTILE_MEMORY_MB: u32 = 16;
/// A test card number (passes Luhn): it must never appear in the logs.
const PAN: &str = "4111111111111111";

// ---------------------------------------------------------------------------
// Captured logs: one global subscriber for the whole test binary (the calls
// run on tokio worker threads, so a thread-local default would miss them).

fn logs() -> &'static common::logs::LogBuffer {
    common::logs::capture(tracing::Level::INFO)
}

fn captured_logs() -> String {
    common::logs::captured(tracing::Level::INFO)
}

// ---------------------------------------------------------------------------
// Harness.

struct Harness {
    runtime: PluginRuntime,
    dummy: Arc<LoadedPlugin>,
    hostile: Arc<LoadedPlugin>,
}

fn find(list: &'static [BundledPlugin], id: &str) -> &'static BundledPlugin {
    list.iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("plugin {id:?} was not built (PASSERELLE_SKIP_PLUGINS set?)"))
}

async fn harness_with(limits: RuntimeLimits) -> Harness {
    harness_custom(limits, find(TEST_PLUGINS, "hostile").manifest_toml).await
}

/// `hostile` installed with `hostile_manifest` instead of its own.
async fn harness_custom(limits: RuntimeLimits, hostile_manifest: &str) -> Harness {
    logs();
    let runtime = PluginRuntime::new(limits, Egress::new().unwrap()).unwrap();
    let dummy = find(BUNDLED_PLUGINS, "dummy");
    let hostile = find(TEST_PLUGINS, "hostile");
    let dummy = runtime
        .install(dummy.manifest_toml, dummy.component)
        .await
        .unwrap();
    let hostile = runtime
        .install(hostile_manifest, hostile.component)
        .await
        .unwrap();
    assert_eq!(hostile.cpu_limit_ms(), HOSTILE_CPU_MS);
    assert_eq!(hostile.memory_limit_mb(), HOSTILE_MEMORY_MB);
    Harness {
        runtime,
        dummy,
        hostile,
    }
}

async fn harness() -> Harness {
    harness_with(RuntimeLimits::default()).await
}

fn account() -> wit::Account {
    wit::Account {
        id: "acc_limits".into(),
        environment: wit::Environment::Test,
        // Never reached: validate-config makes no request.
        base_url: Some("http://127.0.0.1:9/dummy".into()),
        config: vec![
            ("api_key".into(), "sk_test_limits".into()),
            ("webhook_secret".into(), "whsec_limits".into()),
        ],
    }
}

fn hostile_account() -> wit::Account {
    wit::Account {
        id: "acc_hostile".into(),
        environment: wit::Environment::Test,
        base_url: None,
        config: Vec::new(),
    }
}

/// `hostile`'s manifest with `hosts` added to its test-environment egress.
fn hostile_manifest_allowing(hosts: &[String]) -> String {
    let manifest = find(TEST_PLUGINS, "hostile").manifest_toml;
    let list: String = hosts.iter().map(|h| format!("\n    {h:?},")).collect();
    assert!(
        manifest.contains("\ntest = ["),
        "hostile's manifest changed shape"
    );
    manifest.replacen("\ntest = [", &format!("\ntest = [{list}"), 1)
}

/// A hostile account with these config fields and base URL.
fn hostile_account_with(config: &[(&str, &str)], base_url: Option<String>) -> wit::Account {
    wit::Account {
        base_url,
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..hostile_account()
    }
}

/// A listener on 127.0.0.1 that counts the connections it accepts and
/// answers each with `200 ok`, so that a request that does get through
/// finishes at once instead of waiting for its timeout.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// The refusal `hostile` answers `egress-probe` with: (code, reason).
fn refusal(outcome: wit::PaymentOutcome) -> (String, String) {
    match outcome.status {
        wit::PaymentStatus::Refused(r) => (r.code, r.reason),
        other => panic!("expected a refusal carrying the HTTP result, got {other:?}"),
    }
}

fn authorize_request(reference: &str) -> wit::AuthorizeRequest {
    wit::AuthorizeRequest {
        payment_id: format!("pay_{reference}"),
        reference: reference.into(),
        amount: wit::Money {
            minor_units: 1050,
            currency: "EUR".into(),
        },
        capture_method: wit::CaptureMethod::Automatic,
        capture_delay_hours: None,
        payment_method: wit::PaymentMethod::Card(wit::Card {
            number: PAN.into(),
            exp_month: 12,
            exp_year: 2030,
            cvc: Some("123".into()),
            holder_name: Some("Ada Lovelace".into()),
        }),
        shopper: None,
        return_url: "https://shop.example/return".into(),
        notification_url: "https://passerelle.example/v1/webhooks/acc_hostile".into(),
        idempotency_key: format!("idem_{reference}"),
        metadata: Vec::new(),
    }
}

impl Harness {
    /// `hostile.authorize` with `reference`, timed.
    async fn hostile(
        &self,
        reference: &str,
    ) -> (
        Result<Result<wit::PaymentOutcome, wit::ConnectorError>, PluginError>,
        Duration,
    ) {
        let started = Instant::now();
        let result = self
            .runtime
            .authorize(
                &self.hostile,
                hostile_account(),
                authorize_request(reference),
            )
            .await;
        (result, started.elapsed())
    }

    /// `hostile.authorize` with `reference` for `account`.
    async fn hostile_for(
        &self,
        account: wit::Account,
        reference: &str,
    ) -> Result<wit::PaymentOutcome, wit::ConnectorError> {
        self.runtime
            .authorize(&self.hostile, account, authorize_request(reference))
            .await
            .unwrap_or_else(|e| panic!("{reference}: the plugin failed: {e}"))
    }

    /// `hostile` GETs `url` (`egress-probe`): the (code, reason) it reports.
    async fn probe(&self, url: &str, base_url: Option<String>) -> (String, String) {
        let outcome = self
            .hostile_for(
                hostile_account_with(&[("url", url)], base_url),
                "egress-probe",
            )
            .await
            .unwrap_or_else(|e| panic!("{url}: hostile answered an error: {e:?}"));
        refusal(outcome)
    }

    /// Runs a misbehaviour: the call must fail (not panic the host, not
    /// hang), be counted as one failure, and leave both plugins serving.
    async fn expect_failure(&self, reference: &str) -> (PluginError, Duration) {
        let failures = self.hostile.stats.failures.load(Ordering::Relaxed);
        let calls = self.hostile.stats.calls.load(Ordering::Relaxed);
        let (result, elapsed) = self.hostile(reference).await;
        let error = match result {
            Err(error) => error,
            Ok(answer) => panic!("{reference}: expected a plugin error, got {answer:?}"),
        };
        println!("{reference}: {error} (after {elapsed:?})");
        assert_eq!(
            self.hostile.stats.calls.load(Ordering::Relaxed),
            calls + 1,
            "{reference}: one call counted"
        );
        assert_eq!(
            self.hostile.stats.failures.load(Ordering::Relaxed),
            failures + 1,
            "{reference}: one failure counted"
        );
        self.assert_still_serving().await;
        (error, elapsed)
    }

    /// Both plugins still answer: the failure was confined to its call.
    async fn assert_still_serving(&self) {
        let dummy_failures = self.dummy.stats.failures.load(Ordering::Relaxed);
        self.runtime
            .validate_config(&self.dummy, account())
            .await
            .expect("the dummy plugin still runs")
            .expect("the dummy plugin accepts the account");
        assert_eq!(
            self.dummy.stats.failures.load(Ordering::Relaxed),
            dummy_failures
        );
        let (result, _) = self.hostile("ok").await;
        let outcome = result
            .expect("hostile still runs on a fresh instance")
            .expect("hostile answers `ok`");
        assert!(matches!(outcome.status, wit::PaymentStatus::Authorized));
        // A plugin list, as the API would show it.
        let ids: Vec<String> = self
            .runtime
            .list()
            .iter()
            .map(|p| p.id().to_string())
            .collect();
        assert_eq!(ids, ["dummy", "hostile"]);
    }
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn test_plugins_are_not_bundled() {
    assert!(BUNDLED_PLUGINS.iter().any(|p| p.id == "dummy"));
    assert!(
        BUNDLED_PLUGINS.iter().all(|p| p.id != "hostile"),
        "a test plugin must never be bundled into the server"
    );
    let hostile = find(TEST_PLUGINS, "hostile");
    let manifest = passerelle::runtime::PluginManifest::parse(hostile.manifest_toml).unwrap();
    assert!(manifest.test_only);
    for plugin in BUNDLED_PLUGINS {
        let manifest = passerelle::runtime::PluginManifest::parse(plugin.manifest_toml).unwrap();
        assert!(!manifest.test_only, "{} is test-only", plugin.id);
    }
}

#[tokio::test]
async fn well_behaved_call_succeeds() {
    let h = harness().await;
    let (result, elapsed) = h.hostile("ok").await;
    let outcome = result.unwrap().unwrap();
    assert!(matches!(outcome.status, wit::PaymentStatus::Authorized));
    assert_eq!(outcome.connector_reference.as_deref(), Some("hostile_ok"));
    println!("ok: {elapsed:?}");
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn infinite_loop_hits_the_cpu_limit() {
    let h = harness().await;
    let (error, elapsed) = h.expect_failure("loop").await;
    assert!(
        matches!(&error, PluginError::CpuLimit { plugin, limit_ms } if plugin == "hostile" && *limit_ms == HOSTILE_CPU_MS),
        "{error:?}"
    );
    assert!(error.to_string().contains("CPU time limit of 500 ms"));
    // Guest time is at most wall time, so the call ran at least its budget;
    // the epoch tick (5 ms) cuts it off right after.
    assert!(
        elapsed >= Duration::from_millis(u64::from(HOSTILE_CPU_MS)),
        "{elapsed:?}"
    );
    assert!(elapsed < Duration::from_millis(1200), "{elapsed:?}");
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let h = harness().await;
    let (error, elapsed) = h.expect_failure("oom").await;
    assert!(
        matches!(&error, PluginError::MemoryLimit { plugin, limit_mb } if plugin == "hostile" && *limit_mb == HOSTILE_MEMORY_MB),
        "{error:?}"
    );
    assert!(error.to_string().contains("memory limit of 16 MiB"));
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn unbounded_recursion_is_a_stack_overflow() {
    let h = harness().await;
    let (error, _) = h.expect_failure("stack").await;
    match &error {
        PluginError::Trap { plugin, message } => {
            assert_eq!(plugin, "hostile");
            assert!(message.contains("stack overflow"), "{message}");
        }
        other => panic!("expected a stack overflow trap, got {other:?}"),
    }
}

#[tokio::test]
async fn panic_and_trap_are_crashes() {
    let h = harness().await;
    for reference in ["panic", "trap"] {
        let (error, _) = h.expect_failure(reference).await;
        match &error {
            PluginError::Trap { plugin, message } => {
                assert_eq!(plugin, "hostile");
                assert!(message.contains("unreachable"), "{reference}: {message}");
            }
            other => panic!("{reference}: expected a trap, got {other:?}"),
        }
        assert!(error.to_string().starts_with("plugin hostile crashed"));
    }
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn references_are_kept_exactly_or_refused() {
    let h = harness().await;
    // 16 digits passing Luhn: a reference, kept as is; the same text as a
    // provider status is free text and masked.
    let (result, _) = h.hostile("card-like-reference").await;
    let outcome = result.unwrap().unwrap();
    assert_eq!(
        outcome.connector_reference.as_deref(),
        Some("8815658961765255")
    );
    assert_eq!(
        outcome.provider_status.as_deref(),
        Some("[card number masked]")
    );
    // A reference the host cannot keep exactly fails the call: shortened or
    // stripped, it would name another payment or none.
    for (reference, reason) in [
        ("long-reference", "is longer than 200 characters"),
        ("control-reference", "contains a control character"),
    ] {
        let (error, _) = h.expect_failure(reference).await;
        assert!(
            matches!(&error, PluginError::InvalidIdentifier { plugin, field: "connector_reference", .. } if plugin == "hostile"),
            "{reference}: {error:?}"
        );
        assert!(error.to_string().ends_with(reason), "{error}");
    }
}

#[tokio::test]
async fn oversized_output_is_rejected() {
    let h = harness().await;
    let limit = RuntimeLimits::default().max_output_bytes;
    // 2 MiB of text, then 100 000 empty form fields (no text, but memory).
    for reference in ["huge-output", "many-fields"] {
        let (error, _) = h.expect_failure(reference).await;
        assert!(
            matches!(&error, PluginError::OutputTooLarge { plugin, limit: l } if plugin == "hostile" && *l == limit),
            "{reference}: {error:?}"
        );
    }
}

#[tokio::test]
async fn egress_outside_the_manifest_is_denied_and_logged() {
    let h = harness().await;
    let (result, elapsed) = h.hostile("egress-denied").await;
    let outcome = result
        .expect("a denied request is the plugin's to handle, not a crash")
        .expect("hostile reports the HTTP error in a refusal");
    match &outcome.status {
        wit::PaymentStatus::Refused(refusal) => assert_eq!(refusal.code, "http_denied"),
        other => panic!("expected a refusal carrying the HTTP error, got {other:?}"),
    }
    // Refused before any network access.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 0);
    let logs = captured_logs();
    let denied = logs
        .lines()
        .find(|l| l.contains("plugin HTTP request denied") && l.contains("acc_hostile"))
        .unwrap_or_else(|| panic!("no denial in the logs:\n{logs}"));
    assert!(denied.contains("WARN"), "{denied}");
    assert!(denied.contains("hostile"), "{denied}");
    assert!(denied.contains("https://example.com"), "{denied}");
    h.assert_still_serving().await;
}

#[tokio::test]
async fn log_flood_is_bounded_and_card_numbers_are_masked() {
    let h = harness().await;
    let (result, elapsed) = h.hostile("log-flood").await;
    let outcome = result.unwrap().unwrap();
    assert!(matches!(outcome.status, wit::PaymentStatus::Authorized));
    println!("log-flood: {elapsed:?}");
    let logs = captured_logs();
    let flood: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("log-flood line"))
        .collect();
    assert!(!flood.is_empty(), "the first lines get through");
    // The host keeps 64 KiB per call of the plugin's 20 000 lines.
    let kept: usize = flood.iter().map(|l| l.len()).sum();
    assert!(
        flood.len() < 1000 && kept < 200 * 1024,
        "{} lines, {kept} bytes kept",
        flood.len()
    );
    assert!(logs.contains("plugin log budget exhausted for this call"));
    // A plugin cannot start a log line of its own: its newlines are gone.
    assert!(
        logs.contains("forged-admin-line"),
        "the forged text is kept, inline"
    );
    assert!(
        logs.lines()
            .all(|l| !l.trim_start().starts_with("2026-01-01T00:00:00Z ERROR")),
        "a plugin forged a log line"
    );
    // Every form of card number the plugin writes is masked: alone, grouped,
    // followed by its CVC or by its expiry, and 12 digits long. The CVC and
    // expiry stay: they are not card numbers, and without one they are
    // worthless.
    for line in &flood {
        assert!(
            line.contains(
                "card [card number masked], spaced [card number masked], \
with cvc [card number masked] 737, with expiry [card number masked] 03 2030, \
twelve [card number masked], padding"
            ),
            "{line}"
        );
    }
    // Not in these lines, nor anywhere else the host logged (the requests of
    // every test in this binary carry the same card number).
    assert!(!logs.contains(PAN), "a card number reached the logs");
    assert!(!logs.contains("4111 1111 1111 1111"));
    assert!(!logs.contains("123456789015"));
    h.assert_still_serving().await;
}

#[tokio::test]
async fn wall_clock_timeout_stops_a_call() {
    // A CPU budget larger than the call timeout: the timeout fires first.
    let limits = RuntimeLimits {
        call_timeout: Duration::from_millis(150),
        ..RuntimeLimits::default()
    };
    let h = harness_with(limits).await;
    let (error, elapsed) = h.expect_failure("loop").await;
    assert!(
        matches!(&error, PluginError::Timeout { plugin, .. } if plugin == "hostile"),
        "{error:?}"
    );
    assert!(elapsed < Duration::from_millis(600), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_plugin_does_not_starve_other_calls() {
    let h = Arc::new(harness().await);
    let started = Instant::now();
    let looping = {
        let h = h.clone();
        tokio::spawn(async move {
            let (result, elapsed) = h.hostile("loop").await;
            (result.map(|_| ()), elapsed, started.elapsed())
        })
    };
    // Let the loop get going.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move {
                let begun = Instant::now();
                let result = h.runtime.validate_config(&h.dummy, account()).await;
                (result, begun.elapsed(), started.elapsed())
            })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut last_done = Duration::ZERO;
    for call in calls {
        let (result, took, done_at) = call.await.unwrap();
        result
            .expect("the dummy plugin runs")
            .expect("the dummy plugin accepts the account");
        slowest = slowest.max(took);
        last_done = last_done.max(done_at);
    }
    let (result, loop_took, loop_done_at) = looping.await.unwrap();
    println!(
        "20 dummy calls beside a looping plugin: slowest {slowest:?}, all done at {last_done:?}; \
         the loop was cut off after {loop_took:?} (at {loop_done_at:?})"
    );
    assert!(
        matches!(result, Err(PluginError::CpuLimit { .. })),
        "{result:?}"
    );
    assert!(
        last_done < loop_done_at,
        "the dummy calls finished while the loop still ran"
    );
    assert!(slowest < Duration::from_millis(300), "{slowest:?}");
    assert_eq!(h.dummy.stats.failures.load(Ordering::Relaxed), 0);
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 1);
}

/// The CPU budget counts the time a plugin runs, not the time it waits for
/// a worker thread: three loops sharing one thread are each cut off after
/// running their own 500 ms, about 1.5 s of wall time.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_loops_each_get_their_own_budget() {
    let h = harness().await;
    let started = Instant::now();
    let (a, b, c) = tokio::join!(h.hostile("loop"), h.hostile("loop"), h.hostile("loop"));
    let wall = started.elapsed();
    println!(
        "3 loops on one thread: cut off after {:?}, {:?}, {:?} (all done in {wall:?})",
        a.1, b.1, c.1
    );
    for (result, elapsed) in [a, b, c] {
        assert!(
            matches!(result, Err(PluginError::CpuLimit { .. })),
            "{result:?}"
        );
        assert!(elapsed >= Duration::from_millis(1200), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(3000), "{elapsed:?}");
    }
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 3);
}

// ---------------------------------------------------------------------------
// Egress to non-public addresses, files, environment.

/// `localhost:PORT` is in the manifest, so the allowlist lets the request
/// through; `localhost` resolves to 127.0.0.1, so the address rule stops it
/// when connecting, before any connection reaches the listener.
#[tokio::test]
async fn allowed_name_resolving_to_loopback_is_refused() {
    let listener = Listener::start();
    let port = listener.port;
    // The test proves something only if `localhost` does lead to the listener.
    let resolved: Vec<_> = tokio::net::lookup_host(("localhost", port))
        .await
        .unwrap()
        .collect();
    assert!(
        resolved.iter().any(|a| a.ip().is_loopback()),
        "localhost resolves to {resolved:?}"
    );
    let h = harness_custom(
        RuntimeLimits::default(),
        &hostile_manifest_allowing(&[format!("localhost:{port}")]),
    )
    .await;
    let url = format!("https://localhost:{port}/v1/secret-path?token=secret-query");
    let started = Instant::now();
    let (code, reason) = h.probe(&url, None).await;
    let elapsed = started.elapsed();
    println!("https://localhost:{port}: {code}: {reason} (after {elapsed:?})");
    assert_eq!(code, "http_denied", "{reason}");
    assert!(
        reason.contains(&format!(
            "https://localhost:{port} resolves to a non-public address (loopback)"
        )),
        "{reason}"
    );
    assert!(
        !reason.contains("secret"),
        "the path reached the plugin's error: {reason}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(listener.accepted(), 0, "a connection reached the listener");
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 0);

    let logs = captured_logs();
    let denied = logs
        .lines()
        .find(|l| {
            l.contains("plugin HTTP request denied") && l.contains(&format!("localhost:{port}"))
        })
        .unwrap_or_else(|| panic!("no denial in the logs:\n{logs}"));
    assert!(denied.contains("WARN"), "{denied}");
    assert!(denied.contains("hostile"), "{denied}");
    assert!(denied.contains("non-public address"), "{denied}");
    assert!(!logs.contains("secret-path") && !logs.contains("secret-query"));
    h.assert_still_serving().await;
}

/// IP literals never go through the resolver: they are checked before the
/// request. Each of these is in the manifest, and each is refused at once
/// (a request to 10.0.0.1 or the metadata address would otherwise wait for
/// the connect timeout).
#[tokio::test]
async fn allowed_ip_literals_at_non_public_addresses_are_refused() {
    let listener = Listener::start();
    let port = listener.port;
    let h = harness_custom(
        RuntimeLimits::default(),
        &hostile_manifest_allowing(&[
            format!("127.0.0.1:{port}"),
            format!("[::ffff:127.0.0.1]:{port}"),
        ]),
    )
    .await;
    for (url, range) in [
        (format!("https://127.0.0.1:{port}/x"), "loopback"),
        (format!("https://[::ffff:127.0.0.1]:{port}/x"), "loopback"),
        // The manifest's own entries.
        ("https://localhost/x".to_string(), "loopback"),
        ("https://127.0.0.1/x".to_string(), "loopback"),
        (
            "https://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        ("https://10.0.0.1/x".to_string(), "private"),
        ("https://[::1]/x".to_string(), "loopback"),
    ] {
        let started = Instant::now();
        let (code, reason) = h.probe(&url, None).await;
        let elapsed = started.elapsed();
        println!("{url}: {code}: {reason} (after {elapsed:?})");
        assert_eq!(code, "http_denied", "{url}: {reason}");
        assert!(
            reason.contains(&format!("resolves to a non-public address ({range})")),
            "{url}: {reason}"
        );
        assert!(elapsed < Duration::from_secs(2), "{url}: {elapsed:?}");
    }
    assert_eq!(listener.accepted(), 0, "a connection reached the listener");
    assert_eq!(h.hostile.stats.failures.load(Ordering::Relaxed), 0);
}

/// The account's base URL is the operator's choice (a local sandbox): the
/// same listener is reachable through it, plain HTTP on loopback. This is
/// also what shows the two tests above can fail: the listener does count a
/// request that gets through.
#[tokio::test]
async fn the_operators_base_url_may_be_on_loopback() {
    let listener = Listener::start();
    let port = listener.port;
    let h = harness().await;
    for base in [
        format!("http://127.0.0.1:{port}/sandbox"),
        format!("http://localhost:{port}/sandbox"),
    ] {
        let (code, reason) = h
            .probe(&format!("{base}/v1/charges"), Some(base.clone()))
            .await;
        assert_eq!(code, "http_ok_200", "{base}: {reason}");
    }
    assert_eq!(listener.accepted(), 2);
    // Only the origin: the same host on another port is not the operator's.
    let (code, reason) = h
        .probe(
            &format!("http://127.0.0.1:{}/", port.wrapping_add(1)),
            Some(format!("http://127.0.0.1:{port}/sandbox")),
        )
        .await;
    assert_eq!(code, "http_denied", "{reason}");
    assert!(reason.contains("not an allowed destination"), "{reason}");
}

/// What `hostile`'s sandbox probe tries (`PROBE_ATTEMPTS` in its crate).
const PROBE_ATTEMPTS: &[&str] = &[
    "fs_read",
    "fs_read_relative",
    "fs_metadata",
    "read_dir",
    "current_dir",
    "env_vars",
    "env_home",
    "args",
    "spawn",
    "thread",
    "tcp_connect",
];

/// A plugin built for wasm32-unknown-unknown imports nothing but the
/// contract: the file system, environment, arguments, processes, threads and
/// sockets are not there. Each attempt, in its own call, either reports an
/// error or nothing, or crashes the call (a contained trap; `std::env::vars`
/// panics on that target). (The same probe run natively obtains them all:
/// `cd plugins && cargo test -p passerelle-test-plugin-hostile`.)
#[tokio::test]
async fn files_environment_and_sockets_are_out_of_reach() {
    let listener = Listener::start();
    let target = format!("127.0.0.1:{}", listener.port);
    let h = harness().await;
    let mut crashed = 0;
    for name in PROBE_ATTEMPTS {
        let account = hostile_account_with(&[("attempt", name), ("connect", &target)], None);
        let result = h
            .runtime
            .authorize(&h.hostile, account, authorize_request("sandbox-probe"))
            .await;
        let report = match result {
            Ok(Ok(outcome)) => {
                assert!(matches!(outcome.status, wit::PaymentStatus::Authorized));
                outcome.connector_data.expect("the probe's report")
            }
            Err(PluginError::Trap { plugin, message }) => {
                assert_eq!(plugin, "hostile");
                println!("sandbox-probe {name}: the call crashed: {message}");
                crashed += 1;
                continue;
            }
            other => panic!("{name}: expected a report or a crash, got {other:?}"),
        };
        println!("sandbox-probe {report}");
        let got = report
            .strip_prefix(&format!("{name}="))
            .unwrap_or_else(|| panic!("{name}: unexpected report {report}"))
            .trim_end();
        let nothing = match *name {
            "env_vars" => got == "0 []",
            "args" => got == "0",
            _ => got.starts_with("error:"),
        };
        assert!(nothing, "{name} obtained something: {got}");
        assert!(!report.contains("root:"), "{report}");
        assert!(!report.contains(env!("CARGO_MANIFEST_DIR")), "{report}");
    }
    assert_eq!(listener.accepted(), 0, "a connection reached the listener");
    assert_eq!(
        h.hostile.stats.failures.load(Ordering::Relaxed),
        crashed,
        "each crash is one failure"
    );
    h.assert_still_serving().await;
}

// ---------------------------------------------------------------------------
// Latency of the others.

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Dummy calls one after the other, at least `n` of them and for at least
/// `window`: their durations, sorted.
async fn dummy_latencies(h: &Harness, n: usize, window: Duration) -> Vec<Duration> {
    let started = Instant::now();
    let mut took = Vec::with_capacity(n);
    while took.len() < n || started.elapsed() < window {
        let begun = Instant::now();
        h.runtime
            .validate_config(&h.dummy, account())
            .await
            .expect("the dummy plugin runs")
            .expect("the dummy plugin accepts the account");
        took.push(begun.elapsed());
    }
    took.sort();
    took
}

/// The dummy plugin's latency while `hostile` loops, bombs its memory,
/// overflows its stack and crashes on both worker threads, against a quiet
/// baseline. The bounds are loose on purpose (a shared 2-core machine): they
/// catch starvation, not noise. Run with `--nocapture` for the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_plugins_keep_their_latency_under_hostile_load() {
    const N: usize = 200;
    let h = Arc::new(harness().await);
    // Measured on a worker thread, where the hostile calls run too.
    let measure = |n: usize, window: Duration| {
        let h = h.clone();
        async move {
            tokio::spawn(async move { dummy_latencies(&h, n, window).await })
                .await
                .unwrap()
        }
    };
    measure(20, Duration::ZERO).await; // warm-up
    let quiet = measure(N, Duration::from_secs(1)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let hostile_calls = Arc::new(AtomicUsize::new(0));
    let behaviours: [&[&str]; 3] = [
        &["loop"],
        &["loop"],
        &["oom", "stack", "panic", "many-fields", "loop"],
    ];
    let load: Vec<_> = behaviours
        .into_iter()
        .map(|references| {
            let (h, stop, calls) = (h.clone(), stop.clone(), hostile_calls.clone());
            tokio::spawn(async move {
                for reference in references.iter().cycle() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (result, _) = h.hostile(reference).await;
                    assert!(result.is_err(), "{reference} should fail");
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Let the hostile calls get going.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let loaded_started = Instant::now();
    // Long enough for several loops to be cut off and bombs to go off.
    let loaded = measure(N, Duration::from_millis(1500)).await;
    let loaded_wall = loaded_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    let (q50, q99) = (percentile(&quiet, 0.50), percentile(&quiet, 0.99));
    let (l50, l99) = (percentile(&loaded, 0.50), percentile(&loaded, 0.99));
    let max = loaded[loaded.len() - 1];
    let hostile = hostile_calls.load(Ordering::Relaxed);
    println!(
        "dummy latency: quiet ({} calls) p50 {q50:?} p99 {q99:?}; under hostile load ({} calls \
         in {loaded_wall:?}, {hostile} hostile calls failed meanwhile) p50 {l50:?} p99 {l99:?} \
         max {max:?}",
        quiet.len(),
        loaded.len()
    );
    assert!(hostile >= 1, "the hostile load ran");
    assert!(
        l50 <= q50 * 3 + Duration::from_millis(2),
        "p50 {l50:?} under load, {q50:?} quiet"
    );
    assert!(
        l99 <= q99 * 3 + Duration::from_millis(100),
        "p99 {l99:?} under load, {q99:?} quiet"
    );
    assert_eq!(h.dummy.stats.failures.load(Ordering::Relaxed), 0);
    assert_eq!(
        h.hostile.stats.failures.load(Ordering::Relaxed) as usize,
        hostile
    );
}
