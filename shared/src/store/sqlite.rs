//! The embedded backend: one SQLite file in WAL mode.
//!
//! A small connection pool serves calls on Tokio's blocking threads; WAL lets readers run beside the
//! one writer, and `busy_timeout` makes writers queue rather than fail. The schema is created and
//! upgraded at open by the numbered migrations below (tracked in `PRAGMA user_version`); a migration
//! is never edited once released, only followed by a new one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use r2d2::{Pool, PooledConnection};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params};
use serde_json::{Map, Value};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::merge::{GraphDelta, fold_edges, fold_nodes, merge_node, stored_record, validate};
use super::{
    ActivityStore, Admission, CHAT_SESSION_TTL, ChatStore, ConnectionPage, ConnectionRecord, ConnectionStore, Direction, GraphCounts,
    LineageStore, ListedConnection, ListedFile, SearchHit, SnapshotStore, StatsSnapshot, StoreError, StoreHealth, WarningPage,
};
use crate::activity::{ActivityEvent, ActivityTotals, EventType};
use crate::chat::Turn;
use crate::lineage::walk::{Subgraph, Walk};
use crate::lineage::{Chunk, EdgeKind, FileGraph, FileRecord, GraphEdge, GraphNode, IndexedChunk, IngestWarning, NodeKind, StoredFile};
use crate::realtime::ConnectionId;

