//! End to end through the HTTP API: the bundled Adyen connector against the
//! sandbox's Adyen Checkout v71 simulator (docs/sandbox/adyen.md), whose
//! webhooks the demo posts to the demo `adyen` account.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ADYEN_OK: &str = "4111111111111111";
const ADYEN_3DS: &str = "4212345678901237";

/// A card payment from a shopper's browser: what the storefront's page
/// collects for 3-D Secure 2 (browser data, IP address, origin).
fn adyen_body(amount: u64, currency: &str, card: &str, holder: &str, capture: &str) -> Value {
    json!({
        "connector": "adyen",
        "amount": amount,
        "currency": currency,
        "reference": format!("order-{}", rand_suffix()),
        "capture_method": capture,
        "payment_method": {"type": "card", "card": {
            "number": card, "exp_month": 3, "exp_year": 2030, "cvc": "737", "holder_name": holder
        }},
        "shopper": {
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
        },
        "return_url": "https://shop.example/checkout/done?cart=42",
    })
}

/// Whole days from one RFC 3339 date-time to another (dates only).
fn days_between(from: &Value, to: &Value) -> Option<i64> {
    fn day_number(v: &Value) -> Option<i64> {
        let s = v.as_str()?;
        let (y, m, d): (i64, i64, i64) = (
            s.get(0..4)?.parse().ok()?,
            s.get(5..7)?.parse().ok()?,
            s.get(8..10)?.parse().ok()?,
        );
        // Days from the civil date (H. Hinnant).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        Some(era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy)
    }
    Some(day_number(to)? - day_number(from)?)
}

/// Whether the official OpenAPI documents are there (`$PASSERELLE_PSP_SPECS`,
/// else `../shared/psp-specs` beside the clone; the test server validates
/// with them then); `false` after one line saying which test skips that
/// check and how to run it (a failure when `CI=true`).
fn specs_present() -> bool {
    passerelle_sandbox::test_specs::specs_for("adyen/CheckoutService-v71.json").is_some()
}

