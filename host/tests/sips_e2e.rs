//! Worldline Sips end to end: the real server, the bundled `sips` connector
//! (a WebAssembly component) and the Sips simulator over loopback, on SQLite.
//! The shopper's browser is played with reqwest: it posts the redirect form
//! to Sips' payment page, fills the card form (or cancels), passes the 3-D
//! Secure step, and posts Sips' sealed answer back to Passerelle.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

macro_rules! sqlite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super_run::$name(Backend::Sqlite).await;
            }
        )*
    };
}

sqlite_tests!(
    hosted_card_payment_manual_capture_partial_then_rest,
    automatic_capture_and_partial_refunds_up_to_the_total,
    zero_and_three_decimal_currencies,
    refusal_keeps_the_sips_code,
    three_d_secure_approved_and_failed,
    shopper_cancel_on_the_payment_page,
    merchant_cancel_releases_the_authorization,
    notification_settles_a_payment_whose_shopper_never_returns,
    forged_notifications_are_rejected,
    psp_faults_leave_a_defined_state_and_sync_resolves,
    manual_capture_has_the_accounts_capture_window_then_expires,
    three_d_secure_result_shows_on_the_payment,
    native_capture_delay_is_sips_own_deferred_capture,
);

const CARD_PENDING: &str = "4974934125497860";
/// The simulator's frictionless 3-D Secure card (docs/sandbox/sips.md).
const CARD_3DS_FRICTIONLESS: &str = "4000000000001091";
/// Worldline's public simulation merchant, the demo's Sips account.
const SIPS_MERCHANT: &str = "002001000000001";

/// A browser: forms found in an HTML page.
#[derive(Debug)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The page's forms, in order, with their hidden fields.
fn forms(html: &str) -> Vec<Form> {
    html.split("<form")
        .skip(1)
        .map(|part| {
            let part = part.split("</form>").next().unwrap();
            let open_tag = part.split('>').next().unwrap();
            let fields = part
                .split("<input")
                .skip(1)
                .filter_map(|input| {
                    let tag = input.split('>').next().unwrap();
                    // Visible inputs are the shopper's to fill.
                    if attribute(tag, "type").as_deref() != Some("hidden") {
                        return None;
                    }
                    Some((
                        attribute(tag, "name")?,
                        attribute(tag, "value").unwrap_or_default(),
                    ))
                })
                .collect();
            Form {
                action: attribute(open_tag, "action").unwrap(),
                fields,
            }
        })
        .collect()
}

