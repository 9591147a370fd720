//! Native unit tests: the SDK's test kit stands in for the host, so each
//! test scripts the PSP's answers and checks what the connector sent and
//! returned.

use super::*;
use passerelle_connector_sdk::http::HttpError;
use passerelle_connector_sdk::testing::MockHost;
use serde_json::{json, Value};

/// The sandbox serves the dummy PSP under a path prefix.
const BASE: &str = "http://127.0.0.1:4242/dummy";
const NOW_MS: u64 = 1_767_225_600_000;
const SECRET: &str = "whsec_dummy_test";
const VISA: &str = "4111111111111111";

fn account() -> Account {
    Account {
        id: "acc_1".into(),
        environment: Environment::Test,
        base_url: Some(format!("{BASE}/")),
        config: vec![
            ("api_key".into(), "sk_dummy_test".into()),
            ("webhook_secret".into(), SECRET.into()),
        ],
    }
}

fn payment_ref() -> PaymentRef {
    PaymentRef {
        payment_id: "pay_1".into(),
        reference: "order-1".into(),
        amount: Money::new(1050, "EUR"),
        connector_reference: Some("ch_1".into()),
        connector_data: None,
    }
}

fn authorize_request(capture: CaptureMethod) -> AuthorizeRequest {
    AuthorizeRequest {
        payment_id: "pay_1".into(),
        reference: "order-1".into(),
        amount: Money::new(1050, "EUR"),
        capture_method: capture,
        capture_delay_hours: None,
        payment_method: PaymentMethod::Card(Card {
            number: VISA.into(),
            exp_month: 3,
            exp_year: 2030,
            cvc: Some("737".into()),
            holder_name: None,
        }),
        shopper: None,
        return_url: "https://host/return/pay_1".into(),
        notification_url: "https://host/webhooks/acc_1".into(),
        idempotency_key: "idem-1".into(),
        metadata: Vec::new(),
    }
}

fn charge(status: &str) -> Value {
    let mut c = json!({
        "id": "ch_1", "status": status, "amount": 1050, "currency": "EUR",
        "reference": "order-1", "amount_captured": 0, "amount_refunded": 0,
        "refusal_code": null, "refusal_reason": null, "redirect_url": null,
        "card_last4": "1111"
    });
    match status {
        "captured" => c["amount_captured"] = json!(1050),
        "refused" => {
            c["refusal_code"] = json!("card_declined");
            c["refusal_reason"] = json!("Insufficient funds");
        }
        "requires_action" => c["redirect_url"] = json!(format!("{BASE}/3ds/ch_1")),
        _ => {}
    }
    c
}

/// A mock host whose PSP answers every request with `status` and `body`.
fn psp_answers(status: u16, body: Value) -> MockHost {
    let host = MockHost::new();
    host.set_now_ms(NOW_MS);
    host.on_http(move |_| Ok(Response::from_json(status, &body)));
    host
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

// ------------------------------------------------------------ describe/config

#[test]
fn describe_matches_the_manifest() {
    let info = Dummy::describe();
    let manifest = include_str!("../manifest.toml");
    for (key, value) in [
        ("id", &info.id),
        ("name", &info.name),
        ("version", &info.version),
    ] {
        assert!(
            manifest.contains(&format!("{key} = \"{value}\"")),
            "manifest {key} != {value}"
        );
    }
    assert_eq!(info.operations.len(), 9);
    assert_eq!(info.payment_methods, vec!["card".to_string()]);
    assert!(info.currencies.is_empty());
    let fields: Vec<_> = info
        .credential_fields
        .iter()
        .map(|f| (f.name.as_str(), f.secret, f.required))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("api_key", true, true),
            ("webhook_secret", true, true),
            ("authorization_validity_hours", false, false),
            ("multiple_partial_captures", false, false),
        ]
    );
}

#[test]
fn capabilities_follow_the_account_settings() {
    let mut account = account();
    let defaults = Dummy::capabilities(account.clone()).unwrap();
    assert_eq!(defaults.authorization_validity[0].hours, 168);
    assert!(defaults.multiple_partial_captures);
    assert_eq!(defaults.native_capture_delay_max_hours, None);
    account
        .config
        .push(("authorization_validity_hours".into(), "2".into()));
    account
        .config
        .push(("multiple_partial_captures".into(), "false".into()));
    let set = Dummy::capabilities(account.clone()).unwrap();
    assert_eq!(set.authorization_validity[0].hours, 2);
    assert!(!set.multiple_partial_captures);
    let mut wrong = self::account();
    wrong
        .config
        .push(("multiple_partial_captures".into(), "sometimes".into()));
    let bad = Dummy::validate_config(wrong).unwrap_err();
    assert_eq!(bad.field.as_deref(), Some("multiple_partial_captures"));
}

