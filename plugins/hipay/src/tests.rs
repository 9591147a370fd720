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
            ("signature_algorithm", false, false),
            ("authentication_indicator", false, false)
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
    let form = form_of(order);
    let browser_info = form
        .iter()
        .find(|(k, _)| k == "browser_info")
        .map(|(_, v)| v.clone())
        .expect("browser_info");
    assert_eq!(
        order.text(),
        format!(
            "orderid=pay_1&operation=Authorization&description=order-1&currency=EUR&amount=10.50\
&accept_url={ret}&decline_url={ret}&pending_url={ret}&exception_url={ret}&cancel_url={ret}\
&notify_url=https%3A%2F%2Fhost%2Fwebhooks%2Facc_1&authentication_indicator=1&cdata1=order-1\
&email=ada%40example.com&ipaddr=192.0.2.1&http_accept=text%2Fhtml\
&http_user_agent=Mozilla%2F5.0&language=fr_FR&payment_product=visa&cardtoken={}&{}",
            "f".repeat(64),
            form_encode(&[("browser_info", browser_info.as_str())])
        )
    );
    // One JSON field, as HiPay's PHP SDK sends it (`BrowserInfo::toJson`),
    // with gateway.yaml's types: booleans, integers, `timezone` a string.
    assert_eq!(
        serde_json::from_str::<Value>(&browser_info).unwrap(),
        json!({
            "java_enabled": false, "javascript_enabled": true, "ipaddr": "192.0.2.1",
            "http_accept": "text/html", "http_user_agent": "Mozilla/5.0", "language": "fr-FR",
            "color_depth": 24, "screen_height": 1080, "screen_width": 1920, "timezone": "-60"
        })
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

/// Every status of HiPay's list (developer.hipay.com "Transaction status",
/// hipay/hipay-docs appendix) and those HiPay's modules handle beyond it
/// (177 challenge requested, 178 soft declined, ...) has a defined outcome
/// in the state HiPay reports it with; none is an error. Settled and
/// disputed transactions (120-123, 131, 132, 134, 166-169, 180-183) used
/// to be `unexpected_status`.
#[test]
fn every_listed_status_has_a_defined_outcome() {
    use transformers::{status_class, StatusClass::*};
    let in_progress = [
        "101", "103", "104", "105", "106", "107", "108", "112", "140", "141", "142", "144", "150",
        "151", "160", "161", "172", "174", "177", "200",
    ];
    let captured = [
        "118", "119", "120", "121", "122", "123", "124", "125", "126", "129", "131", "132", "134",
        "165", "166", "168", "169", "180", "181", "182", "183",
    ];
    for code in in_progress {
        assert_eq!(status_class(code), Some(InProgress), "{code}");
        let _host = hipay_answers(200, json!({"transaction": transaction(code, "pending")}));
        let outcome = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap();
        assert_eq!(outcome.status, PaymentStatus::Pending, "{code}");
    }
    for code in captured {
        assert_eq!(status_class(code), Some(Captured), "{code}");
        let _host = hipay_answers(200, json!({"transaction": transaction(code, "completed")}));
        let outcome = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap();
        assert_eq!(outcome.status, PaymentStatus::Captured, "{code}");
    }
    for (code, class) in [
        ("116", Authorized),
        ("117", Authorized),
        ("173", Authorized),
        ("175", Authorized),
        ("109", Refused),
        ("110", Refused),
        ("111", Refused),
        ("113", Refused),
        ("163", Refused),
        ("178", SoftDeclined),
        ("114", Canceled),
        ("115", Canceled),
        ("143", Canceled),
    ] {
        assert_eq!(status_class(code), Some(class), "{code}");
    }
    // An in-progress step that HiPay reports declined (an acquirer not
    // found, in error) is a refusal.
    let _host = hipay_answers(200, json!({"transaction": transaction("151", "error")}));
    let outcome = Hipay::sync(account(), payment_ref("EUR", 1050)).unwrap();
    assert!(
        matches!(outcome.status, PaymentStatus::Refused(_)),
        "{outcome:?}"
    );
}

/// 178 "Soft declined" (HiPay's status list as HiPay's modules carry it:
/// hipay/hipay-fullservice-sdk-magento2 `Cron/ProcessNotifications.php`,
/// hipay/hipay-payments-sylius `HiPayStatus::SoftDeclined`): a refusal
/// coded 178 the merchant can act on (pay again with 3-D Secure), or the
/// shopper's redirect when HiPay gives a `forwardUrl` with it. 177
/// "Challenge requested" with a `forwardUrl` sends the shopper there too.
#[test]
fn soft_decline_is_a_clear_refusal_or_a_redirect() {
    let mut tx = transaction("178", "declined");
    tx["message"] = json!("Soft Declined");
    tx.as_object_mut().unwrap().remove("reason");
    let _host = hipay_answers(200, tx.clone());
    let outcome = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, money(1050, "EUR")),
    )
    .unwrap();
    let PaymentStatus::Refused(refusal) = &outcome.status else {
        panic!("{outcome:?}");
    };
    assert_eq!(refusal.code, "178");
    assert!(refusal.reason.contains("3-D Secure"), "{}", refusal.reason);
    assert!(
        refusal.reason.contains("Soft Declined"),
        "{}",
        refusal.reason
    );
    assert_eq!(outcome.provider_status.as_deref(), Some("178"));
    assert_eq!(outcome.amount_authorized, None);
    assert_eq!(
        outcome.three_ds.map(|t| t.status),
        Some(ThreeDsStatus::NotPerformed)
    );

    for (code, state) in [("178", "declined"), ("177", "pending"), ("140", "pending")] {
        let mut tx = transaction(code, state);
        tx["forwardUrl"] = json!(format!("{BASE}/forward/soft"));
        let _host = hipay_answers(200, tx);
        let outcome = Hipay::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, money(1050, "EUR")),
        )
        .unwrap();
        assert_eq!(
            outcome.status,
            PaymentStatus::RequiresAction(Redirect {
                url: format!("{BASE}/forward/soft"),
                method: HttpMethod::Get,
                form: Vec::new()
            }),
            "{code}"
        );
    }
    // Without a forwardUrl, 177 waits.
    let _host = hipay_answers(200, transaction("177", "pending"));
    let outcome = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, money(1050, "EUR")),
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Pending);
}

