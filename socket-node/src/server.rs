//! The HTTP server: hyper's HTTP/1 connections, with upgrades for the WebSockets, serving the app.
//!
//! It does what `axum::serve` does (accept, one task per connection, graceful shutdown) plus the
//! one limit `axum::serve` cannot set: a deadline for a request's head. Without it a client that
//! opens a connection and sends nothing, or a header line now and then (slowloris), holds a file
//! descriptor for ever, and enough of them exhaust the node's open-file limit.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower::{Service, ServiceExt};

/// How long a client has to send a whole request head, counted from the moment the server waits
/// for one: on a new connection, and between requests on a kept-alive one (so idle HTTP
/// connections close after this long too). Upgraded WebSockets are not affected: the heartbeat
/// watches those.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `drain` resolves; then stops accepting, lets every connection
/// finish the request it is on, and returns once all have closed.
pub async fn serve<L>(mut listener: L, app: Router, drain: impl Future<Output = ()>) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let connections = TaskTracker::new();
    // Dropped to tell every connection to finish.
    let (draining, drained) = watch::channel(());
    tokio::pin!(drain);

    loop {
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut drain => break,
        };
        let service = make_service.call(remote).await.unwrap_or_else(|never: Infallible| match never {});
        let service = TowerToHyperService::new(service.map_request(|request: hyper::Request<Incoming>| request.map(Body::new)));
        let connection = http.serve_connection(TokioIo::new(io), service).with_upgrades();
        let mut drained = drained.clone();
        connections.spawn(async move {
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => return log_ending(result, remote),
                _ = drained.changed() => connection.as_mut().graceful_shutdown(),
            }
            log_ending(connection.await, remote);
        });
    }

    drop(draining);
    connections.close();
    connections.wait().await;
    Ok(())
}

fn log_ending(result: hyper::Result<()>, remote: SocketAddr) {
    if let Err(error) = result {
        // Clients that vanish or time out are routine, not errors of ours.
        tracing::debug!(%error, client = %remote, "connection ended");
    }
}
