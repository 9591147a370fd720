//! Drives a running sandbox's HiPay Enterprise simulator over real HTTP, as
//! a connector and a shopper's browser would (docs/sandbox/hipay.md).

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use passerelle_sandbox::{HipayConfig, Sandbox, SandboxConfig, SandboxHandle, SpecSource};
use reqwest::{header, redirect, Client, Response, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha512};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};
use url::Url;

const USER: &str = "passerelle_sandbox";
const PASSWORD: &str = "passerelle_sandbox_password";
const PASSPHRASE: &str = "passerelle_sandbox_passphrase";
const SHOP: &str = "https://shop.example";

struct Env {
    _sandbox: SandboxHandle,
    base: String,
    http: Client,
}

/// HiPay's documents when present (`$PASSERELLE_PSP_SPECS`, else
/// `../shared/psp-specs` beside the clone); without them the simulator
/// validates with its transcription of the documents only. See
/// `passerelle_sandbox::test_specs`.
fn specs() -> SpecSource {
    passerelle_sandbox::test_specs::sandbox_specs()
}

/// Whether this run has HiPay's documents; `false` after one line saying
/// which test skips those checks and how to run them (a failure when
/// `CI=true`).
fn have_specs() -> bool {
    passerelle_sandbox::test_specs::specs_for("hipay/gateway.yaml").is_some()
}

/// A valid `browser_info` as HiPay's PHP SDK sends it: one JSON field
/// (`BrowserInfo::toJson`), `timezone` a string as gateway.yaml says.
const BROWSER_INFO: &str = r#"{"java_enabled":false,"javascript_enabled":true,"ipaddr":"127.0.0.1","http_accept":"text/html","http_user_agent":"Mozilla/5.0","language":"fr-FR","color_depth":24,"screen_height":1080,"screen_width":1920,"timezone":"-60"}"#;

/// The sandbox's PSD2 card (docs/sandbox/hipay.md).
const PSD2_CARD: &str = "4000027600000009";

