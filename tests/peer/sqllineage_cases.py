"""Dumps sqllineage's own lineage test cases as JSON, for our Rust tests to compare against.

Usage: .tools/peer-venv/bin/python tests/peer/sqllineage_cases.py SDIST_DIR > cases.json

SDIST_DIR is the extracted sqllineage sdist (.tools/peer/sqllineage-<version>, made by
scripts/lib/peer.sh). The cases are read from its tests/sql/{table,column} at test time, never copied
into this repository. Its test files are run in-process under pytest with the helpers
`assert_table_lineage_equal` and `assert_column_lineage_equal` (tests/helpers.py) replaced by recorders,
so every parametrized instance of a test that calls one becomes a case (see CASE FORMAT below).
Tests that fail or error under the recorders are left out and listed on stderr with the reason.

CASE FORMAT (a JSON array, sorted by id; cases identical apart from the test id are merged):
  id             the first pytest node id the case stands for; "#N" is appended when one test calls
                 the helpers more than once (the Nth call)
  ids            every node id the case stands for (e.g. the two `provider` fixtures of a column test)
  kind           "table" | "column"
  dialect        the sqlfluff dialect name as passed to the helper ("ansi" by default)
  sql            the SQL text
  sqlfluff_only  true when the test passed test_sqlparse=False
  config         the SQLLINEAGE_* environment variables the test set (e.g. by @patch.dict), {} if none
  sources, targets       (table) sorted table strings: `schema.table` as sqllineage compares them
                         (unqualified names without the "<default>." prefix; quoted names keep their
                         case); a Path is "path:<uri as written in the test>"; a SubQuery
                         "subquery:<alias>"
  column_lineage         (column) sorted [source, target] pairs of `<table string>.<column>`, with
                         "?" as the table string when the qualifier is None
  metadata               (column) {"schema.table": [columns]} of the metadata provider given, or
                         null when none was given or it holds no schema
"""

import contextlib
import json
import os
import sys
from collections import defaultdict

