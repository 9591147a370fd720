//! HiPay Enterprise end to end: the real server, the bundled `hipay`
//! connector (a WebAssembly component) and the sandbox's HiPay simulator,
//! on SQLite. Browsers are played with reqwest: GET a page, POST one of its
//! forms, follow the 303s by hand.

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

const VISA_OK: &str = "4111111111111111";
const VISA_3DS: &str = "4242424242424242";
const VISA_REFUSED: &str = "4150551403657424";
/// The sandbox's PSD2 card: its issuer soft-declines a payment without
/// 3-D Secure (docs/sandbox/hipay.md).
const VISA_PSD2: &str = "4000027600000009";

/// A card payment from a shopper's browser: what the storefront's page
/// collects for 3-D Secure 2 (browser data, IP address, origin).
fn body(amount: u64, currency: &str, card: &str, capture: &str) -> Value {
    let mut b = payment_body(amount, currency, card, capture);
    b["connector"] = json!("hipay");
    b["shopper"] = json!({
        "email": "ada@example.com",
        "ip_address": "192.0.2.10",
        "origin": "https://shop.example",
        "browser": {
            "accept_header": "text/html,application/xhtml+xml",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "language": "fr-FR",
            "color_depth": 24,
            "screen_height": 1080,
            "screen_width": 1920,
            "time_zone_offset": -60,
            "java_enabled": false,
            "javascript_enabled": true
        }
    });
    b
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, payment) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{payment}");
    payment
}

