#!/usr/bin/env bash
# Set up pgface in ./.venv (what running it needs; the test tools come with test.sh) and run
# the demo on the embedded PostgreSQL with the sample photos that ship with the install.
# Works for root and for an ordinary user; safe to run again.
#   bash setup.sh            install, then run `pgface demo`
#   bash setup.sh --no-demo  install only (the test script uses this)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# The editable install is quiet when nothing changed; pip's own index settings are respected.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .

if [ "${1:-}" != "--no-demo" ]; then
    .venv/bin/pgface demo
    echo
    echo "pgface is installed in $(pwd)/.venv: run .venv/bin/pgface --help (or activate the venv)."
fi