#[test]
fn validate_config_names_the_missing_field() {
    assert_eq!(Dummy::validate_config(account()), Ok(()));
    let field_of = |account: Account| Dummy::validate_config(account).unwrap_err().field;

    let mut a = account();
    a.config.retain(|(k, _)| k != "api_key");
    assert_eq!(field_of(a).as_deref(), Some("api_key"));

    let mut a = account();
    a.config[1].1 = "  ".into();
    assert_eq!(field_of(a).as_deref(), Some("webhook_secret"));

    let mut a = account();
    a.base_url = None;
    assert_eq!(field_of(a).as_deref(), Some("base_url"));
}

// ------------------------------------------------------------------ authorize

#[test]
fn authorize_sends_the_charge() {
    let host = psp_answers(201, charge("authorized"));
    let outcome = Dummy::authorize(account(), authorize_request(CaptureMethod::Manual)).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);

    let sent = host.last_request().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.url.as_str()),
        ("POST", "http://127.0.0.1:4242/dummy/v1/charges")
    );
    assert_eq!(sent.header_value("Idempotency-Key"), Some("idem-1"));
    assert_eq!(
        sent.header_value("Authorization"),
        Some("Bearer sk_dummy_test")
    );
    assert_eq!(sent.header_value("Content-Type"), Some("application/json"));
    assert_eq!(
        body_of(&sent),
        json!({
            "amount": 1050, "currency": "EUR", "reference": "order-1", "payment_id": "pay_1",
            "capture": false,
            "card": {"number": VISA, "exp_month": 3, "exp_year": 2030, "cvc": "737"},
            "return_url": "https://host/return/pay_1",
            "notification_url": "https://host/webhooks/acc_1"
        })
    );
    // The card number appears in the request to the PSP and nowhere else.
    assert!(host.logs().iter().all(|(_, line)| !line.contains(VISA)));

    Dummy::authorize(account(), authorize_request(CaptureMethod::Automatic)).unwrap();
    assert_eq!(
        body_of(&host.last_request().unwrap())["capture"],
        json!(true)
    );
}

#[test]
fn authorize_maps_every_charge_status() {
    let redirect = Redirect {
        url: format!("{BASE}/3ds/ch_1"),
        method: HttpMethod::Get,
        form: Vec::new(),
    };
    let refusal = Refusal {
        code: "card_declined".into(),
        reason: "Insufficient funds".into(),
    };
    let cases = [
        (
            "requires_action",
            PaymentStatus::RequiresAction(redirect),
            None,
            Some(0),
        ),
        ("authorized", PaymentStatus::Authorized, Some(1050), Some(0)),
        ("captured", PaymentStatus::Captured, Some(1050), Some(1050)),
        ("refused", PaymentStatus::Refused(refusal), None, Some(0)),
        ("canceled", PaymentStatus::Canceled, None, Some(0)),
    ];
    for (provider_status, status, authorized, captured) in cases {
        let _host = psp_answers(201, charge(provider_status));
        let outcome =
            Dummy::authorize(account(), authorize_request(CaptureMethod::Manual)).unwrap();
        assert_eq!(
            outcome,
            PaymentOutcome {
                status,
                connector_reference: Some("ch_1".into()),
                provider_status: Some(provider_status.into()),
                amount_authorized: authorized,
                amount_captured: captured,
                connector_data: None,
                three_ds: None,
                capture_before_ms: None,
            },
            "{provider_status}"
        );
    }
}

#[test]
fn authorize_refuses_what_it_cannot_serve_without_calling_the_psp() {
    let host = psp_answers(201, charge("authorized"));
    let mut request = authorize_request(CaptureMethod::Manual);
    request.amount.currency = "EUX".into();
    let e = Dummy::authorize(account(), request).unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("currency"))
    );

    let mut request = authorize_request(CaptureMethod::Manual);
    request.payment_method = PaymentMethod::Other(OtherMethod {
        kind: "paypal".into(),
        details_json: "{}".into(),
    });
    let e = Dummy::authorize(account(), request).unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("payment_method"))
    );
    assert!(host.requests().is_empty());
}

