//! The activity pipeline: record without blocking, persist without losing.
//!
//! * **Background** (the socket node): [`ActivityRecorder::record`] only enqueues on a bounded queue.
//!   One writer task drains it in batches (as many as are waiting, up to the batch size), writes each
//!   batch in one store call, and retries with exponential backoff. A batch that still fails is
//!   spilled to the [`SpillFile`]; so is any event that finds the queue full. After every successful
//!   write (and at start) the spill is replayed. [`ActivityRecorder::shutdown`] drains the queue
//!   within a deadline and spills whatever the store would not take in time, so a restart is quick
//!   and loses nothing.
//! * **Inline** (Lambda): `record` writes before it returns, because a frozen execution environment
//!   runs no background task; a write that fails after its retries spills to the local file and is
//!   replayed by the next invocation that writes successfully.
//!
//! Stores skip ids they already hold, so replays, retries and a write that finished after we stopped
//! waiting for it never count an event twice.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
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
    /// The last write error, if the last write failed (for the logs; not sent to clients).
    #[serde(skip)]
    pub last_error: Option<String>,
}

enum Control {
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// An event waiting for the writer, and who waits to hear it is durable.
struct Queued {
    event: ActivityEvent,
    durable: Option<oneshot::Sender<bool>>,
}

/// An event that is neither in the store nor in the spill file (both refused it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the activity event could be written neither to the store nor to the spill file")]
pub struct NotDurable;

/// Records activity events; cheap to clone.
#[derive(Clone)]
pub struct ActivityRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    mode: RecorderMode,
    store: Arc<dyn ActivityStore>,
    spill: Arc<SpillFile>,
    batch_size: usize,
    queue: Option<mpsc::Sender<Queued>>,
    control: Option<mpsc::UnboundedSender<Control>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    persisted: AtomicU64,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    retry: RetryPolicy,
    /// Set by `shutdown`: no write may outlive it.
    deadline: Mutex<Option<Instant>>,
    /// Wakes a writer sleeping between retries when the deadline is set.
    deadline_set: Notify,
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

impl Inner {
    fn new(
        mode: RecorderMode,
        store: Arc<dyn ActivityStore>,
        spill_path: std::path::PathBuf,
        batch_size: usize,
        retry: RetryPolicy,
    ) -> Self {
        Inner {
            mode,
            store,
            spill: Arc::new(SpillFile::new(spill_path)),
            batch_size: batch_size.max(1),
            queue: None,
            control: None,
            writer: Mutex::new(None),
            persisted: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            retry,
            deadline: Mutex::new(None),
            deadline_set: Notify::new(),
        }
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
        let mut inner = Inner::new(RecorderMode::Background, store, spill_path, batch_size, retry);
        inner.queue = Some(queue);
        inner.control = Some(control);
        let recorder = ActivityRecorder { inner: Arc::new(inner) };
        let writer = tokio::spawn(run_writer(recorder.inner.clone(), receiver, control_receiver));
        *recorder.inner.writer.lock().expect("fresh mutex") = Some(writer);
        recorder
    }

    /// A recorder that writes before `record` returns.
    pub fn inline(store: Arc<dyn ActivityStore>, spill_path: std::path::PathBuf) -> Self {
        let retry = RetryPolicy { attempts: 3, first_delay: Duration::from_millis(50), max_delay: Duration::from_millis(400) };
        ActivityRecorder { inner: Arc::new(Inner::new(RecorderMode::Inline, store, spill_path, 500, retry)) }
    }

    /// Records one event. Never fails and never drops it: at worst it lands in the spill file.
    /// Returns before it is written (on a background recorder).
    pub async fn record(&self, event: ActivityEvent) {
        let _ = self.enqueue(event, None).await;
    }

    /// Records one event and returns once it is durable: committed to the store, or appended to
    /// the spill file (which the next successful write replays), so a crash of the process from then
    /// on cannot lose it. On a background recorder the event joins the writer's next batch, so
    /// concurrent callers share one commit.
    pub async fn record_durably(&self, event: ActivityEvent) -> Result<(), NotDurable> {
        let (durable, written) = oneshot::channel();
        match self.enqueue(event, Some(durable)).await {
            Some(done) => done,
            // The writer answers once the batch holding the event is stored or spilled; if it is
            // gone without answering, the event was dropped with the queue.
            None => written.await.unwrap_or(false).then_some(()).ok_or(NotDurable),
        }
    }

    /// Hands `event` to the writer; or, without one or when the queue is full, writes or spills it
    /// here and returns whether that made it durable.
    async fn enqueue(&self, event: ActivityEvent, durable: Option<oneshot::Sender<bool>>) -> Option<Result<(), NotDurable>> {
        let inner = &self.inner;
        let outcome = match &inner.queue {
            Some(queue) => match queue.try_send(Queued { event, durable }) {
                Ok(()) => return None,
                Err(mpsc::error::TrySendError::Full(queued) | mpsc::error::TrySendError::Closed(queued)) => {
                    inner.spill_or_log(vec![queued.event], "activity queue is full or closed").await
                }
            },
            None => {
                let batch = vec![event];
                if inner.write_with_retry(&batch).await {
                    inner.replay_spill().await;
                    true
                } else {
                    inner.spill_or_log(batch, "store write failed after retries").await
                }
            }
        };
        Some(outcome.then_some(()).ok_or(NotDurable))
    }

