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
    installed: &[String],
) -> Result<DemoInfo, DemoError> {
    let now = now_rfc3339();
    if store.get_merchant(DEMO_MERCHANT_ID).await?.is_none() {
        store
            .insert_merchant(MerchantRecord {
                id: DEMO_MERCHANT_ID.into(),
                name: "Demo shop".into(),
                created_at: now.clone(),
                default_connector: None,
            })
            .await?;
    }
    // Payments that name no connector go to the dummy PSP.
    store
        .set_default_connector(DEMO_MERCHANT_ID, Some("dummy"))
        .await?;
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
        crate::admin_key::ADMIN_KEY_PREFIX,
    )
    .await?;

    let dummy_base = sandbox.dummy_base_url();
    let dummy_config = passerelle_sandbox::DummyConfig::default();
    let mut connectors = BTreeMap::new();
    for demo in demo_accounts(sandbox) {
        // Only connectors this build bundles get an account.
        if !installed.iter().any(|id| id == demo.plugin) {
            continue;
        }
        let account = ConnectorAccountRecord {
            id: demo_account_id(demo.plugin),
            merchant_id: DEMO_MERCHANT_ID.into(),
            name: demo.plugin.into(),
            connector: demo.plugin.into(),
            environment: "test".into(),
            base_url: Some(demo.base_url.clone()),
            config_ciphertext: secrets.seal(&serde_json::to_vec(&demo.credentials)?)?,
            created_at: now.clone(),
            updated_at: now.clone(),
        };
        store.upsert_connector_account(account.clone()).await?;
        connectors.insert(
            demo.plugin.to_string(),
            DemoConnector {
                account_id: account.id,
                plugin: demo.plugin.into(),
                environment: "test".into(),
                base_url: demo.base_url,
            },
        );
    }
    let mut sandbox_info = BTreeMap::new();
    sandbox_info.insert(
        "dummy".to_string(),
        serde_json::json!({
            "base_url": dummy_base,
            "api_key": dummy_config.api_key,
            "webhook_secret": dummy_config.webhook_secret,
        }),
    );
    sandbox_info.extend(provider_sandboxes(sandbox, data_dir)?);
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

/// The id of the demo merchant's account at `plugin`: stable, so that the
/// sandbox can be told where to post notifications before the accounts exist.
pub fn demo_account_id(plugin: &str) -> String {
    format!("acc_demo_{plugin}")
}

/// A demo connector account: the sandbox's test credentials, by the names
/// each connector declares in `describe`.
struct DemoAccount {
    plugin: &'static str,
    base_url: String,
    credentials: BTreeMap<String, String>,
}

fn demo_accounts(sandbox: &passerelle_sandbox::SandboxHandle) -> Vec<DemoAccount> {
    passerelle_sandbox::PROVIDERS
        .into_iter()
        .filter_map(|plugin| {
            Some(DemoAccount {
                plugin,
                base_url: sandbox.provider_base_url(plugin)?,
                credentials: sandbox_credentials(plugin)?,
            })
        })
        .collect()
}

