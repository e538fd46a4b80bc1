#!/usr/bin/env bash
# Install pgface with its test and benchmark tools, then run ruff and the whole test suite.
# The web-page tests drive Debian's chromium: installed here when running as root; an
# ordinary user without it gets those tests skipped with the reason printed.
set -euo pipefail
cd "$(dirname "$0")"
bash setup.sh --no-demo
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install -e ".[dev,bench,scale]"
# insightface's sample group photo (t1.jpg) for the tests, without its dependencies: they would
# bring opencv-python beside opencv-python-headless (pyproject.toml says why).
pip_install --no-deps "insightface==2.1"
# The PyTorch backend's tests run its code on the CPU: a CPU build of PyTorch (a 190 MB wheel,
# 0.9 GB installed; PyPI's default build brings CUDA, several GB), where pip finds one (this
# machine's pip config points at a local wheel). Without it those tests are skipped, saying so.
TORCH_CPU="${PGFACE_TEST_TORCH:-torch==2.13.0+cpu}"
if ! pip_install "$TORCH_CPU" 2>/dev/null; then
    echo "note: $TORCH_CPU not found; the PyTorch backend tests will be skipped" >&2
fi

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: chromium is not installed; the browser tests will be skipped" \
             "(as root: apt-get install chromium)" >&2
    fi
fi

.venv/bin/ruff check src tests bench
# Two test processes (pytest-xdist): much of a test's time is spent waiting on PostgreSQL, a
# browser, a subprocess or a timeout, and the other process uses that core meanwhile. The tests
# of the indexed LFW library share one process (tests/conftest.py). PGFACE_TEST_WORKERS=0 runs
# them all in this one; an -n given to test.sh wins, as the last one does.
exec .venv/bin/python -m pytest -n "${PGFACE_TEST_WORKERS:-2}" --dist loadgroup "$@"
