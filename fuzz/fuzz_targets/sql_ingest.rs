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
//! the bounds `lineage::limits` promises (warnings, chunk text), the line ranges of chunks and
//! warnings, and the graph invariants every store relies on: one graph per file, every edge's
//! endpoints are nodes of its graph, no self-loops, edge ids as `edge_id` makes them, and every
//! column node belongs to a node of its graph through a CONTAINS edge.

#![no_main]

use std::collections::BTreeSet;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tributary_core::lineage::dialect::{Dialect, DialectChoice};
use tributary_core::lineage::parse::{ParsedFile, parse_file};
use tributary_core::lineage::resolve::Catalog;
use tributary_core::lineage::{EdgeKind, FileGraph, NodeKind, build_graphs, edge_id, limits};

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

/// The promises of `parse_file` about one file.
fn check_parsed(sql: &str, choice: DialectChoice, file: &ParsedFile) {
    if let DialectChoice::Fixed(dialect) = choice {
        assert_eq!(file.dialect, dialect, "a fixed dialect is kept");
    }
    assert_eq!(file.chunks.len(), file.statements as usize, "one chunk per statement");
    // Lines are counted from 1; a file has at most one more line than it has line breaks (counting
    // `\r` too, so the bound holds whichever convention the tokenizer follows).
    let last_line = 1 + sql.bytes().filter(|byte| matches!(byte, b'\n' | b'\r')).count() as u64;
    for chunk in &file.chunks {
        assert!(chunk.start_line >= 1 && chunk.start_line <= chunk.end_line, "chunk lines {}..{}", chunk.start_line, chunk.end_line);
        assert!(u64::from(chunk.end_line) <= last_line, "chunk ends on line {} of {last_line}", chunk.end_line);
        // `abridge` keeps at most the limit and adds an ellipsis (3 bytes).
        assert!(chunk.text.len() <= limits::CHUNK_TEXT_BYTES + 3, "chunk text of {} bytes", chunk.text.len());
    }
    assert!(file.warnings.len() <= limits::MAX_WARNINGS + 1, "{} warnings", file.warnings.len());
    for warning in &file.warnings {
        assert!(warning.line >= 1 && u64::from(warning.line) <= last_line, "warning on line {} of {last_line}: {warning:?}", warning.line);
        // The last may be the "… and N more warnings" line, which is short anyway.
        assert!(warning.message.len() <= limits::WARNING_BYTES + 3, "warning of {} bytes", warning.message.len());
    }
    for object in &file.facts.objects {
        assert!(!object.name.key.is_empty(), "an object with an empty key: {object:?}");
    }
}

/// The invariants of one file's graph.
fn check_graph(graph: &FileGraph) {
    let ids: BTreeSet<&str> = graph.nodes.iter().map(|node| node.id.as_str()).collect();
    assert_eq!(ids.len(), graph.nodes.len(), "node ids are unique");
    let mut edge_ids = BTreeSet::new();
    for edge in &graph.edges {
        assert!(ids.contains(edge.source.as_str()), "edge {} starts at no node", edge.id);
        assert!(ids.contains(edge.target.as_str()), "edge {} ends at no node", edge.id);
        assert_ne!(edge.source, edge.target, "self-loop {}", edge.id);
        assert_eq!(edge.id, edge_id(&edge.source, edge.kind, &edge.target), "edge id");
        assert!(edge_ids.insert(edge.id.as_str()), "duplicate edge {}", edge.id);
    }
    for node in graph.nodes.iter().filter(|node| node.kind == NodeKind::Column) {
        let parent = node.parent.as_deref().unwrap_or_else(|| panic!("column {} has no parent", node.id));
        assert!(ids.contains(parent), "column {} belongs to {parent}, which is not a node", node.id);
        assert!(
            edge_ids.contains(edge_id(parent, EdgeKind::Contains, &node.id).as_str()),
            "column {} has no CONTAINS edge from {parent}",
            node.id
        );
    }
}
