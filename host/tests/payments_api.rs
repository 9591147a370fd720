//! The storefront API end to end: the real server, the bundled dummy
//! connector (a WebAssembly component) and the dummy PSP over loopback,
//! on SQLite and on PostgreSQL.

mod common;

use common::*;
use serde_json::{json, Value};

both_backends!(
    health_reports_database_and_plugins,
    automatic_capture_succeeds,
    manual_capture_partial_then_rest,
    refusal_fails_with_psp_code_and_reason,
    three_d_secure_approved_returns_to_merchant,
    three_d_secure_failed_fails_payment,
    cancel_releases_authorization,
    partial_refunds_up_to_total,
    illegal_transitions_get_409,
    idempotent_create_calls_psp_once,
    idempotency_key_with_other_body_is_422,
    bad_input_gets_4xx_naming_field,
    authentication_is_required,
    card_number_never_stored_or_logged,
    events_record_every_transition,
    psp_errors_leave_defined_state,
    notification_settles_payment_and_forgery_is_rejected,
    lost_capture_confirmed_by_notification_counts_once,
);

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, payment) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{payment}");
    payment
}

async fn health_reports_database_and_plugins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let resp: Value = server
        .http
        .get(server.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["status"], "ok");
    assert_eq!(resp["database"], "ok");
    assert!(resp["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "dummy"));
}

async fn automatic_capture_succeeds(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(1050, "EUR", CARD_OK, "automatic")).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount"], 1050);
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["amount_captured"], 1050);
    assert_eq!(p["amount_capturable"], 0);
    assert_eq!(p["amount_refunded"], 0);
    assert_eq!(p["connector"], "dummy");
    assert!(p["connector_reference"]
        .as_str()
        .unwrap()
        .starts_with("ch_"));
    assert!(p["next_action"].is_null());
    assert_eq!(p["payment_method"]["card"]["last4"], "1111");
    let (status, fetched) = server
        .get(&format!("/v1/payments/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(fetched["status"], "succeeded");
    assert_eq!(fetched["id"], p["id"]);
}

async fn manual_capture_partial_then_rest(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(10_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["amount_capturable"], 10_000);
    assert_eq!(p["amount_captured"], 0);

    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 3_000}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "partially_captured");
    assert_eq!(p["amount_captured"], 3_000);
    assert_eq!(p["amount_capturable"], 7_000);

    let (status, err) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 7_001}),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "amount");

    let (status, p) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount_captured"], 10_000);
    assert_eq!(p["amount_capturable"], 0);

    // The PSP agrees on what was captured.
    let charge: Value = server
        .http
        .get(format!(
            "{}/_sandbox/charges/{}",
            server.dummy_psp_url(),
            p["connector_reference"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(charge["amount_captured"], 10_000, "{charge}");
}

async fn refusal_fails_with_psp_code_and_reason(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(
        &server,
        payment_body(2_500, "EUR", CARD_REFUSED, "automatic"),
    )
    .await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "card_declined");
    assert_eq!(p["failure_message"], "Insufficient funds");
    assert_eq!(p["amount_captured"], 0);
}

/// Follows the 3-D Secure page's form number `index` (0 approves, 1 fails)
/// and returns where the PSP sends the shopper back.
async fn act_on_3ds_page(server: &TestServer, url: &str, index: usize) -> String {
    let page = server.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let forms: Vec<&str> = html.split("<form").skip(1).collect();
    assert!(
        forms.len() >= 2,
        "the 3-D Secure page has two forms: {html}"
    );
    let form = forms[index];
    let action = form
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let action = if action.starts_with("http") {
        action
    } else {
        let base = url::Url::parse(url).unwrap();
        base.join(&action).unwrap().to_string()
    };
    let resp = server
        .http
        .post(&action)
        .form(&Vec::<(String, String)>::new())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.headers()["location"].to_str().unwrap().to_string()
}

async fn three_d_secure_approved_returns_to_merchant(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(4_200, "EUR", CARD_3DS, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_action", "{p}");
    let action = &p["next_action"];
    assert_eq!(action["type"], "redirect");
    assert_eq!(action["method"], "GET");
    let url = action["url"].as_str().unwrap();

    let back_to_passerelle = act_on_3ds_page(&server, url, 0).await;
    assert!(
        back_to_passerelle.starts_with(&server.url(&format!("/v1/payments/{id}/return"))),
        "{back_to_passerelle}"
    );
    let resp = server.http.get(&back_to_passerelle).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to_merchant = resp.headers()["location"].to_str().unwrap().to_string();
    let to_merchant = url::Url::parse(&to_merchant).unwrap();
    assert_eq!(to_merchant.host_str(), Some("shop.example"));
    assert_eq!(to_merchant.path(), "/checkout/done");
    let query: Vec<(String, String)> = to_merchant.query_pairs().into_owned().collect();
    assert!(query.contains(&("cart".into(), "42".into())));
    assert!(query.contains(&("payment_id".into(), id.clone())));

    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert!(p["next_action"].is_null());
    assert_eq!(p["amount_capturable"], 4_200);
    // The connector reports how authentication went.
    assert_eq!(p["three_ds"]["status"], "authenticated", "{p}");
    assert_eq!(p["three_ds"]["liability_shift"], true, "{p}");
}

async fn three_d_secure_failed_fails_payment(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(4_200, "EUR", CARD_3DS, "automatic")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 1).await;
    let resp = server.http.get(&back).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "authentication_failed");
}

