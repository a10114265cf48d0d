//! A TCP relay that can cut a service off: the fault tests put it between a binary and a real
//! server (the local DynamoDB server, say) and take the server "down" for a while without losing
//! what it stores, as a network partition or a stopped server would look to the binary.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Relays 127.0.0.1:`port` to an upstream address; dropped, it stops.
pub struct Relay {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Tells every open relayed connection to close; bumped at each outage.
    cut: watch::Sender<u64>,
    accepting: JoinHandle<()>,
}

impl Relay {
    /// Starts relaying to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Relay {
        let upstream = upstream.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the relay");
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = watch::channel(0u64);
        let accepting = {
            let up = up.clone();
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    // Down: the connection is closed at once, as a stopped server's would be.
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let (upstream, mut cuts) = (upstream.clone(), cuts.clone());
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else { return };
                        cuts.mark_unchanged();
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            })
        };
        Relay { addr, up, cut, accepting }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Takes the service down: open connections are closed and new ones are refused until
    /// [`Relay::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|outages| *outages += 1);
    }

    /// Brings the service back.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}
