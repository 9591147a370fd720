//! Request validation against the providers' official OpenAPI documents
//! (`$PASSERELLE_PSP_SPECS`, else `../shared/psp-specs` beside the clone, as
//! in CI). Without them each test says in one line what it skips (a failure
//! under `CI=true`): see `passerelle_sandbox::test_specs`.

use std::path::PathBuf;

use passerelle_sandbox::openapi::{form_value, ApiSpec, Violation, ViolationKind};
use passerelle_sandbox::SpecSource;
use serde_json::{json, Value};

fn specs_dir() -> PathBuf {
    passerelle_sandbox::test_specs::specs_dir()
}

/// The documents' folder, or `None` (after one line saying what is skipped)
/// when any provider's documents are missing.
fn documents() -> Option<PathBuf> {
    use passerelle_sandbox::test_specs::specs_for;
    specs_for("adyen/CheckoutService-v71.json")?;
    specs_for("paypal/checkout_orders_v2.json")?;
    specs_for("hipay/gateway.yaml")
}

fn load(files: &[&str]) -> ApiSpec {
    ApiSpec::load(&SpecSource::Dir(specs_dir()), files)
        .expect("documents load")
        .expect("validation is on")
}

fn adyen() -> ApiSpec {
    load(&["adyen/CheckoutService-v71.json"])
}

fn paypal() -> ApiSpec {
    load(&[
        "paypal/checkout_orders_v2.json",
        "paypal/payments_payment_v2.json",
        "paypal/notifications_webhooks_v1.json",
    ])
}

fn hipay() -> ApiSpec {
    load(&[
        "hipay/gateway.yaml",
        "hipay/hpayment.yaml",
        "hipay/tokenization.yaml",
    ])
}

/// Asserts one violation of `kind` at `pointer` is among `errors`.
fn has(errors: &[Violation], pointer: &str, kind: ViolationKind) {
    assert!(
        errors
            .iter()
            .any(|v| v.pointer == pointer && v.kind == kind),
        "expected {kind:?} at {pointer:?}, got {errors:#?}"
    );
}

fn errors(result: Result<(), Vec<Violation>>) -> Vec<Violation> {
    match result {
        Ok(()) => panic!("expected violations, the value was accepted"),
        Err(errors) => errors,
    }
}

fn ok(result: Result<(), Vec<Violation>>) {
    if let Err(errors) = result {
        panic!("expected no violation, got {errors:#?}");
    }
}

fn adyen_payment() -> Value {
    json!({
        "merchantAccount": "PasserelleECOM",
        "reference": "order-42",
        "amount": {"value": 1250, "currency": "EUR"},
        "paymentMethod": {
            "type": "scheme",
            "number": "4111111111111111",
            "expiryMonth": "03",
            "expiryYear": "2030",
            "holderName": "Jane Doe",
            "cvc": "737"
        },
        "returnUrl": "https://shop.example/return?order=42",
        "shopperInteraction": "Ecommerce",
        "browserInfo": {
            "userAgent": "Mozilla/5.0",
            "acceptHeader": "text/html",
            "language": "fr-FR",
            "colorDepth": 24,
            "screenHeight": 1080,
            "screenWidth": 1920,
            "timeZoneOffset": -60,
            "javaEnabled": false
        },
        "channel": "Web"
    })
}