DEFAULT_PREFIX = "<default>."


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} SDIST_DIR")
    sdist = os.path.abspath(sys.argv[1])
    if not os.path.isfile(os.path.join(sdist, "tests", "helpers.py")):
        sys.exit(f"{sdist} is not an extracted sqllineage sdist (no tests/helpers.py)")

    # Determinism and isolation: no inherited sqllineage settings, no third-party pytest plugins,
    # no bytecode or cache written into the sdist.
    for key in [k for k in os.environ if k.startswith("SQLLINEAGE_")]:
        del os.environ[key]
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    sys.dont_write_bytecode = True

    import pytest
    from sqllineage.core import models
    from sqllineage.core.metadata.dummy import DummyMetaDataProvider

    # Remember each Path's uri as written (Path itself keeps only the normalised one).
    path_init = models.Path.__init__

    def recording_path_init(self, uri, *args, **kwargs):
        path_init(self, uri, *args, **kwargs)
        self.peer_raw_uri = uri

    models.Path.__init__ = recording_path_init

    # Import the suite's helpers before pytest imports conftest.py or any test module (they all do
    # `from ...helpers import ...`, binding whatever the module holds then), and patch them. pytest's
    # default import mode puts the sdist's root on sys.path and imports the same `tests.helpers`.
    sys.path.insert(0, sdist)
    import tests.helpers as helpers

    if os.path.dirname(os.path.abspath(helpers.__file__)) != os.path.join(sdist, "tests"):
        sys.exit(f"imported tests.helpers from {helpers.__file__}, not from {sdist}")

    provider_schemas = {}  # id(provider) -> the schemas it was generated from
    generate = helpers.generate_metadata_providers

    def recording_generate_metadata_providers(test_schemas):
        providers = generate(test_schemas)
        for provider in providers:
            provider_schemas[id(provider)] = (provider, {k: list(v) for k, v in test_schemas.items()})
        return providers

    def table_string(table):
        if isinstance(table, str):
            table = models.Table(table)
        if isinstance(table, models.Path):
            return "path:" + getattr(table, "peer_raw_uri", table.uri)
        if isinstance(table, models.SubQuery):
            return "subquery:" + str(table.alias)
        if isinstance(table, models.Table):
            text = str(table)
            return text[len(DEFAULT_PREFIX):] if text.startswith(DEFAULT_PREFIX) else text
        raise TypeError(f"unexpected table expectation {table!r}")

    def column_string(col):
        # As the helpers' build_column: Column(col.column), parented by Table(col.qualifier).
        name = models.Column(col.column).raw_name
        parent = "?" if col.qualifier is None else table_string(models.Table(col.qualifier))
        return f"{parent}.{name}"

    def metadata_of(provider):
        if provider is None:
            return None
        known = provider_schemas.get(id(provider))
        if known is not None and known[0] is provider:
            schemas = known[1]
        elif isinstance(provider, DummyMetaDataProvider):
            schemas = provider.metadata
        else:
            raise TypeError(f"metadata provider {provider!r} not built by generate_metadata_providers")
        return {k: list(v) for k, v in schemas.items()} or None

    calls = []  # the current test's recorded cases

    def common(sql, dialect, test_sqlfluff, test_sqlparse):
        if not isinstance(sql, str) or not isinstance(dialect, str):
            raise TypeError("sql and dialect must be strings")
        if not test_sqlfluff:
            raise ValueError("test_sqlfluff=False is not representable in a case")
        return {
            "dialect": dialect,
            "sql": sql,
            "sqlfluff_only": not test_sqlparse,
            "config": {k: v for k, v in sorted(os.environ.items()) if k.startswith("SQLLINEAGE_")},
        }

    def record_table(
        sql, source_tables=None, target_tables=None, dialect="ansi", test_sqlfluff=True, test_sqlparse=True
    ):
        case = common(sql, dialect, test_sqlfluff, test_sqlparse)
        case["kind"] = "table"
        case["sources"] = sorted({table_string(t) for t in (source_tables or ())})
        case["targets"] = sorted({table_string(t) for t in (target_tables or ())})
        calls.append(case)

    def record_column(
        sql, column_lineages=None, dialect="ansi", metadata_provider=None, test_sqlfluff=True, test_sqlparse=True
    ):
        case = common(sql, dialect, test_sqlfluff, test_sqlparse)
        case["kind"] = "column"
        pairs = {(column_string(src), column_string(tgt)) for src, tgt in (column_lineages or ())}
        case["column_lineage"] = [list(p) for p in sorted(pairs)]
        case["metadata"] = metadata_of(metadata_provider)
        calls.append(case)

    helpers.generate_metadata_providers = recording_generate_metadata_providers
    helpers.assert_table_lineage_equal = record_table
    helpers.assert_column_lineage_equal = record_column

    class Recorder:
        def __init__(self):
            self.cases = []
            self.failed = {}  # nodeid -> reason
            self.collect_errors = {}
            self.without_calls = []

        @pytest.hookimpl(hookwrapper=True)
        def pytest_runtest_protocol(self, item, nextitem):
            calls.clear()
            self.current_failed = False
            yield
            if self.current_failed:
                return
            if not calls:
                self.without_calls.append(item.nodeid)
            for n, case in enumerate(calls, 1):
                suffix = f"#{n}" if len(calls) > 1 else ""
                self.cases.append(dict(case, id=item.nodeid + suffix))

        def pytest_runtest_logreport(self, report):
            if report.failed or (report.when == "call" and report.skipped):
                self.current_failed = True
                self.failed.setdefault(report.nodeid, f"{report.when}: {short_reason(report)}")

        def pytest_collectreport(self, report):
            if report.failed:
                self.collect_errors[report.nodeid] = short_reason(report)

    recorder = Recorder()
    args = [
        os.path.join(sdist, "tests", "sql"),
        "--rootdir", sdist,
        "-c", os.path.join(sdist, "pyproject.toml"),
        "-p", "no:cacheprovider",
        "-q",
    ]
    # pytest's own report goes nowhere: stdout carries only the JSON, stderr our summary.
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        code = pytest.main(args, plugins=[recorder])
    stray = sorted(
        name for name, module in sys.modules.items()
        if name.split(".")[0] == "sqllineage"
        and os.path.abspath(getattr(module, "__file__", None) or "").startswith(sdist + os.sep)
    )
    if stray:
        sys.exit(f"sqllineage modules imported from the sdist, not the installed package: {stray}")
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        sys.exit(f"pytest could not run sqllineage's tests (exit {int(code)}): {recorder.collect_errors}")
    if recorder.collect_errors:
        for nodeid, reason in sorted(recorder.collect_errors.items()):
            print(f"collection error, left out: {nodeid}: {reason}", file=sys.stderr)

    merged = {}
    for case in sorted(recorder.cases, key=lambda c: c["id"]):
        body = {k: v for k, v in case.items() if k != "id"}
        key = json.dumps(body, sort_keys=True)
        if key in merged:
            merged[key]["ids"].append(case["id"])
        else:
            merged[key] = dict(case, ids=[case["id"]])
    cases = sorted(merged.values(), key=lambda c: c["id"])
    json.dump(cases, sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")

    for nodeid, reason in sorted(recorder.failed.items()):
        print(f"left out (failed under the recorder): {nodeid}: {reason}", file=sys.stderr)
    kinds = defaultdict(int)
    instances = defaultdict(int)
    for case in cases:
        kinds[case["kind"]] += 1
        instances[case["kind"]] += len(case["ids"])
    print(
        "sqllineage cases: "
        + ", ".join(f"{kind} {kinds[kind]} (from {instances[kind]} calls)" for kind in sorted(kinds))
        + f"; {len(recorder.failed)} tests left out (failed under the recorder),"
        f" {len(recorder.without_calls)} passed without calling a helper",
        file=sys.stderr,
    )


def short_reason(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    if report.skipped and isinstance(report.longrepr, tuple):
        text = "skipped: " + str(report.longrepr[2])
    line = text.strip().splitlines()[0] if text.strip() else "?"
    return line[:200]


if __name__ == "__main__":
    main()
