//! The API described: `/openapi.json` (OpenAPI 3.1, generated from the
//! code) names every route with its security, and its schemas match what
//! the server really answers; `/docs` serves Swagger UI from local files,
//! or a 503 saying how to fetch them. (Schemathesis, in `scripts/test`,
//! fuzzes every operation against the same document.)

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

/// Every route `api::configure` and `api::health::configure` declare, as
/// the document must name it.
const ROUTES: &[(&str, &str)] = &[
    ("get", "/health"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("post", "/v1/payments"),
    ("get", "/v1/payments/{id}"),
    ("get", "/v1/payments/{id}/events"),
    ("post", "/v1/payments/{id}/capture"),
    ("post", "/v1/payments/{id}/cancel"),
    ("post", "/v1/payments/{id}/sync"),
    ("post", "/v1/payments/{id}/refunds"),
    ("get", "/v1/payments/{id}/refunds"),
    ("get", "/v1/payments/{id}/return"),
    ("post", "/v1/payments/{id}/return"),
    ("post", "/v1/webhooks/{account}"),
    ("get", "/v1/admin/plugins"),
    ("post", "/v1/admin/plugins"),
    ("get", "/v1/admin/plugins/{id}"),
    ("delete", "/v1/admin/plugins/{id}"),
    ("post", "/v1/admin/plugins/{id}/activate"),
    ("post", "/v1/admin/plugins/{id}/rollback"),
    ("post", "/v1/admin/plugins/{id}/disable"),
    ("post", "/v1/admin/plugins/{id}/enable"),
    ("delete", "/v1/admin/plugins/{id}/versions/{version}"),
    ("get", "/v1/admin/reconciliation"),
    ("post", "/v1/admin/merchants"),
    ("get", "/v1/admin/merchants"),
    ("get", "/v1/admin/merchants/{id}"),
    ("post", "/v1/admin/merchants/{id}/api_keys"),
    ("get", "/v1/admin/merchants/{id}/api_keys"),
    ("post", "/v1/admin/api_keys/{id}/revoke"),
    ("post", "/v1/admin/merchants/{id}/connector_accounts"),
    ("get", "/v1/admin/merchants/{id}/connector_accounts"),
    ("get", "/v1/admin/connector_accounts/{id}"),
    ("patch", "/v1/admin/connector_accounts/{id}"),
];

async fn document(server: &TestServer) -> Value {
    // No Authorization header: the document is public.
    let resp = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    resp.json().await.unwrap()
}

fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
    let s = &doc["components"]["schemas"][name];
    assert!(s.is_object(), "no schema {name}");
    s
}

