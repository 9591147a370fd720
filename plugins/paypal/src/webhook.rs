//! PayPal webhook signatures, verified locally where the certificate chain
//! can be built, else confirmed by PayPal's `verify-webhook-signature` API.
//!
//! PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)`
//! (CRC32 as an unsigned decimal) with SHA256withRSA, the key being that of
//! the certificate at `PAYPAL-CERT-URL`. That certificate is trusted only if
//! it is served from a PayPal host (or the account's own base URL: the
//! sandbox, a proxy) and chains up to the trust root at the transmission time.
//!
//! `PAYPAL-CERT-URL` serves the signing certificate alone, not its issuer:
//! PayPal's own SDKs bundle the intermediate instead (paypal/PayPal-Java-SDK
//! `rest-api-sdk/src/main/resources/DigiCertSHA2ExtendedValidationServerCA.crt`,
//! trusted by `SSLUtil.validateCertificateChain`, which requires every served
//! certificate to be `CN=messageverificationcerts*.paypal.com`, so a served
//! intermediate would fail it; paypal/PayPal-NET-SDK
//! `Source/SDK/Resources/DigiCertSHA2ExtendedValidationServerCA.crt`,
//! `CertificateManager.ValidateCertificateChain`). We bundle it and the
//! DigiCert intermediates that issue PayPal's certificates since PayPal moved
//! to the Global Root G2 chain (2024). A signing certificate from an issuer
//! we do not know still has its signature checked locally; PayPal's API then
//! confirms it (`POST /v1/notifications/verify-webhook-signature`, what
//! paypal/PayPal-node-SDK and PayPal-PHP-SDK do for every event), and that
//! certificate is trusted for later events without asking again.

use der::{Decode, DecodePem, Encode};
use passerelle_connector_sdk::prelude::*;
use passerelle_connector_sdk::{cache, crypto};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::Certificate;

/// PayPal's production trust anchors (public root CA certificates, from
/// DigiCert): High Assurance EV Root CA issued the webhook certificates up to
/// about 2020, Global Root CA and Global Root G2 the later ones.
pub const DEFAULT_TRUST_ROOTS: &[&str] = &[
    include_str!("../certs/digicert-high-assurance-ev-root-ca.pem"),
    include_str!("../certs/digicert-global-root-ca.pem"),
    include_str!("../certs/digicert-global-root-g2.pem"),
];

/// The intermediate CAs PayPal's signing certificates are issued by. The
/// certificate URL does not serve them, so without them no chain can be
/// built. Each is checked (CA, signed by one of [`DEFAULT_TRUST_ROOTS`]) by
/// the unit tests; its signature, not where the file came from, is what
/// makes it trustworthy.
pub const BUNDLED_INTERMEDIATES: &[&str] = &[
    // DigiCert SHA2 Extended Validation Server CA, issued by DigiCert High
    // Assurance EV Root CA; valid 2013-10-22 to 2028-10-22; SHA-256
    // 403E062A26530591 13285BAF80A0D4AE 422C848C9F78FAD0 1FC94BC5B87FEF1A.
    // The one PayPal's Java and .NET SDKs bundle; it issued the signing
    // certificate of the Java SDK's test vector.
    include_str!("../certs/digicert-sha2-extended-validation-server-ca.pem"),
    // DigiCert EV RSA CA G2, issued by DigiCert Global Root G2; valid
    // 2020-07-02 to 2030-07-02; SHA-256 9588EF74199E45AC EFCCCFC0C47010E9
    // F2A37A1DD44C61A4 E1C6B334DA5AF614. DigiCert's EV issuer under Global
    // Root G2, the chain PayPal announced it would use from October 2024.
    include_str!("../certs/digicert-ev-rsa-ca-g2.pem"),
    // DigiCert Global G2 TLS RSA SHA256 2020 CA1, issued by DigiCert Global
    // Root G2; valid 2021-03-30 to 2031-03-29; SHA-256 C8025F9FC65FDFC9
    // 5B3CA8CC7867B9A5 87B5277973957917 463FC813D0B625A9. The OV issuer
    // under Global Root G2.
    include_str!("../certs/digicert-global-g2-tls-rsa-sha256-2020-ca1.pem"),
];

