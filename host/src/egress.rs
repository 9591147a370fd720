//! Outbound HTTP for plugins: the only way a connector reaches the network.
//!
//! Each call carries an [`EgressPolicy`] built from the plugin manifest's
//! hosts for the account's environment plus the account's own base URL.
//! Anything else is refused and logged. Redirects are never followed (a PSP
//! that redirects an API call is misconfigured, and following it would
//! bypass the allowlist); bodies and time are bounded.

use std::time::Duration;

use futures_util::StreamExt;
use url::Url;

use crate::runtime::bindings::passerelle::connector::http::{HttpError, Request, Response};
use crate::runtime::bindings::types::HttpHeader;

/// Largest request or response body a plugin may exchange (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// One allowed destination.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    /// `host` (HTTPS on 443) or `host:port` (HTTPS on that port).
    Exact { host: String, port: Option<u16> },
    /// `*.domain`: any subdomain, HTTPS on 443.
    Suffix(String),
    /// The account's configured base URL: scheme, host and port exactly as
    /// the operator wrote them (plain HTTP allowed, for a local sandbox).
    Origin {
        scheme: String,
        host: String,
        port: u16,
    },
}

/// Where one plugin call may send requests.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    rules: Vec<HostRule>,
}

impl EgressPolicy {
    pub fn new(manifest_hosts: &[String], base_url: Option<&str>) -> Self {
        let mut rules: Vec<HostRule> = manifest_hosts
            .iter()
            .map(|h| {
                let h = h.trim().to_ascii_lowercase();
                if let Some(domain) = h.strip_prefix("*.") {
                    HostRule::Suffix(domain.to_string())
                } else if let Some((host, port)) = h.rsplit_once(':') {
                    match port.parse() {
                        Ok(p) => HostRule::Exact {
                            host: host.to_string(),
                            port: Some(p),
                        },
                        Err(_) => HostRule::Exact {
                            host: h,
                            port: None,
                        },
                    }
                } else {
                    HostRule::Exact {
                        host: h,
                        port: None,
                    }
                }
            })
            .collect();
        if let Some(url) = base_url.and_then(|u| Url::parse(u).ok()) {
            if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
                rules.push(HostRule::Origin {
                    scheme: url.scheme().to_string(),
                    host: host.to_ascii_lowercase(),
                    port,
                });
            }
        }
        Self { rules }
    }

    /// Whether `url` may be reached under this policy.
    pub fn allows(&self, url: &Url) -> bool {
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let Some(port) = url.port_or_known_default() else {
            return false;
        };
        let https = url.scheme() == "https";
        self.rules.iter().any(|rule| match rule {
            HostRule::Exact { host: h, port: p } => https && *h == host && port == p.unwrap_or(443),
            HostRule::Suffix(domain) => {
                https && port == 443 && host.ends_with(&format!(".{domain}"))
            }
            HostRule::Origin {
                scheme,
                host: h,
                port: p,
            } => url.scheme() == scheme && *h == host && port == *p,
        })
    }
}

/// The shared HTTP client for every plugin.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
}

impl Egress {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("Passerelle/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client })
    }

    /// Sends one plugin request, if the policy allows its destination.
    pub async fn send(
        &self,
        policy: &EgressPolicy,
        request: Request,
    ) -> Result<Response, HttpError> {
        let url = Url::parse(&request.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?;
        if !policy.allows(&url) {
            return Err(HttpError::Denied(format!(
                "{} is not an allowed destination for this plugin and account",
                redacted_origin(&url)
            )));
        }
        if request.body.len() > MAX_BODY_BYTES {
            return Err(HttpError::TooLarge);
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("bad method {:?}", request.method)))?;
        let timeout = request
            .timeout_ms
            .map(|ms| Duration::from_millis(u64::from(ms)))
            .unwrap_or(DEFAULT_TIMEOUT)
            .min(MAX_TIMEOUT);
        let mut builder = self.client.request(method, url).timeout(timeout);
        for HttpHeader { name, value } in request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header {name}")))?;
            builder = builder.header(name, value);
        }
        let response = builder.body(request.body).send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| HttpHeader {
                name: n.as_str().to_string(),
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BODY_BYTES as u64)
        {
            return Err(HttpError::TooLarge);
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(classify)?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

fn classify(error: reqwest::Error) -> HttpError {
    if error.is_timeout() {
        HttpError::Timeout
    } else if error.is_connect() {
        HttpError::Connect(error.without_url().to_string())
    } else {
        HttpError::Other(error.without_url().to_string())
    }
}

/// Scheme, host and port only: paths and queries may carry identifiers.
fn redacted_origin(url: &Url) -> String {
    format!(
        "{}://{}{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port().map(|p| format!(":{p}")).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn manifest_hosts_require_https() {
        let policy = EgressPolicy::new(&["checkout-test.adyen.com".into()], None);
        assert!(policy.allows(&url("https://checkout-test.adyen.com/v71/payments")));
        assert!(!policy.allows(&url("http://checkout-test.adyen.com/v71/payments")));
        assert!(!policy.allows(&url("https://checkout-test.adyen.com:8443/")));
        assert!(!policy.allows(&url("https://evil.example/")));
        assert!(!policy.allows(&url("https://checkout-test.adyen.com.evil.example/")));
    }

    #[test]
    fn wildcard_and_port_rules() {
        let policy = EgressPolicy::new(&["*.paypal.com".into(), "api.psp:8443".into()], None);
        assert!(policy.allows(&url("https://api-m.paypal.com/v1/oauth2/token")));
        assert!(!policy.allows(&url("https://paypal.com/")));
        assert!(!policy.allows(&url("https://evilpaypal.com/")));
        assert!(policy.allows(&url("https://api.psp:8443/x")));
        assert!(!policy.allows(&url("https://api.psp/x")));
    }

    #[test]
    fn base_url_allows_exactly_its_origin() {
        let policy = EgressPolicy::new(&[], Some("http://127.0.0.1:4000/dummy"));
        assert!(policy.allows(&url("http://127.0.0.1:4000/dummy/v1/charges")));
        assert!(!policy.allows(&url("http://127.0.0.1:4001/dummy/v1/charges")));
        assert!(!policy.allows(&url("https://127.0.0.1:4000/")));
        assert!(!policy.allows(&url("http://localhost:4000/")));
    }
}
