//! Validation of request bodies against HiPay's published OpenAPI documents
//! (`psp-specs/hipay/gateway.yaml`, `hpayment.yaml`, `tokenization.yaml`).
//!
//! Every handler calls [`check`] once, before touching any state. When the
//! documents were found, the body is checked against them by the shared
//! validator ([`crate::openapi`]); the rules below, a transcription of the
//! documents' constraints (required fields, enums, patterns, lengths, types,
//! formats), run in any case, so validation also works without the files.

use super::{error::HipayError, form::Form, money, state::HipayState};
use crate::openapi::{form_value, ApiSpec, Violation, ViolationKind};

/// The documents of the three HiPay hosts, under the specs folder.
pub(crate) const SPEC_FILES: &[&str] = &[
    "hipay/gateway.yaml",
    "hipay/hpayment.yaml",
    "hipay/tokenization.yaml",
];

/// The validated operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// gateway.yaml `POST /v1/order` (`InputOrder`).
    Order,
    /// hpayment.yaml `POST /v1/hpayment`.
    Hpayment,
    /// gateway.yaml `POST /v1/maintenance/transaction/{reference}` (`Maintenance`).
    Maintenance,
    /// tokenization.yaml `POST /create`.
    TokenCreate,
}

#[derive(Clone, Copy)]
enum Kind {
    /// Any string, with an optional maximum length.
    Str(Option<usize>),
    Enum(&'static [&'static str]),
    /// A decimal number; `true`: at least 1 (`minimum: 1`).
    Decimal(bool),
    Integer,
    /// An integer at most this.
    IntegerMax(i64),
    Uri,
    Ip,
    Json,
    Date,
    Alpha(usize),
    Cvc,
}

struct Rule {
    name: &'static str,
    required: bool,
    kind: Kind,
}

const fn req(name: &'static str, kind: Kind) -> Rule {
    Rule {
        name,
        required: true,
        kind,
    }
}

const fn opt(name: &'static str, kind: Kind) -> Rule {
    Rule {
        name,
        required: false,
        kind,
    }
}

const OPERATIONS: &[&str] = &["Authorization", "Sale"];
const ECI: &[&str] = &["1", "2", "7", "9", "10"];
const AUTH_INDICATOR: &[&str] = &["0", "1", "2"];
const GENDER: &[&str] = &["U", "F", "M"];
const ZERO_ONE: &[&str] = &["0", "1"];
const SALES_CHANNEL: &[&str] = &["0", "1", "2", "3"];
const DEVICE_CHANNEL: &[&str] = &["1", "2", "3"];
const DELIVERY_METHOD: &[&str] = &[
    "EXPRESS24H",
    "EXPRESS48H",
    "STORE",
    "STORE24H",
    "CARRIER",
    "CARRIER24H",
    "RELAYPOINT",
    "RELAYPOINT24H",
];
const MAINTENANCE_OPERATIONS: &[&str] = &[
    "capture",
    "refund",
    "cancel",
    "acceptChallenge",
    "denyChallenge",
    "finalize",
];

const ORDER: &[Rule] = &[
    req("orderid", Kind::Str(None)),
    req("payment_product", Kind::Enum(PAYMENT_PRODUCTS)),
    req("description", Kind::Str(None)),
    req("currency", Kind::Enum(CURRENCIES)),
    req("amount", Kind::Decimal(true)),
    req("cardtoken", Kind::Str(None)),
    opt("operation", Kind::Enum(OPERATIONS)),
    opt("shipping", Kind::Decimal(false)),
    opt("tax", Kind::Decimal(false)),
    opt("tax_rate", Kind::Decimal(false)),
    opt("eci", Kind::Enum(ECI)),
    opt("authentication_indicator", Kind::Enum(AUTH_INDICATOR)),
    opt("gender", Kind::Enum(GENDER)),
    opt("recurring_payment", Kind::Enum(ZERO_ONE)),
    opt("one_click", Kind::Enum(ZERO_ONE)),
    opt("sales_channel", Kind::Enum(SALES_CHANNEL)),
    opt("device_channel", Kind::Enum(DEVICE_CHANNEL)),
    opt("delivery_method", Kind::Enum(DELIVERY_METHOD)),
    opt("order_category_code", Kind::Integer),
    opt("request_id", Kind::Integer),
    opt("debit_agreement_id", Kind::Integer),
];

