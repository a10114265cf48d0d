#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target into fuzz/corpus/<target>/: the project's SQL
fixtures and a few statements of each dialect for `sql_ingest`, the protocol's messages for
`ws_message`, and a request per route for `http_bodies`. They are named seed-*, and
`scripts/fuzz cmin` keeps them as examples; the inputs fuzzing found are named by their SHA-1.
Run it from anywhere; it only adds files."""

import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent.parent
ROOT = FUZZ.parent
FIXTURES = ROOT / "tests" / "fixtures" / "sql"


def write(target, name, data):
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"seed-{name}").write_bytes(data if isinstance(data, bytes) else data.encode())


# sql_ingest: the first byte picks the dialect (see CHOICES in fuzz_targets/sql_ingest.rs).
AUTO, GENERIC, POSTGRES, MYSQL, TSQL, SNOWFLAKE, BIGQUERY, SQLITE, DUCKDB, HIVE, CLICKHOUSE = 0, 2, 4, 5, 6, 7, 8, 10, 11, 12, 14
fixtures = {path.relative_to(FIXTURES).as_posix(): path.read_bytes() for path in sorted(FIXTURES.rglob("*.sql"))}
for name, sql in fixtures.items():
    write("sql_ingest", name.replace("/", "-"), bytes([AUTO]) + sql)
write("sql_ingest", "warehouse-together", bytes([POSTGRES]) + b"\0".join(sql for name, sql in fixtures.items() if name.startswith("warehouse/")))
write("sql_ingest", "tsql-fixed", bytes([TSQL]) + fixtures["tsql/sales.sql"])
statements = {
    "postgres-function": (POSTGRES, "CREATE FUNCTION f(x int) RETURNS int AS $$ SELECT x + 1 $$ LANGUAGE sql;\nCREATE TABLE t (id serial, doc jsonb);\nINSERT INTO u SELECT id, doc::text FROM t RETURNING id;\n"),
    "mysql": (MYSQL, "CREATE TABLE `db`.`t` (id INT UNSIGNED AUTO_INCREMENT, name VARCHAR(10)) ENGINE=InnoDB;\nINSERT INTO s SELECT * FROM `db`.`t`;\n"),
    "snowflake": (SNOWFLAKE, "CREATE OR REPLACE TRANSIENT TABLE a.b AS SELECT v:x::string AS x FROM raw, LATERAL FLATTEN(input => v) QUALIFY row_number() OVER (ORDER BY x) = 1;\n"),
    "bigquery": (BIGQUERY, "CREATE TABLE `p-1.d.t` (s STRUCT<a INT64>, arr ARRAY<STRING>) OPTIONS(description='x');\nSELECT SAFE_CAST(s.a AS STRING) FROM `p-1.d.t`;\n"),
    "sqlite": (SQLITE, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT) WITHOUT ROWID;\nPRAGMA foreign_keys = ON;\n"),
    "duckdb": (DUCKDB, "CREATE TABLE t AS SELECT * FROM read_parquet('x.parquet');\nCREATE MACRO m(a) AS a + 1;\n"),
    "hive": (HIVE, "CREATE EXTERNAL TABLE t (a STRING) PARTITIONED BY (d STRING) STORED AS PARQUET TBLPROPERTIES ('k'='v');\nINSERT OVERWRITE TABLE u SELECT a FROM t;\n"),
    "clickhouse": (CLICKHOUSE, "CREATE TABLE t (id UInt64, n LowCardinality(String)) ENGINE = MergeTree ORDER BY id;\n"),
    "merge-cte": (GENERIC, "WITH s AS (SELECT a.id, b.v FROM a JOIN b ON a.id = b.id) MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v);\nUPDATE t SET v = (SELECT max(v) FROM s2) WHERE id IN (SELECT id FROM s3);\n"),
    "tsql-procedure": (TSQL, "CREATE PROCEDURE dbo.load AS\nBEGIN\n  SET NOCOUNT ON;\n  INSERT INTO [dbo].[t] ([a]) SELECT TOP 10 a FROM dbo.s;\n  EXEC dbo.other @x = 1;\nEND\nGO\nEXEC dbo.load;\nGO\n"),
    "broken": (AUTO, "SELEC 1;\nSELECT 'unterminated\n;\nCREATE VIEW v AS SELECT (((1;\n"),
    "select-star": (GENERIC, "CREATE TABLE s (a INT, b INT);\nCREATE VIEW v AS SELECT * FROM s;\nCREATE VIEW w AS SELECT x.a FROM v x, s y;\n"),
}
for name, (dialect, sql) in statements.items():
    write("sql_ingest", name, bytes([dialect]) + sql.encode())

# ws_message: text frames.
for name, frame in {
    "ping": '{"type":"ping"}',
    "get-stats": '{"type":"get_stats"}',
    "extra-field": '{"type":"get_stats","extra":[1,{"a":null}]}',
    "unknown-type": '{"type":"subscribe","channel":"stats"}',
    "no-type": '{"kind":"ping"}',
    "number-type": '{"type":1}',
    "not-json": "ping",
    "array": '[{"type":"ping"}]',
}.items():
    write("ws_message", name, frame)

# http_bodies: the first byte picks the route (see ROUTES in fuzz_targets/http_bodies.rs).
TEXT, SEMANTIC, GRAPH, DEEP, STREAM, TITLE, INGEST, UPLOAD, ACTIVITY, BROADCAST, SEARCH, LINEAGE = range(12)


def body(route, value):
    return bytes([route]) + (value if isinstance(value, bytes) else json.dumps(value).encode())


ingest = {"project_id": "default", "dialect": "auto", "files": [{"filename": name.split("/")[-1], "content": sql.decode()} for name, sql in fixtures.items()]}
write("http_bodies", "ingest-fixtures", body(INGEST, ingest))
write("http_bodies", "ingest-tsql", body(INGEST, {"dialect": "tsql", "files": [{"filename": "../x/sales.sql", "content": fixtures["tsql/sales.sql"].decode()}]}))
write("http_bodies", "ingest-bad", body(INGEST, {"project_id": "", "dialect": "oracle", "files": [{"filename": "", "content": " "}]}))
upload = (
    b"--fuzz\r\nContent-Disposition: form-data; name=\"project_id\"\r\n\r\nfuzz\r\n"
    b"--fuzz\r\nContent-Disposition: form-data; name=\"dialect\"\r\n\r\npostgres\r\n"
    b"--fuzz\r\nContent-Disposition: form-data; name=\"files\"; filename=\"01_raw.sql\"\r\nContent-Type: text/plain\r\n\r\n"
    + fixtures["warehouse/01_raw.sql"]
    + b"\r\n--fuzz\r\nContent-Disposition: form-data; name=\"files[]\"; filename=\"02_staging.sql\"\r\n\r\n"
    + fixtures["warehouse/02_staging.sql"]
    + b"\r\n--fuzz--\r\n"
)
write("http_bodies", "upload", body(UPLOAD, upload))
questions = {
    TEXT: {"query": "hello"},
    SEMANTIC: {"query": "orders by customer", "context": {"project_id": "default"}},
    GRAPH: {"query": "What feeds gold.top_customers?"},
    DEEP: {"query": "and what depends on it?", "session_id": "s-1", "history": [{"role": "user", "content": "Describe staging.orders"}, {"role": "assistant", "content": "A table."}]},
    STREAM: {"query": "What is in the database?", "model": "extractive"},
    TITLE: {"query": "Which tables feed [dbo].[DimCustomer]?"},
}
for route, question in questions.items():
    write("http_bodies", f"chat-{route}", body(route, question))
write("http_bodies", "chat-graph-near-miss", body(GRAPH, {"query": "What depends on costumers and \"Staging\".\"Orders\"?", "context": {"project_id": "default"}}))
write("http_bodies", "activity", body(ACTIVITY, {"type": "page_view", "message": "opened the dashboard", "metadata": {"page": "/", "n": 1}}))
write("http_bodies", "broadcast", body(BROADCAST, {"type": "notification", "data": {"message": "maintenance at noon"}}))
write("http_bodies", "search", body(SEARCH, b"q=customer_id+revenue&project_id=default&limit=5"))
write("http_bodies", "lineage", body(LINEAGE, b"gold.top_customers?direction=upstream&depth=3&project_id=default"))
