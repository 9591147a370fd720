//! The API described: an OpenAPI 3.1 document built from the handlers'
//! `#[utoipa::path]` attributes and the bodies' `ToSchema` derives, served
//! at `/openapi.json`, and a docs page at `/docs` (Swagger UI).
//!
//! The docs page's assets come from the npm package `swagger-ui-dist`,
//! fetched by `scripts/docs-ui.sh` into `target/docs-ui/` (or any folder
//! named by `PASSERELLE_DOCS_ASSETS`) and served by the host, never from a
//! CDN: the page works offline. Without them `/docs` answers 503 saying how
//! to fetch them, so building the host never needs npm.
//!
//! Shapes the handlers build as JSON by hand (the admin API's records, the
//! plugin listing) are described here by schema-only types.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// The pinned `swagger-ui-dist` version `scripts/docs-ui.sh` installs.
const SWAGGER_UI_DIST: &str = "5.35.0";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Passerelle",
        description = "Payment plugin host: routes storefront checkouts to sandboxed WebAssembly PSP connectors.\n\n\
            The storefront API (`/v1/payments`) takes a merchant's secret key (`Authorization: Bearer sk_…`); \
            the admin API (`/v1/admin`) an admin key (`Authorization: Bearer ak_…`). \
            Amounts are integers in the currency's minor units. \
            Errors are `{\"error\":{\"type\",\"code\",\"message\",\"param\",\"request_id\"}}`; bad input is a 4xx naming the field.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::health,
        super::health::live,
        super::health::ready,
        super::health::metrics_admin,
        super::payments::create,
        super::payments::get,
        super::payments::events,
        super::payments::capture,
        super::payments::cancel,
        super::payments::sync,
        super::payments::create_refund,
        super::payments::list_refunds,
        super::shopper_return,
        super::webhook,
        super::admin::create_merchant,
        super::admin::list_merchants,
        super::admin::get_merchant,
        super::admin::create_api_key,
        super::admin::list_api_keys,
        super::admin::revoke_api_key,
        super::admin::create_account,
        super::admin::list_accounts,
        super::admin::get_account,
        super::admin::update_account,
        super::plugins::list,
        super::plugins::install,
        super::plugins::show,
        super::plugins::remove,
        super::plugins::activate,
        super::plugins::rollback,
        super::plugins::disable,
        super::plugins::enable,
        super::plugins::remove_version,
        super::reconciliation::backlog,
    ),
    components(schemas(ErrorBody, ErrorObject)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "payments", description = "The storefront API: payments, captures, cancels, refunds"),
        (name = "shopper", description = "The shopper's browser and the providers' notifications"),
        (name = "merchants", description = "Admin API: merchants, their API keys and connector accounts"),
        (name = "plugins", description = "Admin API: connector plugins and their versions"),
        (name = "operations", description = "Health and the janitor's backlog"),
    )
)]
struct ApiDoc;

/// `secret_key`: a merchant's storefront key; `admin_key`: an operator's.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_…")
                    .description(Some(
                        "A merchant's storefront secret key, made by `POST /v1/admin/merchants/{id}/api_keys`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ak_…")
                    .description(Some(
                        "An operator's admin key, made by `passerelle admin-key create` next to the database",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_string();
        doc
    })
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/openapi.json", web::get().to(openapi_json))
        .route("/docs", web::get().to(docs_page))
        .route("/docs/", web::get().to(docs_page))
        .route("/docs/{file}", web::get().to(docs_asset));
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

// ----- the docs page ----------------------------------------------------------------

/// Where the docs page's assets are: `PASSERELLE_DOCS_ASSETS`, else where
/// `scripts/docs-ui.sh` puts them in this checkout.
fn assets_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match std::env::var_os("PASSERELLE_DOCS_ASSETS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/docs-ui/node_modules/swagger-ui-dist"
        )),
    })
}

