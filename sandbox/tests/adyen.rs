//! Drives a running sandbox's Adyen Checkout v71 simulator over real HTTP
//! (docs/sandbox/adyen.md).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use hmac::{Hmac, Mac};
use passerelle_sandbox::{AdyenConfig, Sandbox, SandboxConfig, SandboxHandle, SpecSource};
use reqwest::{redirect, Client, Response, StatusCode};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

const KEY: &str = "adyen_sandbox_api_key";
const ACCOUNT: &str = "PasserelleECOM";
const HMAC_KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";

type Webhooks = mpsc::UnboundedReceiver<Value>;

struct Env {
    _sandbox: SandboxHandle,
    base: String,
    http: Client,
    hooks: Webhooks,
}

async fn env_with(config: impl FnOnce(&mut AdyenConfig)) -> Env {
    let (url, hooks) = receiver().await;
    let mut adyen = AdyenConfig {
        webhook_url: Some(url),
        ..AdyenConfig::default()
    };
    config(&mut adyen);
    let sandbox = Sandbox::start(SandboxConfig {
        adyen,
        specs: specs(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let base = sandbox.adyen_base_url();
    Env {
        _sandbox: sandbox,
        base,
        http: client(Duration::from_secs(10)),
        hooks,
    }
}

/// The official OpenAPI documents (`$PASSERELLE_PSP_SPECS`, else
/// `../shared/psp-specs` beside the clone, as CI lays them out). Absent:
/// `None` after one line saying which test skips and how to run it (a
/// failure when `CI=true`); see `passerelle_sandbox::test_specs`.
fn specs_dir() -> Option<std::path::PathBuf> {
    passerelle_sandbox::test_specs::specs_for("adyen/CheckoutService-v71.json")
}

/// The simulator validates with the documents when they are there.
fn specs() -> SpecSource {
    passerelle_sandbox::test_specs::sandbox_specs()
}

async fn env() -> Env {
    env_with(|_| {}).await
}

fn client(timeout: Duration) -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(timeout)
        .build()
        .unwrap()
}

fn payment_body(number: &str, holder: &str, value: u64) -> Value {
    json!({
        "amount": {"value": value, "currency": "EUR"},
        "reference": "order-1",
        "merchantAccount": ACCOUNT,
        "paymentMethod": {"type": "scheme", "number": number, "expiryMonth": "03",
                          "expiryYear": "2030", "cvc": "737", "holderName": holder},
        "returnUrl": "https://shop.example/return?cart=7",
    })
}

/// A payment from a browser, as a 3-D Secure 2 redirect needs it: the
/// browser's data (`browserInfo`, every member v71 requires of it), its
/// IP address, the shop's origin and `channel: Web`.
fn browser_payment_body(number: &str, holder: &str, value: u64) -> Value {
    let mut body = payment_body(number, holder, value);
    body["browserInfo"] = json!({
        "acceptHeader": "text/html,application/xhtml+xml",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "language": "fr-FR",
        "colorDepth": 24,
        "screenHeight": 1080,
        "screenWidth": 1920,
        "timeZoneOffset": -60,
        "javaEnabled": false,
        "javaScriptEnabled": true
    });
    body["shopperIP"] = json!("192.0.2.10");
    body["origin"] = json!("https://shop.example");
    body["channel"] = json!("Web");
    body
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Response {
        let mut req = self
            .http
            .post(self.url(path))
            .header("X-API-Key", KEY)
            .json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_with(path, body, &[]).await
    }

    async fn pay(&self, body: &Value) -> Value {
        let res = self.post("/payments", body).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// An authorised payment of `value` EUR cents; its AUTHORISATION webhook is consumed.
    async fn authorised(&mut self, value: u64) -> String {
        let payment = self
            .pay(&payment_body("4111111111111111", "John Smith", value))
            .await;
        assert_eq!(payment["resultCode"], "Authorised", "{payment}");
        let hook = self.next_hook().await;
        assert_eq!(hook["eventCode"], "AUTHORISATION");
        payment["pspReference"].as_str().unwrap().to_owned()
    }

    async fn modify(&self, psp: &str, kind: &str, body: &Value) -> Value {
        let res = self.post(&format!("/payments/{psp}/{kind}"), body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["status"], "received");
        assert_eq!(answer["paymentPspReference"], psp);
        assert_eq!(answer["pspReference"].as_str().unwrap().len(), 16);
        answer
    }

    async fn capture(&self, psp: &str, value: u64) -> Value {
        self.modify(
            psp,
            "captures",
            &json!({"merchantAccount": ACCOUNT, "amount": {"value": value, "currency": "EUR"}, "reference": "cap-1"}),
        )
        .await
    }

    async fn refund(&self, psp: &str, value: u64) -> Value {
        self.modify(
            psp,
            "refunds",
            &json!({"merchantAccount": ACCOUNT, "amount": {"value": value, "currency": "EUR"}}),
        )
        .await
    }

    async fn inspect(&self, psp: &str) -> Value {
        let res = self
            .http
            .get(self.url(&format!("/_sandbox/payments/{psp}")))
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
            .json(&json!({"account": ACCOUNT, "mode": mode, "count": count}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    /// The next webhook's item, after checking the envelope and the signature.
    async fn next_hook(&mut self) -> Value {
        next_hook(&mut self.hooks).await
    }

    async fn no_hook(&mut self, wait: Duration) {
        if let Ok(Some(hook)) = tokio::time::timeout(wait, self.hooks.recv()).await {
            panic!("unexpected webhook {hook}");
        }
    }
}

async fn next_hook(hooks: &mut Webhooks) -> Value {
    let envelope = tokio::time::timeout(Duration::from_secs(5), hooks.recv())
        .await
        .expect("no webhook within 5 s")
        .unwrap();
    assert_eq!(envelope["live"], "false");
    let items = envelope["notificationItems"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0]["NotificationRequestItem"].clone();
    assert!(verify(HMAC_KEY, &item), "bad signature on {item}");
    item
}

/// Independent implementation of Adyen's HMAC check.
fn verify(key_hex: &str, item: &Value) -> bool {
    let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let data = [
        s("pspReference"),
        s("originalReference"),
        s("merchantAccountCode"),
        s("merchantReference"),
        item["amount"]["value"].as_u64().unwrap().to_string(),
        item["amount"]["currency"].as_str().unwrap().to_owned(),
        s("eventCode"),
        s("success"),
    ]
    .join(":");
    let mut mac = Hmac::<Sha256>::new_from_slice(&hex::decode(key_hex).unwrap()).unwrap();
    mac.update(data.as_bytes());
    let given = item["additionalData"]["hmacSignature"]
        .as_str()
        .unwrap_or("");
    mac.verify_slice(&STANDARD.decode(given).unwrap_or_default())
        .is_ok()
}

/// A tiny HTTP server collecting POSTed JSON bodies.
async fn receiver() -> (String, Webhooks) {
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
                    if n == 0 {
                        return;
                    }
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
                assert_eq!(headers["content-type"], "application/json");
                let len: usize = headers["content-length"].parse().unwrap();
                while buf.len() < header_end + len {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed early");
                    buf.extend_from_slice(&chunk[..n]);
                }
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n[accepted]")
                    .await
                    .unwrap();
                let body: Value =
                    serde_json::from_slice(&buf[header_end..header_end + len]).unwrap();
                let _ = tx.send(body);
            });
        }
    });
    (format!("http://{addr}/adyen/webhooks"), rx)
}

async fn expect_error(res: Response, status: StatusCode, code: &str, error_type: &str) -> Value {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
    assert_eq!(body["errorType"], error_type, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    body
}

// ---------------------------------------------------------------------------

#[test]
fn hmac_known_answers_from_adyen() {
    // Adyen's PHP API library, tests/Unit/Util/HmacSignatureTest.php.
    let item = json!({"pspReference": "7914073381342284", "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704", "amount": {"value": 1130, "currency": "EUR"},
        "eventCode": "AUTHORISATION", "success": "true"});
    assert_eq!(
        passerelle_sandbox::adyen::sign_item(
            "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00",
            &item
        )
        .unwrap(),
        "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I="
    );
    let mut refund = item.clone();
    refund["amount"]["value"] = json!(0);
    refund["eventCode"] = json!("REFUND");
    assert_eq!(
        passerelle_sandbox::adyen::sign_item(HMAC_KEY, &refund).unwrap(),
        "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8="
    );
    // Colons inside values are not escaped.
    let escaping = json!({"pspReference": "TEST_CUSTOM_7914073381342284", "originalReference": "",
        "merchantAccountCode": "PHPApiLibrary", "merchantReference": "auth:123",
        "amount": {"value": 113000, "currency": "EUR"}, "eventCode": "AUTHORISATION", "success": "true"});
    assert_eq!(
        passerelle_sandbox::adyen::sign_item(
            "C56F00E99723D90F65254B00746844BED11BCDD0DD42B26EC980DC1301C6CD20",
            &escaping
        )
        .unwrap(),
        "ovT21mqdbQToGbWssIhnBXAlnkhgKuehtGwvYFf5h2Q="
    );
    let mut signed = refund.clone();
    signed["additionalData"] =
        json!({"hmacSignature": "J7HhsgZo5KwqdB7LFZJV6rfQgp+RqC2kuYyw/3x3w+8="});
    assert!(verify(HMAC_KEY, &signed));
    assert!(passerelle_sandbox::adyen::verify_item(HMAC_KEY, &signed));
    signed["amount"]["value"] = json!(1);
    assert!(!verify(HMAC_KEY, &signed));
    assert!(!passerelle_sandbox::adyen::verify_item(HMAC_KEY, &signed));
}

#[tokio::test]
async fn authentication() {
    let env = env().await;
    let res = env
        .http
        .post(env.url("/payments"))
        .json(&payment_body("4111111111111111", "A", 1000))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "000", "security").await;
    let res = env
        .http
        .post(env.url("/payments"))
        .header("X-API-Key", "wrong")
        .json(&payment_body("4111111111111111", "A", 1000))
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::UNAUTHORIZED, "000", "security").await;
}