/// Pooled connections: readers run beside the one writer (WAL).
const POOL_SIZE: usize = 8;

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
    // 3: the lineage knowledge base. Migration 1's `files`, `graph_nodes` and `graph_edges` were never
    // written by any release: they are replaced. Chunks are searched through FTS5 over their tokens as
    // `lineage::search::tokenize` makes them, joined by spaces; the tokenizer splits at spaces only
    // (every other character class is a token character), so those tokens are never re-split.
    // Graph counters are maintained in the writing transaction, like the activity counters.
    "DROP TABLE graph_edges;
     DROP TABLE graph_nodes;
     DROP TABLE files;
     CREATE TABLE files (
         id             TEXT PRIMARY KEY,
         project_id     TEXT NOT NULL,
         filename       TEXT NOT NULL,
         content_hash   TEXT NOT NULL,
         dialect        TEXT NOT NULL,
         size_bytes     INTEGER NOT NULL,
         ingested_at_ms INTEGER NOT NULL,
         statements     INTEGER NOT NULL,
         nodes_created  INTEGER NOT NULL,
         edges_created  INTEGER NOT NULL,
         warnings       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(warnings)),
         UNIQUE (project_id, content_hash)
     );
     CREATE INDEX files_newest ON files (ingested_at_ms DESC, id DESC);
     CREATE INDEX files_newest_by_project ON files (project_id, ingested_at_ms DESC, id DESC);
     CREATE TABLE graph_nodes (
         project_id TEXT NOT NULL,
         id         TEXT NOT NULL,
         kind       TEXT NOT NULL,
         name       TEXT NOT NULL,
         parent     TEXT,
         file       TEXT,
         line       INTEGER,
         properties TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(properties)),
         PRIMARY KEY (project_id, id)
     ) WITHOUT ROWID;
     CREATE TABLE graph_edges (
         project_id TEXT NOT NULL,
         id         TEXT NOT NULL,
         kind       TEXT NOT NULL,
         source     TEXT NOT NULL,
         target     TEXT NOT NULL,
         properties TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(properties)),
         PRIMARY KEY (project_id, id)
     ) WITHOUT ROWID;
     CREATE INDEX graph_edges_by_source ON graph_edges (project_id, source);
     CREATE INDEX graph_edges_by_target ON graph_edges (project_id, target);
     CREATE TABLE graph_counters (
         name  TEXT PRIMARY KEY,
         value INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE chunks (
         seq            INTEGER PRIMARY KEY,
         project_id     TEXT NOT NULL,
         id             TEXT NOT NULL,
         file_id        TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
         filename       TEXT NOT NULL,
         start_line     INTEGER NOT NULL,
         end_line       INTEGER NOT NULL,
         object         TEXT,
         statement_kind TEXT NOT NULL,
         text           TEXT NOT NULL,
         tokens         INTEGER NOT NULL,
         UNIQUE (project_id, id)
     );
     CREATE INDEX chunks_by_file ON chunks (file_id);
     CREATE VIRTUAL TABLE chunk_search USING fts5 (
         tokens,
         tokenize = \"unicode61 remove_diacritics 0 categories 'L* M* N* P* S* C*' tokenchars '_'\"
     );",
    // 4: half the bytes per stored edge. An edge's id is `source|kind|target` (`lineage::edge_id`),
    // so the key is those three columns and the id is made on read; the key serves lookups by
    // source, and one index serves lookups by target (migration 3 kept the id and indexed both ends:
    // three B-trees of long text keys). The search index keeps no copy of the tokens it indexes
    // (contentless; rows can still be deleted), since `chunks` holds the text.
    "CREATE TABLE graph_edges_keyed (
         project_id TEXT NOT NULL,
         source     TEXT NOT NULL,
         kind       TEXT NOT NULL,
         target     TEXT NOT NULL,
         properties TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(properties)),
         PRIMARY KEY (project_id, source, kind, target)
     ) WITHOUT ROWID;
     INSERT INTO graph_edges_keyed (project_id, source, kind, target, properties)
         SELECT project_id, source, kind, target, properties FROM graph_edges WHERE true
         ON CONFLICT DO NOTHING;
     DROP TABLE graph_edges;
     ALTER TABLE graph_edges_keyed RENAME TO graph_edges;
     CREATE INDEX graph_edges_by_target ON graph_edges (project_id, target);
     CREATE VIRTUAL TABLE chunk_terms USING fts5 (
         tokens,
         content = '',
         contentless_delete = 1,
         tokenize = \"unicode61 remove_diacritics 0 categories 'L* M* N* P* S* C*' tokenchars '_'\"
     );
     INSERT INTO chunk_terms (rowid, tokens) SELECT rowid, tokens FROM chunk_search;
     DROP TABLE chunk_search;
     ALTER TABLE chunk_terms RENAME TO chunk_search;",
    // 5: chat sessions, each a sequence of turns, pruned by age as new turns are written; and the
    // project's objects (not columns) as a small covering index, which the object index (read by
    // every ingestion, chat question and name lookup) reads instead of every node row.
    "CREATE TABLE chat_turns (
         session_id TEXT NOT NULL,
         at_ms      INTEGER NOT NULL,
         id         TEXT NOT NULL,
         mode       TEXT NOT NULL,
         model      TEXT NOT NULL,
         question   TEXT NOT NULL,
         answer     TEXT NOT NULL,
         PRIMARY KEY (session_id, at_ms, id)
     ) WITHOUT ROWID;
     CREATE INDEX chat_turns_by_time ON chat_turns (at_ms);
     CREATE INDEX graph_objects ON graph_nodes (project_id, id, kind) WHERE kind <> 'Column';",
    // 6: every warning of a file, in a table of its own, written in the file's transaction; the
    // record keeps listing the first 100 (`files.warnings`), with how many there are in all. A file
    // stored before kept at most 101 (the last one saying how many more there were): those are
    // copied over, and its total is their number.
    "ALTER TABLE files ADD COLUMN warnings_total INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE file_warnings (
         file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
         seq     INTEGER NOT NULL,
         line    INTEGER NOT NULL,
         message TEXT NOT NULL,
         PRIMARY KEY (file_id, seq)
     ) WITHOUT ROWID;
     INSERT INTO file_warnings (file_id, seq, line, message)
         SELECT files.id, entry.key, COALESCE(json_extract(entry.value, '$.line'), 0), COALESCE(json_extract(entry.value, '$.message'), '')
         FROM files, json_each(files.warnings) AS entry;
     UPDATE files SET warnings_total = json_array_length(warnings);",
    // 7: columns by the key chat looks them up by (`lineage::column_key` of the name part of the
    // id, which follows the parent's id and `#`; already lowercase). The expression is written out
    // again in `find_columns`, which SQLite needs to use the index (a test reads the query plan).
    "CREATE INDEX graph_columns_by_key ON graph_nodes (project_id, replace(replace(substr(id, length(parent) + 2), '_', ''), ' ', ''))
         WHERE kind = 'Column';",
];

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<SqliteConnectionManager>,
    /// One permit per pooled connection, taken before a call goes to a blocking thread: a burst of
    /// calls (10,000 dashboards connecting at once) waits here, as futures, instead of as up to a
    /// few hundred blocking threads parked on the pool, each with its stack and allocator cache.
    permits: Arc<Semaphore>,
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
            // A 32 MiB page cache per connection: ingestion looks up and inserts graph rows by text
            // keys all over their B-trees, and the default 2 MiB turns that into a page read per row.
            connection.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -32768;")
        });
        let pool = Pool::builder()
            .max_size(POOL_SIZE as u32)
            .min_idle(Some(2))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)
            .map_err(|error| StoreError::Unavailable(anyhow!(error).context(format!("opening {}", path.display()))))?;
        let store = SqliteStore { pool, permits: Arc::new(Semaphore::new(POOL_SIZE)), path };
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
        // Held here rather than in the closure, so the next call starts once this one's thread is
        // free again (a cancelled call gives its permit back early; its thread finishes alone).
        let _permit = self.permits.acquire().await.expect("the store's semaphore is never closed");
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

