//! Drives a running sandbox's Worldline Sips 2.0 simulator over real HTTP
//! (docs/sandbox/sips.md), the way a merchant server and a browser would.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use passerelle_sandbox::{sips, Sandbox, SandboxConfig, SandboxHandle};
use reqwest::{redirect, Client, Response, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::mpsc,
};

const MERCHANT: &str = "002001000000001";
const SECRET: &str = "002001000000001_KEY1";

// ---------------------------------------------------------------------------
// Independent seal computations.

/// Values sorted by member name (byte order), nested objects likewise,
/// lists in order; top-level keyVersion/sealAlgorithm/seal left out.
fn seal_string(value: &Value, top: bool) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            keys.into_iter()
                .filter(|k| !(top && ["keyVersion", "sealAlgorithm", "seal"].contains(&k.as_str())))
                .map(|k| seal_string(&map[k], false))
                .collect()
        }
        Value::Array(items) => items.iter().map(|v| seal_string(v, false)).collect(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
    }
}

fn hmac_hex(key: &str, data: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn sha_hex(data: &str, key: &str) -> String {
    hex::encode(Sha256::digest(format!("{data}{key}").as_bytes()))
}

fn sign(mut body: Value) -> Value {
    body["keyVersion"] = json!(1);
    let seal = hmac_hex(SECRET, &seal_string(&body, true));
    body["seal"] = json!(seal);
    body
}

fn assert_sealed(answer: &Value) {
    let seal = answer["seal"]
        .as_str()
        .unwrap_or_else(|| panic!("no seal: {answer}"));
    assert_eq!(
        seal,
        hmac_hex(SECRET, &seal_string(answer, true)),
        "{answer}"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    decode64(
        text,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    )
}

fn base64url_decode(text: &str) -> Vec<u8> {
    decode64(
        text,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    )
}

fn decode64(text: &str, alphabet: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6)
            | alphabet
                .iter()
                .position(|a| *a == c)
                .unwrap_or_else(|| panic!("{:?} is not in the alphabet", c as char))
                as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn parse_data(data: &str) -> HashMap<String, String> {
    data.split('|')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Minimal HTML form handling, as a browser would.

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// A form: (method, action, hidden fields).
type HtmlForm = (String, String, Vec<(String, String)>);

/// The page's forms in order.
fn forms(html: &str) -> Vec<HtmlForm> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let end = rest[start..].find("</form>").unwrap() + start;
        let form = &rest[start..end];
        let tag_end = form.find('>').unwrap();
        let tag = &form[..tag_end];
        let mut hidden = Vec::new();
        let mut inputs = &form[tag_end..];
        while let Some(i) = inputs.find("<input") {
            let j = inputs[i..].find('>').unwrap() + i;
            let input = &inputs[i..j];
            if attr(input, "type").as_deref() == Some("hidden") {
                hidden.push((attr(input, "name").unwrap(), attr(input, "value").unwrap()));
            }
            inputs = &inputs[j..];
        }
        out.push((
            attr(tag, "method").unwrap(),
            attr(tag, "action").unwrap(),
            hidden,
        ));
        rest = &rest[end..];
    }
    out
}

fn hidden(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no hidden {name}"))
}

// ---------------------------------------------------------------------------
// Environment.

struct Env {
    _sandbox: SandboxHandle,
    base: String,
    http: Client,
}

async fn env() -> Env {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let base = sandbox.sips_base_url();
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

fn payment_request(reference: &str, amount: u64, mode: &str, day: u32) -> Value {
    json!({
        "amount": amount, "currencyCode": "978", "merchantId": MERCHANT,
        "normalReturnUrl": "https://shop.example/sips/return?cart=7",
        "orderChannel": "INTERNET", "transactionReference": reference,
        "interfaceVersion": "IR_WS_2.20", "captureMode": mode, "captureDay": day,
        "orderId": "order-42",
    })
}

/// What the browser brings back to the shop.
struct Outcome {
    action: String,
    fields: Vec<(String, String)>,
    data: HashMap<String, String>,
}

impl Env {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post_json(&self, path: &str, body: &Value, fault: Option<&str>) -> Response {
        let mut req = self.http.post(self.url(path)).json(body);
        if let Some(fault) = fault {
            req = req.header("X-Sandbox-Fault", fault);
        }
        req.send().await.unwrap()
    }

    /// `paymentInit` with a signed request; checks the answer's seal when sealed.
    async fn init(&self, body: Value) -> Value {
        let res = self
            .post_json("/rs-services/v2/paymentInit", &sign(body), None)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let answer: Value = res.json().await.unwrap();
        if answer.get("seal").is_some() {
            assert_sealed(&answer);
        }
        answer
    }

    /// `paymentInit` then the browser's POST to `redirectionUrl`: the card page.
    async fn start(&self, body: Value) -> (String, String) {
        let answer = self.init(body).await;
        assert_eq!(answer["redirectionStatusCode"], "00", "{answer}");
        let url = answer["redirectionUrl"].as_str().unwrap().to_owned();
        assert_eq!(url, self.url("/payment"));
        let token = answer["redirectionData"].as_str().unwrap().to_owned();
        let res = self
            .http
            .post(&url)
            .form(&[
                (
                    "redirectionVersion",
                    answer["redirectionVersion"].as_str().unwrap(),
                ),
                ("redirectionData", token.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        (token, res.text().await.unwrap())
    }

    async fn submit(
        &self,
        action: &str,
        fields: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> (StatusCode, String) {
        let mut form: Vec<(String, String)> = fields.to_vec();
        form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let res = self.http.post(action).form(&form).send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }

    /// Pays on the card page (its first form) and returns the return form.
    async fn pay(&self, page: &str, card: &str, month: &str, year: &str) -> String {
        let (method, action, fields) = forms(page).remove(0);
        assert_eq!(method, "post");
        assert_eq!(action, self.url("/payment/card"));
        let (status, html) = self
            .submit(
                &action,
                &fields,
                &[
                    ("cardNumber", card),
                    ("expiryMonth", month),
                    ("expiryYear", year),
                    ("cvv", "123"),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(
            !html.contains(card) || card.len() < 12,
            "the page echoes the card number"
        );
        html
    }

    fn outcome(&self, html: &str, hmac: bool) -> Outcome {
        let (method, action, fields) = forms(html).remove(0);
        assert_eq!(method, "post");
        let data = hidden(&fields, "Data");
        let seal = hidden(&fields, "Seal");
        let expected = if hmac {
            hmac_hex(SECRET, &data)
        } else {
            sha_hex(&data, SECRET)
        };
        assert_eq!(seal, expected, "Data seal");
        let plain = match hidden(&fields, "Encode").as_str() {
            "base64" => String::from_utf8(base64_decode(&data)).unwrap(),
            "base64url" => String::from_utf8(base64url_decode(&data)).unwrap(),
            "" => data,
            other => panic!("Encode={other}"),
        };
        Outcome {
            action,
            fields,
            data: parse_data(&plain),
        }
    }

    /// A whole approved payment with `4111111111111111`.
    async fn paid(&self, reference: &str, amount: u64, mode: &str, day: u32) -> Outcome {
        let (_, page) = self
            .start(payment_request(reference, amount, mode, day))
            .await;
        let html = self.pay(&page, "4111111111111111", "12", "2035").await;
        let outcome = self.outcome(&html, false);
        assert_eq!(outcome.data["responseCode"], "00");
        outcome
    }

    async fn office(&self, op: &str, body: Value) -> Value {
        let res = self
            .post_json(&format!("/rs-services/v2/{op}"), &sign(body), None)
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let answer: Value = res.json().await.unwrap();
        assert_sealed(&answer);
        answer
    }

    async fn operation(&self, op: &str, reference: &str, amount: u64) -> Value {
        self.office(
            &format!("cashManagement/{op}"),
            json!({"merchantId": MERCHANT, "transactionReference": reference,
                   "operationAmount": amount, "currencyCode": "978", "interfaceVersion": "CR_WS_2.27"}),
        )
        .await
    }

    async fn diagnostic(&self, reference: &str) -> Value {
        self.office(
            "diagnostic/getTransactionData",
            json!({"merchantId": MERCHANT, "transactionReference": reference, "interfaceVersion": "DR_WS_2.9"}),
        )
        .await
    }

    async fn control(&self, reference: &str) -> Option<Value> {
        let res = self
            .http
            .get(self.url(&format!("/_sandbox/transactions/{MERCHANT}/{reference}")))
            .send()
            .await
            .unwrap();
        match res.status() {
            StatusCode::OK => Some(res.json().await.unwrap()),
            StatusCode::NOT_FOUND => None,
            other => panic!("control answered {other}"),
        }
    }

    /// Moves the payment `days` back in time (simulated remittances run).
    async fn age(&self, reference: &str, days: u64) -> Value {
        let res = self
            .http
            .post(self.url(&format!(
                "/_sandbox/transactions/{MERCHANT}/{reference}/age"
            )))
            .json(&json!({ "days": days }))
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
            .json(&json!({"account": MERCHANT, "mode": mode, "count": count}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}

/// A local endpoint receiving automatic responses: yields each POSTed form.
async fn receiver() -> (String, mpsc::UnboundedReceiver<HashMap<String, String>>) {
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
                assert!(head.starts_with("POST /sips-notify "), "{head}");
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
                let len: usize = headers["content-length"].parse().unwrap();
                while buf.len() < header_end + len {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0);
                    buf.extend_from_slice(&chunk[..n]);
                }
                let form: HashMap<String, String> =
                    url::form_urlencoded::parse(&buf[header_end..header_end + len])
                        .into_owned()
                        .collect();
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tx.send(form);
            });
        }
    });
    (format!("http://{addr}/sips-notify"), rx)
}

async fn next_notification(
    rx: &mut mpsc::UnboundedReceiver<HashMap<String, String>>,
    within: Duration,
) -> Option<HashMap<String, String>> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

/// Checks a notification's seal independently and returns its Data fields.
fn notification_data(form: &HashMap<String, String>, hmac: bool) -> HashMap<String, String> {
    let data = &form["Data"];
    let expected = if hmac {
        hmac_hex(SECRET, data)
    } else {
        sha_hex(data, SECRET)
    };
    assert_eq!(form["Seal"], expected);
    assert_eq!(form["InterfaceVersion"], "HP_2.20");
    parse_data(data)
}

// ---------------------------------------------------------------------------
// Seals.

#[test]
fn seal_known_answers() {
    // Public known answer of the default Data seal, SHA-256(Data + secret key)
    // (sips-php test suite, Worldline's simulation key).
    let data = "amount=1234|currencyCode=978|merchantId=002001000000001|normalReturnUrl=http://www.normalreturnurl.com|transactionReference=marlon1|keyVersion=1";
    let known = "65421e720d149e8a79bdc9a29f6c462ed199b78f32e558c6c5fc15f0084e5384";
    assert_eq!(sha_hex(data, SECRET), known);
    assert_eq!(sips::data_seal(SECRET, data, false), known);
    // HMAC-SHA256 Data seal against the independent computation.
    assert_eq!(sips::data_seal(SECRET, data, true), hmac_hex(SECRET, data));
    assert_ne!(sips::data_seal(SECRET, data, true), known);

    // JSON seal of the request in Worldline's official Paypage JSON PHP sample
    // (frictionless payment), computed independently (PHP ksort order).
    let request = json!({
        "normalReturnUrl": "http://localhost/sips-paypage-json-php/Common/paymentResponse.php",
        "merchantId": "201000076690001", "transactionReference": "r735", "amount": "2000",
        "orderChannel": "INTERNET", "currencyCode": "978", "interfaceVersion": "IR_WS_2.20",
        "billingAddress": {"city": "Nantes", "country": "FRA", "addressAdditional1": "route de l'atlantique, 5990",
            "addressAdditional2": "rue Pompidou, 8900", "addressAdditional3": "avenue Jean Jaures, 4900",
            "zipCode": "44000", "state": "France"},
        "holderContact": {"lastname": "Doe", "email": "jane.doe@example.org"},
        "fraudData": {"merchantCustomerAuthentMethod": "NOAUTHENT", "challengeMode3DS": "NO_CHALLENGE"},
        "keyVersion": "1", "sealAlgorithm": "HMAC-SHA-256",
    });
    let expected_string = "2000route de l'atlantique, 5990rue Pompidou, 8900avenue Jean Jaures, 4900NantesFRAFrance44000978NO_CHALLENGENOAUTHENTjane.doe@example.orgDoeIR_WS_2.20201000076690001http://localhost/sips-paypage-json-php/Common/paymentResponse.phpINTERNETr735";
    assert_eq!(sips::json_seal_string(&request), expected_string);
    assert_eq!(seal_string(&request, true), expected_string);
    let key = "p64ifeYBVIaRcjaWoahCiw9L8wokNLqG2_YOj_POD4g";
    assert_eq!(
        sips::json_seal(key, &request, Some("HMAC-SHA-256")),
        "45f21d6dc227b11deae6d3bf2fae96f19918b35f739ab08d93477ef0f4cd8196"
    );
    assert_eq!(
        sips::json_seal(key, &request, None),
        hmac_hex(key, expected_string)
    );
    assert_eq!(
        sips::json_seal(key, &request, Some("SHA-256")),
        sha_hex(expected_string, key)
    );
    // Lists concatenate in order; upper case sorts first.
    let listed = json!({"b": ["x", {"d": 1, "c": 2}], "a": true, "B": null, "Z": "z"});
    assert_eq!(sips::json_seal_string(&listed), "ztruex21");
}

// ---------------------------------------------------------------------------
// paymentInit.

#[tokio::test]
async fn payment_init_answers() {
    let env = env().await;
    let answer = env
        .init(payment_request("init1", 1050, "AUTHOR_CAPTURE", 0))
        .await;
    assert_eq!(answer["redirectionStatusCode"], "00");
    assert_eq!(answer["redirectionVersion"], "IR_WS_2.0");
    assert!(!answer["redirectionData"].as_str().unwrap().is_empty());
    assert!(answer["redirectionStatusMessage"].is_string());
    let tx = env.control("init1").await.unwrap();
    assert_eq!(tx["status"], "INITIALIZED");
    assert_eq!(tx["amount"], 1050);

    // Duplicate reference.
    let answer = env
        .init(payment_request("init1", 1050, "AUTHOR_CAPTURE", 0))
        .await;
    assert_eq!(answer["redirectionStatusCode"], "94");
    assert!(answer.get("redirectionUrl").is_none());

    // Amount as a string (Worldline's samples send strings).
    let mut body = payment_request("init2", 1050, "VALIDATION", 3);
    body["amount"] = json!("1050");
    assert_eq!(env.init(body).await["redirectionStatusCode"], "00");

    // Wrong seal, missing seal, wrong key version: 34 / 12 / 34, unsealed.
    let mut body = sign(payment_request("init3", 1050, "AUTHOR_CAPTURE", 0));
    body["amount"] = json!(1051);
    let answer: Value = env
        .post_json("/rs-services/v2/paymentInit", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["redirectionStatusCode"], "34");
    assert!(answer.get("seal").is_none());
    assert!(env.control("init3").await.is_none());
    let mut body = sign(payment_request("init3", 1050, "AUTHOR_CAPTURE", 0));
    body.as_object_mut().unwrap().remove("seal");
    let answer: Value = env
        .post_json("/rs-services/v2/paymentInit", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["redirectionStatusCode"], "12");
    let mut body = payment_request("init3", 1050, "AUTHOR_CAPTURE", 0);
    body["keyVersion"] = json!(2);
    let seal = hmac_hex(SECRET, &seal_string(&body, true));
    body["seal"] = json!(seal);
    let answer: Value = env
        .post_json("/rs-services/v2/paymentInit", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["redirectionStatusCode"], "34");

    // Unknown merchant.
    let mut body = payment_request("init3", 1050, "AUTHOR_CAPTURE", 0);
    body["merchantId"] = json!("002001000000099");
    let answer: Value = env
        .post_json("/rs-services/v2/paymentInit", &sign(body), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["redirectionStatusCode"], "03");

    // Not JSON.
    let res = env
        .http
        .post(env.url("/rs-services/v2/paymentInit"))
        .header("content-type", "application/json")
        .body("{amount")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<Value>().await.unwrap()["redirectionStatusCode"],
        "30"
    );

    // Missing and malformed fields (sealed answers).
    for (field, value, code) in [
        ("normalReturnUrl", Value::Null, "12"),
        ("transactionReference", Value::Null, "12"),
        ("amount", Value::Null, "12"),
        ("amount", json!("10.50"), "30"),
        ("amount", json!(0), "30"),
        ("currencyCode", json!("EUR"), "30"),
        ("currencyCode", json!("999"), "12"),
        ("captureMode", json!("LATER"), "30"),
        ("normalReturnUrl", json!("not a url"), "30"),
        ("transactionReference", json!("has space"), "30"),
        ("interfaceVersion", json!("HP_2.20"), "30"),
    ] {
        let mut body = payment_request("init4", 1050, "AUTHOR_CAPTURE", 0);
        if value.is_null() {
            body.as_object_mut().unwrap().remove(field);
        } else {
            body[field] = value.clone();
        }
        let answer = env.init(body).await;
        assert_eq!(
            answer["redirectionStatusCode"], code,
            "{field}={value}: {answer}"
        );
        assert!(
            answer["redirectionStatusMessage"]
                .as_str()
                .unwrap()
                .contains(field),
            "{answer}"
        );
    }
    assert!(env.control("init4").await.is_none());
}

// ---------------------------------------------------------------------------
// Payment page scenarios.

#[tokio::test]
async fn approved_payment_returns_and_notifies() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let mut body = payment_request("pay1", 1050, "AUTHOR_CAPTURE", 0);
    body["automaticResponseUrl"] = json!(notify_url);
    body["returnContext"] = json!("ctx-1");
    let (_, page) = env.start(body).await;
    // The card form comes first, then the cancel form.
    let page_forms = forms(&page);
    assert_eq!(page_forms.len(), 2);
    assert_eq!(page_forms[1].1, env.url("/payment/cancel"));
    assert!(page.contains("10.50 EUR"));

    let html = env.pay(&page, "4111 1111 1111 1111", "12", "2035").await;
    assert!(!html.contains("4111111111111111"));
    let outcome = env.outcome(&html, false);
    assert_eq!(outcome.action, "https://shop.example/sips/return?cart=7");
    assert_eq!(hidden(&outcome.fields, "InterfaceVersion"), "HP_2.20");
    assert_eq!(hidden(&outcome.fields, "Encode"), "");
    let d = &outcome.data;
    assert_eq!(d["responseCode"], "00");
    assert_eq!(d["acquirerResponseCode"], "00");
    assert_eq!(d["amount"], "1050");
    assert_eq!(d["currencyCode"], "978");
    assert_eq!(d["merchantId"], MERCHANT);
    assert_eq!(d["transactionReference"], "pay1");
    assert_eq!(d["captureMode"], "AUTHOR_CAPTURE");
    assert_eq!(d["captureDay"], "0");
    assert_eq!(d["keyVersion"], "1");
    assert_eq!(d["orderId"], "order-42");
    assert_eq!(d["returnContext"], "ctx-1");
    assert_eq!(d["maskedPan"], "############1111");
    assert_eq!(d["authorisationId"].len(), 6);
    assert!(d["transactionDateTime"].ends_with("+00:00"));

    // The automatic response carries the same Data and Seal.
    let form = next_notification(&mut rx, Duration::from_secs(5))
        .await
        .expect("notification");
    assert_eq!(form["Data"], hidden(&outcome.fields, "Data"));
    assert_eq!(form["Seal"], hidden(&outcome.fields, "Seal"));
    assert_eq!(form["Encode"], "");
    let data = notification_data(&form, false);
    assert_eq!(data["responseCode"], "00");
    // A tampered Data does not match its seal.
    assert_ne!(
        sha_hex(&form["Data"].replace("1050", "1051"), SECRET),
        form["Seal"]
    );

    // Captured at once (captureDay 0), as getTransactionData shows.
    let diag = env.diagnostic("pay1").await;
    assert_eq!(diag["responseCode"], "00");
    assert_eq!(diag["transactionStatus"], "CAPTURED");
    assert_eq!(diag["amount"], 1050);
    assert_eq!(diag["capturedAmount"], 1050);
    let tx = env.control("pay1").await.unwrap();
    assert_eq!(tx["cardLast4"], "1111");
    assert!(!tx.to_string().contains("4111111111111111"));

    // The session is over.
    let (_, action, fields) = forms(&page).remove(0);
    let (status, _) = env
        .submit(
            &action,
            &fields,
            &[
                ("cardNumber", "4111111111111111"),
                ("expiryMonth", "12"),
                ("expiryYear", "2035"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(next_notification(&mut rx, Duration::from_millis(300))
        .await
        .is_none());
}

#[tokio::test]
async fn hmac_data_seal_and_base64_encoding() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let mut body = payment_request("hmac1", 990, "VALIDATION", 0);
    body["automaticResponseUrl"] = json!(notify_url);
    body["sealAlgorithm"] = json!("HMAC-SHA-256");
    body["responseEncoding"] = json!("base64");
    let (_, page) = env.start(body).await;
    let html = env.pay(&page, "4111111111111111", "1", "2040").await;
    let outcome = env.outcome(&html, true);
    assert_eq!(hidden(&outcome.fields, "Encode"), "base64");
    assert_eq!(outcome.data["responseCode"], "00");
    assert_eq!(outcome.data["captureMode"], "VALIDATION");
    let form = next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(form["Encode"], "base64");
    assert_eq!(form["Seal"], hmac_hex(SECRET, &form["Data"]));
    assert_ne!(form["Seal"], sha_hex(&form["Data"], SECRET));
}

#[tokio::test]
async fn base64url_encoding_and_its_seal() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let mut body = payment_request("b64url1", 990, "AUTHOR_CAPTURE", 0);
    body["automaticResponseUrl"] = json!(notify_url);
    body["responseEncoding"] = json!("base64url");
    // The order id makes `Data` long enough for `-`/`_` and padding to matter.
    body["returnContext"] = json!("????>>>>~~~~");
    let (_, page) = env.start(body).await;
    let html = env.pay(&page, "4111111111111111", "1", "2040").await;
    // The seal is over Data as posted (encoded), SHA-256 by default.
    let outcome = env.outcome(&html, false);
    assert_eq!(hidden(&outcome.fields, "Encode"), "base64url");
    let data = hidden(&outcome.fields, "Data");
    assert!(!data.contains(['+', '/', '=']), "{data}");
    assert_eq!(outcome.data["responseCode"], "00");
    assert_eq!(outcome.data["returnContext"], "????>>>>~~~~");
    let form = next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(form["Encode"], "base64url");
    assert_eq!(form["Seal"], sha_hex(&form["Data"], SECRET));

    // Any other encoding is a format error.
    let mut body = payment_request("b64url2", 990, "AUTHOR_CAPTURE", 0);
    body["responseEncoding"] = json!("hex");
    assert_eq!(env.init(body).await["redirectionStatusCode"], "30");
}

#[tokio::test]
async fn page_scenarios() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let request = |reference: &str| {
        let mut body = payment_request(reference, 2000, "AUTHOR_CAPTURE", 0);
        body["automaticResponseUrl"] = json!(notify_url);
        body
    };

    // Refusal card: 05.
    let (_, page) = env.start(request("sc1")).await;
    let o = env.outcome(
        &env.pay(&page, "4000000000000002", "12", "2035").await,
        false,
    );
    assert_eq!(o.data["responseCode"], "05");
    assert_eq!(o.data["acquirerResponseCode"], "05");
    assert_eq!(o.data["authorisationId"], "");
    assert_eq!(
        notification_data(
            &next_notification(&mut rx, Duration::from_secs(5))
                .await
                .unwrap(),
            false
        )["responseCode"],
        "05"
    );
    assert_eq!(env.diagnostic("sc1").await["transactionStatus"], "REFUSED");
    assert_eq!(
        env.operation("validate", "sc1", 2000).await["responseCode"],
        "24"
    );

    // Expired card: 54.
    let (_, page) = env.start(request("sc2")).await;
    let o = env.outcome(
        &env.pay(&page, "4111111111111111", "01", "2020").await,
        false,
    );
    assert_eq!(o.data["responseCode"], "54");
    next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();

    // 3-D Secure, approved: the step page's first form approves.
    let (_, page) = env.start(request("sc3")).await;
    let step = env.pay(&page, "4000000000003220", "12", "2035").await;
    assert!(step.contains("3-D Secure"));
    let step_forms = forms(&step);
    assert_eq!(step_forms[0].1, env.url("/payment/3ds/approve"));
    assert_eq!(step_forms[1].1, env.url("/payment/3ds/fail"));
    assert!(next_notification(&mut rx, Duration::from_millis(200))
        .await
        .is_none());
    let (status, html) = env.submit(&step_forms[0].1, &step_forms[0].2, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let o = env.outcome(&html, false);
    assert_eq!(o.data["responseCode"], "00");
    assert_eq!(o.data["holderAuthentStatus"], "3D_SUCCESS");
    assert_eq!(o.data["guaranteeIndicator"], "Y");
    assert_eq!(o.data["holderAuthentRelegation"], "N");
    assert_eq!(o.data["holderAuthentProgram"], "3DS_V2");
    assert_eq!(o.data["maskedPan"], "############3220");
    next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();

    // 3-D Secure, failed: 05 with FAILURE.
    let (_, page) = env.start(request("sc4")).await;
    let step = env.pay(&page, "4000000000003220", "12", "2035").await;
    let step_forms = forms(&step);
    let (_, html) = env.submit(&step_forms[1].1, &step_forms[1].2, &[]).await;
    let o = env.outcome(&html, false);
    assert_eq!(o.data["responseCode"], "05");
    assert_eq!(o.data["holderAuthentStatus"], "3D_FAILURE");
    assert_eq!(o.data["guaranteeIndicator"], "N");
    next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();

    // 3-D Secure, abandoned on the step page: 17 with 3D_ABORT.
    let (_, page) = env.start(request("sc4b")).await;
    env.pay(&page, "4000000000003220", "12", "2035").await;
    let cancel = forms(&page).remove(1);
    let (_, html) = env.submit(&cancel.1, &cancel.2, &[]).await;
    let o = env.outcome(&html, false);
    assert_eq!(o.data["responseCode"], "17");
    assert_eq!(o.data["holderAuthentStatus"], "3D_ABORT");
    next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();

    // The shopper cancels: 17.
    let (_, page) = env.start(request("sc5")).await;
    let cancel = forms(&page).remove(1);
    let (_, html) = env.submit(&cancel.1, &cancel.2, &[]).await;
    let o = env.outcome(&html, false);
    assert_eq!(o.data["responseCode"], "17");
    assert_eq!(o.data["holderAuthentStatus"], "");
    let n = notification_data(
        &next_notification(&mut rx, Duration::from_secs(5))
            .await
            .unwrap(),
        false,
    );
    assert_eq!(n["responseCode"], "17");

    // Pending (responseCode from the last two digits): 60.
    let (_, page) = env.start(request("sc6")).await;
    let o = env.outcome(
        &env.pay(&page, "4974934125497860", "12", "2035").await,
        false,
    );
    assert_eq!(o.data["responseCode"], "60");
    assert_eq!(
        env.diagnostic("sc6").await["transactionStatus"],
        "AUTHORISATION_REQUESTED"
    );
    next_notification(&mut rx, Duration::from_secs(5))
        .await
        .unwrap();

    // An invalid card number shows the form again, nothing happens.
    let (_, page) = env.start(request("sc7")).await;
    let again = env.pay(&page, "4111111111111112", "12", "2035").await;
    assert!(again.contains("Invalid card number"));
    assert_eq!(forms(&again)[0].1, env.url("/payment/card"));
    assert_eq!(env.control("sc7").await.unwrap()["status"], "INITIALIZED");
    assert_eq!(env.diagnostic("sc7").await["responseCode"], "25");

    // An unknown session.
    let (status, _) = env
        .submit(
            &env.url("/payment"),
            &[("redirectionData".into(), "nope".into())],
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------
// Office JSON.

#[tokio::test]
async fn office_validation_and_refunds() {
    let env = env().await;
    env.paid("val1", 1000, "VALIDATION", 0).await;
    let diag = env.diagnostic("val1").await;
    assert_eq!(diag["transactionStatus"], "TO_VALIDATE");
    assert_eq!(diag["captureMode"], "VALIDATION");

    assert_eq!(
        env.operation("refund", "val1", 100).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("validate", "val1", 1001).await["responseCode"],
        "51"
    );
    let answer = env.operation("validate", "val1", 600).await;
    assert_eq!(answer["responseCode"], "00", "{answer}");
    assert_eq!(answer["newStatus"], "CAPTURED");
    assert_eq!(answer["newAmount"], 600);
    assert_eq!(answer["acquirerResponseCode"], "00");
    assert!(answer["operationDateTime"].is_string());
    assert_eq!(
        env.operation("validate", "val1", 100).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("cancel", "val1", 100).await["responseCode"],
        "24"
    );

    let answer = env.operation("refund", "val1", 200).await;
    assert_eq!(answer["responseCode"], "00");
    assert_eq!(answer["newAmount"], 400);
    assert_eq!(
        env.operation("refund", "val1", 401).await["responseCode"],
        "51"
    );
    assert_eq!(
        env.operation("refund", "val1", 400).await["responseCode"],
        "00"
    );
    assert_eq!(
        env.operation("refund", "val1", 1).await["responseCode"],
        "51"
    );
    let diag = env.diagnostic("val1").await;
    assert_eq!(diag["capturedAmount"], 600);
    assert_eq!(diag["creditedAmount"], 600);
    assert_eq!(diag["originAmount"], 1000);

    // With VALIDATION, captureDay is the time left to validate: within it
    // the validated amount is captured that day, not captureDay days later.
    env.paid("val2", 1000, "VALIDATION", 2).await;
    env.age("val2", 2).await;
    let answer = env.operation("validate", "val2", 1000).await;
    assert_eq!(answer["responseCode"], "00", "{answer}");
    assert_eq!(answer["newStatus"], "CAPTURED");
    assert_eq!(
        env.operation("refund", "val2", 100).await["responseCode"],
        "00"
    );
}

#[tokio::test]
async fn validation_window_expires_after_its_capture_day() {
    let env = env().await;
    // captureDay 0: the window closes with the payment day's remittance.
    let outcome = env.paid("exp0", 1000, "VALIDATION", 0).await;
    let paid_on = outcome.data["transactionDateTime"][..10].replace('-', "");
    assert_eq!(outcome.data["captureLimitDate"], paid_on);
    let tx = env.age("exp0", 1).await;
    assert_eq!(tx["status"], "EXPIRED");
    let answer = env.operation("validate", "exp0", 1000).await;
    assert_eq!(answer["responseCode"], "24", "{answer}");
    let diag = env.diagnostic("exp0").await;
    assert_eq!(diag["transactionStatus"], "EXPIRED");
    // The payment now dates from the day before, and so does its limit.
    let aged_day = diag["transactionDateTime"].as_str().unwrap()[..10].replace('-', "");
    assert_ne!(aged_day, paid_on);
    assert_eq!(diag["captureLimitDate"], aged_day);

    // captureDay 6: still valid six days later, expired on the seventh.
    let outcome = env.paid("exp6", 1000, "VALIDATION", 6).await;
    assert_ne!(outcome.data["captureLimitDate"], paid_on);
    env.age("exp6", 6).await;
    assert_eq!(
        env.diagnostic("exp6").await["transactionStatus"],
        "TO_VALIDATE"
    );
    env.age("exp6", 1).await;
    assert_eq!(
        env.operation("validate", "exp6", 500).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("cancel", "exp6", 500).await["responseCode"],
        "24"
    );

    // A deferred AUTHOR_CAPTURE is captured by its day's remittance.
    env.paid("def3", 700, "AUTHOR_CAPTURE", 3).await;
    env.age("def3", 3).await;
    assert_eq!(
        env.diagnostic("def3").await["transactionStatus"],
        "TO_CAPTURE"
    );
    let tx = env.age("def3", 1).await;
    assert_eq!(tx["status"], "CAPTURED");
    assert_eq!(tx["capturedAmount"], 700);

    // The control endpoint checks what it is given.
    let res = env
        .http
        .post(env.url(&format!("/_sandbox/transactions/{MERCHANT}/def3/age")))
        .json(&json!({"days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = env
        .http
        .post(env.url(&format!("/_sandbox/transactions/{MERCHANT}/nope/age")))
        .json(&json!({"days": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn three_d_secure_results_by_card() {
    let env = env().await;
    for (reference, card, status, relegation, guarantee) in [
        ("tds1", "4000000000001091", "3D_SUCCESS", "N", "Y"),
        ("tds2", "4000000000001109", "3D_ATTEMPT", "N", "Y"),
        ("tds3", "4000000000001125", "3D_NOTENROLLED", "N", "N"),
        ("tds4", "4000000000001133", "3D_ERROR", "Y", "N"),
        ("tds5", "4111111111111111", "NOT_PARTICIPATING", "N", "N"),
    ] {
        let (_, page) = env
            .start(payment_request(reference, 1000, "VALIDATION", 6))
            .await;
        // No challenge page: the return form comes at once.
        let html = env.pay(&page, card, "12", "2035").await;
        let o = env.outcome(&html, false);
        assert_eq!(o.data["responseCode"], "00", "{card}");
        assert_eq!(o.data["holderAuthentStatus"], status, "{card}");
        assert_eq!(o.data["holderAuthentRelegation"], relegation, "{card}");
        assert_eq!(o.data["guaranteeIndicator"], guarantee, "{card}");
        let diag = env.diagnostic(reference).await;
        assert_eq!(diag["holderAuthentStatus"], status, "{card}");
        assert_eq!(diag["guaranteeIndicator"], guarantee, "{card}");
        assert_eq!(diag["holderAuthentRelegation"], relegation, "{card}");
    }
}

#[tokio::test]
async fn office_cancel_and_deferred_capture() {
    let env = env().await;
    env.paid("can1", 1000, "AUTHOR_CAPTURE", 3).await;
    assert_eq!(
        env.diagnostic("can1").await["transactionStatus"],
        "TO_CAPTURE"
    );
    assert_eq!(
        env.operation("validate", "can1", 1000).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("refund", "can1", 100).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("cancel", "can1", 1001).await["responseCode"],
        "51"
    );
    let answer = env.operation("cancel", "can1", 300).await;
    assert_eq!(answer["responseCode"], "00");
    assert_eq!(answer["newAmount"], 700);
    assert_eq!(answer["newStatus"], "TO_CAPTURE");
    // The capture day comes.
    let res = env
        .http
        .post(env.url(&format!("/_sandbox/transactions/{MERCHANT}/can1/capture")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let diag = env.diagnostic("can1").await;
    assert_eq!(diag["transactionStatus"], "CAPTURED");
    assert_eq!(diag["capturedAmount"], 700);
    assert_eq!(
        env.operation("cancel", "can1", 100).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("refund", "can1", 701).await["responseCode"],
        "51"
    );
    assert_eq!(
        env.operation("refund", "can1", 700).await["responseCode"],
        "00"
    );

    // Full cancel of an authorisation held for validation.
    env.paid("can2", 500, "VALIDATION", 0).await;
    let answer = env.operation("cancel", "can2", 500).await;
    assert_eq!(answer["newStatus"], "CANCELLED");
    assert_eq!(answer["newAmount"], 0);
    assert_eq!(
        env.operation("cancel", "can2", 1).await["responseCode"],
        "24"
    );
    assert_eq!(
        env.operation("validate", "can2", 1).await["responseCode"],
        "24"
    );

    // IMMEDIATE: captured at once.
    env.paid("can3", 800, "IMMEDIATE", 0).await;
    assert_eq!(
        env.diagnostic("can3").await["transactionStatus"],
        "CAPTURED"
    );
    assert_eq!(
        env.operation("cancel", "can3", 800).await["responseCode"],
        "24"
    );
}

#[tokio::test]
async fn office_errors() {
    let env = env().await;
    env.paid("err1", 1000, "VALIDATION", 0).await;
    // Unknown transaction.
    assert_eq!(
        env.operation("validate", "nosuch", 100).await["responseCode"],
        "25"
    );
    assert_eq!(env.diagnostic("nosuch").await["responseCode"], "25");
    // Initialised but unpaid: unknown to the Office API.
    env.init(payment_request("err2", 1000, "VALIDATION", 0))
        .await;
    assert_eq!(
        env.operation("validate", "err2", 100).await["responseCode"],
        "25"
    );
    // Missing operationAmount / wrong currency / bad interfaceVersion.
    let answer = env
        .office("cashManagement/validate", json!({"merchantId": MERCHANT, "transactionReference": "err1", "currencyCode": "978", "interfaceVersion": "CR_WS_2.27"}))
        .await;
    assert_eq!(answer["responseCode"], "12");
    assert_eq!(answer["errorFieldName"], "operationAmount");
    let answer = env
        .office("cashManagement/validate", json!({"merchantId": MERCHANT, "transactionReference": "err1", "operationAmount": 100, "currencyCode": "840", "interfaceVersion": "CR_WS_2.27"}))
        .await;
    assert_eq!(answer["responseCode"], "12");
    assert_eq!(answer["errorFieldName"], "currencyCode");
    let answer = env
        .office("cashManagement/validate", json!({"merchantId": MERCHANT, "transactionReference": "err1", "operationAmount": "1.00", "currencyCode": "978", "interfaceVersion": "CR_WS_2.27"}))
        .await;
    assert_eq!(answer["responseCode"], "30");
    let answer = env
        .office("diagnostic/getTransactionData", json!({"merchantId": MERCHANT, "transactionReference": "err1", "interfaceVersion": "CR_WS_2.27"}))
        .await;
    assert_eq!(answer["responseCode"], "30");
    assert_eq!(answer["errorFieldName"], "interfaceVersion");
    // Wrong seal: 34, nothing done.
    let mut body = sign(
        json!({"merchantId": MERCHANT, "transactionReference": "err1", "operationAmount": 100, "currencyCode": "978", "interfaceVersion": "CR_WS_2.27"}),
    );
    body["operationAmount"] = json!(1000);
    let answer: Value = env
        .post_json("/rs-services/v2/cashManagement/validate", &body, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["responseCode"], "34");
    assert_eq!(
        env.diagnostic("err1").await["transactionStatus"],
        "TO_VALIDATE"
    );
    // Unknown merchant: 03.
    let answer: Value = env
        .post_json("/rs-services/v2/cashManagement/validate", &sign(json!({"merchantId": "002001000000099", "transactionReference": "err1", "operationAmount": 100, "currencyCode": "978", "interfaceVersion": "CR_WS_2.27"})), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(answer["responseCode"], "03");
    // Not JSON: 30.
    let res = env
        .http
        .post(env.url("/rs-services/v2/cashManagement/refund"))
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["responseCode"], "30");
}

// ---------------------------------------------------------------------------
// Faults.

#[tokio::test]
async fn api_faults() {
    let env = env().await;
    let init_path = "/rs-services/v2/paymentInit";

    // http_500: a 5xx, no effect.
    let res = env
        .post_json(
            init_path,
            &sign(payment_request("f1", 100, "AUTHOR_CAPTURE", 0)),
            Some("http_500"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(env.control("f1").await.is_none());

    // malformed: 200, not JSON, no effect.
    let res = env
        .post_json(
            init_path,
            &sign(payment_request("f1", 100, "AUTHOR_CAPTURE", 0)),
            Some("malformed"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(serde_json::from_str::<Value>(&res.text().await.unwrap()).is_err());
    assert!(env.control("f1").await.is_none());

    // delay: answers normally after the delay.
    let started = Instant::now();
    let res = env
        .post_json(
            init_path,
            &sign(payment_request("f1", 100, "AUTHOR_CAPTURE", 0)),
            Some("delay:400"),
        )
        .await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(
        res.json::<Value>().await.unwrap()["redirectionStatusCode"],
        "00"
    );

    // timeout: no answer in time, no effect; other requests are served meanwhile.
    let short = client(Duration::from_millis(800));
    let err = short
        .post(env.url(init_path))
        .header("X-Sandbox-Fault", "timeout")
        .json(&sign(payment_request("f2", 100, "AUTHOR_CAPTURE", 0)))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert!(env.control("f2").await.is_none());

    // timeout_after_effect: no answer in time, but done.
    let err = short
        .post(env.url(init_path))
        .header("X-Sandbox-Fault", "timeout_after_effect")
        .json(&sign(payment_request("f3", 100, "AUTHOR_CAPTURE", 0)))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(env.control("f3").await.unwrap()["status"], "INITIALIZED");

    // Per account, on the Office API: count 2, then normal again.
    env.paid("f4", 1000, "VALIDATION", 0).await;
    env.fault("http_500", 2).await;
    let body = sign(
        json!({"merchantId": MERCHANT, "transactionReference": "f4", "operationAmount": 1000, "currencyCode": "978", "interfaceVersion": "CR_WS_2.27"}),
    );
    for _ in 0..2 {
        let res = env
            .post_json("/rs-services/v2/cashManagement/validate", &body, None)
            .await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(
        env.diagnostic("f4").await["transactionStatus"],
        "TO_VALIDATE"
    );
    env.fault("timeout_after_effect", 1).await;
    let err = short
        .post(env.url("/rs-services/v2/cashManagement/validate"))
        .json(&body)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(env.diagnostic("f4").await["transactionStatus"], "CAPTURED");
    // Another account's fault does not apply; mode none clears.
    env.fault("malformed", 5).await;
    env.fault("none", 1).await;
    assert_eq!(env.diagnostic("f4").await["responseCode"], "00");
    let res = env
        .http
        .post(env.url("/_sandbox/faults"))
        .json(&json!({"account": MERCHANT, "mode": "explode"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn notification_faults() {
    let env = env().await;
    let (notify_url, mut rx) = receiver().await;
    let pay = |reference: &'static str| {
        let env = &env;
        let notify_url = notify_url.clone();
        async move {
            let mut body = payment_request(reference, 100, "AUTHOR_CAPTURE", 0);
            body["automaticResponseUrl"] = json!(notify_url);
            let (_, page) = env.start(body).await;
            env.pay(&page, "4111111111111111", "12", "2035").await
        }
    };

    // Dropped.
    env.fault("notification_drop", 1).await;
    pay("n1").await;
    assert!(next_notification(&mut rx, Duration::from_millis(800))
        .await
        .is_none());

    // Duplicated.
    env.fault("notification_duplicate", 1).await;
    pay("n2").await;
    for _ in 0..2 {
        let n = notification_data(
            &next_notification(&mut rx, Duration::from_secs(5))
                .await
                .unwrap(),
            false,
        );
        assert_eq!(n["transactionReference"], "n2");
    }
    assert!(next_notification(&mut rx, Duration::from_millis(300))
        .await
        .is_none());

    // Out of order: held until the next one is delivered.
    env.fault("notification_out_of_order", 1).await;
    pay("n3").await;
    assert!(next_notification(&mut rx, Duration::from_millis(300))
        .await
        .is_none());
    pay("n4").await;
    let first = notification_data(
        &next_notification(&mut rx, Duration::from_secs(5))
            .await
            .unwrap(),
        false,
    );
    let second = notification_data(
        &next_notification(&mut rx, Duration::from_secs(5))
            .await
            .unwrap(),
        false,
    );
    assert_eq!(first["transactionReference"], "n4");
    assert_eq!(second["transactionReference"], "n3");

    // Out of order with none following: delivered after about 2 s.
    env.fault("notification_out_of_order", 1).await;
    let started = Instant::now();
    pay("n5").await;
    let n = notification_data(
        &next_notification(&mut rx, Duration::from_secs(5))
            .await
            .unwrap(),
        false,
    );
    assert_eq!(n["transactionReference"], "n5");
    assert!(started.elapsed() >= Duration::from_millis(1900));

    // Per request, with the header on the page's form post.
    let mut body = payment_request("n6", 100, "AUTHOR_CAPTURE", 0);
    body["automaticResponseUrl"] = json!(notify_url);
    let (_, page) = env.start(body).await;
    let (_, action, fields) = forms(&page).remove(0);
    let mut form = fields.clone();
    form.extend([
        ("cardNumber".to_owned(), "4111111111111111".to_owned()),
        ("expiryMonth".into(), "12".into()),
        ("expiryYear".into(), "2035".into()),
    ]);
    let res = env
        .http
        .post(&action)
        .header("X-Sandbox-Fault", "notification_drop")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(next_notification(&mut rx, Duration::from_millis(800))
        .await
        .is_none());
}
