//! Reading an account's configuration: the credential fields declared by
//! `describe` and the optional base URL.
//!
//! The account carries secrets: never log it, nor a value read from it.

use crate::types::{Account, ConnectorError, Environment};

impl Account {
    /// The value of the config field `name`, trimmed; a missing or blank
    /// value is `invalid-config` naming the field.
    pub fn require(&self, name: &str) -> Result<&str, ConnectorError> {
        self.optional(name)
            .ok_or_else(|| ConnectorError::invalid_config(name, format!("`{name}` is required")))
    }

    /// The value of the config field `name`, trimmed; `None` when missing or blank.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.config
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// True for the provider's live (production) environment.
    pub fn is_live(&self) -> bool {
        self.environment == Environment::Live
    }
}

/// The base URL to call, without a trailing `/`: the account's `base-url`
/// when set, else `default_test` or `default_live` by the account's
/// environment. An empty default means the provider has none, and the
/// account must set one: `invalid-config` field `base_url` otherwise.
pub fn base_url(
    account: &Account,
    default_test: &str,
    default_live: &str,
) -> Result<String, ConnectorError> {
    let chosen = match account.base_url.as_deref().map(str::trim) {
        Some(url) if !url.is_empty() => url,
        _ if account.is_live() => default_live,
        _ => default_test,
    };
    if chosen.is_empty() {
        return Err(ConnectorError::invalid_config(
            "base_url",
            "this connector has no default URL: set the account's base URL",
        ));
    }
    if !(chosen.starts_with("https://") || chosen.starts_with("http://")) {
        return Err(ConnectorError::invalid_config(
            "base_url",
            "the base URL must start with https:// or http://",
        ));
    }
    Ok(chosen.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(env: Environment, base_url: Option<&str>) -> Account {
        Account {
            id: "acc".into(),
            environment: env,
            base_url: base_url.map(Into::into),
            config: vec![
                ("api_key".into(), " k ".into()),
                ("blank".into(), "  ".into()),
            ],
        }
    }

    #[test]
    fn fields() {
        let a = account(Environment::Test, None);
        assert_eq!(a.require("api_key"), Ok("k"));
        assert_eq!(a.optional("blank"), None);
        let e = a.require("secret").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("secret"));
        assert_eq!(e.kind, crate::types::ErrorKind::InvalidConfig);
    }

    #[test]
    fn base_urls() {
        let t = account(Environment::Test, None);
        let l = account(Environment::Live, None);
        assert_eq!(
            base_url(&t, "https://test", "https://live").unwrap(),
            "https://test"
        );
        assert_eq!(
            base_url(&l, "https://test", "https://live/").unwrap(),
            "https://live"
        );
        let custom = account(Environment::Live, Some("http://127.0.0.1:9/"));
        assert_eq!(base_url(&custom, "", "").unwrap(), "http://127.0.0.1:9");
        assert_eq!(
            base_url(&t, "", "").unwrap_err().field.as_deref(),
            Some("base_url")
        );
        let bad = account(Environment::Test, Some("ftp://x"));
        assert!(base_url(&bad, "", "").is_err());
    }
}