const HPAYMENT: &[Rule] = &[
    req("orderid", Kind::Str(Some(32))),
    req("description", Kind::Str(Some(255))),
    req("currency", Kind::Enum(CURRENCIES)),
    req("amount", Kind::Decimal(true)),
    opt("operation", Kind::Enum(OPERATIONS)),
    opt("merchant_display_name", Kind::Str(Some(32))),
    opt("display_selector", Kind::Enum(ZERO_ONE)),
    opt("shipping", Kind::Decimal(false)),
    opt("tax", Kind::Decimal(false)),
    opt("tax_rate", Kind::Decimal(false)),
    opt("ipaddr", Kind::Ip),
    opt("accept_url", Kind::Uri),
    opt("decline_url", Kind::Uri),
    opt("pending_url", Kind::Uri),
    opt("exception_url", Kind::Uri),
    opt("cancel_url", Kind::Uri),
    opt("notify_url", Kind::Uri),
    opt("default_url", Kind::Uri),
    opt("language", Kind::Str(Some(5))),
    opt("basket", Kind::Json),
    opt("custom_data", Kind::Json),
    opt("source", Kind::Json),
    opt("merchant_risk_statement", Kind::Json),
    opt("account_info", Kind::Json),
    opt("recurring_info", Kind::Json),
    opt("exemption", Kind::Json),
    opt("eci", Kind::IntegerMax(99)),
    opt("authentication_indicator", Kind::Integer),
    opt("gender", Kind::Enum(GENDER)),
    opt("shipto_gender", Kind::Enum(GENDER)),
    opt("country", Kind::Alpha(2)),
    opt("shipto_country", Kind::Alpha(2)),
    opt("order_category_code", Kind::Integer),
    opt("delivery_date", Kind::Date),
    opt("recurring_payment", Kind::IntegerMax(9)),
    opt("request_id", Kind::Integer),
    opt("device_channel", Kind::Integer),
    opt("multi_use", Kind::Enum(ZERO_ONE)),
    opt("payment_lifetime", Kind::Integer),
    opt("display_cancel_button", Kind::Enum(ZERO_ONE)),
];

const MAINTENANCE: &[Rule] = &[
    req("operation", Kind::Enum(MAINTENANCE_OPERATIONS)),
    opt("currency", Kind::Enum(CURRENCIES)),
    opt("amount", Kind::Decimal(false)),
    opt("operation_id", Kind::Str(None)),
];

const TOKEN_CREATE: &[Rule] = &[
    req("card_number", Kind::Str(None)),
    req("card_expiry_month", Kind::Integer),
    req("card_expiry_year", Kind::Integer),
    req("card_holder", Kind::Str(None)),
    opt("cvc", Kind::Cvc),
    opt("multi_use", Kind::Enum(ZERO_ONE)),
    opt("generate_request_id", Kind::Enum(ZERO_ONE)),
];

/// Checks a request body against the document of `endpoint`, and records
/// the check for `GET /_sandbox/validation`; a violation is answered with
/// HiPay's validation error (400, code 10101xx/10102xx).
pub(crate) fn check(state: &HipayState, endpoint: Endpoint, form: &Form) -> Result<(), HipayError> {
    let result = check_body(state.spec.as_ref(), endpoint, form);
    let (method, path) = operation(endpoint);
    state.lock().validation.record(
        operation_label(method, path),
        result.as_ref().err().map(|e| e.description.clone()),
    );
    result
}

/// Records a request without a body (a transaction lookup): it must name
/// an operation of the documents when they are loaded.
pub(crate) fn check_lookup(
    state: &HipayState,
    method: &'static str,
    path: &'static str,
) -> Result<(), HipayError> {
    let result = match &state.spec {
        Some(spec) if !spec.has_operation(method, path) => Err(HipayError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            404,
            "Not Found",
            format!("{method} {path} is not an operation of HiPay's documents"),
        )),
        _ => Ok(()),
    };
    state.lock().validation.record(
        operation_label(method, path),
        result.as_ref().err().map(|e| e.description.clone()),
    );
    result
}

