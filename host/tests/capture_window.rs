//! The delay between authorization and capture, through the HTTP API with
//! the dummy connector (contract 1.1.0 capabilities): how long an
//! authorization stays capturable (`capture_before`, 409
//! `authorization_expired`, the janitor cancelling lapsed authorizations),
//! single-capture connectors (409 `multiple_captures_unsupported`), the
//! host-held delayed capture (`automatic_delayed`: durable across restarts,
//! made once with two nodes, released by a cancel), and the shopper's
//! browser data (3-D Secure 2) validated field by field.

mod common;

use std::time::{Duration, Instant};

use common::{payment_body, Backend, TestServer, CARD_OK};
use serde_json::{json, Value};

/// Janitor settings that make timed work visible within a test.
const FAST_JANITOR: [&str; 6] = [
    "--janitor-grace-secs",
    "1",
    "--janitor-max-backoff-secs",
    "2",
    "--janitor-interval-ms",
    "200",
];

fn browser() -> Value {
    json!({
        "accept_header": "text/html,application/xhtml+xml",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "language": "fr-FR",
        "color_depth": 24,
        "screen_height": 1080,
        "screen_width": 1920,
        "time_zone_offset": -60,
        "java_enabled": false,
        "javascript_enabled": true,
    })
}

/// Sets the demo dummy account's optional settings (its secrets again, as
/// any credentials change requires).
async fn set_dummy_settings(server: &TestServer, settings: Value) {
    let account = server.demo["connectors"]["dummy"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut credentials = json!({"api_key": "sk_dummy_test", "webhook_secret": "whsec_dummy_test"});
    for (k, v) in settings.as_object().unwrap() {
        credentials[k] = v.clone();
    }
    let resp = server
        .http
        .patch(server.url(&format!("/v1/admin/connector_accounts/{account}")))
        .bearer_auth(&server.admin_key)
        .json(&json!({"credentials": credentials}))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status.is_success(),
        "{status}: {}",
        resp.text().await.unwrap()
    );
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, p) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{p}");
    p
}

fn reference_of(body: &Value) -> String {
    body["reference"].as_str().unwrap().to_string()
}

