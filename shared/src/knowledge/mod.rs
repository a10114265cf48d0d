//! The knowledge base as a service: ingestion (with its live events and activity), lineage walks,
//! search, and the file listings. Routes, the CLI and the chat call these; the lineage pipeline
//! itself lives in [`crate::lineage`] and never touches a store.

mod ingestion;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, FieldError};
use crate::http::AppState;
use crate::lineage::extract::Name;
use crate::lineage::resolve::Catalog;
use crate::lineage::search::query_terms;
use crate::lineage::walk::walk;
use crate::lineage::{Chunk, Direction, FileRecord, GraphEdge, GraphNode};

pub use ingestion::{FileResult, IngestFile, IngestRequest, IngestionResult, ingest};

/// The project used when a request names none.
pub const DEFAULT_PROJECT: &str = "default";

/// Validates a project id: 1 to 64 characters of letters, digits, `_`, `-` and `.`.
pub fn validate_project(project: &str) -> Result<(), FieldError> {
    let valid = !project.is_empty()
        && project.len() <= 64
        && project.chars().all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(FieldError::new("project_id", "use 1 to 64 letters, digits, '_', '-' or '.'")) }
}

/// Which way `GET /api/v1/lineage/{node}` walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LineageDirection {
    Upstream,
    Downstream,
    #[default]
    Both,
}

/// A node's lineage: the subgraph reached from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LineageGraph {
    /// The node the walk started from.
    pub root: GraphNode,
    pub direction: LineageDirection,
    pub depth: u32,
    /// The nodes reached, the root included.
    pub nodes: Vec<GraphNode>,
    pub edges: Vec<GraphEdge>,
    /// Whether the walk stopped at the node limit.
    pub truncated: bool,
}

/// Most nodes a lineage answer carries.
pub const MAX_LINEAGE_NODES: usize = 2000;
/// Longest node reference accepted (a column id of four 128-byte parts fits).
pub const MAX_REFERENCE_BYTES: usize = 700;
/// Deepest lineage walk.
pub const MAX_LINEAGE_DEPTH: u32 = 20;

/// Finds a node by id or by name (case-insensitive, quotes and brackets dropped, schema optional);
/// 404 naming the closest known names otherwise.
pub async fn find_node(state: &AppState, project: &str, reference: &str) -> Result<GraphNode, ApiError> {
    if reference.is_empty() || reference.len() > MAX_REFERENCE_BYTES {
        return Err(ApiError::validation(vec![FieldError::new("node", format!("must be 1 to {MAX_REFERENCE_BYTES} bytes"))]));
    }
    let store = &state.stores.lineage;
    if let Some(node) = store.get_nodes(project, &[reference.to_owned()]).await?.into_iter().next() {
        return Ok(node);
    }
    let (object, column) = match reference.split_once('#') {
        Some((object, column)) => (object, Some(column)),
        None => (reference, None),
    };
    let parts: Vec<String> = object.split('.').map(|part| part.trim_matches(|c| matches!(c, '"' | '`' | '[' | ']')).to_owned()).collect();
    let objects = store.object_index(project).await?;
    let catalog = Catalog::new(objects.clone(), HashMap::new());
    let mut id = catalog.resolve(&Name::from_parts(&parts));
    if let Some(column) = column {
        id = crate::lineage::resolve::column_id(&id, column);
    }
    if let Some(node) = store.get_nodes(project, &[id]).await?.into_iter().next() {
        return Ok(node);
    }
    let wanted = Name::from_parts(&parts).key;
    let mut closest: Vec<(usize, &String)> = objects
        .iter()
        .map(|(id, _)| (strsim_distance(&wanted, id.rsplit('.').next().unwrap_or(id)).min(strsim_distance(&wanted, id)), id))
        .collect();
    closest.sort();
    let suggestions: Vec<&str> = closest.iter().take(5).map(|(_, id)| id.as_str()).collect();
    let mut error = ApiError::not_found(format!("no node {reference:?} in project {project:?}"));
    if !suggestions.is_empty() {
        error = error.with_hint(format!("closest names: {}", suggestions.join(", ")));
    }
    Err(error)
}