/// The files of `swagger-ui-dist` the page uses, and their media types.
const ASSETS: [(&str, &str); 5] = [
    ("swagger-ui.css", "text/css; charset=utf-8"),
    ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    (
        "swagger-ui-standalone-preset.js",
        "text/javascript; charset=utf-8",
    ),
    ("favicon-32x32.png", "image/png"),
    ("favicon-16x16.png", "image/png"),
];

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Passerelle API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/swagger-ui-standalone-preset.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;

const DOCS_INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout",
  validatorUrl: null,
  persistAuthorization: false
});
"##;

fn assets_missing() -> HttpResponse {
    let dir = assets_dir().display();
    HttpResponse::ServiceUnavailable()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Passerelle API docs: assets missing</title></head>\
             <body><h1>The docs page's assets are not installed</h1>\
             <p>This server looks for Swagger UI (npm package <code>swagger-ui-dist@{SWAGGER_UI_DIST}</code>) in <code>{dir}</code>.</p>\
             <p>Fetch them with <code>bash scripts/docs-ui.sh</code> (run by <code>scripts/test</code> and <code>scripts/demo</code>), \
             or point <code>PASSERELLE_DOCS_ASSETS</code> at a folder holding them, then reload.</p>\
             <p>The API description itself is always served at <a href=\"/openapi.json\">/openapi.json</a>.</p></body></html>"
        ))
}

async fn docs_page() -> HttpResponse {
    let bundle = assets_dir().join("swagger-ui-bundle.js");
    if !tokio::fs::try_exists(&bundle).await.unwrap_or(false) {
        return assets_missing();
    }
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

async fn docs_asset(file: web::Path<String>) -> HttpResponse {
    if file.as_str() == "init.js" {
        return HttpResponse::Ok()
            .content_type("text/javascript; charset=utf-8")
            .body(DOCS_INIT);
    }
    let Some((name, media_type)) = ASSETS.iter().find(|(name, _)| *name == file.as_str()) else {
        return actix_web::ResponseError::error_response(&super::error::ApiError::new(
            actix_web::http::StatusCode::NOT_FOUND,
            "invalid_request_error",
            "route_not_found",
            format!("no docs asset {:?}", file.as_str()),
        ));
    };
    match tokio::fs::read(assets_dir().join(name)).await {
        Ok(bytes) => HttpResponse::Ok()
            .content_type(*media_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => assets_missing(),
        Err(error) => {
            tracing::error!(%error, asset = name, "docs asset unreadable");
            assets_missing()
        }
    }
}

// ----- shared schemas -----------------------------------------------------------------

/// Every error answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"type": "invalid_request_error", "code": "parameter_invalid",
    "message": "amount must be a positive integer in the currency's minor units, at most 100000000000",
    "param": "amount"}}))]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// `invalid_request_error` (4xx: the request), `authentication_error`
    /// (401), `connector_error` (the connector or provider), `api_error`
    /// (5xx: Passerelle).
    #[serde(rename = "type")]
    #[schema(example = "invalid_request_error")]
    pub kind: String,
    /// What went wrong, for programs: `parameter_invalid`,
    /// `parameter_missing`, `resource_missing`, `idempotency_key_reused`,
    /// `authorization_expired`, a provider's decline code, …
    #[schema(example = "parameter_invalid")]
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, as a dotted path (`shopper.browser.language`).
    #[schema(example = "amount")]
    pub param: Option<String>,
    /// The request's id, as in the `X-Request-Id` answer header and the logs.
    pub request_id: Option<String>,
}

/// `capture_method`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // only describes the field: the handlers parse `CaptureMethod`
#[serde(rename_all = "snake_case")]
pub enum CaptureMethodName {
    Automatic,
    Manual,
    AutomaticDelayed,
}

/// `next_action`: what the shopper must do before the payment goes on.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "redirect", "url": "https://psp.example/3ds/abc", "method": "GET"}))]
pub struct NextAction {
    /// `redirect`: send the shopper's browser to `url`.
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    /// `GET`, or `POST` with `form` as the form's fields.
    pub method: String,
    pub form: Option<BTreeMap<String, String>>,
}