/// Columns of `files`, in `read_file_record`'s order.
const FILE_COLUMNS: &str = "id, project_id, filename, content_hash, dialect, size_bytes, ingested_at_ms, statements, nodes_created, \
                            edges_created, warnings, warnings_total";

fn read_file_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ListedFile, StoreError>> {
    let id: String = row.get(0)?;
    let ingested_at_ms: i64 = row.get(6)?;
    let warnings: String = row.get(10)?;
    let warnings_total: i64 = row.get(11)?;
    let (project_id, filename, content_hash, dialect) = (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
    let (size_bytes, statements, nodes_created, edges_created): (i64, i64, i64, i64) = (row.get(5)?, row.get(7)?, row.get(8)?, row.get(9)?);
    Ok((|| {
        let record = FileRecord {
            ingested_at: millis_to_time(ingested_at_ms)?,
            warnings: serde_json::from_str(&warnings).map_err(|error| StoreError::Corrupt(format!("file {id}: warnings: {error}")))?,
            statements: u32::try_from(statements).map_err(|_| StoreError::Corrupt(format!("file {id}: statements {statements}")))?,
            id,
            project_id,
            filename,
            content_hash,
            dialect,
            size_bytes: count(size_bytes),
            nodes_created: count(nodes_created),
            edges_created: count(edges_created),
        };
        Ok(ListedFile { record, warnings_total: count(warnings_total) })
    })())
}

/// A column's lookup key, as migration 7 indexes it (see `LineageStore::find_columns`).
const COLUMN_KEY: &str = "replace(replace(substr(id, length(parent) + 2), '_', ''), ' ', '')";
/// Columns of `graph_nodes`, in `read_node`'s order.
const NODE_COLUMNS: &str = "id, kind, name, parent, file, line, properties";

fn read_node(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<GraphNode, StoreError>> {
    let id: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let properties: String = row.get(6)?;
    let (name, parent, file, line) = (row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?);
    Ok((|| {
        Ok(GraphNode {
            kind: NodeKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("node {id}: kind {kind:?}")))?,
            properties: serde_json::from_str(&properties)
                .map_err(|error| StoreError::Corrupt(format!("node {id}: properties: {error}")))?,
            id,
            name,
            parent,
            file,
            line,
        })
    })())
}

/// Columns of `graph_edges`, in `read_edge`'s order.
const EDGE_COLUMNS: &str = "source, kind, target, properties";

fn read_edge(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<GraphEdge, StoreError>> {
    let source: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let target: String = row.get(2)?;
    let properties: String = row.get(3)?;
    Ok((|| {
        let kind = EdgeKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("edge {source}|{kind}|{target}: kind")))?;
        let mut edge = GraphEdge::new(kind, source, target);
        edge.properties =
            serde_json::from_str(&properties).map_err(|error| StoreError::Corrupt(format!("edge {}: properties: {error}", edge.id)))?;
        Ok(edge)
    })())
}

/// Columns of `chunks` (as `c`), in `read_chunk`'s order.
const CHUNK_COLUMNS: &str = "c.id, c.file_id, c.filename, c.start_line, c.end_line, c.object, c.statement_kind, c.text";

fn read_chunk(row: &rusqlite::Row<'_>) -> rusqlite::Result<Chunk> {
    Ok(Chunk {
        id: row.get(0)?,
        file_id: row.get(1)?,
        filename: row.get(2)?,
        start_line: row.get(3)?,
        end_line: row.get(4)?,
        object: row.get(5)?,
        statement_kind: row.get(6)?,
        text: row.get(7)?,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Internal(anyhow!(error)))
}

/// Flattens rows decoded by a `read_*` function.
fn decoded<T>(rows: rusqlite::Result<Vec<Result<T, StoreError>>>) -> Result<Vec<T>, StoreError> {
    rows.map_err(classify)?.into_iter().collect()
}

/// The FTS5 query for `terms`: each one a quoted string (so nothing in it is FTS5 syntax), OR'ed.
fn match_expression(terms: &[String]) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    let quoted: Vec<String> = terms
        .iter()
        .filter(|term| !term.is_empty() && seen.insert(term.as_str()))
        .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
        .collect();
    (!quoted.is_empty()).then(|| quoted.join(" OR "))
}