async fn payment(server: &TestServer, id: &str) -> Value {
    let (status, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(status, 200, "{p}");
    p
}

/// Polls the payment until `done` holds (notifications arrive ~50 ms after
/// the sandbox acts), for at most 10 s.
async fn wait_for(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut p = Value::Null;
    for _ in 0..200 {
        p = payment(server, id).await;
        if done(&p) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payment {id} never settled: {p}");
}

async fn refunds(server: &TestServer, id: &str) -> Vec<Value> {
    let (status, list) = server.get(&format!("/v1/payments/{id}/refunds")).await;
    assert_eq!(status, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

fn sandbox(server: &TestServer) -> (String, Value) {
    let info = server.demo["sandbox"]["hipay"].clone();
    (info["base_url"].as_str().unwrap().to_string(), info)
}

/// The sandbox's view of a transaction.
async fn sandbox_transaction(server: &TestServer, reference: &str) -> Value {
    let (base, _) = sandbox(server);
    server
        .http
        .get(format!("{base}/_sandbox/transactions/{reference}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Makes the sandbox misbehave on the account's next `count` API calls
/// (those whose path under the simulator starts with `path`, when given).
async fn fault(server: &TestServer, mode: &str, count: u32, path: Option<&str>) {
    let (base, info) = sandbox(server);
    let resp = server
        .http
        .post(format!("{base}/_sandbox/faults"))
        .json(&json!({"account": info["api_username"], "mode": mode, "count": count, "path": path}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "fault injection failed");
}

/// Where the sandbox sends maintenance requests: faults on them only.
const MAINTENANCE: Option<&str> = Some("/gateway/v1/maintenance/");

/// The maintenance requests the sandbox received for a transaction, as
/// `(operation, amount as sent)`.
async fn maintenance_log(server: &TestServer, reference: &str) -> Vec<(String, Option<String>)> {
    let tx = sandbox_transaction(server, reference).await;
    tx["sandbox"]["maintenance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["operation"].as_str().unwrap().to_string(),
                m["amount"].as_str().map(String::from),
            )
        })
        .collect()
}

/// The forms of an HTML page: (absolute action, fields with their values).
fn forms(page_url: &str, html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&"))
    };
    html.split("<form")
        .skip(1)
        .map(|form| {
            let form = form.split("</form>").next().unwrap();
            let action = attr(form, "action").unwrap();
            let action = url::Url::parse(page_url)
                .unwrap()
                .join(&action)
                .unwrap()
                .to_string();
            let fields = form
                .split("<input")
                .skip(1)
                .filter_map(|input| {
                    let input = input.split('>').next().unwrap();
                    Some((
                        attr(input, "name")?,
                        attr(input, "value").unwrap_or_default(),
                    ))
                })
                .collect();
            (action, fields)
        })
        .collect()
}

/// GETs `url`, submits its form number `index` as is, and returns where the
/// provider sends the browser (the 303's Location).
async fn submit_form(server: &TestServer, url: &str, index: usize) -> String {
    let page = server.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200, "{url}");
    let html = page.text().await.unwrap();
    let forms = forms(url, &html);
    let (action, fields) = forms
        .get(index)
        .unwrap_or_else(|| panic!("no form {index}: {html}"));
    let resp = server.http.post(action).form(fields).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{action}");
    resp.headers()["location"].to_str().unwrap().to_string()
}

/// The shopper's browser arrives at Passerelle's return URL, which sends it
/// on to the merchant.
async fn shopper_returns(server: &TestServer, id: &str, url: &str) {
    assert!(
        url.starts_with(&server.url(&format!("/v1/payments/{id}/return"))),
        "{url}"
    );
    let resp = server.http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to_merchant = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(to_merchant.starts_with("https://shop.example/checkout/done"));
    assert!(to_merchant.contains(&format!("payment_id={id}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hipay_end_to_end() {
    let server = TestServer::start(Backend::Sqlite).await;
    assert_eq!(
        server.demo["connectors"]["hipay"]["plugin"], "hipay",
        "the demo has a HiPay account"
    );
    automatic_capture_succeeds(&server).await;
    amounts_in_0_and_3_decimal_currencies(&server).await;
    refusal_fails_with_hipay_code(&server).await;
    unsupported_currency_is_refused(&server).await;
    manual_capture_partial_then_rest(&server).await;
    cancel_is_confirmed_by_notification(&server).await;
    partial_refunds_up_to_total(&server).await;
    three_d_secure_success_failure_and_cancel(&server).await;
    hosted_page_success_and_cancel(&server).await;
    notification_settles_payment_and_forgery_is_rejected(&server).await;
    psp_errors_leave_defined_state(&server).await;
    psd2_card_needs_the_browser_data(&server).await;
    full_operations_send_no_amount(&server).await;
    a_capture_retried_after_a_lost_answer_is_made_once(&server).await;
    every_request_was_checked_against_hipay_documents(&server).await;
}

async fn automatic_capture_succeeds(server: &TestServer) {
    let p = create(server, body(1050, "EUR", VISA_OK, "automatic")).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 1050);
    assert_eq!(p["provider_status"], "118");
    let reference = p["connector_reference"].as_str().unwrap();
    let tx = sandbox_transaction(server, reference).await;
    assert_eq!(tx["capturedAmount"], "10.50", "{tx}");
    assert_eq!(tx["order"]["id"], p["id"]);
}

async fn amounts_in_0_and_3_decimal_currencies(server: &TestServer) {
    for (amount, currency, text) in [(1234u64, "JPY", "1234"), (1005, "KWD", "1.005")] {
        let p = create(server, body(amount, currency, VISA_OK, "automatic")).await;
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_captured"], amount);
        let tx = sandbox_transaction(server, p["connector_reference"].as_str().unwrap()).await;
        assert_eq!(tx["capturedAmount"], text, "{tx}");
        assert_eq!(tx["currency"], currency);
    }
}

async fn refusal_fails_with_hipay_code(server: &TestServer) {
    let p = create(server, body(2_500, "EUR", VISA_REFUSED, "automatic")).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "4010202");
    assert_eq!(p["failure_message"], "Invalid Card Number");
    assert_eq!(p["provider_status"], "163");
}

async fn unsupported_currency_is_refused(server: &TestServer) {
    // BYN is ISO 4217 but not in HiPay's list (which still has BYR).
    let (status, err) = server
        .post("/v1/payments", body(1_000, "BYN", VISA_OK, "automatic"))
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "currency");
}

async fn manual_capture_partial_then_rest(server: &TestServer) {
    let p = create(server, body(10_000, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["provider_status"], "116");
    // 3-D Secure asked for (indicator 1), the card is not enrolled.
    assert_eq!(p["three_ds"]["status"], "not_enrolled", "{p}");
    // HiPay's card authorization holds 7 days.
    let created = p["created_at"].as_str().unwrap();
    let before = p["capture_before"].as_str().unwrap();
    assert!(before > created, "{p}");
    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 3_000}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "partially_captured");
    assert_eq!(p["amount_captured"], 3_000);
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount_captured"], 10_000);
    let tx = sandbox_transaction(server, p["connector_reference"].as_str().unwrap()).await;
    assert_eq!(tx["capturedAmount"], "100.00", "{tx}");
    assert_eq!(tx["status"], "118");
    // The notifications (117, 119, 117, 118) change nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = payment(server, id).await;
    assert_eq!(p["amount_captured"], 10_000);
    assert_eq!(p["status"], "succeeded");
}

async fn cancel_is_confirmed_by_notification(server: &TestServer) {
    let p = create(server, body(900, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap();
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    // 175 "cancellation requested": nothing is released until HiPay
    // confirms with 115.
    assert_eq!(p["status"], "requires_capture", "{p}");
    let p = wait_for(server, id, |p| p["status"] == "canceled").await;
    assert_eq!(p["amount_capturable"], 0);
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
}

async fn partial_refunds_up_to_total(server: &TestServer) {
    let p = create(server, body(5_000, "EUR", VISA_OK, "automatic")).await;
    let id = p["id"].as_str().unwrap();
    let (status, r1) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 2_000, "reason": "one item returned"}),
        )
        .await;
    assert_eq!(status, 201, "{r1}");
    // 124 "refund requested": pending until HiPay's 126 notification.
    assert_eq!(r1["status"], "pending", "{r1}");
    let (status, err) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 3_001}),
        )
        .await;
    assert_eq!(status, 400, "refunding over the captured total: {err}");
    assert_eq!(err["error"]["param"], "amount");
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
    assert_eq!(status, 400, "{err}");
    for _ in 0..200 {
        if refunds(server, id)
            .await
            .iter()
            .all(|r| r["status"] == "succeeded")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let list = refunds(server, id).await;
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|r| r["status"] == "succeeded"), "{list:?}");
    let p = payment(server, id).await;
    assert_eq!(p["amount_refunded"], 5_000);
    let tx = sandbox_transaction(server, p["connector_reference"].as_str().unwrap()).await;
    assert_eq!(tx["refundedAmount"], "50.00", "{tx}");
    assert_eq!(tx["status"], "125");
}

