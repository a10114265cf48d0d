//! Shutdown and restart.
//!
//! Both follow the same steps, in the order the brief sets: tell the clients (`restarting`), stop
//! accepting, close every WebSocket (1012 for a restart, 1001 for a shutdown), drain in-flight HTTP
//! requests (the server winds down [`ACCEPT_GRACE`] after the accepting stopped), stop the ticker,
//! flush pending activity. Then a restart comes back: by re-executing the
//! binary in place with the listening socket handed over (`exec`), or by exiting 0 for a supervisor
//! (`exit`). SIGTERM and SIGINT shut down the same way and exit 0.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::StatusCode;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tributary_core::error::ApiError;
use tributary_core::http::AppState;
use tributary_core::realtime::{Broadcaster, ServerMessage};
use tributary_core::restart::{RestartPlan, Restarter};

use crate::cli::{Cli, RestartMode};
use crate::hub::close;
use crate::listener::{Handover, LISTEN_FD_ENV};
use crate::ws::NodeContext;

/// The environment variable counting restarts of this process (0 for the first generation).
pub const GENERATION_ENV: &str = "TRIBUTARY_GENERATION";

/// How long the store gets to take the queued activity before the rest is spilled to disk.
const ACTIVITY_FLUSH_GRACE: Duration = Duration::from_secs(1);

/// How long all WebSocket clients together get to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How long connections accepted just before the node stopped accepting get to send their request
/// before the server winds down: the server closes a connection it has not read a request from, so
/// without this grace a request racing the stop would meet a reset.
const ACCEPT_GRACE: Duration = Duration::from_millis(250);

/// Why the node stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `POST /admin/restart`.
    Restart,
    /// SIGTERM or SIGINT.
    Signal,
}

/// The node's stop switches.
pub struct Lifecycle {
    requested: watch::Sender<Option<StopReason>>,
    restart_claimed: AtomicBool,
    /// A stop signal arrived (possibly during a restart, which then exits instead).
    signalled: AtomicBool,
    accepting: watch::Sender<bool>,
    stopping: watch::Sender<bool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    pub fn new() -> Self {
        Lifecycle {
            requested: watch::Sender::new(None),
            restart_claimed: AtomicBool::new(false),
            signalled: AtomicBool::new(false),
            accepting: watch::Sender::new(true),
            stopping: watch::Sender::new(false),
        }
    }

    /// Asks the node to stop; the first request wins.
    pub fn request(&self, reason: StopReason) {
        self.requested.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    /// Installs the SIGTERM and SIGINT handlers, for the life of the process: a signal asks for a
    /// stop whenever it comes, during start-up or during a restart included.
    pub fn watch_signals(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let lifecycle = self.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                tracing::info!(signal = name, "stop signal received");
                lifecycle.signalled.store(true, Ordering::SeqCst);
                lifecycle.request(StopReason::Signal);
            }
        });
        Ok(())
    }

    /// Whether a stop signal has arrived.
    pub fn signalled(&self) -> bool {
        self.signalled.load(Ordering::SeqCst)
    }

    /// Waits for a stop request (a restart, or a signal).
    pub async fn wait_for_stop(&self) -> StopReason {
        let mut requested = self.requested.subscribe();
        match requested.wait_for(Option::is_some).await {
            Ok(reason) => reason.expect("checked by wait_for"),
            // The sender lives in `self`: it cannot be gone while we borrow it.
            Err(_) => StopReason::Signal,
        }
    }

    /// Turns true when the node stops (the ticker's cue).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// True while the node accepts connections (the listener's gate).
    pub fn accepting(&self) -> watch::Receiver<bool> {
        self.accepting.subscribe()
    }

    /// Resolves when the HTTP server must finish: [`ACCEPT_GRACE`] after it stopped accepting.
    pub fn drain_signal(self: Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        let mut accepting = self.accepting.subscribe();
        async move {
            let _ = accepting.wait_for(|accepting| !*accepting).await;
            tokio::time::sleep(ACCEPT_GRACE).await;
        }
    }
}

/// The node's [`Restarter`]: the answer goes out first, then the restart begins.
pub struct NodeRestarter {
    lifecycle: Arc<Lifecycle>,
    mode: RestartMode,
}

impl NodeRestarter {
    pub fn new(lifecycle: Arc<Lifecycle>, mode: RestartMode) -> Self {
        NodeRestarter { lifecycle, mode }
    }
}

#[async_trait]
impl Restarter for NodeRestarter {
    async fn restart(&self, _requested_by: &str) -> Result<RestartPlan, ApiError> {
        if self.lifecycle.restart_claimed.swap(true, Ordering::SeqCst) || self.lifecycle.requested.borrow().is_some() {
            return Err(ApiError::new(StatusCode::CONFLICT, "restart_in_progress", "a restart or shutdown is already under way"));
        }
        let lifecycle = self.lifecycle.clone();
        Ok(RestartPlan { mode: self.mode.as_str(), after_response: Some(Box::new(move || lifecycle.request(StopReason::Restart))) })
    }
}

