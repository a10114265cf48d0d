//! The cloud path, run on this machine: the functions under `cargo lambda watch` on a DynamoDB
//! table (the local DynamoDB-compatible server), with a socket node on the same table standing in
//! for API Gateway's WebSocket side: it holds real WebSocket clients, registers them in the table,
//! and serves `@connections` to the functions' broadcaster.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::aws::{dynamodb_env, fresh_table};
use support::{Dashboard, LambdaStandIn, NodeOptions, TestFunctions, TestNode};
use tokio_tungstenite::tungstenite::Message;

/// The credential of the node's `@connections` API, given to the functions that call it.
const CONNECTIONS_TOKEN: &str = "connections-credential-for-tests";

/// A node and the functions, sharing one table.
struct Cloud {
    node: TestNode,
    functions: TestFunctions,
}

impl Cloud {
    /// Starts both; the functions get `extra` on top of the shared settings.
    async fn start(extra: &[(&str, &str)]) -> Cloud {
        let table = fresh_table();
        // The node's own ticker stays quiet: the stats function does the ticking here.
        let node = TestNode::start_with(
            NodeOptions::default().dynamodb(&table).env("STATS_INTERVAL_SECONDS", 3600).env("CONNECTIONS_TOKEN", CONNECTIONS_TOKEN),
        )
        .await;
        let mut env = dynamodb_env(&table);
        env.push(("WEBSOCKET_CALLBACK_URL".into(), format!("http://{}", node.addr)));
        env.push(("CONNECTIONS_TOKEN".into(), CONNECTIONS_TOKEN.into()));
        env.push(("STATS_INTERVAL_SECONDS".into(), "1".into()));
        env.push(("STATS_TICKS".into(), "2".into()));
        env.push(("CONNECTIONS_PAGE_SIZE".into(), "3".into()));
        env.extend(extra.iter().map(|(key, value)| (key.to_string(), value.to_string())));
        let functions = TestFunctions::start(env).await;
        Cloud { node, functions }
    }

    async fn dashboards(&self, count: usize) -> Vec<Dashboard> {
        let mut dashboards = Vec::new();
        for _ in 0..count {
            dashboards.push(self.node.dashboard("/api/v1/ws/dashboard").await);
        }
        dashboards
    }

    /// Runs the scheduled stats function once; returns its summary.
    async fn tick(&self) -> Value {
        self.functions.invoke("tributary-stats", &scheduled_event()).await
    }

    /// Sends `tributary-ws` one API Gateway WebSocket event; returns its HTTP-like answer.
    async fn websocket_event(&self, route: &str, connection_id: &str, source_ip: &str, origin: Option<&str>, body: Option<&str>) -> Value {
        let mut headers = json!({ "Host": "abc123.execute-api.us-east-1.amazonaws.com" });
        if let Some(origin) = origin {
            headers["Origin"] = json!(origin);
        }
        let event_type = match route {
            "$connect" => "CONNECT",
            "$disconnect" => "DISCONNECT",
            _ => "MESSAGE",
        };
        let event = json!({
            "headers": headers,
            "requestContext": {
                "routeKey": route,
                "eventType": event_type,
                "connectionId": connection_id,
                "connectedAt": 1_764_000_000_000_i64,
                "requestTimeEpoch": 1_764_000_000_000_i64,
                "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                "stage": "prod",
                "apiId": "abc123",
                "identity": { "sourceIp": source_ip },
            },
            "isBase64Encoded": false,
            "body": body,
        });
        self.functions.invoke("tributary-ws", &event).await
    }

    /// Connections registered in the table, as the admin function counts them.
    async fn registered(&self) -> u64 {
        let stats: Value = self.functions.get_json(&self.functions.url("/api/v1/stats")).await;
        stats["activeConnections"].as_u64().unwrap()
    }
}

fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": "5d4b2a0e-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/tributary-stats"],
        "detail": {}
    })
}

