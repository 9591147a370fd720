//! Passerelle's benchmarks. Run: `cargo bench -p passerelle --bench passerelle`.
//!
//! 1. The cost of the sandbox: the dummy connector's operations on a fresh
//!    WebAssembly instance (what every real call pays) against the same
//!    Rust code called natively (the connector crate linked into this
//!    binary, its host imports served by the SDK's test kit).
//!    Each with instances from the pooling allocator (the default) and
//!    mapped per call (`max_instances = 0`, as before the pool). Wall time
//!    per call, and the calling thread's on-CPU time per call, which leaves
//!    out the waits for a core on a loaded machine.
//! 2. The whole server, in a process of its own: `POST /v1/payments`
//!    latency (sequential) and throughput (concurrent) through the HTTP
//!    API, the dummy connector and the dummy PSP over loopback, on SQLite;
//!    the server's CPU time per request and its peak RSS. Built with
//!    `--features native-dummy`, the same again side by side with the dummy
//!    connector linked natively into the server (`serve --native-dummy`):
//!    the isolation tax on the whole payment path.
//!
//! Words after `--` select parts by name (`fresh-pooled`, `fresh-mapped`,
//! `load`, `http`): `cargo bench -p passerelle --bench passerelle -- fresh`
//! runs the fresh-instance figures only. `PASSERELLE_BENCH_CALLS` sets the
//! calls per fresh-instance figure (3,000), longer runs for a profiler.

use std::sync::Arc;
use std::time::{Duration, Instant};

use passerelle::bundled::BUNDLED_PLUGINS;
use passerelle::egress::Egress;
use passerelle::runtime::bindings::types as wit;
use passerelle::runtime::{PluginRuntime, RuntimeLimits};
use passerelle_connector_dummy::sdk;
use passerelle_connector_dummy::sdk::Connector as _;
use passerelle_connector_dummy::Dummy;

const SECRET: &str = "whsec_bench";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn event_body() -> Vec<u8> {
    serde_json::json!({
        "id": "evt_bench", "type": "charge.captured", "created": now_secs() * 1000,
        "charge": {"id": "ch_bench", "status": "captured", "amount": 1050, "currency": "EUR",
                   "reference": "order-1", "amount_captured": 1050, "amount_refunded": 0,
                   "refusal_code": null, "refusal_reason": null, "redirect_url": null, "card_last4": "1111"},
        "refund": null
    })
    .to_string()
    .into_bytes()
}

fn config() -> Vec<(String, String)> {
    vec![
        ("api_key".into(), "sk_bench".into()),
        ("webhook_secret".into(), SECRET.into()),
    ]
}

/// Time the calling thread has spent on a CPU (`/proc/thread-self/schedstat`,
/// in nanoseconds): unlike wall time, it leaves out the time the thread waited
/// for a core that other processes held, so it stays comparable on a loaded
/// machine. `None` where the kernel does not report it.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Wall time and on-CPU time per call.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Option<Duration>,
}

/// Times `f` over `n` runs after a warm-up; returns the mean per call. Every
/// run is polled on this thread (the bench's `block_on`), wasm included
/// (wasmtime's fibers run on the thread that polls them).
async fn time_async<F, Fut>(n: u32, mut f: F) -> Timing
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..n / 10 {
        f().await;
    }
    let cpu_start = thread_cpu_time();
    let start = Instant::now();
    for _ in 0..n {
        f().await;
    }
    let wall = start.elapsed() / n;
    let cpu = cpu_start
        .zip(thread_cpu_time())
        .map(|(start, end)| end.saturating_sub(start) / n);
    Timing { wall, cpu }
}