#[test]
fn adyen_payments_valid_and_invalid() {
    if documents().is_none() {
        return;
    }
    let spec = adyen();
    ok(spec.validate_request("POST", "/payments", &adyen_payment()));

    let mut missing = adyen_payment();
    missing.as_object_mut().unwrap().remove("merchantAccount");
    let errs = errors(spec.validate_request("POST", "/payments", &missing));
    has(&errs, "/merchantAccount", ViolationKind::Required);
    assert_eq!(errs[0].dotted(), "merchantAccount");

    let mut wrong_type = adyen_payment();
    wrong_type["amount"]["value"] = json!("1250");
    has(
        &errors(spec.validate_request("POST", "/payments", &wrong_type)),
        "/amount/value",
        ViolationKind::Type,
    );

    let mut bad_enum = adyen_payment();
    bad_enum["shopperInteraction"] = json!("Telepathy");
    has(
        &errors(spec.validate_request("POST", "/payments", &bad_enum)),
        "/shopperInteraction",
        ViolationKind::Enum,
    );

    let mut unknown = adyen_payment();
    unknown["merchantAcount"] = json!("typo");
    has(
        &errors(spec.validate_request("POST", "/payments", &unknown)),
        "/merchantAcount",
        ViolationKind::UnknownField,
    );

    let mut short_currency = adyen_payment();
    short_currency["amount"]["currency"] = json!("EU");
    has(
        &errors(spec.validate_request("POST", "/payments", &short_currency)),
        "/amount/currency",
        ViolationKind::Length,
    );

    // Inside the oneOf of payment methods: the card alternative is reported.
    let mut card_typo = adyen_payment();
    card_typo["paymentMethod"]["numbr"] = json!("4111");
    let errs = errors(spec.validate_request("POST", "/payments", &card_typo));
    has(&errs, "/paymentMethod/numbr", ViolationKind::UnknownField);
    assert_eq!(errs[0].dotted(), "paymentMethod.numbr");
}

#[test]
fn adyen_modifications_by_template_and_concrete_path() {
    if documents().is_none() {
        return;
    }
    let spec = adyen();
    let capture = json!({
        "merchantAccount": "PasserelleECOM",
        "amount": {"value": 500, "currency": "EUR"},
        "reference": "cap-1"
    });
    ok(spec.validate_request("POST", "/payments/{paymentPspReference}/captures", &capture));
    ok(spec.validate_request("POST", "/payments/ZX8G7B2P4Q9W3R1T/captures", &capture));
    assert_eq!(
        spec.operation_id("POST", "/payments/ZX8G7B2P4Q9W3R1T/refunds"),
        Some("post-payments-paymentPspReference-refunds")
    );
    let errs = errors(spec.validate_request(
        "POST",
        "/payments/ZX8G7B2P4Q9W3R1T/refunds",
        &json!({"merchantAccount": "PasserelleECOM"}),
    ));
    has(&errs, "/amount", ViolationKind::Required);
    ok(spec.validate_request(
        "POST",
        "/payments/ZX8G7B2P4Q9W3R1T/cancels",
        &json!({"merchantAccount": "PasserelleECOM", "reference": "c-1"}),
    ));
    // /payments/details
    ok(spec.validate_request(
        "POST",
        "/payments/details",
        &json!({"details": {"redirectResult": "X6XtfGC3"}}),
    ));
    // Unknown operation.
    let errs = errors(spec.validate_request("POST", "/nowhere", &json!({})));
    assert_eq!(errs[0].kind, ViolationKind::UnknownOperation);
    // A missing body is checked as `{}`.
    has(
        &errors(spec.validate_request("POST", "/payments", &Value::Null)),
        "/merchantAccount",
        ViolationKind::Required,
    );
}

#[test]
fn adyen_response_and_named_schema() {
    if documents().is_none() {
        return;
    }
    let spec = adyen();
    ok(spec.validate_response(
        "POST",
        "/payments",
        200,
        &json!({
            "pspReference": "ZX8G7B2P4Q9W3R1T",
            "resultCode": "Authorised",
            "amount": {"value": 1250, "currency": "EUR"},
            "merchantReference": "order-42"
        }),
    ));
    has(
        &errors(spec.validate_response(
            "POST",
            "/payments",
            200,
            &json!({"pspReference": "X", "resultCode": "Approved"}),
        )),
        "/resultCode",
        ViolationKind::Enum,
    );
    ok(spec.validate_schema("Amount", &json!({"value": 1, "currency": "EUR"})));
    has(
        &errors(spec.validate_schema("Amount", &json!({"value": 1.5, "currency": "EUR"}))),
        "/value",
        ViolationKind::Type,
    );
}

