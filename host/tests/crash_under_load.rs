//! kill -9 under load: 200 storefronts create, capture and refund payments
//! (each request with an Idempotency-Key, retried with it on any failure,
//! as a careful storefront does) while the PSP misbehaves now and then;
//! the server is killed with SIGKILL mid-run and started again. Then the
//! janitor settles whatever was left unknown, and the PSP's own ledger is
//! compared with the host's, payment by payment: nothing lost, nothing
//! charged twice, never more captured or refunded than allowed.
//!
//! Figures (payments, faults, lost, double charges, time to settle) are
//! printed; `cargo nextest run --test crash_under_load --no-capture` shows
//! them.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const CLIENTS: usize = 200;
const FLOWS_PER_CLIENT: usize = 2;
/// Every request of a flow gives up after this long (the test then fails).
const FLOW_DEADLINE: Duration = Duration::from_secs(150);

#[derive(Default)]
struct Figures {
    requests: AtomicU64,
    retries: AtomicU64,
    flows_done: AtomicU64,
    /// While the server restarts, storefronts hold their next request:
    /// the restarted demo points the dummy account at its own sandbox
    /// until the test points it back at the PSP outside (requests in
    /// flight at the kill still die mid-call).
    paused: std::sync::atomic::AtomicBool,
}

/// Sends one idempotent request until it has a definite answer (2xx or a
/// 4xx other than 409), retrying with the same key after connection
/// errors, 5xx and 409 (in progress, busy).
async fn until_answered(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    path: &str,
    body: &Value,
    key: &str,
    figures: &Figures,
) -> (u16, Value) {
    let deadline = Instant::now() + FLOW_DEADLINE;
    let mut pause = Duration::from_millis(50);
    loop {
        while figures.paused.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        figures.requests.fetch_add(1, Ordering::Relaxed);
        let sent = http
            .post(format!("{base}{path}"))
            .bearer_auth(secret)
            .header("Idempotency-Key", key)
            .json(body)
            .timeout(Duration::from_secs(20))
            .send()
            .await;
        if let Ok(resp) = sent {
            let status = resp.status().as_u16();
            let value: Value = resp.json().await.unwrap_or(Value::Null);
            let busy = status == 409
                && matches!(
                    value["error"]["code"].as_str(),
                    Some("idempotency_request_in_progress" | "payment_busy" | "idempotency_retry")
                );
            if status < 500 && !busy {
                return (status, value);
            }
        }
        assert!(Instant::now() < deadline, "{path} never answered");
        figures.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(800));
    }
}

/// One storefront: create a manual payment, capture part of it, refund
/// part of that.
async fn storefront(
    http: reqwest::Client,
    base: String,
    secret: String,
    client: usize,
    figures: Arc<Figures>,
    flows: Arc<std::sync::Mutex<HashMap<String, String>>>,
) {
    for flow in 0..FLOWS_PER_CLIENT {
        let tag = format!("{client}-{flow}-{}", rand_suffix());
        let mut body = payment_body(10_000, "EUR", CARD_OK, "manual");
        body["reference"] = json!(format!("load-{tag}"));
        let (status, p) = until_answered(
            &http,
            &base,
            &secret,
            "/v1/payments",
            &body,
            &format!("create-{tag}"),
            &figures,
        )
        .await;
        assert_eq!(status, 201, "{p}");
        let id = p["id"].as_str().unwrap().to_string();
        flows
            .lock()
            .unwrap()
            .insert(format!("load-{tag}"), id.clone());
        if p["status"] == "requires_capture" {
            let (status, p) = until_answered(
                &http,
                &base,
                &secret,
                &format!("/v1/payments/{id}/capture"),
                &json!({"amount": 6_000}),
                &format!("capture-{tag}"),
                &figures,
            )
            .await;
            assert!(
                status == 200 || status == 400 || status == 402,
                "{status} {p}"
            );
        }
        let (status, r) = until_answered(
            &http,
            &base,
            &secret,
            &format!("/v1/payments/{id}/refunds"),
            &json!({"amount": 2_500}),
            &format!("refund-{tag}"),
            &figures,
        )
        .await;
        // 409: nothing captured (the capture failed at the PSP).
        assert!(matches!(status, 201 | 400 | 402 | 409), "{status} {r}");
        figures.flows_done.fetch_add(1, Ordering::Relaxed);
    }
}

