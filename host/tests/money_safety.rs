//! Money safety under faults, through the public surface: a write that fails
//! after the provider acted, a server killed mid-call, a notification whose
//! application fails, a shopper's browser trying to end a payment, two
//! nodes on one database. In each case the provider's own ledger (the
//! sandbox's) decides: one authorization per payment, never more captured
//! or refunded than allowed, and the host agreeing with it.
//!
//! Database failures are injected with SQL triggers beside the server
//! (`TestServer::fail_writes`); crashes are a SIGKILL of the server process.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A dummy PSP outside the server, which outlives a killed server.
async fn external_dummy_psp() -> passerelle_sandbox::SandboxHandle {
    passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        specs: passerelle_sandbox::SpecSource::Off,
        ..passerelle_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap()
}

fn reference_of(body: &Value) -> String {
    body["reference"].as_str().unwrap().to_string()
}

/// Polls the payment until `done` holds.
async fn wait_for(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, p) = server.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(status, 200, "{p}");
        if done(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "never settled: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn events(server: &TestServer, id: &str) -> Vec<Value> {
    let (status, e) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert_eq!(status, 200, "{e}");
    e["data"].as_array().unwrap().clone()
}

/// A dummy PSP notification about a charge, as the PSP would send it.
fn charge_event(kind: &str, charge: &Value) -> Value {
    json!({
        "id": format!("evt_{}", rand_suffix()),
        "type": kind,
        "created": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
        "charge": charge,
        "refund": null,
    })
}