async fn cancel_releases_authorization(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(900, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "canceled");
    assert_eq!(p["amount_capturable"], 0);
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "payment_not_capturable");
}

async fn partial_refunds_up_to_total(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(5_000, "EUR", CARD_OK, "automatic")).await;
    let id = p["id"].as_str().unwrap();
    let (status, r1) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 2_000, "reason": "one item returned"}),
        )
        .await;
    assert_eq!(status, 201, "{r1}");
    assert_eq!(r1["status"], "succeeded");
    assert_eq!(r1["amount"], 2_000);
    assert!(r1["connector_reference"]
        .as_str()
        .unwrap()
        .starts_with("re_"));
    let (status, r2) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 3_000}),
        )
        .await;
    assert_eq!(status, 201, "{r2}");
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/refunds"), json!({"amount": 1}))
        .await;
    assert_eq!(status, 400, "refunding over the captured total: {err}");
    assert_eq!(err["error"]["param"], "amount");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_refunded"], 5_000);
    assert_eq!(p["status"], "succeeded");
    let (status, list) = server.get(&format!("/v1/payments/{id}/refunds")).await;
    assert_eq!(status, 200);
    let amounts: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts.iter().sum::<i64>(), 5_000);
    assert_eq!(amounts.len(), 2);
}

async fn illegal_transitions_get_409(backend: Backend) {
    let server = TestServer::start(backend).await;
    // Refund before capture.
    let p = create(&server, payment_body(700, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/refunds"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "payment_not_refundable");
    // Cancel after capture.
    let p = create(&server, payment_body(700, "EUR", CARD_OK, "automatic")).await;
    let id = p["id"].as_str().unwrap();
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    // Capture of a failed payment.
    let p = create(&server, payment_body(700, "EUR", CARD_REFUSED, "manual")).await;
    let id = p["id"].as_str().unwrap();
    let (status, _) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 409);
}

async fn idempotent_create_calls_psp_once(backend: Backend) {
    let server = std::sync::Arc::new(TestServer::start(backend).await);
    let body = payment_body(1_234, "EUR", CARD_OK, "manual");
    let calls_before = server.plugin_calls("dummy").await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let server = server.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            server
                .post_with("/v1/payments", body, Some("checkout-42"))
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let (status, p) = t.await.unwrap();
        assert_eq!(status, 201, "{p}");
        ids.insert(p["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "all duplicates got the same payment");
    assert_eq!(
        server.plugin_calls("dummy").await - calls_before,
        2,
        "one authorization (and the account's capabilities, asked once)"
    );

    // A later capture with its own key is also applied once.
    let id = ids.into_iter().next().unwrap();
    let (s1, p1) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 1_000}),
            Some("cap-1"),
        )
        .await;
    let (s2, p2) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 1_000}),
            Some("cap-1"),
        )
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(p1, p2);
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_captured"], 1_000);
}

async fn idempotency_key_with_other_body_is_422(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, _) = server
        .post_with(
            "/v1/payments",
            payment_body(100, "EUR", CARD_OK, "manual"),
            Some("k-1"),
        )
        .await;
    assert_eq!(status, 201);
    let (status, err) = server
        .post_with(
            "/v1/payments",
            payment_body(200, "EUR", CARD_OK, "manual"),
            Some("k-1"),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["type"], "idempotency_error");
}