#[tokio::test]
async fn stats_ticks_reach_every_client_across_pages_of_connections() {
    let cloud = Cloud::start(&[]).await;
    // Seven clients, three per page: three pages.
    let mut dashboards = cloud.dashboards(7).await;
    let run = cloud.tick().await;
    assert_eq!(run["ticks"].as_array().unwrap().len(), 2, "two ticks a second apart: {run}");
    for tick in run["ticks"].as_array().unwrap() {
        assert_eq!(tick["delivered"], 7, "{run}");
        assert_eq!(tick["gone"], 0);
        assert_eq!(tick["failed"], 0);
        assert_eq!(tick["acknowledged"], 0, "the node acknowledged its own clients");
    }
    for dashboard in &mut dashboards {
        let update = dashboard.next_of_type("stats_update").await;
        assert_eq!(update["data"]["activeConnections"], 7, "counted from the table");
        assert!(update["data"]["trends"].is_object());
    }
}

#[tokio::test]
async fn a_gone_connection_is_removed_on_the_next_tick_and_only_it() {
    let cloud = Cloud::start(&[]).await;
    let mut dashboards = cloud.dashboards(4).await;
    // A connection API Gateway would know but that is gone: registered, then never reachable.
    let answer = cloud.websocket_event("$connect", "ghost-connection", "198.51.100.7", None, None).await;
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(cloud.registered().await, 5);

    let run = cloud.tick().await;
    let first = &run["ticks"][0];
    assert_eq!(first["delivered"], 4, "{run}");
    assert_eq!(first["gone"], 1, "the ghost answered 410");
    // Unacknowledged, it was offered its connection_ack first; that post found it gone.
    assert_eq!(first["acknowledged"], 0);
    assert_eq!(run["ticks"][1]["gone"], 0, "removed after one tick: {run}");
    assert_eq!(run["ticks"][1]["delivered"], 4);
    assert_eq!(cloud.registered().await, 4, "exactly the gone id was removed");
    for dashboard in &mut dashboards {
        dashboard.next_of_type("stats_update").await;
    }
}

