//! Outbound HTTP through the host: the only way a connector reaches the
//! network. The host lets through only the hosts allowed for the account's
//! environment and bounds sizes and time.
//!
//! ```ignore
//! let charge: Charge = Request::post_json(format!("{base}/v1/charges"), &body)
//!     .bearer(api_key)
//!     .header("Idempotency-Key", &request.idempotency_key)
//!     .send()?          // transport errors → ConnectorError
//!     .error_for_status()? // non-2xx → classify_http_status
//!     .json()?;         // garbage → retryable
//! ```

use crate::crypto::base64_encode;
use crate::error::{body_excerpt, classify_http_status};
use crate::types::{ConnectorError, HttpHeader, Notification};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crate::bindings::passerelle::connector::http::HttpError;

/// An HTTP request to send through the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// "GET", "POST", ...
    pub method: String,
    /// Absolute URL.
    pub url: String,
    /// Headers in order; names are sent as given.
    pub headers: Vec<HttpHeader>,
    /// Raw body.
    pub body: Vec<u8>,
    /// Per-request timeout; the host caps it with its own limit.
    pub timeout_ms: Option<u32>,
    /// A body that failed to serialize: reported by [`Request::send`], so the
    /// builder stays chainable.
    deferred_error: Option<String>,
}

impl Request {
    /// A request with `method` and no headers or body.
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: None,
            deferred_error: None,
        }
    }

    /// A `GET`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` with an empty body.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A `POST` of `body` as JSON (`Content-Type: application/json`).
    pub fn post_json<T: Serialize + ?Sized>(url: impl Into<String>, body: &T) -> Self {
        Self::post(url).json(body)
    }

    /// A `POST` of `fields` as `application/x-www-form-urlencoded`.
    pub fn post_form<K: AsRef<str>, V: AsRef<str>>(
        url: impl Into<String>,
        fields: &[(K, V)],
    ) -> Self {
        Self::post(url).form(fields)
    }

    /// Sets the body to `body` as JSON, with its content type.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body = bytes,
            Err(e) => self.deferred_error = Some(e.to_string()),
        }
        self.header("Content-Type", "application/json")
    }

    /// Sets the body to `fields`, form-encoded, with its content type.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, fields: &[(K, V)]) -> Self {
        self.body = form_encode(fields).into_bytes();
        self.header("Content-Type", "application/x-www-form-urlencoded")
    }

    /// Sets a raw body (set the content type yourself).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Adds a header (`Accept: application/json` is not added for you).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HttpHeader {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", format!("Bearer {token}"))
    }

    /// `Authorization: Basic base64(<user>:<password>)`.
    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        let credentials = base64_encode(format!("{user}:{password}"));
        self.header("Authorization", format!("Basic {credentials}"))
    }

    /// Sets the request's timeout (the host caps it).
    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// The first header named `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Sends the request through the host. Transport failures become
    /// [`ConnectorError`]s (see [`transport_error`]); any HTTP status is an
    /// `Ok` [`Response`].
    pub fn send(self) -> Result<Response, ConnectorError> {
        self.send_raw().map_err(transport_error)
    }

    /// Sends the request and returns the host's transport error as is.
    pub fn send_raw(self) -> Result<Response, HttpError> {
        if let Some(e) = &self.deferred_error {
            return Err(HttpError::InvalidRequest(format!("body: {e}")));
        }
        crate::host::http_send(&self)
    }
}

