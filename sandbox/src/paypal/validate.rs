//! Schema checks of request bodies, answered as PayPal does: 400
//! `INVALID_REQUEST` with `details[]` naming each field by JSON pointer.
//!
//! [`check`] is the one place the requests go through: first the rules of
//! `checkout_orders_v2.json` / `payments_payment_v2.json` that matter most,
//! written out here with PayPal's issue names (required members, enums,
//! string lengths, amount syntax, array sizes), then the whole documented
//! schema through [`crate::openapi`] (when the documents are found), its
//! violations mapped to PayPal's issues.

use serde_json::{json, Map, Value};

use super::error::PaypalError;
use crate::openapi::{self, ApiSpec, ViolationKind};

/// One schema violation, as PayPal lists it in `details[]`.
#[derive(Clone, Debug)]
pub(crate) struct Violation {
    pub field: String,
    pub value: Option<String>,
    pub location: &'static str,
    pub issue: &'static str,
    pub description: String,
}

impl Violation {
    pub(crate) fn body(field: &str, value: Option<&Value>, issue: &'static str) -> Self {
        Violation {
            field: field.to_owned(),
            value: value.map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
            location: "body",
            issue,
            description: default_description(issue).to_owned(),
        }
    }

    pub(crate) fn header(name: &str, issue: &'static str, description: &str) -> Self {
        Violation {
            field: name.to_owned(),
            value: None,
            location: "header",
            issue,
            description: description.to_owned(),
        }
    }

    pub(crate) fn into_json(self) -> Value {
        let mut v = json!({
            "field": self.field,
            "location": self.location,
            "issue": self.issue,
            "description": self.description,
        });
        if let Some(value) = self.value {
            v["value"] = json!(value);
        }
        v
    }
}

fn default_description(issue: &str) -> &'static str {
    match issue {
        "MISSING_REQUIRED_PARAMETER" => "A required field / parameter is missing.",
        "INVALID_PARAMETER_VALUE" => "The value of a field is invalid.",
        "INVALID_PARAMETER_SYNTAX" => {
            "The value of a field does not conform to the expected format."
        }
        "INVALID_STRING_LENGTH" => "The value of a field is either too short or too long.",
        "INVALID_ARRAY_MIN_ITEMS" => "The number of items in an array parameter is too small.",
        "INVALID_ARRAY_MAX_ITEMS" => "The number of items in an array parameter is too large.",
        "MALFORMED_REQUEST_JSON" => "The request JSON is not well formed.",
        _ => "The request is not valid.",
    }
}

/// The operations whose bodies are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    CreateOrder,
    CaptureOrAuthorizeOrder,
    CaptureAuthorization,
    RefundCapture,
    CreateWebhook,
}

