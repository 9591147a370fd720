//! Seals: the JSON seal of Paypage JSON / Office JSON messages and the seal
//! of the `Data` field posted back to the merchant.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `sealAlgorithm` value selecting HMAC-SHA256.
pub const HMAC_SHA_256: &str = "HMAC-SHA-256";
/// `sealAlgorithm` value selecting plain SHA-256 over the data then the key.
pub const SHA_256: &str = "SHA-256";

/// Members of a JSON message left out of its seal.
const NOT_SEALED: [&str; 3] = ["keyVersion", "sealAlgorithm", "seal"];

/// The string a JSON message's seal is computed over: the values of all its
/// members except `keyVersion`, `sealAlgorithm` and `seal` (at the top level),
/// ordered by member name (byte order of the UTF-8 names, so case-sensitive:
/// `Z` sorts before `a`, like PHP's `ksort` in Worldline's own samples),
/// nested objects flattened the same way at their place, list elements
/// concatenated in their given order, no separators. Strings are taken as
/// they are, numbers in their JSON spelling, booleans as `true`/`false`,
/// `null` as nothing.
pub fn json_seal_string(message: &Value) -> String {
    let mut out = String::new();
    match message {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !NOT_SEALED.contains(&k.as_str()))
                .collect();
            keys.sort();
            for key in keys {
                if let Some(value) = map.get(key) {
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
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for key in keys {
                if let Some(value) = map.get(key) {
                    flatten(value, out);
                }
            }
        }
    }
}

/// Lowercase hex HMAC-SHA256 of `data`, keyed with the UTF-8 bytes of `secret`.
pub fn hmac_sha256_hex(secret: &str, data: &str) -> String {
    // HMAC accepts keys of any length: this never fails.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(data.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Lowercase hex SHA-256 of `data` followed by `secret`.
pub fn sha256_hex(data: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(data.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Seal of a JSON message: HMAC-SHA256 (the default for JSON interfaces)
/// unless `algorithm` is `SHA-256`.
pub fn json_seal(secret: &str, message: &Value, algorithm: Option<&str>) -> String {
    let data = json_seal_string(message);
    if algorithm == Some(SHA_256) {
        sha256_hex(&data, secret)
    } else {
        hmac_sha256_hex(secret, &data)
    }
}

/// Seal of the `Data` field posted back to the merchant: HMAC-SHA256 when the
/// payment request asked for `HMAC-SHA-256`, else SHA-256(Data + secret key).
pub fn data_seal(secret: &str, data: &str, hmac: bool) -> String {
    if hmac {
        hmac_sha256_hex(secret, data)
    } else {
        sha256_hex(data, secret)
    }
}

/// Constant-time comparison of two seals (ASCII case-insensitive, since
/// some clients send uppercase hex).
pub(crate) fn seals_equal(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

/// Standard Base64 (with padding), for `responseEncoding: "base64"`.
pub(crate) fn base64(data: &[u8]) -> String {
    encode64(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        true,
    )
}

/// URL-safe Base64 without padding (RFC 4648 section 5), for
/// `responseEncoding: "base64url"`.
pub(crate) fn base64url(data: &[u8]) -> String {
    encode64(
        data,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        false,
    )
}

fn encode64(data: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> shift) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorted_flattened() {
        let msg = json!({
            "b": "2", "a": 1, "Z": "z", "seal": "x", "keyVersion": 1, "sealAlgorithm": "HMAC-SHA-256",
            "o": {"y": "Y", "x": ["l1", {"q": "Q", "p": "P"}]}, "n": null, "t": true
        });
        assert_eq!(json_seal_string(&msg), "z12l1PQYtrue");
    }

    #[test]
    fn base64_known() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // The two alphabets differ at 62 and 63; base64url has no padding.
        assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64url(b"f"), "Zg");
    }

    #[test]
    fn compare() {
        assert!(seals_equal("abc1", "ABC1"));
        assert!(!seals_equal("abc1", "abc2"));
        assert!(!seals_equal("abc1", "abc"));
    }
}