async fn post_form(server: &TestServer, url: &str, fields: &[(String, String)]) -> (u16, String) {
    let resp = server.http.post(url).form(fields).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// What the shopper does on Sips' pages.
#[derive(Clone, Copy)]
enum Shopper<'a> {
    Pay(&'a str),
    /// A 3-D Secure card, then the step's first (approve) or second (fail) form.
    Pay3ds(&'a str, usize),
    Cancel,
}

/// Plays the shopper from the payment's `next_action` until Sips' return
/// page; returns that page's auto-submitted form (to Passerelle).
async fn pay_on_sips(server: &TestServer, payment: &Value, shopper: Shopper<'_>) -> Form {
    let action = &payment["next_action"];
    assert_eq!(action["type"], "redirect", "{payment}");
    assert_eq!(action["method"], "POST", "{payment}");
    let redirect: Vec<(String, String)> = action["form"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert!(redirect.iter().any(|(k, _)| k == "redirectionData"));
    let (status, page) = post_form(server, action["url"].as_str().unwrap(), &redirect).await;
    assert_eq!(status, 200, "{page}");
    let page_forms = forms(&page);
    assert!(page_forms.len() >= 2, "card form then cancel form: {page}");
    let (status, page) = match shopper {
        Shopper::Cancel => {
            let cancel = &page_forms[1];
            post_form(server, &cancel.action, &cancel.fields).await
        }
        Shopper::Pay(card) | Shopper::Pay3ds(card, _) => {
            let card_form = &page_forms[0];
            let mut fields = card_form.fields.clone();
            fields.extend([
                ("cardNumber".to_string(), card.to_string()),
                ("expiryMonth".to_string(), "12".to_string()),
                ("expiryYear".to_string(), "2030".to_string()),
                ("cvv".to_string(), "123".to_string()),
            ]);
            post_form(server, &card_form.action, &fields).await
        }
    };
    assert_eq!(status, 200, "{page}");
    let (status, page) = match shopper {
        Shopper::Pay3ds(_, choice) => {
            let step = forms(&page);
            assert!(step.len() >= 2, "approve then fail: {page}");
            post_form(server, &step[choice].action, &step[choice].fields).await
        }
        _ => (status, page),
    };
    assert_eq!(status, 200, "{page}");
    let mut back = forms(&page);
    assert_eq!(back.len(), 1, "the return page has one form: {page}");
    let back = back.remove(0);
    assert!(back.fields.iter().any(|(k, _)| k == "Data"), "{page}");
    assert!(back.fields.iter().any(|(k, _)| k == "Seal"), "{page}");
    back
}

/// The browser posts Sips' answer to Passerelle, which sends it on (303)
/// to the merchant's return URL.
async fn return_to_passerelle(server: &TestServer, id: &str, back: &Form) {
    assert!(
        back.action
            .starts_with(&server.url(&format!("/v1/payments/{id}/return"))),
        "{}",
        back.action
    );
    let resp = server
        .http
        .post(&back.action)
        .form(&back.fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let to_merchant = resp.headers()["location"].to_str().unwrap().to_string();
    let to_merchant = url::Url::parse(&to_merchant).unwrap();
    assert_eq!(to_merchant.host_str(), Some("shop.example"));
    let query: Vec<(String, String)> = to_merchant.query_pairs().into_owned().collect();
    assert!(query.contains(&("payment_id".into(), id.to_string())));
}

fn sips_body(amount: u64, currency: &str, capture_method: &str) -> Value {
    let mut body = payment_body(amount, currency, CARD_OK, capture_method);
    body["connector"] = json!("sips");
    body
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, payment) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{payment}");
    payment
}

async fn get(server: &TestServer, id: &str) -> Value {
    let (status, p) = server.get(&format!("/v1/payments/{id}")).await;
    assert_eq!(status, 200, "{p}");
    p
}

/// A payment paid on Sips' pages, the shopper back at the shop.
async fn paid(server: &TestServer, body: Value, shopper: Shopper<'_>) -> (String, Value) {
    let p = create(server, body).await;
    assert_eq!(p["status"], "requires_action", "{p}");
    assert_eq!(p["connector"], "sips");
    let id = p["id"].as_str().unwrap().to_string();
    let back = pay_on_sips(server, &p, shopper).await;
    return_to_passerelle(server, &id, &back).await;
    let p = get(server, &id).await;
    (id, p)
}

fn sips_base(server: &TestServer) -> String {
    server.demo["sandbox"]["sips"]["base_url"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Makes Sips misbehave on its next `count` API calls (or automatic responses).
async fn sips_fault(server: &TestServer, mode: &str, count: u32) {
    let resp = server
        .http
        .post(format!("{}/_sandbox/faults", sips_base(server)))
        .json(&json!({"mode": mode, "count": count}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "fault: {}", resp.status());
}

/// The transaction as the Sips simulator holds it.
async fn sips_transaction(server: &TestServer, reference: &str) -> Value {
    let resp = server
        .http
        .get(format!(
            "{}/_sandbox/transactions/{SIPS_MERCHANT}/{reference}",
            sips_base(server)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Moves a Sips payment `days` back in time: the remittances since then run.
async fn sips_age(server: &TestServer, reference: &str, days: u64) -> Value {
    let resp = server
        .http
        .post(format!(
            "{}/_sandbox/transactions/{SIPS_MERCHANT}/{reference}/age",
            sips_base(server)
        ))
        .json(&json!({ "days": days }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

async fn wait_for_status(server: &TestServer, id: &str, leaving: &str) -> Value {
    for _ in 0..200 {
        let p = get(server, id).await;
        if p["status"] != leaving {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payment {id} stayed {leaving}");
}

mod super_run {
    use super::*;

    pub async fn hosted_card_payment_manual_capture_partial_then_rest(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (id, p) = paid(
            &server,
            sips_body(1050, "EUR", "manual"),
            Shopper::Pay(CARD_OK),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["amount_capturable"], 1050);
        assert!(p["next_action"].is_null());
        let reference = p["connector_reference"].as_str().unwrap();
        assert!(reference.starts_with("pay") && reference.len() <= 35, "{p}");

        let (status, p) = server
            .post(
                &format!("/v1/payments/{id}/capture"),
                json!({"amount": 600}),
            )
            .await;
        assert_eq!(status, 200, "{p}");
        // One capture per payment at Sips: the rest is released, the
        // payment is done with 600 captured.
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_captured"], 600);
        assert_eq!(p["amount_capturable"], 0, "{p}");

        // Sips validates a transaction once (the rest of the authorization
        // is released): the host knows it from the connector's
        // capabilities and refuses a second capture itself (the payment is
        // done) rather than letting Sips answer 24.
        let (status, err) = server
            .post(&format!("/v1/payments/{id}/capture"), json!({}))
            .await;
        assert_eq!(status, 409, "{err}");
        assert_eq!(err["error"]["code"], "payment_not_capturable", "{err}");
        let p = get(&server, &id).await;
        assert_eq!(p["amount_captured"], 600);
        let validations: Vec<_> = sips_transaction(&server, reference).await["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["operation"] == "validate")
            .cloned()
            .collect();
        assert_eq!(validations.len(), 1, "{validations:?}");

        // What was captured can be refunded.
        let (status, refund) = server
            .post(
                &format!("/v1/payments/{id}/refunds"),
                json!({"amount": 600}),
            )
            .await;
        assert_eq!(status, 201, "{refund}");
        assert_eq!(refund["status"], "succeeded", "{refund}");
    }

    pub async fn automatic_capture_and_partial_refunds_up_to_the_total(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (id, p) = paid(
            &server,
            sips_body(1050, "EUR", "automatic"),
            Shopper::Pay(CARD_OK),
        )
        .await;
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_captured"], 1050);
        assert_eq!(p["provider_status"], "00");

        for amount in [300, 300, 450] {
            let (status, refund) = server
                .post(
                    &format!("/v1/payments/{id}/refunds"),
                    json!({"amount": amount}),
                )
                .await;
            assert_eq!(status, 201, "{refund}");
            assert_eq!(refund["status"], "succeeded", "{refund}");
            assert_eq!(refund["amount"], amount);
        }
        let p = get(&server, &id).await;
        assert_eq!(p["amount_refunded"], 1050);
        // Over the total: refused before Sips is asked.
        let (status, err) = server
            .post(&format!("/v1/payments/{id}/refunds"), json!({"amount": 1}))
            .await;
        assert_eq!(status, 400, "{err}");
        let (_, refunds) = server.get(&format!("/v1/payments/{id}/refunds")).await;
        assert_eq!(refunds["data"].as_array().unwrap().len(), 3, "{refunds}");
    }

    pub async fn zero_and_three_decimal_currencies(backend: Backend) {
        let server = TestServer::start(backend).await;
        for (amount, currency) in [(1000, "JPY"), (12_345, "KWD")] {
            let (_, p) = paid(
                &server,
                sips_body(amount, currency, "automatic"),
                Shopper::Pay(CARD_OK),
            )
            .await;
            assert_eq!(p["status"], "succeeded", "{p}");
            assert_eq!(p["amount_captured"], amount);
            assert_eq!(p["currency"], currency);
        }
        // A currency Sips does not process is refused before any call.
        let (status, err) = server
            .post("/v1/payments", sips_body(1000, "VND", "automatic"))
            .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["param"], "currency", "{err}");
    }

    pub async fn refusal_keeps_the_sips_code(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (_, p) = paid(
            &server,
            sips_body(1050, "EUR", "automatic"),
            Shopper::Pay(CARD_REFUSED),
        )
        .await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["failure_code"], "05", "{p}");
        assert!(p["failure_message"].as_str().unwrap().contains("refused"));
        assert_eq!(p["provider_status"], "05");
        // Fraud rules (responseCode 34 from the code-driven test card).
        let (_, p) = paid(
            &server,
            sips_body(1050, "EUR", "automatic"),
            Shopper::Pay("4974934125497834"),
        )
        .await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["failure_code"], "34", "{p}");
        // Pending at the acquirer (60): the payment waits in processing.
        let (_, p) = paid(
            &server,
            sips_body(1050, "EUR", "automatic"),
            Shopper::Pay(CARD_PENDING),
        )
        .await;
        assert_eq!(p["status"], "processing", "{p}");
        assert_eq!(p["provider_status"], "60");
    }

    pub async fn three_d_secure_approved_and_failed(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (_, p) = paid(
            &server,
            sips_body(4200, "EUR", "manual"),
            Shopper::Pay3ds(CARD_3DS, 0),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        let (_, p) = paid(
            &server,
            sips_body(4200, "EUR", "manual"),
            Shopper::Pay3ds(CARD_3DS, 1),
        )
        .await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["failure_code"], "05", "{p}");
    }

    pub async fn shopper_cancel_on_the_payment_page(backend: Backend) {
        let server = TestServer::start(backend).await;
        // Sips' automatic response (which may cancel the payment before the
        // browser is back) is lost, so that only the return is left.
        sips_fault(&server, "notification_drop", 1).await;
        let (id, p) = paid(&server, sips_body(1050, "EUR", "manual"), Shopper::Cancel).await;
        // The shopper's return never ends a payment: Sips' word by a server
        // call (a sync) does.
        assert_eq!(p["status"], "requires_action", "{p}");
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "canceled", "{p}");
        assert_eq!(p["provider_status"], "ABORTED");
    }

    pub async fn merchant_cancel_releases_the_authorization(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (id, p) = paid(
            &server,
            sips_body(900, "EUR", "manual"),
            Shopper::Pay(CARD_OK),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/cancel"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "canceled");
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "canceled");
        assert_eq!(p["provider_status"], "CANCELLED");
    }

    pub async fn notification_settles_a_payment_whose_shopper_never_returns(backend: Backend) {
        let server = TestServer::start(backend).await;
        let p = create(&server, sips_body(2500, "EUR", "manual")).await;
        let id = p["id"].as_str().unwrap().to_string();
        // The shopper pays but closes the browser before the return page
        // posts back: Sips' automatic response settles the payment.
        let _ = pay_on_sips(&server, &p, Shopper::Pay(CARD_OK)).await;
        let p = wait_for_status(&server, &id, "requires_action").await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["amount_capturable"], 2500);
        let (_, events) = server.get(&format!("/v1/payments/{id}/events")).await;
        assert!(
            events["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["cause"] == "notification"),
            "{events}"
        );

        // Sips posting twice (a retry) changes nothing more.
        sips_fault(&server, "notification_duplicate", 1).await;
        let p = create(&server, sips_body(2600, "EUR", "automatic")).await;
        let id = p["id"].as_str().unwrap().to_string();
        let back = pay_on_sips(&server, &p, Shopper::Pay(CARD_OK)).await;
        let p = wait_for_status(&server, &id, "requires_action").await;
        assert_eq!(p["status"], "succeeded", "{p}");
        // The browser's return arrives after the notification: nothing moves.
        return_to_passerelle(&server, &id, &back).await;
        let p = get(&server, &id).await;
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_captured"], 2600);
    }

    pub async fn forged_notifications_are_rejected(backend: Backend) {
        let server = TestServer::start(backend).await;
        let account = "acc_demo_sips";
        let p = create(&server, sips_body(2500, "EUR", "manual")).await;
        let id = p["id"].as_str().unwrap().to_string();
        let reference = p["connector_reference"].as_str().unwrap().to_string();
        let data = format!(
            "amount=2500|currencyCode=978|merchantId=002001000000001|transactionReference={reference}|keyVersion=1|responseCode=00|captureMode=VALIDATION|captureDay=0"
        );
        let webhook = server.url(&format!("/v1/webhooks/{account}"));
        // Sealed with a guessed key.
        let forged = [
            ("Data", data.as_str()),
            (
                "Seal",
                "0000000000000000000000000000000000000000000000000000000000000000",
            ),
            ("InterfaceVersion", "HP_2.20"),
        ];
        let resp = server
            .http
            .post(&webhook)
            .form(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        // No Data at all.
        let resp = server
            .http
            .post(&webhook)
            .form(&[("Seal", "abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        // The browser's return with a forged seal does not move the payment.
        let resp = server
            .http
            .post(server.url(&format!("/v1/payments/{id}/return")))
            .form(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        let p = get(&server, &id).await;
        assert_eq!(p["status"], "requires_action", "{p}");
    }

    pub async fn manual_capture_has_the_accounts_capture_window_then_expires(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (id, p) = paid(
            &server,
            sips_body(1000, "EUR", "manual"),
            Shopper::Pay(CARD_OK),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        let reference = p["connector_reference"].as_str().unwrap().to_string();
        // Sips was given six days to validate (the default capture day
        // limit), not 0, which would have expired that night.
        let tx = sips_transaction(&server, &reference).await;
        assert_eq!(tx["captureMode"], "VALIDATION", "{tx}");
        assert_eq!(tx["captureDay"], 6, "{tx}");
        // The payment shows when the window closes: the end of the payment
        // day + 6 (the simulator's day is UTC).
        let paid_day = tx["paidAtSecs"].as_i64().unwrap() / 86_400;
        assert_eq!(
            p["capture_before"],
            format!("{}T00:00:00.000Z", civil_date(paid_day + 7)),
            "{p}"
        );

        // A week later at Sips the transaction has expired: the capture
        // reaches Sips (the host's clock did not move) and is refused with
        // Sips' 24; a sync shows the authorization gone.
        let tx = sips_age(&server, &reference, 7).await;
        assert_eq!(tx["status"], "EXPIRED", "{tx}");
        let (status, err) = server
            .post(&format!("/v1/payments/{id}/capture"), json!({}))
            .await;
        assert_eq!(status, 402, "{err}");
        assert_eq!(err["error"]["code"], "24", "{err}");
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "canceled", "{p}");
        assert_eq!(p["provider_status"], "EXPIRED", "{p}");
    }

    pub async fn three_d_secure_result_shows_on_the_payment(backend: Backend) {
        let server = TestServer::start(backend).await;
        let (id, p) = paid(
            &server,
            sips_body(1500, "EUR", "manual"),
            Shopper::Pay(CARD_3DS_FRICTIONLESS),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["three_ds"]["status"], "authenticated", "{p}");
        assert_eq!(p["three_ds"]["liability_shift"], true, "{p}");
        assert_eq!(p["three_ds"]["version"], "2", "{p}");
        // A sync reads the same from getTransactionData.
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["three_ds"]["status"], "authenticated", "{p}");

        // The challenge failed: refused, and the payment says why.
        let (_, p) = paid(
            &server,
            sips_body(1500, "EUR", "manual"),
            Shopper::Pay3ds(CARD_3DS, 1),
        )
        .await;
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["three_ds"]["status"], "failed", "{p}");
        assert_eq!(p["three_ds"]["liability_shift"], false, "{p}");

        // A card outside 3-D Secure: not performed, no liability shift.
        let (_, p) = paid(
            &server,
            sips_body(1500, "EUR", "manual"),
            Shopper::Pay(CARD_OK),
        )
        .await;
        assert_eq!(p["three_ds"]["status"], "not_performed", "{p}");
        assert_eq!(p["three_ds"]["liability_shift"], false, "{p}");
    }

    pub async fn native_capture_delay_is_sips_own_deferred_capture(backend: Backend) {
        let server = TestServer::start(backend).await;
        let mut body = sips_body(1200, "EUR", "automatic_delayed");
        body["capture_delay_hours"] = json!(30);
        let (id, p) = paid(&server, body, Shopper::Pay(CARD_OK)).await;
        // Sips captures it itself, in whole days: 30 hours is two days.
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["capture_scheduled_by"], "provider", "{p}");
        let reference = p["connector_reference"].as_str().unwrap().to_string();
        let tx = sips_transaction(&server, &reference).await;
        assert_eq!(tx["captureMode"], "AUTHOR_CAPTURE", "{tx}");
        assert_eq!(tx["captureDay"], 2, "{tx}");
        assert_eq!(tx["status"], "TO_CAPTURE", "{tx}");
        // Until its day a sync still sees an authorization Sips will capture.
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "requires_capture", "{p}");
        assert_eq!(p["provider_status"], "TO_CAPTURE", "{p}");

        // The day's remittance ran: captured.
        let tx = sips_age(&server, &reference, 3).await;
        assert_eq!(tx["status"], "CAPTURED", "{tx}");
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_captured"], 1200, "{p}");

        // Longer than the account's window (six days): refused up front.
        let mut body = sips_body(1200, "EUR", "automatic_delayed");
        body["capture_delay_hours"] = json!(150);
        let (status, err) = server.post("/v1/payments", body).await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["param"], "capture_delay_hours", "{err}");
    }

    pub async fn psp_faults_leave_a_defined_state_and_sync_resolves(backend: Backend) {
        let server = TestServer::start(backend).await;
        // A 5xx on paymentInit: unknown outcome, the payment waits in processing.
        sips_fault(&server, "http_500", 1).await;
        let p = create(&server, sips_body(1000, "EUR", "manual")).await;
        assert_eq!(p["status"], "processing", "{p}");
        assert!(p["failure_code"].as_str().unwrap().contains("500"), "{p}");
        // Garbage: same.
        sips_fault(&server, "malformed", 1).await;
        let p = create(&server, sips_body(1000, "EUR", "manual")).await;
        assert_eq!(p["status"], "processing", "{p}");

        // Before the shopper pays, a sync keeps the redirect.
        let p = create(&server, sips_body(1000, "EUR", "manual")).await;
        let id = p["id"].as_str().unwrap().to_string();
        let (status, synced) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{synced}");
        assert_eq!(synced["status"], "requires_action", "{synced}");
        assert_eq!(synced["next_action"], p["next_action"]);

        // A 5xx on capture: 502, and the outcome is unknown, so the amount
        // stays reserved (pending) rather than capturable twice.
        let (id, p) = paid(
            &server,
            sips_body(1000, "EUR", "manual"),
            Shopper::Pay(CARD_OK),
        )
        .await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        let key = format!("capture-{}", rand_suffix());
        sips_fault(&server, "http_500", 1).await;
        let (status, err) = server
            .post_with(&format!("/v1/payments/{id}/capture"), json!({}), Some(&key))
            .await;
        assert_eq!(status, 502, "{err}");
        assert_eq!(err["error"]["code"], "connector_unavailable");
        let p = get(&server, &id).await;
        assert_eq!(p["status"], "requires_capture");
        assert_eq!(p["amount_capture_pending"], 1000, "{p}");

        // The retry, under the same key, validates at Sips but its answer
        // is lost: still unknown; a sync finds it captured.
        sips_fault(&server, "timeout_after_effect", 1).await;
        let (status, err) = server
            .post_with(&format!("/v1/payments/{id}/capture"), json!({}), Some(&key))
            .await;
        assert_eq!(status, 502, "{err}");
        let p = get(&server, &id).await;
        assert_eq!(p["status"], "requires_capture", "{p}");
        let (status, p) = server
            .post(&format!("/v1/payments/{id}/sync"), json!({}))
            .await;
        assert_eq!(status, 200, "{p}");
        assert_eq!(p["status"], "succeeded", "{p}");
        assert_eq!(p["amount_captured"], 1000);
        assert_eq!(p["amount_capture_pending"], 0, "{p}");
        assert_eq!(p["provider_status"], "CAPTURED");
    }
}