/// Every request the connector sent to the sandbox was checked against
/// Adyen's official v71 document and passed (`GET /_sandbox/validation`).
async fn assert_all_requests_validated(server: &TestServer) {
    let report: Value = server
        .http
        .get(format!("{}/_sandbox/validation", adyen_base(server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checked: u64 = report["checked"]
        .as_object()
        .map(|ops| ops.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    assert!(checked > 0, "nothing was checked: {report}");
    assert_eq!(
        report["violations"],
        json!([]),
        "the connector sent requests Adyen refuses"
    );
    if specs_present() {
        assert_eq!(report["documents"], true, "validation was off: {report}");
    }
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, payment) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{payment}");
    payment
}

fn adyen_base(server: &TestServer) -> String {
    server.demo["sandbox"]["adyen"]["base_url"]
        .as_str()
        .unwrap()
        .to_string()
}

fn merchant_account(server: &TestServer) -> String {
    server.demo["sandbox"]["adyen"]["merchant_account"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Makes the sandbox misbehave on the account's next `count` API calls.
async fn adyen_fault(server: &TestServer, mode: &str, count: u32) {
    let resp = server
        .http
        .post(format!("{}/_sandbox/faults", adyen_base(server)))
        .json(&json!({"account": merchant_account(server), "mode": mode, "count": count}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "fault: {}", resp.status());
}

/// The sandbox's own view of a payment.
async fn adyen_payment(server: &TestServer, psp: &str) -> Value {
    server
        .http
        .get(format!("{}/_sandbox/payments/{psp}", adyen_base(server)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls the payment until `done` holds (webhooks arrive asynchronously).
async fn wait_for(server: &TestServer, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
        if done(&p) {
            return p;
        }
        assert!(Instant::now() < deadline, "timed out waiting: {p}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for_refunds(server: &TestServer, id: &str, settled: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, list) = server.get(&format!("/v1/payments/{id}/refunds")).await;
        let refunds = list["data"].as_array().cloned().unwrap_or_default();
        if refunds.iter().filter(|r| r["status"] != "pending").count() >= settled {
            return refunds;
        }
        assert!(Instant::now() < deadline, "refunds not settled: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts the 3-D Secure page's form number `index` (0 approves, 1 fails,
/// 2 is the shopper cancelling) like a browser, and returns where the
/// sandbox sends the shopper (Passerelle's return URL).
async fn act_on_3ds_page(server: &TestServer, url: &str, index: usize) -> String {
    let page = server.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let forms: Vec<&str> = html.split("<form").skip(1).collect();
    assert!(forms.len() > index, "the 3-D Secure page's forms: {html}");
    let action = forms[index]
        .split("action=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let action = url::Url::parse(url)
        .unwrap()
        .join(&action)
        .unwrap()
        .to_string();
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

/// The shopper's browser comes back to Passerelle, which sends it on to the shop.
async fn shopper_returns(server: &TestServer, back: &str) {
    let resp = server.http.get(back).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    let to_merchant = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        to_merchant.starts_with("https://shop.example/checkout/done?cart=42"),
        "{to_merchant}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_refusals_and_currencies() {
    let server = TestServer::start(Backend::Sqlite).await;
    // Automatic capture: captured at once.
    let p = create(
        &server,
        adyen_body(1050, "EUR", ADYEN_OK, "Ada Lovelace", "automatic"),
    )
    .await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["amount_captured"], 1050);
    assert_eq!(p["connector"], "adyen");
    assert_eq!(p["provider_status"], "Authorised", "{p}");
    let psp = p["connector_reference"].as_str().unwrap().to_string();
    assert_eq!(psp.len(), 16, "{p}");
    let at_adyen = adyen_payment(&server, &psp).await;
    assert_eq!(at_adyen["value"], 1050, "{at_adyen}");
    assert_eq!(at_adyen["merchantReference"], p["id"], "{at_adyen}");

    // Adyen's own decimals where they differ from ISO 4217: what Adyen
    // charges is the shopper's amount (IDR 15,000.00 is 15000 at Adyen,
    // not 1500000: 100 times more before).
    for (amount, currency, value, charged) in [
        (1_500_000u64, "IDR", 15_000u64, "15000 IDR"),
        (1_050, "CLP", 105_000, "1050.00 CLP"),
        (2_790, "ISK", 279_000, "2790.00 ISK"),
        (1_500, "CVE", 15, "15 CVE"),
    ] {
        let p = create(
            &server,
            adyen_body(amount, currency, ADYEN_OK, "Ada Lovelace", "manual"),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["amount_capturable"], amount, "{p}");
        let at_adyen = adyen_payment(&server, p["connector_reference"].as_str().unwrap()).await;
        assert_eq!(
            (
                at_adyen["value"].as_u64(),
                at_adyen["formattedAmount"].as_str()
            ),
            (Some(value), Some(charged)),
            "{at_adyen}"
        );
        // Captured in full: the CAPTURE webhook's amount comes back in
        // Passerelle's units.
        let id = p["id"].as_str().unwrap().to_string();
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/capture"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        let p = wait_for(&server, &id, |p| p["status"] == "succeeded").await;
        assert_eq!(p["amount_captured"], amount, "{p}");
    }
    // Cents Adyen cannot take are refused before any call.
    let (status, err) = server
        .post(
            "/v1/payments",
            adyen_body(1_500_050, "IDR", ADYEN_OK, "Ada Lovelace", "manual"),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "amount", "{err}");

    // 0- and 3-decimal currencies go as they are.
    for (amount, currency) in [(1050u64, "JPY"), (1005, "KWD")] {
        let p = create(
            &server,
            adyen_body(amount, currency, ADYEN_OK, "Ada Lovelace", "manual"),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["amount_capturable"], amount);
        let at_adyen = adyen_payment(&server, p["connector_reference"].as_str().unwrap()).await;
        assert_eq!(
            (at_adyen["value"].as_u64(), at_adyen["currency"].as_str()),
            (Some(amount), Some(currency)),
            "{at_adyen}"
        );
    }

    // A refusal keeps Adyen's code and reason.
    let p = create(
        &server,
        adyen_body(1000, "EUR", ADYEN_OK, "NOT_ENOUGH_BALANCE", "automatic"),
    )
    .await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "12");
    assert_eq!(p["failure_message"], "Not enough balance");
    assert_eq!(p["provider_status"], "Refused");

    // A currency Adyen cannot express is refused before any call to Adyen.
    let (status, err) = server
        .post(
            "/v1/payments",
            adyen_body(1000, "CLF", ADYEN_OK, "Ada Lovelace", "manual"),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["param"], "currency", "{err}");
    assert_all_requests_validated(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_d_secure_redirects() {
    let server = TestServer::start(Backend::Sqlite).await;
    // Approved: back through Passerelle to the shop, authorised.
    let p = create(
        &server,
        adyen_body(4200, "EUR", ADYEN_3DS, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_action", "{p}");
    assert_eq!(p["next_action"]["type"], "redirect");
    assert_eq!(p["next_action"]["method"], "GET");
    // Adyen's action answer has no pspReference (v71 gives it with
    // /payments/details): the payment waits under its own id.
    assert!(p["connector_reference"].is_null(), "{p}");
    // The janitor's sync meanwhile keeps it waiting for the shopper.
    let (status, synced) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(synced["status"], "requires_action", "{synced}");
    let back = act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    assert!(
        back.starts_with(&server.url(&format!("/v1/payments/{id}/return"))),
        "{back}"
    );
    assert!(back.contains("redirectResult="), "{back}");
    shopper_returns(&server, &back).await;
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["amount_capturable"], 4200);
    assert!(p["next_action"].is_null());
    // Learnt from /payments/details; Adyen knows the payment under it.
    let psp = p["connector_reference"].as_str().unwrap().to_string();
    let at_adyen = adyen_payment(&server, &psp).await;
    assert_eq!(at_adyen["merchantReference"], p["id"], "{at_adyen}");
    assert_eq!(at_adyen["browserInfo"], true, "{at_adyen}");
    assert_eq!(
        p["three_ds"],
        json!({"status": "authenticated", "version": "2.2.0", "liability_shift": true, "eci": "05"}),
        "{p}"
    );
    // Its AUTHORISATION webhook (by pspReference, merchantReference = the
    // payment id) changes nothing more; the payment is captured under the
    // learnt reference.
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    let p = wait_for(&server, &id, |p| p["status"] == "succeeded").await;
    assert_eq!(p["amount_captured"], 4200, "{p}");
    assert_eq!(adyen_payment(&server, &psp).await["captured"], 4200);

    // Authentication failed: refused with Adyen's code.
    let p = create(
        &server,
        adyen_body(4200, "EUR", ADYEN_3DS, "Ada Lovelace", "automatic"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 1).await;
    shopper_returns(&server, &back).await;
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "11");
    assert_eq!(p["failure_message"], "3D Not Authenticated");
    assert_eq!(p["three_ds"]["status"], "failed", "{p}");
    assert_eq!(p["three_ds"]["liability_shift"], false, "{p}");

    // The shopper cancels on the page: Adyen answers `Cancelled`, a
    // payment that failed (a shopper's return never cancels a payment).
    let p = create(
        &server,
        adyen_body(4200, "EUR", ADYEN_3DS, "Ada Lovelace", "automatic"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    let back = act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 2).await;
    shopper_returns(&server, &back).await;
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "Cancelled", "{p}");

    // A return with a forged redirectResult settles nothing: Adyen refuses
    // it, and the payment keeps waiting for the shopper.
    let p = create(
        &server,
        adyen_body(4200, "EUR", ADYEN_3DS, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    let forged = server.url(&format!("/v1/payments/{id}/return?redirectResult=forged"));
    shopper_returns(&server, &forged).await;
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    // The real page still works afterwards.
    let back = act_on_3ds_page(&server, p["next_action"]["url"].as_str().unwrap(), 0).await;
    shopper_returns(&server, &back).await;
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "requires_capture", "{p}");

    // Without the browser's data the issuer's 3-D Secure 2 cannot run:
    // Adyen's soft decline, 38 "Authentication required".
    let mut body = adyen_body(4200, "EUR", ADYEN_3DS, "Ada Lovelace", "manual");
    body["shopper"].as_object_mut().unwrap().remove("browser");
    let p = create(&server, body).await;
    assert_eq!(p["status"], "failed", "{p}");
    assert_eq!(p["failure_code"], "38", "{p}");
    assert_eq!(p["failure_message"], "Authentication required", "{p}");
    assert_eq!(p["three_ds"]["status"], "not_performed", "{p}");
    assert_all_requests_validated(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_cancels_and_refunds_settle_by_webhook() {
    let server = TestServer::start(Backend::Sqlite).await;
    let p = create(
        &server,
        adyen_body(10_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_capture", "{p}");

    // A partial capture is accepted (pending), then confirmed by CAPTURE.
    let (status, p) = server
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 3_000}),
        )
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["provider_status"], "received", "{p}");
    let p = wait_for(&server, &id, |p| p["amount_captured"] == 3_000).await;
    assert_eq!(p["status"], "partially_captured", "{p}");
    assert_eq!(p["amount_capture_pending"], 0);

    // The rest: Adyen's default account has no multiple partial captures
    // (the partial capture released it), and the connector says so: the
    // host refuses the second capture without asking Adyen.
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(
        err["error"]["code"], "multiple_captures_unsupported",
        "{err}"
    );
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_captured"], 3_000, "{p}");
    assert_eq!(p["amount_capture_pending"], 0, "{p}");

    // Partial refunds up to the captured total, each settled by REFUND.
    for amount in [1_000, 2_000] {
        let (status, r) = server
            .post(
                &format!("/v1/payments/{id}/refunds"),
                json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        assert_eq!(r["status"], "pending", "{r}");
        assert_eq!(r["connector_reference"].as_str().unwrap().len(), 16, "{r}");
    }
    let refunds = wait_for_refunds(&server, &id, 2).await;
    assert!(
        refunds.iter().all(|r| r["status"] == "succeeded"),
        "{refunds:?}"
    );
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/refunds"), json!({"amount": 1}))
        .await;
    assert_eq!(status, 400, "refund over the total: {err}");
    assert_eq!(err["error"]["param"], "amount");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_refunded"], 3_000);
    let at_adyen = adyen_payment(&server, p["connector_reference"].as_str().unwrap()).await;
    assert_eq!(at_adyen["captured"], 3_000, "{at_adyen}");
    assert_eq!(at_adyen["refunded"], 3_000, "{at_adyen}");

    // A full capture in one go. Until then the authorization stays
    // capturable 28 days (Adyen's own expiry for card payments).
    let p = create(
        &server,
        adyen_body(2_500, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id2 = p["id"].as_str().unwrap().to_string();
    assert_eq!(
        days_between(&p["created_at"], &p["capture_before"]),
        Some(28),
        "{p}"
    );
    let (status, _) = server
        .post(&format!("/v1/payments/{id2}/capture"), json!({}))
        .await;
    assert_eq!(status, 200);
    let p = wait_for(&server, &id2, |p| p["status"] == "succeeded").await;
    assert_eq!(p["amount_captured"], 2_500);

    // Cancel: pending until CANCELLATION arrives.
    let p = create(
        &server,
        adyen_body(900, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id3 = p["id"].as_str().unwrap().to_string();
    let (status, p) = server
        .post(&format!("/v1/payments/{id3}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    let p = wait_for(&server, &id3, |p| p["status"] == "canceled").await;
    assert_eq!(p["amount_capturable"], 0);
    let at_adyen = adyen_payment(&server, p["connector_reference"].as_str().unwrap()).await;
    assert_eq!(at_adyen["cancelled"], true, "{at_adyen}");
    assert_all_requests_validated(&server).await;
}

/// With Adyen's "multiple partial captures" on the merchant account (and
/// the connector told so), captures add up to the authorised amount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiple_partial_captures_when_the_account_has_them() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.enable_adyen_multiple_partial_captures().await;
    let p = create(
        &server,
        adyen_body(10_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    for (amount, captured) in [(3_000, 3_000), (7_000, 10_000)] {
        let (status, p) = server
            .post(
                &format!("/v1/payments/{id}/capture"),
                json!({"amount": amount}),
            )
            .await;
        assert_eq!(status, 200, "{p}");
        wait_for(&server, &id, |p| p["amount_captured"] == captured).await;
    }
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let at_adyen = adyen_payment(&server, p["connector_reference"].as_str().unwrap()).await;
    assert_eq!(at_adyen["captured"], 10_000, "{at_adyen}");
    assert_all_requests_validated(&server).await;
}

/// `automatic_delayed` is Adyen's own delayed capture (`captureDelayHours`):
/// authorized, then captured by Adyen when the delay elapses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adyen_delays_the_capture_itself() {
    let server = TestServer::start(Backend::Sqlite).await;
    let mut body = adyen_body(2_500, "EUR", ADYEN_OK, "Ada Lovelace", "automatic_delayed");
    body["capture_delay_hours"] = json!(48);
    let p = create(&server, body).await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["capture_scheduled_by"], "provider", "{p}");
    let psp = p["connector_reference"].as_str().unwrap().to_string();
    let at_adyen = adyen_payment(&server, &psp).await;
    assert_eq!(
        (
            at_adyen["captureDelayHours"].as_u64(),
            at_adyen["captured"].as_u64()
        ),
        (Some(48), Some(0)),
        "{at_adyen}"
    );
    // 48 hours later Adyen captures and sends CAPTURE.
    let resp = server
        .http
        .post(format!(
            "{}/_sandbox/payments/{psp}/capture-delay-elapsed",
            adyen_base(&server)
        ))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let p = wait_for(&server, &id, |p| p["status"] == "succeeded").await;
    assert_eq!(p["amount_captured"], 2_500, "{p}");
    assert_all_requests_validated(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_payment_settled_by_webhook_and_forgery_rejected() {
    let server = TestServer::start(Backend::Sqlite).await;
    let p = create(
        &server,
        adyen_body(1_500, "EUR", ADYEN_OK, "PENDING", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "processing", "{p}");
    assert_eq!(p["provider_status"], "Received");
    let psp = p["connector_reference"].as_str().unwrap().to_string();
    // Sync has nothing newer than Adyen's last answer: still processing.
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "processing");

    // A forged AUTHORISATION is refused and changes nothing.
    let account = server.demo["connectors"]["adyen"]["account_id"]
        .as_str()
        .unwrap()
        .to_string();
    let forged = json!({"live": "false", "notificationItems": [{"NotificationRequestItem": {
        "additionalData": {"hmacSignature": "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I="},
        "amount": {"value": 1500, "currency": "EUR"}, "eventCode": "AUTHORISATION",
        "eventDate": "2026-11-27T14:00:00+00:00", "merchantAccountCode": merchant_account(&server),
        "merchantReference": id, "pspReference": psp, "reason": "", "success": "true"}}]});
    let resp = server
        .http
        .post(server.url(&format!("/v1/webhooks/{account}")))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = server
        .http
        .post(server.url(&format!("/v1/webhooks/{account}")))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["status"], "processing");

    // Adyen settles it: the signed AUTHORISATION webhook authorises it.
    let resp = server
        .http
        .post(format!(
            "{}/_sandbox/payments/{psp}/settle",
            adyen_base(&server)
        ))
        .json(&json!({"authorised": true}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let p = wait_for(&server, &id, |p| p["status"] != "processing").await;
    assert_eq!(p["status"], "requires_capture", "{p}");
    let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert!(
        events["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["cause"] == "notification"),
        "{events}"
    );
    assert_all_requests_validated(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psp_faults_leave_defined_state() {
    let server = TestServer::start(Backend::Sqlite).await;
    // 5xx and garbage on authorisation: the outcome is unknown, `processing`.
    adyen_fault(&server, "http_500", 1).await;
    let p = create(
        &server,
        adyen_body(1_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    assert_eq!(p["status"], "processing", "{p}");
    assert_eq!(p["failure_code"], "http_500", "{p}");
    adyen_fault(&server, "malformed", 1).await;
    let p = create(
        &server,
        adyen_body(1_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    assert_eq!(p["status"], "processing", "{p}");
    assert_eq!(p["failure_code"], "invalid_response", "{p}");

    // A 5xx on capture: 502, and the outcome is unknown, so the amount
    // stays reserved (pending) rather than capturable twice; sync keeps the
    // payment where it is; the retry with the same Idempotency-Key reaches
    // Adyen under the same key, and its webhook settles it.
    let p = create(
        &server,
        adyen_body(2_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    adyen_fault(&server, "http_500", 1).await;
    let key = format!("capture-{}", rand_suffix());
    let (status, err) = server
        .post_with(&format!("/v1/payments/{id}/capture"), json!({}), Some(&key))
        .await;
    assert_eq!(status, 502, "{err}");
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/sync"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["status"], "requires_capture", "{p}");
    assert_eq!(p["amount_captured"], 0);
    assert_eq!(
        p["amount_capture_pending"], 2_000,
        "reserved until known: {p}"
    );
    let (status, p) = server
        .post_with(&format!("/v1/payments/{id}/capture"), json!({}), Some(&key))
        .await;
    assert_eq!(status, 200, "{p}");
    let p = wait_for(&server, &id, |p| p["status"] == "succeeded").await;
    assert_eq!(p["amount_capture_pending"], 0, "{p}");

    // The answer to a capture is lost after Adyen captured (timeout): the
    // host reports 502, and Adyen's CAPTURE webhook then settles it.
    let p = create(
        &server,
        adyen_body(3_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    adyen_fault(&server, "timeout_after_effect", 1).await;
    let (status, err) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 502, "{err}");
    let p = wait_for(&server, &id, |p| p["status"] == "succeeded").await;
    assert_eq!(p["amount_captured"], 3_000, "{p}");
    let at_adyen = adyen_payment(&server, p["connector_reference"].as_str().unwrap()).await;
    assert_eq!(at_adyen["captured"], 3_000, "captured once: {at_adyen}");
    assert_all_requests_validated(&server).await;
}

/// Makes every pspReference the sandbox issues from now on pass the Luhn
/// check, like about one real Adyen reference in ten.
async fn adyen_luhn_references(server: &TestServer) {
    let resp = server
        .http
        .post(format!("{}/_sandbox/references", adyen_base(server)))
        .json(&json!({"luhn_valid": true}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "references: {}", resp.status());
}

fn luhn_valid(digits: &str) -> bool {
    passerelle_sandbox::luhn::is_valid(digits)
}

/// A reference that is all digits and passes Luhn (what a card number looks
/// like) is an identifier all the same: the host keeps it exactly, so the
/// capture, the refund and Adyen's webhooks all reach the payment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_number_like_psp_references_are_kept_exactly() {
    let server = TestServer::start(Backend::Sqlite).await;
    adyen_luhn_references(&server).await;
    let p = create(
        &server,
        adyen_body(5_000, "EUR", ADYEN_OK, "Ada Lovelace", "manual"),
    )
    .await;
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(p["status"], "requires_capture", "{p}");
    let psp = p["connector_reference"].as_str().unwrap_or_default();
    assert!(
        psp.len() == 16 && psp.bytes().all(|b| b.is_ascii_digit()) && luhn_valid(psp),
        "the reference is the sandbox's Luhn-valid pspReference: {p}"
    );
    // Adyen knows the payment under exactly that reference.
    let at_adyen = adyen_payment(&server, psp).await;
    assert_eq!(at_adyen["pspReference"], psp, "{at_adyen}");
    assert_eq!(at_adyen["merchantReference"], p["id"], "{at_adyen}");

    // The capture goes to that reference; the CAPTURE webhook, which names
    // it as originalReference, settles the payment.
    let (status, p) = server
        .post(&format!("/v1/payments/{id}/capture"), json!({}))
        .await;
    assert_eq!(status, 200, "{p}");
    let p = wait_for(&server, &id, |p| p["status"] == "succeeded").await;
    assert_eq!(p["amount_captured"], 5_000, "{p}");
    assert_eq!(p["connector_reference"], psp, "{p}");

    // The refund too; its own reference (Luhn-valid as well) is kept, and
    // the REFUND webhook naming it settles the refund.
    let (status, r) = server
        .post(
            &format!("/v1/payments/{id}/refunds"),
            json!({"amount": 2_000}),
        )
        .await;
    assert_eq!(status, 201, "{r}");
    let refund_psp = r["connector_reference"].as_str().unwrap_or_default();
    assert!(
        refund_psp.len() == 16 && luhn_valid(refund_psp),
        "the refund's pspReference: {r}"
    );
    let refunds = wait_for_refunds(&server, &id, 1).await;
    assert_eq!(refunds[0]["status"], "succeeded", "{refunds:?}");
    assert_eq!(refunds[0]["connector_reference"], refund_psp, "{refunds:?}");
    let (_, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(p["amount_refunded"], 2_000, "{p}");
    let at_adyen = adyen_payment(&server, psp).await;
    assert_eq!(at_adyen["captured"], 5_000, "{at_adyen}");
    assert_eq!(at_adyen["refunded"], 2_000, "{at_adyen}");

    // Nothing the API shows of the payment was masked.
    let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
    assert!(
        !events.to_string().contains("masked"),
        "a reference was masked: {events}"
    );
    assert_all_requests_validated(&server).await;
}
