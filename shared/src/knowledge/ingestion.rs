//! Ingestion: SQL files in, a lineage graph stored, every dashboard told as it goes.
//!
//! [`ingest`] runs four steps: `validate` the whole request (a bad file refuses it before anything
//! is parsed or stored), `parse` the files in parallel, `resolve` names across them and the stored
//! project into one graph and record per file, and `store` each file all or nothing. An
//! [`Ingestion`] carries what the steps share: the ids, the throttled progress events and the time
//! each step took (logged when it finishes).

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{validate_project, warnings_url};
use crate::activity::{ActivityEvent, EventSource, EventStatus, EventType};
use crate::error::{ApiError, FieldError};
use crate::http::AppState;
use crate::lineage::dialect::DialectChoice;
use crate::lineage::extract::{Name, Ref};
use crate::lineage::parse::{ParsedFile, parse_file};
use crate::lineage::resolve::Catalog;
use crate::lineage::{Chunk, Direction, EdgeKind, FileGraph, FileRecord, IndexedChunk, IngestWarning, StoredFile, build_graphs, limits};
use crate::realtime::{MessageType, announce};
use crate::store::LISTED_WARNINGS;

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
    /// Statements nothing could read, each with its line (the rest of the file still counts): the
    /// first 100, in line order.
    pub warnings: Vec<IngestWarning>,
    /// How many warnings the file has in all.
    pub warnings_total: u64,
    /// `GET /api/v1/files/{file_id}/warnings` for the stored file, when it has more warnings than
    /// `warnings` lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnings_url: Option<String>,
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
        } else if file.filename.chars().any(char::is_control) {
            // A NUL, CR or LF in a name would forge lines in logs and break the CLI's and the
            // dashboard's listings; no file system a script comes from needs them.
            errors.push(FieldError::new(format!("{field}.filename"), "a file name may not contain control characters (NUL, CR, LF, tab…)"));
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
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Lets an event through at most once per interval, and always the last one.
struct Throttle {
    every: Duration,
    last: Option<Instant>,
}

impl Throttle {
    fn every(every: Duration) -> Self {
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
    for file in &mut request.files {
        file.filename = base_name(&file.filename);
    }
    let choice = validate(&request, state.settings.ingest_max_file_bytes as usize)?;
    let mut ingestion = Ingestion::begin(state, &request).await;
    let parsed = ingestion.parse(&request, choice).await;
    let prepared = match ingestion.resolve(&request, parsed).await {
        Ok(prepared) => prepared,
        Err(error) => return Err(ingestion.fail(error).await),
    };
    let results = ingestion.store(prepared).await;
    Ok(ingestion.finish(results).await)
}

/// One file after parsing: its content's hash, and the parse or why it failed.
struct ParsedUpload {
    content_hash: String,
    outcome: Result<ParsedFile, String>,
}

/// One file ready to store, or why it cannot be.
enum Prepared {
    Ready { record: Box<FileRecord>, graph: FileGraph },
    Failed { filename: String, error: String },
}

/// The ingestion phases dashboards see in `ingestion_progress`.
#[derive(Clone, Copy)]
enum Phase {
    Parsing,
    Storing,
}

/// What the steps of one ingestion share: its ids, its progress events and the time each step took.
struct Ingestion<'a> {
    state: &'a AppState,
    id: String,
    project: String,
    total: usize,
    started: Instant,
    throttle: Throttle,
    /// Time spent parsing, resolving and storing (for the log line).
    timings: [Duration; 3],
}

impl<'a> Ingestion<'a> {
    /// Tells every dashboard an ingestion started.
    async fn begin(state: &'a AppState, request: &IngestRequest) -> Ingestion<'a> {
        let ingestion = Ingestion {
            state,
            id: uuid::Uuid::now_v7().to_string(),
            project: request.project_id.clone(),
            total: request.files.len(),
            started: Instant::now(),
            // Every host gets at most a few progress events a second (the cloud's broadcaster, unlike
            // the node's hub, does not coalesce them), and always the last of each phase.
            throttle: Throttle::every(PROGRESS_EVERY),
            timings: [Duration::ZERO; 3],
        };
        let filenames: Vec<&str> = request.files.iter().map(|file| file.filename.as_str()).take(50).collect();
        let started = json!({
            "ingestion_id": ingestion.id,
            "project_id": ingestion.project,
            "total_files": ingestion.total,
            "filenames": filenames,
        });
        announce(&*state.broadcaster, MessageType::IngestionStarted, started).await;
        ingestion
    }

    /// An `ingestion_progress` event, when the throttle lets one through.
    async fn progress(&mut self, phase: Phase, done: usize, current: &str, nodes_created: u64) {
        if !self.throttle.due(done == self.total) {
            return;
        }
        let total = self.total.max(1);
        // Parsing is the first half of the work, storing the second.
        let (phase, percent) = match phase {
            Phase::Parsing => ("parsing", done * 50 / total),
            Phase::Storing => ("storing", 50 + done * 50 / total),
        };
        let progress = json!({
            "ingestion_id": self.id,
            "project_id": self.project,
            "phase": phase,
            "current_file": current,
            "files_done": done,
            "total_files": self.total,
            "percent": percent,
            "nodes_created": nodes_created,
        });
        announce(&*self.state.broadcaster, MessageType::IngestionProgress, progress).await;
    }

    /// Step 1: parses the files on the blocking pool, as many at once as there are cores, in order.
    async fn parse(&mut self, request: &IngestRequest, choice: DialectChoice) -> Vec<ParsedUpload> {
        let step = Instant::now();
        let parallelism = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        // Owned texts: a stream borrowing the request would not be `Send` across the awaits below.
        // `validate` let only UTF-8 through, so the text's bytes are the content's.
        let texts: Vec<String> = request.files.iter().map(|file| String::from_utf8_lossy(&file.content).into_owned()).collect();
        // Every ingestion's files share one gate, so concurrent uploads parse as many files at once
        // as there are cores, not as many as there are requests.
        let state: &AppState = self.state;
        let gate = &state.ingest_cpu;
        let mut parsing = futures::stream::iter(
            texts
                .into_iter()
                .map(move |text| gate.run_queued(move || (content_hash(text.as_bytes()), parse_file(&text, choice, Instant::now())))),
        )
        .buffered(parallelism);
        let mut parsed = Vec::with_capacity(self.total);
        while let Some(outcome) = parsing.next().await {
            let upload = match outcome {
                Ok((content_hash, outcome)) => ParsedUpload { content_hash, outcome: outcome.map_err(|error| error.to_string()) },
                Err(error) => {
                    tracing::error!(%error, "the SQL parser failed");
                    ParsedUpload { content_hash: String::new(), outcome: Err("the parser failed on this file".to_owned()) }
                }
            };
            parsed.push(upload);
            self.progress(Phase::Parsing, parsed.len(), &request.files[parsed.len() - 1].filename, 0).await;
        }
        self.timings[0] = step.elapsed();
        parsed
    }

    /// Step 2: resolves names across these files and what the project already holds, into one graph
    /// (with its search chunks) and one record per file.
    async fn resolve(&mut self, request: &IngestRequest, parsed: Vec<ParsedUpload>) -> Result<Vec<Prepared>, ApiError> {
        let step = Instant::now();
        let ok_files: Vec<(&str, &ParsedFile)> = request
            .files
            .iter()
            .zip(&parsed)
            .filter_map(|(file, parsed)| parsed.outcome.as_ref().ok().map(|parsed| (file.filename.as_str(), parsed)))
            .collect();
        let catalog = load_catalog(self.state, &self.project, &ok_files).await?;
        drop(ok_files);
        // Building the graphs is CPU work over every file: on the blocking pool, files in parallel.
        let files: Vec<(String, u64)> = request.files.iter().map(|file| (file.filename.clone(), file.content.len() as u64)).collect();
        let project = self.project.clone();
        let prepared = self
            .state
            .ingest_cpu
            .run_queued(move || prepare(&project, files, parsed, catalog))
            .await
            .map_err(|error| ApiError::internal("ingestion", error))?;
        self.timings[1] = step.elapsed();
        Ok(prepared)
    }

    /// Step 3: stores each file, all or nothing.
    async fn store(&mut self, prepared: Vec<Prepared>) -> Vec<FileResult> {
        let step = Instant::now();
        let mut results = Vec::with_capacity(self.total);
        let mut nodes_created = 0;
        for (index, file) in prepared.into_iter().enumerate() {
            let result = match file {
                Prepared::Failed { filename, error } => FileResult::failed(filename, error),
                Prepared::Ready { record, graph } => store_one(self.state, *record, graph).await,
            };
            nodes_created += result.nodes_created;
            self.progress(Phase::Storing, index + 1, &result.filename, nodes_created).await;
            results.push(result);
        }
        self.state.stats.invalidate().await;
        self.timings[2] = step.elapsed();
        results
    }

    /// Tells dashboards and the activity feed how it ended, and logs the time each step took.
    async fn finish(self, results: Vec<FileResult>) -> IngestionResult {
        let count = |status: &str| results.iter().filter(|result| result.status == status).count() as u64;
        let outcome = IngestionResult {
            ingestion_id: self.id.clone(),
            project_id: self.project.clone(),
            files_processed: count("processed"),
            files_failed: count("failed"),
            files_skipped_duplicate: count("skipped_duplicate"),
            total_nodes_created: results.iter().map(|result| result.nodes_created).sum(),
            total_edges_created: results.iter().map(|result| result.edges_created).sum(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            results,
        };
        self.announce_complete(&outcome, None).await;
        let [parse, resolve, store] = self.timings.map(|step| step.as_millis() as u64);
        tracing::info!(
            ingestion_id = %outcome.ingestion_id,
            project_id = %outcome.project_id,
            files_processed = outcome.files_processed,
            files_failed = outcome.files_failed,
            files_skipped_duplicate = outcome.files_skipped_duplicate,
            nodes_created = outcome.total_nodes_created,
            edges_created = outcome.total_edges_created,
            duration_ms = outcome.duration_ms,
            parse_ms = parse,
            resolve_ms = resolve,
            store_ms = store,
            "ingestion finished"
        );

        let status = if outcome.files_failed == 0 { EventStatus::Success } else { EventStatus::Error };
        let mut event = ActivityEvent::new(EventType::Ingestion, EventSource::System, "ingestion", status)
            .with_metadata("ingestion_id", outcome.ingestion_id.clone())
            .with_metadata("project_id", outcome.project_id.clone())
            .with_metadata("files_processed", outcome.files_processed)
            .with_metadata("files_failed", outcome.files_failed)
            .with_metadata("files_skipped_duplicate", outcome.files_skipped_duplicate)
            .with_metadata("nodes_created", outcome.total_nodes_created)
            .with_metadata(
                "message",
                format!(
                    "Ingested {} file(s) into {}: {} new nodes, {} new edges{}",
                    outcome.files_processed,
                    outcome.project_id,
                    outcome.total_nodes_created,
                    outcome.total_edges_created,
                    if outcome.files_failed > 0 { format!(", {} failed", outcome.files_failed) } else { String::new() }
                ),
            );
        if outcome.files_failed > 0 {
            event = event.with_metadata("error", "ingestion_file_failed");
        }
        event.latency_ms = Some(outcome.duration_ms as f64);
        self.state.activity.record(event).await;
        outcome
    }

    /// Ends an ingestion that could not go on (dashboards saw it start: they hear that it ended,
    /// and how); gives back the error for the caller.
    async fn fail(self, error: ApiError) -> ApiError {
        let detail = error.body().detail;
        let outcome = IngestionResult {
            ingestion_id: self.id.clone(),
            project_id: self.project.clone(),
            files_processed: 0,
            files_failed: self.total as u64,
            files_skipped_duplicate: 0,
            total_nodes_created: 0,
            total_edges_created: 0,
            duration_ms: self.started.elapsed().as_millis() as u64,
            results: Vec::new(),
        };
        self.announce_complete(&outcome, Some(&detail)).await;
        let event = ActivityEvent::new(EventType::Ingestion, EventSource::System, "ingestion", EventStatus::Error)
            .with_metadata("ingestion_id", self.id.clone())
            .with_metadata("error", error.code())
            .with_metadata("message", format!("Ingestion into {} failed: {detail}", self.project));
        self.state.activity.record(event).await;
        error
    }

    /// `ingestion_complete`, the same fields whichever way it ended.
    async fn announce_complete(&self, outcome: &IngestionResult, error: Option<&str>) {
        let status = if outcome.files_failed == 0 {
            "success"
        } else if outcome.files_processed > 0 {
            "partial"
        } else {
            "failed"
        };
        let mut complete = json!({
            "ingestion_id": outcome.ingestion_id,
            "project_id": outcome.project_id,
            "files_processed": outcome.files_processed,
            "files_failed": outcome.files_failed,
            "files_skipped_duplicate": outcome.files_skipped_duplicate,
            "total_nodes_created": outcome.total_nodes_created,
            "total_edges_created": outcome.total_edges_created,
            "duration_ms": outcome.duration_ms,
            "status": status,
        });
        if let Some(error) = error {
            complete["error"] = error.into();
        }
        announce(&*self.state.broadcaster, MessageType::IngestionComplete, complete).await;
    }
}

/// Builds each parsed file's graph, search chunks and record (CPU work: run on the blocking pool).
fn prepare(project: &str, files: Vec<(String, u64)>, parsed: Vec<ParsedUpload>, mut catalog: Catalog) -> Vec<Prepared> {
    let ok_files: Vec<(&str, &ParsedFile)> = files
        .iter()
        .zip(&parsed)
        .filter_map(|(file, parsed)| parsed.outcome.as_ref().ok().map(|parsed| (file.0.as_str(), parsed)))
        .collect();
    let mut graphs = build_graphs(&ok_files, &mut catalog).into_iter();
    drop(ok_files);
    files
        .into_iter()
        .zip(parsed)
        .map(|((filename, size_bytes), upload)| match upload.outcome {
            Err(error) => Prepared::Failed { filename, error },
            Ok(parsed) => {
                let mut graph = graphs.next().expect("one graph per parsed file");
                let file_id = uuid::Uuid::now_v7().to_string();
                graph.chunks = parsed
                    .chunks
                    .into_iter()
                    .enumerate()
                    .map(|(ordinal, draft)| IndexedChunk {
                        chunk: Chunk {
                            id: format!("{file_id}:{ordinal}"),
                            file_id: file_id.clone(),
                            filename: filename.clone(),
                            start_line: draft.start_line,
                            end_line: draft.end_line,
                            object: draft.object.as_ref().map(|name| catalog.resolve(name)),
                            statement_kind: draft.statement_kind,
                            text: draft.text,
                        },
                        terms: draft.terms,
                    })
                    .collect();
                let record = FileRecord {
                    id: file_id,
                    project_id: project.to_owned(),
                    filename,
                    content_hash: upload.content_hash,
                    dialect: parsed.dialect.name().to_owned(),
                    size_bytes,
                    ingested_at: crate::time::now(),
                    statements: parsed.statements,
                    nodes_created: 0,
                    edges_created: 0,
                    // Every one, in line order: the store keeps them all.
                    warnings: parsed.warnings,
                };
                Prepared::Ready { record: Box::new(record), graph }
            }
        })
        .collect()
}

/// Stores one file (with every warning); what happened to it (with the first warnings, and where
/// the rest are).
async fn store_one(state: &AppState, record: FileRecord, graph: FileGraph) -> FileResult {
    let mut result = FileResult {
        filename: record.filename.clone(),
        status: "processed".into(),
        error: None,
        nodes_created: 0,
        edges_created: 0,
        file_id: None,
        dialect: Some(record.dialect.clone()),
        statements: record.statements,
        warnings: record.warnings.iter().take(LISTED_WARNINGS).cloned().collect(),
        warnings_total: record.warnings.len() as u64,
        warnings_url: None,
    };
    match state.stores.lineage.store_file(&record, graph).await {
        Ok(StoredFile::Stored { nodes_created, edges_created }) => {
            result.file_id = Some(record.id);
            result.nodes_created = nodes_created;
            result.edges_created = edges_created;
        }
        Ok(StoredFile::Duplicate { existing_file_id }) => {
            // Its warnings are also the stored file's: the content is the same.
            result.status = "skipped_duplicate".into();
            result.file_id = Some(existing_file_id);
        }
        Err(error) => {
            tracing::warn!(filename = %record.filename, %error, "could not store an ingested file");
            result.status = "failed".into();
            result.error = Some(if error.is_transient() {
                "the store is unavailable; nothing of this file was kept, send it again".to_owned()
            } else {
                "the store failed; nothing of this file was kept".to_owned()
            });
        }
    }
    if let Some(file_id) = &result.file_id
        && result.warnings_total > result.warnings.len() as u64
    {
        result.warnings_url = Some(warnings_url(&record.project_id, file_id));
    }
    result
}

impl FileResult {
    /// A file that failed, with why.
    fn failed(filename: String, error: String) -> Self {
        FileResult {
            filename,
            status: "failed".into(),
            error: Some(error),
            nodes_created: 0,
            edges_created: 0,
            file_id: None,
            dialect: None,
            statements: 0,
            warnings: Vec::new(),
            warnings_total: 0,
            warnings_url: None,
        }
    }
}

/// What the project holds that these files may name: its objects, and the columns of the stored
/// objects the files refer to (for `SELECT *` and unqualified columns).
async fn load_catalog(state: &AppState, project: &str, files: &[(&str, &ParsedFile)]) -> Result<Catalog, ApiError> {
    let objects = state.stores.lineage.object_index(project).await?;
    let mut catalog = Catalog::new(objects.clone(), HashMap::new());
    let mut referenced = BTreeSet::new();
    // Objects whose columns are needed in order (an INSERT without a column list fills them by
    // position; a `*` expands to them).
    let mut ordered = BTreeSet::new();
    let mut note = |name: &Name| {
        referenced.insert(catalog.resolve(name));
    };
    for (_, parsed) in files {
        for link in &parsed.facts.links {
            for reference in [&link.source, &link.target] {
                match reference {
                    Ref::Object(name) | Ref::Column(name, _) => note(name),
                    Ref::AmbiguousColumn(names, _) => names.iter().for_each(&mut note),
                    Ref::Query(_) => {}
                }
            }
        }
        for wildcard in &parsed.facts.wildcards {
            note(&wildcard.source);
            ordered.insert(catalog.resolve(&wildcard.source));
        }
        for positional in &parsed.facts.positional {
            note(&positional.target);
            ordered.insert(catalog.resolve(&positional.target));
            for source in positional.outputs.iter().filter_map(|output| output.wildcard.as_ref()) {
                note(source);
                ordered.insert(catalog.resolve(source));
            }
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
    // The edges come in no particular order: a defined object's node lists its columns as declared.
    let ordered: Vec<String> = ordered.into_iter().collect();
    for node in state.stores.lineage.get_nodes(project, &ordered).await? {
        if let Some(declared) = node.properties.get("columns").and_then(|columns| columns.as_array()) {
            let declared: Vec<String> = declared.iter().filter_map(|column| column.as_str()).map(str::to_lowercase).collect();
            let known = columns.entry(node.id.clone()).or_default();
            let extra: Vec<String> = known.iter().filter(|column| !declared.contains(column)).cloned().collect();
            *known = declared.into_iter().chain(extra).collect();
        }
    }
    catalog = Catalog::new(objects, columns);
    Ok(catalog)
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
}
