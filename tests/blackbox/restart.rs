//! Restart and shutdown: the answer first, `restarting` and 1012 for the clients, nothing persisted
//! lost, and the node back on the same port.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::{NodeOptions, TestNode};

/// Sends `count` requests tagged with `prefix-N` request ids.
async fn tagged_requests(node: &TestNode, prefix: &str, count: usize) {
    let client = reqwest::Client::new();
    for n in 0..count {
        let response = client.get(node.url("/api/v1/stats")).header("x-request-id", format!("{prefix}-{n}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// How many stored activity events carry a request id starting with `prefix`.
async fn stored_with_prefix(node: &TestNode, prefix: &str) -> usize {
    let page: Value = reqwest::get(node.url("/api/v1/metrics/events?limit=1000")).await.unwrap().json().await.unwrap();
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["metadata"]["request_id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .count()
}

#[tokio::test]
async fn restart_answers_first_tells_clients_keeps_activity_and_comes_back_on_the_same_port() {
    let mut node = TestNode::start_with(NodeOptions::default().env("STATS_INTERVAL_SECONDS", 3600)).await;
    let pid = node.pid();
    let mut dashboards = vec![node.dashboard("/api/v1/ws/dashboard").await, node.dashboard("/ws/dashboard").await];
    // Recorded just before the restart: still queued in memory when it begins.
    tagged_requests(&node, "before-restart", 25).await;

    let response = reqwest::Client::new().post(node.url("/admin/restart")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "restarting");
    assert_eq!(body["mode"], "exec");
    let answered = Instant::now();

    for dashboard in &mut dashboards {
        let notice = dashboard.next_of_type("restarting").await;
        assert_eq!(notice["data"]["message"], "Server is restarting");
        let close = dashboard.closed().await.expect("a close frame, not a dropped connection");
        assert_eq!(u16::from(close.code), 1012);
    }

    // Back on the same port, as the same process (re-executed in place), within two seconds.
    let address = node.addr;
    node.wait_for_listening(2).await;
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("http://{address}/health")).send().await
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(answered.elapsed() < Duration::from_secs(2), "not answering 2 s after the restart:\n{}", node.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered.elapsed() < Duration::from_secs(2), "answering again took {:?}", answered.elapsed());
    assert_eq!(node.pid(), pid);
    assert!(node.is_running());
    let generations: Vec<u64> = node.log_entries().iter().filter_map(|entry| entry["generation"].as_u64()).collect();
    assert!(generations.contains(&1), "the second generation logged its start");

    assert_eq!(stored_with_prefix(&node, "before-restart").await, 25, "every request made before the restart is stored");
    let restart_events: Value = reqwest::get(node.url("/api/v1/activity/recent?type=system")).await.unwrap().json().await.unwrap();
    assert!(restart_events[0]["message"].as_str().unwrap().contains("Restart requested"));

    // Clients reconnect.
    let mut again = node.dashboard("/api/v1/ws/dashboard").await;
    again.send_json(serde_json::json!({"type": "ping"})).await;
    assert_eq!(again.next_json().await["type"], "pong");
}

#[tokio::test]
async fn restart_in_exit_mode_flushes_and_exits_zero_for_the_supervisor() {
    let mut node = TestNode::start_with(NodeOptions::default().env("RESTART_MODE", "exit")).await;
    tagged_requests(&node, "exit-mode", 10).await;
    let response = reqwest::Client::new().post(node.url("/admin/restart")).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["mode"], "exit");
    let status = node.wait_for_exit().await;
    assert!(status.success(), "exit status {status}");

    // What a supervisor would start next: the same database, everything there.
    let store = support::open_store(&node.db);
    let stored: i64 = store
        .query_row("SELECT COUNT(*) FROM activity_events WHERE json_extract(metadata, '$.request_id') LIKE 'exit-mode-%'", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(stored, 10);
}

#[tokio::test]
async fn restart_needs_the_admin_token_when_one_is_set() {
    let token = "tributary-test-admin-token-7f3a";
    let mut node = TestNode::start_with(NodeOptions::default().env("ADMIN_TOKEN", token).env("RESTART_MODE", "exit")).await;
    let client = reqwest::Client::new();

    let missing = client.post(node.url("/admin/restart")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "unauthorized");
    let wrong = client.post(node.url("/admin/restart")).bearer_auth("not-the-token").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_key = client.post(node.url("/admin/restart")).header("x-api-key", "nope").send().await.unwrap();
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);
    let broadcast =
        client.post(node.url("/admin/broadcast")).json(&serde_json::json!({"type": "notification", "data": {}})).send().await.unwrap();
    assert_eq!(broadcast.status(), StatusCode::UNAUTHORIZED, "every admin route needs the token");
    assert!(node.is_running());

    let by_key = client.post(node.url("/admin/restart")).header("x-api-key", token).send().await.unwrap();
    assert_eq!(by_key.status(), StatusCode::OK);
    assert!(node.wait_for_exit().await.success());
    assert!(!node.logs().contains(token), "the admin token never reaches the logs");
}

/// Behind a proxy on the same host that adds no forwarding header, every request looks local: a
/// node set up as if proxied, with no admin token, says so when it starts; with a token it does not.
#[tokio::test]
async fn a_node_that_looks_proxied_without_an_admin_token_warns_at_start() {
    let warning = "no ADMIN_TOKEN is set and this node looks reached through a proxy";
    let proxied = [
        NodeOptions::default().env("TRUST_FORWARDED_FOR", "true"),
        NodeOptions::default().env("PUBLIC_WEBSOCKET_URL", "wss://lineage.example.com/api/v1/ws/dashboard"),
    ];
    for options in proxied {
        let node = TestNode::start_with(options).await;
        assert!(node.logs().contains(warning), "{}", node.logs());
    }
    let quiet =
        [NodeOptions::default(), NodeOptions::default().env("TRUST_FORWARDED_FOR", "true").env("ADMIN_TOKEN", "set-behind-the-proxy")];
    for options in quiet {
        let node = TestNode::start_with(options).await;
        assert!(!node.logs().contains(warning), "{}", node.logs());
    }
}

#[tokio::test]
async fn the_bearer_token_is_accepted() {
    let token = "another-admin-token";
    let mut node = TestNode::start_with(NodeOptions::default().env("ADMIN_TOKEN", token).env("RESTART_MODE", "exit")).await;
    let response = reqwest::Client::new().post(node.url("/admin/restart")).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(node.wait_for_exit().await.success());
}

#[tokio::test]
async fn sigterm_and_sigint_close_clients_with_going_away_and_exit_zero() {
    for signal in ["TERM", "INT"] {
        let mut node = TestNode::start().await;
        let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
        tagged_requests(&node, "before-signal", 5).await;
        node.signal(signal);
        let close = dashboard.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1001, "SIG{signal}");
        assert!(node.wait_for_exit().await.success(), "SIG{signal}");
        let stored: i64 = support::open_store(&node.db)
            .query_row(
                "SELECT COUNT(*) FROM activity_events WHERE json_extract(metadata, '$.request_id') LIKE 'before-signal-%'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(stored, 5, "SIG{signal}");
    }
}

#[tokio::test]
async fn a_request_in_flight_when_the_restart_begins_is_finished_and_recorded() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut node = TestNode::start_with(NodeOptions::default().env("STATS_INTERVAL_SECONDS", 3600)).await;
    let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
    // A request whose body is still arriving: the handler is waiting for it.
    let body = serde_json::json!({"type": "in_flight", "message": "sent across a restart"}).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut in_flight = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/activity HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        node.addr,
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(first_half.as_bytes()).await.unwrap();

    let response = reqwest::Client::new().post(node.url("/admin/restart")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // The restart is under way once the clients are told.
    dashboard.next_of_type("restarting").await;

    in_flight.write_all(second_half.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(support::PATIENCE, in_flight.read_to_string(&mut answer)).await.expect("an answer in time").unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "the in-flight request was finished: {answer}");

    node.wait_for_listening(2).await;
    let items = node
        .poll_json("/api/v1/activity/recent?type=client_event", |items| {
            items.as_array().is_some_and(|items| items.iter().any(|item| item["metadata"]["client_type"] == "in_flight"))
        })
        .await;
    assert_eq!(items[0]["message"], "sent across a restart");
}