/// `three_ds`: how 3-D Secure went, where the provider tells it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "authenticated", "liability_shift": true, "version": "2.2.0", "eci": "05"}))]
pub struct ThreeDs {
    /// `authenticated`, `attempted`, `not_enrolled`, `failed`, `unavailable`, `not_performed`.
    pub status: String,
    pub liability_shift: Option<bool>,
    pub version: Option<String>,
    pub eci: Option<String>,
}

/// `payment_method` as shown: its type, and a card's last four digits.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "card", "card": {"last4": "1111"}}))]
pub struct PaymentMethodShown {
    #[serde(rename = "type")]
    pub kind: String,
    pub card: Option<CardShown>,
}

#[derive(Serialize, ToSchema)]
pub struct CardShown {
    pub last4: String,
}

/// A list answer of payments' events.
#[derive(Serialize, ToSchema)]
pub struct EventList {
    /// `list`.
    pub object: String,
    pub data: Vec<crate::payments::EventView>,
}

/// A list answer of refunds.
#[derive(Serialize, ToSchema)]
pub struct RefundList {
    /// `list`.
    pub object: String,
    pub data: Vec<crate::payments::RefundView>,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok", "database": "ok", "plugins": ["adyen", "dummy"], "version": "0.1.0"}))]
pub struct Health {
    /// `ok`, or `degraded` (then the answer is 503).
    pub status: String,
    /// `ok` or `unreachable`.
    pub database: String,
    /// The connector plugins loaded.
    pub plugins: Vec<String>,
    pub version: String,
}

/// `GET /health/live`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "live"}))]
pub struct Live {
    /// `live`.
    pub status: String,
}

/// `GET /health/ready`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "not_ready": [], "checks": {"database": "ok", "migrations": "ok",
    "plugins": {"loaded": ["adyen", "dummy"], "not_loaded": []}, "shutting_down": false}}))]
pub struct Ready {
    /// `ready` or `not_ready` (then the answer is 503).
    pub status: String,
    /// What is not ready: `database`, `migrations`, `plugins`, `shutting_down`.
    pub not_ready: Vec<String>,
    pub checks: ReadyChecks,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyChecks {
    /// `ok` or `unreachable`.
    pub database: String,
    /// `ok`, `pending` or `unknown`.
    pub migrations: String,
    pub plugins: ReadyPlugins,
    pub shutting_down: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyPlugins {
    pub loaded: Vec<String>,
    /// Active, enabled plugins this node could not load.
    pub not_loaded: Vec<String>,
}

// ----- admin API schemas --------------------------------------------------------------

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "mer_7Hc2", "object": "merchant", "name": "Boulangerie Ada",
    "default_connector": "adyen-eu", "created_at": "2026-01-05T10:00:00Z"}))]
pub struct Merchant {
    pub id: String,
    /// `merchant`.
    pub object: String,
    pub name: String,
    /// The connector account used by payments that name none.
    pub default_connector: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct MerchantList {
    /// `list`.
    pub object: String,
    pub data: Vec<Merchant>,
}

/// A storefront API key: never the key itself, except once in the answer
/// that made it (`key`).
#[derive(Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    /// `api_key`.
    pub object: String,
    pub merchant_id: Option<String>,
    /// `secret`.
    pub kind: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The clear key: only in the answer of its creation.
    pub key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    /// `list`.
    pub object: String,
    pub data: Vec<ApiKey>,
}

/// A connector account: secret credential fields shown as `{"set": true}`,
/// plain settings by value.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "acc_9f1", "object": "connector_account", "merchant_id": "mer_7Hc2",
    "name": "adyen-eu", "connector": "adyen", "environment": "test", "base_url": null,
    "credentials": {"api_key": {"set": true}, "merchant_account": "AdaECOM"},
    "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-01-05T10:00:00Z"}))]