/// How far a transmission time may be from our clock. Older ones could be a
/// captured notification replayed; the host also drops repeated event ids.
pub const TOLERANCE_MS: u64 = 10 * 60 * 1000;

/// How long a fetched certificate is kept in the host cache, and how long
/// PayPal's confirmation of a certificate is trusted at most.
const CERT_CACHE_TTL_SECS: u32 = 24 * 3600;

/// The headers PayPal sends with a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission<'a> {
    pub id: &'a str,
    pub time: &'a str,
    pub time_ms: u64,
    pub signature: Vec<u8>,
    /// The signature as sent (Base64), for PayPal's verification API.
    pub signature_b64: &'a str,
    pub cert_url: &'a str,
    pub auth_algo: &'a str,
}

fn forged(message: impl Into<String>) -> ConnectorError {
    ConnectorError::invalid_signature(message)
}

/// Reads the transmission headers; missing or malformed ones are a forgery.
pub fn transmission(notification: &Notification) -> Result<Transmission<'_>> {
    let header = |name: &str| {
        notification
            .header(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| forged(format!("missing {name} header")))
    };
    let id = header("PAYPAL-TRANSMISSION-ID")?;
    let time = header("PAYPAL-TRANSMISSION-TIME")?;
    let signature = header("PAYPAL-TRANSMISSION-SIG")?;
    let cert_url = header("PAYPAL-CERT-URL")?;
    let algo = header("PAYPAL-AUTH-ALGO")?;
    if algo != "SHA256withRSA" {
        return Err(forged(format!("unsupported PAYPAL-AUTH-ALGO {algo:?}")));
    }
    let time_ms = crate::transformers::parse_rfc3339_ms(time)
        .ok_or_else(|| forged("malformed PAYPAL-TRANSMISSION-TIME"))?;
    let signature_b64 = signature;
    let signature = crypto::base64_decode(signature)
        .ok_or_else(|| forged("PAYPAL-TRANSMISSION-SIG is not base64"))?;
    Ok(Transmission {
        id,
        time,
        time_ms,
        signature,
        signature_b64,
        cert_url,
        auth_algo: algo,
    })
}

/// `scheme://host[:port]` of `url`, lower-cased; `None` when it is not an
/// absolute http(s) URL or carries credentials.
pub fn origin(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some((scheme, authority.to_ascii_lowercase()))
}

/// Whether the certificate may be fetched from `cert_url`: HTTPS on a
/// `paypal.com` host, or the origin of the account's base URL.
pub fn cert_url_allowed(cert_url: &str, account_base: Option<&str>) -> bool {
    let Some((scheme, authority)) = origin(cert_url) else {
        return false;
    };
    if scheme == "https" && (authority == "paypal.com" || authority.ends_with(".paypal.com")) {
        return true;
    }
    match account_base.and_then(origin) {
        Some(base) => base == (scheme, authority),
        None => false,
    }
}

/// The signed message.
pub fn signed_message(t: &Transmission<'_>, webhook_id: &str, body: &[u8]) -> String {
    format!("{}|{}|{webhook_id}|{}", t.id, t.time, crc32fast::hash(body))
}

/// The trust anchors: the account's PEM (one or more certificates) or PayPal's.
pub fn trust_roots(configured_pem: Option<&str>) -> Result<Vec<Certificate>> {
    let parse = |pem: &str| {
        Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
            ConnectorError::invalid_config(
                "webhook_trust_root_pem",
                format!("not a PEM certificate: {e}"),
            )
        })
    };
    match configured_pem {
        Some(pem) => {
            let roots = parse(pem)?;
            if roots.is_empty() {
                return Err(ConnectorError::invalid_config(
                    "webhook_trust_root_pem",
                    "no certificate in the PEM",
                ));
            }
            Ok(roots)
        }
        None => {
            let mut roots = Vec::new();
            for pem in DEFAULT_TRUST_ROOTS {
                roots.extend(parse(pem)?);
            }
            Ok(roots)
        }
    }
}

/// The bundled intermediates, parsed.
pub fn bundled_intermediates() -> Result<Vec<Certificate>> {
    let mut out = Vec::new();
    for pem in BUNDLED_INTERMEDIATES {
        out.extend(Certificate::load_pem_chain(pem.as_bytes()).map_err(|e| {
            ConnectorError::invalid_config(
                "webhook_trust_root_pem",
                format!("a bundled intermediate does not parse: {e}"),
            )
        })?);
    }
    Ok(out)
}

