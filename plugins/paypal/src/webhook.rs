//! PayPal webhook signatures, verified locally (no call to PayPal's
//! `verify-webhook-signature`, which would make every notification depend on
//! PayPal's API being up and on an OAuth token).
//!
//! PayPal signs `transmission_id|transmission_time|webhook_id|crc32(body)`
//! (CRC32 as an unsigned decimal) with SHA256withRSA, the key being that of
//! the certificate at `PAYPAL-CERT-URL`. That certificate is trusted only if
//! it is served from a PayPal host (or the account's own base URL: the
//! sandbox, a proxy) and chains up to the trust root at the transmission time.

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

/// How far a transmission time may be from our clock. Older ones could be a
/// captured notification replayed; the host also drops repeated event ids.
pub const TOLERANCE_MS: u64 = 10 * 60 * 1000;

/// How long a fetched certificate is kept in the host cache.
const CERT_CACHE_TTL_SECS: u32 = 24 * 3600;

/// The headers PayPal sends with a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmission<'a> {
    pub id: &'a str,
    pub time: &'a str,
    pub time_ms: u64,
    pub signature: Vec<u8>,
    pub cert_url: &'a str,
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
    let signature = crypto::base64_decode(signature)
        .ok_or_else(|| forged("PAYPAL-TRANSMISSION-SIG is not base64"))?;
    Ok(Transmission {
        id,
        time,
        time_ms,
        signature,
        cert_url,
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
/// the other certificates of `chain`, every certificate valid at `at_ms`.
pub fn verify_chain(chain: &[Certificate], roots: &[Certificate], at_ms: u64) -> Result<()> {
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
        let next = chain.iter().skip(1).find(|c| {
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
            if text.len() <= 16 * 1024 {
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

/// Everything: headers, freshness, certificate origin, chain, signature.
pub fn verify(
    notification: &Notification,
    webhook_id: &str,
    account_base: Option<&str>,
    configured_root: Option<&str>,
    now_ms: u64,
) -> Result<()> {
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
    verify_chain(chain, &roots, t.time_ms)?;
    if configured_root.is_none() {
        if let Some(leaf) = chain.first() {
            check_leaf_identity(leaf)?;
        }
    }
    verify_signature(&t, webhook_id, &notification.body, chain)?;
    fetched.remember();
    Ok(())
}

/// Parses a PEM certificate (for `validate-config`).
pub fn parse_pem(pem: &str) -> bool {
    Certificate::from_pem(pem.as_bytes()).is_ok()
}
