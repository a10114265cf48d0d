//! The socket node: one long-lived process that serves every HTTP route of the core and holds the
//! dashboards' WebSocket connections itself.
//!
//! * [`cli`]: the command line (every flag is also an environment variable);
//! * [`hub`]: the connection registry and fan-out, the node's [`Broadcaster`](tributary_core::realtime::Broadcaster);
//! * [`outbox`]: one connection's queue of messages, coalescing and bounded in bytes;
//! * [`ws`]: the WebSocket endpoints: admission (origin, per-IP limit, global cap) and one task per connection;
//! * [`connections_api`]: `@connections` in API Gateway's shape, so the cloud's broadcaster can reach the node's clients;
//! * [`ticker`]: the one task that sends `stats_update` to everyone and keeps connections honest;
//! * [`lifecycle`]: graceful shutdown and restart (re-exec in place, or exit for a supervisor);
//! * [`listener`]: binding the port, or adopting the one a previous generation handed over;
//! * [`server`]: the HTTP server loop, with a deadline for request heads;
//! * [`dashboard`]: the built-in dashboard page at `/`.

pub mod cli;
pub mod connections_api;
pub mod dashboard;
pub mod hub;
pub mod lifecycle;
pub mod listener;
pub mod outbox;
pub mod server;
pub mod ticker;
pub mod ws;

use std::sync::Arc;

use anyhow::Context;
use axum::Extension;
use axum::serve::ListenerExt;
use tokio_util::task::TaskTracker;
use tributary_core::activity::ActivityRecorder;
use tributary_core::http::{self, AppState};
use tributary_core::store::Stores;
use tributary_core::telemetry;
use utoipa_axum::router::OpenApiRouter;

pub use cli::Cli;
use hub::Hub;
use lifecycle::{Lifecycle, NodeRestarter};
use ws::NodeContext;

/// The node's routes: every core area, the WebSocket endpoints, the local `@connections` API and
/// the dashboard page.
pub fn routes() -> OpenApiRouter<AppState> {
    http::all_routes().merge(ws::router()).merge(connections_api::router()).merge(dashboard::router())
}

/// Runs the node until it is told to stop; on restart in `exec` mode this call does not return.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.print_openapi {
        println!("{}", http::openapi_document(routes()).to_pretty_json().context("serializing the OpenAPI document")?);
        return Ok(());
    }
    telemetry::init(cli.settings.log_format);
    raise_file_limit(cli.settings.websocket_max_connections);
    if let Some(why) = cli.settings.proxied_without_admin_token() {
        tracing::warn!(
            why,
            "no ADMIN_TOKEN is set and this node looks reached through a proxy: admin routes are open to requests that look \
             local, and a proxy on this host that adds no X-Forwarded-For makes every request look local. Set ADMIN_TOKEN \
             (docs/deployment.md, behind a reverse proxy)"
        );
    }
    let lifecycle = Arc::new(Lifecycle::new());
    lifecycle.watch_signals().context("installing the signal handlers")?;
    let generation = lifecycle::generation();
    let (listener, handover) = listener::acquire(cli.bind).await?;
    let local_addr = listener.local_addr().context("reading the bound address")?;

    let stores = Stores::open(&cli.settings).await.context("opening the store")?;
    let recorder = ActivityRecorder::background(
        stores.activity.clone(),
        cli.settings.spill_path(),
        cli.settings.activity_queue_capacity as usize,
        cli.settings.activity_batch_size as usize,
    );
    let hub = Hub::new(cli.hub_config());
    let restarter = Arc::new(NodeRestarter::new(lifecycle.clone(), cli.restart_mode));
    let state = AppState::new(cli.settings.clone(), stores, recorder, hub.clone(), restarter);
    let node = Arc::new(NodeContext { hub: hub.clone(), config: cli.websocket_config(), connections: TaskTracker::new() });

    let app = http::into_app(routes(), state.clone()).layer(Extension(node.clone()));
    let ticker = tokio::spawn(ticker::run(state.clone(), hub.clone(), cli.ticker_config(), lifecycle.stopping()));

    let listener = listener::Gated::new(listener, lifecycle.accepting()).tap_io(|stream| {
        // Small frames (stats, pings) must leave at once.
        let _ = stream.set_nodelay(true);
    });
    let server = tokio::spawn(server::serve(listener, app, lifecycle.clone().drain_signal()));
    tracing::info!(
        address = %local_addr,
        generation,
        store = ?cli.settings.store,
        restart_mode = cli.restart_mode.as_str(),
        "listening on http://{local_addr}"
    );

    let reason = lifecycle.wait_for_stop().await;
    lifecycle::shut_down(reason, &lifecycle, &cli, &state, &node, server, ticker).await;
    match reason {
        lifecycle::StopReason::Restart => lifecycle::restart(&lifecycle, cli.restart_mode, handover, generation),
        lifecycle::StopReason::Signal => Ok(()),
    }
}

/// Raises the soft limit on open files to the hard one: every WebSocket is a descriptor, and the
/// usual soft limit (1,024) is far below `WEBSOCKET_MAX_CONNECTIONS` (10,000). Warns if even the hard
/// limit cannot hold the connections the node admits (plus room for the store and HTTP clients).
fn raise_file_limit(max_connections: u32) {
    let wanted = u64::from(max_connections) + 1024;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is below WEBSOCKET_MAX_CONNECTIONS: raise it (ulimit -n, or LimitNOFILE for systemd) or lower the cap"
        ),
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
}
