//! Reading request bodies: bounded size and time, JSON syntax, then typed
//! fields, each failure a 4xx naming what is wrong.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Largest request body the API accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Time a client has to send a whole body. actix-web bounds the wait for
/// the request head (`client_request_timeout`) but not for the body, so
/// without this a client that sends headers and a few bytes, then stalls,
/// would keep its connection and the handler's memory for as long as it
/// likes; enough of them would exhaust the server. An honest client sends
/// an API body (64 KiB at most) in well under a second.
pub const BODY_READ_DEADLINE: Duration = Duration::from_secs(10);

/// Slowest rate tolerated beyond [`BODY_READ_DEADLINE`]: every byte received
/// extends the deadline at this rate, so a large upload (a plugin package of
/// many MiB) on a slow but working link completes, while a stalled one is
/// still cut off [`BODY_READ_DEADLINE`] after its last progress is used up.
pub const MIN_BODY_BYTES_PER_SEC: u64 = 256 * 1024;

pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    read_bounded(
        payload,
        MAX_BODY_BYTES,
        "body_too_large",
        "the request body",
    )
    .await
}

/// Reads a body of at most `limit` bytes; past it, a 413 with `code`. A
/// body that does not arrive in time (see [`BODY_READ_DEADLINE`]) is a 408
/// `body_timeout`.
pub async fn read_bounded(
    payload: web::Payload,
    limit: usize,
    code: &'static str,
    what: &str,
) -> Result<web::Bytes, ApiError> {
    read_within(payload, limit, code, what, BODY_READ_DEADLINE).await
}

/// [`read_bounded`] with the base deadline given (tests use a short one).
async fn read_within(
    mut payload: web::Payload,
    limit: usize,
    code: &'static str,
    what: &str,
    deadline: Duration,
) -> Result<web::Bytes, ApiError> {
    let started = tokio::time::Instant::now();
    let mut body = web::BytesMut::new();
    loop {
        let allowed = body_time_allowed(deadline, body.len());
        let next = tokio::time::timeout_at(started + allowed, payload.next())
            .await
            .map_err(|_| body_timeout(what, allowed))?;
        let Some(chunk) = next else {
            break;
        };
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

/// How long, from its start, reading a body may take once `received` bytes
/// have arrived.
fn body_time_allowed(deadline: Duration, received: usize) -> Duration {
    let received = u64::try_from(received).unwrap_or(u64::MAX);
    deadline + Duration::from_millis(received.saturating_mul(1000) / MIN_BODY_BYTES_PER_SEC)
}

fn body_timeout(what: &str, allowed: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "invalid_request_error",
        "body_timeout",
        format!(
            "{what} did not arrive within {:.1} s; send the whole body without pausing",
            allowed.as_secs_f64()
        ),
    )
}

/// Refuses control characters in a text field: a NUL cannot even be
/// stored in PostgreSQL text, and none belongs in a name, reference or
/// reason.
pub fn check_printable(param: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            param,
            format!("{param} must not contain control characters"),
        ));
    }
    Ok(())
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
    fn body_deadline_grows_only_with_progress() {
        let base = BODY_READ_DEADLINE;
        assert_eq!(body_time_allowed(base, 0), base);
        // A whole API body barely moves it.
        assert!(body_time_allowed(base, MAX_BODY_BYTES) <= base + Duration::from_secs(1));
        // A 64 MiB package gets 256 s more at the slowest tolerated rate.
        assert_eq!(
            body_time_allowed(base, 64 * 1024 * 1024),
            base + Duration::from_secs(256)
        );
        assert!(body_time_allowed(base, usize::MAX) > base);
    }

    #[actix_web::test]
    async fn a_stalled_body_is_a_408() {
        use std::pin::Pin;

        use actix_web::error::PayloadError;
        use actix_web::FromRequest;
        use futures_util::stream::{self, Stream};

        // A few bytes arrive, then nothing, as from a client that stalls.
        let stalled: Pin<Box<dyn Stream<Item = Result<web::Bytes, PayloadError>>>> = Box::pin(
            stream::iter([Ok(web::Bytes::from_static(b"{\"am"))]).chain(stream::pending()),
        );
        let req = actix_web::test::TestRequest::post().to_http_request();
        let mut dev_payload = actix_web::dev::Payload::from(stalled);
        let payload = web::Payload::from_request(&req, &mut dev_payload)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let error = read_within(
            payload,
            MAX_BODY_BYTES,
            "body_too_large",
            "the request body",
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(error.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(error.code, "body_timeout");
        assert!(
            error
                .message
                .starts_with("the request body did not arrive within 0.2 s"),
            "{}",
            error.message
        );
    }

    #[test]
    fn rejects_non_objects_and_bad_json() {
        assert_eq!(parse_object(b"[1]").unwrap_err().code, "json_invalid");
        assert_eq!(parse_object(b"{\"a\":").unwrap_err().code, "json_invalid");
        assert!(parse_object(b"  ").unwrap().is_object());
    }
}
