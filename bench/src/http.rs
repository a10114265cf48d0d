//! HTTP throughput and latency at a fixed concurrency: `GET /api/v1/stats` and
//! `POST /api/chat/text` (extractive) on Tributary's node, beside the FastAPI reference serving
//! the same JSON shapes (`bench/references/fastapi_server.py`) in the same run.
//!
//! The load comes from a process of its own (`tributary-bench load`): N keep-alive HTTP/1.1
//! connections, each sending its next request as soon as the last is answered, for a warm-up and
//! then a measured window; it reports requests per second and the latency distribution of the
//! measured window as one JSON line. The node runs as a user would have it: every request is an
//! activity event written to its SQLite store, and the store holds a seeded graph of more than
//! 10,000 nodes, which the stats count. Text mode with the extractive provider answers from the
//! question alone (no retrieval, no model); the reference's answer is a fixed string of the same
//! shape.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::process::Command;

use crate::fanout::{Running, Server};
use crate::ingest::warehouse_file;
use crate::{median, plot};

/// One measured workload.
#[derive(Clone, Copy)]
struct Workload {
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
}

const STATS: Workload = Workload { method: "GET", path: "/api/v1/stats", body: None };
const CHAT: Workload = Workload { method: "POST", path: "/api/chat/text", body: Some(r#"{"query": "What feeds gold.revenue_f3_u10?"}"#) };

/// What the load process measured.
struct Measured {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// Prints the HTTP section: each workload on each server, `runs` times, medians.
pub async fn print_http(connections: usize, seconds: u64, runs: usize) -> anyhow::Result<()> {
    println!(
        "## HTTP at a fixed concurrency\n\n{connections} keep-alive connections from a separate load process, {seconds} s measured after 1 s of warm-up, median of {runs} runs. The node records every request as an activity event in SQLite, and its store holds a seeded graph ({} files, over 10,000 nodes); text mode with the extractive provider answers from the question alone, as the reference does.\n",
        SEED_FILES
    );
    println!("| Route | Server | Requests/s | p50 | p99 | Non-2xx |\n| --- | --- | --- | --- | --- | --- |");
    let mut groups = Vec::new();
    for workload in [STATS, CHAT] {
        let mut bars = Vec::new();
        for server in [Server::Tributary, Server::FastApi] {
            let running = Running::start(server, 0).await?;
            if server == Server::Tributary {
                seed(running.port).await?;
            }
            let mut results = Vec::new();
            for _ in 0..runs {
                results.push(measure(running.port, workload, connections, seconds).await?);
            }
            let (mut rps, mut p50, mut p99): (Vec<f64>, Vec<f64>, Vec<f64>) = (
                results.iter().map(|result| result.requests_per_second).collect(),
                results.iter().map(|result| result.p50_ms).collect(),
                results.iter().map(|result| result.p99_ms).collect(),
            );
            let errors: u64 = results.iter().map(|result| result.errors).sum();
            let requests_per_second = median(&mut rps);
            println!(
                "| `{} {}` | {} | {requests_per_second:.0} | {:.2} ms | {:.2} ms | {errors} |",
                workload.method,
                workload.path,
                server.name(),
                median(&mut p50),
                median(&mut p99)
            );
            bars.push((server.name().to_owned(), requests_per_second));
        }
        groups.push(plot::Group { label: format!("{} {}", workload.method, workload.path), bars });
    }
    println!();
    plot::bar_chart("http", &format!("HTTP requests per second at {connections} connections (higher is better)"), "req/s", &groups)
}

const SEED_FILES: usize = 10;

/// Ingests the chat benchmark's warehouse (10 files of 50 KB, more than 10,000 nodes).
async fn seed(port: u16) -> anyhow::Result<()> {
    let files: Vec<Value> =
        (0..SEED_FILES).map(|file| json!({"filename": format!("wh{file:02}.sql"), "content": warehouse_file(file, 50 * 1024)})).collect();
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/v1/ingest"))
        .json(&json!({"dialect": "postgresql", "files": files}))
        .timeout(Duration::from_secs(300))
        .send()
        .await?;
    ensure!(response.status().is_success(), "seeding the node answered {}", response.status());
    Ok(())
}

/// Runs the load process once against `port`.
async fn measure(port: u16, workload: Workload, connections: usize, seconds: u64) -> anyhow::Result<Measured> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .args(["load", "--port", &port.to_string(), "--method", workload.method, "--path", workload.path])
        .args(["--connections", &connections.to_string(), "--seconds", &seconds.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if let Some(body) = workload.body {
        command.args(["--body", body]);
    }
    let output = command.output().await.context("running the load process")?;
    ensure!(output.status.success(), "the load process failed");
    let report: Value = serde_json::from_slice(&output.stdout).context("the load process's report")?;
    let number = |key: &str| report[key].as_f64().with_context(|| format!("{key} in {report}"));
    Ok(Measured {
        requests_per_second: number("requests_per_second")?,
        p50_ms: number("p50_ms")?,
        p99_ms: number("p99_ms")?,
        errors: report["errors"].as_u64().unwrap_or(0),
    })
}

/// The load process: `connections` connections for a second of warm-up and `seconds` measured;
/// prints one JSON line.
pub async fn run_load(port: u16, method: &str, path: &str, body: Option<String>, connections: usize, seconds: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let measured_from = started + Duration::from_secs(1);
    let until = measured_from + Duration::from_secs(seconds);
    let method: hyper::Method = method.parse().context("an HTTP method")?;
    let body = Bytes::from(body.unwrap_or_default());
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (method, path, body) = (method.clone(), path.to_owned(), body.clone());
            tokio::spawn(async move { drive_connection(port, method, &path, body, measured_from, until).await })
        })
        .collect();
    let (mut latencies, mut errors) = (Vec::new(), 0u64);
    for worker in workers {
        let (worker_latencies, worker_errors) = worker.await??;
        latencies.extend(worker_latencies);
        errors += worker_errors;
    }
    ensure!(!latencies.is_empty(), "no request was answered");
    latencies.sort_unstable();
    let percentile =
        |share: f64| latencies[((latencies.len() as f64 * share).ceil() as usize).clamp(1, latencies.len()) - 1] as f64 / 1000.0;
    let report = json!({
        "requests": latencies.len(),
        "errors": errors,
        "requests_per_second": (latencies.len() as u64 + errors) as f64 / seconds as f64,
        "p50_ms": percentile(0.5),
        "p99_ms": percentile(0.99),
        "max_ms": percentile(1.0),
    });
    println!("{report}");
    Ok(())
}

/// One keep-alive connection, one request at a time; returns the measured window's latencies (µs)
/// of 2xx answers and the count of other answers.
async fn drive_connection(
    port: u16,
    method: hyper::Method,
    path: &str,
    body: Bytes,
    measured_from: Instant,
    until: Instant,
) -> anyhow::Result<(Vec<u32>, u64)> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let (mut latencies, mut errors) = (Vec::new(), 0);
    loop {
        let sent = Instant::now();
        if sent >= until {
            break;
        }
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))?;
        sender.ready().await?;
        let response = sender.send_request(request).await?;
        let success = response.status().is_success();
        response.into_body().collect().await?;
        if sent >= measured_from {
            if success {
                latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            } else {
                errors += 1;
            }
        }
    }
    Ok((latencies, errors))
}