#[tokio::test]
async fn websocket_events_follow_the_same_rules_as_the_node() {
    let cloud = Cloud::start(&[("WEBSOCKET_MAX_CONNECTIONS_PER_IP", "2"), ("ALLOWED_ORIGINS", "https://dash.example.com")]).await;

    let refused = cloud.websocket_event("$connect", "c-origin", "203.0.113.1", Some("https://evil.example.com"), None).await;
    assert_eq!(refused["statusCode"], 403);
    let body: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "origin_not_allowed");
    assert!(body["request_id"].is_string());

    for id in ["c-1", "c-2"] {
        let admitted = cloud.websocket_event("$connect", id, "203.0.113.2", Some("https://dash.example.com"), None).await;
        assert_eq!(admitted["statusCode"], 200, "{admitted}");
    }
    let third = cloud.websocket_event("$connect", "c-3", "203.0.113.2", None, None).await;
    assert_eq!(third["statusCode"], 503);
    let body: Value = serde_json::from_str(third["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"], "too_many_connections");
    assert_eq!(body["component"], "websocket");

    let gone = cloud.websocket_event("$disconnect", "c-1", "203.0.113.2", None, None).await;
    assert_eq!(gone["statusCode"], 200);
    let again = cloud.websocket_event("$connect", "c-4", "203.0.113.2", None, None).await;
    assert_eq!(again["statusCode"], 200, "the slot was freed by $disconnect");

    // $default answers through @connections, to that connection only.
    let mut asker = cloud.node.dashboard("/api/v1/ws/dashboard").await;
    let mut bystander = cloud.node.dashboard("/api/v1/ws/dashboard").await;
    let id = asker.connection_id.clone();
    cloud.websocket_event("$default", &id, "127.0.0.1", None, Some(r#"{"type":"ping"}"#)).await;
    assert_eq!(asker.next_json().await["type"], "pong");
    cloud.websocket_event("$default", &id, "127.0.0.1", None, Some(r#"{"type":"get_stats"}"#)).await;
    let update = asker.next_json().await;
    assert_eq!(update["type"], "stats_update");
    cloud.websocket_event("$default", &id, "127.0.0.1", None, Some("not json")).await;
    let error = asker.next_json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["data"]["type"], "invalid_message");
    // Misrouted, the asker's pong would be the bystander's first message; its own get_stats answer
    // must come first instead.
    bystander.send_json(json!({"type": "get_stats"})).await;
    assert_eq!(bystander.next_json().await["type"], "stats_update", "nothing reached the other client");

    let connects: Value = cloud.functions.get_json(&cloud.functions.url("/api/v1/activity/recent?type=websocket_connect&limit=50")).await;
    let ids: BTreeSet<&str> = connects.as_array().unwrap().iter().filter_map(|item| item["metadata"]["connection_id"].as_str()).collect();
    assert!(ids.contains("c-1") && ids.contains("c-4"), "connections are recorded as activity: {ids:?}");
}

#[tokio::test]
async fn a_cloud_restart_tells_the_clients_and_cycles_every_function() {
    let token = "cloud-admin-token-5e1f";
    let secret = support::aws::create_secret(&format!("tributary-admin-{}", uuid_suffix()), token).await;
    let lambda = LambdaStandIn::start(&[("tributary-admin", &[("KEEP", "me")]), ("tributary-ws", &[("KEEP", "me too")])]).await;
    let cloud = Cloud::start(&[
        ("TRIBUTARY_FUNCTIONS", "tributary-admin,tributary-ws"),
        ("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint),
        ("ADMIN_TOKEN_SECRET_ARN", &secret),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &support::aws::dynamodb_endpoint()),
    ])
    .await;
    let mut dashboards = cloud.dashboards(2).await;
    let client = reqwest::Client::new();

    let refused = client.post(cloud.functions.url("/admin/restart")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the token from Secrets Manager is required");
    let response = client.post(cloud.functions.url("/admin/restart")).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"status": "restarting", "mode": "redeploy"}));

    for dashboard in &mut dashboards {
        let notice = dashboard.next_of_type("restarting").await;
        assert_eq!(notice["data"]["message"], "Server is restarting");
    }
    for function in ["tributary-admin", "tributary-ws"] {
        let variables = lambda.variables(function);
        assert_eq!(variables.get("TRIBUTARY_CONFIG_GENERATION").map(String::as_str), Some("1"), "{function}: {variables:?}");
        assert!(variables.get("KEEP").is_some_and(|value| value.starts_with("me")), "other variables are kept: {variables:?}");
    }
    assert!(!cloud.functions.logs().contains(token), "the token never reaches the logs");
}

