//! Native unit tests: the SDK's test kit stands in for the host; each test
//! scripts Sips' answers and checks what the connector sent and returned.

use super::*;
use crate::seal::{json_seal, json_seal_string, seal as compute_seal, verify};
use passerelle_connector_sdk::crypto;
use passerelle_connector_sdk::http::{form_encode, HttpError};
use passerelle_connector_sdk::testing::MockHost;
use serde_json::{json, Value};

/// The sandbox serves both Sips interfaces under one prefix.
const BASE: &str = "http://127.0.0.1:4242/sips";
const MERCHANT: &str = "002001000000001";
/// Worldline's public simulation key.
const SECRET: &str = "002001000000001_KEY1";
const REFERENCE: &str = "pay3kTMd0qN5vB8xZ1cR7wYhL2e";

fn account() -> Account {
    Account {
        id: "acc_demo_sips".into(),
        environment: Environment::Test,
        base_url: Some(format!("{BASE}/")),
        config: vec![
            ("merchant_id".into(), MERCHANT.into()),
            ("secret_key".into(), SECRET.into()),
            ("key_version".into(), "1".into()),
        ],
    }
}

fn account_with(name: &str, value: &str) -> Account {
    let mut a = account();
    a.config.retain(|(k, _)| k != name);
    a.config.push((name.into(), value.into()));
    a
}

fn authorize_request(capture: CaptureMethod, amount: Money) -> AuthorizeRequest {
    AuthorizeRequest {
        payment_id: "pay_3kTMd0qN5vB8xZ1cR7wYhL2e".into(),
        reference: "order-42".into(),
        amount,
        capture_method: capture,
        capture_delay_hours: None,
        payment_method: PaymentMethod::Card(Card {
            number: "4111111111111111".into(),
            exp_month: 3,
            exp_year: 2030,
            cvc: Some("737".into()),
            holder_name: None,
        }),
        shopper: None,
        return_url: "https://host.example/v1/payments/pay_3kTMd0qN5vB8xZ1cR7wYhL2e/return".into(),
        notification_url: "https://host.example/v1/webhooks/acc_demo_sips".into(),
        idempotency_key: "psr-1".into(),
        metadata: Vec::new(),
    }
}

fn payment_ref() -> PaymentRef {
    PaymentRef {
        payment_id: "pay_3kTMd0qN5vB8xZ1cR7wYhL2e".into(),
        reference: "order-42".into(),
        amount: Money::new(1050, "EUR"),
        connector_reference: Some(REFERENCE.into()),
        connector_data: None,
    }
}

/// A Sips answer sealed with HMAC-SHA256, as Sips seals them.
fn sealed(mut answer: Value) -> Value {
    let seal = json_seal(Algorithm::HmacSha256, SECRET, &answer);
    answer["seal"] = json!(seal);
    answer
}

/// A mock host whose Sips answers every request with `answer` (HTTP 200).
fn sips_answers(answer: Value) -> MockHost {
    let host = MockHost::new();
    host.on_http(move |_| Ok(Response::from_json(200, &answer)));
    host
}

