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
use crate::lineage::{Chunk, Direction, FileRecord, GraphEdge, GraphNode, IngestWarning, column_key, column_part};
use crate::store::{ListedFile, SearchHit, StoreError};

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
    let name = Name::from_parts(&parts);
    let column = column.map(str::to_owned);
    // Indexing and comparing every object of the project is CPU work: off the async workers.
    let (id, objects, name) = state
        .cpu
        .run("lineage", move || {
            let catalog = Catalog::new(objects.iter().cloned(), HashMap::new());
            let mut id = catalog.resolve(&name);
            if let Some(column) = column {
                id = crate::lineage::resolve::column_id(&id, &column);
            }
            (id, objects, name)
        })
        .await?;
    if let Some(node) = store.get_nodes(project, &[id]).await?.into_iter().next() {
        return Ok(node);
    }
    let suggestions: Vec<String> = state
        .cpu
        .run("lineage", move || {
            let wanted = name.key;
            // A qualified name is compared with whole ids, a bare one with names without their schema.
            let qualified = wanted.contains('.');
            let closest =
                crate::similar::closest(&wanted, &objects, |(id, _)| if qualified { id } else { id.rsplit('.').next().unwrap_or(id) }, 5);
            closest.into_iter().map(|(id, _)| id.clone()).collect()
        })
        .await?;
    let mut error = ApiError::not_found(format!("no node {reference:?} in project {project:?}"));
    if !suggestions.is_empty() {
        error = error.with_hint(format!("closest names: {}", suggestions.join(", ")));
    }
    Err(error)
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
    let store = &state.stores.lineage;
    let subgraph = store.walk(project, &root.id, directions, depth, MAX_LINEAGE_NODES, |_| true).await?;
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
    let (terms, hits) = ranked_search(state, project, query, limit, None).await?;
    Ok(SearchResults {
        query: query.to_owned(),
        project_id: project.to_owned(),
        terms,
        results: hits.into_iter().map(|hit| SearchResult { chunk: hit.chunk, score: (hit.score * 1000.0).round() / 1000.0 }).collect(),
    })
}

/// Statements read per statement returned, to rank again (see [`ranked_search`]).
const CANDIDATES_PER_HIT: usize = 4;
/// Most statements read to rank again.
const MAX_CANDIDATES: usize = 200;
/// Words of a query completed as identifier prefixes (`ProductDesc` → `ProductDescription`).
const MAX_PREFIX_WORDS: usize = 4;
/// Names one prefix is completed to.
const COMPLETIONS_PER_PREFIX: usize = 3;
/// Words of a query looked for among the parts of objects' names.
const MAX_PART_WORDS: usize = 12;
/// Objects a query's words name loosely that are searched for by name.
const LOOSE_OBJECTS: usize = 3;

