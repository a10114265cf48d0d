//! The HTTP contract: health, stats, configuration, OpenAPI, Swagger UI, CORS and the error shape.
//! Most of it runs on every host; what only a node has (its own OpenAPI document with WebSocket
//! routes, socket-level limits, flags, its SQLite file) is tested on the node alone.

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Deployment, HostKind, NodeOptions, TestNode};

on_every_host!(
    health_reports_each_component,
    stats_are_real_counts_on_an_empty_store,
    the_websocket_config_points_at_this_host,
    every_error_has_the_contract_shape,
    a_sane_client_request_id_is_kept_and_an_insane_one_replaced,
    cors_follows_allowed_origins,
    urls_and_headers_over_the_limits_are_refused_in_the_contract_shape,
    a_preflight_from_an_unknown_origin_is_not_allowed,
);

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["error"], code, "error code in {body}");
    assert!(body["detail"].as_str().is_some_and(|detail| !detail.is_empty()), "detail in {body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "request_id in {body}");
    let text = body.to_string().to_lowercase();
    assert!(!text.contains("panicked") && !text.contains("backtrace") && !text.contains(".rs:"), "no internals in {body}");
}

async fn health_reports_each_component(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let response = reqwest::get(host.url("/health")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "healthy");
    assert_eq!(health["services"]["store"]["status"], "up");
    assert_eq!(health["services"]["store"]["backend"], host.backend());
    assert_eq!(health["services"]["activity"]["status"], "up");
    assert_eq!(health["services"]["activity"]["mode"], host.recorder_mode());
    assert_eq!(health["services"]["realtime"]["connections"], 0);
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_seconds"].is_u64());
    assert!(health["timestamp"].as_str().unwrap().ends_with('Z'));
}

async fn stats_are_real_counts_on_an_empty_store(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let stats: Value = reqwest::get(host.url("/api/v1/stats")).await.unwrap().json().await.unwrap();
    for field in ["totalNodes", "totalEdges", "filesProcessed", "databaseTables", "activeQueries", "activeConnections"] {
        assert_eq!(stats[field], 0, "{field} in {stats}");
    }
    assert_eq!(stats["nodeTypes"], json!({}));
    assert_eq!(stats["trends"]["nodes"], json!({"value": 0.0, "isPositive": true}));
    assert_eq!(stats["trends"]["files"], json!({"value": 0.0, "isPositive": true}));

    let graph: Value = reqwest::get(host.url("/api/v1/graph/stats")).await.unwrap().json().await.unwrap();
    assert_eq!(graph, json!({"nodes": 0, "edges": 0, "node_types": {}, "relationship_types": {}}));
}

