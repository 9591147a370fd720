//! Native unit tests: the SDK's test kit stands in for the host, so each
//! test scripts HiPay's answers and checks what the connector sent and
//! returned.

use super::*;
use passerelle_connector_sdk::http::{form_decode, form_encode, HttpError};
use passerelle_connector_sdk::testing::MockHost;
use serde_json::json;

const BASE: &str = "http://127.0.0.1:4242/hipay";
const PASSPHRASE: &str = "passerelle_sandbox_passphrase";
const VISA: &str = "4111111111111111";
const TX: &str = "800000000001";

fn account() -> Account {
    Account {
        id: "acc_1".into(),
        environment: Environment::Test,
        base_url: Some(format!("{BASE}/")),
        config: vec![
            ("api_username".into(), "user".into()),
            ("api_password".into(), "pass".into()),
            ("passphrase".into(), PASSPHRASE.into()),
            ("signature_algorithm".into(), "sha256".into()),
        ],
    }
}

fn money(minor: u64, currency: &str) -> Money {
    Money::new(minor, currency)
}

fn payment_ref(currency: &str, minor: u64) -> PaymentRef {
    PaymentRef {
        payment_id: "pay_1".into(),
        reference: "order-1".into(),
        amount: money(minor, currency),
        connector_reference: Some(TX.into()),
        connector_data: None,
    }
}

fn authorize_request(capture: CaptureMethod, amount: Money) -> AuthorizeRequest {
    AuthorizeRequest {
        payment_id: "pay_1".into(),
        reference: "order-1".into(),
        amount,
        capture_method: capture,
        capture_delay_hours: None,
        payment_method: PaymentMethod::Card(Card {
            number: VISA.into(),
            exp_month: 3,
            exp_year: 2030,
            cvc: Some("737".into()),
            holder_name: Some("Ada Lovelace".into()),
        }),
        shopper: Some(Shopper {
            email: Some("ada@example.com".into()),
            ip_address: Some("192.0.2.1".into()),
            browser: Some(BrowserInfo {
                accept_header: "text/html".into(),
                user_agent: "Mozilla/5.0".into(),
                language: "fr-FR".into(),
                color_depth: 24,
                screen_height: 1080,
                screen_width: 1920,
                time_zone_offset: -60,
                java_enabled: false,
                javascript_enabled: true,
            }),
            origin: Some("https://shop.example".into()),
        }),
        return_url: "https://host/return/pay_1".into(),
        notification_url: "https://host/webhooks/acc_1".into(),
        idempotency_key: "idem-1".into(),
        metadata: Vec::new(),
    }
}

fn transaction(status: &str, state: &str) -> Value {
    let mut t = json!({
        "state": state, "status": status, "message": "msg",
        "transactionReference": TX, "authorizedAmount": "10.50",
        "capturedAmount": "0.00", "refundedAmount": "0.00", "currency": "EUR",
        "decimals": "2", "order": {"id": "pay_1"}
    });
    if state == "forwarding" {
        t["forwardUrl"] = json!(format!("{BASE}/forward/abc"));
    }
    if state == "declined" || state == "error" {
        t["reason"] = json!({"code": "4010202", "message": "Invalid Card Number"});
    }
    if matches!(status, "118" | "124" | "125" | "126") {
        t["capturedAmount"] = json!("10.50");
    }
    if status == "119" {
        t["capturedAmount"] = json!("4.00");
    }
    t
}

fn token() -> Value {
    json!({"token": "f".repeat(64), "brand": "VISA", "pan": "xxxxxxxxxxxx1111", "request_id": "0"})
}

fn form_of(request: &Request) -> Vec<(String, String)> {
    form_decode(&request.text())
}

/// A mock host answering the vault with a token and the gateway with `body`.
fn hipay_answers(status: u16, body: Value) -> MockHost {
    let host = MockHost::new();
    host.on_http(move |req| {
        if req.url.ends_with("/v2/token/create") {
            Ok(Response::from_json(201, &token()))
        } else {
            Ok(Response::from_json(status, &body))
        }
    });
    host
}

// ------------------------------------------------------------ describe/config

#[test]
fn describe_matches_the_manifest() {
    let info = Hipay::describe();
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
    assert_eq!(
        info.payment_methods,
        vec!["card".to_string(), "hosted_page".into()]
    );
    for c in ["EUR", "JPY", "KWD", "USD", "TND"] {
        assert!(info.currencies.iter().any(|x| x == c), "{c}");
    }
    assert!(!info.currencies.iter().any(|x| x == "FRF" || x == "XXX"));
    let fields: Vec<_> = info
        .credential_fields
        .iter()
        .map(|f| (f.name.as_str(), f.secret, f.required))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("api_username", false, true),
            ("api_password", true, true),
            ("passphrase", true, true),
            ("signature_algorithm", false, false)
        ]
    );
}