/// The statements best matching `query`, definitions first, with the terms searched. The store
/// ranks by BM25; of its best few times `limit`, first come the statements of the objects the query
/// names (`SalesOrderHeader` names `sales.salesorderheader`; `fact sales load` names
/// `dw.usp_LoadFactSales`, whose name holds the most of its words and which is searched for by name
/// too), then those of objects whose names hold two or more of its words (the most first); within
/// each, definitions (`CREATE …`) before the other statements, each group in BM25 order. A word of
/// the query written as an identifier that is the start of a column's name, and no whole name,
/// searches for that name too.
///
/// `known_objects`: the ids of the objects the query is known to name (chat's deep mode has found
/// them), which then stand in for looking its words up among every object's name.
pub async fn ranked_search(
    state: &AppState,
    project: &str,
    query: &str,
    limit: usize,
    known_objects: Option<&[String]>,
) -> Result<(Vec<String>, Vec<SearchHit>), ApiError> {
    let mut terms = query_terms(query);
    if terms.is_empty() || limit == 0 {
        return Ok((terms, Vec::new()));
    }
    let words = query_words(query);
    // Only words written as identifiers (`ProductDesc`, `order_ln`) are completed: a plain word is
    // the start of too many names.
    let prefixes: Vec<String> = query
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| word.chars().count() >= 5 && (word.contains('_') || word.chars().skip(1).any(char::is_uppercase)))
        .map(column_key)
        .take(MAX_PREFIX_WORDS)
        .collect();
    let store = &state.stores.lineage;
    let mut named = words.clone();
    let completed = if prefixes.is_empty() {
        Vec::new()
    } else {
        let whole = store.find_columns(project, &prefixes, false, 1).await?;
        let unknown: Vec<String> = prefixes
            .into_iter()
            .filter(|prefix| !whole.iter().any(|id| column_part(id).map(column_key).as_deref() == Some(prefix)))
            .collect();
        store.find_columns(project, &unknown, true, COMPLETIONS_PER_PREFIX).await?
    };
    for id in completed {
        if let Some(part) = column_part(&id) {
            for term in query_terms(part) {
                if !terms.contains(&term) {
                    terms.push(term);
                }
            }
            named.push(column_key(part));
            // The object holding the column is what the word named (`ProductDesc` in `ProductDescription`).
            if let Some(object) = id.strip_suffix(part).and_then(|object| object.strip_suffix('#')) {
                named.push(column_key(object.rsplit('.').next().unwrap_or(object)));
            }
        }
    }
    // Words that may be parts of a name written apart (`fact sales load` in `usp_LoadFactSales`):
    // the objects whose names hold the most of them (two at least) are searched for by name too.
    let parts: Vec<String> =
        query.split(|c: char| !c.is_alphanumeric()).filter(|word| word.chars().count() >= 4).map(column_key).take(MAX_PART_WORDS).collect();
    let loose = match known_objects {
        Some(known) => known.iter().map(|id| id.rsplit('.').next().unwrap_or(id).to_owned()).collect(),
        None if parts.len() >= 2 => {
            let objects = store.object_index(project).await?;
            let searched = parts.clone();
            state
                .cpu
                .run("search", move || {
                    let mut best: Vec<(usize, String)> = Vec::new();
                    for (id, _) in &objects {
                        let name = id.rsplit('.').next().unwrap_or(id);
                        let key = column_key(name);
                        let held = searched.iter().filter(|part| key.contains(part.as_str())).count();
                        if held >= 2 {
                            best.push((held, name.to_owned()));
                        }
                    }
                    let most = best.iter().map(|(held, _)| *held).max().unwrap_or(0);
                    best.retain(|(held, _)| *held == most);
                    best.into_iter().map(|(_, name)| name).take(LOOSE_OBJECTS).collect::<Vec<_>>()
                })
                .await?
        }
        None => Vec::new(),
    };
    for name in loose {
        named.push(column_key(&name));
        let whole = crate::lineage::search::tokenize(&name).into_iter().next().unwrap_or_default();
        if !whole.is_empty() && !terms.contains(&whole) {
            terms.push(whole);
        }
    }
    let candidates = (limit * CANDIDATES_PER_HIT).min(MAX_CANDIDATES).max(limit);
    let mut hits = store.search_chunks(project, &terms, candidates).await?;
    let rank = |hit: &SearchHit| {
        let defines = hit.chunk.statement_kind.starts_with("CREATE");
        let names = hit.chunk.object.as_deref().map_or(0, |object| {
            let name = column_key(object.rsplit('.').next().unwrap_or(object));
            if named.contains(&name) || named.iter().any(|word| name.starts_with(word.as_str()) && word.chars().count() >= 5) {
                return usize::MAX;
            }
            let held = parts.iter().filter(|part| name.contains(part.as_str())).count();
            if held >= 2 { held } else { 0 }
        });
        (std::cmp::Reverse(names), !defines)
    };
    // A stable sort (BM25 order within each group), each hit's key computed once: it allocates.
    hits.sort_by_cached_key(rank);
    hits.truncate(limit);
    Ok((terms, hits))
}

/// The words of a query as keys (lowercase, without `_`), with neighbouring words joined too
/// (`sales order header` → `salesorderheader`).
fn query_words(query: &str) -> Vec<String> {
    let words: Vec<String> =
        query.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|word| !word.is_empty()).map(column_key).take(64).collect();
    let mut keys = words.clone();
    for size in 2..=3 {
        keys.extend(words.windows(size).map(|window| window.concat()));
    }
    keys
}

/// `GET /api/v1/files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileList {
    pub files: Vec<IngestedFile>,
    pub total: usize,
}

/// An ingested file as `GET /api/v1/files` lists it: its record, whose `warnings` are the file's
/// first 100 in line order, with how many it has in all and where to page them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestedFile {
    #[serde(flatten)]
    pub record: FileRecord,
    /// How many warnings the file has in all.
    pub warnings_total: u64,
    /// `GET /api/v1/files/{file_id}/warnings` for this file, when it has more warnings than `warnings`
    /// lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings_url: Option<String>,
}

impl From<ListedFile> for IngestedFile {
    fn from(listed: ListedFile) -> Self {
        let more = listed.warnings_total > listed.record.warnings.len() as u64;
        let warnings_url = more.then(|| warnings_url(&listed.record.project_id, &listed.record.id));
        IngestedFile { record: listed.record, warnings_total: listed.warnings_total, warnings_url }
    }
}

