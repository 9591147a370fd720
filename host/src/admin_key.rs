//! `passerelle admin-key`: creates, lists and revokes admin API keys by
//! opening the database directly. It is how an operator gets the first
//! admin key of a server started without `--demo` (the admin API itself
//! needs one), and the way back in if every admin key is lost.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::crypto::{hash_api_key, key_prefix, new_api_key, new_id, now_rfc3339};
use crate::store::{ApiKeyRecord, Store, StoreError};

/// Prefix of admin keys (`ak_...`), so that they are told apart from
/// storefront keys (`sk_...`) at a glance.
pub const ADMIN_KEY_PREFIX: &str = "ak";

#[derive(Debug, Args)]
pub struct AdminKeyArgs {
    /// The server's data directory (its SQLite database lives there).
    #[arg(
        long,
        global = true,
        env = "PASSERELLE_DATA_DIR",
        default_value = ".passerelle"
    )]
    pub data_dir: PathBuf,
    /// `postgres://...` for PostgreSQL; default: SQLite in the data dir.
    #[arg(long, global = true, env = "PASSERELLE_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: AdminKeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminKeyCommand {
    /// Creates an admin key; the clear key is printed this once.
    Create,
    /// Lists admin keys (prefixes only).
    List,
    /// Revokes an admin key at once.
    Revoke { id: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no admin key with id {0:?}")]
    NotFound(String),
}

/// The same default as `passerelle serve`.
pub fn database_url(data_dir: &std::path::Path, database_url: Option<String>) -> String {
    database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("passerelle.db").display()))
}

/// Stores a new admin key and returns it in clear (only its hash is kept).
pub async fn create_admin_key(store: &Store) -> Result<(ApiKeyRecord, String), StoreError> {
    let key = new_api_key(ADMIN_KEY_PREFIX);
    let record = ApiKeyRecord {
        id: new_id("key"),
        merchant_id: None,
        kind: "admin".to_string(),
        key_hash: hash_api_key(&key),
        prefix: key_prefix(&key),
        created_at: now_rfc3339(),
        revoked_at: None,
    };
    store.insert_api_key(record.clone()).await?;
    Ok((record, key))
}

fn key_json(record: &ApiKeyRecord) -> serde_json::Value {
    json!({
        "object": "api_key",
        "id": record.id,
        "kind": record.kind,
        "prefix": record.prefix,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    })
}

/// Runs the command and prints JSON on stdout.
pub async fn run(args: AdminKeyArgs) -> Result<(), AdminKeyError> {
    let store = Store::connect(&database_url(&args.data_dir, args.database_url)).await?;
    let out = match args.command {
        AdminKeyCommand::Create => {
            let (record, key) = create_admin_key(&store).await?;
            tracing::info!(key = %record.id, "admin key created");
            let mut out = key_json(&record);
            out["key"] = json!(key);
            out
        }
        AdminKeyCommand::List => {
            let keys = store.list_admin_keys().await?;
            json!({"object": "list", "data": keys.iter().map(key_json).collect::<Vec<_>>()})
        }
        AdminKeyCommand::Revoke { id } => {
            match store.get_api_key(&id).await? {
                Some(k) if k.kind == "admin" => {}
                _ => return Err(AdminKeyError::NotFound(id)),
            }
            let record = store
                .revoke_api_key(&id, now_rfc3339())
                .await?
                .ok_or_else(|| AdminKeyError::NotFound(id.clone()))?;
            tracing::warn!(key = %record.id, "admin key revoked");
            key_json(&record)
        }
    };
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(())
}