async fn env_with(hipay: HipayConfig) -> Env {
    let sandbox = Sandbox::start(SandboxConfig {
        hipay,
        specs: specs(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let base = sandbox.hipay_base_url();
    Env {
        _sandbox: sandbox,
        base,
        http: client(Duration::from_secs(10)),
    }
}

async fn env() -> Env {
    env_with(HipayConfig::default()).await
}

fn client(timeout: Duration) -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

static ORDER_SEQ: AtomicU32 = AtomicU32::new(1);

fn order_id() -> String {
    format!(
        "ORDER_{}_{}",
        std::process::id(),
        ORDER_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Sets or replaces a field.
fn set(fields: &mut Vec<(String, String)>, name: &str, value: &str) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_owned(), value.to_owned()));
}

fn remove(fields: &mut Vec<(String, String)>, name: &str) {
    fields.retain(|(k, _)| k != name);
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post_form(&self, path: &str, fields: &[(String, String)]) -> Response {
        self.http
            .post(self.url(path))
            .basic_auth(USER, Some(PASSWORD))
            .header(header::ACCEPT, "application/json")
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .basic_auth(USER, Some(PASSWORD))
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .unwrap()
    }

    async fn token_with(&self, number: &str, holder: &str) -> Value {
        let res = self
            .post_form(
                "/vault/v2/token/create",
                &owned(&[
                    ("card_number", number),
                    ("card_expiry_month", "12"),
                    ("card_expiry_year", "2035"),
                    ("card_holder", holder),
                    ("cvc", "123"),
                    ("multi_use", "1"),
                ]),
            )
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn token(&self, number: &str) -> String {
        self.token_with(number, "John Doe").await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The fields of an order paid with `token`.
    fn order_fields(&self, token: &str, operation: &str, amount: &str) -> Vec<(String, String)> {
        let orderid = order_id();
        owned(&[
            ("orderid", &orderid),
            ("operation", operation),
            ("payment_product", "visa"),
            ("description", "Sandbox order"),
            ("currency", "EUR"),
            ("amount", amount),
            ("cardtoken", token),
            ("ipaddr", "127.0.0.1"),
            ("language", "fr_FR"),
            ("email", "john.doe@example.com"),
            ("accept_url", &format!("{SHOP}/accept?cart=7")),
            ("decline_url", &format!("{SHOP}/decline")),
            ("pending_url", &format!("{SHOP}/pending")),
            ("exception_url", &format!("{SHOP}/exception")),
            ("cancel_url", &format!("{SHOP}/cancel")),
        ])
    }

    /// The fields of an order asking for 3-D Secure when available.
    fn order_3ds(&self, token: &str, operation: &str, amount: &str) -> Vec<(String, String)> {
        let mut fields = self.order_fields(token, operation, amount);
        set(&mut fields, "authentication_indicator", "1");
        fields
    }

    async fn order(&self, fields: &[(String, String)]) -> Response {
        self.post_form("/gateway/v1/order", fields).await
    }

    async fn order_ok(&self, fields: &[(String, String)]) -> Value {
        let res = self.order(fields).await;
        let status = res.status();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// An authorized (or, for "Sale", captured) transaction of `amount`.
    async fn paid(&self, operation: &str, amount: &str) -> String {
        let token = self.token("4111111111111111").await;
        let tx = self
            .order_ok(&self.order_fields(&token, operation, amount))
            .await;
        assert_eq!(tx["state"], "completed", "{tx}");
        tx["transactionReference"].as_str().unwrap().to_owned()
    }

    async fn maintenance(&self, reference: &str, fields: &[(&str, &str)]) -> Response {
        self.post_form(
            &format!("/gateway/v1/maintenance/transaction/{reference}"),
            &owned(fields),
        )
        .await
    }

    async fn maintenance_ok(&self, reference: &str, fields: &[(&str, &str)]) -> Value {
        let res = self.maintenance(reference, fields).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    async fn transaction(&self, reference: &str) -> Value {
        let res = self
            .get(&format!("/gateway/v1/transaction/{reference}"))
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        body["transaction"].clone()
    }

    async fn fault(&self, mode: &str, count: u32) {
        let res = self
            .http
            .post(self.url("/_sandbox/faults"))
            .json(&serde_json::json!({"account": USER, "mode": mode, "count": count}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

async fn expect_error(res: Response, status: StatusCode, code: u64) -> Value {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["description"].is_string(), "{body}");
    body
}

// ---------------------------------------------------------------------------
// Independent signature checks

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The `hash` of a redirect URL as a merchant checks it: every query
/// parameter but `hash`, non-empty, sorted by name, name+value+passphrase.
fn check_redirect_hash(url: &Url) {
    let mut params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let hash = params
        .iter()
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.clone())
        .expect("no hash parameter");
    params.retain(|(k, v)| k != "hash" && !v.is_empty());
    params.sort();
    let mut text = String::new();
    for (k, v) in &params {
        text.push_str(k);
        text.push_str(v);
        text.push_str(PASSPHRASE);
    }
    assert_eq!(
        hash,
        sha256_hex(text.as_bytes()),
        "bad redirect hash in {url}"
    );
    // A tampered parameter no longer matches.
    let mut tampered = url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "orderid" {
                (k, format!("{v}0"))
            } else {
                (k, v)
            }
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let mut params: Vec<(String, String)> = tampered.query_pairs().into_owned().collect();
    params.retain(|(k, v)| k != "hash" && !v.is_empty());
    params.sort();
    let text: String = params
        .iter()
        .map(|(k, v)| format!("{k}{v}{PASSPHRASE}"))
        .collect();
    assert_ne!(hash, sha256_hex(text.as_bytes()));
}

fn query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn location(res: &Response) -> Url {
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    Url::parse(res.headers()[header::LOCATION].to_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------
// Tokenization

#[tokio::test]
async fn tokenization() {
    let env = env().await;
    let res = env
        .post_form(
            "/vault/v2/token/create",
            &owned(&[
                ("card_number", "4111111111111111"),
                ("card_expiry_month", "3"),
                ("card_expiry_year", "2035"),
                ("card_holder", "Cathy Doe"),
                ("cvc", "514"),
            ]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let text = res.text().await.unwrap();
    assert!(!text.contains("4111111111111111"), "echoes the card number");
    let token: Value = serde_json::from_str(&text).unwrap();
    let t = token["token"].as_str().unwrap();
    assert_eq!(t.len(), 64);
    assert_eq!(token["brand"], "VISA");
    assert_eq!(token["pan"], "xxxxxxxxxxxx1111");
    assert_eq!(token["card_holder"], "Cathy Doe");
    assert_eq!(token["card_expiry_month"], "03");
    assert_eq!(token["card_expiry_year"], "2035");
    assert_eq!(token["request_id"], "0");
    for field in ["card_hash", "card_id", "issuer", "country"] {
        assert!(
            token[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}"
        );
    }
    let mc = env.token_with("5399999999999999", "A B").await;
    assert_eq!(mc["brand"], "MASTERCARD");

    // Lookup, then delete.
    let res = env.get(&format!("/vault/v2/token/{t}?request_id=0")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let looked: Value = res.json().await.unwrap();
    assert_eq!(looked["token"], t);
    let res = env
        .http
        .delete(env.url("/vault/v2/token/"))
        .basic_auth(USER, Some(PASSWORD))
        .form(&[("card_token", t)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = env.get(&format!("/vault/v2/token/{t}?request_id=0")).await;
    expect_error(res, StatusCode::NOT_FOUND, 404).await;

    // Invalid cards.
    let base = owned(&[
        ("card_number", "4111111111111111"),
        ("card_expiry_month", "12"),
        ("card_expiry_year", "2035"),
        ("card_holder", "A B"),
    ]);
    let mut bad = base.clone();
    set(&mut bad, "card_number", "4111111111111112");
    expect_error(
        env.post_form("/vault/v2/token/create", &bad).await,
        StatusCode::BAD_REQUEST,
        1_010_201,
    )
    .await;
    let mut bad = base.clone();
    set(&mut bad, "card_expiry_year", "2001");
    expect_error(
        env.post_form("/vault/v2/token/create", &bad).await,
        StatusCode::BAD_REQUEST,
        1_010_201,
    )
    .await;
    let mut bad = base.clone();
    set(&mut bad, "cvc", "12");
    expect_error(
        env.post_form("/vault/v2/token/create", &bad).await,
        StatusCode::BAD_REQUEST,
        1_010_201,
    )
    .await;
    let mut bad = base.clone();
    set(&mut bad, "card_expiry_month", "twelve");
    let body = expect_error(
        env.post_form("/vault/v2/token/create", &bad).await,
        StatusCode::BAD_REQUEST,
        1_010_204,
    )
    .await;
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("card_expiry_month"),
        "{body}"
    );
    let mut bad = base.clone();
    remove(&mut bad, "card_holder");
    let body = expect_error(
        env.post_form("/vault/v2/token/create", &bad).await,
        StatusCode::BAD_REQUEST,
        1_010_101,
    )
    .await;
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("card_holder"),
        "{body}"
    );
}

#[tokio::test]
async fn authentication_and_headers() {
    let env = env().await;
    let token = env.token("4111111111111111").await;
    let fields = env.order_fields(&token, "Authorization", "10.00");
    for req in [
        env.http.post(env.url("/gateway/v1/order")).form(&fields),
        env.http
            .post(env.url("/gateway/v1/order"))
            .basic_auth(USER, Some("wrong"))
            .form(&fields),
        env.http
            .post(env.url("/gateway/v1/order"))
            .basic_auth("someone", Some(PASSWORD))
            .form(&fields),
    ] {
        let body = expect_error(
            req.send().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            1_000_001,
        )
        .await;
        assert_eq!(
            body["message"],
            "Incorrect Credentials _ Username and/or password is incorrect"
        );
    }
    // JSON only.
    let res = env
        .http
        .post(env.url("/gateway/v1/order"))
        .basic_auth(USER, Some(PASSWORD))
        .header(header::ACCEPT, "application/xml")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_ACCEPTABLE);
    // A JSON body is not a form.
    let res = env
        .http
        .post(env.url("/gateway/v1/order"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&serde_json::json!({"orderid": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_201).await;
    // Unknown paths and methods.
    let res = env.get("/gateway/v1/nothing").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = env.get("/gateway/v1/order").await;
    expect_error(res, StatusCode::METHOD_NOT_ALLOWED, 1_010_001).await;
}

// ---------------------------------------------------------------------------
// Scenarios

#[tokio::test]
async fn authorization_and_sale() {
    let env = env().await;
    let token = env.token("4111111111111111").await;
    let fields = env.order_fields(&token, "Authorization", "49.90");
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["state"], "completed");
    assert_eq!(tx["status"], "116");
    assert_eq!(tx["message"], "Authorized");
    assert_eq!(tx["authorizedAmount"], "49.90");
    assert_eq!(tx["capturedAmount"], "0.00");
    assert_eq!(tx["refundedAmount"], "0.00");
    assert_eq!(tx["currency"], "EUR");
    assert_eq!(tx["decimals"], "2");
    assert_eq!(tx["paymentProduct"], "visa");
    assert_eq!(tx["paymentMethod"]["pan"], "************1111");
    assert_eq!(tx["paymentMethod"]["token"], token.as_str());
    assert_eq!(tx["order"]["id"], fields[0].1.as_str());
    assert_eq!(tx["order"]["amount"], "49.90");
    assert!(
        tx.get("forwardUrl").is_none() && tx.get("reason").is_none(),
        "{tx}"
    );
    let reference = tx["transactionReference"].as_str().unwrap();
    assert_eq!(reference.len(), 12);

    // Status by reference and by order id round-trip.
    let got = env.transaction(reference).await;
    assert_eq!(got["transactionReference"], reference);
    assert_eq!(got["authorizedAmount"], "49.90");
    let res = env
        .get(&format!("/gateway/v1/transaction?orderid={}", fields[0].1))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let by_order: Value = res.json().await.unwrap();
    assert_eq!(by_order["transaction"]["transactionReference"], reference);
    let res = env.get("/gateway/v1/transaction?orderid=NOPE").await;
    expect_error(res, StatusCode::NOT_FOUND, 3_000_001).await;
    let res = env.get("/gateway/v1/transaction/800000000000").await;
    expect_error(res, StatusCode::NOT_FOUND, 3_000_002).await;

    // Sale captures at once; Mastercard; JPY has no decimals.
    let mc = env.token("5399999999999999").await;
    let mut fields = env.order_fields(&mc, "Sale", "1000");
    set(&mut fields, "payment_product", "mastercard");
    set(&mut fields, "currency", "JPY");
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["status"], "118");
    assert_eq!(tx["message"], "Captured");
    assert_eq!(tx["capturedAmount"], "1000");
    assert_eq!(tx["decimals"], "0");
}

#[tokio::test]
async fn refused_and_error_cards() {
    let env = env().await;
    for number in ["4150551403657424", "5144144373781246"] {
        let token = env.token(number).await;
        let mut fields = env.order_fields(&token, "Authorization", "10.00");
        if number.starts_with('5') {
            set(&mut fields, "payment_product", "mastercard");
        }
        let tx = env.order_ok(&fields).await;
        assert_eq!(tx["state"], "declined");
        assert_eq!(tx["status"], "163");
        assert_eq!(tx["message"], "Authorization Refused");
        assert_eq!(tx["reason"]["code"], "4010202");
        assert_eq!(tx["reason"]["message"], "Invalid Card Number");
        assert_eq!(tx["authorizedAmount"], "0.00");
        // Nothing to capture.
        let reference = tx["transactionReference"].as_str().unwrap();
        let res = env
            .maintenance(reference, &[("operation", "capture")])
            .await;
        expect_error(res, StatusCode::BAD_REQUEST, 3_020_102).await;
    }
    let token = env.token_with("4111111111111111", "ERROR").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tx = env
        .order_ok(&env.order_fields(&token, "Authorization", "10.00"))
        .await;
    assert_eq!(tx["state"], "error");
    assert_eq!(tx["reason"]["code"], "4000004");
}

#[tokio::test]
async fn three_d_secure() {
    let env = env().await;
    let token = env.token("4242424242424242").await;

    // Approve: the first form.
    let fields = env.order_3ds(&token, "Sale", "25.00");
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["state"], "forwarding");
    assert_eq!(tx["status"], "140");
    assert_eq!(tx["message"], "Authentication requested");
    let forward = tx["forwardUrl"].as_str().unwrap().to_owned();
    assert!(
        forward.starts_with(&format!("{}/forward/", env.base)),
        "{forward}"
    );
    let reference = tx["transactionReference"].as_str().unwrap().to_owned();
    let page = env.http.get(&forward).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("25.00 EUR") && html.contains("4242"));
    assert!(!html.contains("4242424242424242"));
    let actions = form_actions(&html);
    assert_eq!(actions.len(), 3, "{html}");
    assert!(actions[0].ends_with("/approve") && actions[1].ends_with("/fail"));
    let res = env.http.post(&actions[0]).send().await.unwrap();
    let back = location(&res);
    assert_eq!(back.path(), "/accept");
    check_redirect_hash(&back);
    let q = query(&back);
    assert_eq!(q["cart"], "7");
    assert_eq!(q["orderid"], fields[0].1);
    assert_eq!(q["reference"], reference);
    assert_eq!(q["state"], "completed");
    assert_eq!(q["status"], "118");
    assert_eq!(q["cardpan"], "************4242");
    assert_eq!(q["veres"], "Y");
    assert_eq!(q["pares"], "Y");
    assert_eq!(q["eci3ds"], "5");
    let got = env.transaction(&reference).await;
    assert_eq!(got["status"], "118");
    assert_eq!(got["capturedAmount"], "25.00");
    assert_eq!(got["threeDSecure"]["authenticationStatus"], "Y");
    // The page is used up.
    let again = env.http.post(&actions[0]).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        env.http.get(&forward).send().await.unwrap().status(),
        StatusCode::CONFLICT
    );

    // Fail: the second form.
    let tx = env
        .order_ok(&env.order_3ds(&token, "Authorization", "25.00"))
        .await;
    let html = env
        .http
        .get(tx["forwardUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = env.http.post(&form_actions(&html)[1]).send().await.unwrap();
    let back = location(&res);
    assert_eq!(back.path(), "/decline");
    check_redirect_hash(&back);
    assert_eq!(query(&back)["status"], "109");
    let got = env
        .transaction(tx["transactionReference"].as_str().unwrap())
        .await;
    assert_eq!(got["state"], "declined");
    assert_eq!(got["status"], "109");
    assert_eq!(got["message"], "Authentication Failed");

    // Shopper cancels: the third form.
    let tx = env
        .order_ok(&env.order_3ds(&token, "Authorization", "25.00"))
        .await;
    let html = env
        .http
        .get(tx["forwardUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let res = env.http.post(&form_actions(&html)[2]).send().await.unwrap();
    let back = location(&res);
    assert_eq!(back.path(), "/cancel");
    check_redirect_hash(&back);
    assert_eq!(query(&back)["status"], "115");

    // 5300 0000 0000 0006: challenge without browser_info, frictionless with it.
    let mc = env.token("5300000000000006").await;
    let mut fields = env.order_3ds(&mc, "Authorization", "25.00");
    set(&mut fields, "payment_product", "mastercard");
    assert_eq!(env.order_ok(&fields).await["state"], "forwarding");
    let mut fields = env.order_3ds(&mc, "Authorization", "25.00");
    set(&mut fields, "payment_product", "mastercard");
    set(&mut fields, "browser_info", BROWSER_INFO);
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["state"], "completed");
    assert_eq!(tx["threeDSecure"]["eci"], "2");
    // browser_info must carry language.
    let mut fields = env.order_3ds(&mc, "Authorization", "25.00");
    set(&mut fields, "payment_product", "mastercard");
    set(&mut fields, "browser_info[javascript_enabled]", "true");
    expect_error(env.order(&fields).await, StatusCode::BAD_REQUEST, 1_010_101).await;
}

/// `authentication_indicator` 0, the documented default, bypasses 3-D
/// Secure: the 3-D Secure cards are authorized without it.
#[tokio::test]
async fn three_d_secure_bypassed_by_default() {
    let env = env().await;
    for card in ["4242424242424242", "5300000000000006"] {
        let token = env.token(card).await;
        for indicator in [None, Some("0")] {
            let mut fields = env.order_fields(&token, "Authorization", "12.00");
            if let Some(i) = indicator {
                set(&mut fields, "authentication_indicator", i);
            }
            let tx = env.order_ok(&fields).await;
            assert_eq!(tx["state"], "completed", "{card} {indicator:?}: {tx}");
            assert_eq!(tx["status"], "116");
            assert_eq!(tx["threeDSecure"]["enrollmentStatus"], "");
            assert_eq!(tx["threeDSecure"]["authenticationStatus"], "");
        }
    }
    // Asked for, an unenrolled card says so.
    let token = env.token("4111111111111111").await;
    let tx = env
        .order_ok(&env.order_3ds(&token, "Authorization", "12.00"))
        .await;
    assert_eq!(tx["status"], "116");
    assert_eq!(tx["threeDSecure"]["enrollmentStatus"], "N");
}

/// The PSD2 card's issuer soft-declines a payment without strong
/// authentication (178 "Soft Declined", state `declined`), and challenges
/// one sent with `authentication_indicator` 1 or 2 and the browser data.
#[tokio::test]
async fn psd2_card_is_soft_declined_without_authentication() {
    let env = env().await;
    let (url, mut rx) = receiver().await;
    let token = env.token(PSD2_CARD).await;
    for (indicator, browser) in [
        (None, false),
        (None, true),
        (Some("0"), true),
        (Some("1"), false),
        (Some("2"), false),
    ] {
        let mut fields = env.order_fields(&token, "Authorization", "20.00");
        set(&mut fields, "notify_url", &url);
        if let Some(i) = indicator {
            set(&mut fields, "authentication_indicator", i);
        }
        if browser {
            set(&mut fields, "browser_info", BROWSER_INFO);
        }
        let tx = env.order_ok(&fields).await;
        assert_eq!(tx["state"], "declined", "{indicator:?} {browser}: {tx}");
        assert_eq!(tx["status"], "178");
        assert_eq!(tx["message"], "Soft Declined");
        assert!(tx.get("forwardUrl").is_none(), "{tx}");
        assert_eq!(tx["threeDSecure"]["enrollmentStatus"], "", "{tx}");
        let n = next(&mut rx).await;
        assert_eq!(n["status"], "178");
        assert_eq!(n["state"], "declined");
        // A soft decline is an attempt: the order may be paid again.
        assert_eq!(tx["attemptId"], "1");
    }
    for indicator in ["1", "2"] {
        let mut fields = env.order_fields(&token, "Authorization", "20.00");
        set(&mut fields, "authentication_indicator", indicator);
        set(&mut fields, "browser_info", BROWSER_INFO);
        let tx = env.order_ok(&fields).await;
        assert_eq!(tx["state"], "forwarding", "{indicator}: {tx}");
        assert_eq!(tx["status"], "140");
        let html = env
            .http
            .get(tx["forwardUrl"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let back = location(&env.http.post(&form_actions(&html)[0]).send().await.unwrap());
        assert_eq!(back.path(), "/accept");
        let got = env
            .transaction(tx["transactionReference"].as_str().unwrap())
            .await;
        assert_eq!(got["status"], "116");
        assert_eq!(got["threeDSecure"]["authenticationStatus"], "Y");
    }
    // Retried with authentication, a soft-declined order goes through.
    let mut fields = env.order_fields(&token, "Sale", "20.00");
    assert_eq!(env.order_ok(&fields).await["status"], "178");
    set(&mut fields, "authentication_indicator", "1");
    set(&mut fields, "browser_info", BROWSER_INFO);
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["state"], "forwarding");
    assert_eq!(tx["attemptId"], "2");

    // On the hosted page HiPay collects the browser data itself: the
    // indicator decides.
    for (indicator, expect) in [("0", "/decline"), ("1", "/forward/")] {
        let orderid = order_id();
        let fields = owned(&[
            ("orderid", &orderid),
            ("description", "Hosted PSD2 order"),
            ("currency", "EUR"),
            ("amount", "9.00"),
            ("authentication_indicator", indicator),
            ("accept_url", &format!("{SHOP}/accept")),
            ("decline_url", &format!("{SHOP}/decline")),
        ]);
        let answer: Value = env
            .post_form("/api/v1/hpayment", &fields)
            .await
            .json()
            .await
            .unwrap();
        let page = answer["forwardUrl"].as_str().unwrap();
        let html = env
            .http
            .get(page)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut inputs = first_form_inputs(&html);
        set(&mut inputs, "card_number", PSD2_CARD);
        let res = env
            .http
            .post(&form_actions(&html)[0])
            .form(&inputs)
            .send()
            .await
            .unwrap();
        let to = location(&res);
        assert!(to.path().contains(expect), "{indicator}: {to}");
        if indicator == "0" {
            assert_eq!(query(&to)["status"], "178");
            check_redirect_hash(&to);
        }
    }
}

/// The `action` of each form of a page, in order.
fn form_actions(html: &str) -> Vec<String> {
    html.split("<form")
        .skip(1)
        .map(|f| {
            let start = f.find("action=\"").unwrap() + 8;
            let end = start + f[start..].find('"').unwrap();
            f[start..end].replace("&amp;", "&")
        })
        .collect()
}

/// The named input values of the first form of a page.
fn first_form_inputs(html: &str) -> Vec<(String, String)> {
    let form = html.split("<form").nth(1).unwrap();
    let form = &form[..form.find("</form>").unwrap()];
    form.split("<input")
        .skip(1)
        .map(|i| {
            let attr = |name: &str| {
                let key = format!("{name}=\"");
                let start = i.find(&key).unwrap() + key.len();
                let end = start + i[start..].find('"').unwrap();
                i[start..end].to_owned()
            };
            (attr("name"), attr("value"))
        })
        .collect()
}

#[tokio::test]
async fn pending_challenge() {
    let env = env().await;
    let pending = env.token_with("4111111111111111", "PENDING").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tx = env
        .order_ok(&env.order_fields(&pending, "Sale", "30.00"))
        .await;
    assert_eq!(tx["state"], "pending");
    assert_eq!(tx["status"], "112");
    assert_eq!(tx["fraudScreening"]["result"], "CHALLENGED");
    let reference = tx["transactionReference"].as_str().unwrap();
    let op = env
        .maintenance_ok(reference, &[("operation", "acceptChallenge")])
        .await;
    assert_eq!(op["status"], "118");
    let got = env.transaction(reference).await;
    assert_eq!(got["state"], "completed");
    assert_eq!(got["capturedAmount"], "30.00");
    let res = env
        .maintenance(reference, &[("operation", "acceptChallenge")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_401).await;

    let tx = env
        .order_ok(&env.order_fields(&pending, "Authorization", "30.00"))
        .await;
    let reference = tx["transactionReference"].as_str().unwrap();
    let op = env
        .maintenance_ok(reference, &[("operation", "denyChallenge")])
        .await;
    assert_eq!(op["status"], "111");
    assert_eq!(env.transaction(reference).await["state"], "declined");
}

#[tokio::test]
async fn hosted_page() {
    let env = env().await;
    let orderid = order_id();
    let fields = owned(&[
        ("orderid", &orderid),
        ("operation", "Authorization"),
        ("description", "Hosted order"),
        ("currency", "EUR"),
        ("amount", "12.50"),
        ("accept_url", &format!("{SHOP}/accept")),
        ("decline_url", &format!("{SHOP}/decline")),
        ("cancel_url", &format!("{SHOP}/cancel")),
        ("language", "en_GB"),
        ("authentication_indicator", "1"),
    ]);
    let res = env.post_form("/api/v1/hpayment", &fields).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["order"]["id"], orderid.as_str());
    assert_eq!(answer["order"]["amount"], "12.50");
    let page_url = answer["forwardUrl"].as_str().unwrap().to_owned();
    assert!(page_url.starts_with(&format!("{}/pay/", env.base)));
    let html = env
        .http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("12.50 EUR"));
    let actions = form_actions(&html);
    assert_eq!(actions.len(), 2);
    // The first form, as the browser would submit it, pays.
    let inputs = first_form_inputs(&html);
    let res = env
        .http
        .post(&actions[0])
        .form(&inputs)
        .send()
        .await
        .unwrap();
    let back = location(&res);
    assert_eq!(back.path(), "/accept");
    check_redirect_hash(&back);
    let q = query(&back);
    assert_eq!(q["orderid"], orderid);
    assert_eq!(q["status"], "116");
    let tx = env.transaction(&q["reference"]).await;
    assert_eq!(tx["authorizedAmount"], "12.50");
    assert_eq!(tx["paymentProduct"], "visa");
    // Paid: the page is closed, and the order id is used up.
    assert_eq!(
        env.http.get(&page_url).send().await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let res = env.post_form("/api/v1/hpayment", &fields).await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_010_004).await;

    // A 3-D Secure card goes through the 3-D Secure page; a bad card stays on the page.
    let mut fields2 = fields.clone();
    set(&mut fields2, "orderid", &order_id());
    let answer: Value = env
        .post_form("/api/v1/hpayment", &fields2)
        .await
        .json()
        .await
        .unwrap();
    let page_url = answer["forwardUrl"].as_str().unwrap();
    let html = env
        .http
        .get(page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut inputs = first_form_inputs(&html);
    set(&mut inputs, "card_number", "4111111111111112");
    let res = env
        .http
        .post(&form_actions(&html)[0])
        .form(&inputs)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    set(&mut inputs, "card_number", "4242 4242 4242 4242");
    let res = env
        .http
        .post(&form_actions(&html)[0])
        .form(&inputs)
        .send()
        .await
        .unwrap();
    let forward = location(&res);
    assert!(forward.path().contains("/forward/"));
    let html = env
        .http
        .get(forward.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let back = location(&env.http.post(&form_actions(&html)[0]).send().await.unwrap());
    assert_eq!(back.path(), "/accept");
    check_redirect_hash(&back);

    // The shopper cancels: the second form.
    let mut fields3 = fields.clone();
    set(&mut fields3, "orderid", &order_id());
    let answer: Value = env
        .post_form("/api/v1/hpayment", &fields3)
        .await
        .json()
        .await
        .unwrap();
    let page_url = answer["forwardUrl"].as_str().unwrap();
    let html = env
        .http
        .get(page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let back = location(&env.http.post(&form_actions(&html)[1]).send().await.unwrap());
    assert_eq!(back.path(), "/cancel");
    check_redirect_hash(&back);
    assert_eq!(
        query(&back)["orderid"],
        fields3.iter().find(|(k, _)| k == "orderid").unwrap().1
    );
}

// ---------------------------------------------------------------------------
// Maintenance

#[tokio::test]
async fn captures() {
    let env = env().await;
    let reference = env.paid("Authorization", "100.00").await;
    let op = env
        .maintenance_ok(
            &reference,
            &[
                ("operation", "capture"),
                ("amount", "30.00"),
                ("currency", "EUR"),
            ],
        )
        .await;
    assert_eq!(op["operation"], "capture");
    assert_eq!(op["status"], "118");
    assert_eq!(op["message"], "Captured");
    assert_eq!(op["transactionReference"], reference.as_str());
    assert_eq!(op["authorizedAmount"], "100.00");
    assert_eq!(op["capturedAmount"], "30.00");
    assert_eq!(op["refundedAmount"], "0.00");
    let tx = env.transaction(&reference).await;
    assert_eq!(tx["status"], "119");
    assert_eq!(tx["message"], "Partially Captured");
    // More than what remains.
    let res = env
        .maintenance(&reference, &[("operation", "capture"), ("amount", "70.01")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_110).await;
    let res = env
        .maintenance(
            &reference,
            &[("operation", "capture"), ("amount", "100.01")],
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_109).await;
    let res = env
        .maintenance(&reference, &[("operation", "capture"), ("amount", "0.00")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_108).await;
    let res = env
        .maintenance(&reference, &[("operation", "capture"), ("amount", "1.001")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_205).await;
    let res = env
        .maintenance(&reference, &[("operation", "capture"), ("currency", "USD")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_105).await;
    // Without amount: the rest.
    let op = env
        .maintenance_ok(&reference, &[("operation", "capture")])
        .await;
    assert_eq!(op["capturedAmount"], "100.00");
    assert_eq!(env.transaction(&reference).await["status"], "118");
    let res = env
        .maintenance(&reference, &[("operation", "capture")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_106).await;
    // A captured payment cannot be cancelled.
    let res = env
        .maintenance(&reference, &[("operation", "cancel")])
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, 3_020_401).await;
    assert_eq!(body["message"], "Action denied : Wrong transaction status");
    // Unknown transaction, unsupported operation, invalid operation.
    let res = env
        .maintenance("800000000001", &[("operation", "capture")])
        .await;
    expect_error(res, StatusCode::NOT_FOUND, 3_000_002).await;
    let res = env
        .maintenance(&reference, &[("operation", "finalize")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_000_101).await;
    let res = env.maintenance(&reference, &[("operation", "void")]).await;
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_201).await;
    let res = env.maintenance(&reference, &[("amount", "1.00")]).await;
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_101).await;
}

#[tokio::test]
async fn cancels() {
    let env = env().await;
    let reference = env.paid("Authorization", "40.00").await;
    let op = env
        .maintenance_ok(&reference, &[("operation", "cancel")])
        .await;
    assert_eq!(op["status"], "175");
    assert_eq!(op["message"], "Authorization Cancellation requested");
    let tx = env.transaction(&reference).await;
    assert_eq!(tx["status"], "115");
    assert_eq!(tx["message"], "Cancelled");
    let res = env
        .maintenance(&reference, &[("operation", "cancel")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_403).await;
    let res = env
        .maintenance(&reference, &[("operation", "capture")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_111).await;
    let res = env
        .maintenance(&reference, &[("operation", "refund")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_202).await;
    // Partially captured: no cancel either.
    let reference = env.paid("Authorization", "40.00").await;
    env.maintenance_ok(&reference, &[("operation", "capture"), ("amount", "10.00")])
        .await;
    let res = env
        .maintenance(&reference, &[("operation", "cancel")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_401).await;
}

#[tokio::test]
async fn refunds() {
    let env = env().await;
    // Not captured yet.
    let auth = env.paid("Authorization", "10.00").await;
    let res = env
        .maintenance(&auth, &[("operation", "refund"), ("amount", "1.00")])
        .await;
    let body = expect_error(res, StatusCode::BAD_REQUEST, 3_020_202).await;
    assert_eq!(
        body["message"],
        "Operation Not Permitted : transaction not captured"
    );

    let reference = env.paid("Sale", "100.00").await;
    let op = env
        .maintenance_ok(
            &reference,
            &[
                ("operation", "refund"),
                ("amount", "30.00"),
                ("currency", "EUR"),
            ],
        )
        .await;
    assert_eq!(op["status"], "124");
    assert_eq!(op["message"], "Refund Requested");
    assert_eq!(op["refundedAmount"], "30.00");
    assert_eq!(op["capturedAmount"], "100.00");
    assert_eq!(env.transaction(&reference).await["status"], "126");
    let op = env
        .maintenance_ok(&reference, &[("operation", "refund"), ("amount", "45.50")])
        .await;
    assert_eq!(op["refundedAmount"], "75.50");
    // One over what remains.
    let res = env
        .maintenance(&reference, &[("operation", "refund"), ("amount", "24.51")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_210).await;
    let res = env
        .maintenance(&reference, &[("operation", "refund"), ("amount", "100.01")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_209).await;
    let res = env
        .maintenance(&reference, &[("operation", "refund"), ("currency", "GBP")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_205).await;
    // Up to the total.
    let op = env
        .maintenance_ok(&reference, &[("operation", "refund"), ("amount", "24.50")])
        .await;
    assert_eq!(op["refundedAmount"], "100.00");
    let tx = env.transaction(&reference).await;
    assert_eq!(tx["status"], "125");
    assert_eq!(tx["message"], "Refunded");
    let res = env
        .maintenance(&reference, &[("operation", "refund"), ("amount", "0.01")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_206).await;

    // Refund of a partial capture, without amount: what was captured.
    let reference = env.paid("Authorization", "50.00").await;
    env.maintenance_ok(&reference, &[("operation", "capture"), ("amount", "20.00")])
        .await;
    let op = env
        .maintenance_ok(&reference, &[("operation", "refund")])
        .await;
    assert_eq!(op["refundedAmount"], "20.00");
    assert_eq!(env.transaction(&reference).await["status"], "125");
}

/// gateway.yaml: `operation_id` is the "Operation merchant ID. This value
/// will be returned to merchant with the notifications related to this
/// operation." A label, not an idempotency key: a repeated request acts
/// again, and the notifications carry `operation[...]`.
#[tokio::test]
async fn operation_id_is_a_label_echoed_in_notifications() {
    let env = env().await;
    let (url, mut rx) = receiver().await;
    let token = env.token("4111111111111111").await;
    let mut fields = env.order_fields(&token, "Authorization", "60.00");
    set(&mut fields, "notify_url", &url);
    let tx = env.order_ok(&fields).await;
    let reference = tx["transactionReference"].as_str().unwrap().to_owned();
    assert_eq!(next(&mut rx).await["status"], "116");
    let capture = [
        ("operation", "capture"),
        ("amount", "10.00"),
        ("operation_id", "cap-1"),
    ];
    let first = env.maintenance_ok(&reference, &capture).await;
    assert_eq!(first["capturedAmount"], "10.00");
    for status in ["117", "119"] {
        let n = next(&mut rx).await;
        assert_eq!(n["status"], status);
        assert_eq!(n["operation[type]"], "capture");
        assert_eq!(n["operation[id]"], "cap-1");
        assert_eq!(n["operation[amount]"], "10.00");
        assert_eq!(n["operation[currency]"], "EUR");
        assert!(!n["operation[reference]"].is_empty());
    }
    // The same operation_id again: captured again.
    let second = env.maintenance_ok(&reference, &capture).await;
    assert_eq!(second["capturedAmount"], "20.00");
    assert_eq!(env.transaction(&reference).await["capturedAmount"], "20.00");
    // And with another operation.
    let op = env
        .maintenance_ok(
            &reference,
            &[
                ("operation", "capture"),
                ("amount", "5.00"),
                ("operation_id", "cap-1"),
            ],
        )
        .await;
    assert_eq!(op["capturedAmount"], "25.00");
    // Every request is kept as received, the amount as sent.
    let seen: Value = env
        .http
        .get(env.url(&format!("/_sandbox/transactions/{reference}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let log = seen["sandbox"]["maintenance"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{seen}");
    assert_eq!(log[2]["amount"], "5.00");
    assert_eq!(log[2]["operationId"], "cap-1");
    for _ in 0..4 {
        assert_eq!(next(&mut rx).await["operation[id]"], "cap-1");
    }
    // Without an operation_id, no operation[...] fields.
    env.maintenance_ok(&reference, &[("operation", "capture")])
        .await;
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "117");
    assert!(!n.contains_key("operation[id]"), "{n:?}");
}

#[tokio::test]
async fn order_rules() {
    let env = env().await;
    let token = env.token("4111111111111111").await;
    // An order id is paid once.
    let fields = env.order_fields(&token, "Authorization", "10.00");
    env.order_ok(&fields).await;
    let body = expect_error(env.order(&fields).await, StatusCode::BAD_REQUEST, 3_010_004).await;
    assert_eq!(body["message"], "Duplicate Order");
    // After a refusal the order may be attempted again, three times at most.
    let refused = env.token("4150551403657424").await;
    let mut fields = env.order_fields(&refused, "Authorization", "10.00");
    for attempt in 1..=3 {
        let tx = env.order_ok(&fields).await;
        assert_eq!(tx["state"], "declined");
        assert_eq!(tx["attemptId"], attempt.to_string());
    }
    set(&mut fields, "cardtoken", &token);
    expect_error(env.order(&fields).await, StatusCode::BAD_REQUEST, 3_010_003).await;
    let mut fields = env.order_fields(&refused, "Authorization", "10.00");
    assert_eq!(env.order_ok(&fields).await["state"], "declined");
    set(&mut fields, "cardtoken", &token);
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["state"], "completed");
    assert_eq!(tx["attemptId"], "2");
    // Unknown token, product without a route, amount precision.
    let fields = env.order_fields("deadbeef", "Authorization", "10.00");
    expect_error(env.order(&fields).await, StatusCode::BAD_REQUEST, 3_040_001).await;
    let mut fields = env.order_fields(&token, "Authorization", "10.00");
    set(&mut fields, "payment_product", "paypal");
    expect_error(env.order(&fields).await, StatusCode::BAD_REQUEST, 1_020_001).await;
    let fields = env.order_fields(&token, "Authorization", "10.005");
    expect_error(env.order(&fields).await, StatusCode::BAD_REQUEST, 1_010_205).await;
}

#[tokio::test]
async fn schema_validation() {
    let env = env().await;
    let token = env.token("4111111111111111").await;
    let good = env.order_fields(&token, "Authorization", "10.00");
    for (name, value, code) in [
        ("orderid", None, 1_010_101),
        ("description", None, 1_010_101),
        ("cardtoken", None, 1_010_101),
        ("amount", None, 1_010_101),
        ("currency", Some("EURO"), 1_010_201),
        ("payment_product", Some("visa-gold"), 1_010_201),
        ("operation", Some("Capture"), 1_010_201),
        ("amount", Some("ten"), 1_010_204),
        ("amount", Some("0.50"), 1_010_201),
        ("eci", Some("5"), 1_010_201),
        ("authentication_indicator", Some("4"), 1_010_201),
        ("device_channel", Some("7"), 1_010_201),
    ] {
        let mut fields = good.clone();
        match value {
            None => remove(&mut fields, name),
            Some(v) => set(&mut fields, name, v),
        }
        let res = env.order(&fields).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}={value:?}");
        let body: Value = res.json().await.unwrap();
        // The type error may be reported as a decimal error by HiPay's own check.
        let got = body["code"].as_u64().unwrap();
        assert!(
            got == code || (code == 1_010_204 && got == 1_010_205),
            "{name}={value:?}: {body}"
        );
        assert!(
            body["description"].as_str().unwrap().contains(name),
            "{name}: {body}"
        );
    }
    // hpayment: lengths, URLs, IP addresses.
    let base = owned(&[
        ("orderid", "HP-1"),
        ("description", "d"),
        ("currency", "EUR"),
        ("amount", "10.00"),
    ]);
    for (name, value, code) in [
        ("orderid", "X".repeat(33), 1_010_202),
        ("accept_url", "not a url".to_owned(), 1_010_201),
        ("ipaddr", "300.1.1.1".to_owned(), 1_010_201),
        ("language", "fr_FR_x".to_owned(), 1_010_202),
        ("country", "FRA".to_owned(), 1_010_202),
        ("amount", "1,50".to_owned(), 1_010_201),
    ] {
        let mut fields = base.clone();
        set(&mut fields, name, &value);
        let res = env.post_form("/api/v1/hpayment", &fields).await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
        let body: Value = res.json().await.unwrap();
        let got = body["code"].as_u64().unwrap();
        // The IP address check may be HiPay's own code (1010208), the amount a decimal one.
        assert!(
            got == code || got == 1_010_208 || got == 1_010_205,
            "{name}: {body}"
        );
    }
    let mut fields = base.clone();
    remove(&mut fields, "currency");
    expect_error(
        env.post_form("/api/v1/hpayment", &fields).await,
        StatusCode::BAD_REQUEST,
        1_010_101,
    )
    .await;
    // browser_info, against gateway.yaml strictly: the three lengths the
    // document writes as numeric bounds (color_depth, screen_height,
    // screen_width) are read as digit counts; everything else stands.
    let with_browser = |json: &str| {
        let mut fields = good.clone();
        set(&mut fields, "orderid", &order_id());
        set(&mut fields, "browser_info", json);
        fields
    };
    env.order_ok(&with_browser(BROWSER_INFO)).await;
    if have_specs() {
        for (from, to, code) in [
            (r#""timezone":"-60""#, r#""timezone":-60"#, 1_010_204),
            (
                r#""java_enabled":false"#,
                r#""java_enabled":"no""#,
                1_010_204,
            ),
            (
                r#""screen_height":1080"#,
                r#""screen_height":1234567"#,
                1_010_201,
            ),
            (r#""color_depth":24"#, r#""color_depth":25"#, 1_010_201),
            (r#""color_depth":24"#, r#""color_depth":"deep""#, 1_010_204),
        ] {
            let json = BROWSER_INFO.replace(from, to);
            assert_ne!(json, BROWSER_INFO);
            let body = expect_error(
                env.order(&with_browser(&json)).await,
                StatusCode::BAD_REQUEST,
                code,
            )
            .await;
            assert!(
                body["description"]
                    .as_str()
                    .unwrap()
                    .contains("browser_info"),
                "{to}: {body}"
            );
        }
    }
    // Maintenance currency must be an ISO code HiPay knows.
    let reference = env.paid("Authorization", "10.00").await;
    let res = env
        .maintenance(&reference, &[("operation", "capture"), ("currency", "XXX")])
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_201).await;
}

// ---------------------------------------------------------------------------
// Notifications

type Received = mpsc::UnboundedReceiver<(HashMap<String, String>, Vec<u8>)>;

/// A tiny HTTP receiver: each request's lower-cased headers and body.
async fn receiver() -> (String, Received) {
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
                assert!(head.starts_with("POST /notify "), "{head}");
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
    (format!("http://{addr}/notify"), rx)
}

/// The next notification, its signature checked with `sign`.
async fn next_with(rx: &mut Received, sign: impl Fn(&[u8]) -> String) -> HashMap<String, String> {
    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("no notification within 5 s")
        .unwrap();
    assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
    let mut signed = body.clone();
    signed.extend_from_slice(PASSPHRASE.as_bytes());
    assert_eq!(
        headers["x-allopass-signature"],
        sign(&signed),
        "bad signature"
    );
    // A body altered in transit would not match.
    let mut altered = body.clone();
    altered.push(b'x');
    altered.extend_from_slice(PASSPHRASE.as_bytes());
    assert_ne!(headers["x-allopass-signature"], sign(&altered));
    url::form_urlencoded::parse(&body).into_owned().collect()
}

async fn next(rx: &mut Received) -> HashMap<String, String> {
    next_with(rx, sha256_hex).await
}

async fn nothing_within(rx: &mut Received, wait: Duration) {
    if let Ok(Some((_, body))) = tokio::time::timeout(wait, rx.recv()).await {
        panic!(
            "unexpected notification: {}",
            String::from_utf8_lossy(&body)
        );
    }
}

#[tokio::test]
async fn notifications() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let token = env.token("4111111111111111").await;

    // Sale: authorized, capture requested, captured, in this order.
    let mut fields = env.order_fields(&token, "Sale", "80.00");
    set(&mut fields, "notify_url", &notify_url);
    set(&mut fields, "cdata1", "cart-7");
    let tx = env.order_ok(&fields).await;
    let reference = tx["transactionReference"].as_str().unwrap().to_owned();
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "116");
    assert_eq!(n["state"], "completed");
    assert_eq!(n["message"], "Authorized");
    assert_eq!(n["transaction_reference"], reference);
    assert_eq!(n["order[id]"], fields[0].1);
    assert_eq!(n["order[amount]"], "80.00");
    assert_eq!(n["order[currency]"], "EUR");
    assert_eq!(n["authorized_amount"], "80.00");
    assert_eq!(n["currency"], "EUR");
    assert_eq!(n["payment_product"], "visa");
    assert_eq!(n["payment_method[pan]"], "************1111");
    assert_eq!(n["cdata1"], "cart-7");
    assert!(!n.values().any(|v| v.contains("4111111111111111")));
    assert_eq!(next(&mut rx).await["status"], "117");
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "118");
    assert_eq!(n["captured_amount"], "80.00");

    // Partial refund: refund requested, partially refunded.
    env.maintenance_ok(&reference, &[("operation", "refund"), ("amount", "20.00")])
        .await;
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "124");
    assert_eq!(n["refunded_amount"], "20.00");
    assert_eq!(next(&mut rx).await["status"], "126");

    // Authorization then cancel.
    let mut fields = env.order_fields(&token, "Authorization", "15.00");
    set(&mut fields, "notify_url", &notify_url);
    let tx = env.order_ok(&fields).await;
    assert_eq!(next(&mut rx).await["status"], "116");
    env.maintenance_ok(
        tx["transactionReference"].as_str().unwrap(),
        &[("operation", "cancel")],
    )
    .await;
    assert_eq!(next(&mut rx).await["status"], "175");
    assert_eq!(next(&mut rx).await["status"], "115");

    // Refusal and 3-D Secure.
    let refused = env.token("4150551403657424").await;
    let mut fields = env.order_fields(&refused, "Authorization", "15.00");
    set(&mut fields, "notify_url", &notify_url);
    env.order_ok(&fields).await;
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "163");
    assert_eq!(n["state"], "declined");
    assert_eq!(n["reason[code]"], "4010202");
    let threeds = env.token("4242424242424242").await;
    let mut fields = env.order_3ds(&threeds, "Authorization", "15.00");
    set(&mut fields, "notify_url", &notify_url);
    let tx = env.order_ok(&fields).await;
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "140");
    assert_eq!(n["state"], "forwarding");
    let html = env
        .http
        .get(tx["forwardUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    env.http.post(&form_actions(&html)[0]).send().await.unwrap();
    assert_eq!(next(&mut rx).await["status"], "141");
    let n = next(&mut rx).await;
    assert_eq!(n["status"], "116");
    assert_eq!(n["three_d_secure[authentication_status]"], "Y");

    // No notify_url: nothing is sent.
    let fields = env.order_fields(&token, "Authorization", "15.00");
    env.order_ok(&fields).await;
    nothing_within(&mut rx, Duration::from_millis(400)).await;
}

#[tokio::test]
async fn notification_algorithms() {
    for (algorithm, sign) in [
        (
            "sha1",
            (|b: &[u8]| hex::encode(sha1::Sha1::digest(b))) as fn(&[u8]) -> String,
        ),
        ("sha512", |b: &[u8]| hex::encode(Sha512::digest(b))),
    ] {
        let env = env_with(HipayConfig {
            signature_algorithm: algorithm.to_owned(),
            ..HipayConfig::default()
        })
        .await;
        let (notify_url, mut rx) = receiver().await;
        let token = env.token("4111111111111111").await;
        let mut fields = env.order_fields(&token, "Authorization", "5.00");
        set(&mut fields, "notify_url", &notify_url);
        env.order_ok(&fields).await;
        let n = next_with(&mut rx, sign).await;
        assert_eq!(n["status"], "116");
        assert_eq!(
            passerelle_sandbox::hipay::notification_signature(
                passerelle_sandbox::hipay::Algorithm::parse(algorithm).unwrap(),
                PASSPHRASE,
                b"x"
            ),
            sign(format!("x{PASSPHRASE}").as_bytes())
        );
    }
    // An unknown algorithm is a configuration error.
    let err = Sandbox::start(SandboxConfig {
        hipay: HipayConfig {
            signature_algorithm: "md5".to_owned(),
            ..HipayConfig::default()
        },
        ..SandboxConfig::default()
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("md5"), "{err}");
}

#[tokio::test]
async fn notification_faults() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let token = env.token("4111111111111111").await;
    let order = |operation: &str| {
        let mut fields = env.order_fields(&token, operation, "9.00");
        set(&mut fields, "notify_url", &notify_url);
        fields
    };

    // Dropped (per account).
    env.fault("notification_drop", 1).await;
    env.order_ok(&order("Authorization")).await;
    nothing_within(&mut rx, Duration::from_millis(500)).await;

    // Duplicated (per request).
    let res = env
        .http
        .post(env.url("/gateway/v1/order"))
        .basic_auth(USER, Some(PASSWORD))
        .header("X-Sandbox-Fault", "notification_duplicate")
        .form(&order("Authorization"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let first = next(&mut rx).await;
    let second = next(&mut rx).await;
    assert_eq!(first, second);
    nothing_within(&mut rx, Duration::from_millis(300)).await;

    // Out of order: 116 is held back and comes after 117.
    env.fault("notification_out_of_order", 1).await;
    env.order_ok(&order("Sale")).await;
    assert_eq!(next(&mut rx).await["status"], "117");
    assert_eq!(next(&mut rx).await["status"], "116");
    assert_eq!(next(&mut rx).await["status"], "118");

    // Out of order with no successor: delivered after about 2 s.
    env.fault("notification_out_of_order", 1).await;
    let started = Instant::now();
    env.order_ok(&order("Authorization")).await;
    assert_eq!(next(&mut rx).await["status"], "116");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900) && waited < Duration::from_secs(4),
        "{waited:?}"
    );

    // `none` clears pending faults.
    env.fault("notification_drop", 5).await;
    env.fault("none", 1).await;
    env.order_ok(&order("Authorization")).await;
    assert_eq!(next(&mut rx).await["status"], "116");
}

// ---------------------------------------------------------------------------
// API faults

#[tokio::test]
async fn fault_delay_and_per_request() {
    let env = env().await;
    let token = env.token("4111111111111111").await;
    env.fault("delay:600", 2).await;
    for _ in 0..2 {
        let started = Instant::now();
        env.order_ok(&env.order_fields(&token, "Authorization", "5.00"))
            .await;
        assert!(started.elapsed() >= Duration::from_millis(600));
    }
    let started = Instant::now();
    env.order_ok(&env.order_fields(&token, "Authorization", "5.00"))
        .await;
    assert!(started.elapsed() < Duration::from_millis(600));

    // Per request, through the header.
    let started = Instant::now();
    let res = env
        .http
        .post(env.url("/gateway/v1/order"))
        .basic_auth(USER, Some(PASSWORD))
        .header("X-Sandbox-Fault", "delay:400")
        .form(&env.order_fields(&token, "Authorization", "5.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));

    // Bad control requests.
    let res = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&serde_json::json!({"account": USER, "mode": "explode"}))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_201).await;
}

#[tokio::test]
async fn fault_timeout() {
    let env = env().await;
    let token = env.token("4111111111111111").await;
    env.fault("timeout", 1).await;
    let fields = env.order_fields(&token, "Authorization", "5.00");
    let short = client(Duration::from_millis(800));
    let started = Instant::now();
    let err = short
        .post(env.url("/gateway/v1/order"))
        .basic_auth(USER, Some(PASSWORD))
        .form(&fields)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // No effect, and the sleeping request blocks nobody: the retry succeeds at once.
    let started = Instant::now();
    let tx = env.order_ok(&fields).await;
    assert_eq!(tx["attemptId"], "1");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn fault_timeout_after_effect() {
    let env = env().await;
    let reference = env.paid("Authorization", "50.00").await;
    let short = client(Duration::from_millis(800));
    let err = short
        .post(env.url(&format!("/gateway/v1/maintenance/transaction/{reference}")))
        .basic_auth(USER, Some(PASSWORD))
        .header("X-Sandbox-Fault", "timeout_after_effect")
        .form(&[("operation", "capture"), ("operation_id", "cap-timeout")])
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // The capture happened. The same operation_id does not make the
    // retry a no-op: HiPay sees a second full capture and refuses it.
    assert_eq!(env.transaction(&reference).await["capturedAmount"], "50.00");
    let res = env
        .maintenance(
            &reference,
            &[("operation", "capture"), ("operation_id", "cap-timeout")],
        )
        .await;
    expect_error(res, StatusCode::BAD_REQUEST, 3_020_106).await;
}

#[tokio::test]
async fn fault_http_500_and_malformed() {
    let env = env().await;
    let reference = env.paid("Authorization", "50.00").await;
    env.fault("http_500", 1).await;
    // A request HiPay would refuse is refused, fault or not, and leaves the
    // fault for the next valid one.
    let res = env.maintenance(&reference, &[("operation", "void")]).await;
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_201).await;
    let res = env
        .maintenance(&reference, &[("operation", "capture")])
        .await;
    expect_error(res, StatusCode::INTERNAL_SERVER_ERROR, 1_000_008).await;
    assert_eq!(env.transaction(&reference).await["capturedAmount"], "0.00");

    let res = env
        .http
        .post(env.url(&format!("/gateway/v1/maintenance/transaction/{reference}")))
        .basic_auth(USER, Some(PASSWORD))
        .header("X-Sandbox-Fault", "malformed")
        .form(&[("operation", "capture")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(env.transaction(&reference).await["capturedAmount"], "0.00");

    // The vault and the hosted page API misbehave too.
    env.fault("http_500", 1).await;
    let res = env
        .post_form(
            "/vault/v2/token/create",
            &owned(&[
                ("card_number", "4111111111111111"),
                ("card_expiry_month", "12"),
                ("card_expiry_year", "2035"),
                ("card_holder", "A B"),
            ]),
        )
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // Consumed: the next call works.
    let op = env
        .maintenance_ok(&reference, &[("operation", "capture")])
        .await;
    assert_eq!(op["capturedAmount"], "50.00");
}

#[tokio::test]
async fn control_inspection() {
    let env = env().await;
    let reference = env.paid("Authorization", "7.00").await;
    let res = env
        .http
        .get(env.url(&format!("/_sandbox/transactions/{reference}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let tx: Value = res.json().await.unwrap();
    assert_eq!(tx["transactionReference"], reference.as_str());
    assert_eq!(tx["sandbox"]["cardLast4"], "1111");
    let orderid = tx["order"]["id"].as_str().unwrap();
    let res = env
        .http
        .get(env.url(&format!("/_sandbox/orders/{orderid}")))
        .send()
        .await
        .unwrap();
    let order: Value = res.json().await.unwrap();
    assert_eq!(
        order["transactions"][0]["transactionReference"],
        reference.as_str()
    );
    let res = env
        .http
        .get(env.url("/_sandbox/transactions/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // What validation checked, and what it refused.
    env.transaction(&reference).await;
    let res = env.maintenance(&reference, &[("operation", "void")]).await;
    expect_error(res, StatusCode::BAD_REQUEST, 1_010_201).await;
    let seen: Value = env
        .http
        .get(env.url("/_sandbox/validation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["documents"], have_specs(), "{seen}");
    for operation in [
        "POST /v2/token/create",
        "POST /v1/order",
        "GET /v1/transaction/{transaction_reference}",
        "POST /v1/maintenance/transaction/{transaction_reference}",
    ] {
        assert!(
            seen["checked"][operation].as_u64() >= Some(1),
            "{operation}: {seen}"
        );
    }
    let violations = seen["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{seen}");
    assert!(
        violations[0].as_str().unwrap().contains("operation"),
        "{seen}"
    );
}

/// A fault limited to a path leaves the other calls alone.
#[tokio::test]
async fn fault_on_a_path_only() {
    let env = env().await;
    let reference = env.paid("Authorization", "50.00").await;
    let res = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&serde_json::json!({
            "account": USER, "mode": "http_500", "count": 1,
            "path": "/gateway/v1/maintenance/"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(env.transaction(&reference).await["status"], "116");
    let res = env
        .maintenance(&reference, &[("operation", "capture")])
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let op = env
        .maintenance_ok(&reference, &[("operation", "capture")])
        .await;
    assert_eq!(op["capturedAmount"], "50.00");
}
