//! The listening socket: bound fresh, or adopted from the previous generation of the process.
//!
//! On an `exec` restart the old process leaves its listening socket open across `execve` and names
//! it in `TRIBUTARY_LISTEN_FD`. Connections that arrive meanwhile wait in the kernel's backlog and
//! are served by the new generation: clients see a short delay, never a refused connection.

use std::net::SocketAddr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

use anyhow::{Context, bail};
use nix::sys::socket::{getsockopt, sockopt};
use tokio::net::TcpListener;

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
