//! Statement coverage on SQL the team did not write: every statement sqlglot's own dialect tests
//! hand to its parser (its sdist's `tests/dialects`, read at run time by
//! `tests/peer/sqlglot_statements.py` from the pinned copy `scripts/lib/peer.sh` installs), read by
//! Tributary one statement per file in the matching dialect, beside whether sqlglot itself parses
//! it (the dumper asks the same pinned sqlglot).
//!
//! sqlglot's tests also parse bare expressions (`CAST(x AS INT)`, `x !~ 'y'`), which no script holds
//! as a statement: an input counts as a statement when it begins with a statement's word (or `(`),
//! and the expressions are counted apart. A statement counts as read when it gives no warning:
//! parsed by `sqlparser`, read by the recovering path, or known to carry no lineage. sqlglot's count
//! includes the statements it only wraps as an opaque `Command`, which it does not raise on.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, ensure};
use serde_json::Value;
use tributary_core::lineage::dialect::{Dialect, DialectChoice};
use tributary_core::lineage::parse::parse_file;

/// sqlglot's name for a dialect, and Tributary's dialect for it.
const DIALECTS: &[(&str, Dialect)] = &[
    ("tsql", Dialect::TSql),
    ("postgres", Dialect::PostgreSql),
    ("mysql", Dialect::MySql),
    ("snowflake", Dialect::Snowflake),
    ("bigquery", Dialect::BigQuery),
    ("redshift", Dialect::Redshift),
    ("sqlite", Dialect::Sqlite),
    ("duckdb", Dialect::DuckDb),
    ("hive", Dialect::Hive),
    ("spark", Dialect::Databricks),
    ("databricks", Dialect::Databricks),
    ("clickhouse", Dialect::ClickHouse),
    ("generic", Dialect::Generic),
];

/// Words a statement begins with, in any of these dialects.
const STATEMENT_WORDS: &[&str] = &[
    "SELECT",
    "WITH",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "CREATE",
    "ALTER",
    "DROP",
    "TRUNCATE",
    "COPY",
    "UNLOAD",
    "CALL",
    "EXEC",
    "EXECUTE",
    "REPLACE",
    "UPSERT",
    "VALUES",
    "TABLE",
    "FROM",
    "SHOW",
    "DESCRIBE",
    "DESC",
    "EXPLAIN",
    "PIVOT",
    "UNPIVOT",
    "SET",
    "USE",
    "GRANT",
    "REVOKE",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "DECLARE",
    "IF",
    "WHILE",
    "CACHE",
    "UNCACHE",
    "REFRESH",
    "OPTIMIZE",
    "VACUUM",
    "ANALYZE",
    "COMMENT",
    "LOCK",
    "UNLOCK",
    "INSTALL",
    "ATTACH",
    "DETACH",
    "EXPORT",
    "IMPORT",
    "PRAGMA",
    "LOAD",
    "PUT",
    "GET",
    "REMOVE",
    "LIST",
    "RENAME",
    "MSCK",
    "SUMMARIZE",
    "PRINT",
    "RAISERROR",
    "THROW",
    "RETURN",
    "KILL",
    "DBCC",
    "BACKUP",
    "RESTORE",
    "DENY",
    "UNDROP",
    "LET",
    "FOR",
    "REPEAT",
    "LOOP",
    "ASSERT",
];

/// Whether an input is a statement (not a bare expression): its first word is a statement's, and
/// not a function's name (`REPLACE(a, b)`), or it is a parenthesized query.
fn is_statement(sql: &str) -> bool {
    let sql = sql.trim_start();
    if sql.starts_with('(') {
        return true;
    }
    let word_end = sql.find(|character: char| !character.is_alphanumeric() && character != '_').unwrap_or(sql.len());
    let word = sql[..word_end].to_ascii_uppercase();
    STATEMENT_WORDS.contains(&word.as_str()) && !sql[word_end..].starts_with('(')
}

#[derive(Default)]
struct Tally {
    expressions: usize,
    statements: usize,
    sqlglot: usize,
    read: usize,
    recovered: usize,
}

/// Prints the coverage section of the report.
/// A statement on one line, cut to a readable length.
fn one_line(sql: &str) -> String {
    let line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

pub fn print_coverage() -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".tools/peer-venv/bin/python");
    let sdist = root.join(".tools/peer/sqlglot-30.30.0");
    let output = std::process::Command::new(&python)
        .arg(root.join("tests/peer/sqlglot_statements.py"))
        .arg(&sdist)
        .output()
        .with_context(|| format!("running {} (scripts/bench installs the peer suites)", python.display()))?;
    ensure!(output.status.success(), "the dumper failed: {}", String::from_utf8_lossy(&output.stderr));
    let statements: Vec<Value> = serde_json::from_slice(&output.stdout)?;

    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    let started = Instant::now();
    for statement in &statements {
        let name = statement["dialect"].as_str().unwrap_or_default();
        let Some((name, dialect)) = DIALECTS.iter().find(|(known, _)| *known == name) else { continue };
        let sql = statement["sql"].as_str().unwrap_or_default();
        let tally = tallies.entry(name).or_default();
        if !is_statement(sql) {
            tally.expressions += 1;
            continue;
        }
        tally.statements += 1;
        tally.sqlglot += usize::from(statement["sqlglot_parses"].as_bool() == Some(true));
        match parse_file(sql, DialectChoice::Fixed(*dialect), Instant::now()) {
            Ok(parsed) if parsed.warnings.is_empty() => {
                tally.read += 1;
                tally.recovered += usize::from(parsed.recovered > 0);
            }
            // What is left unread, for whoever reads the figures: on stderr, so the table stays a table.
            Ok(parsed) => eprintln!("unread [{name}] {}: {}", one_line(sql), parsed.warnings[0].message),
            Err(error) => eprintln!("unread [{name}] {}: {error}", one_line(sql)),
        }
    }
    let elapsed = started.elapsed();

    let percent = |part: usize, whole: usize| part as f64 * 100.0 / whole.max(1) as f64;
    println!("## Statement coverage\n");
    println!(
        "The {} statements sqlglot 30.30.0's own dialect tests parse (its sdist's `tests/dialects`, read at run time; the {} bare \
         expressions they also parse, such as `CAST(x AS INT)`, left apart), each read by Tributary as a file of its own in the \
         matching dialect, beside sqlglot itself on the same statements. Read: no warning (parsed, recovered, or known to carry no \
         lineage). Run in {:.1} s.\n",
        tallies.values().map(|tally| tally.statements).sum::<usize>(),
        tallies.values().map(|tally| tally.expressions).sum::<usize>(),
        elapsed.as_secs_f64()
    );
    println!(
        "| Dialect (sqlglot's name) | Statements | sqlglot parses | Tributary reads | of which recovered |\n| --- | --- | --- | --- | --- |"
    );
    let mut total = Tally::default();
    for (name, tally) in &tallies {
        println!(
            "| {name} | {} | {:.1} % | {:.1} % | {:.1} % |",
            tally.statements,
            percent(tally.sqlglot, tally.statements),
            percent(tally.read, tally.statements),
            percent(tally.recovered, tally.statements)
        );
        total.statements += tally.statements;
        total.sqlglot += tally.sqlglot;
        total.read += tally.read;
        total.recovered += tally.recovered;
    }
    println!(
        "| all | {} | {:.1} % | {:.1} % | {:.1} % |\n",
        total.statements,
        percent(total.sqlglot, total.statements),
        percent(total.read, total.statements),
        percent(total.recovered, total.statements)
    );
    Ok(())
}
