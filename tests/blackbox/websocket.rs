//! The dashboard WebSocket: paths, messages, limits, eviction, and slow readers.

use std::net::IpAddr;

use serde_json::{Value, json};
use support::raw_ws::{client_frame, close_code, raw_websocket};
use support::{Dashboard, NodeOptions, TestNode};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

async fn broadcast(node: &TestNode, body: Value) -> Value {
    let response = reqwest::Client::new().post(node.url("/admin/broadcast")).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "broadcast refused: {}", response.text().await.unwrap());
    response.json().await.unwrap()
}

#[tokio::test]
async fn every_path_acknowledges_at_once() {
    let node = TestNode::start().await;
    for path in ["/api/v1/ws/dashboard", "/admin/ws/dashboard", "/ws/dashboard"] {
        let mut dashboard = Dashboard::connect(&node.ws_url(path)).await.unwrap();
        let ack = dashboard.next_json().await;
        assert_eq!(ack["type"], "connection_ack", "{path}");
        assert_eq!(ack["data"]["message"], "Connected to dashboard");
        assert!(ack["data"]["connection_id"].as_str().is_some_and(|id| !id.is_empty()));
        assert_eq!(ack["data"]["stats_interval_seconds"], 5);
        let timestamp = ack["timestamp"].as_str().unwrap();
        assert!(timestamp.ends_with('Z') && chrono_like(timestamp), "RFC 3339 UTC: {timestamp}");
    }
}

fn chrono_like(timestamp: &str) -> bool {
    // 2026-11-25T20:51:32.264Z
    timestamp.len() == 24 && &timestamp[4..5] == "-" && &timestamp[10..11] == "T" && &timestamp[19..20] == "."
}

#[tokio::test]
async fn stats_updates_arrive_every_interval_and_equal_the_stats_route() {
    let node = TestNode::start_with(NodeOptions::default().env("STATS_INTERVAL_SECONDS", 1)).await;
    let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
    let first = dashboard.next_of_type("stats_update").await;
    let second = dashboard.next_of_type("stats_update").await;
    let at = |message: &Value| chrono_millis(message["timestamp"].as_str().unwrap());
    let gap = at(&second) - at(&first);
    assert!((500..=2500).contains(&gap), "about one interval apart: {gap} ms");

    let stats: Value = reqwest::get(node.url("/api/v1/stats")).await.unwrap().json().await.unwrap();
    assert_eq!(second["data"], stats, "stats_update carries exactly what /api/v1/stats returns");
    assert_eq!(stats["activeConnections"], 1);
}

fn chrono_millis(timestamp: &str) -> i64 {
    let (date, time) = timestamp.trim_end_matches('Z').split_once('T').unwrap();
    let days: i64 = date.split('-').nth(2).unwrap().parse().unwrap();
    let mut parts = time.split(':');
    let hours: i64 = parts.next().unwrap().parse().unwrap();
    let minutes: i64 = parts.next().unwrap().parse().unwrap();
    let seconds: f64 = parts.next().unwrap().parse().unwrap();
    ((days * 24 + hours) * 60 + minutes) * 60_000 + (seconds * 1000.0) as i64
}

#[tokio::test]
async fn ping_get_stats_and_garbage_are_answered_to_the_sender_alone() {
    let node = TestNode::start_with(NodeOptions::default().env("STATS_INTERVAL_SECONDS", 3600)).await;
    let mut asker = node.dashboard("/api/v1/ws/dashboard").await;
    let mut bystander = node.dashboard("/ws/dashboard").await;

    asker.send_json(json!({"type": "ping"})).await;
    assert_eq!(asker.next_json().await["type"], "pong");

    asker.send_json(json!({"type": "get_stats"})).await;
    let update = asker.next_json().await;
    assert_eq!(update["type"], "stats_update");
    assert_eq!(update["data"]["activeConnections"], 2);

    // Had the stats gone to everyone, the bystander would see them before its own pong.
    bystander.send_json(json!({"type": "ping"})).await;
    assert_eq!(bystander.next_json().await["type"], "pong");

    for garbage in ["not json", r#"{"type":"subscribe"}"#, r#"{"no_type":1}"#, "[1,2,3]"] {
        asker.send_text(garbage).await;
        let error = asker.next_json().await;
        assert_eq!(error["type"], "error", "answer to {garbage}");
        assert_eq!(error["data"]["type"], "invalid_message");
        assert_eq!(error["data"]["severity"], "warning");
        assert_eq!(error["data"]["component"], "websocket");
    }
    use futures::SinkExt;
    asker.socket.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(asker.next_json().await["type"], "error");

    // Still open.
    asker.send_json(json!({"type": "ping"})).await;
    assert_eq!(asker.next_json().await["type"], "pong");
}

