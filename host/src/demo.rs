//! `passerelle serve --demo`: everything a newcomer needs to take a payment
//! at once — a merchant, API keys, a connector account per bundled
//! connector pointed at the local PSP sandbox — written to
//! `<data-dir>/demo.json` for scripts to read.
//!
//! Running it again reuses the merchant, the accounts and (while they are
//! still valid) the keys in an existing `demo.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crypto::{
    hash_api_key, key_prefix, new_api_key, new_id, now_rfc3339, write_private, SecretBox,
};
use crate::store::models::{ApiKeyRecord, ConnectorAccountRecord, MerchantRecord};
use crate::store::Store;

const DEMO_MERCHANT_ID: &str = "mer_demo";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoConnector {
    pub account_id: String,
    pub plugin: String,
    pub environment: String,
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoInfo {
    pub base_url: String,
    pub merchant_id: String,
    pub secret_key: String,
    pub admin_key: String,
    /// Connector account name → account.
    pub connectors: BTreeMap<String, DemoConnector>,
    /// Provider → what stands in for its real hosts.
    pub sandbox: BTreeMap<String, serde_json::Value>,
    pub test_cards: BTreeMap<String, String>,
    /// Where this was written.
    #[serde(skip)]
    pub path: std::path::PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error("cannot write demo.json: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode demo.json: {0}")]
    Json(#[from] serde_json::Error),
}

pub async fn set_up(
    store: &Store,
    secrets: &SecretBox,
    data_dir: &Path,
    base_url: &str,
    sandbox: &passerelle_sandbox::SandboxHandle,
) -> Result<DemoInfo, DemoError> {
    let now = now_rfc3339();
    if store.get_merchant(DEMO_MERCHANT_ID).await?.is_none() {
        store
            .insert_merchant(MerchantRecord {
                id: DEMO_MERCHANT_ID.into(),
                name: "Demo shop".into(),
                created_at: now.clone(),
            })
            .await?;
    }
    let path = data_dir.join("demo.json");
    let previous: Option<DemoInfo> = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let secret_key = reuse_or_create_key(
        store,
        previous.as_ref().map(|p| p.secret_key.as_str()),
        "secret",
        "sk_test",
    )
    .await?;
    let admin_key = reuse_or_create_key(
        store,
        previous.as_ref().map(|p| p.admin_key.as_str()),
        "admin",
        "ak",
    )
    .await?;

    let dummy_base = sandbox.dummy_base_url();
    let dummy_config = passerelle_sandbox::DummyConfig::default();
    let mut credentials = BTreeMap::new();
    credentials.insert("api_key".to_string(), dummy_config.api_key.clone());
    credentials.insert(
        "webhook_secret".to_string(),
        dummy_config.webhook_secret.clone(),
    );
    let account = ConnectorAccountRecord {
        id: "acc_demo_dummy".into(),
        merchant_id: DEMO_MERCHANT_ID.into(),
        name: "dummy".into(),
        connector: "dummy".into(),
        environment: "test".into(),
        base_url: Some(dummy_base.clone()),
        config_ciphertext: secrets.seal(&serde_json::to_vec(&credentials)?)?,
        created_at: now.clone(),
        updated_at: now.clone(),
    };
    store.upsert_connector_account(account.clone()).await?;

    let mut connectors = BTreeMap::new();
    connectors.insert(
        "dummy".to_string(),
        DemoConnector {
            account_id: account.id,
            plugin: "dummy".into(),
            environment: "test".into(),
            base_url: dummy_base.clone(),
        },
    );
    let mut sandbox_info = BTreeMap::new();
    sandbox_info.insert(
        "dummy".to_string(),
        serde_json::json!({
            "base_url": dummy_base,
            "api_key": dummy_config.api_key,
            "webhook_secret": dummy_config.webhook_secret,
        }),
    );
    let test_cards = [
        ("4111111111111111", "authorized"),
        ("4000000000000002", "refused: card_declined"),
        ("4000000000003220", "3-D Secure redirect"),
    ]
    .into_iter()
    .map(|(n, what)| (n.to_string(), what.to_string()))
    .collect();
    let info = DemoInfo {
        base_url: base_url.to_string(),
        merchant_id: DEMO_MERCHANT_ID.into(),
        secret_key,
        admin_key,
        connectors,
        sandbox: sandbox_info,
        test_cards,
        path: path.clone(),
    };
    write_private(&path, &serde_json::to_vec_pretty(&info)?)?;
    tracing::info!(path = %path.display(), "demo ready: keys and accounts written to demo.json");
    Ok(info)
}

async fn reuse_or_create_key(
    store: &Store,
    previous: Option<&str>,
    kind: &str,
    prefix: &str,
) -> Result<String, DemoError> {
    if let Some(key) = previous {
        if let Some(record) = store.find_api_key_by_hash(&hash_api_key(key)).await? {
            if record.kind == kind {
                return Ok(key.to_string());
            }
        }
    }
    let key = new_api_key(prefix);
    store
        .insert_api_key(ApiKeyRecord {
            id: new_id("key"),
            merchant_id: (kind == "secret").then(|| DEMO_MERCHANT_ID.to_string()),
            kind: kind.to_string(),
            key_hash: hash_api_key(&key),
            prefix: key_prefix(&key),
            created_at: now_rfc3339(),
            revoked_at: None,
        })
        .await?;
    Ok(key)
}
