//! `passerelle plugin keygen|pack|sign|inspect`, driven through the real
//! binary, and the verification of what it produces.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use passerelle::package::{Package, PackageError, PackagePolicy, Trust, TrustedKeys};
use serde_json::Value;

use common::cli::{plugin, TempDir};

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Exit code 1 and a one-line error; returns it.
fn failed(output: &Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("passerelle plugin: "), "{stderr}");
    stderr
}

/// Writes the bundled dummy connector's manifest and component to `dir`.
fn dummy_sources(dir: &TempDir) -> (PathBuf, PathBuf) {
    let dummy = passerelle::bundled::BUNDLED_PLUGINS
        .iter()
        .find(|p| p.id == "dummy")
        .expect("the dummy connector is bundled");
    let manifest = dir.path("manifest.toml");
    let component = dir.path("dummy.wasm");
    std::fs::write(&manifest, dummy.manifest_toml).unwrap();
    std::fs::write(&component, dummy.component).unwrap();
    (manifest, component)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn inspect(package: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["inspect", s(package)];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(&plugin(&args))).unwrap()
}

fn keygen(dir: &TempDir, publisher: &str, file: &str) -> (PathBuf, PathBuf) {
    let key = dir.path(file);
    let line = ok(&plugin(&[
        "keygen",
        "--publisher",
        publisher,
        "--out",
        s(&key),
    ]));
    assert!(
        line.trim().starts_with(&format!("{publisher} ed25519:")),
        "{line}"
    );
    let trusted = dir.path(&format!("{file}.trusted"));
    std::fs::write(&trusted, format!("# test keys\n{line}")).unwrap();
    (key, trusted)
}

#[test]
fn keygen_pack_inspect_and_tampering() {
    let dir = TempDir::new("pkg-cli");
    let (key, trusted) = keygen(&dir, "passerelle", "passerelle.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is private");
    }
    // Never overwrites a key.
    let again = failed(&plugin(&[
        "keygen",
        "--publisher",
        "passerelle",
        "--out",
        s(&key),
    ]));
    assert!(again.contains("exists"), "{again}");

    let (manifest, component) = dummy_sources(&dir);
    let package = dir.path("dummy.ppkg");
    let out = ok(&plugin(&[
        "pack",
        "--manifest",
        s(&manifest),
        "--component",
        s(&component),
        "--key",
        s(&key),
        "--out",
        s(&package),
    ]));
    assert!(out.contains("digest "), "{out}");

    let shown = inspect(&package, &["--trusted-keys", s(&trusted)]);
    assert_eq!(shown["id"], "dummy");
    let operations: Vec<&str> = shown["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(operations.contains(&"partial-capture"), "{operations:?}");
    assert!(operations.contains(&"notifications"), "{operations:?}");
    assert_eq!(shown["payment_methods"], serde_json::json!(["card"]));
    assert_eq!(shown["currencies"], serde_json::json!([]));
    let credentials: Vec<&str> = shown["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        credentials,
        [
            "api_key",
            "webhook_secret",
            "authorization_validity_hours",
            "multiple_partial_captures"
        ]
    );
    assert_eq!(shown["credentials"][0]["secret"], true);
    assert_eq!(shown["signature"]["publisher"], "passerelle");
    assert_eq!(shown["signature"]["key_id"].as_str().unwrap().len(), 16);
    assert_eq!(shown["verification"]["trust"], "signed");
    let digest = shown["digest"].as_str().unwrap().to_string();
    assert!(out.contains(&digest), "pack prints the digest");

    // The library agrees, and the packaged manifest still installs.
    let bytes = std::fs::read(&package).unwrap();
    let pkg = Package::from_bytes(&bytes).unwrap();
    let policy = PackagePolicy {
        trusted: TrustedKeys::load(&trusted).unwrap(),
        allow_unsigned: false,
    };
    assert!(matches!(
        policy.verify(&pkg).unwrap(),
        Trust::Signed { ref publisher, .. } if publisher == "passerelle"
    ));
    assert_eq!(pkg.digest(), digest);

    // One byte of the component changed, the old signature kept.
    let mut tampered = pkg.clone();
    let middle = tampered.component.len() / 2;
    tampered.component[middle] ^= 0x01;
    let tampered_path = dir.path("tampered.ppkg");
    std::fs::write(&tampered_path, tampered.to_bytes().unwrap()).unwrap();
    let reread = Package::from_bytes(&std::fs::read(&tampered_path).unwrap()).unwrap();
    assert_eq!(reread.signature, pkg.signature, "the old signature is kept");
    for allow_unsigned in [false, true] {
        let policy = PackagePolicy {
            trusted: TrustedKeys::load(&trusted).unwrap(),
            allow_unsigned,
        };
        match policy.verify(&reread) {
            Err(PackageError::SignatureInvalid(message)) => {
                assert!(message.contains("changed after signing"), "{message}")
            }
            other => panic!("tampered package accepted ({allow_unsigned}): {other:?}"),
        }
    }
    let shown = inspect(&tampered_path, &["--trusted-keys", s(&trusted)]);
    assert_eq!(shown["verification"]["ok"], false);
    assert_ne!(shown["digest"].as_str().unwrap(), digest);

    // Without a trusted key for it, the package is untrusted, not invalid.
    let policy = PackagePolicy {
        trusted: TrustedKeys::empty(),
        allow_unsigned: false,
    };
    assert!(matches!(
        policy.verify(&pkg),
        Err(PackageError::Untrusted { .. })
    ));
}

