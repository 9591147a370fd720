//! Native unit tests: the SDK's test kit stands in for the host; each test
//! scripts PayPal's answers and checks what the connector sent and returned.

use super::*;
use passerelle_connector_sdk::http::HttpError;
use passerelle_connector_sdk::testing::MockHost;
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::rc::Rc;
use transformers::{parse_rfc3339_ms, Amount};

const BASE: &str = "http://127.0.0.1:4242/paypal";
/// 2026-11-28T00:00:00Z: within the sandbox certificates' validity.
const NOW_MS: u64 = 1_795_824_000_000;
const WEBHOOK_ID: &str = "WH-PASSERELLE-SANDBOX";

/// The sandbox's webhook CA, signing certificate and its (public, test-only) key.
const SANDBOX_CA: &str = include_str!("../../../sandbox/src/paypal/ca-cert.pem");
const SANDBOX_CERT: &str = include_str!("../../../sandbox/src/paypal/signing-cert.pem");
const SANDBOX_KEY: &str = include_str!("../../../sandbox/src/paypal/signing-key.pem");

pub(crate) fn account() -> Account {
    Account {
        id: "acc_1".into(),
        environment: Environment::Test,
        base_url: Some(format!("{BASE}/")),
        config: vec![
            ("client_id".into(), "client".into()),
            ("client_secret".into(), "secret".into()),
            ("webhook_id".into(), WEBHOOK_ID.into()),
            ("webhook_trust_root_pem".into(), SANDBOX_CA.into()),
        ],
    }
}

fn payment_ref(data: Option<Value>) -> PaymentRef {
    PaymentRef {
        payment_id: "pay_1".into(),
        reference: "order-1".into(),
        amount: Money::new(1050, "EUR"),
        connector_reference: Some("5O190127TN364715T".into()),
        connector_data: data.map(|d| d.to_string()),
    }
}

pub(crate) fn authorize_request(capture: CaptureMethod, amount: Money) -> AuthorizeRequest {
    AuthorizeRequest {
        payment_id: "pay_1".into(),
        reference: "order-1".into(),
        amount,
        capture_method: capture,
        capture_delay_hours: None,
        payment_method: PaymentMethod::Other(OtherMethod {
            kind: "paypal".into(),
            details_json: "{}".into(),
        }),
        shopper: None,
        return_url: "https://host/v1/return/pay_1".into(),
        notification_url: "https://host/webhooks/acc_1".into(),
        idempotency_key: "idem-1".into(),
        metadata: Vec::new(),
    }
}

fn token_response() -> Response {
    Response::from_json(
        200,
        &json!({"access_token": "A21AA-token", "token_type": "Bearer", "expires_in": 32400}),
    )
}

/// A mock PayPal: the token endpoint answers, every other request goes to
/// `api`, keyed by "METHOD path" (path without the base).
pub(crate) fn paypal(api: impl Fn(&str, &Request) -> Response + 'static) -> MockHost {
    let host = MockHost::new();
    host.set_now_ms(NOW_MS);
    host.on_http(move |req| {
        let path = req.url.strip_prefix(BASE).unwrap_or(&req.url).to_string();
        if path == "/v1/oauth2/token" {
            return Ok(token_response());
        }
        Ok(api(&format!("{} {path}", req.method), req))
    });
    host
}

fn api_requests(host: &MockHost) -> Vec<Request> {
    host.requests()
        .into_iter()
        .filter(|r| !r.url.ends_with("/v1/oauth2/token"))
        .collect()
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

fn order(status: &str, intent: &str) -> Value {
    json!({
        "id": "5O190127TN364715T", "intent": intent, "status": status,
        "purchase_units": [{"reference_id": "order-1", "custom_id": "pay_1",
            "amount": {"currency_code": "EUR", "value": "10.50"}}],
        "links": [
            {"href": format!("{BASE}/v2/checkout/orders/5O190127TN364715T"), "rel": "self", "method": "GET"},
            {"href": format!("{BASE}/checkoutnow?token=5O190127TN364715T"), "rel": "payer-action", "method": "GET"}
        ]
    })
}

fn capture_json(id: &str, status: &str, value: &str, auth: Option<&str>) -> Value {
    let mut related = json!({"order_id": "5O190127TN364715T"});
    if let Some(a) = auth {
        related["authorization_id"] = json!(a);
    }
    json!({"id": id, "status": status, "amount": {"currency_code": "EUR", "value": value},
        "custom_id": "pay_1", "supplementary_data": {"related_ids": related},
        "links": [{"href": format!("{BASE}/v2/payments/captures/{id}"), "rel": "self"}]})
}

fn completed_capture_order(capture_status: &str) -> Value {
    let mut o = order("COMPLETED", "CAPTURE");
    o["links"] = json!([]);
    o["purchase_units"][0]["payments"] =
        json!({"captures": [capture_json("3C679366HH908993F", capture_status, "10.50", None)]});
    o
}

fn completed_auth_order(auth_status: &str, captures: Vec<Value>) -> Value {
    let mut o = order("COMPLETED", "AUTHORIZE");
    o["links"] = json!([]);
    o["purchase_units"][0]["payments"] = json!({
        "authorizations": [{"id": "0VF52814937998046", "status": auth_status,
            "amount": {"currency_code": "EUR", "value": "10.50"},
            "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}}}],
        "captures": captures,
    });
    o
}

fn paypal_error(status: u16, name: &str, issue: &str) -> Response {
    Response::from_json(
        status,
        &json!({"name": name, "message": "The requested action could not be performed.",
            "debug_id": "f1e2d3", "details": [{"issue": issue, "description": format!("{issue} happened")}]}),
    )
}

// ------------------------------------------------------------ describe/config

#[test]
fn describe_matches_the_manifest() {
    let info = Paypal::describe();
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/manifest.toml")).unwrap();
    for (key, value) in [
        ("id", &info.id),
        ("name", &info.name),
        ("version", &info.version),
    ] {
        assert!(
            manifest.contains(&format!("{key} = \"{value}\"")),
            "manifest {key}"
        );
    }
    assert_eq!(info.operations.len(), 9);
    assert_eq!(info.payment_methods, vec!["paypal".to_string()]);
    assert!(info.currencies.contains(&"EUR".to_string()));
    assert!(!info.currencies.contains(&"KWD".to_string()));
    let fields: Vec<_> = info
        .credential_fields
        .iter()
        .map(|f| (f.name.as_str(), f.secret, f.required))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("client_id", false, true),
            ("client_secret", true, true),
            ("webhook_id", false, true),
            ("webhook_trust_root_pem", false, false),
            ("multiple_partial_captures", false, false)
        ]
    );
}

#[test]
fn validate_config() {
    assert_eq!(Paypal::validate_config(account()), Ok(()));
    let field_of = |a: Account| Paypal::validate_config(a).unwrap_err().field;
    for name in ["client_id", "client_secret", "webhook_id"] {
        let mut a = account();
        a.config.retain(|(k, _)| k != name);
        assert_eq!(field_of(a).as_deref(), Some(name));
    }
    let mut a = account();
    a.config[3].1 = "not a pem".into();
    assert_eq!(field_of(a).as_deref(), Some("webhook_trust_root_pem"));
    // Without a base URL: PayPal's own hosts by environment.
    let mut a = account();
    a.base_url = None;
    assert_eq!(Paypal::validate_config(a), Ok(()));
}

#[test]
fn base_urls_by_environment() {
    let mut a = account();
    a.base_url = None;
    assert_eq!(Api::new(&a).unwrap().base, SANDBOX_URL);
    a.environment = Environment::Live;
    assert_eq!(Api::new(&a).unwrap().base, LIVE_URL);
    assert_eq!(Api::new(&account()).unwrap().base, BASE);
}

// ------------------------------------------------------------------ amounts

#[test]
fn amounts_in_paypal_format() {
    let value = |minor: u64, cur: &str| to_paypal_amount(&Money::new(minor, cur)).map(|a| a.value);
    assert_eq!(value(1050, "EUR").unwrap(), "10.50");
    assert_eq!(value(5, "USD").unwrap(), "0.05");
    assert_eq!(value(1050, "JPY").unwrap(), "1050");
    // HUF and TWD: two ISO decimals, none at PayPal.
    assert_eq!(value(150_000, "HUF").unwrap(), "1500");
    assert_eq!(
        value(150_050, "HUF").unwrap_err().field.as_deref(),
        Some("amount")
    );
    assert_eq!(value(1_000, "TWD").unwrap(), "10");
    // 3-decimal and unknown currencies: refused.
    for cur in ["KWD", "BHD", "TND", "XYZ", "eur"] {
        let e = value(1005, cur).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::InvalidRequest, Some("currency")),
            "{cur}"
        );
    }
    let back = |value: &str, cur: &str| {
        Amount {
            currency_code: cur.into(),
            value: value.into(),
        }
        .minor_units()
        .unwrap()
    };
    assert_eq!(back("10.50", "EUR"), 1050);
    assert_eq!(back("1050", "JPY"), 1050);
    assert_eq!(back("1500", "HUF"), 150_000);
    assert!(Amount {
        currency_code: "EUR".into(),
        value: "1.005".into()
    }
    .minor_units()
    .unwrap_err()
    .is_retryable());
}

// ------------------------------------------------------------------ authorize

