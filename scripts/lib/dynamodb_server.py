"""The local DynamoDB-compatible server for tests and local runs: moto's server, one request at a time.

moto's `moto_server` serves requests on threads, but its DynamoDB transactions are not safe under
concurrency (a transaction snapshots and restores whole tables without a lock, so concurrent ones fail
with 500s or undo each other's writes). Real DynamoDB serializes conflicting transactions; serving one
request at a time gives the same guarantee. Clients still issue requests concurrently.

Usage: python dynamodb_server.py HOST PORT
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