/// Parses and checks the body of `op`: an empty body is `{}` where PayPal
/// allows it to be omitted.
pub(crate) fn check(
    spec: Option<&ApiSpec>,
    op: Operation,
    body: &[u8],
) -> Result<Map<String, Value>, PaypalError> {
    let optional = matches!(
        op,
        Operation::CaptureOrAuthorizeOrder
            | Operation::CaptureAuthorization
            | Operation::RefundCapture
    );
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        if optional {
            Value::Object(Map::new())
        } else {
            return Err(PaypalError::invalid_request(vec![Violation::body(
                "/",
                None,
                "MALFORMED_REQUEST_JSON",
            )]));
        }
    } else {
        serde_json::from_slice(body).map_err(|_| {
            PaypalError::invalid_request(vec![Violation::body("/", None, "MALFORMED_REQUEST_JSON")])
        })?
    };
    let Value::Object(obj) = value else {
        return Err(PaypalError::invalid_request(vec![Violation::body(
            "/",
            None,
            "MALFORMED_REQUEST_JSON",
        )]));
    };
    let mut out = Vec::new();
    match op {
        Operation::CreateOrder => create_order(&obj, &mut out),
        Operation::CaptureOrAuthorizeOrder => {
            if let Some(ps) = member(&obj, "payment_source") {
                if !ps.is_object() {
                    out.push(Violation::body(
                        "/payment_source",
                        Some(ps),
                        "INVALID_PARAMETER_SYNTAX",
                    ));
                }
            }
        }
        Operation::CaptureAuthorization => {
            optional_money(&obj, "amount", "/amount", &mut out);
            if let Some(v) = member(&obj, "final_capture") {
                if !v.is_boolean() {
                    out.push(Violation::body(
                        "/final_capture",
                        Some(v),
                        "INVALID_PARAMETER_SYNTAX",
                    ));
                }
            }
            string(&obj, "invoice_id", "/invoice_id", 1, 127, false, &mut out);
            string(
                &obj,
                "note_to_payer",
                "/note_to_payer",
                1,
                255,
                false,
                &mut out,
            );
            string(
                &obj,
                "soft_descriptor",
                "/soft_descriptor",
                1,
                22,
                false,
                &mut out,
            );
        }
        Operation::RefundCapture => {
            optional_money(&obj, "amount", "/amount", &mut out);
            string(&obj, "invoice_id", "/invoice_id", 1, 127, false, &mut out);
            string(&obj, "custom_id", "/custom_id", 1, 127, false, &mut out);
            string(
                &obj,
                "note_to_payer",
                "/note_to_payer",
                1,
                255,
                false,
                &mut out,
            );
        }
        Operation::CreateWebhook => {
            string(&obj, "url", "/url", 1, 2048, true, &mut out);
            match member(&obj, "event_types") {
                None => out.push(Violation::body(
                    "/event_types",
                    None,
                    "MISSING_REQUIRED_PARAMETER",
                )),
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let Some(t) = item.as_object() else {
                            out.push(Violation::body(
                                &format!("/event_types/{i}"),
                                Some(item),
                                "INVALID_PARAMETER_SYNTAX",
                            ));
                            continue;
                        };
                        string(
                            t,
                            "name",
                            &format!("/event_types/{i}/name"),
                            1,
                            127,
                            true,
                            &mut out,
                        );
                    }
                    if items.is_empty() {
                        out.push(Violation::body(
                            "/event_types",
                            None,
                            "INVALID_ARRAY_MIN_ITEMS",
                        ));
                    }
                }
                Some(other) => out.push(Violation::body(
                    "/event_types",
                    Some(other),
                    "INVALID_PARAMETER_SYNTAX",
                )),
            }
        }
    }
    if out.is_empty() {
        if let (Some(spec), Some((method, template))) = (spec, op.documented()) {
            if let Err(violations) =
                spec.validate_request(method, template, &Value::Object(obj.clone()))
            {
                out.extend(violations.iter().filter_map(|v| from_openapi(v, &obj)));
            }
        }
    }
    if out.is_empty() {
        Ok(obj)
    } else {
        for v in &mut out {
            v.description = description_400(op, v.issue).to_owned();
        }
        Err(PaypalError::invalid_request(out))
    }
}

/// [`check`], with a refusal recorded for `GET {base}/_sandbox/validation`.
pub(crate) fn check_recorded(
    state: &super::state::PaypalState,
    op: Operation,
    body: &[u8],
) -> Result<Map<String, Value>, PaypalError> {
    let outcome = check(state.spec.as_ref(), op, body);
    if let (Err(error), Some((method, template))) = (&outcome, op.documented()) {
        state
            .lock()
            .refused(format!("{method} {template}"), error.body.clone());
    }
    outcome
}

/// The description the official document gives `issue` in the 400 answer
/// of `op` (they differ slightly from one operation to another).
fn description_400(op: Operation, issue: &str) -> &'static str {
    match (op, issue) {
        (Operation::CreateOrder, "MISSING_REQUIRED_PARAMETER") => {
            "A required parameter is missing."
        }
        (
            Operation::CreateOrder | Operation::CaptureOrAuthorizeOrder,
            "INVALID_PARAMETER_VALUE",
        ) => "A parameter value is not valid.",
        (Operation::CreateOrder | Operation::CaptureOrAuthorizeOrder, "INVALID_STRING_LENGTH") => {
            "The value of a field is either too short or too long"
        }
        (Operation::CaptureOrAuthorizeOrder, "MISSING_REQUIRED_PARAMETER") => {
            "A required field / parameter is missing"
        }
        (_, issue) => default_description(issue),
    }
}

