//! PayPal end to end: the host's HTTP API, the bundled PayPal plugin and the
//! sandbox's PayPal simulator (approval page, webhooks, faults), on SQLite.

mod common;
use common::*;

use serde_json::{json, Value};
use std::time::Duration;

fn paypal_body(amount: u64, currency: &str, capture_method: &str) -> Value {
    json!({
        "amount": amount,
        "currency": currency,
        "reference": format!("order-{}", rand_suffix()),
        "capture_method": capture_method,
        "payment_method": {"type": "paypal"},
        "return_url": "https://shop.example/checkout/done?cart=42",
        "connector": "paypal",
    })
}

fn sandbox_base(server: &TestServer) -> String {
    server.demo["sandbox"]["paypal"]["base_url"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, p) = server.post("/v1/payments", body).await;
    assert!(status == 200 || status == 201, "{status}: {p}");
    p
}

async fn payment(server: &TestServer, id: &str) -> Value {
    server.get(&format!("/v1/payments/{id}")).await.1
}

/// Makes the PayPal simulator misbehave on the account's next `count` API calls.
async fn fault(server: &TestServer, mode: &str, count: u32) {
    let account = server.demo["sandbox"]["paypal"]["client_id"].clone();
    let resp = server
        .http
        .post(format!("{}/_sandbox/faults", sandbox_base(server)))
        .json(&json!({"account": account, "mode": mode, "count": count}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "fault injection failed");
}

/// Acts on the approval page like the buyer's browser: form `index` (0 pays,
/// 1 cancels, 2 pays by eCheck). Returns where PayPal sends the buyer back.
async fn act_on_approval_page(server: &TestServer, url: &str, index: usize) -> String {
    let page = server.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let forms: Vec<&str> = html.split("<form").skip(1).collect();
    assert!(
        forms.len() > index,
        "the approval page has its forms: {html}"
    );
    let action = forms[index]
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let action = url::Url::parse(url).unwrap().join(&action).unwrap();
    let resp = server
        .http
        .post(action)
        .form(&Vec::<(String, String)>::new())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    resp.headers()["location"].to_str().unwrap().to_string()
}

/// The buyer's browser follows PayPal's redirect to the host, which sends it
/// on to the shop (303).
async fn back_to_shop(server: &TestServer, id: &str, back: &str) {
    assert!(
        back.starts_with(&server.url(&format!("/v1/payments/{id}/return"))),
        "{back}"
    );
    let resp = server.http.get(back).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to_shop = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(to_shop.host_str(), Some("shop.example"));
    let query: Vec<(String, String)> = to_shop.query_pairs().into_owned().collect();
    assert!(query.contains(&("payment_id".into(), id.to_string())));
}

/// Creates a PayPal payment and approves it (form `index`) up to the shop.
async fn approved(server: &TestServer, amount: u64, capture: &str, index: usize) -> String {
    let p = create(server, paypal_body(amount, "EUR", capture)).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    assert_eq!(p["next_action"]["method"], "GET");
    let id = p["id"].as_str().unwrap().to_string();
    let back = act_on_approval_page(server, p["next_action"]["url"].as_str().unwrap(), index).await;
    back_to_shop(server, &id, &back).await;
    id
}

async fn wait_for_status(server: &TestServer, id: &str, from: &str) -> Value {
    for _ in 0..200 {
        let p = payment(server, id).await;
        if p["status"] != from {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    payment(server, id).await
}

async fn refund(server: &TestServer, id: &str, amount: u64) -> (u16, Value) {
    server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": amount}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_payment_captured_then_refunded_up_to_the_total() {
    let server = TestServer::start(Backend::Sqlite).await;
    let id = approved(&server, 1_050, "automatic", 0).await;
    let p = payment(&server, &id).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 1_050);
    assert_eq!(p["provider_status"], "COMPLETED");
    assert!(
        p["connector_reference"].as_str().unwrap().len() == 17,
        "{p}"
    );

    for amount in [300, 300, 450] {
        let (status, r) = refund(&server, &id, amount).await;
        assert!(status == 200 || status == 201, "{status}: {r}");
        assert_eq!(r["status"], "succeeded", "{r}");
    }
    let (status, err) = refund(&server, &id, 1).await;
    assert!((400..500).contains(&status), "{status}: {err}");
    let p = payment(&server, &id).await;
    assert_eq!(p["amount_refunded"], 1_050);
    let (_, list) = server.get(&format!("/v1/payments/{id}/refunds")).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 3, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_capture_partial_then_rest_and_cancel() {
    let server = TestServer::start(Backend::Sqlite).await;
    let id = approved(&server, 1_000, "manual", 0).await;
    let p = payment(&server, &id).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["amount_capturable"], 1_000);

    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 400}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "partially_captured");
    assert_eq!(p["amount_captured"], 400);
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount_captured"], 1_000);
    // Refunds draw on the capture that can hold them.
    for amount in [600, 400] {
        let (status, r) = refund(&server, &id, amount).await;
        assert!(status == 200 || status == 201, "{status}: {r}");
        assert_eq!(r["status"], "succeeded", "{r}");
    }

    let id = approved(&server, 900, "manual", 0).await;
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "canceled");
    let (status, _) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shopper_cancel_and_unsupported_requests() {
    let server = TestServer::start(Backend::Sqlite).await;
    // The buyer cancels on PayPal's page: the return says so, which is the
    // browser's word only; the order still waits at PayPal, and so does
    // the payment (PayPal lets the buyer come back to it).
    let id = approved(&server, 500, "automatic", 1).await;
    let p = payment(&server, &id).await;
    assert_eq!(p["status"], "requires_action", "{p}");

    // Refused before any PayPal call: a 3-decimal currency, a card.
    let (status, err) = server
        .post("/v1/payments", paypal_body(1_000, "KWD", "automatic"))
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "currency", "{err}");
    let mut card = payment_body(1_000, "EUR", CARD_OK, "automatic");
    card["connector"] = json!("paypal");
    let (status, err) = server.post("/v1/payments", card).await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echeck_settled_by_notifications() {
    let server = TestServer::start(Backend::Sqlite).await;
    let base = sandbox_base(&server);
    let sandbox_capture = |order: Value| {
        order["purchase_units"][0]["payments"]["captures"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (settle, expected) in [("complete", "succeeded"), ("deny", "failed")] {
        let id = approved(&server, 2_000, "automatic", 2).await;
        let p = payment(&server, &id).await;
        assert_eq!(p["status"], "processing", "{p}");
        assert_eq!(p["provider_status"], "PENDING");
        let reference = p["connector_reference"].as_str().unwrap();
        let order: Value = server
            .http
            .get(format!("{base}/_sandbox/orders/{reference}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let capture = sandbox_capture(order);
        let resp = server
            .http
            .post(format!("{base}/_sandbox/captures/{capture}/{settle}"))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success());
        let p = wait_for_status(&server, &id, "processing").await;
        assert_eq!(p["status"], expected, "{p}");
        let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
        assert!(
            events["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["cause"] == "notification"),
            "{events}"
        );
    }

    // A forged notification is refused.
    let account = server.demo["connectors"]["paypal"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = server
        .http
        .post(server.url(&format!("/v1/webhooks/{account}")))
        .header(
            "PAYPAL-TRANSMISSION-ID",
            "071f7d20-1584-11e7-abf0-6b62a8a99ac4",
        )
        .header("PAYPAL-TRANSMISSION-TIME", "2030-01-01T00:00:00Z")
        .header("PAYPAL-TRANSMISSION-SIG", "AAAA")
        .header(
            "PAYPAL-CERT-URL",
            format!("{base}/certs/CERT-passerelle-sandbox-paypal"),
        )
        .header("PAYPAL-AUTH-ALGO", "SHA256withRSA")
        .json(
            &json!({"id": "WH-FORGED", "event_type": "PAYMENT.CAPTURE.COMPLETED", "resource": {}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psp_faults_leave_a_defined_state_that_sync_resolves() {
    let server = TestServer::start(Backend::Sqlite).await;
    // Warm the OAuth token, so the faults hit the API calls below.
    let _ = create(&server, paypal_body(100, "EUR", "automatic")).await;

    // A 5xx on order creation: unknown outcome, the payment is `processing`.
    fault(&server, "http_500", 1).await;
    let p = create(&server, paypal_body(1_000, "EUR", "automatic")).await;
    assert_eq!(p["status"], "processing", "{p}");
    // Garbage: the same.
    fault(&server, "malformed", 1).await;
    let p = create(&server, paypal_body(1_000, "EUR", "automatic")).await;
    assert_eq!(p["status"], "processing", "{p}");

    // PayPal fails when the buyer returns: the payment waits; a sync captures.
    let p = create(&server, paypal_body(1_500, "EUR", "automatic")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = act_on_approval_page(&server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    fault(&server, "http_500", 1).await;
    back_to_shop(&server, &id, &back).await;
    let p = payment(&server, &id).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 1_500);

    // PayPal does not answer a capture in time: 502, nothing counted; the
    // retry with the same key captures, once.
    let id = approved(&server, 2_000, "manual", 0).await;
    fault(&server, "timeout", 1).await;
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 500}),
            Some("cap-lost"),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    let p = payment(&server, &id).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    let (status, p) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 500}),
            Some("cap-lost"),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["amount_captured"], 500, "{p}");
    let reference = p["connector_reference"].as_str().unwrap().to_string();
    let order: Value = server
        .http
        .get(format!(
            "{}/_sandbox/orders/{reference}",
            sandbox_base(&server)
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let captures = order["purchase_units"][0]["payments"]["captures"]
        .as_array()
        .unwrap();
    assert_eq!(captures.len(), 1, "PayPal captured once: {order}");
}

/// PayPal's "Handle funding failures": the buyer's card is declined when
/// Passerelle captures (or authorizes) the approved order; the buyer goes
/// back to PayPal for the same order, picks another funding source, and the
/// payment goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_funding_source_sends_the_buyer_back_to_paypal() {
    let server = TestServer::start(Backend::Sqlite).await;
    for (capture_method, settled) in [("automatic", "succeeded"), ("manual", "requires_capture")] {
        let p = create(&server, paypal_body(1_250, "EUR", capture_method)).await;
        let id = p["id"].as_str().unwrap().to_string();
        let approval = p["next_action"]["url"].as_str().unwrap().to_string();
        // Form 3: a card its issuer declines.
        let back = act_on_approval_page(&server, &approval, 3).await;
        back_to_shop(&server, &id, &back).await;
        let p = payment(&server, &id).await;
        assert_eq!(p["status"], "requires_action", "{p}");
        assert_eq!(p["provider_status"], "INSTRUMENT_DECLINED", "{p}");
        assert_eq!(
            p["next_action"]["url"],
            approval.as_str(),
            "the same order: {p}"
        );
        // The buyer pays with their PayPal balance this time.
        let back = act_on_approval_page(&server, &approval, 0).await;
        back_to_shop(&server, &id, &back).await;
        let p = payment(&server, &id).await;
        assert_eq!(p["status"], settled, "{p}");
        if capture_method == "automatic" {
            assert_eq!(p["amount_captured"], 1_250);
        } else {
            assert_eq!(p["amount_capturable"], 1_250);
        }
    }
}

/// Every request the connector sends is checked by the simulator against
/// PayPal's official documents (media type, documented headers, the body's
/// schema): none reaches an operation they do not describe, and the
/// simulator's record shows each one was checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_checked_against_the_official_documents() {
    let server = TestServer::start(Backend::Sqlite).await;
    // Capture at once, refund twice; authorize, capture in two parts;
    // authorize and void; a sync.
    let id = approved(&server, 1_000, "automatic", 0).await;
    for amount in [300, 700] {
        let (status, r) = refund(&server, &id, amount).await;
        assert!(status == 200 || status == 201, "{status}: {r}");
    }
    let id = approved(&server, 1_000, "manual", 0).await;
    for body in [json!({"amount": 400}), json!({})] {
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/capture"), body)
            .await;
        assert_eq!(status, 200, "{p}");
    }
    let (status, _) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200);
    let id = approved(&server, 900, "manual", 0).await;
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "canceled");

    let listed: Value = server
        .http
        .get(format!("{}/_sandbox/validation", sandbox_base(&server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Skipped, saying so, without the documents (a failure when CI=true).
    if passerelle_sandbox::test_specs::specs_for("paypal/checkout_orders_v2.json").is_none() {
        return;
    }
    assert_eq!(
        listed["documents"], true,
        "the simulator did not load them: {listed}"
    );
    assert_eq!(listed["violations"], json!([]), "refused: {listed}");
    let requests = listed["requests"].as_array().unwrap();
    let mut operations = std::collections::BTreeSet::new();
    for r in requests {
        if r["path"] == "/v1/oauth2/token" {
            continue;
        }
        assert_eq!(r["checked"], true, "not checked against the documents: {r}");
        operations.insert(r["operation"].as_str().unwrap().to_string());
    }
    for expected in [
        "orders.create",
        "orders.get",
        "orders.capture",
        "orders.authorize",
        "authorizations.capture",
        "authorizations.void",
        "captures.refund",
    ] {
        assert!(
            operations.contains(expected),
            "{expected} not exercised: {operations:?}"
        );
    }
}
