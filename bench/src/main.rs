//! Tributary's benchmark harness. It measures release binaries on loopback, with the load in
//! processes of its own, and reports medians:
//!
//! * `sizes`: the release binary of the node and of each function;
//! * `startup`: from process start to the first answered request, for the node and each function
//!   (the functions under `cargo lambda watch --only-lambda-apis`, the Lambda emulator);
//! * `tick`: one stats tick from `tributary-stats` through the node's `@connections` API to N real
//!   WebSocket clients, beside the reference in the same run: the node's own fan-out of one message to
//!   the same clients (`POST /admin/broadcast`);
//! * `ingest`: ingestion throughput, a 100 KB T-SQL file and a realistic SSMS script on the embedded
//!   store, beside `sqlparser` and `sqlglot` parsing the same SQL (see [`ingest`]);
//! * `coverage`: the share of sqlglot's own dialect-test statements Tributary reads, beside sqlglot
//!   (see [`coverage`]);
//! * `every-tick`: whether every reading client gets every `stats_update` at 10,000 clients and a
//!   1 s interval (see [`ticks`]);
//! * `activity`: activity events recorded durably, as `POST /api/v1/activity` does, beside recording
//!   without waiting (see [`activity`]);
//! * `fanout` and `idle`: WebSocket fan-out to 1,000 and 10,000 clients and memory per idle
//!   connection, beside FastAPI + uvicorn and Node.js `ws` (see [`fanout`]);
//! * `http`: `GET /api/v1/stats` and `POST /api/chat/text` at a fixed concurrency, beside FastAPI
//!   (see [`http`]);
//! * `all`: everything, as a Markdown report for `docs/benchmarks.md`.
//!
//! The comparisons with reference servers also draw their bar charts into `docs/plots/` (see [`plot`]).
//!
//! `scripts/bench` installs what it needs (`cargo-lambda` on `PATH`, the reference servers), builds
//! the release binaries and runs it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod activity;
mod chat;
mod coverage;
mod fanout;
mod http;
mod ingest;
mod plot;
mod ticks;