impl Operation {
    /// The documented operation (method, path template).
    fn documented(self) -> Option<(&'static str, &'static str)> {
        match self {
            Operation::CreateOrder => Some(("POST", "/v2/checkout/orders")),
            Operation::CaptureOrAuthorizeOrder => {
                Some(("POST", "/v2/checkout/orders/{id}/capture"))
            }
            Operation::CaptureAuthorization => Some((
                "POST",
                "/v2/payments/authorizations/{authorization_id}/capture",
            )),
            Operation::RefundCapture => Some(("POST", "/v2/payments/captures/{capture_id}/refund")),
            Operation::CreateWebhook => None,
        }
    }
}

/// A violation found by the generic validator, as PayPal names it.
fn from_openapi(v: &openapi::Violation, body: &Map<String, Value>) -> Option<Violation> {
    let issue = match v.kind {
        ViolationKind::Required => "MISSING_REQUIRED_PARAMETER",
        ViolationKind::Type | ViolationKind::Format | ViolationKind::Pattern => {
            "INVALID_PARAMETER_SYNTAX"
        }
        ViolationKind::Enum | ViolationKind::Range | ViolationKind::NoMatch => {
            "INVALID_PARAMETER_VALUE"
        }
        ViolationKind::UnknownField => "INVALID_PARAMETER_VALUE",
        ViolationKind::Length => "INVALID_STRING_LENGTH",
        ViolationKind::Size if v.message.contains("most") || v.message.contains("max") => {
            "INVALID_ARRAY_MAX_ITEMS"
        }
        ViolationKind::Size => "INVALID_ARRAY_MIN_ITEMS",
        ViolationKind::UnknownOperation => return None,
    };
    let field = if v.pointer.is_empty() {
        "/".to_owned()
    } else {
        v.pointer.clone()
    };
    let value = Value::Object(body.clone()).pointer(&v.pointer).cloned();
    tracing::debug!(field = %field, problem = %v.message, "paypal: schema violation");
    Some(Violation::body(
        &field,
        value
            .as_ref()
            .filter(|_| issue != "MISSING_REQUIRED_PARAMETER"),
        issue,
    ))
}