fn paypal_order() -> Value {
    json!({
        "intent": "CAPTURE",
        "purchase_units": [{
            "reference_id": "order-42",
            "amount": {"currency_code": "EUR", "value": "12.50"}
        }],
        "payment_source": {"paypal": {"experience_context": {
            "return_url": "https://shop.example/return",
            "cancel_url": "https://shop.example/cancel",
            "user_action": "PAY_NOW"
        }}}
    })
}

#[test]
fn paypal_orders_valid_and_invalid() {
    if documents().is_none() {
        return;
    }
    let spec = paypal();
    ok(spec.validate_request("POST", "/v2/checkout/orders", &paypal_order()));

    let mut missing = paypal_order();
    missing.as_object_mut().unwrap().remove("purchase_units");
    has(
        &errors(spec.validate_request("POST", "/v2/checkout/orders", &missing)),
        "/purchase_units",
        ViolationKind::Required,
    );

    let mut bad_enum = paypal_order();
    bad_enum["intent"] = json!("SALE");
    has(
        &errors(spec.validate_request("POST", "/v2/checkout/orders", &bad_enum)),
        "/intent",
        ViolationKind::Enum,
    );

    let mut wrong_type = paypal_order();
    wrong_type["purchase_units"][0]["amount"]["value"] = json!(12.5);
    has(
        &errors(spec.validate_request("POST", "/v2/checkout/orders", &wrong_type)),
        "/purchase_units/0/amount/value",
        ViolationKind::Type,
    );

    let mut bad_pattern = paypal_order();
    bad_pattern["purchase_units"][0]["amount"]["value"] = json!("12,50");
    has(
        &errors(spec.validate_request("POST", "/v2/checkout/orders", &bad_pattern)),
        "/purchase_units/0/amount/value",
        ViolationKind::Pattern,
    );

    let mut empty_units = paypal_order();
    empty_units["purchase_units"] = json!([]);
    has(
        &errors(spec.validate_request("POST", "/v2/checkout/orders", &empty_units)),
        "/purchase_units",
        ViolationKind::Size,
    );

    // readOnly fields are ignored in requests (PayPal ignores them too).
    let mut read_only = paypal_order();
    read_only["id"] = json!("5O190127TN364715T");
    ok(spec.validate_request("POST", "/v2/checkout/orders", &read_only));
}

#[test]
fn paypal_payments_and_webhooks() {
    if documents().is_none() {
        return;
    }
    let spec = paypal();
    ok(spec.validate_request(
        "POST",
        "/v2/payments/authorizations/0VF52814937998046/capture",
        &json!({"amount": {"currency_code": "EUR", "value": "5.00"}, "final_capture": false}),
    ));
    has(
        &errors(spec.validate_request(
            "POST",
            "/v2/payments/authorizations/{authorization_id}/capture",
            &json!({"amount": {"currency_code": "EUR"}, "final_capture": "yes"}),
        )),
        "/final_capture",
        ViolationKind::Type,
    );
    ok(spec.validate_request(
        "POST",
        "/v2/payments/captures/2GG279541U471931P/refund",
        &json!({"amount": {"currency_code": "EUR", "value": "1.00"}}),
    ));
    has(
        &errors(spec.validate_request(
            "POST",
            "/v2/payments/captures/2GG279541U471931P/refund",
            &json!({"amount": {"currency_code": "EURO", "value": "1.00"}}),
        )),
        "/amount/currency_code",
        ViolationKind::Length,
    );
    // Capture an order: no body is fine.
    ok(spec.validate_request(
        "POST",
        "/v2/checkout/orders/5O190127TN364715T/capture",
        &Value::Null,
    ));
    let verify = json!({
        "auth_algo": "SHA256withRSA",
        "cert_url": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42",
        "transmission_id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
        "transmission_sig": "lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2rMyFrmz+Zjh3s3boXB07VXCXUZy/UFzUlnGJn0wDugt7FlSvdKeIJenLRemUxYCPVoEZzg9VFNqOa48gMkvF+XTpxBeUx/kWy6B5cp7GkT2+pOowfRK7OaynuxUoKW3JcMWw272VKjLTtTAShncla7tGF+55rxyt2KNZIIqxNMJ48RDZheGU5w1npu9dZHnPgTXB9iomeVRoD8O/jhRpnKsGrDschyNdkeh81BJJMH4Ctc6lnCCquoP/GzCzz33MMsNdid7vL/NIWaCsekQpW26FpWPi/tfj8nLA==",
        "transmission_time": "2016-02-18T20:01:35Z",
        "webhook_id": "1JE4291016473214C",
        "webhook_event": {"id": "8PT597110X687430LKGECATA", "event_type": "PAYMENT.CAPTURE.COMPLETED"}
    });
    ok(spec.validate_request(
        "POST",
        "/v1/notifications/verify-webhook-signature",
        &verify,
    ));
    let mut bad = verify.clone();
    bad.as_object_mut().unwrap().remove("transmission_sig");
    has(
        &errors(spec.validate_request("POST", "/v1/notifications/verify-webhook-signature", &bad)),
        "/transmission_sig",
        ViolationKind::Required,
    );
}

