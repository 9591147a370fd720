//! The sandbox's promise, checked through the plugin interface: a trap,
//! panic, infinite loop or memory bomb in a plugin fails that one call with
//! a clear error and the host keeps serving; outbound HTTP reaches only the
//! hosts a plugin's manifest allows; plugin logs are bounded and card
//! numbers never reach them.
//!
//! The misbehaving plugin is `plugins/test-plugins/hostile` (a test-only
//! plugin: `bundled::test_plugins`, never bundled into the server). Its
//! `authorize` does what the request's `reference` says. Each test builds its
//! own `PluginRuntime` with the dummy connector and `hostile` installed.
//!
//! Run: `cargo test -p passerelle --test plugin_limits -- --nocapture` (the
//! timings are printed).

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
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

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static LogBuffer {
    static LOGS: OnceLock<LogBuffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = LogBuffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in this test binary");
        buffer
    })
}

fn captured_logs() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
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
    logs();
    let runtime = PluginRuntime::new(limits, Egress::new().unwrap()).unwrap();
    let dummy = find(BUNDLED_PLUGINS, "dummy");
    let hostile = find(TEST_PLUGINS, "hostile");
    let dummy = runtime
        .install(dummy.manifest_toml, dummy.component)
        .await
        .unwrap();
    let hostile = runtime
        .install(hostile.manifest_toml, hostile.component)
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

fn authorize_request(reference: &str) -> wit::AuthorizeRequest {
    wit::AuthorizeRequest {
        payment_id: format!("pay_{reference}"),
        reference: reference.into(),
        amount: wit::Money {
            minor_units: 1050,
            currency: "EUR".into(),
        },
        capture_method: wit::CaptureMethod::Automatic,
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
    for line in &flood {
        assert!(line.contains("card [card number masked], spaced [card number masked]"));
    }
    // Not in these lines, nor anywhere else the host logged (the requests of
    // every test in this binary carry the same card number).
    assert!(!logs.contains(PAN), "a card number reached the logs");
    assert!(!logs.contains("4111 1111 1111 1111"));
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
