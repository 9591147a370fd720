//! Drives a running sandbox's PayPal simulator over real HTTP, as a
//! connector would (docs/sandbox/paypal.md).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use base64::Engine as _;
use passerelle_sandbox::{paypal, PaypalConfig, Sandbox, SandboxConfig, SandboxHandle};
use reqwest::{header, redirect, Client, Response, StatusCode};
use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};
use x509_cert::{
    der::{DecodePem, Encode},
    Certificate,
};

const CLIENT_ID: &str = "passerelle-sandbox-client";
const SECRET: &str = "passerelle-sandbox-secret";
const WEBHOOK_ID: &str = "WH-PASSERELLE-SANDBOX";
const RETURN_URL: &str = "https://shop.example/paypal/return?cart=7";
const CANCEL_URL: &str = "https://shop.example/paypal/cancel?cart=7";

// ---------------------------------------------------------------------------
// Harness

struct Env {
    sandbox: SandboxHandle,
    base: String,
    http: Client,
    token: String,
}

fn client(timeout: Duration) -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

async fn env_with(config: PaypalConfig) -> Env {
    let sandbox = Sandbox::start(SandboxConfig {
        paypal: config,
        specs: passerelle_sandbox::test_specs::sandbox_specs(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let base = sandbox.paypal_base_url();
    let http = client(Duration::from_secs(10));
    let token = fetch_token(&http, &base).await;
    Env {
        sandbox,
        base,
        http,
        token,
    }
}

async fn env() -> Env {
    env_with(PaypalConfig::default()).await
}

async fn fetch_token(http: &Client, base: &str) -> String {
    let res = http
        .post(format!("{base}/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn order_body(intent: &str, value: &str, currency: &str) -> Value {
    json!({
        "intent": intent,
        "purchase_units": [{"reference_id": "cart-7", "invoice_id": format!("INV-{}", rand_suffix()),
            "amount": {"currency_code": currency, "value": value}}],
        "payment_source": {"paypal": {"experience_context": {
            "return_url": RETURN_URL, "cancel_url": CANCEL_URL, "user_action": "PAY_NOW"}}},
    })
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A POST with the JSON media type PayPal requires on every POST, body
    /// or not (see `posts_need_a_json_media_type` for one without).
    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .header(header::CONTENT_TYPE, "application/json")
    }

    async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path).json(body).send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Value {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.unwrap()
    }

    async fn create(&self, body: &Value) -> Value {
        let res = self.post_json("/v2/checkout/orders", body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    /// A created order approved by the buyer through the first form.
    async fn approved(&self, intent: &str, value: &str) -> String {
        let order = self.create(&order_body(intent, value, "EUR")).await;
        let id = order["id"].as_str().unwrap().to_owned();
        let location = self.click(&order, 0).await;
        assert!(location.starts_with("https://shop.example/paypal/return?cart=7&token="));
        id
    }

    /// Opens the order's approval link and submits form `index`; the redirect.
    async fn click(&self, order: &Value, index: usize) -> String {
        let href = link(order, "payer-action")
            .or_else(|| link(order, "approve"))
            .unwrap();
        let page = self.http.get(&href).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = page.text().await.unwrap();
        let actions = form_actions(&html);
        assert_eq!(actions.len(), 4, "{html}");
        let res = self
            .http
            .post(format!("{}{}", self.sandbox.base_url(), actions[index]))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FOUND);
        res.headers()[header::LOCATION].to_str().unwrap().to_owned()
    }

    async fn capture_order(&self, id: &str) -> Value {
        let res = self
            .post_json(&format!("/v2/checkout/orders/{id}/capture"), &json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    async fn authorize_order(&self, id: &str) -> String {
        let res = self
            .post_json(&format!("/v2/checkout/orders/{id}/authorize"), &json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let order: Value = res.json().await.unwrap();
        assert_eq!(order["status"], "COMPLETED");
        let auth = &order["purchase_units"][0]["payments"]["authorizations"][0];
        assert_eq!(auth["status"], "CREATED");
        auth["id"].as_str().unwrap().to_owned()
    }

    async fn set_fault(&self, mode: &str, count: u32) {
        let res = self
            .http
            .post(self.url("/_sandbox/faults"))
            .json(&json!({"account": CLIENT_ID, "mode": mode, "count": count}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

fn link(resource: &Value, rel: &str) -> Option<String> {
    resource["links"]
        .as_array()?
        .iter()
        .find(|l| l["rel"] == rel)
        .and_then(|l| l["href"].as_str())
        .map(str::to_owned)
}

fn form_actions(html: &str) -> Vec<String> {
    html.split("<form ")
        .skip(1)
        .filter_map(|f| {
            let start = f.find("action=\"")? + 8;
            let end = f[start..].find('"')? + start;
            Some(f[start..end].replace("&amp;", "&"))
        })
        .collect()
}

fn money(value: &str) -> Value {
    json!({"currency_code": "EUR", "value": value})
}

/// Asserts PayPal's error format and returns the first issue.
async fn issue_of(res: Response, status: StatusCode, name: &str) -> String {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], name, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["debug_id"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["links"].is_array());
    let detail = &body["details"][0];
    assert!(
        detail["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    detail["issue"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// Webhook receiver and independent signature verification

type Received = (HashMap<String, String>, Vec<u8>);

async fn receiver() -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/paypal", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let header_end = loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..header_end]).to_string();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < header_end + length {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[header_end..].to_vec();
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                let _ = tx.send((headers, body));
            });
        }
    });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>, within: Duration) -> Option<Received> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// The next notification of `event_type` (others are skipped).
async fn wait_for(rx: &mut mpsc::UnboundedReceiver<Received>, event_type: &str) -> Received {
    loop {
        let (headers, body) = next(rx, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {event_type} webhook"));
        let value: Value = serde_json::from_slice(&body).unwrap();
        if value["event_type"] == event_type {
            return (headers, body);
        }
    }
}

fn unix_of(time: x509_cert::time::Time) -> u64 {
    time.to_unix_duration().as_secs()
}

/// PayPal's check of a webhook: the certificate is valid at `at` (Unix
/// seconds) and, when `trust` is given, issued by it; the Base64 signature
/// in `PAYPAL-TRANSMISSION-SIG` is SHA256withRSA by the certificate's key
/// over `transmission_id|transmission_time|webhook_id|crc32(body)`.
fn verify_webhook(
    headers: &HashMap<String, String>,
    body: &[u8],
    webhook_id: &str,
    cert_pem: &str,
    trust: Option<&str>,
    at: u64,
) -> Result<(), String> {
    let h = |name: &str| {
        headers
            .get(name)
            .cloned()
            .ok_or_else(|| format!("missing {name}"))
    };
    if h("paypal-auth-algo")? != "SHA256withRSA" {
        return Err("unexpected algorithm".into());
    }
    let cert = Certificate::from_pem(cert_pem.as_bytes()).map_err(|e| e.to_string())?;
    let validity = &cert.tbs_certificate.validity;
    if at < unix_of(validity.not_before) || at > unix_of(validity.not_after) {
        return Err("certificate not valid at that time".into());
    }
    if let Some(ca_pem) = trust {
        let ca = Certificate::from_pem(ca_pem.as_bytes()).map_err(|e| e.to_string())?;
        if ca.tbs_certificate.subject != cert.tbs_certificate.issuer {
            return Err("not issued by the trusted CA".into());
        }
        let ca_key = UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            ca.tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec(),
        );
        let tbs = cert.tbs_certificate.to_der().map_err(|e| e.to_string())?;
        ca_key
            .verify(&tbs, cert.signature.raw_bytes())
            .map_err(|_| "bad certificate signature".to_owned())?;
    }
    let message = format!(
        "{}|{}|{webhook_id}|{}",
        h("paypal-transmission-id")?,
        h("paypal-transmission-time")?,
        crc32fast::hash(body)
    );
    let sig = base64::engine::general_purpose::STANDARD
        .decode(h("paypal-transmission-sig")?)
        .map_err(|e| e.to_string())?;
    let key = UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        cert.tbs_certificate
            .subject_public_key_info
            .subject_public_key
            .raw_bytes()
            .to_vec(),
    );
    key.verify(message.as_bytes(), &sig)
        .map_err(|_| "bad signature".to_owned())
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Fetches the certificate from `PAYPAL-CERT-URL` and verifies the webhook
/// against the sandbox's CA.
async fn verify_sandbox_webhook(
    http: &Client,
    headers: &HashMap<String, String>,
    body: &[u8],
    webhook_id: &str,
) -> Result<(), String> {
    let cert_url = headers.get("paypal-cert-url").ok_or("no cert url")?;
    let cert = http
        .get(cert_url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    verify_webhook(
        headers,
        body,
        webhook_id,
        &cert,
        Some(paypal::ca_certificate_pem()),
        now_unix(),
    )
}

// ---------------------------------------------------------------------------
// OAuth2

#[tokio::test]
async fn oauth_token_and_bearer_errors() {
    let env = env().await;
    let res = env
        .http
        .post(env.url("/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 32400);
    assert!(body["app_id"].as_str().unwrap().starts_with("APP-"));
    assert!(body["scope"]
        .as_str()
        .unwrap()
        .contains("https://uri.paypal.com/"));

    let res = env
        .http
        .post(env.url("/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    let res = env
        .http
        .post(env.url("/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");

    let res = env
        .http
        .get(env.url("/v2/checkout/orders/NOPE"))
        .bearer_auth("A21AAnot-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert!(body["error_description"].is_string());

    let res = env
        .http
        .get(env.url("/v2/checkout/orders/NOPE"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "AUTHENTICATION_FAILURE");

    // A known token, an unknown order.
    let res = env
        .http
        .get(env.url("/v2/checkout/orders/NOPE"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        issue_of(res, StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND").await,
        "INVALID_RESOURCE_ID"
    );
}

#[tokio::test]
async fn tokens_expire() {
    let env = env_with(PaypalConfig {
        token_lifetime_secs: 1,
        ..PaypalConfig::default()
    })
    .await;
    let res = env
        .post_json(
            "/v2/checkout/orders",
            &order_body("CAPTURE", "10.00", "EUR"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let res = env
        .post_json(
            "/v2/checkout/orders",
            &order_body("CAPTURE", "10.00", "EUR"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["error_description"], "Access Token not found in cache");
}

// ---------------------------------------------------------------------------
// Orders

#[tokio::test]
async fn buyer_approves_then_order_is_captured() {
    let env = env().await;
    let order = env.create(&order_body("CAPTURE", "49.90", "EUR")).await;
    assert_eq!(order["status"], "PAYER_ACTION_REQUIRED");
    let id = order["id"].as_str().unwrap().to_owned();
    let action = link(&order, "payer-action").unwrap();
    assert_eq!(action, env.url(&format!("/checkoutnow?token={id}")));
    // Minimal answer by default.
    assert!(order.get("purchase_units").is_none());

    // Not approved yet.
    let res = env
        .post_json(&format!("/v2/checkout/orders/{id}/capture"), &json!({}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "ORDER_NOT_APPROVED"
    );

    let location = env.click(&order, 0).await;
    let url = url::Url::parse(&location).unwrap();
    let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["token"], id);
    assert_eq!(query["cart"], "7");
    assert!(!query["PayerID"].is_empty());

    let got = env.get(&format!("/v2/checkout/orders/{id}")).await;
    assert_eq!(got["status"], "APPROVED");
    assert_eq!(got["intent"], "CAPTURE");
    assert_eq!(got["payer"]["payer_id"], query["PayerID"].as_str());
    assert_eq!(got["purchase_units"][0]["amount"], money("49.90"));
    assert!(link(&got, "capture").is_some());

    let captured = env.capture_order(&id).await;
    assert_eq!(captured["status"], "COMPLETED");
    let capture = &captured["purchase_units"][0]["payments"]["captures"][0];
    assert_eq!(capture["status"], "COMPLETED");
    assert_eq!(capture["amount"], money("49.90"));
    assert_eq!(capture["final_capture"], true);
    let breakdown = &capture["seller_receivable_breakdown"];
    assert_eq!(breakdown["gross_amount"], money("49.90"));
    let capture_id = capture["id"].as_str().unwrap();
    let fetched = env
        .get(&format!("/v2/payments/captures/{capture_id}"))
        .await;
    assert_eq!(fetched["status"], "COMPLETED");
    assert_eq!(
        fetched["supplementary_data"]["related_ids"]["order_id"],
        id.as_str()
    );

    // Only one capture per CAPTURE order.
    let res = env
        .post_json(&format!("/v2/checkout/orders/{id}/capture"), &json!({}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "ORDER_ALREADY_CAPTURED"
    );
    // The approval page no longer offers anything.
    let page = env.http.get(&action).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn order_without_payment_source_uses_the_approve_link_and_representation() {
    let env = env().await;
    let res = env
        .post("/v2/checkout/orders")
        .header("Prefer", "return=representation")
        .json(&json!({
            "intent": "CAPTURE",
            "purchase_units": [{"amount": {"currency_code": "JPY", "value": "1200"}, "custom_id": "c-1"}],
            "application_context": {"return_url": RETURN_URL, "cancel_url": CANCEL_URL},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();
    assert_eq!(order["status"], "CREATED");
    assert!(link(&order, "approve").is_some());
    assert!(link(&order, "payer-action").is_none());
    assert_eq!(order["purchase_units"][0]["reference_id"], "default");
    assert_eq!(
        order["purchase_units"][0]["amount"],
        json!({"currency_code": "JPY", "value": "1200"})
    );
    assert_eq!(order["purchase_units"][0]["custom_id"], "c-1");
    let location = env.click(&order, 0).await;
    assert!(location.contains("PayerID="));
}

#[tokio::test]
async fn buyer_cancels() {
    let env = env().await;
    let order = env.create(&order_body("CAPTURE", "10.00", "EUR")).await;
    let id = order["id"].as_str().unwrap();
    let location = env.click(&order, 1).await;
    assert_eq!(location, format!("{CANCEL_URL}&token={id}"));
    let got = env.get(&format!("/v2/checkout/orders/{id}")).await;
    assert_eq!(got["status"], "PAYER_ACTION_REQUIRED");
    let res = env
        .post_json(&format!("/v2/checkout/orders/{id}/capture"), &json!({}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "ORDER_NOT_APPROVED"
    );
}

#[tokio::test]
async fn action_must_match_intent() {
    let env = env().await;
    let id = env.approved("AUTHORIZE", "10.00").await;
    let res = env
        .post_json(&format!("/v2/checkout/orders/{id}/capture"), &json!({}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "ACTION_DOES_NOT_MATCH_INTENT"
    );
    env.authorize_order(&id).await;
    let res = env
        .post_json(&format!("/v2/checkout/orders/{id}/authorize"), &json!({}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "ORDER_ALREADY_AUTHORIZED"
    );
}

// ---------------------------------------------------------------------------
// Authorizations, captures, voids

#[tokio::test]
async fn partial_and_final_captures_of_an_authorization() {
    let env = env().await;
    let id = env.approved("AUTHORIZE", "100.00").await;
    let auth = env.authorize_order(&id).await;
    let path = format!("/v2/payments/authorizations/{auth}/capture");

    let res = env
        .post_json(
            &path,
            &json!({"amount": money("30.00"), "final_capture": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    // Minimal by default: id, status, links.
    assert_eq!(first["status"], "COMPLETED");
    assert!(first.get("amount").is_none());
    let got = env
        .get(&format!("/v2/payments/authorizations/{auth}"))
        .await;
    assert_eq!(got["status"], "PARTIALLY_CAPTURED");
    assert_eq!(got["amount"], money("100.00"));

    // 30 + 90 > 115 % of 100.
    let res = env
        .post_json(&path, &json!({"amount": money("90.00")}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "MAX_CAPTURE_AMOUNT_EXCEEDED"
    );
    let res = env
        .post_json(
            &path,
            &json!({"amount": {"currency_code": "USD", "value": "10.00"}}),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "AUTH_CAPTURE_CURRENCY_MISMATCH"
    );

    let res = env
        .post(&path)
        .header("Prefer", "return=representation")
        .json(&json!({"amount": money("70.00"), "final_capture": true, "invoice_id": "INV-final"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let last: Value = res.json().await.unwrap();
    assert_eq!(last["amount"], money("70.00"));
    assert_eq!(last["final_capture"], true);
    assert_eq!(last["invoice_id"], "INV-final");
    assert_eq!(
        last["supplementary_data"]["related_ids"]["authorization_id"],
        auth.as_str()
    );
    let got = env
        .get(&format!("/v2/payments/authorizations/{auth}"))
        .await;
    assert_eq!(got["status"], "CAPTURED");

    let res = env
        .post_json(&path, &json!({"amount": money("1.00")}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "AUTHORIZATION_ALREADY_CAPTURED"
    );
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/void"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "PREVIOUSLY_CAPTURED"
    );
    let order = env.get(&format!("/v2/checkout/orders/{id}")).await;
    assert_eq!(
        order["purchase_units"][0]["payments"]["captures"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn capture_overage_up_to_115_percent_and_full_capture_without_amount() {
    let env = env().await;
    let id = env.approved("AUTHORIZE", "100.00").await;
    let auth = env.authorize_order(&id).await;
    let res = env
        .post_json(
            &format!("/v2/payments/authorizations/{auth}/capture"),
            &json!({"amount": money("115.00")}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);

    let id = env.approved("AUTHORIZE", "20.00").await;
    let auth = env.authorize_order(&id).await;
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/capture"))
        .header("Prefer", "return=representation")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let capture: Value = res.json().await.unwrap();
    assert_eq!(capture["amount"], money("20.00"));
    let got = env
        .get(&format!("/v2/payments/authorizations/{auth}"))
        .await;
    assert_eq!(got["status"], "CAPTURED");
}

#[tokio::test]
async fn void_an_authorization() {
    let env = env().await;
    let id = env.approved("AUTHORIZE", "25.00").await;
    let auth = env.authorize_order(&id).await;
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/void"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let got = env
        .get(&format!("/v2/payments/authorizations/{auth}"))
        .await;
    assert_eq!(got["status"], "VOIDED");
    let res = env
        .post_json(
            &format!("/v2/payments/authorizations/{auth}/capture"),
            &json!({}),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "AUTHORIZATION_VOIDED"
    );
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/void"))
        .header("Prefer", "return=representation")
        .send()
        .await
        .unwrap();
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "PREVIOUSLY_VOIDED"
    );

    // Representation of a void: 200 with the authorization.
    let id = env.approved("AUTHORIZE", "25.00").await;
    let auth = env.authorize_order(&id).await;
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/void"))
        .header("Prefer", "return=representation")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "VOIDED");
}

// ---------------------------------------------------------------------------
// Refunds

#[tokio::test]
async fn partial_refunds_up_to_the_total() {
    let env = env().await;
    let id = env.approved("CAPTURE", "100.00").await;
    let order = env.capture_order(&id).await;
    let capture = order["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v2/payments/captures/{capture}/refund");

    let res = env
        .post(&path)
        .header("Prefer", "return=representation")
        .json(&json!({"amount": money("30.00"), "note_to_payer": "sorry"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let refund: Value = res.json().await.unwrap();
    assert_eq!(refund["status"], "COMPLETED");
    assert_eq!(refund["amount"], money("30.00"));
    assert_eq!(refund["note_to_payer"], "sorry");
    let got = env
        .get(&format!(
            "/v2/payments/refunds/{}",
            refund["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got["amount"], money("30.00"));
    let got = env.get(&format!("/v2/payments/captures/{capture}")).await;
    assert_eq!(got["status"], "PARTIALLY_REFUNDED");

    let res = env
        .post_json(&path, &json!({"amount": money("60.00")}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let res = env
        .post_json(&path, &json!({"amount": money("10.01")}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "REFUND_AMOUNT_EXCEEDED"
    );
    let res = env
        .post_json(
            &path,
            &json!({"amount": {"currency_code": "USD", "value": "1.00"}}),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "REFUND_CAPTURE_CURRENCY_MISMATCH"
    );
    // No amount: the remainder.
    let res = env.post(&path).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let refund: Value = res.json().await.unwrap();
    let got = env
        .get(&format!(
            "/v2/payments/refunds/{}",
            refund["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(got["amount"], money("10.00"));
    let got = env.get(&format!("/v2/payments/captures/{capture}")).await;
    assert_eq!(got["status"], "REFUNDED");
    let res = env
        .post_json(&path, &json!({"amount": money("0.01")}))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "CAPTURE_FULLY_REFUNDED"
    );
}

// ---------------------------------------------------------------------------
// Strictness, idempotency, negative testing, schema

#[tokio::test]
async fn invoice_ids_cannot_be_reused() {
    let env = env().await;
    let mut body = order_body("CAPTURE", "10.00", "EUR");
    body["purchase_units"][0]["invoice_id"] = json!("INV-SAME");
    let first = env.create(&body).await;
    let second = env.create(&body).await;
    env.click(&first, 0).await;
    env.click(&second, 0).await;
    env.capture_order(first["id"].as_str().unwrap()).await;
    let res = env
        .post_json(
            &format!(
                "/v2/checkout/orders/{}/capture",
                second["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "DUPLICATE_INVOICE_ID"
    );
}

#[tokio::test]
async fn paypal_request_id_replays_without_a_second_effect() {
    let env = env().await;
    let body = order_body("CAPTURE", "10.00", "EUR");
    let a: Value = env
        .post("/v2/checkout/orders")
        .header("PayPal-Request-Id", "create-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = env
        .post("/v2/checkout/orders")
        .header("PayPal-Request-Id", "create-1")
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a["id"], b["id"]);
    let id = a["id"].as_str().unwrap().to_owned();
    env.click(&a, 0).await;

    let mut ids = Vec::new();
    for _ in 0..2 {
        let res = env
            .post(&format!("/v2/checkout/orders/{id}/capture"))
            .header("PayPal-Request-Id", "capture-1")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
        let order: Value = res.json().await.unwrap();
        ids.push(order["purchase_units"][0]["payments"]["captures"][0]["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let capture = ids[0].as_str().unwrap();
    for _ in 0..2 {
        let res = env
            .post(&format!("/v2/payments/captures/{capture}/refund"))
            .header("PayPal-Request-Id", "refund-1")
            .json(&json!({"amount": money("4.00")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let got = env.get(&format!("/v2/payments/captures/{capture}")).await;
    assert_eq!(got["status"], "PARTIALLY_REFUNDED");
    // Only 4.00 refunded: 6.00 remain.
    let res = env
        .post_json(
            &format!("/v2/payments/captures/{capture}/refund"),
            &json!({"amount": money("6.00")}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn negative_testing_with_mock_responses() {
    let env = env().await;
    let id = env.approved("CAPTURE", "10.00").await;
    let res = env
        .post(&format!("/v2/checkout/orders/{id}/capture"))
        .header(
            "PayPal-Mock-Response",
            r#"{"mock_application_codes":"INSTRUMENT_DECLINED"}"#,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "INSTRUMENT_DECLINED"
    );
    let res = env
        .post(&format!("/v2/checkout/orders/{id}/capture"))
        .header(
            "PayPal-Mock-Response",
            r#"{"mock_application_codes":"TRANSACTION_REFUSED"}"#,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "TRANSACTION_REFUSED"
    );
    let res = env
        .post(&format!("/v2/checkout/orders/{id}/capture"))
        .header(
            "PayPal-Mock-Response",
            r#"{"mock_application_codes":"INTERNAL_SERVER_ERROR"}"#,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "INTERNAL_SERVER_ERROR");
    // No effect: the order can still be captured.
    let got = env.get(&format!("/v2/checkout/orders/{id}")).await;
    assert_eq!(got["status"], "APPROVED");
    env.capture_order(&id).await;
}

async fn details(res: Response) -> Vec<(String, String)> {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "INVALID_REQUEST");
    assert!(body["debug_id"].is_string());
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["field"].as_str().unwrap().to_owned(),
                d["issue"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn schema_violations_are_invalid_requests() {
    let env = env().await;
    // The simulator checks these against PayPal's documents.
    if !validation_on(&env).await {
        return;
    }
    let d = details(
        env.post_json(
            "/v2/checkout/orders",
            &json!({"intent": "SALE", "purchase_units": [{"amount": {"currency_code": "EURO", "value": "1,00"}}]}),
        )
        .await,
    )
    .await;
    assert!(
        d.contains(&("/intent".into(), "INVALID_PARAMETER_VALUE".into())),
        "{d:?}"
    );
    assert!(d.contains(&(
        "/purchase_units/0/amount/currency_code".into(),
        "INVALID_STRING_LENGTH".into()
    )));
    assert!(d.contains(&(
        "/purchase_units/0/amount/value".into(),
        "INVALID_PARAMETER_SYNTAX".into()
    )));

    let d = details(
        env.post_json("/v2/checkout/orders", &json!({"intent": "CAPTURE"}))
            .await,
    )
    .await;
    assert_eq!(
        d,
        [(
            "/purchase_units".to_owned(),
            "MISSING_REQUIRED_PARAMETER".to_owned()
        )]
    );

    let d = details(
        env.post_json("/v2/checkout/orders", &json!({"purchase_units": []}))
            .await,
    )
    .await;
    assert!(d.contains(&("/intent".into(), "MISSING_REQUIRED_PARAMETER".into())));
    assert!(d.contains(&("/purchase_units".into(), "INVALID_ARRAY_MIN_ITEMS".into())));

    let res = env
        .post("/v2/checkout/orders")
        .header(header::CONTENT_TYPE, "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(details(res).await[0].1, "MALFORMED_REQUEST_JSON");

    // Found only by the official document (through crate::openapi).
    let mut body = order_body("CAPTURE", "10.00", "EUR");
    body["payment_source"]["paypal"]["experience_context"]["landing_page"] = json!("NOWHERE");
    let d = details(env.post_json("/v2/checkout/orders", &body).await).await;
    assert_eq!(
        d[0].0, "/payment_source/paypal/experience_context/landing_page",
        "{d:?}"
    );

    // Business rules: 422.
    let res = env
        .post_json(
            "/v2/checkout/orders",
            &order_body("CAPTURE", "10.001", "EUR"),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "DECIMAL_PRECISION"
    );
    let res = env
        .post_json(
            "/v2/checkout/orders",
            &order_body("CAPTURE", "10.00", "XYZ"),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "INVALID_CURRENCY_CODE"
    );
    let res = env
        .post_json("/v2/checkout/orders", &order_body("CAPTURE", "0.00", "EUR"))
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "CANNOT_BE_ZERO_OR_NEGATIVE"
    );
    let res = env
        .post_json(
            "/v2/checkout/orders",
            &json!({"intent": "CAPTURE", "purchase_units": [
                {"reference_id": "a", "amount": money("1.00")},
                {"reference_id": "a", "amount": money("2.00")}]}),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "DUPLICATE_REFERENCE_ID"
    );

    // Payments bodies.
    let id = env.approved("CAPTURE", "10.00").await;
    let order = env.capture_order(&id).await;
    let capture = order["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = details(
        env.post_json(
            &format!("/v2/payments/captures/{capture}/refund"),
            &json!({"amount": {"value": "abc"}}),
        )
        .await,
    )
    .await;
    assert!(d.contains(&(
        "/amount/currency_code".into(),
        "MISSING_REQUIRED_PARAMETER".into()
    )));
    assert!(d.contains(&("/amount/value".into(), "INVALID_PARAMETER_SYNTAX".into())));
}

// ---------------------------------------------------------------------------
// eCheck: pending captures

#[tokio::test]
async fn echeck_capture_is_pending_until_cleared() {
    let (hook_url, mut rx) = receiver().await;
    let env = env_with(PaypalConfig {
        webhook_url: Some(hook_url),
        ..PaypalConfig::default()
    })
    .await;
    let order = env.create(&order_body("CAPTURE", "10.00", "EUR")).await;
    let id = order["id"].as_str().unwrap().to_owned();
    env.click(&order, 2).await;
    let captured = env.capture_order(&id).await;
    let capture = &captured["purchase_units"][0]["payments"]["captures"][0];
    assert_eq!(capture["status"], "PENDING");
    assert_eq!(capture["status_details"]["reason"], "ECHECK");
    let capture_id = capture["id"].as_str().unwrap().to_owned();
    wait_for(&mut rx, "PAYMENT.CAPTURE.PENDING").await;
    let res = env
        .post_json(
            &format!("/v2/payments/captures/{capture_id}/refund"),
            &json!({}),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "PENDING_CAPTURE"
    );
    let res = env
        .http
        .post(env.url(&format!("/_sandbox/captures/{capture_id}/complete")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (headers, body) = wait_for(&mut rx, "PAYMENT.CAPTURE.COMPLETED").await;
    verify_sandbox_webhook(&env.http, &headers, &body, WEBHOOK_ID)
        .await
        .unwrap();
    let got = env
        .get(&format!("/v2/payments/captures/{capture_id}"))
        .await;
    assert_eq!(got["status"], "COMPLETED");
}

// ---------------------------------------------------------------------------
// Webhooks

#[tokio::test]
async fn webhooks_are_signed_like_paypal_signs_them() {
    let (hook_url, mut rx) = receiver().await;
    let env = env_with(PaypalConfig {
        webhook_url: Some(hook_url),
        ..PaypalConfig::default()
    })
    .await;
    let id = env.approved("CAPTURE", "42.00").await;
    let (headers, body) = wait_for(&mut rx, "CHECKOUT.ORDER.APPROVED").await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["resource"]["id"], id.as_str());
    assert_eq!(event["resource_type"], "checkout-order");
    assert!(event["id"].as_str().unwrap().starts_with("WH-"));
    verify_sandbox_webhook(&env.http, &headers, &body, WEBHOOK_ID)
        .await
        .unwrap();
    assert!(headers["paypal-cert-url"].starts_with(&env.base));
    assert_eq!(headers["paypal-auth-algo"], "SHA256withRSA");

    let order = env.capture_order(&id).await;
    let capture = order["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (headers, body) = wait_for(&mut rx, "PAYMENT.CAPTURE.COMPLETED").await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["resource"]["id"], capture.as_str());
    assert_eq!(event["resource"]["amount"], money("42.00"));
    verify_sandbox_webhook(&env.http, &headers, &body, WEBHOOK_ID)
        .await
        .unwrap();
    // Tampered body, wrong webhook id, untrusted CA: rejected.
    let mut tampered = body.clone();
    let pos = tampered.iter().position(|b| *b == b'4').unwrap();
    tampered[pos] = b'9';
    assert!(
        verify_sandbox_webhook(&env.http, &headers, &tampered, WEBHOOK_ID)
            .await
            .is_err()
    );
    assert!(
        verify_sandbox_webhook(&env.http, &headers, &body, "WH-OTHER")
            .await
            .is_err()
    );
    let vector_cert = std::fs::read_to_string(vector_dir().join("cert.pem")).unwrap();
    assert!(verify_webhook(
        &headers,
        &body,
        WEBHOOK_ID,
        paypal::signing_certificate_pem(),
        Some(&vector_cert),
        now_unix()
    )
    .is_err());

    // The verification API agrees.
    let verify = |body: &[u8], headers: &HashMap<String, String>| {
        json!({
            "auth_algo": headers["paypal-auth-algo"],
            "cert_url": headers["paypal-cert-url"],
            "transmission_id": headers["paypal-transmission-id"],
            "transmission_sig": headers["paypal-transmission-sig"],
            "transmission_time": headers["paypal-transmission-time"],
            "webhook_id": WEBHOOK_ID,
            "webhook_event": serde_json::from_slice::<Value>(body).unwrap(),
        })
    };
    let res = env
        .post_json(
            "/v1/notifications/verify-webhook-signature",
            &verify(&body, &headers),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["verification_status"], "SUCCESS");
    let mut request = verify(&body, &headers);
    request["webhook_event"]["resource"]["amount"]["value"] = json!("1.00");
    let answer: Value = env
        .post_json("/v1/notifications/verify-webhook-signature", &request)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["verification_status"], "FAILURE");
    let res = env
        .post_json(
            "/v1/notifications/verify-webhook-signature",
            &json!({"webhook_id": WEBHOOK_ID}),
        )
        .await;
    assert_eq!(details(res).await[0].1, "MISSING_REQUIRED_PARAMETER");

    let res = env
        .post_json(
            &format!("/v2/payments/captures/{capture}/refund"),
            &json!({"amount": money("2.00")}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (headers, body) = wait_for(&mut rx, "PAYMENT.CAPTURE.REFUNDED").await;
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["resource"]["amount"], money("2.00"));
    verify_sandbox_webhook(&env.http, &headers, &body, WEBHOOK_ID)
        .await
        .unwrap();

    // The served certificate is the exported one.
    let cert = env
        .http
        .get(&headers["paypal-cert-url"])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(cert, paypal::signing_certificate_pem());
}

#[tokio::test]
async fn registered_webhooks_get_their_event_types() {
    let (hook_url, mut rx) = receiver().await;
    let env = env().await;
    let res = env
        .post_json(
            "/v1/notifications/webhooks",
            &json!({"url": hook_url, "event_types": [
                {"name": "PAYMENT.AUTHORIZATION.CREATED"}, {"name": "PAYMENT.AUTHORIZATION.VOIDED"}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let hook: Value = res.json().await.unwrap();
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let res = env
        .post_json(
            "/v1/notifications/webhooks",
            &json!({"url": hook_url, "event_types": [{"name": "*"}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "WEBHOOK_URL_ALREADY_EXISTS");
    let list = env.get("/v1/notifications/webhooks").await;
    assert_eq!(list["webhooks"][0]["id"], hook_id.as_str());

    let id = env.approved("AUTHORIZE", "12.00").await;
    let auth = env.authorize_order(&id).await;
    let (headers, body) = next(&mut rx, Duration::from_secs(5)).await.unwrap();
    let event: Value = serde_json::from_slice(&body).unwrap();
    // CHECKOUT.ORDER.APPROVED was not subscribed.
    assert_eq!(event["event_type"], "PAYMENT.AUTHORIZATION.CREATED");
    assert_eq!(event["resource"]["id"], auth.as_str());
    verify_sandbox_webhook(&env.http, &headers, &body, &hook_id)
        .await
        .unwrap();
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/void"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (headers, body) = wait_for(&mut rx, "PAYMENT.AUTHORIZATION.VOIDED").await;
    verify_sandbox_webhook(&env.http, &headers, &body, &hook_id)
        .await
        .unwrap();

    let res = env
        .http
        .delete(env.url(&format!("/v1/notifications/webhooks/{hook_id}")))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let id = env.approved("AUTHORIZE", "12.00").await;
    env.authorize_order(&id).await;
    assert!(next(&mut rx, Duration::from_millis(500)).await.is_none());
}

/// PayPal's signed webhook vector (from PayPal's Java SDK), the copy this
/// repository ships with the PayPal connector (the same bytes as
/// `psp-specs/paypal/webhook-vector`), so these tests run on any clone.
fn vector_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/paypal/testdata/webhook-vector")
}

#[test]
fn real_paypal_webhook_vector_verifies() {
    let dir = vector_dir();
    let body = std::fs::read(dir.join("body.json")).unwrap();
    assert_eq!(body.len(), 1636);
    assert_eq!(crc32fast::hash(&body), 3_494_065_244);
    let headers: HashMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join("headers.json")).unwrap()).unwrap();
    let webhook_id = headers["webhook_id"].clone();
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    // The certificate expired in 2019: verify at the transmission time.
    let at = 1_490_904_245; // 2017-03-30T20:04:05Z
    verify_webhook(&headers, &body, &webhook_id, &cert, None, at).unwrap();
    assert!(verify_webhook(&headers, &body, &webhook_id, &cert, None, now_unix()).is_err());
    assert!(verify_webhook(&headers, &body, "WH-OTHER", &cert, None, at).is_err());
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    assert!(verify_webhook(&headers, &tampered, &webhook_id, &cert, None, at).is_err());
    // Not chained to the sandbox CA.
    assert!(verify_webhook(
        &headers,
        &body,
        &webhook_id,
        &cert,
        Some(paypal::ca_certificate_pem()),
        at
    )
    .is_err());
}

// ---------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn request_faults() {
    let env = env().await;
    let id = env.approved("CAPTURE", "10.00").await;
    let path = format!("/v2/checkout/orders/{id}/capture");

    let res = env
        .post(&path)
        .header("X-Sandbox-Fault", "http_500")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "INTERNAL_SERVER_ERROR");
    assert_eq!(
        env.get(&format!("/v2/checkout/orders/{id}")).await["status"],
        "APPROVED"
    );

    let res = env
        .post(&path)
        .header("X-Sandbox-Fault", "malformed")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    assert_eq!(
        env.get(&format!("/v2/checkout/orders/{id}")).await["status"],
        "APPROVED"
    );

    let started = Instant::now();
    let res = env
        .get_with_fault(&format!("/v2/checkout/orders/{id}"), "delay:400")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));

    // timeout: no effect, and other requests are served meanwhile.
    let quick = client(Duration::from_millis(800));
    let started = Instant::now();
    let slow = quick
        .post(env.url(&path))
        .bearer_auth(&env.token)
        .header("X-Sandbox-Fault", "timeout")
        .json(&json!({}))
        .send();
    let (slow, got) = tokio::join!(slow, async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        env.get(&format!("/v2/checkout/orders/{id}")).await
    });
    assert!(slow.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(got["status"], "APPROVED");
    assert_eq!(
        env.get(&format!("/v2/checkout/orders/{id}")).await["status"],
        "APPROVED"
    );

    // timeout_after_effect: done; the retry with the same PayPal-Request-Id replays.
    let err = quick
        .post(env.url(&path))
        .bearer_auth(&env.token)
        .header("X-Sandbox-Fault", "timeout_after_effect")
        .header("PayPal-Request-Id", "retry-me")
        .json(&json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(
        env.get(&format!("/v2/checkout/orders/{id}")).await["status"],
        "COMPLETED"
    );
    let res = env
        .post(&path)
        .header("PayPal-Request-Id", "retry-me")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);

    let res = env
        .post(&path)
        .header("X-Sandbox-Fault", "bogus")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

impl Env {
    async fn get_with_fault(&self, path: &str, fault: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .header("X-Sandbox-Fault", fault)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn account_faults_apply_count_times() {
    let env = env().await;
    env.set_fault("http_500", 2).await;
    for _ in 0..2 {
        let res = env
            .http
            .get(env.url("/v2/checkout/orders/NOPE"))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    let res = env
        .http
        .get(env.url("/v2/checkout/orders/NOPE"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    env.set_fault("malformed", 5).await;
    env.set_fault("none", 1).await;
    let res = env
        .http
        .get(env.url("/v2/checkout/orders/NOPE"))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let res = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&json!({"account": CLIENT_ID, "mode": "explode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    // The token endpoint counts too (Basic credentials name the account).
    env.set_fault("http_500", 1).await;
    let res = env
        .http
        .post(env.url("/v1/oauth2/token"))
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn notification_faults() {
    let (hook_url, mut rx) = receiver().await;
    let env = env_with(PaypalConfig {
        webhook_url: Some(hook_url),
        ..PaypalConfig::default()
    })
    .await;

    // Drop (account fault): the approval notification is not sent.
    env.set_fault("notification_drop", 1).await;
    let id = env.approved("CAPTURE", "10.00").await;
    assert!(next(&mut rx, Duration::from_millis(500)).await.is_none());

    // Out of order (header): PAYMENT.CAPTURE.COMPLETED comes after
    // CHECKOUT.ORDER.COMPLETED.
    let res = env
        .post(&format!("/v2/checkout/orders/{id}/capture"))
        .header("X-Sandbox-Fault", "notification_out_of_order")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let order: Value = res.json().await.unwrap();
    let capture = order["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let kinds = async {
        let mut kinds = Vec::new();
        for _ in 0..2 {
            let (headers, body) = next(&mut rx, Duration::from_secs(5)).await.unwrap();
            verify_sandbox_webhook(&env.http, &headers, &body, WEBHOOK_ID)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap();
            kinds.push(v["event_type"].as_str().unwrap().to_owned());
        }
        kinds
    }
    .await;
    assert_eq!(
        kinds,
        ["CHECKOUT.ORDER.COMPLETED", "PAYMENT.CAPTURE.COMPLETED"]
    );

    // Duplicate (header): the refund notification comes twice, same event.
    let res = env
        .post(&format!("/v2/payments/captures/{capture}/refund"))
        .header("X-Sandbox-Fault", "notification_duplicate")
        .json(&json!({"amount": money("1.00")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let (h1, b1) = next(&mut rx, Duration::from_secs(5)).await.unwrap();
    let (h2, b2) = next(&mut rx, Duration::from_secs(5)).await.unwrap();
    assert_eq!(b1, b2);
    assert_ne!(h1["paypal-transmission-id"], h2["paypal-transmission-id"]);
    verify_sandbox_webhook(&env.http, &h2, &b2, WEBHOOK_ID)
        .await
        .unwrap();

    // Out of order with nothing following: delivered after about 2 s.
    env.set_fault("notification_out_of_order", 1).await;
    let started = Instant::now();
    let res = env
        .post_json(
            &format!("/v2/payments/captures/{capture}/refund"),
            &json!({"amount": money("1.00")}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let (_, body) = next(&mut rx, Duration::from_secs(5)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["event_type"], "PAYMENT.CAPTURE.REFUNDED");

    // Inspection endpoints.
    let events: Value = env
        .http
        .get(env.url("/_sandbox/events"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"][0]["event_type"], "CHECKOUT.ORDER.APPROVED");
    let inspected: Value = env
        .http
        .get(env.url(&format!("/_sandbox/orders/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inspected["status"], "COMPLETED");
    assert_eq!(inspected["sandbox"]["funding"], "INSTANT");
}

// ---------------------------------------------------------------------------
// Answers conform to the official documents

#[tokio::test]
async fn answers_conform_to_the_official_documents() {
    let Some(dir) = passerelle_sandbox::test_specs::specs_for("paypal/checkout_orders_v2.json")
    else {
        return;
    };
    let spec = passerelle_sandbox::openapi::ApiSpec::load(
        &passerelle_sandbox::SpecSource::Dir(dir),
        &[
            "paypal/checkout_orders_v2.json",
            "paypal/payments_payment_v2.json",
        ],
    )
    .unwrap()
    .unwrap();
    let check = |method: &str, path: &str, status: u16, body: &Value| {
        if let Err(v) = spec.validate_response(method, path, status, body) {
            panic!("{method} {path} {status}: {v:?}\n{body}");
        }
    };
    let env = env().await;
    let order = env.create(&order_body("CAPTURE", "10.00", "EUR")).await;
    check("POST", "/v2/checkout/orders", 201, &order);
    let id = order["id"].as_str().unwrap().to_owned();
    env.click(&order, 0).await;
    let got = env.get(&format!("/v2/checkout/orders/{id}")).await;
    check("GET", "/v2/checkout/orders/{id}", 200, &got);
    let res = env
        .post_json(&format!("/v2/checkout/orders/{id}/authorize"), &json!({}))
        .await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    check("POST", "/v2/checkout/orders/{id}/authorize", status, &body);
    let captured = env.capture_order(&id).await;
    check("POST", "/v2/checkout/orders/{id}/capture", 201, &captured);
    let capture = captured["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = env.get(&format!("/v2/payments/captures/{capture}")).await;
    check("GET", "/v2/payments/captures/{capture_id}", 200, &got);
    let res = env
        .post(&format!("/v2/payments/captures/{capture}/refund"))
        .header("Prefer", "return=representation")
        .json(&json!({"amount": money("1.00")}))
        .send()
        .await
        .unwrap();
    let refund: Value = res.json().await.unwrap();
    check(
        "POST",
        "/v2/payments/captures/{capture_id}/refund",
        201,
        &refund,
    );
    let got = env
        .get(&format!(
            "/v2/payments/refunds/{}",
            refund["id"].as_str().unwrap()
        ))
        .await;
    check("GET", "/v2/payments/refunds/{refund_id}", 200, &got);
    let res = env
        .post_json(
            &format!("/v2/payments/captures/{capture}/refund"),
            &json!({"amount": money("99.00")}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    check(
        "POST",
        "/v2/payments/captures/{capture_id}/refund",
        422,
        &body,
    );

    let id = env.approved("AUTHORIZE", "10.00").await;
    let auth = env.authorize_order(&id).await;
    let got = env
        .get(&format!("/v2/payments/authorizations/{auth}"))
        .await;
    check(
        "GET",
        "/v2/payments/authorizations/{authorization_id}",
        200,
        &got,
    );
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/capture"))
        .header("Prefer", "return=representation")
        .json(&json!({"amount": money("4.00")}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    check(
        "POST",
        "/v2/payments/authorizations/{authorization_id}/capture",
        201,
        &body,
    );
    let res = env
        .post(&format!("/v2/payments/authorizations/{auth}/void"))
        .header("Prefer", "return=representation")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    check(
        "POST",
        "/v2/payments/authorizations/{authorization_id}/void",
        200,
        &body,
    );
    let res = env
        .post_json("/v2/checkout/orders", &json!({"intent": "CAPTURE"}))
        .await;
    let body: Value = res.json().await.unwrap();
    check("POST", "/v2/checkout/orders", 400, &body);
}

// ---------------------------------------------------------------------------
// Reference ids, media types, documented headers

#[tokio::test]
async fn an_empty_reference_id_is_refused() {
    let env = env().await;
    let mut body = order_body("CAPTURE", "10.00", "EUR");
    body["purchase_units"][0]["reference_id"] = json!("");
    let d = details(env.post_json("/v2/checkout/orders", &body).await).await;
    assert_eq!(
        d,
        [(
            "/purchase_units/0/reference_id".to_owned(),
            "INVALID_STRING_LENGTH".to_owned()
        )]
    );
    // 256 characters are fine, 257 are not.
    body["purchase_units"][0]["reference_id"] = json!("r".repeat(256));
    env.create(&body).await;
    body["purchase_units"][0]["reference_id"] = json!("r".repeat(257));
    let d = details(env.post_json("/v2/checkout/orders", &body).await).await;
    assert_eq!(d[0].1, "INVALID_STRING_LENGTH");
}

/// PayPal answers a POST without `Content-Type: application/json` 415
/// `UNSUPPORTED_MEDIA_TYPE` (`error_415` of its documents), even the void
/// of an authorization, which has no body.
#[tokio::test]
async fn posts_need_a_json_media_type() {
    let env = env().await;
    let id = env.approved("AUTHORIZE", "25.00").await;
    let auth = env.authorize_order(&id).await;
    let void = format!("/v2/payments/authorizations/{auth}/void");
    let bare = |path: &str| env.http.post(env.url(path)).bearer_auth(&env.token);
    for request in [
        bare(&void),
        bare(&void).header(header::CONTENT_TYPE, "text/plain"),
        bare("/v2/checkout/orders")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(order_body("CAPTURE", "1.00", "EUR").to_string()),
    ] {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["name"], "UNSUPPORTED_MEDIA_TYPE");
        assert_eq!(
            body["message"],
            "The server does not support the request payload's media type."
        );
    }
    // Nothing was voided; with the media type (and no body) it is.
    assert_eq!(
        env.get(&format!("/v2/payments/authorizations/{auth}"))
            .await["status"],
        "CREATED"
    );
    let res = bare(&void)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // The token request is a form, as PayPal wants it.
    fetch_token(&env.http, &env.base).await;
}

/// Documented header parameters are checked against their schema
/// (`checkout_orders_v2.json`: `PayPal-Request-Id` 1 to 108 characters,
/// `Prefer` at most 25 of `[a-zA-Z=]`, `PayPal-Client-Metadata-Id` at most
/// 36); the payments document puts no limit on `PayPal-Request-Id`.
#[tokio::test]
async fn documented_headers_are_checked() {
    let env = env().await;
    if !validation_on(&env).await {
        return;
    }
    let body = order_body("CAPTURE", "10.00", "EUR");
    for (name, value, issue) in [
        (
            "PayPal-Request-Id",
            "x".repeat(109),
            "INVALID_STRING_LENGTH",
        ),
        (
            "Prefer",
            "return=representation;x".to_owned(),
            "INVALID_PARAMETER_SYNTAX",
        ),
        (
            "PayPal-Client-Metadata-Id",
            "m".repeat(37),
            "INVALID_STRING_LENGTH",
        ),
    ] {
        let res = env
            .post("/v2/checkout/orders")
            .header(name, value.as_str())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{name}");
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["details"][0]["field"], name, "{answer}");
        assert_eq!(answer["details"][0]["location"], "header");
        assert_eq!(answer["details"][0]["issue"], issue);
    }
    let res = env
        .post("/v2/checkout/orders")
        .header("PayPal-Request-Id", "x".repeat(108))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = env.approved("CAPTURE", "10.00").await;
    let order = env.capture_order(&id).await;
    let capture = order["purchase_units"][0]["payments"]["captures"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = env
        .post(&format!("/v2/payments/captures/{capture}/refund"))
        .header("PayPal-Request-Id", "y".repeat(200))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

/// Whether the simulator validates with the official documents (else the
/// test says what it skips; with `CI=true` their absence is a failure).
async fn validation_on(env: &Env) -> bool {
    let found = passerelle_sandbox::test_specs::specs_for("paypal/checkout_orders_v2.json");
    let listed: Value = env
        .http
        .get(env.url("/_sandbox/validation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["documents"], found.is_some(), "{listed}");
    found.is_some()
}

/// `GET {base}/_sandbox/validation` lists every API request with the
/// documented operation it is an instance of, counts the checked ones and
/// keeps the refusals.
#[tokio::test]
async fn requests_are_recorded_with_their_documented_operation() {
    let env = env().await;
    if !validation_on(&env).await {
        return;
    }
    let id = env.approved("CAPTURE", "10.00").await;
    env.capture_order(&id).await;
    env.get(&format!("/v2/checkout/orders/{id}")).await;
    let listed: Value = env
        .http
        .get(env.url("/_sandbox/validation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seen: Vec<(String, String, Value, Value)> = listed["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["method"].as_str().unwrap().to_owned(),
                r["path"].as_str().unwrap().to_owned(),
                r["operation"].clone(),
                r["checked"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "POST".into(),
                "/v1/oauth2/token".into(),
                Value::Null,
                json!(false)
            ),
            (
                "POST".into(),
                "/v2/checkout/orders".into(),
                json!("orders.create"),
                json!(true)
            ),
            (
                "POST".into(),
                format!("/v2/checkout/orders/{id}/capture"),
                json!("orders.capture"),
                json!(true)
            ),
            (
                "GET".into(),
                format!("/v2/checkout/orders/{id}"),
                json!("orders.get"),
                json!(true)
            ),
        ]
    );
    assert_eq!(
        listed["checked"]["POST /v2/checkout/orders/{id}/capture"],
        1
    );
    assert_eq!(listed["violations"], json!([]));
    // A refusal is kept, with its operation.
    let res = env
        .post_json("/v2/checkout/orders", &json!({"intent": "CAPTURE"}))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = env
        .http
        .post(env.url(&format!("/v2/checkout/orders/{id}/capture")))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let listed: Value = env
        .http
        .get(env.url("/_sandbox/validation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused: Vec<(&str, &str)> = listed["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["operation"].as_str().unwrap(),
                v["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("POST /v2/checkout/orders", "INVALID_REQUEST"),
            (
                "POST /v2/checkout/orders/{id}/capture",
                "UNSUPPORTED_MEDIA_TYPE"
            ),
        ]
    );
}

// ---------------------------------------------------------------------------
// A declined funding source, then another one

#[tokio::test]
async fn a_declined_card_then_another_funding_source() {
    let (hook_url, mut rx) = receiver().await;
    let env = env_with(PaypalConfig {
        webhook_url: Some(hook_url),
        ..PaypalConfig::default()
    })
    .await;
    for intent in ["CAPTURE", "AUTHORIZE"] {
        let order = env.create(&order_body(intent, "10.00", "EUR")).await;
        let id = order["id"].as_str().unwrap().to_owned();
        let location = env.click(&order, 3).await;
        assert!(location.contains("PayerID="), "{location}");
        let action = intent.to_ascii_lowercase();
        let res = env
            .post_json(&format!("/v2/checkout/orders/{id}/{action}"), &json!({}))
            .await;
        assert_eq!(
            issue_of(
                res,
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY"
            )
            .await,
            "INSTRUMENT_DECLINED"
        );
        // Nothing moved; the order waits for the buyer at the same link.
        let got = env.get(&format!("/v2/checkout/orders/{id}")).await;
        assert_eq!(got["status"], "PAYER_ACTION_REQUIRED", "{got}");
        assert!(got["purchase_units"][0].get("payments").is_none(), "{got}");
        assert_eq!(link(&got, "payer-action"), link(&order, "payer-action"));
        let res = env
            .post_json(&format!("/v2/checkout/orders/{id}/{action}"), &json!({}))
            .await;
        assert_eq!(
            issue_of(
                res,
                StatusCode::UNPROCESSABLE_ENTITY,
                "UNPROCESSABLE_ENTITY"
            )
            .await,
            "ORDER_NOT_APPROVED"
        );
        // The buyer picks another funding source.
        env.click(&got, 0).await;
        let res = env
            .post_json(&format!("/v2/checkout/orders/{id}/{action}"), &json!({}))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let done: Value = res.json().await.unwrap();
        assert_eq!(done["status"], "COMPLETED");
    }
    // Approvals and the payments only: a decline sends no event.
    let mut kinds = Vec::new();
    while let Some((_, body)) = next(&mut rx, Duration::from_millis(500)).await {
        let event: Value = serde_json::from_slice(&body).unwrap();
        kinds.push(event["event_type"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "CHECKOUT.ORDER.APPROVED")
            .count(),
        4,
        "{kinds:?}"
    );
    assert!(!kinds.iter().any(|k| k.contains("DENIED")), "{kinds:?}");
}

// ---------------------------------------------------------------------------
// Currencies without decimals at PayPal

/// HUF, TWD and JPY take no decimals at PayPal ("This currency does not
/// support decimals. If you pass a decimal amount, an error occurs.",
/// developer.paypal.com/docs/api/reference/currency-codes/), although ISO
/// 4217 gives HUF and TWD two.
#[tokio::test]
async fn currencies_without_decimals() {
    let env = env().await;
    // The simulator checks these against PayPal's documents.
    if !validation_on(&env).await {
        return;
    }
    for currency in ["HUF", "TWD", "JPY"] {
        for value in ["1500.50", "1500.00", "1500.5"] {
            let res = env
                .post_json(
                    "/v2/checkout/orders",
                    &order_body("CAPTURE", value, currency),
                )
                .await;
            assert_eq!(
                issue_of(
                    res,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "UNPROCESSABLE_ENTITY"
                )
                .await,
                "DECIMALS_NOT_SUPPORTED",
                "{currency} {value}"
            );
        }
        let order = env.create(&order_body("CAPTURE", "1500", currency)).await;
        let id = order["id"].as_str().unwrap();
        let got = env.get(&format!("/v2/checkout/orders/{id}")).await;
        assert_eq!(
            got["purchase_units"][0]["amount"],
            json!({"currency_code": currency, "value": "1500"})
        );
    }
    // Two-decimal currencies take two, not three.
    let res = env
        .post_json(
            "/v2/checkout/orders",
            &order_body("CAPTURE", "15.005", "EUR"),
        )
        .await;
    assert_eq!(
        issue_of(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY"
        )
        .await,
        "DECIMAL_PRECISION"
    );
}
