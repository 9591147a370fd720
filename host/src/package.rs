//! Plugin packages (`.ppkg`): a connector's manifest and component in one
//! file, optionally signed by its publisher.
//!
//! Format: a gzip'd tar holding, in this order, `manifest.toml`,
//! `component.wasm` and an optional `signature.toml`; nothing else, at most
//! [`MAX_PACKAGE_BYTES`] of content. The digest covers the manifest and the
//! component (length-prefixed, under a domain tag); the signature is ed25519
//! over the digest, under another tag, so a signature can be neither moved
//! to another package nor mistaken for a signature of anything else.
//!
//! Trust: the operator lists the keys it trusts, each for one publisher
//! (`<publisher> ed25519:<base64 public key>`). A package is accepted when a
//! key trusted *for the publisher its manifest names* signed it. In
//! development (`allow_unsigned`) unsigned packages and packages signed by
//! unknown keys are accepted too, but a signature that is provably wrong is
//! refused in every mode; see [`PackagePolicy::verify`].

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::Signer as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::runtime::manifest::{ManifestError, PluginManifest};

/// Largest total content of a package (manifest + component + signature).
pub const MAX_PACKAGE_BYTES: u64 = 64 * 1024 * 1024;

pub const MANIFEST_ENTRY: &str = "manifest.toml";
pub const COMPONENT_ENTRY: &str = "component.wasm";
pub const SIGNATURE_ENTRY: &str = "signature.toml";

const DIGEST_DOMAIN: &[u8] = b"passerelle-package-v1\0";
const SIGNATURE_DOMAIN: &[u8] = b"passerelle-package-signature-v1\0";
const ALGORITHM: &str = "ed25519";
/// Tar headers and padding on top of the content: the decompressed stream
/// is cut off past the content limit plus this, so a gzip bomb stops early.
const TAR_OVERHEAD_BYTES: u64 = 1024 * 1024;

