//! `/v1/admin`: merchants, their API keys and their connector accounts,
//! for operators holding an admin key.
//!
//! Clear API keys are shown once, when created; connector credentials are
//! sealed with the master key and never shown again (secret fields answer
//! `{"set": true}`, other settings their value). A field is secret when any
//! version of the connector ever declared it so, not only the one loaded
//! now. Moving an account (its environment or base URL) takes its secrets
//! again, so stored credentials never follow it to another address.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::auth::Admin;
use super::body::{check_printable, parse_object, read_body, typed};
use super::error::ApiError;
use super::AppState;
use crate::crypto::{hash_api_key, key_prefix, new_api_key, new_id, now_rfc3339};
use crate::runtime::bindings::types as wit;
use crate::runtime::LoadedPlugin;
use crate::store::models::{ApiKeyRecord, ConnectorAccountRecord, MerchantRecord};
use crate::store::StoreError;

const MAX_NAME: usize = 200;
const MAX_ACCOUNT_NAME: usize = 64;
const MAX_CREDENTIAL_VALUE: usize = 16 * 1024;
const MAX_URL: usize = 2048;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateMerchant, example = json!({"name": "Boulangerie Ada", "default_connector": "adyen-eu"}))]
struct CreateMerchantBody {
    /// 1 to 200 characters.
    name: String,
    /// The account name used by payments that name none.
    #[serde(default)]
    default_connector: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateApiKey)]
struct CreateKeyBody {
    /// `secret` (the default): a storefront key.
    #[serde(default)]
    kind: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateConnectorAccount, example = json!({"name": "adyen-eu", "connector": "adyen", "environment": "test",
    "credentials": {"api_key": "AQE…", "merchant_account": "AdaECOM"}}))]
struct CreateAccountBody {
    /// 1 to 64 letters, digits, `_`, `-` or `.`; unique per merchant.
    name: String,
    /// An installed plugin's id.
    connector: String,
    /// `test` or `live`.
    environment: String,
    /// The provider's address, instead of the plugin's default.
    #[serde(default)]
    base_url: Option<String>,
    /// The fields the connector declares (required ones present, unknown ones refused).
    credentials: BTreeMap<String, String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateConnectorAccount)]
struct UpdateAccountBody {
    /// `test` or `live`; changing it needs every secret credential again.
    #[serde(default)]
    environment: Option<String>,
    /// Absent: unchanged; `null`: removed; a string: replaced.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    base_url: Option<Option<String>>,
    /// Merged into the stored credentials.
    #[serde(default)]
    credentials: Option<BTreeMap<String, String>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn store_error(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store error");
    ApiError::internal()
}

fn conflict(code: &str, param: &str, message: String) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "invalid_request_error", code, message).with_param(param)
}

fn check_text(param: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(ApiError::invalid(
            param,
            format!("{param} must be 1 to {max} characters"),
        ));
    }
    check_printable(param, value)
}

/// Account names appear in payment requests: short, no spaces.
fn check_account_name(param: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ACCOUNT_NAME
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !ok {
        return Err(ApiError::invalid(
            param,
            format!("{param} must be 1 to {MAX_ACCOUNT_NAME} letters, digits, `_`, `-` or `.`"),
        ));
    }
    Ok(())
}

fn check_environment(value: &str) -> Result<(), ApiError> {
    match value {
        "test" | "live" => Ok(()),
        _ => Err(ApiError::invalid(
            "environment",
            "environment must be \"test\" or \"live\"",
        )),
    }
}

fn check_base_url(value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "base_url",
            "base_url must be an absolute http(s) URL without control characters",
        ));
    }
    url::Url::parse(value)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && value.len() <= MAX_URL
        })
        .map(|_| ())
        .ok_or_else(|| ApiError::invalid("base_url", "base_url must be an absolute http(s) URL"))
}

async fn json_body<T: serde::de::DeserializeOwned>(payload: web::Payload) -> Result<T, ApiError> {
    let body = read_body(payload).await?;
    typed(parse_object(&body)?)
}

// ----- merchants ----------------------------------------------------------------

fn merchant_json(m: &MerchantRecord) -> Value {
    json!({
        "id": m.id,
        "object": "merchant",
        "name": m.name,
        "default_connector": m.default_connector,
        "created_at": m.created_at,
    })
}

