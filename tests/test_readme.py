"""Every example of the README runs as written: its Python example and each `pgface` command
line, through a real shell, with HOME pointed at a folder of real photos (`~/Pictures`,
`~/people/<name>/`) and the test's database. `pgface serve` runs until stopped: test_api.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PHOTOS, REPO, require_data

from pgface import Settings

README = REPO / "README.md"


def readme_blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return [m[1] for m in re.finditer(rf"```{language}\n(.*?)```", text, re.DOTALL)]


def command_lines() -> list[str]:
    lines = [line.strip() for block in readme_blocks("bash") for line in block.splitlines()]
    return [line for line in lines
            if line.startswith("pgface ") and not line.startswith("pgface serve")]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A user's home: photos in ~/Pictures (some in 2019/ and old/), people in ~/people, and
    the photos the examples name in the current folder."""
    photos = require_data(PHOTOS)
    home = tmp_path / "home"
    pictures = home / "Pictures"
    shutil.copytree(photos / "people" / "obama", pictures / "obama")
    shutil.copytree(photos / "people" / "biden", pictures / "biden")
    shutil.copytree(photos / "people" / "rose_leslie", pictures / "2019")
    shutil.copytree(photos / "people" / "kit_harington", pictures / "old")
    shutil.copy(photos / "groups" / "couple.jpg", pictures / "couple.jpg")
    for name, source in (("obama", "obama"), ("biden", "biden"), ("Someone", "alex_lacamoire")):
        shutil.copytree(photos / "people" / source, home / "people" / name)
    work = home / "work"
    work.mkdir()
    shutil.copy(photos / "queries" / "obama1.jpg", work / "someone.jpg")
    shutil.copy(photos / "people" / "obama" / "obama.jpg", work / "a.jpg")
    shutil.copy(photos / "queries" / "obama_and_biden.jpg", work / "b.jpg")
    shutil.copy(photos / "queries" / "obama_and_biden.jpg", work / "party.jpg")
    for folder in [home, *(p for p in home.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    return home


def environment(home: Path, settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGFACE_")}
    env.update(
        HOME=str(home),
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        PYTHONPATH=str(REPO / "src"),
        PGFACE_DATABASE_URL=settings.database_url or "",
        PGFACE_MODELS_DIR="~/models",  # settings paths take `~` too
    )
    return env


def run(args: list[str], home: Path, settings: Settings) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=home / "work", env=environment(home, settings),
                          capture_output=True, text=True, timeout=600)


def test_readme_has_the_examples_this_test_runs() -> None:
    assert len(readme_blocks("python")) == 1
    commands = command_lines()
    assert "pgface index ~/Pictures" in " ".join(commands)
    assert any(c.startswith("pgface people enrol ~/people") for c in commands)


def test_readme_python_example_runs_as_written(home: Path, settings: Settings) -> None:
    done = run([sys.executable, "-c", readme_blocks("python")[0]], home, settings)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # The search found the query's person in ~/Pictures (the `~` was expanded).
    assert any(str(home / "Pictures" / "obama") in line for line in lines), done.stdout
    assert lines[-2] == "True"  # compare: a.jpg's face is in b.jpg
    assert lines[-1].startswith("Removal(photos=")
    assert "photos=0" not in lines[-1]  # ~/Pictures/old was removed


def test_readme_command_lines_run_as_written(home: Path, settings: Settings) -> None:
    outputs = {}
    for line in command_lines():
        done = run(["bash", "-c", line], home, settings)
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        outputs[line] = done.stdout + done.stderr
    indexed = next(out for line, out in outputs.items() if line.startswith("pgface index ~/Pi"))
    assert re.search(r"[1-9]\d* photos indexed", indexed), indexed
    enrolled = next(out for line, out in outputs.items() if "people enrol" in line)
    assert "Someone" in enrolled and "obama" in enrolled, enrolled
    assert (home / "models" / "buffalo_sc").is_dir()  # PGFACE_MODELS_DIR=~/models expanded
