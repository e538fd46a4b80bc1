"""Indexing against the real embedded PostgreSQL: bad files reported, nothing twice, no half
photos after an interruption."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from conftest import PHOTOS, require_data
from PIL import Image

from pgface import Pgface, Settings
from pgface import index as index_module
from pgface.cli.progress import IndexProgress
from pgface.errors import InvalidInputError
from pgface.imaging import KERNEL_FILE
from pgface.index import (
    KERNEL_FOLDER,
    KERNEL_PATH,
    STAMP_SETTLE_S,
    Failure,
    IndexReport,
    excluded,
)
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos


def table_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        photos = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
        faces = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        mismatched = conn.execute(
            "SELECT count(*) FROM photos p WHERE face_count <> "
            "(SELECT count(*) FROM faces f WHERE f.photo_id = p.id)"
        ).fetchone()[0]
    assert mismatched == 0, "a photo row disagrees with its faces"
    return photos, faces


def make_bad_files(folder: Path) -> dict[str, str]:
    """Broken files a real archive holds, with a word each reason must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.jpg").write_text("not a photo at all")
    good = folder / "ok.jpg"
    Image.new("RGB", (400, 300), (30, 120, 200)).save(good, quality=90)
    data = good.read_bytes()
    good.unlink()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "empty.png").write_bytes(b"")
    Image.new("L", (12000, 10000)).save(folder / "huge.png")  # 120 MP, a decompression bomb
    return {"notes.jpg": "not an image", "truncated.jpg": "truncated", "empty.png": "empty",
            "huge.png": "over the limit"}