#[test]
fn unknown_or_incomplete_statuses_are_retryable() {
    let _host = psp_answers(201, charge("exploded"));
    let e = Dummy::authorize(account(), authorize_request(CaptureMethod::Manual)).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "unexpected_status")
    );

    let mut c = charge("requires_action");
    c["redirect_url"] = Value::Null;
    let _host = psp_answers(201, c);
    let e = Dummy::authorize(account(), authorize_request(CaptureMethod::Manual)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Retryable);
}

// --------------------------------------------------------------------- errors

fn authorize_error() -> ConnectorError {
    Dummy::authorize(account(), authorize_request(CaptureMethod::Manual)).unwrap_err()
}

fn psp_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[test]
fn psp_errors_are_classified() {
    let _host = psp_answers(401, psp_error("unauthorized", "bad key"));
    let e = authorize_error();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidConfig, Some("api_key"))
    );

    let mut too_large = psp_error("amount_too_large", "More than remains");
    too_large["error"]["param"] = json!("amount");
    let _host = psp_answers(400, too_large);
    let e = authorize_error();
    assert_eq!(
        (e.kind, e.code.as_str(), e.message.as_str()),
        (ErrorKind::Rejected, "amount_too_large", "More than remains")
    );
    assert_eq!(e.field.as_deref(), Some("amount"));

    let _host = psp_answers(409, psp_error("invalid_state", "Charge is captured"));
    assert_eq!(
        (authorize_error().kind, authorize_error().code),
        (ErrorKind::Rejected, "invalid_state".into())
    );

    let _host = psp_answers(500, json!({"error": {"code": "internal"}}));
    let e = authorize_error();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "http_500")
    );

    // A 4xx without the PSP's error body: rejected, generic code.
    let host = MockHost::new();
    host.on_http(|_| Ok(Response::new(404, "<html>not here</html>")));
    assert_eq!(
        (authorize_error().kind, authorize_error().code),
        (ErrorKind::Rejected, "http_404".into())
    );
}

#[test]
fn garbage_and_transport_failures_are_retryable() {
    let host = MockHost::new();
    host.on_http(|_| Ok(Response::new(200, "<<garbage>>")));
    let e = authorize_error();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "invalid_response")
    );

    host.on_http(|_| Err(HttpError::Timeout));
    assert_eq!(
        (authorize_error().kind, authorize_error().code),
        (ErrorKind::Retryable, "timeout".into())
    );

    host.on_http(|_| Err(HttpError::Connect("refused".into())));
    assert_eq!(authorize_error().kind, ErrorKind::Retryable);

    host.on_http(|_| Err(HttpError::Denied("not allowed".into())));
    assert_eq!(authorize_error().kind, ErrorKind::InvalidConfig);
}

// ---------------------------------------------------- complete, sync, modifications

#[test]
fn complete_asks_the_psp_not_the_browser() {
    let host = psp_answers(200, charge("authorized"));
    let request = |params: &[(&str, &str)]| CompleteRequest {
        payment: payment_ref(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };

    // The browser claims success for another charge: refused before any call.
    let e = Dummy::complete(account(), request(&[("charge", "ch_other")])).unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("charge"))
    );
    assert!(host.requests().is_empty());

    for params in [&[("charge", "ch_1")][..], &[]] {
        let outcome = Dummy::complete(account(), request(params)).unwrap();
        assert_eq!(outcome.status, PaymentStatus::Authorized);
        let sent = host.last_request().unwrap();
        assert_eq!(
            (sent.method.as_str(), sent.url.as_str()),
            ("GET", "http://127.0.0.1:4242/dummy/v1/charges/ch_1")
        );
    }

    let mut no_reference = request(&[]);
    no_reference.payment.connector_reference = None;
    let e = Dummy::complete(account(), no_reference).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("connector_reference"));
}

#[test]
fn sync_gets_the_charge_and_escapes_its_id() {
    let host = psp_answers(200, charge("captured"));
    let outcome = Dummy::sync(account(), payment_ref()).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(outcome.amount_captured, Some(1050));

    let mut payment = payment_ref();
    payment.connector_reference = Some("../../admin?x".into());
    Dummy::sync(account(), payment).unwrap();
    assert_eq!(
        host.last_request().unwrap().url,
        "http://127.0.0.1:4242/dummy/v1/charges/..%2F..%2Fadmin%3Fx"
    );
}

