//! What the promise of `POST /api/v1/activity`'s 201 costs: events recorded durably (each caller
//! waits until its event is committed, or in the spill file) at several concurrencies, beside the
//! floor of recording without waiting (queued, then one flush at the end), all on a fresh SQLite
//! file through the node's background recorder, in this process. Concurrent durable records share
//! the writer's batches (group commit), which is what keeps their throughput.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use tributary_core::activity::{ActivityEvent, ActivityRecorder, EventSource, EventStatus, EventType};
use tributary_core::store::SqliteStore;

fn event(n: usize) -> ActivityEvent {
    ActivityEvent::new(EventType::ClientEvent, EventSource::Client, "/api/v1/activity", EventStatus::Success)
        .with_metadata("client_type", "bench")
        .with_metadata("message", format!("event {n}"))
}

/// A recorder as the node builds one (queue of 10,000, batches of up to 500) on a fresh file.
fn recorder(folder: &std::path::Path) -> anyhow::Result<ActivityRecorder> {
    let store = Arc::new(SqliteStore::open(folder.join("activity.db"))?);
    Ok(ActivityRecorder::background(store, folder.join("spill.jsonl"), 10_000, 500))
}

/// Events a second: `events` recorded durably, `concurrency` at a time.
async fn durable(events: usize, concurrency: usize) -> anyhow::Result<f64> {
    let folder = tempfile::tempdir()?;
    let recorder = recorder(folder.path())?;
    let started = Instant::now();
    let outcomes: Vec<_> = futures::stream::iter(0..events)
        .map(|n| {
            let recorder = recorder.clone();
            async move { recorder.record_durably(event(n)).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    anyhow::ensure!(outcomes.iter().all(Result::is_ok), "some events were not stored");
    recorder.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(events as f64 / elapsed.as_secs_f64())
}

/// Events a second recorded without waiting, up to the flush that stores the last of them.
async fn queued(events: usize) -> anyhow::Result<f64> {
    let folder = tempfile::tempdir()?;
    let recorder = recorder(folder.path())?;
    let started = Instant::now();
    for n in 0..events {
        recorder.record(event(n)).await;
    }
    recorder.flush().await;
    let elapsed = started.elapsed();
    recorder.shutdown(std::time::Duration::from_secs(5)).await;
    Ok(events as f64 / elapsed.as_secs_f64())
}

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Prints the activity section: medians of `runs` runs of `events` events each.
pub async fn print_activity(events: usize, runs: usize) -> anyhow::Result<()> {
    println!("## Activity events: the cost of a stored 201 (embedded SQLite store, in process)\n");
    println!("{events} events per run, median of {runs} runs, each on a fresh SQLite file.\n");
    println!("| How | Events/s |\n| --- | ---: |");
    let mut floor = Vec::new();
    for _ in 0..runs {
        floor.push(queued(events).await?);
    }
    println!("| Floor: recorded without waiting, one flush at the end | {:.0} |", median(floor));
    for concurrency in [1, 8, 32, 128] {
        let mut samples = Vec::new();
        for _ in 0..runs {
            samples.push(durable(events, concurrency).await?);
        }
        println!("| Durable (`record_durably`), {concurrency} at a time | {:.0} |", median(samples));
    }
    println!();
    Ok(())
}