/// "POST /v1/order", as a static label.
fn operation_label(method: &str, path: &str) -> &'static str {
    match (method, path) {
        ("POST", "/v1/order") => "POST /v1/order",
        ("POST", "/v1/hpayment") => "POST /v1/hpayment",
        ("POST", "/create") => "POST /v2/token/create",
        ("GET", "/v1/transaction") => "GET /v1/transaction",
        ("GET", "/v1/transaction/{transaction_reference}") => {
            "GET /v1/transaction/{transaction_reference}"
        }
        _ => "POST /v1/maintenance/transaction/{transaction_reference}",
    }
}

fn check_body(spec: Option<&ApiSpec>, endpoint: Endpoint, form: &Form) -> Result<(), HipayError> {
    if let Some(spec) = spec {
        check_spec(spec, endpoint, form)?;
    }
    let rules = match endpoint {
        Endpoint::Order => ORDER,
        Endpoint::Hpayment => HPAYMENT,
        Endpoint::Maintenance => MAINTENANCE,
        Endpoint::TokenCreate => TOKEN_CREATE,
    };
    for rule in rules {
        match form.get(rule.name) {
            None if rule.required => return Err(HipayError::missing(rule.name)),
            None => {}
            Some(value) => check_value(rule.name, rule.kind, value)?,
        }
    }
    if endpoint == Endpoint::Order {
        check_browser_info(form)?;
    }
    Ok(())
}

/// The operation of the documents each endpoint is.
fn operation(endpoint: Endpoint) -> (&'static str, &'static str) {
    match endpoint {
        Endpoint::Order => ("POST", "/v1/order"),
        Endpoint::Hpayment => ("POST", "/v1/hpayment"),
        Endpoint::Maintenance => (
            "POST",
            "/v1/maintenance/transaction/{transaction_reference}",
        ),
        Endpoint::TokenCreate => ("POST", "/create"),
    }
}

fn check_spec(spec: &ApiSpec, endpoint: Endpoint, form: &Form) -> Result<(), HipayError> {
    let pairs: Vec<(&String, &String)> =
        form.iter().filter(|(_, v)| !v.trim().is_empty()).collect();
    let mut value = form_value(&pairs);
    // HiPay also takes `browser_info` as one JSON-encoded field.
    if let Some(obj) = value.as_object_mut() {
        let parsed = obj
            .get("browser_info")
            .and_then(|v| v.as_str())
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .filter(serde_json::Value::is_object);
        if let Some(parsed) = parsed {
            obj.insert("browser_info".to_owned(), parsed);
        }
    }
    let (method, path) = operation(endpoint);
    match spec.validate_form(method, path, &value) {
        Ok(()) => Ok(()),
        Err(violations) => {
            let usable: Vec<&Violation> = violations
                .iter()
                .filter(|v| {
                    v.kind != ViolationKind::UnknownOperation && !length_written_as_bound(v, &value)
                })
                .collect();
            match usable.first() {
                None => {
                    tracing::warn!(?violations, "hipay: the documents lack an operation");
                    Ok(())
                }
                Some(v) => Err(violation_error(v)),
            }
        }
    }
}

/// gateway.yaml writes three lengths of `browser_info` as numeric bounds:
/// `color_depth` "minimum: 1, maximum: 2" beside an enum that goes to 48,
/// `screen_height` and `screen_width` "minimum: 1, maximum: 6" (a screen
/// 1080 pixels high). For those three only, a bound is read as a number
/// of digits, as the document means it; every other violation stands
/// (a `timezone` sent as a JSON number, where the document says string,
/// is refused).
fn length_written_as_bound(v: &Violation, body: &serde_json::Value) -> bool {
    let max_digits = match v.pointer.as_str() {
        "/browser_info/color_depth" => 2,
        "/browser_info/screen_height" | "/browser_info/screen_width" => 6,
        _ => return false,
    };
    if v.kind != ViolationKind::Range {
        return false;
    }
    let digits = match body.pointer(&v.pointer) {
        Some(serde_json::Value::Number(n)) => n.as_u64().map(|n| n.to_string().len()),
        Some(serde_json::Value::String(text)) => text
            .parse::<u64>()
            .ok()
            .map(|_| text.trim_start_matches('0').len().max(1)),
        _ => None,
    };
    digits.is_some_and(|d| (1..=max_digits).contains(&d))
}