async fn merchant_or_404(state: &AppState, id: &str) -> Result<MerchantRecord, ApiError> {
    state
        .payments
        .store()
        .get_merchant(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("merchant", id))
}

#[utoipa::path(post, path = "/v1/admin/merchants", tag = "merchants", summary = "Create a merchant", security(("admin_key" = [])), request_body = CreateMerchantBody, responses((status = 201, description = "The merchant", body = super::openapi::Merchant), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn create_merchant(
    state: web::Data<AppState>,
    _admin: Admin,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateMerchantBody = json_body(payload).await?;
    check_text("name", &body.name, MAX_NAME)?;
    if let Some(name) = &body.default_connector {
        check_account_name("default_connector", name)?;
    }
    let record = MerchantRecord {
        id: new_id("mer"),
        name: body.name.trim().to_string(),
        created_at: now_rfc3339(),
        default_connector: body.default_connector,
    };
    state
        .payments
        .store()
        .insert_merchant(record.clone())
        .await
        .map_err(store_error)?;
    tracing::info!(merchant = %record.id, "merchant created");
    Ok(HttpResponse::Created().json(merchant_json(&record)))
}

#[utoipa::path(get, path = "/v1/admin/merchants", tag = "merchants", summary = "List merchants", security(("admin_key" = [])), responses((status = 200, description = "The merchants", body = super::openapi::MerchantList), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn list_merchants(
    state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, ApiError> {
    let merchants = state
        .payments
        .store()
        .list_merchants()
        .await
        .map_err(store_error)?;
    let data: Vec<_> = merchants.iter().map(merchant_json).collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

#[utoipa::path(get, path = "/v1/admin/merchants/{id}", tag = "merchants", summary = "Show a merchant", security(("admin_key" = [])), params(("id" = String, Path, description = "The merchant's id (`mer_…`)")), responses((status = 200, description = "The merchant", body = super::openapi::Merchant), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn get_merchant(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let merchant = merchant_or_404(&state, &path).await?;
    Ok(HttpResponse::Ok().json(merchant_json(&merchant)))
}

// ----- API keys -------------------------------------------------------------------

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "object": "api_key",
        "merchant_id": k.merchant_id,
        "kind": k.kind,
        "prefix": k.prefix,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

#[utoipa::path(post, path = "/v1/admin/merchants/{id}/api_keys", tag = "merchants", summary = "Make a storefront API key", security(("admin_key" = [])), params(("id" = String, Path, description = "The merchant's id (`mer_…`)")), request_body = CreateKeyBody, responses((status = 201, description = "The key, with the clear `key` shown this once", body = super::openapi::ApiKey), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn create_api_key(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateKeyBody = json_body(payload).await?;
    if let Some(kind) = &body.kind {
        if kind != "secret" {
            return Err(ApiError::invalid(
                "kind",
                "kind must be \"secret\" (storefront API key)",
            ));
        }
    }
    let merchant = merchant_or_404(&state, &path).await?;
    let key = new_api_key("sk");
    let record = ApiKeyRecord {
        id: new_id("key"),
        merchant_id: Some(merchant.id.clone()),
        kind: "secret".into(),
        key_hash: hash_api_key(&key),
        prefix: key_prefix(&key),
        created_at: now_rfc3339(),
        revoked_at: None,
    };
    state
        .payments
        .store()
        .insert_api_key(record.clone())
        .await
        .map_err(store_error)?;
    tracing::info!(merchant = %merchant.id, key = %record.id, "API key created");
    let mut answer = key_json(&record);
    answer["key"] = Value::String(key);
    Ok(HttpResponse::Created().json(answer))
}

#[utoipa::path(get, path = "/v1/admin/merchants/{id}/api_keys", tag = "merchants", summary = "List a merchant's API keys", security(("admin_key" = [])), params(("id" = String, Path, description = "The merchant's id (`mer_…`)")), responses((status = 200, description = "The keys (never the keys themselves)", body = super::openapi::ApiKeyList), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn list_api_keys(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let merchant = merchant_or_404(&state, &path).await?;
    let keys = state
        .payments
        .store()
        .list_api_keys(&merchant.id)
        .await
        .map_err(store_error)?;
    let data: Vec<_> = keys.iter().map(key_json).collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