#[test]
fn validate_config_names_the_bad_field() {
    assert_eq!(Hipay::validate_config(account()), Ok(()));
    let field_of = |account: Account| Hipay::validate_config(account).unwrap_err().field;
    for name in ["api_username", "api_password", "passphrase"] {
        let mut a = account();
        a.config.retain(|(k, _)| k != name);
        assert_eq!(field_of(a).as_deref(), Some(name));
    }
    let mut a = account();
    a.config[3].1 = "md5".into();
    assert_eq!(field_of(a).as_deref(), Some("signature_algorithm"));
    let mut a = account();
    a.config.retain(|(k, _)| k != "signature_algorithm");
    assert_eq!(Hipay::validate_config(a), Ok(()));
    let mut a = account();
    a.base_url = Some("ftp://nope".into());
    assert_eq!(field_of(a).as_deref(), Some("base_url"));
}

#[test]
fn environments_pick_hipay_hosts() {
    let _host = hipay_answers(200, json!({"transaction": transaction("116", "completed")}));
    let mut a = account();
    a.base_url = None;
    Hipay::sync(a.clone(), payment_ref("EUR", 1050)).unwrap();
    a.environment = Environment::Live;
    Hipay::sync(a, payment_ref("EUR", 1050)).unwrap();
    Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap();
    let urls: Vec<String> = _host.requests().into_iter().map(|r| r.url).collect();
    assert_eq!(
        urls,
        vec![
            format!("{TEST_GATEWAY}/v1/transaction/{TX}"),
            format!("{LIVE_GATEWAY}/v1/transaction/{TX}"),
            format!("{BASE}/gateway/v1/transaction/{TX}"),
        ]
    );
}

// ------------------------------------------------------------------ authorize

#[test]
fn authorize_tokenizes_then_orders() {
    let host = hipay_answers(200, transaction("116", "completed"));
    let outcome = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, money(1050, "EUR")),
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(outcome.connector_reference.as_deref(), Some(TX));
    assert_eq!(outcome.provider_status.as_deref(), Some("116"));
    assert_eq!(outcome.amount_authorized, Some(1050));

    let sent = host.requests();
    assert_eq!(sent.len(), 2);
    let (vault, order) = (&sent[0], &sent[1]);
    assert_eq!(vault.url, format!("{BASE}/vault/v2/token/create"));
    assert_eq!(vault.method, "POST");
    // Basic base64("user:pass")
    assert_eq!(
        vault.header_value("Authorization"),
        Some("Basic dXNlcjpwYXNz")
    );
    assert_eq!(vault.header_value("Accept"), Some("application/json"));
    assert_eq!(
        vault.header_value("Content-Type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        vault.text(),
        "card_number=4111111111111111&card_expiry_month=03&card_expiry_year=2030\
&card_holder=Ada+Lovelace&multi_use=0&cvc=737"
    );
    assert_eq!(order.url, format!("{BASE}/gateway/v1/order"));
    assert_eq!(
        order.header_value("Authorization"),
        Some("Basic dXNlcjpwYXNz")
    );
    let ret = "https%3A%2F%2Fhost%2Freturn%2Fpay_1";
    assert_eq!(
        order.text(),
        format!(
            "orderid=pay_1&operation=Authorization&description=order-1&currency=EUR&amount=10.50\
&accept_url={ret}&decline_url={ret}&pending_url={ret}&exception_url={ret}&cancel_url={ret}\
&notify_url=https%3A%2F%2Fhost%2Fwebhooks%2Facc_1&cdata1=order-1&email=ada%40example.com\
&ipaddr=192.0.2.1&http_accept=text%2Fhtml&http_user_agent=Mozilla%2F5.0&language=fr_FR\
&payment_product=visa&cardtoken={}",
            "f".repeat(64)
        )
    );
    // The card number goes to the vault and nowhere else.
    assert!(!order.text().contains(VISA));
    assert!(host.logs().iter().all(|(_, line)| !line.contains(VISA)));

    Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Automatic, money(1050, "EUR")),
    )
    .unwrap();
    let order = host.last_request().unwrap();
    assert!(form_of(&order).contains(&("operation".into(), "Sale".into())));
}

