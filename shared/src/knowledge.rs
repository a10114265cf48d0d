//! The knowledge base as a service: ingestion (with its live events and activity), lineage walks,
//! search, and the file listings. Routes, the CLI and the chat call these; the lineage pipeline
//! itself lives in [`crate::lineage`] and never touches a store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::error::{ApiError, FieldError};
use crate::http::AppState;
use crate::lineage::dialect::DialectChoice;
use crate::lineage::extract::{Name, Ref};
use crate::lineage::parse::{ParsedFile, parse_file};
use crate::lineage::resolve::Catalog;
use crate::lineage::search::query_terms;
use crate::lineage::walk::walk;
use crate::lineage::{Chunk, Direction, EdgeKind, FileRecord, GraphEdge, GraphNode, IngestWarning, StoredFile, build_graphs, limits};
use crate::realtime::{MessageType, ServerMessage};

/// The project used when a request names none.
pub const DEFAULT_PROJECT: &str = "default";

/// One file to ingest.
#[derive(Debug, Clone)]
pub struct IngestFile {
    pub filename: String,
    pub content: Vec<u8>,
}

/// An ingestion: files for one project, in one dialect (or `auto`).
#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub project_id: String,
    pub dialect: String,
    pub files: Vec<IngestFile>,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileResult {
    pub filename: String,
    /// `processed`, `skipped_duplicate` or `failed`.
    pub status: String,
    /// Why the file failed.
    pub error: Option<String>,
    pub nodes_created: u64,
    pub edges_created: u64,
    /// The stored file (for a duplicate: the file that already holds this content).
    pub file_id: Option<String>,
    /// The dialect the file was parsed in.
    pub dialect: Option<String>,
    pub statements: u32,
    /// Statements that did not parse, each with its line; the rest of the file still counts.
    pub warnings: Vec<IngestWarning>,
}

/// The answer to an ingestion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IngestionResult {
    pub ingestion_id: String,
    pub project_id: String,
    pub files_processed: u64,
    pub files_failed: u64,
    pub files_skipped_duplicate: u64,
    pub total_nodes_created: u64,
    pub total_edges_created: u64,
    pub duration_ms: u64,
    pub results: Vec<FileResult>,
}

/// Validates a project id: 1 to 64 characters of letters, digits, `_`, `-` and `.`.
pub fn validate_project(project: &str) -> Result<(), FieldError> {
    let valid = !project.is_empty()
        && project.len() <= 64
        && project.chars().all(|character| character.is_ascii_alphanumeric() || matches!(character, '_' | '-' | '.'));
    if valid { Ok(()) } else { Err(FieldError::new("project_id", "use 1 to 64 letters, digits, '_', '-' or '.'")) }
}

/// The checks every file passes before anything is parsed or stored: a whole request is refused
/// (413 or 422) rather than half ingested because of a bad file.
fn validate(request: &IngestRequest, max_file_bytes: usize) -> Result<DialectChoice, ApiError> {
    let mut errors = Vec::new();
    if let Err(error) = validate_project(&request.project_id) {
        errors.push(error);
    }
    let dialect = DialectChoice::parse(&request.dialect);
    if dialect.is_none() {
        errors.push(FieldError::new(
            "dialect",
            format!(
                "unknown dialect {:?}; use one of: {}",
                request.dialect.chars().take(40).collect::<String>(),
                crate::lineage::dialect::DIALECT_NAMES
            ),
        ));
    }
    if request.files.is_empty() {
        errors.push(FieldError::new("files", "send at least one file"));
    }
    if request.files.len() > limits::MAX_FILES_PER_REQUEST {
        errors.push(FieldError::new("files", format!("at most {} files per request", limits::MAX_FILES_PER_REQUEST)));
    }
    for (index, file) in request.files.iter().enumerate() {
        let field = format!("files[{index}]");
        if file.content.len() > max_file_bytes {
            return Err(ApiError::payload_too_large(format!(
                "{} is {} bytes; files may be at most {max_file_bytes} bytes",
                file.filename,
                file.content.len()
            )));
        }
        if file.filename.trim().is_empty() || file.filename.len() > 255 {
            errors.push(FieldError::new(format!("{field}.filename"), "a file needs a name of 1 to 255 bytes"));
        }
        match std::str::from_utf8(&file.content) {
            Err(_) => errors.push(FieldError::new(&field, format!("{} is not UTF-8 text (a binary file?)", file.filename))),
            Ok(text) if text.contains('\0') => {
                errors.push(FieldError::new(&field, format!("{} contains NUL bytes (a binary file?)", file.filename)))
            }
            Ok(text) if text.trim().is_empty() => errors.push(FieldError::new(&field, format!("{} is empty", file.filename))),
            Ok(_) => {}
        }
    }
    if errors.is_empty() { Ok(dialect.unwrap_or(DialectChoice::Auto)) } else { Err(ApiError::validation(errors)) }
}

