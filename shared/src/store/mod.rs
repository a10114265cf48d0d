//! The traits Tributary's state lives behind, and the backends that implement them.
//!
//! Routes and services only ever see the traits, bundled in [`Stores`]; which backend answers is a
//! start-up decision of the host. Every backend must pass the same conformance tests
//! (`shared/src/store/conformance.rs`), so behaviour cannot drift between them:
//!
//! * appends are idempotent by event id, so a retried batch never counts twice;
//! * counters (the activity metrics) are maintained at write time, never by scanning;
//! * reads are bounded (`limit`), newest first.

#[cfg(feature = "cloud")]
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
use crate::chat::Turn;
pub use crate::lineage::Direction;
use crate::lineage::walk::{Subgraph, Walk};
use crate::lineage::{Chunk, FileGraph, FileRecord, GraphEdge, GraphNode, IngestWarning, NodeKind, StoredFile};
use crate::realtime::ConnectionId;

#[cfg(feature = "cloud")]
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

/// A chunk found by full-text search, with its BM25 score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub chunk: Chunk,
    pub score: f64,
}

/// How many of a file's warnings its record lists (in a listing and in an ingestion's answer); the
/// store keeps every one, paged by [`LineageStore::file_warnings`].
pub const LISTED_WARNINGS: usize = 100;

/// Longest warning message a store takes (the parser keeps them to about 300 bytes): a record lists
/// [`LISTED_WARNINGS`] of them, and a DynamoDB item holds at most 400 KB.
pub const MAX_WARNING_BYTES: usize = 2048;

/// An ingested file as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedFile {
    /// The record. Its `warnings` are the file's first [`LISTED_WARNINGS`]; a record stored before
    /// every warning was kept lists what was kept then (at most 101, the last one saying how many
    /// more there were), and those are all it has.
    pub record: FileRecord,
    /// How many warnings the file has in all (for a record stored before, its list's length).
    pub warnings_total: u64,
}

/// One page of a stored file's warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningPage {
    pub filename: String,
    /// How many warnings the file has in all.
    pub total: u64,
    /// The page, in the order they were stored (line order, as ingestion gives them).
    pub warnings: Vec<IngestWarning>,
}

/// The lineage knowledge base: ingested files, the graph they make, and their searchable chunks.
///
/// The graph of a project is the merge of what its files contributed. Storing a file is all or
/// nothing, and merges by id:
///
/// * a new node or edge is inserted and counted;
/// * an `External` node that a file now defines takes the defined kind, name, place and
///   properties (the counts move from `External` to that kind);
/// * a defined object defined again takes the newer definition (its kind may change);
/// * a node met again as `External`, or an edge met again, is left as it is;
/// * a column met again gains the properties (and the parent, file and line) it did not have.
///
/// Repeats within one file are merged by the same rules first. A file whose graph breaks the model's
/// invariants (a node id that is empty or contains `|`, an edge id other than
/// `<source>|<KIND>|<target>`, a chunk of another file or a repeated chunk id, a warning message
/// longer than [`MAX_WARNING_BYTES`]) is refused whole.
#[async_trait]
pub trait LineageStore: Send + Sync + 'static {
    /// Counts over every project: nodes and edges by type, and files.
    async fn graph_counts(&self) -> Result<GraphCounts, StoreError>;

    /// Stores `file` with its graph, chunks and warnings, unless the project already holds a file with
    /// the same `content_hash` (then nothing is written). Either everything is stored or nothing is: a
    /// failure leaves no node, edge, chunk, warning or count of this file behind. `file.warnings` are
    /// every warning of the file, in line order: all are kept (see [`Self::file_warnings`]) and the
    /// record lists the first [`LISTED_WARNINGS`]. `file.nodes_created` and `file.edges_created` are
    /// filled in by the store, and `file.ingested_at` is kept to the millisecond.
    async fn store_file(&self, file: &FileRecord, graph: FileGraph) -> Result<StoredFile, StoreError>;

    /// Ingested files, newest first, of one project or of all; at most `limit`.
    async fn list_files(&self, project: Option<&str>, limit: usize) -> Result<Vec<ListedFile>, StoreError>;

    /// The warnings of file `file_id` of `project` from the `offset`-th (0-based) on, at most
    /// `limit`, in the order they were stored; `None` when the project holds no such file.
    async fn file_warnings(&self, project: &str, file_id: &str, offset: u64, limit: usize) -> Result<Option<WarningPage>, StoreError>;

    /// Every node of the project that is not a column: ids and kinds, for name resolution.
    async fn object_index(&self, project: &str) -> Result<Vec<(String, NodeKind)>, StoreError>;

    /// The ids of the project's columns whose key ([`crate::lineage::column_key`] of the name part of
    /// the id) is one of `keys`, or starts with one when `prefix`: at most `limit` per key given,
    /// ordered by their key (a prefix's shortest completions first), then by id; keys in the order
    /// given.
    async fn find_columns(&self, project: &str, keys: &[String], prefix: bool, limit: usize) -> Result<Vec<String>, StoreError>;

    /// The nodes with these ids (unknown ids are skipped), in any order.
    async fn get_nodes(&self, project: &str, ids: &[String]) -> Result<Vec<GraphNode>, StoreError>;

    /// The edges leaving (`Upstream`) or entering (`Downstream`) any of `ids`, of every kind.
    async fn edges_of(&self, project: &str, ids: &[String], direction: Direction) -> Result<Vec<GraphEdge>, StoreError>;

    /// Lineage from `start` as [`crate::lineage::walk::Walk`] walks it (each of `directions`, at
    /// most `depth` steps and `max_nodes` nodes), along the edges `follows` keeps. By default one
    /// [`Self::edges_of`] per level; a store whose reads are cheap but whose calls are not (SQLite,
    /// each call a hop to a blocking thread) walks inside one call.
    async fn walk(
        &self,
        project: &str,
        start: &str,
        directions: &[Direction],
        depth: u32,
        max_nodes: usize,
        // Written with its lifetime: `async_trait` would otherwise name the elided one.
        follows: for<'edge> fn(&'edge GraphEdge) -> bool,
    ) -> Result<Subgraph, StoreError> {
        let mut walk = Walk::new(start, directions, depth, max_nodes);
        while let Some((ids, direction)) = walk.next_lookup() {
            let edges = self.edges_of(project, &ids, direction).await?;
            walk.reached(edges.into_iter().filter(&follows).collect());
        }
        Ok(walk.finish())
    }

    /// The project's chunks best matching `terms` (already tokenized by
    /// [`crate::lineage::search::tokenize`]), ranked by BM25 (k1 = 1.2, b = 0.75), at most `limit`.
    async fn search_chunks(&self, project: &str, terms: &[String], limit: usize) -> Result<Vec<SearchHit>, StoreError>;
}

