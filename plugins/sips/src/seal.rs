//! Sips seals: the JSON seal of Paypage JSON / Office JSON messages and the
//! seal of the `Data` field Sips posts back (browser return and automatic
//! response).
//!
//! Both are keyed with the UTF-8 bytes of the merchant's secret key and
//! written as lowercase hex. Comparisons are constant-time.

use passerelle_connector_sdk::crypto;
use serde_json::Value;

/// `sealAlgorithm` selecting HMAC-SHA256 (the default of the JSON interfaces).
pub const HMAC_SHA_256: &str = "HMAC-SHA-256";
/// `sealAlgorithm` selecting SHA-256 over the data followed by the key.
pub const SHA_256: &str = "SHA-256";

/// Members of a JSON message that its seal leaves out (top level only).
const NOT_SEALED: [&str; 3] = ["keyVersion", "sealAlgorithm", "seal"];

/// The two seal algorithms Sips offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// Lowercase hex HMAC-SHA256(key, data).
    HmacSha256,
    /// Lowercase hex SHA-256(data + key).
    Sha256,
}

impl Algorithm {
    /// The `sealAlgorithm` value naming this algorithm.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => HMAC_SHA_256,
            Algorithm::Sha256 => SHA_256,
        }
    }

    /// Reads a `sealAlgorithm` value (as configured on the account).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            HMAC_SHA_256 => Some(Algorithm::HmacSha256),
            SHA_256 => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    /// The other algorithm.
    pub fn other(self) -> Self {
        match self {
            Algorithm::HmacSha256 => Algorithm::Sha256,
            Algorithm::Sha256 => Algorithm::HmacSha256,
        }
    }
}

/// The seal of `data` with `secret` under `algorithm`.
pub fn seal(algorithm: Algorithm, secret: &str, data: &str) -> String {
    match algorithm {
        Algorithm::HmacSha256 => crypto::hex_lower(crypto::hmac_sha256(secret, data)),
        Algorithm::Sha256 => {
            let mut input = String::with_capacity(data.len() + secret.len());
            input.push_str(data);
            input.push_str(secret);
            crypto::hex_lower(crypto::sha256(input))
        }
    }
}

/// The string a JSON message's seal covers: the values of all members but
/// `keyVersion`, `sealAlgorithm` and `seal`, ordered by member name, nested
/// objects flattened the same way in their place, list elements
/// concatenated in their given order, no separators. Strings as they are,
/// numbers in their JSON spelling, booleans `true`/`false`, `null` as nothing.
///
/// Sort order: byte order of the UTF-8 member names (case-sensitive), lists
/// kept in order. That is what Worldline's own samples do: PHP `ksort`
/// recursively in `wl-sips/sips-paypage-json-php`
/// (`Common/sealCalculationPaypageJson.php`), and the Node SDK's expected seal
/// strings in `worldline/sips-sdk-nodejs`
/// (`packages/sips-payment-sdk/test/SealCalculator.test.js`) keep list order.
/// `serde_json::Map` (without `preserve_order`) is a `BTreeMap<String, _>`,
/// which iterates in exactly that byte order.
pub fn json_seal_string(message: &Value) -> String {
    let mut out = String::new();
    match message {
        Value::Object(map) => {
            for (key, value) in map {
                if !NOT_SEALED.contains(&key.as_str()) {
                    flatten(value, &mut out);
                }
            }
        }
        other => flatten(other, &mut out),
    }
    out
}

fn flatten(value: &Value, out: &mut String) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => items.iter().for_each(|item| flatten(item, out)),
        Value::Object(map) => map.values().for_each(|v| flatten(v, out)),
    }
}

/// The seal of a JSON message.
pub fn json_seal(algorithm: Algorithm, secret: &str, message: &Value) -> String {
    seal(algorithm, secret, &json_seal_string(message))
}

/// True when `given` is the seal of `data` under `algorithm`. Constant-time;
/// hex case is ignored (some Sips clients send uppercase hex).
pub fn verify(algorithm: Algorithm, secret: &str, data: &str, given: &str) -> bool {
    let expected = seal(algorithm, secret, data);
    crypto::constant_time_eq(expected.as_bytes(), given.to_ascii_lowercase().as_bytes())
}
