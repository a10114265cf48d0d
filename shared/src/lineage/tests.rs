//! The pipeline on fixture SQL (`tests/fixtures/sql`), without a store: exact lineage sets, column
//! lineage and warnings. The same fixtures go through the HTTP API in the black-box tests.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::dialect::{Dialect, DialectChoice};
use super::model::{Direction, EdgeKind, GraphEdge, GraphNode, NodeKind};
use super::parse::{ParsedFile, parse_file};
use super::resolve::Catalog;
use super::walk::walk;

/// The merged graph of some files, as a store would hold it.
#[derive(Default)]
struct Graph {
    nodes: BTreeMap<String, GraphNode>,
    edges: BTreeMap<String, GraphEdge>,
    parsed: Vec<(String, ParsedFile)>,
}

impl Graph {
    fn ingest(files: &[(&str, &str)], choice: DialectChoice) -> Graph {
        let mut graph = Graph::default();
        for (name, sql) in files {
            graph.parsed.push((name.to_string(), parse_file(sql, choice, Instant::now()).expect("fixture parses")));
        }
        let named: Vec<(&str, &ParsedFile)> = graph.parsed.iter().map(|(name, parsed)| (name.as_str(), parsed)).collect();
        let graphs = super::build_graphs(&named, &mut Catalog::default());
        for file_graph in graphs {
            for node in file_graph.nodes {
                // The store's merge rules (see `LineageStore`).
                match graph.nodes.get_mut(&node.id) {
                    Some(existing) if existing.kind != NodeKind::External && node.kind == NodeKind::External => {}
                    Some(existing) if existing.kind == NodeKind::Column => {
                        for (key, value) in node.properties {
                            existing.properties.entry(key).or_insert(value);
                        }
                        existing.file = existing.file.take().or(node.file);
                        existing.line = existing.line.or(node.line);
                    }
                    _ => {
                        graph.nodes.insert(node.id.clone(), node);
                    }
                }
            }
            for edge in file_graph.edges {
                graph.edges.entry(edge.id.clone()).or_insert(edge);
            }
        }
        graph
    }

    fn fixture(folder: &str, choice: DialectChoice) -> Graph {
        let root = format!("{}/../tests/fixtures/sql/{folder}", env!("CARGO_MANIFEST_DIR"));
        let mut paths: Vec<_> = std::fs::read_dir(&root).unwrap().map(|entry| entry.unwrap().path()).collect();
        paths.sort();
        let files: Vec<(String, String)> = paths
            .iter()
            .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(path).unwrap()))
            .collect();
        let borrowed: Vec<(&str, &str)> = files.iter().map(|(name, sql)| (name.as_str(), sql.as_str())).collect();
        Graph::ingest(&borrowed, choice)
    }

    fn lineage(&self, start: &str, direction: Direction) -> BTreeSet<String> {
        let edges_of = |ids: Vec<String>, direction: Direction| {
            let found: Vec<GraphEdge> = self
                .edges
                .values()
                .filter(|edge| match direction {
                    Direction::Upstream => ids.contains(&edge.source),
                    Direction::Downstream => ids.contains(&edge.target),
                })
                .cloned()
                .collect();
            async move { Ok::<_, ()>(found) }
        };
        let subgraph = futures_lite_block_on(walk(start, &[direction], 10, 10_000, edges_of)).unwrap();
        subgraph.nodes.into_iter().filter(|id| id != start).collect()
    }

    fn kind(&self, id: &str) -> Option<NodeKind> {
        self.nodes.get(id).map(|node| node.kind)
    }

    fn has_edge(&self, source: &str, kind: EdgeKind, target: &str) -> bool {
        self.edges.contains_key(&super::model::edge_id(source, kind, target))
    }
}

/// Runs a future that never waits on I/O (the in-memory edge lookups above).
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| name.to_string()).collect()
}