#[async_trait]
impl LineageStore for SqliteStore {
    async fn graph_counts(&self) -> Result<GraphCounts, StoreError> {
        self.run(|connection| {
            let mut statement = connection.prepare_cached("SELECT name, value FROM graph_counters").map_err(classify)?;
            let counters = statement
                .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            let mut counts = GraphCounts::default();
            for (name, value) in counters {
                let value = count(value);
                match name.as_str() {
                    "nodes" => counts.nodes = value,
                    "edges" => counts.edges = value,
                    "files" => counts.files = value,
                    _ if value == 0 => {}
                    _ => {
                        if let Some(kind) = name.strip_prefix("node:") {
                            counts.node_types.insert(kind.to_owned(), value);
                        } else if let Some(kind) = name.strip_prefix("edge:") {
                            counts.relationship_types.insert(kind.to_owned(), value);
                        }
                    }
                }
            }
            Ok(counts)
        })
        .await
    }

    async fn store_file(&self, file: &FileRecord, graph: FileGraph) -> Result<StoredFile, StoreError> {
        validate(file, &graph)?;
        let file = file.clone();
        let FileGraph { nodes, edges, chunks } = graph;
        let (nodes, edges) = (fold_nodes(nodes), fold_edges(edges));
        self.run(move |connection| {
            // IMMEDIATE takes the write lock first: the duplicate check and the merge see no other writer.
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(classify)?;
            let project = file.project_id.as_str();
            let existing: Option<String> = transaction
                .query_row("SELECT id FROM files WHERE project_id = ?1 AND content_hash = ?2", params![project, file.content_hash], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(classify)?;
            if let Some(existing_file_id) = existing {
                return Ok(StoredFile::Duplicate { existing_file_id });
            }
            let mut delta = GraphDelta::default();
            {
                let mut select = transaction
                    .prepare_cached(&format!("SELECT {NODE_COLUMNS} FROM graph_nodes WHERE project_id = ?1 AND id = ?2"))
                    .map_err(classify)?;
                let mut insert_new = transaction
                    .prepare_cached(
                        "INSERT INTO graph_nodes (project_id, id, kind, name, parent, file, line, properties)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT (project_id, id) DO NOTHING",
                    )
                    .map_err(classify)?;
                let mut update = transaction
                    .prepare_cached(
                        "UPDATE graph_nodes SET kind = ?3, name = ?4, parent = ?5, file = ?6, line = ?7, properties = ?8
                         WHERE project_id = ?1 AND id = ?2",
                    )
                    .map_err(classify)?;
                fn row(node: &GraphNode) -> Result<(&str, &str, Option<&str>, Option<&str>, Option<u32>, String), StoreError> {
                    Ok((
                        node.kind.as_str(),
                        &node.name,
                        node.parent.as_deref(),
                        node.file.as_deref(),
                        node.line,
                        to_json(&node.properties)?,
                    ))
                }
                for node in &nodes {
                    // Most nodes are new: insert first, and read what is stored only when one is.
                    let (kind, name, parent, file, line, properties) = row(node)?;
                    if insert_new.execute(params![project, node.id, kind, name, parent, file, line, properties]).map_err(classify)? == 1 {
                        delta.node_inserted(node.kind);
                        continue;
                    }
                    let stored = select.query_row(params![project, node.id], read_node).optional().map_err(classify)?.transpose()?;
                    let Some(merged) = merge_node(stored.as_ref(), node) else { continue };
                    let (kind, name, parent, file, line, properties) = row(&merged)?;
                    update.execute(params![project, merged.id, kind, name, parent, file, line, properties]).map_err(classify)?;
                    match stored {
                        None => delta.node_inserted(merged.kind),
                        Some(stored) => delta.node_changed(stored.kind, merged.kind),
                    }
                }
                let mut insert_edge = transaction
                    .prepare_cached(
                        "INSERT INTO graph_edges (project_id, source, kind, target, properties) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (project_id, source, kind, target) DO NOTHING",
                    )
                    .map_err(classify)?;
                for edge in &edges {
                    let inserted = insert_edge
                        .execute(params![project, edge.source, edge.kind.as_str(), edge.target, to_json(&edge.properties)?])
                        .map_err(classify)?;
                    if inserted == 1 {
                        delta.edge_inserted(edge.kind);
                    }
                }
            }
            let record = stored_record(&file, &delta);
            transaction
                .execute(
                    &format!("INSERT INTO files ({FILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                    params![
                        record.id,
                        record.project_id,
                        record.filename,
                        record.content_hash,
                        record.dialect,
                        record.size_bytes as i64,
                        record.ingested_at.timestamp_millis(),
                        record.statements,
                        record.nodes_created as i64,
                        record.edges_created as i64,
                        to_json(&record.warnings)?,
                        file.warnings.len() as i64
                    ],
                )
                .map_err(classify)?;
            {
                let mut insert_warning = transaction
                    .prepare_cached("INSERT INTO file_warnings (file_id, seq, line, message) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(classify)?;
                for (seq, warning) in file.warnings.iter().enumerate() {
                    insert_warning.execute(params![record.id, seq as i64, warning.line, warning.message]).map_err(classify)?;
                }
            }
            {
                let mut insert_chunk = transaction
                    .prepare_cached(
                        "INSERT INTO chunks (project_id, id, file_id, filename, start_line, end_line, object, statement_kind, text, tokens)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(classify)?;
                let mut index_chunk =
                    transaction.prepare_cached("INSERT INTO chunk_search (rowid, tokens) VALUES (?1, ?2)").map_err(classify)?;
                for IndexedChunk { chunk, terms } in &chunks {
                    insert_chunk
                        .execute(params![
                            project,
                            chunk.id,
                            chunk.file_id,
                            chunk.filename,
                            chunk.start_line,
                            chunk.end_line,
                            chunk.object,
                            chunk.statement_kind,
                            chunk.text,
                            terms.len() as i64
                        ])
                        .map_err(classify)?;
                    index_chunk.execute(params![transaction.last_insert_rowid(), terms.join(" ")]).map_err(classify)?;
                }
                let mut bump = transaction
                    .prepare_cached(
                        "INSERT INTO graph_counters (name, value) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    )
                    .map_err(classify)?;
                for (name, by) in delta.counter_increments() {
                    bump.execute(params![name, by]).map_err(classify)?;
                }
            }
            transaction.commit().map_err(classify)?;
            Ok(StoredFile::Stored { nodes_created: delta.nodes_created, edges_created: delta.edges_created })
        })
        .await
    }

    async fn list_files(&self, project: Option<&str>, limit: usize) -> Result<Vec<ListedFile>, StoreError> {
        let project = project.map(str::to_owned);
        self.run(move |connection| {
            let limit = limit.min(i64::MAX as usize) as i64;
            let rows = match project {
                Some(project) => {
                    let mut statement = connection
                        .prepare_cached(&format!(
                            "SELECT {FILE_COLUMNS} FROM files WHERE project_id = ?1 ORDER BY ingested_at_ms DESC, id DESC LIMIT ?2"
                        ))
                        .map_err(classify)?;
                    statement.query_map(params![project, limit], read_file_record).map_err(classify)?.collect()
                }
                None => {
                    let mut statement = connection
                        .prepare_cached(&format!("SELECT {FILE_COLUMNS} FROM files ORDER BY ingested_at_ms DESC, id DESC LIMIT ?1"))
                        .map_err(classify)?;
                    statement.query_map(params![limit], read_file_record).map_err(classify)?.collect()
                }
            };
            decoded(rows)
        })
        .await
    }

    async fn file_warnings(&self, project: &str, file_id: &str, offset: u64, limit: usize) -> Result<Option<WarningPage>, StoreError> {
        let (project, file_id) = (project.to_owned(), file_id.to_owned());
        self.run(move |connection| {
            // A stored file never changes: its row and its warnings are read apart.
            let file = connection
                .query_row(
                    "SELECT filename, warnings_total FROM files WHERE id = ?1 AND project_id = ?2",
                    params![file_id, project],
                    |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)),
                )
                .optional()
                .map_err(classify)?;
            let Some((filename, total)) = file else { return Ok(None) };
            // `seq` runs from 0 without gaps: the page is a range of the key.
            let mut statement = connection
                .prepare_cached("SELECT line, message FROM file_warnings WHERE file_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")
                .map_err(classify)?;
            let warnings = statement
                .query_map(params![file_id, offset.min(i64::MAX as u64) as i64, limit.min(i64::MAX as usize) as i64], |row| {
                    Ok(IngestWarning { line: row.get(0)?, message: row.get(1)? })
                })
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            Ok(Some(WarningPage { filename, total: count(total), warnings }))
        })
        .await
    }

    async fn object_index(&self, project: &str) -> Result<Vec<(String, NodeKind)>, StoreError> {
        let project = project.to_owned();
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached("SELECT id, kind FROM graph_nodes WHERE project_id = ?1 AND kind <> 'Column' ORDER BY id")
                .map_err(classify)?;
            let rows = statement
                .query_map(params![project], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            rows.into_iter()
                .map(|(id, kind)| match NodeKind::parse(&kind) {
                    Some(kind) => Ok((id, kind)),
                    None => Err(StoreError::Corrupt(format!("node {id}: kind {kind:?}"))),
                })
                .collect()
        })
        .await
    }

    async fn find_columns(&self, project: &str, keys: &[String], prefix: bool, limit: usize) -> Result<Vec<String>, StoreError> {
        let (project, keys) = (project.to_owned(), distinct(keys));
        self.run(move |connection| {
            // The key expression as migration 7 indexes it. A prefix is a range of keys: from the
            // prefix to the prefix followed by the highest character.
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT id FROM graph_nodes
                     WHERE project_id = ?1 AND kind = 'Column'
                       AND {COLUMN_KEY} >= ?2 AND {COLUMN_KEY} {} ?3
                     ORDER BY {COLUMN_KEY}, id LIMIT ?4",
                    if prefix { "<" } else { "<=" }
                ))
                .map_err(classify)?;
            let mut ids = Vec::new();
            for key in keys.iter().filter(|key| !key.is_empty()) {
                let upper = if prefix { format!("{key}{}", char::MAX) } else { key.clone() };
                let found = statement
                    .query_map(params![project, key, upper, limit.min(i64::MAX as usize) as i64], |row| row.get::<_, String>(0))
                    .map_err(classify)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(classify)?;
                ids.extend(found);
            }
            Ok(ids)
        })
        .await
    }

    async fn get_nodes(&self, project: &str, ids: &[String]) -> Result<Vec<GraphNode>, StoreError> {
        let (project, ids) = (project.to_owned(), distinct(ids));
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(&format!("SELECT {NODE_COLUMNS} FROM graph_nodes WHERE project_id = ?1 AND id = ?2"))
                .map_err(classify)?;
            let mut nodes = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(node) = statement.query_row(params![project, id], read_node).optional().map_err(classify)? {
                    nodes.push(node?);
                }
            }
            Ok(nodes)
        })
        .await
    }

    async fn edges_of(&self, project: &str, ids: &[String], direction: Direction) -> Result<Vec<GraphEdge>, StoreError> {
        let (project, ids) = (project.to_owned(), distinct(ids));
        self.run(move |connection| read_edges(connection, &project, &ids, direction)).await
    }

    async fn walk(
        &self,
        project: &str,
        start: &str,
        directions: &[Direction],
        depth: u32,
        max_nodes: usize,
        follows: for<'edge> fn(&'edge GraphEdge) -> bool,
    ) -> Result<Subgraph, StoreError> {
        let project = project.to_owned();
        let mut walk = Walk::new(start, directions, depth, max_nodes);
        // Every level on one connection in one blocking call: the reads are index lookups, and
        // each call costs a hop between threads (the walk's bounds bound the call).
        self.run(move |connection| {
            while let Some((ids, direction)) = walk.next_lookup() {
                let edges = read_edges(connection, &project, &distinct(&ids), direction)?;
                walk.reached(edges.into_iter().filter(&follows).collect());
            }
            Ok(walk.finish())
        })
        .await
    }

    async fn search_chunks(&self, project: &str, terms: &[String], limit: usize) -> Result<Vec<SearchHit>, StoreError> {
        let Some(expression) = match_expression(terms) else { return Ok(Vec::new()) };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let project = project.to_owned();
        self.run(move |connection| {
            // FTS5's bm25() uses k1 = 1.2 and b = 0.75; it is negative, lower is better. Its corpus
            // figures (chunk count, average length, document frequencies) are the whole table's, every
            // project's chunks, and its IDF is floored near zero for a term in over half the chunks. So
            // scores differ from the DynamoDB backend's (the project's own figures, `Corpus::term_score`),
            // while what ranks higher agrees: more mentions, shorter chunks, rarer terms. CROSS JOIN
            // keeps the index's matches the outer loop, never a probe per chunk of the project.
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {CHUNK_COLUMNS}, bm25(chunk_search) AS bm25_score
                     FROM chunk_search CROSS JOIN chunks c ON c.seq = chunk_search.rowid
                     WHERE chunk_search MATCH ?1 AND c.project_id = ?2
                     ORDER BY bm25_score, c.seq LIMIT ?3"
                ))
                .map_err(classify)?;
            let hits = statement
                .query_map(params![expression, project, limit.min(i64::MAX as usize) as i64], |row| {
                    Ok(SearchHit { chunk: read_chunk(row)?, score: -row.get::<_, f64>(8)? })
                })
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            Ok(hits)
        })
        .await
    }
}