fn body_of(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

/// The seal a request must carry, recomputed independently of `seal_request`.
fn assert_request_sealed(body: &Value, algorithm: Algorithm) {
    let given = body["seal"].as_str().unwrap();
    let data = json_seal_string(body);
    assert!(
        verify(algorithm, SECRET, &data, given),
        "bad seal on {body}"
    );
    assert_eq!(body["merchantId"], MERCHANT);
    assert_eq!(body["keyVersion"], 1);
    assert_eq!(body["sealAlgorithm"], algorithm.name());
}

/// `Data` as Sips writes it, for a payment of `reference`.
fn data(code: &str, capture_mode: &str, extra: &[(&str, &str)]) -> String {
    let mut fields = vec![
        ("amount", "1050"),
        ("currencyCode", "978"),
        ("merchantId", MERCHANT),
        ("transactionReference", REFERENCE),
        ("keyVersion", "1"),
        ("responseCode", code),
        ("acquirerResponseCode", if code == "00" { "00" } else { "" }),
        ("authorisationId", if code == "00" { "123456" } else { "" }),
        ("captureMode", capture_mode),
        ("captureDay", "0"),
        ("holderAuthentStatus", "NOT_PARTICIPATING"),
        ("transactionDateTime", "2026-11-27T15:05:25+00:00"),
        ("maskedPan", "############1111"),
        ("orderChannel", "INTERNET"),
        ("paymentMeanBrand", "VISA"),
        ("paymentMeanType", "CARD"),
    ];
    for (k, v) in extra {
        match fields.iter_mut().find(|(name, _)| name == k) {
            Some(f) => f.1 = v,
            None => fields.push((k, v)),
        }
    }
    fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("|")
}

/// The form Sips posts back: `Data` sealed with `algorithm`.
fn response_form(data: &str, algorithm: Algorithm) -> Vec<(String, String)> {
    vec![
        ("Data".into(), data.into()),
        ("Seal".into(), compute_seal(algorithm, SECRET, data)),
        ("InterfaceVersion".into(), "HP_2.20".into()),
        ("Encode".into(), String::new()),
    ]
}

fn complete_request(params: Vec<(String, String)>) -> CompleteRequest {
    CompleteRequest {
        payment: payment_ref(),
        params,
    }
}

fn notification(params: &[(String, String)]) -> Notification {
    Notification {
        method: "POST".into(),
        uri: "/v1/webhooks/acc_demo_sips".into(),
        headers: vec![HttpHeader {
            name: "Content-Type".into(),
            value: "application/x-www-form-urlencoded".into(),
        }],
        body: form_encode(params).into_bytes(),
    }
}

// ------------------------------------------------------------ known answers

#[test]
fn data_seal_matches_worldlines_known_answers() {
    // Worldline's own test vectors for the SHA-256(Data + secret key) seal:
    // worldline/Sips-International-non-FR-PHPlibrary,
    // tests/Sips/Tests/ShaComposer/AllParametersShaComposerTest.php
    // (fields joined as `key=value|...` in the given order).
    let data1 = "amount=1234|currencyCode=978|merchantId=002001000000001|normalReturnUrl=http://www.normalreturnurl.com|transactionReference=marlon1|keyVersion=1";
    assert_eq!(
        compute_seal(Algorithm::Sha256, SECRET, data1),
        "65421e720d149e8a79bdc9a29f6c462ed199b78f32e558c6c5fc15f0084e5384"
    );
    let data2 = "amount=9876|currencyCode=978|merchantId=002001000000001|normalReturnUrl=http://www.normalreturnurl.com|transactionReference=marlon2|keyVersion=1|customerLanguage=nl";
    assert_eq!(
        compute_seal(Algorithm::Sha256, SECRET, data2),
        "6f3a60affb6002355cf214f7e630fa5faba993ddcb47c2d1d942773e4c63f896"
    );
    // Uppercase hex is accepted, a changed byte is not.
    assert!(verify(
        Algorithm::Sha256,
        SECRET,
        data1,
        "65421E720D149E8A79BDC9A29F6C462ED199B78F32E558C6C5FC15F0084E5384"
    ));
    assert!(!verify(
        Algorithm::Sha256,
        SECRET,
        &data1.replace("1234", "1235"),
        "65421e720d149e8a79bdc9a29f6c462ed199b78f32e558c6c5fc15f0084e5384"
    ));
}

#[test]
fn hmac_seal_matches_worldlines_known_answer() {
    // worldline/sips-sdk-nodejs,
    // packages/sips-payment-sdk/test/SealCalculator.test.js ("calculateSeal").
    assert_eq!(
        compute_seal(
            Algorithm::HmacSha256,
            "superSafeSecretKey",
            "This is a test!"
        ),
        "198e5f278e3f8548e174e84492953c4871732278b7e2aa2cbf20bb1ab85914ea"
    );
}

#[test]
fn json_seal_string_matches_worldlines_examples() {
    // worldline/sips-sdk-nodejs,
    // packages/sips-payment-sdk/test/SealCalculator.test.js ("getSealString"):
    // values by member name, containers flattened in place, lists in order,
    // keyVersion left out.
    let mut request = json!({
        "amount": 10,
        "customerId": "customerId",
        "automaticResponseUrl": "http://test.com",
        "templateName": "customCSS.css",
        "interfaceVersion": "IR_WS_2.19",
        "keyVersion": 200,
    });
    assert_eq!(
        json_seal_string(&request),
        "10http://test.comcustomerIdIR_WS_2.19customCSS.css"
    );
    request["currencyCode"] = json!("978");
    assert_eq!(
        json_seal_string(&request),
        "10http://test.com978customerIdIR_WS_2.19customCSS.css"
    );
    request.as_object_mut().unwrap().remove("currencyCode");
    request["paymentMeanBrandList"] = json!(["BCMC", "VISA"]);
    assert_eq!(
        json_seal_string(&request),
        "10http://test.comcustomerIdIR_WS_2.19BCMCVISAcustomCSS.css"
    );
    request
        .as_object_mut()
        .unwrap()
        .remove("paymentMeanBrandList");
    request["customerContact"] = json!({"lastname": "lastname", "firstname": "firstname"});
    assert_eq!(
        json_seal_string(&request),
        "10http://test.comfirstnamelastnamecustomerIdIR_WS_2.19customCSS.css"
    );
    // seal and sealAlgorithm are left out too; null is nothing, booleans spelled.
    let other = json!({"b": true, "a": null, "seal": "x", "sealAlgorithm": "HMAC-SHA-256", "c": 1});
    assert_eq!(json_seal_string(&other), "true1");
}

// ------------------------------------------------------------ describe/config

#[test]
fn describe_matches_the_manifest() {
    let info = Sips::describe();
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
    assert!(info.currencies.contains(&"EUR".to_string()));
    assert!(info.currencies.contains(&"JPY".to_string()));
    assert!(info.currencies.contains(&"KWD".to_string()));
    let fields: Vec<_> = info
        .credential_fields
        .iter()
        .map(|f| (f.name.as_str(), f.secret, f.required))
        .collect();
    assert_eq!(
        fields,
        vec![
            ("merchant_id", false, true),
            ("secret_key", true, true),
            ("key_version", false, true),
            ("seal_algorithm", false, false),
            ("capture_day_limit", false, false),
            ("response_encoding", false, false),
        ]
    );
}

#[test]
fn validate_config_names_the_bad_field() {
    assert_eq!(Sips::validate_config(account()), Ok(()));
    assert_eq!(
        Sips::validate_config(account_with("seal_algorithm", "SHA-256")),
        Ok(())
    );
    let field_of = |account: Account| Sips::validate_config(account).unwrap_err().field;
    for name in ["merchant_id", "secret_key", "key_version"] {
        let mut a = account();
        a.config.retain(|(k, _)| k != name);
        assert_eq!(field_of(a).as_deref(), Some(name));
    }
    assert_eq!(
        field_of(account_with("key_version", "v1")).as_deref(),
        Some("key_version")
    );
    assert_eq!(
        field_of(account_with("seal_algorithm", "MD5")).as_deref(),
        Some("seal_algorithm")
    );
    for limit in ["1", "6", "99"] {
        assert_eq!(
            Sips::validate_config(account_with("capture_day_limit", limit)),
            Ok(())
        );
    }
    for limit in ["0", "100", "six", "-1", "2.5"] {
        assert_eq!(
            field_of(account_with("capture_day_limit", limit)).as_deref(),
            Some("capture_day_limit"),
            "{limit}"
        );
    }
    for encoding in ["base64", "base64url", "BASE64URL"] {
        assert_eq!(
            Sips::validate_config(account_with("response_encoding", encoding)),
            Ok(())
        );
    }
    assert_eq!(
        field_of(account_with("response_encoding", "hex")).as_deref(),
        Some("response_encoding")
    );
    let mut a = account();
    a.base_url = Some("ftp://x".into());
    assert_eq!(field_of(a).as_deref(), Some("base_url"));
}

#[test]
fn environments_pick_the_documented_hosts() {
    // Office JSON has a TEST host and no simulation host (Worldline's data
    // dictionary, worldline/sips-sdk-java OfficeEnvironment); the test
    // Paypage is the one on the same platform, so that the Office knows
    // the transactions it made.
    let host = sips_answers(json!({"responseCode": "99"}));
    for (env, office, paypage) in [
        (
            Environment::Test,
            "https://office-server.test.sips-services.com",
            "https://payment-webinit.test.sips-services.com",
        ),
        (
            Environment::Live,
            "https://office-server.sips-services.com",
            "https://payment-webinit.sips-services.com",
        ),
    ] {
        let mut a = account();
        a.base_url = None;
        a.environment = env;
        let _ = Sips::sync(a.clone(), payment_ref());
        assert_eq!(
            host.last_request().unwrap().url,
            format!("{office}/rs-services/v2/diagnostic/getTransactionData")
        );
        let _ = Sips::authorize(
            a,
            authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
        );
        assert_eq!(
            host.last_request().unwrap().url,
            format!("{paypage}/rs-services/v2/paymentInit")
        );
    }
    // The manifest lets the connector reach exactly these hosts.
    let manifest = include_str!("../manifest.toml");
    for allowed in [
        "\"payment-webinit.test.sips-services.com\"",
        "\"office-server.test.sips-services.com\"",
        "\"payment-webinit.sips-services.com\"",
        "\"office-server.sips-services.com\"",
    ] {
        assert!(manifest.contains(allowed), "{allowed}");
    }
    assert!(!manifest.contains("office-server.simu"));
}

// ------------------------------------------------------------------ authorize

fn init_ok() -> Value {
    sealed(json!({
        "redirectionStatusCode": "00",
        "redirectionStatusMessage": "Request accepted",
        "redirectionUrl": format!("{BASE}/payment"),
        "redirectionData": "tok_123",
        "redirectionVersion": "IR_WS_2.0",
    }))
}

#[test]
fn authorize_sends_a_sealed_payment_init_and_redirects() {
    let host = sips_answers(init_ok());
    let outcome = Sips::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
    )
    .unwrap();

    let sent = host.last_request().unwrap();
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.url, format!("{BASE}/rs-services/v2/paymentInit"));
    assert_eq!(sent.header_value("content-type"), Some("application/json"));
    let body = body_of(&sent);
    let mut expected = json!({
        "amount": 1050,
        "automaticResponseUrl": "https://host.example/v1/webhooks/acc_demo_sips",
        // Six days to validate (the default capture day limit), not 0:
        // with 0 the authorization would expire at that night's remittance.
        "captureDay": 6,
        "captureMode": "VALIDATION",
        "currencyCode": "978",
        "interfaceVersion": "IR_WS_2.20",
        "keyVersion": 1,
        "merchantId": MERCHANT,
        "normalReturnUrl": "https://host.example/v1/payments/pay_3kTMd0qN5vB8xZ1cR7wYhL2e/return",
        "orderChannel": "INTERNET",
        "orderId": "order-42",
        "sealAlgorithm": "HMAC-SHA-256",
        "transactionReference": REFERENCE,
    });
    // The exact sealed string: values ordered by member name.
    assert_eq!(
        json_seal_string(&expected),
        format!(
            "1050https://host.example/v1/webhooks/acc_demo_sips6VALIDATION978IR_WS_2.20{MERCHANT}https://host.example/v1/payments/pay_3kTMd0qN5vB8xZ1cR7wYhL2e/returnINTERNETorder-42{REFERENCE}"
        )
    );
    expected["seal"] = json!(crypto::hex_lower(crypto::hmac_sha256(
        SECRET,
        json_seal_string(&expected)
    )));
    assert_eq!(body, expected);
    assert_request_sealed(&body, Algorithm::HmacSha256);
    // Card data never leaves for Sips: the shopper types it on Sips' page.
    assert!(!sent.text().contains("4111"));

    assert_eq!(
        outcome.status,
        PaymentStatus::RequiresAction(Redirect {
            url: format!("{BASE}/payment"),
            method: HttpMethod::Post,
            form: vec![
                ("redirectionVersion".into(), "IR_WS_2.0".into()),
                ("redirectionData".into(), "tok_123".into()),
            ],
        })
    );
    assert_eq!(outcome.connector_reference.as_deref(), Some(REFERENCE));
    assert_eq!(outcome.provider_status.as_deref(), Some("00"));
    let stored = ConnectorData::parse(outcome.connector_data.as_deref());
    assert_eq!(stored.seal_algorithm.as_deref(), Some("HMAC-SHA-256"));
    assert_eq!(stored.redirection_data.as_deref(), Some("tok_123"));
}

