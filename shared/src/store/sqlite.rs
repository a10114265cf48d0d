//! The embedded backend: one SQLite file in WAL mode.
//!
//! A small connection pool serves calls on Tokio's blocking threads; WAL lets readers run beside the
//! one writer, and `busy_timeout` makes writers queue rather than fail. The schema is created and
//! upgraded at open by the numbered migrations below (tracked in `PRAGMA user_version`); a migration
//! is never edited once released, only followed by a new one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    ActivityStore, Admission, ConnectionPage, ConnectionRecord, ConnectionStore, GraphCounts, GraphStore, ListedConnection, SnapshotStore,
    StatsSnapshot, StoreError, StoreHealth,
};
use crate::activity::{ActivityEvent, ActivityTotals, EventType};
use crate::realtime::ConnectionId;

/// How long a write waits for another writer (this process or another) before failing as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, applied in order; `user_version` records how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: activity, counters, stats snapshots, and the lineage graph's files, nodes and edges.
    "CREATE TABLE activity_events (
         id          TEXT PRIMARY KEY,
         ts_ms       INTEGER NOT NULL,
         event_type  TEXT NOT NULL,
         endpoint    TEXT NOT NULL,
         method      TEXT,
         status      TEXT NOT NULL,
         status_code INTEGER,
         latency_ms  REAL,
         source      TEXT NOT NULL,
         metadata    TEXT NOT NULL DEFAULT '{}'
     );
     CREATE INDEX activity_events_by_time ON activity_events (ts_ms DESC, id DESC);
     CREATE INDEX activity_events_by_type_time ON activity_events (event_type, ts_ms DESC, id DESC);
     CREATE TABLE activity_counters (
         name  TEXT PRIMARY KEY,
         value INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE stats_snapshots (
         taken_at_ms     INTEGER PRIMARY KEY,
         total_nodes     INTEGER NOT NULL,
         total_edges     INTEGER NOT NULL,
         files_processed INTEGER NOT NULL
     );
     CREATE TABLE files (
         id           TEXT PRIMARY KEY,
         project_id   TEXT NOT NULL,
         filename     TEXT NOT NULL,
         content_hash TEXT NOT NULL,
         ingested_at_ms INTEGER NOT NULL,
         UNIQUE (project_id, content_hash)
     );
     CREATE TABLE graph_nodes (
         id         TEXT PRIMARY KEY,
         project_id TEXT NOT NULL,
         node_type  TEXT NOT NULL,
         name       TEXT NOT NULL,
         file_id    TEXT REFERENCES files (id) ON DELETE CASCADE
     );
     CREATE INDEX graph_nodes_by_type ON graph_nodes (node_type);
     CREATE TABLE graph_edges (
         id         TEXT PRIMARY KEY,
         project_id TEXT NOT NULL,
         edge_type  TEXT NOT NULL,
         source_id  TEXT NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE,
         target_id  TEXT NOT NULL REFERENCES graph_nodes (id) ON DELETE CASCADE
     );
     CREATE INDEX graph_edges_by_type ON graph_edges (edge_type);",
    // 2: the connection registry.
    "CREATE TABLE connections (
         id              TEXT PRIMARY KEY,
         client_ip       TEXT NOT NULL,
         connected_at_ms INTEGER NOT NULL,
         expires_at_ms   INTEGER NOT NULL,
         acknowledged    INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX connections_by_ip ON connections (client_ip, expires_at_ms);",
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed, with its folder) and migrates the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .map_err(|error| StoreError::Unavailable(anyhow!(error).context(format!("creating {}", folder.display()))))?;
        }
        // WAL is a property of the file: set it once, on one connection, before the pool opens more
        // (several connections racing to switch it would fail with "database is locked").
        {
            let connection = Connection::open(&path).map_err(|error| classify(error).context_for(&path))?;
            connection.busy_timeout(BUSY_TIMEOUT).map_err(|error| classify(error).context_for(&path))?;
            connection.pragma_update(None, "journal_mode", "WAL").map_err(|error| classify(error).context_for(&path))?;
        }
        let manager = SqliteConnectionManager::file(&path).with_init(|connection| {
            connection.busy_timeout(BUSY_TIMEOUT)?;
            connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        });
        let pool = Pool::builder()
            .max_size(8)
            .min_idle(Some(2))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .map_err(|error| StoreError::Unavailable(anyhow!(error).context(format!("opening {}", path.display()))))?;
        let store = SqliteStore { pool, path };
        let mut connection = store.connection()?;
        migrate(&mut connection).map_err(|error| classify(error).context_for(&store.path))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connection(&self) -> Result<PooledConnection<SqliteConnectionManager>, StoreError> {
        self.pool.get().map_err(|error| StoreError::Unavailable(anyhow!(error).context("no SQLite connection available")))
    }

    /// Runs `work` on a pooled connection on a blocking thread.
    async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = store.connection()?;
            work(&mut connection)
        })
        .await
        .map_err(|error| StoreError::Internal(anyhow!(error).context("SQLite task failed")))?
    }
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied.max(0) as usize) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
        transaction.commit()?;
        tracing::info!(version = index + 1, "applied SQLite migration");
    }
    Ok(())
}