#[test]
fn warehouse_layers_have_exact_table_lineage() {
    let graph = Graph::fixture("warehouse", DialectChoice::Auto);
    assert_eq!(
        graph.lineage("gold.top_customers", Direction::Upstream),
        set(&["gold.customer_revenue", "staging.customers", "staging.orders", "raw.customers", "raw.orders"])
    );
    assert_eq!(
        graph.lineage("raw.orders", Direction::Downstream),
        set(&["staging.orders", "staging.order_lines", "gold.customer_revenue", "gold.top_customers", "gold.daily_sales"])
    );
    assert_eq!(
        graph.lineage("raw.customers", Direction::Downstream),
        set(&["staging.customers", "gold.customer_revenue", "gold.top_customers"])
    );
    assert_eq!(graph.lineage("staging.order_lines", Direction::Upstream), set(&["raw.order_items", "staging.orders", "raw.orders"]));
    assert_eq!(graph.kind("gold.daily_sales"), Some(NodeKind::MaterializedView));
    assert_eq!(graph.kind("staging.customers"), Some(NodeKind::View));
    assert_eq!(graph.kind("staging.orders"), Some(NodeKind::Table));
    // The CTE is resolved to what it reads, never a node of its own.
    assert_eq!(graph.kind("totals"), None);
    assert!(graph.has_edge("gold.customer_revenue", EdgeKind::ReadsFrom, "staging.orders"));
    assert!(graph.has_edge("staging.customers", EdgeKind::Derives, "raw.customers"));
}

#[test]
fn warehouse_columns_are_traced_through_aliases_ctes_and_views() {
    let graph = Graph::fixture("warehouse", DialectChoice::Auto);
    assert!(graph.has_edge("staging.orders#order_amount", EdgeKind::Derives, "raw.orders#amount"));
    assert!(graph.has_edge("staging.orders#order_date", EdgeKind::Derives, "raw.orders#ordered_at"));
    assert!(graph.has_edge("staging.customers#customer_name", EdgeKind::Derives, "raw.customers#name"));
    assert!(graph.has_edge("gold.customer_revenue#revenue", EdgeKind::ReadsFrom, "staging.orders#order_amount"));
    assert!(graph.has_edge("gold.customer_revenue#customer_name", EdgeKind::ReadsFrom, "staging.customers#customer_name"));
    assert!(graph.has_edge("gold.top_customers#revenue", EdgeKind::Derives, "gold.customer_revenue#revenue"));
    assert_eq!(
        graph.lineage("gold.top_customers#customer_name", Direction::Upstream),
        set(&["gold.customer_revenue#customer_name", "staging.customers#customer_name", "raw.customers#name"])
    );
    assert!(graph.has_edge("staging.order_lines#line_total", EdgeKind::Derives, "raw.order_items#quantity"));
    assert!(graph.has_edge("staging.order_lines#line_total", EdgeKind::Derives, "raw.order_items#unit_price"));
    assert!(graph.has_edge("raw.orders", EdgeKind::Contains, "raw.orders#amount"));
    assert_eq!(
        graph.nodes["raw.orders#amount"].properties.get("data_type"),
        Some(&serde_json::json!("NUMERIC(12,2)")),
        "{:?}",
        graph.nodes.get("raw.orders#amount")
    );
}

#[test]
fn foreign_keys_are_references_between_tables_and_columns() {
    let graph = Graph::fixture("warehouse", DialectChoice::Auto);
    assert!(graph.has_edge("raw.orders", EdgeKind::References, "raw.customers"));
    assert!(graph.has_edge("raw.orders#customer_id", EdgeKind::References, "raw.customers#customer_id"));
    assert!(graph.has_edge("raw.order_items", EdgeKind::References, "raw.orders"));
    // Keys are structure, not data flow.
    assert!(!graph.lineage("raw.customers", Direction::Downstream).contains("raw.orders"));
}

