//! Whether every client that reads gets every `stats_update`: the node with its normal settings
//! and a 1 s interval, N clients in this process (its own, not the node's) reading all the time, for
//! a number of seconds; then, for each tick sent while they were all connected, how many clients
//! got it. A tick a client did not get is one it skipped (the outbox replaces an unsent
//! `stats_update` with a newer one only for a client that has not taken the one before).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::{fanout, free_port, start_node, wait_for};

/// Runs `clients` clients for `seconds` and prints what they received.
pub async fn print_every_tick(clients: usize, seconds: u64) -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let port = free_port();
    let limit = (clients * 2).to_string();
    let _node = start_node(
        &folder.path().join("ticks.db"),
        port,
        &[("STATS_INTERVAL_SECONDS", "1"), ("WEBSOCKET_MAX_CONNECTIONS_PER_IP", &limit), ("WEBSOCKET_MAX_CONNECTIONS", &limit)],
    )
    .await?;
    wait_for(&format!("http://127.0.0.1:{port}/health")).await?;
    let sockets = fanout::connect_clients(port, "/api/v1/ws/dashboard", clients).await?;
    let received: Arc<Mutex<Vec<BTreeSet<String>>>> = Arc::new(Mutex::new(vec![BTreeSet::new(); clients]));
    let readers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(index, mut socket)| {
            let received = received.clone();
            tokio::spawn(async move {
                while let Some(Ok(message)) = socket.next().await {
                    if let Message::Text(text) = message
                        && text.contains("\"stats_update\"")
                        && let Some(stamp) = timestamp_of(&text)
                    {
                        received.lock().unwrap()[index].insert(stamp);
                    }
                }
            })
        })
        .collect();
    // Ticks count from the moment all are connected; the last ones get two seconds to arrive.
    let since = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let until = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for reader in &readers {
        reader.abort();
    }
    let received = received.lock().unwrap();
    let within = |stamp: &&String| chrono::DateTime::parse_from_rfc3339(stamp).is_ok_and(|at| at >= since && at <= until);
    let sent: BTreeSet<&String> = received.iter().flatten().filter(within).collect();
    let missed: Vec<usize> = received.iter().map(|seen| sent.len() - seen.iter().filter(within).count()).collect();
    let clients_missing = missed.iter().filter(|missed| **missed > 0).count();
    let ticks_missed: usize = missed.iter().sum();
    println!("## Every stats tick to every reading client\n");
    println!(
        "| Clients | Seconds | Ticks sent | Clients that missed a tick | Ticks missed in all |\n| ---: | ---: | ---: | ---: | ---: |\n\
         | {clients} | {seconds} | {} | {clients_missing} | {ticks_missed} |\n",
        sent.len()
    );
    Ok(())
}

/// The envelope's `timestamp`, found without parsing the whole document.
fn timestamp_of(text: &str) -> Option<String> {
    let start = text.rfind("\"timestamp\":\"")? + "\"timestamp\":\"".len();
    Some(text[start..].split('"').next()?.to_owned())
}