async fn psp_charge(server: &TestServer, charge_id: &str) -> Value {
    server
        .http
        .get(format!(
            "{}/_sandbox/charges/{charge_id}",
            server.dummy_psp_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// 1. A notification counts as seen only once what it says was applied.

async fn notification_is_seen_only_once_applied(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, p) = server
        .post(
            "/v1/payments",
            payment_body(5_000, "EUR", CARD_OK, "manual"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_capture");
    // The provider captured (in its back office, say) and notifies it.
    let mut charge = psp_charge(&server, p["connector_reference"].as_str().unwrap()).await;
    charge["status"] = json!("captured");
    charge["amount_captured"] = json!(5_000);
    let notification = charge_event("charge.captured", &charge);

    // The write fails (a lost race, a busy database): the provider must be
    // told to send it again, and the notification must not count as seen.
    server.fail_writes(
        "fail_payment_update",
        "payments",
        "UPDATE",
        &format!("NEW.id = '{id}'"),
    );
    let (status, answer) = server.dummy_notification(&notification).await;
    assert!(
        status >= 500,
        "a notification not applied is not acknowledged: {status} {answer}"
    );
    server.heal("fail_payment_update", "payments");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_capture", "{p}");

    // The provider's retry is applied, not dropped as a duplicate.
    let (status, answer) = server.dummy_notification(&notification).await;
    assert_eq!(status, 200, "{answer}");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 5_000, "{p}");
    // And a third delivery is a duplicate: nothing counted twice.
    let (status, _) = server.dummy_notification(&notification).await;
    assert_eq!(status, 200);
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_captured"], 5_000, "{p}");
}

/// Adyen's published example HMAC key, which the demo's Adyen account uses.
const ADYEN_HMAC_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

/// A signed Adyen CAPTURE item for a payment.
fn adyen_capture_item(server: &TestServer, payment: &Value, amount: u64) -> Value {
    let mut item = json!({
        "eventCode": "CAPTURE",
        "success": "true",
        "pspReference": format!("{:016}", rand::random::<u64>() % 10_000_000_000_000_000),
        "originalReference": payment["connector_reference"],
        "merchantAccountCode": server.demo["sandbox"]["adyen"]["merchant_account"],
        "merchantReference": payment["reference"],
        "amount": {"value": amount, "currency": "EUR"},
        "eventDate": "2026-12-07T10:00:00+01:00",
        "additionalData": {},
    });
    let sig = passerelle_sandbox::adyen::signature::sign_item(ADYEN_HMAC_KEY, &item).unwrap();
    item["additionalData"]["hmacSignature"] = json!(sig);
    json!({"NotificationRequestItem": item})
}

/// A batch whose first item cannot be written now: the others are still
/// applied, the batch is not acknowledged, and the provider's retry applies
/// the first without counting the others twice.
async fn a_notification_batch_loses_no_item(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut payments = Vec::new();
    for _ in 0..2 {
        let mut body = payment_body(4_000, "EUR", CARD_OK, "manual");
        body["connector"] = json!("adyen");
        let (status, p) = server.post("/v1/payments", body).await;
        assert_eq!(status, 201, "{p}");
        assert_eq!(p["status"], "requires_capture", "{p}");
        payments.push(p);
    }
    let batch = json!({"live": "false", "notificationItems": [
        adyen_capture_item(&server, &payments[0], 4_000),
        adyen_capture_item(&server, &payments[1], 4_000),
    ]});
    let account = server.demo["connectors"]["adyen"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let post = || async {
        let resp = server
            .http
            .post(server.url(&format!("/v1/webhooks/{account}")))
            .json(&batch)
            .send()
            .await
            .unwrap();
        resp.status().as_u16()
    };
    let first = payments[0]["id"].as_str().unwrap().to_string();
    let second = payments[1]["id"].as_str().unwrap().to_string();
    server.fail_writes(
        "fail_first",
        "payments",
        "UPDATE",
        &format!("NEW.id = '{first}'"),
    );
    assert!(
        post().await >= 500,
        "a batch not applied in full is not acknowledged"
    );
    let (_, p) = server.get(&format!("/v1/payments/{second}")).await;
    assert_eq!(
        p["amount_captured"], 4_000,
        "the items after a failing one still apply: {p}"
    );
    server.heal("fail_first", "payments");
    assert_eq!(post().await, 200);
    for id in [&first, &second] {
        let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(p["amount_captured"], 4_000, "{p}");
        assert_eq!(p["status"], "succeeded", "{p}");
    }
}

/// Notifications out of order: an older one (authorized) after a newer
/// one (captured) changes nothing; the same one twice counts once.
async fn notifications_out_of_order_never_move_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, p) = server
        .post(
            "/v1/payments",
            payment_body(3_300, "EUR", CARD_OK, "manual"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let authorized = psp_charge(&server, p["connector_reference"].as_str().unwrap()).await;
    let mut captured = authorized.clone();
    captured["status"] = json!("captured");
    captured["amount_captured"] = json!(3_300);
    let newer = charge_event("charge.captured", &captured);
    let older = charge_event("charge.authorized", &authorized);
    for notification in [&newer, &older, &newer, &older] {
        let (status, answer) = server.dummy_notification(notification).await;
        assert_eq!(status, 200, "{answer}");
    }
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 3_300, "{p}");
}

// ---------------------------------------------------------------------------
// 2. A retry after a failed write resumes the same payment or refund, under
//    the same provider key: never a second authorization or refund.

async fn create_retried_after_a_failed_write_charges_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = payment_body(4_200, "EUR", CARD_OK, "automatic");
    let reference = reference_of(&body);
    let key = format!("order-{}", rand_suffix());
    // The payment row is written before the provider is called; writing the
    // provider's answer fails.
    server.fail_writes(
        "fail_answer",
        "payments",
        "UPDATE",
        &format!("NEW.reference = '{reference}'"),
    );
    let (status, err) = server
        .post_with("/v1/payments", body.clone(), Some(&key))
        .await;
    assert!(status >= 500, "{status} {err}");
    assert_eq!(server.psp_charges(&reference).await.len(), 1);
    server.heal("fail_answer", "payments");

    let (status, p) = server
        .post_with("/v1/payments", body.clone(), Some(&key))
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "succeeded", "{p}");
    let charges = server.psp_charges(&reference).await;
    assert_eq!(
        charges.len(),
        1,
        "one authorization at the provider: {charges:?}"
    );
    assert_eq!(p["connector_reference"], charges[0]["id"]);
    // Replayed from now on.
    let (status, again) = server.post_with("/v1/payments", body, Some(&key)).await;
    assert_eq!(status, 201);
    assert_eq!(again["id"], p["id"]);
    assert_eq!(server.psp_charges(&reference).await.len(), 1);
}

async fn refund_retried_after_a_failed_write_refunds_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let body = payment_body(6_000, "EUR", CARD_OK, "automatic");
    let reference = reference_of(&body);
    let (status, p) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let key = format!("refund-{}", rand_suffix());
    // The refund is reserved (inserted) first; writing the provider's
    // answer (an update of the refund) fails.
    server.fail_writes("fail_refund_answer", "refunds", "UPDATE", "1 = 1");
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 2_500}),
            Some(&key),
        )
        .await;
    assert!(status >= 500, "{status} {err}");
    assert_eq!(
        server.psp_charges(&reference).await[0]["amount_refunded"],
        2_500
    );
    server.heal("fail_refund_answer", "refunds");

    let (status, r) = server
        .post_with(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 2_500}),
            Some(&key),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "succeeded", "{r}");
    let charges = server.psp_charges(&reference).await;
    assert_eq!(
        charges[0]["amount_refunded"], 2_500,
        "refunded once: {charges:?}"
    );
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_refunded"], 2_500, "{p}");
    let (_, list) = server.get(&format!("/v1/payments/{id}/refunds")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
}

