//! Operating plugins live through the admin API and the `passerelle admin
//! plugins` CLI: signed packages, install, activate, roll back, disable,
//! remove, restart from the compile cache, and hot swaps under load.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{payment_body, Backend, TestServer, CARD_OK};
use passerelle::bundled::{test_plugins::TEST_PLUGINS, BundledPlugin, BUNDLED_PLUGINS};
use passerelle::package::{Package, SigningKey};
use serde_json::{json, Value};

fn test_plugin(id: &str, version: &str) -> &'static BundledPlugin {
    TEST_PLUGINS
        .iter()
        .find(|p| {
            p.id == id
                && p.manifest_toml
                    .contains(&format!("version = \"{version}\""))
        })
        .unwrap_or_else(|| panic!("test plugin {id} {version} is built"))
}

fn bundled(id: &str) -> &'static BundledPlugin {
    BUNDLED_PLUGINS.iter().find(|p| p.id == id).unwrap()
}

/// A package of a test plugin, as a third party would ship it: without the
/// `test_only` marker (which only keeps it out of the server's bundle).
fn package_of(plugin: &BundledPlugin) -> Package {
    let manifest: String = plugin
        .manifest_toml
        .lines()
        .filter(|l| !l.trim_start().starts_with("test_only"))
        .map(|l| format!("{l}\n"))
        .collect();
    Package::new(manifest, plugin.component.to_vec()).unwrap()
}

fn signed(mut package: Package, key: &SigningKey) -> Vec<u8> {
    package.sign(key).unwrap();
    package.to_bytes().unwrap()
}

/// A trusted-keys file holding `key`'s public half.
fn trusted_keys_file(dir: &Path, key: &SigningKey) -> PathBuf {
    trusted_keys_of(dir, &[key])
}

/// A trusted-keys file holding each key's public half (one publisher each).
fn trusted_keys_of(dir: &Path, keys: &[&SigningKey]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("trusted-keys");
    let lines: String = keys
        .iter()
        .map(|key| format!("{}\n", key.public_line()))
        .collect();
    std::fs::write(&path, format!("# operators' trusted publishers\n{lines}")).unwrap();
    path
}

/// `package` as `publisher` would ship it (its manifest names them).
fn as_publisher(package: &Package, publisher: &str) -> Package {
    let manifest = package.manifest_toml.replace(
        "publisher = \"passerelle\"",
        &format!("publisher = \"{publisher}\""),
    );
    assert_ne!(
        manifest, package.manifest_toml,
        "the manifest names a publisher"
    );
    Package::new(manifest, package.component.clone()).unwrap()
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "passerelle-plugin-admin-{name}-{}",
        common::rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn admin(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server
        .http
        .request(method, server.url(path))
        .bearer_auth(&server.admin_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn upload(server: &TestServer, bytes: Vec<u8>, activate: bool) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(&format!("/v1/admin/plugins?activate={activate}")))
        .bearer_auth(&server.admin_key)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Runs `passerelle admin plugins ARGS` against the server; returns the exit
/// success and the printed JSON.
async fn cli(server: &TestServer, args: &[&str]) -> (bool, Value) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["admin", "--url", &server.base_url, "plugins"])
        .args(args)
        .env("PASSERELLE_ADMIN_KEY", &server.admin_key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    (
        output.status.success(),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
    )
}

async fn pay(server: &TestServer, amount: u64, capture: &str) -> (u16, Value) {
    server
        .post(
            "/v1/payments",
            payment_body(amount, "EUR", CARD_OK, capture),
        )
        .await
}

fn version<'a>(plugin: &'a Value, version: &str) -> &'a Value {
    plugin["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version"] == version)
        .unwrap_or_else(|| panic!("version {version} listed: {plugin}"))
}

