//! The checks of the SQL targets (`sql_ingest`, `sql_chains`): what `parse_file` promises about one
//! file, and the invariants every store relies on in one file's graph.

use std::collections::BTreeSet;

use tributary_core::lineage::dialect::DialectChoice;
use tributary_core::lineage::parse::ParsedFile;
use tributary_core::lineage::{EdgeKind, FileGraph, NodeKind, edge_id, limits};

/// The promises of `parse_file` about one file.
pub fn check_parsed(sql: &str, choice: DialectChoice, file: &ParsedFile) {
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
    for warning in &file.warnings {
        assert!(warning.line >= 1 && u64::from(warning.line) <= last_line, "warning on line {} of {last_line}: {warning:?}", warning.line);
        // `abridge` adds an ellipsis (3 bytes).
        assert!(warning.message.len() <= limits::WARNING_BYTES + 3, "warning of {} bytes", warning.message.len());
    }
    // `recovered` counts the statements of routine bodies too (a T-SQL procedure without `GO` runs
    // to the end of the file, so one statement may hold hundreds); each is read from tokens of its
    // own, so there are never more than the file has bytes.
    assert!(file.recovered as usize <= sql.len(), "{} recovered in {} bytes", file.recovered, sql.len());
    for object in &file.facts.objects {
        assert!(!object.name.key.is_empty(), "an object with an empty key: {object:?}");
    }
}

/// The invariants of one file's graph.
pub fn check_graph(graph: &FileGraph) {
    let ids: BTreeSet<&str> = graph.nodes.iter().map(|node| node.id.as_str()).collect();
    assert_eq!(ids.len(), graph.nodes.len(), "node ids are unique");
    let mut edge_ids = BTreeSet::new();
    for edge in &graph.edges {
        assert!(ids.contains(edge.source.as_str()), "edge {} starts at no node", edge.id);
        assert!(ids.contains(edge.target.as_str()), "edge {} ends at no node", edge.id);
        // A table or column filling itself, and a key to its own table, are the only self-loops.
        if edge.source == edge.target {
            let allowed = edge.kind == EdgeKind::ReadsFrom || (edge.kind == EdgeKind::References && !edge.source.contains('#'));
            assert!(allowed, "self-loop {}", edge.id);
        }
        assert_eq!(edge.id, edge_id(&edge.source, edge.kind, &edge.target), "edge id");
        assert!(edge_ids.insert(edge.id.as_str()), "duplicate edge {}", edge.id);
    }
    for node in &graph.nodes {
        // Temporary tables, table variables and a script's other work tables are never objects.
        assert!(!node.id.starts_with(['#', '@']), "a transient became a node: {}", node.id);
        assert_eq!(node.kind == NodeKind::Query, node.id.starts_with("query:"), "query ids: {}", node.id);
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
