//! Drives a running sandbox's dummy PSP over real HTTP (docs/dummy-psp.md).

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use hmac::{Hmac, Mac};
use passerelle_sandbox::{DummyConfig, Sandbox, SandboxConfig, SandboxHandle};
use reqwest::{header, redirect, Client, Response, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

const KEY: &str = "sk_dummy_test";
const SECRET: &str = "whsec_dummy_test";

struct Env {
    _sandbox: SandboxHandle,
    base: String,
    http: Client,
}

async fn env() -> Env {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let base = sandbox.dummy_base_url();
    Env {
        _sandbox: sandbox,
        base,
        http: client(Duration::from_secs(10)),
    }
}

fn client(timeout: Duration) -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

fn charge_body(number: &str, capture: bool) -> Value {
    json!({
        "amount": 1050, "currency": "EUR", "reference": "order-1", "capture": capture,
        "card": {"number": number, "exp_month": 3, "exp_year": 2030, "cvc": "737", "holder_name": "A B"},
        "return_url": "https://shop.example/return?cart=7",
    })
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: Option<&Value>, key: Option<&str>) -> Response {
        let mut req = self.http.post(self.url(path)).bearer_auth(KEY);
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
    }

    async fn create(&self, body: &Value) -> Value {
        let res = self.post("/v1/charges", Some(body), None).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn authorized(&self, amount: u64) -> String {
        let mut body = charge_body("4111111111111111", false);
        body["amount"] = json!(amount);
        let charge = self.create(&body).await;
        assert_eq!(charge["status"], "authorized");
        charge["id"].as_str().unwrap().to_owned()
    }

    async fn control(&self, id: &str) -> Value {
        let res = self
            .http
            .get(self.url(&format!("/_sandbox/charges/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn fault(&self, mode: &str, count: u32) {
        let res = self
            .http
            .post(self.url("/_sandbox/faults"))
            .json(&json!({"mode": mode, "count": count}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

async fn expect_error(res: Response, status: StatusCode, code: &str, param: Option<&str>) {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    match param {
        Some(param) => assert_eq!(body["error"]["param"], param, "{body}"),
        None => assert!(body["error"].get("param").is_none(), "{body}"),
    }
}

#[tokio::test]
async fn charges_are_found_by_payment_id_and_listed_in_the_ledger() {
    let env = env().await;
    let mut body = charge_body("4111111111111111", false);
    body["payment_id"] = json!("pay_42");
    let charge = env.create(&body).await;
    assert_eq!(charge["payment_id"], "pay_42");
    let found: Value = env
        .get("/v1/charges?payment_id=pay_42")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["data"][0]["id"], charge["id"]);
    let none: Value = env
        .get("/v1/charges?payment_id=pay_43")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["data"], json!([]));
    // The test-only ledger, by merchant reference.
    let ledger: Value = env
        .http
        .get(env.url("/_sandbox/charges?reference=order-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ledger["data"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["data"][0]["id"], charge["id"]);
    body["payment_id"] = json!("");
    let res = env.post("/v1/charges", Some(&body), None).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn test_cards() {
    let env = env().await;

    let res = env
        .post(
            "/v1/charges",
            Some(&charge_body("4111111111111111", false)),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let text = res.text().await.unwrap();
    assert!(!text.contains("4111111111111111"), "echoes the card number");
    let charge: Value = serde_json::from_str(&text).unwrap();
    let id = charge["id"].as_str().unwrap();
    assert!(id.starts_with("ch_"));
    assert_eq!(
        charge,
        json!({"id": id, "status": "authorized", "amount": 1050, "currency": "EUR",
               "reference": "order-1", "amount_captured": 0, "amount_refunded": 0,
               "refusal_code": null, "refusal_reason": null, "redirect_url": null,
               "card_last4": "1111"})
    );
    let fetched: Value = env
        .get(&format!("/v1/charges/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, charge);

    let captured = env.create(&charge_body("4111111111111111", true)).await;
    assert_eq!(captured["status"], "captured");
    assert_eq!(captured["amount_captured"], 1050);

    let declined = env.create(&charge_body("4000000000000002", false)).await;
    assert_eq!(declined["status"], "refused");
    assert_eq!(declined["refusal_code"], "card_declined");
    assert_eq!(declined["refusal_reason"], "Insufficient funds");
    assert_eq!(declined["card_last4"], "0002");

    let three_ds = env.create(&charge_body("4000000000003220", true)).await;
    assert_eq!(three_ds["status"], "requires_action");
    assert_eq!(three_ds["amount_captured"], 0);
    assert_eq!(
        three_ds["redirect_url"],
        format!("{}/3ds/{}", env.base, three_ds["id"].as_str().unwrap())
    );

    let other = env.create(&charge_body("5555555555554444", false)).await;
    assert_eq!(other["status"], "authorized");
    assert_eq!(other["card_last4"], "4444");

    let res = env
        .post(
            "/v1/charges",
            Some(&charge_body("4111111111111112", false)),
            None,
        )
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "invalid_card_number",
        Some("card.number"),
    )
    .await;

    let mut expired = charge_body("4111111111111111", true);
    expired["card"]["exp_year"] = json!(2020);
    let expired = env.create(&expired).await;
    assert_eq!(expired["status"], "refused");
    assert_eq!(expired["refusal_code"], "expired_card");
    assert_eq!(expired["refusal_reason"], "Card expired");
    assert_eq!(expired["amount_captured"], 0);
}

#[tokio::test]
async fn validation_errors() {
    let env = env().await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("amount", Box::new(|b| b["amount"] = json!(0))),
        ("amount", Box::new(|b| b["amount"] = json!(-5))),
        ("amount", Box::new(|b| b["amount"] = json!(10.5))),
        ("amount", Box::new(|b| b["amount"] = json!("1050"))),
        (
            "amount",
            Box::new(|b| drop(b.as_object_mut().unwrap().remove("amount"))),
        ),
        ("currency", Box::new(|b| b["currency"] = json!("eur"))),
        ("currency", Box::new(|b| b["currency"] = json!("EURO"))),
        ("reference", Box::new(|b| b["reference"] = json!(""))),
        (
            "reference",
            Box::new(|b| b["reference"] = json!("x".repeat(65))),
        ),
        ("capture", Box::new(|b| b["capture"] = json!("yes"))),
        ("card", Box::new(|b| b["card"] = json!("4111111111111111"))),
        (
            "card",
            Box::new(|b| drop(b.as_object_mut().unwrap().remove("card"))),
        ),
        (
            "card.number",
            Box::new(|b| b["card"]["number"] = json!(4111111111111111u64)),
        ),
        (
            "card.exp_month",
            Box::new(|b| b["card"]["exp_month"] = json!(13)),
        ),
        (
            "card.exp_year",
            Box::new(|b| b["card"]["exp_year"] = json!(30)),
        ),
        ("card.cvc", Box::new(|b| b["card"]["cvc"] = json!("12a"))),
        (
            "return_url",
            Box::new(|b| drop(b.as_object_mut().unwrap().remove("return_url"))),
        ),
        (
            "return_url",
            Box::new(|b| b["return_url"] = json!("/relative")),
        ),
        (
            "notification_url",
            Box::new(|b| b["notification_url"] = json!("ftp://x/y")),
        ),
    ];
    for (param, mutate) in cases {
        let mut body = charge_body("4111111111111111", false);
        mutate(&mut body);
        let res = env.post("/v1/charges", Some(&body), None).await;
        expect_error(res, StatusCode::BAD_REQUEST, "invalid_request", Some(param)).await;
    }

    // A reference of 64 multi-byte characters is fine.
    let mut body = charge_body("4111111111111111", false);
    body["reference"] = json!("é".repeat(64));
    env.create(&body).await;

    let res = env
        .http
        .post(env.url("/v1/charges"))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "invalid_request", None).await;

    let id = env.authorized(1000).await;
    let res = env
        .post(
            &format!("/v1/charges/{id}/capture"),
            Some(&json!({"amount": 0})),
            None,
        )
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("amount"),
    )
    .await;
    let res = env
        .post(
            &format!("/v1/charges/{id}/capture"),
            Some(&json!({"final": 1})),
            None,
        )
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("final"),
    )
    .await;
    assert_eq!(env.control(&id).await["amount_captured"], 0);
}

#[tokio::test]
async fn not_found_and_methods() {
    let env = env().await;
    expect_error(
        env.get("/v1/charges/ch_nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    let res = env.post("/v1/charges/ch_nope/capture", None, None).await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found", None).await;
    expect_error(
        env.get("/v1/nothing").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    )
    .await;
    // GET /v1/charges searches, and needs what to search by.
    let res = env.get("/v1/charges").await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("payment_id"),
    )
    .await;
    let res = env
        .http
        .get(env.url("/_sandbox/charges/ch_nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn partial_captures() {
    let env = env().await;
    let id = env.authorized(1000).await;
    let capture = format!("/v1/charges/{id}/capture");

    let res = env
        .post(&capture, Some(&json!({"amount": 400})), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let charge: Value = res.json().await.unwrap();
    assert_eq!(charge["status"], "authorized");
    assert_eq!(charge["amount_captured"], 400);

    let res = env
        .post(&capture, Some(&json!({"amount": 700})), None)
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "amount_too_large",
        Some("amount"),
    )
    .await;

    let res = env
        .post(&capture, Some(&json!({"amount": 200})), None)
        .await;
    let charge: Value = res.json().await.unwrap();
    assert_eq!(charge["amount_captured"], 600);
    assert_eq!(charge["status"], "authorized");

    // No body: all that remains.
    let res = env.post(&capture, None, None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let charge: Value = res.json().await.unwrap();
    assert_eq!(charge["status"], "captured");
    assert_eq!(charge["amount_captured"], 1000);

    let res = env.post(&capture, Some(&json!({"amount": 1})), None).await;
    expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;

    // Capture over the amount at once.
    let id = env.authorized(1000).await;
    let res = env
        .post(
            &format!("/v1/charges/{id}/capture"),
            Some(&json!({"amount": 1001})),
            None,
        )
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "amount_too_large",
        Some("amount"),
    )
    .await;

    // A final partial capture ends captures.
    let res = env
        .post(
            &format!("/v1/charges/{id}/capture"),
            Some(&json!({"amount": 300, "final": true})),
            None,
        )
        .await;
    let charge: Value = res.json().await.unwrap();
    assert_eq!(charge["status"], "captured");
    assert_eq!(charge["amount_captured"], 300);
    let res = env
        .post(
            &format!("/v1/charges/{id}/capture"),
            Some(&json!({"amount": 100})),
            None,
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;

    // Refused and 3-D Secure charges cannot be captured.
    for number in ["4000000000000002", "4000000000003220"] {
        let charge = env.create(&charge_body(number, false)).await;
        let res = env
            .post(
                &format!("/v1/charges/{}/capture", charge["id"].as_str().unwrap()),
                None,
                None,
            )
            .await;
        expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;
    }
}

#[tokio::test]
async fn voids() {
    let env = env().await;
    let id = env.authorized(1000).await;
    let res = env
        .post(&format!("/v1/charges/{id}/void"), None, None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let charge: Value = res.json().await.unwrap();
    assert_eq!(charge["status"], "canceled");
    let res = env
        .post(&format!("/v1/charges/{id}/void"), None, None)
        .await;
    expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;

    // Something captured: no void.
    let id = env.authorized(1000).await;
    env.post(
        &format!("/v1/charges/{id}/capture"),
        Some(&json!({"amount": 100})),
        None,
    )
    .await;
    let res = env
        .post(&format!("/v1/charges/{id}/void"), None, None)
        .await;
    expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;
    assert_eq!(env.control(&id).await["status"], "authorized");

    // requires_action can be voided.
    let charge = env.create(&charge_body("4000000000003220", false)).await;
    let id = charge["id"].as_str().unwrap();
    let res = env
        .post(&format!("/v1/charges/{id}/void"), None, None)
        .await;
    let charge: Value = res.json().await.unwrap();
    assert_eq!(charge["status"], "canceled");
    assert_eq!(charge["redirect_url"], Value::Null);

    // Refused and captured cannot.
    for (number, capture) in [("4000000000000002", false), ("4111111111111111", true)] {
        let charge = env.create(&charge_body(number, capture)).await;
        let res = env
            .post(
                &format!("/v1/charges/{}/void", charge["id"].as_str().unwrap()),
                None,
                None,
            )
            .await;
        expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;
    }
}

#[tokio::test]
async fn refunds() {
    let env = env().await;
    let id = env.authorized(1000).await;
    let refunds = format!("/v1/charges/{id}/refunds");

    // Nothing captured yet.
    let res = env
        .post(&refunds, Some(&json!({"amount": 100})), None)
        .await;
    expect_error(res, StatusCode::CONFLICT, "invalid_state", None).await;

    env.post(
        &format!("/v1/charges/{id}/capture"),
        Some(&json!({"amount": 800})),
        None,
    )
    .await;

    let res = env
        .post(
            &refunds,
            Some(&json!({"amount": 300, "reason": "damaged"})),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let refund: Value = res.json().await.unwrap();
    let refund_id = refund["id"].as_str().unwrap();
    assert!(refund_id.starts_with("re_"));
    assert_eq!(
        refund,
        json!({"id": refund_id, "charge": id, "amount": 300, "status": "succeeded", "reason": "damaged"})
    );
    let fetched: Value = env
        .get(&format!("/v1/charges/{id}/refunds/{refund_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, refund);

    let res = env
        .post(&refunds, Some(&json!({"amount": 501})), None)
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "amount_too_large",
        Some("amount"),
    )
    .await;

    let res = env
        .post(&refunds, Some(&json!({"amount": 500})), None)
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let charge = env.control(&id).await;
    assert_eq!(charge["amount_refunded"], 800);
    assert_eq!(charge["amount_captured"], 800);

    // Everything is refunded: one more unit is too much, and so is "the rest".
    let res = env.post(&refunds, Some(&json!({"amount": 1})), None).await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "amount_too_large",
        Some("amount"),
    )
    .await;
    let res = env.post(&refunds, None, None).await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "amount_too_large",
        Some("amount"),
    )
    .await;

    // Capturing the rest makes it refundable again; no amount refunds all that is left.
    env.post(&format!("/v1/charges/{id}/capture"), None, None)
        .await;
    let res = env.post(&refunds, None, None).await;
    let refund: Value = res.json().await.unwrap();
    assert_eq!(refund["amount"], 200);
    let charge = env.control(&id).await;
    assert_eq!(charge["status"], "captured");
    assert_eq!(charge["amount_refunded"], 1000);

    // Unknown refund, and a refund looked up under another charge.
    let res = env.get(&format!("/v1/charges/{id}/refunds/re_nope")).await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found", None).await;
    let other = env.authorized(100).await;
    let res = env
        .get(&format!("/v1/charges/{other}/refunds/{refund_id}"))
        .await;
    expect_error(res, StatusCode::NOT_FOUND, "not_found", None).await;
}

#[tokio::test]
async fn idempotency() {
    let env = env().await;
    let body = charge_body("4111111111111111", false);
    let first = env.post("/v1/charges", Some(&body), Some("key-1")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("Idempotent-Replayed").is_none());
    let first: Value = first.json().await.unwrap();

    // The same JSON value, written differently, is the same body.
    let reordered = r#"{"return_url":"https://shop.example/return?cart=7","capture":false,
        "card":{"holder_name":"A B","cvc":"737","exp_year":2030,"exp_month":3,"number":"4111111111111111"},
        "reference":"order-1","currency":"EUR","amount":1050}"#;
    let second = env
        .http
        .post(env.url("/v1/charges"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "key-1")
        .header(header::CONTENT_TYPE, "application/json")
        .body(reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["Idempotent-Replayed"], "true");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);

    let mut other = body.clone();
    other["amount"] = json!(1051);
    let res = env.post("/v1/charges", Some(&other), Some("key-1")).await;
    expect_error(res, StatusCode::CONFLICT, "idempotency_conflict", None).await;

    // Capture: replaying does not capture twice.
    let id = first["id"].as_str().unwrap();
    let capture = format!("/v1/charges/{id}/capture");
    for _ in 0..2 {
        let res = env
            .post(&capture, Some(&json!({"amount": 500})), Some("cap-1"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let charge: Value = res.json().await.unwrap();
        assert_eq!(charge["amount_captured"], 500);
    }
    assert_eq!(env.control(id).await["amount_captured"], 500);
    // The same key on another endpoint is a conflict.
    let res = env
        .post(
            &format!("/v1/charges/{id}/refunds"),
            Some(&json!({"amount": 500})),
            Some("cap-1"),
        )
        .await;
    expect_error(res, StatusCode::CONFLICT, "idempotency_conflict", None).await;

    // Refunds: replaying returns the same refund.
    let refunds = format!("/v1/charges/{id}/refunds");
    let a: Value = env
        .post(&refunds, Some(&json!({"amount": 100})), Some("ref-1"))
        .await
        .json()
        .await
        .unwrap();
    let b: Value = env
        .post(&refunds, Some(&json!({"amount": 100})), Some("ref-1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(env.control(id).await["amount_refunded"], 100);

    // A failed request is not remembered: the key can be used again.
    let res = env
        .post(&refunds, Some(&json!({"amount": 5000})), Some("ref-2"))
        .await;
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "amount_too_large",
        Some("amount"),
    )
    .await;
    let res = env
        .post(&refunds, Some(&json!({"amount": 50})), Some("ref-2"))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn three_d_secure() {
    let env = env().await;
    let mut body = charge_body("4000000000003220", false);
    body["reference"] = json!("order-<3ds>&");
    let charge = env.create(&body).await;
    let id = charge["id"].as_str().unwrap().to_owned();
    let page_url = charge["redirect_url"].as_str().unwrap();

    let res = env.http.get(page_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<title>"));
    assert!(html.contains("10.50 EUR"));
    assert!(html.contains("order-&lt;3ds&gt;&amp;"));
    assert!(!html.contains("order-<3ds>"));
    assert_eq!(html.matches("<form ").count(), 2);
    let approve = html
        .find(&format!("action=\"/dummy/3ds/{id}/approve\""))
        .unwrap();
    let fail = html
        .find(&format!("action=\"/dummy/3ds/{id}/fail\""))
        .unwrap();
    assert!(approve < fail, "the first form approves");
    assert!(html[..fail].contains(">Approve<"));
    assert!(html[fail..].contains(">Fail<"));

    let res = env
        .http
        .post(env.url(&format!("/3ds/{id}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[header::LOCATION],
        format!("https://shop.example/return?cart=7&charge={id}").as_str()
    );
    let charge = env.control(&id).await;
    assert_eq!(charge["status"], "authorized");
    assert_eq!(charge["redirect_url"], Value::Null);

    // No longer requires_action: 409 pages.
    let res = env
        .http
        .post(env.url(&format!("/3ds/{id}/fail")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("<html"));
    assert_eq!(env.control(&id).await["status"], "authorized");
    let res = env.http.get(page_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);

    // Approve with capture.
    let charge = env.create(&charge_body("4000000000003220", true)).await;
    let id = charge["id"].as_str().unwrap();
    let res = env
        .http
        .post(env.url(&format!("/3ds/{id}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let charge = env.control(id).await;
    assert_eq!(charge["status"], "captured");
    assert_eq!(charge["amount_captured"], 1050);

    // Fail, with a return_url without a query string.
    let mut body = charge_body("4000000000003220", false);
    body["return_url"] = json!("https://shop.example/back");
    let charge = env.create(&body).await;
    let id = charge["id"].as_str().unwrap();
    let res = env
        .http
        .post(env.url(&format!("/3ds/{id}/fail")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[header::LOCATION],
        format!("https://shop.example/back?charge={id}").as_str()
    );
    let charge = env.control(id).await;
    assert_eq!(charge["status"], "refused");
    assert_eq!(charge["refusal_code"], "authentication_failed");
    assert_eq!(charge["refusal_reason"], "3-D Secure authentication failed");

    let res = env.http.get(env.url("/3ds/ch_nope")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

/// A tiny HTTP receiver: each request's lower-cased headers and body.
async fn receiver() -> (
    String,
    mpsc::UnboundedReceiver<(HashMap<String, String>, Vec<u8>)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let header_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed early");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break pos + 4;
                    }
                };
                let head = String::from_utf8(buf[..header_end].to_vec()).unwrap();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                assert!(head.starts_with("POST "), "{head}");
                let len: usize = headers["content-length"].parse().unwrap();
                while buf.len() < header_end + len {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed early");
                    buf.extend_from_slice(&chunk[..n]);
                }
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tx.send((headers, buf[header_end..header_end + len].to_vec()));
            });
        }
    });
    (format!("http://{addr}/webhooks/acc_1"), rx)
}

/// Waits for the next notification, checks its signature, returns it.
async fn next_event(rx: &mut mpsc::UnboundedReceiver<(HashMap<String, String>, Vec<u8>)>) -> Value {
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no notification within 5 s")
        .unwrap();
    assert_eq!(headers["content-type"], "application/json");
    let signature = &headers["dummy-signature"];
    let (t, v1) = signature.split_once(',').unwrap();
    let t: u64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(t) < 60);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&body);
    assert_eq!(
        v1,
        hex::encode(mac.finalize().into_bytes()),
        "bad signature"
    );
    assert_eq!(
        signature,
        &passerelle_sandbox::dummy::signature_header(SECRET, t, &body)
    );
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert!(event["created"].as_u64().unwrap() >= t * 1000 - 60_000);
    event
}

#[tokio::test]
async fn notifications() {
    let env = env().await;
    let (url, mut rx) = receiver().await;

    let mut body = charge_body("4000000000003220", false);
    body["notification_url"] = json!(url);
    let charge = env.create(&body).await;
    let id = charge["id"].as_str().unwrap().to_owned();

    let res = env
        .http
        .post(env.url(&format!("/3ds/{id}/approve")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let event = next_event(&mut rx).await;
    assert_eq!(event["type"], "charge.authorized");
    assert_eq!(event["charge"]["id"], id.as_str());
    assert_eq!(event["charge"]["status"], "authorized");
    assert_eq!(event["refund"], Value::Null);

    let res = env
        .post(
            &format!("/v1/charges/{id}/capture"),
            Some(&json!({"amount": 1000})),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let event = next_event(&mut rx).await;
    // A partial capture is notified too; the charge stays authorized.
    assert_eq!(event["type"], "charge.captured");
    assert_eq!(event["charge"]["amount_captured"], 1000);
    assert_eq!(event["charge"]["status"], "authorized");

    let res = env
        .post(
            &format!("/v1/charges/{id}/refunds"),
            Some(&json!({"amount": 400})),
            None,
        )
        .await;
    let refund: Value = res.json().await.unwrap();
    let event = next_event(&mut rx).await;
    assert_eq!(event["type"], "charge.refunded");
    assert_eq!(event["refund"], refund);
    assert_eq!(event["charge"]["amount_refunded"], 400);

    // Void and 3-D Secure failure.
    let mut body = charge_body("4111111111111111", false);
    body["notification_url"] = json!(url);
    let charge = env.create(&body).await;
    env.post(
        &format!("/v1/charges/{}/void", charge["id"].as_str().unwrap()),
        None,
        None,
    )
    .await;
    let event = next_event(&mut rx).await;
    assert_eq!(event["type"], "charge.canceled");
    assert_eq!(event["charge"]["id"], charge["id"]);

    let mut body = charge_body("4000000000003220", false);
    body["notification_url"] = json!(url);
    let charge = env.create(&body).await;
    env.http
        .post(env.url(&format!("/3ds/{}/fail", charge["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    let event = next_event(&mut rx).await;
    assert_eq!(event["type"], "charge.refused");
    assert_eq!(event["charge"]["refusal_code"], "authentication_failed");

    // Creations sent nothing; idempotent replays send nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rx.try_recv().is_err(), "unexpected notification");
}

#[tokio::test]
async fn authentication() {
    let env = env().await;
    let body = charge_body("4111111111111111", false);
    let res = env
        .http
        .post(env.url("/v1/charges"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    let res = env
        .http
        .post(env.url("/v1/charges"))
        .bearer_auth("sk_wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    let res = env
        .http
        .post(env.url("/v1/charges"))
        .basic_auth(KEY, Some(""))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized", None).await;

    let id = env.authorized(100).await;
    let res = env
        .http
        .get(env.url(&format!("/v1/charges/{id}")))
        .bearer_auth("sk_wrong")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    let res = env
        .http
        .post(env.url(&format!("/v1/charges/{id}/capture")))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "unauthorized", None).await;
    assert_eq!(env.control(&id).await["amount_captured"], 0);
}

#[tokio::test]
async fn fault_timeout() {
    let env = env().await;
    let id = env.authorized(1000).await;
    env.fault("timeout", 1).await;

    let short = client(Duration::from_millis(800));
    let started = std::time::Instant::now();
    let err = short
        .post(env.url(&format!("/v1/charges/{id}/capture")))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // No effect, and the sleeping request blocks nobody.
    let started = std::time::Instant::now();
    assert_eq!(env.control(&id).await["amount_captured"], 0);
    // The fault is consumed: the next call works.
    let res = env
        .post(&format!("/v1/charges/{id}/capture"), None, None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));

    // A charge creation that timed out created nothing: its retry creates one.
    env.fault("timeout", 1).await;
    let err = short
        .post(env.url("/v1/charges"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "create-1")
        .json(&charge_body("4111111111111111", false))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let res = env
        .post(
            "/v1/charges",
            Some(&charge_body("4111111111111111", false)),
            Some("create-1"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get("Idempotent-Replayed").is_none());
}

#[tokio::test]
async fn fault_timeout_after_effect() {
    let env = env().await;
    let id = env.authorized(1000).await;
    env.fault("timeout_after_effect", 1).await;

    let short = client(Duration::from_millis(800));
    let err = short
        .post(env.url(&format!("/v1/charges/{id}/capture")))
        .bearer_auth(KEY)
        .json(&json!({"amount": 250}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(env.control(&id).await["amount_captured"], 250);

    // A creation whose answer was lost: the retry with the same key gets it.
    env.fault("timeout_after_effect", 1).await;
    let body = charge_body("4111111111111111", false);
    let err = short
        .post(env.url("/v1/charges"))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "lost-1")
        .json(&body)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let res = env.post("/v1/charges", Some(&body), Some("lost-1")).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["Idempotent-Replayed"], "true");
    let charge: Value = res.json().await.unwrap();
    assert_eq!(env.control(charge["id"].as_str().unwrap()).await, charge);
}

#[tokio::test]
async fn fault_http_500_and_garbage() {
    let env = env().await;
    let id = env.authorized(1000).await;
    let capture = format!("/v1/charges/{id}/capture");

    env.fault("http_500", 2).await;
    for _ in 0..2 {
        let res = env
            .post(&capture, Some(&json!({"amount": 100})), None)
            .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "internal");
    }
    assert_eq!(env.control(&id).await["amount_captured"], 0);

    env.fault("garbage", 1).await;
    let res = env
        .post(&capture, Some(&json!({"amount": 100})), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(env.control(&id).await["amount_captured"], 0);

    // Consumed: back to normal.
    let res = env
        .post(&capture, Some(&json!({"amount": 100})), None)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.control(&id).await["amount_captured"], 100);

    // "none" clears pending faults; a bad mode is refused.
    env.fault("http_500", 5).await;
    env.fault("none", 1).await;
    let res = env.get(&format!("/v1/charges/{id}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&json!({"mode": "explode"}))
        .send()
        .await
        .unwrap();
    expect_error(
        res,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        Some("mode"),
    )
    .await;
}

async fn refused_connection(addr: SocketAddr) -> bool {
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[actix_web::test]
async fn runs_under_actix_and_stops() {
    let sandbox = Sandbox::start(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        dummy: DummyConfig {
            api_key: "sk_custom".into(),
            webhook_secret: "whsec_custom".into(),
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let addr = sandbox.local_addr();
    assert_eq!(sandbox.base_url(), format!("http://{addr}"));
    assert_eq!(sandbox.dummy_base_url(), format!("http://{addr}/dummy"));
    let http = client(Duration::from_secs(10));
    let res = http
        .post(format!("{}/v1/charges", sandbox.dummy_base_url()))
        .bearer_auth("sk_custom")
        .json(&charge_body("4111111111111111", false))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = http
        .get(format!("{}/elsewhere", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    sandbox.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_under_multi_thread_tokio_and_drop_stops() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let addr = sandbox.local_addr();
    let res = client(Duration::from_secs(10))
        .get(format!("{}/v1/charges/ch_x", sandbox.dummy_base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    drop(sandbox);
    assert!(refused_connection(addr).await, "still listening after drop");
}

#[tokio::test]
async fn stop_with_a_request_pending() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let base = sandbox.dummy_base_url();
    let http = client(Duration::from_secs(10));
    http.post(format!("{base}/_sandbox/faults"))
        .json(&json!({"mode": "timeout"}))
        .send()
        .await
        .unwrap();
    let pending = tokio::spawn(async move {
        client(Duration::from_secs(40))
            .get(format!("{base}/v1/charges/ch_x"))
            .bearer_auth(KEY)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let addr = sandbox.local_addr();
    sandbox.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stop waited for the pending request"
    );
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let pending = tokio::time::timeout(Duration::from_secs(5), pending).await;
    assert!(
        matches!(pending, Ok(Ok(Err(_)))),
        "pending request not dropped"
    );
}