async fn lifecycle(backend: Backend) {
    let scratch = scratch_dir("lifecycle");
    let publisher = SigningKey::generate("passerelle").unwrap();
    let stranger = SigningKey::generate("passerelle").unwrap();
    let trusted = trusted_keys_file(&scratch, &publisher);
    let mut server =
        TestServer::start_with_args(backend, &["--trusted-keys", trusted.to_str().unwrap()]).await;

    let next = package_of(test_plugin("dummy", "0.2.0"));
    let (status, dummy) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(status, 200, "{dummy}");
    assert_eq!(dummy["active_version"], "0.1.0");
    assert_eq!(dummy["state"], "serving");
    assert_eq!(dummy["versions"].as_array().unwrap().len(), 1);
    assert_eq!(version(&dummy, "0.1.0")["source"], "bundled");
    assert!(dummy["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == "acc_demo_dummy"));

    // Refused packages: unsigned, signed by an unknown key, tampered, not a
    // package at all, a test-only plugin. Each names the package and leaves
    // nothing behind.
    let (status, body) = upload(&server, next.to_bytes().unwrap(), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("package_unsigned")),
        "{body}"
    );
    let (status, body) = upload(&server, signed(next.clone(), &stranger), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("package_untrusted")),
        "{body}"
    );
    let mut tampered = next.clone();
    tampered.sign(&publisher).unwrap();
    tampered.component.extend_from_slice(b"\0\x07payload");
    let (status, body) = upload(&server, tampered.to_bytes().unwrap(), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("package_signature_invalid")),
        "{body}"
    );
    let (status, body) = upload(&server, b"not a package".to_vec(), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("package_invalid")),
        "{body}"
    );
    assert_eq!(body["error"]["param"], "package");
    let hostile = Package::new(
        test_plugin("hostile", "0.1.0").manifest_toml.to_string(),
        test_plugin("hostile", "0.1.0").component.to_vec(),
    )
    .unwrap();
    let (status, body) = upload(&server, signed(hostile, &publisher), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("package_test_only")),
        "{body}"
    );
    let (_, dummy) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(dummy["versions"].as_array().unwrap().len(), 1, "{dummy}");

    // A package whose manifest lies about its version is refused when the
    // component is loaded (describe says 0.1.0).
    let liar = Package::new(
        bundled("dummy")
            .manifest_toml
            .replace("version = \"0.1.0\"", "version = \"0.9.0\""),
        bundled("dummy").component.to_vec(),
    )
    .unwrap();
    let (status, body) = upload(&server, signed(liar, &publisher), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("plugin_rejected")),
        "{body}"
    );

    // A signed package installs without becoming active...
    let package_file = scratch.join("dummy-0.2.0.ppkg");
    std::fs::write(&package_file, signed(next.clone(), &publisher)).unwrap();
    let (ok, installed) = cli(&server, &["install", package_file.to_str().unwrap()]).await;
    assert!(ok, "{installed}");
    assert_eq!(installed["installed"]["created"], true);
    assert_eq!(installed["installed"]["active"], false);
    assert_eq!(installed["active_version"], "0.1.0");
    let v2 = version(&installed, "0.2.0");
    assert_eq!(v2["trust"], "signed");
    assert_eq!(v2["publisher"], "passerelle");
    assert_eq!(v2["signed_by"], publisher.key_id());
    assert_eq!(v2["source"], "uploaded");
    assert_eq!(v2["digest"], next.digest());
    // ... the same package again changes nothing; other contents under the
    // same version are refused.
    let (status, again) = upload(&server, signed(next.clone(), &publisher), false).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["installed"]["created"], false);
    let mut other = next.clone();
    other.manifest_toml = other
        .manifest_toml
        .replace("hot-swap tests", "hot-swap tests (rebuilt)");
    let other = Package::new(other.manifest_toml, other.component).unwrap();
    let (status, body) = upload(&server, signed(other, &publisher), false).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("version_exists")),
        "{body}"
    );

    // Activate, pay, roll back, pay: each version serves its calls.
    let (ok, shown) = cli(&server, &["activate", "dummy", "0.2.0"]).await;
    assert!(ok, "{shown}");
    assert_eq!(shown["active_version"], "0.2.0");
    assert_eq!(shown["previous_version"], "0.1.0");
    let calls_before = version(&shown, "0.2.0")["stats"]["calls"].as_u64().unwrap();
    let (status, p) = pay(&server, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
    let (_, shown) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert!(version(&shown, "0.2.0")["stats"]["calls"].as_u64().unwrap() > calls_before);
    let (ok, shown) = cli(&server, &["rollback", "dummy"]).await;
    assert!(ok, "{shown}");
    assert_eq!(shown["active_version"], "0.1.0");
    assert_eq!(shown["previous_version"], "0.2.0");
    let (status, p) = pay(&server, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
    let (status, body) = admin(
        &server,
        "POST",
        "/v1/admin/plugins/dummy/activate",
        Some(json!({"version": "7.0.0"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (404, Some("version")),
        "{body}"
    );
    let (status, body) = admin(
        &server,
        "POST",
        "/v1/admin/plugins/dummy/activate",
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (400, Some("version")),
        "{body}"
    );

    // Disabled: payments are refused with a clear error, and nothing is
    // written; enabled again: they work.
    let (ok, shown) = cli(&server, &["disable", "dummy"]).await;
    assert!(ok && shown["disabled"] == true, "{shown}");
    assert_eq!(shown["state"], "disabled");
    // Nothing half-written: a refund the connector cannot take now leaves
    // no pending refund and reserves nothing.
    let (status, paid) = pay(&server, 1_000, "automatic").await;
    assert_eq!(status, 503, "{paid}");
    let (status, refund) = server
        .post(
            &format!("/v1/payments/{}/refunds", p["id"].as_str().unwrap()),
            json!({"amount": 100}),
        )
        .await;
    assert_eq!(
        (status, refund["error"]["code"].as_str()),
        (503, Some("connector_disabled")),
        "{refund}"
    );
    let (_, after) = server
        .get(&format!("/v1/payments/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(after["amount_refunded"], 0, "{after}");
    let (_, refunds) = server
        .get(&format!(
            "/v1/payments/{}/refunds",
            p["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(refunds["data"], json!([]), "{refunds}");
    let (status, body) = pay(&server, 1_000, "automatic").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "connector_disabled", "{body}");
    let (ok, _) = cli(&server, &["enable", "dummy"]).await;
    assert!(ok);
    let (status, p) = pay(&server, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );

    // Removal: a bundled plugin can only be disabled; an active version
    // stays; an inactive one goes.
    let (ok, body) = cli(&server, &["remove", "dummy"]).await;
    assert!(!ok);
    assert_eq!(body["error"]["code"], "plugin_bundled", "{body}");
    let (ok, body) = cli(&server, &["remove", "dummy", "--version", "0.1.0"]).await;
    assert!(!ok);
    assert_eq!(body["error"]["code"], "version_active", "{body}");

    // The active version and the compiled code survive a restart: nothing
    // is compiled again.
    let (ok, _) = cli(&server, &["activate", "dummy", "0.2.0"]).await;
    assert!(ok);
    server.restart().await;
    let (_, shown) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(shown["active_version"], "0.2.0", "{shown}");
    assert_eq!(shown["previous_version"], "0.1.0", "{shown}");
    assert_eq!(shown["compiled"]["from_cache"], true, "{shown}");
    let (_, list) = admin(&server, "GET", "/v1/admin/plugins", None).await;
    for plugin in list["data"].as_array().unwrap() {
        assert_eq!(plugin["compiled"]["from_cache"], true, "{plugin}");
    }
    let (status, p) = pay(&server, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
    let (ok, body) = cli(&server, &["remove", "dummy", "--version", "0.1.0"]).await;
    assert!(ok, "{body}");
    assert_eq!(body["versions"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["previous_version"], Value::Null);
    let (ok, body) = cli(&server, &["rollback", "dummy"]).await;
    assert!(!ok);
    assert_eq!(body["error"]["code"], "no_previous_version", "{body}");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A plugin that no binary bundles: installed from a package, used by an
/// account, then removed — refused while the account depends on it unless
/// forced. Development mode accepts an unsigned package.
async fn removal_guarded_by_accounts(backend: Backend) {
    let server = TestServer::start_with_args(backend, &["--allow-unsigned-plugins"]).await;
    let hostile = test_plugin("hostile", "0.1.0");
    // Development mode also admits test-only plugins.
    let package = Package::new(
        hostile.manifest_toml.to_string(),
        hostile.component.to_vec(),
    )
    .unwrap();
    let (status, installed) = upload(&server, package.to_bytes().unwrap(), false).await;
    assert_eq!(status, 201, "{installed}");
    assert_eq!(installed["installed"]["trust"], "unsigned");
    // The first version of a plugin is active at once.
    assert_eq!(installed["active_version"], "0.1.0");
    assert_eq!(installed["accounts_count"], 0);

    let merchant = server.demo["merchant_id"].as_str().unwrap().to_string();
    let (status, account) = admin(
        &server,
        "POST",
        &format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        Some(json!({
            "name": "misbehaving",
            "connector": "hostile",
            "environment": "test",
            "credentials": {},
        })),
    )
    .await;
    assert_eq!(status, 201, "{account}");
    let account_id = account["id"].as_str().unwrap().to_string();

    let (ok, body) = cli(&server, &["show", "hostile"]).await;
    assert!(ok);
    assert_eq!(body["accounts"][0]["id"], account_id.as_str(), "{body}");
    let (ok, body) = cli(&server, &["remove", "hostile"]).await;
    assert!(!ok);
    assert_eq!(body["error"]["code"], "plugin_in_use", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains(&account_id));
    let (ok, body) = cli(&server, &["remove", "hostile", "--force"]).await;
    assert!(ok, "{body}");
    assert_eq!(body["accounts_without_plugin"], json!([account_id]));
    let (status, _) = admin(&server, "GET", "/v1/admin/plugins/hostile", None).await;
    assert_eq!(status, 404);
    let mut body = payment_body(1_000, "EUR", CARD_OK, "automatic");
    body["connector"] = json!("misbehaving");
    let (status, answer) = server.post("/v1/payments", body).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(
        answer["error"]["code"], "connector_not_installed",
        "{answer}"
    );
}

/// A plugin id belongs to the publisher of its first install. Another
/// publisher the operator trusts cannot ship a version of it — neither of a
/// bundled connector (whose accounts' credentials it would receive) nor of
/// a plugin a third party installed first — and the owner's version keeps
/// serving. Removing a plugin no account uses frees its id.
async fn plugin_id_keeps_its_publisher(backend: Backend) {
    let scratch = scratch_dir("publisher");
    let project = SigningKey::generate("passerelle").unwrap();
    let acme = SigningKey::generate("acme").unwrap();
    let rival = SigningKey::generate("rival").unwrap();
    let trusted = trusted_keys_of(&scratch, &[&project, &acme, &rival]);
    let server =
        TestServer::start_with_args(backend, &["--trusted-keys", trusted.to_str().unwrap()]).await;

    // rival's build of the bundled `dummy`, correctly signed by a key the
    // operator trusts for rival, asking to serve at once.
    let takeover = as_publisher(&package_of(test_plugin("dummy", "0.2.0")), "rival");
    let (status, body) = upload(&server, signed(takeover.clone(), &rival), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("plugin_publisher_mismatch")),
        "{body}"
    );
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"passerelle\"") && message.contains("\"rival\""),
        "{message}"
    );
    // The same through the CLI.
    let package_file = scratch.join("takeover.ppkg");
    std::fs::write(&package_file, signed(takeover, &rival)).unwrap();
    let (ok, body) = cli(
        &server,
        &["install", package_file.to_str().unwrap(), "--activate"],
    )
    .await;
    assert!(!ok, "{body}");
    assert_eq!(body["error"]["code"], "plugin_publisher_mismatch", "{body}");
    // Nothing was recorded, and the bundled version serves the demo account.
    let (_, dummy) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(dummy["active_version"], "0.1.0", "{dummy}");
    assert_eq!(dummy["state"], "serving", "{dummy}");
    assert_eq!(dummy["versions"].as_array().unwrap().len(), 1, "{dummy}");
    let (status, p) = pay(&server, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );

    // An id no binary bundles belongs to whoever installed it first.
    let hostile = package_of(test_plugin("hostile", "0.1.0"));
    let (status, body) = upload(
        &server,
        signed(as_publisher(&hostile, "acme"), &acme),
        false,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let rivals = signed(as_publisher(&hostile, "rival"), &rival);
    let (status, body) = upload(&server, rivals.clone(), true).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("plugin_publisher_mismatch")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"acme\""),
        "{body}"
    );
    let (_, shown) = admin(&server, "GET", "/v1/admin/plugins/hostile", None).await;
    assert_eq!(version(&shown, "0.1.0")["publisher"], "acme", "{shown}");

    // Removed while no account uses it, the id is free again.
    let (ok, body) = cli(&server, &["remove", "hostile"]).await;
    assert!(ok, "{body}");
    let (status, body) = upload(&server, rivals, true).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(version(&body, "0.1.0")["publisher"], "rival", "{body}");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Development mode (`--allow-unsigned-plugins`) accepts unverified
/// packages, but not as versions of an id whose packages are verified: an
/// unsigned package, or one signed by a key nobody trusts, merely claims
/// its publisher.
async fn unverified_packages_cannot_replace_a_verified_id(backend: Backend) {
    let scratch = scratch_dir("unverified");
    let project = SigningKey::generate("passerelle").unwrap();
    let stranger = SigningKey::generate("passerelle").unwrap();
    let trusted = trusted_keys_file(&scratch, &project);
    let server = TestServer::start_with_args(
        backend,
        &[
            "--allow-unsigned-plugins",
            "--trusted-keys",
            trusted.to_str().unwrap(),
        ],
    )
    .await;
    let next = package_of(test_plugin("dummy", "0.2.0"));
    for (what, bytes) in [
        ("unsigned", next.to_bytes().unwrap()),
        ("untrusted", signed(next.clone(), &stranger)),
    ] {
        let (status, body) = upload(&server, bytes, true).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("plugin_publisher_mismatch")),
            "{what}: {body}"
        );
    }
    let (_, dummy) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(dummy["active_version"], "0.1.0", "{dummy}");
    assert_eq!(dummy["versions"].as_array().unwrap().len(), 1, "{dummy}");
    // A verified package of the owner is still welcome.
    let (status, body) = upload(&server, signed(next, &project), true).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["active_version"], "0.2.0", "{body}");
    let _ = std::fs::remove_dir_all(&scratch);
}

/// A credential field once declared secret stays masked in the admin API,
/// whatever a later version of the connector declares: the dummy connector
/// 0.3.0 says `api_key` is not secret, yet the demo account's key, written
/// while 0.1.0 said it was, is never shown — nor after a restart.
async fn a_field_once_secret_stays_masked(backend: Backend) {
    let scratch = scratch_dir("declassified");
    let project = SigningKey::generate("passerelle").unwrap();
    let trusted = trusted_keys_file(&scratch, &project);
    let mut server =
        TestServer::start_with_args(backend, &["--trusted-keys", trusted.to_str().unwrap()]).await;
    let api_key = server.demo["sandbox"]["dummy"]["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let account = "/v1/admin/connector_accounts/acc_demo_dummy";
    let (status, shown) = admin(&server, "GET", account, None).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["credentials"]["api_key"],
        json!({"set": true}),
        "{shown}"
    );

    let declassified = package_of(test_plugin("dummy", "0.3.0"));
    let (status, body) = upload(&server, signed(declassified, &project), true).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["active_version"], "0.3.0", "{body}");
    let field = body["credential_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "api_key")
        .unwrap_or_else(|| panic!("api_key declared: {body}"));
    assert_eq!(
        field["secret"], false,
        "the version does declare it non-secret"
    );

    for round in ["installed", "restarted"] {
        let merchant = server.demo["merchant_id"].as_str().unwrap().to_string();
        let mut answers = Vec::new();
        for path in [
            account.to_string(),
            format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        ] {
            let (status, body) = admin(&server, "GET", &path, None).await;
            assert_eq!(status, 200, "{round} {path}: {body}");
            answers.push(body.to_string());
        }
        let (_, shown) = admin(&server, "GET", account, None).await;
        assert_eq!(
            shown["credentials"]["api_key"],
            json!({"set": true}),
            "{round}: {shown}"
        );
        for answer in &answers {
            assert!(
                !answer.contains(&api_key),
                "{round}: api_key in clear: {answer}"
            );
        }
        if round == "installed" {
            server.restart().await;
            let (_, dummy) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
            assert_eq!(dummy["active_version"], "0.3.0", "{dummy}");
        }
    }
    let _ = std::fs::remove_dir_all(&scratch);
}

both_backends!(
    lifecycle,
    removal_guarded_by_accounts,
    plugin_id_keeps_its_publisher,
    unverified_packages_cannot_replace_a_verified_id,
    a_field_once_secret_stays_masked,
);

/// Two nodes on one PostgreSQL database: an operator's change made through
/// one reaches the other within about a second, which loads the package
/// from the database (checking its signature again) and serves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_follows_the_operator_within_a_second() {
    let scratch = scratch_dir("nodes");
    let publisher = SigningKey::generate("passerelle").unwrap();
    let trusted = trusted_keys_file(&scratch, &publisher);
    // Both nodes seal and open credentials with the same master key.
    let master_key = "7f".repeat(32);
    let first = TestServer::start_with_args(
        Backend::Postgres,
        &[
            "--trusted-keys",
            trusted.to_str().unwrap(),
            "--master-key",
            &master_key,
        ],
    )
    .await;
    let second = first.start_second_node().await;
    let next = package_of(test_plugin("dummy", "0.2.0"));
    let (status, body) = upload(&first, signed(next, &publisher), true).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["state"], "serving");

    let follows = |server: &TestServer, version: &'static str, state: &'static str| {
        let (http, url, key) = (
            server.http.clone(),
            server.url("/v1/admin/plugins/dummy"),
            server.admin_key.clone(),
        );
        async move {
            let started = Instant::now();
            loop {
                let shown: Value = http
                    .get(&url)
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if shown["active_version"] == version && shown["state"] == state {
                    return started.elapsed();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the second node did not follow: {shown}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let upgrade = follows(&second, "0.2.0", "serving").await;
    let (status, p) = pay(&second, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
    let (_, shown) = admin(&second, "GET", "/v1/admin/plugins/dummy", None).await;
    assert!(
        version(&shown, "0.2.0")["stats"]["calls"].as_u64().unwrap() > 0,
        "{shown}"
    );

    let (status, _) = admin(&first, "POST", "/v1/admin/plugins/dummy/disable", None).await;
    assert_eq!(status, 200);
    let disable = follows(&second, "0.2.0", "disabled").await;
    let (status, _) = admin(&first, "POST", "/v1/admin/plugins/dummy/enable", None).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&first, "POST", "/v1/admin/plugins/dummy/rollback", None).await;
    assert_eq!(status, 200);
    let rollback = follows(&second, "0.1.0", "serving").await;
    println!(
        "second node followed: upgrade {upgrade:?}, disable {disable:?}, rollback {rollback:?}"
    );
    // Each is about one refresh interval (plus loading the package the first
    // time); `follows` gives up after 10 s.
    drop(second);
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The operator's caps bound what a manifest asks for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_caps_bound_manifest_limits() {
    let server = TestServer::start_with_args(
        Backend::Sqlite,
        &["--plugin-memory-mb", "16", "--plugin-cpu-ms", "50"],
    )
    .await;
    let (status, dummy) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(status, 200, "{dummy}");
    // The dummy manifest asks for 32 MiB and 200 ms.
    assert_eq!(dummy["limits"], json!({"memory_mb": 16, "cpu_ms": 50}));
    let (status, p) = pay(&server, 1_000, "automatic").await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
}

/// Two hundred storefronts pay without pause while an operator upgrades
/// and rolls back the connector ten times: no request fails, and every
/// payment ends as it should, in the host and at the PSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_load_loses_nothing() {
    const CONCURRENT: usize = 200;
    const SWAPS: usize = 10;
    let scratch = scratch_dir("hot-swap");
    let publisher = SigningKey::generate("passerelle").unwrap();
    let trusted = trusted_keys_file(&scratch, &publisher);
    let server = Arc::new(
        TestServer::start_with_args(
            Backend::Sqlite,
            &["--trusted-keys", trusted.to_str().unwrap()],
        )
        .await,
    );
    let next = package_of(test_plugin("dummy", "0.2.0"));
    let (status, body) = upload(&server, signed(next, &publisher), false).await;
    assert_eq!(status, 201, "{body}");

    let done = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let mut storefronts = Vec::new();
    for shopper in 0..CONCURRENT {
        let (server, done, failures) = (server.clone(), done.clone(), failures.clone());
        storefronts.push(tokio::spawn(async move {
            let mut payments = Vec::new();
            // Every storefront completes at least one payment, and keeps
            // paying while the swaps go on.
            while payments.is_empty() || !done.load(Ordering::Relaxed) {
                let amount = 1_000 + shopper as u64;
                let (status, p) = pay(&server, amount, "manual").await;
                if status != 201 || p["status"] != "requires_capture" {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("authorize failed: {status} {p}");
                    continue;
                }
                let id = p["id"].as_str().unwrap().to_string();
                let (status, c) = server
                    .post(
                        &format!("/v1/payments/{id}/capture"),
                        json!({"amount": amount - 100}),
                    )
                    .await;
                if status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("capture failed: {status} {c}");
                    continue;
                }
                let (status, r) = server
                    .post(
                        &format!("/v1/payments/{id}/refunds"),
                        json!({"amount": 300}),
                    )
                    .await;
                if status != 201 && status != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                    eprintln!("refund failed: {status} {r}");
                    continue;
                }
                payments.push((id, amount));
            }
            payments
        }));
    }

    // Let the load build up, then swap versions back and forth.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut swap_latencies = Vec::new();
    for _ in 0..SWAPS {
        for (method, path, body) in [
            (
                "POST",
                "/v1/admin/plugins/dummy/activate",
                Some(json!({"version": "0.2.0"})),
            ),
            ("POST", "/v1/admin/plugins/dummy/rollback", None),
        ] {
            let started = Instant::now();
            let (status, shown) = admin(&server, method, path, body).await;
            swap_latencies.push(started.elapsed());
            assert_eq!(status, 200, "{shown}");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    done.store(true, Ordering::Relaxed);

    let mut payments = Vec::new();
    for storefront in storefronts {
        payments.extend(storefront.await.unwrap());
    }
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "failed requests during hot swaps"
    );
    assert!(payments.len() >= CONCURRENT);

    // Both versions served calls, and the swaps themselves were quick.
    let (_, shown) = admin(&server, "GET", "/v1/admin/plugins/dummy", None).await;
    assert_eq!(shown["active_version"], "0.1.0");
    for v in ["0.1.0", "0.2.0"] {
        let calls = version(&shown, v)["stats"]["calls"].as_u64().unwrap();
        assert!(calls > 0, "version {v} served no call: {shown}");
        assert_eq!(version(&shown, v)["stats"]["failures"], 0, "{shown}");
    }
    // A swap is in force when its answer comes back (the runtime swaps the
    // version before answering); how long the answer takes is queueing
    // behind the storefronts, reported rather than asserted.
    swap_latencies.sort();
    let slowest = swap_latencies.last().copied().unwrap_or_default();

    // Every payment is consistent in the host and at the PSP.
    let psp = server.dummy_psp_url();
    for (id, amount) in &payments {
        let (status, p) = server.get(&format!("/v1/payments/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(p["amount_captured"], amount - 100, "{p}");
        assert_eq!(p["amount_refunded"], 300, "{p}");
        let reference = p["connector_reference"].as_str().unwrap();
        let charge: Value = server
            .http
            .get(format!("{psp}/_sandbox/charges/{reference}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(charge["amount_captured"], amount - 100, "{charge}");
        assert_eq!(charge["amount_refunded"], 300, "{charge}");
    }
    println!(
        "hot swap: {} payments by {CONCURRENT} concurrent storefronts, {} swaps, slowest swap {:?}, median {:?}",
        payments.len(),
        swap_latencies.len(),
        slowest,
        swap_latencies[swap_latencies.len() / 2]
    );
    let _ = std::fs::remove_dir_all(&scratch);
}