#[test]
fn three_ds_result_from_hipay() {
    let case = |status: &str, state: &str, three_ds: Value| {
        let mut tx = transaction(status, state);
        tx["threeDSecure"] = three_ds;
        let _host = hipay_answers(200, json!({"transaction": tx}));
        Hipay::sync(account(), payment_ref("EUR", 1050))
            .unwrap()
            .three_ds
    };
    let result = |status, eci: Option<&str>| {
        Some(ThreeDsResult {
            status,
            version: None,
            liability_shift: None,
            eci: eci.map(String::from),
        })
    };
    let ds = |enrollment: &str, authentication: &str, eci: &str| {
        json!({"enrollmentStatus": enrollment, "authenticationStatus": authentication,
            "eci": eci, "enrollmentMessage": "", "authenticationMessage": "", "xid": ""})
    };
    assert_eq!(
        case("116", "completed", ds("Y", "Y", "05")),
        result(ThreeDsStatus::Authenticated, Some("05"))
    );
    assert_eq!(
        case("116", "completed", ds("Y", "A", "06")),
        result(ThreeDsStatus::Attempted, Some("06"))
    );
    assert_eq!(
        case("116", "completed", ds("Y", "U", "")),
        result(ThreeDsStatus::Unavailable, None)
    );
    assert_eq!(
        case("109", "declined", ds("Y", "N", "")),
        result(ThreeDsStatus::Failed, None)
    );
    assert_eq!(
        case("116", "completed", ds("N", "", "")),
        result(ThreeDsStatus::NotEnrolled, None)
    );
    assert_eq!(
        case("116", "completed", ds("E", "", "")),
        result(ThreeDsStatus::Unavailable, None)
    );
    // Bypassed (indicator 0): HiPay asked nothing.
    assert_eq!(
        case("116", "completed", ds("", "", "")),
        result(ThreeDsStatus::NotPerformed, None)
    );
    assert_eq!(
        case("116", "completed", Value::Null),
        result(ThreeDsStatus::NotPerformed, None)
    );
    // Under way: nothing to say yet.
    assert_eq!(case("142", "pending", ds("Y", "", "")), None);
    assert_eq!(case("142", "pending", ds("", "", "")), None);
    // The 3-D Secure statuses themselves.
    assert_eq!(
        case("107", "pending", ds("", "", "")),
        result(ThreeDsStatus::Attempted, None)
    );
    assert_eq!(
        case("104", "pending", ds("", "", "")),
        result(ThreeDsStatus::NotEnrolled, None)
    );
}

