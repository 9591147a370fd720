//! `passerelle plugin test`: the conformance kit, driven through the real
//! binary on bundled connectors and on the hostile test plugin.

mod common;

use std::path::{Path, PathBuf};

use passerelle::bundled::BundledPlugin;
use serde_json::Value;

use common::cli::{plugin, TempDir};

/// Every scenario of the kit, in order.
const SCENARIOS: [&str; 11] = [
    "describe",
    "validate-config-empty",
    "validate-config",
    "authorize",
    "partial-capture",
    "partial-refund",
    "sync",
    "authorize-cancel",
    "notification-garbage",
    "unsupported-currency",
    "zero-amount",
];

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn find(list: &'static [BundledPlugin], id: &str) -> &'static BundledPlugin {
    list.iter()
        .find(|p| p.id == id)
        .unwrap_or_else(|| panic!("plugin {id} is not built"))
}

/// Packs a plugin (unsigned) into `dir`; returns the package path.
fn pack(dir: &TempDir, plugin_src: &BundledPlugin) -> PathBuf {
    let manifest = dir.path(&format!("{}.toml", plugin_src.id));
    let component = dir.path(&format!("{}.wasm", plugin_src.id));
    let package = dir.path(&format!("{}.ppkg", plugin_src.id));
    std::fs::write(&manifest, plugin_src.manifest_toml).unwrap();
    std::fs::write(&component, plugin_src.component).unwrap();
    let out = plugin(&[
        "pack",
        "--manifest",
        s(&manifest),
        "--component",
        s(&component),
        "--out",
        s(&package),
    ]);
    assert!(
        out.status.success(),
        "pack {}: {}",
        plugin_src.id,
        String::from_utf8_lossy(&out.stderr)
    );
    package
}

/// Runs the kit with `--format json`; returns the exit code and the report.
fn kit(package: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["test", s(package), "--format", "json"];
    args.extend_from_slice(extra);
    let out = plugin(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), report)
}