fn create_order(obj: &Map<String, Value>, out: &mut Vec<Violation>) {
    match member(obj, "intent") {
        None => out.push(Violation::body(
            "/intent",
            None,
            "MISSING_REQUIRED_PARAMETER",
        )),
        Some(v) if !matches!(v.as_str(), Some("CAPTURE" | "AUTHORIZE")) => {
            out.push(Violation::body(
                "/intent",
                Some(v),
                "INVALID_PARAMETER_VALUE",
            ));
        }
        Some(_) => {}
    }
    match member(obj, "purchase_units") {
        None => out.push(Violation::body(
            "/purchase_units",
            None,
            "MISSING_REQUIRED_PARAMETER",
        )),
        Some(Value::Array(units)) => {
            if units.is_empty() {
                out.push(Violation::body(
                    "/purchase_units",
                    None,
                    "INVALID_ARRAY_MIN_ITEMS",
                ));
            }
            if units.len() > 10 {
                out.push(Violation::body(
                    "/purchase_units",
                    None,
                    "INVALID_ARRAY_MAX_ITEMS",
                ));
            }
            for (i, unit) in units.iter().enumerate() {
                let base = format!("/purchase_units/{i}");
                let Some(unit) = unit.as_object() else {
                    out.push(Violation::body(
                        &base,
                        Some(unit),
                        "INVALID_PARAMETER_SYNTAX",
                    ));
                    continue;
                };
                match member(unit, "amount") {
                    None => out.push(Violation::body(
                        &format!("{base}/amount"),
                        None,
                        "MISSING_REQUIRED_PARAMETER",
                    )),
                    Some(amount) => money(amount, &format!("{base}/amount"), out),
                }
                string(
                    unit,
                    "reference_id",
                    &format!("{base}/reference_id"),
                    1,
                    256,
                    false,
                    out,
                );
                string(
                    unit,
                    "invoice_id",
                    &format!("{base}/invoice_id"),
                    1,
                    127,
                    false,
                    out,
                );
                string(
                    unit,
                    "custom_id",
                    &format!("{base}/custom_id"),
                    1,
                    255,
                    false,
                    out,
                );
                string(
                    unit,
                    "description",
                    &format!("{base}/description"),
                    1,
                    127,
                    false,
                    out,
                );
                string(
                    unit,
                    "soft_descriptor",
                    &format!("{base}/soft_descriptor"),
                    1,
                    22,
                    false,
                    out,
                );
            }
        }
        Some(other) => out.push(Violation::body(
            "/purchase_units",
            Some(other),
            "INVALID_PARAMETER_SYNTAX",
        )),
    }
    if let Some(ps) = member(obj, "payment_source") {
        match ps.as_object() {
            None => out.push(Violation::body(
                "/payment_source",
                Some(ps),
                "INVALID_PARAMETER_SYNTAX",
            )),
            Some(ps) => {
                if let Some(ctx) = ps
                    .get("paypal")
                    .and_then(|p| p.get("experience_context"))
                    .and_then(Value::as_object)
                {
                    let base = "/payment_source/paypal/experience_context";
                    url(ctx, "return_url", &format!("{base}/return_url"), out);
                    url(ctx, "cancel_url", &format!("{base}/cancel_url"), out);
                    enumerated(
                        ctx,
                        "user_action",
                        &format!("{base}/user_action"),
                        &["CONTINUE", "PAY_NOW"],
                        out,
                    );
                    enumerated(
                        ctx,
                        "shipping_preference",
                        &format!("{base}/shipping_preference"),
                        &["GET_FROM_FILE", "NO_SHIPPING", "SET_PROVIDED_ADDRESS"],
                        out,
                    );
                    string(
                        ctx,
                        "brand_name",
                        &format!("{base}/brand_name"),
                        1,
                        127,
                        false,
                        out,
                    );
                }
            }
        }
    }
    if let Some(ctx) = member(obj, "application_context").and_then(Value::as_object) {
        url(ctx, "return_url", "/application_context/return_url", out);
        url(ctx, "cancel_url", "/application_context/cancel_url", out);
        string(
            ctx,
            "brand_name",
            "/application_context/brand_name",
            1,
            127,
            false,
            out,
        );
    }
}

/// A member, `None` when absent or `null`.
pub(crate) fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn optional_money(obj: &Map<String, Value>, name: &str, field: &str, out: &mut Vec<Violation>) {
    if let Some(v) = member(obj, name) {
        money(v, field, out);
    }
}

/// `{"currency_code": 3 characters, "value": decimal string}`.
fn money(value: &Value, field: &str, out: &mut Vec<Violation>) {
    let Some(obj) = value.as_object() else {
        out.push(Violation::body(
            field,
            Some(value),
            "INVALID_PARAMETER_SYNTAX",
        ));
        return;
    };
    match member(obj, "currency_code") {
        None => out.push(Violation::body(
            &format!("{field}/currency_code"),
            None,
            "MISSING_REQUIRED_PARAMETER",
        )),
        Some(Value::String(c)) if c.chars().count() == 3 => {}
        Some(Value::String(c)) => out.push(Violation::body(
            &format!("{field}/currency_code"),
            Some(&Value::String(c.clone())),
            "INVALID_STRING_LENGTH",
        )),
        Some(other) => out.push(Violation::body(
            &format!("{field}/currency_code"),
            Some(other),
            "INVALID_PARAMETER_SYNTAX",
        )),
    }
    match member(obj, "value") {
        None => out.push(Violation::body(
            &format!("{field}/value"),
            None,
            "MISSING_REQUIRED_PARAMETER",
        )),
        Some(Value::String(v)) if v.len() <= 32 && decimal_syntax(v) => {}
        Some(other) => out.push(Violation::body(
            &format!("{field}/value"),
            Some(other),
            "INVALID_PARAMETER_SYNTAX",
        )),
    }
}

