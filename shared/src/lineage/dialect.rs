//! SQL dialects: the names users give, the `sqlparser` dialect behind each, and detection for `auto`.

use std::fmt;

use sqlparser::dialect::{
    AnsiDialect, BigQueryDialect, ClickHouseDialect, DatabricksDialect, Dialect as ParserDialect, DuckDbDialect, GenericDialect,
    HiveDialect, MsSqlDialect, MySqlDialect, PostgreSqlDialect, RedshiftSqlDialect, SQLiteDialect, SnowflakeDialect,
};

/// A dialect Tributary parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Generic,
    Ansi,
    PostgreSql,
    MySql,
    TSql,
    Snowflake,
    BigQuery,
    Redshift,
    Sqlite,
    DuckDb,
    Hive,
    Databricks,
    ClickHouse,
}

/// What the user asked for: one dialect, or detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialectChoice {
    Auto,
    Fixed(Dialect),
}

/// The names accepted for `dialect`, for error messages and the API documentation.
pub const DIALECT_NAMES: &str = "auto, generic, ansi, postgresql (postgres), mysql, tsql (mssql, sqlserver), snowflake, bigquery, redshift, sqlite, duckdb, hive, databricks (spark), clickhouse";

impl DialectChoice {
    /// Parses a user-given name (case-insensitive); `None` for an unknown one.
    pub fn parse(name: &str) -> Option<DialectChoice> {
        let dialect = match name.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => return Some(DialectChoice::Auto),
            "generic" => Dialect::Generic,
            "ansi" => Dialect::Ansi,
            "postgres" | "postgresql" => Dialect::PostgreSql,
            "mysql" | "mariadb" => Dialect::MySql,
            "tsql" | "t-sql" | "mssql" | "sqlserver" => Dialect::TSql,
            "snowflake" => Dialect::Snowflake,
            "bigquery" => Dialect::BigQuery,
            "redshift" => Dialect::Redshift,
            "sqlite" => Dialect::Sqlite,
            "duckdb" => Dialect::DuckDb,
            "hive" => Dialect::Hive,
            "databricks" | "spark" | "sparksql" => Dialect::Databricks,
            "clickhouse" => Dialect::ClickHouse,
            _ => return None,
        };
        Some(DialectChoice::Fixed(dialect))
    }

    /// The dialect to parse `sql` in.
    pub fn resolve(self, sql: &str) -> Dialect {
        match self {
            DialectChoice::Fixed(dialect) => dialect,
            DialectChoice::Auto => detect(sql),
        }
    }
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Generic => "generic",
            Dialect::Ansi => "ansi",
            Dialect::PostgreSql => "postgresql",
            Dialect::MySql => "mysql",
            Dialect::TSql => "tsql",
            Dialect::Snowflake => "snowflake",
            Dialect::BigQuery => "bigquery",
            Dialect::Redshift => "redshift",
            Dialect::Sqlite => "sqlite",
            Dialect::DuckDb => "duckdb",
            Dialect::Hive => "hive",
            Dialect::Databricks => "databricks",
            Dialect::ClickHouse => "clickhouse",
        }
    }

    /// The `sqlparser` dialect that parses it.
    pub fn parser(self) -> Box<dyn ParserDialect> {
        match self {
            Dialect::Generic => Box::new(GenericDialect {}),
            Dialect::Ansi => Box::new(AnsiDialect {}),
            Dialect::PostgreSql => Box::new(PostgreSqlDialect {}),
            Dialect::MySql => Box::new(MySqlDialect {}),
            Dialect::TSql => Box::new(MsSqlDialect {}),
            Dialect::Snowflake => Box::new(SnowflakeDialect {}),
            Dialect::BigQuery => Box::new(BigQueryDialect {}),
            Dialect::Redshift => Box::new(RedshiftSqlDialect {}),
            Dialect::Sqlite => Box::new(SQLiteDialect {}),
            Dialect::DuckDb => Box::new(DuckDbDialect {}),
            Dialect::Hive => Box::new(HiveDialect {}),
            Dialect::Databricks => Box::new(DatabricksDialect {}),
            Dialect::ClickHouse => Box::new(ClickHouseDialect {}),
        }
    }

    /// Whether `GO` on a line of its own separates batches (T-SQL's client convention).
    pub fn has_go_batches(self) -> bool {
        self == Dialect::TSql
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Guesses the dialect from telltale syntax; `Generic` when nothing stands out. Each dialect scores
/// the markers found (case-insensitively) in the first 256 KiB; the best score wins.
pub fn detect(sql: &str) -> Dialect {
    let sample = sql.get(..sql.len().min(256 * 1024)).unwrap_or(sql);
    let sample = sample.to_ascii_lowercase();
    let go_lines = sample.lines().filter(|line| line.trim() == "go").count();
    let has = |marker: &str| sample.contains(marker);
    let count = |markers: &[&str]| markers.iter().filter(|marker| has(marker)).count();

    let mut scores: Vec<(Dialect, usize)> = vec![
        (
            Dialect::TSql,
            3 * usize::from(go_lines > 0)
                + count(&["nvarchar", "[dbo]", "dbo.", "identity(", "exec ", "set nocount", "@@", " top ", "getdate()", "create proc"])
                + usize::from(sample.contains('[') && sample.contains("].[")),
        ),
        // `::` casts are PostgreSQL's own (Snowflake and DuckDB borrowed them, and score their own markers).
        (
            Dialect::PostgreSql,
            count(&["::", "$$", "serial", "plpgsql", "ilike", "returning ", "jsonb", "create extension"]) + usize::from(has("::")),
        ),
        (
            Dialect::MySql,
            count(&["engine=innodb", "engine = innodb", "auto_increment", "unsigned", "tinyint", "`"])
                .saturating_sub(usize::from(has("`") && has("struct<"))),
        ),
        (Dialect::Snowflake, count(&["variant", "qualify", "transient", "copy into", "flatten(", "create or replace stage", "warehouse"])),
        (
            Dialect::BigQuery,
            count(&["struct<", "array<", "safe_cast", "`", "partition by date(", "options("]) + usize::from(has("`") && has("-")),
        ),
        (Dialect::Redshift, 2 * count(&["distkey", "sortkey", "diststyle", "encode az64", "encode zstd"])),
        (Dialect::Sqlite, 2 * count(&["autoincrement", "without rowid", "pragma "])),
        (Dialect::DuckDb, 2 * count(&["read_parquet(", "read_csv", "install ", "create macro", "attach "])),
        (Dialect::Hive, count(&["stored as", "row format", "tblproperties", "external table", "partitioned by"])),
        (Dialect::Databricks, count(&["using delta", "optimize ", "zorder", "tblproperties", "create or replace table"])),
        (Dialect::ClickHouse, 2 * count(&["mergetree", "engine =", "lowcardinality(", "nullable("])),
    ];
    // Stable order above breaks ties towards the more specific dialects listed first.
    scores.sort_by_key(|(_, score)| std::cmp::Reverse(*score));
    match scores.first() {
        Some((dialect, score)) if *score >= 2 => *dialect,
        _ => Dialect::Generic,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively_and_unknown_ones_are_refused() {
        assert_eq!(DialectChoice::parse("TSQL"), Some(DialectChoice::Fixed(Dialect::TSql)));
        assert_eq!(DialectChoice::parse("postgres"), Some(DialectChoice::Fixed(Dialect::PostgreSql)));
        assert_eq!(DialectChoice::parse("auto"), Some(DialectChoice::Auto));
        assert_eq!(DialectChoice::parse("oracle9"), None);
    }

    #[test]
    fn telltale_syntax_is_detected() {
        assert_eq!(detect("CREATE TABLE [dbo].[Orders] ([Id] INT IDENTITY(1,1), [Name] NVARCHAR(50))\nGO\n"), Dialect::TSql);
        assert_eq!(detect("CREATE TABLE t (id SERIAL PRIMARY KEY, doc JSONB); SELECT doc::text FROM t;"), Dialect::PostgreSql);
        assert_eq!(detect("CREATE TABLE `t` (id INT UNSIGNED AUTO_INCREMENT) ENGINE=InnoDB;"), Dialect::MySql);
        assert_eq!(detect("CREATE TABLE t (id INT) DISTSTYLE KEY DISTKEY (id) SORTKEY (id);"), Dialect::Redshift);
        assert_eq!(detect("CREATE TABLE t (id UInt64) ENGINE = MergeTree ORDER BY id;"), Dialect::ClickHouse);
        assert_eq!(detect("SELECT a FROM b;"), Dialect::Generic);
    }
}