/// How storing a file changes a project's graph: the merge rules of [`LineageStore`], written once
/// so that every backend merges alike.
pub(crate) mod merge {
    use std::collections::{BTreeMap, HashMap, HashSet};

    use anyhow::anyhow;

    use super::{LISTED_WARNINGS, MAX_WARNING_BYTES, StoreError};
    use crate::lineage::{EdgeKind, FileGraph, FileRecord, GraphEdge, GraphNode, IndexedChunk, NodeKind, edge_id};

    /// What is stored under `incoming`'s id after it is merged into `stored` (`None`: nothing stored
    /// yet), or `None` when what is stored stays exactly as it is.
    pub fn merge_node(stored: Option<&GraphNode>, incoming: &GraphNode) -> Option<GraphNode> {
        let Some(stored) = stored else { return Some(incoming.clone()) };
        let merged = if incoming.kind.is_defined_object() {
            // A definition wins over an external reference, and a newer definition over an older one.
            incoming.clone()
        } else if incoming.kind == NodeKind::Column && stored.kind == NodeKind::Column {
            // A column met again gains what it did not have.
            let mut merged = stored.clone();
            for (key, value) in &incoming.properties {
                merged.properties.entry(key.clone()).or_insert_with(|| value.clone());
            }
            merged.parent = merged.parent.or_else(|| incoming.parent.clone());
            if merged.file.is_none() {
                merged.file.clone_from(&incoming.file);
                merged.line = merged.line.or(incoming.line);
            }
            merged
        } else {
            // Met again as an external reference (or a column under an object's id): left as it is.
            return None;
        };
        (merged != *stored).then_some(merged)
    }

    /// A file's nodes with one per id, each the merge of its occurrences in the file, in first-seen
    /// order.
    pub fn fold_nodes(nodes: Vec<GraphNode>) -> Vec<GraphNode> {
        let mut folded: Vec<GraphNode> = Vec::with_capacity(nodes.len());
        let mut position: HashMap<String, usize> = HashMap::with_capacity(nodes.len());
        for node in nodes {
            match position.get(&node.id) {
                Some(&at) => {
                    if let Some(merged) = merge_node(Some(&folded[at]), &node) {
                        folded[at] = merged;
                    }
                }
                None => {
                    position.insert(node.id.clone(), folded.len());
                    folded.push(node);
                }
            }
        }
        folded
    }

    /// A file's edges with one per id (the first one found), in order.
    pub fn fold_edges(edges: Vec<GraphEdge>) -> Vec<GraphEdge> {
        let mut seen = HashSet::with_capacity(edges.len());
        edges.into_iter().filter(|edge| seen.insert(edge.id.clone())).collect()
    }