/// HiPay's validation error for a violation of the documents.
fn violation_error(v: &Violation) -> HipayError {
    let field = {
        let dotted = v.dotted();
        if dotted.is_empty() {
            "body".to_owned()
        } else {
            dotted
        }
    };
    let (code, message) = match v.kind {
        ViolationKind::Required => (1_010_101, "Required Parameter Missing"),
        ViolationKind::Length => (1_010_202, "Invalid Parameter"),
        ViolationKind::Type => (1_010_204, "Invalid Parameter"),
        _ => (1_010_201, "Invalid Parameter"),
    };
    HipayError::bad(code, message, format!("{field}: {}", v.message))
}

fn check_value(name: &str, kind: Kind, value: &str) -> Result<(), HipayError> {
    let invalid = |why: &str| Err(HipayError::invalid(name, why));
    match kind {
        Kind::Str(None) => Ok(()),
        Kind::Str(Some(max)) => {
            if value.chars().count() > max {
                Err(HipayError::bad(
                    1_010_202,
                    "Invalid Parameter",
                    format!("{name}: the value exceeds the maximum of {max} characters"),
                ))
            } else {
                Ok(())
            }
        }
        Kind::Enum(values) => {
            if values.contains(&value) {
                Ok(())
            } else {
                invalid("the value is not one of the allowed values")
            }
        }
        Kind::Decimal(min_one) => {
            if !money::is_decimal(value) {
                return Err(HipayError::bad(
                    1_010_205,
                    "Invalid Parameter",
                    format!("{name}: expected a decimal number such as 49.90"),
                ));
            }
            let below_one = value.starts_with('-')
                || value
                    .split('.')
                    .next()
                    .is_some_and(|int| int.trim_start_matches('0').is_empty());
            if min_one && below_one {
                return invalid("the minimum is 1");
            }
            if value.starts_with('-') {
                return invalid("must not be negative");
            }
            Ok(())
        }
        Kind::Integer => {
            if value.parse::<i64>().is_ok() {
                Ok(())
            } else {
                Err(HipayError::bad(
                    1_010_204,
                    "Invalid Parameter",
                    format!("{name}: expected an integer"),
                ))
            }
        }
        Kind::IntegerMax(max) => match value.parse::<i64>() {
            Ok(v) if v <= max => Ok(()),
            Ok(_) => invalid(&format!("the maximum is {max}")),
            Err(_) => Err(HipayError::bad(
                1_010_204,
                "Invalid Parameter",
                format!("{name}: expected an integer"),
            )),
        },
        Kind::Uri => match url::Url::parse(value) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(()),
            _ => invalid("expected an absolute http(s) URL"),
        },
        Kind::Ip => {
            if value.parse::<std::net::IpAddr>().is_ok() {
                Ok(())
            } else {
                Err(HipayError::bad(
                    1_010_208,
                    "Invalid IP Address",
                    format!("{name}: not a valid IP address"),
                ))
            }
        }
        Kind::Json => {
            if serde_json::from_str::<serde_json::Value>(value).is_ok() {
                Ok(())
            } else {
                invalid("expected JSON")
            }
        }
        Kind::Date => {
            let ok = value.len() == 10
                && value.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            if ok {
                Ok(())
            } else {
                Err(HipayError::bad(
                    1_010_206,
                    "Invalid Date",
                    format!("{name}: expected YYYY-MM-DD"),
                ))
            }
        }
        Kind::Alpha(max) => {
            if value.chars().count() > max {
                Err(HipayError::bad(
                    1_010_202,
                    "Invalid Parameter",
                    format!("{name}: the value exceeds the maximum of {max} characters"),
                ))
            } else if !value.chars().all(|c| c.is_ascii_alphabetic()) {
                Err(HipayError::bad(
                    1_010_203,
                    "Invalid Parameter",
                    format!("{name}: contains non alphabetic characters"),
                ))
            } else {
                Ok(())
            }
        }
        Kind::Cvc => {
            if (3..=4).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                invalid("expected 3 or 4 digits")
            }
        }
    }
}