#[test]
fn capabilities_follow_hipay() {
    let caps = Hipay::capabilities(account()).unwrap();
    assert_eq!(
        caps.authorization_validity,
        vec![
            AuthorizationValidity {
                payment_method: "card".into(),
                hours: 168
            },
            AuthorizationValidity {
                payment_method: "hosted_page".into(),
                hours: 168
            },
        ]
    );
    assert!(caps.multiple_partial_captures);
    assert_eq!(caps.native_capture_delay_max_hours, None);
}

/// Without `authentication_indicator` HiPay bypasses 3-D Secure (its
/// documented default, 0). The connector always sends the account's: 1 by
/// default, 2 when mandatory; 0 and anything else are refused.
#[test]
fn the_authentication_indicator_is_always_sent() {
    let indicator = |account: Account, method: PaymentMethod| {
        let host = hipay_answers(200, transaction("116", "completed"));
        host.on_http(|req| {
            Ok(if req.url.ends_with("/v2/token/create") {
                Response::from_json(201, &token())
            } else if req.url.ends_with("/v1/hpayment") {
                Response::from_json(200, &json!({"forwardUrl": format!("{BASE}/pay/1")}))
            } else {
                Response::from_json(200, &transaction("116", "completed"))
            })
        });
        let mut request = authorize_request(CaptureMethod::Manual, money(1050, "EUR"));
        request.payment_method = method;
        Hipay::authorize(account, request).unwrap();
        form_of(&host.last_request().unwrap())
            .into_iter()
            .find(|(k, _)| k == "authentication_indicator")
            .map(|(_, v)| v)
    };
    let card = authorize_request(CaptureMethod::Manual, money(1, "EUR")).payment_method;
    let hosted = PaymentMethod::Other(OtherMethod {
        kind: "hosted_page".into(),
        details_json: "{}".into(),
    });
    assert_eq!(indicator(account(), card.clone()).as_deref(), Some("1"));
    assert_eq!(indicator(account(), hosted.clone()).as_deref(), Some("1"));
    let mut mandatory = account();
    mandatory
        .config
        .push(("authentication_indicator".into(), "2".into()));
    assert_eq!(Hipay::validate_config(mandatory.clone()), Ok(()));
    assert_eq!(indicator(mandatory.clone(), card).as_deref(), Some("2"));
    assert_eq!(indicator(mandatory, hosted).as_deref(), Some("2"));
    for bad in ["0", "3", "yes"] {
        let mut a = account();
        a.config
            .push(("authentication_indicator".into(), bad.into()));
        let e = Hipay::validate_config(a.clone()).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("authentication_indicator"),
            "{bad}"
        );
        let _host = hipay_answers(200, transaction("116", "completed"));
        let e = Hipay::authorize(a, authorize_request(CaptureMethod::Manual, money(1, "EUR")))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidConfig, "{bad}");
    }
}