#[test]
fn a_statement_that_does_not_parse_is_a_warning_with_its_line() {
    let graph = Graph::fixture("warehouse", DialectChoice::Auto);
    let (_, staging) = graph.parsed.iter().find(|(name, _)| name == "02_staging.sql").unwrap();
    assert_eq!(staging.dialect, Dialect::PostgreSql, "`::` casts give PostgreSQL away");
    let (_, gold) = graph.parsed.iter().find(|(name, _)| name == "03_gold.sql").unwrap();
    assert_eq!(gold.warnings.len(), 1, "{:?}", gold.warnings);
    assert_eq!(gold.warnings[0].line, 29, "{:?}", gold.warnings);
    assert_eq!(gold.statements, 5);
}

#[test]
fn tsql_procedures_views_and_go_batches() {
    let graph = Graph::fixture("tsql", DialectChoice::Auto);
    let (_, parsed) = &graph.parsed[0];
    assert_eq!(parsed.dialect, Dialect::TSql);
    assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
    assert_eq!(graph.lineage("dbo.vbigorders", Direction::Upstream), set(&["dbo.vcustomerorders", "dbo.customers", "dbo.orders"]));
    // The procedure that fills it is upstream, and what the procedure reads and calls.
    assert_eq!(graph.lineage("dbo.salessummary", Direction::Upstream), set(&["dbo.orders", "dbo.usp_refreshsales", "dbo.usp_logrun"]));
    assert_eq!(graph.lineage("dbo.usp_refreshsales", Direction::Upstream), set(&["dbo.orders", "dbo.usp_logrun"]));
    assert!(graph.has_edge("dbo.salessummary", EdgeKind::ReadsFrom, "dbo.orders"));
    assert_eq!(
        graph.edges[&super::model::edge_id("dbo.salessummary", EdgeKind::ReadsFrom, "dbo.orders")].properties["via"],
        "dbo.usp_refreshsales"
    );
    assert!(graph.has_edge("dbo.usp_refreshsales", EdgeKind::Calls, "dbo.usp_logrun"));
    assert_eq!(graph.kind("dbo.usp_logrun"), Some(NodeKind::FunctionOrProcedure));
    assert_eq!(graph.lineage("dbo.customerdim", Direction::Upstream), set(&["dbo.customers"]));
    assert_eq!(graph.kind("dbo.customerdim"), Some(NodeKind::External));
    assert_eq!(graph.lineage("dbo.ordersarchive", Direction::Upstream), set(&["dbo.orders"]));
    assert_eq!(graph.kind("dbo.ordersarchive"), Some(NodeKind::Table));
    assert!(graph.has_edge("dbo.orders", EdgeKind::References, "dbo.customers"));
    assert!(graph.has_edge("dbo.vbigorders#total", EdgeKind::Derives, "dbo.vcustomerorders#total"));
    assert!(graph.has_edge("dbo.vcustomerorders#total", EdgeKind::Derives, "dbo.orders#total"));
    assert_eq!(graph.nodes["dbo.customers"].name, "dbo.Customers");
    assert_eq!(
        graph.lineage("dbo.orders", Direction::Downstream),
        set(&["dbo.vcustomerorders", "dbo.vbigorders", "dbo.salessummary", "dbo.usp_refreshsales", "dbo.ordersarchive"])
    );
}

#[test]
fn names_resolve_across_files_and_schemas() {
    let graph = Graph::ingest(
        &[
            ("a.sql", "CREATE TABLE sales.orders (id INT, amount INT);"),
            ("b.sql", "CREATE VIEW report AS SELECT id, amount FROM orders;"),
            ("c.sql", "CREATE VIEW report2 AS SELECT * FROM db.sales.orders;"),
        ],
        DialectChoice::Fixed(Dialect::Generic),
    );
    assert_eq!(graph.lineage("report", Direction::Upstream), set(&["sales.orders"]));
    assert_eq!(graph.lineage("report2", Direction::Upstream), set(&["sales.orders"]));
    // `SELECT *` over an object with known columns is traced column by column.
    assert!(graph.has_edge("report2#amount", EdgeKind::Derives, "sales.orders#amount"));
    assert!(graph.has_edge("report#amount", EdgeKind::Derives, "sales.orders#amount"));
}

