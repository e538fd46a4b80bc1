#!/usr/bin/env bash
# Set up pgface in ./.venv (what running it needs; the test tools come with test.sh) and run
# the demo on the embedded PostgreSQL with the sample photos that ship with the install.
# Works for root and for an ordinary user; safe to run again.
#   bash setup.sh            install, then run `pgface demo`
#   bash setup.sh --no-demo  install only (the test script uses this)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"

# A venv whose creation was cut short (Ctrl-C during `python3 -m venv`) has a python but no
# working pip, and every later run failed on it: made again.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
    echo "creating the virtual environment in $(pwd)/.venv"
    "$PYTHON" -m venv --clear .venv
fi
# The editable install is quiet when nothing changed; pip's own index settings are respected.
echo "installing pgface and its dependencies into .venv (about 760 MB the first time)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
# An editable install leaves pgface's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE
# is set (many container images set it) every command compiled them again, about 0.15 s of
# the 1.1 s of CPU `pgface --version` takes on a 2-core VM. Python reads these files whatever
# that variable says, and compiles a module again (in memory) once its source is newer.
.venv/bin/python -m compileall -q src >/dev/null

if [ "${1:-}" != "--no-demo" ]; then
    .venv/bin/pgface demo
    echo
    echo "pgface is installed in $(pwd)/.venv: run .venv/bin/pgface --help, or activate the venv"
    echo "first (. .venv/bin/activate) to type pgface as the README does."
fi
