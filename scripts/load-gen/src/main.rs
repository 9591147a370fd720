//! Open-loop HTTP load generator for `scripts/bench-load.sh`.
//!
//! `run`: sends `rate × duration` requests on a fixed schedule (request `i`
//! is due at `start + i / rate`), each to the next URL of a file, without
//! waiting for earlier answers; a request's latency runs from its *due*
//! time, so time spent queued (in the server or waiting for one of the
//! `--concurrency` connections) is counted, never hidden. Prints one JSON
//! object: offered and achieved rate, status counts, latency percentiles.
//!
//! `create`: creates payments as fast as `--concurrency` connections allow
//! (closed loop, untimed set-up) and prints their ids, one a line.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

struct Args(BTreeMap<String, String>);

impl Args {
    fn parse(args: &[String]) -> Args {
        let mut map = BTreeMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .unwrap_or_else(|| fail(&format!("unexpected argument {flag:?}")));
            let value = it
                .next()
                .unwrap_or_else(|| fail(&format!("--{name} needs a value")));
            map.insert(name.to_string(), value.clone());
        }
        Args(map)
    }

    fn get(&self, name: &str) -> String {
        self.0
            .get(name)
            .cloned()
            .unwrap_or_else(|| fail(&format!("--{name} is required")))
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> T {
        match self.0.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(&format!("--{name}: not a number: {v}"))),
            None => default.unwrap_or_else(|| fail(&format!("--{name} is required"))),
        }
    }
}

fn fail(message: &str) -> ! {
    eprintln!("load-gen: {message}");
    std::process::exit(2)
}

const USAGE: &str = "usage:
  load-gen run --urls FILE [--skip N] --key KEY [--body JSON] --rate R --duration SECS [--concurrency C] [--timeout SECS]
  load-gen create --base-url URL --key KEY --count N --capture-method manual|automatic [--concurrency C]";

fn client(concurrency: usize, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(timeout)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|e| fail(&format!("HTTP client: {e}")))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        fail(USAGE)
    };
    let args = Args::parse(rest);
    match command.as_str() {
        "run" => run(&args).await,
        "create" => create(&args).await,
        _ => fail(USAGE),
    }
}

async fn run(args: &Args) {
    let rate: f64 = args.num("rate", None);
    let duration: f64 = args.num("duration", None);
    let skip: usize = args.num("skip", Some(0));
    let concurrency: usize = args.num("concurrency", Some(64));
    let timeout = Duration::from_secs_f64(args.num("timeout", Some(10.0)));
    let key = args.get("key");
    let body = args.0.get("body").cloned().unwrap_or_else(|| "{}".into());
    let total = (rate * duration).round() as usize;
    let urls: Vec<String> = std::fs::read_to_string(args.get("urls"))
        .unwrap_or_else(|e| fail(&format!("--urls: {e}")))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .skip(skip)
        .take(total)
        .map(str::to_string)
        .collect();
    if urls.len() < total {
        fail(&format!(
            "{total} requests need {total} URLs after the first {skip}; the file has {}",
            urls.len()
        ));
    }
    let client = client(concurrency, timeout);
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency));
    // Latencies in microseconds, 1 µs to 60 s, 3 significant digits.
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap()));
    let statuses = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = Vec::with_capacity(total);
    let mut late_dispatches = 0u64;
    for (i, url) in urls.into_iter().enumerate() {
        let due = start + interval * i as u32;
        let now = Instant::now();
        if now < due {
            tokio::time::sleep_until(due.into()).await;
        } else if now - due > Duration::from_millis(1) {
            late_dispatches += 1;
        }
        let (client, slots, histogram, statuses, key, body) = (
            client.clone(),
            slots.clone(),
            histogram.clone(),
            statuses.clone(),
            key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = slots.acquire_owned().await.unwrap();
            let outcome = client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let label = match outcome {
                Ok(resp) => {
                    let status = resp.status().as_u16().to_string();
                    let _ = resp.bytes().await;
                    status
                }
                Err(e) if e.is_timeout() => "timeout".to_string(),
                Err(_) => "transport_error".to_string(),
            };
            let micros = due.elapsed().as_micros().max(1) as u64;
            histogram.lock().unwrap().saturating_record(micros);
            *statuses.lock().unwrap().entry(label).or_default() += 1;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let h = histogram.lock().unwrap();
    let statuses = statuses.lock().unwrap().clone();
    let ok: u64 = statuses
        .iter()
        .filter(|(s, _)| s.starts_with('2'))
        .map(|(_, n)| n)
        .sum();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let summary = serde_json::json!({
        "tool": "load-gen",
        "offered_rps": rate,
        "duration_s": duration,
        "sent": total,
        "ok": ok,
        "errors": total as u64 - ok,
        "statuses": statuses,
        "elapsed_s": elapsed,
        "achieved_rps": ok as f64 / elapsed,
        "late_dispatches": late_dispatches,
        "latency_ms": {
            "p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "p999": ms(0.999),
            "max": h.max() as f64 / 1000.0, "mean": h.mean() / 1000.0,
        },
    });
    println!("{summary}");
}

async fn create(args: &Args) {
    let base = args.get("base-url");
    let key = args.get("key");
    let count: usize = args.num("count", None);
    let concurrency: usize = args.num("concurrency", Some(16));
    let capture = args.get("capture-method");
    let client = client(concurrency, Duration::from_secs(30));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, next, base, key, capture) = (
            client.clone(),
            next.clone(),
            base.clone(),
            key.clone(),
            capture.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break ids;
                }
                let body = serde_json::json!({
                    "amount": 1050, "currency": "EUR", "reference": format!("bench-setup-{i}"),
                    "capture_method": capture,
                    "payment_method": {"type": "card", "card": {
                        "number": "4111111111111111", "exp_month": 3, "exp_year": 2030,
                        "cvc": "737", "holder_name": "Ada Lovelace"}},
                    "return_url": "https://shop.example/checkout/done",
                });
                let resp = client
                    .post(format!("{base}/v1/payments"))
                    .bearer_auth(&key)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap_or_else(|e| fail(&format!("creating a payment: {e}")));
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                if status.as_u16() != 201 {
                    fail(&format!("creating a payment: {status}: {text}"));
                }
                let v: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| fail(&format!("payment JSON: {e}")));
                let id = v["id"]
                    .as_str()
                    .unwrap_or_else(|| fail(&format!("payment without an id: {text}")));
                ids.push(id.to_string());
            }
        }));
    }
    let mut out = String::new();
    for w in workers {
        for id in w.await.unwrap() {
            out.push_str(&id);
            out.push('\n');
        }
    }
    print!("{out}");
}
