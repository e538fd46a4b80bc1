"""The command line, checked through the library (sqlite-utils style): each command runs in a
real subprocess-free CliRunner against the real database and models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PHOTOS, require_data
from typer.testing import CliRunner

from pgface import Pgface, Settings, verdicts
from pgface.cli import app
from pgface.models.packs import sample_photos
from pgface.models.sessions import available_providers


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment that points the CLI at this test's database and models."""
    return {
        "PGFACE_DATABASE_URL": settings.database_url or "",
        "PGFACE_MODELS_DIR": str(settings.models_dir),
        "PGFACE_DATA_DIR": str(settings.data_dir),
    }


runner = CliRunner()


def test_index_then_search_json(env: dict[str, str], pf: Pgface) -> None:
    t1 = [p for p in sample_photos() if p.name == "t1.jpg"][0]
    done = runner.invoke(app, ["index", "--json", *map(str, sample_photos())], env=env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["indexed"] == len(sample_photos()) and report["failures"] == []
    assert pf.stats()["faces"] == report["faces"]  # what the CLI says is what is stored

    found = runner.invoke(app, ["search", str(t1), "--top", "2", "--json"], env=env)
    assert found.exit_code == 0, found.output
    result = json.loads(found.stdout)
    assert result["model"] == "buffalo_sc" and isinstance(result["threshold"], float)
    assert len(result["faces"]) == 6
    for face in result["faces"]:
        best = face["matches"][0]
        assert best["path"] == str(t1.resolve()) and best["similarity"] > 0.99
        assert set(best) == {"face_id", "photo_id", "path", "bbox", "person_id", "person_name",
                             "similarity", "missing", "verdict"}
        assert best["verdict"] == "same"  # the photo itself, in a library of a few faces
    assert result["library_size"] == report["faces"]
    assert result["same_person_similarity"] == verdicts.same_person_similarity(
        report["faces"], "buffalo_sc", result["threshold"])


def test_index_reports_bad_files_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = runner.invoke(app, ["index", "--quiet", str(bad), str(sample_photos()[0])], env=env)
    assert done.exit_code == 1
    assert f"{bad}: " in done.stderr and "1 photos indexed" in done.stderr


def test_compare_json(env: dict[str, str]) -> None:
    people = require_data(PHOTOS / "people")
    a, b = sorted((people / "kit_harington").iterdir())[:2]
    done = runner.invoke(app, ["compare", str(a), str(b), "--json"], env=env)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["same_person"] is True and result["similarity"] >= result["threshold"]

    other = sorted((people / "rose_leslie").iterdir())[0]
    done = runner.invoke(app, ["compare", str(a), str(other), "--json"], env=env)
    assert json.loads(done.stdout)["same_person"] is False


def test_errors_are_one_clean_line(env: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.jpg"
    done = runner.invoke(app, ["search", str(missing)], env=env)
    assert done.exit_code == 1
    assert done.stderr.strip().startswith("error:") and str(missing) in done.stderr
    assert "Traceback" not in done.output


def test_stats_names_model_and_provider(env: dict[str, str]) -> None:
    done = runner.invoke(app, ["stats", "--json"], env=env)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    # CUDA where there is a GPU, else OpenVINO where installed, else ONNX Runtime's CPU.
    expected = available_providers(Settings().providers)[0]
    assert result["model_pack"] == "buffalo_sc" and result["provider"].startswith(expected)
    assert result["photos"] == 0
    assert tuple(int(v) for v in result["pgvector_version"].split(".")[:2]) >= (0, 7)


def test_every_command_help_has_an_example() -> None:
    import typer.main

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        subs = getattr(sub, "commands", {name: sub})
        for sub_name, leaf in subs.items():
            assert "Example:" in (leaf.help or ""), f"{name} {sub_name} has no example"
