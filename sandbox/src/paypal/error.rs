//! PayPal's error answers: `{"name","message","debug_id","details":[{"field"?,
//! "value"?,"location"?,"issue","description"}],"links"}`, and the OAuth2
//! ones (`{"error","error_description"}`).

use actix_web::{body::BoxBody, http::StatusCode, HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::{state::PaypalState, validate::Violation};
use crate::util;

/// An error answer, ready to be sent.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {body}")]
pub(crate) struct PaypalError {
    pub status: StatusCode,
    pub body: Value,
}

fn debug_id() -> String {
    util::random_id("")
        .to_ascii_lowercase()
        .chars()
        .take(13)
        .collect()
}

fn info_link(issue: &str) -> Value {
    json!([{
        "href": format!("https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue}"),
        "rel": "information_link",
        "method": "GET"
    }])
}

/// The description PayPal's documents give `issue` (or a generic one).
pub(crate) fn describe(state: &PaypalState, issue: &str) -> String {
    state
        .issues
        .get(issue)
        .cloned()
        .unwrap_or_else(|| match issue {
            "INVALID_RESOURCE_ID" => {
                "Specified resource ID does not exist. Please check the resource ID and try again."
                    .to_owned()
            }
            _ => format!("{issue}."),
        })
}

impl PaypalError {
    fn named(status: StatusCode, name: &str, message: &str, details: Value, issue: &str) -> Self {
        PaypalError {
            status,
            body: json!({
                "name": name,
                "message": message,
                "debug_id": debug_id(),
                "details": details,
                "links": info_link(issue),
            }),
        }
    }

    /// 422 `UNPROCESSABLE_ENTITY` with one issue.
    pub(crate) fn unprocessable(state: &PaypalState, issue: &str) -> Self {
        Self::unprocessable_with(issue, &describe(state, issue))
    }

    pub(crate) fn unprocessable_with(issue: &str, description: &str) -> Self {
        Self::named(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "The requested action could not be performed, semantically incorrect, or failed business validation.",
            json!([{"issue": issue, "description": description}]),
            issue,
        )
    }

    /// 422 about one field of the body.
    pub(crate) fn unprocessable_field(
        state: &PaypalState,
        field: &str,
        value: Option<&str>,
        issue: &str,
    ) -> Self {
        let mut detail = json!({
            "field": field,
            "location": "body",
            "issue": issue,
            "description": describe(state, issue),
        });
        if let Some(value) = value {
            detail["value"] = json!(value);
        }
        Self::named(
            StatusCode::UNPROCESSABLE_ENTITY,
            "UNPROCESSABLE_ENTITY",
            "The requested action could not be performed, semantically incorrect, or failed business validation.",
            json!([detail]),
            issue,
        )
    }

    /// 404 `RESOURCE_NOT_FOUND` / `INVALID_RESOURCE_ID`.
    pub(crate) fn resource_not_found(state: &PaypalState) -> Self {
        let issue = "INVALID_RESOURCE_ID";
        Self::named(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
            "The specified resource does not exist.",
            json!([{"issue": issue, "description": describe(state, issue)}]),
            issue,
        )
    }

    /// 400 `INVALID_REQUEST` listing the schema violations.
    pub(crate) fn invalid_request(violations: Vec<Violation>) -> Self {
        let issue = violations
            .first()
            .map(|v| v.issue.to_owned())
            .unwrap_or_else(|| "INVALID_REQUEST".to_owned());
        let details: Vec<Value> = violations.into_iter().map(Violation::into_json).collect();
        Self::named(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "Request is not well-formed, syntactically incorrect, or violates schema.",
            Value::Array(details),
            &issue,
        )
    }

    /// 415 `UNSUPPORTED_MEDIA_TYPE`: a POST without `Content-Type:
    /// application/json` (`error_415` of PayPal's documents).
    pub(crate) fn unsupported_media_type() -> Self {
        PaypalError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            body: json!({
                "name": "UNSUPPORTED_MEDIA_TYPE",
                "message": "The server does not support the request payload's media type.",
                "debug_id": debug_id(),
                "links": info_link("UNSUPPORTED_MEDIA_TYPE"),
            }),
        }
    }

    /// 403 `NOT_AUTHORIZED` / `PERMISSION_DENIED`.
    pub(crate) fn permission_denied() -> Self {
        Self::named(
            StatusCode::FORBIDDEN,
            "NOT_AUTHORIZED",
            "Authorization failed due to insufficient permissions.",
            json!([{"issue": "PERMISSION_DENIED", "description": "You do not have permission to access or perform operations on this resource."}]),
            "PERMISSION_DENIED",
        )
    }

    /// 401 of the OAuth2 layer for a bad bearer token.
    pub(crate) fn invalid_token(description: &str) -> Self {
        PaypalError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({"error": "invalid_token", "error_description": description}),
        }
    }

    /// 401 without credentials.
    pub(crate) fn authentication_failure() -> Self {
        PaypalError {
            status: StatusCode::UNAUTHORIZED,
            body: json!({
                "name": "AUTHENTICATION_FAILURE",
                "message": "Authentication failed due to invalid authentication credentials or a missing Authorization header.",
                "links": [{"href": "https://developer.paypal.com/docs/api/overview/#error", "rel": "information_link"}],
            }),
        }
    }

    /// An OAuth2 token endpoint error.
    pub(crate) fn oauth(status: StatusCode, error: &str, description: &str) -> Self {
        PaypalError {
            status,
            body: json!({"error": error, "error_description": description}),
        }
    }

    /// 500 `INTERNAL_SERVER_ERROR`.
    pub(crate) fn internal() -> Self {
        PaypalError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({
                "name": "INTERNAL_SERVER_ERROR",
                "message": "An internal server error has occurred.",
                "debug_id": debug_id(),
                "links": info_link("INTERNAL_SERVER_ERROR"),
            }),
        }
    }
}

impl ResponseError for PaypalError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        HttpResponse::build(self.status)
            .content_type("application/json")
            .insert_header(("Paypal-Debug-Id", debug_id()))
            .body(self.body.to_string())
    }
}

/// The `http_500` fault's answer.
pub(crate) fn internal_server_error() -> HttpResponse {
    PaypalError::internal().error_response()
}

/// The answer of the `timeout` fault, once the 30 s are over.
pub(crate) fn service_unavailable() -> HttpResponse {
    PaypalError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: json!({
            "name": "SERVICE_UNAVAILABLE",
            "message": "Service Unavailable.",
            "debug_id": debug_id(),
            "links": info_link("SERVICE_UNAVAILABLE"),
        }),
    }
    .error_response()
}

/// Fallback for unknown paths of the API.
pub(crate) async fn not_found() -> HttpResponse {
    PaypalError {
        status: StatusCode::NOT_FOUND,
        body: json!({
            "name": "NOT_FOUND",
            "message": "The specified resource does not exist.",
            "debug_id": debug_id(),
            "links": info_link("NOT_FOUND"),
        }),
    }
    .error_response()
}
