//! Tributary's core library.
//!
//! Everything a host needs to serve the dashboard contract lives here, written once:
//!
//! * [`config`]: every setting, read from the environment (and flags on the node).
//! * [`error`]: the contract's error shape and the [`ApiError`](error::ApiError) type routes return.
//! * [`store`]: the traits state lives behind, and the embedded SQLite backend.
//! * [`activity`]: activity events and the pipeline that persists them without blocking or losing any.
//! * [`stats`]: dashboard and graph statistics computed from the store and live state.
//! * [`realtime`]: the WebSocket message envelope, the client protocol and the [`Broadcaster`](realtime::Broadcaster) trait.
//! * [`http`]: the axum routers, grouped by area, and the middleware every host applies.
//! * [`lineage`]: SQL parsing and lineage extraction, free of any store.
//! * [`knowledge`]: the knowledge base as a service: ingestion with live events, lineage walks, search.
//! * [`chat`]: questions over the knowledge base in four modes, with titles and sessions.
//! * [`restart`]: the [`Restarter`](restart::Restarter) trait the admin route drives.
//! * [`similar`]: near names (bounded edit distances, "did you mean" lists).
//! * [`telemetry`]: structured logging setup.
//! * [`work`]: CPU-heavy request work off the async workers, bounded in concurrency.
//! * `cloud` (feature `cloud`, on by default): the Lambda host: the `@connections` broadcaster, the
//!   WebSocket events, the scheduled stats ticks, restart through the Lambda API.
//!
//! A host (the socket node, or one Lambda function) builds an [`http::AppState`] from the environment,
//! picks the routers it serves and runs them. No route knows which host runs it.

pub mod activity;
pub mod chat;
#[cfg(feature = "cloud")]
pub mod cloud;
pub mod config;
pub mod error;
pub mod http;
pub mod knowledge;
pub mod lineage;
pub mod realtime;
pub mod restart;
pub mod similar;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod work;

/// Every binary built on this library (the node, the functions, the CLI, the benchmarks) allocates
/// with mimalloc: ingestion and JSON handling make many small, short-lived allocations, and glibc's
/// allocator spent about a fifth of the CPU of an ingestion on them (measured in
/// docs/benchmarks.md). Declared here, once, rather than in each `main`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The version reported by `/health` and the OpenAPI document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