fn der_of<T: Encode>(value: &T) -> Option<Vec<u8>> {
    value.to_der().ok()
}

fn valid_at(cert: &Certificate, at_ms: u64) -> bool {
    let validity = &cert.tbs_certificate.validity;
    let at = core::time::Duration::from_millis(at_ms);
    validity.not_before.to_unix_duration() <= at && at <= validity.not_after.to_unix_duration()
}

/// Verifies `cert`'s signature with `issuer`'s RSA key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let Some(key) = rsa_key(issuer) else {
        return false;
    };
    let Some(tbs) = der_of(&cert.tbs_certificate) else {
        return false;
    };
    let Some(signature) = cert.signature.as_bytes() else {
        return false;
    };
    let oid = cert.signature_algorithm.oid.to_string();
    let result = match oid.as_str() {
        "1.2.840.113549.1.1.11" => key.verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs),
            signature,
        ),
        "1.2.840.113549.1.1.12" => key.verify(
            Pkcs1v15Sign::new::<Sha384>(),
            &Sha384::digest(&tbs),
            signature,
        ),
        "1.2.840.113549.1.1.13" => key.verify(
            Pkcs1v15Sign::new::<Sha512>(),
            &Sha512::digest(&tbs),
            signature,
        ),
        // SHA-1 and non-RSA signatures are not accepted.
        _ => return false,
    };
    result.is_ok()
}

fn rsa_key(cert: &Certificate) -> Option<RsaPublicKey> {
    let spki = der_of(&cert.tbs_certificate.subject_public_key_info)?;
    RsaPublicKey::from_public_key_der(&spki).ok()
}

/// True when `cert` says it is a CA (basicConstraints cA).
fn is_ca(cert: &Certificate) -> bool {
    use x509_cert::ext::pkix::BasicConstraints;
    cert.tbs_certificate
        .extensions
        .iter()
        .flatten()
        .filter(|e| e.extn_id.to_string() == "2.5.29.19")
        .any(|e| {
            BasicConstraints::from_der(e.extn_value.as_bytes())
                .map(|bc| bc.ca)
                .unwrap_or(false)
        })
}