fn time_sync(n: u32, mut f: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed() / n
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.2} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// `pooled`: instances from the pooling allocator (the host's default);
/// otherwise each instance's memory and fiber stack are mapped for it
/// (`max_instances = 0`, what every call paid before the pool).
async fn sandbox_cost(pooled: bool) {
    let limits = RuntimeLimits {
        // `PASSERELLE_BENCH_INSTANCES`: a smaller pool, for tools (valgrind)
        // that cannot reserve the address space of the default one.
        max_instances: if pooled {
            std::env::var("PASSERELLE_BENCH_INSTANCES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(RuntimeLimits::default().max_instances)
        } else {
            0
        },
        ..RuntimeLimits::default()
    };
    let runtime = PluginRuntime::new(limits, Egress::new().unwrap()).unwrap();
    let bundled = BUNDLED_PLUGINS.iter().find(|p| p.id == "dummy").unwrap();
    let compile_start = Instant::now();
    let plugin = runtime
        .install(bundled.manifest_toml, bundled.component)
        .await
        .unwrap();
    let compile = compile_start.elapsed();
    let account = wit::Account {
        id: "acc_bench".into(),
        environment: wit::Environment::Test,
        base_url: Some("http://127.0.0.1:9/dummy".into()),
        config: config(),
    };
    let native_account = || sdk::types::Account {
        id: "acc_bench".into(),
        environment: sdk::types::Environment::Test,
        base_url: Some("http://127.0.0.1:9/dummy".into()),
        config: config(),
    };
    let body = event_body();
    let signature = passerelle_sandbox::dummy::signature_header(SECRET, now_secs(), &body);

    // `PASSERELLE_BENCH_CALLS`: more calls per figure, for a profiler.
    let n: u32 = std::env::var("PASSERELLE_BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let wasm_validate = time_async(n, || {
        let account = account.clone();
        let plugin = plugin.clone();
        let runtime = &runtime;
        async move {
            runtime
                .validate_config(&plugin, account)
                .await
                .unwrap()
                .unwrap();
        }
    })
    .await;
    let native_validate = time_sync(n * 10, || {
        Dummy::validate_config(native_account()).unwrap();
    });

    let wasm_notification = time_async(n, || {
        let account = account.clone();
        let plugin = plugin.clone();
        let runtime = &runtime;
        let notification = wit::Notification {
            method: "POST".into(),
            uri: "/v1/webhooks/acc_bench".into(),
            headers: vec![wit::HttpHeader {
                name: "dummy-signature".into(),
                value: signature.clone(),
            }],
            body: body.clone(),
        };
        async move {
            let out = runtime
                .handle_notification(&plugin, account, notification)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(out.events.len(), 1);
        }
    })
    .await;
    let _host = sdk::testing::MockHost::new();
    sdk::testing::use_system_clock();
    let native_notification = time_sync(n * 10, || {
        let notification = sdk::types::Notification {
            method: "POST".into(),
            uri: "/v1/webhooks/acc_bench".into(),
            headers: vec![sdk::types::HttpHeader {
                name: "dummy-signature".into(),
                value: signature.clone(),
            }],
            body: body.clone(),
        };
        let out = Dummy::handle_notification(native_account(), notification).unwrap();
        assert_eq!(out.events.len(), 1);
    });

    let allocation = if pooled {
        "pooling allocator"
    } else {
        "on-demand allocation, no pool"
    };
    println!("## Connector call: fresh WebAssembly instance ({allocation}) vs native\n");
    println!(
        "component: dummy, {} KiB, compiled in {}\n",
        bundled.component.len() / 1024,
        fmt(compile)
    );
    println!("| operation | wasm (fresh instance) | wasm, on-CPU | native | overhead |");
    println!("|---|---|---|---|---|");
    for (name, wasm, native) in [
        ("validate-config", wasm_validate, native_validate),
        (
            "handle-notification (HMAC + JSON)",
            wasm_notification,
            native_notification,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {} | +{} |",
            fmt(wasm.wall),
            wasm.cpu.map_or_else(|| "-".into(), fmt),
            fmt(native),
            fmt(wasm.wall.saturating_sub(native))
        );
    }
    println!();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

/// The server under test: `passerelle serve --demo` in a process of its
/// own (so its CPU time and memory are its own), logging warnings only.
struct ServerProcess {
    child: std::process::Child,
    data_dir: std::path::PathBuf,
    base_url: String,
    secret_key: String,
}

impl ServerProcess {
    fn start(name: &str, extra_args: &[&str]) -> ServerProcess {
        let data_dir =
            std::env::temp_dir().join(format!("passerelle-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = std::fs::File::create(data_dir.join("server.log")).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
            .args([
                "serve",
                "--demo",
                "--listen",
                "127.0.0.1:0",
                "--workers",
                "2",
            ])
            .args(["--psp-specs", "off"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra_args)
            .env("PASSERELLE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the passerelle binary starts");
        let demo_path = data_dir.join("demo.json");
        let deadline = Instant::now() + Duration::from_secs(120);
        let demo: serde_json::Value = loop {
            if let Some(demo) = std::fs::read(&demo_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                break demo;
            }
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        };
        let base_url = demo["base_url"].as_str().unwrap().to_string();
        // demo.json is written before the listener serves.
        let addr = base_url.trim_start_matches("http://").to_string();
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the server does not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        ServerProcess {
            child,
            data_dir,
            base_url,
            secret_key: demo["secret_key"].as_str().unwrap().to_string(),
        }
    }

    /// User plus system CPU time the process has used so far.
    fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces): utime is
        // the 14th field of the line, stime the 15th.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
    }

    /// The process's peak resident memory (VmHWM), in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024.0
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// One server under test and what was measured on it.
struct Variant {
    name: &'static str,
    server: ServerProcess,
    client: reqwest::Client,
    /// Payments sent so far (their references are numbered).
    sent: usize,
    sequential: Vec<Duration>,
    sequential_cpu: Duration,
    concurrent: Vec<Duration>,
    concurrent_elapsed: Duration,
    concurrent_cpu: Duration,
}

impl Variant {
    fn start(name: &'static str, extra_args: &[&str]) -> Variant {
        Variant {
            name,
            server: ServerProcess::start(name, extra_args),
            client: reqwest::Client::new(),
            sent: 0,
            sequential: Vec::new(),
            sequential_cpu: Duration::ZERO,
            concurrent: Vec::new(),
            concurrent_elapsed: Duration::ZERO,
            concurrent_cpu: Duration::ZERO,
        }
    }

    /// `n` payments, `concurrency` in flight; their latencies.
    async fn payments(&mut self, n: usize, concurrency: usize) -> Vec<Duration> {
        let first = self.sent;
        self.sent += n;
        let url = format!("{}/v1/payments", self.server.base_url);
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(first));
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (client, url, key, next) = (
                self.client.clone(),
                url.clone(),
                self.server.secret_key.clone(),
                next.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= first + n {
                        break mine;
                    }
                    let body = serde_json::json!({
                        "amount": 1050 + i as u64, "currency": "EUR", "reference": format!("bench-{i}"),
                        "capture_method": "automatic",
                        "payment_method": {"type": "card", "card": {"number": "4111111111111111", "exp_month": 3, "exp_year": 2030, "cvc": "737"}},
                        "return_url": "https://shop.example/done"
                    });
                    let started = Instant::now();
                    let resp = client
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 201);
                    let _ = resp.bytes().await;
                    mine.push(started.elapsed());
                }
            }));
        }
        let mut latencies = Vec::with_capacity(n);
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        latencies
    }

    async fn sequential_round(&mut self, n: usize) {
        let cpu_before = self.server.cpu_time();
        let latencies = self.payments(n, 1).await;
        self.sequential_cpu += self.server.cpu_time().saturating_sub(cpu_before);
        self.sequential.extend(latencies);
    }

    async fn concurrent_round(&mut self, n: usize, concurrency: usize) {
        let cpu_before = self.server.cpu_time();
        let started = Instant::now();
        let latencies = self.payments(n, concurrency).await;
        self.concurrent_elapsed += started.elapsed();
        self.concurrent_cpu += self.server.cpu_time().saturating_sub(cpu_before);
        self.concurrent.extend(latencies);
    }

    fn sequential_throughput(&self) -> f64 {
        self.sequential.len() as f64 / self.sequential.iter().sum::<Duration>().as_secs_f64()
    }

    fn concurrent_throughput(&self) -> f64 {
        self.concurrent.len() as f64 / self.concurrent_elapsed.as_secs_f64()
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "-".into())
}