/// Why a package was refused. Messages are meant for the operator (they
/// reach the admin API as 4xx answers and the CLI's stderr).
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not a valid plugin package: {0}")]
    Invalid(String),
    #[error("the plugin package is larger than {limit} bytes uncompressed")]
    TooLarge { limit: u64 },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "the plugin package is not signed; sign it with `passerelle plugin sign` \
         (or start the server with --allow-unsigned-plugins, for development only)"
    )]
    Unsigned,
    #[error(
        "the plugin package is signed by key {key_id} (publisher {publisher:?}), \
         which is not among the trusted keys"
    )]
    Untrusted { publisher: String, key_id: String },
    #[error("the plugin package's signature is invalid: {0}")]
    SignatureInvalid(String),
    #[error("signing key: {0}")]
    Key(String),
    #[error("trusted keys, line {line}: {message}")]
    TrustedKeys { line: usize, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PackageError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
        move |source| PackageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `signature.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageSignature {
    pub algorithm: String,
    pub publisher: String,
    /// First 16 hex digits of the SHA-256 of the public key.
    pub key_id: String,
    /// Base64 of the 64-byte ed25519 signature.
    pub signature: String,
}

/// A plugin package in memory.
#[derive(Debug, Clone)]
pub struct Package {
    pub manifest_toml: String,
    pub manifest: PluginManifest,
    pub component: Vec<u8>,
    pub signature: Option<PackageSignature>,
}

impl Package {
    /// An unsigned package; the manifest must parse.
    pub fn new(manifest_toml: String, component: Vec<u8>) -> Result<Self, PackageError> {
        let size = manifest_toml.len() as u64 + component.len() as u64;
        if size > MAX_PACKAGE_BYTES {
            return Err(PackageError::TooLarge {
                limit: MAX_PACKAGE_BYTES,
            });
        }
        let manifest = PluginManifest::parse(&manifest_toml)?;
        Ok(Self {
            manifest_toml,
            manifest,
            component,
            signature: None,
        })
    }

    /// Reads a `.ppkg` file's bytes. Checks the layout and the manifest,
    /// not the signature ([`PackagePolicy::verify`] does).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PackageError> {
        let decoder = flate2::read::GzDecoder::new(bytes);
        let mut archive = tar::Archive::new(decoder.take(MAX_PACKAGE_BYTES + TAR_OVERHEAD_BYTES));
        let entries = archive
            .entries()
            .map_err(|e| PackageError::Invalid(format!("not a gzip'd tar archive ({e})")))?;
        let expected = [MANIFEST_ENTRY, COMPONENT_ENTRY, SIGNATURE_ENTRY];
        let mut contents: Vec<Vec<u8>> = Vec::new();
        let mut total: u64 = 0;
        for entry in entries {
            let mut entry = entry.map_err(|e| {
                PackageError::Invalid(format!("corrupt or truncated archive ({e})"))
            })?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let index = contents.len();
            match expected.get(index) {
                Some(want) if *want == name => {}
                Some(want) => {
                    return Err(PackageError::Invalid(format!(
                        "entry {} is {name:?}, expected {want:?} (entries: {})",
                        index + 1,
                        expected.join(", ")
                    )))
                }
                None => {
                    return Err(PackageError::Invalid(format!(
                        "unexpected entry {name:?} (a package holds only {})",
                        expected.join(", ")
                    )))
                }
            }
            if !entry.header().entry_type().is_file() {
                return Err(PackageError::Invalid(format!(
                    "{name} is not a regular file"
                )));
            }
            let size = entry
                .header()
                .size()
                .map_err(|e| PackageError::Invalid(format!("{name}: bad size ({e})")))?;
            total = total.saturating_add(size);
            if total > MAX_PACKAGE_BYTES {
                return Err(PackageError::TooLarge {
                    limit: MAX_PACKAGE_BYTES,
                });
            }
            // The header's size bounds the read; `take` guards against a
            // reader that would give more anyway.
            let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            (&mut entry)
                .take(size)
                .read_to_end(&mut data)
                .map_err(|e| PackageError::Invalid(format!("{name}: cannot read ({e})")))?;
            contents.push(data);
        }
        let mut contents = contents.into_iter();
        let manifest = contents
            .next()
            .ok_or_else(|| PackageError::Invalid(format!("no {MANIFEST_ENTRY}")))?;
        let component = contents
            .next()
            .ok_or_else(|| PackageError::Invalid(format!("no {COMPONENT_ENTRY}")))?;
        let signature = contents
            .next()
            .map(|bytes| {
                let text = String::from_utf8(bytes).map_err(|_| {
                    PackageError::SignatureInvalid(format!("{SIGNATURE_ENTRY} is not UTF-8"))
                })?;
                toml::from_str::<PackageSignature>(&text).map_err(|e| {
                    PackageError::SignatureInvalid(format!("{SIGNATURE_ENTRY}: {}", e.message()))
                })
            })
            .transpose()?;
        let manifest_toml = String::from_utf8(manifest)
            .map_err(|_| PackageError::Invalid(format!("{MANIFEST_ENTRY} is not UTF-8")))?;
        let mut package = Self::new(manifest_toml, component)?;
        package.signature = signature;
        Ok(package)
    }

    /// The `.ppkg` bytes. Deterministic: fixed modes, owners and times.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PackageError> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        let signature = self
            .signature
            .as_ref()
            .map(toml::to_string)
            .transpose()
            .map_err(|e| PackageError::Invalid(format!("cannot write {SIGNATURE_ENTRY}: {e}")))?;
        let mut entries: Vec<(&str, &[u8])> = vec![
            (MANIFEST_ENTRY, self.manifest_toml.as_bytes()),
            (COMPONENT_ENTRY, &self.component),
        ];
        if let Some(signature) = &signature {
            entries.push((SIGNATURE_ENTRY, signature.as_bytes()));
        }
        let write_error = |e: std::io::Error| PackageError::Invalid(format!("cannot write: {e}"));
        for (name, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_path(name).map_err(write_error)?;
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_cksum();
            builder.append(&header, data).map_err(write_error)?;
        }
        let encoder = builder.into_inner().map_err(write_error)?;
        let mut bytes = encoder.finish().map_err(write_error)?;
        bytes.flush().map_err(write_error)?;
        Ok(bytes)
    }

    /// Hex SHA-256 over the manifest and the component.
    pub fn digest(&self) -> String {
        hex::encode(self.digest_bytes())
    }

    fn digest_bytes(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update(DIGEST_DOMAIN);
        hasher.update((self.manifest_toml.len() as u64).to_be_bytes());
        hasher.update(self.manifest_toml.as_bytes());
        hasher.update((self.component.len() as u64).to_be_bytes());
        hasher.update(&self.component);
        hasher.finalize().into()
    }

    fn signed_message(&self) -> Vec<u8> {
        [SIGNATURE_DOMAIN, &self.digest_bytes()].concat()
    }

    /// Signs (or re-signs) the package. The key must be the manifest
    /// publisher's: a publisher signs only its own plugins.
    pub fn sign(&mut self, key: &SigningKey) -> Result<(), PackageError> {
        if key.publisher != self.manifest.publisher {
            return Err(PackageError::Key(format!(
                "the key is publisher {:?}'s; the manifest says the plugin is publisher {:?}'s",
                key.publisher, self.manifest.publisher
            )));
        }
        let signature = key.key.sign(&self.signed_message());
        self.signature = Some(PackageSignature {
            algorithm: ALGORITHM.into(),
            publisher: key.publisher.clone(),
            key_id: key_id(&key.key.verifying_key()),
            signature: BASE64.encode(signature.to_bytes()),
        });
        Ok(())
    }
}

/// First 16 hex digits of the SHA-256 of a public key.
fn key_id(key: &ed25519_dalek::VerifyingKey) -> String {
    let mut id = hex::encode(Sha256::digest(key.as_bytes()));
    id.truncate(16);
    id
}

/// A publisher name is one word: it is the first column of trusted-keys lines.
fn check_publisher(publisher: &str) -> Result<(), String> {
    if publisher.is_empty()
        || publisher.len() > 64
        || publisher
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "publisher {publisher:?} must be 1 to 64 characters without spaces"
        ));
    }
    Ok(())
}

/// A publisher's secret signing key.
pub struct SigningKey {
    pub publisher: String,
    key: ed25519_dalek::SigningKey,
}

impl fmt::Debug for SigningKey {
    // Never the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("publisher", &self.publisher)
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

/// The secret key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigningKeyFile {
    publisher: String,
    secret_key: String,
}

impl SigningKey {
    /// A new key from the operating system's randomness.
    pub fn generate(publisher: &str) -> Result<Self, PackageError> {
        use rand::TryRngCore as _;
        check_publisher(publisher).map_err(PackageError::Key)?;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| PackageError::Key(format!("no randomness from the system: {e}")))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        seed.fill(0);
        Ok(Self {
            publisher: publisher.to_string(),
            key,
        })
    }

    pub fn load(path: &Path) -> Result<Self, PackageError> {
        let text = std::fs::read_to_string(path).map_err(PackageError::io(path))?;
        let bad = |message: String| PackageError::Key(format!("{}: {message}", path.display()));
        let file: SigningKeyFile = toml::from_str(&text)
            .map_err(|e| bad(format!("not a signing key file ({})", e.message().trim())))?;
        check_publisher(&file.publisher).map_err(bad)?;
        let seed: [u8; 32] = BASE64
            .decode(file.secret_key.trim())
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| bad("secret_key must be the base64 of 32 bytes".into()))?;
        Ok(Self {
            publisher: file.publisher,
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Writes the key, readable by its owner only. Refuses to overwrite an
    /// existing file: losing a published key is worse than an error.
    pub fn save(&self, path: &Path) -> Result<(), PackageError> {
        let file = SigningKeyFile {
            publisher: self.publisher.clone(),
            secret_key: BASE64.encode(self.key.to_bytes()),
        };
        let text = toml::to_string(&file).map_err(|e| PackageError::Key(e.to_string()))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut out = options.open(path).map_err(PackageError::io(path))?;
        out.write_all(text.as_bytes())
            .map_err(PackageError::io(path))
    }

    pub fn key_id(&self) -> String {
        key_id(&self.key.verifying_key())
    }

    /// The line an operator adds to its trusted keys file.
    pub fn public_line(&self) -> String {
        format!(
            "{} {ALGORITHM}:{}",
            self.publisher,
            BASE64.encode(self.key.verifying_key().as_bytes())
        )
    }
}

#[derive(Debug, Clone)]
struct TrustedKey {
    publisher: String,
    key_id: String,
    key: ed25519_dalek::VerifyingKey,
}

/// The publishers' public keys an operator trusts.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

impl TrustedKeys {
    pub fn empty() -> Self {
        Self::default()
    }

    /// One key per line, `<publisher> ed25519:<base64 public key>`; `#`
    /// starts a comment; blank lines are ignored.
    pub fn parse(text: &str) -> Result<Self, PackageError> {
        let mut keys = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |message: String| PackageError::TrustedKeys { line, message };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            let (Some(publisher), Some(key), None) = (words.next(), words.next(), words.next())
            else {
                return Err(bad(
                    "expected `<publisher> ed25519:<base64 public key>`".into()
                ));
            };
            check_publisher(publisher).map_err(bad)?;
            let Some(encoded) = key.strip_prefix("ed25519:") else {
                return Err(bad(format!(
                    "unsupported key {key:?}: only `ed25519:<base64>` keys are supported"
                )));
            };
            let bytes: [u8; 32] = BASE64
                .decode(encoded)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("the key must be the base64 of 32 bytes".into()))?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad("not a valid ed25519 public key".into()))?;
            keys.push(TrustedKey {
                publisher: publisher.to_string(),
                key_id: key_id(&key),
                key,
            });
        }
        Ok(Self { keys })
    }

    pub fn load(path: &Path) -> Result<Self, PackageError> {
        let text = std::fs::read_to_string(path).map_err(PackageError::io(path))?;
        Self::parse(&text).map_err(|e| match e {
            PackageError::TrustedKeys { line, message } => PackageError::TrustedKeys {
                line,
                message: format!("{}: {message}", path.display()),
            },
            other => other,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// How far a verified package is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Signed by a key trusted for the manifest's publisher.
    Signed { publisher: String, key_id: String },
    /// Not signed (accepted only with `allow_unsigned`).
    Unsigned,
    /// Signed by a key the operator does not know (accepted only with
    /// `allow_unsigned`; the signature could not be checked).
    Untrusted { key_id: String },
}

impl Trust {
    pub fn as_str(&self) -> &'static str {
        match self {
            Trust::Signed { .. } => "signed",
            Trust::Unsigned => "unsigned",
            Trust::Untrusted { .. } => "untrusted",
        }
    }
}

/// What the operator accepts.
#[derive(Debug, Clone, Default)]
pub struct PackagePolicy {
    pub trusted: TrustedKeys,
    /// Development only: accept unsigned packages and unknown keys.
    pub allow_unsigned: bool,
}

impl PackagePolicy {
    /// Decides whether `package` may be installed.
    ///
    /// - no signature: `Unsigned` (error), or `Trust::Unsigned` in dev mode;
    /// - a key nobody trusts: `Untrusted` (error), or `Trust::Untrusted` in
    ///   dev mode; its signature cannot be checked without the key;
    /// - a signature that provably fails — it does not verify with the
    ///   trusted key it names (a tampered manifest or component), it names
    ///   another publisher than the manifest, or its key is trusted only
    ///   for other publishers — is `SignatureInvalid` in every mode. The
    ///   last case is not "untrusted": the key is known, and it claims a
    ///   plugin of a publisher it does not speak for (publisher A passing a
    ///   plugin off as publisher B's); dev mode must not let that through.
    pub fn verify(&self, package: &Package) -> Result<Trust, PackageError> {
        let Some(signature) = &package.signature else {
            return if self.allow_unsigned {
                Ok(Trust::Unsigned)
            } else {
                Err(PackageError::Unsigned)
            };
        };
        let invalid = |message: String| Err(PackageError::SignatureInvalid(message));
        if signature.algorithm != ALGORITHM {
            return invalid(format!(
                "unsupported algorithm {:?} (only {ALGORITHM})",
                signature.algorithm
            ));
        }
        let publisher = &package.manifest.publisher;
        if &signature.publisher != publisher {
            return invalid(format!(
                "signed as publisher {:?}, but the manifest names publisher {publisher:?}",
                signature.publisher
            ));
        }
        let bytes: [u8; 64] = match BASE64
            .decode(signature.signature.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
        {
            Some(bytes) => bytes,
            None => return invalid("the signature is not the base64 of 64 bytes".into()),
        };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        let with_id: Vec<&TrustedKey> = self
            .trusted
            .keys
            .iter()
            .filter(|k| k.key_id == signature.key_id)
            .collect();
        let Some(key) = with_id.iter().find(|k| &k.publisher == publisher) else {
            if let Some(other) = with_id.first() {
                return invalid(format!(
                    "key {} is trusted for publisher {:?}, not for {publisher:?}",
                    other.key_id, other.publisher
                ));
            }
            return if self.allow_unsigned {
                Ok(Trust::Untrusted {
                    key_id: signature.key_id.clone(),
                })
            } else {
                Err(PackageError::Untrusted {
                    publisher: signature.publisher.clone(),
                    key_id: signature.key_id.clone(),
                })
            };
        };
        // `verify_strict` also refuses weak keys and malleable signatures.
        if key
            .key
            .verify_strict(&package.signed_message(), &sig)
            .is_err()
        {
            return invalid(format!(
                "it does not match the package's content (digest {}) for key {}: \
                 the manifest or the component was changed after signing",
                package.digest(),
                key.key_id
            ));
        }
        Ok(Trust::Signed {
            publisher: publisher.clone(),
            key_id: key.key_id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(publisher: &str) -> String {
        format!(
            "id = \"acme\"\nname = \"Acme\"\nversion = \"1.0.0\"\nwit = \"1.0.0\"\npublisher = \"{publisher}\"\n"
        )
    }

    fn package(publisher: &str) -> Package {
        Package::new(manifest(publisher), b"\0asm fake component".to_vec()).unwrap()
    }

    fn policy(keys: &[&SigningKey], allow_unsigned: bool) -> PackagePolicy {
        let text: Vec<String> = keys.iter().map(|k| k.public_line()).collect();
        PackagePolicy {
            trusted: TrustedKeys::parse(&text.join("\n")).unwrap(),
            allow_unsigned,
        }
    }

    /// Builds a tar.gz from raw entries, for malformed packages.
    fn raw_package(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(encoder);
        for (name, data) in entries {
            let mut header = tar::Header::new_ustar();
            header.set_path(name).unwrap();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn signed_package_round_trips_and_verifies() {
        let key = SigningKey::generate("acme").unwrap();
        let mut pkg = package("acme");
        pkg.sign(&key).unwrap();
        let bytes = pkg.to_bytes().unwrap();
        assert_eq!(bytes, pkg.to_bytes().unwrap(), "deterministic");
        let back = Package::from_bytes(&bytes).unwrap();
        assert_eq!(back.manifest_toml, pkg.manifest_toml);
        assert_eq!(back.component, pkg.component);
        assert_eq!(back.signature, pkg.signature);
        assert_eq!(back.digest(), pkg.digest());
        assert_eq!(
            policy(&[&key], false).verify(&back).unwrap(),
            Trust::Signed {
                publisher: "acme".into(),
                key_id: key.key_id()
            }
        );
    }

    #[test]
    fn tampering_is_detected_in_every_mode() {
        let key = SigningKey::generate("acme").unwrap();
        let mut signed = package("acme");
        signed.sign(&key).unwrap();
        let mut tampered_component = signed.clone();
        tampered_component.component[0] ^= 1;
        let mut tampered_manifest = signed.clone();
        tampered_manifest.manifest_toml = tampered_manifest
            .manifest_toml
            .replace("1.0.0\"\nwit", "1.0.1\"\nwit");
        tampered_manifest.manifest =
            PluginManifest::parse(&tampered_manifest.manifest_toml).unwrap();
        let mut tampered_signature = signed.clone();
        if let Some(sig) = &mut tampered_signature.signature {
            let mut bytes = BASE64.decode(&sig.signature).unwrap();
            bytes[10] ^= 0x40;
            sig.signature = BASE64.encode(bytes);
        }
        let mut truncated_signature = signed.clone();
        if let Some(sig) = &mut truncated_signature.signature {
            sig.signature.truncate(20);
        }
        for allow_unsigned in [false, true] {
            let policy = policy(&[&key], allow_unsigned);
            for (what, pkg) in [
                ("component", &tampered_component),
                ("manifest", &tampered_manifest),
                ("signature", &tampered_signature),
                ("short signature", &truncated_signature),
            ] {
                // Through the file format too.
                let pkg = Package::from_bytes(&pkg.to_bytes().unwrap()).unwrap();
                match policy.verify(&pkg) {
                    Err(PackageError::SignatureInvalid(_)) => {}
                    other => panic!("{what} (allow_unsigned={allow_unsigned}): {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_key_cannot_sign_for_another_publisher() {
        let acme = SigningKey::generate("acme").unwrap();
        let evil = SigningKey::generate("evil").unwrap();
        // The signer refuses outright.
        assert!(matches!(
            package("acme").sign(&evil),
            Err(PackageError::Key(_))
        ));
        // A forged signature.toml claiming acme, made with evil's key: evil's
        // key is trusted, but for evil only.
        let mut forged = package("evil");
        forged.sign(&evil).unwrap();
        let mut victim = package("acme");
        let mut sig = forged.signature.clone().unwrap();
        sig.publisher = "acme".into();
        sig.signature = BASE64.encode(evil.key.sign(&victim.signed_message()).to_bytes());
        victim.signature = Some(sig);
        for allow_unsigned in [false, true] {
            let err = policy(&[&acme, &evil], allow_unsigned)
                .verify(&victim)
                .unwrap_err();
            assert!(
                matches!(&err, PackageError::SignatureInvalid(m) if m.contains("trusted for publisher \"evil\"")),
                "{err}"
            );
        }
        // Signature publisher differing from the manifest's.
        let mut mismatch = package("acme");
        mismatch.sign(&acme).unwrap();
        if let Some(sig) = &mut mismatch.signature {
            sig.publisher = "other".into();
        }
        assert!(matches!(
            policy(&[&acme], true).verify(&mismatch),
            Err(PackageError::SignatureInvalid(_))
        ));
    }

    #[test]
    fn unsigned_and_untrusted_depend_on_the_mode() {
        let known = SigningKey::generate("acme").unwrap();
        let unknown = SigningKey::generate("acme").unwrap();
        let unsigned = package("acme");
        let mut untrusted = package("acme");
        untrusted.sign(&unknown).unwrap();
        let strict = policy(&[&known], false);
        assert!(matches!(
            strict.verify(&unsigned),
            Err(PackageError::Unsigned)
        ));
        match strict.verify(&untrusted) {
            Err(PackageError::Untrusted { key_id, publisher }) => {
                assert_eq!(key_id, unknown.key_id());
                assert_eq!(publisher, "acme");
            }
            other => panic!("{other:?}"),
        }
        let dev = policy(&[&known], true);
        assert_eq!(dev.verify(&unsigned).unwrap(), Trust::Unsigned);
        assert_eq!(
            dev.verify(&untrusted).unwrap(),
            Trust::Untrusted {
                key_id: unknown.key_id()
            }
        );
        assert_eq!(Trust::Unsigned.as_str(), "unsigned");
        let empty = PackagePolicy::default();
        assert!(empty.trusted.is_empty());
        assert!(matches!(
            empty.verify(&untrusted),
            Err(PackageError::Untrusted { .. })
        ));
    }

    #[test]
    fn malformed_archives_are_refused() {
        let m = manifest("acme");
        let m = m.as_bytes();
        let c: &[u8] = b"component";
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("extra entry", raw_package(&[(MANIFEST_ENTRY, m), (COMPONENT_ENTRY, c), (SIGNATURE_ENTRY, b"algorithm = \"ed25519\"\npublisher = \"acme\"\nkey_id = \"00\"\nsignature = \"\"\n"), ("README", b"hi")])),
            ("missing component", raw_package(&[(MANIFEST_ENTRY, m)])),
            ("wrong order", raw_package(&[(COMPONENT_ENTRY, c), (MANIFEST_ENTRY, m)])),
            ("in a folder", raw_package(&[("plugin/manifest.toml", m), (COMPONENT_ENTRY, c)])),
            ("unknown entry", raw_package(&[(MANIFEST_ENTRY, m), ("other.wasm", c)])),
            ("empty", raw_package(&[])),
            ("not gzip", b"PK\x03\x04 a zip file".to_vec()),
            ("bad manifest", raw_package(&[(MANIFEST_ENTRY, b"id = 3"), (COMPONENT_ENTRY, c)])),
        ];
        for (what, bytes) in cases {
            match Package::from_bytes(&bytes) {
                Err(PackageError::Invalid(_) | PackageError::Manifest(_)) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        let bad_sig = raw_package(&[
            (MANIFEST_ENTRY, m),
            (COMPONENT_ENTRY, c),
            (SIGNATURE_ENTRY, b"nonsense"),
        ]);
        assert!(matches!(
            Package::from_bytes(&bad_sig),
            Err(PackageError::SignatureInvalid(_))
        ));
    }

    #[test]
    fn oversized_packages_are_refused() {
        // Compresses to almost nothing: the limit is on uncompressed bytes.
        let big = vec![0u8; MAX_PACKAGE_BYTES as usize + 1];
        let m = manifest("acme");
        let bytes = raw_package(&[(MANIFEST_ENTRY, m.as_bytes()), (COMPONENT_ENTRY, &big)]);
        assert!(bytes.len() < 1024 * 1024);
        assert!(matches!(
            Package::from_bytes(&bytes),
            Err(PackageError::TooLarge { .. })
        ));
        assert!(matches!(
            Package::new(m, big),
            Err(PackageError::TooLarge { .. })
        ));
    }

    #[test]
    fn trusted_keys_parse_errors_name_the_line() {
        let key = SigningKey::generate("acme").unwrap();
        let good = format!(
            "# operator keys\n\n{}  # acme's release key\n",
            key.public_line()
        );
        assert_eq!(TrustedKeys::parse(&good).unwrap().len(), 1);
        let cases = [
            ("acme\n", 1),
            ("# c\nacme rsa:AAAA\n", 2),
            ("\n\nacme ed25519:not-base64!\n", 3),
            ("acme ed25519:AAAA\n", 1),
            ("acme ed25519:AAAA extra\n", 1),
        ];
        for (text, line) in cases {
            match TrustedKeys::parse(text) {
                Err(PackageError::TrustedKeys { line: l, message }) => {
                    assert_eq!(l, line, "{text:?}: {message}");
                    let shown = TrustedKeys::parse(text).unwrap_err().to_string();
                    assert!(shown.contains(&format!("line {line}")), "{shown}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn signing_keys_save_private_and_load() {
        let dir = std::env::temp_dir().join(format!(
            "passerelle-pkg-key-{}-{}",
            std::process::id(),
            crate::crypto::new_id("t")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("acme.key");
        let key = SigningKey::generate("acme").unwrap();
        key.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(key.save(&path).is_err(), "never overwrites a key");
        let loaded = SigningKey::load(&path).unwrap();
        assert_eq!(loaded.public_line(), key.public_line());
        assert!(!format!("{loaded:?}").contains(&BASE64.encode(key.key.to_bytes())));
        std::fs::write(
            dir.join("bad.key"),
            "publisher = \"acme\"\nsecret_key = \"AAAA\"\n",
        )
        .unwrap();
        assert!(matches!(
            SigningKey::load(&dir.join("bad.key")),
            Err(PackageError::Key(_))
        ));
        assert!(matches!(
            SigningKey::generate("two words"),
            Err(PackageError::Key(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
