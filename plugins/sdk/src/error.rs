//! Building [`ConnectorError`]s.
//!
//! The `kind` is what the host acts on, so choose it by what a retry would do:
//!
//! | kind | when | host |
//! |---|---|---|
//! | `retryable` | unreachable, timeout, 5xx, garbage | may retry; a `sync` tells what happened |
//! | `rejected` | the provider said no to this request | reports the failure |
//! | `invalid-config` | credentials or settings wrong or missing | flags the account |
//! | `invalid-request` | the request cannot be served by this connector | reports to the caller |
//! | `unsupported` | operation not implemented | reports to the caller |
//! | `invalid-signature` | a notification failed verification | answers 401 to the sender |

use crate::types::{ConnectorError, ErrorKind};

/// At most this many characters of a provider's body go into a message.
const MAX_MESSAGE_CHARS: usize = 300;

impl ConnectorError {
    /// A new error of `kind` with a machine `code` and an operator `message`.
    pub fn new(kind: ErrorKind, code: impl Into<String>, message: impl Into<String>) -> Self {
        ConnectorError {
            kind,
            code: code.into(),
            message: message.into(),
            field: None,
        }
    }

    /// The provider could not be reached or answered 5xx or garbage: the
    /// operation may or may not have happened.
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retryable, code, message)
    }

    /// The provider rejected the request (its own `code`); repeating it will not help.
    pub fn rejected(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, code, message)
    }

    /// The account's setting `field` is wrong or missing (code `invalid_config`).
    pub fn invalid_config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, "invalid_config", message).with_field(field)
    }

    /// The request's `field` cannot be served by this connector (code `invalid_request`).
    pub fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequest, "invalid_request", message).with_field(field)
    }

    /// The connector does not implement this operation (code `unsupported`).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, "unsupported", message)
    }

    /// A notification failed verification (code `invalid_signature`).
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidSignature, "invalid_signature", message)
    }

    /// Replaces the machine code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = code.into();
        self
    }

    /// Names the request or config field the error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// True for [`ErrorKind::Retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Retryable
    }
}

/// The usual reading of a non-2xx answer when the provider's body says
/// nothing more specific: 5xx → `retryable` `http_<status>`, 401/403 →
/// `invalid-config` (field `credentials`), other 4xx → `rejected`
/// `http_<status>`. Anything else (1xx, 3xx: unexpected for an API) is
/// `retryable`. The message carries the start of the body.
pub fn classify_http_status(status: u16, body: &[u8]) -> ConnectorError {
    let code = format!("http_{status}");
    let message = body_excerpt(status, body);
    match status {
        401 | 403 => ConnectorError::invalid_config("credentials", message).with_code(code),
        400..=499 => ConnectorError::rejected(code, message),
        _ => ConnectorError::retryable(code, message),
    }
}

/// "HTTP 503: <start of the body>", cut at [`MAX_MESSAGE_CHARS`] characters.
pub(crate) fn body_excerpt(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut message = format!("HTTP {status}");
    if !text.is_empty() {
        message.push_str(": ");
        // Control characters (a NUL in garbage, ANSI escapes) have no
        // place in an operator's message or a log line.
        let printable = |c: char| if c.is_control() { ' ' } else { c };
        message.extend(text.chars().take(MAX_MESSAGE_CHARS).map(printable));
        if text.chars().count() > MAX_MESSAGE_CHARS {
            message.push('…');
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        let e = classify_http_status(503, b"down");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Retryable, "http_503")
        );
        assert_eq!(e.message, "HTTP 503: down");
        let e = classify_http_status(401, b"");
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert_eq!(e.message, "HTTP 401");
        assert_eq!(
            classify_http_status(403, b"").kind,
            ErrorKind::InvalidConfig
        );
        let e = classify_http_status(422, b"no");
        assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Rejected, "http_422"));
        assert_eq!(classify_http_status(302, b"").kind, ErrorKind::Retryable);
        assert_eq!(
            classify_http_status(500, b"a\0b\x1b[1m").message,
            "HTTP 500: a b [1m"
        );
    }

    #[test]
    fn constructors() {
        let e = ConnectorError::invalid_config("api_key", "missing");
        assert_eq!(e.kind, ErrorKind::InvalidConfig);
        assert_eq!(e.field.as_deref(), Some("api_key"));
        assert!(ConnectorError::retryable("timeout", "").is_retryable());
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(1000);
        let e = classify_http_status(500, body.as_bytes());
        assert_eq!(
            e.message.chars().count(),
            "HTTP 500: ".len() + MAX_MESSAGE_CHARS + 1
        );
    }
}