fn property_names(schema: &Value) -> BTreeSet<String> {
    schema["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_names_every_route_with_its_security_and_shapes() {
    let server = TestServer::start(Backend::Sqlite).await;
    let doc = document(&server).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "Passerelle");

    // Every route, and nothing the server does not serve.
    let mut named = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                named.insert((method.clone(), path.clone()));
            }
        }
    }
    let routes: BTreeSet<_> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(named, routes);

    // Security schemes: bearer secret key, bearer admin key.
    let schemes = &doc["components"]["securitySchemes"];
    for name in ["secret_key", "admin_key"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        let security: Vec<&str> = op["security"]
            .as_array()
            .map(|s| {
                s.iter()
                    .flat_map(|r| r.as_object().unwrap().keys())
                    .map(String::as_str)
                    .collect()
            })
            .unwrap_or_default();
        let expected: &[&str] = if path.starts_with("/v1/admin") || *path == "/metrics" {
            &["admin_key"]
        } else if path.starts_with("/v1/payments") && !path.ends_with("/return") {
            &["secret_key"]
        } else {
            &[]
        };
        assert_eq!(security, expected, "{method} {path}");
        // Every operation documents its errors with the error shape.
        if !path.starts_with("/health") {
            assert_eq!(
                op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
    }

    // The request bodies are the handlers' own types, with examples.
    let create = &doc["paths"]["/v1/payments"]["post"];
    assert_eq!(
        create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/CreatePayment"
    );
    let create_schema = schema(&doc, "CreatePayment");
    assert_eq!(create_schema["example"]["currency"], "EUR");
    let required: BTreeSet<&str> = create_schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required,
        BTreeSet::from([
            "amount",
            "currency",
            "reference",
            "payment_method",
            "return_url"
        ])
    );
    assert_eq!(
        property_names(schema(&doc, "Browser")),
        [
            "accept_header",
            "user_agent",
            "language",
            "color_depth",
            "screen_height",
            "screen_width",
            "time_zone_offset",
            "java_enabled",
            "javascript_enabled"
        ]
        .into_iter()
        .map(String::from)
        .collect()
    );
    assert!(schema(&doc, "ErrorBody")["example"]["error"]["param"].is_string());

    // What the server answers has exactly the fields the document lists.
    let body = payment_body(4200, "EUR", "4111111111111111", "manual");
    let (status, payment) = server.post("/v1/payments", body).await;
    assert_eq!(status, 201, "{payment}");
    let answered: BTreeSet<String> = payment.as_object().unwrap().keys().cloned().collect();
    assert_eq!(answered, property_names(schema(&doc, "Payment")));
    let (status, error) = server
        .post("/v1/payments", serde_json::json!({"amount": 0}))
        .await;
    assert_eq!(status, 400);
    let error_fields: BTreeSet<String> = error["error"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "request_id")
        .cloned()
        .collect();
    assert!(error_fields.is_subset(&property_names(schema(&doc, "ErrorObject"))));
    let (status, merchants) = server.admin_get("/v1/admin/merchants").await;
    assert_eq!(status, 200);
    let merchant: BTreeSet<String> = merchants["data"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(merchant, property_names(schema(&doc, "Merchant")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_serves_swagger_ui_from_local_files_or_says_how_to_fetch_them() {
    // Files standing for swagger-ui-dist's: the host serves what the folder
    // holds, and only the files the page uses.
    let assets = std::env::temp_dir().join(format!("passerelle-docs-{}", rand_suffix()));
    std::fs::create_dir_all(&assets).unwrap();
    std::fs::write(
        assets.join("swagger-ui-bundle.js"),
        "/* bundle */ window.SwaggerUIBundle = function () {};",
    )
    .unwrap();
    std::fs::write(assets.join("swagger-ui.css"), "body { margin: 0 }").unwrap();
    std::fs::write(assets.join("package.json"), "{}").unwrap();
    // Each server reads the variable when it starts; tests in this file
    // that start servers only do so here.
    std::env::set_var("PASSERELLE_DOCS_ASSETS", &assets);
    let server = TestServer::start(Backend::Sqlite).await;
    let get = |path: &str| {
        let request = server.http.get(server.url(path));
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status().as_u16();
            let media = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, media, resp.text().await.unwrap())
        }
    };
    let (status, media, page) = get("/docs").await;
    assert_eq!(status, 200, "{page}");
    assert!(media.starts_with("text/html"), "{media}");
    assert!(
        page.contains("src=\"/docs/swagger-ui-bundle.js\""),
        "{page}"
    );
    assert!(page.contains("href=\"/docs/swagger-ui.css\""), "{page}");
    // Offline: nothing is loaded from another host.
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    let (status, media, js) = get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(status, 200);
    assert!(media.starts_with("text/javascript"), "{media}");
    assert_eq!(js, "/* bundle */ window.SwaggerUIBundle = function () {};");
    let (status, media, css) = get("/docs/swagger-ui.css").await;
    assert_eq!((status, css.as_str()), (200, "body { margin: 0 }"));
    assert!(media.starts_with("text/css"), "{media}");
    let (status, _, init) = get("/docs/init.js").await;
    assert_eq!(status, 200);
    assert!(init.contains("url: \"/openapi.json\""), "{init}");
    // Files of the folder the page does not use, and paths out of it.
    for path in [
        "/docs/package.json",
        "/docs/..%2F..%2FCargo.toml",
        "/docs/%2e%2e",
    ] {
        let (status, media, body) = get(path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(media.starts_with("application/json"), "{path}: {media}");
    }
    drop(server);

    // Without the assets: 503, saying how to fetch them.
    let empty = assets.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::env::set_var("PASSERELLE_DOCS_ASSETS", &empty);
    let server = TestServer::start(Backend::Sqlite).await;
    for path in ["/docs", "/docs/swagger-ui-bundle.js"] {
        let resp = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 503, "{path}");
        let body = resp.text().await.unwrap();
        assert!(body.contains("scripts/docs-ui.sh"), "{body}");
        assert!(body.contains("swagger-ui-dist@"), "{body}");
    }
    // The document itself does not depend on them.
    let doc = document(&server).await;
    assert!(doc["paths"]["/v1/payments"].is_object());
    let _ = std::fs::remove_dir_all(&assets);
}

/// Found by Schemathesis: a NUL in a merchant's name was a 500 on
/// PostgreSQL (its text cannot hold one). Control characters in the admin
/// API's names and URLs are a 400 naming the field, on both databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_names_and_urls_with_control_characters_are_refused_by_name() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let server = TestServer::start(backend).await;
        let admin_post = |path: &str, body: Value| {
            let request = server
                .http
                .post(server.url(path))
                .bearer_auth(&server.admin_key)
                .json(&body);
            async move {
                let resp = request.send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<Value>().await.unwrap())
            }
        };
        for name in ["Boulangerie\u{0}Ada", "Boulangerie\u{1b}[31mAda", "Ada\n"] {
            let (status, body) =
                admin_post("/v1/admin/merchants", serde_json::json!({ "name": name })).await;
            assert_eq!(status, 400, "{backend:?} {name:?}: {body}");
            assert_eq!(body["error"]["param"], "name", "{body}");
        }
        let (status, merchant) = admin_post(
            "/v1/admin/merchants",
            serde_json::json!({ "name": "Boulangerie Ada" }),
        )
        .await;
        assert_eq!(status, 201, "{merchant}");
        let id = merchant["id"].as_str().unwrap();
        let (status, body) = admin_post(
            &format!("/v1/admin/merchants/{id}/connector_accounts"),
            serde_json::json!({
                "name": "dummy-eu", "connector": "dummy", "environment": "test",
                "base_url": "http://127.0.0.1:9/\u{0}x", "credentials": {},
            }),
        )
        .await;
        assert_eq!(status, 400, "{backend:?}: {body}");
        assert_eq!(body["error"]["param"], "base_url", "{body}");
    }
}
