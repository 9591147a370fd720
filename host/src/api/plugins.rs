//! Admin API for plugins: install a package, list, show, activate a
//! version, roll back, disable, enable, remove.

use std::sync::atomic::Ordering;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::auth::Admin;
use super::body::{parse_object, read_body, read_bounded};
use super::error::ApiError;
use super::AppState;
use crate::package::PackageError;
use crate::registry::{PluginView, RegistryError};
use crate::runtime::manifest::operation_name;
use crate::runtime::{LoadedPlugin, PluginError};

/// Largest package the API accepts (compressed).
pub const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;

impl From<RegistryError> for ApiError {
    fn from(error: RegistryError) -> Self {
        use RegistryError as E;
        let message = error.to_string();
        let (status, code, param) = match &error {
            E::Package(PackageError::Unsigned) => {
                (StatusCode::FORBIDDEN, "package_unsigned", Some("package"))
            }
            E::Package(PackageError::Untrusted { .. }) => {
                (StatusCode::FORBIDDEN, "package_untrusted", Some("package"))
            }
            E::Package(PackageError::SignatureInvalid(_)) => (
                StatusCode::FORBIDDEN,
                "package_signature_invalid",
                Some("package"),
            ),
            E::Package(PackageError::TooLarge { .. }) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "package_too_large",
                Some("package"),
            ),
            E::Package(_) => (StatusCode::BAD_REQUEST, "package_invalid", Some("package")),
            E::TestOnly(_) => (StatusCode::FORBIDDEN, "package_test_only", Some("package")),
            E::Plugin(PluginError::NotInstalled(_)) | E::NotFound(_) => {
                (StatusCode::NOT_FOUND, "resource_missing", Some("id"))
            }
            E::Plugin(PluginError::VersionNotLoaded { .. }) | E::VersionNotFound { .. } => {
                (StatusCode::NOT_FOUND, "resource_missing", Some("version"))
            }
            // The component does not load, or does not do what its manifest says.
            E::Plugin(_) | E::Unloadable { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "plugin_rejected",
                Some("package"),
            ),
            E::VersionExists { .. } => (StatusCode::CONFLICT, "version_exists", Some("version")),
            // The package is well formed and signed, but the id is another
            // publisher's (or its packages are verified and this one is not).
            E::PublisherMismatch { .. } | E::PublisherUnverified { .. } => (
                StatusCode::CONFLICT,
                "plugin_publisher_mismatch",
                Some("package"),
            ),
            E::NoPreviousVersion(_) => (StatusCode::CONFLICT, "no_previous_version", None),
            E::VersionActive { .. } => (StatusCode::CONFLICT, "version_active", Some("version")),
            E::InUse { .. } => (StatusCode::CONFLICT, "plugin_in_use", None),
            E::Bundled(_) => (StatusCode::CONFLICT, "plugin_bundled", None),
            E::Store(e) => {
                tracing::error!(error = %e, "store error");
                return ApiError::internal();
            }
        };
        let kind = if status.is_server_error() {
            "api_error"
        } else {
            "invalid_request_error"
        };
        let api = ApiError::new(status, kind, code, message);
        match param {
            Some(param) => api.with_param(param),
            None => api,
        }
    }
}

fn loaded_json(plugin: &LoadedPlugin) -> Value {
    json!({
        "name": plugin.manifest.name,
        "wit": plugin.manifest.wit,
        // The contract the component exports, read from the component
        // itself (the manifest's `wit` is the author's word).
        "contract": plugin.contract.as_str(),
        "description": plugin.manifest.description,
        "component_digest": plugin.digest,
        "operations": plugin.info.operations.iter().map(|o| operation_name(*o)).collect::<Vec<_>>(),
        "payment_methods": plugin.info.payment_methods,
        "currencies": plugin.info.currencies,
        "credential_fields": plugin.info.credential_fields.iter().map(|f| json!({
            "name": f.name, "label": f.label, "secret": f.secret, "required": f.required,
        })).collect::<Vec<_>>(),
        "egress": {"test": plugin.manifest.egress.test, "live": plugin.manifest.egress.live},
        "limits": {"memory_mb": plugin.memory_limit_mb(), "cpu_ms": plugin.cpu_limit_ms()},
        "compiled": {"from_cache": plugin.load.from_cache, "millis": plugin.load.millis},
        "stats": {
            "calls": plugin.stats.calls.load(Ordering::Relaxed),
            "failures": plugin.stats.failures.load(Ordering::Relaxed),
        },
    })
}

