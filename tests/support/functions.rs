//! Running the Lambda functions locally under `cargo lambda watch`, as a developer does.
//!
//! The watcher emulates the Lambda control plane (`--only-lambda-apis`); the functions are this
//! workspace's binaries, started here against its runtime API, so no build runs during a test.
//! HTTP functions answer at `/lambda-url/<function>/<path>`; any function can be invoked through the
//! emulated Lambda API at `/2015-03-31/functions/<function>/invocations` (what
//! `cargo lambda invoke` does). Everything stops when the value drops.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::PATIENCE;

/// The functions of this workspace.
pub const FUNCTIONS: [&str; 7] = [
    "tributary-activity",
    "tributary-admin",
    "tributary-chat",
    "tributary-chat-stream",
    "tributary-ingest",
    "tributary-ws",
    "tributary-stats",
];

/// `cargo lambda watch` and the functions behind it.
pub struct TestFunctions {
    pub port: u16,
    watcher: Child,
    /// The running process of each function; a supervisor thread per function replaces one that
    /// exits, as Lambda starts a new execution environment after a runtime crashes.
    functions: Arc<Mutex<Vec<Child>>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Which function serves an HTTP path (as `template.yaml` routes it: the streamed answer through the
/// chat stream function's URL, every other path through the HTTP API).
pub fn function_for(path: &str) -> &'static str {
    const INGEST: [&str; 4] = ["/api/v1/files", "/api/v1/ingest", "/api/v1/lineage/", "/api/v1/search"];
    if path.starts_with("/api/v1/activity") || path.starts_with("/api/v1/metrics") {
        "tributary-activity"
    } else if INGEST.iter().any(|prefix| path.starts_with(prefix)) {
        "tributary-ingest"
    } else if path == "/api/chat/deep/stream" {
        "tributary-chat-stream"
    } else if path.starts_with("/api/chat/") {
        "tributary-chat"
    } else {
        "tributary-admin"
    }
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn capture(child: &mut Child, logs: &Arc<Mutex<Vec<String>>>, prefix: &str) {
    for stream in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
        let logs = logs.clone();
        let prefix = prefix.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                logs.lock().unwrap().push(format!("{prefix}: {line}"));
            }
        });
    }
}

impl TestFunctions {
    /// Starts the watcher and every function; the functions get `env` (plus logging defaults).
    pub async fn start(env: Vec<(String, String)>) -> TestFunctions {
        let port = free_port();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut watcher = Command::new("cargo")
            .args(["lambda", "watch", "--only-lambda-apis", "--disable-cors", "-A", "127.0.0.1", "-P"])
            .arg(port.to_string())
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting `cargo lambda watch` (scripts/test installs cargo-lambda into .tools/venv)");
        capture(&mut watcher, &logs, "watch");
        let mut functions = TestFunctions { port, watcher, functions: Arc::default(), stopping: Arc::default(), logs };
        let deadline = Instant::now() + PATIENCE * 3;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = functions.watcher.try_wait() {
                panic!("cargo lambda watch exited with {status}:\n{}", functions.logs());
            }
            assert!(Instant::now() < deadline, "cargo lambda watch did not start:\n{}", functions.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (index, name) in FUNCTIONS.into_iter().enumerate() {
            let spawn = {
                let (env, logs) = (env.clone(), functions.logs.clone());
                move || {
                    let mut function = Command::new(function_binary(name))
                        .env("RUST_LOG", "info")
                        .env("LOG_FORMAT", "json")
                        .env("AWS_LAMBDA_FUNCTION_NAME", name)
                        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{name}"))
                        .envs(env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
                        .stdin(Stdio::null())
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap_or_else(|error| panic!("starting {name}: {error}"));
                    capture(&mut function, &logs, name);
                    function
                }
            };
            functions.functions.lock().unwrap().push(spawn());
            // The emulator's runtime API sometimes drops the connection a runtime reuses after a
            // streamed response, and lambda_runtime exits on that error: start it again.
            let (children, stopping, logs) = (functions.functions.clone(), functions.stopping.clone(), functions.logs.clone());
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_millis(20));
                    if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let mut children = children.lock().unwrap();
                    if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(Some(status)) = children[index].try_wait() {
                        logs.lock().unwrap().push(format!("{name}: exited with {status}; starting it again"));
                        children[index] = spawn();
                    }
                }
            });
        }
        functions.wait_until_serving().await;
        functions
    }

    /// Waits until every HTTP function answers. The emulator can lose a request that arrives before
    /// a function's first poll (the request then never gets an answer), so each try has a timeout.
    async fn wait_until_serving(&self) {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
        let deadline = Instant::now() + PATIENCE * 6;
        for function in ["tributary-activity", "tributary-admin", "tributary-chat", "tributary-chat-stream", "tributary-ingest"] {
            let url = format!("http://127.0.0.1:{}/lambda-url/{function}/openapi.json", self.port);
            loop {
                match client.get(&url).send().await {
                    Ok(response) if response.status().is_success() => break,
                    _ => {
                        assert!(Instant::now() < deadline, "{function} never answered:\n{}", self.logs());
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }

    /// `GET`s a JSON document from `url` (on the functions), trying again when the emulator loses the
    /// request (it never answers one that reaches a function being restarted before its first poll).
    pub async fn get_json(&self, url: &str) -> Value {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let deadline = Instant::now() + PATIENCE * 6;
        loop {
            match client.get(url).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    assert!(status.is_success(), "GET {url} answered {status}: {body}\n{}", self.logs());
                    return serde_json::from_str(&body).unwrap_or_else(|error| panic!("GET {url}: {error}: {body}"));
                }
                Err(error) => {
                    assert!(Instant::now() < deadline, "GET {url} never answered ({error}):\n{}", self.logs());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// The URL of an HTTP path, on the function that serves it.
    pub fn url(&self, path: &str) -> String {
        self.url_on(function_for(path), path)
    }

    /// The URL of an HTTP path on a given function (its function URL, in AWS terms).
    pub fn url_on(&self, function: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{function}{path}", self.port)
    }

    /// Invokes a function with `payload` through the emulated Lambda API; returns its result.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Value {
        let url = format!("http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations", self.port);
        let response = reqwest::Client::new()
            .post(&url)
            .json(payload)
            .timeout(PATIENCE * 6)
            .send()
            .await
            .unwrap_or_else(|error| panic!("invoking {function}: {error}\n{}", self.logs()));
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "{function} answered {status}: {body}\n{}", self.logs());
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    }

    /// What the watcher and the functions have logged.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for TestFunctions {
    fn drop(&mut self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut functions = self.functions.lock().unwrap();
        for child in functions.iter_mut().chain(std::iter::once(&mut self.watcher)) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A function's binary, beside the test executable (`scripts/test` builds them first).
fn function_binary(name: &str) -> PathBuf {
    let binary = crate::node_binary().with_file_name(name);
    assert!(binary.exists(), "{} is missing: build it first (`cargo build --workspace --bins`, or run scripts/test)", binary.display());
    binary
}
