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

# Chains of every operator kind, as long as a statement may be (just under 1 MiB): `sqlparser`
# nests a chain as deep as it is long, and one of 40,000 `::int` overflowed a worker's stack and
# aborted the node (issue 14). Now parsed on a thread whose stack holds any tree the operator budget
# allows, and a longer chain is read without the parser.
POSTGRES, MYSQL = 4, 5
CHAINS = {
    "cast": (POSTGRES, "::int"), "shift": (GENERIC, " << 1"), "arrow": (POSTGRES, "->1"), "json-path": (POSTGRES, " #> '{a}'"),
    "ilike": (POSTGRES, " ILIKE 'a'"), "xor": (MYSQL, " XOR 1"), "time-zone": (POSTGRES, " AT TIME ZONE 'UTC'"),
    "collate": (GENERIC, " COLLATE x"), "concat": (GENERIC, " || 'a'"), "subscript": (POSTGRES, "[1]"),
    "union": (GENERIC, " UNION SELECT 1"), "is-null": (GENERIC, " IS NULL"), "and": (TSQL, " AND a = 1"),
}
LIMIT = 1024 * 1024 - 64
for name, (dialect, link) in CHAINS.items():
    write(f"chain-{name}", dialect, "SELECT 1" + link * ((LIMIT - 20) // len(link)) + " FROM t;\nSELECT 2 FROM u;")
# A chain in a procedure's body, and parentheses nested as deep as a statement allows.
write("chain-in-procedure", TSQL, "CREATE PROCEDURE p AS\nSELECT 1" + "+1" * ((LIMIT - 40) // 2) + " FROM t\nGO\n")
write("deep-parentheses", GENERIC, "SELECT " + "(" * (LIMIT // 2 - 10) + "1" + ")" * (LIMIT // 2 - 10) + ";")