#[test]
fn subqueries_joins_unions_and_ambiguous_columns() {
    let graph = Graph::ingest(
        &[(
            "q.sql",
            "CREATE TABLE a (id INT, x INT);
             CREATE TABLE b (id INT, y INT);
             CREATE VIEW v AS
               SELECT s.id, s.total, y
               FROM (SELECT id, x + 1 AS total FROM a) s JOIN b ON b.id = s.id
               WHERE s.id IN (SELECT id FROM c);
             CREATE VIEW u AS SELECT id FROM a UNION ALL SELECT id FROM b;",
        )],
        DialectChoice::Fixed(Dialect::Generic),
    );
    assert_eq!(graph.lineage("v", Direction::Upstream), set(&["a", "b", "c"]));
    assert_eq!(graph.kind("c"), Some(NodeKind::External));
    assert!(graph.has_edge("v#total", EdgeKind::Derives, "a#x"));
    assert!(graph.has_edge("v#id", EdgeKind::Derives, "a#id"));
    // `y` is unqualified over `s` and `b`: only `b` has it.
    assert!(graph.has_edge("v#y", EdgeKind::Derives, "b#y"));
    assert!(graph.has_edge("u#id", EdgeKind::Derives, "a#id") && graph.has_edge("u#id", EdgeKind::Derives, "b#id"));
}

#[test]
fn ctes_are_scoped_like_sql_scopes_them() {
    let graph = Graph::ingest(
        &[(
            "ctes.sql",
            "CREATE VIEW v AS WITH orders AS (SELECT id FROM orders WHERE id > 0) SELECT id FROM orders;
             CREATE VIEW w AS SELECT x.a FROM (WITH t AS (SELECT a FROM s) SELECT a FROM t) x JOIN t ON t.a = x.a;",
        )],
        DialectChoice::Fixed(Dialect::Generic),
    );
    assert_eq!(graph.lineage("v", Direction::Upstream), set(&["orders"]), "a CTE's body reads the table it shadows");
    assert_eq!(graph.lineage("w", Direction::Upstream), set(&["s", "t"]), "a CTE hides nothing outside its query");
}

#[test]
fn an_update_through_an_alias_fills_the_aliased_table() {
    let graph = Graph::ingest(
        &[("u.sql", "UPDATE t SET t.total = s.total FROM dbo.Orders t JOIN dbo.Staging s ON s.id = t.id")],
        DialectChoice::Fixed(Dialect::TSql),
    );
    assert_eq!(graph.lineage("dbo.orders", Direction::Upstream), set(&["dbo.staging"]));
    assert_eq!(graph.kind("t"), None, "the alias is not a node");
}