#[test]
fn authorize_creates_the_order() {
    let host = paypal(|route, _| {
        assert_eq!(route, "POST /v2/checkout/orders");
        Response::from_json(200, &order("PAYER_ACTION_REQUIRED", "CAPTURE"))
    });
    let outcome = Paypal::authorize(
        account(),
        authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR")),
    )
    .unwrap();
    assert_eq!(
        outcome.status,
        PaymentStatus::RequiresAction(Redirect {
            url: format!("{BASE}/checkoutnow?token=5O190127TN364715T"),
            method: HttpMethod::Get,
            form: Vec::new()
        })
    );
    assert_eq!(
        outcome.connector_reference.as_deref(),
        Some("5O190127TN364715T")
    );
    assert_eq!(
        outcome.provider_status.as_deref(),
        Some("PAYER_ACTION_REQUIRED")
    );
    let data = ConnectorData::parse(outcome.connector_data.as_deref()).unwrap();
    assert_eq!(data.order_id, "5O190127TN364715T");
    assert_eq!(data.intent.as_deref(), Some("CAPTURE"));

    let requests = host.requests();
    assert_eq!(requests.len(), 2);
    let token = &requests[0];
    assert_eq!(token.url, format!("{BASE}/v1/oauth2/token"));
    assert_eq!(token.text(), "grant_type=client_credentials");
    assert_eq!(
        token.header_value("authorization"),
        Some("Basic Y2xpZW50OnNlY3JldA==")
    );
    let sent = &requests[1];
    assert_eq!(sent.url, format!("{BASE}/v2/checkout/orders"));
    assert_eq!(
        sent.header_value("authorization"),
        Some("Bearer A21AA-token")
    );
    assert_eq!(sent.header_value("paypal-request-id"), Some("idem-1"));
    assert_eq!(sent.header_value("prefer"), Some("return=representation"));
    assert_eq!(
        body_of(sent),
        json!({
            "intent": "CAPTURE",
            "purchase_units": [{"reference_id": "order-1", "custom_id": "pay_1",
                "amount": {"currency_code": "EUR", "value": "10.50"}}],
            "payment_source": {"paypal": {"experience_context": {
                "return_url": "https://host/v1/return/pay_1",
                "cancel_url": "https://host/v1/return/pay_1?paypal_cancel=1",
                "user_action": "PAY_NOW",
                "shipping_preference": "NO_SHIPPING"
            }}}
        })
    );
}

#[test]
fn authorize_manual_uses_intent_authorize_and_keeps_queries() {
    let host =
        paypal(|_, _| Response::from_json(201, &order("PAYER_ACTION_REQUIRED", "AUTHORIZE")));
    let mut request = authorize_request(CaptureMethod::Manual, Money::new(1050, "JPY"));
    request.return_url = "https://host/r?x=1".into();
    Paypal::authorize(account(), request).unwrap();
    let body = body_of(&api_requests(&host)[0]);
    assert_eq!(body["intent"], "AUTHORIZE");
    assert_eq!(
        body["purchase_units"][0]["amount"],
        json!({"currency_code": "JPY", "value": "1050"})
    );
    assert_eq!(
        body["payment_source"]["paypal"]["experience_context"]["cancel_url"],
        "https://host/r?x=1&paypal_cancel=1"
    );
}

#[test]
fn authorize_refuses_before_any_call() {
    let host = paypal(|_, _| panic!("no call expected"));
    let mut card = authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR"));
    card.payment_method = PaymentMethod::Card(Card {
        number: "4111111111111111".into(),
        exp_month: 3,
        exp_year: 2030,
        cvc: None,
        holder_name: None,
    });
    let e = Paypal::authorize(account(), card).unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("payment_method"))
    );
    let mut ideal = authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR"));
    ideal.payment_method = PaymentMethod::Other(OtherMethod {
        kind: "ideal".into(),
        details_json: "{}".into(),
    });
    assert_eq!(
        Paypal::authorize(account(), ideal)
            .unwrap_err()
            .field
            .as_deref(),
        Some("payment_method")
    );
    for cur in ["KWD", "XXX"] {
        let e = Paypal::authorize(
            account(),
            authorize_request(CaptureMethod::Automatic, Money::new(1005, cur)),
        )
        .unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref()),
            (ErrorKind::InvalidRequest, Some("currency"))
        );
    }
    assert!(host.requests().is_empty());
}

#[test]
fn provider_errors_are_classified() {
    let cases: Vec<(Result<Response, HttpError>, ErrorKind, &str)> = vec![
        (
            Ok(paypal_error(
                422,
                "UNPROCESSABLE_ENTITY",
                "INVALID_CURRENCY_CODE",
            )),
            ErrorKind::Rejected,
            "INVALID_CURRENCY_CODE",
        ),
        (
            Ok(paypal_error(
                400,
                "INVALID_REQUEST",
                "MISSING_REQUIRED_PARAMETER",
            )),
            ErrorKind::Rejected,
            "MISSING_REQUIRED_PARAMETER",
        ),
        (
            Ok(paypal_error(
                404,
                "RESOURCE_NOT_FOUND",
                "INVALID_RESOURCE_ID",
            )),
            ErrorKind::Rejected,
            "INVALID_RESOURCE_ID",
        ),
        (
            Ok(paypal_error(403, "NOT_AUTHORIZED", "PERMISSION_DENIED")),
            ErrorKind::InvalidConfig,
            "PERMISSION_DENIED",
        ),
        (
            Ok(Response::from_json(
                500,
                &json!({"name": "INTERNAL_SERVER_ERROR"}),
            )),
            ErrorKind::Retryable,
            "http_500",
        ),
        (Ok(Response::new(503, "")), ErrorKind::Retryable, "http_503"),
        (
            Ok(Response::new(200, "<html>garbage")),
            ErrorKind::Retryable,
            "invalid_response",
        ),
        (Err(HttpError::Timeout), ErrorKind::Retryable, "timeout"),
        (
            Err(HttpError::Connect("refused".into())),
            ErrorKind::Retryable,
            "connect",
        ),
    ];
    for (answer, kind, code) in cases {
        let host = MockHost::new();
        let answer = RefCell::new(Some(answer));
        host.on_http(move |req| {
            if req.url.ends_with("/v1/oauth2/token") {
                return Ok(token_response());
            }
            answer.borrow_mut().take().unwrap()
        });
        let e = Paypal::authorize(
            account(),
            authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR")),
        )
        .unwrap_err();
        assert_eq!((e.kind, e.code.as_str()), (kind, code));
    }
}

// ---------------------------------------------------------------------- OAuth

#[test]
fn token_is_cached_refreshed_and_retried_once() {
    let calls = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = calls.clone();
    let host = MockHost::new();
    host.set_now_ms(NOW_MS);
    let expired = Rc::new(RefCell::new(false));
    let flag = expired.clone();
    host.on_http(move |req| {
        let path = req.url.strip_prefix(BASE).unwrap().to_string();
        seen.borrow_mut().push(path.clone());
        if path == "/v1/oauth2/token" {
            let n = seen.borrow().iter().filter(|p| p.ends_with("token")).count();
            return Ok(Response::from_json(
                200,
                &json!({"access_token": format!("tok{n}"), "expires_in": 32400}),
            ));
        }
        if *flag.borrow() && req.header_value("authorization") == Some("Bearer tok1") {
            return Ok(Response::from_json(
                401,
                &json!({"error": "invalid_token", "error_description": "Access Token not found in cache"}),
            ));
        }
        Ok(Response::from_json(200, &order("APPROVED", "CAPTURE")))
    });
    let sync = || Paypal::sync(account(), payment_ref(None));
    // APPROVED makes sync capture; the answer is an order without payments.
    let _ = sync();
    let _ = sync();
    let tokens = calls
        .borrow()
        .iter()
        .filter(|p| p.ends_with("token"))
        .count();
    assert_eq!(tokens, 1, "the token is reused across calls");
    // Cached for expires_in - 300 s: refreshed before PayPal's expiry.
    host.advance_ms((32400 - 300) * 1000);
    let _ = sync();
    assert_eq!(
        calls
            .borrow()
            .iter()
            .filter(|p| p.ends_with("token"))
            .count(),
        2
    );
    // Revoked at PayPal before our cache knew: one new token, one retry.
    *expired.borrow_mut() = true;
    host.advance_ms(0);
    calls.borrow_mut().clear();
    passerelle_connector_sdk::cache::set(&Api::new(&account()).unwrap().token_key(), "tok1", 100);
    let _ = sync();
    let log = calls.borrow().clone();
    assert_eq!(log[0], "/v2/checkout/orders/5O190127TN364715T");
    assert_eq!(log[1], "/v1/oauth2/token");
    assert_eq!(log[2], "/v2/checkout/orders/5O190127TN364715T");
}

#[test]
fn bad_client_credentials_are_invalid_config() {
    let host = MockHost::new();
    host.on_http(|_| Ok(Response::from_json(401, &json!({"error": "invalid_client", "error_description": "Client Authentication failed"}))));
    let e = Paypal::sync(account(), payment_ref(None)).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::InvalidConfig, "invalid_client")
    );
    assert_eq!(host.requests().len(), 1);
}

// ------------------------------------------------------------------- complete

