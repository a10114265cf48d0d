//! Shared helpers for the black-box tests: start the real `tributary-node` binary on a free port
//! with a fresh SQLite file, and talk to it over HTTP and WebSocket as clients do.
//!
//! The binary is found beside the test executable (`target/<profile>/tributary-node`), or at
//! `TRIBUTARY_NODE_BIN`. The test command (`scripts/test`) builds it first.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a helper waits for something the node should do promptly.
pub const PATIENCE: Duration = Duration::from_secs(10);

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
}

/// A running node, killed when dropped.
pub struct TestNode {
    pub addr: SocketAddr,
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
        let mut node = TestNode { addr: "127.0.0.1:0".parse().unwrap(), db, child, logs, listening, _folder: folder };
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
    pub async fn poll_json(&self, path: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(response) = client.get(self.url(path)).send().await
                && let Ok(body) = response.json::<Value>().await
                && done(&body)
            {
                return body;
            }
            assert!(Instant::now() < deadline, "GET {path} never satisfied the condition:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dashboard WebSocket client.
pub struct Dashboard {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub connection_id: String,
}

/// Why an upgrade was refused: the HTTP status and the JSON body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
}

impl Dashboard {
    /// Connects without reading anything.
    pub async fn connect(url: &str) -> Result<Dashboard, Refused> {
        Dashboard::connect_with(url, None, None).await
    }

    /// Connects from a given local address (any 127.x.y.z works on Linux) with a given `Origin`.
    pub async fn connect_with(url: &str, from: Option<IpAddr>, origin: Option<&str>) -> Result<Dashboard, Refused> {
        let mut request = url.into_client_request().unwrap();
        if let Some(origin) = origin {
            request.headers_mut().insert("origin", origin.parse().unwrap());
        }
        let host = request.uri().host().unwrap().to_owned();
        let port = request.uri().port_u16().unwrap();
        let target: SocketAddr = format!("{host}:{port}").parse().unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(from) = from {
            socket.bind(SocketAddr::new(from, 0)).unwrap();
        }
        let stream = socket.connect(target).await.expect("TCP connect");
        match tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream)).await {
            Ok((socket, _)) => Ok(Dashboard { socket, connection_id: String::new() }),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response.body().as_ref().and_then(|body| serde_json::from_slice(body).ok()).unwrap_or(Value::Null);
                Err(Refused { status, body })
            }
            Err(error) => panic!("WebSocket handshake failed: {error}"),
        }
    }

    /// The next text message, parsed (pings and pongs are skipped).
    pub async fn next_json(&mut self) -> Value {
        match self.next_message().await {
            Some(Message::Text(text)) => serde_json::from_str(text.as_str()).expect("messages are JSON"),
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// The next message of `kind`, skipping others.
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next_json().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// The next data or close frame (`None` when the stream ends).
    pub async fn next_message(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.socket.next()).await.expect("a message in time");
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Reads until the server closes; returns the close frame (skipping any other messages).
    /// Like a browser, it answers the close, completing the handshake.
    pub async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match self.next_message().await {
                Some(Message::Close(frame)) => {
                    // Polling on flushes the close reply the protocol layer queued.
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.next()).await;
                    return frame;
                }
                Some(_) => continue,
                None => return None,
            }
        }
    }

    pub async fn send_json(&mut self, value: Value) {
        self.socket.send(Message::Text(value.to_string().into())).await.expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.socket.send(Message::Text(text.to_owned().into())).await.expect("send");
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// Opens the SQLite file read-only, to check what really is stored.
pub fn open_store(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("opening the store read-only")
}