def test_mixed_folder_indexes_every_good_photo_and_reports_every_bad_file(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    photos = require_data(PHOTOS)
    mixed = tmp_path / "mixed"
    shutil.copytree(photos, mixed, ignore=shutil.ignore_patterns("*.xml"))
    for folder in [mixed, *(p for p in mixed.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)  # the shared data is read-only, and so is a copy of its folders
    expected_bad = make_bad_files(mixed / "broken")
    good = [p for p in mixed.rglob("*") if p.is_file() and p.parent.name != "broken"]

    report = pf.index([mixed])

    failed = {Path(f.source).name: f.reason for f in report.failures}
    assert set(failed) == set(expected_bad)
    for name, word in expected_bad.items():
        assert word in failed[name], (name, failed[name])
    # Identical files (same bytes under two names) are stored once.
    assert report.indexed + report.skipped == len(good)
    photos_stored, faces_stored = table_counts(database_url)
    assert photos_stored == report.indexed and faces_stored == report.faces
    assert faces_stored > 100  # groups, people, crowds: this folder holds hundreds of faces

    again = pf.index([mixed])
    assert again.indexed == 0 and again.faces == 0
    assert again.skipped == len(good)
    assert table_counts(database_url) == (photos_stored, faces_stored)


def test_moved_or_renamed_photos_are_not_indexed_twice(pf: Pgface, tmp_path: Path) -> None:
    original = sample_photos()[0]
    first = pf.index([original])
    assert first.indexed == 1 and first.faces > 0
    moved = tmp_path / "elsewhere" / "renamed.jpg"
    moved.parent.mkdir()
    shutil.copy(original, moved)
    second = pf.index([moved])
    assert (second.indexed, second.skipped) == (0, 1)


def test_a_run_over_the_paths_another_run_is_indexing_waits_for_it(
        pf: Pgface, settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, env: dict[str, str]) -> None:
    """Probe cron38: a cron job's run started while the last one still went on analysed every
    photo the other was analysing (twice the time for both), then called them all "already
    indexed". It waits for the other, saying so, then reads only what the other left; a run
    over other paths goes on beside it."""
    folder, other = tmp_path / "album", tmp_path / "other"
    folder.mkdir()
    other.mkdir()
    for photo in sample_photos()[:2]:
        shutil.copy(photo, folder / photo.name)
    shutil.copy(sample_photos()[2], other / "third.jpg")
    started, go_on = threading.Event(), threading.Event()

    def held(report: IndexReport, failure: Failure | None) -> None:
        started.set()  # the first run holds its paths, stopped here until told to go on
        assert go_on.wait(120)

    first = threading.Thread(target=pf.index, args=([folder],), kwargs={"progress": held})
    first.start()
    assert started.wait(120)
    caplog.set_level(logging.WARNING, logger="pgface.library")
    reports: list[IndexReport] = []
    with Pgface(settings, analyzer=analyzer) as second:
        assert second.index([other]).indexed == 1  # other paths: not held up
        assert not caplog.records
        # named twice, and the second time as `folder/` is typed: the same paths (it did not
        # wait, probe reprobe39)
        waiting = threading.Thread(
            target=lambda: reports.append(second.index([folder, f"{folder}/"])))
        waiting.start()
        deadline = time.monotonic() + 60
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.getMessage() for r in caplog.records] == [
            f"another pgface index of {folder} is running: this one waits for it to end, then "
            f"reads what it left (Ctrl-C stops this one)"]
        assert waiting.is_alive()
        # stopped while it waits: it was told "what was stored until then is kept, a batch cut
        # short rolled back" of a run that had begun none
        command = subprocess.Popen([sys.executable, "-m", "pgface", "index", str(folder)],
                                   env={**os.environ, **env}, stderr=subprocess.PIPE,
                                   text=True)
        said: list[str] = []
        reading = threading.Thread(target=lambda: said.extend(command.stderr))
        reading.start()
        while not any("is running: this one waits" in line for line in said):
            assert time.monotonic() < deadline + 60 and command.poll() is None, said
            time.sleep(0.05)
        command.send_signal(signal.SIGTERM)
        assert command.wait(60) == 143
        reading.join(60)
        assert said[-1] == ("stopped (SIGTERM): it was waiting for the other run over these "
                            "paths: nothing was done\n"), said
        go_on.set()
        first.join(120)
        waiting.join(120)
    [report] = reports
    assert (report.files, report.indexed, report.skipped) == (2, 0, 2)
    assert report.timings.get("detect", 0) == 0  # nothing analysed again


def test_a_file_named_twice_is_one_file(pf: Pgface, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Named twice, or named beside its folder: the file was counted each time, and the run
    # that had just indexed it reported it "already indexed" too.
    folder = tmp_path / "album"
    folder.mkdir()
    for photo in sample_photos()[:2]:
        shutil.copy(photo, folder / photo.name)
    one = folder / sample_photos()[0].name
    monkeypatch.chdir(tmp_path)
    # and named through a link to its folder ("1 photo indexed, 1 already indexed" of a photo
    # new to the library: probe scripting37)
    (tmp_path / "album-link").symlink_to(folder)
    # or through a link to the file itself (probe reprobe38), here in the folder named too
    (folder / "one-link.jpg").symlink_to(one)
    report = pf.index([one, one, folder, "album", folder / ".." / "album" / one.name,
                       tmp_path / "album-link" / one.name, "album-link"])
    assert (report.files, report.indexed, report.skipped, report.failures) == (2, 2, 0, [])


def stamps(url: str) -> dict[str, tuple[int | None, int | None]]:
    with psycopg.connect(url) as conn:
        return {Path(path).name: (size, mtime)
                for path, size, mtime in conn.execute(
                    "SELECT path, size_bytes, mtime_ns FROM photo_paths")}


def test_an_unchanged_file_is_not_read_again_and_reread_reads_every_file(
    pf: Pgface, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    players, yaoming = sample_photos()[:2]
    folder = tmp_path / "library"
    folder.mkdir()
    a, b = folder / "a.jpg", folder / "b.jpg"
    shutil.copy(players, a)
    shutil.copy(yaoming, b)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for path in (a, b):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    assert (pf.index([folder]).indexed, pf.index([folder]).skipped) == (2, 2)
    assert stamps(database_url) == {"a.jpg": (a.stat().st_size, an_hour_ago),
                                    "b.jpg": (b.stat().st_size, an_hour_ago)}

    again = pf.index([folder])
    assert (again.indexed, again.skipped, again.failures) == (0, 2, [])
    assert set(again.timings) == {"read"}  # the stages that ran (docs/cli.md)
    # Every file is read when asked: a.jpg is, though its stamp is the one recorded.
    checked = pf.index([folder], reread=True)
    assert (checked.indexed, checked.skipped, checked.failures) == (0, 2, [])
    assert set(checked.timings) == {"read", "store"}  # known content: not decoded
    # Other bytes behind the same size and modification time (a tool that sets the time
    # back) are read: the write set the file's change time, which no tool sets back. Before
    # change times were stamped, the file was not read at all.
    a.write_bytes(b"\0" * a.stat().st_size)
    os.utime(a, ns=(an_hour_ago, an_hour_ago))
    rewritten = pf.index([folder])
    assert [(Path(f.source).name, "not an image" in f.reason) for f in rewritten.failures] == [
        ("a.jpg", True)]
    assert rewritten.skipped == 1
    # a.jpg decoded (and refused), b.jpg not read: nothing was embedded
    assert set(rewritten.timings) == {"read", "decode"}

    # A new modification time is read: new content is indexed, the same content only
    # gets its new stamp.
    shutil.copy(players, a)
    os.utime(a, ns=(an_hour_ago + 10**9, an_hour_ago + 10**9))
    os.utime(b, ns=(an_hour_ago + 2 * 10**9, an_hour_ago + 2 * 10**9))
    changed = pf.index([folder])
    assert (changed.indexed, changed.skipped, changed.failures) == (0, 2, [])
    assert stamps(database_url) == {"a.jpg": (a.stat().st_size, an_hour_ago + 10**9),
                                    "b.jpg": (b.stat().st_size, an_hour_ago + 2 * 10**9)}
    Image.open(players).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(a)  # another photo
    os.utime(a, ns=(an_hour_ago + 3 * 10**9, an_hour_ago + 3 * 10**9))
    assert pf.index([folder]).indexed == 1

    # A file written a moment ago gets no stamp: a second write within the file system's
    # clock tick could leave the same size and time, so the next run reads it.
    fresh = folder / "c.jpg"
    shutil.copy(yaoming, fresh)
    shutil.copy(players, folder / "d.jpg")
    os.utime(folder / "d.jpg", ns=(an_hour_ago, an_hour_ago))
    # (d.jpg is indexed: its content, a.jpg's before the edit above, went with that run)
    # However long this machine stalls between the copy and the read (over 2 s on a loaded
    # one, and c.jpg was stamped), c.jpg is "a moment ago" to this run.
    monkeypatch.setattr(index_module, "STAMP_SETTLE_S", 3600.0)
    fresh_run = pf.index([folder])
    assert (fresh_run.indexed, fresh_run.skipped) == (1, 3)
    assert stamps(database_url)["c.jpg"] == (None, None)
    assert stamps(database_url)["d.jpg"] == (players.stat().st_size, an_hour_ago)


def test_a_file_dated_in_the_future_is_not_read_again_every_run(
    pf: Pgface, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A camera whose clock ran ahead, or an archive unpacked with such dates: the file's
    modification time was always "a moment ago or later", so it never got a stamp, and every
    run read and hashed it again. Its change time (which no tool sets) says when it was
    last written."""
    folder = tmp_path / "library"
    folder.mkdir()
    future = folder / "ahead.jpg"
    shutil.copy(sample_photos()[1], future)
    next_year = time.time_ns() + 365 * 86400 * 10**9
    os.utime(future, ns=(next_year, next_year))
    # read at once: no stamp yet (written a moment ago, however long this machine stalls)
    monkeypatch.setattr(index_module, "STAMP_SETTLE_S", 3600.0)
    assert pf.index([folder]).indexed == 1
    assert stamps(database_url)["ahead.jpg"] == (None, None)
    monkeypatch.undo()
    time.sleep(STAMP_SETTLE_S + 0.2)
    assert pf.index([folder]).skipped == 1  # read, its content known: stamped now
    assert stamps(database_url)["ahead.jpg"] == (future.stat().st_size, next_year)

    again = pf.index([folder])
    assert (again.indexed, again.skipped, set(again.timings)) == (0, 1, {"read"})


def test_files_of_one_size_and_time_that_swap_names_are_read_again(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    # Two scans of one size (uncompressed) and one time (an archive unpacked) swap names with
    # three renames, which keep each file's times: by size and modification time alone both
    # were unchanged, and each path went on holding the other's photo, its person and its
    # search results, until `--reread`. A rename sets the change time, which is stamped too.
    folder = tmp_path / "scans"
    folder.mkdir()
    a, b = folder / "a.bmp", folder / "b.bmp"
    for source, target in zip(sample_photos()[:2], (a, b), strict=True):
        Image.open(source).convert("RGB").resize((320, 240)).save(target)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for path in (a, b):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    assert a.stat().st_size == b.stat().st_size
    assert pf.index([folder]).indexed == 2

    def held() -> dict[str, str]:  # each path's stored photo: the file it holds, by content
        with psycopg.connect(database_url) as conn:
            return {Path(path).name: bytes(sha).hex() for path, sha in conn.execute(
                "SELECT pp.path, ph.sha256 FROM photo_paths pp JOIN photos ph "
                "ON ph.id = pp.photo_id")}

    def truth() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)}

    assert held() == truth()
    def recorded() -> dict[str, int | None]:
        with psycopg.connect(database_url) as conn:
            return dict(conn.execute("SELECT path, ctime_ns FROM photo_paths").fetchall())

    def swap() -> None:
        between = folder / "swap.bmp"
        a.rename(between)
        b.rename(a)
        between.rename(b)
        assert (a.stat().st_mtime_ns, b.stat().st_mtime_ns) == (an_hour_ago, an_hour_ago)

    # A library recorded before change times: its paths get their change time the first time
    # they are found unchanged, not read (a file unchanged since its path was recorded) ...
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE photo_paths SET ctime_ns = NULL")
    quiet = pf.index([folder])
    assert (quiet.skipped, set(quiet.timings)) == (2, {"read"})
    assert recorded() == {str(p): p.stat().st_ctime_ns for p in (a, b)}
    # ... but files that swapped names before the upgrade are read once: their change time is
    # later than their paths' recording (filled, the wrong photos were kept for good).
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE photo_paths SET ctime_ns = NULL")
    swap()
    report = pf.index([folder])
    assert (report.indexed, report.skipped, report.failures) == (0, 2, [])  # both known
    assert held() == truth()
    assert recorded() == {str(p): p.stat().st_ctime_ns for p in (a, b)}
    # Once stamped, a swap is seen by the change times themselves.
    swap()
    report = pf.index([folder])
    assert (report.indexed, report.skipped, report.failures) == (0, 2, [])
    assert held() == truth()

    # Filling change times passes over a path another writer holds, never waits for it: two
    # runs given their folders in other orders locked rows in those orders, and deadlocked.
    with psycopg.connect(database_url) as holder:
        holder.execute("UPDATE photo_paths SET ctime_ns = NULL")
        holder.commit()
        holder.execute("SELECT 1 FROM photo_paths WHERE path = %s FOR UPDATE", [str(a)])
        run = threading.Thread(target=pf.index, args=([folder],), daemon=True)
        run.start()
        run.join(timeout=60)
        ran_alone = not run.is_alive()
        holder.rollback()
    run.join()
    assert ran_alone, "the run waited for the row another writer held"
    assert recorded() == {str(a): None, str(b): b.stat().st_ctime_ns}


def test_a_copy_of_a_bad_file_fails_as_the_file_does(pf: Pgface, tmp_path: Path) -> None:
    # Two files of the same bad bytes in one batch: the second was counted as a copy of a
    # photo to be stored, "already indexed", though nothing was stored.
    folder = tmp_path / "twins"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (folder / name).write_bytes(b"\xff\xd8 not really a JPEG")
    shutil.copy(sample_photos()[1], folder / "c.jpg")
    report = pf.index([folder])
    assert sorted(Path(f.source).name for f in report.failures) == ["a.jpg", "b.jpg"]
    assert (report.indexed, report.skipped, report.files_done) == (1, 0, 3)


def test_an_interrupted_run_keeps_whole_batches_and_the_next_run_resumes(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "batchy"
    folder.mkdir()
    for number, source in enumerate(sample_photos() * 2):
        image = Image.open(source).convert("RGB")
        # Distinct content per copy: a one-pixel change gives a new sha256.
        image.putpixel((0, 0), (number, number, number))
        image.save(folder / f"{number:02d}.png")
    (folder / "02b.png").write_text("broken")  # sorts into the second batch
    pf.settings.photo_batch = 2

    def interrupt_on_the_broken_file(report, failure):  # type: ignore[no-untyped-def]
        if failure is not None:
            raise KeyboardInterrupt  # what Ctrl-C raises, here in the middle of batch two

    with pytest.raises(KeyboardInterrupt):
        pf.index([folder], progress=interrupt_on_the_broken_file)
    photos_stored, _ = table_counts(database_url)
    assert photos_stored == 2  # the first batch whole, nothing of the second

    resumed = pf.index([folder])
    total = len(sample_photos()) * 2
    assert resumed.skipped == 2 and resumed.indexed == total - 2
    assert len(resumed.failures) == 1
    assert table_counts(database_url)[0] == total


def test_missing_paths_are_reported_and_the_rest_goes_on(pf: Pgface, tmp_path: Path) -> None:
    # The progress counts photo files: a path that is none is a failure, not a file done (the
    # CLI's bar once read "2/1").
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    seen: list[tuple[int, int]] = []
    bar = IndexProgress(enabled=False)
    with bar:
        def progress(report: IndexReport, failure: Failure | None) -> None:
            seen.append((report.files_done, report.files))
            bar(report, failure)

        report = pf.index([tmp_path / "nowhere", sample_photos()[-1], tmp_path / "broken.jpg"],
                          progress=progress)
    assert report.indexed == 1
    assert {Path(f.source).name: f.reason for f in report.failures} == {
        "nowhere": "no such file or folder", "broken.jpg": "not an image (unrecognised format)"}
    assert report.files == 2 and report.files_done == 2
    assert all(done <= files == 2 for done, files in seen), seen
    [task] = bar.progress.tasks
    assert (task.completed, task.total) == (2, 2)


def test_hidden_and_system_folders_are_passed_over_unless_named(pf: Pgface, tmp_path: Path
                                                                 ) -> None:
    # A Synology share: each photo again in @eaDir at thumbnail sizes, macOS's ._ twin of each
    # photo (no image at all), a recycle bin; and a desktop's .thumbnails.
    library = tmp_path / "share"
    t1 = next(p for p in sample_photos() if p.name == "t1.jpg")
    thumbnail = Image.open(t1)
    thumbnail.thumbnail((320, 320))
    for place in ("@eaDir/t1.jpg/SYNOPHOTO_THUMB_M.jpg", ".thumbnails/large/t1.png",
                  "#recycle/old.jpg", "sub/.hidden/t1.jpg"):
        (library / place).parent.mkdir(parents=True, exist_ok=True)
        thumbnail.save(library / place)
    shutil.copy(t1, library / "t1.jpg")
    (library / "._t1.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")

    report = pf.index(library)

    assert (report.files, report.indexed, report.failures) == (1, 1, [])
    assert report.passed_over == 5  # three folders at the top, one deeper, one file
    assert pf.index(library / ".thumbnails").indexed == 1  # named: read
    named = pf.index(library / "._t1.jpg")
    assert [f.reason for f in named.failures] == ["not an image (unrecognised format)"]

    # Probe nas33: Windows's recycle bins as a disk of its spells them (the system drive's
    # `$Recycle.Bin`, XP's `RECYCLER`), and a macOS Photos library's previews of its
    # originals, were walked: a deleted photo and each photo again were more photos of everyone
    disk = tmp_path / "disk"
    photos_library = "Photos Library.photoslibrary"
    for place in ("$Recycle.Bin/S-1-5-21/$RABC123.JPG", "RECYCLER/S-1-5-21/Dc1.jpg",
                  f"{photos_library}/resources/derivatives/0/t1_1_105_c.jpeg",
                  f"{photos_library}/originals/0/t1.jpe", f"{photos_library}/Masters/t1.jpg"):
        (disk / place).parent.mkdir(parents=True, exist_ok=True)
        thumbnail.save(disk / place, "JPEG")
    report = pf.index(disk)
    assert (report.files, report.passed_over, report.failures) == (2, 3, [])


def excluded_library(folder: Path) -> Path:
    """A photo library with screenshots at two depths, a private year and PNGs, each a small
    real photo: t1.jpg, Screenshots/a.jpg, 2019/Screenshots/b.jpg, 2019/private/c.jpg,
    2019/d.jpg, 2020/private/e.jpg, 2020/f.png, 2020/G.PNG."""
    thumbnail = Image.open(next(p for p in sample_photos() if p.name == "t1.jpg"))
    thumbnail.thumbnail((320, 320))
    for number, place in enumerate((
            "t1.jpg", "Screenshots/a.jpg", "2019/Screenshots/b.jpg", "2019/private/c.jpg",
            "2019/d.jpg", "2020/private/e.jpg", "2020/f.png", "2020/G.PNG")):
        (folder / place).parent.mkdir(parents=True, exist_ok=True)
        # each its own content (a corner apart): a copy would be one photo at two paths
        thumbnail.paste((number * 30, 0, 0), (0, 0, 16, 16))
        thumbnail.save(folder / place, "PNG" if place.lower().endswith(".png") else "JPEG")
    return folder


# Patterns that match nothing, taken in silence by some doors and not others (probe
# reprobe39: `skip ` pasted from a list, `./skip`): each a pattern and the words of its refusal.
BLANK_SPACED_OR_DOTTED_PATTERNS = (
    (["  "], "is blank"), (["skip "], "'skip ' ends with white space"),
    (["\tskip"], "begins with white space"), (["./skip"], "starts with './'"),
    (["a//b"], "an empty part"), (["a/./b"], "a '.' part"), (["../x"], "a '..' part"))


def stored_paths(pf: Pgface, library: Path) -> list[str]:
    """The paths stored, inside LIBRARY."""
    with pf.pool.connection() as conn:
        rows = conn.execute("SELECT path FROM photo_paths").fetchall()
    return sorted(os.path.relpath(path, os.path.realpath(library)) for path, in rows)


def test_exclude_patterns_match_names_at_any_depth_and_paths_inside_the_folder_given() -> None:
    # a name pattern: the name alone, in the case the file system lists it
    assert excluded("Screenshots", "2019/Screenshots", True, ["Screenshots"])
    assert excluded("f.png", "2020/f.png", False, ["*.png"])
    assert not excluded("G.PNG", "2020/G.PNG", False, ["*.png"])
    assert not excluded("Screenshots", "Screenshots", True, ["screenshots"])
    # a pattern with "/": the path inside the folder given, from its start; `*` crosses "/"
    assert excluded("private", "2019/private", True, ["2019/private"])
    assert not excluded("private", "2020/private", True, ["2019/private"])
    assert not excluded("private", "old/2019/private", True, ["2019/private"])
    assert excluded("c.jpg", "2019/private/c.jpg", False, ["2019/*.jpg"])
    # ending in "/": folders only (a shell completes a folder's name so)
    assert excluded("private", "2019/private", True, ["private/"])
    assert not excluded("private", "2019/private", False, ["private/"])
    assert excluded("private", "2019/private", True, ["2019/private/"])
    assert not excluded("t1.jpg", "t1.jpg", False, [])


def test_excluded_files_and_folders_are_left_out_counted_and_read_when_named(
        pf: Pgface, tmp_path: Path) -> None:
    library = excluded_library(tmp_path / "library")

    report = pf.index(library, exclude=["Screenshots", "*.png", "2019/private"])

    # Screenshots/ (at the top and in 2019), 2019/private/ and 2020/f.png: four, each folder
    # one; 2020/private is no 2019/private, and G.PNG no *.png (case as the disk has it)
    assert (report.excluded, report.passed_over, report.failures) == (4, 0, [])
    assert (report.files, report.indexed) == (4, 4)
    assert stored_paths(pf, library) == ["2019/d.jpg", "2020/G.PNG", "2020/private/e.jpg",
                                         "t1.jpg"]
    # A path named is read whatever the patterns say, as a hidden one is; inside it they
    # apply again, from it (2019/private is "private" there, no match).
    named = pf.index([library / "Screenshots", library / "2020" / "f.png", library / "2019"],
                     exclude=["Screenshots", "*.png", "2019/private"])
    # (2019/Screenshots/b.jpg excluded again, 2019/d.jpg stored already)
    assert (named.indexed, named.skipped, named.excluded) == (3, 1, 1)
    assert stored_paths(pf, library) == ["2019/d.jpg", "2019/private/c.jpg", "2020/G.PNG",
                                         "2020/f.png", "2020/private/e.jpg",
                                         "Screenshots/a.jpg", "t1.jpg"]

    # A folder whose every photo is left out is no empty folder (an unmounted share's look)
    only = pf.index(library / "Screenshots", exclude=["*.jpg"])
    assert (only.files, only.excluded, only.empty_folders) == (0, 1, [])


def test_what_is_left_out_stays_out_through_links_and_in_either_unicode_form(
        pf: Pgface, tmp_path: Path) -> None:
    """Probe reprobe34: a folder left out was walked through a link to it (`Album ->
    2019/private`), its photo stored at the path left out, the report saying it was left out;
    and `--exclude Zoë` typed composed left in a folder a Mac named decomposed."""
    library = excluded_library(tmp_path / "library")
    (library / "Album").symlink_to("2019/private")  # walked after 2019/
    (library / "0-first").symlink_to("2019/private")  # before it
    (library / "favourite.jpg").symlink_to("2019/private/c.jpg")  # a file through a link
    (library / "2020" / "Zoe\u0308").mkdir()  # decomposed, as macOS names it
    Image.open(library / "t1.jpg").rotate(90).save(library / "2020" / "Zoe\u0308" / "z.jpg")

    report = pf.index(library, exclude=["2019/private", "Zo\u00eb"])

    assert stored_paths(pf, library) == ["2019/Screenshots/b.jpg", "2019/d.jpg", "2020/G.PNG",
                                         "2020/f.png", "2020/private/e.jpg",
                                         "Screenshots/a.jpg", "t1.jpg"]
    # 2019/private, its two links, the link to its file and 2020/Zoë: each left out once
    assert (report.excluded, report.failures) == (5, [])
    # by its name: 2019/private, 2020/private, the two links and the file's link
    by_name = pf.index(library, exclude=["private"], reread=True)
    assert by_name.excluded == 5 and "2019/private/c.jpg" not in stored_paths(pf, library)
    assert "2020/Zoe\u0308/z.jpg" in stored_paths(pf, library)

    # Probe reprobe35: through a link to a folder above it (`-Album -> 2019`, walked before
    # 2019/), and from another folder given before the one it lies in, whatever the order
    for link in ("Album", "0-first", "favourite.jpg"):
        (library / link).unlink()
    (library / "-Album").symlink_to("2019")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "Album").symlink_to(library / "2019" / "private")
    for given in ([library], [elsewhere, library], [library, elsewhere]):
        assert pf.remove([library]).photos
        report = pf.index(given, exclude=["2019/private"])
        assert "2019/private/c.jpg" not in stored_paths(pf, library), given
        assert (report.files, report.failures) == (8, []), (given, report)
    # a folder given inside another given: walked once, what it leaves out counted once
    # (reprobe36: twice, outer first)
    for given in ([library, library / "2019"], [library / "2019", library]):
        assert pf.index(given, exclude=["2019/private"]).excluded == 1, given


def test_the_setting_excludes_in_every_walk_and_a_runs_patterns_add_to_it(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    library = excluded_library(tmp_path / "library")
    with Pgface(settings.model_copy(update={"index_exclude": ["Screenshots", "2019/private"]}),
                analyzer=analyzer) as pf:
        report = pf.index(library, exclude=("*.png",))
        assert (report.excluded, report.files) == (4, 4)
        assert pf.index(library).excluded == 3  # the setting alone


def test_an_exclude_that_is_no_list_of_patterns_is_refused_by_name(pf: Pgface,
                                                                   tmp_path: Path) -> None:
    for wrong, said in (("*.png", "put it in a list"), (None, "not None"),
                        ([""], "an empty pattern"), (["ok", 3], "not an int"),
                        (["/home/me/Photos/2019"], "starts with '/'"),
                        *BLANK_SPACED_OR_DOTTED_PATTERNS):
        with pytest.raises(InvalidInputError, match="^exclude: ") as caught:
            pf.index(tmp_path, exclude=wrong)  # type: ignore[arg-type]
        assert said in str(caught.value), caught.value
    # a name with white space at its end is matched as the refusal says: by that character in
    # brackets (reprobe40: a tab was told '[ ]', which matched nothing)
    for name in ("skip ", "tab\t"):
        (tmp_path / name).mkdir()
        shutil.copy(sample_photos()[1], tmp_path / name / "yao.jpg")
        with pytest.raises(InvalidInputError) as caught:
            pf.index(tmp_path, exclude=[name])
        told = re.search(r"as in '(.*)'$", str(caught.value))
        assert told, caught.value
        advice = told[1].encode().decode("unicode_escape")  # as readable() wrote it
        assert pf.index(tmp_path, exclude=[advice]).excluded == 1, advice


def test_prune_keeps_the_photos_under_an_excluded_path_and_remove_forgets_them(
        pf: Pgface, tmp_path: Path) -> None:
    library = excluded_library(tmp_path / "library")
    assert pf.index(library).indexed == 8
    (library / "t1.jpg").unlink()  # gone: what a prune is for

    # Left out of the walk, the photos under 2019/ and f.png are not gone: kept
    report = pf.index(library, prune=True, exclude=["2019", "*.png"])
    assert report.excluded == 2 and report.removed is not None
    assert (report.removed.photos, report.removed.paths) == (1, 1)
    assert stored_paths(pf, library) == ["2019/Screenshots/b.jpg", "2019/d.jpg",
                                         "2019/private/c.jpg", "2020/G.PNG", "2020/f.png",
                                         "2020/private/e.jpg", "Screenshots/a.jpg"]
    # `remove` forgets them
    assert pf.remove([library / "2019"]).photos == 3
    assert stored_paths(pf, library) == ["2020/G.PNG", "2020/f.png", "2020/private/e.jpg",
                                         "Screenshots/a.jpg"]


def test_links_to_folders_are_followed_once_and_never_in_a_loop(pf: Pgface, tmp_path: Path
                                                                 ) -> None:
    photos = {p.name: p for p in sample_photos()}
    library, phone = tmp_path / "library", tmp_path / "phone"
    (library / "2024").mkdir(parents=True)
    phone.mkdir()
    shutil.copy(photos["t1.jpg"], library / "2024" / "t1.jpg")
    shutil.copy(photos["yaoming.jpg"], phone / "yao.jpg")
    (library / "Phone").symlink_to(phone)  # a card or another disk, linked in
    (library / "Phone again").symlink_to(phone)
    (library / "2024" / "up").symlink_to(library)  # a link to an ancestor: a loop

    report = pf.index(library)

    # Both photos, each file once: the second link and the loop are not walked again.
    assert (report.files, report.indexed, report.skipped, report.failures) == (2, 2, 0, [])


def test_links_to_the_systems_folders_are_not_walked(pf: Pgface, tmp_path: Path) -> None:
    """Probe hostile20: a link to /proc in a library stopped the run ("Permission denied" on
    another process's cwd link, nothing else indexed), and where it could be read, walked on
    through each process's cwd and root into every folder of the machine."""
    library = tmp_path / "library"
    library.mkdir()
    shutil.copy(sample_photos()[1], library / "yao.jpg")
    for name, target in (("proc", "/proc"), ("devices", "/dev"), ("kernel", "/sys/kernel")):
        (library / name).symlink_to(target)
    # and a file's link: "file is empty" (procfs says 0 bytes), kept as the content's failure
    # under /proc (probe hostile39)
    (library / "cpuinfo.jpg").symlink_to("/proc/cpuinfo")

    report = pf.index(library)

    assert (report.files, report.indexed) == (2, 1)
    assert sorted((Path(f.source).name, f.reason) for f in report.failures) == [
        ("cpuinfo.jpg", KERNEL_FILE),
        *((name, KERNEL_FOLDER) for name in ("devices", "kernel", "proc"))]
    # a path given there: walked, each process's links led on to every folder of the machine,
    # other processes' working folders indexed (probe hostile39: `pgface index /proc`)
    given = pf.index(["/proc", "/sys/kernel"])
    assert (given.files, [(f.source, f.reason) for f in given.failures]) == (
        0, [("/proc", KERNEL_PATH), ("/sys/kernel", KERNEL_PATH)])


def test_a_batch_starts_its_largest_files_first_and_keeps_their_order() -> None:
    """Workers take a batch's largest files first, so that no large photo is left to the end
    while the other workers have nothing to do; the batch's results keep the files' order."""
    from concurrent.futures import ThreadPoolExecutor

    from pgface.index import _largest_first, _Read

    sizes = [3, 50, 7, 50, 1, 20]
    reads = [_Read(path=Path(f"p{i}.jpg"), data=b"x" * size, sha256=bytes([i]))
             for i, size in enumerate(sizes)]
    started: list[int] = []

    def analyse(read: _Read) -> str:
        started.append(len(read.data))
        return read.path.name

    with ThreadPoolExecutor(max_workers=1) as one_worker:
        results = _largest_first(one_worker, analyse, reads)
    assert started == sorted(sizes, reverse=True)
    assert results == [read.path.name for read in reads]



def test_a_photo_deleted_while_a_run_found_it_at_another_path_is_a_failure(
        pf: Pgface, tmp_path: Path) -> None:
    # A run records where it found stored photos (a copy of one it stored, or one stored
    # before); one deleted meanwhile (`remove` of its only path, a prune, another run's former
    # version) cannot take the path: the file was counted "already indexed" and stored nowhere.
    yao = Image.open(sample_photos()[1]).convert("RGB")
    for number in range(4):
        yao.putpixel((0, 0), (number, 5, 5))
        yao.save(tmp_path / f"z{number}.png")
    shutil.copyfile(tmp_path / "z0.png", tmp_path / "z9.png")  # the last batch: a copy
    removed: list[int] = []

    def remove_the_first_photo_once_stored(report: IndexReport, failure: object) -> None:
        if failure is None and report.indexed and not removed:
            removed.append(pf.remove([tmp_path / "z0.png"]).photos)

    pf.settings.photo_batch = 1
    report = pf.index(tmp_path, progress=remove_the_first_photo_once_stored)
    assert removed == [1]
    copy = str((tmp_path / "z9.png").resolve())
    assert [(f.source, f.reason) for f in report.failures] == [(copy, (
        "its photo was deleted meanwhile (by `remove`, a prune, an erase of a person in it or "
        "another run), so it is not stored: index it again"))]
    assert (report.indexed, report.skipped) == (4, 0)
    # The next run reads it again, and stores it.
    again = pf.index(tmp_path)
    assert (again.indexed, again.failures) == (1, [])


def failed_files(url: str) -> dict[str, tuple[str, str]]:
    """The files remembered as failed by their content: name -> (reason, pgface version)."""
    with psycopg.connect(url) as conn:
        return {Path(path).name: (reason, version) for path, reason, version in conn.execute(
            "SELECT path, reason, pgface_version FROM failed_files")}


def broken_library(folder: Path) -> tuple[Path, Path, Path]:
    """A folder of a photo, an empty .jpg and a corrupt (cut short) one, all written an hour
    ago, and two files that fail for the moment only: a link that loops and a FIFO, each
    named .jpg. Returns the photo, the empty file and the corrupt one."""
    folder.mkdir()
    good, empty, corrupt = folder / "good.jpg", folder / "empty.jpg", folder / "corrupt.jpg"
    shutil.copy(sample_photos()[1], good)
    empty.write_bytes(b"")
    Image.new("RGB", (400, 300), (30, 120, 200)).save(corrupt, quality=90)
    corrupt.write_bytes(corrupt.read_bytes()[:2000])
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for path in (good, empty, corrupt):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    (folder / "loop.jpg").symlink_to("loop.jpg")
    os.mkfifo(folder / "pipe.jpg")
    return good, empty, corrupt


def test_files_whose_content_failed_are_not_read_again_while_unchanged(
    pf: Pgface, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A NAS library's thousand empty or broken .jpg files were read again by every nightly
    # run, each printed as a failure, and the run exited 1 for ever (probe nas33).
    from pgface import index as index_module

    folder = tmp_path / "library"
    _, empty, corrupt = broken_library(folder)
    moment = {"loop.jpg": "symbolic link loop", "pipe.jpg": "FIFO"}

    def failed(report: IndexReport) -> dict[str, str]:
        return {Path(f.source).name: f.reason for f in report.failures}

    first = pf.index([folder])
    assert first.indexed == 1 and first.unchanged_failures == 0
    assert set(failed(first)) == {"empty.jpg", "corrupt.jpg", *moment}
    assert failed(first)["empty.jpg"] == "file is empty"
    assert "corrupt or truncated" in failed(first)["corrupt.jpg"]
    version = index_module.reader_version()
    # pgface's version and a digest of its decoding: the version alone is the same between
    # the commits of a release, and a file a decoding fixed since refused stayed passed over
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*\+decoders\.[0-9a-f]{12}", version), version
    # the content's failures are remembered, with their reason and version; those of the
    # moment are not
    assert failed_files(database_url) == {
        "empty.jpg": ("file is empty", version),
        "corrupt.jpg": (failed(first)["corrupt.jpg"], version)}

    # Unchanged, they are passed over unread and counted; the failures of the moment are
    # failures again
    second = pf.index([folder])
    assert (second.indexed, second.skipped, second.unchanged_failures) == (0, 1, 2)
    assert set(failed(second)) == set(moment)
    for name, word in moment.items():
        assert word in failed(second)[name], failed(second)
    assert set(second.timings) == {"read"}  # nothing decoded
    assert second.files == 5 and second.files_done == 5  # the bar completes

    # Touched (a new modification time), the file is read again, and fails again
    later = corrupt.stat().st_mtime_ns + 10**9
    os.utime(corrupt, ns=(later, later))
    touched = pf.index([folder])
    assert touched.unchanged_failures == 1
    assert set(failed(touched)) == {"corrupt.jpg", *moment}
    assert pf.index([folder]).unchanged_failures == 2  # remembered with its new stamp

    # --reread reads them all
    reread = pf.index([folder], reread=True)
    assert reread.unchanged_failures == 0
    assert set(failed(reread)) == {"empty.jpg", "corrupt.jpg", *moment}

    # Another pgface version, or a limit changed, may read them: tried again
    monkeypatch.setattr(index_module, "reader_version", lambda: "99.0.0")
    newer = pf.index([folder])
    assert newer.unchanged_failures == 0 and len(newer.failures) == 4
    assert {v for _, v in failed_files(database_url).values()} == {"99.0.0"}
    assert pf.index([folder]).unchanged_failures == 2
    pf.settings.max_pixels = 50_000_000
    assert pf.index([folder]).unchanged_failures == 0
    assert pf.index([folder]).unchanged_failures == 2

    # The progress bar's count of files done includes those passed over
    seen: list[tuple[int, int]] = []
    pf.index([folder], progress=lambda report, failure: seen.append(
        (report.files_done, report.files)))
    assert seen[-1] == (5, 5), seen
    assert empty.exists()


def test_a_failed_file_fixed_is_stored_and_forgotten_and_prune_and_remove_forget_the_rest(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    _, empty, corrupt = broken_library(folder)
    pf.index([folder])
    assert set(failed_files(database_url)) == {"empty.jpg", "corrupt.jpg"}

    # A real photo saved over the empty file: indexed, and no longer remembered as failed
    shutil.copy(sample_photos()[0], empty)
    fixed = pf.index([folder])
    assert (fixed.indexed, fixed.unchanged_failures) == (1, 1)
    assert set(failed_files(database_url)) == {"corrupt.jpg"}

    # A file remembered that is gone is forgotten by a prune of a folder above it ...
    corrupt.unlink()
    kept = folder / "kept" / "bad.jpg"
    kept.parent.mkdir()
    kept.write_bytes(b"\xff\xd8 not really a JPEG")
    an_hour_ago = time.time_ns() - 3600 * 10**9
    os.utime(kept, ns=(an_hour_ago, an_hour_ago))
    pf.index([folder])
    assert set(failed_files(database_url)) == {"corrupt.jpg", "bad.jpg"}
    pf.index([folder], prune=True)
    assert set(failed_files(database_url)) == {"bad.jpg"}  # there still: kept
    # ... and `remove` forgets those under its paths, gone or not: the next run reads them
    pf.remove([folder / "kept"])
    assert failed_files(database_url) == {}
    again = pf.index([folder])
    assert again.unchanged_failures == 0
    assert str(kept) in {f.source for f in again.failures}


def test_a_failed_file_in_a_folder_renamed_or_moved_stays_passed_over_at_its_new_path(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    # Probe reprobe39: `mv real real2; pgface index real2` read the broken file again, failed
    # it again (exit 1), and failed_files kept the former path for ever, no prune reaching it.
    # Renaming a folder keeps its files' size, modification and change time.
    library = tmp_path / "library"
    library.mkdir()
    broken_library(library / "real")
    for moment in ("loop.jpg", "pipe.jpg"):  # failures of the moment: never remembered
        (library / "real" / moment).unlink()
    assert len(pf.index([library]).failures) == 2

    (library / "real").rename(library / "real2")
    moved = pf.index([library / "real2"])
    assert (moved.failures, moved.unchanged_failures, moved.moved) == ([], 2, 1), moved
    with psycopg.connect(database_url) as conn:
        remembered = sorted(Path(p).relative_to(library.resolve()).as_posix()
                            for p, in conn.execute("SELECT path FROM failed_files"))
    assert remembered == ["real2/corrupt.jpg", "real2/empty.jpg"]
    assert pf.index([library / "real2"]).unchanged_failures == 2  # and stays so

    # A folder moved into another keeps them too; a file renamed itself has a new change
    # time, so it is read again (and a prune forgets its former path, gone)
    (library / "2024").mkdir()
    (library / "real2").rename(library / "2024" / "real")
    (library / "2024" / "real" / "empty.jpg").rename(library / "2024" / "real" / "blank.jpg")
    again = pf.index([library], prune=True)
    assert again.unchanged_failures == 1, again
    assert [Path(f.source).name for f in again.failures] == ["blank.jpg"]
    assert set(failed_files(database_url)) == {"corrupt.jpg", "blank.jpg"}


def a_failure_then_its_namesake(pf: Pgface, tmp_path: Path, first: str, second: str
                                ) -> tuple[Path, Path]:
    """A broken FIRST/IMG_0001.jpg indexed (its failure remembered) and deleted, and a good
    SECOND/IMG_0001.jpg of the same size and times; (the broken path, the good one)."""
    (tmp_path / first).mkdir()
    (tmp_path / second).mkdir()
    broken, good = tmp_path / first / "IMG_0001.jpg", tmp_path / second / "IMG_0001.jpg"
    broken.write_bytes(b"\0" * 5000)
    shutil.copy(sample_photos()[1], good)
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for path in (broken, good):
        os.utime(path, ns=(an_hour_ago, an_hour_ago))
    assert [Path(f.source).name for f in pf.index([tmp_path / first]).failures] == [
        "IMG_0001.jpg"]
    shutil.rmtree(tmp_path / first)
    return broken, good


def test_a_good_photo_of_a_failed_files_name_and_stamp_is_read_not_taken_for_it_moved(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    # Probe reprobe42: a broken import/IMG_0001.jpg failed, and was thrown away; a good
    # library/IMG_0001.jpg of its size, modification and change time (one `touch -d` over both,
    # a tar or `rsync -t` setting both, a coarse change time) was taken for it moved: "1 file
    # that failed before and is unchanged was not read again", never stored, and the failure's
    # row moved onto it for good. Another file has its own inode; a folder's rename keeps it.
    broken, good = a_failure_then_its_namesake(pf, tmp_path, "import", "library")
    # The two files' change times equal to the nanosecond, as the probe's were: the row takes
    # the good file's stamp (a change time cannot be set)
    info = good.stat()
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE failed_files SET size_bytes = %s, mtime_ns = %s, ctime_ns = %s",
                     [info.st_size, info.st_mtime_ns, info.st_ctime_ns])
    read = pf.index([tmp_path / "library"])
    assert (read.indexed, read.unchanged_failures, read.failures) == (1, 0, []), read
    assert read.faces >= 1
    with psycopg.connect(database_url) as conn:
        remembered = [p for p, in conn.execute("SELECT path FROM failed_files")]
    assert remembered == [str(broken.resolve())]  # where it was, for a prune to forget

    # Failures remembered before migration 0032 have no inode: never taken for moved (read
    # again, and remembered with their inode from then on)
    _, empty, corrupt = broken_library(tmp_path / "old")
    for moment in ("loop.jpg", "pipe.jpg"):
        (tmp_path / "old" / moment).unlink()
    assert len(pf.index([tmp_path / "old"]).failures) == 2
    with psycopg.connect(database_url) as conn:
        inodes = dict(conn.execute("SELECT path, inode FROM failed_files WHERE path <> %s",
                                   [str(broken.resolve())]).fetchall())
        assert inodes == {str(p.resolve()): p.stat().st_ino for p in (empty, corrupt)}
        conn.execute("UPDATE failed_files SET inode = NULL")
    (tmp_path / "old").rename(tmp_path / "old2")
    again = pf.index([tmp_path / "old2"])
    assert (len(again.failures), again.unchanged_failures) == (2, 0), again
    (tmp_path / "old2").rename(tmp_path / "old3")
    moved = pf.index([tmp_path / "old3"])
    assert (moved.failures, moved.unchanged_failures) == ([], 2), moved


def test_a_good_photo_on_another_file_system_with_a_failed_files_inode_is_read(
    pf: Pgface, database_url: str, tmp_path: Path
) -> None:
    # Probe reprobe45: an inode number is unique on one file system only. A broken
    # IMG_0001.jpg on one SD card or USB stick (deleted or unmounted since) and a good one on
    # another freshly made file system, of the same size, modification and change time (one
    # `touch -d`, a whole-second change time) and the same inode number: the good photo was
    # taken for the failure moved, never read nor stored, and the row moved onto its path for
    # good. Two file systems need root and loop mounts: the remembered row is given the good
    # file's stamp and inode by SQL, and another device, as the other file system's.
    broken, good = a_failure_then_its_namesake(pf, tmp_path, "card", "stick")
    info = good.stat()
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE failed_files SET size_bytes = %s, mtime_ns = %s, ctime_ns = %s, "
                     "inode = %s", [info.st_size, info.st_mtime_ns, info.st_ctime_ns,
                                    info.st_ino])
        conn.execute("UPDATE failed_files SET device = %s", [info.st_dev + 1])
    read = pf.index([tmp_path / "stick"])
    assert (read.indexed, read.unchanged_failures, read.failures) == (1, 0, []), read
    assert read.faces >= 1
    with psycopg.connect(database_url) as conn:
        remembered = [p for p, in conn.execute("SELECT path FROM failed_files")]
    assert remembered == [str(broken.resolve())]  # where it was, for a prune to forget

    # A folder renamed on one file system keeps each file's device and inode: its failures
    # are still passed over, their rows moved with them, device and inode kept
    _, empty, corrupt = broken_library(tmp_path / "old")
    for moment in ("loop.jpg", "pipe.jpg"):
        (tmp_path / "old" / moment).unlink()
    assert len(pf.index([tmp_path / "old"]).failures) == 2

    def kept(folder: str) -> dict[str, tuple[int, int]]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT path, device, inode FROM failed_files WHERE path <> %s",
                                [str(broken.resolve())]).fetchall()
        return {name: (d, i) for name, d, i in (
            (Path(p).relative_to(tmp_path.resolve()).as_posix(), d, i) for p, d, i in rows)
            if name.startswith(f"{folder}/")}

    files = {p.name: (p.stat().st_dev, p.stat().st_ino) for p in (empty, corrupt)}
    assert kept("old") == {f"old/{k}": v for k, v in files.items()}
    (tmp_path / "old").rename(tmp_path / "old2")
    moved = pf.index([tmp_path / "old2"])
    assert (moved.failures, moved.unchanged_failures) == ([], 2), moved
    assert kept("old") == {} and kept("old2") == {f"old2/{k}": v for k, v in files.items()}
    # Failures remembered before migration 0034 have no device: never taken for moved (read
    # again, and remembered with their device from then on)
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE failed_files SET device = NULL")
    (tmp_path / "old2").rename(tmp_path / "old3")
    again = pf.index([tmp_path / "old3"])
    assert (len(again.failures), again.unchanged_failures) == (2, 0), again
    assert kept("old3") == {f"old3/{k}": v for k, v in files.items()}  # with their device
    (tmp_path / "old3").rename(tmp_path / "old4")
    moved = pf.index([tmp_path / "old4"])
    assert (moved.failures, moved.unchanged_failures) == ([], 2), moved