#[test]
fn complete_captures_an_approved_order() {
    let host = paypal(|route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &order("APPROVED", "CAPTURE"))
        }
        "POST /v2/checkout/orders/5O190127TN364715T/capture" => {
            Response::from_json(201, &completed_capture_order("COMPLETED"))
        }
        other => panic!("{other}"),
    });
    let outcome = Paypal::complete(
        account(),
        CompleteRequest {
            payment: payment_ref(Some(
                json!({"order_id": "5O190127TN364715T", "intent": "CAPTURE"}),
            )),
            params: vec![
                ("token".into(), "5O190127TN364715T".into()),
                ("PayerID".into(), "QYR5Z8XDVJNXQ".into()),
            ],
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(outcome.amount_captured, Some(1050));
    assert_eq!(outcome.provider_status.as_deref(), Some("COMPLETED"));
    let data = ConnectorData::parse(outcome.connector_data.as_deref()).unwrap();
    assert_eq!(data.capture_ids, vec!["3C679366HH908993F".to_string()]);
    let capture = &api_requests(&host)[1];
    assert_eq!(
        capture.header_value("paypal-request-id"),
        Some("pay_1-capture")
    );
    assert_eq!(body_of(capture), json!({}));
}

#[test]
fn complete_authorizes_for_manual_capture() {
    let host = paypal(|route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &order("APPROVED", "AUTHORIZE"))
        }
        "POST /v2/checkout/orders/5O190127TN364715T/authorize" => {
            Response::from_json(201, &completed_auth_order("CREATED", vec![]))
        }
        other => panic!("{other}"),
    });
    let outcome = Paypal::complete(
        account(),
        CompleteRequest {
            payment: payment_ref(None),
            params: vec![],
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(outcome.amount_authorized, Some(1050));
    assert_eq!(outcome.provider_status.as_deref(), Some("CREATED"));
    let data = ConnectorData::parse(outcome.connector_data.as_deref()).unwrap();
    assert_eq!(data.authorization_id.as_deref(), Some("0VF52814937998046"));
    assert_eq!(api_requests(&host).len(), 2);
}

#[test]
fn complete_after_shopper_cancel() {
    let _host = paypal(|_, _| Response::from_json(200, &order("PAYER_ACTION_REQUIRED", "CAPTURE")));
    let outcome = Paypal::complete(
        account(),
        CompleteRequest {
            payment: payment_ref(None),
            params: vec![
                ("token".into(), "5O190127TN364715T".into()),
                (CANCEL_PARAM.into(), "1".into()),
            ],
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Canceled);
    assert_eq!(
        outcome.provider_status.as_deref(),
        Some("PAYER_ACTION_REQUIRED")
    );
}

#[test]
fn complete_refused_and_mismatched() {
    let _host = paypal(|route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &order("APPROVED", "CAPTURE"))
        }
        _ => paypal_error(422, "UNPROCESSABLE_ENTITY", "TRANSACTION_REFUSED"),
    });
    let outcome = Paypal::complete(
        account(),
        CompleteRequest {
            payment: payment_ref(None),
            params: vec![],
        },
    )
    .unwrap();
    match outcome.status {
        PaymentStatus::Refused(r) => {
            assert_eq!(r.code, "TRANSACTION_REFUSED");
            assert!(r.reason.contains("TRANSACTION_REFUSED happened"));
        }
        other => panic!("{other:?}"),
    }
    let e = Paypal::complete(
        account(),
        CompleteRequest {
            payment: payment_ref(None),
            params: vec![("token".into(), "OTHER".into())],
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("token"));
}

#[test]
fn complete_already_captured_reads_the_order() {
    let gets = Rc::new(RefCell::new(0));
    let n = gets.clone();
    let _host = paypal(move |route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            *n.borrow_mut() += 1;
            if *n.borrow() == 1 {
                Response::from_json(200, &order("APPROVED", "CAPTURE"))
            } else {
                Response::from_json(200, &completed_capture_order("COMPLETED"))
            }
        }
        _ => paypal_error(422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED"),
    });
    let outcome = Paypal::complete(
        account(),
        CompleteRequest {
            payment: payment_ref(None),
            params: vec![],
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
}

// ------------------------------------------------------------- status mapping

#[test]
fn every_order_status_maps() {
    let status = |o: Value| {
        serde_json::from_value::<Order>(o)
            .unwrap()
            .payment_outcome(None)
            .map(|x| (x.status, x.provider_status))
    };
    assert!(matches!(
        status(order("CREATED", "CAPTURE")).unwrap().0,
        PaymentStatus::RequiresAction(_)
    ));
    assert!(matches!(
        status(order("PAYER_ACTION_REQUIRED", "CAPTURE")).unwrap().0,
        PaymentStatus::RequiresAction(_)
    ));
    assert_eq!(
        status(order("APPROVED", "CAPTURE")).unwrap().0,
        PaymentStatus::Pending
    );
    assert_eq!(
        status(order("SAVED", "CAPTURE")).unwrap().0,
        PaymentStatus::Pending
    );
    assert_eq!(
        status(order("VOIDED", "CAPTURE")).unwrap().0,
        PaymentStatus::Canceled
    );
    assert!(status(order("WEIRD", "CAPTURE"))
        .unwrap_err()
        .is_retryable());
    // Capture statuses (intent CAPTURE).
    for (s, expected) in [
        ("COMPLETED", PaymentStatus::Captured),
        ("PARTIALLY_REFUNDED", PaymentStatus::Captured),
        ("REFUNDED", PaymentStatus::Captured),
        ("PENDING", PaymentStatus::Pending),
    ] {
        assert_eq!(
            status(completed_capture_order(s)).unwrap(),
            (expected, Some(s.to_string())),
            "{s}"
        );
    }
    for s in ["DECLINED", "FAILED"] {
        let mut o = completed_capture_order(s);
        o["purchase_units"][0]["payments"]["captures"][0]["status_details"] =
            json!({"reason": "ECHECK"});
        assert_eq!(
            status(o).unwrap().0,
            PaymentStatus::Refused(Refusal {
                code: s.into(),
                reason: "ECHECK".into()
            })
        );
    }
    // Authorization statuses (intent AUTHORIZE).
    let part = || {
        vec![capture_json(
            "C1",
            "COMPLETED",
            "4.00",
            Some("0VF52814937998046"),
        )]
    };
    for (s, captures, expected) in [
        ("CREATED", vec![], PaymentStatus::Authorized),
        ("PARTIALLY_CAPTURED", part(), PaymentStatus::Captured),
        ("CAPTURED", part(), PaymentStatus::Captured),
        ("PENDING", vec![], PaymentStatus::Pending),
        ("VOIDED", vec![], PaymentStatus::Canceled),
        ("VOIDED", part(), PaymentStatus::Captured),
        ("EXPIRED", vec![], PaymentStatus::Canceled),
        (
            "DENIED",
            vec![],
            PaymentStatus::Refused(Refusal {
                code: "DENIED".into(),
                reason: String::new(),
            }),
        ),
    ] {
        let outcome = serde_json::from_value::<Order>(completed_auth_order(s, captures.clone()))
            .unwrap()
            .payment_outcome(None)
            .unwrap();
        assert_eq!(outcome.status, expected, "{s}");
        assert_eq!(outcome.provider_status.as_deref(), Some(s));
        if !captures.is_empty() {
            assert_eq!(outcome.amount_captured, Some(400));
        }
    }
    // Refund and capture statuses as modifications.
    let resource = |s: &str| PaymentResource {
        id: "R".into(),
        status: s.into(),
        ..Default::default()
    };
    assert_eq!(
        resource("COMPLETED").refund_status().unwrap(),
        ModificationStatus::Succeeded
    );
    assert_eq!(
        resource("PENDING").refund_status().unwrap(),
        ModificationStatus::Pending
    );
    for s in ["FAILED", "CANCELLED"] {
        assert!(
            matches!(resource(s).refund_status().unwrap(), ModificationStatus::Refused(r) if r.code == s)
        );
    }
    assert!(resource("NEW").refund_status().unwrap_err().is_retryable());
    assert_eq!(
        resource("COMPLETED").capture_modification_status().unwrap(),
        ModificationStatus::Succeeded
    );
    assert_eq!(
        resource("PENDING").capture_modification_status().unwrap(),
        ModificationStatus::Pending
    );
    assert!(matches!(
        resource("DECLINED").capture_modification_status().unwrap(),
        ModificationStatus::Refused(_)
    ));
}

// -------------------------------------------------------- capture/cancel/refund

fn auth_data() -> Option<Value> {
    Some(
        json!({"order_id": "5O190127TN364715T", "intent": "AUTHORIZE", "authorization_id": "0VF52814937998046"}),
    )
}

#[test]
fn partial_capture() {
    let host = paypal(|route, _| {
        assert_eq!(
            route,
            "POST /v2/payments/authorizations/0VF52814937998046/capture"
        );
        Response::from_json(
            201,
            &capture_json("C1", "COMPLETED", "4.00", Some("0VF52814937998046")),
        )
    });
    let outcome = Paypal::capture(
        account(),
        CaptureRequest {
            payment: payment_ref(auth_data()),
            amount: Money::new(400, "EUR"),
            final_capture: false,
            idempotency_key: "cap-1".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.connector_reference.as_deref(), Some("C1"));
    let sent = &api_requests(&host)[0];
    assert_eq!(sent.header_value("paypal-request-id"), Some("cap-1"));
    assert_eq!(
        body_of(sent),
        json!({"amount": {"currency_code": "EUR", "value": "4.00"}, "final_capture": false})
    );
}

#[test]
fn capture_finds_the_authorization_and_maps_refusals() {
    let _host = paypal(|route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &completed_auth_order("CREATED", vec![]))
        }
        "POST /v2/payments/authorizations/0VF52814937998046/capture" => {
            paypal_error(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_VOIDED")
        }
        other => panic!("{other}"),
    });
    let request = |currency: &str| CaptureRequest {
        payment: payment_ref(None),
        amount: Money::new(1050, currency),
        final_capture: true,
        idempotency_key: "cap-2".into(),
    };
    let e = Paypal::capture(account(), request("EUR")).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Rejected, "AUTHORIZATION_VOIDED")
    );
    let e = Paypal::capture(account(), request("USD")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("currency"));
}