/// `browser_info` follows gateway.yaml's limits: a colour depth it does
/// not list is sent as the deepest listed one below it, a language tag is
/// cut to 8 characters, out-of-range screens and offsets are left out, and
/// no `browser_info` without a language (HiPay requires it) or browser.
#[test]
fn browser_info_within_hipay_limits() {
    let sent_browser_info = |browser: Option<BrowserInfo>| -> Option<Value> {
        let host = hipay_answers(200, transaction("116", "completed"));
        let mut request = authorize_request(CaptureMethod::Manual, money(1050, "EUR"));
        if let Some(shopper) = request.shopper.as_mut() {
            shopper.browser = browser;
        }
        Hipay::authorize(account(), request).unwrap();
        form_of(&host.last_request().unwrap())
            .into_iter()
            .find(|(k, _)| k == "browser_info")
            .map(|(_, v)| serde_json::from_str(&v).unwrap())
    };
    let base = match &authorize_request(CaptureMethod::Manual, money(1, "EUR")).shopper {
        Some(Shopper {
            browser: Some(b), ..
        }) => b.clone(),
        _ => unreachable!("the test request has a browser"),
    };
    let mut odd = base.clone();
    odd.color_depth = 30;
    odd.language = "zh-Hant-TW".into();
    odd.screen_height = 1_000_000;
    odd.time_zone_offset = -100_000;
    let sent = sent_browser_info(Some(odd)).unwrap();
    assert_eq!(sent["color_depth"], 24);
    assert_eq!(sent["language"], "zh-Hant");
    assert!(sent.get("screen_height").is_none(), "{sent}");
    assert!(sent.get("timezone").is_none(), "{sent}");
    assert_eq!(sent["screen_width"], 1920);
    let mut no_language = base;
    no_language.language = String::new();
    assert_eq!(sent_browser_info(Some(no_language)), None);
    assert_eq!(sent_browser_info(None), None);
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

/// HiPay as the maintenance tests need it: a transaction whose totals the
/// maintenance requests move, lookups of it, and faults on the next
/// maintenance request.
struct FakeGateway {
    authorized: u64,
    captured: u64,
    refunded: u64,
    status: &'static str,
    /// The next maintenance request times out after acting (its answer is
    /// lost), or before reaching HiPay.
    lose_next_answer: bool,
    drop_next_request: bool,
}

type Gateway = std::rc::Rc<std::cell::RefCell<FakeGateway>>;

fn cents(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

impl FakeGateway {
    fn start(host: &MockHost, authorized: u64, captured: u64, refunded: u64) -> Gateway {
        let gateway = std::rc::Rc::new(std::cell::RefCell::new(FakeGateway {
            authorized,
            captured,
            refunded,
            status: if captured > 0 { "118" } else { "116" },
            lose_next_answer: false,
            drop_next_request: false,
        }));
        let shared = gateway.clone();
        host.on_http(move |req| {
            let mut g = shared.borrow_mut();
            let tx = |g: &FakeGateway, status: &str| {
                json!({"state": "completed", "status": status, "message": "m",
                    "transactionReference": TX, "authorizedAmount": cents(g.authorized),
                    "capturedAmount": cents(g.captured), "refundedAmount": cents(g.refunded),
                    "currency": "EUR", "order": {"id": "pay_1"}})
            };
            if req.method == "GET" {
                return Ok(Response::from_json(
                    200,
                    &json!({"transaction": tx(&g, g.status)}),
                ));
            }
            if std::mem::take(&mut g.drop_next_request) {
                return Err(HttpError::Timeout);
            }
            let form = form_of(req);
            let value = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            let amount = value("amount").map(|a| transformers::parse_amount(&a, "EUR").unwrap());
            let answer = match value("operation").as_deref() {
                Some("capture") => {
                    g.captured += amount.unwrap_or(g.authorized - g.captured);
                    g.status = if g.captured == g.authorized {
                        "118"
                    } else {
                        "119"
                    };
                    "118"
                }
                Some("refund") => {
                    g.refunded += amount.unwrap_or(g.captured - g.refunded);
                    g.status = if g.refunded == g.captured {
                        "125"
                    } else {
                        "126"
                    };
                    "124"
                }
                other => panic!("unexpected operation {other:?}"),
            };
            if std::mem::take(&mut g.lose_next_answer) {
                return Err(HttpError::Timeout);
            }
            Ok(Response::from_json(200, &tx(&g, answer)))
        });
        gateway
    }
}

fn maintenance_posts(host: &MockHost) -> Vec<String> {
    host.requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.text())
        .collect()
}

fn capture_request(minor: u64, key: &str) -> CaptureRequest {
    CaptureRequest {
        payment: payment_ref("EUR", 1050),
        amount: money(minor, "EUR"),
        final_capture: false,
        idempotency_key: key.into(),
    }
}

fn refund_request(minor: u64, key: &str) -> RefundRequest {
    RefundRequest {
        payment: payment_ref("EUR", 1050),
        refund_id: "re_1".into(),
        amount: money(minor, "EUR"),
        reason: None,
        idempotency_key: key.into(),
    }
}

#[test]
fn capture_reads_the_transaction_then_sends_the_decimal_amount_and_operation_id() {
    let host = MockHost::new();
    FakeGateway::start(&host, 1050, 0, 0);
    let outcome = Hipay::capture(account(), capture_request(400, "psr-pay_1-capture-0")).unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.provider_status.as_deref(), Some("118"));
    let sent = host.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].url, format!("{BASE}/gateway/v1/transaction/{TX}"));
    assert_eq!(
        sent[1].url,
        format!("{BASE}/gateway/v1/maintenance/transaction/{TX}")
    );
    assert_eq!(
        sent[1].text(),
        "operation=capture&operation_id=psr-pay_1-capture-0&amount=4.00&currency=EUR"
    );
    assert_eq!(
        sent[1].header_value("Authorization"),
        Some("Basic dXNlcjpwYXNz")
    );
    // A requested capture (117) is pending.
    let host = MockHost::new();
    host.on_http(|req| {
        Ok(if req.method == "GET" {
            Response::from_json(
                200,
                &json!({"transaction": transaction("116", "completed")}),
            )
        } else {
            Response::from_json(200, &operation("117"))
        })
    });
    let outcome = Hipay::capture(account(), capture_request(400, "k-117")).unwrap();
    assert_eq!(outcome.status, ModificationStatus::Pending);
}