#[test]
fn sync_without_a_charge_id_finds_it_by_payment_id() {
    // The answer to the charge was lost: the PSP is searched by our id.
    let host = psp_answers(
        200,
        json!({"object": "list", "data": [charge("authorized")]}),
    );
    let mut payment = payment_ref();
    payment.connector_reference = None;
    let outcome = Dummy::sync(account(), payment.clone()).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(outcome.connector_reference.as_deref(), Some("ch_1"));
    assert_eq!(
        host.last_request().unwrap().url,
        "http://127.0.0.1:4242/dummy/v1/charges?payment_id=pay_1"
    );
    // Not found: still unknown (retryable), never a refusal.
    let _host = psp_answers(200, json!({"object": "list", "data": []}));
    let error = Dummy::sync(account(), payment).unwrap_err();
    assert_eq!(error.kind, ErrorKind::Retryable);
    assert_eq!(error.code, "charge_not_found");
}

#[test]
fn capture_cancel_refund() {
    let host = psp_answers(200, charge("authorized"));
    let outcome = Dummy::capture(
        account(),
        CaptureRequest {
            payment: payment_ref(),
            amount: Money::new(500, "EUR"),
            final_capture: true,
            idempotency_key: "idem-cap".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.provider_status.as_deref(), Some("authorized"));
    let sent = host.last_request().unwrap();
    assert_eq!(
        sent.url,
        "http://127.0.0.1:4242/dummy/v1/charges/ch_1/capture"
    );
    assert_eq!(sent.header_value("Idempotency-Key"), Some("idem-cap"));
    assert_eq!(body_of(&sent), json!({"amount": 500, "final": true}));

    let cancel = CancelRequest {
        payment: payment_ref(),
        idempotency_key: "idem-void".into(),
    };
    assert_eq!(
        Dummy::cancel(account(), cancel).unwrap().status,
        ModificationStatus::Succeeded
    );
    let sent = host.last_request().unwrap();
    assert_eq!(
        (sent.method.as_str(), sent.url.as_str()),
        ("POST", "http://127.0.0.1:4242/dummy/v1/charges/ch_1/void")
    );
    assert!(sent.body.is_empty());

    let refund = |currency: &str| RefundRequest {
        payment: payment_ref(),
        refund_id: "rf_1".into(),
        amount: Money::new(300, currency),
        reason: Some("damaged".into()),
        idempotency_key: "idem-ref".into(),
    };
    host.on_http(|_| {
        Ok(Response::from_json(
            201,
            &json!({"id": "re_1", "charge": "ch_1", "amount": 300, "status": "succeeded"}),
        ))
    });
    let outcome = Dummy::refund(account(), refund("EUR")).unwrap();
    assert_eq!(
        outcome,
        ModificationOutcome {
            status: ModificationStatus::Succeeded,
            connector_reference: Some("re_1".into()),
            provider_status: Some("succeeded".into()),
        }
    );
    let sent = host.last_request().unwrap();
    assert_eq!(
        sent.url,
        "http://127.0.0.1:4242/dummy/v1/charges/ch_1/refunds"
    );
    assert_eq!(body_of(&sent), json!({"amount": 300, "reason": "damaged"}));

    // Another currency than the payment's never reaches the PSP.
    let before = host.requests().len();
    let e = Dummy::refund(account(), refund("USD")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("currency"));
    assert_eq!(host.requests().len(), before);
}

#[test]
fn modification_errors_carry_the_psp_code() {
    let _host = psp_answers(409, psp_error("invalid_state", "Charge is not authorized"));
    let cancel = CancelRequest {
        payment: payment_ref(),
        idempotency_key: "k".into(),
    };
    let e = Dummy::cancel(account(), cancel).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Rejected, "invalid_state")
    );
}

// -------------------------------------------------------------- notifications

fn sign(t: u64, body: &str, secret: &str) -> String {
    let sig = crypto::hex_encode(crypto::hmac_sha256(secret, format!("{t}.{body}")));
    format!("t={t},v1={sig}")
}