#[test]
fn cancel_voids() {
    let host = paypal(|route, _| {
        assert_eq!(
            route,
            "POST /v2/payments/authorizations/0VF52814937998046/void"
        );
        Response::new(204, "")
    });
    let outcome = Paypal::cancel(
        account(),
        CancelRequest {
            payment: payment_ref(auth_data()),
            idempotency_key: "c-1".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.provider_status.as_deref(), Some("VOIDED"));
    assert_eq!(
        api_requests(&host)[0].header_value("paypal-request-id"),
        Some("c-1")
    );

    let _host = paypal(|_, _| paypal_error(422, "UNPROCESSABLE_ENTITY", "PREVIOUSLY_VOIDED"));
    let outcome = Paypal::cancel(
        account(),
        CancelRequest {
            payment: payment_ref(auth_data()),
            idempotency_key: "c-1".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);

    // Before approval nothing is reserved: the order just expires.
    let host =
        paypal(|_, _| Response::from_json(200, &order("PAYER_ACTION_REQUIRED", "AUTHORIZE")));
    let outcome = Paypal::cancel(
        account(),
        CancelRequest {
            payment: payment_ref(None),
            idempotency_key: "c-2".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(api_requests(&host).len(), 1);
}

#[test]
fn refunds_pick_a_capture_that_can_hold_them() {
    let host = paypal(|route, req| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => Response::from_json(
            200,
            &completed_auth_order(
                "CAPTURED",
                vec![
                    capture_json("C1", "REFUNDED", "4.00", Some("A")),
                    capture_json("C2", "PARTIALLY_REFUNDED", "6.50", Some("A")),
                    capture_json("C3", "COMPLETED", "3.00", Some("A")),
                ],
            ),
        ),
        "POST /v2/payments/captures/C2/refund" => {
            paypal_error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED")
        }
        "POST /v2/payments/captures/C3/refund" => {
            assert_eq!(
                body_of(req),
                json!({"amount": {"currency_code": "EUR", "value": "3.00"}, "note_to_payer": "damaged"})
            );
            Response::from_json(201, &json!({"id": "R1", "status": "PENDING", "links": []}))
        }
        other => panic!("{other}"),
    });
    let outcome = Paypal::refund(
        account(),
        RefundRequest {
            payment: payment_ref(auth_data()),
            refund_id: "re_1".into(),
            amount: Money::new(300, "EUR"),
            reason: Some("damaged".into()),
            idempotency_key: "ref-1".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Pending);
    assert_eq!(outcome.connector_reference.as_deref(), Some("R1"));
    let ids: Vec<_> = api_requests(&host)
        .iter()
        .filter_map(|r| r.header_value("paypal-request-id").map(str::to_string))
        .collect();
    assert_eq!(ids, vec!["ref-1-C2".to_string(), "ref-1-C3".to_string()]);

    // Over every capture: refused by PayPal's code, not sent.
    let _host = paypal(|route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &completed_capture_order("COMPLETED"))
        }
        _ => paypal_error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED"),
    });
    let request = |minor| RefundRequest {
        payment: payment_ref(None),
        refund_id: "re_2".into(),
        amount: Money::new(minor, "EUR"),
        reason: None,
        idempotency_key: "ref-2".into(),
    };
    assert_eq!(
        Paypal::refund(account(), request(2000)).unwrap_err().code,
        "NO_REFUNDABLE_CAPTURE"
    );
    let e = Paypal::refund(account(), request(1000)).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Rejected, "REFUND_AMOUNT_EXCEEDED")
    );
}

// ------------------------------------------------------------------------ sync

#[test]
fn sync_reads_and_finishes_approved_orders() {
    let _host = paypal(|_, _| Response::from_json(200, &completed_capture_order("PENDING")));
    let outcome = Paypal::sync(account(), payment_ref(None)).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Pending);
    let host = paypal(|route, _| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &order("APPROVED", "CAPTURE"))
        }
        _ => Response::from_json(201, &completed_capture_order("COMPLETED")),
    });
    assert_eq!(
        Paypal::sync(account(), payment_ref(None)).unwrap().status,
        PaymentStatus::Captured
    );
    assert_eq!(
        api_requests(&host)[1].header_value("paypal-request-id"),
        Some("pay_1-capture")
    );
    let e = Paypal::sync(
        account(),
        PaymentRef {
            connector_reference: None,
            ..payment_ref(None)
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("connector_reference"));
}

// ------------------------------------------------------------------- webhooks

const VECTOR_BODY: &[u8] = include_bytes!("../testdata/webhook-vector/body.json");
const VECTOR_HEADERS: &str = include_str!("../testdata/webhook-vector/headers.json");
const VECTOR_CERT: &str = include_str!("../testdata/webhook-vector/cert.pem");
/// The vector's issuer, bundled with the connector.
const VECTOR_INTERMEDIATE: &str = webhook::BUNDLED_INTERMEDIATES[0];

fn vector_notification() -> (Notification, String) {
    let headers: Value = serde_json::from_str(VECTOR_HEADERS).unwrap();
    let mut list = Vec::new();
    for name in [
        "paypal-transmission-id",
        "paypal-transmission-time",
        "paypal-auth-algo",
        "paypal-cert-url",
        "paypal-transmission-sig",
    ] {
        list.push(HttpHeader {
            name: name.to_uppercase(),
            value: headers[name].as_str().unwrap().into(),
        });
    }
    (
        Notification {
            method: "POST".into(),
            uri: "/webhooks/acc_1".into(),
            headers: list,
            body: VECTOR_BODY.to_vec(),
        },
        headers["webhook_id"].as_str().unwrap().to_string(),
    )
}

/// PayPal's own signed webhook. Known-answer vector from PayPal's Java SDK
/// (paypal/PayPal-Java-SDK, test `ValidateCertTest`, copied into
/// /work/shared/psp-specs/paypal/webhook-vector and testdata/): transmission
/// 071f7d20-1584-11e7-abf0-6b62a8a99ac4, body CRC32 3494065244, signed by
/// messageverificationcerts.sandbox.paypal.com, issued by "DigiCert SHA2
/// Extended Validation Server CA" under "DigiCert High Assurance EV Root CA"
/// (embedded as a default root). The certificate expired in 2019, so the clock
/// is pinned at the transmission time. PayPal's certificate URL serves the
/// signing certificate alone: the intermediate is the connector's own.
#[test]
fn paypal_official_vector_verifies() {
    let (notification, webhook_id) = vector_notification();
    assert_eq!(crc32fast::hash(VECTOR_BODY), 3_494_065_244);
    let t = webhook::transmission(&notification).unwrap();
    let host = MockHost::new();
    let served = VECTOR_CERT.to_string();
    host.on_http(move |req| {
        assert_eq!(
            req.url,
            "https://api.sandbox.paypal.com/v1/notifications/test"
        );
        Ok(Response::new(200, served.clone()))
    });
    host.set_now_ms(t.time_ms + 1_000);
    // Default trust roots (PayPal's real DigiCert CAs), no custom base URL.
    assert_eq!(
        webhook::verify(&notification, &webhook_id, None, None, t.time_ms + 1_000),
        Ok(webhook::Verified::Trusted)
    );
    // Served from the cache the second time.
    assert_eq!(
        webhook::verify(&notification, &webhook_id, None, None, t.time_ms + 2_000),
        Ok(webhook::Verified::Trusted)
    );
    assert_eq!(host.requests().len(), 1);

    // Another webhook id, a changed body: forged.
    let e = webhook::verify(&notification, "WH-OTHER", None, None, t.time_ms).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    let mut tampered = notification.clone();
    tampered.body[10] ^= 1;
    assert_eq!(
        webhook::verify(&tampered, &webhook_id, None, None, t.time_ms)
            .unwrap_err()
            .kind,
        ErrorKind::InvalidSignature
    );
    // Replayed today: too old.
    let e = webhook::verify(&notification, &webhook_id, None, None, NOW_MS).unwrap_err();
    assert!(e.message.contains("replay"));
    // Trusting another root (the sandbox's): the signature matches, the
    // chain does not build: only PayPal's API can confirm it.
    assert!(matches!(
        webhook::verify(
            &notification,
            &webhook_id,
            None,
            Some(SANDBOX_CA),
            t.time_ms,
        ),
        Ok(webhook::Verified::NeedsConfirmation(_))
    ));
}

#[test]
fn vector_chain_checks() {
    use x509_cert::Certificate;
    let (notification, _) = vector_notification();
    let t = webhook::transmission(&notification).unwrap();
    let leaf = Certificate::load_pem_chain(VECTOR_CERT.as_bytes()).unwrap();
    let both =
        Certificate::load_pem_chain(format!("{VECTOR_CERT}{VECTOR_INTERMEDIATE}").as_bytes())
            .unwrap();
    let roots = webhook::trust_roots(None).unwrap();
    let bundled = webhook::bundled_intermediates().unwrap();
    assert!(webhook::verify_chain(&both, &[], &roots, t.time_ms).is_ok());
    // The leaf alone (what PayPal serves) chains through the bundled
    // intermediate; without it, it does not.
    assert!(webhook::verify_chain(&leaf, &bundled, &roots, t.time_ms).is_ok());
    assert!(webhook::verify_chain(&leaf, &[], &roots, t.time_ms).is_err());
    // After the certificate expired: refused.
    assert!(webhook::verify_chain(
        &leaf,
        &bundled,
        &roots,
        parse_rfc3339_ms("2019-05-01T00:00:00Z").unwrap()
    )
    .is_err());
    // The leaf presented as its own issuer is not a CA.
    let fake =
        Certificate::load_pem_chain(format!("{VECTOR_CERT}{VECTOR_CERT}").as_bytes()).unwrap();
    assert!(webhook::verify_chain(&fake, &[], &roots, t.time_ms).is_err());
}

