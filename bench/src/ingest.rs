//! Ingestion throughput and the time for a 100 KB T-SQL file, on the embedded (SQLite) backend, in
//! this process (no HTTP: the pipeline and the store alone), beside two references in the same run:
//!
//! * `sqlparser` alone parsing the same text (the floor any `sqlparser`-based tool pays);
//! * `sqlglot` (Python, the parser most lineage tools in that world use) parsing the same text,
//!   timed inside its own process so interpreter start-up is not counted.
//!
//! The workloads: a generated T-SQL file of tables, views and procedures in `GO` batches; the
//! realistic SSMS "Generate Scripts" script of the tests (`tests/fixtures/sql/real/tsql_ssms_oltp.sql`:
//! what SSMS writes, with everything the recovering path reads); and a generated PostgreSQL warehouse
//! corpus of many files (CTAS, views with CTEs and joins, INSERT…SELECT).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tributary_core::knowledge::{IngestFile, IngestRequest};

use crate::median;

/// A T-SQL file of at least `bytes`: per unit, two tables, a view joining them, and a procedure
/// filling a fact table from the view.
pub fn tsql_file(bytes: usize) -> String {
    let mut sql = String::new();
    let mut unit = 0;
    while sql.len() < bytes {
        let _ = write!(
            sql,
            "CREATE TABLE [dbo].[Customer{unit}] (\n    [CustomerId] INT NOT NULL PRIMARY KEY,\n    [Name] NVARCHAR(100) NOT NULL,\n    [Country] NVARCHAR(50),\n    [CreatedAt] DATETIME2 NOT NULL\n)\nGO\n\
             CREATE TABLE [dbo].[Order{unit}] (\n    [OrderId] INT IDENTITY(1,1) PRIMARY KEY,\n    [CustomerId] INT NOT NULL REFERENCES [dbo].[Customer{unit}] ([CustomerId]),\n    [Total] DECIMAL(12, 2),\n    [OrderedAt] DATETIME2\n)\nGO\n\
             CREATE VIEW [dbo].[vCustomerOrders{unit}] AS\nSELECT c.[CustomerId], c.[Name], o.[Total], o.[OrderedAt]\nFROM [dbo].[Customer{unit}] c\nINNER JOIN [dbo].[Order{unit}] o ON o.[CustomerId] = c.[CustomerId]\nWHERE o.[Total] > 0\nGO\n\
             CREATE PROCEDURE [dbo].[usp_LoadFact{unit}]\nAS\nBEGIN\n    SET NOCOUNT ON;\n    DELETE FROM dbo.Fact{unit};\n    INSERT INTO dbo.Fact{unit} (CustomerId, Revenue, Orders)\n    SELECT CustomerId, SUM(Total), COUNT(*) FROM dbo.vCustomerOrders{unit} GROUP BY CustomerId;\nEND\nGO\n"
        );
        unit += 1;
    }
    sql
}

/// A PostgreSQL warehouse file of at least `bytes`, its names prefixed with `file`.
pub fn warehouse_file(file: usize, bytes: usize) -> String {
    let mut sql = String::new();
    let mut unit = 0;
    while sql.len() < bytes {
        let name = format!("f{file}_u{unit}");
        let _ = write!(
            sql,
            "CREATE TABLE raw.orders_{name} (order_id BIGINT PRIMARY KEY, customer_id BIGINT, amount NUMERIC(12,2), ordered_at TIMESTAMPTZ);\n\
             CREATE TABLE staging.orders_{name} AS\nSELECT o.order_id, o.customer_id, o.amount AS order_amount, o.ordered_at::date AS order_date\nFROM raw.orders_{name} o\nWHERE o.amount > 0;\n\
             CREATE VIEW gold.revenue_{name} AS\nWITH totals AS (\n  SELECT customer_id, SUM(order_amount) AS revenue, COUNT(*) AS orders\n  FROM staging.orders_{name}\n  GROUP BY customer_id\n)\nSELECT t.customer_id, t.revenue, t.orders, t.revenue / NULLIF(t.orders, 0) AS average\nFROM totals t\nJOIN raw.customers c ON c.customer_id = t.customer_id;\n\
             INSERT INTO gold.daily_{name} (order_date, total)\nSELECT order_date, SUM(order_amount) FROM staging.orders_{name} GROUP BY order_date;\n\n"
        );
        unit += 1;
    }
    sql
}

/// An in-process Tributary on a fresh SQLite file in `folder`.
pub async fn embedded(folder: &Path) -> anyhow::Result<tributary_core::http::AppState> {
    let db = folder.join("bench.db");
    let settings = tributary_core::config::Settings::from_args(["--store", "sqlite", "--db", &db.to_string_lossy()])?;
    Ok(tributary_core::http::AppState::standalone(settings).await?)
}