    /// Waits until every event recorded before this call is stored or spilled.
    pub async fn flush(&self) {
        self.send_control(Control::Flush).await;
    }

    /// Stores what is queued, giving the store at most `grace`; what it has not taken by then is
    /// spilled. Then stops the writer: events recorded afterwards go straight to the spill file.
    pub async fn shutdown(&self, grace: Duration) {
        *self.inner.deadline.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Instant::now() + grace);
        self.inner.deadline_set.notify_waiters();
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
    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes one batch, retrying with backoff; once a shutdown deadline is set, one attempt that
    /// must finish by then. Returns whether the batch is stored.
    async fn write_with_retry(&self, batch: &[ActivityEvent]) -> bool {
        for attempt in 0..self.retry.attempts {
            let deadline = self.deadline();
            let result = match deadline {
                None => self.store.append_activity(batch).await,
                Some(deadline) => match tokio::time::timeout_at(deadline, self.store.append_activity(batch)).await {
                    Ok(result) => result,
                    Err(_) => Err(StoreError::Unavailable(anyhow::anyhow!("no answer before the shutdown deadline"))),
                },
            };
            match result {
                Ok(_) => {
                    self.persisted.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if self.failing.swap(false, Ordering::Relaxed) {
                        tracing::info!("activity store is writable again");
                    }
                    return true;
                }
                Err(error) => {
                    self.note_failure(&error, attempt);
                    if deadline.is_some() || attempt + 1 == self.retry.attempts {
                        return false;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(self.retry.delay(attempt)) => {}
                        _ = self.deadline_set.notified() => {}
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

    /// Appends to the spill file off the async threads; returns whether the events are in it.
    async fn spill_or_log(&self, events: Vec<ActivityEvent>, why: &'static str) -> bool {
        let spill = self.spill.clone();
        let count = events.len();
        let written =
            tokio::task::spawn_blocking(move || spill.append(&events)).await.unwrap_or_else(|error| Err(std::io::Error::other(error)));
        match written {
            Ok(()) => {
                tracing::debug!(count, path = %self.spill.path().display(), why, "activity spilled to file");
                true
            }
            // The one place an event can be lost: neither the store nor the local disk take it.
            Err(error) => {
                tracing::error!(count, path = %self.spill.path().display(), %error, why, "activity could not be spilled; events lost");
                false
            }
        }
    }

    /// Moves spilled events into the store, a chunk at a time, if there are any.
    async fn replay_spill(&self) {
        // At most two rounds: an unfinished earlier replay, then the current spill.
        for _ in 0..2 {
            if self.spill.pending() == 0 || self.deadline().is_some() {
                return;
            }
            let spill = self.spill.clone();
            let mut replay = match tokio::task::spawn_blocking(move || spill.start_replay()).await {
                Ok(Ok(Some(replay))) => replay,
                Ok(Ok(None)) => return,
                Ok(Err(error)) => return tracing::warn!(%error, "could not open the activity spill file for replay"),
                Err(error) => return tracing::warn!(%error, "activity spill replay task failed"),
            };
            loop {
                let batch_size = self.batch_size;
                let read = tokio::task::spawn_blocking(move || {
                    let chunk = replay.next_chunk(batch_size);
                    (replay, chunk)
                })
                .await;
                let chunk = match read {
                    Ok((back, Ok(chunk))) => {
                        replay = back;
                        chunk
                    }
                    Ok((_, Err(error))) => return tracing::warn!(%error, "could not read the activity spill file"),
                    Err(error) => return tracing::warn!(%error, "activity spill replay task failed"),
                };
                if chunk.is_empty() {
                    break;
                }
                if !self.write_with_retry(&chunk).await {
                    tracing::warn!("activity spill replay interrupted; it resumes after the next successful write");
                    return;
                }
            }
            if replay.unreadable_lines > 0 {
                tracing::warn!(lines = replay.unreadable_lines, "skipped unreadable lines in the activity spill file");
            }
            let replayed = replay.events_read;
            match self.spill.finish_replay(replay) {
                Ok(()) => tracing::info!(count = replayed, "replayed spilled activity into the store"),
                Err(error) => tracing::warn!(%error, "replayed spilled activity but could not remove the replay file"),
            }
        }
    }
}

async fn run_writer(inner: Arc<Inner>, mut queue: mpsc::Receiver<Queued>, mut control: mpsc::UnboundedReceiver<Control>) {
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

/// Writes everything waiting in the queue. Once a batch fails (or the store was already failing,
/// or the shutdown deadline has passed) the rest goes straight to the spill file: a flush must
/// finish promptly even while the store is down.
async fn drain(inner: &Inner, queue: &mut mpsc::Receiver<Queued>, batch: &mut Vec<Queued>) {
    let mut store_down = inner.failing.load(Ordering::Relaxed);
    loop {
        while batch.len() < inner.batch_size {
            match queue.try_recv() {
                Ok(queued) => batch.push(queued),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            return;
        }
        let past_deadline = inner.deadline().is_some_and(|deadline| Instant::now() >= deadline);
        if store_down || past_deadline {
            let (events, waiting) = split(batch);
            let spilled = inner.spill_or_log(events, "store down or out of time during flush").await;
            tell(waiting, spilled);
        } else {
            store_down = !write_or_spill(inner, batch).await;
        }
    }
}

/// Writes a batch (spilling it if the store will not take it), tells whoever waits on its events
/// whether they are durable, and returns whether it was stored.
async fn write_or_spill(inner: &Inner, batch: &mut Vec<Queued>) -> bool {
    let (events, waiting) = split(batch);
    let stored = inner.write_with_retry(&events).await;
    if stored {
        tell(waiting, true);
        inner.replay_spill().await;
    } else {
        let spilled = inner.spill_or_log(events, "store write failed after retries").await;
        tell(waiting, spilled);
    }
    stored
}

/// Empties `batch` into its events and the callers waiting on them.
fn split(batch: &mut Vec<Queued>) -> (Vec<ActivityEvent>, Vec<oneshot::Sender<bool>>) {
    let mut waiting = Vec::new();
    let events = batch
        .drain(..)
        .map(|queued| {
            waiting.extend(queued.durable);
            queued.event
        })
        .collect();
    (events, waiting)
}

fn tell(waiting: Vec<oneshot::Sender<bool>>, durable: bool) {
    for waiter in waiting {
        let _ = waiter.send(durable);
    }
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
        recorder.shutdown(Duration::from_secs(1)).await;
        assert_eq!(stored(&disk).await, 51, "none twice");
    }

    #[tokio::test]
    async fn shutting_down_during_an_outage_leaves_everything_for_the_next_run() {
        let (_folder, disk, spill) = setup(true);
        let recorder = ActivityRecorder::background_with_retry(disk.clone(), spill.clone(), 100, 10, FAST);
        for n in 0..20 {
            recorder.record(event(n)).await;
        }
        recorder.shutdown(Duration::from_secs(1)).await;
        assert_eq!(recorder.status().spilled, 20);
        // Recorded after shutdown: spilled too, never dropped.
        recorder.record(event(20)).await;
        assert_eq!(recorder.status().spilled, 21);

        disk.down.store(false, Ordering::SeqCst);
        let next_run = ActivityRecorder::background_with_retry(disk.clone(), spill, 100, 10, FAST);
        eventually("the spill replayed at start", async || stored(&disk).await == 21).await;
        next_run.shutdown(Duration::from_secs(1)).await;
    }

    /// A store that never answers, as when a network store hangs.
    struct Hanging;

    #[async_trait]
    impl ActivityStore for Hanging {
        async fn append_activity(&self, _events: &[ActivityEvent]) -> Result<usize, StoreError> {
            std::future::pending().await
        }

        async fn recent_activity(&self, _limit: usize, _event_type: Option<EventType>) -> Result<Vec<ActivityEvent>, StoreError> {
            Ok(Vec::new())
        }

        async fn activity_totals(&self) -> Result<ActivityTotals, StoreError> {
            Ok(ActivityTotals::default())
        }
    }

    #[tokio::test]
    async fn shutdown_keeps_its_deadline_when_the_store_hangs_and_spills_the_rest() {
        let folder = tempfile::tempdir().unwrap();
        let recorder = ActivityRecorder::background(Arc::new(Hanging), folder.path().join("spill.jsonl"), 100, 10);
        for n in 0..30 {
            recorder.record(event(n)).await;
        }
        tokio::time::timeout(Duration::from_secs(5), recorder.shutdown(Duration::from_millis(100)))
            .await
            .expect("shutdown returns once its deadline has passed");
        assert_eq!(recorder.status().spilled, 30, "nothing lost: every event is in the spill file");
    }

    #[tokio::test]
    async fn a_durable_record_returns_once_its_event_is_stored_or_spilled() {
        let (_folder, disk, spill) = setup(false);
        let recorder = ActivityRecorder::background_with_retry(disk.clone(), spill, 100, 10, FAST);
        // Many at once share the writer's batches; each returns with its event already stored.
        let records: Vec<_> = (0..40)
            .map(|n| {
                let recorder = recorder.clone();
                tokio::spawn(async move { recorder.record_durably(event(n)).await })
            })
            .collect();
        for record in records {
            record.await.unwrap().unwrap();
        }
        assert_eq!(stored(&disk).await, 40, "every event is stored when its record returns");

        // With the store down, a durable record returns once the event is in the spill file.
        disk.down.store(true, Ordering::SeqCst);
        recorder.record_durably(event(41)).await.unwrap();
        assert_eq!(recorder.status().spilled, 1);
        recorder.shutdown(Duration::from_secs(1)).await;
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