// ---------------------------------------------------------------------------
// 3. A request whose server died mid-call is resumed once its claim's lease
//    runs out, and the provider sees it once.

async fn a_request_killed_mid_call_is_resumed_after_its_lease(backend: Backend) {
    let psp = external_dummy_psp().await;
    let mut server = TestServer::start_with_args(backend, &["--idempotency-lease-secs", "2"]).await;
    server.use_dummy_psp(&psp.dummy_base_url()).await;
    let body = payment_body(3_100, "EUR", CARD_OK, "manual");
    let reference = reference_of(&body);
    let key = format!("order-{}", rand_suffix());
    // The provider authorizes, then its answer hangs: the server is killed
    // while it waits.
    server.dummy_fault("timeout_after_effect", 1).await;
    let request = {
        let http = server.http.clone();
        let url = server.url("/v1/payments");
        let (secret, body, key) = (server.secret_key.clone(), body.clone(), key.clone());
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(secret)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.psp_charges(&reference).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the charge never reached the PSP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
    assert!(
        request.await.unwrap().is_err(),
        "the client saw the connection die"
    );
    server.restart().await;

    // The retry waits out the dead request's lease, then resumes it under
    // the same provider key: the provider answers its first charge.
    let started = Instant::now();
    let (status, p) = server
        .post_with("/v1/payments", body.clone(), Some(&key))
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let charges = server.psp_charges(&reference).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(p["connector_reference"], charges[0]["id"]);
    drop(psp);
}

// ---------------------------------------------------------------------------
// 4 and 5. Captures the provider accepted but has not confirmed (Adyen
//    answers every capture "received"): each has its own provider key, and
//    nothing can cancel the payment under them.

async fn adyen_fault(server: &TestServer, mode: &str, count: u32) {
    let adyen = &server.demo["sandbox"]["adyen"];
    let resp = server
        .http
        .post(format!(
            "{}/_sandbox/faults",
            adyen["base_url"].as_str().unwrap()
        ))
        .json(&json!({"account": adyen["merchant_account"], "mode": mode, "count": count}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "fault: {}", resp.status());
}

async fn pending_captures_have_their_own_keys_and_block_cancel(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.enable_adyen_multiple_partial_captures().await;
    let mut body = payment_body(10_000, "EUR", CARD_OK, "manual");
    body["connector"] = json!("adyen");
    let (status, p) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "requires_capture", "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    // No confirmation arrives while we work.
    adyen_fault(&server, "notification_drop", 5).await;
    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 3_000}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["amount_capture_pending"], 3_000, "{p}");
    // A second partial capture while the first is pending reaches Adyen as
    // a capture of its own (the same key would replay or refuse it).
    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 2_000}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["amount_capture_pending"], 5_000, "{p}");
    // Canceling now could end the payment canceled with money taken.
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "capture_pending", "{err}");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
}

// ---------------------------------------------------------------------------
// 8. No card data derivative is kept: the fingerprint leaves the CVC out
//    and is keyed; keys expire.