/// Runs the shutdown steps. Every step is bounded in time, so a stuck client cannot hold the node.
pub async fn shut_down(
    reason: StopReason,
    lifecycle: &Lifecycle,
    cli: &Cli,
    state: &AppState,
    node: &NodeContext,
    server: JoinHandle<std::io::Result<()>>,
    ticker: JoinHandle<()>,
) {
    let started = Instant::now();
    let lifecycle_close = match reason {
        StopReason::Restart => close::RESTART,
        StopReason::Signal => close::GOING_AWAY,
    };
    tracing::info!(?reason, connections = node.hub.len(), "stopping");

    // 1. Tell the clients.
    if reason == StopReason::Restart {
        let _ = node.hub.broadcast(ServerMessage::restarting("restart requested by an administrator", 1000)).await;
    }
    // 2. Stop accepting: no new WebSockets, no new HTTP connections (they wait in the backlog for
    //    the next generation). In-flight requests, the restart's own answer among them, go on.
    node.hub.close_admission();
    lifecycle.accepting.send_replace(false);
    // 3. Close every WebSocket after what is already queued for it, and wait (briefly) for them.
    let closing = node.hub.close_all(lifecycle_close.clone());
    node.connections.close();
    if tokio::time::timeout(CLOSE_WAIT, node.connections.wait()).await.is_err() {
        tracing::warn!(remaining = node.connections.len(), "some WebSocket clients did not answer the close in time");
    }
    // 4. Drain in-flight HTTP requests.
    match tokio::time::timeout(cli.drain_timeout(), server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::warn!(%error, "the HTTP server stopped with an error"),
        Ok(Err(error)) => tracing::warn!(%error, "the HTTP server task failed"),
        Err(_) => tracing::warn!(seconds = cli.shutdown_drain_seconds, "in-flight requests did not finish in time; abandoning them"),
    }
    // 5. Stop the ticker, 6. flush activity.
    lifecycle.stopping.send_replace(true);
    if tokio::time::timeout(Duration::from_secs(1), ticker).await.is_err() {
        tracing::warn!("the stats ticker did not stop in time");
    }
    state.activity.shutdown(ACTIVITY_FLUSH_GRACE).await;
    tracing::info!(closed_websockets = closing, took_ms = started.elapsed().as_millis() as u64, "stopped");
}

/// This process's generation: how many restarts it descends from.
pub fn generation() -> u64 {
    std::env::var(GENERATION_ENV).ok().and_then(|value| value.parse().ok()).unwrap_or(0)
}

/// Comes back after a restart: `exec` does not return unless the exec fails. A stop signal that
/// arrived meanwhile wins: the node exits instead.
pub fn restart(lifecycle: &Lifecycle, mode: RestartMode, handover: Handover, generation: u64) -> anyhow::Result<()> {
    if lifecycle.signalled() {
        tracing::info!("a stop signal arrived during the restart; exiting instead of coming back");
        return Ok(());
    }
    match mode {
        RestartMode::Exit => {
            tracing::info!("exiting with status 0 for the supervisor to restart the node");
            Ok(())
        }
        RestartMode::Exec => Err(exec_in_place(handover, generation + 1)),
    }
}

/// Replaces this process with a fresh run of the same binary and arguments, handing over the
/// listening socket. Returns only on failure.
fn exec_in_place(handover: Handover, generation: u64) -> anyhow::Error {
    use std::os::fd::IntoRawFd;

    let fd = handover.0.into_raw_fd();
    if let Err(error) = nix::fcntl::fcntl(
        // SAFETY: `fd` was just released from an OwnedFd and stays open until exec.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    ) {
        return anyhow::anyhow!("could not keep the listening socket open across exec: {error}");
    }
    let program = executable();
    let arguments: Vec<OsString> = std::env::args_os().skip(1).collect();
    tracing::info!(program = %program.display(), generation, "re-executing in place");
    let error = std::process::Command::new(&program)
        .args(arguments)
        .env(LISTEN_FD_ENV, fd.to_string())
        .env(GENERATION_ENV, generation.to_string())
        .exec();
    anyhow::anyhow!("re-executing {} failed: {error}", program.display())
}

/// The binary to run again: the file at our path (a newer build if it was replaced), or, if that
/// path is gone, the image we are running.
fn executable() -> PathBuf {
    match std::env::current_exe() {
        Ok(path) => {
            let text = path.to_string_lossy();
            let trimmed = PathBuf::from(text.trim_end_matches(" (deleted)"));
            if trimmed.exists() { trimmed } else { PathBuf::from("/proc/self/exe") }
        }
        Err(_) => PathBuf::from("/proc/self/exe"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_restart_or_one_during_a_shutdown_is_refused() {
        let lifecycle = Arc::new(Lifecycle::new());
        let restarter = NodeRestarter::new(lifecycle.clone(), RestartMode::Exec);
        let plan = restarter.restart("test").await.unwrap();
        assert_eq!(plan.mode, "exec");
        assert_eq!(restarter.restart("test").await.unwrap_err().status(), StatusCode::CONFLICT);
        // The restart begins only once the answer is out.
        assert!(lifecycle.requested.borrow().is_none());
        (plan.after_response.expect("the node defers its restart"))();
        assert_eq!(lifecycle.wait_for_stop().await, StopReason::Restart);

        let stopping = Arc::new(Lifecycle::new());
        stopping.request(StopReason::Signal);
        let restarter = NodeRestarter::new(stopping, RestartMode::Exit);
        assert_eq!(restarter.restart("test").await.unwrap_err().code(), "restart_in_progress");
    }
}
