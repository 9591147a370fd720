//! Reading request bodies: bounded size, JSON syntax, then typed fields,
//! each failure a 4xx naming what is wrong.

use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    read_bounded(
        payload,
        MAX_BODY_BYTES,
        "body_too_large",
        "the request body",
    )
    .await
}

/// Reads a body of at most `limit` bytes; past it, a 413 with `code`.
pub async fn read_bounded(
    mut payload: web::Payload,
    limit: usize,
    code: &'static str,
    what: &str,
) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "body_unreadable",
                e.to_string(),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                code,
                format!("{what} exceeds {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a JSON object body (an empty body counts as `{}`).
pub fn parse_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "json_invalid",
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "json_invalid",
            "the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Deserializes into `T`, naming the offending field on failure.
pub fn typed<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        field_error(&path, &inner)
    })
}

fn field_error(path: &str, message: &str) -> ApiError {
    let prefix = if path == "." {
        String::new()
    } else {
        format!("{path}.")
    };
    // serde says "missing field `amount`" at the parent's path.
    if let Some(field) = between(message, "missing field `", "`") {
        return ApiError::missing(format!("{prefix}{field}"));
    }
    if let Some(field) = between(message, "unknown field `", "`") {
        // serde reports an unknown field at its own path.
        let param = if path.ends_with(field) {
            path.to_string()
        } else {
            format!("{prefix}{field}")
        };
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_unknown",
            format!("unknown parameter {param}"),
        )
        .with_param(param);
    }
    let param = if path == "." {
        "body".to_string()
    } else {
        path.to_string()
    };
    // Never echo the offending value: it may be a card number.
    let message = match message.find(", expected") {
        _ if param.ends_with("amount") => format!(
            "{param} must be a positive integer in the currency's minor units (10.50 EUR is 1050)"
        ),
        Some(i) => format!("{param} is invalid: {}", &message[i + 2..]),
        None => format!("{param} is invalid"),
    };
    ApiError::invalid(param, message)
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        number: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        amount: u64,
        card: Inner,
    }

    #[test]
    fn names_missing_nested_and_mistyped_fields() {
        let e = typed::<Outer>(serde_json::json!({"card": {"number": "1"}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"));
        assert_eq!(e.code, "parameter_missing");
        let e = typed::<Outer>(serde_json::json!({"amount": 1, "card": {}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("card.number"));
        let e = typed::<Outer>(serde_json::json!({"amount": 10.5, "card": {"number": "1"}}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"));
        let e =
            typed::<Outer>(serde_json::json!({"amount": -3, "card": {"number": "1"}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("amount"));
        let e = typed::<Outer>(
            serde_json::json!({"amount": 1, "card": {"number": 4111111111111111u64}}),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("card.number"));
        assert!(!e.message.contains("4111111111111111"), "{}", e.message);
        let e = typed::<Outer>(serde_json::json!({"amount": 1, "card": {"number": "1"}, "x": 1}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("x"));
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        assert_eq!(parse_object(b"[1]").unwrap_err().code, "json_invalid");
        assert_eq!(parse_object(b"{\"a\":").unwrap_err().code, "json_invalid");
        assert!(parse_object(b"  ").unwrap().is_object());
    }
}
