//! Faults: what a crash leaves behind.

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{NodeOptions, TestNode};

/// `count` PostgreSQL files of `tables` tables and as many views each, every view reading the
/// previous file's tables: enough work that a kill lands while files are being stored.
fn corpus(count: usize, tables: usize) -> Vec<Value> {
    (0..count)
        .map(|file| {
            let mut sql = String::new();
            for table in 0..tables {
                sql.push_str(&format!("CREATE TABLE s{file}.t{table} (id INT, amount NUMERIC, note TEXT);\n"));
                let source = if file == 0 { format!("s0.t{table}") } else { format!("s{}.t{table}", file - 1) };
                sql.push_str(&format!("CREATE VIEW s{file}.v{table} AS SELECT id, SUM(amount) AS total FROM {source} GROUP BY id;\n"));
            }
            json!({"filename": format!("{file:03}.sql"), "content": sql})
        })
        .collect()
}

async fn ingest(node: &TestNode, files: &[Value]) -> reqwest::Response {
    reqwest::Client::new().post(node.url("/api/v1/ingest")).json(&json!({"dialect": "postgresql", "files": files})).send().await.unwrap()
}

async fn graph_stats(node: &TestNode) -> (u64, u64, u64) {
    let graph: Value = reqwest::get(node.url("/api/v1/graph/stats")).await.unwrap().json().await.unwrap();
    let files: Value = reqwest::get(node.url("/api/v1/files/stats")).await.unwrap().json().await.unwrap();
    let count = |value: &Value| value.as_u64().unwrap_or_else(|| panic!("a count in {graph} {files}"));
    (count(&graph["nodes"]), count(&graph["edges"]), count(&files["total_files"]))
}

#[tokio::test]
async fn a_node_killed_while_storing_an_ingestion_leaves_no_half_written_file() {
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("crash.db");
    let files = corpus(80, 80);

    let node = TestNode::start_with(NodeOptions::default().db(&db)).await;
    let mut dashboard = node.dashboard("/api/v1/ws/dashboard").await;
    let request = {
        let (url, body) = (node.url("/api/v1/ingest"), json!({"dialect": "postgresql", "files": files}));
        tokio::spawn(async move { reqwest::Client::new().post(url).json(&body).send().await })
    };
    // Killed once some files are stored and others are not.
    loop {
        let progress = dashboard.next_of_type("ingestion_progress").await;
        let done = progress["data"]["files_done"].as_u64().unwrap();
        if progress["data"]["phase"] == "storing" && done >= 1 {
            assert!(done < 80, "the ingestion ended before the kill: make the corpus larger");
            break;
        }
    }
    node.signal("KILL");
    assert!(request.await.unwrap().is_err(), "the request died with the node");
    drop(node);

    // The same file, reopened: what it holds is whole files only. Sending the same files again
    // completes the ingestion, and the result is what a store that never crashed holds.
    let restarted = TestNode::start_with(NodeOptions::default().db(&db)).await;
    let (_, _, kept) = graph_stats(&restarted).await;
    assert!(kept < 80, "the kill came before every file was stored ({kept} kept)");
    let response = ingest(&restarted, &files).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    let recovered = graph_stats(&restarted).await;

    let clean = TestNode::start().await;
    assert_eq!(ingest(&clean, &files).await.status(), StatusCode::OK);
    assert_eq!(recovered, graph_stats(&clean).await, "(nodes, edges, files) after the crash and a resend, and without a crash");
}