/// `^((-?[0-9]+)|(-?([0-9]+)?[.][0-9]+))$`, the pattern of `money.value`.
pub(crate) fn decimal_syntax(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    match digits.split_once('.') {
        None => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        Some((int, frac)) => {
            int.bytes().all(|b| b.is_ascii_digit())
                && !frac.is_empty()
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
    }
}

fn string(
    obj: &Map<String, Value>,
    name: &str,
    field: &str,
    min: usize,
    max: usize,
    required: bool,
    out: &mut Vec<Violation>,
) {
    match member(obj, name) {
        None if required => out.push(Violation::body(field, None, "MISSING_REQUIRED_PARAMETER")),
        None => {}
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > max {
                out.push(Violation::body(
                    field,
                    Some(&Value::String(s.clone())),
                    "INVALID_STRING_LENGTH",
                ));
            }
        }
        Some(other) => out.push(Violation::body(
            field,
            Some(other),
            "INVALID_PARAMETER_SYNTAX",
        )),
    }
}

fn url(obj: &Map<String, Value>, name: &str, field: &str, out: &mut Vec<Violation>) {
    match member(obj, name) {
        None => {}
        Some(Value::String(s))
            if url::Url::parse(s)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false) => {}
        Some(other) => out.push(Violation::body(
            field,
            Some(other),
            "INVALID_PARAMETER_SYNTAX",
        )),
    }
}

fn enumerated(
    obj: &Map<String, Value>,
    name: &str,
    field: &str,
    allowed: &[&str],
    out: &mut Vec<Violation>,
) {
    if let Some(v) = member(obj, name) {
        if !v.as_str().is_some_and(|s| allowed.contains(&s)) {
            out.push(Violation::body(field, Some(v), "INVALID_PARAMETER_VALUE"));
        }
    }
}

// ---------------------------------------------------------------------------
// Headers, media type and the documented operations

/// The rules of one documented header parameter.
#[derive(Clone, Debug)]
pub(crate) struct HeaderRule {
    pub name: String,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub pattern: Option<regex::Regex>,
}

/// One operation of the official documents.
#[derive(Clone, Debug)]
pub(crate) struct DocumentedOperation {
    /// Upper case.
    pub method: String,
    /// As the document writes it: `/v2/checkout/orders/{id}`.
    pub template: String,
    pub operation_id: Option<String>,
    pub headers: Vec<HeaderRule>,
}

impl DocumentedOperation {
    /// Whether `path` is an instance of this operation's template.
    fn matches(&self, path: &str) -> bool {
        let template: Vec<&str> = self.template.split('/').collect();
        let actual: Vec<&str> = path.split('/').collect();
        template.len() == actual.len()
            && template.iter().zip(&actual).all(|(t, a)| {
                if t.starts_with('{') && t.ends_with('}') {
                    !a.is_empty()
                } else {
                    t == a
                }
            })
    }

    fn literal_segments(&self) -> usize {
        self.template
            .split('/')
            .filter(|s| !s.starts_with('{'))
            .count()
    }
}

/// `$ref`s resolved within `root`.
fn resolve<'a>(root: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..8 {
        match value
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| root.pointer(p))
        {
            Some(target) => value = target,
            None => break,
        }
    }
    value
}