#[test]
fn sign_an_unsigned_package() {
    let dir = TempDir::new("pkg-sign");
    let (key, trusted) = keygen(&dir, "passerelle", "k.key");
    let (manifest, component) = dummy_sources(&dir);
    let package = dir.path("unsigned.ppkg");
    let out = ok(&plugin(&[
        "pack",
        "--manifest",
        s(&manifest),
        "--component",
        s(&component),
        "--out",
        s(&package),
    ]));
    assert!(out.contains("unsigned"), "{out}");
    let shown = inspect(&package, &["--trusted-keys", s(&trusted)]);
    assert!(shown["signature"].is_null());
    assert_eq!(shown["verification"]["ok"], false);
    assert!(
        shown["verification"]["error"]
            .as_str()
            .unwrap()
            .contains("not signed"),
        "{shown}"
    );

    // To another file, then in place.
    let signed = dir.path("signed.ppkg");
    ok(&plugin(&[
        "sign",
        s(&package),
        "--key",
        s(&key),
        "--out",
        s(&signed),
    ]));
    assert!(inspect(&package, &[])["signature"].is_null());
    let shown = inspect(&signed, &["--trusted-keys", s(&trusted)]);
    assert_eq!(shown["verification"]["trust"], "signed");
    ok(&plugin(&["sign", s(&package), "--key", s(&key)]));
    let shown = inspect(&package, &["--trusted-keys", s(&trusted)]);
    assert_eq!(shown["verification"]["trust"], "signed");
    assert_eq!(
        shown["digest"],
        inspect(&signed, &[])["digest"],
        "signing changes no content"
    );
}

#[test]
fn wrong_keys_and_lying_manifests_are_errors() {
    let dir = TempDir::new("pkg-errors");
    let (manifest, component) = dummy_sources(&dir);
    let package = dir.path("p.ppkg");
    ok(&plugin(&[
        "pack",
        "--manifest",
        s(&manifest),
        "--component",
        s(&component),
        "--out",
        s(&package),
    ]));

    let missing = dir.path("missing.key");
    let error = failed(&plugin(&["sign", s(&package), "--key", s(&missing)]));
    assert!(error.contains("missing.key"), "{error}");

    let garbage = dir.path("garbage.key");
    std::fs::write(
        &garbage,
        "publisher = \"passerelle\"\nsecret_key = \"short\"\n",
    )
    .unwrap();
    let error = failed(&plugin(&["sign", s(&package), "--key", s(&garbage)]));
    assert!(error.contains("base64 of 32 bytes"), "{error}");

    // A key of another publisher cannot sign passerelle's plugin.
    let (acme, _) = keygen(&dir, "acme", "acme.key");
    let error = failed(&plugin(&["sign", s(&package), "--key", s(&acme)]));
    assert!(error.contains("\"acme\""), "{error}");
    assert!(
        inspect(&package, &[])["signature"].is_null(),
        "left as it was"
    );

    // A trusted-keys file with a bad line names it.
    let bad_trusted = dir.path("bad.trusted");
    std::fs::write(&bad_trusted, "# ok\npasserelle rsa:AAAA\n").unwrap();
    let error = failed(&plugin(&[
        "inspect",
        s(&package),
        "--trusted-keys",
        s(&bad_trusted),
    ]));
    assert!(error.contains("line 2"), "{error}");

    // Not a package.
    let error = failed(&plugin(&["inspect", s(&component)]));
    assert!(error.contains("not a valid plugin package"), "{error}");

    // A manifest that claims what the component does not do.
    let text = std::fs::read_to_string(&manifest).unwrap();
    let lying = dir.path("lying.toml");
    std::fs::write(
        &lying,
        text.replace("[egress]", "operations = [\"authorize\"]\n[egress]"),
    )
    .unwrap();
    let error = failed(&plugin(&[
        "pack",
        "--manifest",
        s(&lying),
        "--component",
        s(&component),
        "--out",
        s(&dir.path("lying.ppkg")),
    ]));
    assert!(error.contains("operations"), "{error}");
    let wrong_version = dir.path("version.toml");
    std::fs::write(
        &wrong_version,
        text.replace("version = \"0.1.0\"", "version = \"9.9.9\""),
    )
    .unwrap();
    let error = failed(&plugin(&[
        "pack",
        "--manifest",
        s(&wrong_version),
        "--component",
        s(&component),
        "--out",
        s(&dir.path("version.ppkg")),
    ]));
    assert!(error.contains("version"), "{error}");
}
