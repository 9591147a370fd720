//! Where tests find the providers' official documents (OpenAPI files, the
//! PayPal webhook vector), which this repository does not ship.
//!
//! One rule for every test of this workspace (sandbox and host) that needs
//! them: `$PASSERELLE_PSP_SPECS` when it is set, else `psp-specs/` in the
//! `shared/` folder beside the clone (`../shared/psp-specs`, as CI lays it
//! out). When the documents are not there, the test prints one line saying
//! what it skipped and how to enable it, and passes; under `CI=true` it fails
//! instead, so that CI can never skip them silently.

use std::path::PathBuf;

/// The environment variable naming the documents' folder.
pub const ENV: &str = "PASSERELLE_PSP_SPECS";

/// The folder tests read the documents from: `$PASSERELLE_PSP_SPECS`, else
/// `../shared/psp-specs` beside the clone. It may not exist.
pub fn specs_dir() -> PathBuf {
    match std::env::var_os(ENV).filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/psp-specs"
        )),
    }
}

/// Whether this run is CI (`CI=true`), where missing documents are an error.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// The documents' folder when `file` (relative to it, such as
/// `adyen/CheckoutService-v71.json`) is there. Otherwise `None` after one
/// printed line naming the test that skips its checks and how to run them,
/// or, with `CI=true`, a panic.
pub fn specs_for(file: &str) -> Option<PathBuf> {
    let dir = specs_dir();
    if dir.join(file).exists() {
        return Some(dir);
    }
    let test = std::thread::current()
        .name()
        .filter(|name| *name != "main")
        .unwrap_or("this test")
        .to_string();
    let missing = dir.join(file);
    assert!(
        !in_ci(),
        "{test}: {} is missing, and CI=true requires the providers' documents: \
         set {ENV}=DIR or put them at ../shared/psp-specs beside the clone",
        missing.display()
    );
    println!(
        "skipped ({test}): the checks against the providers' documents, {} not found; \
         set {ENV}=DIR or put them at ../shared/psp-specs beside the clone to run them",
        missing.display()
    );
    None
}

/// The sandbox's [`SpecSource`](crate::SpecSource) for tests: the folder
/// of [`specs_dir`] when it exists, else validation off, quietly (the tests
/// that check validation say what they skip through [`specs_for`]).
pub fn sandbox_specs() -> crate::SpecSource {
    let dir = specs_dir();
    if dir.is_dir() {
        crate::SpecSource::Dir(dir)
    } else {
        crate::SpecSource::Off
    }
}