/// The summary fields of a plugin, shared by the list and the detail.
fn plugin_json(view: &PluginView) -> Value {
    let record = &view.record;
    let active_summary = view
        .versions
        .iter()
        .find(|v| Some(&v.summary.version) == record.active_version.as_ref());
    // What this node does with the plugin's calls: serve them with the
    // active version, refuse them (disabled), or refuse them because the
    // active version cannot be loaded here (its log line says why).
    let serving = view
        .active
        .as_ref()
        .is_some_and(|p| Some(&p.manifest.version) == record.active_version.as_ref());
    let state = match (record.disabled, serving) {
        (true, _) => "disabled",
        (false, true) => "serving",
        (false, false) => "unavailable",
    };
    let mut out = json!({
        "object": "plugin",
        "id": record.id,
        "state": state,
        "version": record.active_version,
        "active_version": record.active_version,
        "previous_version": record.previous_version,
        "disabled": record.disabled,
        "publisher": active_summary.map(|v| v.summary.publisher.clone()),
        "digest": active_summary.map(|v| v.summary.digest.clone()),
        "trust": active_summary.map(|v| v.summary.trust.clone()),
        "versions_count": view.versions.len(),
        "accounts_count": view.accounts.len(),
        "updated_at": record.updated_at,
    });
    if let (Some(active), Some(map)) = (&view.active, out.as_object_mut()) {
        if let Some(extra) = loaded_json(active).as_object() {
            for (key, value) in extra {
                map.insert(key.clone(), value.clone());
            }
        }
    }
    out
}

fn plugin_detail_json(view: &PluginView) -> Value {
    let mut out = plugin_json(view);
    let versions: Vec<Value> = view
        .versions
        .iter()
        .map(|v| {
            let s = &v.summary;
            json!({
                "version": s.version,
                "digest": s.digest,
                "publisher": s.publisher,
                "trust": s.trust,
                "signed_by": s.signed_by,
                "source": if v.bundled { "bundled" } else { "uploaded" },
                "installed_at": s.installed_at,
                "active": view.record.active_version.as_ref() == Some(&s.version),
                "loaded": v.loaded.is_some(),
                "compiled": v.loaded.as_ref().map(|l| json!({"from_cache": l.load.from_cache, "millis": l.load.millis})),
                "stats": v.loaded.as_ref().map(|l| json!({
                    "calls": l.stats.calls.load(Ordering::Relaxed),
                    "failures": l.stats.failures.load(Ordering::Relaxed),
                })),
            })
        })
        .collect();
    let accounts: Vec<Value> = view
        .accounts
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "merchant_id": a.merchant_id,
                "name": a.name,
                "environment": a.environment,
            })
        })
        .collect();
    if let Some(map) = out.as_object_mut() {
        map.insert("versions".into(), Value::Array(versions));
        map.insert("accounts".into(), Value::Array(accounts));
    }
    out
}

/// Reads a package upload, bounded by [`MAX_PACKAGE_BYTES`].
async fn read_package(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    let body = read_bounded(
        payload,
        MAX_PACKAGE_BYTES,
        "package_too_large",
        "the package",
    )
    .await
    .map_err(|e| e.with_param("package"))?;
    if body.is_empty() {
        return Err(ApiError::missing("package"));
    }
    Ok(body)
}

/// A yes/no query parameter: absent, `false` or `0` is no; `true`, `1` or
/// bare (`?force`) is yes.
fn query_flag(name: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(ApiError::invalid(
            name,
            format!("{name} must be true or false"),
        )),
    }
}

/// A yes/no parameter of the query string (see [`query_flag`]); given
/// twice is refused, as is a query string that is not form-encoded.
fn flag_param(req: &HttpRequest, name: &str) -> Result<bool, ApiError> {
    let mut found: Option<String> = None;
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if key == name {
            if found.is_some() {
                return Err(ApiError::invalid(
                    name,
                    format!("{name} is given more than once"),
                ));
            }
            found = Some(value.into_owned());
        }
    }
    query_flag(name, found.as_deref())
}

