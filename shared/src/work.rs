//! CPU-heavy work of a request, kept off the async workers and bounded in concurrency.
//!
//! The async workers (one per core) serve every request, every WebSocket and the stats ticker: a
//! request that computes for a second on one of them stalls all of that. Work whose cost grows
//! with a project or an upload (matching a question's words against every object, parsing and
//! resolving SQL) runs here instead: on the blocking pool, at most as many at once as there are
//! cores. A question that cannot start within its wait is answered 503 with `Retry-After` rather
//! than queued without end; an upload's files wait their turn (the request timeout bounds it).
//! Each piece of work is bounded by construction (see `similar` and `chat::entities`), so a
//! request that starts also ends.

use std::time::Duration;

use http::HeaderValue;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The gate CPU-heavy request work passes through.
pub struct CpuWork {
    permits: Semaphore,
    wait: Duration,
}

impl CpuWork {
    /// At most `concurrency` pieces of work at once; a caller waits at most `wait` for its turn.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        CpuWork { permits: Semaphore::new(concurrency.max(1)), wait }
    }

    /// As many at once as the machine has cores, waiting at most 5 s.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        Self::new(cores, Duration::from_secs(5))
    }

    /// Runs `work` on the blocking pool once a turn is free; 503 (`busy`, naming `component`) if
    /// none frees up in time.
    pub async fn run<T: Send + 'static>(&self, component: &'static str, work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
        let permit = match tokio::time::timeout(self.wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            // Timed out, or the semaphore was closed (never done): either way, no turn.
            _ => {
                return Err(ApiError::unavailable(
                    component,
                    "busy",
                    "the server is busy with other requests of this kind; send this one again shortly",
                )
                .with_header(http::header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
        };
        let outcome = tokio::task::spawn_blocking(work).await;
        drop(permit);
        outcome.map_err(|error| ApiError::internal(component, error))
    }

    /// Runs `work` on the blocking pool once a turn is free, however long that takes (for work a
    /// request cannot do without, such as parsing an upload; the request's own timeout bounds the
    /// wait). Err only if the work panicked.
    pub async fn run_queued<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, tokio::task::JoinError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        tokio::task::spawn_blocking(work).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn work_runs_at_most_so_many_at_once_and_a_caller_past_its_wait_is_told_busy() {
        let gate = Arc::new(CpuWork::new(2, Duration::from_millis(200)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Arc::new(std::sync::Mutex::new(released));
        let mut busy = Vec::new();
        for _ in 0..2 {
            let (gate, running, most, released) = (gate.clone(), running.clone(), most.clone(), released.clone());
            busy.push(tokio::spawn(async move {
                gate.run("test", move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let _ = released.lock().unwrap().recv();
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        while running.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        // Both turns are taken: a third caller waits, then is told busy.
        let refused = gate.run("chat", || ()).await.unwrap_err();
        let response = axum::response::IntoResponse::into_response(refused);
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "1");
        release.send(()).unwrap();
        release.send(()).unwrap();
        for task in busy {
            task.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(gate.run("test", || 7).await.unwrap(), 7, "turns are given back");
    }
}