/// Formats are checked as their standards define them: a `date-time`
/// needs its `T` and a real date, a `uri` no raw space.
#[test]
fn formats_follow_their_standards() {
    if documents().is_none() {
        return;
    }
    let spec = paypal();
    let mut spaced = paypal_order();
    spaced["payment_source"]["paypal"]["experience_context"]["return_url"] =
        json!("https://shop.example/return to");
    has(
        &errors(spec.validate_request("POST", "/v2/checkout/orders", &spaced)),
        "/payment_source/paypal/experience_context/return_url",
        ViolationKind::Format,
    );
    let verify = |time: &str| {
        spec.validate_request(
            "POST",
            "/v1/notifications/verify-webhook-signature",
            &json!({
                "auth_algo": "SHA256withRSA",
                "cert_url": "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42",
                "transmission_id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
                "transmission_sig": "c2ln",
                "transmission_time": time,
                "webhook_id": "1JE4291016473214C",
                "webhook_event": {"id": "8PT597110X687430LKGECATA"}
            }),
        )
    };
    ok(verify("2016-02-18T20:01:35Z"));
    has(
        &errors(verify("2016-02-18 20:01:35Z")),
        "/transmission_time",
        ViolationKind::Format,
    );
    has(
        &errors(verify("2016-02-30T20:01:35Z")),
        "/transmission_time",
        ViolationKind::Format,
    );
}

fn hipay_order() -> Vec<(&'static str, &'static str)> {
    vec![
        ("orderid", "order-42"),
        ("operation", "Authorization"),
        ("payment_product", "visa"),
        ("description", "Order 42"),
        ("currency", "EUR"),
        ("amount", "12.50"),
        ("cardtoken", "0acbbfcbd5bf202a05ccd1c0b4d2e2c3"),
        ("accept_url", "https://shop.example/accept"),
        ("eci", "7"),
        ("browser_info[language]", "fr-FR"),
        ("browser_info[color_depth]", "24"),
        ("browser_info[screen_height]", "1080"),
        ("browser_info[java_enabled]", "false"),
    ]
}

