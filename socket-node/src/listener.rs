//! The listening socket: bound fresh, or adopted from the previous generation of the process.
//!
//! On an `exec` restart the old process leaves its listening socket open across `execve` and names
//! it in `TRIBUTARY_LISTEN_FD`. Connections that arrive meanwhile wait in the kernel's backlog and
//! are served by the new generation: clients see a short delay, never a refused connection.
//! [`Gated`] stops the accepting at the start of a shutdown, before the server winds down.

use std::net::SocketAddr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, bail};
use axum::serve::Listener;
use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// The environment variable naming an inherited listening socket.
pub const LISTEN_FD_ENV: &str = "TRIBUTARY_LISTEN_FD";

/// A duplicate of the listening socket, kept to hand over on restart.
pub struct Handover(pub OwnedFd);

/// Binds `bind`, or adopts the socket a previous generation handed over.
pub async fn acquire(bind: SocketAddr) -> anyhow::Result<(TcpListener, Handover)> {
    // The variable stays in the environment (changing it would race with the runtime's threads);
    // the next exec sets it afresh, and the node starts no other processes.
    let listener = match std::env::var(LISTEN_FD_ENV) {
        Ok(fd) => adopt(&fd)?,
        Err(_) => TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?,
    };
    let handover = listener.as_fd().try_clone_to_owned().context("duplicating the listening socket")?;
    Ok((listener, Handover(handover)))
}

fn adopt(value: &str) -> anyhow::Result<TcpListener> {
    let fd: RawFd = value.parse().with_context(|| format!("{LISTEN_FD_ENV}={value} is not a file descriptor"))?;
    if fd < 3 {
        bail!("{LISTEN_FD_ENV}={fd} names a standard stream, not a socket");
    }
    // SAFETY: the previous generation of this process left `fd` open for us and owns it no more;
    // we check below that it is a listening socket before using it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let listening = getsockopt(&owned, sockopt::AcceptConn).with_context(|| format!("{LISTEN_FD_ENV}={fd} is not a socket"))?;
    if !listening {
        bail!("{LISTEN_FD_ENV}={fd} is a socket that is not listening");
    }
    let std_listener = std::net::TcpListener::from(owned);
    std_listener.set_nonblocking(true)?;
    // Inherited descriptors are not close-on-exec; make this one so again.
    nix::fcntl::fcntl(&std_listener, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC))?;
    tracing::info!(fd, "adopted the listening socket from the previous generation");
    Ok(TcpListener::from_std(std_listener)?)
}

/// A listener that stops accepting when `accepting` turns false, while the server goes on serving
/// the connections it has: later ones wait in the kernel's backlog, for the next generation.
pub struct Gated<L> {
    inner: L,
    accepting: watch::Receiver<bool>,
}

impl<L> Gated<L> {
    pub fn new(inner: L, accepting: watch::Receiver<bool>) -> Self {
        Gated { inner, accepting }
    }
}

impl<L: Listener> Listener for Gated<L> {
    type Io = L::Io;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        tokio::select! {
            biased;
            () = stopped(&mut self.accepting) => std::future::pending().await,
            accepted = self.inner.accept() => accepted,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Resolves once `accepting` is false (or its sender is gone).
async fn stopped(accepting: &mut watch::Receiver<bool>) {
    let _ = accepting.wait_for(|accepting| !*accepting).await;
}