#[tokio::test]
async fn a_cloud_restart_that_cannot_read_a_function_tells_no_one() {
    let lambda = LambdaStandIn::start(&[("tributary-admin", &[("KEEP", "me")])]).await;
    let cloud =
        Cloud::start(&[("TRIBUTARY_FUNCTIONS", "tributary-admin,not-in-this-stack"), ("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint)]).await;
    let mut dashboard = cloud.node.dashboard("/api/v1/ws/dashboard").await;
    // No token is configured and the function sees no local caller: the admin route refuses.
    let refused = reqwest::Client::new().post(cloud.functions.url("/admin/restart")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.json::<Value>().await.unwrap()["error"], "admin_token_required");

    let token = "second-cloud-admin-token";
    let secret = support::aws::create_secret(&format!("tributary-admin-{}", uuid_suffix()), token).await;
    let cloud = Cloud::start(&[
        ("TRIBUTARY_FUNCTIONS", "tributary-admin,not-in-this-stack"),
        ("AWS_ENDPOINT_URL_LAMBDA", &lambda.endpoint),
        ("ADMIN_TOKEN_SECRET_ARN", &secret),
        ("AWS_ENDPOINT_URL_SECRETS_MANAGER", &support::aws::dynamodb_endpoint()),
    ])
    .await;
    let response = reqwest::Client::new().post(cloud.functions.url("/admin/restart")).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "restart_failed");
    assert_eq!(body["component"], "lambda");
    assert_eq!(lambda.variables("tributary-admin").get("TRIBUTARY_CONFIG_GENERATION"), None, "nothing was cycled");
    // The other node's client was never told a restart was coming.
    dashboard.send_json(json!({"type": "ping"})).await;
    assert_eq!(dashboard.next_json().await["type"], "pong");
}

fn uuid_suffix() -> String {
    support::aws::fresh_table().trim_start_matches("test-").to_owned()
}

#[tokio::test]
async fn every_function_documents_the_whole_http_api() {
    let cloud = Cloud::start(&[]).await;
    let paths = |api: &Value| api["paths"].as_object().unwrap().keys().cloned().collect::<BTreeSet<_>>();
    // The node's document less what only a node serves: the HTTP API's routes.
    let node: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    let expected: BTreeSet<String> =
        paths(&node).into_iter().filter(|path| !path.contains("ws/dashboard") && !path.starts_with("/@connections")).collect();
    assert_eq!(expected.len(), 24);
    for function in ["tributary-admin", "tributary-activity", "tributary-chat", "tributary-ingest"] {
        let api = cloud.functions.get_json(&cloud.functions.url_on(function, "/openapi.json")).await;
        assert_eq!(paths(&api), expected, "{function}");
    }
}

#[tokio::test]
async fn the_node_serves_connections_in_api_gateway_shape() {
    let node =
        TestNode::start_with(NodeOptions::default().env("STATS_INTERVAL_SECONDS", 3600).env("CONNECTIONS_TOKEN", CONNECTIONS_TOKEN)).await;
    let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
    let client = reqwest::Client::new();
    let url = node.url(&format!("/@connections/{}", dashboard.connection_id));

    let posted =
        client.post(&url).header("x-api-key", CONNECTIONS_TOKEN).body(r#"{"type":"notification","data":{"n":1}}"#).send().await.unwrap();
    assert_eq!(posted.status(), 200);
    assert_eq!(dashboard.next_of_type("notification").await["data"]["n"], 1);

    let info: Value = client.get(&url).bearer_auth(CONNECTIONS_TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(info["Identity"]["SourceIp"], "127.0.0.1");
    assert!(info["ConnectedAt"].as_str().unwrap().ends_with('Z'));
    assert!(info["LastActiveAt"].is_string());

    let not_text = client.post(&url).header("x-api-key", CONNECTIONS_TOKEN).body(vec![0xff, 0xfe]).send().await.unwrap();
    assert_eq!(not_text.status(), 400);

    // A local caller without the credential, or with a wrong one: refused, in API Gateway's shape.
    for request in [client.post(&url), client.post(&url).header("x-api-key", "guessed"), client.post(&url).bearer_auth("guessed")] {
        let refused = request.body(r#"{"type":"restarting","data":{"message":"forged"}}"#).send().await.unwrap();
        assert_eq!(refused.status(), 403);
        assert_eq!(refused.headers()["x-amzn-errortype"], "ForbiddenException");
    }

    let deleted = client.delete(&url).header("x-api-key", CONNECTIONS_TOKEN).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    // The forged messages never reached the dashboard: all it sees before the close is genuine.
    let close = loop {
        match dashboard.next_message().await.expect("a close frame") {
            Message::Close(frame) => break frame.expect("a close code"),
            Message::Text(text) => assert!(!text.contains("forged"), "a refused post reached the dashboard: {text}"),
            _ => {}
        }
    };
    assert_eq!(u16::from(close.code), 1000);

    let gone = client.post(&url).header("x-api-key", CONNECTIONS_TOKEN).body("{}").send().await.unwrap();
    assert_eq!(gone.status(), 410);
    assert_eq!(gone.headers()["x-amzn-errortype"], "GoneException");
    let body: Value = gone.json().await.unwrap();
    assert!(body["message"].is_string() && body["request_id"].is_string());
}

#[tokio::test]
async fn the_local_cloud_command_brings_up_a_cloud_shape_that_reaches_dashboards() {
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let (node_port, lambda_port, dynamodb_port) = (port(), port(), port());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(root.join("scripts/cloud-local"))
            .arg("--smoke")
            .current_dir(&root)
            .env("NODE_PORT", node_port)
            .env("LAMBDA_PORT", lambda_port)
            .env("DYNAMODB_PORT", dynamodb_port)
            .env("STATS_TICKS", "1")
            .env("TRIBUTARY_TABLE", fresh_table())
            .output()
            .expect("running scripts/cloud-local")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("reached a dashboard"), "{stdout}");
}

#[tokio::test]
async fn an_ingestion_in_the_ingest_function_reaches_every_dashboard() {
    let cloud = Cloud::start(&[]).await;
    let mut dashboards = cloud.dashboards(2).await;
    let body = json!({"files": [{"filename": "a.sql", "content": "CREATE TABLE a (x INT); CREATE VIEW v AS SELECT x FROM a;"}]});
    let result: Value =
        reqwest::Client::new().post(cloud.functions.url("/api/v1/ingest")).json(&body).send().await.unwrap().json().await.unwrap();
    assert_eq!(result["files_processed"], 1, "{result}");
    for dashboard in &mut dashboards {
        assert_eq!(dashboard.next_of_type("ingestion_started").await["data"]["ingestion_id"], result["ingestion_id"]);
        assert_eq!(dashboard.next_of_type("ingestion_complete").await["data"]["total_nodes_created"], result["total_nodes_created"]);
    }
    // The stats function's next tick, computed from the shared table, shows the graph.
    cloud.tick().await;
    let stats = dashboards[0].next_of_type("stats_update").await;
    assert_eq!(stats["data"]["totalNodes"], result["total_nodes_created"]);
    assert_eq!(stats["data"]["filesProcessed"], 1);
}

/// Every 5xx names the component that failed, and every 503 says when to come back.
#[tokio::test]
async fn a_function_that_cannot_restart_or_broadcast_says_which_part_and_when_to_retry() {
    let token = "cloud-admin-token-for-5xx";
    let secret = support::aws::create_secret(&format!("tributary-admin-{}", uuid_suffix()), token).await;
    // No TRIBUTARY_FUNCTIONS to cycle, and no @connections API to post to.
    let mut env = dynamodb_env(&fresh_table());
    env.push(("ADMIN_TOKEN_SECRET_ARN".into(), secret));
    env.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER".into(), support::aws::dynamodb_endpoint()));
    let functions = TestFunctions::start(env).await;
    let client = reqwest::Client::new();

    let restart = client.post(functions.url("/admin/restart")).bearer_auth(token).send().await.unwrap();
    assert_eq!(restart.status(), 501);
    let body: Value = restart.json().await.unwrap();
    assert_eq!((body["error"].as_str(), body["component"].as_str()), (Some("restart_unsupported"), Some("restart")), "{body}");

    let message = json!({"type": "notification", "data": {"message": "hello"}});
    let broadcast = client.post(functions.url("/admin/broadcast")).bearer_auth(token).json(&message).send().await.unwrap();
    assert_eq!(broadcast.status(), 503);
    assert!(broadcast.headers().get("retry-after").is_some(), "a 503 says when to come back: {:?}", broadcast.headers());
    let body: Value = broadcast.json().await.unwrap();
    assert_eq!((body["error"].as_str(), body["component"].as_str()), (Some("broadcaster_unavailable"), Some("broadcaster")), "{body}");
}