#[test]
fn amounts_in_0_2_and_3_decimal_currencies() {
    for (minor, currency, text) in [
        (1050u64, "JPY", "1050"),
        (1050, "EUR", "10.50"),
        (1, "EUR", "0.01"),
        (1005, "KWD", "1.005"),
        (1500, "TND", "1.500"),
    ] {
        let mut tx = transaction("116", "completed");
        tx["authorizedAmount"] = json!(text);
        tx["currency"] = json!(currency);
        let host = hipay_answers(200, tx);
        let outcome = Hipay::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, money(minor, currency)),
        )
        .unwrap();
        let sent = form_of(&host.last_request().unwrap());
        assert!(sent.contains(&("amount".into(), text.into())), "{currency}");
        assert!(sent.contains(&("currency".into(), currency.into())));
        assert_eq!(outcome.amount_authorized, Some(minor), "{currency}");
    }
    assert_eq!(transformers::parse_amount("1000.00", "JPY"), Some(1000));
    assert_eq!(transformers::parse_amount("1.50", "KWD"), Some(1500));
    assert_eq!(transformers::parse_amount("10.005", "EUR"), None);
    assert_eq!(transformers::parse_amount("-1", "EUR"), None);
}

#[test]
fn unsupported_currency_is_refused_before_any_call() {
    let host = hipay_answers(200, transaction("116", "completed"));
    for currency in ["XXX", "FRF", "eur", ""] {
        let e = Hipay::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, money(100, currency)),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(e.field.as_deref(), Some("currency"));
    }
    let e = Hipay::capture(
        account(),
        CaptureRequest {
            payment: payment_ref("EUR", 1050),
            amount: money(100, "USD"),
            final_capture: false,
            idempotency_key: "k".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("currency"));
    assert!(host.requests().is_empty());
}

#[test]
fn other_methods_are_refused_before_any_call() {
    let host = hipay_answers(200, transaction("116", "completed"));
    let mut request = authorize_request(CaptureMethod::Manual, money(100, "EUR"));
    request.payment_method = PaymentMethod::Other(OtherMethod {
        kind: "ideal".into(),
        details_json: "{}".into(),
    });
    let e = Hipay::authorize(account(), request).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("payment_method"));
    assert!(host.requests().is_empty());
}

#[test]
fn three_d_secure_is_a_get_redirect() {
    let _host = hipay_answers(200, transaction("140", "forwarding"));
    let outcome = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, money(1050, "EUR")),
    )
    .unwrap();
    assert_eq!(
        outcome.status,
        PaymentStatus::RequiresAction(Redirect {
            url: format!("{BASE}/forward/abc"),
            method: HttpMethod::Get,
            form: Vec::new()
        })
    );
    assert_eq!(outcome.connector_reference.as_deref(), Some(TX));
    assert_eq!(outcome.amount_authorized, None);
}

#[test]
fn every_transaction_status_maps() {
    let refusal = Refusal {
        code: "4010202".into(),
        reason: "Invalid Card Number".into(),
    };
    let cases: Vec<(&str, &str, PaymentStatus)> = vec![
        ("101", "pending", PaymentStatus::Pending),
        ("109", "declined", PaymentStatus::Refused(refusal.clone())),
        ("110", "declined", PaymentStatus::Refused(refusal.clone())),
        ("111", "declined", PaymentStatus::Refused(refusal.clone())),
        ("112", "pending", PaymentStatus::Pending),
        ("113", "error", PaymentStatus::Refused(refusal.clone())),
        ("114", "completed", PaymentStatus::Canceled),
        ("115", "declined", PaymentStatus::Canceled),
        ("116", "completed", PaymentStatus::Authorized),
        ("117", "completed", PaymentStatus::Authorized),
        ("118", "completed", PaymentStatus::Captured),
        ("119", "completed", PaymentStatus::Captured),
        ("124", "completed", PaymentStatus::Captured),
        ("125", "completed", PaymentStatus::Captured),
        ("126", "completed", PaymentStatus::Captured),
        ("129", "completed", PaymentStatus::Captured),
        ("140", "pending", PaymentStatus::Pending),
        ("141", "pending", PaymentStatus::Pending),
        ("142", "pending", PaymentStatus::Pending),
        ("143", "completed", PaymentStatus::Canceled),
        ("163", "declined", PaymentStatus::Refused(refusal.clone())),
        ("165", "completed", PaymentStatus::Captured),
        ("173", "completed", PaymentStatus::Authorized),
        ("175", "completed", PaymentStatus::Authorized),
        ("200", "pending", PaymentStatus::Pending),
        // Unknown codes follow the state.
        ("999", "declined", PaymentStatus::Refused(refusal.clone())),
        ("998", "pending", PaymentStatus::Pending),
    ];
    for (code, state, expected) in cases {
        let _host = hipay_answers(200, json!({"transaction": transaction(code, state)}));
        let outcome = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap();
        assert_eq!(outcome.status, expected, "status {code}");
        assert_eq!(outcome.provider_status.as_deref(), Some(code));
    }
    // Refused without a reason keeps HiPay's status and message.
    let tx = Transaction::from_json(&json!({"state": "declined", "status": "111",
        "message": "Denied", "transactionReference": TX}))
    .unwrap();
    assert_eq!(
        tx.payment_status().unwrap(),
        PaymentStatus::Refused(Refusal {
            code: "111".into(),
            reason: "Denied".into()
        })
    );
    // An unknown code in a completed state is not guessed.
    let _host = hipay_answers(200, json!({"transaction": transaction("997", "completed")}));
    let e = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "unexpected_status")
    );
}