#[tokio::test]
async fn authorised_card_and_webhook() {
    let mut env = env().await;
    let res = env
        .post(
            "/payments",
            &payment_body("4111111111111111", "John Smith", 1050),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains("4111111111111111"), "echoes the card number");
    let payment: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(payment["resultCode"], "Authorised");
    let psp = payment["pspReference"].as_str().unwrap();
    assert_eq!(psp.len(), 16);
    assert_eq!(payment["amount"], json!({"value": 1050, "currency": "EUR"}));
    assert_eq!(payment["merchantReference"], "order-1");
    assert_eq!(
        payment["paymentMethod"],
        json!({"brand": "visa", "type": "scheme"})
    );

    let hook = env.next_hook().await;
    assert_eq!(hook["eventCode"], "AUTHORISATION");
    assert_eq!(hook["success"], "true");
    assert_eq!(hook["pspReference"], psp);
    assert_eq!(hook["merchantAccountCode"], ACCOUNT);
    assert_eq!(hook["merchantReference"], "order-1");
    assert_eq!(hook["amount"], json!({"value": 1050, "currency": "EUR"}));
    assert!(hook.get("originalReference").is_none());

    // Encrypted test fields (`test_` prefix) work the same; JPY amounts round-trip.
    let mut body = payment_body("", "", 1050);
    body["amount"] = json!({"value": 1234, "currency": "JPY"});
    body["paymentMethod"] = json!({"type": "scheme", "encryptedCardNumber": "test_4111111111111111",
        "encryptedExpiryMonth": "test_03", "encryptedExpiryYear": "test_2030", "encryptedSecurityCode": "test_737"});
    let payment = env.pay(&body).await;
    assert_eq!(payment["resultCode"], "Authorised");
    assert_eq!(payment["amount"], json!({"value": 1234, "currency": "JPY"}));
    let state = env.inspect(payment["pspReference"].as_str().unwrap()).await;
    assert_eq!(state["cardSummary"], "1111");
    assert!(!state.to_string().contains("4111111111111111"));

    // Adyen allows reusing a merchant reference.
    let again = env
        .pay(&payment_body("4111111111111111", "John Smith", 1050))
        .await;
    assert_eq!(again["resultCode"], "Authorised");
    assert_ne!(again["pspReference"], psp);
}