/// gateway.yaml, `Maintenance.amount`: "Amount is required for partial
/// maintenances. Do not specify amount for full captures or refunds."
#[test]
fn full_captures_and_refunds_send_no_amount() {
    let host = MockHost::new();
    let gateway = FakeGateway::start(&host, 1050, 0, 0);
    // The whole authorization: no amount, no currency.
    Hipay::capture(account(), capture_request(1050, "k-full")).unwrap();
    assert_eq!(
        maintenance_posts(&host),
        vec!["operation=capture&operation_id=k-full"]
    );
    assert_eq!(gateway.borrow().captured, 1050);
    // Everything captured, refunded at once: no amount.
    let outcome = Hipay::refund(account(), refund_request(1050, "k-refund-all")).unwrap();
    assert_eq!(
        maintenance_posts(&host)[1],
        "operation=refund&operation_id=k-refund-all"
    );
    assert_eq!(
        outcome.connector_reference.as_deref(),
        Some("800000000001:refund:1050")
    );

    // Partial ones carry their amount, the rest after a partial capture too.
    let host = MockHost::new();
    FakeGateway::start(&host, 1050, 0, 0);
    Hipay::capture(account(), capture_request(400, "k-part")).unwrap();
    Hipay::capture(account(), capture_request(650, "k-rest")).unwrap();
    Hipay::refund(account(), refund_request(100, "k-ref-part")).unwrap();
    assert_eq!(
        maintenance_posts(&host),
        vec![
            "operation=capture&operation_id=k-part&amount=4.00&currency=EUR",
            "operation=capture&operation_id=k-rest&amount=6.50&currency=EUR",
            "operation=refund&operation_id=k-ref-part&amount=1.00&currency=EUR",
        ]
    );
}

