//! The built-in dashboard and the generated TypeScript client, against a real node.
//!
//! * The browser tests (tests/web/dashboard.test.mjs): Debian's Chromium, headless, driven by
//!   playwright-core, loads the page from a node on each store backend and uses it as a person would.
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

fn node_options() -> NodeOptions {
    // Stats every second, so the tiles follow an upload without a long wait.
    NodeOptions::default().env("ADMIN_TOKEN", ADMIN_TOKEN).env("STATS_INTERVAL_SECONDS", 1)
}

fn browser_tests(node: &TestNode, bulk_tables: u32, screenshots: Option<PathBuf>) {
    let web = web_folder();
    let mut command = Command::new("node");
    command
        .current_dir(&web)
        .args(["--test", "--test-reporter=spec", "dashboard.test.mjs"])
        .env("TRIBUTARY_URL", node.url("/"))
        .env("TRIBUTARY_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BULK_TABLES", bulk_tables.to_string());
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
    browser_tests(&node, 150, screenshots);
}

#[tokio::test]
async fn the_dashboard_works_in_a_browser_on_dynamodb() {
    let node = TestNode::start_with(node_options().dynamodb(&support::aws::fresh_table())).await;
    assert!(node.on_dynamodb());
    // moto's server (Python) stores about 80 items a second here: a small upload (about 200 nodes).
    browser_tests(&node, 1, None);
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
