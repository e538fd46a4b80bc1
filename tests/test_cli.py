"""The command line, checked through the library (sqlite-utils style): each command runs in a
real subprocess-free CliRunner against the real database and models."""

from __future__ import annotations

import importlib.metadata
import inspect
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import typer
from conftest import PHOTOS, require_data
from typer.testing import CliRunner

from pgface import Pgface, Settings, verdicts
from pgface.cli import app
from pgface.cli.common import Terminated, handle_errors, stopped_by_sigterm_as_by_ctrl_c
from pgface.cli.serve import GRACEFUL_SHUTDOWN_S, _listen
from pgface.db.connection import DatabaseError, migrations
from pgface.errors import PgfaceError
from pgface.models.packs import resolve_pack, sample_photos
from pgface.models.sessions import available_providers

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


def test_search_of_a_stored_face_answers_as_the_python_api(env: dict[str, str],
                                                          pf: Pgface) -> None:
    """`pgface search --face ID`: where else is the person of a face `people show` lists."""
    pf.index(sample_photos())
    t1 = [p for p in sample_photos() if p.name == "t1.jpg"][0]
    face_id = pf.photo_faces([t1])[str(t1.resolve())][0].face_id
    args = ["search", "--face", str(face_id), "--top", "3", "--threshold", "-1"]
    found = runner.invoke(app, [*args, "--json"], env=env)
    assert found.exit_code == 0, found.output
    answer = json.loads(found.stdout)
    assert answer == json.loads(json.dumps(pf.search_face(face_id, top=3, threshold=-1.0)
                                           .to_dict()))
    assert answer["source"] == f"face {face_id}" and len(answer["faces"][0]["matches"]) == 3
    assert face_id not in {m["face_id"] for m in answer["faces"][0]["matches"]}
    table = runner.invoke(app, args, env=env)
    assert table.exit_code == 0 and table.stdout.startswith(f"face {face_id} at ["), table.stdout
    for given, said in (([], "missing: give a query photo, or --face ID for a stored face"),
                        ([str(t1), "--face", str(face_id)],
                         "a query photo or --face ID for a stored face, not both")):
        done = runner.invoke(app, ["search", *given], env={**env, "COLUMNS": "200"})
        assert done.exit_code == 2 and said in done.stderr, (given, done.stderr)
    missing = runner.invoke(app, ["search", "--face", "987654321"], env=env)
    assert (missing.exit_code, missing.stderr) == (1, "error: face 987654321 not found\n")


def test_index_reports_bad_files_and_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = runner.invoke(app, ["index", "--quiet", str(bad), str(sample_photos()[0])], env=env)
    assert done.exit_code == 1
    assert f"failed {bad}: " in done.stderr and "1 photo indexed" in done.stderr
    assert "skipped" not in done.stderr  # a failure is named a failure

    again = runner.invoke(app, ["index", "--quiet", str(sample_photos()[0])], env=env)
    assert again.exit_code == 0, again.output
    assert "0 photos indexed, 0 faces, 1 already indexed, 0 failed" in again.stderr


def test_lines_are_not_broken_at_80_columns_where_output_is_not_a_terminal(
        env: dict[str, str]) -> None:
    # Piped into a log, the summary line of `index` and the demo's database URL were cut at
    # rich's 80 columns ("...&por" / "t=5432"), and a script grepping them found half a line.
    done = runner.invoke(app, ["index", "--quiet", str(sample_photos()[0])], env=env)
    assert done.exit_code == 0, done.output
    [summary] = [line for line in done.stderr.splitlines()
                 if re.match(r"\d+ photos? indexed", line)]
    assert re.fullmatch(r"\d+ photos? indexed, .* failed, in .* faces/s\)", summary), summary
    assert len(summary) > 80
    demo = runner.invoke(app, ["demo"], env=env)
    assert demo.exit_code == 0, demo.output
    # each place says its verdict: a stranger just above the threshold was listed as Yao Ming
    assert re.search(r"players\.jpg face at .*: similarity 0\.\d{4}, same person \((same "
                     r"person from 0\.\d+, possible from|threshold) 0\.23\)", demo.stdout), (
        demo.stdout)
    [database] = [line for line in demo.stdout.splitlines() if line.startswith("database:")]
    # the models' licence, which no command said (probe packaging34)
    assert ("the buffalo_sc models are InsightFace's, for non-commercial research use only "
            "(LICENSE-MODELS.md)") in demo.stderr
    # the samples stay, and the line says how to forget them: the command it gives works
    [forget] = [line for line in demo.stderr.splitlines() if "sample photos stay" in line]
    removed = runner.invoke(app, shlex.split(forget.split(": pgface ", 1)[1]), env=env)
    assert removed.exit_code == 0 and "removed" in removed.output, removed.output
    assert re.search(r"; postgresql://\S+$", database), demo.stdout


def test_index_says_people_kept_are_not_taken_back_by_undo(env: dict[str, str],
                                                           tmp_path: Path) -> None:
    # It said "`pgface people undo` takes it back": undo passes over a keep, and a user who
    # followed the advice undid the naming before it instead.
    photo = tmp_path / "t1.jpg"
    shutil.copyfile(next(p for p in sample_photos() if p.name == "t1.jpg"), photo)
    runner.invoke(app, ["index", "--quiet", str(photo)], env=env)
    found = json.loads(runner.invoke(app, ["search", str(photo), "--json"], env=env).stdout)
    face = found["faces"][0]["matches"][0]["face_id"]
    assert runner.invoke(app, ["people", "name", "Ada", str(face)], env=env).exit_code == 0
    assert runner.invoke(app, ["remove", str(photo)], env=env).exit_code == 0
    again = runner.invoke(app, ["index", str(photo)], env=env)
    assert again.exit_code == 0, again.output
    [kept] = [line for line in again.stderr.splitlines() if line.startswith("kept their")]
    assert kept.startswith("kept their people: 1 face of") and "undo` passes over" in kept, kept
    history = json.loads(runner.invoke(app, ["people", "history", "--json"], env=env).stdout)
    assert [(c["kind"], c["undoable"]) for c in history] == [("keep", False), ("name", True)]


