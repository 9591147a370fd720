//! A server started without `--demo`: its first admin key comes from
//! `passerelle admin-key create`, which writes straight to the database.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn passerelle(args: &[&str]) -> (bool, Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(args)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_admin_key_without_demo() {
    let data_dir = std::env::temp_dir().join(format!(
        "passerelle-admin-key-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let dir = data_dir.to_str().unwrap().to_string();
    let (ok, created) = passerelle(&["admin-key", "create", "--data-dir", &dir]);
    assert!(ok, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("ak_"), "{key}");
    // Only the prefix is listed later; the key itself is never stored.
    let (ok, listed) = passerelle(&["admin-key", "list", "--data-dir", &dir]);
    assert!(ok);
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert!(!listed.to_string().contains(&key));
    let db = std::fs::read(data_dir.join("passerelle.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains(&key));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .args(["serve", "--data-dir", &dir, "--workers", "1"])
        .arg("--compile-cache")
        // The compile cache the other test servers share.
        .arg(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("compiled-plugins"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http.get(format!("{base}/health")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let plugins = |key: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}/v1/admin/plugins"))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(plugins(key.clone()).await, 200);
    assert_eq!(plugins("ak_not_a_key".into()).await, 401);
    // The admin CLI works with it, and revoking it shuts the door at once.
    let (ok, list) = passerelle(&[
        "admin",
        "--url",
        &base,
        "--admin-key",
        &key,
        "plugins",
        "list",
    ]);
    assert!(ok, "{list}");
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["id"] == "dummy"));
    let (ok, revoked) = passerelle(&["admin-key", "revoke", &id, "--data-dir", &dir]);
    assert!(ok, "{revoked}");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(plugins(key).await, 401);
    let (ok, _) = passerelle(&["admin-key", "revoke", "key_unknown", "--data-dir", &dir]);
    assert!(!ok);

    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data_dir);
}