/// Scenario name → (verdict, detail).
fn verdicts(report: &Value) -> Vec<(String, String, String)> {
    report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["verdict"].as_str().unwrap().to_string(),
                s["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verdict_of(report: &Value, name: &str) -> (String, String) {
    verdicts(report)
        .into_iter()
        .find(|(n, _, _)| n == name)
        .map(|(_, v, d)| (v, d))
        .unwrap_or_else(|| panic!("no scenario {name}"))
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn the_dummy_connector_passes_every_scenario() {
    let dir = TempDir::new("kit-dummy");
    let package = pack(&dir, find(passerelle::bundled::BUNDLED_PLUGINS, "dummy"));
    let (code, report) = kit(&package, &[]);
    assert_eq!(report["plugin"], "dummy");
    assert_eq!(report["trust"], "unsigned");
    let all = verdicts(&report);
    let names: Vec<&str> = all.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, SCENARIOS);
    for (name, verdict, detail) in &all {
        assert_eq!(verdict, "pass", "{name}: {detail}");
    }
    assert_eq!(code, 0);
    let (_, detail) = verdict_of(&report, "sync");
    assert!(detail.starts_with("captured"), "{detail}");

    // Signed: reported as `untrusted` without keys, `signed` with the
    // publisher's key among the trusted ones.
    let key = dir.path("passerelle.key");
    let line = plugin(&["keygen", "--publisher", "passerelle", "--out", s(&key)]);
    assert!(line.status.success());
    let trusted = dir.path("trusted");
    std::fs::write(&trusted, &line.stdout).unwrap();
    assert!(plugin(&["sign", s(&package), "--key", s(&key)])
        .status
        .success());
    let (_, report) = kit(&package, &[]);
    assert_eq!(report["trust"], "untrusted");
    let (code, report) = kit(&package, &["--trusted-keys", s(&trusted)]);
    assert_eq!(report["trust"], "signed");
    assert_eq!(code, 0);

    // The text report, too.
    let out = plugin(&["test", s(&package)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("11 passed, 0 failed, 0 skipped"), "{text}");
}

#[test]
fn wrong_credentials_from_a_file_fail_the_payment_scenarios() {
    let dir = TempDir::new("kit-creds");
    let package = pack(&dir, find(passerelle::bundled::BUNDLED_PLUGINS, "dummy"));
    let credentials = dir.path("creds.json");
    std::fs::write(
        &credentials,
        r#"{"api_key": "sk_wrong", "webhook_secret": "whsec_wrong"}"#,
    )
    .unwrap();
    let (code, report) = kit(&package, &["--credentials", s(&credentials)]);
    assert_eq!(code, 1);
    assert_eq!(verdict_of(&report, "validate-config").0, "pass");
    let (verdict, detail) = verdict_of(&report, "authorize");
    assert_eq!(verdict, "fail", "{detail}");
}

#[test]
fn nothing_listening_is_reported_not_a_crash() {
    let dir = TempDir::new("kit-closed");
    let package = pack(&dir, find(passerelle::bundled::BUNDLED_PLUGINS, "dummy"));
    let url = format!("http://127.0.0.1:{}/dummy", closed_port());
    let (code, report) = kit(&package, &["--against", &url]);
    assert_eq!(code, 1);
    assert_eq!(report["target"], url.as_str());
    let (verdict, detail) = verdict_of(&report, "authorize");
    assert_eq!(verdict, "fail");
    assert!(detail.contains("retryable"), "{detail}");
    // What needs no PSP still passes; what needs the payment is skipped.
    assert_eq!(verdict_of(&report, "describe").0, "pass");
    assert_eq!(verdict_of(&report, "notification-garbage").0, "pass");
    assert_eq!(verdict_of(&report, "partial-capture").0, "skip");
    let (verdict, detail) = verdict_of(&report, "zero-amount");
    assert_eq!(
        verdict, "fail",
        "an unreachable PSP proves nothing: {detail}"
    );
}

#[test]
fn the_hostile_plugin_fails() {
    let dir = TempDir::new("kit-hostile");
    let hostile = find(passerelle::bundled::test_plugins::TEST_PLUGINS, "hostile");
    let package = pack(&dir, hostile);

    // No simulator for it: a clear error, not a report.
    let out = plugin(&["test", s(&package)]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--against"), "{stderr}");

    let url = format!("http://127.0.0.1:{}", closed_port());
    // Its authorize refuses references it does not know.
    let (code, report) = kit(&package, &["--against", &url]);
    assert_eq!(code, 1);
    assert_eq!(verdict_of(&report, "authorize").0, "fail");
    assert_eq!(verdict_of(&report, "sync").0, "skip");

    // Traps and limits are failures with the runtime's reason.
    for (behaviour, reason) in [("panic", "crashed"), ("loop", "CPU time limit")] {
        let (code, report) = kit(&package, &["--against", &url, "--reference", behaviour]);
        assert_eq!(code, 1, "{behaviour}");
        let (verdict, detail) = verdict_of(&report, "authorize");
        assert_eq!(verdict, "fail", "{behaviour}");
        assert!(detail.contains(reason), "{behaviour}: {detail}");
    }

    // And when it behaves, the kit says so.
    let (code, report) = kit(&package, &["--against", &url, "--reference", "ok"]);
    assert_eq!(verdict_of(&report, "authorize").0, "pass");
    assert_eq!(code, 0, "{report}");
}

#[test]
fn adyen_against_its_simulator() {
    let dir = TempDir::new("kit-adyen");
    let package = pack(&dir, find(passerelle::bundled::BUNDLED_PLUGINS, "adyen"));
    let (code, report) = kit(&package, &[]);
    for (name, verdict, detail) in &verdicts(&report) {
        assert_eq!(verdict, "pass", "{name}: {detail}");
    }
    assert_eq!(code, 0, "{report}");
}
