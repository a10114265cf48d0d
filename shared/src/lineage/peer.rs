//! sqllineage's own test suite as a conformance bar: its cases (SQL, the expected source and target
//! tables, the expected column lineage) are read at test time from the pinned sdist that
//! `scripts/lib/peer.sh` installs into `.tools/peer` (`tests/peer/sqllineage_cases.py` dumps them),
//! run through Tributary's extraction, and compared the way sqllineage compares its own results.
//!
//! The bar: at least 90 % of the table cases and 80 % of the column cases pass, and every case that
//! fails is listed with its reason in `docs/lineage.md` (so the list stays true both ways).
//!
//! How Tributary's graph answers sqllineage's questions: a table is *read* when something takes data
//! from it (a table, view, routine or standalone query `READS_FROM`/`DERIVES` it), and *written*
//! when it is filled from anything, defined, or written by a statement with nothing to read
//! (`INSERT … VALUES`). Sources are the tables read and not written, targets those written and not
//! read, and a table that fills itself is both (sqllineage's intermediate tables are neither).
//! Column lineage is every path from a column nothing feeds to a column that feeds nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde::Deserialize;

use super::dialect::{Dialect, DialectChoice};
use super::model::{EdgeKind, NodeKind};
use super::parse::parse_file;
use super::resolve::Catalog;

