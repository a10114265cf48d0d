"""Dumps the SQL statements of sqlglot's own dialect tests as JSON, for our Rust tests to parse.

Usage: .tools/peer-venv/bin/python tests/peer/sqlglot_statements.py SDIST_DIR > statements.json

SDIST_DIR is the extracted sqlglot sdist (.tools/peer/sqlglot-<version>, made by scripts/lib/peer.sh).
The statements are read from its tests/dialects/test_*.py at test time, never copied into this
repository. Those unittest classes (subclasses of tests/dialects/test_dialect.py's Validator) are run
with the Validator's validate_identity, validate_all and validate_transpile wrapped by recorders, which
note every SQL string handed to them (with its dialect) before running the original check, so a test
that fails partway still contributes the statements handed over before. The checks themselves run on
the installed sqlglot (the pinned one), never on the sdist's copy of the package.

Each statement (a JSON array sorted by dialect, then sql; deduplicated on (dialect, sql)):
  dialect         sqlglot's dialect name ("generic" for the default "" dialect)
  sql             the statement as the test wrote it
  test            "<file>::<class>::<method>" of the first (in sorted order) test that handed it over
  sqlglot_parses  whether sqlglot.parse(sql, read=dialect) succeeds with the default error level
Which string is in which dialect: validate_identity's sql and validate_all's first argument in the
class's dialect, validate_all's read and write entries in their keys' dialects, validate_transpile's
sql in the class's dialect and its expected output in its write dialect. Only the dialects in KEPT.
"""

import contextlib
import enum
import importlib
import importlib.util
import io
import json
import logging
import os
import sys
import unittest
from collections import Counter

KEPT = {
    "tsql", "postgres", "mysql", "snowflake", "bigquery", "redshift", "sqlite", "duckdb", "hive",
    "spark", "databricks", "clickhouse", "",
}


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} SDIST_DIR")
    sdist = os.path.abspath(sys.argv[1])
    tests_dir = os.path.join(sdist, "tests")
    if not os.path.isfile(os.path.join(tests_dir, "dialects", "test_dialect.py")):
        sys.exit(f"{sdist} is not an extracted sqlglot sdist (no tests/dialects/test_dialect.py)")
    sys.dont_write_bytecode = True

    import sqlglot

    if os.path.abspath(sqlglot.__file__).startswith(sdist + os.sep):
        sys.exit(f"sqlglot imported from the sdist ({sqlglot.__file__}), not the installed package")

    # The sdist's `tests` package, registered by location: putting the sdist's root on sys.path
    # would also put its copy of `sqlglot` ahead of the installed one.
    spec = importlib.util.spec_from_file_location(
        "tests", os.path.join(tests_dir, "__init__.py"), submodule_search_locations=[tests_dir]
    )
    tests_pkg = importlib.util.module_from_spec(spec)
    sys.modules["tests"] = tests_pkg
    spec.loader.exec_module(tests_pkg)

    # sqlglot's warnings (unsupported syntax and the like) are expected by the tests; keep them
    # off stderr without disabling logging (assertLogs needs it).
    logging.getLogger("sqlglot").addHandler(logging.NullHandler())

    from tests.dialects.test_dialect import Validator

    seen = {}  # (dialect, sql) -> smallest test name
    skipped_dialects = Counter()
    current = {"test": None}

    def note(dialect, sql):
        if not isinstance(sql, str):
            return  # e.g. write={"x": UnsupportedError}
        if dialect is None:
            dialect = ""
        if isinstance(dialect, enum.Enum):
            dialect = dialect.value
        if not isinstance(dialect, str):
            skipped_dialects[type(dialect).__name__] += 1
            return
        if dialect not in KEPT:
            skipped_dialects[dialect] += 1
            return
        key = (dialect, sql)
        test = current["test"]
        if key not in seen or test < seen[key]:
            seen[key] = test

    original_identity = Validator.validate_identity
    original_all = Validator.validate_all
    original_transpile = Validator.validate_transpile

    def validate_identity(self, sql, *args, **kwargs):
        note(self.dialect, sql)
        return original_identity(self, sql, *args, **kwargs)

    def validate_all(self, sql, read=None, write=None, *args, **kwargs):
        note(self.dialect, sql)
        for dialect, text in (read or {}).items():
            note(dialect, text)
        for dialect, text in (write or {}).items():
            note(dialect, text)
        return original_all(self, sql, read, write, *args, **kwargs)

    def validate_transpile(self, sql, write_sql, write_dialect=None, *args, **kwargs):
        note(self.dialect, sql)
        note(write_dialect, write_sql)
        return original_transpile(self, sql, write_sql, write_dialect, *args, **kwargs)

    Validator.validate_identity = validate_identity
    Validator.validate_all = validate_all
    Validator.validate_transpile = validate_transpile

    loader = unittest.TestLoader()
    tests = []
    for name in sorted(os.listdir(os.path.join(tests_dir, "dialects"))):
        if name.startswith("test_") and name.endswith(".py"):
            module = importlib.import_module(f"tests.dialects.{name[:-3]}")
            tests.extend(flatten(loader.loadTestsFromModule(module)))

    unique = {}  # our name -> test (a class imported into another test module runs once)
    for test in tests:
        cls = type(test)
        file = os.path.relpath(sys.modules[cls.__module__].__file__, sdist)
        unique.setdefault(f"{file}::{cls.__name__}::{test._testMethodName}", test)
    names = {id(test): name for name, test in unique.items()}

    class Result(unittest.TestResult):
        def startTest(self, test):
            super().startTest(test)
            current["test"] = names[id(test)]

    result = Result()
    # A TestSuite (not test.run) so that any setUpClass/setUpModule runs as under unittest itself.
    suite = unittest.TestSuite(test for _, test in sorted(unique.items()))
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        suite.run(result)
    problems = set()
    for test, trace in result.failures + result.errors:
        case = getattr(test, "test_case", test)  # a failed subTest names its test case
        name = names.get(id(case), case.id())
        if name not in problems:
            problems.add(name)
            last = trace.strip().splitlines()[-1] if trace.strip() else "?"
            print(f"failed (its statements before the failure kept): {name}: {last[:200]}", file=sys.stderr)

    statements = []
    for (dialect, sql), test in sorted(seen.items()):
        statements.append(
            {
                "dialect": dialect or "generic",
                "sql": sql,
                "test": test,
                "sqlglot_parses": parses(sqlglot, sql, dialect),
            }
        )
    statements.sort(key=lambda s: (s["dialect"], s["sql"]))

    json.dump(statements, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")

    per_dialect = Counter(s["dialect"] for s in statements)
    failing = Counter(s["dialect"] for s in statements if not s["sqlglot_parses"])
    print(
        f"sqlglot statements: {len(statements)} ("
        + ", ".join(f"{d} {n}" + (f" [{failing[d]} not parsed]" if failing[d] else "")
                    for d, n in sorted(per_dialect.items()))
        + f"); {result.testsRun} test methods run, {len(problems)} failed or errored"
        f" (their statements up to the failure kept), {sum(skipped_dialects.values())} strings in"
        " other dialects left out",
        file=sys.stderr,
    )


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


def parses(sqlglot, sql, dialect):
    # Errors sqlglot logs while parsing (e.g. a fallback to a Command) are not failures.
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            sqlglot.parse(sql, read=dialect)
        return True
    except Exception:  # ParseError, TokenError, and whatever else a user would see raised
        return False


if __name__ == "__main__":
    main()
