//! The lineage knowledge base: SQL in, a lineage graph and searchable statement chunks out.
//!
//! The pipeline, one module per step:
//!
//! * [`dialect`]: the dialects users name, and detection for `auto`.
//! * [`split`]: a file cut into statements with their line ranges (T-SQL `GO` batches and statements
//!   without `;`, MySQL `DELIMITER` sections, `pg_dump` data left out).
//! * [`parse`]: each statement read, bounded in size, nesting and time: [`routine`]s header and body,
//!   the rest with `sqlparser`, and what it refuses by [`recover`] from its [`tokens`]; only a
//!   statement nothing can read is a warning with its line.
//! * [`extract`]: facts from the syntax tree: objects defined, sources read and written, column
//!   lineage with expressions, keys, calls, standalone queries; [`transient`]s settled per file.
//! * [`resolve`]: names resolved against everything the project knows, into the graph a file adds.
//! * [`walk`]: upstream and downstream lineage from a node.
//! * [`model`]: nodes, edges, chunks, files: the graph's vocabulary.
//! * [`search`]: identifier-aware tokenizing and BM25 scoring, shared by both backends.

pub mod dialect;
pub mod extract;
pub mod model;
pub mod parse;
#[cfg(test)]
mod peer;
pub mod recover;
pub mod resolve;
pub mod routine;
pub mod search;
pub mod split;
pub mod tokens;
pub mod transient;
pub mod walk;

#[cfg(test)]
mod tests;

pub use model::*;

/// Resolves the files of one ingestion together: each file's names are resolved against the
/// `catalog` (what is stored) plus everything any of these files defines. Returns each file's graph.
/// The files are resolved on as many threads as there are cores (the catalog is only read then).
pub fn build_graphs(files: &[(&str, &parse::ParsedFile)], catalog: &mut resolve::Catalog) -> Vec<FileGraph> {
    for (_, parsed) in files {
        catalog.learn(&parsed.facts);
    }
    let catalog = &*catalog;
    let workers = std::thread::available_parallelism().map_or(1, |cores| cores.get()).min(files.len()).max(1);
    let share = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = files
            .chunks(share)
            .map(|part| {
                scope.spawn(move || part.iter().map(|(name, parsed)| resolve::file_graph(&parsed.facts, name, catalog)).collect::<Vec<_>>())
            })
            .collect();
        parts.into_iter().flat_map(|part| part.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// The bounds that keep huge or hostile input from costing more than it should.
pub mod limits {
    use std::time::Duration;

    /// Largest file accepted (larger: 413).
    pub const MAX_FILE_BYTES: usize = 5 * 1024 * 1024;
    /// Largest request body on the ingestion routes, all files together (larger: 413).
    pub const MAX_UPLOAD_BYTES: usize = 25 * 1024 * 1024;
    /// Files in one request.
    pub const MAX_FILES_PER_REQUEST: usize = 500;
    /// Statements in one file.
    pub const MAX_STATEMENTS_PER_FILE: usize = 100_000;
    /// A longer statement is skipped with a warning.
    pub const MAX_STATEMENT_BYTES: usize = 1024 * 1024;
    /// Parser recursion limit: deeper nesting is a warning, never a stack overflow.
    pub const MAX_NESTING: usize = 64;
    /// Parsing one file may take this long; then the file fails.
    pub const FILE_TIME_BUDGET: Duration = Duration::from_secs(20);
    /// A chunk keeps at most this much of its statement's text.
    pub const CHUNK_TEXT_BYTES: usize = 16 * 1024;
    /// Bytes per warning.
    pub const WARNING_BYTES: usize = 300;
    /// Parts of a name kept (`server.database.schema.object`; more are dropped from the front).
    pub const MAX_NAME_PARTS: usize = 4;
    /// An object node keeps at most this much of its definition.
    pub const DEFINITION_BYTES: usize = 4 * 1024;
}