#[test]
fn cert_urls_must_be_paypal_or_the_account_origin() {
    let ok = |url: &str, base: Option<&str>| webhook::cert_url_allowed(url, base);
    assert!(ok(
        "https://api.paypal.com/v1/notifications/certs/CERT-1",
        None
    ));
    assert!(ok(
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-1",
        None
    ));
    assert!(!ok(
        "http://api.paypal.com/v1/notifications/certs/CERT-1",
        None
    ));
    assert!(!ok("https://evilpaypal.com/cert", None));
    assert!(!ok("https://paypal.com.evil.example/cert", None));
    assert!(!ok("https://api.paypal.com@evil.example/cert", None));
    assert!(!ok("https://evil.example/x?https://api.paypal.com", None));
    assert!(ok("http://127.0.0.1:4242/paypal/certs/CERT-x", Some(BASE)));
    assert!(!ok("http://127.0.0.1:4243/paypal/certs/CERT-x", Some(BASE)));
    assert!(!ok("ftp://api.paypal.com/cert", None));
}

/// Signs `body` the way PayPal (and the sandbox) does, with the sandbox key.
fn signed(body: &Value, time: &str) -> Notification {
    let body = serde_json::to_vec(body).unwrap();
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(SANDBOX_KEY).unwrap();
    let id = "b2384410-f8d2-11ec-a1ac-7f5f9c4c6e1d";
    let message = format!("{id}|{time}|{WEBHOOK_ID}|{}", crc32fast::hash(&body));
    let sig = key
        .sign(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &crypto::sha256(message.as_bytes()),
        )
        .unwrap();
    let header = |n: &str, v: &str| HttpHeader {
        name: n.into(),
        value: v.into(),
    };
    Notification {
        method: "POST".into(),
        uri: "/webhooks/acc_1".into(),
        headers: vec![
            header("Paypal-Transmission-Id", id),
            header("Paypal-Transmission-Time", time),
            header("Paypal-Transmission-Sig", &crypto::base64_encode(sig)),
            header(
                "Paypal-Cert-Url",
                &format!("{BASE}/certs/CERT-passerelle-sandbox-paypal"),
            ),
            header("Paypal-Auth-Algo", "SHA256withRSA"),
            header("Paypal-Auth-Version", "v2"),
        ],
        body,
    }
}

const NOW_RFC3339: &str = "2026-11-28T00:00:00Z";

fn sandbox_host() -> MockHost {
    let host = MockHost::new();
    host.set_now_ms(NOW_MS);
    host.on_http(|req| {
        let path = req.url.strip_prefix(BASE).unwrap_or(&req.url);
        Ok(match path {
            "/certs/CERT-passerelle-sandbox-paypal" => Response::new(200, SANDBOX_CERT),
            "/v1/oauth2/token" => token_response(),
            "/v2/checkout/orders/5O190127TN364715T" => Response::from_json(
                200,
                &completed_auth_order(
                    "PARTIALLY_CAPTURED",
                    vec![capture_json("C1", "COMPLETED", "4.00", Some("A1"))],
                ),
            ),
            "/v2/payments/captures/3C679366HH908993F" => Response::from_json(
                200,
                &capture_json("3C679366HH908993F", "REFUNDED", "10.50", None),
            ),
            other => panic!("unexpected {other}"),
        })
    });
    host
}

fn event(event_type: &str, resource_type: &str, resource: Value) -> Value {
    json!({"id": "WH-58D329510W468432D-8HN650336L201105X", "event_version": "1.0",
        "create_time": "2026-11-27T23:59:58.123Z", "resource_type": resource_type,
        "resource_version": "2.0", "event_type": event_type, "summary": "s", "resource": resource, "links": []})
}

fn notify(body: &Value) -> Result<NotificationEvent> {
    let outcome = Paypal::handle_notification(account(), signed(body, NOW_RFC3339))?;
    assert_eq!(outcome.response_status, 200);
    assert_eq!(outcome.events.len(), 1);
    Ok(outcome.events.into_iter().next().unwrap())
}

#[test]
fn webhook_events_map() {
    let _host = sandbox_host();
    let e = notify(&event(
        "PAYMENT.CAPTURE.COMPLETED",
        "capture",
        capture_json("3C679366HH908993F", "COMPLETED", "10.50", None),
    ))
    .unwrap();
    assert_eq!(e.event_id, "WH-58D329510W468432D-8HN650336L201105X");
    assert_eq!(e.connector_reference, "5O190127TN364715T");
    assert_eq!(e.merchant_reference.as_deref(), Some("pay_1"));
    assert_eq!(
        e.kind,
        NotificationEventKind::Payment(PaymentStatus::Captured)
    );
    assert_eq!(e.amount, Some(Money::new(1050, "EUR")));
    assert_eq!(e.provider_status.as_deref(), Some("COMPLETED"));
    assert_eq!(e.occurred_at_ms, Some(NOW_MS - 1877));

    let kind = |t: &str, rt: &str, r: Value| notify(&event(t, rt, r)).unwrap().kind;
    assert_eq!(
        kind(
            "PAYMENT.CAPTURE.PENDING",
            "capture",
            capture_json("3C679366HH908993F", "PENDING", "10.50", None)
        ),
        NotificationEventKind::Payment(PaymentStatus::Pending)
    );
    assert!(matches!(
        kind("PAYMENT.CAPTURE.DENIED", "capture", capture_json("3C679366HH908993F", "DECLINED", "10.50", None)),
        NotificationEventKind::Payment(PaymentStatus::Refused(r)) if r.code == "DECLINED"
    ));
    // A capture of an authorization: the order's total captured, so a
    // confirmation the host already counted is not counted twice.
    let e = notify(&event(
        "PAYMENT.CAPTURE.COMPLETED",
        "capture",
        capture_json("C1", "COMPLETED", "4.00", Some("A1")),
    ))
    .unwrap();
    assert_eq!(
        e.kind,
        NotificationEventKind::Payment(PaymentStatus::Captured)
    );
    assert_eq!(e.amount, Some(Money::new(400, "EUR")));
    assert_eq!(
        kind(
            "PAYMENT.CAPTURE.PENDING",
            "capture",
            capture_json("C1", "PENDING", "4.00", Some("A1"))
        ),
        NotificationEventKind::Capture(ModificationStatus::Pending)
    );
    assert!(matches!(
        kind(
            "PAYMENT.CAPTURE.DENIED",
            "capture",
            capture_json("C1", "DECLINED", "4.00", Some("A1"))
        ),
        NotificationEventKind::Capture(ModificationStatus::Refused(_))
    ));
    let auth = json!({"id": "A1", "status": "CREATED", "amount": {"currency_code": "EUR", "value": "10.50"},
        "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}}});
    assert_eq!(
        kind(
            "PAYMENT.AUTHORIZATION.CREATED",
            "authorization",
            auth.clone()
        ),
        NotificationEventKind::Payment(PaymentStatus::Authorized)
    );
    let mut voided = auth.clone();
    voided["status"] = json!("VOIDED");
    assert_eq!(
        kind("PAYMENT.AUTHORIZATION.VOIDED", "authorization", voided),
        NotificationEventKind::Payment(PaymentStatus::Canceled)
    );
    assert_eq!(
        kind(
            "CHECKOUT.ORDER.APPROVED",
            "checkout-order",
            order("APPROVED", "CAPTURE")
        ),
        NotificationEventKind::Other("CHECKOUT.ORDER.APPROVED".into())
    );
    assert_eq!(
        kind(
            "CHECKOUT.ORDER.COMPLETED",
            "checkout-order",
            completed_capture_order("COMPLETED")
        ),
        NotificationEventKind::Payment(PaymentStatus::Captured)
    );
    // A refund names its capture only: the order is looked up.
    let refund = json!({"id": "1JU08902781691411", "status": "COMPLETED",
        "amount": {"currency_code": "EUR", "value": "3.00"},
        "links": [{"href": format!("{BASE}/v2/payments/captures/3C679366HH908993F"), "rel": "up", "method": "GET"}]});
    let e = notify(&event("PAYMENT.CAPTURE.REFUNDED", "refund", refund)).unwrap();
    assert_eq!(e.connector_reference, "5O190127TN364715T");
    assert_eq!(
        e.kind,
        NotificationEventKind::Refund(("1JU08902781691411".into(), ModificationStatus::Succeeded))
    );
    assert_eq!(e.amount, Some(Money::new(300, "EUR")));
    // Unknown types are recorded.
    let e = notify(&event(
        "CUSTOMER.DISPUTE.CREATED",
        "dispute",
        json!({"id": "PP-D-1", "status": "OPEN"}),
    ))
    .unwrap();
    assert_eq!(
        e.kind,
        NotificationEventKind::Other("CUSTOMER.DISPUTE.CREATED".into())
    );
}

#[test]
fn forged_replayed_and_malformed_webhooks() {
    let host = sandbox_host();
    let body = event(
        "PAYMENT.CAPTURE.COMPLETED",
        "capture",
        capture_json("X", "COMPLETED", "1.00", None),
    );
    let kind = |n: Notification| Paypal::handle_notification(account(), n).unwrap_err().kind;
    // Tampered body.
    let mut n = signed(&body, NOW_RFC3339);
    n.body.push(b' ');
    assert_eq!(kind(n), ErrorKind::InvalidSignature);
    // What a sender's URL served is cached only once a webhook verified
    // with it: a forged one leaves nothing behind.
    let cert_key =
        webhook::chain_cache_key(&format!("{BASE}/certs/CERT-passerelle-sandbox-paypal"));
    assert_eq!(passerelle_connector_sdk::cache::get(&cert_key), None);
    // Replay of an old transmission.
    assert_eq!(
        kind(signed(&body, "2026-11-27T23:00:00Z")),
        ErrorKind::InvalidSignature
    );
    // Each header missing; a bad algorithm; a garbled signature.
    for name in [
        "Paypal-Transmission-Id",
        "Paypal-Transmission-Time",
        "Paypal-Transmission-Sig",
        "Paypal-Cert-Url",
        "Paypal-Auth-Algo",
    ] {
        let mut n = signed(&body, NOW_RFC3339);
        n.headers.retain(|h| h.name != name);
        assert_eq!(kind(n), ErrorKind::InvalidSignature, "{name}");
    }
    let set = |name: &str, value: &str| {
        let mut n = signed(&body, NOW_RFC3339);
        n.headers
            .iter_mut()
            .filter(|h| h.name == name)
            .for_each(|h| h.value = value.into());
        n
    };
    assert_eq!(
        kind(set("Paypal-Auth-Algo", "SHA1withRSA")),
        ErrorKind::InvalidSignature
    );
    assert_eq!(
        kind(set("Paypal-Transmission-Sig", "%%%")),
        ErrorKind::InvalidSignature
    );
    assert_eq!(
        kind(set("Paypal-Transmission-Time", "yesterday")),
        ErrorKind::InvalidSignature
    );
    // A certificate from elsewhere is never fetched.
    let before = host.requests().len();
    assert_eq!(
        kind(set("Paypal-Cert-Url", "https://evil.example/cert.pem")),
        ErrorKind::InvalidSignature
    );
    assert_eq!(host.requests().len(), before);
    // Another webhook id configured: the signature does not match.
    let mut other = account();
    other.config[2].1 = "WH-OTHER".into();
    assert_eq!(
        Paypal::handle_notification(other, signed(&body, NOW_RFC3339))
            .unwrap_err()
            .kind,
        ErrorKind::InvalidSignature
    );
    // Without the sandbox root, PayPal's roots do not trust the sandbox.
    let mut default_roots = account();
    default_roots
        .config
        .retain(|(k, _)| k != "webhook_trust_root_pem");
    assert_eq!(
        Paypal::handle_notification(default_roots, signed(&body, NOW_RFC3339))
            .unwrap_err()
            .kind,
        ErrorKind::InvalidSignature
    );
    // Correctly signed, but not an event (its chain verified: now cached).
    let e = Paypal::handle_notification(account(), signed(&json!({"hello": 1}), NOW_RFC3339))
        .unwrap_err();
    assert!(passerelle_connector_sdk::cache::get(&cert_key).is_some());
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("body"))
    );
    let e = Paypal::handle_notification(
        account(),
        signed(
            &event("PAYMENT.CAPTURE.COMPLETED", "capture", json!({"id": 5})),
            NOW_RFC3339,
        ),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    let e = Paypal::handle_notification(
        account(),
        signed(
            &event(
                "CHECKOUT.ORDER.COMPLETED",
                "checkout-order",
                json!({"status": "COMPLETED"}),
            ),
            NOW_RFC3339,
        ),
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("body"))
    );
}