#[utoipa::path(post, path = "/v1/admin/api_keys/{id}/revoke", tag = "merchants", summary = "Revoke a storefront API key", security(("admin_key" = [])), params(("id" = String, Path, description = "The API key's id (`key_…`)")), responses((status = 200, description = "The revoked key", body = super::openapi::ApiKey), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn revoke_api_key(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let store = state.payments.store();
    // Only storefront keys are managed here; admin keys are not found.
    match store.get_api_key(&path).await.map_err(store_error)? {
        Some(k) if k.kind == "secret" => {}
        _ => return Err(ApiError::not_found("API key", &path)),
    }
    let record = store
        .revoke_api_key(&path, now_rfc3339())
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("API key", &path))?;
    tracing::info!(key = %record.id, "API key revoked");
    Ok(HttpResponse::Ok().json(key_json(&record)))
}

// ----- connector accounts -----------------------------------------------------------

fn plugin_for(state: &AppState, connector: &str) -> Result<Arc<LoadedPlugin>, ApiError> {
    state.runtime.get(connector).map_err(|error| match error {
        crate::runtime::PluginError::Disabled(_) => ApiError::invalid(
            "connector",
            format!("connector plugin {connector:?} is disabled; enable it first"),
        ),
        _ => ApiError::invalid(
            "connector",
            format!("no connector plugin {connector:?} is installed"),
        ),
    })
}

fn open_credentials(
    state: &AppState,
    record: &ConnectorAccountRecord,
) -> Result<BTreeMap<String, String>, ApiError> {
    let clear = state.secrets.open(&record.config_ciphertext).map_err(|e| {
        tracing::error!(account = %record.id, error = %e, "credentials cannot be opened");
        ApiError::internal()
    })?;
    serde_json::from_slice(&clear).map_err(|_| {
        tracing::error!(account = %record.id, "credentials are malformed");
        ApiError::internal()
    })
}

/// The credential fields any version of `connector` ever declared secret.
async fn recorded_secrets(state: &AppState, connector: &str) -> Result<BTreeSet<String>, ApiError> {
    Ok(state.registry.secret_fields(connector).await?)
}

/// Whether a credential field is secret: declared so by any version of the
/// plugin (`recorded`) or by the loaded one, or not declared by the loaded
/// one (or no plugin is loaded). Only a field every version declared
/// non-secret is shown in clear.
fn is_secret(plugin: Option<&LoadedPlugin>, recorded: &BTreeSet<String>, name: &str) -> bool {
    recorded.contains(name)
        || plugin
            .and_then(|p| p.info.credential_fields.iter().find(|f| f.name == name))
            .is_none_or(|f| f.secret)
}

/// The account as the API shows it: secret credential fields (see
/// [`is_secret`]) as `{"set": true}`, other settings by value.
fn account_json(
    state: &AppState,
    record: &ConnectorAccountRecord,
    recorded: &BTreeSet<String>,
) -> Result<Value, ApiError> {
    let credentials = open_credentials(state, record)?;
    let plugin = state.runtime.get(&record.connector).ok();
    let shown: serde_json::Map<String, Value> = credentials
        .into_iter()
        .map(|(name, value)| {
            let secret = is_secret(plugin.as_deref(), recorded, &name);
            let shown = if secret {
                json!({"set": true})
            } else {
                Value::String(value)
            };
            (name, shown)
        })
        .collect();
    Ok(json!({
        "id": record.id,
        "object": "connector_account",
        "merchant_id": record.merchant_id,
        "name": record.name,
        "connector": record.connector,
        "environment": record.environment,
        "base_url": record.base_url,
        "credentials": shown,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }))
}