#[test]
fn partial_capture_amounts_are_reported() {
    let _host = hipay_answers(200, json!({"transaction": transaction("119", "completed")}));
    let outcome = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(outcome.amount_captured, Some(400));
    assert_eq!(outcome.amount_authorized, Some(1050));
}

#[test]
fn duplicate_order_reports_the_existing_transaction() {
    let host = MockHost::new();
    host.on_http(|req| {
        Ok(if req.url.ends_with("/v2/token/create") {
            Response::from_json(201, &token())
        } else if req.url.ends_with("/v1/order") {
            Response::from_json(400, &json!({"code": 3010004, "message": "Duplicate Order", "description": ""}))
        } else {
            assert!(req.url.ends_with("/v1/transaction?orderid=pay_1"), "{}", req.url);
            Response::from_json(200, &json!({"transaction": [transaction("163", "declined"), transaction("116", "completed")]}))
        })
    });
    let outcome = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, money(1050, "EUR")),
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(host.requests().len(), 3);
}

#[test]
fn errors_are_classified() {
    let cases: Vec<(u16, Value, ErrorKind, &str)> = vec![
        (
            400,
            json!({"code": 3040001, "message": "Unknown Token", "description": "x"}),
            ErrorKind::Rejected,
            "3040001",
        ),
        (
            400,
            json!({"code": "1010201", "message": "Invalid Parameter"}),
            ErrorKind::Rejected,
            "1010201",
        ),
        (
            401,
            json!({"code": 1000001, "message": "Incorrect Credentials"}),
            ErrorKind::InvalidConfig,
            "http_401",
        ),
        (
            500,
            json!({"code": 1000008, "message": "Temporarily Unavailable"}),
            ErrorKind::Retryable,
            "http_500",
        ),
        (503, json!(null), ErrorKind::Retryable, "http_503"),
        (404, json!("nope"), ErrorKind::Rejected, "http_404"),
    ];
    for (status, body, kind, code) in cases {
        let _host = hipay_answers(status, body);
        let e = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap_err();
        assert_eq!((e.kind, e.code.as_str()), (kind, code), "HTTP {status}");
    }
    // Garbage with a 200, and transport failures, are retryable.
    let host = MockHost::new();
    host.on_http(|_| Ok(Response::new(200, "<html>oops")));
    let e = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "invalid_response")
    );
    host.on_http(|_| Err(HttpError::Timeout));
    let e = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap_err();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Retryable, "timeout"));
    let e = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, money(1, "EUR")),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Retryable);
}

// ------------------------------------------------------------------ hosted page

#[test]
fn hosted_page_redirects_to_forward_url() {
    let host = MockHost::new();
    host.on_http(|_| {
        Ok(Response::from_json(
            200,
            &json!({"forwardUrl": format!("{BASE}/pay/xyz"), "test": "true"}),
        ))
    });
    let mut request = authorize_request(CaptureMethod::Automatic, money(1050, "EUR"));
    request.payment_method = PaymentMethod::Other(OtherMethod {
        kind: "hosted_page".into(),
        details_json: "{}".into(),
    });
    request.shopper = None;
    let outcome = Hipay::authorize(account(), request).unwrap();
    assert_eq!(
        outcome.status,
        PaymentStatus::RequiresAction(Redirect {
            url: format!("{BASE}/pay/xyz"),
            method: HttpMethod::Get,
            form: Vec::new()
        })
    );
    assert_eq!(outcome.connector_reference, None);
    let sent = host.last_request().unwrap();
    assert_eq!(sent.url, format!("{BASE}/api/v1/hpayment"));
    let form = form_of(&sent);
    assert!(form.contains(&("operation".into(), "Sale".into())));
    assert!(form.contains(&("orderid".into(), "pay_1".into())));
    assert!(!form.iter().any(|(k, _)| k == "cardtoken"));
}

// ------------------------------------------------------------------ complete

fn signed(params: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let hash = redirect_hash(Algorithm::Sha256, PASSPHRASE, &p);
    p.push(("hash".into(), hash));
    p
}

