#!/usr/bin/env bash
# Builds the Python connectors into WebAssembly components with componentize-py:
#   examples/python-dummy/           -> target/examples/python-dummy/component.wasm
#   host/tests/fixtures/wasi-probe/  -> target/examples/wasi-probe/component.wasm
#     (a test-only component: its authorize probes what WASI lets it reach)
#
# Needs python3 and pip (PyPI reachable the first time). Idempotent
# and quick when nothing changed: the venv is made once, and a component is
# rebuilt only when its sources, the WIT contract, this script or the tool
# version changed (a stamp file records a hash of them all).
#
# Layout under target/examples/ (never committed):
#   venv/                    componentize-py, pinned
#   bindings/                Python bindings of the contract (world `plugin`),
#                            for editors, type checkers and the unit tests;
#                            componentize-py makes its own copy when building
#   <name>/component.wasm    the components
set -euo pipefail
cd "$(dirname "$0")/../.."
SELF=examples/python-dummy/build.sh

COMPONENTIZE_PY_VERSION=0.25.1
WIT_DIR=wit/since_v1.0.0
WORLD=plugin
OUT=target/examples
VENV=$OUT/venv
TOOL=$VENV/bin/componentize-py

# 1. The tool, in a venv of its own so the build never touches the user's
#    Python. `pip install` only when the pinned version is missing.
if [ "$("$TOOL" --version 2>/dev/null | awk '{print $2}')" != "$COMPONENTIZE_PY_VERSION" ]; then
    echo "build.sh: installing componentize-py $COMPONENTIZE_PY_VERSION into $VENV" >&2
    rm -rf "$VENV"
    if python3 -m venv "$VENV" 2>/dev/null; then
        PIP=("$VENV/bin/python" -m pip)
    else
        # Debian without python3-venv has no ensurepip: a venv without pip,
        # filled by the system's pip (22.3+ for --python).
        rm -rf "$VENV"
        python3 -m venv --without-pip "$VENV"
        PIP=(python3 -m pip --python "$VENV/bin/python")
    fi
    "${PIP[@]}" install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# Hash of everything that determines an output, so unchanged inputs cost
# nothing. `$1...` are files or directories (caches excluded).
inputs_hash() {
    {
        echo "componentize-py $COMPONENTIZE_PY_VERSION world $WORLD"
        find "$@" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 |
            sort -z | xargs -0 sha256sum
    } | sha256sum | awk '{print $1}'
}

# 2. Bindings of the contract.
bindings_hash=$(inputs_hash "$WIT_DIR" "$SELF")
if [ "$(cat "$OUT/bindings/.stamp" 2>/dev/null)" != "$bindings_hash" ]; then
    rm -rf "$OUT/bindings"
    "$TOOL" -d "$WIT_DIR" -w "$WORLD" bindings "$OUT/bindings"
    echo "$bindings_hash" >"$OUT/bindings/.stamp"
fi

# 3. The components. componentize-py imports `app` (and what it imports)
#    at build time and snapshots the interpreter, so module-level work is
#    done once, not per call.
build() { # build NAME SOURCE_DIR
    local name=$1 src=$2
    local dest=$OUT/$name
    local hash
    hash=$(inputs_hash "$src" "$WIT_DIR" "$SELF")
    if [ -f "$dest/component.wasm" ] && [ "$(cat "$dest/.stamp" 2>/dev/null)" = "$hash" ]; then
        return
    fi
    # Unit tests first, natively (fake host imports): a component is only
    # built from code that passes them. -B: no __pycache__ in the sources.
    if compgen -G "$src/test_*.py" >/dev/null; then
        local out
        if ! out=$(PYTHONPATH="$PWD/$OUT/bindings:$PWD/$src" "$VENV/bin/python" -B \
            -m unittest discover -s "$src" -p 'test_*.py' 2>&1); then
            echo "$out" >&2
            echo "build.sh: unit tests of $src failed" >&2
            exit 1
        fi
    fi
    # Build from a copy of the modules (tests left out): componentize-py
    # writes __pycache__ next to the sources it imports.
    rm -rf "$dest/src"
    mkdir -p "$dest/src"
    find "$src" -maxdepth 1 -name '*.py' ! -name 'test_*' -exec cp {} "$dest/src/" \;
    # An empty environment: componentize-py adds $VIRTUAL_ENV's site-packages
    # to the Python path, and only the copied modules belong in the component.
    env -i PATH=/usr/bin:/bin HOME=/nonexistent \
        "$PWD/$TOOL" -q -d "$PWD/$WIT_DIR" -w "$WORLD" componentize \
        -p "$PWD/$dest/src" -o "$PWD/$dest/component.wasm.tmp" app
    mv "$dest/component.wasm.tmp" "$dest/component.wasm"
    echo "$hash" >"$dest/.stamp"
    echo "build.sh: built $dest/component.wasm ($(du -h "$dest/component.wasm" | cut -f1))" >&2
}

build python-dummy examples/python-dummy
build wasi-probe host/tests/fixtures/wasi-probe