/// `browser_info` (PSD2): an object whose `language` is required, sent
/// either as JSON or as bracketed fields (`browser_info[language]`).
fn check_browser_info(form: &Form) -> Result<(), HipayError> {
    if let Some(json) = form.get("browser_info") {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|_| HipayError::invalid("browser_info", "expected a JSON object"))?;
        let obj = value
            .as_object()
            .ok_or_else(|| HipayError::invalid("browser_info", "expected a JSON object"))?;
        if obj
            .get("language")
            .and_then(|v| v.as_str())
            .is_none_or(str::is_empty)
        {
            return Err(HipayError::missing("browser_info[language]"));
        }
    } else if form.has_group("browser_info") && form.get("browser_info[language]").is_none() {
        return Err(HipayError::missing("browser_info[language]"));
    }
    Ok(())
}

// Enumerations copied from gateway.yaml (`Common.currency`,
// `InputOrder.payment_product`).
pub(crate) const CURRENCIES: &[&str] = &[
    "FRF", "SKK", "EEK", "TMT", "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG",
    "AZN", "BAM", "BBD", "BDT", "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN",
    "BWP", "BYR", "BZD", "CAD", "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUC", "CUP", "CVE",
    "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL",
    "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HRK", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LTL", "LVL", "LYD", "MAD", "MDL",
    "MGA", "MKD", "MMK", "MNT", "MOP", "MRO", "MUR", "MVR", "MWK", "MXN", "MYR", "MZN", "NAD",
    "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG",
    "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLL",
    "SOS", "SRD", "STD", "SVC", "SYP", "SZL", "THB", "TJS", "TND", "TOP", "TRY", "TTD", "TWD",
    "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VEF", "VND", "VUV", "TMM", "WST", "XAF", "XCD",
    "XOF", "XPF", "YER", "ZAR", "ZMK", "ZWL",
];

pub(crate) const PAYMENT_PRODUCTS: &[&str] = &[
    "visa",
    "mastercard",
    "maestro",
    "cb",
    "3xcb",
    "3xcb-no-fees",
    "4xcb",
    "4xcb-no-fees",
    "american-express",
    "bank-transfer",
    "bcmc",
    "bcmc-mobile",
    "cbc-online",
    "dexia-directnet",
    "giropay",
    "ideal",
    "ing-homepay",
    "kbc-online",
    "paypal",
    "paysafecard",
    "payulatam",
    "przelewy24",
    "qiwi-wallet",
    "sdd",
    "sisal",
    "sofort-uberweisung",
    "yandex",
    "aura",
    "boleto-bancario",
    "oxxo",
    "itau",
    "payshop",
    "dankort",
    "postepay",
    "ukash",
    "mercadopago",
    "webmoney-transfer",
    "diners",
    "jcb",
    "dcb-cz-tmobile",
    "dcb-cz-o2",
    "dcb-cz-vodafone",
    "dcb-at-tmobile",
    "dcb-at-a1",
    "dcb-at-orange",
    "dcb-at-drei",
    "dcb-be-mobistar",
    "dcb-it-mobilepay",
    "sct",
    "elo-card",
    "dcb-be-proximus",
    "postfinance-card",
    "postfinance-efinance",
    "carte-cadeau",
    "mybank",
    "safetypay",
    "skrill",
    "bnpp-4xcb",
    "bnpp-3xcb",
    "unionpay",
    "multi-payment",
    "discover",
    "sepa-refund-transfer",
    "banco-do-brasil",
    "bradesco",
    "carte-accord",
    "caixa",
    "edankort",
    "multibanco",
    "dcb-es-pagosmovistar",
    "cashu",
    "moneybookers",
    "afterpay",
    "cofinoga",
    "aurore",
    "1eurocom",
    "hipercard",
    "santander-home-banking",
    "santander-cash",
    "banamex",
    "bbva-bancomer",
    "ecarte-bleue",
    "credit-long",
    "carte-titre-restaurant",
    "divido",
    "bacs",
    "tpe",
    "wechatpay",
    "sofort-lastschrift",
    "sepa-direct-debit",
    "cup",
    "bancontactqrcode",
];
