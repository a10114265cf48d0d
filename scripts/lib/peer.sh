# The peer test suites (sqllineage's and sqlglot's own tests), installed idempotently for the tests
# that compare against them: the pinned packages of tests/peer/requirements.txt into
# .tools/peer-venv, and the same versions' sdists, downloaded from PyPI and extracted into
# .tools/peer/<name>-<version>/. Their cases are read from there at test time
# (tests/peer/sqllineage_cases.py, tests/peer/sqlglot_statements.py), never copied into the
# repository. Source scripts/lib/tools.sh first (for TOOLS_DIR), then this, then call ensure_peer_suites.

TOOLS_DIR="${TOOLS_DIR:-$(pwd)/.tools}"
PEER_VENV="$TOOLS_DIR/peer-venv"
PEER_DIR="$TOOLS_DIR/peer"
PEER_REQUIREMENTS="tests/peer/requirements.txt"
# The packages whose sdists (tests included) are extracted into $PEER_DIR, at their pinned versions.
PEER_SDISTS=(sqllineage sqlglot)

# The version pinned for package $1 in $PEER_REQUIREMENTS.
peer_version() {
    sed -n "s/^$1==\([^[:space:]#]*\).*/\1/p" "$PEER_REQUIREMENTS"
}

# The extracted sdist of package $1 (e.g. .tools/peer/sqllineage-1.5.9).
peer_sdist_dir() {
    echo "$PEER_DIR/$1-$(peer_version "$1")"
}

ensure_peer_suites() {
    local stamp="$PEER_VENV/.requirements"
    if ! [[ -x "$PEER_VENV/bin/python" ]] || ! cmp -s "$PEER_REQUIREMENTS" "$stamp"; then
        echo "Installing the peer test suites' packages into $PEER_VENV (once)..." >&2
        rm -rf "$PEER_VENV"
        python3 -m venv "$PEER_VENV"
        "$PEER_VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
        "$PEER_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PEER_REQUIREMENTS"
        cp "$PEER_REQUIREMENTS" "$stamp"
    fi

    # The sdists are fetched again only when their own pins change (their stamp lists those pins).
    stamp="$PEER_DIR/.sdists"
    local name version specs=()
    for name in "${PEER_SDISTS[@]}"; do
        version="$(peer_version "$name")"
        [[ -n "$version" ]] || { echo "no $name==VERSION pin in $PEER_REQUIREMENTS" >&2; return 1; }
        specs+=("$name==$version")
        [[ -d "$PEER_DIR/$name-$version/tests" ]] || rm -f "$stamp"
    done
    if [[ "$(cat "$stamp" 2>/dev/null)" != "${specs[*]}" ]]; then
        echo "Downloading the peer test suites' sdists into $PEER_DIR (once)..." >&2
        rm -rf "$PEER_DIR"
        mkdir -p "$PEER_DIR/sdists"
        "$PEER_VENV/bin/pip" download --quiet --disable-pip-version-check \
            --no-deps --no-binary :all: --dest "$PEER_DIR/sdists" "${specs[@]}"
        for name in "${PEER_SDISTS[@]}"; do
            version="$(peer_version "$name")"
            tar -xzf "$PEER_DIR/sdists/$name-$version.tar.gz" -C "$PEER_DIR"
            [[ -d "$PEER_DIR/$name-$version/tests" ]] \
                || { echo "$name's sdist has no tests/ in $PEER_DIR/$name-$version" >&2; return 1; }
        done
        echo "${specs[*]}" >"$stamp"
    fi
}
