//! What the fuzz targets share: one Tokio runtime and one application state per fuzzing process,
//! built the way the in-process tests build theirs (`AppState::standalone` over a SQLite store in a
//! temporary folder), and the checks every HTTP answer must pass.
//!
//! Building the state costs milliseconds; running it once per input would dominate the fuzzing time
//! and forget what earlier inputs stored. Kept for the whole process instead, the store fills up with
//! what earlier inputs ingested, so later chat and search inputs have a graph to walk.

pub mod sql;

use std::future::Future;
use std::sync::OnceLock;

use axum::Router;
use serde_json::Value;
use tributary_core::config::Settings;
use tributary_core::http::{self, AppState};

/// The admin token the fuzzed app is configured with (the broadcast route needs it).
pub const ADMIN_TOKEN: &str = "fuzz-admin-token-0123456789";

struct Harness {
    runtime: tokio::runtime::Runtime,
    state: AppState,
    app: Router,
    /// Kept so the folder outlives the store. Statics are never dropped, so the folder is left
    /// behind at exit: `scripts/fuzz` points `TMPDIR` at fuzz/target/tmp and empties it.
    _folder: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // One thread: libFuzzer runs one input at a time, and a single-threaded runtime keeps the
        // runs reproducible. Ingestion still parses on the blocking pool, as it does in production.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
        let folder = tempfile::Builder::new().prefix("tributary-fuzz-").tempdir().expect("a temporary folder");
        let db = folder.path().join("fuzz.db");
        // Every setting that matters is explicit, so an environment variable of the machine
        // (TRIBUTARY_STORE, LLM_PROVIDER, ...) cannot point the fuzzer at a real service.
        let settings = Settings::from_args([
            "--store",
            "sqlite",
            "--db",
            db.to_str().expect("a UTF-8 temporary path"),
            "--llm-provider",
            "extractive",
            "--admin-token",
            ADMIN_TOKEN,
            "--http-request-timeout-seconds",
            "60",
        ])
        .expect("fuzzing settings");
        let state = runtime.block_on(AppState::standalone(settings)).expect("the SQLite store opens");
        let app = http::into_app(http::all_routes(), state.clone());
        Harness { runtime, state, app, _folder: folder }
    })
}

/// Runs `future` to completion on the shared runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    harness().runtime.block_on(future)
}

/// The application state (stores, stats, models) behind the app.
pub fn state() -> &'static AppState {
    &harness().state
}

/// Every core HTTP route with the middleware every host applies, as the socket node serves them
/// (without its WebSocket and `@connections` routes, which need its hub).
pub fn app() -> Router {
    harness().app.clone()
}

/// Checks the contract's error shape (docs/api.md, "Errors"): a JSON object with string `error`,
/// `detail` and `request_id`. Panics, naming the route, otherwise.
pub fn assert_error_shape(route: &str, status: u16, body: &[u8]) {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|error| panic!("{route}: the {status} body is not JSON ({error}): {:?}", String::from_utf8_lossy(body)));
    for field in ["error", "detail", "request_id"] {
        assert!(value.get(field).is_some_and(Value::is_string), "{route}: the {status} body has no string `{field}`: {value}");
    }
}
