//! The API's error shape:
//! `{"error":{"type","code","message","param","request_id"}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::payments::PaymentError;
use crate::runtime::PluginError;

#[derive(Debug, Clone, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            param: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// A bad field in the request.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            message,
        )
        .with_param(param)
    }

    pub fn missing(param: impl Into<String>) -> Self {
        let param = param.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_missing",
            format!("{param} is required"),
        )
        .with_param(param)
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            format!("no {what} with id {id:?}"),
        )
        .with_param("id")
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            message,
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }

    /// The JSON answer, with the id of the request being answered (the
    /// same as its `X-Request-Id` header).
    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "error": self });
        if let Some(id) = super::observe::current_request_id() {
            body["error"]["request_id"] = serde_json::Value::String(id);
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(self.body())
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        use PaymentError as E;
        match error {
            E::NotFound(id) => ApiError::not_found("payment", &id),
            E::InvalidState { code, message } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
            }
            E::Invalid { param, message } => ApiError::invalid(param, message),
            E::Declined { code, message } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "connector_error",
                code,
                message,
            ),
            E::ConnectorUnavailable { message } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "connector_error",
                "connector_unavailable",
                message,
            ),
            E::ConnectorMisconfigured { message } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "connector_error",
                "connector_misconfigured",
                message,
            ),
            // The operator disabled or removed the connector: nothing was
            // sent to the provider, so the storefront may retry later.
            E::Plugin(e @ PluginError::Disabled(_)) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "connector_error",
                "connector_disabled",
                e.to_string(),
            ),
            E::Plugin(e @ PluginError::NotInstalled(_)) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "connector_error",
                "connector_not_installed",
                e.to_string(),
            ),
            // The connector's concurrency limit: nothing was sent to the
            // provider; the storefront may retry shortly.
            E::Plugin(e @ PluginError::Busy { .. }) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "connector_error",
                "connector_busy",
                e.to_string(),
            ),
            E::Plugin(e) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "connector_error",
                "plugin_failed",
                e.to_string(),
            ),
            E::Busy => ApiError::new(
                StatusCode::CONFLICT,
                "invalid_request_error",
                "payment_busy",
                "another operation on this payment is in progress; retry",
            ),
            E::Store(e) => {
                tracing::error!(error = %e, "store error");
                ApiError::internal()
            }
            E::Internal(message) => {
                tracing::error!(%message, "internal error");
                ApiError::internal()
            }
        }
    }
}
