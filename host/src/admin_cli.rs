//! `passerelle admin`: a thin client over the admin API that prints the
//! server's JSON answers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The Passerelle server's base URL.
    #[arg(long, env = "PASSERELLE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin API key.
    #[arg(long, env = "PASSERELLE_ADMIN_KEY", hide_env_values = true)]
    pub admin_key: String,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Merchants.
    #[command(subcommand)]
    Merchants(MerchantsCommand),
    /// A merchant's storefront API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// A merchant's connector accounts.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Connector plugins: install packages, switch versions, disable, remove.
    #[command(subcommand)]
    Plugins(PluginsCommand),
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Uploads a plugin package (`.ppkg`, see `passerelle plugin pack`).
    Install {
        package: PathBuf,
        /// Make this version the active one at once (a plugin's first
        /// version is always activated).
        #[arg(long)]
        activate: bool,
    },
    /// Lists plugins with their active version.
    List,
    /// Shows a plugin: versions, digests, publishers, accounts using it.
    Show { id: String },
    /// Makes a version serve new calls.
    Activate { id: String, version: String },
    /// Goes back to the previously active version.
    Rollback { id: String },
    /// Refuses every call to the plugin.
    Disable { id: String },
    /// Accepts calls to the plugin again.
    Enable { id: String },
    /// Removes a plugin (refused while accounts use it, unless --force),
    /// or only one of its versions with --version.
    Remove {
        id: String,
        /// Remove only this (inactive) version.
        #[arg(long)]
        version: Option<String>,
        /// Remove even though connector accounts use the plugin.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MerchantsCommand {
    /// Creates a merchant.
    Create {
        #[arg(long)]
        name: String,
        /// Connector account (by name) for payments naming none.
        #[arg(long)]
        default_connector: Option<String>,
    },
    /// Lists merchants.
    List,
    /// Shows one merchant.
    Show { id: String },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Creates a secret key; the clear key is printed this once.
    Create {
        #[arg(long)]
        merchant: String,
    },
    /// Lists a merchant's keys (prefixes only).
    List {
        #[arg(long)]
        merchant: String,
    },
    /// Revokes a key at once.
    Revoke { id: String },
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    /// A credential field, `name=value` (repeatable).
    #[arg(long = "credential", value_name = "NAME=VALUE")]
    pub credential: Vec<String>,
    /// A JSON object of credential fields (merged under `--credential`).
    #[arg(long)]
    pub credentials_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Creates a connector account.
    Create {
        #[arg(long)]
        merchant: String,
        /// The merchant's name for the account.
        #[arg(long)]
        name: String,
        /// The connector plugin id.
        #[arg(long)]
        connector: String,
        /// `test` or `live`.
        #[arg(long, default_value = "test")]
        environment: String,
        #[arg(long)]
        base_url: Option<String>,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
    /// Lists a merchant's connector accounts.
    List {
        #[arg(long)]
        merchant: String,
    },
    /// Shows one connector account.
    Show { id: String },
    /// Changes an account's environment, base URL or some credentials.
    /// Changing the environment or the base URL takes every secret
    /// credential again (`--credential`, `--credentials-file`): the stored
    /// ones do not follow the account to another address.
    Update {
        id: String,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        base_url: Option<String>,
        #[command(flatten)]
        credentials: CredentialArgs,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("--credential {0:?}: expected NAME=VALUE")]
    Credential(String),
    #[error("cannot read {0}: {1}")]
    File(PathBuf, std::io::Error),
    #[error("{0}: not a JSON object of strings: {1}")]
    FileJson(PathBuf, serde_json::Error),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the server answered {0}")]
    Status(u16),
}

impl CredentialArgs {
    fn collect(&self) -> Result<BTreeMap<String, String>, CliError> {
        let mut out = BTreeMap::new();
        if let Some(path) = &self.credentials_file {
            let bytes = std::fs::read(path).map_err(|e| CliError::File(path.clone(), e))?;
            let file: BTreeMap<String, String> =
                serde_json::from_slice(&bytes).map_err(|e| CliError::FileJson(path.clone(), e))?;
            out.extend(file);
        }
        for pair in &self.credential {
            let (name, value) = pair
                .split_once('=')
                .filter(|(n, _)| !n.is_empty())
                .ok_or_else(|| CliError::Credential(pair.split('=').next().unwrap_or("").into()))?;
            out.insert(name.to_string(), value.to_string());
        }
        Ok(out)
    }

    fn is_empty(&self) -> bool {
        self.credential.is_empty() && self.credentials_file.is_none()
    }
}

fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Runs the command and prints the answer's JSON on stdout. An error answer
/// is printed too, and makes the command fail.
pub async fn run(args: AdminArgs) -> Result<(), CliError> {
    use reqwest::Method;
    let (method, path, body): (Method, String, Option<Value>) = match args.command {
        AdminCommand::Plugins(command) => {
            return run_plugins(&args.url, &args.admin_key, command).await;
        }
        AdminCommand::Merchants(MerchantsCommand::Create {
            name,
            default_connector,
        }) => {
            let mut body = json!({"name": name});
            if let Some(c) = default_connector {
                body["default_connector"] = Value::String(c);
            }
            (Method::POST, "/v1/admin/merchants".into(), Some(body))
        }
        AdminCommand::Merchants(MerchantsCommand::List) => {
            (Method::GET, "/v1/admin/merchants".into(), None)
        }
        AdminCommand::Merchants(MerchantsCommand::Show { id }) => (
            Method::GET,
            format!("/v1/admin/merchants/{}", seg(&id)),
            None,
        ),
        AdminCommand::Keys(KeysCommand::Create { merchant }) => (
            Method::POST,
            format!("/v1/admin/merchants/{}/api_keys", seg(&merchant)),
            Some(json!({"kind": "secret"})),
        ),
        AdminCommand::Keys(KeysCommand::List { merchant }) => (
            Method::GET,
            format!("/v1/admin/merchants/{}/api_keys", seg(&merchant)),
            None,
        ),
        AdminCommand::Keys(KeysCommand::Revoke { id }) => (
            Method::POST,
            format!("/v1/admin/api_keys/{}/revoke", seg(&id)),
            Some(json!({})),
        ),
        AdminCommand::Accounts(AccountsCommand::Create {
            merchant,
            name,
            connector,
            environment,
            base_url,
            credentials,
        }) => {
            let mut body = json!({
                "name": name,
                "connector": connector,
                "environment": environment,
                "credentials": credentials.collect()?,
            });
            if let Some(url) = base_url {
                body["base_url"] = Value::String(url);
            }
            (
                Method::POST,
                format!("/v1/admin/merchants/{}/connector_accounts", seg(&merchant)),
                Some(body),
            )
        }
        AdminCommand::Accounts(AccountsCommand::List { merchant }) => (
            Method::GET,
            format!("/v1/admin/merchants/{}/connector_accounts", seg(&merchant)),
            None,
        ),
        AdminCommand::Accounts(AccountsCommand::Show { id }) => (
            Method::GET,
            format!("/v1/admin/connector_accounts/{}", seg(&id)),
            None,
        ),
        AdminCommand::Accounts(AccountsCommand::Update {
            id,
            environment,
            base_url,
            credentials,
        }) => {
            let mut body = json!({});
            if let Some(e) = environment {
                body["environment"] = Value::String(e);
            }
            if let Some(url) = base_url {
                body["base_url"] = Value::String(url);
            }
            if !credentials.is_empty() {
                body["credentials"] = json!(credentials.collect()?);
            }
            (
                Method::PATCH,
                format!("/v1/admin/connector_accounts/{}", seg(&id)),
                Some(body),
            )
        }
    };
    send(
        &args.url,
        &args.admin_key,
        method,
        &path,
        body.map(Body::Json),
    )
    .await
}

enum Body {
    Json(Value),
    Package(Vec<u8>),
}

async fn run_plugins(url: &str, admin_key: &str, command: PluginsCommand) -> Result<(), CliError> {
    use reqwest::Method;
    let (method, path, body) = match command {
        PluginsCommand::Install { package, activate } => {
            let bytes = std::fs::read(&package).map_err(|e| CliError::File(package.clone(), e))?;
            (
                Method::POST,
                format!("/v1/admin/plugins?activate={activate}"),
                Some(Body::Package(bytes)),
            )
        }
        PluginsCommand::List => (Method::GET, "/v1/admin/plugins".into(), None),
        PluginsCommand::Show { id } => {
            (Method::GET, format!("/v1/admin/plugins/{}", seg(&id)), None)
        }
        PluginsCommand::Activate { id, version } => (
            Method::POST,
            format!("/v1/admin/plugins/{}/activate", seg(&id)),
            Some(Body::Json(json!({"version": version}))),
        ),
        PluginsCommand::Rollback { id } => (
            Method::POST,
            format!("/v1/admin/plugins/{}/rollback", seg(&id)),
            None,
        ),
        PluginsCommand::Disable { id } => (
            Method::POST,
            format!("/v1/admin/plugins/{}/disable", seg(&id)),
            None,
        ),
        PluginsCommand::Enable { id } => (
            Method::POST,
            format!("/v1/admin/plugins/{}/enable", seg(&id)),
            None,
        ),
        PluginsCommand::Remove {
            id,
            version: Some(version),
            force: _,
        } => (
            Method::DELETE,
            format!("/v1/admin/plugins/{}/versions/{}", seg(&id), seg(&version)),
            None,
        ),
        PluginsCommand::Remove {
            id,
            version: None,
            force,
        } => (
            Method::DELETE,
            format!("/v1/admin/plugins/{}?force={force}", seg(&id)),
            None,
        ),
    };
    send(url, admin_key, method, &path, body).await
}

/// Sends one admin API request and prints the answer.
async fn send(
    base_url: &str,
    admin_key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Body>,
) -> Result<(), CliError> {
    // Installing a large package compiles it before the server answers.
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()?;
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let mut request = client.request(method, url).bearer_auth(admin_key);
    match body {
        Some(Body::Json(body)) => request = request.json(&body),
        Some(Body::Package(bytes)) => {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes);
        }
        None => {}
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => println!("{}", serde_json::to_string_pretty(&value).unwrap_or(text)),
        Err(_) => println!("{text}"),
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(CliError::Status(status.as_u16()))
    }
}
