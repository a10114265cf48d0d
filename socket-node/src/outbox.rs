//! One connection's outbox: what the hub has for a client that its task has not written yet.
//!
//! Messages leave in the order they were queued. A critical message is never merged or dropped; a
//! high-frequency one ([`Outbound::Latest`], e.g. `stats_update`) replaces an older unsent one of
//! the same kind, which moves to the end: a client that is behind gets the newest state once, not
//! every stale one. The outbox is bounded in bytes, but only as memory protection: whether a client
//! is slow is judged by time (its task's send timeout: how long the client leaves data unread), so
//! a burst the server produces never closes a client that reads everything. An empty outbox
//! allocates nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use crate::hub::CloseReason;

/// What travels through a connection's outbox.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Utf8Bytes),
    /// A high-frequency message: replaces an unsent one with the same key.
    Latest {
        key: Arc<str>,
        text: Utf8Bytes,
    },
    Ping,
    /// Send this close frame after whatever is already queued, then end.
    Close(CloseReason),
}

impl Outbound {
    fn bytes(&self) -> usize {
        match self {
            Outbound::Text(text) | Outbound::Latest { text, .. } => text.len(),
            Outbound::Ping | Outbound::Close(_) => 0,
        }
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Queuing it would pass the byte bound: the client has left that much unread.
    Full,
    /// The connection has ended.
    Closed,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Outbound>,
    bytes: usize,
    /// `Latest` items waiting (most often none, so no scan).
    latest: usize,
    closed: bool,
}

/// A bounded, coalescing queue with one reader (the connection's task).
pub struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    max_bytes: usize,
}

impl Outbox {
    pub fn new(max_bytes: usize) -> Self {
        Outbox { queue: Mutex::new(Queue::default()), ready: Notify::new(), max_bytes }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `item` for the client; never waits.
    pub fn push(&self, item: Outbound) -> Result<(), Refused> {
        let mut queue = self.queue();
        if queue.closed {
            return Err(Refused::Closed);
        }
        if let Outbound::Latest { key, .. } = &item
            && queue.latest > 0
            && let Some(older) =
                queue.items.iter().position(|queued| matches!(queued, Outbound::Latest { key: queued, .. } if queued == key))
        {
            let older = queue.items.remove(older).expect("found above");
            queue.bytes -= older.bytes();
            queue.latest -= 1;
        }
        // The byte bound applies to what is waiting already: one message larger than the bound
        // still reaches a client whose outbox is empty.
        if queue.bytes > 0 && queue.bytes + item.bytes() > self.max_bytes {
            return Err(Refused::Full);
        }
        queue.bytes += item.bytes();
        queue.latest += usize::from(matches!(item, Outbound::Latest { .. }));
        queue.items.push_back(item);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// The next item, waiting for one if there is none.
    pub async fn next(&self) -> Outbound {
        loop {
            {
                let mut queue = self.queue();
                if let Some(item) = queue.items.pop_front() {
                    queue.bytes -= item.bytes();
                    queue.latest -= usize::from(matches!(item, Outbound::Latest { .. }));
                    if queue.items.is_empty() {
                        // Give back a burst's memory once it has left.
                        queue.items = VecDeque::new();
                    }
                    return item;
                }
            }
            // A push between the unlock and here stores a permit, so no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// Refuses everything from now on (the connection ended) and frees what waits.
    pub fn close(&self) {
        *self.queue() = Queue { closed: true, ..Queue::default() };
    }

    /// Bytes waiting.
    #[cfg(test)]
    pub fn waiting_bytes(&self) -> usize {
        self.queue().bytes
    }

    /// Everything waiting, in order, without waiting (for tests).
    #[cfg(test)]
    pub fn drain(&self) -> Vec<Outbound> {
        let mut queue = self.queue();
        queue.bytes = 0;
        queue.latest = 0;
        queue.items.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Outbound {
        Outbound::Text(Utf8Bytes::from(value.to_owned()))
    }

    fn latest(key: &str, value: &str) -> Outbound {
        Outbound::Latest { key: Arc::from(key), text: Utf8Bytes::from(value.to_owned()) }
    }

    fn texts(items: Vec<Outbound>) -> Vec<String> {
        items
            .into_iter()
            .map(|item| match item {
                Outbound::Text(text) | Outbound::Latest { text, .. } => text.to_string(),
                Outbound::Ping => "ping".to_owned(),
                Outbound::Close(reason) => format!("close {}", reason.code),
            })
            .collect()
    }

    #[test]
    fn critical_messages_keep_their_order_and_a_newer_latest_replaces_the_older() {
        let outbox = Outbox::new(1024);
        outbox.push(latest("stats", "stats 1")).unwrap();
        outbox.push(text("started")).unwrap();
        outbox.push(latest("progress:a", "a 10%")).unwrap();
        outbox.push(latest("stats", "stats 2")).unwrap();
        outbox.push(text("complete")).unwrap();
        assert_eq!(texts(outbox.drain()), ["started", "a 10%", "stats 2", "complete"]);
        assert_eq!(outbox.waiting_bytes(), 0);
    }

    #[test]
    fn the_byte_bound_refuses_once_that_much_waits_unread() {
        let outbox = Outbox::new(10);
        outbox.push(text("0123456789abcdef")).expect("one message larger than the bound reaches an empty outbox");
        assert_eq!(outbox.push(text("x")), Err(Refused::Full));
        outbox.drain();
        for _ in 0..10 {
            outbox.push(text("x")).unwrap();
        }
        assert_eq!(outbox.push(text("x")), Err(Refused::Full));
        // A newer state of a kind replaces the older instead of adding to the backlog.
        let outbox = Outbox::new(10);
        for n in 0..100 {
            outbox.push(latest("stats", &format!("s{n:02}"))).unwrap();
        }
        assert_eq!(texts(outbox.drain()), ["s99"]);
    }

    #[tokio::test]
    async fn the_reader_waits_for_a_message_and_a_closed_outbox_takes_none() {
        let outbox = Arc::new(Outbox::new(1024));
        let reader = {
            let outbox = outbox.clone();
            tokio::spawn(async move { texts(vec![outbox.next().await, outbox.next().await]) })
        };
        tokio::task::yield_now().await;
        outbox.push(text("one")).unwrap();
        outbox.push(Outbound::Ping).unwrap();
        assert_eq!(reader.await.unwrap(), ["one", "ping"]);
        outbox.close();
        assert_eq!(outbox.push(text("late")), Err(Refused::Closed));
    }
}