/// Sorts SQLite's errors into transient (retry later) and permanent ones.
fn classify(error: rusqlite::Error) -> StoreError {
    let code = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    };
    match code {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::ReadOnly
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::DiskFull
            | ErrorCode::PermissionDenied
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(anyhow!(error)),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Internal(anyhow!(error)),
    }
}

impl StoreError {
    fn context_for(self, path: &Path) -> StoreError {
        let context = format!("SQLite database {}", path.display());
        match self {
            StoreError::Unavailable(error) => StoreError::Unavailable(error.context(context)),
            StoreError::Internal(error) => StoreError::Internal(error.context(context)),
            StoreError::Corrupt(detail) => StoreError::Corrupt(format!("{context}: {detail}")),
        }
    }
}

fn count(value: i64) -> u64 {
    value.max(0) as u64
}

fn millis_to_time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

/// Columns of `activity_events`, in `read_event`'s order.
const EVENT_COLUMNS: &str = "id, ts_ms, event_type, endpoint, method, status, status_code, latency_ms, source, metadata";

fn read_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ActivityEvent, StoreError>> {
    let id: String = row.get(0)?;
    let ts_ms: i64 = row.get(1)?;
    let event_type: String = row.get(2)?;
    let status: String = row.get(5)?;
    let source: String = row.get(8)?;
    let metadata: String = row.get(9)?;
    let endpoint: String = row.get(3)?;
    let method: Option<String> = row.get(4)?;
    let status_code: Option<u16> = row.get(6)?;
    let latency_ms: Option<f64> = row.get(7)?;
    Ok((|| {
        let corrupt = |what: &str, error: &dyn std::fmt::Display| StoreError::Corrupt(format!("activity {id}: {what}: {error}"));
        Ok(ActivityEvent {
            id: Uuid::parse_str(&id).map_err(|error| corrupt("id", &error))?,
            timestamp: millis_to_time(ts_ms)?,
            event_type: serde_json::from_value(Value::String(event_type)).map_err(|error| corrupt("event_type", &error))?,
            endpoint,
            method,
            status: serde_json::from_value(Value::String(status)).map_err(|error| corrupt("status", &error))?,
            status_code,
            latency_ms,
            source: serde_json::from_value(Value::String(source)).map_err(|error| corrupt("source", &error))?,
            metadata: serde_json::from_str::<Map<String, Value>>(&metadata).map_err(|error| corrupt("metadata", &error))?,
        })
    })())
}

fn as_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(text)) => text,
        other => panic!("enum did not serialize to a string: {other:?}"),
    }
}

