//! The activity pipeline: record without blocking, persist without losing.
//!
//! * **Background** (the socket node): [`ActivityRecorder::record`] only enqueues on a bounded queue.
//!   One writer task drains it in batches (as many as are waiting, up to the batch size), writes each
//!   batch in one store call, and retries with exponential backoff. A batch that still fails is
//!   spilled to the [`SpillFile`]; so is any event that finds the queue full. After every successful
//!   write the spill is replayed. [`ActivityRecorder::shutdown`] drains the queue and spills whatever
//!   the store would not take, so a restart loses nothing.
//! * **Inline** (Lambda): `record` writes before it returns, because a frozen execution environment
//!   runs no background task; a write that fails after its retries spills to the local file and is
//!   replayed by the next invocation that writes successfully.
//!
//! Stores skip ids they already hold, so replays and retries never count an event twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use super::ActivityEvent;
use super::spill::SpillFile;
use crate::store::{ActivityStore, StoreError};

/// How events reach the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecorderMode {
    /// Queued and written by a background task (long-lived hosts).
    Background,
    /// Written before `record` returns (Lambda).
    Inline,
}

/// What `/health` reports about the pipeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecorderStatus {
    pub mode: RecorderMode,
    /// Events waiting in memory.
    pub queued: usize,
    /// Events waiting in the spill file.
    pub spilled: u64,
    /// Events written since start.
    pub persisted: u64,
    /// Whether the last write failed.
    pub failing: bool,
    /// The last write error, if the last write failed.
    pub last_error: Option<String>,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// Records activity events; cheap to clone.
#[derive(Clone)]
pub struct ActivityRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    mode: RecorderMode,
    store: Arc<dyn ActivityStore>,
    spill: SpillFile,
    batch_size: usize,
    queue: Option<mpsc::Sender<ActivityEvent>>,
    control: Option<mpsc::UnboundedSender<Control>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    persisted: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    retry: RetryPolicy,
}

/// Backoff between attempts at one batch.
#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    attempts: u32,
    first_delay: Duration,
    max_delay: Duration,
}

impl RetryPolicy {
    fn delay(&self, attempt: u32) -> Duration {
        self.first_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay)
    }
}

impl ActivityRecorder {
    /// A recorder with a background writer. Must be called inside a Tokio runtime.
    pub fn background(store: Arc<dyn ActivityStore>, spill_path: std::path::PathBuf, capacity: usize, batch_size: usize) -> Self {
        let retry = RetryPolicy { attempts: 6, first_delay: Duration::from_millis(50), max_delay: Duration::from_secs(2) };
        Self::background_with_retry(store, spill_path, capacity, batch_size, retry)
    }

    fn background_with_retry(
        store: Arc<dyn ActivityStore>,
        spill_path: std::path::PathBuf,
        capacity: usize,
        batch_size: usize,
        retry: RetryPolicy,
    ) -> Self {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        let (control, control_receiver) = mpsc::unbounded_channel();
        let recorder = ActivityRecorder {
            inner: Arc::new(Inner {
                mode: RecorderMode::Background,
                store,
                spill: SpillFile::new(spill_path),
                batch_size: batch_size.max(1),
                queue: Some(queue),
                control: Some(control),
                writer: Mutex::new(None),
                persisted: AtomicU64::new(0),
                failing: AtomicBool::new(false),
                last_error: Mutex::new(None),
                retry,
            }),
        };
        let writer = tokio::spawn(run_writer(recorder.inner.clone(), receiver, control_receiver));
        *recorder.inner.writer.lock().expect("fresh mutex") = Some(writer);
        recorder
    }

    /// A recorder that writes before `record` returns.
    pub fn inline(store: Arc<dyn ActivityStore>, spill_path: std::path::PathBuf) -> Self {
        ActivityRecorder {
            inner: Arc::new(Inner {
                mode: RecorderMode::Inline,
                store,
                spill: SpillFile::new(spill_path),
                batch_size: 500,
                queue: None,
                control: None,
                writer: Mutex::new(None),
                persisted: AtomicU64::new(0),
                failing: AtomicBool::new(false),
                last_error: Mutex::new(None),
                retry: RetryPolicy { attempts: 3, first_delay: Duration::from_millis(50), max_delay: Duration::from_millis(400) },
            }),
        }
    }