#[test]
fn hipay_forms_valid_and_invalid() {
    if documents().is_none() {
        return;
    }
    let spec = hipay();
    let form = form_value(&hipay_order());
    assert_eq!(form["browser_info"]["language"], "fr-FR");
    ok(spec.validate_form("POST", "/v1/order", &form));

    let without = |name: &str| {
        form_value(
            &hipay_order()
                .into_iter()
                .filter(|(k, _)| *k != name)
                .collect::<Vec<_>>(),
        )
    };
    let with = |name: &'static str, value: &'static str| {
        let mut pairs = hipay_order();
        pairs.retain(|(k, _)| *k != name);
        pairs.push((name, value));
        form_value(&pairs)
    };
    has(
        &errors(spec.validate_form("POST", "/v1/order", &without("orderid"))),
        "/orderid",
        ViolationKind::Required,
    );
    has(
        &errors(spec.validate_form("POST", "/v1/order", &with("amount", "twelve"))),
        "/amount",
        ViolationKind::Type,
    );
    has(
        &errors(spec.validate_form("POST", "/v1/order", &with("operation", "Steal"))),
        "/operation",
        ViolationKind::Enum,
    );
    has(
        &errors(spec.validate_form(
            "POST",
            "/v1/order",
            &with("browser_info[color_depth]", "23"),
        )),
        "/browser_info/color_depth",
        ViolationKind::Enum,
    );
    has(
        &errors(spec.validate_form(
            "POST",
            "/v1/order",
            &with("browser_info[java_enabled]", "maybe"),
        )),
        "/browser_info/java_enabled",
        ViolationKind::Type,
    );

    // Maintenance.
    let capture = form_value(&[("operation", "capture"), ("amount", "5.00")]);
    ok(spec.validate_form("POST", "/v1/maintenance/transaction/800000000001", &capture));
    let errs = errors(spec.validate_form(
        "POST",
        "/v1/maintenance/transaction/{transaction_reference}",
        &form_value(&[("operation", "explode")]),
    ));
    has(&errs, "/operation", ViolationKind::Enum);
    has(
        &errors(spec.validate_form(
            "POST",
            "/v1/maintenance/transaction/800000000001",
            &form_value(&[("amount", "5.00")]),
        )),
        "/operation",
        ViolationKind::Required,
    );
}

#[test]
fn hipay_swagger2_documents() {
    if documents().is_none() {
        return;
    }
    let spec = hipay();
    // Hosted payment page (Swagger 2, formData parameters).
    let page = [
        ("orderid", "order-42"),
        ("description", "Order 42"),
        ("currency", "EUR"),
        ("amount", "12.50"),
        ("display_selector", "1"),
    ];
    ok(spec.validate_form("POST", "/v1/hpayment", &form_value(&page)));
    let mut bad = page.to_vec();
    bad.retain(|(k, _)| *k != "orderid");
    bad.push(("display_selector", "2"));
    let errs = errors(spec.validate_form("POST", "/v1/hpayment", &form_value(&bad)));
    has(&errs, "/orderid", ViolationKind::Required);
    has(&errs, "/display_selector", ViolationKind::Enum);
    let mut long = page.to_vec();
    long.push((
        "merchant_display_name",
        "A merchant name far longer than 32",
    ));
    has(
        &errors(spec.validate_form("POST", "/v1/hpayment", &form_value(&long))),
        "/merchant_display_name",
        ViolationKind::Length,
    );

    // Tokenization.
    let card = [
        ("card_number", "4111111111111111"),
        ("card_expiry_month", "12"),
        ("card_expiry_year", "2030"),
        ("card_holder", "Jane Doe"),
        ("cvc", "123"),
        ("multi_use", "1"),
    ];
    ok(spec.validate_form("POST", "/create", &form_value(&card)));
    let mut bad = card.to_vec();
    bad.retain(|(k, _)| *k != "card_holder" && *k != "card_expiry_month");
    bad.push(("card_expiry_month", "December"));
    let errs = errors(spec.validate_form("POST", "/create", &form_value(&bad)));
    has(&errs, "/card_holder", ViolationKind::Required);
    has(&errs, "/card_expiry_month", ViolationKind::Type);
}