/// The edges leaving (upstream) or entering (downstream) any of `ids`.
fn read_edges(connection: &Connection, project: &str, ids: &[String], direction: Direction) -> Result<Vec<GraphEdge>, StoreError> {
    // By source: the primary key's prefix. By target: its index, named, since without statistics
    // the planner may prefer the key's `project_id` prefix and scan the project.
    let query = match direction {
        Direction::Upstream => format!("SELECT {EDGE_COLUMNS} FROM graph_edges WHERE project_id = ?1 AND source = ?2"),
        Direction::Downstream => {
            format!("SELECT {EDGE_COLUMNS} FROM graph_edges INDEXED BY graph_edges_by_target WHERE project_id = ?1 AND target = ?2")
        }
    };
    let mut statement = connection.prepare_cached(&query).map_err(classify)?;
    let mut edges = Vec::new();
    for id in ids {
        edges.extend(decoded(statement.query_map(params![project, id], read_edge).map_err(classify)?.collect())?);
    }
    Ok(edges)
}

/// `ids` without repeats, in order.
fn distinct(ids: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(id.as_str())).cloned().collect()
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
impl ChatStore for SqliteStore {
    async fn append_turn(&self, session: &str, turn: &Turn) -> Result<(), StoreError> {
        let (session, turn) = (session.to_owned(), turn.clone());
        self.run(move |connection| {
            let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(classify)?;
            transaction
                .execute(
                    "INSERT INTO chat_turns (session_id, at_ms, id, mode, model, question, answer) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT DO NOTHING",
                    params![session, turn.at.timestamp_millis(), turn.id, turn.mode.as_str(), turn.model, turn.question, turn.answer],
                )
                .map_err(classify)?;
            let expired = crate::time::now().timestamp_millis() - CHAT_SESSION_TTL.as_millis() as i64;
            transaction.execute("DELETE FROM chat_turns WHERE at_ms < ?1", params![expired]).map_err(classify)?;
            transaction.commit().map_err(classify)
        })
        .await
    }