    /// Records one event. Never fails and never drops it: at worst it lands in the spill file.
    pub async fn record(&self, event: ActivityEvent) {
        let inner = &self.inner;
        match &inner.queue {
            Some(queue) => match queue.try_send(event) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event)) => {
                    inner.spill_or_log(&[event], "activity queue is full or closed");
                }
            },
            None => {
                let batch = [event];
                if inner.write_with_retry(&batch).await {
                    inner.replay_spill().await;
                } else {
                    inner.spill_or_log(&batch, "store write failed after retries");
                }
            }
        }
    }

    /// Waits until every event recorded before this call is stored or spilled.
    pub async fn flush(&self) {
        self.send_control(Control::Flush).await;
    }

    /// Flushes, then stops the writer. Events recorded afterwards go straight to the spill file.
    pub async fn shutdown(&self) {
        self.send_control(Control::Shutdown).await;
        let writer = self.inner.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }

    async fn send_control(&self, make: impl FnOnce(oneshot::Sender<()>) -> Control) {
        let Some(control) = &self.inner.control else { return };
        let (done, finished) = oneshot::channel();
        if control.send(make(done)).is_ok() {
            let _ = finished.await;
        }
    }

    pub fn status(&self) -> RecorderStatus {
        let inner = &self.inner;
        let queued = inner.queue.as_ref().map(|queue| queue.max_capacity() - queue.capacity()).unwrap_or(0);
        let failing = inner.failing.load(Ordering::Relaxed);
        RecorderStatus {
            mode: inner.mode,
            queued,
            spilled: inner.spill.pending(),
            persisted: inner.persisted.load(Ordering::Relaxed),
            failing,
            last_error: if failing { inner.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone() } else { None },
        }
    }
}

impl Inner {
    /// Writes one batch, retrying with backoff. Returns whether it is stored.
    async fn write_with_retry(&self, batch: &[ActivityEvent]) -> bool {
        for attempt in 0..self.retry.attempts {
            match self.store.append_activity(batch).await {
                Ok(_) => {
                    self.persisted.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("activity store is writable again");
                    }
                    return true;
                }
                Err(error) => {
                    self.note_failure(&error, attempt);
                    if attempt + 1 < self.retry.attempts {
                        tokio::time::sleep(self.retry.delay(attempt)).await;
                    }
                }
            }
        }
        false
    }

    fn note_failure(&self, error: &StoreError, attempt: u32) {
        let first = !self.failing.swap(true, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
        if first {
            tracing::warn!(%error, attempt, "activity write failed; retrying with backoff");
        } else {
            tracing::debug!(%error, attempt, "activity write failed again");
        }
    }

    fn spill_or_log(&self, events: &[ActivityEvent], why: &str) {
        match self.spill.append(events) {
            Ok(()) => tracing::debug!(count = events.len(), path = %self.spill.path().display(), why, "activity spilled to file"),
            // The one place an event can be lost: neither the store nor the local disk take it.
            Err(error) => tracing::error!(
                count = events.len(),
                path = %self.spill.path().display(),
                %error,
                why,
                "activity could not be spilled; events lost"
            ),
        }
    }

    /// Moves spilled events into the store, if there are any.
    async fn replay_spill(&self) {
        if self.spill.pending() == 0 {
            return;
        }
        let replay = match self.spill.take_for_replay() {
            Ok(replay) => replay,
            Err(error) => {
                tracing::warn!(%error, "could not read the activity spill file");
                return;
            }
        };
        if replay.unreadable_lines > 0 {
            tracing::warn!(lines = replay.unreadable_lines, "skipped unreadable lines in the activity spill file");
        }
        for chunk in replay.events.chunks(self.batch_size) {
            if !self.write_with_retry(chunk).await {
                tracing::warn!("activity spill replay interrupted; will retry after the next successful write");
                return;
            }
        }
        match self.spill.finish_replay(&replay) {
            Ok(()) => tracing::info!(count = replay.events.len(), "replayed spilled activity into the store"),
            Err(error) => tracing::warn!(%error, "replayed spilled activity but could not remove the replay file"),
        }
    }
}