#[test]
fn rfc3339() {
    assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_rfc3339_ms("2026-01-01T00:00:00Z"),
        Some(1_767_225_600_000)
    );
    assert_eq!(parse_rfc3339_ms("2026-11-28T00:00:00Z"), Some(NOW_MS));
    assert_eq!(
        parse_rfc3339_ms("2026-11-28T00:00:00.5Z"),
        Some(NOW_MS + 500)
    );
    assert_eq!(parse_rfc3339_ms("2026-11-28T02:00:00+02:00"), Some(NOW_MS));
    assert_eq!(
        parse_rfc3339_ms("2017-03-30T20:04:05Z"),
        Some(1_490_904_245_000)
    );
    for bad in [
        "",
        "2026-01-01",
        "2026-13-01T00:00:00Z",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00.Z",
        "x026-01-01T00:00:00Z",
    ] {
        assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
    }
}

// ------------------------------------------------------- reference, headers

/// The merchant reference may be empty; PayPal refuses an empty
/// `reference_id` (schema: 1 to 256 characters) with a 400.
#[test]
fn reference_id_is_never_empty() {
    let host = paypal(|_, _| Response::from_json(201, &order("PAYER_ACTION_REQUIRED", "CAPTURE")));
    let unit_of = |reference: &str, payment_id: &str| {
        let mut request = authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR"));
        request.reference = reference.into();
        request.payment_id = payment_id.into();
        Paypal::authorize(account(), request).unwrap();
        let sent = api_requests(&host).pop().unwrap();
        body_of(&sent)["purchase_units"][0].clone()
    };
    let unit = unit_of("", "pay_1");
    assert_eq!(unit["reference_id"], "pay_1");
    assert_eq!(unit["custom_id"], "pay_1");
    let unit = unit_of("", "");
    assert_eq!(unit["reference_id"], "default");
    assert!(unit.get("custom_id").is_none(), "{unit}");
    let long = "é".repeat(300);
    let unit = unit_of(&long, "pay_1");
    assert_eq!(unit["reference_id"].as_str().unwrap().chars().count(), 256);
    assert_eq!(unit_of("order-1", "pay_1")["reference_id"], "order-1");
}

/// Every POST to PayPal's API carries `Content-Type: application/json`
/// (PayPal answers 415 `UNSUPPORTED_MEDIA_TYPE` without it, body or not) and
/// a `PayPal-Request-Id` of at most 108 characters.
#[test]
fn every_post_has_a_json_content_type_and_a_request_id() {
    let host = paypal(|route, _| match route {
        "POST /v2/checkout/orders" => {
            Response::from_json(201, &order("PAYER_ACTION_REQUIRED", "AUTHORIZE"))
        }
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &completed_capture_order("COMPLETED"))
        }
        "POST /v2/payments/authorizations/0VF52814937998046/capture" => Response::from_json(
            201,
            &capture_json("C1", "COMPLETED", "4.00", Some("0VF52814937998046")),
        ),
        "POST /v2/payments/authorizations/0VF52814937998046/void" => Response::new(204, ""),
        "POST /v2/payments/captures/3C679366HH908993F/refund" => Response::from_json(
            201,
            &json!({"id": "R1", "status": "COMPLETED", "links": []}),
        ),
        other => panic!("{other}"),
    });
    let mut request = authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR"));
    request.idempotency_key = "k".repeat(200);
    Paypal::authorize(account(), request).unwrap();
    Paypal::capture(
        account(),
        CaptureRequest {
            payment: payment_ref(auth_data()),
            amount: Money::new(400, "EUR"),
            final_capture: false,
            idempotency_key: "cap-1".into(),
        },
    )
    .unwrap();
    Paypal::cancel(
        account(),
        CancelRequest {
            payment: payment_ref(auth_data()),
            idempotency_key: "c-1".into(),
        },
    )
    .unwrap();
    Paypal::refund(
        account(),
        RefundRequest {
            payment: payment_ref(None),
            refund_id: "re_1".into(),
            amount: Money::new(100, "EUR"),
            reason: None,
            idempotency_key: "ref-1".into(),
        },
    )
    .unwrap();
    let posts: Vec<Request> = api_requests(&host)
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 4);
    for post in &posts {
        let content_types: Vec<&str> = post
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("content-type"))
            .map(|h| h.value.as_str())
            .collect();
        assert_eq!(content_types, ["application/json"], "{}", post.url);
        let id = post.header_value("paypal-request-id").unwrap();
        assert!(!id.is_empty() && id.len() <= 108, "{}: {id}", post.url);
    }
    // The 200-character key, hashed to fit; the same key, the same id.
    assert_eq!(
        posts[0].header_value("paypal-request-id").unwrap(),
        crypto::hex_encode(crypto::sha256("k".repeat(200)))
    );
    assert!(posts[2].url.ends_with("/void"));
    assert!(posts[2].body.is_empty());
}

// -------------------------------------------------------- funding failures

fn approved_order_data() -> Option<Value> {
    Some(json!({"order_id": "5O190127TN364715T", "intent": "CAPTURE",
        "approve_url": format!("{BASE}/checkoutnow?token=5O190127TN364715T")}))
}

/// An approved order as PayPal shows it: no approval link any more.
fn approved_order(intent: &str) -> Value {
    let mut o = order("APPROVED", intent);
    o["links"] = json!([{"href": format!("{BASE}/v2/checkout/orders/5O190127TN364715T"), "rel": "self", "method": "GET"}]);
    o
}

fn declined(issue: &str, links: Value) -> Response {
    let mut body = json!({"name": "UNPROCESSABLE_ENTITY",
        "message": "The requested action could not be performed, semantically incorrect, or failed business validation.",
        "debug_id": "f1e2d3", "details": [{"issue": issue, "description": "declined"}],
        "links": [{"href": format!("https://developer.paypal.com/docs/api/orders/v2/#error-{issue}"), "rel": "information_link", "method": "GET"}]});
    if let Some(extra) = links.as_array() {
        for l in extra {
            body["links"].as_array_mut().unwrap().push(l.clone());
        }
    }
    Response::from_json(422, &body)
}