async fn idempotency_fingerprint_keeps_no_card_data(backend: Backend) {
    let server = TestServer::start(backend).await;
    let key = format!("order-{}", rand_suffix());
    let mut body = payment_body(1_234, "EUR", CARD_OK, "automatic");
    let (status, first) = server
        .post_with("/v1/payments", body.clone(), Some(&key))
        .await;
    assert_eq!(status, 201, "{first}");
    // The same request but for the CVC (the shopper typed it again) is the
    // same request: the CVC is not part of what is remembered.
    body["payment_method"]["card"]["cvc"] = json!("123");
    let (status, replay) = server
        .post_with("/v1/payments", body.clone(), Some(&key))
        .await;
    assert_eq!(status, 201, "{replay}");
    assert_eq!(replay["id"], first["id"]);
    // A plain digest of the request (what could be searched for the card
    // number with a known BIN and last four) is nowhere in the database.
    let dump = server.database_dump();
    for cvc in ["737", "123"] {
        body["payment_method"]["card"]["cvc"] = json!(cvc);
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update("POST");
        h.update([0]);
        h.update("/v1/payments");
        h.update([0]);
        h.update(body.to_string());
        let plain = hex::encode(h.finalize());
        assert!(!dump.contains(&plain), "an unkeyed fingerprint is stored");
    }
    assert!(!dump.contains(CARD_OK));
}