#[async_trait]
impl ActivityStore for SqliteStore {
    async fn append_activity(&self, events: &[ActivityEvent]) -> Result<usize, StoreError> {
        if events.is_empty() {
            return Ok(0);
        }
        let events = events.to_vec();
        self.run(move |connection| {
            let transaction = connection.transaction().map_err(classify)?;
            let mut inserted = 0;
            let mut increments = std::collections::BTreeMap::<String, i64>::new();
            {
                let mut insert = transaction
                    .prepare_cached(
                        "INSERT OR IGNORE INTO activity_events
                             (id, ts_ms, event_type, endpoint, method, status, status_code, latency_ms, source, metadata)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(classify)?;
                for event in &events {
                    let metadata = serde_json::to_string(&event.metadata).map_err(|error| StoreError::Internal(anyhow!(error)))?;
                    let changed = insert
                        .execute(params![
                            event.id.to_string(),
                            event.timestamp.timestamp_millis(),
                            event.event_type.as_str(),
                            event.endpoint,
                            event.method,
                            as_text(&event.status),
                            event.status_code,
                            event.latency_ms,
                            as_text(&event.source),
                            metadata,
                        ])
                        .map_err(classify)?;
                    if changed == 1 {
                        inserted += 1;
                        for (name, by) in event.counter_increments() {
                            *increments.entry(name).or_default() += by;
                        }
                    }
                }
                let mut bump = transaction
                    .prepare_cached(
                        "INSERT INTO activity_counters (name, value) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    )
                    .map_err(classify)?;
                for (name, by) in &increments {
                    bump.execute(params![name, by]).map_err(classify)?;
                }
            }
            transaction.commit().map_err(classify)?;
            Ok(inserted)
        })
        .await
    }

    async fn recent_activity(&self, limit: usize, event_type: Option<EventType>) -> Result<Vec<ActivityEvent>, StoreError> {
        self.run(move |connection| {
            let limit = limit as i64;
            let rows = match event_type {
                None => {
                    let mut statement = connection
                        .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM activity_events ORDER BY ts_ms DESC, id DESC LIMIT ?1"))
                        .map_err(classify)?;
                    statement.query_map(params![limit], read_event).map_err(classify)?.collect::<rusqlite::Result<Vec<_>>>()
                }
                Some(kind) => {
                    let mut statement = connection
                        .prepare_cached(&format!(
                            "SELECT {EVENT_COLUMNS} FROM activity_events WHERE event_type = ?1 ORDER BY ts_ms DESC, id DESC LIMIT ?2"
                        ))
                        .map_err(classify)?;
                    statement.query_map(params![kind.as_str(), limit], read_event).map_err(classify)?.collect()
                }
            };
            rows.map_err(classify)?.into_iter().collect()
        })
        .await
    }

    async fn activity_totals(&self) -> Result<ActivityTotals, StoreError> {
        self.run(|connection| {
            let mut statement = connection.prepare_cached("SELECT name, value FROM activity_counters").map_err(classify)?;
            let counters = statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            Ok(ActivityTotals::from_counters(counters))
        })
        .await
    }
}

#[async_trait]
impl GraphStore for SqliteStore {
    async fn graph_counts(&self) -> Result<GraphCounts, StoreError> {
        self.run(|connection| {
            let transaction = connection.transaction().map_err(classify)?;
            let grouped = |sql: &str| -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
                let mut statement = transaction.prepare_cached(sql).map_err(classify)?;
                let rows = statement
                    .query_map([], |row| Ok((row.get::<_, String>(0)?, count(row.get(1)?))))
                    .map_err(classify)?
                    .collect::<rusqlite::Result<_>>()
                    .map_err(classify)?;
                Ok(rows)
            };
            let node_types = grouped("SELECT node_type, COUNT(*) FROM graph_nodes GROUP BY node_type")?;
            let relationship_types = grouped("SELECT edge_type, COUNT(*) FROM graph_edges GROUP BY edge_type")?;
            let files: i64 = transaction.query_row("SELECT COUNT(*) FROM files", [], |row| row.get(0)).map_err(classify)?;
            Ok(GraphCounts {
                nodes: node_types.values().sum(),
                edges: relationship_types.values().sum(),
                files: count(files),
                node_types,
                relationship_types,
            })
        })
        .await
    }
}

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn save_snapshot(&self, snapshot: &StatsSnapshot) -> Result<(), StoreError> {
        let snapshot = *snapshot;
        self.run(move |connection| {
            connection
                .execute(
                    "INSERT OR REPLACE INTO stats_snapshots (taken_at_ms, total_nodes, total_edges, files_processed)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        snapshot.taken_at.timestamp_millis(),
                        snapshot.total_nodes as i64,
                        snapshot.total_edges as i64,
                        snapshot.files_processed as i64
                    ],
                )
                .map_err(classify)?;
            Ok(())
        })
        .await
    }

    async fn latest_snapshot(&self) -> Result<Option<StatsSnapshot>, StoreError> {
        self.run(|connection| query_snapshot(connection, "ORDER BY taken_at_ms DESC", None)).await
    }

    async fn baseline_snapshot(&self, at: DateTime<Utc>) -> Result<Option<StatsSnapshot>, StoreError> {
        self.run(move |connection| {
            let at_ms = at.timestamp_millis();
            match query_snapshot(connection, "WHERE taken_at_ms <= ?1 ORDER BY taken_at_ms DESC", Some(at_ms))? {
                Some(snapshot) => Ok(Some(snapshot)),
                None => query_snapshot(connection, "ORDER BY taken_at_ms ASC", None),
            }
        })
        .await
    }
}

fn query_snapshot(connection: &Connection, clause: &str, at_ms: Option<i64>) -> Result<Option<StatsSnapshot>, StoreError> {
    let sql = format!("SELECT taken_at_ms, total_nodes, total_edges, files_processed FROM stats_snapshots {clause} LIMIT 1");
    let mut statement = connection.prepare_cached(&sql).map_err(classify)?;
    let read = |row: &rusqlite::Row<'_>| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(3)?));
    let row = match at_ms {
        Some(at_ms) => statement.query_row(params![at_ms], read),
        None => statement.query_row([], read),
    }
    .optional()
    .map_err(classify)?;
    row.map(|(taken_at_ms, nodes, edges, files)| {
        Ok(StatsSnapshot {
            taken_at: millis_to_time(taken_at_ms)?,
            total_nodes: count(nodes),
            total_edges: count(edges),
            files_processed: count(files),
        })
    })
    .transpose()
}