pub struct ConnectorAccount {
    pub id: String,
    /// `connector_account`.
    pub object: String,
    pub merchant_id: String,
    pub name: String,
    /// The plugin id.
    pub connector: String,
    /// `test` or `live`.
    pub environment: String,
    pub base_url: Option<String>,
    /// Field name to its value (plain settings) or `{"set": true}` (secrets).
    pub credentials: BTreeMap<String, serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectorAccountList {
    /// `list`.
    pub object: String,
    pub data: Vec<ConnectorAccount>,
}

/// A connector plugin. When a version of it is loaded on this node, the
/// answer also carries its manifest and runtime fields (`name`, `wit`,
/// `contract`, `operations`, `payment_methods`, `currencies`,
/// `credential_fields`, `egress`, `limits`, `compiled`, `stats`).
#[derive(Serialize, ToSchema)]
pub struct Plugin {
    /// `plugin`.
    pub object: String,
    pub id: String,
    /// `serving`, `disabled`, or `unavailable` (the active version cannot
    /// be loaded on this node).
    pub state: String,
    pub version: Option<String>,
    pub active_version: Option<String>,
    pub previous_version: Option<String>,
    pub disabled: bool,
    pub publisher: Option<String>,
    pub digest: Option<String>,
    pub trust: Option<String>,
    pub versions_count: u64,
    pub accounts_count: u64,
    pub updated_at: String,
    pub operations: Option<Vec<String>>,
    pub payment_methods: Option<Vec<String>>,
    pub currencies: Option<Vec<String>>,
    pub credential_fields: Option<Vec<CredentialField>>,
}

#[derive(Serialize, ToSchema)]
pub struct CredentialField {
    pub name: String,
    pub label: String,
    pub secret: bool,
    pub required: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PluginList {
    /// `list`.
    pub object: String,
    pub data: Vec<Plugin>,
}

/// A plugin with its versions and the accounts using it.
#[derive(Serialize, ToSchema)]
pub struct PluginDetail {
    #[serde(flatten)]
    pub plugin: Plugin,
    pub versions: Vec<PluginVersion>,
    pub accounts: Vec<PluginAccount>,
    /// Only in the answer of an install: what it did.
    pub installed: Option<Installed>,
}

#[derive(Serialize, ToSchema)]
pub struct PluginVersion {
    pub version: String,
    pub digest: String,
    pub publisher: String,
    pub trust: String,
    pub signed_by: Option<String>,
    /// `bundled` or `uploaded`.
    pub source: String,
    pub installed_at: String,
    pub active: bool,
    /// Whether this node has it compiled and loaded.
    pub loaded: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PluginAccount {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    pub environment: String,
}

#[derive(Serialize, ToSchema)]
pub struct Installed {
    pub version: String,
    pub digest: String,
    pub trust: String,
    /// False when that version was installed already (then the answer is 200).
    pub created: bool,
    pub active: bool,
}

/// `DELETE /v1/admin/plugins/{id}`.
#[derive(Serialize, ToSchema)]
pub struct PluginDeleted {
    /// `plugin`.
    pub object: String,
    pub id: String,
    pub deleted: bool,
    /// Accounts that name the removed plugin (with `force=true`).
    pub accounts_without_plugin: Vec<String>,
}

/// `POST /v1/admin/plugins/{id}/activate`.
#[derive(Serialize, ToSchema)]
pub struct ActivateBody {
    /// An installed version.
    pub version: String,
}

/// `GET /v1/admin/reconciliation`.
#[derive(Serialize, ToSchema)]
pub struct Reconciliation {
    /// `reconciliation`.
    pub object: String,
    /// How many items are listed.
    pub unsettled: u64,
    /// Idempotency claims whose request never finished.
    pub stale_idempotency_claims: u64,
    pub data: Vec<ReconciliationEntry>,
}

/// A payment or refund whose outcome the janitor is settling.
#[derive(Serialize, ToSchema)]
pub struct ReconciliationEntry {
    /// `payment` or `refund`.
    pub object: String,
    pub id: String,
    pub payment_id: String,
    pub connector: String,
    pub status: String,
    /// What is unknown or overdue.
    pub waiting_for: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    pub created_at: String,
}
