//! The `tributary` command line.
//!
//! `tributary ingest PATHS...` walks files and folders for SQL, checks each file locally (text, not
//! empty, within the size limit), and sends them in batches to a running node (`--server`, the
//! default being the local node) or ingests them straight into an embedded database file (`--db`),
//! with a progress bar, then prints a summary. It exits with 1 when any file failed, 2 on bad usage.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tributary_core::knowledge::{FileResult, IngestFile, IngestRequest, IngestionResult};

/// Files in one request.
const BATCH_FILES: usize = 50;
/// Bytes in one request: below the node's default limit and the 4 MB the Lambda function takes.
const BATCH_BYTES: usize = 3_500_000;
/// A file larger than this is refused locally (the node's default `INGEST_MAX_FILE_BYTES`).
const MAX_FILE_BYTES: u64 = tributary_core::lineage::limits::MAX_FILE_BYTES as u64;

#[derive(Debug, Parser)]
#[command(name = "tributary", version, about = "Tributary's command line")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ingest SQL files and folders into the lineage knowledge base.
    Ingest(IngestArgs),
}

#[derive(Debug, clap::Args)]
struct IngestArgs {
    /// Files and folders (folders are walked for files with the extensions below).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// A running Tributary to send the files to.
    #[arg(long, conflicts_with = "db", default_value = "http://127.0.0.1:8000")]
    server: String,
    /// Ingest into this SQLite database file instead (no server needed).
    #[arg(long)]
    db: Option<PathBuf>,
    /// The SQL dialect, or `auto` to detect it per file.
    #[arg(long, default_value = "auto")]
    dialect: String,
    /// The project the files belong to.
    #[arg(long, default_value = "default")]
    project: String,
    /// File extensions collected from folders (comma-separated).
    #[arg(long, default_value = "sql,ddl,prc,vw,tab", value_delimiter = ',')]
    extensions: Vec<String>,
    /// Seconds to wait for the server's answer to one batch.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
}

/// Runs the command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Ingest(args) => ingest(args).await,
    }
}

/// A file found on disk, and what became of it.
struct Found {
    path: PathBuf,
    content: Vec<u8>,
    /// Set when the file is refused before it is sent.
    refused: Option<String>,
    result: Option<FileResult>,
}