/// Every request example the documents ship must pass (guards against the
/// validator rejecting what the providers themselves show).
#[test]
fn documented_request_examples_pass() {
    if documents().is_none() {
        return;
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, spec) in [
        ("adyen/CheckoutService-v71.json", adyen()),
        ("paypal/checkout_orders_v2.json", paypal()),
        ("paypal/payments_payment_v2.json", paypal()),
        ("paypal/notifications_webhooks_v1.json", paypal()),
    ] {
        let text = std::fs::read_to_string(specs_dir().join(file)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let resolve = |v: &Value| -> Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => doc.pointer(&r[1..]).cloned().unwrap_or(Value::Null),
                None => v.clone(),
            }
        };
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let body = resolve(&op["requestBody"]);
                let Some(media) = body["content"].get("application/json") else {
                    continue;
                };
                let mut examples: Vec<(String, Value)> = Vec::new();
                if let Some(map) = media.get("examples").and_then(Value::as_object) {
                    for (name, ex) in map {
                        examples.push((name.clone(), resolve(ex)["value"].clone()));
                    }
                }
                if let Some(ex) = media.get("example") {
                    examples.push(("example".to_owned(), ex.clone()));
                }
                for (name, value) in examples {
                    if value.is_null() {
                        continue;
                    }
                    checked += 1;
                    let result = spec.validate_request(method, path, &value);
                    // PayPal's own example sends "cert_url": "cert_url".
                    let known_bad = path == "/v1/notifications/verify-webhook-signature"
                        && value["cert_url"] == "cert_url";
                    if known_bad {
                        assert!(result.is_err_and(|e| e[0].pointer == "/cert_url"));
                        continue;
                    }
                    if let Err(errs) = result {
                        failures.push(format!(
                            "{file} {method} {path} [{name}]: {}",
                            errs.iter()
                                .map(ToString::to_string)
                                .collect::<Vec<_>>()
                                .join("; ")
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} examples found");
    assert!(
        failures.is_empty(),
        "{} of {checked} documented examples rejected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every JSON response example the documents ship must pass too (the
/// simulators' tests use `validate_response` on their own answers).
#[test]
fn documented_response_examples_pass() {
    if documents().is_none() {
        return;
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, spec) in [
        ("adyen/CheckoutService-v71.json", adyen()),
        ("paypal/checkout_orders_v2.json", paypal()),
        ("paypal/payments_payment_v2.json", paypal()),
    ] {
        let text = std::fs::read_to_string(specs_dir().join(file)).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let resolve = |v: &Value| -> Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => doc.pointer(&r[1..]).cloned().unwrap_or(Value::Null),
                None => v.clone(),
            }
        };
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(responses) = op["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    let Ok(code) = status.parse::<u16>() else {
                        continue;
                    };
                    let response = resolve(response);
                    let Some(media) = response["content"].get("application/json") else {
                        continue;
                    };
                    let mut examples = Vec::new();
                    if let Some(map) = media.get("examples").and_then(Value::as_object) {
                        examples.extend(map.values().map(|ex| resolve(ex)["value"].clone()));
                    }
                    if let Some(ex) = media.get("example") {
                        examples.push(ex.clone());
                    }
                    for value in examples.into_iter().filter(|v| !v.is_null()) {
                        checked += 1;
                        if let Err(errs) = spec.validate_response(method, path, code, &value) {
                            failures.push(format!(
                                "{file} {method} {path} {code}: {}",
                                errs.iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} examples found");
    assert!(
        failures.is_empty(),
        "{} of {checked} documented response examples rejected:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn spec_sources() {
    assert!(
        ApiSpec::load(&SpecSource::Off, &["adyen/CheckoutService-v71.json"])
            .unwrap()
            .is_none()
    );
    assert!(ApiSpec::load(
        &SpecSource::Dir(PathBuf::from("/nonexistent/psp-specs")),
        &["adyen/CheckoutService-v71.json"]
    )
    .is_err());
    assert_eq!(SpecSource::Off.resolve_dir(), None);
    // From the crate directory (where cargo runs tests), Auto finds
    // ../../shared/psp-specs (or $PASSERELLE_PSP_SPECS) when they are there.
    if documents().is_none() {
        return;
    }
    let auto = ApiSpec::load(&SpecSource::Auto, &["paypal/checkout_orders_v2.json"]).unwrap();
    assert!(auto.is_some(), "Auto should find the shared specs");
}