/// `POST /v1/payments` on the WebAssembly dummy connector and, in a build
/// with the `native-dummy` feature, on the same connector linked natively
/// (`serve --native-dummy`): two servers side by side, the same binary,
/// measured in alternating rounds so that both see the same machine state.
async fn http_api() {
    const ROUNDS: usize = 4;
    const SEQUENTIAL: usize = 500;
    const CONCURRENCY: usize = 32;
    const TOTAL: usize = 2000;
    let mut variants = vec![Variant::start("wasm", &[])];
    if cfg!(feature = "native-dummy") {
        variants.push(Variant::start("native", &["--native-dummy"]));
    }
    let load_before = load_average();
    for v in &mut variants {
        v.payments(50, 1).await; // warm-up
    }
    // Each round runs every variant, in turns: wasm first, then native
    // first, and so on.
    for round in 0..ROUNDS {
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            variants[v].sequential_round(SEQUENTIAL / ROUNDS).await;
        }
    }
    for round in 0..ROUNDS {
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            variants[v]
                .concurrent_round(TOTAL / ROUNDS, CONCURRENCY)
                .await;
        }
    }
    let load_after = load_average();

    println!(
        "## POST /v1/payments (card authorized and captured, SQLite, dummy PSP on loopback)\n"
    );
    println!(
        "The server is `passerelle serve --demo` in its own process (2 workers, \
         PASSERELLE_LOG=warn); CPU is its user + system time per request. \
         `native`: the same binary with `--native-dummy`, the dummy connector's \
         Rust code linked into the host instead of its WebAssembly component. \
         The servers run side by side, measured in {ROUNDS} alternating rounds \
         of each load. Load average {load_before} before, {load_after} after.\n"
    );
    if variants.len() == 1 {
        println!(
            "native variant skipped: this bench was built without the `native-dummy` \
             feature (`cargo bench -p passerelle --bench passerelle --features native-dummy`)\n"
        );
    }
    println!("| connector | load | requests | p50 | p99 | throughput | server CPU / request |");
    println!("|---|---|---|---|---|---|---|");
    for v in &mut variants {
        v.sequential.sort();
        println!(
            "| {} | sequential | {} | {} | {} | {:.0} req/s | {} |",
            v.name,
            v.sequential.len(),
            fmt(percentile(&v.sequential, 0.50)),
            fmt(percentile(&v.sequential, 0.99)),
            v.sequential_throughput(),
            fmt(v.sequential_cpu / v.sequential.len() as u32)
        );
    }
    for v in &mut variants {
        v.concurrent.sort();
        println!(
            "| {} | {CONCURRENCY} concurrent | {} | {} | {} | {:.0} req/s | {} |",
            v.name,
            v.concurrent.len(),
            fmt(percentile(&v.concurrent, 0.50)),
            fmt(percentile(&v.concurrent, 0.99)),
            v.concurrent_throughput(),
            fmt(v.concurrent_cpu / v.concurrent.len() as u32)
        );
    }
    if let [wasm, native] = &variants[..] {
        let cpu = |total: Duration, n: usize| total.as_secs_f64() * 1e6 / n as f64;
        println!(
            "\nwasm / native throughput: {:.1} % sequential, {:.1} % at {CONCURRENCY} concurrent \
             (goal: at least 90 %)",
            100.0 * wasm.sequential_throughput() / native.sequential_throughput(),
            100.0 * wasm.concurrent_throughput() / native.concurrent_throughput(),
        );
        println!(
            "server CPU per payment, wasm - native: {:+.0} µs sequential, {:+.0} µs at \
             {CONCURRENCY} concurrent",
            cpu(wasm.sequential_cpu, wasm.sequential.len())
                - cpu(native.sequential_cpu, native.sequential.len()),
            cpu(wasm.concurrent_cpu, wasm.concurrent.len())
                - cpu(native.concurrent_cpu, native.concurrent.len()),
        );
    }
    println!();
    for v in &variants {
        println!(
            "{}: server peak RSS after {} payments: {:.1} MiB",
            v.name,
            v.sent,
            v.server.peak_rss_mib()
        );
    }
    println!();
}