/// One case of sqllineage's suite, as `tests/peer/sqllineage_cases.py` dumps it.
#[derive(Debug, Deserialize)]
struct Case {
    id: String,
    kind: String,
    dialect: String,
    sql: String,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    column_lineage: Vec<(String, String)>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, Vec<String>>>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The cases, or `None` when the peer suites are not installed (and the test command did not ask
/// for them: it sets `TRIBUTARY_REQUIRE_PEER_SUITES=1`).
fn cases() -> Option<Vec<Case>> {
    let root = root();
    let python = root.join(".tools/peer-venv/bin/python");
    let sdist = root.join(".tools/peer/sqllineage-1.5.9");
    if !python.exists() || !sdist.exists() {
        assert!(
            std::env::var("TRIBUTARY_REQUIRE_PEER_SUITES").as_deref() != Ok("1"),
            "the peer suites are not installed: run `source scripts/lib/tools.sh; source scripts/lib/peer.sh; ensure_peer_suites`"
        );
        eprintln!("skipped: sqllineage's suite is not installed in .tools (scripts/test installs it)");
        return None;
    }
    let output = Command::new(python).arg(root.join("tests/peer/sqllineage_cases.py")).arg(&sdist).output().expect("the dumper runs");
    assert!(output.status.success(), "the dumper failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).expect("the dump is JSON"))
}

/// The dialect a user of each sqlfluff dialect would upload as.
fn dialect(name: &str) -> DialectChoice {
    let dialect = match name {
        "tsql" => Dialect::TSql,
        "hive" => Dialect::Hive,
        "sparksql" | "databricks" => Dialect::Databricks,
        "bigquery" => Dialect::BigQuery,
        "snowflake" => Dialect::Snowflake,
        "redshift" => Dialect::Redshift,
        "postgres" | "greenplum" | "materialize" => Dialect::PostgreSql,
        "mysql" | "mariadb" => Dialect::MySql,
        "duckdb" => Dialect::DuckDb,
        "sqlite" => Dialect::Sqlite,
        "clickhouse" => Dialect::ClickHouse,
        // ansi, oracle, athena, db2, vertica, exasol, teradata: the permissive generic grammar.
        _ => Dialect::Generic,
    };
    DialectChoice::Fixed(dialect)
}

/// What Tributary extracted from a case, in sqllineage's terms.
#[derive(Debug, PartialEq, Eq)]
struct Lineage {
    sources: BTreeSet<String>,
    targets: BTreeSet<String>,
    columns: BTreeSet<(String, String)>,
}

fn lineage(case: &Case) -> Lineage {
    let parsed = parse_file(&case.sql, dialect(&case.dialect), Instant::now()).expect("no case takes 20 s");
    // The metadata a test gives is what a project already holds: tables with these columns.
    let metadata = case.metadata.clone().unwrap_or_default();
    let objects = metadata.keys().map(|table| (table.to_lowercase(), NodeKind::Table));
    let columns: HashMap<String, Vec<String>> = metadata.iter().map(|(table, columns)| (table.to_lowercase(), columns.clone())).collect();
    let mut catalog = Catalog::new(objects, columns);
    let graph = super::build_graphs(&[("case.sql", &parsed)], &mut catalog).remove(0);
    let kinds: HashMap<&str, NodeKind> = graph.nodes.iter().map(|node| (node.id.as_str(), node.kind)).collect();
    let is_table =
        |id: &str| matches!(kinds.get(id), Some(NodeKind::Table | NodeKind::View | NodeKind::MaterializedView | NodeKind::External));
    let flows = |kind: EdgeKind| matches!(kind, EdgeKind::ReadsFrom | EdgeKind::Derives);

    let (mut read, mut written, mut self_filled) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    // sqllineage reads a procedure statement by statement: what its body reads is a source and what
    // it writes a target, even when another of its statements writes or reads it too.
    let (mut read_by_routine, mut written_by_routine) = (BTreeSet::new(), BTreeSet::new());
    let is_routine = |id: &str| kinds.get(id) == Some(&NodeKind::FunctionOrProcedure);
    for edge in graph.edges.iter().filter(|edge| flows(edge.kind)) {
        if is_table(&edge.target) {
            read.insert(edge.target.clone());
            if is_routine(&edge.source) {
                read_by_routine.insert(edge.target.clone());
            }
        }
        if is_table(&edge.source) {
            written.insert(edge.source.clone());
            if is_routine(&edge.target) {
                written_by_routine.insert(edge.source.clone());
            }
        }
        if edge.source == edge.target && is_table(&edge.source) {
            self_filled.insert(edge.source.clone());
        }
    }
    for node in &graph.nodes {
        if matches!(node.kind, NodeKind::Table | NodeKind::View | NodeKind::MaterializedView) && node.file.is_some() {
            written.insert(node.id.clone());
        }
    }
    for write in &parsed.facts.writes {
        written.insert(catalog.resolve(&write.target));
    }
    let sources = read.difference(&written).chain(&self_filled).chain(&read_by_routine).cloned().collect();
    let targets = written.difference(&read).chain(&self_filled).chain(&written_by_routine).cloned().collect();

    // Column lineage: paths from columns nothing feeds to columns that feed nothing.
    let mut feeds: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut fed = BTreeSet::new();
    let mut columns = BTreeSet::new();
    for edge in graph.edges.iter().filter(|edge| flows(edge.kind) && edge.source.contains('#') && edge.target.contains('#')) {
        if edge.source == edge.target {
            // A column filled from itself is a path of its own.
            columns.insert((edge.source.replace('#', "."), edge.source.replace('#', ".")));
            continue;
        }
        feeds.entry(edge.target.as_str()).or_default().push(edge.source.as_str());
        fed.insert(edge.source.as_str());
    }
    for &start in feeds.keys().filter(|column| !fed.contains(*column)) {
        let (mut stack, mut seen) = (vec![start], BTreeSet::from([start]));
        while let Some(column) = stack.pop() {
            match feeds.get(column) {
                Some(next) => {
                    for &next in next {
                        if seen.insert(next) {
                            stack.push(next);
                        }
                    }
                }
                None => {
                    columns.insert((start.replace('#', "."), column.replace('#', ".")));
                }
            }
        }
    }
    Lineage { sources, targets, columns }
}

fn lower(names: &[String]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_lowercase()).collect()
}

/// The case ids `docs/lineage.md` lists as failing, under its "Cases that fail" heading.
fn documented_failures() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(root().join("docs/lineage.md")).expect("docs/lineage.md");
    let section = doc.split("### Cases that fail").nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- `"))
        .filter_map(|line| line.split('`').next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn sqllineage_suite_passes_within_the_bar_and_its_failures_are_documented() {
    let Some(cases) = cases() else { return };
    let mut failed: BTreeMap<String, String> = BTreeMap::new();
    let (mut tables, mut columns) = ((0, 0), (0, 0));
    for case in &cases {
        let found = lineage(case);
        let (passed, diff) = match case.kind.as_str() {
            "table" => {
                let expected = (lower(&case.sources), lower(&case.targets));
                let ok = (&found.sources, &found.targets) == (&expected.0, &expected.1);
                tables = (tables.0 + usize::from(ok), tables.1 + 1);
                (ok, format!("expected sources {:?} targets {:?}, found {:?} {:?}", expected.0, expected.1, found.sources, found.targets))
            }
            _ => {
                let expected: BTreeSet<(String, String)> =
                    case.column_lineage.iter().map(|(source, target)| (source.to_lowercase(), target.to_lowercase())).collect();
                let ok = found.columns == expected;
                columns = (columns.0 + usize::from(ok), columns.1 + 1);
                (ok, format!("expected {expected:?}, found {:?}", found.columns))
            }
        };
        if !passed {
            failed.insert(case.id.clone(), format!("{} [{}] {:?}: {diff}", case.kind, case.dialect, case.sql));
        }
    }
    let report: String = failed.iter().map(|(id, why)| format!("{id}\n    {why}\n")).collect();
    let rate = |(passed, total): (usize, usize)| passed as f64 * 100.0 / total.max(1) as f64;
    println!(
        "{report}\ntable cases: {} of {} ({:.1} %); column cases: {} of {} ({:.1} %)",
        tables.0,
        tables.1,
        rate(tables),
        columns.0,
        columns.1,
        rate(columns)
    );
    assert!(rate(tables) >= 90.0 && rate(columns) >= 80.0, "below the bar:\n{report}");
    let documented = documented_failures();
    let failing: BTreeSet<String> = failed.keys().cloned().collect();
    let undocumented: Vec<&String> = failing.difference(&documented).collect();
    let passing_now: Vec<&String> = documented.difference(&failing).collect();
    assert!(undocumented.is_empty(), "failing cases docs/lineage.md does not list:\n{undocumented:#?}\n{report}");
    assert!(passing_now.is_empty(), "cases docs/lineage.md lists as failing that pass: {passing_now:#?}");
}