async fn get_payment(server: &TestServer, id: &str) -> Value {
    let (status, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(status, 200, "{p}");
    p
}

/// Polls the payment until `done` holds (the janitor works in the background).
async fn wait_for(
    server: &TestServer,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let p = get_payment(server, id).await;
        if done(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "{what}: {p}\n{}", server.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Moves a payment's capture deadline into the past, as if its validity had
/// run out (the hours of a real validity cannot pass in a test).
fn lapse_authorization(server: &TestServer, id: &str) {
    server.sql(&format!(
        "UPDATE payments SET capture_before_ms = 1000 WHERE id = '{id}'"
    ));
}

fn millis(rfc3339: &Value) -> i64 {
    let text = rfc3339
        .as_str()
        .unwrap_or_else(|| panic!("not a date: {rfc3339}"));
    passerelle::crypto::parse_rfc3339_ms(text).unwrap_or_else(|| panic!("not RFC 3339: {text}"))
}

fn now_ms() -> i64 {
    passerelle::crypto::now_unix_ms()
}

async fn manual_payments_show_and_enforce_capture_before(backend: Backend) {
    let server = TestServer::start_with_args(backend, &["--no-janitor"]).await;
    set_dummy_settings(&server, json!({"authorization_validity_hours": "30"})).await;
    let before = now_ms();
    let body = payment_body(5_000, "EUR", CARD_OK, "manual");
    let reference = reference_of(&body);
    let p = create(&server, body).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    // The connector's declared validity, counted from the creation.
    let deadline = millis(&p["capture_before"]);
    let expected = before + 30 * 3_600_000;
    assert!(
        (expected - 5_000..=expected + 60_000).contains(&deadline),
        "capture_before {} is not 30 h away: {p}",
        p["capture_before"]
    );
    // An automatic payment has no window to show.
    let auto = create(&server, payment_body(100, "EUR", CARD_OK, "automatic")).await;
    assert_eq!(auto["status"], "succeeded");
    assert!(auto["capture_before"].is_null(), "{auto}");

    // Once it lapsed, a capture is refused before the provider is called
    // and nothing is reserved.
    let id = p["id"].as_str().unwrap();
    lapse_authorization(&server, id);
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["code"], "authorization_expired", "{err}");
    let after = get_payment(&server, id).await;
    assert_eq!(after["amount_capture_pending"], 0, "{after}");
    assert_eq!(after["status"], "requires_capture");
    let charges = server.psp_charges(&reference).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["amount_captured"], 0, "never sent: {charges:?}");
}

async fn the_janitor_cancels_a_lapsed_authorization_after_asking(backend: Backend) {
    let server = TestServer::start_with_args(backend, &FAST_JANITOR).await;
    let body = payment_body(4_200, "EUR", CARD_OK, "manual");
    let p = create(&server, body).await;
    let id = p["id"].as_str().unwrap().to_string();
    // Not due: the janitor leaves it alone.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        get_payment(&server, &id).await["status"],
        "requires_capture"
    );
    lapse_authorization(&server, &id);
    server.sql(&format!(
        "UPDATE payments SET reconcile_after = 1000 WHERE id = '{id}'"
    ));
    let canceled = wait_for(&server, &id, "lapsed authorization canceled", |p| {
        p["status"] == "canceled"
    })
    .await;
    assert_eq!(
        canceled["failure_code"], "authorization_expired",
        "{canceled}"
    );
    let (status, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert_eq!(status, 200);
    let events = events["data"].as_array().unwrap().clone();
    let last = events.last().unwrap();
    assert_eq!(last["cause"], "authorization_expired", "{events:?}");
    assert_eq!(last["to_status"], "canceled");
}

async fn a_capture_the_provider_already_made_is_not_expired(backend: Backend) {
    // The provider captured (its answer lost to us): the janitor's sync
    // learns it instead of cancelling.
    let server = TestServer::start_with_args(backend, &FAST_JANITOR).await;
    let body = payment_body(3_000, "EUR", CARD_OK, "manual");
    let p = create(&server, body).await;
    let id = p["id"].as_str().unwrap().to_string();
    let charge = p["connector_reference"].as_str().unwrap().to_string();
    // Captured at the PSP behind the host's back.
    let resp = server
        .http
        .post(format!(
            "{}/v1/charges/{charge}/capture",
            server.dummy_psp_url()
        ))
        .bearer_auth(server.demo["sandbox"]["dummy"]["api_key"].as_str().unwrap())
        .json(&json!({"amount": 3_000}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().await.unwrap());
    lapse_authorization(&server, &id);
    server.sql(&format!(
        "UPDATE payments SET reconcile_after = 1000 WHERE id = '{id}'"
    ));
    let settled = wait_for(&server, &id, "sync learns the capture", |p| {
        p["status"] != "requires_capture"
    })
    .await;
    assert_eq!(settled["status"], "succeeded", "{settled}");
    assert_eq!(settled["amount_captured"], 3_000);
}

async fn single_capture_connectors_refuse_a_second_capture_up_front(backend: Backend) {
    let server = TestServer::start_with_args(backend, &["--no-janitor"]).await;
    set_dummy_settings(&server, json!({"multiple_partial_captures": "false"})).await;
    let body = payment_body(10_000, "EUR", CARD_OK, "manual");
    let reference = reference_of(&body);
    let p = create(&server, body).await;
    let id = p["id"].as_str().unwrap();
    let (status, first) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 4_000}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    // The connector captures once: the first capture was final.
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["amount_captured"], 4_000);
    let (status, err) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 1_000}),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    let charges = server.psp_charges(&reference).await;
    assert_eq!(charges[0]["amount_captured"], 4_000, "{charges:?}");

    // Before the first capture, nothing is refused; after a partial one,
    // a second is refused with its own code and nothing reserved.
    set_dummy_settings(
        &server,
        json!({"multiple_partial_captures": "false", "authorization_validity_hours": "48"}),
    )
    .await;
    let p = create(&server, payment_body(10_000, "EUR", CARD_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    // A first partial capture that the provider leaves pending keeps the
    // payment capturable; the second is refused up front.
    server.sql(&format!(
        "UPDATE payments SET amount_captured = 2000, status = 'partially_captured' WHERE id = '{id}'"
    ));
    let (status, err) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 1_000}),
        )
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(
        err["error"]["code"], "multiple_captures_unsupported",
        "{err}"
    );
    assert_eq!(get_payment(&server, id).await["amount_capture_pending"], 0);
}

