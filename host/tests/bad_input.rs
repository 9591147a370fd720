//! Bad input, generated: valid requests of the storefront and admin APIs
//! with one part replaced by something random (wrong types, huge numbers,
//! NUL bytes and other control characters, unicode, long strings, deep
//! nesting), plus bodies that are not JSON at all and bodies of 10 MB. The
//! server must answer every one with a 4xx (or a success), never a 5xx,
//! and write nothing but whole records: every payment or refund row in the
//! database is one the API answered for.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};

/// Requests per backend: enough to hit every field with every kind of
/// value several times, few enough for CI.
const ROUNDS: usize = 400;

fn random_string(rng: &mut StdRng) -> String {
    const PIECES: &[&str] = &[
        "",
        "a",
        "EUR",
        "card",
        "\u{0}",
        "\u{7}",
        "\n",
        "\u{202e}",
        "é",
        "💳",
        "4111111111111111",
        "' OR 1=1 --",
        "%00",
        "\\",
        "\"",
        "null",
        "<script>",
        "\u{fffd}",
        " ",
    ];
    let mut s = String::new();
    for _ in 0..rng.random_range(0..6) {
        s.push_str(PIECES[rng.random_range(0..PIECES.len())]);
    }
    if rng.random_bool(0.05) {
        s.push_str(&"x".repeat(rng.random_range(1_000..70_000)));
    }
    s
}

fn random_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.random_range(0..11) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<u64>()),
        4 => json!(rng.random::<f64>() * 1e300),
        5 => json!(-1),
        6 => json!(0),
        7 if depth < 4 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        8 if depth < 4 => {
            let mut map = Map::new();
            for _ in 0..rng.random_range(0..4) {
                map.insert(random_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => json!(random_string(rng)),
    }
}

/// Every path to a member of `value` (objects only), dotted.
fn paths(value: &Value, prefix: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            out.push(path.clone());
            paths(v, &path, out);
        }
    }
}

fn mutate(rng: &mut StdRng, valid: &Value) -> Value {
    let mut body = valid.clone();
    let mut all = Vec::new();
    paths(&body, "", &mut all);
    let target = &all[rng.random_range(0..all.len())];
    let mut parts: Vec<&str> = target.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    let mut node = &mut body;
    for p in parts {
        node = &mut node[p];
    }
    if let Value::Object(map) = node {
        match rng.random_range(0..4) {
            0 => {
                map.remove(last);
            }
            1 => {
                map.insert(random_string(rng), random_value(rng, 0));
            }
            _ => {
                map.insert(last.to_string(), random_value(rng, 0));
            }
        }
    }
    body
}

async fn send(server: &TestServer, method: &str, path: &str, body: Vec<u8>, admin: bool) -> u16 {
    let key = if admin {
        &server.admin_key
    } else {
        &server.secret_key
    };
    let req = match method {
        "PATCH" => server.http.patch(server.url(path)),
        _ => server.http.post(server.url(path)),
    };
    let resp = req
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    resp.status().as_u16()
}

async fn random_requests_never_get_a_5xx(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut rng = StdRng::seed_from_u64(0x5eed_0000 + backend as u64);
    // A captured payment to capture, refund and cancel against.
    let (status, p) = server
        .post(
            "/v1/payments",
            payment_body(50_000, "EUR", CARD_OK, "manual"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_string();
    let merchant = server.demo["merchant_id"].as_str().unwrap().to_string();
    let account = server.demo["connectors"]["dummy"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let targets: Vec<(&str, String, Value, bool)> = vec![
        (
            "POST",
            "/v1/payments".into(),
            json!({
                "amount": 1050, "currency": "EUR", "reference": "order-1",
                "capture_method": "manual",
                "payment_method": {"type": "card", "card": {"number": CARD_OK, "exp_month": 3,
                    "exp_year": 2030, "cvc": "737", "holder_name": "Ada"}},
                "return_url": "https://shop.example/done",
                "shopper": {"email": "ada@example.com", "ip_address": "192.0.2.1",
                    "origin": "https://shop.example",
                    "browser": {"user_agent": "Mozilla/5.0", "accept_header": "text/html",
                        "language": "fr-FR", "color_depth": 24, "screen_height": 1080,
                        "screen_width": 1920, "time_zone_offset": -60, "java_enabled": false,
                        "javascript_enabled": true}},
                "metadata": {"cart": "42"},
            }),
            false,
        ),
        (
            "POST",
            format!("/v1/payments/{id}/capture"),
            json!({"amount": 1, "final": false}),
            false,
        ),
        (
            "POST",
            format!("/v1/payments/{id}/refunds"),
            json!({"amount": 1, "reason": "returned"}),
            false,
        ),
        (
            "POST",
            "/v1/admin/merchants".into(),
            json!({"name": "Boulangerie", "default_connector": "dummy"}),
            true,
        ),
        (
            "POST",
            format!("/v1/admin/merchants/{merchant}/connector_accounts"),
            json!({"name": "other", "connector": "dummy", "environment": "test",
                   "base_url": "https://psp.example", "credentials": {"api_key": "k", "webhook_secret": "s"}}),
            true,
        ),
        (
            "PATCH",
            format!("/v1/admin/connector_accounts/{account}"),
            json!({"environment": "test", "credentials": {"api_key": "sk_dummy_test"}}),
            true,
        ),
    ];
    let mut created_payments = 1;
    let mut created_refunds = 0;
    for round in 0..ROUNDS {
        let (method, path, valid, admin) = &targets[round % targets.len()];
        let raw = match rng.random_range(0..20) {
            // Not JSON, or not an object.
            0 => random_string(&mut rng).into_bytes(),
            1 => b"[1,2,3]".to_vec(),
            // Deeper than any parser should follow.
            2 => format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
            // Far over the size limit.
            3 if round % 40 == 3 => vec![b' '; 10 * 1024 * 1024],
            // Numbers no integer holds.
            4 => serde_json::to_string(valid)
                .unwrap()
                .replacen("1050", "1e400", 1)
                .replacen("\"amount\":1", "\"amount\":18446744073709551616", 1)
                .into_bytes(),
            _ => serde_json::to_vec(&mutate(&mut rng, valid)).unwrap(),
        };
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned();
        let status = send(&server, method, path, raw, *admin).await;
        assert!(
            status < 500,
            "{method} {path} answered {status} to {shown}\n{}",
            server.logs()
        );
        if status == 201 && path == "/v1/payments" {
            created_payments += 1;
        }
        if status == 201 && path.ends_with("/refunds") {
            created_refunds += 1;
        }
    }
    // Nothing half-written: every row is one the API answered for (a
    // payment the connector itself refused as invalid is written whole,
    // and failed, so it is not counted here: see the filter).
    let payments = server.sql_count(
        "SELECT COUNT(*) AS n FROM payments WHERE NOT (status = 'failed' AND amount_authorized = 0)",
    );
    assert!(
        payments <= created_payments,
        "{payments} > {created_payments}"
    );
    let refunds = server.sql_count("SELECT COUNT(*) AS n FROM refunds");
    assert_eq!(refunds, created_refunds);
    // Still serving.
    let (status, p) = server
        .post(
            "/v1/payments",
            payment_body(1_000, "EUR", CARD_OK, "automatic"),
        )
        .await;
    assert_eq!(status, 201, "{p}");
}

both_backends!(random_requests_never_get_a_5xx);