fn same_name(a: &x509_cert::name::Name, b: &x509_cert::name::Name) -> bool {
    match (der_of(a), der_of(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// Verifies that `chain[0]` (the leaf) chains up to one of `roots` through
/// the other certificates of `chain` or the `intermediates` we hold, every
/// certificate valid at `at_ms`.
pub fn verify_chain(
    chain: &[Certificate],
    intermediates: &[Certificate],
    roots: &[Certificate],
    at_ms: u64,
) -> Result<()> {
    let leaf = chain
        .first()
        .ok_or_else(|| forged("no certificate at PAYPAL-CERT-URL"))?;
    if !valid_at(leaf, at_ms) {
        return Err(forged(
            "the signing certificate is not valid at the transmission time",
        ));
    }
    let mut current = leaf;
    // A bound on the path length: PayPal's chains have 2 or 3 certificates.
    for _ in 0..6 {
        let issuer_name = &current.tbs_certificate.issuer;
        if let Some(_root) = roots.iter().find(|root| {
            same_name(&root.tbs_certificate.subject, issuer_name)
                && valid_at(root, at_ms)
                && signed_by(current, root)
        }) {
            return Ok(());
        }
        // A trust root given as the leaf itself (pinned certificate).
        if let Some(leaf_der) = der_of(current) {
            if roots
                .iter()
                .any(|r| der_of(r).as_deref() == Some(leaf_der.as_slice()))
            {
                return Ok(());
            }
        }
        let next = chain.iter().skip(1).chain(intermediates).find(|c| {
            same_name(&c.tbs_certificate.subject, issuer_name)
                && is_ca(c)
                && valid_at(c, at_ms)
                && signed_by(current, c)
        });
        match next {
            Some(issuer) => current = issuer,
            None => break,
        }
    }
    Err(forged(
        "the signing certificate does not chain to the trusted root",
    ))
}

/// The largest certificate chain text kept in the host cache.
const MAX_CACHED_CHAIN: usize = 16 * 1024;

/// The cache key of the certificate chain at `url`.
pub fn chain_cache_key(url: &str) -> String {
    format!("cert:{}", crypto::hex_encode(crypto::sha256(url)))
}

/// A certificate chain fetched from the sender's URL, with the text to
/// cache once (and only once) it has verified: a sender must not be able
/// to fill the cache with what it serves.
pub struct FetchedChain {
    pub chain: Vec<Certificate>,
    /// `None` when it came from the cache (it was verified before).
    to_cache: Option<String>,
    key: String,
}

impl FetchedChain {
    /// Keeps the chain for later notifications: call after it verified.
    pub fn remember(&self) {
        if let Some(text) = &self.to_cache {
            if text.len() <= MAX_CACHED_CHAIN {
                cache::set(&self.key, text, CERT_CACHE_TTL_SECS);
            }
        }
    }
}

/// The certificate chain at `url`: from the host cache (where only
/// verified chains go), else fetched through the host.
pub fn fetch_chain(url: &str) -> Result<FetchedChain> {
    let key = chain_cache_key(url);
    if let Some(pem) = cache::get(&key) {
        if let Ok(chain) = Certificate::load_pem_chain(pem.as_bytes()) {
            if !chain.is_empty() {
                return Ok(FetchedChain {
                    chain,
                    to_cache: None,
                    key,
                });
            }
        }
        cache::delete(&key);
    }
    let response = Request::get(url).timeout_ms(10_000).send()?;
    if !response.is_success() {
        // PayPal (or the network) is the problem, not the sender: retryable,
        // PayPal delivers the webhook again.
        return Err(
            classify_http_status(response.status, &response.body).with_code("cert_fetch_failed")
        );
    }
    let chain = Certificate::load_pem_chain(&response.body).map_err(|e| {
        forged(format!(
            "PAYPAL-CERT-URL does not serve a PEM certificate: {e}"
        ))
    })?;
    if chain.is_empty() {
        return Err(forged("PAYPAL-CERT-URL serves no certificate"));
    }
    Ok(FetchedChain {
        chain,
        to_cache: Some(response.text()),
        key,
    })
}

/// Checks the leaf is PayPal's message-verification certificate when the
/// trust anchors are the public CAs (any site can get a DigiCert certificate).
fn check_leaf_identity(leaf: &Certificate) -> Result<()> {
    let subject = leaf.tbs_certificate.subject.to_string();
    let ok = subject.split([',', '+']).any(|rdn| {
        let rdn = rdn.trim();
        rdn == "CN=messageverificationcerts.paypal.com"
            || rdn == "CN=messageverificationcerts.sandbox.paypal.com"
    });
    if ok {
        Ok(())
    } else {
        Err(forged("the signing certificate is not PayPal's"))
    }
}

/// Verifies the signature of `body` with the leaf of `chain`.
pub fn verify_signature(
    t: &Transmission<'_>,
    webhook_id: &str,
    body: &[u8],
    chain: &[Certificate],
) -> Result<()> {
    let leaf = chain.first().ok_or_else(|| forged("no certificate"))?;
    let key = rsa_key(leaf).ok_or_else(|| forged("the signing certificate has no RSA key"))?;
    let message = signed_message(t, webhook_id, body);
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(message.as_bytes()),
        &t.signature,
    )
    .map_err(|_| forged("PAYPAL-TRANSMISSION-SIG does not match"))
}

/// What a webhook's verification found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// The signature matches a certificate that chains to the trust root
    /// (or that PayPal confirmed before).
    Trusted,
    /// The signature matches the certificate PayPal's host served, but its
    /// chain cannot be built: PayPal must confirm it.
    NeedsConfirmation(Confirmation),
}

/// A verification to ask PayPal for, and what to remember if it succeeds.
#[derive(Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// The body of `POST /v1/notifications/verify-webhook-signature`.
    pub request_body: String,
    cache_key: String,
    ttl_secs: u32,
    /// The certificate as fetched, cached once PayPal confirmed it.
    chain: Option<(String, String)>,
}