/// `POST /v1/admin/plugins?activate=true`, the package as the body.
#[utoipa::path(post, path = "/v1/admin/plugins", tag = "plugins", summary = "Install a plugin package", security(("admin_key" = [])), params(("activate" = Option<bool>, Query, description = "Make the new version active at once")), request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The `.ppkg` package: a signed gzip'd tar"), responses((status = 201, description = "Installed", body = super::openapi::PluginDetail), (status = 200, description = "That version was installed already", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn install(
    state: web::Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let activate = flag_param(&req, "activate")?;
    let bytes = read_package(payload).await?;
    let outcome = state.registry.install(&bytes, activate).await?;
    let view = state.registry.show(&outcome.plugin_id).await?;
    let mut body = plugin_detail_json(&view);
    if let Some(map) = body.as_object_mut() {
        map.insert(
            "installed".into(),
            json!({
                "version": outcome.version,
                "digest": outcome.digest,
                "trust": outcome.trust,
                "created": outcome.created,
                "active": outcome.active,
            }),
        );
    }
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(body))
}

/// `GET /v1/admin/plugins`
#[utoipa::path(get, path = "/v1/admin/plugins", tag = "plugins", summary = "List plugins", security(("admin_key" = [])), responses((status = 200, description = "The plugins", body = super::openapi::PluginList), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let views = state.registry.list().await?;
    let data: Vec<Value> = views.iter().map(plugin_json).collect();
    Ok(HttpResponse::Ok().json(json!({"object": "list", "data": data})))
}

/// `GET /v1/admin/plugins/{id}`
#[utoipa::path(get, path = "/v1/admin/plugins/{id}", tag = "plugins", summary = "Show a plugin", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)")), responses((status = 200, description = "The plugin", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn show(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let view = state.registry.show(&path).await?;
    Ok(HttpResponse::Ok().json(plugin_detail_json(&view)))
}

/// `POST /v1/admin/plugins/{id}/activate` with `{"version": "..."}`
#[utoipa::path(post, path = "/v1/admin/plugins/{id}/activate", tag = "plugins", summary = "Make a version active", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)")), request_body = super::openapi::ActivateBody, responses((status = 200, description = "The plugin", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn activate(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = parse_object(&read_body(payload).await?)?;
    let version = match body.get("version") {
        Some(Value::String(v)) if !v.is_empty() => v.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "version",
                "version must be a non-empty string",
            ))
        }
        None => return Err(ApiError::missing("version")),
    };
    state.registry.activate(&path, &version).await?;
    show(state, admin, path).await
}

/// `POST /v1/admin/plugins/{id}/rollback`
#[utoipa::path(post, path = "/v1/admin/plugins/{id}/rollback", tag = "plugins", summary = "Go back to the previous version", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)")), responses((status = 200, description = "The plugin", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn rollback(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.registry.rollback(&path).await?;
    show(state, admin, path).await
}

/// `POST /v1/admin/plugins/{id}/disable`
#[utoipa::path(post, path = "/v1/admin/plugins/{id}/disable", tag = "plugins", summary = "Refuse the plugin's calls", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)")), responses((status = 200, description = "The plugin", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn disable(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.registry.set_disabled(&path, true).await?;
    show(state, admin, path).await
}

/// `POST /v1/admin/plugins/{id}/enable`
#[utoipa::path(post, path = "/v1/admin/plugins/{id}/enable", tag = "plugins", summary = "Accept the plugin's calls again", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)")), responses((status = 200, description = "The plugin", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn enable(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.registry.set_disabled(&path, false).await?;
    show(state, admin, path).await
}

/// `DELETE /v1/admin/plugins/{id}?force=true`
#[utoipa::path(delete, path = "/v1/admin/plugins/{id}", tag = "plugins", summary = "Remove a plugin", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)"), ("force" = Option<bool>, Query, description = "Remove it even while accounts use it")), responses((status = 200, description = "Removed", body = super::openapi::PluginDeleted), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn remove(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let force = flag_param(&req, "force")?;
    let orphaned = state.registry.remove(&path, force).await?;
    Ok(HttpResponse::Ok().json(json!({
        "object": "plugin",
        "id": path.as_str(),
        "deleted": true,
        "accounts_without_plugin": orphaned,
    })))
}

/// `DELETE /v1/admin/plugins/{id}/versions/{version}`
#[utoipa::path(delete, path = "/v1/admin/plugins/{id}/versions/{version}", tag = "plugins", summary = "Remove an inactive version", security(("admin_key" = [])), params(("id" = String, Path, description = "The plugin's id (`adyen`)"), ("version" = String, Path, description = "The version")), responses((status = 200, description = "The plugin", body = super::openapi::PluginDetail), (status = "4XX", description = "The request is refused", body = super::openapi::ErrorBody), (status = "5XX", description = "Passerelle failed", body = super::openapi::ErrorBody)))]
pub async fn remove_version(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, version) = path.into_inner();
    state.registry.remove_version(&id, &version).await?;
    show(state, admin, web::Path::from(id)).await
}