/// PayPal's "Handle funding failures": a declined funding source is not the
/// end; the buyer goes back to PayPal (the same order) to pick another one,
/// then the capture is tried again under a new request id.
#[test]
fn a_declined_funding_source_sends_the_buyer_back_to_paypal() {
    let captures = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = captures.clone();
    let _host = paypal(move |route, req| match route {
        "GET /v2/checkout/orders/5O190127TN364715T" => {
            Response::from_json(200, &approved_order("CAPTURE"))
        }
        "POST /v2/checkout/orders/5O190127TN364715T/capture" => {
            let id = req.header_value("paypal-request-id").unwrap().to_string();
            seen.borrow_mut().push(id.clone());
            if id == "pay_1-capture" {
                declined("INSTRUMENT_DECLINED", json!([]))
            } else {
                Response::from_json(201, &completed_capture_order("COMPLETED"))
            }
        }
        other => panic!("{other}"),
    });
    let complete = |data: Option<Value>| {
        Paypal::complete(
            account(),
            CompleteRequest {
                payment: payment_ref(data),
                params: vec![("token".into(), "5O190127TN364715T".into())],
            },
        )
        .unwrap()
    };
    let outcome = complete(approved_order_data());
    assert_eq!(
        outcome.status,
        PaymentStatus::RequiresAction(Redirect {
            url: format!("{BASE}/checkoutnow?token=5O190127TN364715T"),
            method: HttpMethod::Get,
            form: Vec::new(),
        })
    );
    assert_eq!(
        outcome.provider_status.as_deref(),
        Some("INSTRUMENT_DECLINED")
    );
    let data = ConnectorData::parse(outcome.connector_data.as_deref()).unwrap();
    assert_eq!(data.funding_retries, 1);
    // The buyer chose another source on PayPal and is back: captured, under
    // a request id of its own (PayPal keeps a request id's answer).
    let outcome = complete(serde_json::from_str(outcome.connector_data.as_deref().unwrap()).ok());
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(
        *captures.borrow(),
        ["pay_1-capture".to_string(), "pay_1-capture-1".to_string()]
    );
}

#[test]
fn funding_failures_of_every_documented_kind() {
    let outcome = |issue: &'static str, links: Value, data: Option<Value>, intent: &'static str| {
        let links = links.clone();
        let _host = paypal(move |route, _| match route {
            "GET /v2/checkout/orders/5O190127TN364715T" => {
                Response::from_json(200, &approved_order(intent))
            }
            _ => declined(issue, links.clone()),
        });
        Paypal::complete(
            account(),
            CompleteRequest {
                payment: payment_ref(data),
                params: vec![],
            },
        )
        .unwrap()
    };
    let redirect_to = |url: &str| {
        PaymentStatus::RequiresAction(Redirect {
            url: url.into(),
            method: HttpMethod::Get,
            form: Vec::new(),
        })
    };
    let stored = format!("{BASE}/checkoutnow?token=5O190127TN364715T");
    // The link PayPal's error names comes first.
    let payer_action = json!([{"href": "https://www.sandbox.paypal.com/checkoutnow?token=5O190127TN364715T", "rel": "payer-action", "method": "GET"}]);
    assert_eq!(
        outcome(
            "PAYER_ACTION_REQUIRED",
            payer_action,
            approved_order_data(),
            "CAPTURE"
        )
        .status,
        redirect_to("https://www.sandbox.paypal.com/checkoutnow?token=5O190127TN364715T")
    );
    for issue in [
        "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING",
        "INSTRUMENT_DECLINED",
    ] {
        for intent in ["CAPTURE", "AUTHORIZE"] {
            assert_eq!(
                outcome(issue, json!([]), approved_order_data(), intent).status,
                redirect_to(&stored),
                "{issue} {intent}"
            );
        }
        // Nowhere to send the buyer: the refusal stands.
        assert!(matches!(
            outcome(issue, json!([]), None, "CAPTURE").status,
            PaymentStatus::Refused(r) if r.code == issue
        ));
    }
    // Final refusals stay refusals.
    for issue in [
        "TRANSACTION_REFUSED",
        "PAYER_CANNOT_PAY",
        "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED",
    ] {
        assert!(matches!(
            outcome(issue, json!([]), approved_order_data(), "CAPTURE").status,
            PaymentStatus::Refused(r) if r.code == issue
        ));
    }
}

// ------------------------------------------------------- currency exceptions

fn paypal_value(minor: u64, currency: &str) -> Result<String> {
    to_paypal_amount(&Money::new(minor, currency)).map(|a| a.value)
}

fn from_paypal(value: &str, currency: &str) -> Result<u64> {
    Amount {
        currency_code: currency.into(),
        value: value.into(),
    }
    .minor_units()
}

fn refused_before_any_call(currency: &str, minor: u64) {
    let host = paypal(|_, _| panic!("no call expected"));
    let e = Paypal::authorize(
        account(),
        authorize_request(CaptureMethod::Automatic, Money::new(minor, currency)),
    )
    .unwrap_err();
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (ErrorKind::InvalidRequest, Some("amount")),
        "{currency} {minor}"
    );
    let e = Paypal::refund(
        account(),
        RefundRequest {
            payment: PaymentRef {
                amount: Money::new(minor, currency),
                ..payment_ref(None)
            },
            refund_id: "re_1".into(),
            amount: Money::new(minor, currency),
            reason: None,
            idempotency_key: "ref-1".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("amount"));
    assert!(host.requests().is_empty());
}

/// HUF: two decimals in ISO 4217, none at PayPal ("This currency does not
/// support decimals. If you pass a decimal amount, an error occurs.",
/// developer.paypal.com/docs/api/reference/currency-codes/).
#[test]
fn huf_is_sent_in_whole_forints() {
    assert_eq!(paypal_value(150_000, "HUF").unwrap(), "1500");
    assert_eq!(from_paypal("1500", "HUF").unwrap(), 150_000);
    assert_eq!(paypal_value(100, "HUF").unwrap(), "1");
    refused_before_any_call("HUF", 150_050);
    refused_before_any_call("HUF", 1);
}

/// TWD: the same footnote as HUF.
#[test]
fn twd_is_sent_in_whole_dollars() {
    assert_eq!(paypal_value(1_000, "TWD").unwrap(), "10");
    assert_eq!(from_paypal("10", "TWD").unwrap(), 1_000);
    refused_before_any_call("TWD", 1_050);
}

/// JPY: no minor unit in ISO 4217 nor at PayPal; a decimal from PayPal is
/// not read as yen.
#[test]
fn jpy_has_no_decimals() {
    assert_eq!(paypal_value(1_050, "JPY").unwrap(), "1050");
    assert_eq!(from_paypal("1050", "JPY").unwrap(), 1_050);
    assert!(from_paypal("10.5", "JPY").unwrap_err().is_retryable());
    // Two-decimal currencies, for contrast.
    assert_eq!(paypal_value(1_050, "EUR").unwrap(), "10.50");
    assert_eq!(from_paypal("10.50", "EUR").unwrap(), 1_050);
}

// --------------------------------------------------- webhook certificates

const UNKNOWN_ISSUER_CERT: &str = include_str!("../testdata/unknown-issuer/signing-cert.pem");
const UNKNOWN_ISSUER_KEY: &str = include_str!("../testdata/unknown-issuer/signing-key.pem");
const PAYPAL_CERT_URL: &str =
    "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-test";

/// Each bundled intermediate is a CA signed by one of the bundled roots, and
/// valid over the dates its comment gives.
#[test]
fn bundled_intermediates_chain_to_the_bundled_roots() {
    use x509_cert::Certificate;
    let roots = webhook::trust_roots(None).unwrap();
    let intermediates = webhook::bundled_intermediates().unwrap();
    assert_eq!(intermediates.len(), 3);
    let expected = [
        (
            "DigiCert SHA2 Extended Validation Server CA",
            "2013-10-22T12:00:00Z",
            "2028-10-22T12:00:00Z",
        ),
        (
            "DigiCert EV RSA CA G2",
            "2020-07-02T12:42:50Z",
            "2030-07-02T12:42:50Z",
        ),
        (
            "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
            "2021-03-30T00:00:00Z",
            "2031-03-29T23:59:59Z",
        ),
    ];
    for (cert, (name, from, to)) in intermediates.iter().zip(expected) {
        assert!(
            cert.tbs_certificate.subject.to_string().contains(name),
            "{name}"
        );
        let validity = &cert.tbs_certificate.validity;
        let ms = |t: x509_cert::time::Time| t.to_unix_duration().as_millis() as u64;
        assert_eq!(
            ms(validity.not_before),
            parse_rfc3339_ms(from).unwrap(),
            "{name}"
        );
        assert_eq!(
            ms(validity.not_after),
            parse_rfc3339_ms(to).unwrap(),
            "{name}"
        );
        // A chain of the intermediate alone reaches a root: its signature
        // is a DigiCert root's.
        let alone: Vec<Certificate> = vec![cert.clone()];
        assert!(
            webhook::verify_chain(&alone, &[], &roots, ms(validity.not_before) + 1000).is_ok(),
            "{name}"
        );
    }
}

fn account_with_paypal_roots() -> Account {
    let mut a = account();
    a.config.retain(|(k, _)| k != "webhook_trust_root_pem");
    a
}

/// Signs `body` with the test key of a certificate PayPal's host serves but
/// whose issuer the connector does not hold.
fn signed_by_unknown_issuer(body: &Value, time: &str) -> Notification {
    let mut n = signed(body, time);
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(UNKNOWN_ISSUER_KEY).unwrap();
    let id = "b2384410-f8d2-11ec-a1ac-7f5f9c4c6e1d";
    let message = format!("{id}|{time}|{WEBHOOK_ID}|{}", crc32fast::hash(&n.body));
    let sig = key
        .sign(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &crypto::sha256(message.as_bytes()),
        )
        .unwrap();
    for h in &mut n.headers {
        match h.name.as_str() {
            "Paypal-Transmission-Sig" => h.value = crypto::base64_encode(&sig),
            "Paypal-Cert-Url" => h.value = PAYPAL_CERT_URL.into(),
            _ => {}
        }
    }
    n
}