/// HiPay's `operation_id` is a label echoed in notifications (gateway.yaml:
/// "This value will be returned to merchant with the notifications related
/// to this operation"), not an idempotency key. The host sends a capture
/// again under the same key when its answer was lost: the connector reads
/// the transaction first and does not capture twice.
#[test]
fn a_capture_repeated_after_a_lost_answer_is_not_made_twice() {
    let host = MockHost::new();
    let gateway = FakeGateway::start(&host, 1050, 0, 0);
    gateway.borrow_mut().lose_next_answer = true;
    let e = Hipay::capture(account(), capture_request(400, "k-lost")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Retryable);
    assert_eq!(gateway.borrow().captured, 400, "HiPay captured");
    // The host's retry, same key: HiPay's totals show it made.
    let outcome = Hipay::capture(account(), capture_request(400, "k-lost")).unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.provider_status.as_deref(), Some("119"));
    assert_eq!(maintenance_posts(&host).len(), 1, "sent once");
    assert_eq!(gateway.borrow().captured, 400);

    // Lost before it reached HiPay: the retry sends it, once.
    gateway.borrow_mut().drop_next_request = true;
    Hipay::capture(account(), capture_request(300, "k-dropped")).unwrap_err();
    assert_eq!(gateway.borrow().captured, 400);
    let outcome = Hipay::capture(account(), capture_request(300, "k-dropped")).unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(gateway.borrow().captured, 700);
    assert_eq!(maintenance_posts(&host).len(), 3);

    // Totals moved by another amount in between: not sent again, left to
    // HiPay's notification.
    gateway.borrow_mut().lose_next_answer = true;
    Hipay::capture(account(), capture_request(100, "k-unclear")).unwrap_err();
    gateway.borrow_mut().captured += 50;
    let outcome = Hipay::capture(account(), capture_request(100, "k-unclear")).unwrap();
    assert_eq!(outcome.status, ModificationStatus::Pending);
    assert_eq!(maintenance_posts(&host).len(), 4);

    // A capture requested (117) since the first attempt: pending, not resent.
    let mut sent = ledger::SentOperation {
        operation: "capture".into(),
        transaction: TX.into(),
        amount: 100,
        captured_before: 0,
        refunded_before: 0,
        status_before: "116".into(),
    };
    assert_eq!(sent.progress(0, 0, "117"), ledger::Progress::Requested);
    assert_eq!(sent.progress(0, 0, "116"), ledger::Progress::NotDone);
    assert_eq!(sent.progress(100, 0, "119"), ledger::Progress::Done);
    sent.status_before = "117".into();
    assert_eq!(sent.progress(0, 0, "117"), ledger::Progress::NotDone);
}