/// Ingests `files` into a fresh store, 50 per request (as the CLI sends them); returns the time.
async fn ingest_all(files: &[(String, String)], dialect: &str) -> anyhow::Result<Duration> {
    let folder = tempfile::tempdir()?;
    let state = embedded(folder.path()).await?;
    let started = Instant::now();
    for batch in files.chunks(50) {
        let request = IngestRequest {
            project_id: "bench".into(),
            dialect: dialect.into(),
            files: batch.iter().map(|(name, sql)| IngestFile { filename: name.clone(), content: sql.clone().into_bytes() }).collect(),
        };
        let result =
            tributary_core::knowledge::ingest(&state, request).await.map_err(|error| anyhow::anyhow!("{}", error.body().detail))?;
        ensure!(result.files_failed == 0, "a benchmark file failed: {:?}", result.results);
    }
    Ok(started.elapsed())
}

/// Tributary's parse and extraction alone (no store).
fn parse_all(files: &[(String, String)], dialect: &str) -> Duration {
    let choice = tributary_core::lineage::dialect::DialectChoice::parse(dialect).expect("a known dialect");
    let started = Instant::now();
    for (_, sql) in files {
        tributary_core::lineage::parse::parse_file(sql, choice, Instant::now()).expect("the benchmark SQL parses");
    }
    started.elapsed()
}

/// `sqlparser` alone: each statement (T-SQL: each batch) parsed, nothing more.
fn sqlparser_all(files: &[(String, String)], dialect: &str) -> Duration {
    let choice = tributary_core::lineage::dialect::DialectChoice::parse(dialect).expect("a known dialect");
    let started = Instant::now();
    for (_, sql) in files {
        let dialect = choice.resolve(sql);
        let parser = dialect.parser();
        let batches: Vec<&str> = if dialect.has_go_batches() { sql.split("\nGO\n").collect() } else { vec![sql.as_str()] };
        for batch in batches {
            let _ = sqlparser::parser::Parser::parse_sql(&*parser, batch);
        }
    }
    started.elapsed()
}