impl Confirmation {
    /// PayPal said `SUCCESS`: this certificate is PayPal's; later events
    /// signed with it verify without asking (until it expires, at most a
    /// day).
    pub fn remember(&self) {
        if self.ttl_secs > 0 {
            cache::set(&self.cache_key, "confirmed", self.ttl_secs);
            if let Some((key, text)) = &self.chain {
                if text.len() <= MAX_CACHED_CHAIN {
                    cache::set(key, text, self.ttl_secs);
                }
            }
        }
    }
}

/// The cache key saying PayPal confirmed the certificate `leaf`.
fn confirmed_key(leaf: &Certificate) -> Option<String> {
    let der = der_of(leaf)?;
    Some(format!(
        "cert-confirmed:{}",
        crypto::hex_encode(crypto::sha256(der))
    ))
}

/// The body of PayPal's `verify-webhook-signature`: the transmission
/// headers and the event **as received** (spliced in raw, as PayPal's PHP
/// SDK does with `setRequestBody`: a re-serialized event would not have the
/// CRC32 PayPal signed).
pub fn confirmation_request(t: &Transmission<'_>, webhook_id: &str, body: &[u8]) -> Result<String> {
    let event = core::str::from_utf8(body)
        .ok()
        .filter(|text| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text).is_ok()
        })
        .ok_or_else(|| ConnectorError::invalid_request("body", "not a JSON webhook event"))?;
    let fields = serde_json::json!({
        "auth_algo": t.auth_algo,
        "cert_url": t.cert_url,
        "transmission_id": t.id,
        "transmission_sig": t.signature_b64,
        "transmission_time": t.time,
        "webhook_id": webhook_id,
    })
    .to_string();
    let head = fields.strip_suffix('}').unwrap_or(&fields);
    Ok(format!("{head},\"webhook_event\":{event}}}"))
}

/// Everything: headers, freshness, certificate origin, signature, chain.
pub fn verify(
    notification: &Notification,
    webhook_id: &str,
    account_base: Option<&str>,
    configured_root: Option<&str>,
    now_ms: u64,
) -> Result<Verified> {
    let t = transmission(notification)?;
    if now_ms.abs_diff(t.time_ms) > TOLERANCE_MS {
        return Err(forged("transmission time too far from now (replay?)"));
    }
    if !cert_url_allowed(t.cert_url, account_base) {
        return Err(forged("PAYPAL-CERT-URL is not a PayPal host"));
    }
    let roots = trust_roots(configured_root)?;
    let fetched = fetch_chain(t.cert_url)?;
    let chain = &fetched.chain;
    let leaf = chain.first().ok_or_else(|| forged("no certificate"))?;
    if !valid_at(leaf, t.time_ms) {
        return Err(forged(
            "the signing certificate is not valid at the transmission time",
        ));
    }
    if configured_root.is_none() {
        check_leaf_identity(leaf)?;
    }
    // The signature first: a forgery is refused here, without a chain to
    // build or a question to PayPal.
    verify_signature(&t, webhook_id, &notification.body, chain)?;
    let intermediates = bundled_intermediates()?;
    if verify_chain(chain, &intermediates, &roots, t.time_ms).is_ok() {
        fetched.remember();
        return Ok(Verified::Trusted);
    }
    let cache_key =
        confirmed_key(leaf).ok_or_else(|| forged("the signing certificate does not encode"))?;
    if cache::get(&cache_key).is_some() {
        return Ok(Verified::Trusted);
    }
    let not_after_ms = u64::try_from(
        leaf.tbs_certificate
            .validity
            .not_after
            .to_unix_duration()
            .as_millis(),
    )
    .unwrap_or(u64::MAX);
    let ttl_secs = u32::try_from(not_after_ms.saturating_sub(now_ms) / 1000)
        .unwrap_or(u32::MAX)
        .min(CERT_CACHE_TTL_SECS);
    Ok(Verified::NeedsConfirmation(Confirmation {
        request_body: confirmation_request(&t, webhook_id, &notification.body)?,
        cache_key,
        ttl_secs,
        chain: fetched.to_cache.map(|text| (fetched.key, text)),
    }))
}

/// Parses a PEM certificate (for `validate-config`).
pub fn parse_pem(pem: &str) -> bool {
    Certificate::from_pem(pem.as_bytes()).is_ok()
}
