//! The lineage graph's vocabulary: nodes, edges, statement chunks, ingested files, and the graph one
//! file contributes.
//!
//! Every edge reads "source uses target": `gold.sales READS_FROM staging.sales`, `v DERIVES t`,
//! `t CONTAINS t#c`, `orders REFERENCES customers`, `p CALLS q`. So a node's upstream is reached along
//! its outgoing edges and its downstream along its incoming ones.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
pub enum NodeKind {
    Table,
    View,
    MaterializedView,
    Column,
    FunctionOrProcedure,
    /// An object read but never defined in the project's SQL (a file or URI a statement loads or
    /// writes is one too, under `path:<location>`).
    External,
    /// A standalone query of a script (a report, an extract): `query:<file>:<line>`, reading what
    /// its statement reads.
    Query,
}

impl NodeKind {
    pub const ALL: [NodeKind; 7] = [
        NodeKind::Table,
        NodeKind::View,
        NodeKind::MaterializedView,
        NodeKind::Column,
        NodeKind::FunctionOrProcedure,
        NodeKind::External,
        NodeKind::Query,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Table => "Table",
            NodeKind::View => "View",
            NodeKind::MaterializedView => "MaterializedView",
            NodeKind::Column => "Column",
            NodeKind::FunctionOrProcedure => "FunctionOrProcedure",
            NodeKind::External => "External",
            NodeKind::Query => "Query",
        }
    }

    pub fn parse(text: &str) -> Option<NodeKind> {
        NodeKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Whether SQL defines this kind of object (as opposed to a column or an external reference); a
    /// query is defined by its statement.
    pub fn is_defined_object(self) -> bool {
        !matches!(self, NodeKind::Column | NodeKind::External)
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// How two nodes relate; the source uses the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EdgeKind {
    /// A table filled from the target (INSERT…SELECT, CREATE TABLE AS, MERGE, SELECT INTO, UPDATE…FROM,
    /// COPY from a path); a table written by the target routine (`gold.t READS_FROM dbo.usp_load`);
    /// a procedure, function or standalone query reading the target.
    ReadsFrom,
    /// A view (or a view's or CTAS's column) computed from the target.
    Derives,
    /// An object's column.
    Contains,
    /// A foreign key to the target.
    References,
    /// A procedure or function calling the target.
    Calls,
}

impl EdgeKind {
    pub const ALL: [EdgeKind; 5] = [EdgeKind::ReadsFrom, EdgeKind::Derives, EdgeKind::Contains, EdgeKind::References, EdgeKind::Calls];

    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::ReadsFrom => "READS_FROM",
            EdgeKind::Derives => "DERIVES",
            EdgeKind::Contains => "CONTAINS",
            EdgeKind::References => "REFERENCES",
            EdgeKind::Calls => "CALLS",
        }
    }

    pub fn parse(text: &str) -> Option<EdgeKind> {
        EdgeKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Whether lineage walks this edge: data flow and calls do; containment and foreign keys are
    /// structure, not data flow.
    pub fn is_lineage(self) -> bool {
        matches!(self, EdgeKind::ReadsFrom | EdgeKind::Derives | EdgeKind::Calls)
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Which way a lineage step goes from a node: to what it uses (`Upstream`, its outgoing edges) or
/// to what uses it (`Downstream`, its incoming edges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Upstream,
    Downstream,
}

/// A node of a project's graph.
///
/// Ids are readable and stable: an object's id is its normalized qualified name (`staging.orders`),
/// a column's is `<object id>#<column>`. Ids are unique within a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphNode {
    pub id: String,
    pub kind: NodeKind,
    /// The name as first written (case and quoting kept, brackets removed).
    pub name: String,
    /// The object a column belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The file and line that define it (none for external references and inferred columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Free-form facts: a column's `data_type`, an object's `definition` (abridged) and `columns`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl GraphNode {
    pub fn new(id: impl Into<String>, kind: NodeKind, name: impl Into<String>) -> Self {
        GraphNode { id: id.into(), kind, name: name.into(), parent: None, file: None, line: None, properties: BTreeMap::new() }
    }
}