async fn three_d_secure_success_failure_and_cancel(server: &TestServer) {
    // Approve: back to Passerelle, which asks HiPay.
    let p = create(server, body(4_200, "EUR", VISA_3DS, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_action", "{p}");
    assert_eq!(p["next_action"]["method"], "GET");
    let back = submit_form(server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    shopper_returns(server, &id, &back).await;
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["amount_capturable"], 4_200);

    // Fail authentication: 109.
    let p = create(server, body(4_200, "EUR", VISA_3DS, "automatic")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = submit_form(server, p["next_action"]["url"].as_str().unwrap(), 1).await;
    shopper_returns(server, &id, &back).await;
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["provider_status"], "109");

    // The shopper cancels on the 3-D Secure page: 115. The shopper's
    // return never ends a payment; HiPay's own word (a sync, a
    // notification) does.
    let p = create(server, body(4_200, "EUR", VISA_3DS, "automatic")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = submit_form(server, p["next_action"]["url"].as_str().unwrap(), 2).await;
    shopper_returns(server, &id, &back).await;
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "canceled", "{p}");

    // A forged return (hash of something else) changes nothing.
    let p = create(server, body(4_200, "EUR", VISA_3DS, "automatic")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let forged = server.url(&format!(
        "/v1/payments/{id}/return?orderid={id}&status=118&state=completed&hash={}",
        "0".repeat(64)
    ));
    let resp = server.http.get(&forged).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "requires_action", "{p}");
}

async fn hosted_page_success_and_cancel(server: &TestServer) {
    let mut b = body(3_000, "EUR", VISA_OK, "automatic");
    b["payment_method"] = json!({"type": "hosted_page"});
    let p = create(server, b.clone()).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_action", "{p}");
    // The prefilled card form pays.
    let back = submit_form(server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    shopper_returns(server, &id, &back).await;
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 3_000);
    assert!(p["connector_reference"].as_str().is_some(), "{p}");

    // The shopper cancels on the hosted page: the signed return finds no
    // transaction at HiPay. That is the browser's word only (the shopper
    // may still pay on the page): recorded, and the payment waits.
    b["reference"] = json!(format!("order-{}", rand_suffix()));
    let p = create(server, b).await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = submit_form(server, p["next_action"]["url"].as_str().unwrap(), 1).await;
    shopper_returns(server, &id, &back).await;
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"]["shopper_canceled"] == true),
        "{events}"
    );
}

async fn notification_settles_payment_and_forgery_is_rejected(server: &TestServer) {
    // The shopper authenticates but never comes back: 116 settles it.
    let p = create(server, body(4_200, "EUR", VISA_3DS, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    submit_form(server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    let p = wait_for(server, &id, |p| p["status"] == "requires_capture").await;
    assert_eq!(p["amount_capturable"], 4_200);
    let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cause"] == "notification"),
        "{events}"
    );

    // A forged capture notification is refused and changes nothing.
    let account = server.demo["connectors"]["hipay"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let reference = p["connector_reference"].as_str().unwrap().to_string();
    let form = format!(
        "state=completed&transaction_reference={reference}&status=118&captured_amount=42.00\
&authorized_amount=42.00&refunded_amount=0.00&currency=EUR&attempt_id=1\
&date_updated=2026-01-01T00%3A00%3A00%2B0000&order%5Bid%5D={id}"
    );
    let post = |signature: String| {
        server
            .http
            .post(server.url(&format!("/v1/webhooks/{account}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("X-Allopass-Signature", signature)
            .body(form.clone())
            .send()
    };
    let resp = post("0".repeat(64)).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(payment(server, &id).await["status"], "requires_capture");

    // Correctly signed, it settles the payment; replayed, it is ignored.
    let passphrase = server.demo["sandbox"]["hipay"]["passphrase"]
        .as_str()
        .unwrap()
        .to_string();
    let signature = hex::encode(Sha256::digest(format!("{form}{passphrase}")));
    let resp = post(signature.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 4_200);
    let (_, before) = server.get(&format!("/v1/payments/{id}/events")).await;
    let resp = post(signature).await.unwrap();
    assert_eq!(resp.status(), 200);
    let (_, after) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert_eq!(
        before["data"].as_array().unwrap().len(),
        after["data"].as_array().unwrap().len(),
        "a replayed notification is deduplicated"
    );
}

async fn psp_errors_leave_defined_state(server: &TestServer) {
    // A 5xx on authorization (at the vault): the outcome is unknown to the
    // host, the payment waits in `processing`.
    fault(server, "http_500", 1, None).await;
    let p = create(server, body(1_000, "EUR", VISA_OK, "manual")).await;
    assert_eq!(p["status"], "processing", "{p}");
    assert!(p["failure_code"].as_str().unwrap().contains("500"), "{p}");
    // Garbage: same.
    fault(server, "malformed", 1, None).await;
    let p = create(server, body(1_000, "EUR", VISA_OK, "manual")).await;
    assert_eq!(p["status"], "processing", "{p}");

    // A 5xx on capture: 502, nothing captured; the retry with the same key works.
    let p = create(server, body(1_000, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    fault(server, "http_500", 1, MAINTENANCE).await;
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({}),
            Some("cap"),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    let p = payment(server, &id).await;
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

    // HiPay captures but the answer never comes (timeout): a defined state,
    // and a sync tells what happened.
    let p = create(server, body(2_000, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    fault(server, "timeout_after_effect", 1, MAINTENANCE).await;
    let (status, err) = server
        .post_with(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 500}),
            Some("lost"),
        )
        .await;
    assert_eq!(status, 502, "{err}");
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "partially_captured", "{p}");
    assert_eq!(p["amount_captured"], 500);
    assert_eq!(p["provider_status"], "119");
}

async fn psd2_card_needs_the_browser_data(server: &TestServer) {
    // Without the shopper's browser data there is no 3-D Secure 2: the
    // issuer soft-declines (178), a refusal the merchant can act on.
    let mut b = body(3_300, "EUR", VISA_PSD2, "manual");
    b["shopper"].as_object_mut().unwrap().remove("browser");
    let p = create(server, b).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "178");
    assert!(
        p["failure_message"]
            .as_str()
            .unwrap()
            .contains("3-D Secure"),
        "{p}"
    );
    assert_eq!(p["provider_status"], "178");
    assert_eq!(p["three_ds"]["status"], "not_performed", "{p}");

    // With them (and the indicator the connector always sends): the
    // challenge, then the authorization.
    let p = create(server, body(3_300, "EUR", VISA_PSD2, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_action", "{p}");
    let back = submit_form(server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    shopper_returns(server, &id, &back).await;
    let p = payment(server, &id).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["three_ds"]["status"], "authenticated", "{p}");
    assert_eq!(p["three_ds"]["eci"], "5", "{p}");
}

async fn full_operations_send_no_amount(server: &TestServer) {
    // gateway.yaml: "Do not specify amount for full captures or refunds."
    let p = create(server, body(2_400, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "succeeded");
    let (status, r) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 2_400}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let reference = p["connector_reference"].as_str().unwrap();
    assert_eq!(
        maintenance_log(server, reference).await,
        vec![("capture".to_string(), None), ("refund".to_string(), None)]
    );
    // Partial ones carry their amount.
    let p = create(server, body(2_400, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 400}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    let reference = p["connector_reference"].as_str().unwrap();
    assert_eq!(
        maintenance_log(server, reference).await,
        vec![("capture".to_string(), Some("4.00".to_string()))]
    );
}

async fn a_capture_retried_after_a_lost_answer_is_made_once(server: &TestServer) {
    // HiPay's operation_id is a label, not an idempotency key: the host's
    // retry under the same key must not capture twice.
    let p = create(server, body(2_000, "EUR", VISA_OK, "manual")).await;
    let id = p["id"].as_str().unwrap().to_string();
    let reference = p["connector_reference"].as_str().unwrap().to_string();
    fault(server, "timeout_after_effect", 1, MAINTENANCE).await;
    let path = format!("/v1/payments/{id}/capture");
    let capture = || server.post_with(&path, json!({"amount": 500}), Some("lost-answer"));
    let (status, err) = capture().await;
    assert_eq!(status, 502, "{err}");
    let (status, p) = capture().await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "partially_captured", "{p}");
    assert_eq!(p["amount_captured"], 500);
    let tx = sandbox_transaction(server, &reference).await;
    assert_eq!(tx["capturedAmount"], "5.00", "captured once: {tx}");
    assert_eq!(maintenance_log(server, &reference).await.len(), 1);
}

async fn every_request_was_checked_against_hipay_documents(server: &TestServer) {
    let (base, _) = sandbox(server);
    let seen: Value = server
        .http
        .get(format!("{base}/_sandbox/validation"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Skipped, saying so, without the documents (a failure when CI=true).
    if passerelle_sandbox::test_specs::specs_for("hipay/gateway.yaml").is_none() {
        return;
    }
    assert_eq!(
        seen["documents"], true,
        "the sandbox did not load them: {seen}"
    );
    assert_eq!(seen["violations"], json!([]), "{seen}");
    for operation in [
        "POST /v2/token/create",
        "POST /v1/order",
        "POST /v1/hpayment",
        "POST /v1/maintenance/transaction/{transaction_reference}",
        "GET /v1/transaction/{transaction_reference}",
        "GET /v1/transaction",
    ] {
        assert!(
            seen["checked"][operation].as_u64() > Some(0),
            "{operation}: {seen}"
        );
    }
}
