//! Fuzz target `sql_chains`: statements with long chains of operators and deep nesting, which
//! libFuzzer's byte mutations never grow on their own (an input of a few hundred bytes here becomes
//! statements of up to a megabyte). `sqlparser` nests a chain as deep as it is long, so these are the
//! inputs that once overflowed a parser thread's stack and aborted the node (issue 14: `SELECT 1`
//! and 40,000 `::int`).
//!
//! Input: the first byte picks the dialect (as in `sql_ingest`); then each group of four bytes adds
//! a piece to the statement being built: an operator (one of [`LINKS`]), how many times it repeats
//! (two bytes, up to 65,535) and what wraps the chain (nothing, parentheses, a `CASE`, a subquery, a
//! routine's body, a `WITH` …). Every piece is one more statement of the file, so chains of several
//! kinds meet in one parse. The same checks as `sql_ingest` apply, and the file must be read to its
//! end.

#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use tributary_core::lineage::build_graphs;
use tributary_core::lineage::dialect::{Dialect, DialectChoice};
use tributary_core::lineage::parse::parse_file;
use tributary_core::lineage::resolve::Catalog;
use tributary_fuzz::sql::{check_graph, check_parsed};

const DIALECTS: [Dialect; 9] = [
    Dialect::Generic,
    Dialect::PostgreSql,
    Dialect::MySql,
    Dialect::TSql,
    Dialect::Snowflake,
    Dialect::BigQuery,
    Dialect::Databricks,
    Dialect::DuckDb,
    Dialect::Sqlite,
];

/// What can extend a chain: every kind of operator `sqlparser` loops over (infix, postfix, set
/// operations, subscripts and paths), and tokens around them.
const LINKS: &[&str] = &[
    "+1", "-1", "*2", "/2", "%2", "||'a'", "::int", "::text[]", " << 1", " >> 1", "->1", "->>'a'", " #> '{a}'", " #>> '{a}'", " @> a", " <@ a",
    " ? 'a'", " ILIKE 'a'", " LIKE 'a'", " NOT LIKE 'a'", " RLIKE 'a'", " REGEXP 'a'", " SIMILAR TO 'a'", " XOR 1", " DIV 2", " MOD 2",
    " AT TIME ZONE 'UTC'", " COLLATE x", " IS NULL", " IS NOT NULL", " IS DISTINCT FROM 1", " AND a = 1", " OR a = 1", " = 1",
    " <> 1", " <= 1", " IN (1)", " NOT IN (1)", " BETWEEN 1 AND 2", "[1]", "[1:2]", ":a", ".a", " & 1", " | 1", " ^ 1", " <=> 1",
    " UNION SELECT 1", " UNION ALL SELECT 1", " EXCEPT SELECT 1", " INTERSECT SELECT 1", " MINUS SELECT 1", " ~ 'a'", " !~ 'a'",
    " && a", " -|- a", " OVERLAPS a", " MEMBER OF (a)", " ESCAPE 'x'", " OPERATOR(+) 1", ",1", " JOIN t ON 1=1", " GLOB 'a'", " MATCH 'a'",
];

/// How a chain is wrapped: `{}` is the chain.
const WRAPPERS: &[&str] = &[
    "SELECT 1{} FROM t;",
    "SELECT (1{}) FROM t;",
    "SELECT CASE WHEN 1{} THEN 1 END FROM t;",
    "SELECT * FROM t WHERE a = (SELECT 1{} FROM u);",
    "INSERT INTO t SELECT 1{} FROM u;",
    "CREATE VIEW v AS SELECT 1{} AS a FROM t;",
    "WITH c AS (SELECT 1{} AS a FROM t) INSERT INTO d SELECT a FROM c;",
    "UPDATE t SET a = 1{} FROM u;",
    "CREATE PROCEDURE p AS\nSELECT 1{} FROM t\n",
    "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1{}; END $$ LANGUAGE plpgsql;",
    "SELECT f(1{}) FROM t;",
    "SELECT {}",
];

/// Statements in one input, and bytes per chain (a statement may be 1 MiB; the parse budget for a
/// file is 20 s, and this keeps one input well within it).
const MAX_PIECES: usize = 6;
const MAX_CHAIN_BYTES: usize = 512 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, program)) = data.split_first() else { return };
    let dialect = DIALECTS[usize::from(selector) % DIALECTS.len()];
    let mut sql = String::new();
    for piece in program.chunks_exact(4).take(MAX_PIECES) {
        let link = LINKS[usize::from(piece[0]) % LINKS.len()];
        let repeat = usize::from(u16::from_le_bytes([piece[1], piece[2]])).min(MAX_CHAIN_BYTES / link.len());
        let wrapper = WRAPPERS[usize::from(piece[3]) % WRAPPERS.len()];
        sql.push_str(&wrapper.replace("{}", &link.repeat(repeat)));
        sql.push('\n');
    }
    if sql.is_empty() {
        return;
    }
    let choice = DialectChoice::Fixed(dialect);
    // A file refused whole (too slow, too many statements) is a failed file, not a bug.
    let Ok(file) = parse_file(&sql, choice, Instant::now()) else { return };
    check_parsed(&sql, choice, &file);
    let graphs = build_graphs(&[("chains.sql", &file)], &mut Catalog::default());
    check_graph(&graphs[0]);
});