/// sqlglot parsing the same files, `runs` times, timed inside Python: the median, or why not.
fn sqlglot_all(files: &[(String, String)], dialect: &str, runs: usize) -> anyhow::Result<Duration> {
    let folder = tempfile::tempdir()?;
    for (index, (_, sql)) in files.iter().enumerate() {
        std::fs::write(folder.path().join(format!("{index:05}.sql")), sql)?;
    }
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python");
    let script = r#"
import glob, statistics, sys, time
import sqlglot
folder, dialect, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = [open(path).read() for path in sorted(glob.glob(folder + "/*.sql"))]
times = []
for _ in range(runs):
    start = time.perf_counter()
    for text in texts:
        for batch in (text.split("\nGO\n") if dialect == "tsql" else [text]):
            try:
                sqlglot.parse(batch, read=dialect)
            except Exception:
                pass  # a batch sqlglot refuses still took its time
    times.append(time.perf_counter() - start)
print(statistics.median(times))
"#;
    let read = if dialect == "postgresql" { "postgres" } else { dialect };
    let output = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(folder.path())
        .arg(read)
        .arg(runs.to_string())
        .output()
        .with_context(|| format!("running {} (scripts/test installs sqlglot into .tools/venv)", python.display()))?;
    ensure!(output.status.success(), "sqlglot failed: {}", String::from_utf8_lossy(&output.stderr));
    let seconds: f64 = String::from_utf8_lossy(&output.stdout).trim().parse()?;
    Ok(Duration::from_secs_f64(seconds))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One file's times, median of `runs`: full ingestion, parse and extract, `sqlparser`, `sqlglot`.
async fn file_times(files: &[(String, String)], dialect: &str, runs: usize, label: &str) -> anyhow::Result<[Result<f64, String>; 4]> {
    let (mut full, mut parse, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        full.push(ms(ingest_all(files, dialect).await?));
        parse.push(ms(parse_all(files, dialect)));
        floor.push(ms(sqlparser_all(files, dialect)));
        eprintln!("{label}, run {}: ingest {:.1} ms, parse {:.1} ms, sqlparser {:.1} ms", run + 1, full[run], parse[run], floor[run]);
    }
    let sqlglot = sqlglot_all(files, dialect, runs).map(ms).map_err(|error| error.to_string());
    Ok([Ok(median(&mut full)), Ok(median(&mut parse)), Ok(median(&mut floor)), sqlglot])
}

/// Prints the ingestion section of the report.
pub async fn print_ingestion(runs: usize) -> anyhow::Result<()> {
    let tsql = vec![("load.sql".to_owned(), tsql_file(100 * 1024))];
    let tsql_bytes = tsql[0].1.len();
    let ssms_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/sql/real/tsql_ssms_oltp.sql");
    let ssms =
        vec![("tsql_ssms_oltp.sql".to_owned(), std::fs::read_to_string(&ssms_path).with_context(|| ssms_path.display().to_string())?)];
    let ssms_times = file_times(&ssms, "tsql", runs, "SSMS script").await?;
    let corpus: Vec<(String, String)> = (0..200).map(|file| (format!("wh{file:03}.sql"), warehouse_file(file, 50 * 1024))).collect();
    let corpus_bytes: usize = corpus.iter().map(|(_, sql)| sql.len()).sum();

    let mut full = Vec::new();
    let mut parse = Vec::new();
    let mut floor = Vec::new();
    for run in 0..runs {
        full.push(ms(ingest_all(&tsql, "tsql").await?));
        parse.push(ms(parse_all(&tsql, "tsql")));
        floor.push(ms(sqlparser_all(&tsql, "tsql")));
        eprintln!("100 KB T-SQL, run {}: ingest {:.1} ms, parse {:.1} ms, sqlparser {:.1} ms", run + 1, full[run], parse[run], floor[run]);
    }
    let sqlglot = sqlglot_all(&tsql, "tsql", runs).map(ms);

    let corpus_runs = runs.clamp(1, 3);
    let mut corpus_full = Vec::new();
    let mut corpus_parse = Vec::new();
    let mut corpus_floor = Vec::new();
    for run in 0..corpus_runs {
        corpus_full.push(ingest_all(&corpus, "postgresql").await?.as_secs_f64());
        corpus_parse.push(parse_all(&corpus, "postgresql").as_secs_f64());
        corpus_floor.push(sqlparser_all(&corpus, "postgresql").as_secs_f64());
        eprintln!(
            "corpus, run {}: ingest {:.2} s, parse {:.2} s, sqlparser {:.2} s",
            run + 1,
            corpus_full[run],
            corpus_parse[run],
            corpus_floor[run]
        );
    }
    let corpus_sqlglot = sqlglot_all(&corpus, "postgresql", corpus_runs).map(|duration| duration.as_secs_f64());
    let megabytes = corpus_bytes as f64 / 1_000_000.0;
    let rate = |seconds: f64| megabytes / seconds;

    println!(
        "## Ingestion (embedded SQLite store, in process)\n\nOne {:.0} KB T-SQL file ({} statements in `GO` batches: tables, views, procedures), median of {runs} runs:\n",
        tsql_bytes as f64 / 1000.0,
        tsql[0].1.matches("\nGO\n").count()
    );
    println!("| What | Time |\n| --- | --- |");
    println!("| Tributary: parse, extract, resolve, store (fresh SQLite file) | {:.1} ms |", median(&mut full));
    println!("| Tributary: parse and extract only | {:.1} ms |", median(&mut parse));
    println!("| Reference: `sqlparser` parse only | {:.1} ms |", median(&mut floor));
    match &sqlglot {
        Ok(time) => println!("| Reference: `sqlglot` (Python) parse only | {time:.1} ms |"),
        Err(error) => println!("| Reference: `sqlglot` (Python) parse only | not run: {error} |"),
    }
    println!(
        "\nThe realistic SSMS \"Generate Scripts\" script of the tests ({:.0} KB, `tests/fixtures/sql/real/tsql_ssms_oltp.sql`: most of its DDL is read by the recovering path), median of {runs} runs:\n",
        ssms[0].1.len() as f64 / 1000.0
    );
    println!("| What | Time |\n| --- | --- |");
    let labels = [
        "Tributary: parse, extract, resolve, store (fresh SQLite file)",
        "Tributary: parse and extract only",
        "Reference: `sqlparser` parse only (refuses most of it)",
        "Reference: `sqlglot` (Python) parse only",
    ];
    for (label, time) in labels.iter().zip(&ssms_times) {
        match time {
            Ok(time) => println!("| {label} | {time:.1} ms |"),
            Err(error) => println!("| {label} | not run: {error} |"),
        }
    }
    println!(
        "\nA PostgreSQL warehouse corpus: {} files, {megabytes:.1} MB (CTAS, views with CTEs and joins, INSERT…SELECT), ingested 50 files per request, median of {corpus_runs} runs:\n",
        corpus.len()
    );
    println!("| What | Throughput |\n| --- | --- |");
    println!("| Tributary: parse, extract, resolve, store | {:.1} MB/s |", rate(median(&mut corpus_full)));
    println!("| Tributary: parse and extract only | {:.1} MB/s |", rate(median(&mut corpus_parse)));
    println!("| Reference: `sqlparser` parse only | {:.1} MB/s |", rate(median(&mut corpus_floor)));
    match corpus_sqlglot {
        Ok(seconds) => println!("| Reference: `sqlglot` (Python) parse only | {:.1} MB/s |", rate(seconds)),
        Err(error) => println!("| Reference: `sqlglot` (Python) parse only | not run: {error} |"),
    }
    println!();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_workloads_have_the_asked_size_and_parse_cleanly() {
        let tsql = tsql_file(100 * 1024);
        assert!(tsql.len() >= 100 * 1024);
        let parsed = tributary_core::lineage::parse::parse_file(
            &tsql,
            tributary_core::lineage::dialect::DialectChoice::parse("tsql").unwrap(),
            Instant::now(),
        )
        .unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", &parsed.warnings[..parsed.warnings.len().min(3)]);
        let warehouse = warehouse_file(1, 10 * 1024);
        let parsed = tributary_core::lineage::parse::parse_file(
            &warehouse,
            tributary_core::lineage::dialect::DialectChoice::parse("postgresql").unwrap(),
            Instant::now(),
        )
        .unwrap();
        assert!(parsed.warnings.is_empty(), "{:?}", &parsed.warnings[..parsed.warnings.len().min(3)]);
    }
}