/// Least time between two `ingestion_progress` events of one ingestion.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Lets an event through at most once per interval, and always the last one.
struct Throttle {
    every: std::time::Duration,
    last: Option<Instant>,
}

impl Throttle {
    fn every(every: std::time::Duration) -> Self {
        Throttle { every, last: None }
    }

    fn due(&mut self, last_of_phase: bool) -> bool {
        let due = last_of_phase || self.last.is_none_or(|last| last.elapsed() >= self.every);
        if due {
            self.last = Some(Instant::now());
        }
        due
    }
}

/// Sends an ingestion event to every dashboard; a broadcaster failure never fails the ingestion.
async fn announce(state: &AppState, kind: MessageType, data: serde_json::Value) {
    match ServerMessage::new(kind, data) {
        Ok(message) => {
            if let Err(error) = state.broadcaster.broadcast(message).await {
                tracing::warn!(%error, "could not broadcast {}", kind.as_str());
            }
        }
        Err(error) => tracing::error!(%error, "invalid {} message", kind.as_str()),
    }
}

fn content_hash(content: &[u8]) -> String {
    Sha256::digest(content).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The file name without any folder a client put in it (`../../x.sql` is `x.sql`).
fn base_name(filename: &str) -> String {
    filename.rsplit(['/', '\\']).next().unwrap_or(filename).trim().to_owned()
}

/// Ingests the files of `request`: validates them all, parses each (bounded), resolves names across
/// them and the stored graph, stores each file all-or-nothing, and tells every dashboard as it goes.
pub async fn ingest(state: &AppState, mut request: IngestRequest) -> Result<IngestionResult, ApiError> {
    let started = Instant::now();
    for file in &mut request.files {
        file.filename = base_name(&file.filename);
    }
    let choice = validate(&request, state.settings.ingest_max_file_bytes as usize)?;
    let project = request.project_id.clone();
    let ingestion_id = uuid::Uuid::now_v7().to_string();
    let total = request.files.len();
    announce(
        state,
        MessageType::IngestionStarted,
        json!({
            "ingestion_id": ingestion_id,
            "project_id": project,
            "total_files": total,
            "filenames": request.files.iter().map(|file| file.filename.clone()).take(50).collect::<Vec<_>>(),
        }),
    )
    .await;
    // Every host gets at most a few progress events a second (the cloud's broadcaster, unlike the
    // node's hub, does not coalesce them), and always the last of each phase.
    let mut throttle = Throttle::every(PROGRESS_EVERY);
    let progress = |done: usize, current: &str, phase: &str, nodes: u64| {
        // Parsing is the first half of the work, storing the second.
        let percent = match phase {
            "parsing" => done * 50 / total.max(1),
            _ => 50 + done * 50 / total.max(1),
        };
        json!({
            "ingestion_id": ingestion_id,
            "project_id": project,
            "phase": phase,
            "current_file": current,
            "files_done": done,
            "total_files": total,
            "percent": percent,
            "nodes_created": nodes,
        })
    };

    // 1. Parse on the blocking pool, as many files at once as there are cores, in order.
    let parallelism = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    // Owned texts: a stream borrowing the request would not be `Send` across the awaits below.
    let texts: Vec<String> = request.files.iter().map(|file| String::from_utf8_lossy(&file.content).into_owned()).collect();
    let mut parsing = futures::stream::iter(
        texts.into_iter().map(move |text| tokio::task::spawn_blocking(move || parse_file(&text, choice, Instant::now()))),
    )
    .buffered(parallelism);
    let mut parsed: Vec<Result<ParsedFile, String>> = Vec::with_capacity(total);
    while let Some(outcome) = parsing.next().await {
        let outcome = outcome
            .map_err(|error| {
                tracing::error!(%error, "the SQL parser failed");
                "the parser failed on this file".to_owned()
            })
            .and_then(|result| result.map_err(|error| error.to_string()));
        parsed.push(outcome);
        let file = &request.files[parsed.len() - 1];
        if throttle.due(parsed.len() == total) {
            announce(state, MessageType::IngestionProgress, progress(parsed.len(), &file.filename, "parsing", 0)).await;
        }
    }
    drop(parsing);

    // 2. Resolve names across these files and what the project already holds.
    let ok_files: Vec<(&str, &ParsedFile)> = request
        .files
        .iter()
        .zip(&parsed)
        .filter_map(|(file, parsed)| parsed.as_ref().ok().map(|parsed| (file.filename.as_str(), parsed)))
        .collect();
    let catalog = match load_catalog(state, &project, &ok_files).await {
        Ok(catalog) => catalog,
        Err(error) => {
            // Dashboards saw it start: they hear that it ended, and how.
            let detail = error.body().detail;
            announce(
                state,
                MessageType::IngestionComplete,
                json!({
                    "ingestion_id": ingestion_id,
                    "project_id": project,
                    "files_processed": 0,
                    "files_failed": total,
                    "files_skipped_duplicate": 0,
                    "total_nodes_created": 0,
                    "total_edges_created": 0,
                    "duration_ms": started.elapsed().as_millis() as u64,
                    "status": "failed",
                    "error": detail,
                }),
            )
            .await;
            let event = ActivityEvent::new(EventType::Ingestion, EventSource::System, "ingestion", EventStatus::Error)
                .with_metadata("ingestion_id", ingestion_id.clone())
                .with_metadata("error", error.code())
                .with_metadata("message", format!("Ingestion into {project} failed: {detail}"));
            state.activity.record(event).await;
            return Err(error);
        }
    };
    drop(ok_files);
    // Building the graphs is CPU work over every file: on the blocking pool, files in parallel.
    let filenames: Vec<String> = request.files.iter().map(|file| file.filename.clone()).collect();
    let (parsed, graphs, catalog) = tokio::task::spawn_blocking(move || {
        let mut catalog = catalog;
        let ok_files: Vec<(&str, &ParsedFile)> =
            filenames.iter().zip(&parsed).filter_map(|(name, parsed)| parsed.as_ref().ok().map(|parsed| (name.as_str(), parsed))).collect();
        let graphs = build_graphs(&ok_files, &mut catalog);
        drop(ok_files);
        (parsed, graphs, catalog)
    })
    .await
    .map_err(|error| ApiError::internal("ingestion", error))?;
    let mut graphs = graphs.into_iter();

    // 3. Store each file, all or nothing.
    let mut results = Vec::with_capacity(total);
    let (mut nodes_created, mut edges_created) = (0, 0);
    for (index, (file, parsed)) in request.files.iter().zip(parsed).enumerate() {
        let mut result = FileResult {
            filename: file.filename.clone(),
            status: "failed".into(),
            error: None,
            nodes_created: 0,
            edges_created: 0,
            file_id: None,
            dialect: None,
            statements: 0,
            warnings: Vec::new(),
        };
        match parsed {
            Err(error) => result.error = Some(error),
            Ok(parsed) => {
                let mut graph = graphs.next().expect("one graph per parsed file");
                let file_id = uuid::Uuid::now_v7().to_string();
                graph.chunks = parsed
                    .chunks
                    .iter()
                    .enumerate()
                    .map(|(ordinal, draft)| Chunk {
                        id: format!("{file_id}:{ordinal}"),
                        file_id: file_id.clone(),
                        filename: file.filename.clone(),
                        start_line: draft.start_line,
                        end_line: draft.end_line,
                        object: draft.object.as_ref().map(|name| catalog.resolve(name)),
                        statement_kind: draft.statement_kind.clone(),
                        text: draft.text.clone(),
                    })
                    .collect();
                let record = FileRecord {
                    id: file_id.clone(),
                    project_id: project.clone(),
                    filename: file.filename.clone(),
                    content_hash: content_hash(&file.content),
                    dialect: parsed.dialect.name().to_owned(),
                    size_bytes: file.content.len() as u64,
                    ingested_at: crate::time::now(),
                    statements: parsed.statements,
                    nodes_created: 0,
                    edges_created: 0,
                    warnings: parsed.warnings.clone(),
                };
                result.dialect = Some(record.dialect.clone());
                result.statements = parsed.statements;
                result.warnings = parsed.warnings;
                match state.stores.lineage.store_file(&record, graph).await {
                    Ok(StoredFile::Stored { nodes_created: nodes, edges_created: edges }) => {
                        result.status = "processed".into();
                        result.file_id = Some(file_id);
                        result.nodes_created = nodes;
                        result.edges_created = edges;
                        nodes_created += nodes;
                        edges_created += edges;
                    }
                    Ok(StoredFile::Duplicate { existing_file_id }) => {
                        result.status = "skipped_duplicate".into();
                        result.file_id = Some(existing_file_id);
                    }
                    Err(error) => {
                        tracing::warn!(filename = %file.filename, %error, "could not store an ingested file");
                        result.error = Some(if error.is_transient() {
                            "the store is unavailable; nothing of this file was kept, send it again".to_owned()
                        } else {
                            "the store failed; nothing of this file was kept".to_owned()
                        });
                    }
                }
            }
        }
        results.push(result);
        if throttle.due(index + 1 == total) {
            announce(state, MessageType::IngestionProgress, progress(index + 1, &file.filename, "storing", nodes_created)).await;
        }
    }
    state.stats.invalidate().await;

    let count = |status: &str| results.iter().filter(|result| result.status == status).count() as u64;
    let outcome = IngestionResult {
        ingestion_id: ingestion_id.clone(),
        project_id: project.clone(),
        files_processed: count("processed"),
        files_failed: count("failed"),
        files_skipped_duplicate: count("skipped_duplicate"),
        total_nodes_created: nodes_created,
        total_edges_created: edges_created,
        duration_ms: started.elapsed().as_millis() as u64,
        results,
    };
    announce(
        state,
        MessageType::IngestionComplete,
        json!({
            "ingestion_id": ingestion_id,
            "project_id": project,
            "files_processed": outcome.files_processed,
            "files_failed": outcome.files_failed,
            "files_skipped_duplicate": outcome.files_skipped_duplicate,
            "total_nodes_created": outcome.total_nodes_created,
            "total_edges_created": outcome.total_edges_created,
            "duration_ms": outcome.duration_ms,
            "status": if outcome.files_failed == 0 { "success" } else if outcome.files_processed > 0 { "partial" } else { "failed" },
        }),
    )
    .await;
    let status = if outcome.files_failed == 0 { EventStatus::Success } else { EventStatus::Error };
    let mut event = ActivityEvent::new(EventType::Ingestion, EventSource::System, "ingestion", status)
        .with_metadata("ingestion_id", outcome.ingestion_id.clone())
        .with_metadata("project_id", project.clone())
        .with_metadata("files_processed", outcome.files_processed)
        .with_metadata("files_failed", outcome.files_failed)
        .with_metadata("files_skipped_duplicate", outcome.files_skipped_duplicate)
        .with_metadata("nodes_created", outcome.total_nodes_created)
        .with_metadata(
            "message",
            format!(
                "Ingested {} file(s) into {project}: {} new nodes, {} new edges{}",
                outcome.files_processed,
                outcome.total_nodes_created,
                outcome.total_edges_created,
                if outcome.files_failed > 0 { format!(", {} failed", outcome.files_failed) } else { String::new() }
            ),
        );
    if outcome.files_failed > 0 {
        event = event.with_metadata("error", "ingestion_file_failed");
    }
    event.latency_ms = Some(outcome.duration_ms as f64);
    state.activity.record(event).await;
    Ok(outcome)
}

/// What the project holds that these files may name: its objects, and the columns of the stored
/// objects the files refer to (for `SELECT *` and unqualified columns).
async fn load_catalog(state: &AppState, project: &str, files: &[(&str, &ParsedFile)]) -> Result<Catalog, ApiError> {
    let objects = state.stores.lineage.object_index(project).await?;
    let mut catalog = Catalog::new(objects.clone(), HashMap::new());
    let mut referenced = BTreeSet::new();
    let mut note = |name: &Name| {
        referenced.insert(catalog.resolve(name));
    };
    for (_, parsed) in files {
        for link in &parsed.facts.links {
            for reference in [&link.source, &link.target] {
                match reference {
                    Ref::Object(name) | Ref::Column(name, _) => note(name),
                    Ref::AmbiguousColumn(names, _) => names.iter().for_each(&mut note),
                }
            }
        }
        for wildcard in &parsed.facts.wildcards {
            note(&wildcard.source);
        }
    }
    if referenced.is_empty() {
        return Ok(catalog);
    }
    let ids: Vec<String> = referenced.into_iter().collect();
    let mut columns: HashMap<String, Vec<String>> = HashMap::new();
    for edge in state.stores.lineage.edges_of(project, &ids, Direction::Upstream).await? {
        if edge.kind == EdgeKind::Contains
            && let Some((_, column)) = edge.target.rsplit_once('#')
        {
            columns.entry(edge.source.clone()).or_default().push(column.to_owned());
        }
    }
    catalog = Catalog::new(objects, columns);
    Ok(catalog)
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
    fn file_names_lose_their_folders() {
        assert_eq!(base_name("../../etc/passwd"), "passwd");
        assert_eq!(base_name("C:\\sql\\a.sql"), "a.sql");
        assert_eq!(base_name("plain.sql"), "plain.sql");
    }

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
