//! Outbound HTTP for plugins: the only way a connector reaches the network.
//!
//! Each call carries an [`EgressPolicy`] built from the plugin manifest's
//! hosts for the account's environment plus the account's own base URL.
//! Anything else is refused and logged. Redirects are never followed (a PSP
//! that redirects an API call is misconfigured, and following it would
//! bypass the allowlist); bodies and time are bounded.
//!
//! A manifest host must also be *public*: a plugin may not reach loopback,
//! private, link-local (cloud metadata), CGNAT, unique-local, multicast,
//! documentation or otherwise reserved addresses, neither as an IP literal
//! nor through a name that resolves to one (`localhost`, a record pointing at
//! 10.0.0.1, DNS rebinding). Names are checked by the resolver of the client
//! that then connects, to exactly the addresses it checked: nothing can
//! change between the check and the connection. The account's base URL is
//! exempt: the operator wrote it (often a local sandbox on 127.0.0.1), and it
//! goes through a separate client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use url::{Host, Url};

use crate::runtime::bindings::types::HttpHeader;
use crate::runtime::bindings::v1_1::passerelle::connector::http::{HttpError, Request, Response};

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

/// Which rule let a request through, hence which client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A host from the plugin's manifest: public addresses only.
    Manifest,
    /// The account's base URL, set by the operator: any address.
    Operator,
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
                    return HostRule::Suffix(domain.to_string());
                }
                // Through the URL parser, so that a rule names a host the way
                // a request URL will (`[::ffff:127.0.0.1]` is `[::ffff:7f00:1]`).
                match Url::parse(&format!("https://{h}/")) {
                    Ok(url) if url.path() == "/" && url.username().is_empty() => HostRule::Exact {
                        host: url.host_str().unwrap_or_default().to_string(),
                        port: url.port(),
                    },
                    _ => HostRule::Exact {
                        host: h,
                        port: None,
                    },
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
        self.route(url).is_some()
    }

    /// The rule that lets `url` through, if any. The operator's base URL
    /// wins over a manifest host naming the same origin: the operator chose
    /// that destination.
    pub fn route(&self, url: &Url) -> Option<Route> {
        let host = url.host_str()?.to_ascii_lowercase();
        let port = url.port_or_known_default()?;
        let https = url.scheme() == "https";
        let operator = self.rules.iter().any(|rule| {
            matches!(rule, HostRule::Origin { scheme, host: h, port: p }
                if url.scheme() == scheme && *h == host && port == *p)
        });
        if operator {
            return Some(Route::Operator);
        }
        let manifest = self.rules.iter().any(|rule| match rule {
            HostRule::Exact { host: h, port: p } => https && *h == host && port == p.unwrap_or(443),
            HostRule::Suffix(domain) => {
                https && port == 443 && host.ends_with(&format!(".{domain}"))
            }
            HostRule::Origin { .. } => false,
        });
        manifest.then_some(Route::Manifest)
    }
}

// ---------------------------------------------------------------------------
// Public addresses.

/// Why `ip` is not a public unicast address a plugin may reach, or `None`
/// when it is one. The names are for errors and logs.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        _ if ip.is_broadcast() => "broadcast",
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (169, 254, _) => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol assignments",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(range)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Forms that carry an IPv4 address are as public as that address: a
    // mapped ::ffff:127.0.0.1 is loopback, and so on.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    let range = match s {
        // ::a.b.c.d, "IPv4-compatible": deprecated, never a real server.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (deprecated)",
        // NAT64 (RFC 6052): the gateway connects to the embedded address.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return non_public_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => "local-use NAT64",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x3fff, 0..=0x0fff, ..] => "documentation",
        // 6to4 (RFC 3056) embeds the IPv4 address of its relay.
        [0x2002, hi, lo, ..] => return non_public_v4(embedded(hi, lo)),
        // 2001::/23, IETF protocol assignments (Teredo, benchmarking, ORCHID),
        // except its globally reachable blocks (AMT, AS112, ORCHIDv2).
        [0x2001, 3, ..] | [0x2001, 4, 0x112, ..] | [0x2001, 0x20..=0x2f, ..] => return None,
        [0x2001, 0..=0x1ff, ..] => "IETF protocol assignments",
        [0xfc00..=0xfdff, ..] => "unique-local",
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "site-local (deprecated)",
        [0xff00..=0xffff, ..] => "multicast",
        // Global unicast is 2000::/3; everything else is unassigned or reserved.
        [0x2000..=0x3fff, ..] => return None,
        _ => "reserved",
    };
    Some(range)
}

/// A manifest host whose name resolved to a non-public address. Travels
/// from the resolver through reqwest's error chain to [`Egress::send`].
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to a non-public address ({range})")]
struct NonPublicAddress {
    host: String,
    range: &'static str,
}