/// Loading each bundled connector: compiling it, against reading its
/// compiled form from the on-disk cache (what a restart does).
async fn load_cost() {
    let cache = std::env::temp_dir().join(format!("passerelle-bench-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    println!("## Loading a connector: compile vs compile cache\n");
    // Each figure includes the `describe` call that checks the manifest.
    println!("| connector | component | load, compiling | load, from cache |");
    println!("|---|---|---|---|");
    // The Python example too, when examples/python-dummy/build.sh has run.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = std::fs::read(root.join("target/examples/python-dummy/component.wasm"))
        .ok()
        .zip(std::fs::read_to_string(root.join("examples/python-dummy/manifest.toml")).ok());
    let mut connectors: Vec<(String, String, Vec<u8>)> = BUNDLED_PLUGINS
        .iter()
        .map(|p| {
            (
                p.id.to_string(),
                p.manifest_toml.to_string(),
                p.component.to_vec(),
            )
        })
        .collect();
    if let Some((component, manifest)) = python {
        connectors.push(("python-dummy".into(), manifest, component));
    }
    for (id, manifest, component) in &connectors {
        let mut figures = Vec::new();
        for _ in 0..2 {
            // A fresh runtime each time: nothing is kept in memory.
            let runtime = PluginRuntime::new(RuntimeLimits::default(), Egress::new().unwrap())
                .unwrap()
                .with_compile_cache(cache.clone());
            let started = Instant::now();
            let plugin = runtime.load(manifest, component).await.unwrap();
            figures.push((plugin.load.from_cache, started.elapsed()));
        }
        assert!(!figures[0].0 && figures[1].0);
        println!(
            "| {id} | {} KiB | {} | {} |",
            component.len() / 1024,
            fmt(figures[0].1),
            fmt(figures[1].1)
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&cache);
}

/// The parts of the bench, by the name a filter matches.
const PARTS: [&str; 4] = ["fresh-mapped", "fresh-pooled", "load", "http"];

fn main() {
    // `cargo test --benches` runs this with `--bench`-less args; keep it quick then.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // `cargo bench -p passerelle --bench passerelle -- fresh` runs only the
    // parts whose name contains one of the words given (`fresh-pooled`,
    // `fresh-mapped`, `load`, `http`); no word: all of them.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted =
        |part: &str| filters.is_empty() || filters.iter().any(|f| part.contains(f.as_str()));
    for f in &filters {
        assert!(
            PARTS.iter().any(|p| p.contains(f.as_str())),
            "no part of the bench matches {f:?}; parts: {PARTS:?}"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if wanted("fresh-mapped") {
            sandbox_cost(false).await;
        }
        if wanted("fresh-pooled") {
            sandbox_cost(true).await;
        }
        if wanted("load") {
            load_cost().await;
        }
        if wanted("http") {
            http_api().await;
        }
    });
}