#[tokio::test]
async fn stats_count_what_the_store_holds() {
    // Two days ago the graph had 2 nodes from 1 file: that snapshot, written straight into the SQLite
    // file, is the trends' baseline.
    let node = TestNode::start().await;
    let two_days_ago = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 2 * 86_400_000;
    rusqlite::Connection::open(&node.db).unwrap().execute("INSERT INTO stats_snapshots VALUES (?1, 2, 0, 1)", [two_days_ago]).unwrap();
    let files = json!({"files": [
        {"filename": "a.sql", "content": "CREATE TABLE raw.orders (id INT); CREATE TABLE raw.users (id INT);"},
        {"filename": "b.sql", "content": "CREATE VIEW gold.sales AS SELECT o.id FROM raw.orders o JOIN raw.users u ON u.id = o.id;"},
    ]});
    let result: Value = reqwest::Client::new().post(node.url("/api/v1/ingest")).json(&files).send().await.unwrap().json().await.unwrap();
    assert_eq!(result["files_processed"], 2, "{result}");
    let graph: Value = reqwest::get(node.url("/api/v1/graph/stats")).await.unwrap().json().await.unwrap();
    // Two tables and a view, each with its `id` column; the view derives from both tables.
    assert_eq!(graph["node_types"], json!({"Table": 2, "View": 1, "Column": 3}));
    assert_eq!(graph["relationship_types"]["DERIVES"], 3, "{graph}");
    assert_eq!(graph["relationship_types"]["CONTAINS"], 3, "{graph}");

    let stats = node.poll_json("/api/v1/stats", |stats| stats["totalNodes"] == 6).await;
    assert_eq!(stats["totalEdges"], graph["edges"]);
    assert_eq!(stats["filesProcessed"], 2);
    assert_eq!(stats["databaseTables"], 2);
    assert_eq!(stats["nodeTypes"], graph["node_types"]);
    assert_eq!(stats["trends"]["nodes"], json!({"value": 200.0, "isPositive": true}));
    assert_eq!(stats["trends"]["files"], json!({"value": 100.0, "isPositive": true}));
    // The node keeps taking snapshots of its own for future trends.
    let snapshots =
        || -> i64 { support::open_store(&node.db).query_row("SELECT COUNT(*) FROM stats_snapshots", [], |row| row.get(0)).unwrap() };
    let deadline = std::time::Instant::now() + support::PATIENCE;
    while snapshots() < 2 {
        assert!(std::time::Instant::now() < deadline, "the node stored no snapshot");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn the_websocket_config_points_at_this_host(kind: HostKind) {
    let host = Deployment::start(kind, NodeOptions::default()).await;
    let config: Value = reqwest::get(host.url("/api/v1/config/websocket")).await.unwrap().json().await.unwrap();
    assert_eq!(config["websocket_url"], format!("ws://{}/api/v1/ws/dashboard", host.authority()));
    assert_eq!(config["stats_interval_seconds"], 5);

    let public = Deployment::start(kind, NodeOptions::default().env("PUBLIC_WEBSOCKET_URL", "wss://dash.example.com/ws")).await;
    let config: Value = reqwest::get(public.url("/api/v1/config/websocket")).await.unwrap().json().await.unwrap();
    assert_eq!(config["websocket_url"], "wss://dash.example.com/ws");
}

#[tokio::test]
async fn openapi_documents_every_route_and_swagger_ui_is_served_locally() {
    let node = TestNode::start().await;
    let api: Value = reqwest::get(node.url("/openapi.json")).await.unwrap().json().await.unwrap();
    assert!(api["openapi"].as_str().unwrap().starts_with("3.1"));
    let expected = [
        ("/health", "get"),
        ("/api/v1/stats", "get"),
        ("/api/v1/graph/stats", "get"),
        ("/api/v1/activity/recent", "get"),
        ("/api/v1/activity", "post"),
        ("/api/v1/metrics/activity", "get"),
        ("/api/v1/metrics/events", "get"),
        ("/api/v1/config/websocket", "get"),
        ("/api/v1/files/upload", "post"),
        ("/api/v1/ingest", "post"),
        ("/api/v1/files", "get"),
        ("/api/v1/files/stats", "get"),
        ("/api/v1/files/{file_id}/warnings", "get"),
        ("/api/v1/lineage/{node}", "get"),
        ("/api/v1/search", "get"),
        ("/api/chat/text", "post"),
        ("/api/chat/semantic", "post"),
        ("/api/chat/graph", "post"),
        ("/api/chat/deep", "post"),
        ("/api/chat/deep/stream", "post"),
        ("/api/chat/title", "post"),
        ("/api/chat/session/{id}", "delete"),
        ("/admin/restart", "post"),
        ("/admin/restart", "options"),
        ("/admin/broadcast", "post"),
        ("/api/v1/ws/dashboard", "get"),
        ("/admin/ws/dashboard", "get"),
        ("/ws/dashboard", "get"),
        ("/@connections/{connection_id}", "post"),
        ("/@connections/{connection_id}", "get"),
        ("/@connections/{connection_id}", "delete"),
    ];
    for (path, method) in expected {
        assert!(api["paths"][path][method].is_object(), "{method} {path} missing from the OpenAPI document");
    }
    let documented: usize = api["paths"].as_object().unwrap().values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(documented, expected.len(), "every documented operation is expected, and only those");
    for schema in [
        "ErrorBody",
        "DashboardStats",
        "ServerMessage",
        "ActivityEvent",
        "HealthReport",
        "IngestionResult",
        "LineageGraph",
        "GraphNode",
        "ChatRequest",
        "ChatResponse",
    ] {
        assert!(api["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }

    let committed: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).expect("docs/openapi.json is JSON");
    assert!(
        committed == api,
        "docs/openapi.json is stale: regenerate it with `cargo run -p tributary-node -- --print-openapi > docs/openapi.json`"
    );

    let page = reqwest::get(node.url("/docs/")).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "Swagger UI page");
    assert!(!html.contains("https://"), "no CDN: every asset comes from the binary");
    let initializer = reqwest::get(node.url("/docs/swagger-initializer.js")).await.unwrap().text().await.unwrap();
    assert!(initializer.contains("/openapi.json"));
    let bundle = reqwest::get(node.url("/docs/swagger-ui-bundle.js")).await.unwrap();
    assert_eq!(bundle.status(), StatusCode::OK);
}

async fn every_error_has_the_contract_shape(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();

    let response = client.get(node.url("/api/v1/nothing-here")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, "not_found");
    assert_eq!(body["request_id"], request_id.as_str(), "the body's request id is the header's");

    let response = client.delete(node.url("/api/v1/stats")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(response.headers().contains_key("allow"));
    assert_error_shape(&response.json().await.unwrap(), "method_not_allowed");

    let response = client.post(node.url("/api/v1/activity")).header("content-type", "text/plain").body("hello").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error_shape(&response.json().await.unwrap(), "unsupported_media_type");

    let response =
        client.post(node.url("/api/v1/activity")).header("content-type", "application/json").body("{\"type\": ").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error_shape(&response.json().await.unwrap(), "malformed_json");

    let response = client.post(node.url("/api/v1/activity")).json(&json!({"type": "", "message": 5})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, "validation_error");
    assert_eq!(body["errors"][0]["field"], "message");

    let response = client.get(node.url("/api/v1/metrics/events?limit=lots")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_error_shape(&body, "validation_error");
    assert_eq!(body["errors"][0]["field"], "limit");

    // Over the route's 16 KiB limit.
    let big = json!({"type": "x", "message": "m".repeat(20 * 1024)});
    let response = client.post(node.url("/api/v1/activity")).json(&big).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_error_shape(&response.json().await.unwrap(), "payload_too_large");
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_from_its_headers() {
    let node = TestNode::start().await;
    // Over the global 1 MiB limit, and over the 16 KiB the activity route takes though under the
    // global limit: refused from the headers alone, before any of the body is sent.
    for declared in [2 * 1024 * 1024, 100 * 1024] {
        let mut stream = tokio::net::TcpStream::connect(node.addr).await.unwrap();
        let head = format!(
            "POST /api/v1/activity HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n",
            node.addr,
        );
        tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(support::PATIENCE, tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{declared}: {answer}");
        let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_error_shape(&body, "payload_too_large");
    }
}

#[tokio::test]
async fn bind_and_db_come_from_flags_over_the_environment_and_default_to_data() {
    let folder = tempfile::tempdir().unwrap();
    let chosen = folder.path().join("chosen/store.db");
    let decoy = folder.path().join("decoy.db");
    let node = TestNode::start_with(
        NodeOptions::default().env("TRIBUTARY_DB", decoy.display()).arg("--db").arg(chosen.display()).arg("--bind").arg("127.0.0.1:0"),
    )
    .await;
    reqwest::get(node.url("/health")).await.unwrap();
    assert!(chosen.exists(), "--db wins over TRIBUTARY_DB");
    assert!(!decoy.exists());
    drop(node);

    let node = TestNode::start_with(NodeOptions::default().default_db_in(folder.path())).await;
    assert_eq!(reqwest::get(node.url("/health")).await.unwrap().status(), StatusCode::OK);
    assert!(folder.path().join("data/tributary.db").exists(), "the default store is ./data/tributary.db");
}

async fn a_sane_client_request_id_is_kept_and_an_insane_one_replaced(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    let response = client.get(node.url("/nope")).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    assert_eq!(response.json::<Value>().await.unwrap()["request_id"], "trace-42");
    let response = client.get(node.url("/nope")).header("x-request-id", "<script>").send().await.unwrap();
    assert_ne!(response.headers()["x-request-id"], "<script>");
}

async fn cors_follows_allowed_origins(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default().env("ALLOWED_ORIGINS", "https://dash.example.com")).await;
    let client = reqwest::Client::new();
    let allowed = client.get(node.url("/api/v1/stats")).header("origin", "https://dash.example.com").send().await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://dash.example.com");
    let other = client.get(node.url("/api/v1/stats")).header("origin", "https://evil.example.com").send().await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));

    let preflight = client
        .request(reqwest::Method::OPTIONS, node.url("/admin/restart"))
        .header("origin", "https://dash.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "https://dash.example.com");

    let plain = client.request(reqwest::Method::OPTIONS, node.url("/admin/restart")).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::NO_CONTENT);
    assert_eq!(plain.headers()["allow"], "POST, OPTIONS");
}

async fn urls_and_headers_over_the_limits_are_refused_in_the_contract_shape(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default()).await;
    let client = reqwest::Client::new();
    let response = client.get(node.url(&format!("/api/v1/activity/recent?type={}", "a".repeat(9 * 1024)))).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
    assert_error_shape(&response.json().await.unwrap(), "uri_too_long");

    let response = client.get(node.url("/api/v1/stats")).header("x-padding", "p".repeat(40 * 1024)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_error_shape(&response.json().await.unwrap(), "headers_too_large");

    let mut many = reqwest::header::HeaderMap::new();
    for index in 0..120 {
        many.insert(reqwest::header::HeaderName::try_from(format!("x-extra-{index}")).unwrap(), "1".parse().unwrap());
    }
    let response = client.get(node.url("/api/v1/stats")).headers(many).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

    // Within the limits, the same route answers.
    let response = client.get(node.url("/api/v1/stats")).header("x-padding", "p".repeat(8 * 1024)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn a_preflight_from_an_unknown_origin_is_not_allowed(kind: HostKind) {
    let node = Deployment::start(kind, NodeOptions::default().env("ALLOWED_ORIGINS", "https://dash.example.com")).await;
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, node.url("/admin/restart"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    // Without an allowed origin in the answer, the browser never sends the request itself.
    assert!(!preflight.headers().contains_key("access-control-allow-origin"), "{:?}", preflight.headers());
}