/// The path of `GET /api/v1/files/{file_id}/warnings` for a file (relative: the host's base URL
/// goes before it).
pub fn warnings_url(project: &str, file_id: &str) -> String {
    format!("/api/v1/files/{}/warnings?project_id={}", url_encoded(file_id), url_encoded(project))
}

/// `text` with every byte but letters, digits, `-`, `.`, `_` and `~` percent-encoded.
fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (byte as char).to_string(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `GET /api/v1/files/{file_id}/warnings`: one page of a file's warnings, in line order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileWarnings {
    pub file_id: String,
    pub project_id: String,
    pub filename: String,
    /// How many warnings the file has in all.
    pub total: u64,
    /// The index (0-based) of the first warning of this page.
    pub offset: u64,
    /// The most this page holds.
    pub limit: usize,
    pub warnings: Vec<IngestWarning>,
}

/// Most warnings one page of `GET /api/v1/files/{file_id}/warnings` holds.
pub const MAX_WARNINGS_PAGE: usize = 1000;

/// Longest file id looked up (ids are UUIDs).
pub const MAX_FILE_ID_BYTES: usize = 128;

/// Validates a file id as a path takes it: 1 to 128 letters, digits, `_`, `-` and `.`.
pub fn validate_file_id(file_id: &str) -> Result<(), FieldError> {
    let valid = !file_id.is_empty()
        && file_id.len() <= MAX_FILE_ID_BYTES
        && file_id.chars().all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(FieldError::new("file_id", "use 1 to 128 letters, digits, '_', '-' or '.'")) }
}

/// The warnings of file `file_id` of `project` from the `offset`-th on, at most `limit`; `None`
/// when the project holds no such file.
pub async fn file_warnings(
    state: &AppState,
    project: &str,
    file_id: &str,
    offset: u64,
    limit: usize,
) -> Result<Option<FileWarnings>, StoreError> {
    let page = state.stores.lineage.file_warnings(project, file_id, offset, limit).await?;
    Ok(page.map(|page| FileWarnings {
        file_id: file_id.to_owned(),
        project_id: project.to_owned(),
        filename: page.filename,
        total: page.total,
        offset,
        limit,
        warnings: page.warnings,
    }))
}

/// The files of one project (or of all), newest first, as `GET /api/v1/files` lists them.
pub async fn list_files(state: &AppState, project: Option<&str>, limit: usize) -> Result<FileList, StoreError> {
    let files: Vec<IngestedFile> = state.stores.lineage.list_files(project, limit).await?.into_iter().map(IngestedFile::from).collect();
    Ok(FileList { total: files.len(), files })
}

/// `GET /api/v1/files/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileStats {
    pub total_files: u64,
    pub total_bytes: u64,
    pub total_statements: u64,
    /// Warnings (statements nothing could read), over all files: the sum of their `warnings_total`.
    pub total_warnings: u64,
    pub by_dialect: BTreeMap<String, u64>,
    pub by_project: BTreeMap<String, u64>,
    /// When the newest file was ingested (RFC 3339), if any.
    pub last_ingested_at: Option<String>,
}

/// Most files the statistics read.
const FILE_STATS_LIMIT: usize = 100_000;

pub async fn file_stats(state: &AppState) -> Result<FileStats, ApiError> {
    let listed = state.stores.lineage.list_files(None, FILE_STATS_LIMIT).await?;
    let files: Vec<&FileRecord> = listed.iter().map(|file| &file.record).collect();
    let mut stats = FileStats {
        total_files: files.len() as u64,
        total_bytes: files.iter().map(|file| file.size_bytes).sum(),
        total_statements: files.iter().map(|file| u64::from(file.statements)).sum(),
        total_warnings: listed.iter().map(|file| file.warnings_total).sum(),
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
    fn warnings_urls_are_paths_with_their_project() {
        assert_eq!(warnings_url("default", "0193-ab"), "/api/v1/files/0193-ab/warnings?project_id=default");
        assert_eq!(warnings_url("p.1", "a b/c"), "/api/v1/files/a%20b%2Fc/warnings?project_id=p.1");
        assert!(validate_file_id("0193e5a2-7c1d-7b3e-9f00-1a2b3c4d5e6f").is_ok());
        assert!(validate_file_id("").is_err() && validate_file_id("a/b").is_err() && validate_file_id(&"x".repeat(129)).is_err());
    }
}