async fn a_host_held_delayed_capture_survives_a_restart_and_is_made_once(backend: Backend) {
    // A PSP outside the servers: it outlives a restart, and both nodes reach it.
    let psp = passerelle_sandbox::Sandbox::start(passerelle_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        specs: passerelle_sandbox::SpecSource::Off,
        ..passerelle_sandbox::SandboxConfig::default()
    })
    .await
    .unwrap();
    let master_key = "cd".repeat(32);
    let mut args: Vec<&str> = FAST_JANITOR.to_vec();
    args.extend(["--master-key", &master_key]);
    let mut node_a = TestServer::start_with_args(backend, &args).await;
    node_a.use_dummy_psp(&psp.dummy_base_url()).await;
    let body = json!({
        "amount": 7_500, "currency": "EUR", "reference": format!("order-{}", common::rand_suffix()),
        "capture_method": "automatic_delayed", "capture_delay_hours": 2,
        "payment_method": {"type": "card", "card": {"number": CARD_OK, "exp_month": 3,
            "exp_year": 2030, "cvc": "737"}},
        "return_url": "https://shop.example/done",
    });
    let reference = reference_of(&body);
    let created_at = now_ms();
    let p = create(&node_a, body).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["capture_method"], "automatic_delayed");
    assert_eq!(p["capture_delay_hours"], 2);
    assert_eq!(
        p["capture_scheduled_by"], "host",
        "the dummy PSP has no native delay: {p}"
    );
    let due = millis(&p["capture_scheduled_at"]);
    let expected = created_at + 2 * 3_600_000;
    assert!((expected - 5_000..=expected + 60_000).contains(&due), "{p}");
    // The authorization went to the PSP as a manual one: nothing captured yet.
    assert_eq!(
        node_a.psp_charges(&reference).await[0]["amount_captured"],
        0
    );

    // The schedule is in the database: a restarted node still knows it.
    let scheduled = p["capture_scheduled_at"].clone();
    node_a.restart().await;
    let p = get_payment(&node_a, &id).await;
    assert_eq!(p["status"], "requires_capture", "not due yet: {p}");
    assert_eq!(p["capture_scheduled_at"], scheduled, "{p}");
    // Two nodes on one database when it falls due: one capture.
    let mut node_b = match backend {
        Backend::Postgres => Some(node_a.start_second_node().await),
        Backend::Sqlite => None,
    };
    if let Some(node_b) = node_b.as_mut() {
        // The second node's demo set-up pointed the shared account at its
        // own sandbox: back to the PSP both share.
        node_b.use_dummy_psp(&psp.dummy_base_url()).await;
    }
    // Make it due now (two hours cannot pass in a test).
    node_a.sql(&format!(
        "UPDATE payments SET delayed_capture = '{{\"hours\":2,\"by_provider\":false,\"at_ms\":1000}}', \
         reconcile_after = 1000 WHERE id = '{id}'"
    ));
    let captured = wait_for(&node_a, &id, "the delayed capture is made", |p| {
        p["status"] == "succeeded"
    })
    .await;
    assert_eq!(captured["amount_captured"], 7_500, "{captured}");
    // Let both janitors run a few more ticks.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let charges = node_a.psp_charges(&reference).await;
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(
        charges[0]["amount_captured"], 7_500,
        "captured once: {charges:?}"
    );
    let (_, events) = node_a.get(&format!("/v1/payments/{id}/events")).await;
    let janitor_captures = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["cause"] == "janitor" && e["detail"]["in_flight"] == true)
        .count();
    assert_eq!(janitor_captures, 1, "{events}");
}

async fn a_cancel_before_the_delay_releases_the_capture(backend: Backend) {
    let server = TestServer::start_with_args(backend, &FAST_JANITOR).await;
    let body = json!({
        "amount": 2_500, "currency": "EUR", "reference": format!("order-{}", common::rand_suffix()),
        "capture_method": "automatic_delayed", "capture_delay_hours": 24,
        "payment_method": {"type": "card", "card": {"number": CARD_OK, "exp_month": 3,
            "exp_year": 2030, "cvc": "737"}},
        "return_url": "https://shop.example/done",
    });
    let reference = reference_of(&body);
    let p = create(&server, body).await;
    let id = p["id"].as_str().unwrap().to_string();
    let (status, canceled) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    // Even once "due", nothing is captured.
    server.sql(&format!(
        "UPDATE payments SET delayed_capture = '{{\"hours\":24,\"by_provider\":false,\"at_ms\":1000}}', \
         reconcile_after = 1000 WHERE id = '{id}'"
    ));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = get_payment(&server, &id).await;
    assert_eq!(after["status"], "canceled", "{after}");
    let charges = server.psp_charges(&reference).await;
    assert_eq!(charges[0]["amount_captured"], 0, "{charges:?}");
    assert_eq!(charges[0]["status"], "canceled", "{charges:?}");
}