async fn run_writer(inner: Arc<Inner>, mut queue: mpsc::Receiver<ActivityEvent>, mut control: mpsc::UnboundedReceiver<Control>) {
    inner.replay_spill().await;
    let mut batch = Vec::with_capacity(inner.batch_size);
    loop {
        tokio::select! {
            biased;
            command = control.recv() => match command {
                Some(Control::Flush(done)) => {
                    drain(&inner, &mut queue, &mut batch).await;
                    let _ = done.send(());
                }
                Some(Control::Shutdown(done)) => {
                    queue.close();
                    drain(&inner, &mut queue, &mut batch).await;
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
            received = queue.recv_many(&mut batch, inner.batch_size) => {
                if received == 0 {
                    return;
                }
                write_or_spill(&inner, &mut batch).await;
            }
        }
    }
}

/// Writes everything waiting in the queue. Once a batch fails after its retries, the rest goes
/// straight to the spill file: a flush must finish promptly even while the store is down.
async fn drain(inner: &Inner, queue: &mut mpsc::Receiver<ActivityEvent>, batch: &mut Vec<ActivityEvent>) {
    let mut store_down = false;
    loop {
        while batch.len() < inner.batch_size {
            match queue.try_recv() {
                Ok(event) => batch.push(event),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        if store_down {
            inner.spill_or_log(batch, "store down during flush");
            batch.clear();
        } else {
            store_down = !write_or_spill(inner, batch).await;
        }
    }
}

/// Writes a batch (spilling it if the store will not take it); returns whether it was stored.
async fn write_or_spill(inner: &Inner, batch: &mut Vec<ActivityEvent>) -> bool {
    let stored = inner.write_with_retry(batch).await;
    if stored {
        inner.replay_spill().await;
    } else {
        inner.spill_or_log(batch, "store write failed after retries");
    }
    batch.clear();
    stored
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use async_trait::async_trait;

    use super::*;
    use crate::activity::{ActivityTotals, EventType};
    use crate::store::SqliteStore;

    /// A real SQLite store whose writes can be switched off, as when its disk fails.
    struct FailingDisk {
        store: SqliteStore,
        down: AtomicBool,
    }

    #[async_trait]
    impl ActivityStore for FailingDisk {
        async fn append_activity(&self, events: &[ActivityEvent]) -> Result<usize, StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable(anyhow::anyhow!("disk I/O error (injected)")));
            }
            self.store.append_activity(events).await
        }

        async fn recent_activity(&self, limit: usize, event_type: Option<EventType>) -> Result<Vec<ActivityEvent>, StoreError> {
            self.store.recent_activity(limit, event_type).await
        }

        async fn activity_totals(&self) -> Result<ActivityTotals, StoreError> {
            self.store.activity_totals().await
        }
    }

    const FAST: RetryPolicy = RetryPolicy { attempts: 2, first_delay: Duration::from_millis(5), max_delay: Duration::from_millis(10) };

    fn setup(down: bool) -> (tempfile::TempDir, Arc<FailingDisk>, std::path::PathBuf) {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(folder.path().join("activity.db")).unwrap();
        let disk = Arc::new(FailingDisk { store, down: AtomicBool::new(down) });
        let spill = folder.path().join("spill.jsonl");
        (folder, disk, spill)
    }

    fn event(n: u16) -> ActivityEvent {
        ActivityEvent::http_request("GET", "/health", 200, f64::from(n))
    }

    async fn stored(disk: &FailingDisk) -> u64 {
        disk.store.activity_totals().await.unwrap().total_events
    }

    async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "{what} never happened");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn an_outage_spills_and_the_recovery_replays_every_event_once() {
        let (_folder, disk, spill) = setup(true);
        let recorder = ActivityRecorder::background_with_retry(disk.clone(), spill, 8, 4, FAST);
        for n in 0..50 {
            recorder.record(event(n)).await;
        }
        eventually("a failing write", async || recorder.status().failing).await;
        eventually("the overflow reaching the spill file", async || recorder.status().spilled > 0).await;
        assert_eq!(stored(&disk).await, 0);

        disk.down.store(false, Ordering::SeqCst);
        recorder.record(event(50)).await;
        recorder.flush().await;
        eventually("every event stored", async || stored(&disk).await == 51).await;
        let status = recorder.status();
        assert_eq!(status.spilled, 0);
        assert!(!status.failing);
        recorder.shutdown().await;
        assert_eq!(stored(&disk).await, 51, "none twice");
    }

    #[tokio::test]
    async fn shutting_down_during_an_outage_leaves_everything_for_the_next_run() {
        let (_folder, disk, spill) = setup(true);
        let recorder = ActivityRecorder::background_with_retry(disk.clone(), spill.clone(), 100, 10, FAST);
        for n in 0..20 {
            recorder.record(event(n)).await;
        }
        recorder.shutdown().await;
        assert_eq!(recorder.status().spilled, 20);
        // Recorded after shutdown: spilled too, never dropped.
        recorder.record(event(20)).await;
        assert_eq!(recorder.status().spilled, 21);

        disk.down.store(false, Ordering::SeqCst);
        let next_run = ActivityRecorder::background_with_retry(disk.clone(), spill, 100, 10, FAST);
        eventually("the spill replayed at start", async || stored(&disk).await == 21).await;
        next_run.shutdown().await;
    }

    #[tokio::test]
    async fn inline_recording_writes_before_returning_and_spills_on_failure() {
        let (_folder, disk, spill) = setup(false);
        let recorder = ActivityRecorder::inline(disk.clone(), spill);
        recorder.record(event(1)).await;
        assert_eq!(stored(&disk).await, 1, "written before record returned");

        disk.down.store(true, Ordering::SeqCst);
        recorder.record(event(2)).await;
        assert_eq!(recorder.status().spilled, 1);

        disk.down.store(false, Ordering::SeqCst);
        recorder.record(event(3)).await;
        assert_eq!(stored(&disk).await, 3, "the spilled event was replayed with the next write");
        assert_eq!(recorder.status().spilled, 0);
    }
}