#[test]
fn automatic_capture_is_author_capture_day_zero() {
    let host = sips_answers(init_ok());
    Sips::authorize(
        account(),
        authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR")),
    )
    .unwrap();
    let body = body_of(&host.last_request().unwrap());
    assert_eq!(body["captureMode"], "AUTHOR_CAPTURE");
    assert_eq!(body["captureDay"], 0);
}

#[test]
fn manual_capture_gives_sips_the_accounts_capture_window() {
    let host = sips_answers(init_ok());
    for (limit, day) in [
        (None, 6),
        (Some("1"), 1),
        (Some("10"), 10),
        (Some("99"), 99),
    ] {
        let account = match limit {
            Some(limit) => account_with("capture_day_limit", limit),
            None => account(),
        };
        Sips::authorize(
            account,
            authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
        )
        .unwrap();
        let body = body_of(&host.last_request().unwrap());
        assert_eq!(body["captureMode"], "VALIDATION");
        assert_eq!(body["captureDay"], day, "{limit:?}");
        assert_request_sealed(&body, Algorithm::HmacSha256);
    }
}

#[test]
fn capabilities_follow_the_capture_day_limit() {
    let caps = Sips::capabilities(account()).unwrap();
    assert_eq!(
        caps.authorization_validity,
        vec![AuthorizationValidity {
            payment_method: "*".into(),
            hours: 6 * 24,
        }]
    );
    assert!(!caps.multiple_partial_captures);
    assert_eq!(caps.native_capture_delay_max_hours, Some(6 * 24));
    let caps = Sips::capabilities(account_with("capture_day_limit", "30")).unwrap();
    assert_eq!(caps.authorization_validity[0].hours, 720);
    assert_eq!(caps.native_capture_delay_max_hours, Some(720));
    let e = Sips::capabilities(account_with("capture_day_limit", "0")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("capture_day_limit"));
}

#[test]
fn a_native_capture_delay_is_author_capture_with_whole_days() {
    let host = sips_answers(init_ok());
    for (hours, day) in [(0, 0), (1, 1), (24, 1), (25, 2), (48, 2), (144, 6)] {
        let mut request = authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR"));
        request.capture_delay_hours = Some(hours);
        Sips::authorize(account(), request).unwrap();
        let body = body_of(&host.last_request().unwrap());
        assert_eq!(body["captureMode"], "AUTHOR_CAPTURE", "{hours} h");
        assert_eq!(body["captureDay"], day, "{hours} h");
    }
    // Longer than the account's window: refused before any call.
    let before = host.requests().len();
    let mut request = authorize_request(CaptureMethod::Automatic, Money::new(1050, "EUR"));
    request.capture_delay_hours = Some(145);
    let e = Sips::authorize(account(), request.clone()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert_eq!(e.field.as_deref(), Some("capture_delay_hours"));
    assert_eq!(host.requests().len(), before);
    Sips::authorize(account_with("capture_day_limit", "7"), request).unwrap();
    assert_eq!(body_of(&host.last_request().unwrap())["captureDay"], 7);
}

#[test]
fn the_response_encoding_is_asked_when_configured() {
    let host = sips_answers(init_ok());
    Sips::authorize(
        account(),
        authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
    )
    .unwrap();
    assert!(body_of(&host.last_request().unwrap())
        .get("responseEncoding")
        .is_none());
    for encoding in ["base64", "base64url"] {
        Sips::authorize(
            account_with("response_encoding", encoding),
            authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
        )
        .unwrap();
        let body = body_of(&host.last_request().unwrap());
        assert_eq!(body["responseEncoding"], encoding);
        assert_request_sealed(&body, Algorithm::HmacSha256);
    }
}

#[test]
fn sha256_seal_algorithm_is_used_when_configured() {
    let host = MockHost::new();
    host.on_http(|_| {
        let mut answer = json!({
            "redirectionStatusCode": "00",
            "redirectionUrl": format!("{BASE}/payment"),
            "redirectionData": "tok",
            "redirectionVersion": "IR_WS_2.0",
        });
        answer["seal"] = json!(json_seal(Algorithm::Sha256, SECRET, &answer));
        Ok(Response::from_json(200, &answer))
    });
    let outcome = Sips::authorize(
        account_with("seal_algorithm", "SHA-256"),
        authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
    )
    .unwrap();
    let body = body_of(&host.last_request().unwrap());
    assert_request_sealed(&body, Algorithm::Sha256);
    let data = json_seal_string(&body);
    assert_eq!(
        body["seal"],
        crypto::hex_lower(crypto::sha256(format!("{data}{SECRET}")))
    );
    assert!(matches!(outcome.status, PaymentStatus::RequiresAction(_)));
}

#[test]
fn amounts_are_minor_units_with_numeric_currency_codes() {
    for (minor, currency, numeric) in [
        (1050, "EUR", "978"),   // 2 decimals: 10.50
        (1000, "JPY", "392"),   // 0 decimals: 1000 yen
        (12_345, "KWD", "414"), // 3 decimals: 12.345
        (7, "AUD", "036"),      // leading zero kept
        (999_999_999_999, "TND", "788"),
    ] {
        let host = sips_answers(init_ok());
        Sips::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, Money::new(minor, currency)),
        )
        .unwrap();
        let body = body_of(&host.last_request().unwrap());
        assert_eq!(body["amount"], minor, "{currency}");
        assert_eq!(body["currencyCode"], numeric, "{currency}");
    }
}