async fn delayed_capture_requests_are_checked(backend: Backend) {
    let server = TestServer::start_with_args(backend, &["--no-janitor"]).await;
    let base = |method: &str, hours: Option<i64>| {
        let mut body = payment_body(1_000, "EUR", CARD_OK, method);
        if let Some(h) = hours {
            body["capture_delay_hours"] = json!(h);
        }
        body
    };
    for (body, what) in [
        (base("automatic_delayed", None), "delay missing"),
        (base("automatic_delayed", Some(0)), "zero hours"),
        (base("automatic_delayed", Some(169)), "over a week"),
        (base("manual", Some(2)), "delay without automatic_delayed"),
    ] {
        let (status, err) = server.post("/v1/payments", body).await;
        assert_eq!(status, 400, "{what}: {err}");
        assert_eq!(
            err["error"]["param"], "capture_delay_hours",
            "{what}: {err}"
        );
    }
    // Beyond the connector's validity window.
    set_dummy_settings(&server, json!({"authorization_validity_hours": "24"})).await;
    let (status, err) = server
        .post("/v1/payments", base("automatic_delayed", Some(30)))
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "capture_delay_hours", "{err}");
}

async fn browser_data_is_validated_field_by_field(backend: Backend) {
    let server = TestServer::start_with_args(backend, &["--no-janitor"]).await;
    let with_shopper = |shopper: Value| {
        let mut body = payment_body(1_000, "EUR", CARD_OK, "manual");
        body["shopper"] = shopper;
        body
    };
    // Accepted as a browser reports it.
    let ok = with_shopper(json!({
        "email": "ada@example.com", "ip_address": "2001:db8::1",
        "origin": "https://shop.example", "browser": browser(),
    }));
    let (status, p) = server.post("/v1/payments", ok).await;
    assert_eq!(status, 201, "{p}");
    let cases: Vec<(&str, Value)> = vec![
        ("shopper.browser.color_depth", json!({"color_depth": 23})),
        ("shopper.browser.screen_height", json!({"screen_height": 0})),
        (
            "shopper.browser.screen_width",
            json!({"screen_width": 100_000}),
        ),
        (
            "shopper.browser.time_zone_offset",
            json!({"time_zone_offset": 900}),
        ),
        ("shopper.browser.language", json!({"language": "fr FR"})),
        ("shopper.browser.user_agent", json!({"user_agent": ""})),
        (
            "shopper.browser.accept_header",
            json!({"accept_header": "text/html\u{7}"}),
        ),
    ];
    for (param, change) in cases {
        let mut b = browser();
        for (k, v) in change.as_object().unwrap() {
            b[k] = v.clone();
        }
        let (status, err) = server
            .post("/v1/payments", with_shopper(json!({"browser": b})))
            .await;
        assert_eq!(status, 400, "{param}: {err}");
        assert_eq!(err["error"]["param"], param, "{err}");
    }
    // A missing browser field is named too.
    let mut b = browser();
    b.as_object_mut().unwrap().remove("java_enabled");
    let (status, err) = server
        .post("/v1/payments", with_shopper(json!({"browser": b})))
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("java_enabled")
            || err["error"]["param"]
                .as_str()
                .unwrap_or("")
                .contains("java_enabled"),
        "{err}"
    );
    for (param, shopper) in [
        ("shopper.ip_address", json!({"ip_address": "192.0.2"})),
        (
            "shopper.origin",
            json!({"origin": "https://shop.example/checkout"}),
        ),
        ("shopper.origin", json!({"origin": "javascript:alert(1)"})),
        ("shopper.email", json!({"email": "not an email"})),
    ] {
        let (status, err) = server.post("/v1/payments", with_shopper(shopper)).await;
        assert_eq!(status, 400, "{param}: {err}");
        assert_eq!(err["error"]["param"], param, "{err}");
    }
}

both_backends!(
    manual_payments_show_and_enforce_capture_before,
    the_janitor_cancels_a_lapsed_authorization_after_asking,
    a_capture_the_provider_already_made_is_not_expired,
    single_capture_connectors_refuse_a_second_capture_up_front,
    a_host_held_delayed_capture_survives_a_restart_and_is_made_once,
    a_cancel_before_the_delay_releases_the_capture,
    delayed_capture_requests_are_checked,
    browser_data_is_validated_field_by_field,
);