async fn bad_input_gets_4xx_naming_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let calls_before = server.plugin_calls("dummy").await;
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b.as_object_mut().unwrap().remove("amount");
                b
            },
            "amount",
        ),
        (payment_body(0, "EUR", CARD_OK, "manual"), "amount"),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["amount"] = json!(-5);
                b
            },
            "amount",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["amount"] = json!(10.5);
                b
            },
            "amount",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["amount"] = json!("100");
                b
            },
            "amount",
        ),
        (payment_body(100, "EUX", CARD_OK, "manual"), "currency"),
        (
            payment_body(100, "EUR", "4111111111111112", "manual"),
            "payment_method.card.number",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["payment_method"]["card"]["exp_month"] = json!(13);
                b
            },
            "payment_method.card.exp_month",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["payment_method"]["card"]
                    .as_object_mut()
                    .unwrap()
                    .remove("number");
                b
            },
            "payment_method.card.number",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["capture_method"] = json!("later");
                b
            },
            "capture_method",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["return_url"] = json!("not a url");
                b
            },
            "return_url",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["reference"] = json!("");
                b
            },
            "reference",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["connector"] = json!("nope");
                b
            },
            "connector",
        ),
        (
            {
                let mut b = payment_body(100, "EUR", CARD_OK, "manual");
                b["surprise"] = json!(1);
                b
            },
            "surprise",
        ),
    ];
    for (body, param) in cases {
        let (status, err) = server.post("/v1/payments", body.clone()).await;
        assert_eq!(status, 400, "{param}: {err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert_eq!(err["error"]["type"], "invalid_request_error");
        assert!(!err["error"]["message"].as_str().unwrap().is_empty());
        assert!(
            !err.to_string().contains(CARD_OK),
            "errors never echo card numbers"
        );
    }
    let (status, err) = server
        .post_raw("/v1/payments", b"{\"amount\": 10".to_vec())
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["code"], "json_invalid");
    let (status, err) = server.post_raw("/v1/payments", vec![b' '; 70 * 1024]).await;
    assert_eq!(status, 413, "{err}");
    let (status, err) = server.get("/v1/payments/pay_doesnotexist").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "resource_missing");
    let (status, _) = server
        .post("/v1/payments/pay_doesnotexist/capture", json!({}))
        .await;
    assert_eq!(status, 404);
    let p = create(&server, payment_body(100, "EUR", CARD_OK, "manual")).await;
    let (status, err) = server
        .post(
            &format!("/v1/payments/{}/capture", p["id"].as_str().unwrap()),
            json!({"amount": 0}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "amount");
    // Only the one valid payment reached the connector (its authorization,
    // and the account's capabilities, asked once for a manual payment).
    assert_eq!(server.plugin_calls("dummy").await - calls_before, 2);
}