#[test]
fn unsupported_currencies_and_amounts_are_refused_before_any_call() {
    let host = sips_answers(init_ok());
    for currency in ["VND", "XXX", "eur", ""] {
        let e = Sips::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, Money::new(100, currency)),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest, "{currency}");
        assert_eq!(e.field.as_deref(), Some("currency"));
    }
    for amount in [0, 1_000_000_000_000] {
        let e = Sips::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, Money::new(amount, "EUR")),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("amount"));
    }
    let mut request = authorize_request(CaptureMethod::Manual, Money::new(100, "EUR"));
    request.payment_method = PaymentMethod::Other(OtherMethod {
        kind: "paypal".into(),
        details_json: "{}".into(),
    });
    let e = Sips::authorize(account(), request).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("payment_method"));
    assert!(host.requests().is_empty());
}

#[test]
fn long_or_odd_references_are_made_sips_safe() {
    assert_eq!(
        transformers::transaction_reference("pay_3kTMd0qN5vB8xZ1cR7wYhL2e"),
        REFERENCE
    );
    let long = transformers::transaction_reference(&"x".repeat(80));
    assert_eq!(long.len(), 35);
    assert!(long.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(long, transformers::transaction_reference(&"x".repeat(80)));
    // An order reference Sips cannot carry in `Data` is left out.
    let host = sips_answers(init_ok());
    let mut request = authorize_request(CaptureMethod::Manual, Money::new(100, "EUR"));
    request.reference = "a|b=c".into();
    Sips::authorize(account(), request).unwrap();
    assert!(body_of(&host.last_request().unwrap())
        .get("orderId")
        .is_none());
}

#[test]
fn payment_init_errors_are_classified() {
    let cases = [
        ("03", ErrorKind::InvalidConfig, Some("merchant_id")),
        ("34", ErrorKind::InvalidConfig, Some("secret_key")),
        ("12", ErrorKind::Rejected, None),
        ("30", ErrorKind::Rejected, None),
        ("94", ErrorKind::Rejected, None),
        ("99", ErrorKind::Retryable, None),
    ];
    for (code, kind, field) in cases {
        // Error answers may be unsealed.
        let _host = sips_answers(json!({
            "redirectionStatusCode": code,
            "redirectionStatusMessage": "Invalid field value: currencyCode",
        }));
        let e = Sips::authorize(
            account(),
            authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR")),
        )
        .unwrap_err();
        assert_eq!((e.kind, e.code.as_str()), (kind, code), "{code}");
        assert_eq!(e.field.as_deref(), field, "{code}");
    }
}

#[test]
fn transport_failures_and_garbage_are_retryable() {
    let request = || authorize_request(CaptureMethod::Manual, Money::new(1050, "EUR"));
    let host = MockHost::new();
    host.on_http(|_| Err(HttpError::Timeout));
    let e = Sips::authorize(account(), request()).unwrap_err();
    assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Retryable, "timeout"));

    host.on_http(|_| Ok(Response::new(500, "<html>Internal Server Error</html>")));
    let e = Sips::authorize(account(), request()).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "http_500")
    );

    host.on_http(|_| Ok(Response::new(200, "{not json")));
    let e = Sips::authorize(account(), request()).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "invalid_response")
    );

    host.on_http(|_| Ok(Response::new(404, "no")));
    let e = Sips::authorize(account(), request()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Rejected);

    // A successful answer with a wrong or missing seal is not trusted.
    let mut forged = init_ok();
    forged["redirectionUrl"] = json!("https://evil.example/payment");
    host.on_http(move |_| Ok(Response::from_json(200, &forged)));
    let e = Sips::authorize(account(), request()).unwrap_err();
    assert_eq!(
        (e.kind, e.code.as_str()),
        (ErrorKind::Retryable, "invalid_response_seal")
    );
    let mut unsealed = init_ok();
    unsealed.as_object_mut().unwrap().remove("seal");
    host.on_http(move |_| Ok(Response::from_json(200, &unsealed)));
    let e = Sips::authorize(account(), request()).unwrap_err();
    assert_eq!(e.code, "invalid_response_seal");
}

// ------------------------------------------------------------------- complete

