//! HiPay's error answer: `{"code": <int>, "message": "...", "description": "..."}`.

use actix_web::{body::BoxBody, http::StatusCode, HttpResponse, ResponseError};
use serde_json::json;

/// An error answered the way HiPay answers it.
#[derive(Debug, thiserror::Error)]
#[error("{code} {message}: {description}")]
pub(crate) struct HipayError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    pub description: String,
    /// A body sent as is instead of the JSON error (the `malformed` fault).
    pub raw_body: Option<&'static str>,
}

impl HipayError {
    pub fn new(
        status: StatusCode,
        code: u32,
        message: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        HipayError {
            status,
            code,
            message: message.into(),
            description: description.into(),
            raw_body: None,
        }
    }

    /// A 200 `application/json` answer whose body is `body`, not JSON (the
    /// `malformed` fault).
    pub fn malformed(body: &'static str) -> Self {
        HipayError {
            raw_body: Some(body),
            ..Self::new(StatusCode::OK, 0, "malformed", "simulated malformed answer")
        }
    }

    /// 400 with `code`.
    pub fn bad(code: u32, message: impl Into<String>, description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message, description)
    }

    /// 1000001, 401.
    pub fn credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            1_000_001,
            "Incorrect Credentials _ Username and/or password is incorrect",
            "",
        )
    }

    /// 1010101: a required parameter is missing.
    pub fn missing(name: &str) -> Self {
        Self::bad(
            1_010_101,
            "Required Parameter Missing",
            format!("A required parameter is missing: {name}"),
        )
    }

    /// 1010201: a parameter is in an invalid format.
    pub fn invalid(name: &str, why: &str) -> Self {
        Self::bad(1_010_201, "Invalid Parameter", format!("{name}: {why}"))
    }

    /// 3000002, 404.
    pub fn unknown_transaction(reference: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            3_000_002,
            "Unknown Transaction",
            format!("Transaction not found: {reference}"),
        )
    }

    /// 1010001, 405.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            1_010_001,
            "Method Not Allowed",
            "The specified HTTP Method is not allowed for this API call",
        )
    }

    pub fn internal(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            1_000_008,
            "Temporarily Unavailable",
            description,
        )
    }
}

/// The JSON body of an error.
pub(crate) fn error_response(
    status: StatusCode,
    code: u32,
    message: &str,
    description: &str,
) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "code": code,
        "message": message,
        "description": description,
    }))
}

impl ResponseError for HipayError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        if let Some(body) = self.raw_body {
            return HttpResponse::build(self.status)
                .content_type("application/json")
                .body(body);
        }
        error_response(self.status, self.code, &self.message, &self.description)
    }
}