/// The files under `paths`, in a stable order.
fn collect(paths: &[PathBuf], extensions: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let metadata = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if metadata.is_file() {
            files.push(path.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = walkdir::WalkDir::new(path)
            .follow_links(true)
            .into_iter()
            .filter_entry(|entry| entry.depth() == 0 || !entry.file_name().to_string_lossy().starts_with('.'))
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_file())
            .map(|entry| entry.into_path())
            .filter(|path| {
                let extension = path.extension().map(|extension| extension.to_string_lossy().to_lowercase()).unwrap_or_default();
                extensions.iter().any(|wanted| wanted.trim_start_matches('.').eq_ignore_ascii_case(&extension))
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Why a file cannot be ingested, checked before it is sent.
fn refusal(content: &[u8], size: u64) -> Option<String> {
    if size > MAX_FILE_BYTES {
        return Some(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    match std::str::from_utf8(content) {
        Err(_) => Some("not UTF-8 text (a binary file?)".into()),
        Ok(text) if text.contains('\0') => Some("contains NUL bytes (a binary file?)".into()),
        Ok(text) if text.trim().is_empty() => Some("empty".into()),
        Ok(_) => None,
    }
}

/// Where the batches go.
enum Target {
    Server { client: reqwest::Client, url: String },
    Database(tributary_core::http::AppState),
}

impl Target {
    async fn open(args: &IngestArgs) -> anyhow::Result<Target> {
        match &args.db {
            Some(path) => {
                let settings = tributary_core::config::Settings::from_args(["--store", "sqlite", "--db", &path.to_string_lossy()])?;
                let state =
                    tributary_core::http::AppState::standalone(settings).await.with_context(|| format!("opening {}", path.display()))?;
                Ok(Target::Database(state))
            }
            None => {
                let client = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(args.timeout))
                    .build()?;
                Ok(Target::Server { client, url: format!("{}/api/v1/ingest", args.server.trim_end_matches('/')) })
            }
        }
    }

    async fn send(&self, request: IngestRequest) -> anyhow::Result<IngestionResult> {
        match self {
            Target::Database(state) => {
                tributary_core::knowledge::ingest(state, request).await.map_err(|error| anyhow::anyhow!("{}", error.body().detail))
            }
            Target::Server { client, url } => {
                let files: Vec<_> = request
                    .files
                    .iter()
                    .map(|file| json!({"filename": file.filename, "content": String::from_utf8_lossy(&file.content)}))
                    .collect();
                let body = json!({"project_id": request.project_id, "dialect": request.dialect, "files": files});
                let response = client.post(url).json(&body).send().await.with_context(|| format!("cannot reach {url}"))?;
                let status = response.status();
                if !status.is_success() {
                    let text = response.text().await.unwrap_or_default();
                    let detail = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|value| Some(format!("{} {}", value["detail"].as_str()?, value["errors"])))
                        .unwrap_or(text);
                    bail!("{url} answered {status}: {detail}");
                }
                Ok(response.json().await.context("reading the ingestion result")?)
            }
        }
    }
}

async fn ingest(args: IngestArgs) -> anyhow::Result<i32> {
    let started = Instant::now();
    // Bad usage is found before any file is read or sent.
    if tributary_core::lineage::dialect::DialectChoice::parse(&args.dialect).is_none() {
        eprintln!("error: unknown dialect {:?}; use one of: {}", args.dialect, tributary_core::lineage::dialect::DIALECT_NAMES);
        return Ok(2);
    }
    if let Err(problem) = tributary_core::knowledge::validate_project(&args.project) {
        eprintln!("error: --project: {}", problem.message);
        return Ok(2);
    }
    let paths = collect(&args.paths, &args.extensions)?;
    if paths.is_empty() {
        bail!("no SQL files under {} (extensions: {})", display_paths(&args.paths), args.extensions.join(", "));
    }
    let mut found = Vec::with_capacity(paths.len());
    for path in paths {
        let content = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let refused = refusal(&content, content.len() as u64);
        found.push(Found { path, content, refused, result: None });
    }
    let target = Target::open(&args).await?;

    let total_bytes: u64 = found.iter().filter(|file| file.refused.is_none()).map(|file| file.content.len() as u64).sum();
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{bar:30}] {bytes}/{total_bytes} {msg}").expect("a valid template").progress_chars("=> "),
    );
    let sendable: Vec<usize> = (0..found.len()).filter(|&index| found[index].refused.is_none()).collect();
    for batch in batches(&sendable, &found) {
        let files = batch
            .iter()
            .map(|&index| IngestFile { filename: display_name(&found[index].path), content: found[index].content.clone() })
            .collect();
        bar.set_message(display_name(&found[batch[0]].path));
        let request = IngestRequest { project_id: args.project.clone(), dialect: args.dialect.clone(), files };
        match target.send(request).await {
            Ok(outcome) if outcome.results.len() == batch.len() => {
                for (&index, result) in batch.iter().zip(outcome.results) {
                    found[index].result = Some(result);
                }
            }
            Ok(outcome) => {
                let reason = format!("the server answered {} results for {} files", outcome.results.len(), batch.len());
                for &index in &batch {
                    found[index].refused = Some(reason.clone());
                }
            }
            Err(error) => {
                let unreachable = error.chain().any(|cause| cause.downcast_ref::<reqwest::Error>().is_some_and(reqwest::Error::is_connect));
                for &index in &batch {
                    found[index].refused = Some(format!("{error:#}"));
                }
                if unreachable {
                    // No server: the other batches would fail alike.
                    for file in found.iter_mut().filter(|file| file.refused.is_none() && file.result.is_none()) {
                        file.refused = Some("not sent: the server cannot be reached".to_owned());
                    }
                    break;
                }
            }
        }
        bar.inc(batch.iter().map(|&index| found[index].content.len() as u64).sum());
    }
    bar.finish_and_clear();
    // Where a file's other warnings are: on the server, or on a node serving the database file.
    let warnings_at = match &args.db {
        Some(path) => WarningsAt::Database(path.clone()),
        None => WarningsAt::Server(args.server.trim_end_matches('/').to_owned()),
    };
    Ok(report(&found, &args.project, &warnings_at, started.elapsed()))
}

/// Where the warnings an answer does not list can be read.
enum WarningsAt {
    /// The server the files went to (its base URL).
    Server(String),
    /// The database file they went into (a node serving it answers).
    Database(PathBuf),
}

impl WarningsAt {
    /// How to read them, given the route's path from the answer.
    fn locate(&self, path: &str) -> String {
        match self {
            WarningsAt::Server(base) => format!("{base}{path}"),
            WarningsAt::Database(db) => format!("GET {path} on a node serving {}", db.display()),
        }
    }
}

/// Groups file indexes into requests of at most `BATCH_FILES` files and `BATCH_BYTES` bytes.
fn batches(indexes: &[usize], found: &[Found]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for &index in indexes {
        let size = found[index].content.len();
        let full = batches.last().is_none_or(|batch| batch.len() >= BATCH_FILES || bytes + size > BATCH_BYTES);
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        batches.last_mut().expect("just pushed").push(index);
        bytes += size;
    }
    batches
}

fn display_name(path: &Path) -> String {
    path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string())
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Warning lines printed in the summary, over all files.
const PRINTED_WARNINGS: usize = 20;

/// Prints the summary; returns the exit code.
fn report(found: &[Found], project: &str, warnings_at: &WarningsAt, elapsed: Duration) -> i32 {
    let results: Vec<&FileResult> = found.iter().filter_map(|file| file.result.as_ref()).collect();
    let count = |status: &str| results.iter().filter(|result| result.status == status).count();
    let failed: Vec<(&Found, String)> = found
        .iter()
        .filter_map(|file| match (&file.refused, &file.result) {
            (Some(reason), _) => Some((file, reason.clone())),
            (None, Some(result)) if result.status == "failed" => Some((file, result.error.clone().unwrap_or_default())),
            _ => None,
        })
        .collect();
    let nodes: u64 = results.iter().map(|result| result.nodes_created).sum();
    let edges: u64 = results.iter().map(|result| result.edges_created).sum();
    let answered: Vec<(&Found, &FileResult)> = found.iter().filter_map(|file| file.result.as_ref().map(|result| (file, result))).collect();
    // An answer lists a file's first warnings, with their total and where to read them all.
    let warnings: Vec<(&Found, &tributary_core::lineage::IngestWarning)> =
        answered.iter().flat_map(|(file, result)| result.warnings.iter().map(move |warning| (*file, warning))).collect();
    let warnings_total: u64 = answered.iter().map(|(_, result)| result.warnings_total.max(result.warnings.len() as u64)).sum();

    println!("Ingested {} file(s) into project {project:?} in {:.1} s", found.len(), elapsed.as_secs_f64());
    println!(
        "  files:    {} processed, {} skipped (same content already ingested), {} failed",
        count("processed"),
        count("skipped_duplicate"),
        failed.len()
    );
    println!("  nodes:    {nodes} new");
    println!("  edges:    {edges} new");
    println!("  warnings: {warnings_total}");
    for (file, warning) in warnings.iter().take(PRINTED_WARNINGS) {
        println!("    {}:{}: {}", file.path.display(), warning.line, warning.message);
    }
    let printed = warnings.len().min(PRINTED_WARNINGS) as u64;
    if warnings_total > printed {
        println!("    … and {} more", warnings_total - printed);
    }
    for (file, result) in &answered {
        if let Some(path) = &result.warnings_url {
            println!("    all {} warnings of {}: {}", result.warnings_total, file.path.display(), warnings_at.locate(path));
        }
    }
    for (file, reason) in &failed {
        println!("  failed:   {}: {reason}", file.path.display());
    }
    i32::from(!failed.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_refused_locally() {
        assert_eq!(refusal(b"  \n", 3).as_deref(), Some("empty"));
        assert!(refusal(&[0xff, 0xfe, 0x00], 3).unwrap().contains("binary"));
        assert!(refusal(b"SELECT 1", MAX_FILE_BYTES + 1).unwrap().contains("larger"));
        assert_eq!(refusal(b"SELECT 1;", 9), None);
    }

    #[test]
    fn warnings_are_located_on_the_server_or_the_database() {
        let path = "/api/v1/files/f1/warnings?project_id=default";
        assert_eq!(WarningsAt::Server("http://node:8000".into()).locate(path), format!("http://node:8000{path}"));
        assert_eq!(WarningsAt::Database(PathBuf::from("kb.db")).locate(path), format!("GET {path} on a node serving kb.db"));
    }

    #[test]
    fn batches_respect_file_and_byte_limits() {
        let file = |size: usize| Found { path: PathBuf::from("x.sql"), content: vec![b'a'; size], refused: None, result: None };
        let found: Vec<Found> = (0..120).map(|_| file(10)).chain([file(BATCH_BYTES), file(10)]).collect();
        let indexes: Vec<usize> = (0..found.len()).collect();
        let sizes: Vec<usize> = batches(&indexes, &found).iter().map(Vec::len).collect();
        assert_eq!(sizes, [50, 50, 20, 1, 1]);
    }
}
