//! The built-in dashboard and the generated TypeScript client, against a real node.
//!
//! * The browser tests (tests/web/dashboard.test.mjs): Debian's Chromium, headless, driven by
//!   playwright-core, loads the page from a node on each store backend and uses it as a person would:
//!   on SQLite with the default (extractive) provider, on DynamoDB with a stand-in language model
//!   that streams its answer slowly, so the page is seen writing it.
//! * The client: openapi-typescript turns the node's `/openapi.json` into types, `tsc` checks the
//!   typed client (tests/web/client) and the dashboard's scripts against them, and the compiled
//!   client runs against the node.
//!
//! `scripts/test` installs what these need (tests/web's npm packages, and the `chromium` package when
//! /usr/bin/chromium is missing). `TRIBUTARY_SCREENSHOTS=<folder>` saves the page's main states
//! (docs/screenshots holds the README's; see docs/dashboard.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use support::{NodeOptions, TestNode};

const ADMIN_TOKEN: &str = "browser-admin-token";

/// tests/web, with its npm packages installed.
fn web_folder() -> PathBuf {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    assert!(
        folder.join("node_modules/playwright-core").is_dir(),
        "tests/web's packages are not installed: run ./scripts/test, or `source scripts/lib/tools.sh && ensure_web_tools`"
    );
    folder
}

/// Runs `command`, and fails the test with everything it printed unless it succeeds.
fn run(mut command: Command, what: &str) -> Output {
    let started = Instant::now();
    let output = command.output().unwrap_or_else(|error| panic!("starting {what}: {error}"));
    let took = started.elapsed();
    let printed = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what} failed ({}, after {took:.0?}):\n{command:?}\n{printed}", output.status);
    eprintln!("{what} passed in {took:.0?}");
    output
}

/// What the model stand-in says, a piece at a time, with a pause before each piece.
const MODEL_PIECES: [&str; 3] = ["`staging.orders` reads from ", "`raw.orders`", ", through a filter on the amount."];
const MODEL_PAUSE: std::time::Duration = std::time::Duration::from_millis(300);

/// A stand-in for Ollama's chat API (the one external service) that talks slowly, so the page
/// shows an answer while it is still being written. Returns its base URL.
async fn slow_model() -> String {
    use futures::StreamExt;
    let app = axum::Router::new().route(
        "/api/chat",
        axum::routing::post(|| async {
            let pieces = futures::stream::iter(MODEL_PIECES.iter().map(|piece| (*piece, false)).chain([("", true)])).then(
                |(piece, done)| async move {
                    tokio::time::sleep(MODEL_PAUSE).await;
                    let line = serde_json::json!({"message": {"role": "assistant", "content": piece}, "done": done});
                    Ok::<_, std::io::Error>(format!("{line}\n"))
                },
            );
            axum::body::Body::from_stream(pieces)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn node_options() -> NodeOptions {
    // Stats every second, so the tiles follow an upload without a long wait.
    NodeOptions::default().env("ADMIN_TOKEN", ADMIN_TOKEN).env("STATS_INTERVAL_SECONDS", 1)
}

/// How the node under test answers questions.
enum Model {
    /// The default provider: no language model.
    Extractive,
    /// Ollama's API, stood in for by [`slow_model`].
    SlowStandIn,
}

fn browser_tests(node: &TestNode, model: Model, bulk_tables: u32, screenshots: Option<PathBuf>) {
    let web = web_folder();
    let mut command = Command::new("node");
    command
        .current_dir(&web)
        .args(["--test", "--test-reporter=spec", "dashboard.test.mjs"])
        .env("TRIBUTARY_URL", node.url("/"))
        .env("TRIBUTARY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BULK_TABLES", bulk_tables.to_string());
    match model {
        Model::Extractive => command.env("EXPECTED_MODEL", "extractive"),
        // Ollama's default model (LLM_MODEL), and the words the stand-in streams.
        Model::SlowStandIn => command.env("EXPECTED_MODEL", "llama3.1").env("SLOW_ANSWER", MODEL_PIECES.concat()),
    };
    if let Some(folder) = screenshots {
        command.env("SCREENSHOTS", folder);
    }
    run(command, "the browser tests");
}

#[tokio::test]
async fn the_dashboard_works_in_a_browser_on_sqlite() {
    let node = TestNode::start_with(node_options()).await;
    // A relative folder is taken from the workspace's root, where scripts/test runs.
    let screenshots = std::env::var_os("TRIBUTARY_SCREENSHOTS").map(|folder| Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(folder));
    browser_tests(&node, Model::Extractive, 150, screenshots);
}

// Two worker threads: the browser tests block one while the model stand-in answers on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_browser_on_dynamodb_with_a_streaming_model() {
    let model = slow_model().await;
    let options = node_options().dynamodb(&support::aws::fresh_table()).env("LLM_PROVIDER", "ollama").env("LLM_BASE_URL", model);
    let node = TestNode::start_with(options).await;
    assert!(node.on_dynamodb());
    // moto's server (Python) stores about 80 items a second here: a small upload (about 200 nodes).
    browser_tests(&node, Model::SlowStandIn, 1, None);
}

#[tokio::test]
async fn the_typescript_client_is_generated_from_the_document_type_checks_and_works() {
    let node = TestNode::start().await;
    let web = web_folder();
    let generated = web.join("generated");
    std::fs::create_dir_all(&generated).unwrap();

    let mut generate = Command::new(web.join("node_modules/.bin/openapi-typescript"));
    generate.current_dir(&web).arg(node.url("/openapi.json")).arg("--output").arg(generated.join("api.d.ts"));
    run(generate, "openapi-typescript");

    // One compilation checks the client and the dashboard's scripts, and emits the client to run.
    let mut check = Command::new(web.join("node_modules/.bin/tsc"));
    check.current_dir(&web).args(["--project", "tsconfig.json"]);
    run(check, "the type-check (tsc)");

    let mut smoke = Command::new("node");
    smoke.current_dir(&web).arg(generated.join("build/tests/web/client/smoke.js")).arg(node.url(""));
    let output = run(smoke, "the typed client against the node");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("the client's summary");
    assert_eq!(summary["files"], 1);
    assert_eq!(summary["modes"], 4);
}