    /// Refuses a file whose graph breaks the model's invariants, before anything is written: node ids
    /// are non-empty and never contain `|` (edge ids and the DynamoDB keys rely on it), an edge's id
    /// is `<source>|<KIND>|<target>`, chunks belong to the file and have distinct ids, warnings are
    /// at most [`MAX_WARNING_BYTES`] long.
    pub fn validate(file: &FileRecord, graph: &FileGraph) -> Result<(), StoreError> {
        let invalid = |what: String| Err(StoreError::Internal(anyhow!("file {} cannot be stored: {what}", file.id)));
        if file.id.is_empty() || file.project_id.is_empty() || file.content_hash.is_empty() {
            return invalid("its id, project and content hash must not be empty".to_owned());
        }
        if let Some(warning) = file.warnings.iter().find(|warning| warning.message.len() > MAX_WARNING_BYTES) {
            return invalid(format!("the warning of line {} is longer than {MAX_WARNING_BYTES} bytes", warning.line));
        }
        let bad_id = |id: &str| id.is_empty() || id.contains('|');
        if let Some(node) = graph.nodes.iter().find(|node| bad_id(&node.id)) {
            return invalid(format!("node id {:?} is empty or contains `|`", node.id));
        }
        for edge in &graph.edges {
            if bad_id(&edge.source) || bad_id(&edge.target) || edge.id != edge_id(&edge.source, edge.kind, &edge.target) {
                return invalid(format!("edge {:?} does not match its source, kind and target", edge.id));
            }
        }
        let mut chunk_ids = HashSet::new();
        for IndexedChunk { chunk, .. } in &graph.chunks {
            if chunk.file_id != file.id {
                return invalid(format!("chunk {:?} belongs to file {:?}", chunk.id, chunk.file_id));
            }
            if chunk.id.is_empty() || !chunk_ids.insert(chunk.id.as_str()) {
                return invalid(format!("chunk id {:?} is empty or repeated", chunk.id));
            }
        }
        Ok(())
    }

    /// The record as stored: the time kept to the millisecond (as every backend reads it back), the
    /// created counts filled in, and the first [`LISTED_WARNINGS`] warnings listed (all of them are
    /// stored apart).
    pub fn stored_record(file: &FileRecord, delta: &GraphDelta) -> FileRecord {
        let ingested_at = chrono::DateTime::from_timestamp_millis(file.ingested_at.timestamp_millis()).unwrap_or(file.ingested_at);
        FileRecord {
            id: file.id.clone(),
            project_id: file.project_id.clone(),
            filename: file.filename.clone(),
            content_hash: file.content_hash.clone(),
            dialect: file.dialect.clone(),
            size_bytes: file.size_bytes,
            ingested_at,
            statements: file.statements,
            nodes_created: delta.nodes_created,
            edges_created: delta.edges_created,
            warnings: file.warnings.iter().take(LISTED_WARNINGS).cloned().collect(),
        }
    }