/// An edge of a project's graph. Its id is `<source>|<KIND>|<target>`, so the same fact found twice
/// is one edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GraphEdge {
    pub id: String,
    pub kind: EdgeKind,
    pub source: String,
    pub target: String,
    /// Where it was found: `file`, `line`, and `via` (the procedure whose body wrote a table).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub properties: BTreeMap<String, serde_json::Value>,
}

impl GraphEdge {
    pub fn new(kind: EdgeKind, source: impl Into<String>, target: impl Into<String>) -> Self {
        let (source, target) = (source.into(), target.into());
        GraphEdge { id: edge_id(&source, kind, &target), kind, source, target, properties: BTreeMap::new() }
    }
}

/// The id of the edge `source -kind-> target`.
pub fn edge_id(source: &str, kind: EdgeKind, target: &str) -> String {
    format!("{source}|{kind}|{target}")
}

/// The name part of a column's id (`object#column` → `column`); `None` for an object's id (a
/// temporary table's `#staging` included: its `#` comes first).
pub fn column_part(id: &str) -> Option<&str> {
    id.rfind('#').filter(|at| *at > 0).map(|at| &id[at + 1..])
}

/// The key a column is looked up by ([`crate::store::LineageStore::find_columns`]): its name
/// lowercase, without `_` and spaces, so that `customer_tier`, `CustomerTier` and the words
/// "customer tier" meet. Stores derive it from the id's name part, which is lowercase already.
pub fn column_key(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '_' | ' ')).flat_map(char::to_lowercase).collect()
}

/// One statement of an ingested file, the unit of full-text search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Chunk {
    /// `<file id>:<ordinal>`.
    pub id: String,
    pub file_id: String,
    pub filename: String,
    /// First and last line of the statement in its file (1-based, inclusive).
    pub start_line: u32,
    pub end_line: u32,
    /// The object the statement defines or writes, if any (a node id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// `CREATE TABLE`, `CREATE VIEW`, `INSERT`, `MERGE`, `SELECT`, ...
    pub statement_kind: String,
    /// The statement's text (bounded; see [`crate::lineage::limits`]).
    pub text: String,
}

/// A problem in one statement of a file that did not stop the rest of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IngestWarning {
    /// 1-based line where the statement starts.
    pub line: u32,
    pub message: String,
}

/// An ingested file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileRecord {
    pub id: String,
    pub project_id: String,
    pub filename: String,
    /// SHA-256 of the content, hex: the same content in a project is ingested once.
    pub content_hash: String,
    /// The dialect the file was parsed in (after detection).
    pub dialect: String,
    pub size_bytes: u64,
    #[serde(with = "crate::time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub ingested_at: DateTime<Utc>,
    pub statements: u32,
    /// Nodes and edges this file added to the graph (not counting ones already there).
    pub nodes_created: u64,
    pub edges_created: u64,
    pub warnings: Vec<IngestWarning>,
}

/// What extraction found in one file, ready to be stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileGraph {
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    pub chunks: Vec<IndexedChunk>,
}

/// A chunk with its search terms ([`super::search::tokenize`] of its text), tokenized once while
/// files are parsed in parallel, so a store's write path only writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedChunk {
    pub chunk: Chunk,
    pub terms: Vec<String>,
}

impl IndexedChunk {
    /// Tokenizes the chunk's text.
    pub fn new(chunk: Chunk) -> Self {
        let terms = super::search::tokenize(&chunk.text);
        IndexedChunk { chunk, terms }
    }
}

/// What storing a file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredFile {
    /// Written, with this many new nodes and edges (already-known ones are merged, not counted).
    Stored { nodes_created: u64, edges_created: u64 },
    /// The project already holds this content (same hash): nothing was written.
    Duplicate { existing_file_id: String },
}
