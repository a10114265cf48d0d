//! Shared helpers for the black-box tests: start the real binaries (the socket node, and the
//! Lambda functions under `cargo lambda watch`) on free ports with fresh stores, and talk to them
//! over HTTP and WebSocket as clients do.
//!
//! * [`TestNode`] starts `tributary-node` (found beside the test executable, or at
//!   `TRIBUTARY_NODE_BIN`; the test command builds it first);
//! * [`TestFunctions`] runs the functions under `cargo lambda watch`;
//! * [`Deployment`] is either, so one HTTP suite runs against every host;
//! * [`Dashboard`] is a WebSocket client;
//! * [`aws`] points binaries at the local DynamoDB-compatible server the test command starts;
//! * [`LambdaStandIn`] stands in for the Lambda API (the one AWS service with no local server here);
//! * [`Relay`] sits between a binary and a real server, and can cut it off for a while;
//! * [`raw_ws`] speaks WebSocket by hand, for clients that misbehave.

pub mod aws;
mod dashboard;
mod deployment;
mod functions;
mod lambda_api;
mod node;
mod outage;
pub mod raw_ws;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use dashboard::{Dashboard, Refused};
pub use deployment::{Deployment, HostKind};
pub use functions::{TestFunctions, function_for};
pub use lambda_api::LambdaStandIn;
pub use node::{NodeOptions, TestNode, node_binary};
pub use outage::Relay;

/// How long a helper waits for something that should happen promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `GET url` until `done` holds for its JSON body; returns that body.
pub async fn poll_json(url: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + PATIENCE * 3;
    let mut last = Value::Null;
    loop {
        if let Ok(response) = client.get(url).send().await
            && let Ok(body) = response.json::<Value>().await
        {
            if done(&body) {
                return body;
            }
            last = body;
        }
        assert!(Instant::now() < deadline, "GET {url} never satisfied the condition; last answer: {last}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Opens the SQLite file read-only, to check what really is stored.
pub fn open_store(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("opening the store read-only")
}