/// Levenshtein distance between two short names.
fn strsim_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb)).min(row[j] + 1).min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// The lineage of `reference` in `direction`, at most `depth` steps.
pub async fn lineage(
    state: &AppState,
    project: &str,
    reference: &str,
    direction: LineageDirection,
    depth: u32,
) -> Result<LineageGraph, ApiError> {
    let root = find_node(state, project, reference).await?;
    let directions: &[Direction] = match direction {
        LineageDirection::Upstream => &[Direction::Upstream],
        LineageDirection::Downstream => &[Direction::Downstream],
        LineageDirection::Both => &[Direction::Upstream, Direction::Downstream],
    };
    let store = state.stores.lineage.clone();
    let subgraph = walk(&root.id, directions, depth, MAX_LINEAGE_NODES, |ids, direction| {
        let store = store.clone();
        let project = project.to_owned();
        async move { store.edges_of(&project, &ids, direction).await }
    })
    .await?;
    let ids: Vec<String> = subgraph.nodes.iter().cloned().collect();
    let mut nodes = store.get_nodes(project, &ids).await?;
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(LineageGraph { root, direction, depth, nodes, edges: subgraph.edges, truncated: subgraph.truncated })
}

/// A search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    #[serde(flatten)]
    pub chunk: Chunk,
    /// BM25 score (higher is better).
    pub score: f64,
}

/// `GET /api/v1/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    pub query: String,
    pub project_id: String,
    /// The terms searched (identifiers split).
    pub terms: Vec<String>,
    pub results: Vec<SearchResult>,
}

/// The project's statements best matching `query`.
pub async fn search(state: &AppState, project: &str, query: &str, limit: usize) -> Result<SearchResults, ApiError> {
    let terms = query_terms(query);
    let hits = if terms.is_empty() { Vec::new() } else { state.stores.lineage.search_chunks(project, &terms, limit).await? };
    Ok(SearchResults {
        query: query.to_owned(),
        project_id: project.to_owned(),
        terms,
        results: hits.into_iter().map(|hit| SearchResult { chunk: hit.chunk, score: (hit.score * 1000.0).round() / 1000.0 }).collect(),
    })
}

/// `GET /api/v1/files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub files: Vec<FileRecord>,
    pub total: usize,
}

/// `GET /api/v1/files/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileStats {
    pub total_files: u64,
    pub total_bytes: u64,
    pub total_statements: u64,
    /// Statements that did not parse, over all files.
    pub total_warnings: u64,
    pub by_dialect: BTreeMap<String, u64>,
    pub by_project: BTreeMap<String, u64>,
    /// When the newest file was ingested (RFC 3339), if any.
    pub last_ingested_at: Option<String>,
}

/// Most files the statistics read.
const FILE_STATS_LIMIT: usize = 100_000;

pub async fn file_stats(state: &AppState) -> Result<FileStats, ApiError> {
    let files = state.stores.lineage.list_files(None, FILE_STATS_LIMIT).await?;
    let mut stats = FileStats {
        total_files: files.len() as u64,
        total_bytes: files.iter().map(|file| file.size_bytes).sum(),
        total_statements: files.iter().map(|file| u64::from(file.statements)).sum(),
        total_warnings: files.iter().map(|file| file.warnings.len() as u64).sum(),
        by_dialect: BTreeMap::new(),
        by_project: BTreeMap::new(),
        last_ingested_at: files.iter().map(|file| file.ingested_at).max().map(|at| crate::time::format(&at)),
    };
    for file in &files {
        *stats.by_dialect.entry(file.dialect.clone()).or_default() += 1;
        *stats.by_project.entry(file.project_id.clone()).or_default() += 1;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_bounded_and_plain() {
        assert!(validate_project("warehouse-2024.v1").is_ok());
        assert!(validate_project("").is_err());
        assert!(validate_project("a/b").is_err());
        assert!(validate_project(&"x".repeat(65)).is_err());
    }

    #[test]
    fn edit_distance() {
        assert_eq!(strsim_distance("orders", "order"), 1);
        assert_eq!(strsim_distance("", "abc"), 3);
        assert_eq!(strsim_distance("customers", "customers"), 0);
    }
}
