#!/usr/bin/env python3
"""Writes large `sql_ingest` inputs into the folder given (default fuzz/target/stress): the shapes
that cost time in proportion to the square of their width if a loop scans a list per item, at
sizes within the ingestion limits (a statement under 1 MiB, a file under 5 MiB). libFuzzer's
mutations do not grow inputs this large, so `scripts/fuzz` runs these once each, with a time limit,
as a regression check. The first byte picks the dialect, as in fuzz_targets/sql_ingest.rs."""

import pathlib
import sys

GENERIC, TSQL = 2, 6
FUZZ = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else FUZZ / "target" / "stress"
out.mkdir(parents=True, exist_ok=True)


def write(name, dialect, sql):
    (out / name).write_bytes(bytes([dialect]) + sql.encode())


N = 80_000
columns = ",".join(f"c{i}" for i in range(N))
typed = ",".join(f"c{i} INT" for i in range(N))
# A table of 80,000 columns (869 KB): learning its columns scanned a list per column (found by
# this check: 5.3 s to resolve in the release node, 45 s in the fuzz build; 0.9 s since).
write("wide-table", GENERIC, f"CREATE TABLE t ({typed});")
# Its columns named unqualified over two tables: each lookup asks which table has the column
# (a scan of its columns too, before the fix).
write("ambiguous-columns", GENERIC, f"CREATE TABLE t ({typed});\nCREATE TABLE u (x INT);\nCREATE VIEW v AS SELECT {columns} FROM t, u;")
# A view as wide.
write("wide-view", GENERIC, f"CREATE VIEW v AS SELECT {columns} FROM t;")
# Many statements, many GO batches, many routine statements.
write("many-statements", GENERIC, "SELECT 1;\n" * 100_000)
write("many-go-batches", TSQL, "SELECT 1\nGO\n" * 50_000)
write("long-procedure", TSQL, "CREATE PROCEDURE p AS\nBEGIN\n" + "".join(f"  INSERT INTO t{i} SELECT a FROM s{i};\n  EXEC q{i};\n" for i in range(20_000)) + "END\nGO\n")
# One short name under 20,000 schemas, and as many references to it: resolving each reference
# counted every object the name could be (found by this check: 7.9 s for 5,000 in the fuzz build).
write("suffix-names", GENERIC, "".join(f"CREATE TABLE a{i}.b.c.t (x INT);\nINSERT INTO t SELECT x FROM b.c.t;\n" for i in range(20_000)))