/// Resolves with the system resolver, then refuses a name if any of its
/// addresses is not public. Refusing the whole name rather than dropping the
/// bad addresses makes a misconfiguration visible instead of half-working,
/// and a rebinding answer mixing public and private addresses gets nowhere.
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(resolve_public(name.as_str().to_string()))
    }
}

async fn resolve_public(
    host: String,
) -> Result<reqwest::dns::Addrs, Box<dyn std::error::Error + Send + Sync>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
    if let Some((ip, range)) = addrs
        .iter()
        .find_map(|a| non_public_range(a.ip()).map(|r| (a.ip(), r)))
    {
        // The address is for the operator only: the plugin's error names the
        // range, not where things are on the operator's network.
        tracing::debug!(%host, address = %ip, range, "refused a non-public address");
        return Err(Box::new(NonPublicAddress { host, range }));
    }
    Ok(Box::new(addrs.into_iter()))
}

// ---------------------------------------------------------------------------
// The clients.

/// The shared HTTP clients for every plugin.
#[derive(Clone)]
pub struct Egress {
    /// Manifest hosts: public addresses only, checked when connecting. No
    /// proxy: a proxy would resolve the name itself, out of our sight.
    public: reqwest::Client,
    /// The account's base URL, which the operator chose: any address.
    operator: reqwest::Client,
}

