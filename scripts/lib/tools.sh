# The tools the tests need, installed idempotently: the Python-distributed ones (scripts/requirements.txt)
# into .tools/venv (ensure_tools), and the browser-test ones (ensure_web_tools). Source it, then call them.

TOOLS_DIR="${TOOLS_DIR:-$(pwd)/.tools}"
VENV="$TOOLS_DIR/venv"

ensure_tools() {
    local stamp="$VENV/.requirements"
    if [[ -x "$VENV/bin/python" ]] && cmp -s scripts/requirements.txt "$stamp"; then
        return 0
    fi
    echo "Installing the test tools into $VENV (once)..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements.txt
    cp scripts/requirements.txt "$stamp"
}

# Installs what the browser tests and the TypeScript client's check need, idempotently: Debian's
# Chromium (never a browser download) when /usr/bin/chromium is missing, and tests/web's npm packages
# (playwright-core, openapi-typescript, openapi-fetch, typescript) from its lockfile.
ensure_web_tools() {
    if ! [[ -x /usr/bin/chromium ]]; then
        echo "Installing Debian's chromium package (once)..." >&2
        local sudo=""
        [[ "$(id -u)" == 0 ]] || sudo="sudo"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get install -y --no-install-recommends chromium >/dev/null \
            || { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends chromium >/dev/null; }
    fi
    if ! cmp -s tests/web/package-lock.json tests/web/node_modules/.installed-lock.json; then
        echo "Installing tests/web's npm packages (once)..." >&2
        npm ci --prefix tests/web --no-audit --no-fund --silent
        cp tests/web/package-lock.json tests/web/node_modules/.installed-lock.json
    fi
}

# A free TCP port on loopback.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something answers HTTP (any status) on 127.0.0.1:$1, for up to 30 s.
wait_for_http() {
    python3 - "$1" <<'PY'
import sys, time, urllib.error, urllib.request
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(f"nothing answered on 127.0.0.1:{sys.argv[1]}")
PY
}

# Starts moto's server (the local DynamoDB-compatible server, Secrets Manager included) on port $2,
# or a free one; sets MOTO_PORT and MOTO_PID. Logs to $1.
start_moto() {
    local log="$1"
    MOTO_PORT="${2:-$(free_port)}"
    "$VENV/bin/python" scripts/lib/dynamodb_server.py 127.0.0.1 "$MOTO_PORT" >"$log" 2>&1 &
    MOTO_PID=$!
    wait_for_http "$MOTO_PORT"
}

# Installs the benchmarks' reference servers, idempotently: FastAPI and uvicorn into
# .tools/bench-venv (bench/references/requirements.txt), Node.js `ws` into bench/references/node_modules.
ensure_bench_references() {
    local venv="$TOOLS_DIR/bench-venv" stamp="$TOOLS_DIR/bench-venv/.requirements"
    if ! [[ -x "$venv/bin/python" ]] || ! cmp -s bench/references/requirements.txt "$stamp"; then
        echo "Installing the Python reference server into $venv (once)..." >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r bench/references/requirements.txt
        cp bench/references/requirements.txt "$stamp"
    fi
    if ! cmp -s bench/references/package-lock.json bench/references/node_modules/.installed-lock.json; then
        echo "Installing the Node.js reference server's packages (once)..." >&2
        npm ci --prefix bench/references --no-audit --no-fund --silent
        cp bench/references/package-lock.json bench/references/node_modules/.installed-lock.json
    fi
}
