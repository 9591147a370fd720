//! Times `passerelle_sandbox::openapi`: loading the providers' documents and
//! validating typical bodies. Run in release, with the documents at hand:
//!
//! ```sh
//! PASSERELLE_PSP_SPECS=../shared/psp-specs \
//!     cargo run --release -p passerelle-sandbox --example openapi_bench
//! ```
//!
//! Each load is timed once (documents are cached per process); the first
//! validation of an operation is timed apart from the steady state.

use std::time::{Duration, Instant};

use passerelle_sandbox::openapi::{form_value, ApiSpec, Violation};
use passerelle_sandbox::SpecSource;
use serde_json::{json, Value};

fn load(files: &[&str]) -> ApiSpec {
    let started = Instant::now();
    let spec = ApiSpec::load(&SpecSource::Auto, files)
        .expect("documents load")
        .expect("documents found: set PASSERELLE_PSP_SPECS");
    println!("load {:<48} {:>9.1} ms", files[0], ms(started.elapsed()));
    spec
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Times `check` once (first call) then `rounds` times.
fn time(name: &str, rounds: u32, check: impl Fn() -> Result<(), Vec<Violation>>) {
    let started = Instant::now();
    let first = check();
    let first_time = started.elapsed();
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(check()).ok();
    }
    let each = started.elapsed() / rounds;
    let outcome = match &first {
        Ok(()) => "valid".to_owned(),
        Err(v) => format!("{} violation(s)", v.len()),
    };
    println!(
        "{name:<40} first {:>8.2} ms, then {:>8.1} µs/call ({outcome})",
        ms(first_time),
        each.as_secs_f64() * 1e6
    );
}

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let adyen = load(&["adyen/CheckoutService-v71.json"]);
    let paypal = load(&[
        "paypal/checkout_orders_v2.json",
        "paypal/payments_payment_v2.json",
        "paypal/notifications_webhooks_v1.json",
    ]);
    let hipay = load(&[
        "hipay/gateway.yaml",
        "hipay/hpayment.yaml",
        "hipay/tokenization.yaml",
    ]);

    let payment = json!({
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
    });
    time("adyen POST /payments (valid)", rounds, || {
        adyen.validate_request("POST", "/payments", &payment)
    });
    let mut bad = payment.clone();
    bad["amount"]["currency"] = json!("EU");
    bad["paymentMethod"]["numbr"] = json!("4111");
    bad["shopperInteraction"] = json!("Telepathy");
    time("adyen POST /payments (3 faults)", rounds, || {
        adyen.validate_request("POST", "/payments", &bad)
    });
    let capture = json!({
        "merchantAccount": "PasserelleECOM",
        "amount": {"value": 500, "currency": "EUR"},
        "reference": "cap-1"
    });
    time("adyen POST captures (concrete path)", rounds, || {
        adyen.validate_request("POST", "/payments/ZX8G7B2P4Q9W3R1T/captures", &capture)
    });
    let answer = json!({
        "pspReference": "ZX8G7B2P4Q9W3R1T",
        "resultCode": "Authorised",
        "amount": {"value": 1250, "currency": "EUR"},
        "merchantReference": "order-42"
    });
    time("adyen /payments 200 answer", rounds, || {
        adyen.validate_response("POST", "/payments", 200, &answer)
    });

    let order = json!({
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
    });
    time("paypal POST /v2/checkout/orders (valid)", rounds, || {
        paypal.validate_request("POST", "/v2/checkout/orders", &order)
    });
    let mut bad_order = order.clone();
    bad_order["intent"] = json!("SALE");
    bad_order["purchase_units"][0]["amount"]["value"] = json!("12,50");
    time("paypal POST /v2/checkout/orders (2 faults)", rounds, || {
        paypal.validate_request("POST", "/v2/checkout/orders", &bad_order)
    });

    let form: Value = form_value(&[
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
    ]);
    time("hipay POST /v1/order (form)", rounds, || {
        hipay.validate_form("POST", "/v1/order", &form)
    });
}