fn notification(body: &str, signature: Option<String>) -> Notification {
    Notification {
        method: "POST".into(),
        uri: "/webhooks/acc_1".into(),
        headers: signature
            .into_iter()
            .map(|value| HttpHeader {
                name: "dummy-signature".into(),
                value,
            })
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

fn event(kind: &str, charge: Value, refund: Value) -> String {
    json!({"id": "evt_1", "type": kind, "created": NOW_MS - 1000, "charge": charge, "refund": refund}).to_string()
}

fn handle(body: &str, signature: Option<String>) -> Result<NotificationOutcome> {
    let host = MockHost::new();
    host.set_now_ms(NOW_MS);
    Dummy::handle_notification(account(), notification(body, signature))
}

#[test]
fn notifications_are_verified_and_parsed() {
    let now = NOW_MS / 1000;
    let body = event("charge.captured", charge("captured"), Value::Null);
    let outcome = handle(&body, Some(sign(now - 10, &body, SECRET))).unwrap();
    assert_eq!(
        (
            outcome.response_status,
            outcome.response_content_type.as_str(),
            outcome.response_body.as_str()
        ),
        (200, "application/json", r#"{"received":true}"#)
    );
    assert_eq!(
        outcome.events,
        vec![NotificationEvent {
            event_id: "evt_1".into(),
            connector_reference: "ch_1".into(),
            merchant_reference: Some("order-1".into()),
            kind: NotificationEventKind::Payment(PaymentStatus::Captured),
            amount: Some(Money::new(1050, "EUR")),
            provider_status: Some("captured".into()),
            occurred_at_ms: Some(NOW_MS - 1000),
        }]
    );

    for (kind, status, expected) in [
        ("charge.authorized", "authorized", PaymentStatus::Authorized),
        ("charge.canceled", "canceled", PaymentStatus::Canceled),
        (
            "charge.refused",
            "refused",
            PaymentStatus::Refused(Refusal {
                code: "card_declined".into(),
                reason: "Insufficient funds".into(),
            }),
        ),
    ] {
        let body = event(kind, charge(status), Value::Null);
        let e = &handle(&body, Some(sign(now, &body, SECRET)))
            .unwrap()
            .events[0];
        assert_eq!(e.kind, NotificationEventKind::Payment(expected), "{kind}");
        assert_eq!(e.amount, Some(Money::new(1050, "EUR")));
    }

    let refund = json!({"id": "re_1", "charge": "ch_1", "amount": 300, "status": "succeeded"});
    let body = event("charge.refunded", charge("captured"), refund);
    let e = &handle(&body, Some(sign(now + 100, &body, SECRET)))
        .unwrap()
        .events[0];
    assert_eq!(
        e.kind,
        NotificationEventKind::Refund(("re_1".into(), ModificationStatus::Succeeded))
    );
    assert_eq!(e.amount, Some(Money::new(300, "EUR")));
}

#[test]
fn forged_stale_or_missing_signatures_are_rejected() {
    let now = NOW_MS / 1000;
    let body = event("charge.captured", charge("captured"), Value::Null);
    let rejected = |signature: Option<String>, body: &str| {
        let e = handle(body, signature).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidSignature, "{e:?}");
    };
    rejected(Some(sign(now, &body, "whsec_wrong")), &body);
    rejected(
        Some(sign(now, &body, SECRET)),
        &body.replace("1050", "9999"),
    );
    rejected(Some(sign(now - 301, &body, SECRET)), &body);
    rejected(Some(sign(now + 301, &body, SECRET)), &body);
    rejected(None, &body);
    rejected(Some("v1=abc".into()), &body);
    rejected(Some(format!("t={now}")), &body);
    rejected(Some("garbage".into()), &body);
    // At the edge of the tolerance it still passes.
    assert!(handle(&body, Some(sign(now - 300, &body, SECRET))).is_ok());
    // One good v1 among several (secret rotation) is enough.
    let good = sign(now, &body, SECRET);
    assert!(handle(&body, Some(format!("{good},v1=00ff"))).is_ok());
}

#[test]
fn malformed_bodies_are_invalid_requests() {
    let now = NOW_MS / 1000;
    for body in [
        "not json",
        r#"{"id":"evt_1"}"#,
        &event("charge.refunded", charge("captured"), Value::Null),
    ] {
        let e = handle(body, Some(sign(now, body, SECRET))).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::InvalidRequest, Some("body")),
            "{body}"
        );
    }
    // An event type this connector does not know is recorded, not refused.
    let body = event("charge.disputed", charge("captured"), Value::Null);
    let e = &handle(&body, Some(sign(now, &body, SECRET)))
        .unwrap()
        .events[0];
    assert_eq!(
        e.kind,
        NotificationEventKind::Other("charge.disputed".into())
    );
}
