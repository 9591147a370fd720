//! Form-encoded request bodies (`application/x-www-form-urlencoded`).

use std::collections::BTreeMap;

use actix_web::{http::header, HttpRequest};

use super::error::HipayError;

/// The fields of a form body (the last of repeated names wins).
#[derive(Debug, Default)]
pub(crate) struct Form {
    fields: BTreeMap<String, String>,
}

impl Form {
    /// Parses the body of `req`. A body that is not form-encoded (JSON,
    /// multipart) is refused with HiPay's validation error.
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, HipayError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !body.is_empty()
            && !content_type.is_empty()
            && !content_type.starts_with("application/x-www-form-urlencoded")
        {
            return Err(HipayError::bad(
                1_010_201,
                "Invalid Parameter",
                format!(
                    "unsupported Content-Type {content_type:?}: the sandbox reads \
                     application/x-www-form-urlencoded bodies"
                ),
            ));
        }
        Ok(Self::from_bytes(body))
    }

    pub fn from_bytes(body: &[u8]) -> Self {
        Form {
            fields: url::form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// The trimmed value of a field, `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Whether a field, or a bracketed sub-field (`name[...]`), is present.
    pub fn has_group(&self, name: &str) -> bool {
        let prefix = format!("{name}[");
        self.get(name).is_some()
            || self
                .fields
                .iter()
                .any(|(k, v)| k.starts_with(&prefix) && !v.trim().is_empty())
    }

    /// A required field.
    pub fn required(&self, name: &str) -> Result<&str, HipayError> {
        self.get(name).ok_or_else(|| HipayError::missing(name))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.fields.iter()
    }
}