impl Egress {
    pub fn new() -> Result<Self, reqwest::Error> {
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("Passerelle/", env!("CARGO_PKG_VERSION")))
        };
        let public = builder()
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnlyResolver))
            .build()?;
        let operator = builder().build()?;
        Ok(Self { public, operator })
    }

    /// Sends one plugin request, if the policy allows its destination, and
    /// counts it (`passerelle_egress_*`). The host label is the allowed
    /// destination's host, so that a plugin cannot grow the label set: a
    /// refused destination counts under `denied`.
    pub async fn send(
        &self,
        policy: &EgressPolicy,
        request: Request,
    ) -> Result<Response, HttpError> {
        let started = std::time::Instant::now();
        // Parsed and routed once: the label and the sending both use it.
        let destination = Url::parse(&request.url).map(|url| {
            let route = policy.route(&url);
            (url, route)
        });
        let host = match &destination {
            Ok((url, Some(_))) => url.host_str().unwrap_or("none").to_ascii_lowercase(),
            Ok((_, None)) => "denied".to_string(),
            Err(_) => "invalid".to_string(),
        };
        // A child of the request's span: one per plugin HTTP request in traces.
        let span = tracing::info_span!("egress", host = %host);
        let result =
            tracing::Instrument::instrument(self.send_routed(destination, request), span).await;
        let outcome = match &result {
            Ok(response) => crate::metrics::status_class(response.status),
            Err(HttpError::Denied(_)) => "denied",
            Err(HttpError::Timeout) => "timeout",
            Err(HttpError::Connect(_)) => "connect",
            Err(HttpError::InvalidRequest(_)) => "invalid_request",
            Err(HttpError::TooLarge) => "too_large",
            Err(HttpError::Other(_)) => "error",
        };
        crate::metrics::METRICS.egress(&host, outcome, started.elapsed());
        result
    }

    /// Sends a request to its parsed URL by the rule that allows it (none:
    /// denied).
    async fn send_routed(
        &self,
        destination: Result<(Url, Option<Route>), url::ParseError>,
        request: Request,
    ) -> Result<Response, HttpError> {
        let (url, route) =
            destination.map_err(|e| HttpError::InvalidRequest(format!("bad URL: {e}")))?;
        let client = match route {
            None => {
                return Err(HttpError::Denied(format!(
                    "{} is not an allowed destination for this plugin and account",
                    redacted_origin(&url)
                )))
            }
            Some(Route::Operator) => &self.operator,
            Some(Route::Manifest) => {
                // The resolver never sees an IP literal: check it here.
                let literal = match url.host() {
                    Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                    Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                    _ => None,
                };
                if let Some(range) = literal.and_then(non_public_range) {
                    return Err(non_public_denial(&url, range));
                }
                &self.public
            }
        };
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
        let origin = url.clone();
        let mut builder = client.request(method, url).timeout(timeout);
        for HttpHeader { name, value } in request.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::InvalidRequest(format!("bad header name {name:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(&value)
                .map_err(|_| HttpError::InvalidRequest(format!("bad value for header {name}")))?;
            builder = builder.header(name, value);
        }
        let response = builder
            .body(request.body)
            .send()
            .await
            .map_err(|e| classify(&origin, e))?;
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
            let chunk = chunk.map_err(|e| classify(&origin, e))?;
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

/// The plugin's error for a manifest host at a non-public address. Denied,
/// so the host logs it as a warning with the plugin's id.
fn non_public_denial(url: &Url, range: &str) -> HttpError {
    HttpError::Denied(format!(
        "{} resolves to a non-public address ({range}); plugins may only reach public addresses",
        redacted_origin(url)
    ))
}

fn classify(url: &Url, error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<NonPublicAddress>() {
            return non_public_denial(url, refused.range);
        }
        source = e.source();
    }
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

    #[test]
    fn routes_tell_operator_from_manifest() {
        let policy = EgressPolicy::new(
            &["api.psp.example".into(), "sandbox.psp.example".into()],
            Some("https://sandbox.psp.example/v2"),
        );
        assert_eq!(
            policy.route(&url("https://api.psp.example/x")),
            Some(Route::Manifest)
        );
        // The operator's base URL wins over the same host in the manifest.
        assert_eq!(
            policy.route(&url("https://sandbox.psp.example/v2/x")),
            Some(Route::Operator)
        );
        assert_eq!(policy.route(&url("https://other.example/")), None);
    }

    fn range(ip: &str) -> Option<&'static str> {
        non_public_range(ip.parse().unwrap())
    }

    #[test]
    fn non_public_ipv4_ranges() {
        for (ip, expected) in [
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.255", "shared (CGNAT)"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("192.88.99.1", "6to4 relay"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
        ] {
            assert_eq!(range(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_addresses() {
        // Next to each blocked range, on both sides.
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.0.3.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.114.1",
            "223.255.255.255",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }

    #[test]
    fn non_public_ipv6_ranges() {
        for (ip, expected) in [
            ("::", "unspecified"),
            ("::1", "loopback"),
            // IPv4-mapped forms are judged by their IPv4 address.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:100.64.0.1", "shared (CGNAT)"),
            ("::ffff:0.0.0.0", "unspecified"),
            ("::127.0.0.1", "IPv4-compatible (deprecated)"),
            ("64:ff9b::7f00:1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("100::1", "discard-only"),
            ("2002:7f00:1::1", "loopback"),
            ("2002:c0a8:101::1", "private"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001::1", "IETF protocol assignments"),
            ("2001:2::1", "IETF protocol assignments"),
            ("fc00::1", "unique-local"),
            ("fd12:3456:789a::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local (deprecated)"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("4000::1", "reserved"),
            ("1::1", "reserved"),
        ] {
            assert_eq!(range(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_ipv6_addresses() {
        for ip in [
            "2a00:1450:4007:80e::200e",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:3::1",
            "2001:4:112::1",
            "2001:20::1",
            "2001:200::1",
            "2000::1",
            "3ffe::1",
        ] {
            assert_eq!(range(ip), None, "{ip}");
        }
    }

    fn get(url: &str) -> Request {
        Request {
            method: "GET".into(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: Some(2000),
        }
    }

    fn denial(result: Result<Response, HttpError>) -> String {
        match result {
            Err(HttpError::Denied(reason)) => reason,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    /// A listener on 127.0.0.1 that answers every connection with a 200 and
    /// counts them.
    fn listener() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        (port, accepted)
    }

    #[tokio::test]
    async fn manifest_names_and_literals_at_non_public_addresses_are_denied() {
        use std::sync::atomic::Ordering;
        let (port, accepted) = listener();
        let egress = Egress::new().unwrap();
        let policy = EgressPolicy::new(
            &[
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::ffff:127.0.0.1]:{port}"),
                "169.254.169.254".into(),
            ],
            None,
        );
        for (target, origin) in [
            (
                format!("https://localhost:{port}/secret?q=1"),
                format!("https://localhost:{port}"),
            ),
            (
                format!("https://127.0.0.1:{port}/secret"),
                format!("https://127.0.0.1:{port}"),
            ),
            (
                format!("https://[::ffff:127.0.0.1]:{port}/secret"),
                format!("https://[::ffff:7f00:1]:{port}"),
            ),
            (
                "https://169.254.169.254/latest/meta-data/".into(),
                "https://169.254.169.254".into(),
            ),
        ] {
            let reason = denial(egress.send(&policy, get(&target)).await);
            assert!(
                reason.contains("resolves to a non-public address"),
                "{target}: {reason}"
            );
            assert!(reason.starts_with(&origin), "{target}: {reason}");
            assert!(!reason.contains("secret"), "{target}: {reason}");
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            0,
            "a connection got through"
        );
    }

    #[tokio::test]
    async fn the_operators_base_url_may_be_local() {
        use std::sync::atomic::Ordering;
        let (port, accepted) = listener();
        let egress = Egress::new().unwrap();
        let base = format!("http://127.0.0.1:{port}/sandbox");
        let policy = EgressPolicy::new(&[], Some(&base));
        let response = egress
            .send(&policy, get(&format!("{base}/v1/charges")))
            .await
            .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }
}
