//! WebSocket fan-out and idle connections, measured on Tributary's node beside two reference servers
//! in the same run (`bench/references/`):
//!
//! * **FastAPI + uvicorn**, with the connection manager of FastAPI's WebSocket guide: a list of
//!   sockets, a broadcast that awaits each send in turn (the pattern of a Python dashboard backend);
//! * **Node.js `ws`**, serializing once and sending the same string to every client.
//!
//! The clients live in a process of their own (`tributary-bench arrivals`, driven over stdin and
//! stdout), spread over several loopback source addresses so that 50,000 of them fit in the
//! ephemeral ports. For fan-out, the harness triggers one broadcast a second over HTTP; the clients
//! process notes when each client gets it and reports, per broadcast, every client's arrival after
//! the first one's (the spread): p50, p99 and max. The server's CPU time over the broadcasts comes
//! from `/proc`. For idle connections, the server's resident memory with N open, silent connections,
//! minus its memory before them, divided by N.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::{Process, binary, free_port, median, plot, quiet, start_node};

/// A server under test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Tributary,
    FastApi,
    NodeWs,
}

impl Server {
    pub const ALL: [Server; 3] = [Server::Tributary, Server::FastApi, Server::NodeWs];

    pub fn name(self) -> &'static str {
        match self {
            Server::Tributary => "Tributary node",
            Server::FastApi => "FastAPI + uvicorn (reference)",
            Server::NodeWs => "Node.js `ws` (reference)",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Server::Tributary => "/api/v1/ws/dashboard",
            _ => "/ws",
        }
    }

    fn broadcast_path(self) -> &'static str {
        match self {
            Server::Tributary => "/admin/broadcast",
            _ => "/broadcast",
        }
    }
}

fn references() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("references")
}

/// A running server and what the harness reads of it.
pub struct Running {
    pub server: Server,
    pub port: u16,
    process: Process,
    _folder: tempfile::TempDir,
}

impl Running {
    /// Starts `server` ready for `connections` clients and waits until it accepts connections.
    pub async fn start(server: Server, connections: usize) -> anyhow::Result<Running> {
        let folder = tempfile::tempdir()?;
        let port = free_port();
        let process = match server {
            Server::Tributary => {
                let limit = (connections + 1000).to_string();
                start_node(
                    &folder.path().join("fanout.db"),
                    port,
                    &[
                        // Only the harness's broadcasts: no stats ticks or heartbeats in between.
                        ("STATS_INTERVAL_SECONDS", "3600"),
                        ("WEBSOCKET_HEARTBEAT_SECONDS", "3600"),
                        ("WEBSOCKET_MAX_CONNECTIONS_PER_IP", &limit),
                        ("WEBSOCKET_MAX_CONNECTIONS", &limit),
                    ],
                )
                .await?
            }
            Server::FastApi => {
                let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bench-venv/bin/python");
                ensure!(python.exists(), "{} is missing: run scripts/bench, which installs the references", python.display());
                let mut command = Command::new(python);
                quiet(&mut command).arg(references().join("fastapi_server.py")).arg(port.to_string());
                Process(command.spawn().context("starting the FastAPI reference")?)
            }
            Server::NodeWs => {
                ensure!(
                    references().join("node_modules/ws").exists(),
                    "bench/references/node_modules is missing: run scripts/bench, which installs the references"
                );
                let mut command = Command::new("node");
                quiet(&mut command).arg(references().join("ws_server.js")).arg(port.to_string());
                Process(command.spawn().context("starting the Node.js reference (is `node` on PATH?)")?)
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            ensure!(Instant::now() < deadline, "{} did not start", server.name());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Running { server, port, process, _folder: folder })
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.process.0.id().context("the server has exited")
    }

    /// User and system CPU time the server has used, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?))?;
        // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').context("a /proc stat line")?.1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        Ok(ticks / 100.0)
    }

    /// Resident memory, in bytes.
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))?;
        let line = status.lines().find(|line| line.starts_with("VmRSS:")).context("VmRSS in /proc status")?;
        let kib: u64 = line.split_whitespace().nth(1).context("a VmRSS value")?.parse()?;
        Ok(kib * 1024)
    }

    /// Asks the server to send `{"type": "notification", "data": {"seq": seq}}` to every client.
    async fn broadcast(&self, http: &reqwest::Client, seq: u64) -> anyhow::Result<()> {
        let url = format!("http://127.0.0.1:{}{}", self.port, self.server.broadcast_path());
        let body = json!({"type": "notification", "data": {"message": "fan-out benchmark", "seq": seq}});
        let response = http.post(url).json(&body).send().await?;
        ensure!(response.status().is_success(), "{} answered the broadcast with {}", self.server.name(), response.status());
        Ok(())
    }
}

