//! The bench-only build (cargo feature `native-dummy`, `serve
//! --native-dummy`), through the public surface: payments made with the
//! dummy connector linked natively reach the real dummy PSP over loopback
//! through the host's egress, and end exactly as they do through the
//! connector's WebAssembly component. Run by `scripts/test`:
//! `cargo test -p passerelle --features native-dummy --test native_dummy`.

mod common;

use common::*;
use serde_json::{json, Value};

/// What a scenario leaves behind that must not depend on how the connector
/// runs: the payments' states as the API shows them, and the PSP's ledger.
async fn scenario(server: &TestServer) -> Value {
    let mut summary = Vec::new();
    // Authorized and captured at once; refused; 3-D Secure asked for.
    for (card, capture) in [
        (CARD_OK, "automatic"),
        (CARD_REFUSED, "automatic"),
        (CARD_3DS, "automatic"),
    ] {
        let body = payment_body(2_500, "EUR", card, capture);
        let reference = body["reference"].as_str().unwrap().to_string();
        let (status, p) = server.post("/v1/payments", body).await;
        assert_eq!(status, 201, "{p}");
        let charges = server.psp_charges(&reference).await;
        assert_eq!(charges.len(), 1, "the PSP saw the charge: {charges:?}");
        summary.push(json!({
            "status": p["status"], "failure_code": p["failure_code"],
            "failure_message": p["failure_message"], "amount_captured": p["amount_captured"],
            "connector": p["connector"], "next_action": p["next_action"]["type"],
            "psp": charges[0]["status"], "psp_amount": charges[0]["amount"],
        }));
    }
    // Manual capture: a partial capture, then a partial refund.
    let body = payment_body(1_000, "EUR", CARD_OK, "manual");
    let reference = body["reference"].as_str().unwrap().to_string();
    let (status, p) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap();
    let (status, captured) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 600}),
        )
        .await;
    assert_eq!(status, 200, "{captured}");
    let (status, refund) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 250}),
        )
        .await;
    assert_eq!(status, 201, "{refund}");
    // The PSP's notifications (verified by the connector's
    // `handle-notification`) arrive on their own time: wait until one has
    // been recorded and no more come for a second.
    let events_url = format!("/v1/payments/{id}/events");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut events = server.get(&events_url).await.1;
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = server.get(&events_url).await.1;
        let notified = now["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cause"] == "notification");
        if (notified && now == events) || std::time::Instant::now() > deadline {
            break;
        }
        events = now;
    }
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    let charges = server.psp_charges(&reference).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    summary.push(json!({
        "after_capture": captured["status"], "refund": refund["status"],
        "status": p["status"], "amount_captured": p["amount_captured"],
        "amount_refunded": p["amount_refunded"],
        "events": events["data"].as_array().unwrap().iter()
            .map(|e| json!([e["to_status"], e["cause"]])).collect::<Vec<_>>(),
        "psp": charges[0]["status"], "psp_captured": charges[0]["amount_captured"],
        "psp_refunded": charges[0]["amount_refunded"],
    }));
    Value::Array(summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_dummy_reaches_the_psp_and_ends_as_the_component_does() {
    const NATIVE: &str = "run its Rust code linked natively";
    let wasm = TestServer::start(Backend::Sqlite).await;
    let native = TestServer::start_with_args(Backend::Sqlite, &["--native-dummy"]).await;
    assert!(native.logs().contains(NATIVE), "{}", native.logs());
    assert!(!wasm.logs().contains(NATIVE));

    let through_wasm = scenario(&wasm).await;
    let through_native = scenario(&native).await;
    for (native, wasm) in through_native
        .as_array()
        .unwrap()
        .iter()
        .zip(through_wasm.as_array().unwrap())
    {
        assert_eq!(native, wasm, "native, then wasm");
    }
    assert_eq!(through_wasm[0]["status"], "succeeded", "{through_wasm}");
    assert_eq!(through_wasm[0]["psp"], "captured", "{through_wasm}");
    assert_eq!(through_wasm[1]["failure_code"], "card_declined");
    assert_eq!(through_wasm[2]["status"], "requires_action");
    assert_eq!(through_wasm[3]["status"], "partially_captured");
    assert_eq!(through_wasm[3]["amount_refunded"], 250);
    let causes = through_wasm[3]["events"].to_string();
    assert!(causes.contains("notification"), "{causes}");

    // The native connector's imports are the host's: its log lines reach
    // the server's log under the plugin's name (the SDK's mock would have
    // kept them), and its calls are counted as the component's are.
    let logs = native.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("charge ch_") && l.contains(" for order-")),
        "{logs}"
    );
    assert!(
        logs.contains("plugin HTTP request"),
        "egress logged the requests: {logs}"
    );
    assert_eq!(
        native.plugin_calls("dummy").await,
        wasm.plugin_calls("dummy").await
    );
}
