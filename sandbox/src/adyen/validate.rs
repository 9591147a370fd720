//! Request validation, the way Adyen answers violations (`422`,
//! `errorType: validation`).
//!
//! The one place where requests are checked: [`Validator::check`]. It runs
//! the simulator's own checks of the fields it relies on (with Adyen's error
//! codes), then validates the body against `adyen/CheckoutService-v71.json`
//! through [`crate::openapi`] when the documents are available.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
};

use serde_json::{json, Map, Value};

use super::api::ApiError;
use crate::openapi::{ApiSpec, Violation, ViolationKind};

/// The official document this simulator validates against.
pub(crate) const SPEC_FILE: &str = "adyen/CheckoutService-v71.json";

/// The API operations whose bodies are validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operation {
    Payments,
    PaymentDetails,
    Captures,
    Cancels,
    Refunds,
    Reversals,
    StandaloneCancels,
}

impl Operation {
    /// Path template in the OpenAPI document (all operations are POST).
    pub(crate) fn openapi_path(self) -> &'static str {
        match self {
            Operation::Payments => "/payments",
            Operation::PaymentDetails => "/payments/details",
            Operation::Captures => "/payments/{paymentPspReference}/captures",
            Operation::Cancels => "/payments/{paymentPspReference}/cancels",
            Operation::Refunds => "/payments/{paymentPspReference}/refunds",
            Operation::Reversals => "/payments/{paymentPspReference}/reversals",
            Operation::StandaloneCancels => "/cancels",
        }
    }

    /// Name of the request schema, as Adyen's messages cite it.
    fn schema_name(self) -> &'static str {
        match self {
            Operation::Payments => "PaymentRequest",
            Operation::PaymentDetails => "PaymentDetailsRequest",
            Operation::Captures => "PaymentCaptureRequest",
            Operation::Cancels => "PaymentCancelRequest",
            Operation::Refunds => "PaymentRefundRequest",
            Operation::Reversals => "PaymentReversalRequest",
            Operation::StandaloneCancels => "StandalonePaymentCancelRequest",
        }
    }
}

/// How many refusals [`Validator::report`] keeps.
const KEPT_REFUSALS: usize = 50;

/// What the validator saw, for `GET {base}/_sandbox/validation`.
#[derive(Default)]
struct Seen {
    /// Requests checked, by `"POST /payments"`-style operation.
    checked: BTreeMap<String, u64>,
    /// The latest refusals, oldest first.
    refusals: VecDeque<Value>,
}

/// Validates request bodies.
#[derive(Clone, Default)]
pub(crate) struct Validator {
    /// The official document; `None`: schema validation is off.
    spec: Option<ApiSpec>,
    seen: Arc<Mutex<Seen>>,
}

impl Validator {
    pub(crate) fn new(specs: &crate::SpecSource) -> std::io::Result<Self> {
        Ok(Validator {
            spec: ApiSpec::load(specs, &[SPEC_FILE])?,
            seen: Arc::default(),
        })
    }

    /// Whether the documents were loaded, how many requests each operation
    /// checked, and the latest refusals: lets a test assert that everything
    /// a connector sent was checked against the official document and passed.
    pub(crate) fn report(&self) -> Value {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        json!({
            "documents": self.spec.is_some(),
            "document": SPEC_FILE,
            "checked": seen.checked,
            "violations": seen.refusals,
        })
    }

    /// Checks `body` (already parsed as a JSON object) for `op`, and
    /// records the outcome for [`Validator::report`].
    pub(crate) fn check(&self, op: Operation, body: &Map<String, Value>) -> Result<(), ApiError> {
        let outcome = self.check_body(op, body);
        let operation = format!("POST {}", op.openapi_path());
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        *seen.checked.entry(operation.clone()).or_default() += 1;
        if let Err(err) = &outcome {
            if seen.refusals.len() == KEPT_REFUSALS {
                seen.refusals.pop_front();
            }
            let mut refusal = err.body();
            refusal["operation"] = Value::String(operation);
            seen.refusals.push_back(refusal);
        }
        outcome
    }