async fn kill_under_load(backend: Backend) {
    let psp = passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        specs: passerelle_sandbox::SpecSource::Off,
        ..passerelle_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let mut server = TestServer::start_with_args(
        backend,
        &[
            "--plugin-timeout-secs",
            "3",
            "--idempotency-lease-secs",
            "3",
            "--janitor-grace-secs",
            "1",
            "--janitor-max-backoff-secs",
            "2",
            "--janitor-interval-ms",
            "250",
            // A payment the PSP never saw (its request failed) is given up
            // this long after its creation.
            "--janitor-window-secs",
            "15",
        ],
    )
    .await;
    server.use_dummy_psp(&psp.dummy_base_url()).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let figures = Arc::new(Figures::default());
    let flows = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            tokio::spawn(storefront(
                http.clone(),
                server.base_url.clone(),
                server.secret_key.clone(),
                client,
                figures.clone(),
                flows.clone(),
            ))
        })
        .collect();

    // PSP faults while the load runs: failures, and answers lost after the
    // PSP acted.
    let mut faults = 0;
    for (mode, count) in [("http_500", 10), ("timeout_after_effect", 4)] {
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.dummy_fault(mode, count).await;
        faults += count;
    }
    // Then kill -9, mid-run, and start again (same port, same database).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let done_before_kill = figures.flows_done.load(Ordering::Relaxed);
    figures.paused.store(true, Ordering::SeqCst);
    server.stop();
    let killed_at = Instant::now();
    server.restart().await;
    let down_for = killed_at.elapsed();
    figures.paused.store(false, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let load_done = started.elapsed();

    // The janitor settles everything left unknown.
    let settle_start = Instant::now();
    loop {
        let (status, backlog) = server.admin_get("/v1/admin/reconciliation").await;
        assert_eq!(status, 200, "{backlog}");
        if backlog["unsettled"] == 0 {
            break;
        }
        assert!(
            settle_start.elapsed() < Duration::from_secs(120),
            "still unsettled: {backlog}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let settled_in = settle_start.elapsed();

    // The PSP's ledger against the host's, payment by payment.
    let ledger: Value = server
        .http
        .get(format!("{}/_sandbox/charges", psp.dummy_base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let charges = ledger["data"].as_array().unwrap();
    let mut per_reference: HashMap<String, Vec<&Value>> = HashMap::new();
    for charge in charges {
        per_reference
            .entry(charge["reference"].as_str().unwrap().to_string())
            .or_default()
            .push(charge);
    }
    let double_charged = per_reference.values().filter(|c| c.len() > 1).count();
    let flows = flows.lock().unwrap().clone();
    let mut lost = Vec::new();
    let mut never_charged = 0;
    for (reference, payment_id) in &flows {
        let (status, p) = server.get(&format!("/v1/payments/{payment_id}")).await;
        assert_eq!(status, 200, "{p}");
        match per_reference.get(reference).map(Vec::as_slice) {
            Some([charge]) => {
                let agrees = p["connector_reference"] == charge["id"]
                    && charge["payment_id"] == payment_id.as_str()
                    && p["amount_captured"] == charge["amount_captured"]
                    && p["amount_refunded"] == charge["amount_refunded"];
                if !agrees {
                    lost.push(format!("{charge} / {p}"));
                }
                let captured = charge["amount_captured"].as_u64().unwrap();
                assert!(captured <= charge["amount"].as_u64().unwrap());
                assert!(charge["amount_refunded"].as_u64().unwrap() <= captured);
            }
            // The PSP never saw it: the host must not say it was paid.
            None => {
                never_charged += 1;
                if p["status"] != "failed" || p["amount_captured"] != 0 {
                    lost.push(format!("no charge / {p}"));
                }
            }
            Some(_) => {}
        }
    }
    eprintln!(
        "kill -9 under load ({backend:?}): {CLIENTS} storefronts, {} flows ({} done before the kill), \
         {} requests ({} retried), {faults} PSP faults injected, server down {:.1} s, load over in {:.1} s; \
         PSP charges {} ({never_charged} payments never reached it), lost {}, double-charged {double_charged}, \
         unsettled -> 0 in {:.1} s",
        CLIENTS * FLOWS_PER_CLIENT,
        done_before_kill,
        figures.requests.load(Ordering::Relaxed),
        figures.retries.load(Ordering::Relaxed),
        down_for.as_secs_f64(),
        load_done.as_secs_f64(),
        charges.len(),
        lost.len(),
        settled_in.as_secs_f64(),
    );
    assert_eq!(flows.len(), CLIENTS * FLOWS_PER_CLIENT);
    assert_eq!(charges.len() + never_charged, flows.len());
    assert!(
        lost.is_empty(),
        "host and PSP disagree:\n{}",
        lost.join("\n")
    );
    assert_eq!(double_charged, 0);
    assert_eq!(
        figures.flows_done.load(Ordering::Relaxed) as usize,
        CLIENTS * FLOWS_PER_CLIENT
    );
}

both_backends!(kill_under_load);