/// Known answers from HiPay's PHP SDK
/// (hipay/hipay-fullservice-sdk-php, tests/Unit/HiPay/Tests/Fullservice/Helper/SignatureTest.php):
/// with `$_GET = {signature: "testSignature"}` and the passphrase
/// "testSignature", `hash` is the SHA-1/256/512 of
/// "signature" + "testSignature" + "testSignature".
#[test]
fn redirect_hash_matches_hipay_sdk_known_answers() {
    let params = vec![("signature".to_string(), "testSignature".to_string())];
    assert_eq!(
        redirect_hash(Algorithm::Sha1, "testSignature", &params),
        "9cf701f5d7519f1aeabe69a2857ee85fefbf31a3"
    );
    assert_eq!(
        redirect_hash(Algorithm::Sha256, "testSignature", &params),
        "9664430560899c4a1eeff059f4244265d783bdba077c525943ec1438db04b8bc"
    );
    assert_eq!(
        redirect_hash(Algorithm::Sha512, "testSignature", &params),
        "dca1c8cd59e00362d6c1516596e5cc514778f7d88a2fcbedf4feae035333dddc3e86175d7df65616857571d3ce75b994fe3abc43048bfca248cdb198c521e7a0"
    );
    // The SDK's "not valid" cases: another passphrase does not match.
    let secrets = |passphrase: &str, algorithm| Secrets {
        passphrase: passphrase.into(),
        algorithm,
    };
    let mut with_hash = params.clone();
    with_hash.push((
        "hash".into(),
        "9cf701f5d7519f1aeabe69a2857ee85fefbf31a3".into(),
    ));
    assert!(verify_return(&secrets("testSignature", Algorithm::Sha1), &with_hash).is_ok());
    assert!(verify_return(&secrets("1234", Algorithm::Sha1), &with_hash).is_err());
    // A SHA-1 hash does not pass as SHA-256.
    assert!(verify_return(&secrets("testSignature", Algorithm::Sha256), &with_hash).is_err());
    // Parameters are sorted by name and empty ones skipped.
    let p = vec![
        ("b".to_string(), "2".to_string()),
        ("c".to_string(), String::new()),
        ("a".to_string(), "1".to_string()),
    ];
    assert_eq!(
        redirect_hash(Algorithm::Sha256, "P", &p),
        Algorithm::Sha256.hex(b"a1Pb2P")
    );
}

