"""pgface as a package: what its wheel and source distribution hold, and the Python it needs."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


def test_the_code_needs_no_python_newer_than_it_says() -> None:
    """Probe packaging34: requires-python said 3.10, and `from datetime import UTC` (3.11) made
    `pgface serve` and the whole HTTP API fail to import there; ruff's target checks syntax,
    not the standard library's names. vermin reads both."""
    vermin = pytest.importorskip("vermin", reason="vermin is not installed (the dev extra)")
    oldest = re.search(r'requires-python = ">=(\d+\.\d+)"',
                       (REPO / "pyproject.toml").read_text(encoding="utf-8"))[1]
    command = [str(Path(sys.executable).parent / "vermin"), "--no-tips", "--violations",
               "--eval-annotations", "--backport", "typing_extensions", f"-t={oldest}-",
               "src", "bench", "tests"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (vermin.__name__, done.stdout[-3000:], done.stderr[-2000:])


def project_files() -> list[str]:
    """The project's files as a clean clone of it holds them, changes not yet committed in:
    those git tracks and those it would (an egg-info a checkout's install left lists files
    setuptools then puts in the sdist whatever MANIFEST.in says)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no list of the project's files to build from")
    return [name for name in listed.stdout.splitlines() if (REPO / name).is_file()]


def build(kind: str, folder: Path) -> Path:
    """The package built as setuptools builds it for pip (`wheel` or `sdist`) into FOLDER,
    from a copy of the project's files."""
    source = folder / "project"
    for name in project_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((REPO / name).read_bytes())
    script = (f"from setuptools import build_meta; "
              f"print(build_meta.build_{kind}({str(folder)!r}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=source, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder / done.stdout.strip().splitlines()[-1]


def test_the_wheel_holds_what_pgface_loads_and_both_licences(tmp_path: Path) -> None:
    """Every file the package opens at run time (its migrations, the web page, its data) and
    the licences: no LICENSE shipped, and the models' terms were in README's text alone
    (probe packaging34)."""
    names = zipfile.ZipFile(build("wheel", tmp_path)).namelist()
    shipped = {name for name in names if name.startswith("pgface/")}
    for source in (REPO / "src" / "pgface").rglob("*"):
        relative = source.relative_to(REPO / "src").as_posix()
        if source.is_file() and "__pycache__" not in relative:
            assert relative in shipped, relative
    licences = {Path(name).name for name in names if "/licenses/" in name}
    assert licences == {"LICENSE", "LICENSE-MODELS.md"}, names


def test_the_source_distribution_can_run_its_tests_and_follow_its_links(tmp_path: Path) -> None:
    """Probe packaging34: the sdist held the test files without tests/conftest.py, their
    helpers and Django project (collection failed: No module named 'conftest'), and none of
    docs/, which README links to."""
    with tarfile.open(build("sdist", tmp_path)) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    missing = sorted(name for name in project_files()
                     if name.startswith(("tests/", "docs/", "bench/")) and name not in names)
    assert not missing, missing
    assert {"LICENSE", "LICENSE-MODELS.md", "setup.sh", "test.sh"} <= names