async fn idempotency_keys_expire(backend: Backend) {
    let server = TestServer::start_with_args(
        backend,
        &[
            "--idempotency-ttl-secs",
            "1",
            "--janitor-interval-ms",
            "200",
        ],
    )
    .await;
    let key = format!("expiring-{}", rand_suffix());
    let (status, first) = server
        .post_with(
            "/v1/payments",
            payment_body(1_000, "EUR", CARD_OK, "automatic"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    // Forgotten: the key is gone from the database, and may serve anew.
    assert_eq!(
        server.sql_count(&format!(
            "SELECT COUNT(*) AS n FROM idempotency_keys WHERE \"key\" = '{key}'"
        )),
        0
    );
    let (status, second) = server
        .post_with(
            "/v1/payments",
            payment_body(2_000, "EUR", CARD_OK, "automatic"),
            Some(&key),
        )
        .await;
    assert_eq!(status, 201, "{second}");
    assert_ne!(second["id"], first["id"]);
}

// ---------------------------------------------------------------------------
// 5. A capture the provider confirms after a cancellation is recorded and
//    can be refunded, never dropped.

async fn capture_confirmed_after_a_cancel_is_recorded(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, p) = server
        .post(
            "/v1/payments",
            payment_body(7_000, "EUR", CARD_OK, "manual"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let charge_id = p["connector_reference"].as_str().unwrap().to_string();
    let mut captured = psp_charge(&server, &charge_id).await;
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "canceled");
    // The provider says it captured after all.
    captured["status"] = json!("captured");
    captured["amount_captured"] = json!(7_000);
    let (status, _) = server
        .dummy_notification(&charge_event("charge.captured", &captured))
        .await;
    assert_eq!(status, 200);
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "canceled", "{p}");
    assert_eq!(p["amount_captured"], 7_000, "money taken is shown: {p}");
    assert_eq!(p["failure_code"], "captured_after_cancel", "{p}");
    assert!(events(&server, &id)
        .await
        .iter()
        .any(|e| e["detail"]["late_capture"] == true));
    // The merchant can give it back through the API (the dummy PSP itself
    // has nothing captured, so it refuses: what matters is that the host
    // lets the refund through to the provider).
    let (status, r) = server
        .post(&format!("/v1/payments/{id}/refunds"), json!({}))
        .await;
    assert!(status == 201 || status == 402, "{status} {r}");
}

// ---------------------------------------------------------------------------
// 6. The shopper's browser never ends a payment.

async fn shopper_return_never_cancels(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, p) = server
        .post(
            "/v1/payments",
            json!({
                "amount": 2_500, "currency": "EUR", "reference": format!("order-{}", rand_suffix()),
                "connector": "paypal", "payment_method": {"type": "paypal"},
                "return_url": "https://shop.example/checkout/done",
            }),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "requires_action", "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    // Anyone who saw the payment id in the shop's return URL.
    let resp = server
        .http
        .get(server.url(&format!("/v1/payments/{id}/return?paypal_cancel=1")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    assert!(events(&server, &id)
        .await
        .iter()
        .any(|e| e["cause"] == "shopper.return" && e["detail"]["shopper_canceled"] == true));
}

// ---------------------------------------------------------------------------
// 12. Control characters are refused up front, naming the field.

async fn control_characters_are_refused_naming_the_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut body = payment_body(1_000, "EUR", CARD_OK, "manual");
    body["reference"] = json!("order\u{0}1");
    let (status, err) = server.post("/v1/payments", body).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "reference");
    let mut body = payment_body(1_000, "EUR", CARD_OK, "manual");
    body["metadata"] = json!({"cart": "c\u{0}9"});
    let (status, err) = server.post("/v1/payments", body).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "metadata.cart");
    let (status, p) = server
        .post(
            "/v1/payments",
            payment_body(1_000, "EUR", CARD_OK, "automatic"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let (status, err) = server
        .post(
            &format!("/v1/payments/{}/refunds", p["id"].as_str().unwrap()),
            json!({"reason": "bad\u{0}reason"}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "reason");
    let (_, refunds) = server
        .get(&format!(
            "/v1/payments/{}/refunds",
            p["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 0);
}

// ---------------------------------------------------------------------------
// The janitor: a lost authorization settles by itself; one the provider
// never made is given up after the window.

async fn janitor_settles_a_lost_authorization(backend: Backend) {
    let server = TestServer::start_with_args(
        backend,
        &[
            "--plugin-timeout-secs",
            "2",
            "--janitor-grace-secs",
            "1",
            "--janitor-interval-ms",
            "200",
        ],
    )
    .await;
    let body = payment_body(8_800, "EUR", CARD_OK, "manual");
    let reference = reference_of(&body);
    // The provider authorizes; its answer never comes back in time.
    server.dummy_fault("timeout_after_effect", 1).await;
    let (status, p) = server.post("/v1/payments", body).await;
    assert!(status == 201 || status >= 500, "{status} {p}");
    let charges = server.psp_charges(&reference).await;
    assert_eq!(charges.len(), 1);
    // Find it: it is waiting in `processing`, listed for the operator.
    let (status, backlog) = server.admin_get("/v1/admin/reconciliation").await;
    assert_eq!(status, 200, "{backlog}");
    let item = backlog["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["object"] == "payment")
        .cloned()
        .unwrap_or_else(|| panic!("nothing listed: {backlog}"));
    let id = item["payment_id"].as_str().unwrap().to_string();
    assert_eq!(item["waiting_for"], "authorization_outcome_unknown");
    let p = wait_for(&server, &id, |p| p["status"] == "requires_capture").await;
    assert_eq!(p["connector_reference"], charges[0]["id"], "{p}");
    assert!(events(&server, &id)
        .await
        .iter()
        .any(|e| e["cause"] == "janitor"));
    let (_, backlog) = server.admin_get("/v1/admin/reconciliation").await;
    assert!(
        !backlog.to_string().contains(&id),
        "settled payments leave the backlog: {backlog}"
    );
}

async fn janitor_gives_up_after_the_window(backend: Backend) {
    let server = TestServer::start_with_args(
        backend,
        &[
            "--plugin-timeout-secs",
            "2",
            "--janitor-grace-secs",
            "0",
            "--janitor-interval-ms",
            "200",
            "--janitor-window",
            "dummy=4",
        ],
    )
    .await;
    // The provider never sees the charge (its endpoint hangs, no effect).
    server.dummy_fault("timeout", 1).await;
    let body = payment_body(1_500, "EUR", CARD_OK, "manual");
    let reference = reference_of(&body);
    let (status, p) = server.post("/v1/payments", body).await;
    assert!(status == 201 || status >= 500, "{status} {p}");
    assert!(server.psp_charges(&reference).await.is_empty());
    let (_, backlog) = server.admin_get("/v1/admin/reconciliation").await;
    let id = backlog["data"][0]["payment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = wait_for(&server, &id, |p| p["status"] == "failed").await;
    assert_eq!(p["failure_code"], "outcome_unknown_expired", "{p}");
    let janitor_events = events(&server, &id)
        .await
        .into_iter()
        .filter(|e| e["cause"] == "janitor")
        .count();
    assert!(janitor_events >= 2, "each attempt is recorded");
}

both_backends!(
    notification_is_seen_only_once_applied,
    a_notification_batch_loses_no_item,
    notifications_out_of_order_never_move_back,
    create_retried_after_a_failed_write_charges_once,
    refund_retried_after_a_failed_write_refunds_once,
    a_request_killed_mid_call_is_resumed_after_its_lease,
    idempotency_fingerprint_keeps_no_card_data,
    idempotency_keys_expire,
    capture_confirmed_after_a_cancel_is_recorded,
    shopper_return_never_cancels,
    pending_captures_have_their_own_keys_and_block_cancel,
    control_characters_are_refused_naming_the_field,
    janitor_settles_a_lost_authorization,
    janitor_gives_up_after_the_window,
);

/// `count` POSTs of `body` to `path` at once, spread over `nodes`; their
/// statuses.
async fn at_once(nodes: &[&TestServer], path: &str, body: Value, count: usize) -> Vec<u16> {
    let tasks: Vec<_> = (0..count)
        .map(|i| {
            let node = nodes[i % nodes.len()];
            let request = node
                .http
                .post(node.url(path))
                .bearer_auth(&node.secret_key)
                .json(&body);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

// ---------------------------------------------------------------------------
// 7. Two nodes on one PostgreSQL database: operations on one payment are
//    serialised by the database, so the provider's ledger and ours agree.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_serialise_operations_on_one_payment() {
    // The PSP's notifications are not accepted here (another webhook
    // secret): they would tell the host the PSP's totals and hide a capture
    // or refund the host lost.
    let psp = passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        specs: passerelle_sandbox::SpecSource::Off,
        dummy: passerelle_sandbox::DummyConfig {
            webhook_secret: "whsec_not_this_accounts".into(),
            ..passerelle_sandbox::DummyConfig::default()
        },
        ..passerelle_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let master_key = "ab".repeat(32);
    let node_a =
        TestServer::start_with_args(Backend::Postgres, &["--master-key", &master_key]).await;
    let mut node_b = node_a.start_second_node().await;
    // Both nodes' demo set-ups point the account at their own sandbox:
    // point it at one PSP outside both.
    node_b.use_dummy_psp(&psp.dummy_base_url()).await;
    let body = payment_body(20_000, "EUR", CARD_OK, "manual");
    let reference = reference_of(&body);
    let (status, p) = node_a.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let charge = p["connector_reference"].as_str().unwrap().to_string();
    let ledger = |psp_url: String| {
        let http = node_a.http.clone();
        let charge = charge.clone();
        async move {
            http.get(format!("{psp_url}/_sandbox/charges/{charge}"))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };

    // 25 partial captures of 400 at once, over both nodes.
    for status in at_once(
        &[&node_a, &node_b],
        &format!("/v1/payments/{id}/capture"),
        json!({"amount": 400}),
        25,
    )
    .await
    {
        assert_eq!(status, 200, "each capture waits its turn, none is refused");
    }
    let (_, p) = node_a.get(&format!("/v1/payments/{id}")).await;
    let at_psp = ledger(psp.dummy_base_url()).await;
    assert_eq!(
        p["amount_captured"], at_psp["amount_captured"],
        "{p} / {at_psp}"
    );
    assert_eq!(p["amount_captured"], 10_000, "{p}");

    // Then 25 partial refunds of 300, over both nodes.
    for status in at_once(
        &[&node_a, &node_b],
        &format!("/v1/payments/{id}/refunds"),
        json!({"amount": 300}),
        25,
    )
    .await
    {
        assert_eq!(status, 201, "each refund waits its turn, none is refused");
    }
    let (_, p) = node_a.get(&format!("/v1/payments/{id}")).await;
    let at_psp = ledger(psp.dummy_base_url()).await;
    assert_eq!(
        p["amount_captured"], at_psp["amount_captured"],
        "{p} / {at_psp}"
    );
    assert_eq!(
        p["amount_refunded"], at_psp["amount_refunded"],
        "{p} / {at_psp}"
    );
    assert!(p["amount_refunded"].as_i64().unwrap() <= p["amount_captured"].as_i64().unwrap());
    assert_eq!(node_b.psp_charges(&reference).await.len(), 1);
    drop(node_b);
}