/// One statement per dialect, each with syntax only that dialect reads, and the lineage it must give.
#[test]
fn every_dialect_parses_its_own_syntax() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("ansi", "CREATE VIEW v AS SELECT a FROM s.t FETCH FIRST 5 ROWS ONLY", "v", &["s.t"]),
        ("postgresql", "CREATE TABLE t AS SELECT a::int AS a FROM s WHERE b ILIKE 'x%'", "t", &["s"]),
        ("postgresql", "CREATE MATERIALIZED VIEW m AS SELECT DISTINCT ON (a) a, b FROM s ORDER BY a, b", "m", &["s"]),
        ("mysql", "INSERT INTO `db`.`t` (a) SELECT `a` FROM `db`.`s` LIMIT 10", "db.t", &["db.s"]),
        ("tsql", "INSERT INTO [dbo].[t] ([a]) SELECT TOP 10 [a] FROM [dbo].[s] WITH (NOLOCK)", "dbo.t", &["dbo.s"]),
        (
            "snowflake",
            "CREATE OR REPLACE TRANSIENT TABLE t AS SELECT v:a::string AS a FROM s QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1",
            "t",
            &["s"],
        ),
        ("bigquery", "CREATE TABLE `proj.ds.t` AS SELECT SAFE_CAST(a AS INT64) AS a FROM `proj.ds.s`", "proj.ds.t", &["proj.ds.s"]),
        ("redshift", "CREATE TABLE t DISTKEY (a) SORTKEY (a) AS SELECT a FROM s", "t", &["s"]),
        ("sqlite", "INSERT OR REPLACE INTO t (a) SELECT a FROM s", "t", &["s"]),
        ("duckdb", "CREATE TABLE t AS SELECT a FROM s JOIN read_parquet('x.parquet') p USING (a)", "t", &["s"]),
        ("hive", "INSERT OVERWRITE TABLE t SELECT a FROM s", "t", &["s"]),
        (
            "databricks",
            "CREATE OR REPLACE TABLE `main`.`gold`.`t` AS SELECT a FROM `main`.`silver`.`s` TIMESTAMP AS OF '2024-01-01'",
            "main.gold.t",
            &["main.silver.s"],
        ),
        ("clickhouse", "CREATE TABLE t ENGINE = MergeTree ORDER BY a AS SELECT a FROM s FINAL", "t", &["s"]),
        ("generic", "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN UPDATE SET b = s.b", "t", &["s"]),
    ];
    for (dialect, sql, target, sources) in cases {
        let choice = DialectChoice::parse(dialect).unwrap();
        let graph = Graph::ingest(&[("case.sql", sql)], choice);
        let (_, parsed) = &graph.parsed[0];
        assert!(parsed.warnings.is_empty(), "{dialect}: {sql}\n{:?}", parsed.warnings);
        assert_eq!(graph.lineage(target, Direction::Upstream), set(sources), "{dialect}: {sql}");
    }
}

/// Every prefix of the fixtures (statements cut anywhere, strings and comments left open) and the
/// fixtures with wide characters spliced in go through the whole pipeline without a panic.
#[test]
fn truncated_and_garbled_sql_never_panics() {
    for folder in ["warehouse", "tsql"] {
        let root = format!("{}/../tests/fixtures/sql/{folder}", env!("CARGO_MANIFEST_DIR"));
        for entry in std::fs::read_dir(&root).unwrap() {
            let sql = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let cuts: Vec<usize> = sql.char_indices().map(|(at, _)| at).step_by(13).collect();
            for &cut in &cuts {
                for text in [sql[..cut].to_owned(), format!("{}日本\u{0}語 `[\"{}", &sql[..cut], &sql[cut..])] {
                    for choice in [DialectChoice::Auto, DialectChoice::Fixed(Dialect::TSql), DialectChoice::Fixed(Dialect::PostgreSql)] {
                        let parsed = parse_file(&text, choice, Instant::now()).expect("no time limit is reached");
                        let _ = super::build_graphs(&[("f.sql", &parsed)], &mut Catalog::default());
                    }
                }
            }
        }
    }
}

