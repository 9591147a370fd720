//! Hashes, HMACs and encodings providers use to sign requests and
//! notifications. Pure Rust, no randomness needed.
//!
//! Compare signatures with [`constant_time_eq`], never `==`: an early-exit
//! comparison tells an attacker how many leading bytes of a forgery are right.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> M {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <M as hmac::digest::KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac
}

/// HMAC-SHA256 of `data` keyed with `key`.
pub fn hmac_sha256(key: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> [u8; 32] {
    hmac::<Hmac<Sha256>>(key.as_ref(), data.as_ref())
        .finalize()
        .into_bytes()
        .into()
}

/// HMAC-SHA512 of `data` keyed with `key`.
pub fn hmac_sha512(key: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> [u8; 64] {
    hmac::<Hmac<Sha512>>(key.as_ref(), data.as_ref())
        .finalize()
        .into_bytes()
        .into()
}

/// HMAC-SHA1 of `data` keyed with `key` (legacy providers only).
pub fn hmac_sha1(key: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> [u8; 20] {
    hmac::<Hmac<Sha1>>(key.as_ref(), data.as_ref())
        .finalize()
        .into_bytes()
        .into()
}

/// SHA-256 of `data`.
pub fn sha256(data: impl AsRef<[u8]>) -> [u8; 32] {
    Sha256::digest(data.as_ref()).into()
}

/// SHA-512 of `data`.
pub fn sha512(data: impl AsRef<[u8]>) -> [u8; 64] {
    Sha512::digest(data.as_ref()).into()
}

/// SHA-1 of `data` (legacy providers only).
pub fn sha1(data: impl AsRef<[u8]>) -> [u8; 20] {
    Sha1::digest(data.as_ref()).into()
}

/// True when `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: impl AsRef<[u8]>, b: impl AsRef<[u8]>) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (a.as_ref(), b.as_ref());
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Lowercase hex.
pub fn hex_encode(data: impl AsRef<[u8]>) -> String {
    hex::encode(data)
}

/// Lowercase hex (alias of [`hex_encode`]).
pub fn hex_lower(data: impl AsRef<[u8]>) -> String {
    hex::encode(data)
}

/// Uppercase hex.
pub fn hex_upper(data: impl AsRef<[u8]>) -> String {
    hex::encode_upper(data)
}

/// Hex (either case) to bytes; `None` when not valid hex.
pub fn hex_decode(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

/// Standard base64 with padding.
pub fn base64_encode(data: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard base64 with padding to bytes; `None` when invalid.
pub fn base64_decode(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// URL-safe base64 without padding (JWT style).
pub fn base64url_encode(data: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// URL-safe base64 without padding to bytes; `None` when invalid.
pub fn base64url_decode(s: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex_encode(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex_encode(hmac_sha512("Jefe", "what do ya want for nothing?")),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        // RFC 2202 test case 2.
        assert_eq!(
            hex_encode(hmac_sha1("Jefe", "what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex_encode(sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            hex_encode(sha1("abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(hex_encode(sha512("abc")).starts_with("ddaf35a193617aba"));
    }

    #[test]
    fn encodings_and_compare() {
        assert_eq!(hex_upper([0xab, 0x01]), "AB01");
        assert_eq!(hex_decode("AB01"), Some(vec![0xab, 0x01]));
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(base64_encode("hi?"), "aGk/");
        assert_eq!(base64url_encode("hi?"), "aGk_");
        assert_eq!(base64_decode("aGk/"), Some(b"hi?".to_vec()));
        assert_eq!(base64url_decode("aGk_"), Some(b"hi?".to_vec()));
        assert_eq!(base64_decode("!"), None);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
