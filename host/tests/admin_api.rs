//! The admin API and `passerelle admin` end to end: merchants, API keys and
//! connector accounts created over HTTP, then used by a storefront, on
//! SQLite and on PostgreSQL.

mod common;

use common::*;
use serde_json::{json, Value};

both_backends!(
    merchant_key_and_account_take_a_payment,
    validation_errors_name_their_field,
    secrets_never_returned_nor_stored_in_clear,
    revoked_key_is_refused_at_once,
    admin_routes_refuse_storefront_keys,
    duplicate_account_name_is_409,
    cli_drives_the_admin_api,
    moving_an_account_takes_its_secrets_again,
);

async fn admin(server: &TestServer, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    admin_as(server, &server.admin_key, method, path, body).await
}

async fn admin_as(
    server: &TestServer,
    key: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = server
        .http
        .request(method, server.url(path))
        .bearer_auth(key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A storefront request with another secret key than the demo's.
async fn pay_with(server: &TestServer, key: &str, body: Value) -> (u16, Value) {
    let resp = server
        .http
        .post(server.url("/v1/payments"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn dummy_credentials(server: &TestServer) -> Value {
    let sandbox = &server.demo["sandbox"]["dummy"];
    json!({
        "api_key": sandbox["api_key"],
        "webhook_secret": sandbox["webhook_secret"],
    })
}

async fn new_merchant(server: &TestServer, default_connector: Option<&str>) -> String {
    let mut body = json!({"name": "Boulangerie Ada"});
    if let Some(c) = default_connector {
        body["default_connector"] = json!(c);
    }
    let (status, m) = admin(server, "POST", "/v1/admin/merchants", Some(body)).await;
    assert_eq!(status, 201, "{m}");
    m["id"].as_str().unwrap().to_string()
}

async fn new_key(server: &TestServer, merchant: &str) -> Value {
    let (status, k) = admin(
        server,
        "POST",
        &format!("/v1/admin/merchants/{merchant}/api_keys"),
        Some(json!({"kind": "secret"})),
    )
    .await;
    assert_eq!(status, 201, "{k}");
    k
}

async fn new_dummy_account(server: &TestServer, merchant: &str, name: &str) -> Value {
    let (status, a) = admin(
        server,
        "POST",
        &format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        Some(json!({
            "name": name,
            "connector": "dummy",
            "environment": "test",
            "base_url": server.dummy_psp_url(),
            "credentials": dummy_credentials(server),
        })),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    a
}

async fn merchant_key_and_account_take_a_payment(backend: Backend) {
    let server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, Some("main")).await;

    let (status, m) = admin(
        &server,
        "GET",
        &format!("/v1/admin/merchants/{merchant}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["name"], "Boulangerie Ada");
    assert_eq!(m["default_connector"], "main");
    let (status, list) = admin(&server, "GET", "/v1/admin/merchants", None).await;
    assert_eq!(status, 200);
    let ids: Vec<_> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert!(
        ids.contains(&json!(merchant)) && ids.contains(&json!("mer_demo")),
        "{list}"
    );
    let (status, err) = admin(&server, "GET", "/v1/admin/merchants/mer_nope", None).await;
    assert_eq!(status, 404, "{err}");

    let key = new_key(&server, &merchant).await;
    let clear = key["key"].as_str().unwrap().to_string();
    assert!(clear.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(key["kind"], "secret");
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    assert!(key["created_at"].is_string());

    let account = new_dummy_account(&server, &merchant, "main").await;
    assert_eq!(account["connector"], "dummy");
    assert_eq!(account["environment"], "test");
    assert_eq!(
        account["credentials"],
        json!({"api_key": {"set": true}, "webhook_secret": {"set": true}})
    );
    let account_id = account["id"].as_str().unwrap();

    // The new key pays through the new account (the merchant's default).
    let (status, p) = pay_with(
        &server,
        &clear,
        payment_body(1250, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["connector"], "main");
    // The demo merchant's key does not see it.
    let (status, _) = server
        .get(&format!("/v1/payments/{}", p["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 404);

    let (status, shown) = admin(
        &server,
        "GET",
        &format!("/v1/admin/connector_accounts/{account_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown, account);
    let (status, list) = admin(
        &server,
        "GET",
        &format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([account]));

    // A partial update merges: the api_key stays, and payments still work.
    let sandbox = &server.demo["sandbox"]["dummy"];
    let (status, updated) = admin(
        &server,
        "PATCH",
        &format!("/v1/admin/connector_accounts/{account_id}"),
        Some(json!({"credentials": {"webhook_secret": sandbox["webhook_secret"]}})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["credentials"], account["credentials"]);
    assert_eq!(updated["created_at"], account["created_at"]);
    let (status, p) = pay_with(
        &server,
        &clear,
        payment_body(900, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "succeeded", "{p}");

    // A wrong api_key is accepted by validate-config (it cannot call the
    // PSP) but refused by the PSP: the update really replaced it.
    let (status, updated) = admin(
        &server,
        "PATCH",
        &format!("/v1/admin/connector_accounts/{account_id}"),
        Some(json!({"credentials": {"api_key": "sk_wrong"}})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let (status, p) = pay_with(
        &server,
        &clear,
        payment_body(900, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert!(status >= 400 || p["status"] == "failed", "{status} {p}");

    // Non-secret settings are shown by value.
    let adyen = &server.demo["sandbox"]["adyen"];
    let (status, a) = admin(
        &server,
        "POST",
        &format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        Some(json!({
            "name": "adyen-eu",
            "connector": "adyen",
            "environment": "test",
            "base_url": adyen["base_url"],
            "credentials": {
                "api_key": adyen["api_key"],
                "merchant_account": adyen["merchant_account"],
                "hmac_key": adyen["hmac_key_hex"],
            },
        })),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(
        a["credentials"]["merchant_account"],
        adyen["merchant_account"]
    );
    assert_eq!(a["credentials"]["api_key"], json!({"set": true}));
    assert_eq!(a["credentials"]["hmac_key"], json!({"set": true}));
}

async fn validation_errors_name_their_field(backend: Backend) {
    let server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, None).await;
    let accounts = format!("/v1/admin/merchants/{merchant}/connector_accounts");
    let good = || {
        json!({
            "name": "main",
            "connector": "dummy",
            "environment": "test",
            "base_url": server.dummy_psp_url(),
            "credentials": dummy_credentials(&server),
        })
    };
    let expect = |status: u16, err: &Value, param: &str| {
        assert!((400..500).contains(&status), "{status} {err}");
        assert_eq!(err["error"]["param"], param, "{err}");
        assert!(err["error"]["message"].is_string(), "{err}");
    };

    for (body, param) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": 3}), "name"),
        (
            json!({"name": "x", "default_connector": "a b"}),
            "default_connector",
        ),
        (json!({"name": "x", "colour": "red"}), "colour"),
    ] {
        let (status, err) = admin(&server, "POST", "/v1/admin/merchants", Some(body)).await;
        expect(status, &err, param);
    }
    let keys = format!("/v1/admin/merchants/{merchant}/api_keys");
    let (status, err) = admin(&server, "POST", &keys, Some(json!({"kind": "admin"}))).await;
    expect(status, &err, "kind");
    let (status, err) = admin(
        &server,
        "POST",
        "/v1/admin/merchants/mer_nope/api_keys",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404, "{err}");

    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = good();
        f(&mut b);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("name");
            }),
            "name",
        ),
        (with(&|b| b["name"] = json!("has space")), "name"),
        (with(&|b| b["connector"] = json!("stripe")), "connector"),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("connector");
            }),
            "connector",
        ),
        (with(&|b| b["environment"] = json!("prod")), "environment"),
        (with(&|b| b["base_url"] = json!("ftp://psp")), "base_url"),
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("credentials");
            }),
            "credentials",
        ),
        (
            with(&|b| b["credentials"]["api_key"] = json!(42)),
            "credentials.api_key",
        ),
        (
            with(&|b| {
                b["credentials"].as_object_mut().unwrap().remove("api_key");
            }),
            "credentials.api_key",
        ),
        (
            with(&|b| b["credentials"]["webhook_secret"] = json!("  ")),
            "credentials.webhook_secret",
        ),
        (
            with(&|b| b["credentials"]["colour"] = json!("red")),
            "credentials.colour",
        ),
        // The plugin's own validate-config: the dummy needs a base URL.
        (
            with(&|b| {
                b.as_object_mut().unwrap().remove("base_url");
            }),
            "base_url",
        ),
        (with(&|b| b["extra"] = json!(1)), "extra"),
    ];
    for (body, param) in cases {
        let (status, err) = admin(&server, "POST", &accounts, Some(body.clone())).await;
        expect(status, &err, param);
        // The message never echoes a credential.
        let secret = server.demo["sandbox"]["dummy"]["api_key"].as_str().unwrap();
        assert!(!err.to_string().contains(secret), "{err}");
    }
    let (status, err) = admin(
        &server,
        "POST",
        "/v1/admin/merchants/mer_nope/connector_accounts",
        Some(good()),
    )
    .await;
    assert_eq!(status, 404, "{err}");
    let (status, list) = admin(&server, "GET", &accounts, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([]), "nothing was created");

    let account = new_dummy_account(&server, &merchant, "main").await;
    let patch = format!(
        "/v1/admin/connector_accounts/{}",
        account["id"].as_str().unwrap()
    );
    for (body, param) in [
        (json!({"environment": "staging"}), "environment"),
        (json!({"base_url": "not a url"}), "base_url"),
        // Removing the base URL moves the account: its secrets come again,
        // then the dummy's validate-config refuses an account without one.
        (
            json!({"base_url": null, "credentials": dummy_credentials(&server)}),
            "base_url",
        ),
        (
            json!({"credentials": {"colour": "red"}}),
            "credentials.colour",
        ),
        (
            json!({"credentials": {"api_key": ""}}),
            "credentials.api_key",
        ),
        (json!({"name": "other"}), "name"),
    ] {
        let (status, err) = admin(&server, "PATCH", &patch, Some(body)).await;
        expect(status, &err, param);
    }
    let (status, err) = admin(
        &server,
        "PATCH",
        "/v1/admin/connector_accounts/acc_nope",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 404, "{err}");
    // Nothing changed.
    let (_, shown) = admin(&server, "GET", &patch, None).await;
    assert_eq!(shown, account);
}

async fn secrets_never_returned_nor_stored_in_clear(backend: Backend) {
    let mut server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, None).await;
    let key = new_key(&server, &merchant).await;
    let clear_key = key["key"].as_str().unwrap().to_string();
    let account = new_dummy_account(&server, &merchant, "main").await;
    let account_id = account["id"].as_str().unwrap();
    // A fresh secret of our own, set through an update.
    let webhook_secret = format!("whsec_marker_{}", rand_suffix());
    let (status, updated) = admin(
        &server,
        "PATCH",
        &format!("/v1/admin/connector_accounts/{account_id}"),
        Some(json!({"credentials": {"webhook_secret": webhook_secret}})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");

    let mut answers = vec![updated.to_string(), account.to_string()];
    for path in [
        format!("/v1/admin/merchants/{merchant}/api_keys"),
        format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        format!("/v1/admin/connector_accounts/{account_id}"),
    ] {
        let (status, body) = admin(&server, "GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        answers.push(body.to_string());
    }
    let api_key = server.demo["sandbox"]["dummy"]["api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(clear_key.as_bytes()))
    };
    for answer in &answers {
        for secret in [&clear_key, &webhook_secret, &api_key, &hash] {
            assert!(!answer.contains(secret.as_str()), "{answer}");
        }
        assert!(
            !answer.contains("key_hash") && !answer.contains("ciphertext"),
            "{answer}"
        );
    }
    let keys: Value = serde_json::from_str(&answers[2]).unwrap();
    assert_eq!(keys["data"][0]["prefix"], key["prefix"]);
    assert!(keys["data"][0].get("key").is_none());

    server.stop();
    let dump = server.database_dump();
    assert!(dump.contains(account_id), "the dump has the account");
    assert!(
        !dump.contains(&webhook_secret),
        "webhook secret stored in clear"
    );
    assert!(!dump.contains(&clear_key), "API key stored in clear");
    assert!(!dump.contains(&api_key), "PSP API key stored in clear");
    let logs = server.logs();
    for secret in [&clear_key, &webhook_secret] {
        assert!(!logs.contains(secret.as_str()), "a secret is in the logs");
    }
}

async fn revoked_key_is_refused_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, Some("main")).await;
    new_dummy_account(&server, &merchant, "main").await;
    let key = new_key(&server, &merchant).await;
    let other = new_key(&server, &merchant).await;
    let clear = key["key"].as_str().unwrap();
    let (status, p) = pay_with(
        &server,
        clear,
        payment_body(500, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 201, "{p}");

    let key_id = key["id"].as_str().unwrap();
    let (status, revoked) = admin(
        &server,
        "POST",
        &format!("/v1/admin/api_keys/{key_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let (status, err) = pay_with(
        &server,
        clear,
        payment_body(500, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 401, "{err}");
    assert_eq!(err["error"]["code"], "invalid_api_key");
    // The merchant's other key still works.
    let (status, p) = pay_with(
        &server,
        other["key"].as_str().unwrap(),
        payment_body(500, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 201, "{p}");

    let (status, list) = admin(
        &server,
        "GET",
        &format!("/v1/admin/merchants/{merchant}/api_keys"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let listed = data.iter().find(|k| k["id"] == key_id).unwrap();
    assert_eq!(listed["revoked_at"], revoked["revoked_at"]);
    assert!(data.iter().find(|k| k["id"] == other["id"]).unwrap()["revoked_at"].is_null());

    // Revoking again keeps the first time; unknown and admin keys are 404.
    let (status, again) = admin(
        &server,
        "POST",
        &format!("/v1/admin/api_keys/{key_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);
    let (status, _) = admin(&server, "POST", "/v1/admin/api_keys/key_nope/revoke", None).await;
    assert_eq!(status, 404);
    // The admin key keeps working.
    let (status, _) = admin(&server, "GET", "/v1/admin/merchants", None).await;
    assert_eq!(status, 200);
}

async fn admin_routes_refuse_storefront_keys(backend: Backend) {
    let server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, None).await;
    let key = new_key(&server, &merchant).await;
    let routes = [
        ("GET", "/v1/admin/merchants".to_string()),
        ("POST", "/v1/admin/merchants".to_string()),
        ("GET", format!("/v1/admin/merchants/{merchant}")),
        ("POST", format!("/v1/admin/merchants/{merchant}/api_keys")),
        ("GET", format!("/v1/admin/merchants/{merchant}/api_keys")),
        (
            "POST",
            format!("/v1/admin/api_keys/{}/revoke", key["id"].as_str().unwrap()),
        ),
        (
            "GET",
            format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        ),
        (
            "POST",
            format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        ),
        (
            "GET",
            "/v1/admin/connector_accounts/acc_demo_dummy".to_string(),
        ),
        (
            "PATCH",
            "/v1/admin/connector_accounts/acc_demo_dummy".to_string(),
        ),
    ];
    for (method, path) in &routes {
        for bearer in [
            server.secret_key.as_str(),
            key["key"].as_str().unwrap(),
            "ak_guess",
        ] {
            let (status, err) =
                admin_as(&server, bearer, method, path, Some(json!({"name": "x"}))).await;
            assert_eq!(status, 401, "{method} {path}: {err}");
            assert_eq!(err["error"]["type"], "authentication_error");
        }
        let resp = server
            .http
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                server.url(path),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
    }
    // Nothing was done: the key is not revoked.
    let (status, _) = server.get("/v1/payments/pay_nope").await;
    assert_eq!(status, 404);
    let (_, list) = admin(
        &server,
        "GET",
        &format!("/v1/admin/merchants/{merchant}/api_keys"),
        None,
    )
    .await;
    assert!(list["data"][0]["revoked_at"].is_null(), "{list}");
}

async fn duplicate_account_name_is_409(backend: Backend) {
    let server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, None).await;
    new_dummy_account(&server, &merchant, "main").await;
    let (status, err) = admin(
        &server,
        "POST",
        &format!("/v1/admin/merchants/{merchant}/connector_accounts"),
        Some(json!({
            "name": "main",
            "connector": "dummy",
            "environment": "test",
            "base_url": server.dummy_psp_url(),
            "credentials": dummy_credentials(&server),
        })),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert_eq!(err["error"]["param"], "name");
    // Another merchant may use the name.
    let other = new_merchant(&server, None).await;
    new_dummy_account(&server, &other, "main").await;
}

async fn cli(server: &TestServer, args: &[&str]) -> (bool, Value, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_passerelle"))
        .arg("admin")
        .args(args)
        .env("PASSERELLE_URL", &server.base_url)
        .env("PASSERELLE_ADMIN_KEY", &server.admin_key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), value, stderr)
}

async fn cli_drives_the_admin_api(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (ok, m, err) = cli(
        &server,
        &[
            "merchants",
            "create",
            "--name",
            "CLI shop",
            "--default-connector",
            "main",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let merchant = m["id"].as_str().unwrap().to_string();
    let (ok, list, err) = cli(&server, &["merchants", "list"]).await;
    assert!(ok, "{err}");
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["id"] == merchant));

    let (ok, key, err) = cli(&server, &["keys", "create", "--merchant", &merchant]).await;
    assert!(ok, "{err}");
    let clear = key["key"].as_str().unwrap().to_string();

    // Credentials from a file, one overridden on the command line.
    let sandbox = &server.demo["sandbox"]["dummy"];
    let file = server.data_dir.join("creds.json");
    std::fs::write(
        &file,
        json!({"api_key": sandbox["api_key"], "webhook_secret": "old"}).to_string(),
    )
    .unwrap();
    let webhook = format!(
        "webhook_secret={}",
        sandbox["webhook_secret"].as_str().unwrap()
    );
    let psp = server.dummy_psp_url();
    let (ok, account, err) = cli(
        &server,
        &[
            "accounts",
            "create",
            "--merchant",
            &merchant,
            "--name",
            "main",
            "--connector",
            "dummy",
            "--environment",
            "test",
            "--base-url",
            &psp,
            "--credentials-file",
            file.to_str().unwrap(),
            "--credential",
            &webhook,
        ],
    )
    .await;
    assert!(ok, "{err} {account}");
    assert_eq!(account["credentials"]["api_key"], json!({"set": true}));
    let account_id = account["id"].as_str().unwrap().to_string();

    let (status, p) = pay_with(
        &server,
        &clear,
        payment_body(700, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "succeeded", "{p}");

    let (ok, updated, err) = cli(
        &server,
        &["accounts", "update", &account_id, "--credential", &webhook],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(updated["id"], account_id.as_str());
    let (ok, list, err) = cli(&server, &["accounts", "list", "--merchant", &merchant]).await;
    assert!(ok, "{err}");
    assert_eq!(list["data"][0]["id"], account_id.as_str());

    // An error answer is printed and fails the command.
    let (ok, failed, _) = cli(
        &server,
        &[
            "accounts",
            "update",
            &account_id,
            "--credential",
            "colour=red",
        ],
    )
    .await;
    assert!(!ok);
    assert_eq!(failed["error"]["param"], "credentials.colour");

    let (ok, keys, err) = cli(&server, &["keys", "list", "--merchant", &merchant]).await;
    assert!(ok, "{err}");
    assert!(!keys.to_string().contains(&clear));
    let (ok, _, err) = cli(&server, &["keys", "revoke", key["id"].as_str().unwrap()]).await;
    assert!(ok, "{err}");
    let (status, _) = pay_with(
        &server,
        &clear,
        payment_body(700, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(status, 401);
}

/// Changing an account's base URL or environment sends its credentials to
/// another address (which the egress check lets through, as the account's
/// own): the update must bring every stored secret again, or nothing is
/// written. A request that changes neither needs none.
async fn moving_an_account_takes_its_secrets_again(backend: Backend) {
    let server = TestServer::start(backend).await;
    let merchant = new_merchant(&server, Some("main")).await;
    let key = new_key(&server, &merchant).await;
    let clear = key["key"].as_str().unwrap().to_string();
    let account = new_dummy_account(&server, &merchant, "main").await;
    let path = format!(
        "/v1/admin/connector_accounts/{}",
        account["id"].as_str().unwrap()
    );
    let credentials = dummy_credentials(&server);
    let elsewhere = "http://127.0.0.1:9/collector";

    for (body, missing) in [
        (
            json!({"base_url": elsewhere}),
            vec!["api_key", "webhook_secret"],
        ),
        (
            json!({"environment": "live"}),
            vec!["api_key", "webhook_secret"],
        ),
        (json!({"base_url": null}), vec!["api_key", "webhook_secret"]),
        // Non-secret changes alongside do not count; every secret does.
        (
            json!({"base_url": elsewhere, "credentials": {"api_key": credentials["api_key"]}}),
            vec!["webhook_secret"],
        ),
    ] {
        let (status, err) = admin(&server, "PATCH", &path, Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["code"], "parameter_missing", "{err}");
        assert_eq!(
            err["error"]["param"],
            format!("credentials.{}", missing[0]),
            "{err}"
        );
        let message = err["error"]["message"].as_str().unwrap();
        for field in &missing {
            assert!(
                message.contains(&format!("credentials.{field}")),
                "{message}"
            );
        }
        // Nothing was written.
        let (_, shown) = admin(&server, "GET", &path, None).await;
        assert_eq!(shown, account, "{body}");
    }
    // The CLI says the same.
    let (ok, failed, _) = cli(
        &server,
        &[
            "accounts",
            "update",
            account["id"].as_str().unwrap(),
            "--base-url",
            elsewhere,
        ],
    )
    .await;
    assert!(!ok, "{failed}");
    assert_eq!(failed["error"]["param"], "credentials.api_key", "{failed}");

    // The same base URL and environment again is no move.
    let (status, same) = admin(
        &server,
        "PATCH",
        &path,
        Some(json!({"base_url": server.dummy_psp_url(), "environment": "test"})),
    )
    .await;
    assert_eq!(status, 200, "{same}");

    // With every secret, the account moves, and back: it still pays.
    for url in [elsewhere.to_string(), server.dummy_psp_url()] {
        let (status, moved) = admin(
            &server,
            "PATCH",
            &path,
            Some(json!({"base_url": url, "credentials": credentials})),
        )
        .await;
        assert_eq!(status, 200, "{moved}");
        assert_eq!(moved["base_url"], url.as_str(), "{moved}");
        assert_eq!(moved["credentials"], account["credentials"], "{moved}");
    }
    let (status, p) = pay_with(
        &server,
        &clear,
        payment_body(800, "EUR", CARD_OK, "automatic"),
    )
    .await;
    assert_eq!(
        (status, p["status"].as_str()),
        (201, Some("succeeded")),
        "{p}"
    );
}