async fn authentication_is_required(backend: Backend) {
    let server = TestServer::start(backend).await;
    let no_key = server
        .http
        .post(server.url("/v1/payments"))
        .json(&payment_body(100, "EUR", CARD_OK, "manual"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    let body: Value = no_key.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let bad_key = server
        .http
        .get(server.url("/v1/payments/pay_x"))
        .bearer_auth("sk_test_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_key.status(), 401);
    // The admin key is not a storefront key, and the reverse.
    let admin = server
        .http
        .get(server.url("/v1/payments/pay_x"))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401);
    let secret = server
        .http
        .get(server.url("/v1/admin/plugins"))
        .bearer_auth(&server.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), 401);
    // Keys are stored hashed.
    let mut server = server;
    server.stop();
    let dump = server.database_dump();
    assert!(!dump.contains(&server.secret_key));
    assert!(!dump.contains(&server.admin_key));
}

async fn card_number_never_stored_or_logged(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let p = create(&server, payment_body(1_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    let p = create(&server, payment_body(1_000, "EUR", CARD_3DS, "automatic")).await;
    act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    create(
        &server,
        payment_body(1_000, "EUR", CARD_REFUSED, "automatic"),
    )
    .await;
    server.stop();
    let logs = server.logs();
    assert!(
        logs.contains(id),
        "the log is captured (it names the payment)"
    );
    let dump = server.database_dump();
    assert!(dump.contains(id), "the dump holds the payment");
    // Matched as a JSON member: the bare letters can occur by chance in
    // base64 ciphertext or random ids.
    assert!(!dump.contains("\"cvc\""), "no CVC anywhere in the database");
    for pan in [CARD_OK, CARD_3DS, CARD_REFUSED] {
        assert!(!logs.contains(pan), "card number in the logs");
        assert!(!dump.contains(pan), "card number in the database");
    }
}

async fn events_record_every_transition(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(3_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 1_000}),
        )
        .await;
    server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 500}),
        )
        .await;
    let (status, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert_eq!(status, 200);
    let events = events["data"].as_array().unwrap();
    // Each capture is first reserved (its own event, before the PSP is
    // called), then settled.
    assert_eq!(
        events
            .iter()
            .filter(|e| e["detail"]["in_flight"] == true)
            .count(),
        2
    );
    // Notifications from the PSP interleave; they never move the status here.
    let transitions: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["cause"] != "notification" && e["detail"]["in_flight"] != true)
        .map(|e| {
            (
                e["to_status"].as_str().unwrap().to_string(),
                e["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(transitions[0], ("processing".into(), "api.create".into()));
    assert_eq!(
        transitions[1],
        ("requires_capture".into(), "api.create".into())
    );
    assert_eq!(
        transitions[2],
        ("partially_captured".into(), "api.capture".into())
    );
    assert_eq!(transitions[3], ("succeeded".into(), "api.capture".into()));
    assert!(transitions[4..]
        .iter()
        .any(|(_, cause)| cause == "api.refund"));
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert!(events
        .iter()
        .all(|e| e["created_at"].as_str().unwrap().ends_with('Z')));
}

async fn psp_errors_leave_defined_state(backend: Backend) {
    let server = TestServer::start(backend).await;
    // A 5xx on authorization: the outcome is unknown, the payment waits in `processing`.
    server.dummy_fault("http_500", 1).await;
    let p = create(&server, payment_body(1_000, "EUR", CARD_OK, "manual")).await;
    assert_eq!(p["status"], "processing", "{p}");
    assert!(p["failure_code"].as_str().unwrap().contains("500"), "{p}");
    // Garbage from the PSP: same.
    server.dummy_fault("garbage", 1).await;
    let p = create(&server, payment_body(1_000, "EUR", CARD_OK, "manual")).await;
    assert_eq!(p["status"], "processing", "{p}");

    // A 5xx on capture: 502, nothing captured, and a retry with the same key works.
    let p = create(&server, payment_body(1_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    server.dummy_fault("http_500", 1).await;
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({}),
            Some("cap"),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    assert_eq!(err["error"]["code"], "connector_unavailable");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_capture");
    assert_eq!(p["amount_captured"], 0);
    let (status, p) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({}),
            Some("cap"),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "succeeded");

    // The answer to a capture is lost after the PSP captured: the retry with
    // the same key is deduplicated by the PSP, so money moves once.
    let p = create(&server, payment_body(2_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    let reference = p["connector_reference"].as_str().unwrap().to_string();
    server.dummy_fault("timeout_after_effect", 1).await;
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 500}),
            Some("cap-lost"),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    let (status, p) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 500}),
            Some("cap-lost"),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["amount_captured"], 500);
    let charge: Value = server
        .http
        .get(format!(
            "{}/_sandbox/charges/{reference}",
            server.dummy_psp_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        charge["amount_captured"], 500,
        "the PSP captured once: {charge}"
    );
    // The server is still serving.
    let p = create(&server, payment_body(100, "EUR", CARD_OK, "automatic")).await;
    assert_eq!(p["status"], "succeeded");
}

async fn notification_settles_payment_and_forgery_is_rejected(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(4_200, "EUR", CARD_3DS, "automatic")).await;
    let id = p["id"].as_str().unwrap().to_string();
    // The shopper approves but never comes back: the PSP's notification settles it.
    act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    let mut status = String::new();
    for _ in 0..100 {
        let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
        status = p["status"].as_str().unwrap().to_string();
        if status != "requires_action" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "succeeded");
    let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cause"] == "notification"),
        "{events}"
    );

    // A forged notification is refused and changes nothing.
    let account = server.demo["connectors"]["dummy"]["account_id"]
        .as_str()
        .unwrap();
    let p2 = create(&server, payment_body(100, "EUR", CARD_3DS, "automatic")).await;
    let forged = json!({
        "id": "evt_forged", "type": "charge.captured", "created": 1,
        "charge": {"id": p2["connector_reference"], "status": "captured", "amount": 100, "currency": "EUR",
                   "reference": p2["reference"], "amount_captured": 100, "amount_refunded": 0},
        "refund": null
    });
    let resp = server
        .http
        .post(server.url(&format!("/v1/webhooks/{account}")))
        .header("Dummy-Signature", "t=1,v1=deadbeef")
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (_, p2) = server
        .get(&format!("/v1/payments/{}", p2["id"].as_str().unwrap()))
        .await;
    assert_eq!(p2["status"], "requires_action");
}

async fn lost_capture_confirmed_by_notification_counts_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let p = create(&server, payment_body(2_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    // The PSP captures, its answer is lost, and its notification tells
    // Passerelle before the merchant retries.
    server.dummy_fault("timeout_after_effect", 1).await;
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({}),
            Some("cap-all"),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    let mut p = Value::Null;
    for _ in 0..100 {
        p = server.get(&format!("/v1/payments/{id}")).await.1;
        if p["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(p["status"], "succeeded", "the notification settled it: {p}");
    assert_eq!(p["amount_captured"], 2_000);
    // The merchant's retry with the same key answers the payment as it is,
    // and nothing is counted twice.
    let (status, p) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({}),
            Some("cap-all"),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["amount_captured"], 2_000);
    assert_eq!(p["status"], "succeeded");
}