/// The clients process, driven over its stdin and stdout.
pub struct Arrivals {
    _process: Process,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Arrivals {
    /// Starts the process and waits until its `count` clients are connected to `running`.
    pub async fn connect(running: &Running, count: usize) -> anyhow::Result<Arrivals> {
        let mut command = Command::new(binary("tributary-bench")?);
        command
            .args(["arrivals", "--port", &running.port.to_string(), "--path", running.server.path(), "--count", &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().context("the clients' stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("the clients' stdout")?).lines();
        let mut arrivals = Arrivals { _process: Process(child), stdin, stdout };
        let ready = arrivals.next().await?;
        ensure!(ready["connected"] == count, "{} connected only {ready}", running.server.name());
        Ok(arrivals)
    }

    async fn next(&mut self) -> anyhow::Result<Value> {
        let line = self.stdout.next_line().await?.context("the clients process ended")?;
        Ok(serde_json::from_str(&line)?)
    }

    /// Waits until every client has broadcast `seq`; returns the spread (p50, p99, max), in ms.
    async fn spread_of(&mut self, seq: u64) -> anyhow::Result<(f64, f64, f64)> {
        self.stdin.write_all(format!("{seq}\n").as_bytes()).await?;
        let report = self.next().await?;
        if let Some(error) = report.get("error") {
            bail!("broadcast {seq}: {error}");
        }
        let read = |key: &str| report[key].as_f64().unwrap_or(f64::NAN);
        Ok((read("p50_ms"), read("p99_ms"), read("max_ms")))
    }
}

/// One server's fan-out at one size.
pub struct Fanout {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub cpu_percent: f64,
}

/// `broadcasts` broadcasts a second apart to `count` clients of `server`; medians over broadcasts.
pub async fn measure_fanout(server: Server, count: usize, broadcasts: u64) -> anyhow::Result<Fanout> {
    let running = Running::start(server, count).await?;
    let mut clients = Arrivals::connect(&running, count).await?;
    let http = reqwest::Client::new();
    // One broadcast to warm up (first sends allocate buffers); not counted.
    running.broadcast(&http, 0).await?;
    clients.spread_of(0).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (mut p50s, mut p99s, mut maxes) = (Vec::new(), Vec::new(), Vec::new());
    let cpu_before = running.cpu_seconds()?;
    let started = Instant::now();
    let mut next = tokio::time::Instant::now();
    for seq in 1..=broadcasts {
        tokio::time::sleep_until(next).await;
        next += Duration::from_secs(1);
        running.broadcast(&http, seq).await?;
        let (p50, p99, max) = clients.spread_of(seq).await?;
        p50s.push(p50);
        p99s.push(p99);
        maxes.push(max);
    }
    let cpu_percent = (running.cpu_seconds()? - cpu_before) / started.elapsed().as_secs_f64() * 100.0;
    Ok(Fanout { p50: median(&mut p50s), p99: median(&mut p99s), max: median(&mut maxes), cpu_percent })
}

/// Resident memory per idle connection with `count` connections open, in bytes.
pub async fn measure_idle(server: Server, count: usize) -> anyhow::Result<(f64, u64)> {
    let running = Running::start(server, count).await?;
    // A few connections first, so that what every server allocates once is not counted per connection.
    let warm = Arrivals::connect(&running, 10).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = running.resident_bytes()?;
    let _clients = Arrivals::connect(&running, count).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = running.resident_bytes()?;
    drop(warm);
    Ok((after.saturating_sub(before) as f64 / count as f64, after))
}

pub async fn print_fanout(counts: &[usize], broadcasts: u64, runs: usize) -> anyhow::Result<()> {
    println!("## WebSocket fan-out: one broadcast a second, beside the references\n");
    println!(
        "Spread: for each broadcast, every client's arrival after the first client's; p50, p99 and max per \
         broadcast, medians over {broadcasts} broadcasts and {runs} runs. CPU: the server's user and system time \
         over the broadcasts, as a share of one core. Clients in one separate process.\n"
    );
    println!("| Clients | Server | Spread p50 | Spread p99 | Spread max | Server CPU |\n| --- | --- | --- | --- | --- | --- |");
    let mut groups = Vec::new();
    for &count in counts {
        let mut results: HashMap<&str, Vec<Fanout>> = HashMap::new();
        // Runs interleave the servers, so a slow patch of the machine touches all of them.
        for _ in 0..runs {
            for server in Server::ALL {
                let fanout = measure_fanout(server, count, broadcasts).await.with_context(|| format!("{} at {count}", server.name()))?;
                results.entry(server.name()).or_default().push(fanout);
            }
        }
        let mut bars = Vec::new();
        for server in Server::ALL {
            let runs = &results[server.name()];
            let pick = |field: fn(&Fanout) -> f64| median(&mut runs.iter().map(field).collect::<Vec<_>>());
            bars.push((server.name().to_owned(), pick(|run| run.p99)));
            println!(
                "| {count} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} % |",
                server.name(),
                pick(|run| run.p50),
                pick(|run| run.p99),
                pick(|run| run.max),
                pick(|run| run.cpu_percent)
            );
        }
        groups.push(plot::Group { label: format!("{count} clients"), bars });
    }
    println!();
    plot::bar_chart("fanout", "WebSocket fan-out: p99 spread of one broadcast (lower is better)", "ms", &groups)
}

pub async fn print_idle(counts: &[usize], runs: usize, file_limit: u64) -> anyhow::Result<()> {
    println!("## Idle WebSocket connections: resident memory, beside the references\n");
    println!(
        "The server's resident memory (VmRSS) with N idle connections, minus before them, divided by N \
         (median of {runs} runs); kernel socket buffers are not in it, for any server.\n"
    );
    println!("| Connections | Server | Per connection | Resident in all |\n| --- | --- | --- | --- |");
    let mut groups = Vec::new();
    for &count in counts {
        // The server and the clients process each hold one descriptor per connection.
        if count as u64 + 1000 > file_limit {
            println!("| {count} | all | not measured: needs {} open files per process, the limit here is {file_limit} | |", count + 1000);
            continue;
        }
        let mut bars = Vec::new();
        for server in Server::ALL {
            let mut per = Vec::new();
            let mut totals = Vec::new();
            for _ in 0..runs {
                let (bytes, total) = measure_idle(server, count).await.with_context(|| format!("{} at {count}", server.name()))?;
                per.push(bytes);
                totals.push(total as f64);
            }
            let per_connection = median(&mut per) / 1024.0;
            println!("| {count} | {} | {per_connection:.1} KiB | {:.0} MiB |", server.name(), median(&mut totals) / 1024.0 / 1024.0);
            bars.push((server.name().to_owned(), per_connection));
        }
        groups.push(plot::Group { label: format!("{count} idle connections"), bars });
    }
    println!();
    plot::bar_chart("idle", "Resident memory per idle WebSocket connection (lower is better)", "KiB", &groups)
}

/// The clients process: connects `count` clients to `127.0.0.1:port` + `path`, prints `{"connected": n}`, then for each broadcast
/// number read on stdin waits until every client has it and prints the spread of their arrivals.
pub async fn run_arrivals(port: u16, path: &str, count: usize) -> anyhow::Result<()> {
    let seen: Arc<Mutex<HashMap<u64, Vec<Instant>>>> = Arc::default();
    let sockets = connect_clients(port, path, count).await?;
    for socket in sockets {
        let seen = seen.clone();
        tokio::spawn(async move {
            let (_sink, mut stream) = socket.split();
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Text(text) = message {
                    let at = Instant::now();
                    if let Some(seq) = seq_of(text.as_str()) {
                        seen.lock().unwrap().entry(seq).or_default().push(at);
                    }
                }
            }
        });
    }
    println!("{}", json!({ "connected": count }));
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = commands.next_line().await? {
        let seq: u64 = line.trim().parse()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        let arrivals = loop {
            let complete = seen.lock().unwrap().get(&seq).is_some_and(|arrivals| arrivals.len() >= count);
            if complete {
                break seen.lock().unwrap().remove(&seq).unwrap_or_default();
            }
            if Instant::now() > deadline {
                let received = seen.lock().unwrap().get(&seq).map_or(0, Vec::len);
                println!("{}", json!({ "error": format!("only {received} of {count} clients got broadcast {seq}") }));
                break Vec::new();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        if arrivals.is_empty() {
            continue;
        }
        let first = *arrivals.iter().min().unwrap();
        let mut spread: Vec<f64> = arrivals.iter().map(|at| at.duration_since(first).as_secs_f64() * 1000.0).collect();
        spread.sort_by(|a, b| a.total_cmp(b));
        let at = |quantile: f64| spread[((spread.len() - 1) as f64 * quantile).round() as usize];
        println!("{}", json!({ "seq": seq, "p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0) }));
    }
    Ok(())
}

/// Connects `count` WebSocket clients to `127.0.0.1:port` + `path`, 256 handshakes at a time, from
/// source addresses 127.N.0.1, 127.N.1.1, ... (20,000 each).
pub async fn connect_clients(port: u16, path: &str, count: usize) -> anyhow::Result<Vec<WebSocketStream<TcpStream>>> {
    let url = format!("ws://127.0.0.1:{port}{path}");
    let server = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
    // Source addresses of this process's own (127.N.x.1): the ports of an earlier run's clients stay
    // in TIME_WAIT for a minute, and a bound socket cannot share a port with them.
    let network = 1 + (std::process::id() % 250) as u8;
    let connected = futures::stream::iter(0..count)
        .map(|index| {
            let url = url.clone();
            async move {
                let source = Ipv4Addr::new(127, network, (index / 20_000) as u8, 1);
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.set_reuseaddr(true)?;
                socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
                let stream = socket.connect(server).await?;
                stream.set_nodelay(true)?;
                let (socket, _) = tokio_tungstenite::client_async(url, stream).await?;
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<_>>()
        .await;
    connected.into_iter().collect()
}

/// The broadcast number in a message, found without parsing the whole document.
fn seq_of(text: &str) -> Option<u64> {
    let start = text.find("\"seq\":")? + "\"seq\":".len();
    let digits: String = text[start..].chars().skip_while(|c| c.is_whitespace()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Lets this process and the servers it starts hold many sockets.
pub fn raise_file_limit() -> anyhow::Result<u64> {
    let (_, hard) = rlimit::Resource::NOFILE.get()?;
    let wanted = hard.min(1 << 20);
    rlimit::Resource::NOFILE.set(wanted, hard)?;
    Ok(wanted)
}