    fn check_body(&self, op: Operation, body: &Map<String, Value>) -> Result<(), ApiError> {
        // Required members first, in the order Adyen reports them.
        let required: &[&str] = match op {
            Operation::Payments => &[
                "amount",
                "merchantAccount",
                "reference",
                "paymentMethod",
                "returnUrl",
            ],
            Operation::PaymentDetails => &["details"],
            Operation::Captures | Operation::Refunds => &["amount", "merchantAccount"],
            Operation::Cancels | Operation::Reversals => &["merchantAccount"],
            Operation::StandaloneCancels => &["merchantAccount", "paymentReference"],
        };
        for name in required {
            if body.get(*name).is_none_or(Value::is_null) {
                return Err(missing(name));
            }
        }
        if let Some(amount) = body.get("amount").filter(|v| !v.is_null()) {
            check_amount(amount)?;
        }
        for name in [
            "merchantAccount",
            "reference",
            "returnUrl",
            "paymentReference",
        ] {
            if let Some(v) = body.get(name).filter(|v| !v.is_null()) {
                if !v.is_string() {
                    return Err(ApiError::validation(
                        "000",
                        format!("Invalid value for field '{name}': a string is expected."),
                    ));
                }
            }
        }
        if let Some(reference) = body.get("reference").and_then(Value::as_str) {
            if reference.chars().count() > 80 {
                return Err(ApiError::validation(
                    "000",
                    "Field 'reference' is too long: at most 80 characters.",
                ));
            }
        }
        match op {
            Operation::Payments => {
                let method = body
                    .get("paymentMethod")
                    .and_then(Value::as_object)
                    .ok_or_else(|| {
                        ApiError::validation(
                            "000",
                            "Invalid value for field 'paymentMethod': an object is expected.",
                        )
                    })?;
                if !method.get("type").is_some_and(Value::is_string) {
                    return Err(missing("paymentMethod.type"));
                }
                if let Some(url) = body.get("returnUrl").and_then(Value::as_str) {
                    if url.trim().is_empty() {
                        return Err(missing("returnUrl"));
                    }
                    if url.len() > 8000 {
                        return Err(ApiError::validation(
                            "000",
                            "Field 'returnUrl' is too long: at most 8000 characters.",
                        ));
                    }
                }
            }
            Operation::PaymentDetails if !body.get("details").is_some_and(Value::is_object) => {
                return Err(ApiError::validation(
                    "000",
                    "Invalid value for field 'details': an object is expected.",
                ));
            }
            _ => {}
        }
        if let Some(spec) = &self.spec {
            let body = Value::Object(body.clone());
            if let Err(violations) = spec.validate_request("POST", op.openapi_path(), &body) {
                return Err(schema_error(op, &violations));
            }
        }
        Ok(())
    }
}

/// Adyen's answer to schema violations: unknown fields are listed together
/// (`Structure of PaymentRequest contains the following unknown fields: [x]`),
/// otherwise the first violation is reported.
fn schema_error(op: Operation, violations: &[Violation]) -> ApiError {
    let unknown: Vec<String> = violations
        .iter()
        .filter(|v| v.kind == ViolationKind::UnknownField)
        .map(Violation::dotted)
        .collect();
    if !unknown.is_empty() {
        return ApiError::validation(
            "000",
            format!(
                "Structure of {} contains the following unknown fields: [{}]",
                op.schema_name(),
                unknown.join(", ")
            ),
        );
    }
    let Some(first) = violations.first() else {
        return ApiError::validation("000", "Invalid request");
    };
    let field = first.dotted();
    match first.kind {
        ViolationKind::Required => missing(&field),
        _ if field.is_empty() => ApiError::validation("000", first.message.clone()),
        _ => ApiError::validation(
            "000",
            format!("Field '{field}' is not valid: {}", first.message),
        ),
    }
}

fn check_amount(amount: &Value) -> Result<(), ApiError> {
    let Some(amount) = amount.as_object() else {
        return Err(missing("amount"));
    };
    let value = amount.get("value").filter(|v| !v.is_null());
    let currency = amount.get("currency").filter(|v| !v.is_null());
    let (Some(value), Some(currency)) = (value, currency) else {
        return Err(missing(if amount.get("value").is_none_or(Value::is_null) {
            "amount.value"
        } else {
            "amount.currency"
        }));
    };
    if value.as_i64().is_none() {
        return Err(ApiError::validation(
            "137",
            "Invalid amount specified: 'amount.value' must be an integer in minor units.",
        ));
    }
    let currency = currency.as_str().unwrap_or_default();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::validation(
            "138",
            "Unsupported currency specified",
        ));
    }
    Ok(())
}

/// `Required field '<name>' is not provided.` with Adyen's code where known.
fn missing(name: &str) -> ApiError {
    match name {
        "returnUrl" => ApiError::validation("14_030", "Return URL is missing."),
        "amount" | "amount.value" => {
            ApiError::validation("100", format!("Required field '{name}' is not provided."))
        }
        "reference" => ApiError::validation("130", "Required field 'reference' is not provided."),
        _ => ApiError::validation("000", format!("Required field '{name}' is not provided.")),
    }
}