#[test]
fn complete_maps_the_verified_payment_response() {
    let _host = MockHost::new();
    let outcome = Sips::complete(
        account(),
        complete_request(response_form(
            &data("00", "VALIDATION", &[]),
            Algorithm::HmacSha256,
        )),
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(outcome.amount_authorized, Some(1050));
    assert_eq!(outcome.provider_status.as_deref(), Some("00"));
    assert_eq!(outcome.connector_reference.as_deref(), Some(REFERENCE));

    // SHA-256 Data seal (the default when HMAC was not requested).
    let outcome = Sips::complete(
        account(),
        complete_request(response_form(
            &data("00", "AUTHOR_CAPTURE", &[]),
            Algorithm::Sha256,
        )),
    )
    .unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(outcome.amount_captured, Some(1050));
}

#[test]
fn every_response_code_maps_to_a_status() {
    let refused = [
        "02", "03", "05", "11", "12", "14", "24", "25", "30", "34", "40", "51", "54", "63", "75",
        "90", "94", "97", "99",
    ];
    for code in refused {
        let form = response_form(
            &data(code, "VALIDATION", &[("acquirerResponseCode", "05")]),
            Algorithm::HmacSha256,
        );
        let outcome = Sips::complete(account(), complete_request(form)).unwrap();
        match outcome.status {
            PaymentStatus::Refused(r) => {
                assert_eq!(r.code, code);
                assert!(r.reason.contains("acquirer code 05"), "{}", r.reason);
                assert!(!r.reason.starts_with("unknown response code"), "{code}");
            }
            other => panic!("{code}: {other:?}"),
        }
        assert_eq!(outcome.provider_status.as_deref(), Some(code));
    }
    let status_of = |code: &str, mode: &str| {
        let form = response_form(&data(code, mode, &[]), Algorithm::HmacSha256);
        Sips::complete(account(), complete_request(form)).map(|o| o.status)
    };
    assert_eq!(status_of("60", "VALIDATION"), Ok(PaymentStatus::Pending));
    assert_eq!(status_of("17", "VALIDATION"), Ok(PaymentStatus::Canceled));
    assert_eq!(status_of("00", "IMMEDIATE"), Ok(PaymentStatus::Captured));
    let fraud = status_of("34", "AUTHOR_CAPTURE").unwrap();
    assert!(matches!(fraud, PaymentStatus::Refused(r) if r.reason == "fraud suspected"));
    // A code this connector does not know: ask again rather than guess.
    assert!(status_of("42", "VALIDATION").unwrap_err().is_retryable());
}

#[test]
fn complete_rejects_forged_or_mixed_up_responses() {
    let _host = MockHost::new();
    let good = data("00", "VALIDATION", &[]);
    // The shopper edits the amount or the code: the seal no longer matches.
    let mut forged = response_form(&good, Algorithm::HmacSha256);
    forged[0].1 = good.replace("responseCode=00", "responseCode=00|x=");
    let e = Sips::complete(account(), complete_request(forged)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    // A seal made with another key.
    let mut other_key = response_form(&good, Algorithm::HmacSha256);
    other_key[1].1 = crypto::hex_lower(crypto::hmac_sha256("another_key", &good));
    let e = Sips::complete(account(), complete_request(other_key)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    // Another payment's genuine response.
    let other = data("00", "VALIDATION", &[("transactionReference", "payOTHER")]);
    let e = Sips::complete(
        account(),
        complete_request(response_form(&other, Algorithm::HmacSha256)),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("transactionReference"));
    // Another merchant's.
    let other = data("00", "VALIDATION", &[("merchantId", "002001000000002")]);
    let e = Sips::complete(
        account(),
        complete_request(response_form(&other, Algorithm::HmacSha256)),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("merchantId"));
    // No seal at all.
    let e = Sips::complete(
        account(),
        complete_request(vec![("Data".into(), good.clone())]),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
}

#[test]
fn complete_reads_base64_data() {
    let _host = MockHost::new();
    let encoded = crypto::base64_encode(data("05", "VALIDATION", &[]));
    let mut form = response_form(&encoded, Algorithm::HmacSha256);
    form[3].1 = "base64".into();
    let outcome = Sips::complete(account(), complete_request(form)).unwrap();
    assert!(matches!(outcome.status, PaymentStatus::Refused(r) if r.code == "05"));
}

#[test]
fn complete_reads_base64url_data_sealed_as_posted() {
    let _host = MockHost::new();
    // `?>` in the data makes the two alphabets differ (`/` vs `_`).
    let plain = data("00", "VALIDATION", &[("returnContext", "a?>b??>")]);
    let encoded = crypto::base64url_encode(&plain);
    assert!(encoded.contains(['-', '_']), "{encoded}");
    // The seal covers Data as posted: the encoded text.
    let mut form = response_form(&encoded, Algorithm::Sha256);
    form[3].1 = "base64url".into();
    let outcome = Sips::complete(account(), complete_request(form.clone())).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert_eq!(outcome.amount_authorized, Some(1050));
    // Padded base64url too.
    let padded = format!("{encoded}{}", "=".repeat((4 - encoded.len() % 4) % 4));
    let mut form = response_form(&padded, Algorithm::HmacSha256);
    form[3].1 = "base64url".into();
    assert_eq!(
        Sips::complete(account(), complete_request(form)).map(|o| o.status),
        Ok(PaymentStatus::Authorized)
    );
    // A seal over the decoded text does not match.
    let mut form = response_form(&encoded, Algorithm::Sha256);
    form[1].1 = compute_seal(Algorithm::Sha256, SECRET, &plain);
    form[3].1 = "base64url".into();
    let e = Sips::complete(account(), complete_request(form)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidSignature);
    // The automatic response likewise.
    let mut form = response_form(&encoded, Algorithm::HmacSha256);
    form[3].1 = "base64url".into();
    let outcome = Sips::handle_notification(account(), notification(&form)).unwrap();
    assert_eq!(
        outcome.events[0].kind,
        NotificationEventKind::Payment(PaymentStatus::Authorized)
    );
    // An encoding Sips does not have.
    let mut form = response_form(&encoded, Algorithm::HmacSha256);
    form[3].1 = "hex".into();
    let e = Sips::complete(account(), complete_request(form)).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("Encode"));
}

#[test]
fn complete_reads_a_payment_response_recorded_by_worldlines_sdks() {
    let _host = MockHost::new();
    // worldline/sips-sdk-nodejs test/PaypageClient.test.js (the same Data in
    // worldline/sips-sdk-java PaypageClientTest): a simulation answer with
    // 3-D Secure, sealed SHA-256(Data + key) with the simulation key.
    let data = "captureDay=0|captureMode=AUTHOR_CAPTURE|currencyCode=978|merchantId=002001000000001|orderChannel=INTERNET|responseCode=00|transactionDateTime=2018-02-06T07:54:23+01:00|transactionReference=b4fb98a9c2c|keyVersion=1|acquirerResponseCode=00|amount=2|authorisationId=12345|guaranteeIndicator=Y|cardCSCResultCode=4D|panExpiryDate=201902|paymentMeanBrand=VISA|paymentMeanType=CARD|customerIpAddress=194.78.195.168|maskedPan=4500#############01|holderAuthentRelegation=N|holderAuthentStatus=3D_SUCCESS|tokenPan=g011040a730424d1ba6|transactionOrigin=INTERNET|paymentPattern=ONE_SHOT";
    let seal = "56bddfce68695b9b8a9de51c426aae31bb303fb15570f343975eaa3bd33c8c59";
    let mut request = complete_request(vec![
        ("Data".into(), data.into()),
        ("Seal".into(), seal.into()),
        ("InterfaceVersion".into(), "HP_2.20".into()),
    ]);
    request.payment.connector_reference = Some("b4fb98a9c2c".into());
    let outcome = Sips::complete(account(), request).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Captured);
    assert_eq!(outcome.amount_captured, Some(2));
    assert_eq!(
        outcome.three_ds,
        Some(ThreeDsResult {
            status: ThreeDsStatus::Authenticated,
            version: None,
            liability_shift: Some(true),
            eci: None,
        })
    );
    assert_eq!(outcome.capture_before_ms, None);
}

#[test]
fn three_d_secure_results_come_with_the_payment() {
    let _host = MockHost::new();
    let three_ds_of = |extra: &[(&str, &str)]| {
        let form = response_form(&data("00", "VALIDATION", extra), Algorithm::HmacSha256);
        Sips::complete(account(), complete_request(form))
            .unwrap()
            .three_ds
    };
    use ThreeDsStatus::*;
    for (status, relegation, guarantee, expected, shift) in [
        ("3D_SUCCESS", "N", "Y", Authenticated, Some(true)),
        ("SUCCESS", "N", "Y", Authenticated, Some(true)),
        ("3D_ATTEMPT", "N", "Y", Attempted, Some(true)),
        ("3D_NOTENROLLED", "N", "N", NotEnrolled, Some(false)),
        ("NOT_ENROLLED", "N", "", NotEnrolled, None),
        ("3D_FAILURE", "N", "N", Failed, Some(false)),
        ("3D_ABORT", "N", "", Failed, None),
        ("CANCEL", "N", "", Failed, None),
        ("3D_ERROR", "Y", "", Unavailable, Some(false)),
        ("3D_BYPASS", "N", "N", NotPerformed, Some(false)),
        ("NOT_PARTICIPATING", "N", "U", NotPerformed, None),
        ("NO_AUTHENT", "", "", NotPerformed, None),
        ("SSL", "", "", NotPerformed, None),
    ] {
        let result = three_ds_of(&[
            ("holderAuthentStatus", status),
            ("holderAuthentRelegation", relegation),
            ("guaranteeIndicator", guarantee),
            ("holderAuthentProgram", "3DS_V2"),
        ])
        .unwrap_or_else(|| panic!("{status}: no result"));
        assert_eq!(result.status, expected, "{status}");
        assert_eq!(result.liability_shift, shift, "{status}");
        assert_eq!(result.version.as_deref(), Some("2"), "{status}");
    }
    // Nothing said, or something new: no result rather than a guess.
    for status in ["", "NOT_SPECIFIED", "3D_SOMETHING_NEW"] {
        assert_eq!(three_ds_of(&[("holderAuthentStatus", status)]), None);
    }
    let v1 = three_ds_of(&[
        ("holderAuthentStatus", "3D_SUCCESS"),
        ("holderAuthentProgram", "3DS"),
    ])
    .unwrap();
    assert_eq!(v1.version.as_deref(), Some("1"));
    // A refused payment carries its failed authentication too.
    let form = response_form(
        &data("05", "VALIDATION", &[("holderAuthentStatus", "3D_FAILURE")]),
        Algorithm::HmacSha256,
    );
    let outcome = Sips::complete(account(), complete_request(form)).unwrap();
    assert!(matches!(outcome.status, PaymentStatus::Refused(_)));
    assert_eq!(outcome.three_ds.map(|t| t.status), Some(Failed));
}

/// 2026-12-03T23:00:00Z: the end of 3 December in Paris winter time.
const END_OF_DEC_3_PARIS_MS: u64 = 1_796_338_800_000;

#[test]
fn an_authorization_awaiting_validation_says_when_it_expires() {
    let _host = MockHost::new();
    let before_of = |code: &str, mode: &str, extra: &[(&str, &str)]| {
        let form = response_form(&data(code, mode, extra), Algorithm::HmacSha256);
        Sips::complete(account(), complete_request(form))
            .unwrap()
            .capture_before_ms
    };
    let paid = ("transactionDateTime", "2026-11-27T15:05:25+01:00");
    // captureLimitDate is the last day to validate; the window closes at
    // its end, in Sips' offset.
    assert_eq!(
        before_of(
            "00",
            "VALIDATION",
            &[paid, ("captureDay", "6"), ("captureLimitDate", "20261203")]
        ),
        Some(END_OF_DEC_3_PARIS_MS)
    );
    // Without captureLimitDate: the payment day plus captureDay.
    assert_eq!(
        before_of("00", "VALIDATION", &[paid, ("captureDay", "6")]),
        Some(END_OF_DEC_3_PARIS_MS)
    );
    // captureDay 0: the payment day's end.
    assert_eq!(
        before_of("00", "VALIDATION", &[paid, ("captureDay", "0")]),
        Some(END_OF_DEC_3_PARIS_MS - 6 * 86_400_000)
    );
    // Captured at once, delayed by Sips itself, or not authorized: no date.
    assert_eq!(before_of("00", "AUTHOR_CAPTURE", &[paid]), None);
    assert_eq!(
        before_of("00", "AUTHOR_CAPTURE", &[paid, ("captureDay", "3")]),
        None
    );
    assert_eq!(before_of("05", "VALIDATION", &[paid]), None);
}

#[test]
fn complete_without_data_asks_the_office_api() {
    let host = sips_answers(sealed(json!({
        "responseCode": "00",
        "transactionReference": REFERENCE,
        "transactionStatus": "TO_VALIDATE",
        "amount": 1050,
    })));
    let outcome = Sips::complete(account(), complete_request(Vec::new())).unwrap();
    assert_eq!(outcome.status, PaymentStatus::Authorized);
    assert!(host
        .last_request()
        .unwrap()
        .url
        .ends_with("/diagnostic/getTransactionData"));
}

// ----------------------------------------------------------- Office operations

#[test]
fn capture_validates_the_amount() {
    let host = sips_answers(sealed(json!({
        "responseCode": "00",
        "acquirerResponseCode": "00",
        "newAmount": 600,
        "newStatus": "CAPTURED",
        "operationDateTime": "2026-11-27T15:05:25+00:00",
    })));
    let outcome = Sips::capture(
        account(),
        CaptureRequest {
            payment: payment_ref(),
            amount: Money::new(600, "EUR"),
            final_capture: false,
            idempotency_key: "k".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.provider_status.as_deref(), Some("CAPTURED"));
    let sent = host.last_request().unwrap();
    assert_eq!(
        sent.url,
        format!("{BASE}/rs-services/v2/cashManagement/validate")
    );
    let body = body_of(&sent);
    assert_request_sealed(&body, Algorithm::HmacSha256);
    let mut expected = json!({
        "currencyCode": "978",
        "interfaceVersion": "CR_WS_2.3",
        "keyVersion": 1,
        "merchantId": MERCHANT,
        "operationAmount": 600,
        "sealAlgorithm": "HMAC-SHA-256",
        "transactionReference": REFERENCE,
    });
    assert_eq!(
        json_seal_string(&expected),
        format!("978CR_WS_2.3{MERCHANT}600{REFERENCE}")
    );
    expected["seal"] = body["seal"].clone();
    assert_eq!(body, expected);
}

fn capture(amount: Money) -> Result<ModificationOutcome> {
    Sips::capture(
        account(),
        CaptureRequest {
            payment: payment_ref(),
            amount,
            final_capture: true,
            idempotency_key: "k".into(),
        },
    )
}

#[test]
fn office_codes_are_classified() {
    for code in ["24", "25", "51", "05", "40", "94"] {
        let _host = sips_answers(sealed(json!({"responseCode": code})));
        let outcome = capture(Money::new(1050, "EUR")).unwrap();
        assert!(
            matches!(&outcome.status, ModificationStatus::Refused(r) if r.code == code),
            "{code}"
        );
        assert_eq!(outcome.provider_status.as_deref(), Some(code));
    }
    let _host = sips_answers(sealed(json!({"responseCode": "60"})));
    assert_eq!(
        capture(Money::new(1050, "EUR")).unwrap().status,
        ModificationStatus::Pending
    );
    for (code, kind) in [
        ("03", ErrorKind::InvalidConfig),
        ("34", ErrorKind::InvalidConfig),
        ("12", ErrorKind::Rejected),
        ("30", ErrorKind::Rejected),
        ("90", ErrorKind::Retryable),
        ("97", ErrorKind::Retryable),
        ("99", ErrorKind::Retryable),
        ("77", ErrorKind::Retryable),
    ] {
        // Unsealed, as Sips answers a request it could not authenticate.
        let _host =
            sips_answers(json!({"responseCode": code, "errorFieldName": "operationAmount"}));
        let e = capture(Money::new(1050, "EUR")).unwrap_err();
        assert_eq!(e.kind, kind, "{code}");
    }
    // A "done" that is not sealed by Sips is not believed.
    let _host = sips_answers(json!({"responseCode": "00"}));
    assert_eq!(
        capture(Money::new(1050, "EUR")).unwrap_err().code,
        "invalid_response_seal"
    );
}

#[test]
fn captures_and_refunds_stay_in_the_payments_currency() {
    let host = sips_answers(sealed(json!({"responseCode": "00"})));
    let e = capture(Money::new(1050, "USD")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("currency"));
    let e = capture(Money::new(1050, "VND")).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("currency"));
    assert!(host.requests().is_empty());
}

#[test]
fn cancel_cancels_the_whole_amount() {
    let host = sips_answers(sealed(json!({
        "responseCode": "00", "newAmount": 0, "newStatus": "CANCELLED",
    })));
    let outcome = Sips::cancel(
        account(),
        CancelRequest {
            payment: payment_ref(),
            idempotency_key: "k".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.provider_status.as_deref(), Some("CANCELLED"));
    let sent = host.last_request().unwrap();
    assert!(sent.url.ends_with("/cashManagement/cancel"));
    let body = body_of(&sent);
    assert_eq!(body["operationAmount"], 1050);
    assert_request_sealed(&body, Algorithm::HmacSha256);
}

#[test]
fn partial_refunds_carry_their_amount_and_the_hosts_id() {
    let host = sips_answers(sealed(json!({
        "responseCode": "00", "newAmount": 700, "newStatus": "TO_CREDIT",
    })));
    let outcome = Sips::refund(
        account(),
        RefundRequest {
            payment: payment_ref(),
            refund_id: "re_1".into(),
            amount: Money::new(350, "EUR"),
            reason: None,
            idempotency_key: "k".into(),
        },
    )
    .unwrap();
    assert_eq!(outcome.status, ModificationStatus::Succeeded);
    assert_eq!(outcome.connector_reference.as_deref(), Some("re_1"));
    assert_eq!(outcome.provider_status.as_deref(), Some("TO_CREDIT"));
    let sent = host.last_request().unwrap();
    assert!(sent.url.ends_with("/cashManagement/refund"));
    let body = body_of(&sent);
    assert_eq!(body["operationAmount"], 350);
    assert_eq!(body["transactionReference"], REFERENCE);

    // Over what is refundable: Sips says 51.
    let _host = sips_answers(sealed(json!({"responseCode": "51"})));
    let outcome = Sips::refund(
        account(),
        RefundRequest {
            payment: payment_ref(),
            refund_id: "re_2".into(),
            amount: Money::new(5000, "EUR"),
            reason: None,
            idempotency_key: "k".into(),
        },
    )
    .unwrap();
    assert!(matches!(outcome.status, ModificationStatus::Refused(r) if r.code == "51"));
}

// ----------------------------------------------------------------------- sync

fn sync_answer(status: &str, extra: Value) -> Result<PaymentOutcome> {
    let mut answer = json!({
        "responseCode": "00",
        "transactionReference": REFERENCE,
        "transactionStatus": status,
        "amount": 1050,
        "originAmount": 1050,
        "capturedAmount": 0,
        "creditedAmount": 0,
        "currencyCode": "978",
    });
    for (k, v) in extra.as_object().unwrap() {
        answer[k] = v.clone();
    }
    let host = sips_answers(sealed(answer));
    let outcome = Sips::sync(account(), payment_ref());
    let sent = host.last_request().unwrap();
    let body = body_of(&sent);
    assert_eq!(body["interfaceVersion"], "DR_WS_2.9");
    assert_eq!(body["transactionReference"], REFERENCE);
    assert_request_sealed(&body, Algorithm::HmacSha256);
    outcome
}

#[test]
fn sync_maps_every_transaction_status() {
    let o = sync_answer("TO_VALIDATE", json!({})).unwrap();
    assert_eq!(o.status, PaymentStatus::Authorized);
    assert_eq!(o.amount_authorized, Some(1050));
    assert_eq!(o.provider_status.as_deref(), Some("TO_VALIDATE"));
    assert_eq!(o.capture_before_ms, None);
    let o = sync_answer(
        "TO_VALIDATE",
        json!({"captureMode": "VALIDATION", "captureDay": 6,
               "transactionDateTime": "2026-11-27T15:05:25+01:00", "captureLimitDate": "20261203"}),
    )
    .unwrap();
    assert_eq!(o.status, PaymentStatus::Authorized);
    assert_eq!(o.capture_before_ms, Some(END_OF_DEC_3_PARIS_MS));
    // A deferred automatic capture waits for Sips to capture it on its day;
    // a validated transaction waits for that night's remittance only.
    let o = sync_answer(
        "TO_CAPTURE",
        json!({"captureMode": "AUTHOR_CAPTURE", "captureDay": "3"}),
    )
    .unwrap();
    assert_eq!(o.status, PaymentStatus::Authorized);
    assert_eq!(o.amount_captured, Some(0));
    assert_eq!(o.capture_before_ms, None);
    for (mode, day) in [("VALIDATION", 6), ("AUTHOR_CAPTURE", 0)] {
        let o = sync_answer(
            "TO_CAPTURE",
            json!({"captureMode": mode, "captureDay": day}),
        )
        .unwrap();
        assert_eq!(o.status, PaymentStatus::Captured, "{mode} {day}");
    }
    // The diagnostic's 3-D Secure fields.
    let o = sync_answer(
        "TO_VALIDATE",
        json!({"holderAuthentStatus": "3D_ATTEMPT", "guaranteeIndicator": "Y",
               "holderAuthentRelegation": "N", "holderAuthentProgram": "3DS_V2"}),
    )
    .unwrap();
    assert_eq!(
        o.three_ds,
        Some(ThreeDsResult {
            status: ThreeDsStatus::Attempted,
            version: Some("2".into()),
            liability_shift: Some(true),
            eci: None,
        })
    );
    let o = sync_answer("CAPTURED", json!({"amount": 600, "capturedAmount": 600})).unwrap();
    assert_eq!(o.status, PaymentStatus::Captured);
    assert_eq!(o.amount_captured, Some(600));
    for status in ["TO_CAPTURE", "TO_CREDIT", "CREDITED"] {
        assert_eq!(
            sync_answer(status, json!({"capturedAmount": 1050}))
                .unwrap()
                .status,
            PaymentStatus::Captured,
            "{status}"
        );
    }
    for status in [
        "AUTHORISATION_REQUESTED",
        "TO_AUTHORIZE",
        "TO_CHALLENGE",
        "PENDING",
        "WAITING_AUTHOR",
    ] {
        assert_eq!(
            sync_answer(status, json!({})).unwrap().status,
            PaymentStatus::Pending,
            "{status}"
        );
    }
    for status in ["CANCELLED", "ABORTED", "EXPIRED"] {
        assert_eq!(
            sync_answer(status, json!({})).unwrap().status,
            PaymentStatus::Canceled,
            "{status}"
        );
    }
    let o = sync_answer(
        "REFUSED",
        json!({"transactionResponseCode": "05", "acquirerResponseCode": "51"}),
    )
    .unwrap();
    assert_eq!(
        o.status,
        PaymentStatus::Refused(Refusal {
            code: "05".into(),
            reason: "authorization refused (acquirer code 51)".into()
        })
    );
    assert_eq!(o.provider_status.as_deref(), Some("REFUSED"));
    assert!(sync_answer("SOMETHING_NEW", json!({}))
        .unwrap_err()
        .is_retryable());
}

#[test]
fn sync_before_the_shopper_paid_keeps_the_redirect() {
    let _host = sips_answers(sealed(json!({"responseCode": "25"})));
    let mut payment = payment_ref();
    let o = Sips::sync(account(), payment.clone()).unwrap();
    assert_eq!(o.status, PaymentStatus::Pending);
    payment.connector_data = Some(
        serde_json::to_string(&ConnectorData {
            seal_algorithm: Some("HMAC-SHA-256".into()),
            redirection_url: Some(format!("{BASE}/payment")),
            redirection_data: Some("tok".into()),
            redirection_version: Some("IR_WS_2.0".into()),
        })
        .unwrap(),
    );
    let o = Sips::sync(account(), payment).unwrap();
    assert!(matches!(o.status, PaymentStatus::RequiresAction(r) if r.url.ends_with("/payment")));
    // Without a stored reference the derived one is used.
    let host = sips_answers(sealed(json!({"responseCode": "25"})));
    let mut payment = payment_ref();
    payment.connector_reference = None;
    Sips::sync(account(), payment).unwrap();
    assert_eq!(
        body_of(&host.last_request().unwrap())["transactionReference"],
        REFERENCE
    );
}

// -------------------------------------------------------------- notifications

#[test]
fn notifications_become_payment_events() {
    let _host = MockHost::new();
    let data = data("00", "VALIDATION", &[("orderId", "order-42")]);
    let outcome = Sips::handle_notification(
        account(),
        notification(&response_form(&data, Algorithm::HmacSha256)),
    )
    .unwrap();
    assert_eq!(outcome.response_status, 200);
    assert_eq!(outcome.events.len(), 1);
    let event = &outcome.events[0];
    assert_eq!(event.connector_reference, REFERENCE);
    assert_eq!(event.merchant_reference.as_deref(), Some("order-42"));
    assert_eq!(
        event.kind,
        NotificationEventKind::Payment(PaymentStatus::Authorized)
    );
    assert_eq!(event.amount, Some(Money::new(1050, "EUR")));
    assert_eq!(event.provider_status.as_deref(), Some("00"));
    // 2026-11-27T15:05:25+00:00
    assert_eq!(event.occurred_at_ms, Some(1_795_791_925_000));
    assert_eq!(
        event.event_id,
        format!("{REFERENCE}:00:2026-11-27T15:05:25+00:00")
    );

    // A replay (or Sips' own retry) has the same id: the host drops it.
    let again = Sips::handle_notification(
        account(),
        notification(&response_form(&data, Algorithm::HmacSha256)),
    )
    .unwrap();
    assert_eq!(again.events[0].event_id, event.event_id);

    // The shopper's cancel and a refusal.
    for (code, expected) in [
        (
            "17",
            NotificationEventKind::Payment(PaymentStatus::Canceled),
        ),
        ("60", NotificationEventKind::Payment(PaymentStatus::Pending)),
    ] {
        let form = response_form(
            &super::tests::data(code, "VALIDATION", &[]),
            Algorithm::Sha256,
        );
        let outcome = Sips::handle_notification(account(), notification(&form)).unwrap();
        assert_eq!(outcome.events[0].kind, expected);
        assert_ne!(outcome.events[0].event_id, event.event_id);
    }
    // JPY and KWD amounts come back in the right currency.
    let form = response_form(
        &super::tests::data(
            "00",
            "AUTHOR_CAPTURE",
            &[("amount", "1000"), ("currencyCode", "392")],
        ),
        Algorithm::HmacSha256,
    );
    let outcome = Sips::handle_notification(account(), notification(&form)).unwrap();
    assert_eq!(outcome.events[0].amount, Some(Money::new(1000, "JPY")));
    assert_eq!(
        outcome.events[0].kind,
        NotificationEventKind::Payment(PaymentStatus::Captured)
    );
}

#[test]
fn forged_and_malformed_notifications_are_refused() {
    let _host = MockHost::new();
    let good = data("00", "VALIDATION", &[]);
    let kind_of = |params: Vec<(String, String)>| {
        Sips::handle_notification(account(), notification(&params))
            .unwrap_err()
            .kind
    };
    // Forged: Data changed after sealing.
    let mut forged = response_form(&good, Algorithm::HmacSha256);
    forged[0].1 = good.replace("amount=1050", "amount=1");
    assert_eq!(kind_of(forged), ErrorKind::InvalidSignature);
    // Seal truncated, empty, missing.
    let mut short = response_form(&good, Algorithm::HmacSha256);
    short[1].1.truncate(63);
    assert_eq!(kind_of(short), ErrorKind::InvalidSignature);
    let mut empty = response_form(&good, Algorithm::HmacSha256);
    empty[1].1.clear();
    assert_eq!(kind_of(empty), ErrorKind::InvalidSignature);
    assert_eq!(
        kind_of(vec![("Data".into(), good.clone())]),
        ErrorKind::InvalidSignature
    );
    // No Data; sealed Data that says nothing.
    assert_eq!(
        kind_of(vec![("Seal".into(), "00".repeat(32))]),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        kind_of(response_form("garbage", Algorithm::HmacSha256)),
        ErrorKind::InvalidRequest
    );
    // Not UTF-8.
    let mut n = notification(&response_form(&good, Algorithm::HmacSha256));
    n.body = vec![0xff, 0xfe];
    assert_eq!(
        Sips::handle_notification(account(), n).unwrap_err().kind,
        ErrorKind::InvalidRequest
    );
    // Base64 flag on Data that is not Base64.
    let mut not_b64 = response_form("!!!", Algorithm::HmacSha256);
    not_b64[3].1 = "base64".into();
    assert_eq!(kind_of(not_b64), ErrorKind::InvalidRequest);
}

#[test]
fn iso_dates_parse_to_unix_ms() {
    use transformers::parse_iso8601_ms as p;
    assert_eq!(p("1970-01-01T00:00:00+00:00"), Some(0));
    assert_eq!(p("2024-02-29T13:14:15Z"), Some(1_709_212_455_000));
    assert_eq!(p("2024-02-29T14:14:15+01:00"), Some(1_709_212_455_000));
    assert_eq!(p("2024-02-29T12:14:15.250-01:00"), Some(1_709_212_455_250));
    assert_eq!(p("yesterday"), None);
    assert_eq!(p("2024-13-01T00:00:00Z"), None);
}