#[test]
fn a_refund_repeated_after_a_lost_answer_is_not_made_twice() {
    let host = MockHost::new();
    let gateway = FakeGateway::start(&host, 1050, 1050, 300);
    gateway.borrow_mut().lose_next_answer = true;
    Hipay::refund(account(), refund_request(250, "k-refund")).unwrap_err();
    assert_eq!(gateway.borrow().refunded, 550);
    let outcome = Hipay::refund(account(), refund_request(250, "k-refund")).unwrap();
    // Named by the total it makes, as when it was first sent.
    assert_eq!(
        outcome.connector_reference.as_deref(),
        Some("800000000001:refund:550")
    );
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(maintenance_posts(&host).len(), 1);
    assert_eq!(gateway.borrow().refunded, 550);
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
    let host = MockHost::new();
    host.on_http(|req| {
        Ok(if req.method == "GET" {
            Response::from_json(
                200,
                &json!({"transaction": transaction("116", "completed")}),
            )
        } else {
            Response::from_json(
                400,
                &json!({"code": 3020110, "message": "Amount Limit Exceeded", "description": "d"}),
            )
        })
    });
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
            "178",
            NotificationEventKind::Payment(PaymentStatus::Refused(
                transformers::soft_decline_refusal(Some("4010202"), "Invalid"),
            )),
            Some(1050),
        ),
        (
            "177",
            NotificationEventKind::Other("challenge_requested".into()),
            None,
        ),
        (
            "144",
            NotificationEventKind::Payment(PaymentStatus::Pending),
            Some(1050),
        ),
        (
            "150",
            NotificationEventKind::Other("acquirer_found".into()),
            None,
        ),
        (
            "181",
            NotificationEventKind::Other("chargeback".into()),
            Some(400),
        ),
        (
            "199",
            NotificationEventKind::Other("status_199".into()),
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

// ------------------------------------------------- documented example answers

/// HiPay's OpenAPI documents (`$PASSERELLE_PSP_SPECS/hipay`, else
/// `../shared/psp-specs/hipay` beside the clone), as JSON, by file name.
/// Absent: `None` after one line naming the test that skips and how to run
/// it; with `CI=true`, a failure (the same rule as every test that needs the
/// providers' documents).
fn hipay_documents() -> Option<Vec<(&'static str, Value)>> {
    let dir = std::env::var_os("PASSERELLE_PSP_SPECS")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/psp-specs")
        })
        .join("hipay");
    if !dir.join("gateway.yaml").is_file() {
        let test = std::thread::current()
            .name()
            .unwrap_or("this test")
            .to_string();
        let missing = dir.join("gateway.yaml");
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {} is missing, and CI=true requires the providers' documents: \
             set PASSERELLE_PSP_SPECS=DIR or put them at ../shared/psp-specs beside the clone",
            missing.display()
        );
        println!(
            "skipped ({test}): the checks against the providers' documents, {} not found; \
             set PASSERELLE_PSP_SPECS=DIR or put them at ../shared/psp-specs beside the clone \
             to run them",
            missing.display()
        );
        return None;
    }
    Some(
        ["gateway.yaml", "hpayment.yaml", "tokenization.yaml"]
            .into_iter()
            .map(|name| {
                let text = std::fs::read_to_string(dir.join(name)).unwrap();
                (name, serde_yaml_ng::from_str::<Value>(&text).unwrap())
            })
            .collect(),
    )
}

/// The example answer a document gives for a schema: its `example`, else
/// the examples of its properties (through `$ref` and `allOf`).
fn example_of(root: &Value, schema: &Value, depth: u32) -> Option<Value> {
    if depth > 12 {
        return None;
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let target = root.pointer(reference.trim_start_matches('#'))?;
        return example_of(root, target, depth + 1);
    }
    if let Some(example) = schema.get("example") {
        return Some(example.clone());
    }
    let mut object = serde_json::Map::new();
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(Value::Object(fields)) = example_of(root, part, depth + 1) {
            object.extend(fields);
        }
    }
    for (name, property) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(example) = example_of(root, property, depth + 1) {
            object.insert(name.clone(), example);
        }
    }
    (!object.is_empty()).then_some(Value::Object(object))
}

/// The example answer of `method path` for HTTP `status` in one document.
fn documented_answer(doc: &Value, method: &str, path: &str, status: &str) -> Option<Value> {
    let response = doc
        .get("paths")?
        .get(path)?
        .get(method)?
        .get("responses")?
        .get(status)?;
    let schema = response
        .get("schema")
        .or_else(|| response.pointer("/content/application~1json/schema"))?;
    example_of(doc, schema, 0)
}