fn read_connection(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, i64, i64, bool)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn admit_connection(&self, record: &ConnectionRecord, max_per_ip: u32) -> Result<Admission, StoreError> {
        let record = record.clone();
        self.run(move |connection| {
            // IMMEDIATE takes the write lock first, so the count and the insert see no other admission.
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(classify)?;
            let now_ms = crate::time::now().timestamp_millis();
            let live: i64 = transaction
                .query_row(
                    "SELECT COUNT(*) FROM connections WHERE client_ip = ?1 AND expires_at_ms > ?2",
                    params![record.client_ip, now_ms],
                    |row| row.get(0),
                )
                .map_err(classify)?;
            if live >= i64::from(max_per_ip) {
                return Ok(Admission::TooManyFromIp { limit: max_per_ip });
            }
            transaction
                .execute(
                    "INSERT OR REPLACE INTO connections (id, client_ip, connected_at_ms, expires_at_ms, acknowledged)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        record.id.as_str(),
                        record.client_ip,
                        record.connected_at.timestamp_millis(),
                        record.expires_at.timestamp_millis(),
                        record.acknowledged
                    ],
                )
                .map_err(classify)?;
            transaction.commit().map_err(classify)?;
            Ok(Admission::Admitted)
        })
        .await
    }

    async fn remove_connection(&self, id: &ConnectionId) -> Result<bool, StoreError> {
        let id = id.clone();
        self.run(move |connection| {
            let removed = connection.execute("DELETE FROM connections WHERE id = ?1", params![id.as_str()]).map_err(classify)?;
            Ok(removed > 0)
        })
        .await
    }

    async fn get_connection(&self, id: &ConnectionId) -> Result<Option<ConnectionRecord>, StoreError> {
        let id = id.clone();
        self.run(move |connection| {
            let row = connection
                .query_row(
                    "SELECT id, client_ip, connected_at_ms, expires_at_ms, acknowledged FROM connections WHERE id = ?1 AND expires_at_ms > ?2",
                    params![id.as_str(), crate::time::now().timestamp_millis()],
                    read_connection,
                )
                .optional()
                .map_err(classify)?;
            row.map(|(id, client_ip, connected_at_ms, expires_at_ms, acknowledged)| {
                Ok(ConnectionRecord {
                    id: ConnectionId::new(id),
                    client_ip,
                    connected_at: millis_to_time(connected_at_ms)?,
                    expires_at: millis_to_time(expires_at_ms)?,
                    acknowledged,
                })
            })
            .transpose()
        })
        .await
    }

    async fn list_connections(&self, cursor: Option<String>, page_size: u32) -> Result<ConnectionPage, StoreError> {
        self.run(move |connection| {
            let page_size = page_size.max(1);
            let mut statement = connection
                .prepare_cached("SELECT id, acknowledged FROM connections WHERE id > ?1 AND expires_at_ms > ?2 ORDER BY id LIMIT ?3")
                .map_err(classify)?;
            let connections = statement
                .query_map(params![cursor.unwrap_or_default(), crate::time::now().timestamp_millis(), i64::from(page_size)], |row| {
                    Ok(ListedConnection { id: ConnectionId::new(row.get::<_, String>(0)?), acknowledged: row.get(1)? })
                })
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            let next =
                if connections.len() == page_size as usize { connections.last().map(|last| last.id.as_str().to_owned()) } else { None };
            Ok(ConnectionPage { connections, next })
        })
        .await
    }

    async fn count_connections(&self) -> Result<u64, StoreError> {
        self.run(|connection| {
            let live: i64 = connection
                .query_row(
                    "SELECT COUNT(*) FROM connections WHERE expires_at_ms > ?1",
                    params![crate::time::now().timestamp_millis()],
                    |row| row.get(0),
                )
                .map_err(classify)?;
            Ok(count(live))
        })
        .await
    }

    async fn mark_acknowledged(&self, id: &ConnectionId) -> Result<(), StoreError> {
        let id = id.clone();
        self.run(move |connection| {
            connection.execute("UPDATE connections SET acknowledged = 1 WHERE id = ?1", params![id.as_str()]).map_err(classify)?;
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl StoreHealth for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|connection| {
            // A read of the schema: fails when the file is gone, unreadable or not a database.
            connection.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |row| row.get::<_, i64>(0)).map_err(classify)?;
            Ok(())
        })
        .await
    }
}
