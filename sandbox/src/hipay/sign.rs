//! HiPay's signatures: the `X-Allopass-Signature` header of notifications
//! and the `hash` parameter of redirect-back URLs.

use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

/// Header carrying the signature of a server-to-server notification.
pub const SIGNATURE_HEADER: &str = "X-Allopass-Signature";

/// A hash algorithm selectable in HiPay's back office.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    /// `sha1`, `sha256` or `sha512` (case-insensitive, `sha-256` accepted).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace('-', "").as_str() {
            "sha1" => Some(Algorithm::Sha1),
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// Lowercase hex digest of the concatenated parts.
    pub fn hex_digest(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut digest = D::new();
            for part in parts {
                digest.update(part);
            }
            hex::encode(digest.finalize())
        }
        match self {
            Algorithm::Sha1 => run::<Sha1>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
            Algorithm::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// `X-Allopass-Signature`: lowercase hex SHA over the raw body bytes
/// followed by the passphrase.
pub fn notification_signature(algorithm: Algorithm, passphrase: &str, body: &[u8]) -> String {
    algorithm.hex_digest(&[body, passphrase.as_bytes()])
}

/// The `hash` of a redirect-back URL: for each parameter sorted by name,
/// skipping `hash` and empty values, name + value + passphrase; then SHA of
/// the whole, lowercase hex.
pub fn redirect_hash(
    algorithm: Algorithm,
    passphrase: &str,
    params: &[(String, String)],
) -> String {
    let mut sorted: Vec<&(String, String)> = params
        .iter()
        .filter(|(name, value)| name != "hash" && !value.is_empty())
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    for (name, value) in sorted {
        text.push_str(name);
        text.push_str(value);
        text.push_str(passphrase);
    }
    algorithm.hex_digest(&[text.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // printf 'abc' | sha1sum / sha256sum
        assert_eq!(
            Algorithm::Sha1.hex_digest(&[b"a", b"bc"]),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            Algorithm::Sha256.hex_digest(&[b"abc"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Algorithm::Sha512.hex_digest(&[b"abc"]).len(), 128);
        assert_eq!(
            notification_signature(Algorithm::Sha1, "bc", b"a"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        // b=2 then a=1 sorted, empty c skipped: "a1Pb2P"
        let params = vec![
            ("b".to_owned(), "2".to_owned()),
            ("c".to_owned(), String::new()),
            ("a".to_owned(), "1".to_owned()),
            ("hash".to_owned(), "x".to_owned()),
        ];
        assert_eq!(
            redirect_hash(Algorithm::Sha256, "P", &params),
            Algorithm::Sha256.hex_digest(&[b"a1Pb2P"])
        );
        assert_eq!(Algorithm::parse("SHA-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse("md5"), None);
    }
}