/// The credentials the PSP sandbox's simulator for `plugin` accepts, by the
/// names the bundled connector declares; `None` for a plugin the sandbox
/// does not simulate.
pub fn sandbox_credentials(plugin: &str) -> Option<BTreeMap<String, String>> {
    let pairs: Vec<(&str, String)> = match plugin {
        "dummy" => {
            let c = passerelle_sandbox::DummyConfig::default();
            vec![("api_key", c.api_key), ("webhook_secret", c.webhook_secret)]
        }
        "adyen" => {
            let c = passerelle_sandbox::AdyenConfig::default();
            vec![
                ("api_key", c.api_key),
                ("merchant_account", c.merchant_account),
                ("hmac_key", c.hmac_key_hex),
            ]
        }
        "sips" => {
            let c = passerelle_sandbox::SipsConfig::default();
            vec![
                ("merchant_id", c.merchant_id),
                ("secret_key", c.secret_key),
                ("key_version", c.key_version.to_string()),
            ]
        }
        "hipay" => {
            let c = passerelle_sandbox::HipayConfig::default();
            vec![
                ("api_username", c.api_username),
                ("api_password", c.api_password),
                ("passphrase", c.passphrase),
                ("signature_algorithm", c.signature_algorithm),
            ]
        }
        "paypal" => {
            let c = passerelle_sandbox::PaypalConfig::default();
            vec![
                ("client_id", c.client_id),
                ("client_secret", c.client_secret),
                ("webhook_id", c.webhook_id),
                (
                    "webhook_trust_root_pem",
                    passerelle_sandbox::paypal::ca_certificate_pem().to_string(),
                ),
            ]
        }
        _ => return None,
    };
    Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// The four provider simulators: for each, the sandbox URL standing in for
/// each of the provider's real (test) base URLs, and the test credentials
/// the simulator accepts. PayPal's webhook CA certificate is written beside
/// demo.json (it is the trust root of webhook signatures in the sandbox).
fn provider_sandboxes(
    sandbox: &passerelle_sandbox::SandboxHandle,
    data_dir: &Path,
) -> Result<BTreeMap<String, serde_json::Value>, DemoError> {
    use serde_json::json;
    let adyen = passerelle_sandbox::AdyenConfig::default();
    let sips = passerelle_sandbox::SipsConfig::default();
    let hipay = passerelle_sandbox::HipayConfig::default();
    let paypal = passerelle_sandbox::PaypalConfig::default();
    let (adyen_base, sips_base, hipay_base, paypal_base) = (
        sandbox.adyen_base_url(),
        sandbox.sips_base_url(),
        sandbox.hipay_base_url(),
        sandbox.paypal_base_url(),
    );
    let paypal_ca = data_dir.join("sandbox-paypal-ca.pem");
    write_private(
        &paypal_ca,
        passerelle_sandbox::paypal::ca_certificate_pem().as_bytes(),
    )?;
    let mut out = BTreeMap::new();
    out.insert(
        "adyen".to_string(),
        json!({
            "base_url": adyen_base,
            "hosts": {"https://checkout-test.adyen.com/v71": adyen_base},
            "api_key": adyen.api_key,
            "merchant_account": adyen.merchant_account,
            "hmac_key_hex": adyen.hmac_key_hex,
        }),
    );
    out.insert(
        "sips".to_string(),
        json!({
            "base_url": sips_base,
            "hosts": {
                "https://payment-webinit.test.sips-services.com": sips_base,
                "https://office-server.test.sips-services.com": sips_base,
            },
            "merchant_id": sips.merchant_id,
            "secret_key": sips.secret_key,
            "key_version": sips.key_version,
        }),
    );
    out.insert(
        "hipay".to_string(),
        json!({
            "base_url": hipay_base,
            "hosts": {
                "https://stage-secure-gateway.hipay-tpp.com/rest": format!("{hipay_base}/gateway"),
                "https://stage-api.hipay.com": format!("{hipay_base}/api"),
                "https://stage-secure2-vault.hipay-tpp.com/rest": format!("{hipay_base}/vault"),
            },
            "api_username": hipay.api_username,
            "api_password": hipay.api_password,
            "passphrase": hipay.passphrase,
            "signature_algorithm": hipay.signature_algorithm,
        }),
    );
    out.insert(
        "paypal".to_string(),
        json!({
            "base_url": paypal_base,
            "hosts": {
                "https://api-m.sandbox.paypal.com": paypal_base,
                "https://www.sandbox.paypal.com": paypal_base,
            },
            "client_id": paypal.client_id,
            "client_secret": paypal.client_secret,
            "webhook_id": paypal.webhook_id,
            "ca_certificate": paypal_ca,
        }),
    );
    Ok(out)
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