def test_remove_of_a_path_not_there_says_so_and_names_its_other_unicode_form(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe i18n37: `pgface remove .../Zoë` typed (composed) of a folder a Mac named
    decomposed forgot nothing, said "0 paths forgotten" and exited 0, no word why; so did a
    path mistyped. The other form is named, not forgotten in its place (two names on Linux)."""
    decomposed = tmp_path / unicodedata.normalize("NFD", "Zoë")
    decomposed.mkdir()
    shutil.copyfile(next(p for p in sample_photos() if p.name == "yaoming.jpg"),
                    decomposed / "yao.jpg")
    assert runner.invoke(app, ["index", "--quiet", str(tmp_path)], env=env).exit_code == 0
    typed = runner.invoke(app, ["remove", str(tmp_path / "Zoë")], env=env)
    assert typed.exit_code == 0, typed.output
    assert typed.stdout.startswith("0 photos and their 0 faces removed"), typed.stdout
    assert f"note: {tmp_path / 'Zoë'} is not there, and nothing was stored at it; the same " \
           f"name in Unicode's decomposed form (NFD, as a Mac names files) is there" in \
           " ".join(typed.stderr.split()), typed.stderr
    mistyped = runner.invoke(app, ["remove", str(tmp_path / "Zoe")], env=env)
    assert mistyped.stderr.split() == f"note: {tmp_path / 'Zoe'} is not there, and nothing " \
        f"was stored at it".split(), mistyped.stderr
    forgotten = runner.invoke(app, ["remove", str(decomposed)], env=env)
    assert forgotten.stdout.startswith("1 photo and their 1 face removed"), forgotten.stdout
    assert "note:" not in forgotten.stderr, forgotten.stderr
    # deleted, the folder is forgotten by its name typed: what is stored under the other form
    # is gone too, as a prune forgets it ("nothing was stored at it": probe reprobe37b)
    assert runner.invoke(app, ["index", "--quiet", str(tmp_path)], env=env).exit_code == 0
    shutil.rmtree(decomposed)
    typed = runner.invoke(app, ["remove", str(tmp_path / "Zoë")], env=env)
    assert typed.stdout.startswith("1 photo and their 1 face removed"), typed.output
    # a folder whose name is not UTF-8 (Latin-1 "café"), given as pgface shows it while it is
    # there: read by its escapes only once it is gone; said so (it said "nothing was stored
    # at it": probe scripting37)
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9"))
    latin1.mkdir()
    shutil.copyfile(next(p for p in sample_photos() if p.name == "yaoming.jpg"),
                    latin1 / "yao.jpg")
    assert runner.invoke(app, ["index", "--quiet", str(tmp_path)], env=env).exit_code == 0
    shown = runner.invoke(app, ["remove", f"{tmp_path}/caf\\xe9"], env=env)
    assert "is not there" not in shown.stderr and (
        f"a folder that is there, which it reads so only once that folder is gone: give its "
        f"own name (in bash, $'{tmp_path}/caf\\xe9')") in " ".join(shown.stderr.split()), \
        shown.stderr


def test_index_reread_reads_the_files_an_unchanged_stamp_would_skip(
        env: dict[str, str], tmp_path: Path) -> None:
    photo = tmp_path / "a.jpg"
    shutil.copy(sample_photos()[1], photo)
    long_ago = time.time_ns() - 3600 * 10**9
    os.utime(photo, ns=(long_ago, long_ago))
    assert runner.invoke(app, ["index", "--quiet", str(photo)], env=env).exit_code == 0
    photo.write_bytes(b"\0" * photo.stat().st_size)  # other bytes, the same size and time
    os.utime(photo, ns=(long_ago, long_ago))
    # and the same change time (a file system that keeps none, a database restored from
    # before the change): what only --reread sees
    with psycopg.connect(env["PGFACE_DATABASE_URL"]) as conn:
        conn.execute("UPDATE photo_paths SET ctime_ns = %s WHERE path = %s",
                     [photo.stat().st_ctime_ns, os.path.realpath(photo)])
    unread = runner.invoke(app, ["index", "--json", str(tmp_path)], env=env)
    assert unread.exit_code == 0, unread.output
    assert (json.loads(unread.stdout)["skipped"], json.loads(unread.stdout)["failures"]) == (1, [])
    reread = runner.invoke(app, ["index", "--json", "--reread", str(tmp_path)], env=env)
    assert reread.exit_code == 1
    assert [f["file"] for f in json.loads(reread.stdout)["failures"]] == [str(photo)]


def test_index_passes_over_files_that_failed_unchanged_and_exits_0(env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    # A nightly run over a library with empty or broken files printed each as a failure and
    # exited 1 every night, though nothing had changed (probe nas33).
    from test_index import broken_library

    folder = tmp_path / "library"
    _, empty, corrupt = broken_library(folder)
    for moment in ("loop.jpg", "pipe.jpg"):  # failures of the moment: every run's
        (folder / moment).unlink()
    first = runner.invoke(app, ["index", "--quiet", str(folder)], env=env)
    assert first.exit_code == 1, first.output
    assert f"failed {empty}: file is empty" in first.stderr
    assert f"failed {corrupt}: corrupt or truncated" in first.stderr

    second = runner.invoke(app, ["index", "--quiet", str(folder)], env=env)
    assert second.exit_code == 0, second.output
    said = " ".join(second.stderr.split())
    assert not [line for line in second.stderr.splitlines() if line.startswith("failed ")]
    assert "0 failed" in said, said
    assert ("2 files that failed before and are unchanged were not read again (--reread "
            "reads them)") in said, said
    as_json = runner.invoke(app, ["index", "--json", str(folder)], env=env)
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert (report["unchanged_failures"], report["failures"], report["skipped"]) == (2, [], 1)

    reread = runner.invoke(app, ["index", "--json", "--reread", str(folder)], env=env)
    assert reread.exit_code == 1
    report = json.loads(reread.stdout)
    assert report["unchanged_failures"] == 0
    assert sorted(f["file"] for f in report["failures"]) == [str(corrupt), str(empty)]

    empty.unlink()  # one left: said as one
    one = runner.invoke(app, ["index", "--quiet", str(folder)], env=env)
    assert one.exit_code == 0, one.output
    assert ("1 file that failed before and is unchanged was not read again (--reread reads "
            "it)") in " ".join(one.stderr.split()), one.stderr

    # `remove` of a folder of 25,000 remembered failures said "0 paths forgotten" (scale39)
    removed = runner.invoke(app, ["remove", str(folder)], env=env)
    assert removed.exit_code == 0, removed.output
    # the empty file deleted above is among them
    assert "1 path and 2 files remembered as failed forgotten" in removed.stdout, removed.stdout
    again = runner.invoke(app, ["remove", "--json", str(folder)], env=env)
    assert json.loads(again.stdout)["failed_files"] == 0, again.output


def test_index_of_a_renamed_folder_passes_over_its_failed_file_and_exits_0(
        env: dict[str, str], tmp_path: Path) -> None:
    # Probe reprobe39: `mv real real2; pgface index real2` said "2 moved or renamed", read the
    # broken file again, failed it again and exited 1; failed_files kept both paths for ever.
    from test_index import broken_library

    folder = tmp_path / "real"
    broken_library(folder)
    for moment in ("loop.jpg", "pipe.jpg", "empty.jpg"):  # one broken file is enough here
        (folder / moment).unlink()
    assert runner.invoke(app, ["index", "--quiet", str(folder)], env=env).exit_code == 1

    renamed = folder.rename(tmp_path / "real2")
    done = runner.invoke(app, ["index", "--quiet", str(renamed)], env=env)
    assert done.exit_code == 0, done.output
    said = " ".join(done.stderr.split())
    assert "0 failed" in said and "1 moved or renamed" in said, said
    assert ("1 file that failed before and is unchanged was not read again (--reread reads "
            "it)") in said, said
    with psycopg.connect(env["PGFACE_DATABASE_URL"]) as conn:
        assert [p for p, in conn.execute("SELECT path FROM failed_files")] == [
            str((renamed / "corrupt.jpg").resolve())]


def test_a_folder_with_no_photo_is_a_warning_and_exit_1(env: dict[str, str],
                                                          tmp_path: Path) -> None:
    empty = tmp_path / "holiday"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    (empty / "@eaDir").mkdir()  # a NAS's thumbnails: passed over, and said so
    shutil.copy(sample_photos()[0], empty / "@eaDir" / "thumb.jpg")
    done = runner.invoke(app, ["index", "--quiet", str(empty)], env=env)
    assert done.exit_code == 1, done.output
    assert f"warning: {empty}: no photo in this folder" in done.stderr
    assert "passed over 1 hidden or system files and folders" in " ".join(done.stderr.split())

    as_json = runner.invoke(app, ["index", "--json", str(empty), str(sample_photos()[0])],
                            env=env)
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["empty_folders"] == [str(empty)] and report["indexed"] == 1
    assert report["passed_over"] == 1

    # With --prune, a folder emptied on purpose is only pruned, as a folder deleted whole is.
    pruned = runner.invoke(app, ["index", "--quiet", "--prune", str(empty)], env=env)
    assert pruned.exit_code == 0 and "warning" not in pruned.stderr, pruned.output


def test_index_exclude_leaves_out_what_it_matches_and_says_how_many(
        env: dict[str, str], tmp_path: Path) -> None:
    from test_index import BLANK_SPACED_OR_DOTTED_PATTERNS, excluded_library

    library = excluded_library(tmp_path / "library")
    done = runner.invoke(app, ["index", "--quiet", str(library), "--exclude", "Screenshots",
                               "--exclude", "*.png"], env=env)
    assert done.exit_code == 0, done.output
    said = " ".join(done.stderr.split())
    assert said.startswith("5 photos indexed"), said
    assert "excluded 3 files and folders (--exclude, PGFACE_INDEX_EXCLUDE)" in said, said

    # The setting, with the run's own patterns added to it; --json has the count
    as_json = runner.invoke(app, ["index", "--json", str(library), "--exclude", "2019/private"],
                            env={**env, "PGFACE_INDEX_EXCLUDE": "Screenshots,*.png"})
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert (report["excluded"], report["files"], report["skipped"]) == (4, 4, 4)

    # A pattern that can match nothing is a usage error naming the option, and why
    for wrong, said in (("", "an empty pattern"), ("/home/me/Photos/2019", "starts with '/'"),
                        *((pattern, words) for [pattern], words in
                          BLANK_SPACED_OR_DOTTED_PATTERNS)):
        refused = runner.invoke(app, ["index", str(library), "--exclude", wrong], env=env)
        assert refused.exit_code == 2 and "--exclude" in refused.stderr, refused.output
        assert said in " ".join(refused.stderr.replace("│", " ").split()), refused.stderr
    # and so is one with nothing to walk (--pending reads stored paths, each named)
    alone = runner.invoke(app, ["index", "--pending", "--exclude", "*.png"], env=env)
    assert alone.exit_code == 2 and "--exclude needs the PATH" in alone.stderr, alone.output


def test_index_exclude_matches_a_macs_decomposed_name_under_an_ascii_locale(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe hunt-i18n39: under LC_ALL=C with PYTHONUTF8=0 `--exclude Zoë` left in a folder a
    Mac named decomposed ("Zoe" and U+0308), which C.UTF-8 left out (docs/cli.md: names are
    matched in Unicode's composed form): os.walk listed it as 'Zoe\\udccc\\udc88', which NFC
    cannot compose."""
    library = tmp_path / "library"
    (library / "Zoe\u0308").mkdir(parents=True)
    shutil.copyfile(sample_photos()[1], library / "Zoe\u0308" / "z.jpg")
    ascii_env = {**os.environ, **env, "LC_ALL": "C", "PYTHONUTF8": "0"}
    ascii_env.pop("PYTHONIOENCODING", None)
    # typed composed, as a keyboard does; and `Zo?`, the name's three letters composed
    for pattern in ("Zo\u00eb", "Zo?"):
        done = subprocess.run([sys.executable, "-m", "pgface", "index", "--json", str(library),
                               "--exclude", pattern.encode()], env=ascii_env,
                              capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        report = json.loads(done.stdout)
        assert (report["excluded"], report["files"]) == (1, 0), (pattern, report)


def test_index_exclude_takes_a_pattern_of_bytes_that_are_not_utf8(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe hunt-i18n39: `--exclude "$(printf 'caf\\xe9*')"`, the Latin-1 byte of a folder an
    old Windows zip named, was a usage error ("the bytes 'caf\\xe9*' are not UTF-8 text,
    which a name is"), while PGFACE_INDEX_EXCLUDE and Pgface.index took it: a pattern matches
    file names, which are bytes, and keeps its bytes as a path does."""
    library = tmp_path / "library"
    latin1 = library / os.fsdecode(b"caf\xe9 \xe0 Montr\xe9al")
    latin1.mkdir(parents=True)
    shutil.copyfile(sample_photos()[1], latin1 / "a.jpg")
    pattern = os.fsdecode(b"caf\xe9*")  # what Python holds of such a command line
    done = runner.invoke(app, ["index", "--json", str(library), "--exclude", pattern], env=env)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert (report["excluded"], report["files"]) == (1, 0), report


def test_version_names_package_pack_and_data_folder(env: dict[str, str]) -> None:
    done = runner.invoke(app, ["--version"], env={**env, "PGFACE_MODEL_PACK": "buffalo_sc"})
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines() == [
        f"pgface {importlib.metadata.version('pgface')} (library schema: migration "
        f"{migrations()[-1][0]})", "model pack: buffalo_sc",
        f"data folder: {env['PGFACE_DATA_DIR']}"]

    wrong = runner.invoke(app, ["--version"], env={**env, "PGFACE_PHOTO_BATCH": "abc"})
    assert wrong.exit_code == 1 and wrong.stdout.startswith("pgface ")
    assert wrong.stderr.startswith("error: setting PGFACE_PHOTO_BATCH")  # one line, no traceback
    assert isinstance(wrong.exception, SystemExit)


def test_help_shows_plain_metavars() -> None:
    import typer.main

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        for sub_name in getattr(sub, "commands", {None: sub}):
            args = [name] + ([sub_name] if sub_name else []) + ["--help"]
            shown = runner.invoke(app, args).stdout
            assert "Usage: " in shown, args
            for python_form in ("<bool>", "<int", "<float", "<str", "<list", "<Path", "{",
                                "LIST["):
                assert python_form not in shown, (args, python_form, shown)
    assert re.search(r"Usage: \S+ search \[OPTIONS\] \[PHOTO\]\s*$",
                     runner.invoke(app, ["search", "--help"]).stdout, re.M)
    assert "[PATHS]..." in runner.invoke(app, ["index", "--help"]).stdout
    assert re.search(r"--top\s+-k\s+INTEGER", runner.invoke(app, ["search", "--help"]).stdout)
    # a repeatable option takes one value each time
    assert re.search(r"--roots,--root\s+PATH\s", runner.invoke(app, ["serve", "--help"]).stdout)


def test_command_lists_show_each_summary_as_one_line() -> None:
    # Wide enough that no summary wraps: each must then sit whole on its command's row, as
    # `pgface --help` and `pgface people --help` list them.
    import typer.main

    def listed(group: typer.Typer, args: list[str]) -> None:
        shown = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "400"}).stdout
        for info in group.registered_commands:
            doc = inspect.getdoc(info.callback) or ""
            summary = " ".join(doc.split("\n\n")[0].split())
            name = info.name or typer.main.get_command_name(info.callback.__name__)
            assert re.search(rf"^\W*{name}\s+{re.escape(summary)}", shown, re.M), (args, name)
        for sub in group.registered_groups:
            listed(sub.typer_instance, [*args, sub.name])

    listed(app, [])


def test_command_help_shows_each_paragraph_as_one_line() -> None:
    # Typer keeps a docstring's own line breaks in the paragraphs after the first, so a
    # paragraph wrapped in the source broke mid-sentence on an 80-column terminal.
    import typer.main

    def helped(group: typer.Typer, args: list[str]) -> int:
        checked = 0
        for info in group.registered_commands:
            name = info.name or typer.main.get_command_name(info.callback.__name__)
            shown = runner.invoke(app, [*args, name, "--help"], env={"COLUMNS": "400"}).stdout
            lines = [line.strip(" │") for line in shown.splitlines()]
            for paragraph in (inspect.getdoc(info.callback) or "").split("\n\n"):
                assert " ".join(paragraph.split()) in lines, ([*args, name], paragraph)
                checked += "\n" in paragraph
        return checked + sum(helped(sub.typer_instance, [*args, sub.name])
                             for sub in group.registered_groups)

    assert helped(app, []) >= 4  # `people name`, `people merge`, `people erase`, `db stop`


def test_similarities_outside_minus_one_to_one_are_refused_before_anything_runs() -> None:
    # NaN too, which was "not less than or equal to 1", as if it were a number past the range
    for args in (["search", "x.jpg", "--threshold", "2"], ["compare", "a.jpg", "b.jpg",
                 "--threshold", "-1.5"], ["people", "identify", "x.jpg", "--threshold", "7"],
                 ["people", "cluster", "--similarity", "1.01"],
                 ["search", "x.jpg", "--threshold", "nan"],
                 ["people", "search", "x.jpg", "--min-quality", "inf"]):
        done = runner.invoke(app, args, env={"COLUMNS": "200"})
        assert done.exit_code == 2, args
        assert re.search(r"Invalid value for '--(threshold|similarity|min-quality)': \S+ is not "
                         r"a number from (-1|0) to 1\b", done.output), (args, done.output)
    done = runner.invoke(app, ["search", "x.jpg", "--threshold", "high"], env={"COLUMNS": "200"})
    assert done.exit_code == 2 and "'high' is not a number" in done.output, done.output
    # a choice too (--auth was a free string checked later: one `error:` line, exit code 1)
    done = runner.invoke(app, ["serve", "--auth", "sometimes"], env={"COLUMNS": "200"})
    assert done.exit_code == 2 and "Invalid value for '--auth'" in done.output, done.output


def test_names_and_paths_print_as_they_are_never_as_markup_or_terminal_codes(
        env: dict[str, str], tmp_path: Path) -> None:
    photo = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    # A file name may hold an ESC (a colour, a cursor move: terminal codes) and a newline.
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "a\x1b[31mred\nb.jpg").write_bytes(b"not a photo")
    # ... or a right-to-left override, which shows what follows reversed: "gnp.jpg" as
    # "gpj.png"
    (odd / "c\u202egnp.jpg").write_bytes(b"not a photo")
    # ... or an invisible character (a zero-width space: "d\u200b.jpg" showed as "d.jpg",
    # another file's name) or a direction mark, which reorders the characters around it
    # (probe hostile56); a zero-width joiner, part of scripts and emoji, shows as it is
    (odd / "d\u200b.jpg").write_bytes(b"not a photo")
    (odd / "e\u200f(1).jpg").write_bytes(b"not a photo")
    (odd / "g\u2062\u00ad\U000e0061\u3164.jpg").write_bytes(b"not a photo")  # reprobe57
    (odd / "f\U0001f469\u200d\U0001f467.jpg").write_bytes(b"not a photo")
    shutil.copy(photo, odd / "yao.jpg")
    done = runner.invoke(app, ["index", "--quiet", str(odd)], env=env)
    assert not {"\x1b", "\u202e", "\u200b", "\u200f"} & set(done.stderr), done.stderr
    assert f"failed {odd}/a\\x1b[31mred\\nb.jpg: not an image" in done.stderr
    assert f"failed {odd}/c\\u202egnp.jpg: not an image" in done.stderr
    assert f"failed {odd}/d\\u200b.jpg: not an image" in done.stderr
    assert f"failed {odd}/e\\u200f(1).jpg: not an image" in done.stderr
    assert f"failed {odd}/g\\u2062\\xad\\U000e0061\\u3164.jpg: not an image" in done.stderr
    assert f"failed {odd}/f\U0001f469\u200d\U0001f467.jpg: not an image" in done.stderr

    found = json.loads(runner.invoke(app, ["search", "--json", str(photo)], env=env).stdout)
    face_id = found["faces"][0]["matches"][0]["face_id"]
    named = runner.invoke(app, ["people", "name", "AC[/red]DC", str(face_id)], env=env)
    assert named.exit_code == 0 and "AC[/red]DC" in named.stdout, named.output  # no crash
    for args in (["people", "list"], ["search", str(photo)], ["people", "identify", str(photo)],
                 ["people", "show", "AC[/red]DC"]):  # its heading a line of its own now
        shown = runner.invoke(app, args, env={**env, "COLUMNS": "200"})
        assert shown.exit_code == 0, (args, shown.output)
        assert "AC[/red]DC" in shown.stdout and "AC\\[" not in shown.stdout, (args, shown.output)


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(env: dict[str, str],
                                                        tmp_path: Path) -> None:
    photo = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    people = tmp_path / "people" / "Yao Ming"
    people.mkdir(parents=True)
    shutil.copy(photo, people / "yao.jpg")
    for args in (["index", str(photo)], ["people", "enrol", str(tmp_path / "people")]):
        done = runner.invoke(app, args, env=env)  # stderr is not a terminal here, as in cron
        assert done.exit_code == 0, done.output
        assert "━" not in done.stderr and "indexing" not in done.stderr, done.stderr
        assert "1 photo indexed" in done.stderr or "Yao Ming" in done.stdout + done.stderr


def test_a_search_heading_is_one_line_in_a_pipe(env: dict[str, str]) -> None:
    """docs/cli.md: lines are never broken where output is not a terminal; the heading of a
    face's matches (the table's title) was cut at 80 columns, padded with spaces."""
    assert runner.invoke(app, ["index", "--quiet", *map(str, sample_photos())],
                         env=env).exit_code == 0
    photo = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    done = runner.invoke(app, ["search", str(photo)], env={**env, "COLUMNS": "60"})
    assert done.exit_code == 0, done.output
    [heading] = [line for line in done.stdout.splitlines() if line.startswith("face 1 at ")]
    assert len(heading) > 60 and heading.endswith(" faces"), done.stdout


def test_json_shows_a_path_that_is_not_utf8_with_escapes(env: dict[str, str],
                                                         tmp_path: Path) -> None:
    photo = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/q\xff.jpg"))
    shutil.copy(photo, odd)
    assert runner.invoke(app, ["index", "--quiet", str(odd)], env=env).exit_code == 0
    for args in (["search", "--json", str(odd)], ["people", "identify", "--json", str(odd)],
                 ["people", "search", "--json", str(odd)]):
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 0, (args, done.output)
        assert "\\udcff" not in done.stdout, args  # json.dumps' form of the byte 0xff
        assert json.loads(done.stdout)["source"] == f"{tmp_path}/q\\xff.jpg", args
    # and an `error:` line names such a file as `index` does (it showed '\\udcff')
    broken = Path(os.fsdecode(bytes(tmp_path) + b"/r\xff.jpg"))
    broken.write_bytes(b"not a photo")
    for args, said in ((["search", str(broken)], f"{tmp_path}/r\\xff.jpg: not an image"),
                       (["people", "identify", os.fsdecode(b"/nowhere/\xff")],
                        "/nowhere/\\xff: no such file")):
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 1 and said in done.stderr, (args, done.stderr)
        assert "\\udcff" not in done.stderr, args
    # a name typed with such a byte is no name (text_argument): refused as such, so shown
    done = runner.invoke(app, ["people", "show", os.fsdecode(b"\xff")], env=env)
    said = " ".join(done.stderr.replace("│", " ").split())
    assert done.exit_code == 2 and "the bytes '\\xff' are not UTF-8 text" in said, said
    assert "\\udcff" not in said


def test_stats_speaks_in_units_not_python(env: dict[str, str]) -> None:
    runner.invoke(app, ["index", "--quiet", str(sample_photos()[0])], env=env)
    done = runner.invoke(app, ["stats"], env=env)
    assert done.exit_code == 0, done.output
    assert re.search(r"database size: \d+\.\d (KiB|MiB|GiB)$", done.stdout, re.M), done.stdout
    assert "faces per model: buffalo_sc: " in done.stdout
    for python_form in ("{", "}", "'", "True", "False", "None"):
        assert python_form not in done.stdout, (python_form, done.stdout)


def test_db_status_speaks_yes_no_not_python(tmp_path: Path) -> None:
    """A data folder whose server does not run: `running: False`, `pid: None` before."""
    env = {"PGFACE_DATA_DIR": str(tmp_path / "never-started")}
    done = runner.invoke(app, ["db", "status"], env=env)
    assert done.exit_code == 3, done.output
    assert re.search(r"^ +running: no$", done.stdout, re.M) and re.search(
        r"^ +pid: -$", done.stdout, re.M), done.stdout
    for python_form in ("True", "False", "None", "data_dir", "in_use"):
        assert python_form not in done.stdout, (python_form, done.stdout)
    assert re.search(r"^ +data dir: ", done.stdout, re.M), done.stdout
    # a usage error is the parser's: the usage and exit 2 (it was an `error:` line, exit 1)
    # (an option that needs PATH says so first: "give PATH..., or --pending" to `index
    # --prune` sent the user to `--pending --prune`, refused in turn)
    for args, said in ((["index"], "give PATH... to index, or --pending"),
                       (["index", "--pending", "--prune"], "--prune needs the PATH..."),
                       (["index", "--prune"], "--prune needs the PATH..."),
                       (["index", "--exclude", "*.png"], "--exclude needs the PATH...")):
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 2 and said in done.output and "Usage:" in done.output, args


def test_search_table_fits_80_columns_and_json_keeps_full_paths(
        env: dict[str, str], tmp_path: Path) -> None:
    deep = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "and-another-level-below-it"
    deep.mkdir(parents=True)
    photo = deep / "the-photo-at-the-end-of-a-long-path.jpg"
    shutil.copyfile(next(p for p in sample_photos() if p.name == "t1.jpg"), photo)
    assert runner.invoke(app, ["index", "--quiet", str(photo)], env=env).exit_code == 0

    table = runner.invoke(app, ["search", str(photo), "--top", "1"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    drawn = [line for line in lines if line[:1] in "┏┃┡│└"]  # the heading is a line, whole
    assert drawn and max(map(len, drawn)) <= 80, table.stdout  # not a terminal: 80 columns
    shortened = [line for line in lines if "…" in line]
    assert shortened and all("long-path.jpg" in line for line in shortened)

    as_json = json.loads(runner.invoke(app, ["search", str(photo), "--json"], env=env).stdout)
    assert {m["path"] for f in as_json["faces"] for m in f["matches"]} == {str(photo.resolve())}
    # each row ends with its face's id, what `people name` takes (only --json had it); no
    # person column, empty, where no match has a name
    rows = [line for line in lines if line.startswith("│")]
    first = as_json["faces"][0]["matches"][0]["face_id"]
    assert rows[0].split("│")[-2].strip() == str(first), table.stdout
    assert "┃ person" not in table.stdout and "┃ face ┃" in table.stdout, table.stdout


def test_people_search_json_has_the_shape_of_search_json(env: dict[str, str]) -> None:
    t1 = next(p for p in sample_photos() if p.name == "t1.jpg")
    runner.invoke(app, ["index", "--quiet", str(t1)], env=env)
    plain_search = json.loads(runner.invoke(app, ["search", str(t1), "--json"], env=env).stdout)
    by_people = runner.invoke(app, ["people", "search", str(t1), "--json"], env=env)
    assert by_people.exit_code == 0, by_people.output
    grouped = json.loads(by_people.stdout)
    assert set(grouped) == set(plain_search)
    assert {k: v for k, v in grouped.items() if k != "faces"} == {
        k: v for k, v in plain_search.items() if k != "faces"}
    assert [f["bbox"] for f in grouped["faces"]] == [f["bbox"] for f in plain_search["faces"]]
    for face, plain_face in zip(grouped["faces"], plain_search["faces"], strict=True):
        assert set(face) == {"bbox", "det_score", "quality", "searched", "people"}
        assert sorted(m["face_id"] for g in face["people"] for m in g["matches"]) == sorted(
            m["face_id"] for m in plain_face["matches"])


def test_people_enrol_reports_its_indexing(env: dict[str, str], tmp_path: Path) -> None:
    ada = tmp_path / "people" / "Ada"
    ada.mkdir(parents=True)
    shutil.copyfile(sample_photos()[0], ada / "one.jpg")
    (ada / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    done = runner.invoke(app, ["people", "enrol", str(tmp_path / "people"), "--json"], env=env)
    assert done.exit_code == 1, done.output  # a photo failed
    report = json.loads(done.stdout)
    assert report["index"]["indexed"] == 1
    assert [f["file"] for f in report["index"]["failures"]] == [str(ada / "broken.jpg")]
    assert (report["people"], report["new"]) == ({"Ada": 1}, {"Ada": 1})

    human = runner.invoke(app, ["people", "enrol", str(tmp_path / "people")], env=env)
    assert f"failed {ada / 'broken.jpg'}: " in human.stderr
    assert "Ada: 1 face (0 new)" in human.stdout, human.stdout  # it was hers already
    assert "0 photos indexed, 1 already indexed, 1 failed" in human.stderr

    # A photo put beside the person folders was passed over without a word: whose is it?
    shutil.copyfile(sample_photos()[0], tmp_path / "people" / "loose.jpg")
    (tmp_path / "people" / "notes.txt").write_text("not a photo")  # no photo: not said
    (tmp_path / "people" / "._loose.jpg").write_bytes(b"macOS twin")  # hidden: not said
    done = runner.invoke(app, ["people", "enrol", str(tmp_path / "people"), "--json"], env=env)
    assert done.exit_code == 1, done.output
    assert json.loads(done.stdout)["failures"] == [{
        "file": str(tmp_path / "people" / "loose.jpg"),
        "reason": "a photo in the enrolment folder itself is no one's: put it in a folder "
                  "named after its person"}]
    # the summary counts enrolment's own failures with indexing's: it said "0 failed" under
    # the failed lines it had just printed
    human = runner.invoke(app, ["people", "enrol", str(tmp_path / "people")], env=env)
    assert f"failed {tmp_path / 'people' / 'loose.jpg'}: " in human.stderr
    assert "0 photos indexed, 1 already indexed, 2 failed" in human.stderr, human.stderr


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


def test_serve_names_an_address_it_cannot_listen_on(env: dict[str, str], tmp_path: Path) -> None:
    # uvicorn said so itself only after the models had loaded, in its own words without the
    # host ("[Errno -2] Name or service not known"), and exited 3 with no `error:` line.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for host, reason in (("127.0.0.1", "in use"), ("nosuch.invalid", "not known")):
            done = runner.invoke(app, ["serve", "--host", host, "--port", str(port)], env=env)
            assert done.exit_code == 1, done.output
            assert done.stderr.startswith(f"error: cannot listen on {host}:{port}: ")
            assert reason in done.stderr and "pgface on http" not in done.stderr
        # the allowed folders from the environment are checked as --roots are
        gone, photo = tmp_path / "gone", tmp_path / "photo.jpg"
        photo.write_bytes(b"")
        done = runner.invoke(app, ["serve", "--port", str(port)],
                             env={**env, "PGFACE_API_ROOTS": f"{os.getcwd()}:{gone}"})
        assert done.exit_code == 1
        assert done.stderr == f"error: PGFACE_API_ROOTS {gone}: no such folder\n"
        done = runner.invoke(app, ["serve", "--port", str(port), "--roots", str(photo)],
                             env=env)
        assert done.exit_code == 1
        assert done.stderr == f"error: --roots {photo}: not a folder\n"  # was "no such folder"

    # A second server started while the first is still loading (both on the default port at
    # boot): the first's socket was bound, not yet listening, so the second bound it too,
    # loaded everything, and died in uvicorn with a traceback.
    starting = _listen("127.0.0.1", 0)
    with starting, pytest.raises(PgfaceError, match="cannot listen on .*in use"):
        _listen("127.0.0.1", starting.getsockname()[1])
    # An empty host binds every address: refused, as an option and as a variable.
    done = runner.invoke(app, ["serve", "--host", " ", "--port", "1"], env=env)
    assert done.exit_code == 1 and done.stderr.startswith("error: --host: empty"), done.output
    for name, value in (("PGFACE_API_HOST", ""), ("PGFACE_API_MAX_UPLOAD_BYTES", str(2**63)),
                        ("PGFACE_API_PORT", "80a"), ("PGFACE_API_PORT", "70000")):
        done = runner.invoke(app, ["serve", "--port", "1"], env={**env, name: value})
        assert done.exit_code == 1 and done.stderr.startswith(f"error: setting {name}: "), (
            name, done.output)


def test_a_pack_that_cannot_run_is_one_error_naming_its_file(
        env: dict[str, str], tmp_path: Path, models_dir: Path) -> None:
    """A truncated recognizer: `index` called it "unexpected RuntimeError ... (a bug)", `search`
    blamed the photo, and `serve` printed a 70-line traceback."""
    pack = tmp_path / "damaged"
    pack.mkdir()
    default = resolve_pack("buffalo_sc", models_dir)
    for onnx in (default.detector, default.recognizer):
        shutil.copy(onnx, pack / onnx.name)
    recognizer = next(pack.glob("w600k_*.onnx"))
    recognizer.write_bytes(recognizer.read_bytes()[:100_000])
    damaged = {**env, "PGFACE_MODEL_PACK": str(pack)}
    photo = sample_photos()[0]
    for command in (["index", str(photo)], ["search", str(photo)]):
        done = runner.invoke(app, command, env=damaged)
        assert done.exit_code == 1, done.output
        assert done.stderr.startswith(f"error: {recognizer}: cannot be loaded as the pack's "
                                      "ArcFace recognizer"), done.stderr
        assert "a bug" not in done.stderr and "Traceback" not in done.output
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    for setting, said in ((str(pack), f"error: {recognizer}: cannot be loaded"),
                          ("buffalo_xx", "error: model pack 'buffalo_xx' not found")):
        served = subprocess.run(
            [sys.executable, "-c", "from pgface.cli import app; app()", "serve", "--port",
             str(port)], env={**os.environ, **env, "PGFACE_MODEL_PACK": setting},
            capture_output=True, text=True, timeout=300)
        assert served.returncode == 1, served.stderr
        assert said in served.stderr and "Traceback" not in served.stderr, served.stderr
    # The file made whole, the pack works: its first try had recorded the truncated file's
    # digest, and every later use was refused ("not the 'damaged' whose embeddings this
    # library holds", though it held none).
    shutil.copy(default.recognizer, recognizer)
    done = runner.invoke(app, ["index", str(photo)], env=damaged)
    assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["stats", "--json"], env=damaged).stdout.count('"damaged"') >= 1


def test_a_relative_path_from_a_deleted_current_folder_is_said_so(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe cron38: run from a folder deleted meanwhile (a cron job's, cleaned up under it),
    every command given a relative path said "error: No such file or directory", naming
    nothing: the path was there as written, and absolute paths work from there."""
    gone = tmp_path / "gone"
    for command in ("index .", "search ../a.jpg", "db backup nightly.dump"):
        gone.mkdir()
        done = subprocess.run(
            ["sh", "-c", f'cd "{gone}" && rmdir "{gone}" && exec "$0" -m pgface {command}',
             sys.executable], env={**os.environ, **env}, capture_output=True, text=True,
            timeout=300)
        path = command.split()[-1]
        assert done.returncode == 1, done
        assert done.stderr == (f"error: {path}: relative, and the current folder cannot be "
                               f"read (no such file or directory): give the path from / or run "
                               f"pgface from a folder that is there\n"), done.stderr


def test_a_file_that_is_no_model_is_one_line_on_every_backend(
        env: dict[str, str], tmp_path: Path, models_dir: Path) -> None:
    """Probe packs38: a web page saved as w600k_r50.onnx (a download's 404) gave, on OpenVINO,
    TensorFlow's log lines on the process's stderr before pgface's error, which ended in
    OpenVINO's list of frontends."""
    default = resolve_pack("buffalo_sc", models_dir)
    pack = tmp_path / "saved_page"
    pack.mkdir()
    shutil.copy(default.detector, pack / default.detector.name)
    recognizer = pack / "w600k_r50.onnx"
    recognizer.write_text("<html><body>404 Not Found</body></html>\n")
    photo = str(sample_photos()[0])
    for providers in ('["OpenVINO"]', '["CPUExecutionProvider"]'):
        done = subprocess.run(
            [sys.executable, "-m", "pgface", "compare", photo, photo],
            env={**os.environ, **env, "PGFACE_MODEL_PACK": str(pack),
                 "PGFACE_PROVIDERS": providers}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stderr
        [line] = done.stderr.splitlines()
        assert line.startswith(f"error: {recognizer}: cannot be loaded as the pack's ArcFace "
                               f"recognizer"), line
        if providers == '["OpenVINO"]' and importlib.util.find_spec("openvino") is not None:
            assert line.endswith("(RuntimeError: not an ONNX model (its reader cannot parse "
                                 "the file))"), line


def test_a_recognizer_of_another_width_is_an_error_naming_its_file(
        env: dict[str, str], tmp_path: Path, models_dir: Path) -> None:
    """A recognizer giving 128-d embeddings loaded, and every store failed with "database:
    expected 512 dimensions, not 128", naming no file."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    import numpy as np
    from onnx import helper, numpy_helper

    default = resolve_pack("buffalo_sc", models_dir)
    pack = tmp_path / "narrow"
    pack.mkdir()
    shutil.copy(default.detector, pack / default.detector.name)
    model = onnx.load(str(default.recognizer))
    output = model.graph.output[0]
    projection = np.random.default_rng(0).standard_normal((512, 128)).astype(np.float32)
    model.graph.initializer.append(numpy_helper.from_array(projection, "projection"))
    model.graph.node.append(helper.make_node("MatMul", [output.name, "projection"], ["narrow"]))
    model.graph.output.remove(output)
    model.graph.output.append(helper.make_tensor_value_info("narrow", onnx.TensorProto.FLOAT,
                                                            ["N", 128]))
    recognizer = pack / default.recognizer.name
    onnx.save(model, str(recognizer))
    done = runner.invoke(app, ["index", str(sample_photos()[0])],
                         env={**env, "PGFACE_MODEL_PACK": str(pack)})
    assert done.exit_code == 1, done.output
    assert done.stderr == (f"error: {recognizer}: cannot be loaded as the pack's ArcFace "
                           "recognizer (ValueError: it gives 128-d embeddings; pgface stores "
                           "512-d ones (ArcFace's))\n"), done.stderr


def test_serve_takes_its_settings_from_the_environment_where_no_option_is_given(
        env: dict[str, str], tmp_path: Path) -> None:
    """PGFACE_API_AUTH=always was overwritten by --auth's default: the server answered every
    request without a key; a PGFACE_UPLOAD_DIR that is a file made every upload a 500;
    PGFACE_API_PORT was no setting."""
    import httpx

    not_a_folder = tmp_path / "uploads"
    not_a_folder.write_text("a file")
    done = runner.invoke(app, ["serve", "--port", "1"],
                         env={**env, "PGFACE_UPLOAD_DIR": str(not_a_folder)})
    assert done.exit_code == 1
    assert done.stderr == f"error: PGFACE_UPLOAD_DIR {not_a_folder}: not a folder " \
                          "(uploaded photos are kept there)\n", done.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    # the port from PGFACE_API_PORT, as the host from PGFACE_API_HOST (it was no setting:
    # the server listened on 8000)
    server = subprocess.Popen(
        [sys.executable, "-c", "from pgface.cli import app; app()", "serve"],
        env={**os.environ, **env, "PGFACE_API_AUTH": "always", "PGFACE_API_PORT": str(port)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/api/stats", timeout=5)
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        assert answer.status_code == 401, answer.text
        assert "api_auth=always" in answer.json()["error"]["message"]
        # A client that stops sending mid-upload: SIGTERM left the server "Waiting for
        # connections to close" until the client hung up (for ever, here).
        made = runner.invoke(app, ["keys", "create", "uploader", "-s", "write"], env=env)
        key = made.stdout.strip()
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.sendall(
                b"POST /api/photos HTTP/1.1\r\nHost: localhost\r\nX-API-Key: " + key.encode()
                + b"\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: "
                b"100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; "
                b"filename=\"a.jpg\"\r\n\r\n" + b"\xff" * 5000)
            time.sleep(1)
            server.terminate()
            try:
                server.wait(timeout=GRACEFUL_SHUTDOWN_S + 30)
            except subprocess.TimeoutExpired:
                pytest.fail("pgface serve did not exit on SIGTERM while a client stalled")
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_search_takes_top_k_and_prints_names_as_they_are(env: dict[str, str],
                                                         tmp_path: Path) -> None:
    runner.invoke(app, ["index", "--quiet", *map(str, sample_photos())], env=env)
    yao = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    wide = json.loads(runner.invoke(app, ["search", str(yao), "--json", "--threshold", "-1"],
                                    env=env).stdout)
    assert len(wide["faces"][0]["matches"]) > 1
    # PGFACE_TOP_K ("matches per face") was read by the Python API only: 10 in the CLI
    one = runner.invoke(app, ["search", str(yao), "--json", "--threshold", "-1"],
                        env={**env, "PGFACE_TOP_K": "1"})
    assert [len(f["matches"]) for f in json.loads(one.stdout)["faces"]] == [1], one.output
    # emoji codes in a name are the name (`no:thumbs_up:such.jpg` was printed with an emoji)
    odd = tmp_path / "no:thumbs_up:such.jpg"
    done = runner.invoke(app, ["search", str(odd)], env=env)
    assert done.exit_code == 1 and f"{odd}: no such file" in " ".join(done.stderr.split())


def test_stats_names_model_and_provider(env: dict[str, str]) -> None:
    done = runner.invoke(app, ["stats", "--json"], env=env)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    # CUDA where there is a GPU, else OpenVINO where installed, else ONNX Runtime's CPU.
    expected = available_providers(Settings().providers)[0]
    assert result["model_pack"] == "buffalo_sc" and result["provider"].startswith(expected)
    assert result["photos"] == 0
    assert tuple(int(v) for v in result["pgvector_version"].split(".")[:2]) >= (0, 7)


def test_a_gpu_backend_asked_for_by_name_that_cannot_run_says_so_and_runs_on_openvino(
        env: dict[str, str]) -> None:
    """It said nothing, and ran on ONNX Runtime's CPU rather than OpenVINO."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from pgface.models import torch_backend

    reason = torch_backend.unusable_reason("TorchCUDA")
    if reason is None:
        pytest.skip("TorchCUDA can run here")
    done = subprocess.run(
        [sys.executable, "-c", "from pgface.cli import app; app()", "stats", "--json"],
        env={**os.environ, **env, "PGFACE_PROVIDERS": '["TorchCUDA"]'},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["provider"].startswith("OpenVINO")
    assert f"TorchCUDA is not used: {reason}; running on OpenVINO" in done.stderr, done.stderr
    # Not asked for by name (the default list tries it first everywhere): nothing said.
    quiet = subprocess.run(
        [sys.executable, "-c", "from pgface.cli import app; app()", "stats", "--json"],
        env={k: v for k, v in {**os.environ, **env}.items() if k != "PGFACE_PROVIDERS"},
        capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "is not used" not in quiet.stderr, quiet.stderr


def test_every_command_help_has_an_example() -> None:
    import typer.main

    command = typer.main.get_command(app)
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        subs = getattr(sub, "commands", {name: sub})
        for sub_name, leaf in subs.items():
            assert "Example:" in (leaf.help or ""), f"{name} {sub_name} has no example"
    # Each group's help ends with examples of its commands, and each is a command it has.
    groups = {"pgface": command, **{name: sub for name, sub in command.commands.items()
                                    if hasattr(sub, "commands")}}
    assert set(groups) == {"pgface", "people", "keys", "db"}
    for name, group in groups.items():
        heading, *examples = (group.epilog or "").splitlines()
        assert heading == "Examples:" and examples, f"{name} has no examples"
        for example in examples:
            words = shlex.split(example)
            assert words[0] == "pgface", example
            leaf = command
            for word in words[1:]:
                if not hasattr(leaf, "commands"):
                    break
                assert word in leaf.commands, f"{example}: no command {word!r}"
                leaf = leaf.commands[word]
            assert not hasattr(leaf, "commands"), f"{example} names a group, not a command"


def test_a_key_name_with_control_characters_is_refused_and_listed_escaped(
        env: dict[str, str]) -> None:
    """Probe clidocs19: `keys create $'evil\\e[2J\\e[31mname\\nfake\\tline'` was taken, and
    `keys list` wrote the ESC codes raw (a cleared, red terminal) and split its tab-separated
    row at the newline and tab (a fake row for a script)."""
    evil = "evil\x1b[2J\x1b[31mname\nfake\tline"
    made = runner.invoke(app, ["keys", "create", evil], env=env)
    assert made.exit_code == 1 and made.stdout == "", made.output
    assert ("an API key's name cannot contain control characters or invalid Unicode: "
            "'evil\\x1b[2J\\x1b[31mname\\x0afake\\x09line'") in made.stderr, made.stderr
    assert "\x1b" not in made.stderr
    # a key stored before names were checked: listed escaped, one row of six fields
    assert runner.invoke(app, ["keys", "create", "plain"], env=env).exit_code == 0
    with psycopg.connect(env["PGFACE_DATABASE_URL"]) as conn:
        conn.execute("UPDATE api_keys SET name = %s", [evil])
    listed = runner.invoke(app, ["keys", "list", "--all"], env=env)
    assert listed.exit_code == 0, listed.output
    [row] = listed.stdout.splitlines()
    assert "\x1b" not in row and row.split("\t")[1] == "evil\\x1b[2J\\x1b[31mname\\nfake\\tline"
    assert len(row.split("\t")) == 6, row


def test_key_names_that_look_the_same_are_one_name(env: dict[str, str]) -> None:
    """Probe i18n37: "José" in NFD (as a Mac writes it), or with a zero-width space in it, was
    a second active key beside "José", listed alike, and `keys revoke José` revoked one of
    them, leaving the other active without a word. Key names take a person's name's form."""
    made = runner.invoke(app, ["keys", "create", "José"], env=env)
    assert made.exit_code == 0, made.output
    for alike in (unicodedata.normalize("NFD", "José"), "Jo\u200bsé", " José  "):
        again = runner.invoke(app, ["keys", "create", alike], env=env)
        assert again.exit_code == 1, again.output
        assert "an active API key named 'José' already exists" in again.stderr, again.stderr
    assert runner.invoke(app, ["keys", "create", "\u3164"], env=env).exit_code == 1  # blank
    revoked = runner.invoke(app, ["keys", "revoke", unicodedata.normalize("NFD", "José")],
                            env=env)
    assert revoked.exit_code == 0 and revoked.stderr.startswith("revoked key 1 'José'"), \
        revoked.output
    assert runner.invoke(app, ["keys", "list"], env=env).stdout == ""  # none left active
    # Keys an older pgface stored as typed, two "José" (composed and a Mac's decomposed):
    # `keys revoke José` revoked one and left its look-alike active, exit 0 (probe upgrade37).
    # Both reached now, neither revoked, as any name that reaches two keys; and "Ada" with a
    # zero-width space is reached as Ada.
    assert runner.invoke(app, ["keys", "create", "José"], env=env).exit_code == 0
    with psycopg.connect(env["PGFACE_DATABASE_URL"]) as conn:
        for stored in (unicodedata.normalize("NFD", "José"), "Ada\u200b"):
            conn.execute("INSERT INTO api_keys (name, key_id, secret_sha256, scopes) "
                         "VALUES (%s, substr(md5(%s), 1, 12), sha256(%s::bytea), '{read}')",
                         [stored, stored, stored.encode()])
    both = runner.invoke(app, ["keys", "revoke", "José"], env=env)
    assert both.exit_code == 1 and "names 2 active API keys" in both.stderr, both.output
    assert len(runner.invoke(app, ["keys", "list"], env=env).stdout.splitlines()) == 3
    # nor is a key made beside one so stored (probe reprobe37b: a second "José" listed alike)
    again = runner.invoke(app, ["keys", "create", "Ada"], env=env)
    assert again.exit_code == 1 and "named 'Ada' already exists" in again.stderr, again.output
    ada = runner.invoke(app, ["keys", "revoke", "Ada"], env=env)
    assert ada.exit_code == 0 and ada.stderr.startswith("revoked key"), ada.output


def test_an_ascii_stdout_gets_escapes_and_dots_never_an_encoding_error(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe clidocs19: where stdout is ASCII (LC_ALL=C with PYTHONUTF8=0,
    PYTHONIOENCODING=ascii) `keys list`, `search` and `people show` shortening a path with '…',
    and `people list` with a "José" in it, were `error: unexpected UnicodeEncodeError`."""
    ascii_runner = CliRunner(charset="ascii")
    photo = tmp_path / ("a-folder-with-a-rather-long-name-" * 3) / "the-photo-at-the-end.jpg"
    photo.parent.mkdir()
    shutil.copyfile(next(p for p in sample_photos() if p.name == "yaoming.jpg"), photo)
    assert runner.invoke(app, ["index", "--quiet", str(photo)], env=env).exit_code == 0
    face_id = json.loads(runner.invoke(app, ["search", "--json", str(photo)], env=env).stdout
                         )["faces"][0]["matches"][0]["face_id"]
    assert runner.invoke(app, ["people", "name", "José", str(face_id)], env=env).exit_code == 0
    assert runner.invoke(app, ["keys", "create", "laptop"], env=env).exit_code == 0
    for args, said in ((["keys", "list"], "laptop\tpgf_"), (["search", str(photo)], "..."),
                       (["people", "show", "José"], "..."), (["people", "list"], "Jos\\xe9")):
        done = ascii_runner.invoke(app, args, env=env)
        assert done.exit_code == 0 and "Error" not in done.stderr, (args, done.output)
        assert said in done.stdout and "…" not in done.stdout, (args, done.stdout)
    keys = ascii_runner.invoke(app, ["keys", "list"], env=env).stdout
    assert re.search(r"\tpgf_[0-9a-f]{12}_\.\.\.\t", keys), keys
    table = ascii_runner.invoke(app, ["search", str(photo)], env=env).stdout
    rows = [line for line in table.splitlines() if line.startswith(("|", "+"))]
    assert "| Jos\\xe9 " in table and len(set(map(len, rows))) == 1, table  # aligned
    # Probe reprobe33: narrow, Rich's own '…' of a title or cell it cuts came out as `\u2026`,
    # six characters where it measured one, and the rows pushed past the frame
    for args, columns in ((["search", str(photo)], "30"), (["people", "list"], "20")):
        narrow = ascii_runner.invoke(app, args, env={**env, "COLUMNS": columns}).stdout
        rows = [line for line in narrow.splitlines() if line.startswith(("|", "+"))]
        assert "\\u2026" not in narrow and len(set(map(len, rows))) == 1, narrow


def test_an_ascii_table_cuts_a_name_between_its_escapes(env: dict[str, str]) -> None:
    """Probe docsrun: in an ASCII locale a narrow column cut a name inside an escape, `zo\\xeb`
    as `zo\\x.`, which reads as someone else's name: `search`'s person column, and any table
    of names (`people list`, `people history`'s summaries)."""
    ascii_runner = CliRunner(charset="ascii")
    photo = next(p for p in sample_photos() if p.name == "yaoming.jpg")
    assert runner.invoke(app, ["index", "--quiet", str(photo)], env=env).exit_code == 0
    face_id = json.loads(runner.invoke(app, ["search", "--json", str(photo)], env=env).stdout
                         )["faces"][0]["matches"][0]["face_id"]
    name = "Zoë Ångström-Éléonore"
    assert runner.invoke(app, ["people", "name", name, str(face_id)], env=env).exit_code == 0
    broken = re.compile(r"\\(x(?![0-9a-f]{2})|u(?![0-9a-f]{4})|U(?![0-9a-f]{8}))")
    for columns in (24, 26, 30, 36, 44, 56, 68, 80):  # narrow to wide
        for args in (["search", str(photo)], ["people", "list"], ["people", "history"]):
            done = ascii_runner.invoke(app, args, env={**env, "COLUMNS": str(columns)})
            assert done.exit_code == 0, (args, done.output)
            assert not broken.search(done.stdout), (args, columns, done.stdout)
            rows = [line for line in done.stdout.splitlines() if line.startswith(("|", "+"))]
            assert len(set(map(len, rows))) == 1, (args, columns, done.stdout)  # aligned
        shown = ascii_runner.invoke(app, ["people", "list"], env={**env, "COLUMNS": str(columns)})
        # each line of the name's cell is whole words of it, the last maybe a start of one
        # and "...", as a path is cut
        cell = [line.split("|")[2].strip() for line in shown.stdout.splitlines()
                if line.startswith("|") and "-+-" not in line][1:]
        words = "Zo\\xeb \\xc5ngstr\\xf6m-\\xc9l\\xe9onore".split()
        for part in filter(None, cell):
            *whole, last = part.split(" ")
            assert set(whole) <= set(words) and (last in words or last.endswith("...") and any(
                word.startswith(last[:-3]) for word in words)), (columns, cell)


def test_a_name_from_an_ascii_locales_command_line_is_read_as_its_utf8_bytes(
        env: dict[str, str], pf: Pgface) -> None:
    """Probe cli31: under LC_ALL=C with PYTHONUTF8=0 Python holds "Zoë" of the command line as
    'Zo\\udcc3\\udcab': `people show "Zoë"` said `no person named 'Zo\\xeb'`, `people rename
    5 "Zoë"` and `--name-has ë` were refused as invalid Unicode."""
    assert pf.index([sample_photos()[1]]).faces == 1
    with pf.pool.connection() as conn:
        face = conn.execute("SELECT id FROM faces").fetchone()[0]
    person = pf.people.name_faces([face], "Zoe").person.id
    as_ascii = "Zoë".encode().decode("ascii", "surrogateescape")  # what such argv holds
    renamed = runner.invoke(app, ["people", "rename", str(person), as_ascii, "--json"], env=env)
    assert renamed.exit_code == 0, renamed.output
    assert json.loads(renamed.stdout)["name"] == "Zoë" == pf.people.get(person).name
    shown = runner.invoke(app, ["people", "show", as_ascii, "--json"], env=env)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["id"] == person, shown.output
    listed = runner.invoke(app, ["people", "list", "--json", "--name-has",
                                 "ë".encode().decode("ascii", "surrogateescape")], env=env)
    assert listed.exit_code == 0, listed.output
    assert [p["name"] for p in json.loads(listed.stdout)] == ["Zoë"]
    # bytes that are no UTF-8 are no name: refused as such, not "no person named 'Zo\\xeb'"
    latin1 = "Zoë".encode("latin-1").decode("ascii", "surrogateescape")
    refused = runner.invoke(app, ["people", "show", latin1], env=env)
    assert refused.exit_code == 2, refused.output
    said = " ".join(refused.stderr.replace("│", " ").split())
    assert "the bytes 'Zo\\xeb' are not UTF-8 text" in said and "no person" not in said, said


def test_enrol_under_an_ascii_locale_reads_a_folders_name_as_its_utf8_bytes(
        env: dict[str, str], pf: Pgface, tmp_path: Path) -> None:
    """Probe cli31's kin: under LC_ALL=C with PYTHONUTF8=0 a folder "Zoë" of `people enrol`
    was refused as invalid Unicode, and its failure line was "unexpected UnicodeEncodeError"."""
    people = tmp_path / "people"
    for folder, photo in (("Zoë", "yaoming.jpg"), (os.fsdecode(b"Bad\xffName"), "t1.jpg")):
        (people / folder).mkdir(parents=True)
        shutil.copyfile(next(p for p in sample_photos() if p.name == photo),
                        people / folder / photo)
    ascii_env = {**os.environ, **env, "LC_ALL": "C", "PYTHONUTF8": "0"}
    ascii_env.pop("PYTHONIOENCODING", None)
    done = subprocess.run([sys.executable, "-m", "pgface", "people", "enrol", "--quiet",
                           str(people)], env=ascii_env, capture_output=True, timeout=300)
    stdout, stderr = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 1 and "unexpected" not in stderr, stderr  # the bad name failed
    assert stdout == "Zo\\xeb: 1 face\n", (stdout, stderr)
    assert "Bad\\xffName: not a name: " in stderr, stderr
    assert pf.people.get("Zoë").faces == 1


def test_every_text_argument_is_read_by_text_argument() -> None:
    """The one place a name given on the command line is decoded (probe cli31): every
    parameter of text, in every command, goes through common.text_argument; `--exclude`'s
    patterns, which match file names, through common.pattern_argument (probe hunt-i18n39)."""
    import typing

    from pgface.cli.common import pattern_argument, text_argument

    def commands(group: typer.Typer) -> Iterator[Callable[..., Any]]:
        yield from (c.callback for c in group.registered_commands if c.callback)
        for sub in group.registered_groups:
            yield from commands(sub.typer_instance)

    seen = []
    for command in commands(app):
        hints = typing.get_type_hints(inspect.unwrap(command), include_extras=True)
        for name, hint in hints.items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base, *meta = typing.get_args(hint)
            kinds = {base, *typing.get_args(base)}
            kinds |= {a for k in list(kinds) for a in typing.get_args(k)}
            if str in kinds:
                seen.append(name)
                # a pattern matches file names, which are bytes: kept as a path's are
                wanted = pattern_argument if name == "exclude" else text_argument
                assert any(getattr(m, "parser", None) is wanted for m in meta), (
                    command.__name__, name)
    assert {"person", "new_name", "name_has", "sources", "name_or_id", "exclude"} <= set(seen), (
        seen)


def test_tables_take_the_width_columns_says_when_they_are_drawn() -> None:
    """Rich fixed a console's width to COLUMNS as it was when the console was made, at the
    import of pgface.cli: a program (pytest-xdist's workers set COLUMNS=80 before any test
    runs) that imported it under one width drew every table at that width whatever COLUMNS
    said later, and a table asked for at 40 columns came out 80 wide."""
    program = """if True:
        import os
        from rich.table import Table
        from pgface.cli.common import out
        for columns in ("40", "60"):
            os.environ["COLUMNS"] = columns
            table = Table("photo", "similarity")
            table.add_row("/photos/" + "a_long_name_" * 8 + ".jpg", "0.9876")
            out.print(table)
        """
    drawn = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                           env={**os.environ, "COLUMNS": "80"}, check=True).stdout
    widths = [len(line) for line in drawn.splitlines()]
    assert widths[0] == 40 and max(widths[:len(widths) // 2]) == 40, drawn
    assert widths[-1] == 60 and max(widths) == 60, drawn


def test_a_narrow_search_table_keeps_the_similarity_and_the_file_name(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe clidocs19: at 40 columns the table cut the similarity itself (`0.…`) and the
    photo to `/…g`, the face box keeping its 20 columns; at 80 the photo was
    `/tmp/h…n_Peirsol_0001.jpg`, six characters of its start kept at its file name's expense
    (docs/cli.md: as much of the file name as fits)."""
    photo = tmp_path / "lfw" / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg"
    photo.parent.mkdir(parents=True)
    shutil.copyfile(next(p for p in sample_photos() if p.name == "yaoming.jpg"), photo)
    assert runner.invoke(app, ["index", "--quiet", str(photo)], env=env).exit_code == 0
    for columns in (40, 60, 80):
        done = runner.invoke(app, ["search", str(photo)], env={**env, "COLUMNS": str(columns)})
        assert done.exit_code == 0, done.output
        rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
        assert max(map(len, rows)) <= columns, done.stdout
        assert "│ 1.0000" in rows[0] and "0.…" not in done.stdout, done.stdout
        photo_cell = next(cell.strip() for cell in rows[0].split("│") if "/" in cell)
        head, _, kept = photo_cell.rpartition("…")
        # the file name whole with its slash, else all but the root's first character
        assert str(photo).startswith(head) and str(photo).endswith(kept), done.stdout
        assert kept.endswith("/" + photo.name) or len(head) == 1, done.stdout
        if columns == 80:
            assert photo_cell.endswith("…/Aaron_Peirsol_0001.jpg"), done.stdout
        if columns == 40:
            assert len(photo_cell) >= 7, done.stdout  # more than `/…g`
    # Probe cli31: at 30 columns the number was split (`1.00` / `00`) and the photo `/…pg`:
    # the similarity's column keeps its number whole, and the face box, and the person
    # column no match has a name for, give the photo its room
    done = runner.invoke(app, ["search", str(photo)], env={**env, "COLUMNS": "30"})
    rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert max(map(len, rows)) <= 30 and rows[0].startswith("│ 1.0000 │"), done.stdout
    photo_cell = next(cell.strip() for cell in rows[0].split("│") if "/" in cell)
    assert len(photo_cell) >= 9 and photo_cell.endswith(".jpg"), done.stdout
    assert "person" not in done.stdout.splitlines()[2], done.stdout  # no name: left out
    # a name kept, the face box goes (--json has it), where the photo had 3 cells
    face = json.loads(runner.invoke(app, ["search", "--json", str(photo)], env=env).stdout
                      )["faces"][0]["matches"][0]["face_id"]
    assert runner.invoke(app, ["people", "name", "Zoe", str(face)], env=env).exit_code == 0
    done = runner.invoke(app, ["search", str(photo)], env={**env, "COLUMNS": "30"})
    rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert max(map(len, rows)) <= 30 and rows[0].startswith("│ 1.0000 │ Zoe "), done.stdout
    photo_cell = next(cell.strip() for cell in rows[0].split("│") if "/" in cell)
    assert len(photo_cell) >= 9 and photo_cell.endswith(".jpg"), done.stdout
    # narrower still, the person goes too, and the photo keeps a column with its file in it:
    # at 20 its column was empty beside "Zoe" (probe scripting)
    done = runner.invoke(app, ["search", str(photo)], env={**env, "COLUMNS": "20"})
    rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert max(map(len, rows)) <= 20 and "Zoe" not in done.stdout, done.stdout
    photo_cell = next(cell.strip() for cell in rows[0].split("│")[2:] if cell.strip())
    assert len(photo_cell) >= 5 and photo_cell.endswith("jpg"), done.stdout


def test_narrow_people_tables_keep_their_ids_whole(env: dict[str, str], pf: Pgface) -> None:
    """Probe reprobe34: at 22 columns `people show` cut face ids to `1…` (what `search --face`
    takes) and `people history` change ids to `…` (what `people undo --change` takes)."""
    pf.index(sample_photos())
    faces = sorted(f.face_id for faces in pf.photo_faces(sample_photos()).values()
                   for f in faces)[-2:]  # two-digit ids
    assert min(faces) >= 10
    person = pf.people.name_faces(faces, "Ann").person.id
    for number in range(10):  # two-digit change ids
        pf.people.rename(person, f"Ann {number}")
    for columns in ("20", "22", "26"):
        shown = runner.invoke(app, ["people", "show", str(person)], env={**env, "COLUMNS": columns})
        rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
        assert [row.split("│")[1].strip() for row in rows if row.split("│")[1].strip()] == [
            str(face) for face in faces], shown.stdout
        history = runner.invoke(app, ["people", "history", "-n", "3"],
                                env={**env, "COLUMNS": columns})
        ids = [line.split("│")[1].strip() for line in history.stdout.splitlines()
               if line.startswith("│") and line.split("│")[1].strip()]
        assert ids == [str(c.id) for c in pf.people.history(3)], history.stdout


def test_cluster_options_say_their_defaults_and_are_documented() -> None:
    """Probe clidocs19: `--similarity` said "default: docs/people.md", where no value was
    given for it, and neither it nor `--min-neighbours` was in docs/cli.md or people.md."""
    shown = " ".join(runner.invoke(app, ["people", "cluster", "--help"],
                                   env={"COLUMNS": "200"}).stdout.split())
    assert "(default: 0.40 for buffalo_sc; another pack: its match threshold + 0.17)" in shown
    assert re.search(r"--min-neighbours .*\[default: 1\]", shown), shown
    root = Path(__file__).resolve().parents[1]
    for doc in ("docs/cli.md", "docs/people.md"):
        text = (root / doc).read_text()
        assert "[--similarity S]" in text and "[--min-neighbours N]" in text, doc


def test_people_search_says_a_face_below_the_floor_as_search_does(env: dict[str, str]) -> None:
    """Probe clidocs19: `people search --min-quality 0.99` said `not searched: below the
    quality floor 0.99`, without the score `search` and `people identify` give. Probe
    consistency33: its heading said the score too, at 2 decimals (`quality 0.10` of 0.0959
    below a floor of 0.1): a face not searched is one line, as in `search`."""
    t1 = next(p for p in sample_photos() if p.name == "t1.jpg")
    assert runner.invoke(app, ["index", "--quiet", str(t1)], env=env).exit_code == 0
    said = {}
    for command in (["search"], ["people", "search"]):
        done = runner.invoke(app, [*command, str(t1), "--min-quality", "1"], env=env)
        assert done.exit_code == 0, done.output
        said[command[0]] = re.findall(r"^face (?:\d+ )?at (\[.*\]): not searched, (quality "
                                      r"\S+ is (?:just )?below the floor 1\.0)$",
                                      done.stdout, re.M)
    assert said["search"] and said["people"] == said["search"], said


def test_argument_names_in_help_are_those_of_the_usage_line() -> None:
    """Probe clidocs19: `people merge --help` listed `SOURCE` and `target`, `people rename`'s
    `new_name` had no help."""
    merge = runner.invoke(app, ["people", "merge", "--help"], env={"COLUMNS": "120"}).stdout
    assert re.search(r"\* +SOURCE +People whose", merge), merge
    assert re.search(r"\* +TARGET +Person who receives", merge), merge
    rename = runner.invoke(app, ["people", "rename", "--help"], env={"COLUMNS": "120"}).stdout
    assert re.search(r"\* +PERSON +A person's name", rename), rename
    assert re.search(r"\* +NEW_NAME +\S", rename), rename


def test_a_zero_width_from_columns_is_no_width_given(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe cli42: with COLUMNS=0 in the environment (some CI runners and containers export
    it) pgface printed nothing at all, its `error:` and `failed` lines included: Rich took it
    for a width of 0. It is no width given: 80 columns where stdout is no terminal."""
    command = [sys.executable, "-c", "from pgface.cli import app; app()"]
    full = {**os.environ, **env, "COLUMNS": "0", "LINES": "0"}
    missing = tmp_path / "missing.jpg"
    done = subprocess.run([*command, "search", str(missing)], env=full, capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stderr) == (1, f"error: {missing}: no such file\n")
    done = subprocess.run([*command, "--version"], env=full, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("pgface "), done
    # Typer's own console too: --help wrote a newline, a usage error nothing (reprobe43)
    done = subprocess.run([*command, "index", "--no-such-option"], env=full,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "No such option: --no-such-option" in done.stderr, done


def test_a_stdout_that_cannot_take_the_report_is_said_to_be_stdout(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe cli23: with fd 1 closed (`>&-`) `people list --json` was "unexpected
    AttributeError ... (a bug)" and `stats` exited 0 with its report lost; a full disk under
    stdout was `error: No space left on device`, which sends an operator to the library's."""
    command = [sys.executable, "-c", "from pgface.cli import app; app()"]
    full = {**os.environ, **env}
    # --help and --version, which run before any command, exited 0 having written nothing
    # (probe cli42)
    for args in (["people", "list", "--json"], ["stats"], ["--version"], ["--help"]):
        done = subprocess.run([*command, *args], env=full, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, timeout=300,
                              preexec_fn=lambda: os.close(1))
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.strip() == ("error: standard output is closed (`>&-`): pgface writes "
                                       "its report there; send it to a file or to /dev/null "
                                       "instead"), (args, done.stderr)
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    # the tables too: they said only `error: No space left on device` (probe cli31)
    for args in (["stats", "--json"], ["stats"], ["people", "list"], ["people", "history"]):
        with open("/dev/full", "w") as disk_full:
            done = subprocess.run([*command, *args], env=full, stdout=disk_full,
                                  stderr=subprocess.PIPE, text=True, timeout=300)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.strip() == ("error: cannot write the report to standard output (No "
                                       "space left on device); what the command did before it "
                                       "is kept"), (args, done.stderr)
    # a key whose secret cannot be shown is not created: it was, its secret lost (cli31)
    for args in (["keys", "create", "full-disk"], ["keys", "create", "full-disk", "--json"]):
        with open("/dev/full", "w") as disk_full:
            done = subprocess.run([*command, *args], env=full, stdout=disk_full,
                                  stderr=subprocess.PIPE, text=True, timeout=300)
        # said alone: "created key" before it read as a key made (probe docsrun37)
        assert done.returncode == 1 and done.stderr.strip() == (
            "error: cannot write the key to standard output (No space left on device): no key "
            "was created"), (args, done.stderr)
    listed = subprocess.run([*command, "keys", "list", "--json"], env=full,
                            capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stdout
    # --version and --help, before any command's own handling, were a Rich traceback
    for args in (["--version"], ["--help"], ["index", "--help"]):
        with open("/dev/full", "w") as disk_full:
            done = subprocess.run([*command, *args], env=full, stdout=disk_full,
                                  stderr=subprocess.PIPE, text=True, timeout=300)
        assert (done.returncode, done.stderr) == (
            1, "error: cannot write to standard output (No space left on device)\n"), args
    # `| head`: the reader stopped on purpose; nothing said, as before
    piped = subprocess.run(f"{shlex.join([*command, 'stats', '--json'])} | head -c 1",
                           shell=True, env=full, capture_output=True, text=True, timeout=300)
    assert piped.stdout == "{" and "error" not in piped.stderr, piped.stderr


def test_a_reader_that_stops_early_ends_the_output_quietly_exit_0(env: dict[str, str]) -> None:
    """Probe cli31: `pgface search x.jpg | head -1` (a table, help) exited 1 with nothing said,
    rich's own answer to a broken pipe, where --json exited 0. A reader that stops early ends
    the output quietly, the command's exit status its own (docs/cli.md)."""
    command = [sys.executable, "-c", "from pgface.cli import app; app()"]
    for args in (["stats"], ["stats", "--json"], ["people", "list"], ["--help"],
                 ["--version"]):
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before pgface writes a byte
        try:
            done = subprocess.run([*command, *args], env={**os.environ, **env}, stdout=writer,
                                  stderr=subprocess.PIPE, text=True, timeout=300)
        finally:
            os.close(writer)
        assert (done.returncode, done.stderr) == (0, ""), (args, done.stderr)


def test_a_reader_of_stderr_that_stops_early_leaves_the_run_whole(
        env: dict[str, str], pf: Pgface, tmp_path: Path) -> None:
    """Probe scripting: `pgface index DIR 2>&1 | head -1` (or `| grep -q '^failed'`) stopped
    the run at its first line on stderr, exit 1, the other files neither stored nor remembered
    as failed; `people enrol` so enrolled no one. Messages are lost, the run goes on."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for number, sample in enumerate(sample_photos()):
        shutil.copy(sample, photos / f"good-{number}-{sample.name}")
    hour_ago = time.time() - 3600  # older than index.STAMP_SETTLE_S: remembered as failed
    for number in range(3):
        (photos / f"bad-{number}.jpg").write_bytes(b"not a photo %d" % number)
        os.utime(photos / f"bad-{number}.jpg", (hour_ago, hour_ago))
    people = tmp_path / "people" / "Yao Ming"
    people.mkdir(parents=True)
    shutil.copy(next(p for p in sample_photos() if p.name == "yaoming.jpg"), people)
    command = [sys.executable, "-c", "from pgface.cli import app; app()"]
    full = {**os.environ, **env, "PGFACE_PHOTO_BATCH": "2"}  # several batches

    def with_stderr_gone(args: list[str]) -> subprocess.CompletedProcess:
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before pgface writes a byte
        try:
            return subprocess.run([*command, *args], env=full, stdout=subprocess.PIPE,
                                  stderr=writer, text=True, timeout=300)
        finally:
            os.close(writer)

    done = with_stderr_gone(["index", "--json", str(photos)])
    assert done.returncode == 1  # the bad files, as with stderr there
    report = json.loads(done.stdout)
    assert (report["indexed"], len(report["failures"])) == (len(sample_photos()), 3), report
    assert pf.stats()["photos"] == len(sample_photos())
    again = json.loads(with_stderr_gone(["index", "--json", str(photos)]).stdout)
    assert again["unchanged_failures"] == 3, again  # remembered, not read again
    enrolled = with_stderr_gone(["people", "enrol", "--json", str(tmp_path / "people")])
    assert enrolled.returncode == 0, enrolled.stdout
    assert [p.name for p in pf.people.list()] == ["Yao Ming"]


def test_a_ctrl_c_in_any_command_says_it_stopped(env: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Probe cli31: Ctrl-C during `search` or `compare` after start-up exited 130 with no
    word (typer's own handling), where index, enrol and backup say `stopped (Ctrl-C): ...`."""
    def ctrl_c(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    photo = str(sample_photos()[0])
    for method, args in (("search", ["search", photo]), ("compare", ["compare", photo, photo]),
                         ("stats", ["stats"])):
        monkeypatch.setattr(Pgface, method, ctrl_c)
        done = runner.invoke(app, args, env=env)
        assert (done.exit_code, done.stderr) == (130, "stopped (Ctrl-C)\n"), (args, done.output)

    # A Ctrl-C that cut a query short, whose clean-up then failed on the busy connection:
    # said as the database's failure ("another command is already in progress", CI)
    def ctrl_c_then_busy(*args: Any, **kwargs: Any) -> None:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            try:
                raise psycopg.OperationalError("another command is already in progress")
            except psycopg.OperationalError as exc:
                raise DatabaseError(f"cannot connect to the database: {exc}") from exc

    monkeypatch.setattr(Pgface, "stats", ctrl_c_then_busy)
    done = runner.invoke(app, ["stats"], env=env)
    assert (done.exit_code, done.stderr) == (130, "stopped (Ctrl-C)\n"), done.output

    # and a SIGTERM's so, in a run that says what is kept (probe reprobe35: said as Ctrl-C's)
    @handle_errors
    def terminated_then_busy() -> None:
        with stopped_by_sigterm_as_by_ctrl_c("kept"):
            try:
                raise Terminated
            except Terminated:
                raise DatabaseError("another command is already in progress") from None

    capsys.readouterr()
    with pytest.raises(typer.Exit) as stopped:
        terminated_then_busy()
    assert (stopped.value.exit_code, capsys.readouterr().err) == (
        143, "stopped (SIGTERM): kept\n")


def test_a_backup_path_through_a_missing_folder_is_read_as_a_shell_would(
        env: dict[str, str], tmp_path: Path) -> None:
    """Probe cli31: `db backup ~/x/../../nope.dump`, ~/x nowhere, wrote /nope.dump (`..`
    taken off as text), where a shell's `> ~/x/../../nope.dump` fails: the folder is named."""
    done = runner.invoke(app, ["db", "backup", str(tmp_path / "x" / ".." / "b.dump")], env=env)
    assert done.exit_code == 1, done.output
    assert done.stderr.strip() == (f"error: {tmp_path}/x/../b.dump: folder {tmp_path}/x does "
                                   f"not exist"), done.stderr
    assert not (tmp_path / "b.dump").exists()


def test_ctrl_c_while_pgface_starts_is_one_line(env: dict[str, str]) -> None:
    """A Ctrl-C in the second pgface takes to load its libraries, before the command line's
    own handling is in place, was a Python traceback of 20 to 45 lines (probes cli23 and
    crash23). `python -m pgface` is the `pgface` command (pgface.launch)."""
    full = {**os.environ, **env}
    said = []
    for delay in (0.1, 0.2, 0.4, 0.7, 1.0, 1.5):
        started = subprocess.Popen([sys.executable, "-m", "pgface", "stats"], env=full,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        started.send_signal(signal.SIGINT)
        _, err = started.communicate(timeout=120)
        if "Traceback" in err and "/pgface/" not in err:
            # on a loaded machine, a Ctrl-C in Python's own start (importing runpy, or reading
            # pgface's compiled files), before a line of pgface runs: not pgface's to say
            continue
        # (0: `stats` of a small library, its modules compiled, may be done before 0.4 s)
        assert "Traceback" not in err and started.returncode in (0, 130, -signal.SIGINT), (
            delay, started.returncode, err)
        said.append(err)
    # on this machine the first falls in the import: said so, in one line
    assert any(err == "stopped (Ctrl-C) while pgface was starting: nothing was done\n"
               for err in said), said
    done = subprocess.run([sys.executable, "-m", "pgface", "--version"], env=full,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("pgface "), done.stderr


def test_a_ctrl_c_as_pgface_exits_ends_it_without_a_traceback(env: dict[str, str]) -> None:
    """A CI run's Ctrl-C 0.7 s into `pgface stats` came as the command had finished, while
    Python joined its threads to exit: "Exception ignored in <module 'threading'> ...
    KeyboardInterrupt", a traceback. The command done, a Ctrl-C ends the process as the
    signal does. (A thread that outlives the command holds the exit open here.)"""
    script = ("import sys, threading, time\n"
              "threading.Thread(target=time.sleep, args=(30,)).start()  # the exit waits\n"
              "sys.argv = ['pgface', '--version']\n"
              "from pgface.launch import main\n"
              "main()\n")
    started = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert started.stdout is not None and started.stdout.readline().startswith("pgface ")
    time.sleep(0.5)  # the command's own handling is over: the exit waits for the thread
    started.send_signal(signal.SIGINT)
    _, err = started.communicate(timeout=60)
    assert (started.returncode, err) == (-signal.SIGINT, ""), (started.returncode, err)


# ONNX Runtime's compiled module, started as the Ctrl-C comes: pybind11 turns the
# KeyboardInterrupt its start met into "ImportError: initialization failed" (the last stop's CI
# met it at a 0.4 s delay, in a window of some 20 ms the sweep above rarely falls in)
_RUNTIME_STARTED_AS_CTRL_C_CAME = """
import importlib.abc, sys
class CtrlCInRuntimeStart(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "onnxruntime.capi.onnxruntime_pybind11_state":
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt as exc:
                raise ImportError("initialization failed") from exc
sys.meta_path.insert(0, CtrlCInRuntimeStart())
from pgface.launch import main
main()
"""


def test_a_ctrl_c_inside_a_runtimes_import_while_pgface_starts_is_one_line(
        env: dict[str, str]) -> None:
    full = {**os.environ, **env}
    started = subprocess.run([sys.executable, "-c", _RUNTIME_STARTED_AS_CTRL_C_CAME, "stats"],
                             env=full, capture_output=True, text=True, timeout=120)
    assert (started.returncode, started.stderr) == (
        130, "stopped (Ctrl-C) while pgface was starting: nothing was done\n")
    # any other failure of an import is still said whole
    broken = _RUNTIME_STARTED_AS_CTRL_C_CAME.replace(
        "raise KeyboardInterrupt", "raise RuntimeError('no runtime here')")
    failed = subprocess.run([sys.executable, "-c", broken, "stats"], env=full,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and "no runtime here" in failed.stderr, failed.stderr


def test_a_cli_run_shows_no_warning_of_pillows_between_its_lines(
        env: dict[str, str], recwarn: pytest.WarningsRecorder) -> None:
    """Probe docs35: `UserWarning: Corrupt EXIF data` of Pillow's came out between the lines
    of an index run once: decoding hides Pillow's warnings each time, but
    warnings.catch_warnings is not safe across threads (one thread's exit restores the
    filters while another decodes). A command line run hides them for its whole process."""
    assert runner.invoke(app, ["stats"], env=env).exit_code == 0
    warnings.warn_explicit("Corrupt EXIF data.  Expecting to read 12 bytes but only got 6.",
                           UserWarning, "PIL/TiffImagePlugin.py", 982,
                           module="PIL.TiffImagePlugin")
    warnings.warn_explicit("another library's", UserWarning, "elsewhere.py", 1,
                           module="elsewhere")
    assert [str(w.message) for w in recwarn] == ["another library's"]


def test_a_change_says_the_name_it_replaced_and_a_person_hidden(env: dict[str, str]) -> None:
    """Probe peopleops, two curators: `people rename 1 'Ann Veneman'` said "renamed Ann
    Veneman" over the name another curator had given a moment before (history alone told);
    faces named into a person another had hidden, or a merge into them, said "named Ada: 8
    faces", and Ada was then in no list, with no word of where."""
    players = next(p for p in sample_photos() if p.name == "players.jpg")
    assert runner.invoke(app, ["index", "--quiet", str(players)], env=env).exit_code == 0
    found = runner.invoke(app, ["search", "--json", str(players), "--top", "1"], env=env)
    faces = [face["matches"][0]["face_id"] for face in json.loads(found.stdout)["faces"][:3]]
    said = runner.invoke(app, ["people", "name", "Ada", str(faces[0])], env=env)
    assert said.exit_code == 0 and "hidden" not in said.stdout, said.output
    assert said.stdout.startswith("named Ada: 1 face"), said.stdout
    # a face Ada holds already: no change, said so (the web page's "Those faces are Ada's
    # already"), not "named Ada"
    again = runner.invoke(app, ["people", "name", "Ada", str(faces[0])], env=env)
    assert again.exit_code == 0 and again.stdout.startswith("1 face already in Ada: 1 face"), \
        again.output
    # and --json says no change was recorded: a script's `people undo` after it took back
    # another user's change (probe scripting37); a naming says the change `undo --change` takes
    unchanged = json.loads(runner.invoke(app, ["people", "name", "Ada", str(faces[0]), "--json"],
                                         env=env).stdout)
    assert (unchanged["named"], unchanged["change_id"]) == ([faces[0]], None)
    # one face new among them: the change counts that one ("named 2 faces", probe reprobe37b)
    mixed = json.loads(runner.invoke(app, ["people", "name", "Ada", str(faces[0]),
                                           str(faces[1]), "--json"], env=env).stdout)
    history = json.loads(runner.invoke(app, ["people", "history", "--json"], env=env).stdout)
    assert history[0]["summary"].startswith("named 1 face 'Ada'"), history[0]
    assert runner.invoke(app, ["people", "undo", "--change", str(mixed["change_id"])],
                         env=env).exit_code == 0
    named = json.loads(runner.invoke(app, ["people", "name", "Ada", str(faces[2]), "--json"],
                                     env=env).stdout)
    undone = runner.invoke(app, ["people", "undo", "--change", str(named["change_id"]), "--json"],
                           env=env)
    assert json.loads(undone.stdout)["kind"] == "name", undone.output
    renamed = runner.invoke(app, ["people", "rename", "Ada", "Grace"], env=env)
    assert renamed.exit_code == 0, renamed.output
    assert renamed.stdout.startswith("renamed Grace (was Ada: `pgface people undo` gives "
                                     "that name back): 1 face"), renamed.stdout
    assert "was" not in runner.invoke(app, ["people", "rename", "Grace", "Grace"], env=env).stdout
    # a script's own earlier reading, as Python's and HTTP's expected_name (it had none)
    stale = runner.invoke(app, ["people", "rename", "Grace", "Kit", "--expected-name", "Ada"],
                          env=env)
    assert stale.exit_code == 1, stale.output
    assert stale.stderr.startswith("error: 'Ada' was renamed meanwhile (now 'Grace')"), stale.stderr
    assert "not renamed" in stale.stderr
    unnamed = runner.invoke(app, ["people", "rename", "Grace", "Kit", "--expected-name", ""],
                            env=env)
    assert unnamed.exit_code == 1 and "not renamed" in unnamed.stderr, unnamed.output
    assert runner.invoke(app, ["people", "show", "Grace"], env=env).exit_code == 0  # as it was
    as_read = runner.invoke(app, ["people", "rename", "Grace", "Kit", "--expected-name",
                                  "Grace"], env=env)
    assert as_read.exit_code == 0 and as_read.stdout.startswith("renamed Kit (was Grace"), \
        as_read.output
    assert runner.invoke(app, ["people", "rename", "Kit", "Grace"], env=env).exit_code == 0

    assert runner.invoke(app, ["people", "hide", "Grace"], env=env).exit_code == 0
    person = json.loads(runner.invoke(app, ["people", "show", "Grace", "--json"], env=env
                                      ).stdout)["id"]
    hidden = (f"; hidden (`people list --hidden` lists them, `pgface people unhide {person}` "
              f"shows them again)")
    named = runner.invoke(app, ["people", "name", "Grace", str(faces[1])], env=env)
    assert named.exit_code == 0 and named.stdout.rstrip().endswith(hidden), named.stdout
    # an unnamed person merged into a hidden one is hidden with them (docs/people.md)
    split = runner.invoke(app, ["people", "split", "Grace", str(faces[1]), "--json"], env=env)
    unnamed = json.loads(split.stdout)["id"]
    merged = runner.invoke(app, ["people", "merge", str(unnamed), "Grace"], env=env)
    assert merged.exit_code == 0 and merged.stdout.rstrip().endswith(hidden), merged.stdout
    listed = runner.invoke(app, ["people", "list"], env=env)
    assert "Grace" not in listed.stdout
    assert "and 1 hidden person: --hidden lists them" in listed.stderr, listed.stderr
    assert "Grace (hidden)" in runner.invoke(app, ["people", "list", "--hidden"], env=env).stdout
    # and `show` says it as `list` does (probe review38: only its --json did)
    assert runner.invoke(app, ["people", "show", "Grace"], env=env).stdout.startswith(
        "Grace (hidden): 2 faces\n")
    assert "hidden person" not in runner.invoke(app, ["people", "list", "--hidden"], env=env
                                                ).stderr
