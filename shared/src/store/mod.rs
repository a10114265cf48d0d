//! The traits Tributary's state lives behind, and the backends that implement them.
//!
//! Routes and services only ever see the traits, bundled in [`Stores`]; which backend answers is a
//! start-up decision of the host. Every backend must pass the same conformance tests
//! (`shared/src/store/conformance.rs`), so behaviour cannot drift between them:
//!
//! * appends are idempotent by event id, so a retried batch never counts twice;
//! * counters (the activity metrics) are maintained at write time, never by scanning;
//! * reads are bounded (`limit`), newest first.

mod dynamo;
mod sqlite;

#[cfg(test)]
mod conformance;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::activity::{ActivityEvent, ActivityTotals, EventType};
use crate::realtime::ConnectionId;

pub use dynamo::DynamoStore;
pub use sqlite::SqliteStore;

/// Why a store call failed. `Unavailable` is transient (retry later); the others are not.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or cannot write right now (locked, read-only, I/O, network).
    #[error("the store is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// What is stored does not decode.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A bug or an unexpected backend answer.
    #[error("store failure: {0:#}")]
    Internal(anyhow::Error),
}

impl StoreError {
    /// Whether retrying later can help.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Activity events and the counters derived from them.
#[async_trait]
pub trait ActivityStore: Send + Sync + 'static {
    /// Stores `events`, skipping ids already stored, and bumps the counters of the new ones in the
    /// same atomic write. Returns how many were new.
    async fn append_activity(&self, events: &[ActivityEvent]) -> Result<usize, StoreError>;

    /// The newest `limit` events, newest first, optionally of one type only.
    async fn recent_activity(&self, limit: usize, event_type: Option<EventType>) -> Result<Vec<ActivityEvent>, StoreError>;

    /// The counters: totals since the store was created.
    async fn activity_totals(&self) -> Result<ActivityTotals, StoreError>;
}

/// Counts over the lineage graph, by type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GraphCounts {
    pub nodes: u64,
    pub edges: u64,
    pub files: u64,
    pub node_types: BTreeMap<String, u64>,
    pub relationship_types: BTreeMap<String, u64>,
}

/// Read access to the lineage graph's size. (Writing it arrives with ingestion.)
#[async_trait]
pub trait GraphStore: Send + Sync + 'static {
    async fn graph_counts(&self) -> Result<GraphCounts, StoreError>;
}

/// The figures trends are computed against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub taken_at: DateTime<Utc>,
    pub total_nodes: u64,
    pub total_edges: u64,
    pub files_processed: u64,
}

/// Stored stats snapshots.
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    async fn save_snapshot(&self, snapshot: &StatsSnapshot) -> Result<(), StoreError>;

    /// The newest snapshot, if any.
    async fn latest_snapshot(&self) -> Result<Option<StatsSnapshot>, StoreError>;

    /// The newest snapshot taken at or before `at`; if there is none that old, the oldest one.
    async fn baseline_snapshot(&self, at: DateTime<Utc>) -> Result<Option<StatsSnapshot>, StoreError>;
}

/// Liveness of the backend, for `/health`.
#[async_trait]
pub trait StoreHealth: Send + Sync + 'static {
    /// Name of the backend (`sqlite`, `dynamodb`).
    fn backend(&self) -> &'static str;

    /// A cheap round trip that fails when the store cannot serve.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// One open dashboard WebSocket, as recorded for hosts that do not hold the socket themselves (the
/// cloud's functions) or that share it with them (a node on the DynamoDB backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    /// The client's address, for the per-IP limit.
    pub client_ip: String,
    pub connected_at: DateTime<Utc>,
    /// When the record stops counting (API Gateway closes connections after 2 hours anyway).
    pub expires_at: DateTime<Utc>,
    /// Whether the client has been sent its `connection_ack`.
    pub acknowledged: bool,
}

/// The answer to [`ConnectionStore::admit_connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The address already holds its limit of live connections; nothing was stored.
    TooManyFromIp {
        limit: u32,
    },
}

/// A connection as listed: its id, and whether it has had its `connection_ack`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedConnection {
    pub id: ConnectionId,
    pub acknowledged: bool,
}

/// One page of connections, and where the next one starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionPage {
    pub connections: Vec<ListedConnection>,
    /// Opaque cursor for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// The connection registry.
#[async_trait]
pub trait ConnectionStore: Send + Sync + 'static {
    /// Records a connection unless its address already holds `max_per_ip` live ones. Safe under
    /// concurrent admissions from one address: the limit is never exceeded. Conflicting admissions are
    /// retried; one that keeps conflicting fails as unavailable rather than exceed the limit.
    async fn admit_connection(&self, record: &ConnectionRecord, max_per_ip: u32) -> Result<Admission, StoreError>;

    /// Forgets a connection; returns whether it was there.
    async fn remove_connection(&self, id: &ConnectionId) -> Result<bool, StoreError>;

    /// A live connection's record.
    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionRecord>, StoreError>;

    /// Live connections, `page_size` at a time, in a stable order.
    async fn list_connections(&self, cursor: Option<String>, page_size: u32) -> Result<ConnectionPage, StoreError>;

    /// Live connections in all.
    async fn count_connections(&self) -> Result<u64, StoreError>;

    /// Notes that the connection has had its `connection_ack`.
    async fn mark_acknowledged(&self, id: &ConnectionId) -> Result<(), StoreError>;
}

/// Which backend holds the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// One embedded SQLite file.
    Sqlite,
    /// A DynamoDB table (the cloud, or a local DynamoDB-compatible server).
    Dynamodb,
}

/// Every store a host needs, behind its trait.
#[derive(Clone)]
pub struct Stores {
    pub activity: Arc<dyn ActivityStore>,
    pub graph: Arc<dyn GraphStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub connections: Arc<dyn ConnectionStore>,
    pub health: Arc<dyn StoreHealth>,
}

impl Stores {
    /// All stores served by one SQLite database.
    pub fn sqlite(store: SqliteStore) -> Self {
        let store = Arc::new(store);
        Stores { activity: store.clone(), graph: store.clone(), snapshots: store.clone(), connections: store.clone(), health: store }
    }

    /// All stores served by one DynamoDB table.
    pub fn dynamodb(store: DynamoStore) -> Self {
        let store = Arc::new(store);
        Stores { activity: store.clone(), graph: store.clone(), snapshots: store.clone(), connections: store.clone(), health: store }
    }

    /// The stores `settings` ask for: `TRIBUTARY_STORE` picks the backend.
    pub async fn open(settings: &crate::config::Settings) -> Result<Self, StoreError> {
        match settings.store {
            Backend::Sqlite => Ok(Stores::sqlite(SqliteStore::open(&settings.db_path)?)),
            Backend::Dynamodb => {
                let store = DynamoStore::from_env(&settings.table).await;
                if settings.create_table {
                    store.create_table_if_missing().await?;
                }
                Ok(Stores::dynamodb(store))
            }
        }
    }
}