/// What a realistic script (`tests/fixtures/sql/real/*.sql`, shaped like SSMS "Generate Scripts",
/// `pg_dump`, `mysqldump`, dbt and warehouse load procedures) must yield, as its `.expect.json`
/// states it: each expectation checked against the graph, every miss listed.
fn real_script_misses(script: &str) -> (Vec<String>, usize, Vec<super::model::IngestWarning>) {
    let root = format!("{}/../tests/fixtures/sql/real", env!("CARGO_MANIFEST_DIR"));
    let sql = std::fs::read_to_string(format!("{root}/{script}.sql")).unwrap();
    let expect: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/{script}.expect.json")).unwrap()).unwrap();
    let choice = DialectChoice::parse(expect["dialect"].as_str().unwrap()).unwrap();
    let filename = format!("{script}.sql");
    let graph = Graph::ingest(&[(&filename, &sql)], choice);
    let list = |field: &str| expect[field].as_array().cloned().unwrap_or_default();
    let text = |value: &serde_json::Value| value.as_str().unwrap().to_owned();
    let reads = |source: &str, kind: EdgeKind, target: &str| graph.has_edge(source, kind, target);
    let flows = |source: &str, target: &str| reads(source, EdgeKind::ReadsFrom, target) || reads(source, EdgeKind::Derives, target);
    let mut misses = Vec::new();
    let mut checked = 0;
    let mut check = |ok: bool, what: String| {
        checked += 1;
        if !ok {
            misses.push(what);
        }
    };
    for pair in list("objects") {
        let (name, kind) = (text(&pair[0]), text(&pair[1]));
        let found = graph.kind(&name);
        check(found.map(|found| found.as_str()) == Some(kind.as_str()), format!("object {name} is a {kind} (found {found:?})"));
    }
    for pair in list("flows") {
        let (target, source) = (text(&pair[0]), text(&pair[1]));
        check(flows(&target, &source), format!("flow {target} <- {source}"));
    }
    for pair in list("routine_reads") {
        let (routine, table) = (text(&pair[0]), text(&pair[1]));
        check(reads(&routine, EdgeKind::ReadsFrom, &table), format!("{routine} reads {table}"));
    }
    for pair in list("routine_writes") {
        let (routine, table) = (text(&pair[0]), text(&pair[1]));
        check(reads(&table, EdgeKind::ReadsFrom, &routine), format!("{routine} writes {table}"));
    }
    for pair in list("calls") {
        let (caller, callee) = (text(&pair[0]), text(&pair[1]));
        check(reads(&caller, EdgeKind::Calls, &callee), format!("{caller} calls {callee}"));
    }
    for pair in list("references") {
        let (table, referenced) = (text(&pair[0]), text(&pair[1]));
        check(reads(&table, EdgeKind::References, &referenced), format!("{table} references {referenced}"));
    }
    for pair in list("columns") {
        let id = format!("{}#{}", text(&pair[0]), text(&pair[1]));
        check(graph.nodes.contains_key(&id), format!("column {id}"));
    }
    for flow in list("column_flows") {
        let target = format!("{}#{}", text(&flow[0]), text(&flow[1]));
        let source = format!("{}#{}", text(&flow[2]), text(&flow[3]));
        check(flows(&target, &source), format!("column flow {target} <- {source}"));
    }
    let squash = |text: &str| text.split_whitespace().collect::<String>().to_lowercase();
    for expression in list("expressions") {
        let id = format!("{}#{}", text(&expression[0]), text(&expression[1]));
        let fragment = squash(&text(&expression[2]));
        let found = graph.nodes.get(&id).and_then(|node| node.properties.get("expression")).and_then(|value| value.as_str()).map(squash);
        check(
            found.as_ref().is_some_and(|found| found.contains(&fragment)),
            format!("expression of {id} has {fragment:?} (found {found:?})"),
        );
    }
    for query in list("queries") {
        let id = super::resolve::query_id(&filename, query[0].as_u64().unwrap() as u32);
        for table in query[1].as_array().unwrap() {
            check(reads(&id, EdgeKind::ReadsFrom, &text(table)), format!("{id} reads {}", text(table)));
        }
    }
    for name in list("absent") {
        let name = text(&name);
        check(!graph.nodes.contains_key(&name), format!("{name} is not an object"));
    }
    let warnings = graph.parsed[0].1.warnings.clone();
    (misses, checked, warnings)
}

#[test]
fn realistic_scripts_yield_everything_they_state() {
    let root = format!("{}/../tests/fixtures/sql/real", env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|entry| entry.unwrap().file_name().to_str()?.strip_suffix(".sql").map(str::to_owned))
        .collect();
    scripts.sort();
    let mut report = String::new();
    let mut failed = false;
    for script in &scripts {
        let (misses, checked, warnings) = real_script_misses(script);
        report.push_str(&format!("\n{script}: {} of {checked} expectations met, {} warnings\n", checked - misses.len(), warnings.len()));
        for miss in &misses {
            report.push_str(&format!("  miss: {miss}\n"));
        }
        for warning in &warnings {
            report.push_str(&format!("  warning line {}: {}\n", warning.line, warning.message));
        }
        failed |= !misses.is_empty();
    }
    println!("{report}");
    assert!(!failed, "{report}");
}