#[tokio::test]
async fn refusals_by_holder_name_and_card_data() {
    let mut env = env().await;
    for (holder, result, reason, code) in [
        ("DECLINED", "Refused", "Refused", "2"),
        ("NOT_ENOUGH_BALANCE", "Refused", "Not enough balance", "12"),
        ("CARD_EXPIRED", "Refused", "Expired Card", "6"),
        ("SHOPPER_CANCELLED", "Refused", "Shopper Cancelled", "16"),
        ("ERROR", "Error", "Acquirer Error", "4"),
    ] {
        let payment = env
            .pay(&payment_body("4111111111111111", holder, 1000))
            .await;
        assert_eq!(payment["resultCode"], result, "{holder}");
        assert_eq!(payment["refusalReason"], reason, "{holder}");
        assert_eq!(payment["refusalReasonCode"], code, "{holder}");
        let hook = env.next_hook().await;
        assert_eq!(hook["eventCode"], "AUTHORISATION");
        assert_eq!(hook["success"], "false");
        assert_eq!(hook["reason"], reason);
    }
    // A wrong CVC on a test card: generic refusal.
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body["paymentMethod"]["cvc"] = json!("123");
    let payment = env.pay(&body).await;
    assert_eq!(payment["resultCode"], "Refused");
    assert_eq!(payment["refusalReasonCode"], "2");
    env.next_hook().await;
    // Expired card.
    let mut body = payment_body("5555555555554444", "John Smith", 1000);
    body["paymentMethod"]["expiryYear"] = json!("2020");
    let payment = env.pay(&body).await;
    assert_eq!(payment["refusalReason"], "Expired Card");
    env.next_hook().await;
}