/// A signing certificate whose chain cannot be built (an issuer PayPal
/// moved to after this release): its signature is checked locally, then
/// PayPal's `verify-webhook-signature` confirms it, once per certificate.
#[test]
fn an_unknown_issuer_is_confirmed_by_paypal() {
    let verdict = Rc::new(RefCell::new("SUCCESS"));
    let answer = verdict.clone();
    let host = MockHost::new();
    host.set_now_ms(NOW_MS);
    host.on_http(move |req| {
        let path = req.url.strip_prefix(BASE).unwrap_or(&req.url);
        Ok(match path {
            PAYPAL_CERT_URL => Response::new(200, UNKNOWN_ISSUER_CERT),
            "/v1/oauth2/token" => token_response(),
            "/v1/notifications/verify-webhook-signature" if *answer.borrow() == "DOWN" => {
                Response::from_json(503, &json!({"name": "SERVICE_UNAVAILABLE"}))
            }
            "/v1/notifications/verify-webhook-signature" => {
                Response::from_json(200, &json!({"verification_status": *answer.borrow()}))
            }
            "/v2/checkout/orders/5O190127TN364715T" => {
                Response::from_json(200, &completed_capture_order("COMPLETED"))
            }
            other => panic!("unexpected {other}"),
        })
    });
    let body = event(
        "PAYMENT.CAPTURE.COMPLETED",
        "capture",
        capture_json("3C679366HH908993F", "COMPLETED", "10.50", None),
    );
    let asked = |host: &MockHost| {
        host.requests()
            .iter()
            .filter(|r| r.url.ends_with("/verify-webhook-signature"))
            .count()
    };
    // A forgery (the signature does not match the served certificate) is
    // refused without asking PayPal.
    let mut forged = signed_by_unknown_issuer(&body, NOW_RFC3339);
    forged.body.push(b' ');
    let e = Paypal::handle_notification(account_with_paypal_roots(), forged).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert_eq!(asked(&host), 0);
    // PayPal says FAILURE: refused, nothing remembered.
    *verdict.borrow_mut() = "FAILURE";
    let e = Paypal::handle_notification(
        account_with_paypal_roots(),
        signed_by_unknown_issuer(&body, NOW_RFC3339),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    assert_eq!(asked(&host), 1);
    // PayPal says SUCCESS: accepted, with the event as received.
    *verdict.borrow_mut() = "SUCCESS";
    let notification = signed_by_unknown_issuer(&body, NOW_RFC3339);
    let outcome =
        Paypal::handle_notification(account_with_paypal_roots(), notification.clone()).unwrap();
    assert_eq!(
        outcome.events[0].kind,
        NotificationEventKind::Payment(PaymentStatus::Captured)
    );
    assert_eq!(asked(&host), 2);
    let request = host
        .requests()
        .into_iter()
        .rfind(|r| r.url.ends_with("/verify-webhook-signature"))
        .unwrap();
    assert_eq!(
        request.header_value("content-type"),
        Some("application/json")
    );
    assert_eq!(
        request.header_value("authorization"),
        Some("Bearer A21AA-token")
    );
    let sent: Value = body_of(&request);
    assert_eq!(sent["webhook_id"], WEBHOOK_ID);
    assert_eq!(sent["cert_url"], PAYPAL_CERT_URL);
    assert_eq!(sent["auth_algo"], "SHA256withRSA");
    assert_eq!(
        sent["transmission_id"],
        "b2384410-f8d2-11ec-a1ac-7f5f9c4c6e1d"
    );
    assert_eq!(sent["transmission_time"], NOW_RFC3339);
    assert_eq!(
        sent["transmission_sig"].as_str(),
        notification.header("Paypal-Transmission-Sig")
    );
    // The event spliced in byte for byte: its CRC32 is what PayPal signed.
    let text = request.text();
    let raw = std::str::from_utf8(&notification.body).unwrap();
    assert!(
        text.ends_with(&format!("\"webhook_event\":{raw}}}")),
        "{text}"
    );
    // Confirmed: the next event with this certificate verifies locally.
    Paypal::handle_notification(
        account_with_paypal_roots(),
        signed_by_unknown_issuer(&body, NOW_RFC3339),
    )
    .unwrap();
    assert_eq!(asked(&host), 2);
    // PayPal's API down before the certificate is confirmed: retryable
    // (PayPal delivers the webhook again).
    use der::Encode;
    let leaf = x509_cert::Certificate::load_pem_chain(UNKNOWN_ISSUER_CERT.as_bytes()).unwrap();
    passerelle_connector_sdk::cache::delete(&format!(
        "cert-confirmed:{}",
        crypto::hex_encode(crypto::sha256(leaf[0].to_der().unwrap()))
    ));
    *verdict.borrow_mut() = "DOWN";
    let e = Paypal::handle_notification(
        account_with_paypal_roots(),
        signed_by_unknown_issuer(&body, NOW_RFC3339),
    )
    .unwrap_err();
    assert!(e.is_retryable(), "{e:?}");
    assert_eq!(asked(&host), 3);
}

// ------------------------------------------------------ contract 1.1.0

/// 29 days of validity ("Authorization and honor period"), several partial
/// captures unless the account says its PayPal account does not allow them,
/// no delayed capture of PayPal's own.
#[test]
fn capabilities_follow_paypal_and_the_account() {
    let caps = Paypal::capabilities(account()).unwrap();
    assert_eq!(
        caps.authorization_validity,
        vec![AuthorizationValidity {
            payment_method: "*".into(),
            hours: 29 * 24
        }]
    );
    assert!(caps.multiple_partial_captures);
    assert_eq!(caps.native_capture_delay_max_hours, None);
    let with = |value: &str| {
        let mut a = account();
        a.config
            .push(("multiple_partial_captures".into(), value.into()));
        a
    };
    assert!(
        !Paypal::capabilities(with("false"))
            .unwrap()
            .multiple_partial_captures
    );
    assert!(
        Paypal::capabilities(with(" TRUE "))
            .unwrap()
            .multiple_partial_captures
    );
    let e = Paypal::validate_config(with("sometimes")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("multiple_partial_captures"));
    // The host never asks for a delay PayPal does not have.
    let _host = paypal(|_, _| panic!("no call expected"));
    let mut request = authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR"));
    request.capture_delay_hours = Some(24);
    let e = Paypal::authorize(account(), request).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("capture_delay_hours"));
}

/// An authorization's `expiration_time` is the payment's capture deadline.
#[test]
fn an_authorization_carries_its_capture_deadline() {
    let mut o = completed_auth_order("CREATED", vec![]);
    o["purchase_units"][0]["payments"]["authorizations"][0]["expiration_time"] =
        json!("2026-12-27T00:00:00Z");
    let outcome = serde_json::from_value::<Order>(o)
        .unwrap()
        .payment_outcome(None)
        .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(
        outcome.capture_before_ms,
        parse_rfc3339_ms("2026-12-27T00:00:00Z")
    );
    // A capture at once: nothing to capture later.
    let outcome = serde_json::from_value::<Order>(completed_capture_order("COMPLETED"))
        .unwrap()
        .payment_outcome(None)
        .unwrap();
    assert_eq!(outcome.capture_before_ms, None);
}

/// The PayPal wallet carries no 3-D Secure result; a card source's
/// `authentication_result` maps per PayPal's "3D Secure response
/// parameters" table.
#[test]
fn three_ds_from_a_card_authentication_result() {
    let three_ds = |source: Value| {
        let mut o = completed_capture_order("COMPLETED");
        o["payment_source"] = source;
        serde_json::from_value::<Order>(o)
            .unwrap()
            .payment_outcome(None)
            .unwrap()
            .three_ds
    };
    assert_eq!(
        three_ds(
            json!({"paypal": {"email_address": "buyer@example.com", "account_id": "QYR5Z8XDVJNXQ"}})
        ),
        None
    );
    assert_eq!(three_ds(json!({"card": {"last_digits": "1111"}})), None);
    let card = |liability: &str, enrollment: &str, authentication: Option<&str>| {
        let mut secure = json!({"enrollment_status": enrollment});
        if let Some(a) = authentication {
            secure["authentication_status"] = json!(a);
        }
        three_ds(
            json!({"card": {"last_digits": "1111", "authentication_result": {
            "liability_shift": liability, "three_d_secure": secure}}}),
        )
        .unwrap()
    };
    let expect = |status, liability_shift| ThreeDsResult {
        status,
        version: None,
        liability_shift,
        eci: None,
    };
    for (liability, enrollment, authentication, expected) in [
        (
            "POSSIBLE",
            "Y",
            Some("Y"),
            expect(ThreeDsStatus::Authenticated, Some(true)),
        ),
        (
            "YES",
            "Y",
            Some("Y"),
            expect(ThreeDsStatus::Authenticated, Some(true)),
        ),
        (
            "POSSIBLE",
            "Y",
            Some("A"),
            expect(ThreeDsStatus::Attempted, Some(true)),
        ),
        (
            "NO",
            "Y",
            Some("N"),
            expect(ThreeDsStatus::Failed, Some(false)),
        ),
        (
            "NO",
            "Y",
            Some("R"),
            expect(ThreeDsStatus::Failed, Some(false)),
        ),
        (
            "NO",
            "Y",
            Some("C"),
            expect(ThreeDsStatus::Failed, Some(false)),
        ),
        (
            "UNKNOWN",
            "Y",
            Some("U"),
            expect(ThreeDsStatus::Unavailable, None),
        ),
        (
            "NO",
            "Y",
            Some("I"),
            expect(ThreeDsStatus::NotPerformed, Some(false)),
        ),
        (
            "NO",
            "N",
            None,
            expect(ThreeDsStatus::NotEnrolled, Some(false)),
        ),
        (
            "UNKNOWN",
            "U",
            None,
            expect(ThreeDsStatus::Unavailable, None),
        ),
        (
            "NO",
            "B",
            None,
            expect(ThreeDsStatus::NotPerformed, Some(false)),
        ),
    ] {
        assert_eq!(
            card(liability, enrollment, authentication),
            expected,
            "{liability} {enrollment} {authentication:?}"
        );
    }
}