/// Every operation of `documents`, with its header parameters' rules.
pub(crate) fn documented_operations(documents: &[Value]) -> Vec<DocumentedOperation> {
    let mut out = Vec::new();
    for root in documents {
        let Some(paths) = root.get("paths").and_then(Value::as_object) else {
            continue;
        };
        for (template, item) in paths {
            let shared = item.get("parameters").and_then(Value::as_array);
            for method in ["get", "post", "put", "patch", "delete"] {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let own = op.get("parameters").and_then(Value::as_array);
                let headers = shared
                    .into_iter()
                    .chain(own)
                    .flatten()
                    .map(|p| resolve(root, p))
                    .filter(|p| p.get("in").and_then(Value::as_str) == Some("header"))
                    .filter_map(|p| {
                        let name = p.get("name")?.as_str()?.to_owned();
                        let schema = p.get("schema").map(|s| resolve(root, s));
                        let number = |key: &str| {
                            schema
                                .and_then(|s| s.get(key))
                                .and_then(Value::as_u64)
                                .and_then(|n| usize::try_from(n).ok())
                        };
                        Some(HeaderRule {
                            name,
                            min_length: number("minLength"),
                            max_length: number("maxLength"),
                            pattern: schema
                                .and_then(|s| s.get("pattern"))
                                .and_then(Value::as_str)
                                .and_then(|p| regex::Regex::new(p).ok()),
                        })
                    })
                    .collect();
                out.push(DocumentedOperation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    operation_id: op
                        .get("operationId")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    headers,
                });
            }
        }
    }
    out
}

/// The documented operation `method path` is an instance of (the template
/// with the most literal segments when several match).
pub(crate) fn find_operation<'a>(
    operations: &'a [DocumentedOperation],
    method: &str,
    path: &str,
) -> Option<&'a DocumentedOperation> {
    operations
        .iter()
        .filter(|op| op.method.eq_ignore_ascii_case(method) && op.matches(path))
        .max_by_key(|op| op.literal_segments())
}

/// The documented header parameters the request breaks: length and
/// pattern of each one present (unknown headers are PayPal's to ignore).
pub(crate) fn check_headers(
    operation: &DocumentedOperation,
    header: impl Fn(&str) -> Option<String>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for rule in &operation.headers {
        let Some(value) = header(&rule.name) else {
            continue;
        };
        let length = value.chars().count();
        if rule.min_length.is_some_and(|min| length < min)
            || rule.max_length.is_some_and(|max| length > max)
        {
            out.push(Violation::header(
                &rule.name,
                "INVALID_STRING_LENGTH",
                default_description("INVALID_STRING_LENGTH"),
            ));
        } else if rule.pattern.as_ref().is_some_and(|p| !p.is_match(&value)) {
            out.push(Violation::header(
                &rule.name,
                "INVALID_PARAMETER_SYNTAX",
                default_description("INVALID_PARAMETER_SYNTAX"),
            ));
        }
    }
    out
}

/// Whether a request must carry `Content-Type: application/json`: every
/// POST, PUT and PATCH of the REST API, with a body or not (the void of an
/// authorization has none), save the form-encoded OAuth token request.
pub(crate) fn needs_json_media_type(method: &str, path: &str) -> bool {
    matches!(method, "POST" | "PUT" | "PATCH")
        && (path.starts_with("/v1/") || path.starts_with("/v2/"))
        && path != "/v1/oauth2/token"
}

/// Whether a `Content-Type` value is JSON (`application/json`, with or
/// without parameters such as `charset`).
pub(crate) fn is_json_media_type(value: Option<&str>) -> bool {
    value
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for ok in ["10", "10.00", ".5", "-1.5", "0"] {
            assert!(decimal_syntax(ok), "{ok}");
        }
        for bad in ["", "1.", "1,00", "abc", "1e3", "--1", "1.2.3"] {
            assert!(!decimal_syntax(bad), "{bad}");
        }
    }

    #[test]
    fn create_order_violations() {
        let err = check(
            None,
            Operation::CreateOrder,
            br#"{"intent":"SALE","purchase_units":[{"amount":{"currency_code":"EURO","value":"1,00"}}]}"#,
        )
        .err()
        .map(|e| e.body);
        let details = err.as_ref().and_then(|b| b["details"].as_array()).cloned();
        let fields: Vec<String> = details
            .unwrap_or_default()
            .iter()
            .map(|d| {
                format!(
                    "{}:{}",
                    d["field"].as_str().unwrap_or(""),
                    d["issue"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                "/intent:INVALID_PARAMETER_VALUE",
                "/purchase_units/0/amount/currency_code:INVALID_STRING_LENGTH",
                "/purchase_units/0/amount/value:INVALID_PARAMETER_SYNTAX",
            ]
        );
    }
}