    async fn recent_turns(&self, session: &str, limit: usize) -> Result<Vec<Turn>, StoreError> {
        let session = session.to_owned();
        self.run(move |connection| {
            let mut statement = connection
                .prepare_cached(
                    "SELECT id, at_ms, mode, model, question, answer FROM chat_turns
                     WHERE session_id = ?1 ORDER BY at_ms DESC, id DESC LIMIT ?2",
                )
                .map_err(classify)?;
            let rows = statement
                .query_map(params![session, limit.min(i64::MAX as usize) as i64], |row| {
                    let (id, at_ms, mode, model, question, answer): (String, i64, String, String, String, String) =
                        (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?);
                    Ok((id, at_ms, mode, model, question, answer))
                })
                .map_err(classify)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(classify)?;
            let mut turns = rows
                .into_iter()
                .map(|(id, at_ms, mode, model, question, answer)| {
                    Ok(Turn {
                        at: DateTime::from_timestamp_millis(at_ms).ok_or_else(|| StoreError::Corrupt(format!("chat turn {id}: time")))?,
                        mode: crate::chat::Mode::parse(&mode)
                            .ok_or_else(|| StoreError::Corrupt(format!("chat turn {id}: mode {mode:?}")))?,
                        id,
                        model,
                        question,
                        answer,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            turns.reverse();
            Ok(turns)
        })
        .await
    }

    async fn delete_session(&self, session: &str) -> Result<bool, StoreError> {
        let session = session.to_owned();
        self.run(move |connection| {
            let removed = connection.execute("DELETE FROM chat_turns WHERE session_id = ?1", params![session]).map_err(classify)?;
            Ok(removed > 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Column lookups, exact and by prefix, read the key index of migration 7, not every node.
    #[tokio::test]
    async fn columns_are_looked_up_through_their_key_index() {
        let folder = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(folder.path().join("plan.db")).unwrap();
        let plans = store
            .run(|connection| {
                let mut plans = Vec::new();
                for comparison in ["<=", "<"] {
                    let query = format!(
                        "EXPLAIN QUERY PLAN SELECT id FROM graph_nodes WHERE project_id = 'p' AND kind = 'Column'
                         AND {COLUMN_KEY} >= 'a' AND {COLUMN_KEY} {comparison} 'b' ORDER BY {COLUMN_KEY}, id LIMIT 5"
                    );
                    let mut statement = connection.prepare(&query).map_err(classify)?;
                    let rows = statement.query_map([], |row| row.get::<_, String>(3)).map_err(classify)?;
                    plans.push(rows.collect::<rusqlite::Result<Vec<_>>>().map_err(classify)?.join("; "));
                }
                Ok(plans)
            })
            .await
            .unwrap();
        for plan in plans {
            assert!(plan.contains("graph_columns_by_key"), "{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "no sort: the index gives the order: {plan}");
        }
    }

    /// A database written before migration 4 keeps its edges (both directions) and its search.
    #[tokio::test]
    async fn migration_4_keeps_the_edges_and_the_search_index() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("v3.db");
        {
            let connection = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..3] {
                connection.execute_batch(migration).unwrap();
            }
            connection.pragma_update(None, "user_version", 3).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO files VALUES ('f1', 'p1', 'load.sql', 'hash', 'generic', 10, 0, 1, 3, 2, '[]');
                     INSERT INTO graph_nodes (project_id, id, kind, name) VALUES
                         ('p1', 'gold.revenue', 'View', 'gold.revenue'), ('p1', 'raw.orders', 'External', 'raw.orders');
                     INSERT INTO graph_edges VALUES
                         ('p1', 'gold.revenue|DERIVES|raw.orders', 'DERIVES', 'gold.revenue', 'raw.orders', '{\"line\":1}');
                     INSERT INTO chunks (seq, project_id, id, file_id, filename, start_line, end_line, statement_kind, text, tokens)
                         VALUES (1, 'p1', 'f1:0', 'f1', 'load.sql', 1, 1, 'CREATE VIEW',
                                 'CREATE VIEW gold.revenue AS SELECT * FROM raw.orders', 9);
                     INSERT INTO chunk_search (rowid, tokens) VALUES
                         (1, 'create view gold revenue as select from raw orders');",
                )
                .unwrap();
        }

        let store = SqliteStore::open(&path).unwrap();
        let up = store.edges_of("p1", &["gold.revenue".to_owned()], Direction::Upstream).await.unwrap();
        let down = store.edges_of("p1", &["raw.orders".to_owned()], Direction::Downstream).await.unwrap();
        let mut expected = GraphEdge::new(EdgeKind::Derives, "gold.revenue", "raw.orders");
        expected.properties.insert("line".to_owned(), 1.into());
        assert_eq!(up, vec![expected.clone()]);
        assert_eq!(down, vec![expected]);
        let hits = store.search_chunks("p1", &["revenue".to_owned()], 5).await.unwrap();
        assert_eq!(hits.iter().map(|hit| hit.chunk.id.as_str()).collect::<Vec<_>>(), ["f1:0"]);
        let version: i64 = store.connection().unwrap().query_row("PRAGMA user_version", [], |row| row.get(0)).unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
    }

    /// A file stored before migration 6 kept at most 101 warnings in its record: they become its
    /// warnings, in order, and their number its total.
    #[tokio::test]
    async fn migration_6_keeps_the_warnings_files_had() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("v5.db");
        {
            let connection = Connection::open(&path).unwrap();
            for migration in &MIGRATIONS[..5] {
                connection.execute_batch(migration).unwrap();
            }
            connection.pragma_update(None, "user_version", 5).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO files VALUES ('f1', 'p1', 'load.sql', 'h1', 'generic', 10, 0, 3, 0, 0,
                         '[{\"line\":2,\"message\":\"statement skipped: a\"},{\"line\":7,\"message\":\"… and 4 more warnings\"}]');
                     INSERT INTO files VALUES ('f2', 'p1', 'quiet.sql', 'h2', 'generic', 10, 1, 1, 0, 0, '[]');",
                )
                .unwrap();
        }

        let store = SqliteStore::open(&path).unwrap();
        let listed = store.list_files(Some("p1"), 10).await.unwrap();
        let totals: Vec<(&str, u64, usize)> =
            listed.iter().map(|file| (file.record.id.as_str(), file.warnings_total, file.record.warnings.len())).collect();
        assert_eq!(totals, [("f2", 0, 0), ("f1", 2, 2)]);
        let page = store.file_warnings("p1", "f1", 0, 10).await.unwrap().unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.warnings, listed[1].record.warnings);
        assert_eq!(store.file_warnings("p1", "f1", 1, 10).await.unwrap().unwrap().warnings[0].line, 7);
        assert_eq!(store.file_warnings("p1", "f2", 0, 10).await.unwrap().unwrap().total, 0);
    }
}
