//! Identifiers, API keys, credential encryption and timestamps.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_token(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A new id such as `pay_3kTMd0qN5vB8xZ1cR7wYhL2e` (142 bits of randomness).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", random_token(24))
}

/// A new API key. Only its hash is stored; the clear key is shown once.
pub fn new_api_key(prefix: &str) -> String {
    format!("{prefix}_{}", random_token(40))
}

/// How API keys are stored: SHA-256 hex. Keys are 238-bit random tokens, so
/// a fast hash is safe (no dictionary to attack) and lookups stay O(1).
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The first characters of a key, to tell keys apart in listings.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(12).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the master key must be 32 bytes, given as 64 hex characters or base64")]
    BadMasterKey,
    #[error("sealed data is malformed")]
    Malformed,
    #[error("sealed data does not decrypt under this master key")]
    Decrypt,
    #[error("could not read or create the master key file: {0}")]
    Io(#[from] std::io::Error),
}

/// Seals connector credentials at rest with AES-256-GCM. Each value gets a
/// fresh 96-bit nonce; the stored form is base64(nonce || ciphertext+tag).
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// Derived from the master key: fingerprints of requests (idempotency)
    /// are keyed with it, so a stored fingerprint cannot be searched for
    /// the card number that went into it without the master key. Keyed
    /// once, here; each fingerprint starts from a copy.
    fingerprint_mac: Hmac<Sha256>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key_text(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).map_err(|_| CryptoError::BadMasterKey)?
        } else {
            BASE64.decode(text).map_err(|_| CryptoError::BadMasterKey)?
        };
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadMasterKey)?;
        let fingerprint_key = derive_key(&bytes, b"passerelle/idempotency-fingerprint/v1")?;
        let fingerprint_mac = <Hmac<Sha256> as Mac>::new_from_slice(&fingerprint_key)
            .map_err(|_| CryptoError::BadMasterKey)?;
        Ok(Self {
            cipher,
            fingerprint_mac,
        })
    }

    /// Reads the key file, creating it (mode 0600) with a random key if absent.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_key_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                rand::fill(&mut key);
                let text = hex::encode(key);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                write_private(path, text.as_bytes())?;
                Self::from_key_text(&text)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// HMAC-SHA-256 (hex) of `parts` under the fingerprint key, each part
    /// length-prefixed so that no two lists give the same input.
    pub fn fingerprint(&self, parts: &[&[u8]]) -> String {
        let mut mac = self.fingerprint_mac.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    pub fn seal(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .map_err(|_| CryptoError::Decrypt)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(BASE64.encode(out))
    }

    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, CryptoError> {
        let bytes = BASE64.decode(sealed).map_err(|_| CryptoError::Malformed)?;
        if bytes.len() < 12 + 16 {
            return Err(CryptoError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// A key for one purpose (`label`) derived from the master key.
fn derive_key(master: &[u8], label: &[u8]) -> Result<[u8; 32], CryptoError> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(master).map_err(|_| CryptoError::BadMasterKey)?;
    mac.update(label);
    Ok(mac.finalize().into_bytes().into())
}

/// Now, as Unix milliseconds.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)
}

/// Now, as RFC 3339 UTC with milliseconds: `2026-11-27T13:56:16.123Z`.
pub fn now_rfc3339() -> String {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format_unix_ms(since_epoch.as_millis() as i64)
}

/// Formats Unix milliseconds as RFC 3339 UTC.
pub fn format_unix_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Reads back what [`format_unix_ms`] writes (`2026-11-27T13:56:16.123Z`).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[23] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> { text.get(from..to)?.parse().ok() };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, m, sec, millis) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 86_400 + h * 3600 + m * 60 + sec) * 1000) + millis)
}

/// A proleptic Gregorian date to days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats() {
        for ms in [0, 1_764_251_776_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&format_unix_ms(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339_ms("2026-11-27 13:56:16"), None);
    }

    #[test]
    fn formats_times() {
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_unix_ms(1_795_787_776_123),
            "2026-11-27T13:56:16.123Z"
        );
        assert_eq!(format_unix_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn secret_box_round_trips_and_detects_tampering() {
        let sb = SecretBox::from_key_text(&"ab".repeat(32)).unwrap();
        let sealed = sb.seal(b"api_key=secret").unwrap();
        assert!(!sealed.contains("secret"));
        assert_eq!(sb.open(&sealed).unwrap(), b"api_key=secret");
        let other = SecretBox::from_key_text(&"cd".repeat(32)).unwrap();
        assert!(matches!(other.open(&sealed), Err(CryptoError::Decrypt)));
        assert!(SecretBox::from_key_text("short").is_err());
    }

    #[test]
    fn ids_and_keys_are_random() {
        let a = new_id("pay");
        assert!(a.starts_with("pay_") && a.len() == 28);
        assert_ne!(a, new_id("pay"));
        let key = new_api_key("sk_test");
        assert_eq!(hash_api_key(&key).len(), 64);
        assert_eq!(key_prefix(&key).len(), 12);
    }
}