#[tokio::test]
async fn pending_then_settled() {
    let mut env = env().await;
    let payment = env
        .pay(&payment_body("4111111111111111", "PENDING", 700))
        .await;
    assert_eq!(payment["resultCode"], "Received");
    assert!(payment.get("refusalReason").is_none());
    let psp = payment["pspReference"].as_str().unwrap();
    env.no_hook(Duration::from_millis(300)).await;
    let res = env
        .http
        .post(env.url(&format!("/_sandbox/payments/{psp}/settle")))
        .json(&json!({"authorised": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let hook = env.next_hook().await;
    assert_eq!(hook["eventCode"], "AUTHORISATION");
    assert_eq!(hook["success"], "true");
    assert_eq!(env.inspect(psp).await["resultCode"], "Authorised");
}

/// Follows the redirect action, submits the page's `form_index`-th form,
/// returns the redirectResult from the Location header.
async fn three_ds(env: &Env, payment: &Value, form_index: usize) -> String {
    assert_eq!(payment["resultCode"], "RedirectShopper");
    let action = &payment["action"];
    assert_eq!(action["type"], "redirect");
    assert_eq!(action["method"], "GET");
    assert_eq!(action["paymentMethodType"], "scheme");
    let page = env
        .http
        .get(action["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    let forms: Vec<&str> = html.split("<form ").skip(1).collect();
    assert_eq!(forms.len(), 3);
    let form = forms[form_index];
    assert!(form.starts_with("method=\"post\""));
    let action_path = form
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let origin = env.base.trim_end_matches("/adyen");
    let res = env
        .http
        .post(format!("{origin}{action_path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("shop.example"));
    let pairs: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["cart"], "7");
    pairs["redirectResult"].clone()
}

#[tokio::test]
async fn three_d_secure_success_failure_cancel() {
    let mut env = env().await;
    // Success: first form. The action answer carries no pspReference (v71
    // gives it with /payments/details), nor amount nor reference.
    let payment = env
        .pay(&browser_payment_body(
            "4212345678901237",
            "John Smith",
            1000,
        ))
        .await;
    assert!(payment.get("pspReference").is_none(), "{payment}");
    assert!(payment.get("amount").is_none(), "{payment}");
    env.no_hook(Duration::from_millis(200)).await;
    let result = three_ds(&env, &payment, 0).await;
    let res = env
        .post(
            "/payments/details",
            &json!({"details": {"redirectResult": result}}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let details: Value = res.json().await.unwrap();
    assert_eq!(details["resultCode"], "Authorised");
    let psp = details["pspReference"].as_str().unwrap().to_owned();
    assert_eq!(psp.len(), 16, "{details}");
    assert_eq!(details["merchantReference"], "order-1");
    assert_eq!(details["amount"], json!({"value": 1000, "currency": "EUR"}));
    // The 3-D Secure result, in Adyen's additionalData members.
    let extra = &details["additionalData"];
    assert_eq!(
        (
            extra["threeDOffered"].as_str(),
            extra["threeDAuthenticated"].as_str(),
            extra["threeDAuthenticatedResponse"].as_str(),
            extra["liabilityShift"].as_str(),
            extra["eci"].as_str(),
            extra["threeDSVersion"].as_str()
        ),
        (
            Some("true"),
            Some("true"),
            Some("Y"),
            Some("true"),
            Some("05"),
            Some("2.2.0")
        ),
        "{details}"
    );
    let hook = env.next_hook().await;
    assert_eq!(hook["eventCode"], "AUTHORISATION");
    assert_eq!(hook["success"], "true");
    assert_eq!(hook["pspReference"], psp.as_str());
    assert_eq!(hook["merchantReference"], "order-1");
    // The same redirectResult gives the same answer, without a new webhook.
    let again: Value = env
        .post(
            "/payments/details",
            &json!({"details": {"redirectResult": result}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, details);
    env.no_hook(Duration::from_millis(200)).await;
    // The page is gone.
    let page = env
        .http
        .get(payment["action"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::CONFLICT);

    // Failure: second form.
    let payment = env
        .pay(&browser_payment_body(
            "4212345678901237",
            "John Smith",
            1000,
        ))
        .await;
    let result = three_ds(&env, &payment, 1).await;
    let details: Value = env
        .post(
            "/payments/details",
            &json!({"details": {"redirectResult": result}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(details["resultCode"], "Refused");
    assert_eq!(details["refusalReason"], "3D Not Authenticated");
    assert_eq!(details["refusalReasonCode"], "11");
    assert_eq!(details["additionalData"]["threeDOffered"], "true");
    assert_eq!(details["additionalData"]["threeDAuthenticated"], "false");
    assert_eq!(
        details["additionalData"]["threeDAuthenticatedResponse"],
        "N"
    );
    assert_eq!(details["additionalData"]["liabilityShift"], "false");
    assert_eq!(env.next_hook().await["success"], "false");

    // Shopper cancels: third form.
    let payment = env
        .pay(&browser_payment_body(
            "4212345678901237",
            "John Smith",
            1000,
        ))
        .await;
    let result = three_ds(&env, &payment, 2).await;
    let details: Value = env
        .post(
            "/payments/details",
            &json!({"details": {"redirectResult": result}}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(details["resultCode"], "Cancelled");
    assert_eq!(env.next_hook().await["success"], "false");

    // Unknown redirectResult.
    let res = env
        .post(
            "/payments/details",
            &json!({"details": {"redirectResult": "nope"}}),
        )
        .await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "14_018",
        "validation",
    )
    .await;
}

#[tokio::test]
async fn captures_partial_full_and_strictness() {
    let mut env = env().await;
    // Full capture.
    let psp = env.authorised(1000).await;
    let answer = env.capture(&psp, 1000).await;
    assert_eq!(answer["amount"], json!({"value": 1000, "currency": "EUR"}));
    assert_eq!(answer["reference"], "cap-1");
    assert_eq!(answer["merchantAccount"], ACCOUNT);
    let hook = env.next_hook().await;
    assert_eq!(hook["eventCode"], "CAPTURE");
    assert_eq!(hook["success"], "true");
    assert_eq!(hook["originalReference"], psp.as_str());
    assert_eq!(hook["pspReference"], answer["pspReference"]);
    assert_eq!(hook["amount"]["value"], 1000);
    // Nothing left to capture.
    env.capture(&psp, 1).await;
    let hook = env.next_hook().await;
    assert_eq!(hook["success"], "false");
    assert_eq!(hook["reason"], "Insufficient balance on payment");

    // Over-capture: accepted, then fails by webhook.
    let psp = env.authorised(1000).await;
    env.capture(&psp, 1001).await;
    let hook = env.next_hook().await;
    assert_eq!(
        (hook["eventCode"].as_str(), hook["success"].as_str()),
        (Some("CAPTURE"), Some("false"))
    );
    assert_eq!(env.inspect(&psp).await["captured"], 0);

    // Partial capture: by default the rest is released.
    env.capture(&psp, 400).await;
    assert_eq!(env.next_hook().await["success"], "true");
    env.capture(&psp, 100).await;
    assert_eq!(env.next_hook().await["success"], "false");
    assert_eq!(env.inspect(&psp).await["captured"], 400);

    // Wrong currency.
    let psp = env.authorised(1000).await;
    env.modify(
        &psp,
        "captures",
        &json!({"merchantAccount": ACCOUNT, "amount": {"value": 100, "currency": "USD"}}),
    )
    .await;
    assert_eq!(env.next_hook().await["success"], "false");

    // Capture after cancel fails.
    env.modify(
        &psp,
        "cancels",
        &json!({"merchantAccount": ACCOUNT, "reference": "c-1"}),
    )
    .await;
    let hook = env.next_hook().await;
    assert_eq!(
        (hook["eventCode"].as_str(), hook["success"].as_str()),
        (Some("CANCELLATION"), Some("true"))
    );
    assert_eq!(hook["originalReference"], psp.as_str());
    env.capture(&psp, 100).await;
    assert_eq!(env.next_hook().await["success"], "false");
    // Cancelling twice fails too.
    env.modify(&psp, "cancels", &json!({"merchantAccount": ACCOUNT}))
        .await;
    assert_eq!(env.next_hook().await["success"], "false");

    // A refused payment cannot be captured.
    let refused = env
        .pay(&payment_body("4111111111111111", "DECLINED", 1000))
        .await;
    env.next_hook().await;
    env.capture(refused["pspReference"].as_str().unwrap(), 1000)
        .await;
    assert_eq!(env.next_hook().await["success"], "false");
}

#[tokio::test]
async fn multiple_partial_captures_when_enabled() {
    let mut env = env_with(|c| c.multiple_partial_captures = true).await;
    let psp = env.authorised(1000).await;
    for _ in 0..2 {
        env.capture(&psp, 500).await;
        assert_eq!(env.next_hook().await["success"], "true");
    }
    env.capture(&psp, 1).await;
    assert_eq!(env.next_hook().await["success"], "false");
    assert_eq!(env.inspect(&psp).await["captured"], 1000);
}

#[tokio::test]
async fn refunds_up_to_captured_and_reversals() {
    let mut env = env().await;
    let psp = env.authorised(1000).await;
    // Nothing captured yet: refund fails.
    env.refund(&psp, 100).await;
    assert_eq!(env.next_hook().await["success"], "false");
    env.capture(&psp, 1000).await;
    env.next_hook().await;
    for value in [300, 300, 400] {
        let answer = env.refund(&psp, value).await;
        let hook = env.next_hook().await;
        assert_eq!(hook["eventCode"], "REFUND");
        assert_eq!(hook["success"], "true");
        assert_eq!(hook["amount"]["value"], value);
        assert_eq!(hook["pspReference"], answer["pspReference"]);
        assert_eq!(hook["originalReference"], psp.as_str());
    }
    env.refund(&psp, 1).await;
    let hook = env.next_hook().await;
    assert_eq!(hook["success"], "false");
    assert_eq!(hook["reason"], "Insufficient balance on payment");
    let state = env.inspect(&psp).await;
    assert_eq!(
        (state["captured"].as_u64(), state["refunded"].as_u64()),
        (Some(1000), Some(1000))
    );

    // Reversal of an uncaptured payment: a cancel.
    let psp = env.authorised(800).await;
    env.modify(&psp, "reversals", &json!({"merchantAccount": ACCOUNT}))
        .await;
    let hook = env.next_hook().await;
    assert_eq!(hook["eventCode"], "CANCEL_OR_REFUND");
    assert_eq!(hook["success"], "true");
    assert_eq!(hook["additionalData"]["modification.action"], "cancel");
    // Reversal of a captured payment: a refund.
    let psp = env.authorised(800).await;
    env.capture(&psp, 800).await;
    env.next_hook().await;
    env.modify(&psp, "reversals", &json!({"merchantAccount": ACCOUNT}))
        .await;
    let hook = env.next_hook().await;
    assert_eq!(hook["additionalData"]["modification.action"], "refund");
    assert_eq!(env.inspect(&psp).await["refunded"], 800);
}

#[tokio::test]
async fn late_failures_by_holder_name() {
    let mut env = env().await;
    let payment = env
        .pay(&payment_body("4111111111111111", "capture failed", 1000))
        .await;
    env.next_hook().await;
    let psp = payment["pspReference"].as_str().unwrap();
    env.capture(psp, 1000).await;
    let first = env.next_hook().await;
    assert_eq!(
        (first["eventCode"].as_str(), first["success"].as_str()),
        (Some("CAPTURE"), Some("true"))
    );
    let second = env.next_hook().await;
    assert_eq!(second["eventCode"], "CAPTURE_FAILED");
    assert_eq!(second["originalReference"], psp);

    let payment = env
        .pay(&payment_body("4111111111111111", "refund failed", 1000))
        .await;
    env.next_hook().await;
    let psp = payment["pspReference"].as_str().unwrap();
    env.capture(psp, 1000).await;
    env.next_hook().await;
    env.refund(psp, 500).await;
    assert_eq!(env.next_hook().await["eventCode"], "REFUND");
    assert_eq!(env.next_hook().await["eventCode"], "REFUND_FAILED");
    assert_eq!(env.inspect(psp).await["refunded"], 0);
}

#[tokio::test]
async fn standalone_cancel_by_reference() {
    let mut env = env().await;
    let psp = env.authorised(1000).await;
    let res = env
        .post(
            "/cancels",
            &json!({"merchantAccount": ACCOUNT, "paymentReference": "order-1", "reference": "c-9"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["paymentReference"], "order-1");
    assert_eq!(answer["status"], "received");
    let hook = env.next_hook().await;
    assert_eq!(hook["eventCode"], "CANCELLATION");
    assert_eq!(hook["originalReference"], psp.as_str());
    assert_eq!(hook["success"], "true");
}

/// A change to a valid payment request.
type Change = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn validation_errors() {
    let env = env().await;
    let cases: Vec<(Change, StatusCode, &str, &str)> = vec![
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("amount");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "100",
            "validation",
        ),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("reference");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "130",
            "validation",
        ),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("returnUrl");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "14_030",
            "validation",
        ),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("merchantAccount");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "000",
            "validation",
        ),
        (
            Box::new(|b| {
                b.as_object_mut().unwrap().remove("paymentMethod");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "000",
            "validation",
        ),
        (
            Box::new(|b| {
                b["amount"]["value"] = json!("10.00");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "137",
            "validation",
        ),
        (
            Box::new(|b| {
                b["amount"]["currency"] = json!("euro");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "138",
            "validation",
        ),
        (
            Box::new(|b| {
                b["reference"] = json!("x".repeat(81));
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "000",
            "validation",
        ),
        (
            Box::new(|b| {
                b["paymentMethod"]["number"] = json!("4111111111111112");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "101",
            "validation",
        ),
        (
            Box::new(|b| {
                b["paymentMethod"]["expiryMonth"] = json!("13");
            }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "129",
            "validation",
        ),
        (
            Box::new(|b| {
                b["merchantAccount"] = json!("SomeoneElse");
            }),
            StatusCode::FORBIDDEN,
            "901",
            "security",
        ),
    ];
    for (change, status, code, error_type) in cases {
        let mut body = payment_body("4111111111111111", "John Smith", 1000);
        change(&mut body);
        let res = env.post("/payments", &body).await;
        let err = expect_error(res, status, code, error_type).await;
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(err["pspReference"].as_str().unwrap().len(), 16);
        }
    }
    let res = env
        .http
        .post(env.url("/payments"))
        .header("X-API-Key", KEY)
        .header("Content-Type", "application/json")
        .body("{\"amount\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, StatusCode::BAD_REQUEST, "702", "validation").await;

    // Modifications.
    let res = env
        .post(
            "/payments/ABCDEFGHIJKLMNOP/captures",
            &json!({"merchantAccount": ACCOUNT, "amount": {"value": 1, "currency": "EUR"}}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "167", "validation").await;
    let res = env
        .post(
            "/payments/ABCDEFGHIJKLMNOP/refunds",
            &json!({"merchantAccount": ACCOUNT}),
        )
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "100", "validation").await;
    let res = env
        .post("/payments/ABCDEFGHIJKLMNOP/cancels", &json!({}))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    let res = env
        .post("/payments/details", &json!({"paymentData": "x"}))
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    // Unsupported payment method type (Adyen: 500 905 configuration).
    let mut body = payment_body("4111111111111111", "A", 1000);
    body["paymentMethod"] = json!({"type": "ideal"});
    let res = env.post("/payments", &body).await;
    expect_error(
        res,
        StatusCode::INTERNAL_SERVER_ERROR,
        "905",
        "configuration",
    )
    .await;
}

#[tokio::test]
async fn idempotency_key() {
    let mut env = env().await;
    let body = payment_body("4111111111111111", "John Smith", 990);
    let first = env
        .post_with("/payments", &body, &[("Idempotency-Key", "key-1")])
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["idempotency-key"], "key-1");
    let first: Value = first.json().await.unwrap();
    env.next_hook().await;
    let second = env
        .post_with("/payments", &body, &[("Idempotency-Key", "key-1")])
        .await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.headers()["idempotency-key"], "key-1");
    let second: Value = second.json().await.unwrap();
    assert_eq!(first, second);
    env.no_hook(Duration::from_millis(300)).await;
    // Same key, other body.
    let other = payment_body("4111111111111111", "John Smith", 991);
    let res = env
        .post_with("/payments", &other, &[("Idempotency-Key", "key-1")])
        .await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    // Captures too.
    let psp = first["pspReference"].as_str().unwrap();
    let capture = json!({"merchantAccount": ACCOUNT, "amount": {"value": 990, "currency": "EUR"}});
    let a: Value = env
        .post_with(
            &format!("/payments/{psp}/captures"),
            &capture,
            &[("Idempotency-Key", "cap")],
        )
        .await
        .json()
        .await
        .unwrap();
    let b: Value = env
        .post_with(
            &format!("/payments/{psp}/captures"),
            &capture,
            &[("Idempotency-Key", "cap")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(env.next_hook().await["success"], "true");
    env.no_hook(Duration::from_millis(300)).await;
    assert_eq!(
        env.inspect(psp).await["modifications"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn api_faults() {
    let mut env = env().await;
    let body = payment_body("4111111111111111", "John Smith", 1000);
    // http_500 by header: no effect.
    let res = env
        .post_with("/payments", &body, &[("X-Sandbox-Fault", "http_500")])
        .await;
    expect_error(res, StatusCode::INTERNAL_SERVER_ERROR, "000", "internal").await;
    env.no_hook(Duration::from_millis(200)).await;
    // malformed by header.
    let res = env
        .post_with("/payments", &body, &[("X-Sandbox-Fault", "malformed")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&res.bytes().await.unwrap()).is_err());
    env.no_hook(Duration::from_millis(200)).await;
    // delay.
    let start = Instant::now();
    let res = env
        .post_with("/payments", &body, &[("X-Sandbox-Fault", "delay:400")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(start.elapsed() >= Duration::from_millis(400));
    env.next_hook().await;

    // Per account, count 2, then cleared by "none".
    env.fault("http_500", 2).await;
    for _ in 0..2 {
        assert_eq!(
            env.post("/payments", &body).await.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
    assert_eq!(env.post("/payments", &body).await.status(), StatusCode::OK);
    env.next_hook().await;
    env.fault("malformed", 3).await;
    env.fault("none", 1).await;
    assert_eq!(env.post("/payments", &body).await.status(), StatusCode::OK);
    env.next_hook().await;

    // timeout: no effect; other requests are not held up meanwhile.
    let psp = env.authorised(1000).await;
    let short = client(Duration::from_millis(500));
    let capture = json!({"merchantAccount": ACCOUNT, "amount": {"value": 1000, "currency": "EUR"}});
    let start = Instant::now();
    let res = short
        .post(env.url(&format!("/payments/{psp}/captures")))
        .header("X-API-Key", KEY)
        .header("X-Sandbox-Fault", "timeout")
        .json(&capture)
        .send()
        .await;
    assert!(res.unwrap_err().is_timeout());
    assert_eq!(env.inspect(&psp).await["captured"], 0);
    let quick = env.post("/payments", &body).await;
    assert_eq!(quick.status(), StatusCode::OK);
    assert!(start.elapsed() < Duration::from_secs(5));
    env.next_hook().await;
    env.no_hook(Duration::from_millis(200)).await;

    // timeout_after_effect (per account): the capture happens and is notified.
    env.fault("timeout_after_effect", 1).await;
    let res = short
        .post(env.url(&format!("/payments/{psp}/captures")))
        .header("X-API-Key", KEY)
        .json(&capture)
        .send()
        .await;
    assert!(res.unwrap_err().is_timeout());
    assert_eq!(env.inspect(&psp).await["captured"], 1000);
    assert_eq!(env.next_hook().await["eventCode"], "CAPTURE");
}

#[tokio::test]
async fn notification_faults() {
    let mut env = env().await;
    let body = payment_body("4111111111111111", "John Smith", 1000);
    // Drop (header).
    let res = env
        .post_with(
            "/payments",
            &body,
            &[("X-Sandbox-Fault", "notification_drop")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    env.no_hook(Duration::from_millis(500)).await;
    // Duplicate (per account).
    env.fault("notification_duplicate", 1).await;
    let payment = env.pay(&body).await;
    let a = env.next_hook().await;
    let b = env.next_hook().await;
    assert_eq!(a, b);
    assert_eq!(a["pspReference"], payment["pspReference"]);
    env.no_hook(Duration::from_millis(300)).await;
    // Out of order: held back until the next one has been delivered.
    let psp = env.authorised(1000).await;
    env.fault("notification_out_of_order", 1).await;
    env.modify(
        &psp,
        "captures",
        &json!({"merchantAccount": ACCOUNT, "amount": {"value": 300, "currency": "EUR"}}),
    )
    .await;
    env.no_hook(Duration::from_millis(300)).await;
    env.refund(&psp, 100).await;
    assert_eq!(env.next_hook().await["eventCode"], "REFUND");
    assert_eq!(env.next_hook().await["eventCode"], "CAPTURE");
    // Out of order with nothing following: delivered after about 2 s.
    let start = Instant::now();
    env.refund(&psp, 100).await;
    // (the header applies to the notification of this very request)
    let res = env
        .post_with(
            &format!("/payments/{psp}/refunds"),
            &json!({"merchantAccount": ACCOUNT, "amount": {"value": 50, "currency": "EUR"}}),
            &[("X-Sandbox-Fault", "notification_out_of_order")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(env.next_hook().await["amount"]["value"], 100);
    let late = env.next_hook().await;
    assert_eq!(late["amount"]["value"], 50);
    assert!(start.elapsed() >= Duration::from_millis(1800));
}

#[tokio::test]
async fn webhook_url_registered_per_account() {
    let (url, mut hooks) = receiver().await;
    let mut env = env_with(|c| c.webhook_url = None).await;
    // No URL: nothing is sent.
    env.pay(&payment_body("4111111111111111", "A", 100)).await;
    env.no_hook(Duration::from_millis(300)).await;
    let res = env
        .http
        .post(env.url("/_sandbox/webhooks"))
        .json(&json!({"merchantAccount": ACCOUNT, "url": url}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let payment = env.pay(&payment_body("4111111111111111", "A", 100)).await;
    let hook = next_hook(&mut hooks).await;
    assert_eq!(hook["pspReference"], payment["pspReference"]);
}

#[tokio::test]
async fn schema_validation_against_the_official_document() {
    if specs_dir().is_none() {
        return;
    }
    let env = env().await;
    // A member the schema does not know.
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body["shopperNickname"] = json!("x");
    let res = env.post("/payments", &body).await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    assert_eq!(
        err["message"],
        "Structure of PaymentRequest contains the following unknown fields: [shopperNickname]"
    );
    // A wrong type deep inside (browserInfo.colorDepth is an integer).
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body["browserInfo"] = json!({"acceptHeader": "*/*", "colorDepth": "deep", "javaEnabled": false,
        "language": "en", "screenHeight": 1, "screenWidth": 1, "timeZoneOffset": 0, "userAgent": "x"});
    let res = env.post("/payments", &body).await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("browserInfo.colorDepth"),
        "{err}"
    );
    // An enum: captureDelayHours is fine, but shopperInteraction must be documented.
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body["shopperInteraction"] = json!("Telepathy");
    let res = env.post("/payments", &body).await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("shopperInteraction"),
        "{err}"
    );
    // Modifications too.
    let res = env
        .post(
            "/payments/ABCDEFGHIJKLMNOP/captures",
            &json!({"merchantAccount": ACCOUNT, "amount": {"value": 1, "currency": "EUR"}, "foo": 1}),
        )
        .await;
    let err = expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    assert_eq!(
        err["message"],
        "Structure of PaymentCaptureRequest contains the following unknown fields: [foo]"
    );
    // Nothing was created or notified.
    let mut env = env;
    env.no_hook(Duration::from_millis(200)).await;
}

fn luhn_valid(digits: &str) -> bool {
    passerelle_sandbox::luhn::is_valid(digits)
}

#[tokio::test]
async fn psp_references_are_digits_and_can_be_made_luhn_valid() {
    let mut env = env().await;
    let psp = env.authorised(1000).await;
    assert!(
        psp.len() == 16 && psp.bytes().all(|b| b.is_ascii_digit()),
        "{psp}"
    );

    let res = env
        .http
        .post(env.url("/_sandbox/references"))
        .json(&json!({"luhn_valid": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"luhn_valid": true})
    );
    // Payments and modifications alike, every time.
    for _ in 0..5 {
        let psp = env.authorised(1000).await;
        assert!(psp.len() == 16 && luhn_valid(&psp), "{psp}");
        let answer = env.capture(&psp, 1000).await;
        let capture = answer["pspReference"].as_str().unwrap();
        assert!(luhn_valid(capture), "{answer}");
        env.next_hook().await;
    }

    let res = env
        .http
        .post(env.url("/_sandbox/references"))
        .json(&json!({"luhn_valid": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// Validation comes before the faults: a request Adyen would refuse is
/// refused (422) even when the test asked for a 500, a timeout or garbage,
/// so no request escapes the checks. (Before, the fault answered first and
/// the request was never looked at.)
#[tokio::test]
async fn requests_are_checked_before_any_fault() {
    let mut env = env().await;
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body.as_object_mut().unwrap().remove("returnUrl");
    for fault in ["http_500", "malformed", "timeout"] {
        let res = env
            .post_with("/payments", &body, &[("X-Sandbox-Fault", fault)])
            .await;
        expect_error(
            res,
            StatusCode::UNPROCESSABLE_ENTITY,
            "14_030",
            "validation",
        )
        .await;
    }
    // An account fault is not used up by a refused request: the next
    // valid call gets it.
    env.fault("http_500", 1).await;
    let res = env.post("/payments", &body).await;
    expect_error(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "14_030",
        "validation",
    )
    .await;
    let res = env
        .post(
            "/payments",
            &payment_body("4111111111111111", "John Smith", 1000),
        )
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    env.no_hook(Duration::from_millis(200)).await;
    if specs_dir().is_some() {
        // A schema violation too (a member v71 does not know).
        let mut body = payment_body("4111111111111111", "John Smith", 1000);
        body["paymentMethod"]["nickname"] = json!("x");
        let res = env
            .post_with("/payments", &body, &[("X-Sandbox-Fault", "http_500")])
            .await;
        expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
    }
}

/// Amounts are in Adyen's minor units, which differ from ISO 4217 for CLP,
/// CVE, IDR and ISK (docs.adyen.com/development-resources/currency-codes):
/// the simulator reads them as Adyen would charge them.
#[tokio::test]
async fn amounts_are_read_with_adyens_decimals() {
    let mut env = env().await;
    for (value, currency, shown) in [
        (15_000u64, "IDR", "15000 IDR"),
        (1_500, "CLP", "15.00 CLP"),
        (279_000, "ISK", "2790.00 ISK"),
        (15, "CVE", "15 CVE"),
        (1_050, "EUR", "10.50 EUR"),
        (1_005, "KWD", "1.005 KWD"),
        (1_050, "JPY", "1050 JPY"),
    ] {
        let mut body = payment_body("4111111111111111", "John Smith", value);
        body["amount"]["currency"] = json!(currency);
        let payment = env.pay(&body).await;
        env.next_hook().await;
        let state = env.inspect(payment["pspReference"].as_str().unwrap()).await;
        assert_eq!(state["formattedAmount"], shown, "{state}");
    }
    // The issuer's page shows the amount the shopper will pay.
    let mut body = browser_payment_body("4212345678901237", "John Smith", 15_000);
    body["amount"]["currency"] = json!("IDR");
    let payment = env.pay(&body).await;
    let page = env
        .http
        .get(payment["action"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("15000 IDR"), "{page}");
}

/// A 3-D Secure 2 card paid without the browser's data: the issuer wants
/// authentication, the browser flow cannot run it, so Adyen answers the
/// issuer's soft decline, refusal 38 "Authentication required".
#[tokio::test]
async fn three_ds_card_without_browser_info_is_a_soft_decline() {
    let mut env = env().await;
    let payment = env
        .pay(&payment_body("4212345678901237", "John Smith", 1000))
        .await;
    assert_eq!(payment["resultCode"], "Refused", "{payment}");
    assert_eq!(payment["refusalReason"], "Authentication required");
    assert_eq!(payment["refusalReasonCode"], "38");
    assert_eq!(payment["additionalData"]["threeDOffered"], "false");
    let hook = env.next_hook().await;
    assert_eq!(hook["success"], "false");
    assert_eq!(hook["reason"], "Authentication required");
    // A payment without 3-D Secure reports it was not offered.
    let payment = env
        .pay(&browser_payment_body(
            "4111111111111111",
            "John Smith",
            1000,
        ))
        .await;
    assert_eq!(payment["resultCode"], "Authorised");
    let extra = &payment["additionalData"];
    assert_eq!(
        (
            extra["threeDOffered"].as_str(),
            extra["threeDAuthenticated"].as_str(),
            extra["liabilityShift"].as_str()
        ),
        (Some("false"), Some("false"), Some("false")),
        "{payment}"
    );
    assert_eq!(extra["cardSummary"], "1111");
    let state = env.inspect(payment["pspReference"].as_str().unwrap()).await;
    assert_eq!(state["browserInfo"], true, "{state}");
    env.next_hook().await;
}

/// "Multiple partial captures" is a merchant account setting: off, a
/// partial capture releases the rest; on, captures add up.
#[tokio::test]
async fn multiple_partial_captures_is_an_account_setting() {
    let mut env = env().await;
    let psp = env.authorised(1000).await;
    env.capture(&psp, 400).await;
    assert_eq!(env.next_hook().await["success"], "true");
    env.capture(&psp, 100).await;
    assert_eq!(env.next_hook().await["success"], "false");

    let res = env
        .http
        .post(env.url("/_sandbox/settings"))
        .json(&json!({"merchantAccount": ACCOUNT, "multiplePartialCaptures": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let psp = env.authorised(1000).await;
    for _ in 0..2 {
        env.capture(&psp, 400).await;
        assert_eq!(env.next_hook().await["success"], "true");
    }
    assert_eq!(env.inspect(&psp).await["captured"], 800);
    let res = env
        .http
        .post(env.url("/_sandbox/settings"))
        .json(&json!({"merchantAccount": ACCOUNT, "multiplePartialCaptures": "yes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// `captureDelayHours` above 0 delays the automatic capture (up to 672
/// hours, Adyen's maximum); when the delay elapses Adyen captures and
/// notifies CAPTURE.
#[tokio::test]
async fn delayed_automatic_capture() {
    let mut env = env().await;
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body["captureDelayHours"] = json!(48);
    let payment = env.pay(&body).await;
    assert_eq!(payment["resultCode"], "Authorised");
    env.next_hook().await;
    let psp = payment["pspReference"].as_str().unwrap().to_owned();
    let state = env.inspect(&psp).await;
    assert_eq!(
        (
            state["captured"].as_u64(),
            state["captureDelayHours"].as_u64()
        ),
        (Some(0), Some(48)),
        "{state}"
    );
    assert_eq!(elapse_capture_delay(&env, &psp).await, StatusCode::OK);
    let hook = env.next_hook().await;
    assert_eq!(
        (hook["eventCode"].as_str(), hook["success"].as_str()),
        (Some("CAPTURE"), Some("true"))
    );
    assert_eq!(hook["originalReference"], psp.as_str());
    assert_eq!(hook["amount"]["value"], 1000);
    assert_eq!(env.inspect(&psp).await["captured"], 1000);
    assert_eq!(elapse_capture_delay(&env, &psp).await, StatusCode::CONFLICT);

    // Beyond 28 days.
    body["captureDelayHours"] = json!(673);
    let res = env.post("/payments", &body).await;
    expect_error(res, StatusCode::UNPROCESSABLE_ENTITY, "000", "validation").await;
}

async fn elapse_capture_delay(env: &Env, psp: &str) -> StatusCode {
    env.http
        .post(env.url(&format!("/_sandbox/payments/{psp}/capture-delay-elapsed")))
        .send()
        .await
        .unwrap()
        .status()
}

/// The simulator's answers are what the official document describes.
#[tokio::test]
async fn answers_conform_to_the_official_document() {
    let Some(dir) = specs_dir() else {
        return;
    };
    let spec = passerelle_sandbox::openapi::ApiSpec::load(
        &SpecSource::Dir(dir),
        &["adyen/CheckoutService-v71.json"],
    )
    .unwrap()
    .unwrap();
    let check = |path: &str, status: u16, body: &Value| {
        if let Err(violations) = spec.validate_response("POST", path, status, body) {
            panic!("{path} {status} {body}: {violations:?}");
        }
    };
    let mut env = env().await;
    let authorised = env
        .pay(&browser_payment_body(
            "4111111111111111",
            "John Smith",
            1000,
        ))
        .await;
    check("/payments", 200, &authorised);
    env.next_hook().await;
    let refused = env
        .pay(&payment_body("4111111111111111", "DECLINED", 1000))
        .await;
    check("/payments", 200, &refused);
    env.next_hook().await;
    let redirect = env
        .pay(&browser_payment_body(
            "4212345678901237",
            "John Smith",
            1000,
        ))
        .await;
    check("/payments", 200, &redirect);
    let result = three_ds(&env, &redirect, 0).await;
    let details: Value = env
        .post(
            "/payments/details",
            &json!({"details": {"redirectResult": result}}),
        )
        .await
        .json()
        .await
        .unwrap();
    check("/payments/details", 200, &details);
    env.next_hook().await;
    let psp = authorised["pspReference"].as_str().unwrap();
    let capture = env.capture(psp, 1000).await;
    check("/payments/{paymentPspReference}/captures", 201, &capture);
    env.next_hook().await;
    let refund = env.refund(psp, 500).await;
    check("/payments/{paymentPspReference}/refunds", 201, &refund);
    env.next_hook().await;
    let res = env
        .post("/payments", &json!({"merchantAccount": ACCOUNT}))
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    check("/payments", 422, &res.json().await.unwrap());
}

/// `GET /_sandbox/validation` counts what was checked and keeps the
/// refusals, so a test of a connector can assert that all it sent passed.
#[tokio::test]
async fn validation_report() {
    let mut env = env().await;
    env.authorised(1000).await;
    let mut body = payment_body("4111111111111111", "John Smith", 1000);
    body.as_object_mut().unwrap().remove("reference");
    let res = env.post("/payments", &body).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let report: Value = env
        .http
        .get(env.url("/_sandbox/validation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["documents"], specs_dir().is_some(), "{report}");
    assert_eq!(report["checked"]["POST /payments"], 2, "{report}");
    let violations = report["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{report}");
    assert_eq!(violations[0]["errorCode"], "130");
    assert_eq!(violations[0]["operation"], "POST /payments");
}