use anyhow::{Context, bail, ensure};
use clap::{Parser, Subcommand};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(name = "tributary-bench", about = "Benchmarks Tributary's release binaries on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Release binary sizes.
    Sizes,
    /// Process start to first answered request.
    Startup {
        #[arg(long, default_value_t = 9)]
        runs: usize,
    },
    /// One stats tick through @connections, beside the node's own fan-out.
    Tick {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        connections: Vec<usize>,
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Ingestion throughput and a 100 KB T-SQL file, beside sqlparser and sqlglot.
    Ingest {
        #[arg(long, default_value_t = 9)]
        runs: usize,
    },
    /// The share of sqlglot's dialect-test statements Tributary reads, beside sqlglot.
    Coverage,
    /// Whether every reading client gets every `stats_update` (1 s interval).
    EveryTick {
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Activity events recorded durably (as `POST /api/v1/activity` does) beside recording without waiting.
    Activity {
        #[arg(long, default_value_t = 5_000)]
        events: usize,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Deep mode's context on a 10,000-node graph, beside search and a lineage walk.
    Chat {
        #[arg(long, default_value_t = 50)]
        rounds: usize,
    },
    /// The chat question set (tests/fixtures/chat), graded, beside BM25's statements alone.
    Questions {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// WebSocket fan-out to N clients, one broadcast a second, beside FastAPI and Node.js `ws`.
    Fanout {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        clients: Vec<usize>,
        #[arg(long, default_value_t = 20)]
        broadcasts: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Resident memory per idle WebSocket connection, beside FastAPI and Node.js `ws`.
    Idle {
        #[arg(long, value_delimiter = ',', default_value = "10000,50000")]
        connections: Vec<usize>,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// `GET /api/v1/stats` and `POST /api/chat/text` at a fixed concurrency, beside FastAPI.
    Http {
        #[arg(long, default_value_t = 32)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Everything, as Markdown.
    All,
    /// Internal: the HTTP load generator; prints one JSON line.
    #[command(hide = true)]
    Load {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        method: String,
        #[arg(long)]
        path: String,
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        connections: usize,
        #[arg(long)]
        seconds: u64,
    },
    /// Internal: hold N WebSocket clients and report the spread of each broadcast's arrivals.
    #[command(hide = true)]
    Arrivals {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        path: String,
        #[arg(long)]
        count: usize,
    },
    /// Internal: hold N WebSocket clients and time message arrivals (driven over stdin/stdout).
    Clients {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        path: String,
        #[arg(long)]
        count: usize,
    },
}

const FUNCTIONS: [&str; 7] = [
    "tributary-activity",
    "tributary-admin",
    "tributary-chat",
    "tributary-chat-stream",
    "tributary-ingest",
    "tributary-ws",
    "tributary-stats",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Sizes => print_sizes()?,
        Task::Startup { runs } => print_startup(runs).await?,
        Task::Tick { connections, rounds } => print_ticks(&connections, rounds).await?,
        Task::Ingest { runs } => ingest::print_ingestion(runs).await?,
        Task::Coverage => coverage::print_coverage()?,
        Task::Activity { events, runs } => activity::print_activity(events, runs).await?,
        Task::EveryTick { clients, seconds } => {
            fanout::raise_file_limit()?;
            ticks::print_every_tick(clients, seconds).await?
        }
        Task::Chat { rounds } => chat::print_chat(rounds).await?,
        Task::Questions { rounds } => chat::print_questions(rounds).await?,
        Task::Fanout { clients, broadcasts, runs } => {
            fanout::raise_file_limit()?;
            fanout::print_fanout(&clients, broadcasts, runs).await?;
        }
        Task::Idle { connections, runs } => {
            let file_limit = fanout::raise_file_limit()?;
            fanout::print_idle(&connections, runs, file_limit).await?;
        }
        Task::Http { connections, seconds, runs } => http::print_http(connections, seconds, runs).await?,
        Task::Load { port, method, path, body, connections, seconds } => {
            http::run_load(port, &method, &path, body, connections, seconds).await?
        }
        Task::Arrivals { port, path, count } => {
            fanout::raise_file_limit()?;
            fanout::run_arrivals(port, &path, count).await?;
        }
        Task::All => {
            println!("## Machine\n\n{}\n", machine());
            print_sizes()?;
            print_startup(9).await?;
            print_ticks(&[1000, 10_000], 5).await?;
            ingest::print_ingestion(9).await?;
            coverage::print_coverage()?;
            activity::print_activity(5_000, 3).await?;
            fanout::raise_file_limit()?;
            ticks::print_every_tick(10_000, 60).await?;
            chat::print_chat(50).await?;
            chat::print_questions(5).await?;
            http::print_http(32, 10, 3).await?;
            let file_limit = fanout::raise_file_limit()?;
            fanout::print_fanout(&[1000, 10_000], 20, 3).await?;
            fanout::print_idle(&[10_000, 50_000], 3, file_limit).await?;
        }
        Task::Clients { port, path, count } => run_clients(port, &path, count).await?,
    }
    Ok(())
}

fn release_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release")
}

fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = release_dir().join(name);
    ensure!(path.exists(), "{} is missing: run `cargo build --release --bins` first", path.display());
    Ok(path)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find(|line| line.starts_with("model name")).map(|line| line.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| info.lines().next().and_then(|line| line.split_whitespace().nth(1)).and_then(|kb| kb.parse::<u64>().ok()))
        .map(|kb| format!("{} GiB", kb / 1024 / 1024))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, {memory} RAM, Linux, loopback only")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    if values.is_empty() { 0.0 } else { values[values.len() / 2] }
}

fn print_sizes() -> anyhow::Result<()> {
    println!("## Release binary sizes (x86_64, stripped, thin LTO)\n\n| Binary | Size |\n| --- | --- |");
    for name in std::iter::once("tributary-node").chain(FUNCTIONS) {
        let bytes = std::fs::metadata(binary(name)?)?.len();
        println!("| `{name}` | {:.1} MiB |", bytes as f64 / 1024.0 / 1024.0);
    }
    println!();
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills its child process when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn quiet(command: &mut Command) -> &mut Command {
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).kill_on_drop(true)
}

/// Environment every binary gets: dummy AWS credentials (the SDK signs even local calls) and quiet logs.
fn base_env(command: &mut Command) -> &mut Command {
    command
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .env("LOG_FORMAT", "json")
}

async fn start_node(db: &Path, port: u16, extra: &[(&str, &str)]) -> anyhow::Result<Process> {
    let mut command = Command::new(binary("tributary-node")?);
    base_env(quiet(&mut command)).env("TRIBUTARY_BIND", format!("127.0.0.1:{port}")).env("TRIBUTARY_DB", db).envs(extra.iter().copied());
    Ok(Process(command.spawn()?))
}

async fn wait_for(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The Lambda emulator, with no function of its own.
async fn start_emulator(port: u16) -> anyhow::Result<Process> {
    let mut command = Command::new("cargo");
    quiet(&mut command).args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P"]).arg(port.to_string());
    let process = Process(command.spawn().context("starting `cargo lambda watch` (put .tools/venv/bin on PATH)")?);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        ensure!(Instant::now() < deadline, "cargo lambda watch did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(process)
}

fn start_function(name: &str, emulator_port: u16, env: &[(&str, String)]) -> anyhow::Result<Process> {
    let mut command = Command::new(binary(name)?);
    base_env(quiet(&mut command))
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{emulator_port}/.rt/{name}"))
        .envs(env.iter().map(|(key, value)| (*key, value.as_str())));
    Ok(Process(command.spawn()?))
}

async fn invoke(emulator_port: u16, function: &str, payload: &Value) -> anyhow::Result<Value> {
    let url = format!("http://127.0.0.1:{emulator_port}/2015-03-31/functions/{function}/invocations");
    let response = reqwest::Client::new().post(url).json(payload).timeout(Duration::from_secs(120)).send().await?;
    ensure!(response.status().is_success(), "{function} answered {}", response.status());
    Ok(response.json().await?)
}

fn websocket_event(route: &str, id: &str) -> Value {
    json!({
        "headers": {},
        "requestContext": {
            "routeKey": route, "connectionId": id, "eventType": "CONNECT", "connectedAt": 0, "requestTimeEpoch": 0,
            "identity": { "sourceIp": "203.0.113.1" }
        },
        "isBase64Encoded": false
    })
}

async fn print_startup(runs: usize) -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let mut rows = Vec::new();

    let mut node = Vec::new();
    for run in 0..runs {
        let port = free_port();
        let started = Instant::now();
        let _process = start_node(&folder.path().join(format!("node-{run}.db")), port, &[]).await?;
        wait_for(&format!("http://127.0.0.1:{port}/health")).await?;
        node.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    rows.push(("tributary-node", "GET /health", median(&mut node)));

    let client = reqwest::Client::new();
    for function in FUNCTIONS {
        let mut times = Vec::new();
        for run in 0..runs {
            // A fresh emulator each time: a killed instance's pending poll would swallow the next
            // invocation. Its start is not part of the measurement.
            let emulator_port = free_port();
            let _emulator = start_emulator(emulator_port).await?;
            let db = folder.path().join(format!("{function}-{run}.db")).display().to_string();
            let env = [("TRIBUTARY_DB", db), ("STATS_TICKS", "1".to_owned()), ("WEBSOCKET_CALLBACK_URL", "http://127.0.0.1:9".to_owned())];
            let started = Instant::now();
            let _process = start_function(function, emulator_port, &env)?;
            match function {
                "tributary-ws" => {
                    invoke(emulator_port, function, &websocket_event("$disconnect", &format!("c{run}"))).await?;
                }
                "tributary-stats" => {
                    invoke(emulator_port, function, &json!({"source": "aws.events", "detail-type": "Scheduled Event"})).await?;
                }
                "tributary-chat" | "tributary-chat-stream" => {
                    let path = if function == "tributary-chat" { "/api/chat/graph" } else { "/api/chat/deep/stream" };
                    let url = format!("http://127.0.0.1:{emulator_port}/lambda-url/{function}{path}");
                    let response = client.post(url).json(&json!({"query": "What is in the database?"})).send().await?;
                    ensure!(response.status().is_success(), "{function} answered {}", response.status());
                    response.bytes().await?;
                }
                _ => {
                    let path = match function {
                        "tributary-admin" => "/health",
                        "tributary-ingest" => "/api/v1/files/stats",
                        _ => "/api/v1/metrics/activity",
                    };
                    let url = format!("http://127.0.0.1:{emulator_port}/lambda-url/{function}{path}");
                    let response = client.get(url).send().await?;
                    ensure!(response.status().is_success(), "{function} answered {}", response.status());
                }
            }
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        let request = match function {
            "tributary-ws" => "`$disconnect` event",
            "tributary-stats" => "scheduled event (1 tick, no connections)",
            "tributary-admin" => "GET /health",
            "tributary-ingest" => "GET /api/v1/files/stats",
            "tributary-chat" => "POST /api/chat/graph (extractive, empty graph)",
            "tributary-chat-stream" => "POST /api/chat/deep/stream, read to the end",
            _ => "GET /api/v1/metrics/activity",
        };
        rows.push((function, request, median(&mut times)));
    }
    println!("## Start-up: process start to first answered request (median of {runs}, SQLite store)\n");
    println!("| Binary | First request | Time |\n| --- | --- | --- |");
    for (name, request, ms) in rows {
        println!("| `{name}` | {request} | {ms:.1} ms |");
    }
    println!();
    Ok(())
}

/// The client process: one line per measurement on stdout.
struct Clients {
    process: Process,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    stdin: tokio::process::ChildStdin,
}

impl Clients {
    async fn start(port: u16, path: &str, count: usize) -> anyhow::Result<Clients> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["clients", "--port", &port.to_string(), "--path", path, "--count", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let stdin = child.stdin.take().unwrap();
        let mut clients = Clients { process: Process(child), lines, stdin };
        let ready = clients.next().await?;
        ensure!(ready["connected"] == count, "clients: {ready}");
        Ok(clients)
    }

    async fn next(&mut self) -> anyhow::Result<Value> {
        let line = self.lines.next_line().await?.context("the client process ended")?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Arms a measurement: time until every client has a message of `kind`.
    async fn expect(&mut self, kind: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{kind}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let armed = self.next().await?;
        ensure!(armed["armed"] == kind, "clients: {armed}");
        Ok(())
    }
}

async fn print_ticks(sizes: &[usize], rounds: usize) -> anyhow::Result<()> {
    println!("## One stats tick through `@connections`, beside the node's own fan-out\n");
    println!("Time from the trigger until every client has the message (median of {rounds} rounds).\n");
    println!(
        "| Clients | `tributary-stats` tick via `@connections` (all received) | tick as the function reports it | reference: node fan-out via `POST /admin/broadcast` (all received) |"
    );
    println!("| --- | --- | --- | --- |");
    for &count in sizes {
        let (tick, reported, reference) = measure_tick(count, rounds).await?;
        println!("| {count} | {tick:.0} ms | {reported:.0} ms | {reference:.0} ms |");
    }
    println!();
    Ok(())
}

/// The node's `@connections` credential, which the stats function presents.
const TICK_CONNECTIONS_TOKEN: &str = "bench-connections-credential";

async fn measure_tick(count: usize, rounds: usize) -> anyhow::Result<(f64, f64, f64)> {
    let folder = tempfile::tempdir()?;
    let db = folder.path().join("tick.db");
    let node_port = free_port();
    let limit = (count * 2).to_string();
    let _node = start_node(
        &db,
        node_port,
        &[
            ("STATS_INTERVAL_SECONDS", "3600"),
            ("WEBSOCKET_HEARTBEAT_SECONDS", "3600"),
            ("WEBSOCKET_MAX_CONNECTIONS_PER_IP", &limit),
            ("WEBSOCKET_MAX_CONNECTIONS", &limit),
            ("CONNECTIONS_TOKEN", TICK_CONNECTIONS_TOKEN),
        ],
    )
    .await?;
    wait_for(&format!("http://127.0.0.1:{node_port}/health")).await?;
    let mut clients = Clients::start(node_port, "/api/v1/ws/dashboard", count).await?;

    let emulator_port = free_port();
    let _emulator = start_emulator(emulator_port).await?;
    let env = [
        ("TRIBUTARY_DB", db.display().to_string()),
        ("WEBSOCKET_CALLBACK_URL", format!("http://127.0.0.1:{node_port}")),
        ("CONNECTIONS_TOKEN", TICK_CONNECTIONS_TOKEN.to_owned()),
        ("STATS_TICKS", "1".to_owned()),
    ];
    let _stats = start_function("tributary-stats", emulator_port, &env)?;
    let http = reqwest::Client::new();
    let (mut ticks, mut reported, mut references) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        clients.expect("notification").await?;
        let response = http
            .post(format!("http://127.0.0.1:{node_port}/admin/broadcast"))
            .json(&json!({"type": "notification", "data": {"message": "reference"}}))
            .send()
            .await?;
        ensure!(response.status().is_success(), "broadcast answered {}", response.status());
        references.push(clients.next().await?["all_ms"].as_f64().unwrap_or(f64::NAN));

        clients.expect("stats_update").await?;
        let run = invoke(emulator_port, "tributary-stats", &json!({"source": "aws.events"})).await?;
        let tick = &run["ticks"][0];
        if tick["delivered"].as_u64() != Some(count as u64) {
            bail!("the tick reached {} of {count}: {run}", tick["delivered"]);
        }
        reported.push(tick["duration_ms"].as_f64().unwrap_or(f64::NAN));
        ticks.push(clients.next().await?["all_ms"].as_f64().unwrap_or(f64::NAN));
    }
    drop(clients.process);
    Ok((median(&mut ticks), median(&mut reported), median(&mut references)))
}

/// Holds `count` clients; for each `kind` read on stdin, reports when all have a message of it.
async fn run_clients(port: u16, path: &str, count: usize) -> anyhow::Result<()> {
    let received = Arc::new(AtomicUsize::new(0));
    let armed_kind = Arc::new(std::sync::Mutex::new(String::new()));
    let sockets = fanout::connect_clients(port, path, count).await?;
    for socket in sockets {
        let received = received.clone();
        let armed_kind = armed_kind.clone();
        tokio::spawn(async move {
            let (_sink, mut stream) = socket.split();
            let mut counted_for = String::new();
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    let kind = armed_kind.lock().unwrap().clone();
                    if !kind.is_empty() && kind != counted_for && text.as_str().contains(&format!("\"type\":\"{kind}\"")) {
                        counted_for = kind;
                        received.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
    }
    println!("{}", json!({ "connected": count }));
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    let mut round = 0;
    while let Some(kind) = commands.next_line().await? {
        round += 1;
        received.store(0, Ordering::SeqCst);
        // A new round: the same kind twice in a row still counts afresh.
        *armed_kind.lock().unwrap() = kind.clone();
        let started = Instant::now();
        println!("{}", json!({ "armed": kind }));
        while received.load(Ordering::SeqCst) < count {
            tokio::time::sleep(Duration::from_micros(200)).await;
            if started.elapsed() > Duration::from_secs(120) {
                bail!("round {round}: only {} of {count} clients got {kind}", received.load(Ordering::SeqCst));
            }
        }
        println!("{}", json!({ "all_ms": started.elapsed().as_secs_f64() * 1000.0 }));
        armed_kind.lock().unwrap().clear();
    }
    Ok(())
}