#[tokio::test]
async fn a_restart_under_load_loses_no_request_and_every_client_comes_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let mut node = TestNode::start_with(NodeOptions::default().env("WEBSOCKET_MAX_CONNECTIONS_PER_IP", 1000)).await;
    let mut dashboards = Vec::new();
    for _ in 0..200 {
        dashboards.push(node.dashboard("/api/v1/ws/dashboard").await);
    }

    // Steady traffic from four clients, a new connection per request (as separate browsers would),
    // so a request is never lost to a keep-alive connection the server is closing.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(std::sync::Mutex::new(Vec::<String>::new())));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (stop, answered, failed, url) = (stop.clone(), answered.clone(), failed.clone(), node.url("/api/v1/stats"));
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).timeout(support::PATIENCE).build().unwrap();
            while !stop.load(Ordering::SeqCst) {
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => answered.fetch_add(1, Ordering::SeqCst),
                    other => {
                        failed.lock().unwrap().push(format!("{:?}", other.map(|response| response.status())));
                        0
                    }
                };
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let restart = reqwest::Client::new().post(node.url("/admin/restart")).send().await.unwrap();
    assert_eq!(restart.status(), StatusCode::OK);

    for dashboard in &mut dashboards {
        let close = dashboard.closed().await.expect("a close frame");
        assert_eq!(u16::from(close.code), 1012, "{close:?}");
    }
    node.wait_for_listening(2).await;
    for _ in 0..200 {
        dashboards.push(node.dashboard("/api/v1/ws/dashboard").await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.unwrap();
    }

    let answered = answered.load(Ordering::SeqCst);
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "requests during the restart failed ({answered} answered): {failed:?}");
    assert!(answered > 100, "the traffic ran ({answered} requests)");
    // Every answered request is an activity event, across both generations of the node. A request's
    // event is written after its answer, so the last few may still be on their way: waited for.
    let metrics = node.poll_json("/api/v1/metrics/activity", |metrics| metrics["top_endpoints"]["GET /api/v1/stats"] == answered).await;
    assert_eq!(metrics["top_endpoints"]["GET /api/v1/stats"], answered, "{metrics}");
}

/// `POST /api/v1/activity` answers 201 "with the stored item": a promise. Posted one at a time and
/// twenty at a time, then SIGKILL: after a restart on the same store, every event that was answered
/// 201 is there (events answered before they were committed were lost to exactly this).
#[tokio::test]
async fn every_activity_event_answered_201_survives_a_kill() {
    let folder = tempfile::tempdir().unwrap();
    let db = folder.path().join("activity.db");
    let node = TestNode::start_with(NodeOptions::default().db(&db)).await;
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let post = |client: reqwest::Client, url: String, answered: std::sync::Arc<std::sync::Mutex<Vec<String>>>, prefix: String| async move {
        for n in 0.. {
            let message = format!("{prefix}-{n}");
            let body = json!({"type": "durability_probe", "message": message});
            match client.post(&url).json(&body).send().await {
                Ok(response) if response.status() == StatusCode::CREATED => answered.lock().unwrap().push(message),
                _ => return,
            }
        }
    };
    let client = reqwest::Client::new();
    let url = node.url("/api/v1/activity");
    let mut posters = vec![tokio::spawn(post(client.clone(), url.clone(), answered.clone(), "sequential".to_owned()))];
    for task in 0..20 {
        posters.push(tokio::spawn(post(client.clone(), url.clone(), answered.clone(), format!("concurrent{task}"))));
    }
    while answered.lock().unwrap().len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    node.signal("KILL");
    for poster in posters {
        poster.await.unwrap();
    }
    drop(node);
    let answered = answered.lock().unwrap().clone();
    assert!(answered.iter().any(|message| message.starts_with("sequential")), "the sequential poster was answered too");

    let restarted = TestNode::start_with(NodeOptions::default().db(&db)).await;
    let stored = |items: &Value| -> std::collections::HashSet<String> {
        items.as_array().into_iter().flatten().filter_map(|item| item["metadata"]["message"].as_str().map(str::to_owned)).collect()
    };
    let url = "/api/v1/activity/recent?type=client_event&limit=500";
    let items = restarted.poll_json(url, |items| answered.iter().all(|message| stored(items).contains(message))).await;
    let missing: Vec<&String> = answered.iter().filter(|message| !stored(&items).contains(*message)).collect();
    assert!(missing.is_empty(), "answered 201 but lost: {missing:?}");
}