/// The plugin's declared fields (required present, unknown refused), then
/// the plugin's own `validate-config`.
async fn validate_account(
    state: &AppState,
    plugin: &Arc<LoadedPlugin>,
    id: &str,
    environment: &str,
    base_url: Option<&str>,
    credentials: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let fields = &plugin.info.credential_fields;
    for (name, value) in credentials {
        let param = format!("credentials.{name}");
        if !fields.iter().any(|f| &f.name == name) {
            let known: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "parameter_unknown",
                format!(
                    "unknown parameter {param}: connector {} takes {}",
                    plugin.id(),
                    known.join(", ")
                ),
            )
            .with_param(param));
        }
        if value.len() > MAX_CREDENTIAL_VALUE {
            return Err(ApiError::invalid(
                &param,
                format!("{param} must be at most {MAX_CREDENTIAL_VALUE} bytes"),
            ));
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if credentials
            .get(&field.name)
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(ApiError::missing(format!("credentials.{}", field.name)));
        }
    }
    let account = wit::Account {
        id: id.to_string(),
        environment: if environment == "live" {
            wit::Environment::Live
        } else {
            wit::Environment::Test
        },
        base_url: base_url.map(str::to_string),
        config: credentials
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    match state.runtime.validate_config(plugin, account).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => {
            let param = match error.field.as_deref() {
                Some("base_url") => "base_url".to_string(),
                Some("environment") => "environment".to_string(),
                Some(f) if fields.iter().any(|d| d.name == f) => format!("credentials.{f}"),
                _ => "credentials".to_string(),
            };
            Err(ApiError::invalid(
                &param,
                format!("{param} is invalid: {}", error.message),
            ))
        }
        Err(e) => {
            tracing::warn!(plugin = %plugin.id(), error = %e, "validate-config failed");
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "connector_error",
                "plugin_failed",
                e.to_string(),
            ))
        }
    }
}

fn seal(state: &AppState, credentials: &BTreeMap<String, String>) -> Result<String, ApiError> {
    let clear = serde_json::to_vec(credentials).map_err(|_| ApiError::internal())?;
    state.secrets.seal(&clear).map_err(|e| {
        tracing::error!(error = %e, "credentials cannot be sealed");
        ApiError::internal()
    })
}

async fn account_or_404(state: &AppState, id: &str) -> Result<ConnectorAccountRecord, ApiError> {
    state
        .payments
        .store()
        .get_connector_account(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("connector account", id))
}

#[utoipa::path(post, path = "/v1/admin/merchants/{id}/connector_accounts", tag = "merchants", summary = "Add a connector account", security(("admin_key" = [])), params(("id" = String, Path, description = "The merchant's id (`mer_…`)")), request_body = CreateAccountBody, responses((status = 201, description = "The account", body = super::openapi::ConnectorAccount), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn create_account(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateAccountBody = json_body(payload).await?;
    let merchant = merchant_or_404(&state, &path).await?;
    check_account_name("name", &body.name)?;
    let plugin = plugin_for(&state, &body.connector)?;
    check_environment(&body.environment)?;
    if let Some(url) = &body.base_url {
        check_base_url(url)?;
    }
    let id = new_id("acc");
    validate_account(
        &state,
        &plugin,
        &id,
        &body.environment,
        body.base_url.as_deref(),
        &body.credentials,
    )
    .await?;
    let now = now_rfc3339();
    let record = ConnectorAccountRecord {
        id,
        merchant_id: merchant.id.clone(),
        name: body.name.clone(),
        connector: body.connector.clone(),
        environment: body.environment.clone(),
        base_url: body.base_url.clone(),
        config_ciphertext: seal(&state, &body.credentials)?,
        created_at: now.clone(),
        updated_at: now,
    };
    match state
        .payments
        .store()
        .insert_connector_account(record.clone())
        .await
    {
        Ok(()) => {}
        Err(StoreError::Duplicate) => {
            return Err(conflict(
                "account_name_taken",
                "name",
                format!(
                    "merchant {} already has a connector account named {:?}",
                    merchant.id, body.name
                ),
            ))
        }
        Err(e) => return Err(store_error(e)),
    }
    tracing::info!(merchant = %merchant.id, account = %record.id, connector = %record.connector, environment = %record.environment, "connector account created");
    let recorded = recorded_secrets(&state, &record.connector).await?;
    Ok(HttpResponse::Created().json(account_json(&state, &record, &recorded)?))
}

