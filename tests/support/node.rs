//! Starting the real `tributary-node` binary.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Dashboard, PATIENCE};

/// The `tributary-node` binary under test.
pub fn node_binary() -> PathBuf {
    if let Ok(path) = std::env::var("TRIBUTARY_NODE_BIN") {
        return PathBuf::from(path);
    }
    let test_exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test binary> -> target/<profile>/tributary-node
    let profile_dir = test_exe.parent().and_then(Path::parent).expect("target/<profile>");
    let binary = profile_dir.join("tributary-node");
    assert!(binary.exists(), "{} is missing: build it first (`cargo build -p tributary-node`, or run scripts/test)", binary.display());
    binary
}

/// How to start a node.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// Extra environment variables (the node starts with an otherwise empty environment).
    pub env: Vec<(String, String)>,
    /// Use this database file instead of a fresh one.
    pub db: Option<PathBuf>,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Start in this folder, with neither `TRIBUTARY_DB` nor `--db`: the default path applies.
    pub default_db_in: Option<PathBuf>,
}

impl NodeOptions {
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }

    pub fn db(mut self, path: impl Into<PathBuf>) -> Self {
        self.db = Some(path.into());
        self
    }

    pub fn arg(mut self, arg: impl ToString) -> Self {
        self.args.push(arg.to_string());
        self
    }

    pub fn default_db_in(mut self, folder: impl Into<PathBuf>) -> Self {
        self.default_db_in = Some(folder.into());
        self
    }

    /// Use the DynamoDB backend: the local server the test command started, and `table`.
    pub fn dynamodb(mut self, table: &str) -> Self {
        self.env.extend(crate::aws::dynamodb_env(table));
        self
    }
}

/// A running node, killed when dropped.
pub struct TestNode {
    pub addr: SocketAddr,
    store_backend: String,
    pub db: PathBuf,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    listening: Arc<Mutex<Vec<SocketAddr>>>,
    _folder: Option<tempfile::TempDir>,
}

impl TestNode {
    /// A node with default settings on a fresh database.
    pub async fn start() -> TestNode {
        TestNode::start_with(NodeOptions::default()).await
    }

    pub async fn start_with(options: NodeOptions) -> TestNode {
        let (folder, db) = match (&options.db, &options.default_db_in) {
            (_, Some(cwd)) => (None, cwd.join("data/tributary.db")),
            (Some(db), None) => (None, db.clone()),
            (None, None) => {
                let folder = tempfile::tempdir().expect("a temporary folder");
                let db = folder.path().join("tributary.db");
                (Some(folder), db)
            }
        };
        let mut command = Command::new(node_binary());
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json")
            .env("TRIBUTARY_BIND", "127.0.0.1:0");
        match &options.default_db_in {
            Some(cwd) => {
                command.current_dir(cwd);
            }
            None => {
                command.env("TRIBUTARY_DB", &db);
            }
        }
        command
            .args(&options.args)
            .envs(options.env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting tributary-node");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let listening = Arc::new(Mutex::new(Vec::new()));
        for stream in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
            let logs = logs.clone();
            let listening = listening.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Ok(entry) = serde_json::from_str::<Value>(&line)
                        && entry["message"].as_str().is_some_and(|message| message.starts_with("listening on"))
                        && let Some(address) = entry["address"].as_str().and_then(|address| address.parse().ok())
                    {
                        listening.lock().unwrap().push(address);
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        let store_backend = options
            .env
            .iter()
            .rev()
            .find(|(key, _)| key == "TRIBUTARY_STORE")
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| "sqlite".into());
        let mut node = TestNode { addr: "127.0.0.1:0".parse().unwrap(), store_backend, db, child, logs, listening, _folder: folder };
        node.addr = node.wait_for_listening(1).await;
        node
    }

    /// Waits until the node has said "listening" `times` times (once per generation).
    pub async fn wait_for_listening(&mut self, times: usize) -> SocketAddr {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(address) = self.listening.lock().unwrap().get(times - 1) {
                return *address;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("tributary-node exited with {status} before listening:\n{}", self.logs());
            }
            assert!(Instant::now() < deadline, "tributary-node did not start listening:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Whether this node runs on the DynamoDB backend.
    pub fn on_dynamodb(&self) -> bool {
        self.store_backend == "dynamodb"
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the node has logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// The log lines, parsed.
    pub fn log_entries(&self) -> Vec<Value> {
        self.logs.lock().unwrap().iter().filter_map(|line| serde_json::from_str(line).ok()).collect()
    }

    /// Sends a signal to the node.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the node to exit.
    pub async fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "tributary-node did not exit:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Opens a dashboard WebSocket on `path` and returns it after the `connection_ack`.
    pub async fn dashboard(&self, path: &str) -> Dashboard {
        let mut dashboard = Dashboard::connect(&self.ws_url(path)).await.expect("WebSocket upgrade");
        let ack = dashboard.next_json().await;
        assert_eq!(ack["type"], "connection_ack", "first message: {ack}");
        dashboard.connection_id = ack["data"]["connection_id"].as_str().unwrap_or_default().to_owned();
        dashboard
    }

    /// Polls `GET path` until `done` holds for its JSON body.
    pub async fn poll_json(&self, path: &str, done: impl FnMut(&Value) -> bool) -> Value {
        crate::poll_json(&self.url(path), done).await
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