    /// What one file adds to the graph counters.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct GraphDelta {
        pub nodes_created: u64,
        pub edges_created: u64,
        pub node_kinds: BTreeMap<NodeKind, i64>,
        pub edge_kinds: BTreeMap<EdgeKind, i64>,
    }

    impl GraphDelta {
        pub fn node_inserted(&mut self, kind: NodeKind) {
            self.nodes_created += 1;
            *self.node_kinds.entry(kind).or_default() += 1;
        }

        pub fn node_changed(&mut self, from: NodeKind, to: NodeKind) {
            if from != to {
                *self.node_kinds.entry(from).or_default() -= 1;
                *self.node_kinds.entry(to).or_default() += 1;
            }
        }

        pub fn edge_inserted(&mut self, kind: EdgeKind) {
            self.edges_created += 1;
            *self.edge_kinds.entry(kind).or_default() += 1;
        }

        /// The non-zero increments of the graph counters (`nodes`, `edges`, `files`, `node:<Kind>`,
        /// `edge:<KIND>`) for this file, which is one more file.
        pub fn counter_increments(&self) -> Vec<(String, i64)> {
            let mut increments = vec![
                ("files".to_owned(), 1),
                ("nodes".to_owned(), self.nodes_created as i64),
                ("edges".to_owned(), self.edges_created as i64),
            ];
            increments.extend(self.node_kinds.iter().map(|(kind, by)| (format!("node:{kind}"), *by)));
            increments.extend(self.edge_kinds.iter().map(|(kind, by)| (format!("edge:{kind}"), *by)));
            increments.retain(|(_, by)| *by != 0);
            increments
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn node(id: &str, kind: NodeKind) -> GraphNode {
            GraphNode::new(id, kind, id)
        }

        #[test]
        fn definitions_win_and_external_references_change_nothing() {
            let external = node("raw.orders", NodeKind::External);
            let mut table = node("raw.orders", NodeKind::Table);
            table.file = Some("a.sql".into());
            assert_eq!(merge_node(None, &external), Some(external.clone()));
            assert_eq!(merge_node(Some(&external), &table), Some(table.clone()));
            assert_eq!(merge_node(Some(&table), &external), None);
            assert_eq!(merge_node(Some(&table), &table), None, "the same definition again writes nothing");
            let view = node("raw.orders", NodeKind::View);
            assert_eq!(merge_node(Some(&table), &view), Some(view));
        }

        #[test]
        fn columns_gain_what_they_lacked() {
            let mut stored = node("t#c", NodeKind::Column);
            stored.properties.insert("data_type".into(), "INT".into());
            let mut incoming = node("t#c", NodeKind::Column);
            incoming.properties.insert("data_type".into(), "BIGINT".into());
            incoming.properties.insert("nullable".into(), false.into());
            incoming.file = Some("b.sql".into());
            incoming.line = Some(3);
            let merged = merge_node(Some(&stored), &incoming).unwrap();
            assert_eq!(merged.properties["data_type"], "INT");
            assert_eq!(merged.properties["nullable"], false);
            assert_eq!((merged.file.as_deref(), merged.line), (Some("b.sql"), Some(3)));
            assert_eq!(merge_node(Some(&merged), &incoming), None);
        }

        #[test]
        fn a_file_folds_its_repeats() {
            let folded = fold_nodes(vec![node("x", NodeKind::External), node("y", NodeKind::Table), node("x", NodeKind::View)]);
            assert_eq!(folded.iter().map(|n| (n.id.as_str(), n.kind)).collect::<Vec<_>>(), [("x", NodeKind::View), ("y", NodeKind::Table)]);
            let mut delta = GraphDelta::default();
            delta.node_inserted(NodeKind::External);
            delta.node_changed(NodeKind::External, NodeKind::Table);
            delta.edge_inserted(EdgeKind::Derives);
            let increments = delta.counter_increments();
            assert!(increments.contains(&("node:Table".to_owned(), 1)));
            assert!(!increments.iter().any(|(name, _)| name == "node:External"), "zero increments are dropped");
            assert!(increments.contains(&("files".to_owned(), 1)) && increments.contains(&("edge:DERIVES".to_owned(), 1)));
        }
    }
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

/// Chat sessions: each session's turns (question and answer), oldest first. A session is known only
/// by the id its client chose; its turns expire `CHAT_SESSION_TTL` after they were written.
#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    /// Adds a turn to a session (a turn id already there is left as it is).
    async fn append_turn(&self, session: &str, turn: &Turn) -> Result<(), StoreError>;

    /// The newest `limit` turns of a session, oldest first.
    async fn recent_turns(&self, session: &str, limit: usize) -> Result<Vec<Turn>, StoreError>;

    /// Deletes every turn of a session; whether it had any.
    async fn delete_session(&self, session: &str) -> Result<bool, StoreError>;
}

/// How long a chat turn is kept after it was written.
pub const CHAT_SESSION_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

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
    pub lineage: Arc<dyn LineageStore>,
    pub snapshots: Arc<dyn SnapshotStore>,
    pub connections: Arc<dyn ConnectionStore>,
    pub chat: Arc<dyn ChatStore>,
    pub health: Arc<dyn StoreHealth>,
}

impl Stores {
    /// All stores served by one SQLite database.
    pub fn sqlite(store: SqliteStore) -> Self {
        Stores::all_served_by(store)
    }

    /// All stores served by one DynamoDB table.
    #[cfg(feature = "cloud")]
    pub fn dynamodb(store: DynamoStore) -> Self {
        Stores::all_served_by(store)
    }

    fn all_served_by<S>(store: S) -> Self
    where
        S: ActivityStore + LineageStore + SnapshotStore + ConnectionStore + ChatStore + StoreHealth,
    {
        let store = Arc::new(store);
        Stores {
            activity: store.clone(),
            lineage: store.clone(),
            snapshots: store.clone(),
            connections: store.clone(),
            chat: store.clone(),
            health: store,
        }
    }

    /// The stores `settings` ask for: `TRIBUTARY_STORE` picks the backend.
    pub async fn open(settings: &crate::config::Settings) -> Result<Self, StoreError> {
        match settings.store {
            Backend::Sqlite => Ok(Stores::sqlite(SqliteStore::open(&settings.db_path)?)),
            #[cfg(feature = "cloud")]
            Backend::Dynamodb => {
                let store = DynamoStore::from_env(&settings.table).await;
                if settings.create_table {
                    store.create_table_if_missing().await?;
                }
                Ok(Stores::dynamodb(store))
            }
            #[cfg(not(feature = "cloud"))]
            Backend::Dynamodb => Err(StoreError::Unavailable(anyhow::anyhow!("this build has no DynamoDB store (feature `cloud`)"))),
        }
    }
}