#[utoipa::path(get, path = "/v1/admin/merchants/{id}/connector_accounts", tag = "merchants", summary = "List a merchant's connector accounts", security(("admin_key" = [])), params(("id" = String, Path, description = "The merchant's id (`mer_…`)")), responses((status = 200, description = "The accounts", body = super::openapi::ConnectorAccountList), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn list_accounts(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let merchant = merchant_or_404(&state, &path).await?;
    let accounts = state
        .payments
        .store()
        .list_connector_accounts(&merchant.id)
        .await
        .map_err(store_error)?;
    let mut recorded: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for account in &accounts {
        if !recorded.contains_key(account.connector.as_str()) {
            let fields = recorded_secrets(&state, &account.connector).await?;
            recorded.insert(&account.connector, fields);
        }
    }
    let data = accounts
        .iter()
        .map(|a| {
            let fields = recorded
                .get(a.connector.as_str())
                .ok_or_else(ApiError::internal)?;
            account_json(&state, a, fields)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

#[utoipa::path(get, path = "/v1/admin/connector_accounts/{id}", tag = "merchants", summary = "Show a connector account", security(("admin_key" = [])), params(("id" = String, Path, description = "The connector account's id (`acc_…`)")), responses((status = 200, description = "The account", body = super::openapi::ConnectorAccount), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn get_account(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let record = account_or_404(&state, &path).await?;
    let recorded = recorded_secrets(&state, &record.connector).await?;
    Ok(HttpResponse::Ok().json(account_json(&state, &record, &recorded)?))
}

#[utoipa::path(patch, path = "/v1/admin/connector_accounts/{id}", tag = "merchants", summary = "Change a connector account", security(("admin_key" = [])), params(("id" = String, Path, description = "The connector account's id (`acc_…`)")), request_body = UpdateAccountBody, responses((status = 200, description = "The account", body = super::openapi::ConnectorAccount), (status = "4XX", description = "The request is refused (the error names the field)", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle or the connector failed", body = super::openapi::ErrorBody)))]
pub async fn update_account(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: UpdateAccountBody = json_body(payload).await?;
    let mut record = account_or_404(&state, &path).await?;
    let plugin = state.runtime.get(&record.connector).map_err(|_| {
        ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "connector_not_installed",
            format!(
                "the account's connector plugin {:?} is not installed",
                record.connector
            ),
        )
    })?;
    let mut moved = Vec::new();
    if let Some(environment) = body.environment {
        check_environment(&environment)?;
        if environment != record.environment {
            moved.push("environment");
        }
        record.environment = environment;
    }
    if let Some(base_url) = body.base_url {
        if let Some(url) = &base_url {
            check_base_url(url)?;
        }
        if base_url != record.base_url {
            moved.push("base_url");
        }
        record.base_url = base_url;
    }
    let mut credentials = open_credentials(&state, &record)?;
    let recorded = recorded_secrets(&state, &record.connector).await?;
    if !moved.is_empty() {
        // The stored secrets were given for the old address; the next call
        // (validate-config below, to begin with) would send them to the new
        // one, which the egress check lets through as the account's own.
        // Whoever moves the account must know them: nothing is written
        // unless every secret stored comes again in this request.
        let supplied = body.credentials.as_ref();
        let missing: Vec<String> = credentials
            .keys()
            .filter(|name| is_secret(Some(plugin.as_ref()), &recorded, name))
            .filter(|name| supplied.is_none_or(|given| !given.contains_key(*name)))
            .map(|name| format!("credentials.{name}"))
            .collect();
        if let Some(first) = missing.first() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "parameter_missing",
                format!(
                    "changing {} sends the account's credentials to another address: \
                     supply {} again in the same request",
                    moved.join(" and "),
                    missing.join(", ")
                ),
            )
            .with_param(first.clone()));
        }
    }
    if let Some(changes) = body.credentials {
        credentials.extend(changes);
    }
    validate_account(
        &state,
        &plugin,
        &record.id,
        &record.environment,
        record.base_url.as_deref(),
        &credentials,
    )
    .await?;
    record.config_ciphertext = seal(&state, &credentials)?;
    record.updated_at = now_rfc3339();
    let updated = state
        .payments
        .store()
        .update_connector_account(record.clone())
        .await
        .map_err(store_error)?;
    if !updated {
        return Err(ApiError::not_found("connector account", &record.id));
    }
    tracing::info!(account = %record.id, environment = %record.environment, "connector account updated");
    Ok(HttpResponse::Ok().json(account_json(&state, &record, &recorded)?))
}