#[tokio::test]
async fn broadcasts_reach_everyone_and_personal_messages_one() {
    let node = TestNode::start_with(NodeOptions::default().env("STATS_INTERVAL_SECONDS", 3600)).await;
    let mut first = node.dashboard("/api/v1/ws/dashboard").await;
    let mut second = node.dashboard("/api/v1/ws/dashboard").await;

    let outcome = broadcast(&node, json!({"type": "notification", "data": {"message": "maintenance at noon"}})).await;
    assert_eq!(outcome["delivered"], 2);
    for dashboard in [&mut first, &mut second] {
        let message = dashboard.next_json().await;
        assert_eq!(message["type"], "notification");
        assert_eq!(message["data"]["message"], "maintenance at noon");
    }

    let personal = json!({"type": "notification", "data": {"message": "just you"}, "connection_id": second.connection_id});
    broadcast(&node, personal).await;
    assert_eq!(second.next_json().await["data"]["message"], "just you");
    first.send_json(json!({"type": "ping"})).await;
    assert_eq!(first.next_json().await["type"], "pong", "the personal message went to the other connection only");

    // The envelope is validated before anything is sent.
    let client = reqwest::Client::new();
    let invalid = [
        json!({"type": "error", "data": {"type": "x", "component": "store"}}),
        json!({"type": "error", "data": {"type": "x", "component": "store", "severity": "error", "traceback": "..."}}),
        json!({"type": "stats_update", "data": {}}),
        json!({"type": "notification", "data": [1]}),
    ];
    for body in invalid {
        let response = client.post(node.url("/admin/broadcast")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 422, "{body}");
    }
    let unknown = client
        .post(node.url("/admin/broadcast"))
        .json(&json!({"type": "notification", "data": {}, "connection_id": "no-such-connection"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn the_eleventh_connection_from_one_address_is_refused_before_the_upgrade() {
    let node = TestNode::start().await;
    let url = node.ws_url("/api/v1/ws/dashboard");
    let mut open = Vec::new();
    for _ in 0..10 {
        open.push(Dashboard::connect_with(&url, Some(ip(1)), None).await.expect("within the limit"));
    }
    let refused = Dashboard::connect_with(&url, Some(ip(1)), None).await.err().expect("the 11th is refused");
    assert_eq!(refused.status, 503);
    assert_eq!(refused.body["error"], "too_many_connections");
    assert_eq!(refused.body["component"], "websocket");
    assert!(refused.body["request_id"].is_string());

    // Another address is not affected; and closing one frees a slot.
    Dashboard::connect_with(&url, Some(ip(2)), None).await.expect("another address");
    open.pop().unwrap().close().await;
    node.poll_json("/api/v1/stats", |stats| stats["activeConnections"] == 9).await;
    Dashboard::connect_with(&url, Some(ip(1)), None).await.expect("a freed slot");
}

#[tokio::test]
async fn origins_are_checked() {
    let node = TestNode::start_with(NodeOptions::default().env("ALLOWED_ORIGINS", "https://dash.example.com")).await;
    let url = node.ws_url("/api/v1/ws/dashboard");
    let refused = Dashboard::connect_with(&url, None, Some("https://evil.example.com")).await.err().expect("refused");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["error"], "origin_not_allowed");
    Dashboard::connect_with(&url, None, Some("https://dash.example.com")).await.expect("an allowed origin");
    let same_origin = format!("http://{}", node.addr);
    Dashboard::connect_with(&url, None, Some(&same_origin)).await.expect("the node's own pages");
    Dashboard::connect_with(&url, None, None).await.expect("non-browser clients send no Origin");
}

#[tokio::test]
async fn over_the_global_cap_the_longest_idle_connection_makes_room() {
    let node = TestNode::start_with(NodeOptions::default().env("WEBSOCKET_MAX_CONNECTIONS", 3).env("STATS_INTERVAL_SECONDS", 3600)).await;
    let url = node.ws_url("/api/v1/ws/dashboard");
    let mut idle = Dashboard::connect_with(&url, Some(ip(11)), None).await.unwrap();
    assert_eq!(idle.next_json().await["type"], "connection_ack");
    let mut busy = Vec::new();
    for last in [12, 13] {
        let mut dashboard = Dashboard::connect_with(&url, Some(ip(last)), None).await.unwrap();
        dashboard.next_json().await;
        dashboard.send_json(json!({"type": "ping"})).await;
        assert_eq!(dashboard.next_json().await["type"], "pong");
        busy.push(dashboard);
    }
    let mut newcomer = Dashboard::connect_with(&url, Some(ip(14)), None).await.expect("room is made");
    assert_eq!(newcomer.next_json().await["type"], "connection_ack");

    let notice = idle.next_json().await;
    assert_eq!(notice["type"], "error");
    assert_eq!(notice["data"]["type"], "connection_evicted");
    let close = idle.closed().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1013);

    for dashboard in &mut busy {
        dashboard.send_json(json!({"type": "ping"})).await;
        assert_eq!(dashboard.next_json().await["type"], "pong", "busy connections stay");
    }
    node.poll_json("/api/v1/stats", |stats| stats["activeConnections"] == 3).await;
}

#[tokio::test]
async fn a_reader_that_stops_reading_is_closed_without_delaying_the_others() {
    let node = TestNode::start_with(
        // The send timeout is far longer than the test's patience: if the fan-out waited on the
        // stalled client, the reader would not get its messages in time and the test would fail.
        NodeOptions::default()
            .env("STATS_INTERVAL_SECONDS", 3600)
            .env("WEBSOCKET_QUEUE_MAX_BYTES", 256 * 1024)
            .env("WEBSOCKET_SEND_TIMEOUT_SECONDS", 600),
    )
    .await;
    // A client that completes the handshake and then never reads again.
    let stalled = raw_websocket(node.addr).await;

    let mut reader = node.dashboard("/api/v1/ws/dashboard").await;
    node.poll_json("/api/v1/stats", |stats| stats["activeConnections"] == 2).await;

    // 200 messages of 60 KB: far more than the stalled client's socket buffers hold.
    let payload = "x".repeat(60_000);
    let reading = tokio::spawn(async move {
        for n in 0..200 {
            let message = reader.next_of_type("notification").await;
            assert_eq!(message["data"]["n"], n, "in order, none missing");
        }
        reader
    });
    for n in 0..200 {
        broadcast(&node, json!({"type": "notification", "data": {"n": n, "payload": payload}})).await;
    }
    let mut reader = reading.await.unwrap();

    // The stalled client was dropped; the reader is still served.
    node.poll_json("/api/v1/stats", |stats| stats["activeConnections"] == 1).await;
    reader.send_json(json!({"type": "ping"})).await;
    assert_eq!(reader.next_json().await["type"], "pong");
    let disconnects = node
        .poll_json("/api/v1/activity/recent?type=websocket_disconnect", |items| items.as_array().is_some_and(|items| !items.is_empty()))
        .await;
    assert_eq!(disconnects[0]["status_code"], 1008, "closed as a slow consumer: {disconnects}");
    assert_eq!(disconnects[0]["metadata"]["closed_by"], "server");
    drop(stalled);
}

#[tokio::test]
async fn connections_are_logged_and_recorded_as_activity() {
    let node = TestNode::start().await;
    let dashboard = node.dashboard("/admin/ws/dashboard").await;
    let id = dashboard.connection_id.clone();
    dashboard.close().await;
    let disconnects = node
        .poll_json("/api/v1/activity/recent?type=websocket_disconnect", |items| items.as_array().is_some_and(|items| !items.is_empty()))
        .await;
    assert_eq!(disconnects[0]["metadata"]["connection_id"], id.as_str());
    assert_eq!(disconnects[0]["metadata"]["closed_by"], "client");
    assert_eq!(disconnects[0]["endpoint"], "/admin/ws/dashboard");
    let connects: Value = reqwest::get(node.url("/api/v1/activity/recent?type=websocket_connect")).await.unwrap().json().await.unwrap();
    assert_eq!(connects[0]["metadata"]["connection_id"], id.as_str());
    assert_eq!(connects[0]["metadata"]["client_ip"], "127.0.0.1");

    let logged =
        |message: &str| node.log_entries().iter().any(|entry| entry["message"] == message && entry["connection_id"] == id.as_str());
    assert!(logged("dashboard connected"));
    assert!(logged("dashboard disconnected"));
}

#[tokio::test]
async fn oversized_messages_close_with_1009_and_invalid_utf8_with_1007() {
    let node =
        TestNode::start_with(NodeOptions::default().env("WEBSOCKET_MAX_MESSAGE_BYTES", 1024).env("STATS_INTERVAL_SECONDS", 3600)).await;

    let mut oversized = raw_websocket(node.addr).await;
    oversized.write_all(&client_frame(0x1, &[b'x'; 4096])).await.unwrap();
    assert_eq!(close_code(&mut oversized).await, 1009);

    let mut invalid = raw_websocket(node.addr).await;
    invalid.write_all(&client_frame(0x1, &[0x7b, 0xff, 0xfe, 0x7d])).await.unwrap();
    assert_eq!(close_code(&mut invalid).await, 1007);

    // Neither took the node down for anyone else.
    let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
    dashboard.send_json(json!({"type": "ping"})).await;
    assert_eq!(dashboard.next_json().await["type"], "pong");
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_with_1001() {
    let node = TestNode::start_with(NodeOptions::default().env("WEBSOCKET_HEARTBEAT_SECONDS", 1).env("STATS_INTERVAL_SECONDS", 3600)).await;
    // A raw client reads frames but never answers the pings, like a peer whose network vanished.
    let mut silent = raw_websocket(node.addr).await;
    assert_eq!(close_code(&mut silent).await, 1001);
    let disconnects = node
        .poll_json("/api/v1/activity/recent?type=websocket_disconnect", |items| items.as_array().is_some_and(|items| !items.is_empty()))
        .await;
    assert_eq!(disconnects[0]["metadata"]["reason"], "no answer to pings");
}

/// A burst the server produces is no reason to close a client that reads everything: 200 uploads at
/// once beside 200 dashboards (in this process, not the node's), and every dashboard gets all 200
/// `ingestion_complete` messages and stays open. (With an outbox bounded in messages, dashboards
/// were closed with 1008 after one message once 70 uploads ran at once.)
#[tokio::test]
async fn a_burst_of_uploads_reaches_every_dashboard_that_reads_and_closes_none() {
    const UPLOADS: usize = 200;
    const DASHBOARDS: usize = 200;
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let node = TestNode::start_with(NodeOptions::default().env("WEBSOCKET_MAX_CONNECTIONS_PER_IP", 1000)).await;
    let mut readers = Vec::new();
    for _ in 0..DASHBOARDS {
        let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
        readers.push(tokio::spawn(async move {
            let mut completed = std::collections::HashSet::new();
            while completed.len() < UPLOADS {
                match dashboard.next_message().await {
                    Some(Message::Text(text)) => {
                        let message: Value = serde_json::from_str(&text).unwrap();
                        if message["type"] == "ingestion_complete" {
                            completed.insert(message["data"]["ingestion_id"].as_str().unwrap().to_owned());
                        }
                    }
                    Some(Message::Close(frame)) => return Err(format!("closed after {} completions: {frame:?}", completed.len())),
                    None => return Err(format!("dropped after {} completions", completed.len())),
                    Some(_) => {}
                }
            }
            Ok(dashboard)
        }));
    }
    let client = reqwest::Client::new();
    let uploads: Vec<_> = (0..UPLOADS)
        .map(|n| {
            let (client, url) = (client.clone(), node.url("/api/v1/ingest"));
            let sql = format!("CREATE TABLE burst.t{n} (id INT);\nCREATE VIEW burst.v{n} AS SELECT id FROM burst.t{n};\n");
            tokio::spawn(async move {
                client.post(url).json(&json!({"files": [{"filename": format!("b{n}.sql"), "content": sql}]})).send().await
            })
        })
        .collect();
    for upload in uploads {
        assert!(upload.await.unwrap().unwrap().status().is_success());
    }
    let mut served = Vec::new();
    for reader in readers {
        let outcome = tokio::time::timeout(support::PATIENCE * 3, reader).await.expect("every completion arrives").unwrap();
        let mut dashboard = outcome.unwrap_or_else(|why| panic!("a dashboard that reads was not served: {why}"));
        dashboard.send_json(json!({"type": "ping"})).await;
        assert_eq!(dashboard.next_of_type("pong").await["type"], "pong", "still open");
        served.push(dashboard);
    }
    // The stats may be a moment stale after the burst (they are cached, and kept while the store is busy).
    node.poll_json("/api/v1/stats", |stats| stats["activeConnections"] == DASHBOARDS).await;
    drop(served);
}

/// Every client that reads gets every `stats_update`: 1,000 dashboards, a 1 s interval, and each
/// tick sent while they all read reaches every one of them (an outbox keeps only the newest unsent
/// update, so a tick can only be skipped for a client that has not read the one before).
#[tokio::test]
async fn every_reading_dashboard_gets_every_stats_tick() {
    const DASHBOARDS: usize = 1_000;
    // This process holds the dashboards' sockets: more than the usual soft limit of 1,024 files.
    rlimit::increase_nofile_limit(u64::MAX).unwrap();
    let node = TestNode::start_with(
        NodeOptions::default().env("STATS_INTERVAL_SECONDS", 1).env("WEBSOCKET_MAX_CONNECTIONS_PER_IP", 2 * DASHBOARDS),
    )
    .await;
    let ticks: std::sync::Arc<std::sync::Mutex<Vec<std::collections::BTreeSet<String>>>> =
        std::sync::Arc::new(std::sync::Mutex::new(vec![Default::default(); DASHBOARDS]));
    let mut readers = Vec::new();
    for index in 0..DASHBOARDS {
        let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
        let ticks = ticks.clone();
        readers.push(tokio::spawn(async move {
            while let Some(message) = dashboard.next_message().await {
                let Message::Text(text) = message else { continue };
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == "stats_update" {
                    ticks.lock().unwrap()[index].insert(message["timestamp"].as_str().unwrap().to_owned());
                }
            }
        }));
    }
    // Ticks from the moment all are connected, for eight intervals; then two more for the last to arrive.
    let since = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    let until = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for reader in &readers {
        reader.abort();
    }
    let ticks = ticks.lock().unwrap();
    let within = |stamp: &String| {
        let at = chrono::DateTime::parse_from_rfc3339(stamp).unwrap();
        at >= since && at <= until
    };
    let sent: std::collections::BTreeSet<&String> = ticks.iter().flatten().filter(|stamp| within(stamp)).collect();
    assert!(sent.len() >= 6, "about one tick a second: {sent:?}");
    let short: Vec<(usize, usize)> = ticks
        .iter()
        .enumerate()
        .map(|(index, seen)| (index, seen.iter().filter(|stamp| within(stamp)).count()))
        .filter(|(_, count)| *count < sent.len())
        .collect();
    assert!(
        short.is_empty(),
        "{} of {DASHBOARDS} dashboards missed ticks of the {}: {:?}",
        short.len(),
        sent.len(),
        &short[..short.len().min(10)]
    );
}