#[test]
fn complete_verifies_the_hash_then_asks_hipay() {
    let host = hipay_answers(200, json!({"transaction": transaction("116", "completed")}));
    let params = signed(&[
        ("orderid", "pay_1"),
        ("reference", TX),
        ("status", "116"),
        ("state", "completed"),
    ]);
    let outcome = Hipay::complete(
        account(),
        CompleteRequest {
            payment: payment_ref("EUR", 1050),
            params: params.clone(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(
        host.last_request().unwrap().url,
        format!("{BASE}/gateway/v1/transaction/{TX}")
    );

    // Forged: a changed parameter, a missing hash, another order.
    let mut forged = params.clone();
    forged[2].1 = "118".into();
    let calls = host.requests().len();
    for bad in [forged, params[..4].to_vec()] {
        let e = Hipay::complete(
            account(),
            CompleteRequest {
                payment: payment_ref("EUR", 1050),
                params: bad,
            },
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidSignature);
    }
    let other = signed(&[("orderid", "pay_2")]);
    let e = Hipay::complete(
        account(),
        CompleteRequest {
            payment: payment_ref("EUR", 1050),
            params: other,
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("orderid"));
    assert_eq!(host.requests().len(), calls, "no call for a forged return");
}

#[test]
fn complete_without_reference_looks_up_the_order() {
    let host = MockHost::new();
    host.on_http(|req| {
        assert!(req.url.ends_with("/gateway/v1/transaction?orderid=pay_1"));
        Ok(Response::from_json(
            200,
            &json!({"transaction": transaction("118", "completed")}),
        ))
    });
    let mut payment = payment_ref("EUR", 1050);
    payment.connector_reference = None;
    let outcome = Hipay::complete(
        account(),
        CompleteRequest {
            payment: payment.clone(),
            params: signed(&[("orderid", "pay_1"), ("reference", TX)]),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(outcome.connector_reference.as_deref(), Some(TX));

    // Cancelled on the hosted page: no transaction for the order.
    host.on_http(|_| {
        Ok(Response::from_json(
            404,
            &json!({"code": 3000001, "message": "Unknown Order"}),
        ))
    });
    let outcome = Hipay::complete(
        account(),
        CompleteRequest {
            payment,
            params: signed(&[("orderid", "pay_1")]),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Canceled);
}

// ------------------------------------------------------------- maintenance

fn operation(status: &str) -> Value {
    json!({"operation": "x", "status": status, "message": "m", "transactionReference": TX,
        "authorizedAmount": "10.50", "capturedAmount": "4.00", "refundedAmount": "0.00", "currency": "EUR"})
}

#[test]
fn capture_sends_the_decimal_amount_and_operation_id() {
    let host = hipay_answers(200, operation("117"));
    let outcome = Hipay::capture(
        account(),
        CaptureRequest {
            payment: payment_ref("EUR", 1050),
            amount: money(400, "EUR"),
            final_capture: false,
            idempotency_key: "psr-pay_1-capture-0".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Pending);
    assert_eq!(outcome.provider_status.as_deref(), Some("117"));
    let sent = host.last_request().unwrap();
    assert_eq!(
        sent.url,
        format!("{BASE}/gateway/v1/maintenance/transaction/{TX}")
    );
    assert_eq!(
        sent.text(),
        "operation=capture&operation_id=psr-pay_1-capture-0&amount=4.00&currency=EUR"
    );
    assert_eq!(
        sent.header_value("Authorization"),
        Some("Basic dXNlcjpwYXNz")
    );
}

#[test]
fn maintenance_statuses_map() {
    let refused = |code: &str| {
        ModificationStatus::Refused(Refusal {
            code: code.into(),
            reason: "m".into(),
        })
    };
    for (status, expected) in [
        ("117", ModificationStatus::Pending),
        ("118", ModificationStatus::Succeeded),
        ("119", ModificationStatus::Succeeded),
        ("173", refused("173")),
        ("124", ModificationStatus::Pending),
        ("125", ModificationStatus::Succeeded),
        ("126", ModificationStatus::Succeeded),
        ("165", refused("165")),
        ("175", ModificationStatus::Pending),
        ("115", ModificationStatus::Succeeded),
        ("143", ModificationStatus::Succeeded),
    ] {
        let tx = Transaction::from_json(&operation(status)).unwrap();
        assert_eq!(tx.modification_status(), expected, "{status}");
    }
}

#[test]
fn cancel_sends_no_amount() {
    let host = hipay_answers(200, operation("175"));
    let outcome = Hipay::cancel(
        account(),
        CancelRequest {
            payment: payment_ref("EUR", 1050),
            idempotency_key: "k-cancel".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Pending);
    assert_eq!(
        host.last_request().unwrap().text(),
        "operation=cancel&operation_id=k-cancel"
    );
}

#[test]
fn refund_is_named_by_the_refunded_total() {
    let host = MockHost::new();
    host.on_http(|req| {
        Ok(if req.method == "GET" {
            let mut t = transaction("126", "completed");
            t["refundedAmount"] = json!("3.00");
            Response::from_json(200, &json!({"transaction": t}))
        } else {
            Response::from_json(200, &operation("124"))
        })
    });
    let outcome = Hipay::refund(
        account(),
        RefundRequest {
            payment: payment_ref("EUR", 1050),
            refund_id: "re_1".into(),
            amount: money(250, "EUR"),
            reason: None,
            idempotency_key: "k-refund".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Pending);
    assert_eq!(
        outcome.connector_reference.as_deref(),
        Some("800000000001:refund:550")
    );
    assert_eq!(
        host.last_request().unwrap().text(),
        "operation=refund&operation_id=k-refund&amount=2.50&currency=EUR"
    );
}

#[test]
fn business_errors_are_rejected_with_hipay_code() {
    let _host = hipay_answers(
        400,
        json!({"code": 3020110, "message": "Amount Limit Exceeded", "description": "d"}),
    );
    let e = Hipay::capture(
        account(),
        CaptureRequest {
            payment: payment_ref("EUR", 1050),
            amount: money(2000, "EUR"),
            final_capture: true,
            idempotency_key: "k".into(),
        },
    )
    .unwrap_err();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Rejected, "3020110"));
    assert_eq!(e.message, "Amount Limit Exceeded: d");
    let mut payment = payment_ref("EUR", 1050);
    payment.connector_reference = None;
    let e = Hipay::cancel(
        account(),
        CancelRequest {
            payment,
            idempotency_key: "k".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("connector_reference"));
}

// ------------------------------------------------------------- notifications

fn notification_body(status: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("state", "completed"),
        ("attempt_id", "1"),
        ("transaction_reference", TX),
        ("date_updated", "2019-02-07T10:07:09+0000"),
        ("status", status),
        ("message", "m"),
        ("authorized_amount", "10.50"),
        ("captured_amount", "4.00"),
        ("refunded_amount", "2.50"),
        ("currency", "EUR"),
        ("order[id]", "pay_1"),
    ];
    fields.extend_from_slice(extra);
    form_encode(&fields)
}

fn notification(body: &str, signature: Option<String>) -> Notification {
    let mut headers = vec![HttpHeader {
        name: "Content-Type".into(),
        value: "application/x-www-form-urlencoded".into(),
    }];
    if let Some(sig) = signature {
        headers.push(HttpHeader {
            name: "x-allopass-signature".into(),
            value: sig,
        });
    }
    Notification {
        method: "POST".into(),
        uri: "/webhooks/acc_1".into(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

fn sign(body: &str) -> String {
    notification_signature(Algorithm::Sha256, PASSPHRASE, body.as_bytes())
}

/// HiPay's PHP SDK computes a notification's signature as SHA(raw body +
/// passphrase) (`Signature::getStringToCompute`); with the SDK test's body
/// "signaturetestSignature" and passphrase "testSignature" the string is
/// the one of the SDK's known answers above.
#[test]
fn notification_signature_known_answers() {
    let body = b"signaturetestSignature";
    assert_eq!(
        notification_signature(Algorithm::Sha1, "testSignature", body),
        "9cf701f5d7519f1aeabe69a2857ee85fefbf31a3"
    );
    assert_eq!(
        notification_signature(Algorithm::Sha256, "testSignature", body),
        "9664430560899c4a1eeff059f4244265d783bdba077c525943ec1438db04b8bc"
    );
    assert!(
        notification_signature(Algorithm::Sha512, "testSignature", body)
            .starts_with("dca1c8cd59e00362d6c1516596e5cc51")
    );
}

#[test]
fn notifications_are_verified() {
    let _host = MockHost::new();
    let body = notification_body("118", &[]);
    let ok = Hipay::handle_notification(account(), notification(&body, Some(sign(&body)))).unwrap();
    assert_eq!(ok.response_status, 200);
    assert_eq!(ok.events.len(), 1);
    // Uppercase hex is the same signature.
    assert!(Hipay::handle_notification(
        account(),
        notification(&body, Some(sign(&body).to_uppercase()))
    )
    .is_ok());

    let tampered = body.replace("118", "125");
    for n in [
        notification(&body, None),
        notification(&body, Some(String::new())),
        notification(&body, Some("0".repeat(64))),
        notification(&tampered, Some(sign(&body))),
        notification(
            &body,
            Some(notification_signature(
                Algorithm::Sha1,
                PASSPHRASE,
                body.as_bytes(),
            )),
        ),
        notification(
            &body,
            Some(notification_signature(
                Algorithm::Sha256,
                "other",
                body.as_bytes(),
            )),
        ),
    ] {
        let e = Hipay::handle_notification(account(), n).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidSignature);
    }
    // SHA-512 accounts.
    let mut a = account();
    a.config[3].1 = "SHA-512".into();
    let sig = notification_signature(Algorithm::Sha512, PASSPHRASE, body.as_bytes());
    assert!(Hipay::handle_notification(a, notification(&body, Some(sig))).is_ok());
}

#[test]
fn malformed_notifications_are_invalid_requests() {
    let _host = MockHost::new();
    for body in [
        "garbage".to_string(),
        form_encode(&[("status", "116")]),
        form_encode(&[("transaction_reference", TX)]),
        form_encode(&[("transaction_reference", TX), ("status", "11x")]),
    ] {
        let e = Hipay::handle_notification(account(), notification(&body, Some(sign(&body))))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{body}");
    }
    let mut n = notification("a=1", None);
    n.body = vec![0xff, 0xfe];
    let sig = notification_signature(Algorithm::Sha256, PASSPHRASE, &n.body);
    n.headers.push(HttpHeader {
        name: "X-Allopass-Signature".into(),
        value: sig,
    });
    assert_eq!(
        Hipay::handle_notification(account(), n).unwrap_err().kind,
        ErrorKind::InvalidRequest
    );
}

#[test]
fn every_notification_status_maps() {
    let _host = MockHost::new();
    let refusal = Refusal {
        code: "4010202".into(),
        reason: "Invalid".into(),
    };
    let reason = [("reason[code]", "4010202"), ("reason[message]", "Invalid")];
    let refund_ref = "800000000001:refund:250".to_string();
    let cases: Vec<(&str, NotificationEventKind, Option<u64>)> = vec![
        (
            "116",
            NotificationEventKind::Payment(PaymentStatus::Authorized),
            Some(1050),
        ),
        (
            "117",
            NotificationEventKind::Other("capture_requested".into()),
            Some(400),
        ),
        (
            "118",
            NotificationEventKind::Payment(PaymentStatus::Captured),
            Some(400),
        ),
        (
            "119",
            NotificationEventKind::Payment(PaymentStatus::Captured),
            Some(400),
        ),
        (
            "173",
            NotificationEventKind::Capture(ModificationStatus::Refused(refusal.clone())),
            None,
        ),
        (
            "124",
            NotificationEventKind::Refund((refund_ref.clone(), ModificationStatus::Pending)),
            Some(250),
        ),
        (
            "125",
            NotificationEventKind::Refund((refund_ref.clone(), ModificationStatus::Succeeded)),
            Some(250),
        ),
        (
            "126",
            NotificationEventKind::Refund((refund_ref.clone(), ModificationStatus::Succeeded)),
            Some(250),
        ),
        (
            "165",
            NotificationEventKind::Refund((
                refund_ref.clone(),
                ModificationStatus::Refused(refusal.clone()),
            )),
            Some(250),
        ),
        (
            "175",
            NotificationEventKind::Cancel(ModificationStatus::Pending),
            Some(1050),
        ),
        (
            "114",
            NotificationEventKind::Payment(PaymentStatus::Canceled),
            Some(1050),
        ),
        (
            "115",
            NotificationEventKind::Payment(PaymentStatus::Canceled),
            Some(1050),
        ),
        (
            "143",
            NotificationEventKind::Payment(PaymentStatus::Canceled),
            Some(1050),
        ),
        (
            "109",
            NotificationEventKind::Payment(PaymentStatus::Refused(refusal.clone())),
            Some(1050),
        ),
        (
            "110",
            NotificationEventKind::Payment(PaymentStatus::Refused(refusal.clone())),
            Some(1050),
        ),
        (
            "111",
            NotificationEventKind::Payment(PaymentStatus::Refused(refusal.clone())),
            Some(1050),
        ),
        (
            "113",
            NotificationEventKind::Payment(PaymentStatus::Refused(refusal.clone())),
            Some(1050),
        ),
        (
            "163",
            NotificationEventKind::Payment(PaymentStatus::Refused(refusal.clone())),
            Some(1050),
        ),
        (
            "112",
            NotificationEventKind::Payment(PaymentStatus::Pending),
            Some(1050),
        ),
        (
            "142",
            NotificationEventKind::Payment(PaymentStatus::Pending),
            Some(1050),
        ),
        (
            "200",
            NotificationEventKind::Payment(PaymentStatus::Pending),
            Some(1050),
        ),
        ("101", NotificationEventKind::Other("created".into()), None),
        (
            "140",
            NotificationEventKind::Other("authentication_requested".into()),
            None,
        ),
        (
            "141",
            NotificationEventKind::Other("authenticated".into()),
            None,
        ),
        (
            "129",
            NotificationEventKind::Other("chargeback".into()),
            Some(400),
        ),
        (
            "150",
            NotificationEventKind::Other("status_150".into()),
            None,
        ),
    ];
    for (status, kind, amount) in cases {
        let body = notification_body(status, &reason);
        let out =
            Hipay::handle_notification(account(), notification(&body, Some(sign(&body)))).unwrap();
        let event = &out.events[0];
        assert_eq!(event.kind, kind, "status {status}");
        assert_eq!(
            event.amount.as_ref().map(|m| m.minor_units),
            amount,
            "status {status}"
        );
        assert_eq!(event.connector_reference, TX);
        assert_eq!(event.merchant_reference.as_deref(), Some("pay_1"));
        assert_eq!(event.provider_status.as_deref(), Some(status));
        // 2019-02-07T10:07:09Z
        assert_eq!(event.occurred_at_ms, Some(1_549_534_029_000));
    }
}

#[test]
fn event_ids_are_stable_and_distinct() {
    let _host = MockHost::new();
    let id = |body: &str| {
        Hipay::handle_notification(account(), notification(body, Some(sign(body))))
            .unwrap()
            .events[0]
            .event_id
            .clone()
    };
    let a = notification_body("119", &[]);
    // A replayed (redelivered) notification has the same id: the host dedupes it.
    assert_eq!(id(&a), id(&a));
    let b = notification_body("119", &[("captured_amount", "10.50")]);
    let b = b.replacen("captured_amount=4.00&", "", 1);
    assert_ne!(id(&a), id(&b));
    assert_ne!(id(&a), id(&notification_body("118", &[])));
}

#[test]
fn hipay_dates_parse() {
    use transformers::parse_hipay_date_ms;
    assert_eq!(parse_hipay_date_ms("1970-01-01T00:00:00+0000"), Some(0));
    assert_eq!(
        parse_hipay_date_ms("2019-02-07T10:07:09Z"),
        Some(1_549_534_029_000)
    );
    assert_eq!(
        parse_hipay_date_ms("2019-02-07T11:07:09+01:00"),
        Some(1_549_534_029_000)
    );
    assert_eq!(
        parse_hipay_date_ms("2024-02-29T00:00:00+0000"),
        Some(1_709_164_800_000)
    );
    assert_eq!(parse_hipay_date_ms("yesterday"), None);
    assert_eq!(parse_hipay_date_ms("2019-13-07T10:07:09+0000"), None);
}