/// The provider's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<HttpHeader>,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status` and `body` and no headers (for tests).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A JSON response (for tests).
    pub fn from_json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status, body.to_string()).with_header("Content-Type", "application/json")
    }

    /// Adds a header (for tests).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(HttpHeader {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body parsed as JSON into `T`. A body that does not parse is
    /// `retryable` `invalid_response`: the provider answered garbage, and the
    /// operation may have happened.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ConnectorError::retryable(
                "invalid_response",
                format!(
                    "unexpected response body ({e}); {}",
                    body_excerpt(self.status, &self.body)
                ),
            )
        })
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Ok(self)` for 2xx, else [`classify_http_status`]. Providers with
    /// structured error bodies usually want their own mapping first.
    pub fn error_for_status(self) -> Result<Self, ConnectorError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(classify_http_status(self.status, &self.body))
        }
    }
}

/// Maps a transport error to a [`ConnectorError`]: `timeout`, `connect`,
/// `too-large` and `other` are `retryable` (the request may or may not have
/// reached the provider), `denied` is `invalid-config` (field `base_url`: the
/// destination is not allowed for the account), a malformed request is
/// `invalid-request`.
pub fn transport_error(error: HttpError) -> ConnectorError {
    match error {
        HttpError::Timeout => {
            ConnectorError::retryable("timeout", "the provider did not answer in time")
        }
        HttpError::Connect(m) => ConnectorError::retryable("connect", m),
        HttpError::TooLarge => ConnectorError::retryable(
            "too_large",
            "request or response over the host's size limit",
        ),
        HttpError::Other(m) => ConnectorError::retryable("http_error", m),
        HttpError::Denied(m) => {
            ConnectorError::invalid_config("base_url", m).with_code("egress_denied")
        }
        HttpError::InvalidRequest(m) => {
            ConnectorError::invalid_request("request", m).with_code("invalid_http_request")
        }
    }
}

impl Notification {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

fn find_header<'a>(headers: &'a [HttpHeader], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

/// Encodes `fields` as `application/x-www-form-urlencoded` (`a=1&b=x+y`).
pub fn form_encode<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_component(k.as_ref(), true, &mut out);
        out.push('=');
        encode_component(v.as_ref(), true, &mut out);
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` string (a query string
/// without its `?`, a form body). Invalid escapes are kept literally.
pub fn form_decode(input: &str) -> Vec<(String, String)> {
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// Percent-encodes `input` for a URL path segment or query value (RFC 3986
/// unreserved characters are kept; space is `%20`).
pub fn percent_encode(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    encode_component(input, false, &mut out);
    out
}

fn encode_component(input: &str, space_as_plus: bool, out: &mut String) {
    for &b in input.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' if space_as_plus => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 15) as usize] as char);
            }
        }
    }
}

fn decode_component(input: &str) -> String {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex_val(*hi).zip(hex_val(*lo)),
            _ => None,
        };
        match (bytes[i], escaped) {
            (_, Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_round_trip() {
        let fields = [("a b", "x&y=z"), ("é", "~-._"), ("empty", "")];
        let encoded = form_encode(&fields);
        assert_eq!(encoded, "a+b=x%26y%3Dz&%C3%A9=~-._&empty=");
        let decoded = form_decode(&encoded);
        let expected: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(decoded, expected);
        assert_eq!(
            form_decode("a=%zz&b=%4"),
            vec![("a".into(), "%zz".into()), ("b".into(), "%4".into())]
        );
        assert_eq!(percent_encode("ch 1/2"), "ch%201%2F2");
    }

    #[test]
    fn builder() {
        let r = Request::post_json("https://x/y", &serde_json::json!({"a": 1}))
            .bearer("k")
            .timeout_ms(5);
        assert_eq!(r.method, "POST");
        assert_eq!(r.header_value("content-type"), Some("application/json"));
        assert_eq!(r.header_value("Authorization"), Some("Bearer k"));
        assert_eq!(r.text(), r#"{"a":1}"#);
        let r = Request::get("u").basic_auth("Aladdin", "open sesame");
        assert_eq!(
            r.header_value("authorization"),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        let r = Request::post_form("u", &[("k", "v w")]);
        assert_eq!(r.text(), "k=v+w");
    }

    #[test]
    fn transport_errors() {
        use crate::types::ErrorKind;
        assert_eq!(
            transport_error(HttpError::Timeout).kind,
            ErrorKind::Retryable
        );
        assert_eq!(
            transport_error(HttpError::Connect("x".into())).kind,
            ErrorKind::Retryable
        );
        assert_eq!(
            transport_error(HttpError::TooLarge).kind,
            ErrorKind::Retryable
        );
        assert_eq!(
            transport_error(HttpError::Other("x".into())).kind,
            ErrorKind::Retryable
        );
        let denied = transport_error(HttpError::Denied("x".into()));
        assert_eq!(denied.kind, ErrorKind::InvalidConfig);
        assert_eq!(denied.field.as_deref(), Some("base_url"));
    }

    #[test]
    fn response_json() {
        let r = Response::new(200, "not json");
        let e = r.json::<serde_json::Value>().unwrap_err();
        assert!(e.is_retryable());
        assert_eq!(e.code, "invalid_response");
        let r = Response::from_json(201, &serde_json::json!({"id": "x"}));
        assert_eq!(r.json::<serde_json::Value>().unwrap()["id"], "x");
        assert_eq!(r.header("CONTENT-TYPE"), Some("application/json"));
        assert!(Response::new(404, "").error_for_status().is_err());
    }
}