/// Every example answer of HiPay's documents for the calls this connector
/// makes (order, hosted page, vault, maintenance, transaction lookups) goes
/// through the connector's own entry points: each gives a defined outcome,
/// none an error.
#[test]
fn documented_example_answers_give_defined_outcomes() {
    let Some(docs) = hipay_documents() else {
        return;
    };
    let doc = |name: &str| &docs.iter().find(|(n, _)| *n == name).unwrap().1;
    let (gateway, hpayment, vault) = (
        doc("gateway.yaml"),
        doc("hpayment.yaml"),
        doc("tokenization.yaml"),
    );
    let answer = |doc: &Value, method: &str, path: &str, status: &str| {
        documented_answer(doc, method, path, status)
            .unwrap_or_else(|| panic!("no example answer for {method} {path} {status}"))
    };
    let order = answer(gateway, "post", "/v1/order", "200");
    let operation = answer(
        gateway,
        "post",
        "/v1/maintenance/transaction/{transaction_reference}",
        "200",
    );
    let by_reference = answer(
        gateway,
        "get",
        "/v1/transaction/{transaction_reference}",
        "200",
    );
    let by_order = answer(gateway, "get", "/v1/transaction", "200");
    let forward = answer(hpayment, "post", "/v1/hpayment", "200");
    let token = answer(vault, "post", "/create", "201");
    let currency = order["currency"].as_str().unwrap().to_string();
    assert_eq!(currency, "EUR");

    let host = MockHost::new();
    {
        let (order, operation, by_reference, by_order, forward, token) = (
            order.clone(),
            operation.clone(),
            by_reference.clone(),
            by_order.clone(),
            forward.clone(),
            token.clone(),
        );
        host.on_http(move |req| {
            let body = if req.url.ends_with("/v2/token/create") {
                return Ok(Response::from_json(201, &token));
            } else if req.url.ends_with("/v1/order") {
                &order
            } else if req.url.ends_with("/v1/hpayment") {
                &forward
            } else if req.url.contains("/maintenance/") {
                &operation
            } else if req.url.contains("?orderid=") {
                &by_order
            } else {
                &by_reference
            };
            Ok(Response::from_json(200, body))
        });
    }
    let authorized = |minor| money(minor, "EUR");
    // The order's answer.
    let outcome = Hipay::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, authorized(12585)),
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized, "{order}");
    assert_eq!(outcome.amount_authorized, Some(12585));
    assert!(outcome.three_ds.is_some(), "{outcome:?}");
    // The hosted page's.
    let mut hosted = authorize_request(CaptureMethod::Automatic, authorized(12585));
    hosted.payment_method = PaymentMethod::Other(OtherMethod {
        kind: HOSTED_PAGE.into(),
        details_json: "{}".into(),
    });
    let outcome = Hipay::authorize(account(), hosted).unwrap();
    assert!(
        matches!(outcome.status, PaymentStatus::RequiresAction(_)),
        "{outcome:?}"
    );
    // The lookups' (by reference for sync and complete, by order without one).
    let mut payment = payment_ref("EUR", 12585);
    assert_eq!(
        Hipay::sync(account(), payment.clone()).unwrap().status,
        PaymentStatus::Authorized
    );
    payment.connector_reference = None;
    assert_eq!(
        Hipay::sync(account(), payment).unwrap().status,
        PaymentStatus::Authorized
    );
    // The maintenance answer, after the lookup, for each operation.
    let mut capture = capture_request(10, "k-doc-capture");
    capture.payment.amount = authorized(12585);
    let outcome = Hipay::capture(account(), capture).unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded, "{operation}");
    let mut refund = refund_request(10, "k-doc-refund");
    refund.payment.amount = authorized(12585);
    assert!(Hipay::refund(account(), refund).is_ok());
    let outcome = Hipay::cancel(
        account(),
        CancelRequest {
            payment: payment_ref("EUR", 12585),
            idempotency_key: "k-doc-cancel".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);

    // The documented error answers are read as errors of a defined kind:
    // HiPay's code, or the credentials.
    let mut errors = 0;
    for (status, code) in [("400", 400u16), ("401", 401), ("403", 403), ("404", 404)] {
        for path in ["/{token}", "/"] {
            for method in ["get", "delete"] {
                if let Some(body) = documented_answer(vault, method, path, status) {
                    let e = error_from_response(&Response::from_json(code, &body));
                    let expected = if code == 401 || code == 403 {
                        ErrorKind::InvalidConfig
                    } else {
                        ErrorKind::Rejected
                    };
                    assert_eq!(e.kind, expected, "{method} {path} {status}: {body}");
                    errors += 1;
                }
            }
        }
    }
    assert!(errors >= 4, "{errors} documented error answers");
}
