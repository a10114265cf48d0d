//! Fuzz target `sql_ingest`: arbitrary bytes through the SQL side of an ingestion, as
//! `knowledge::ingestion::ingest` runs it once a request is validated: each file parsed with
//! `lineage::parse::parse_file` (dialect detection for `auto`, statement splitting, the bounded
//! parser, fact extraction, search chunks), then all files resolved together by
//! `lineage::build_graphs`. Only the store is left out (the `http_bodies` target covers it).
//!
//! Input: the first byte picks the dialect (`auto` or a fixed one); the rest is the SQL, decoded as
//! UTF-8 lossily, cut at NUL bytes into up to four files (a real upload with a NUL is refused before
//! parsing, so the byte is free to mean "next file", which exercises cross-file name resolution).
//!
//! Checked, besides "no panic" (libFuzzer aborts on any panic, even one a thread would catch):
//! the bounds `lineage::limits` promises (warning and chunk text), the line ranges of chunks and
//! warnings, and the graph invariants every store relies on: one graph per file, every edge's
//! endpoints are nodes of its graph, self-loops only where a table or column fills itself or a key
//! refers to its own table, edge ids as `edge_id` makes them, every column node belongs to a node of
//! its graph through a CONTAINS edge, no transient (`#t`, `@t`) is a node, and query nodes are
//! `query:…`.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tributary_core::lineage::dialect::{Dialect, DialectChoice};
use tributary_core::lineage::parse::{ParsedFile, parse_file};
use tributary_core::lineage::resolve::Catalog;
use tributary_core::lineage::build_graphs;
use tributary_fuzz::sql::{check_graph, check_parsed};

/// The choices the first byte picks from (`Auto` twice as often as any fixed dialect, since
/// detection is what most uploads use).
const CHOICES: [DialectChoice; 15] = [
    DialectChoice::Auto,
    DialectChoice::Auto,
    DialectChoice::Fixed(Dialect::Generic),
    DialectChoice::Fixed(Dialect::Ansi),
    DialectChoice::Fixed(Dialect::PostgreSql),
    DialectChoice::Fixed(Dialect::MySql),
    DialectChoice::Fixed(Dialect::TSql),
    DialectChoice::Fixed(Dialect::Snowflake),
    DialectChoice::Fixed(Dialect::BigQuery),
    DialectChoice::Fixed(Dialect::Redshift),
    DialectChoice::Fixed(Dialect::Sqlite),
    DialectChoice::Fixed(Dialect::DuckDb),
    DialectChoice::Fixed(Dialect::Hive),
    DialectChoice::Fixed(Dialect::Databricks),
    DialectChoice::Fixed(Dialect::ClickHouse),
];

const MAX_FILES: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, sql)) = data.split_first() else { return };
    let choice = CHOICES[usize::from(selector) % CHOICES.len()];
    let text = String::from_utf8_lossy(sql);
    let texts: Vec<&str> = text.splitn(MAX_FILES, '\0').collect();

    let mut parsed: Vec<(String, ParsedFile)> = Vec::new();
    for (index, sql) in texts.iter().enumerate() {
        // A file refused whole (too slow, too many statements) is a failed file, not a bug.
        let Ok(file) = parse_file(sql, choice, Instant::now()) else { continue };
        check_parsed(sql, choice, &file);
        parsed.push((format!("f{index}.sql"), file));
    }

    let files: Vec<(&str, &ParsedFile)> = parsed.iter().map(|(name, file)| (name.as_str(), file)).collect();
    let graphs = build_graphs(&files, &mut Catalog::default());
    assert_eq!(graphs.len(), files.len(), "one graph per parsed file");
    for graph in &graphs {
        check_graph(graph);
    }
});
