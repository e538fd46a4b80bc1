"""Indexing in several processes (PGFACE_INDEX_PROCESSES, `pgface index --processes`): the same
photos, faces and failures as one process, and a process killed mid-run stops the run with
nothing half-written. Real processes, models, photos and PostgreSQL."""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import PHOTOS, REPO, fresh_database, require_data
from PIL import Image
from test_engine import has_hnsw_index, lfw_subset
from test_index import broken_library, failed_files, make_bad_files, table_counts

from pgface import Pgface, Settings, engine, index_processes
from pgface.errors import PgfaceError, counted
from pgface.index import REBUILDING, Failure, IndexReport
from pgface.index_processes import batch_size, threads_each
from pgface.models.packs import sample_photos

SRC = REPO / "src"


@pytest.fixture
def other_database_url(server_url: str) -> Iterator[str]:
    """A second fresh database, for the one-process run to compare with."""
    yield from fresh_database(server_url)


def faces_by_file(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute(
            "SELECT pp.path, p.face_count FROM photo_paths pp JOIN photos p "
            "ON p.id = pp.photo_id").fetchall())


def test_cli_index_in_two_processes_stores_what_one_process_stores(
    pf: Pgface, database_url: str, other_database_url: str, env: dict[str, str],
    tmp_path: Path,
) -> None:
    mixed = tmp_path / "mixed"
    # Every kind of file the shared photos hold; of the labelled people's full-size photos
    # (60 of the 110 under people/), two people's: the others add time, not kinds.
    shutil.copytree(require_data(PHOTOS), mixed, ignore=shutil.ignore_patterns(
        "*.xml", "deepface-id0[2-9]", "deepface-id1?"))
    for folder in [mixed, *(p for p in mixed.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)  # the shared data is read-only, and so is a copy of its folders
    expected_bad = make_bad_files(mixed / "broken")
    # a photo whose EXIF block names more bytes than it holds: Pillow warns as it reads it
    exif = (b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 1)
            + struct.pack("<HHIII", 0x010F, 2, 100, 26, 0))
    Image.open(sample_photos()[0]).save(mixed / "corrupt-exif.jpg", exif=exif)

    # Both leave out the same (the walk is the parent's): a folder by name, PNGs by path.
    exclude = ["detection-truth", "not-faces/*.png"]
    alone = pf.index([mixed], exclude=exclude)  # one process, in database_url
    assert alone.excluded > 1

    # The command line as a user runs it, into the other database; small batches, so that
    # both processes take several.
    run = subprocess.run(
        [sys.executable, "-c", "from pgface.cli import app; app(prog_name='pgface')",
         "index", "--processes", "2", "--json", str(mixed),
         *(arg for pattern in exclude for arg in ("--exclude", pattern))],
        env={**os.environ, **env, "PGFACE_DATABASE_URL": other_database_url,
             "PGFACE_PHOTO_BATCH": "8",
             "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])},
        capture_output=True, text=True, timeout=900)
    assert run.returncode == 1, run.stderr  # the bad files
    assert "Traceback" not in run.stderr
    assert "Warning" not in run.stderr  # a child's Pillow warning, as the parent hides them
    assert run.stdout, run.stderr
    report = json.loads(run.stdout)

    failed = {Path(f["file"]).name: f["reason"] for f in report["failures"]}
    assert failed == {Path(f.source).name: f.reason for f in alone.failures}
    assert set(failed) == set(expected_bad)
    assert (report["files"], report["indexed"], report["skipped"], report["faces"],
            report["excluded"]) == (alone.files, alone.indexed, alone.skipped, alone.faces,
                                    alone.excluded)
    assert set(report["stage_seconds"]) >= {"decode", "detect", "embed", "store"}
    assert table_counts(other_database_url) == (report["indexed"], report["faces"])
    # Every file, copies included, with the faces one process found in it.
    assert faces_by_file(other_database_url) == faces_by_file(database_url)
    assert not [path for path in faces_by_file(other_database_url)
                if "/detection-truth/" in path or ("/not-faces/" in path
                                                   and path.endswith(".png"))]


def distinct_photos(folder: Path, count: int) -> list[Path]:
    """COUNT photos of the installed samples, each a new file (a pixel changed)."""
    folder.mkdir()
    sources = sample_photos()
    paths = []
    for number in range(count):
        image = Image.open(sources[number % len(sources)]).convert("RGB")
        image.putpixel((0, 0), (number, number, number))
        paths.append(folder / f"{number:02d}.png")
        image.save(paths[-1])
    return paths


def test_a_killed_indexing_process_stops_the_run_and_keeps_whole_batches(
    settings: Settings, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The other process stops on its own after the batch it is storing. Before each process
    had a pipe of its own, a process killed while it wrote to the shared queue kept the
    queue's lock; the other then could not exit, and the run waited STOP_WAIT_S before it
    terminated it (5 of 19 runs here)."""
    monkeypatch.setattr(index_processes, "STOP_WAIT_S", 30.0)  # a stuck process fails sooner
    paths = distinct_photos(tmp_path / "photos", 24)
    (tmp_path / "photos" / "03b.png").write_text("broken")
    settings.index_processes, settings.photo_batch = 2, 2
    killed: list[int] = []

    def kill_one_after_the_first_batch(report: IndexReport, failure: Failure | None) -> None:
        if failure is None and not killed:  # a batch is stored
            killed.append(multiprocessing.active_children()[0].pid)  # type: ignore[arg-type]
            os.kill(killed[0], signal.SIGKILL)

    with Pgface(settings) as library:
        with pytest.raises(PgfaceError, match="ended unexpectedly.*exit code -9"):
            library.index([tmp_path / "photos"], progress=kill_one_after_the_first_batch)
        assert multiprocessing.active_children() == []  # the other one was stopped too
        assert "did not stop" not in caplog.text  # by itself, not terminated
        # What was committed stays, whole: no photo row disagrees with its faces. (The other
        # process may have gone on to store every batch it could take before the run stopped.)
        stored, _ = table_counts(database_url)
        assert stored > 0

        settings.index_processes = 1
        resumed = library.index([tmp_path / "photos"])
    assert resumed.skipped == stored and resumed.indexed == len(paths) - stored
    # The broken file fails again, or, where the killed run read it once it was older than
    # STAMP_SETTLE_S (on a loaded machine), it is the failure that run remembered
    failed_again = [Path(f.source).name for f in resumed.failures]
    assert (failed_again, resumed.unchanged_failures) in ((["03b.png"], 0), ([], 1)), (
        failed_again, resumed.unchanged_failures)
    assert table_counts(database_url)[0] == len(paths)


def test_a_processs_database_error_is_said_as_one_process_says_it(
    settings: Settings, database_url: str, tmp_path: Path,
) -> None:
    """A statement refused in a process is said in the words one process uses, not as a
    crash ("(StatementFailed: database: ...)")."""
    distinct_photos(tmp_path / "photos", 2)
    settings.photo_batch = 1  # a photo for each process
    with Pgface(settings) as library:
        library.stats()  # the schema made
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("CREATE FUNCTION pgface.refuse_faces() RETURNS trigger LANGUAGE "
                         "plpgsql AS $$BEGIN RAISE EXCEPTION 'no faces today'; END$$")
            conn.execute("CREATE TRIGGER refuse_faces BEFORE INSERT ON pgface.faces "
                         "FOR EACH ROW EXECUTE FUNCTION pgface.refuse_faces()")
        with pytest.raises(PgfaceError) as alone:
            library.index([tmp_path / "photos"])
        settings.index_processes = 2
        with pytest.raises(PgfaceError) as in_processes:
            library.index([tmp_path / "photos"])
    assert str(alone.value) == "database: no faces today"
    assert str(in_processes.value) == (
        "an indexing process failed, so the run stopped (database: no faces today); "
        "the batches stored before are kept")
    assert table_counts(database_url) == (0, 0)


def test_a_bulk_run_in_processes_leaves_the_hnsw_index_to_the_parent(
    settings: Settings, database_url: str
) -> None:
    settings.index_processes, settings.photo_batch = 2, 8
    photos = lfw_subset(engine.BULK_MIN_PHOTOS + 6)
    during: list[bool] = []
    stages: list[str | None] = []

    def progress(report: IndexReport, failure: object) -> None:
        during.append(has_hnsw_index(database_url))
        stages.append(report.stage)

    with Pgface(settings) as library:
        report = library.index(photos, progress=progress)
    assert report.indexed == len(photos)
    # neither process built it again while the run went on; the parent did at the end, and
    # said so once every photo was stored
    assert len(during) > 2 and not any(during) and has_hnsw_index(database_url)
    assert stages[-1] == REBUILDING and not any(stages[:-1]) and report.stage is None


def test_each_process_gets_several_batches_and_a_share_of_the_threads() -> None:
    assert batch_size(files=150, processes=2, photo_batch=32) == 13
    assert batch_size(files=100_000, processes=4, photo_batch=32) == 32
    assert batch_size(files=3, processes=2, photo_batch=32) == 1
    assert threads_each(threads=8, processes=3) == 2
    assert threads_each(threads=1, processes=2) == 1


def test_processes_that_cannot_start_for_want_of_file_descriptors_say_so(
        settings: Settings) -> None:
    """Each process gets a pipe: under a low `ulimit -n` the run said only "error: Too many
    open files", neither what failed nor what to change. The limit here leaves room for the
    run's task queue and not for the processes' pipes."""
    files = sorted(sample_photos())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd"))  # listdir's own descriptor counted, then shut
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 3, hard))
    try:
        with pytest.raises(PgfaceError) as refused:
            index_processes.index_in_processes(settings, files, IndexReport(), processes=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert str(refused.value) == (
        f"cannot start 2 indexing processes (too many open files); this process may open "
        f"{open_now + 3} files: raise `ulimit -n`, or run fewer --processes")


def test_a_script_that_indexes_in_processes_without_the_main_guard_is_told_so(
        database_url: str, env: dict[str, str], tmp_path: Path) -> None:
    # Each started process imports the script again and so indexed again itself: it failed
    # with "can only join a started process" (the real cause hidden), and the script was told
    # only that "an indexing process ended unexpectedly".
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pgface\n"
        "from pgface.models.packs import sample_photos\n"
        "with pgface.open() as pf:\n"
        "    pf.index([str(p) for p in sample_photos()])\n")
    run = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **env, "PGFACE_DATABASE_URL": database_url,
             "PGFACE_INDEX_PROCESSES": "2", "PGFACE_PHOTO_BATCH": "1",
             "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])},
        capture_output=True, text=True, timeout=600)
    assert run.returncode == 1
    last_line = run.stderr.strip().splitlines()[-1]
    assert last_line.startswith("pgface.errors.PgfaceError: an indexing process ended before")
    assert 'under `if __name__ == "__main__":`' in last_line
    assert "can only join a started process" not in run.stderr
    # the started processes were told too, by name
    assert "while a process of such a run was starting" in run.stderr


# The signal comes once a batch of 8 is stored, a fraction of a second after; the rest
# (several seconds of indexing) is what it stops
PHOTOS_TO_STOP = 120


@pytest.mark.parametrize(("stop", "code", "said_as"), [
    (signal.SIGTERM, 143, "stopped (SIGTERM)"), (signal.SIGINT, 130, "stopped (Ctrl-C)")])
def test_sigterm_stops_a_run_in_processes_as_ctrl_c_does(
        database_url: str, env: dict[str, str], tmp_path: Path, stop: signal.Signals,
        code: int, said_as: str) -> None:
    """Killed outright by SIGTERM (systemd stopping it), the run left its processes to notice
    on their own and Python warned of "leaked semaphore objects"; now it winds down as Ctrl-C
    does: exit 143, one line said, its processes gone, every photo stored whole. Ctrl-C said
    nothing (exit 130): its user never learnt that running it again goes on."""
    folder = tmp_path / "lfw"
    folder.mkdir()
    for photo in lfw_subset(PHOTOS_TO_STOP):
        shutil.copy(photo, folder / photo.name)
    command = [sys.executable, "-c", "from pgface.cli import app; app(prog_name='pgface')",
               "index", "--processes", "2", "--quiet", str(folder)]
    run_env = {**os.environ, **env, "PGFACE_PHOTO_BATCH": "8",
               "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.Popen(command, env=run_env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while _stored(database_url) == 0 and run.poll() is None:
        assert time.monotonic() < deadline, "no photo stored in 300 s"
        time.sleep(0.2)
    children = _children(run.pid)
    run.send_signal(stop)
    _, said = run.communicate(timeout=300)
    if run.returncode == 0:
        pytest.skip("the run finished before the signal came")
    assert run.returncode == code, said
    assert said_as in said and "run it again to go on" in said, said
    assert "Traceback" not in said, said
    assert "leaked" not in said, said
    # its processes (and multiprocessing's resource tracker, which ends once the run has)
    gone_by = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in children):
        assert time.monotonic() < gone_by, [
            Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children
            if Path(f"/proc/{pid}").exists()]
        time.sleep(0.1)
    stored = table_counts(database_url)  # every photo whole (the helper checks face counts)
    assert 0 < stored[0] < PHOTOS_TO_STOP
    assert (f"{said_as}: the {counted(stored[0], 'photo')} ({counted(stored[1], 'face')}) "
            "stored until then are kept") in said, said
    again = subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr
    assert table_counts(database_url)[0] == PHOTOS_TO_STOP


def _stored(url: str) -> int:
    try:
        return table_counts(url)[0]
    except psycopg.errors.UndefinedTable:  # the run has not made its tables yet
        return 0


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found = []
    for task in tasks.iterdir() if tasks.exists() else []:
        children = task / "children"
        if children.exists():
            found += [int(c) for c in children.read_text().split()]
    return found


def test_a_photo_moved_as_another_takes_its_path_keeps_its_new_path_and_person(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """a.png renamed z.png, and another photo copied to a.png: each process forgot the former
    versions of the photos it stored once it was done, so the one that stored a.png deleted
    the photo of z.png before the other recorded its new path, which was then dropped; the
    photo was gone and its person emptied, and the run said "already indexed" (5 of 7 runs)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    yao = Image.open(sample_photos()[1]).convert("RGB")
    for number in range(14):  # 0: the photo that moves; 1: the one copied over it; the rest,
        yao.putpixel((0, 0), (number, 7, 7))  # fillers, so both processes take batches
        yao.save(folder / ("a.png" if number == 0 else "n.png" if number == 1
                           else f"m{number:02d}.png"))
    moving, other = folder / "a.png", folder / "n.png"
    settings.photo_batch = 2
    with Pgface(settings) as library:
        library.index([moving, other])
        with psycopg.connect(database_url) as conn:
            face = conn.execute("SELECT f.id FROM faces f JOIN photo_paths pp USING (photo_id) "
                                "WHERE pp.path = %s", [str(moving)]).fetchone()[0]
        library.people.name_faces([face], "Moved")
        moving.rename(folder / "z.png")
        shutil.copyfile(other, moving)
        settings.index_processes = 2
        report = library.index([folder])
        assert report.failures == []
        # (the photo now at a.png, the same man, takes the name too: an edit in place)
        assert face in {f.face_id for f in library.people.faces("Moved")}
    with psycopg.connect(database_url) as conn:
        at_z = conn.execute("SELECT f.id FROM faces f JOIN photo_paths pp USING (photo_id) "
                            "WHERE pp.path = %s", [str(folder / "z.png")]).fetchall()
    assert at_z == [(face,)]  # the photo itself, with its face, at its new path


def test_processes_remember_the_files_whose_content_failed_as_one_process_does(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "library"
    _, _, corrupt = broken_library(folder)
    distinct_photos(folder / "more", 4)  # so that both processes take batches
    settings.photo_batch, settings.index_processes = 1, 2
    moment = {"loop.jpg", "pipe.jpg"}

    def failed(report: IndexReport) -> set[str]:
        return {Path(f.source).name for f in report.failures}

    with Pgface(settings) as library:
        first = library.index([folder])
        assert first.startup > 0  # in processes
        assert failed(first) == {"empty.jpg", "corrupt.jpg", *moment}
        assert set(failed_files(database_url)) == {"empty.jpg", "corrupt.jpg"}
        with psycopg.connect(database_url) as conn:  # each with its inode (migration 0032)
            inodes = dict(conn.execute("SELECT path, inode FROM failed_files").fetchall())
        assert inodes == {str(p.resolve()): p.stat().st_ino for p in (folder / "empty.jpg",
                                                                      corrupt)}
        second = library.index([folder])
        # the two failures of the moment are read again (and the photos just written, where
        # the machine took under index.STAMP_SETTLE_S): in processes
        assert second.startup > 0
        assert (second.unchanged_failures, failed(second)) == (2, moment)
        later = corrupt.stat().st_mtime_ns + 10**9
        os.utime(corrupt, ns=(later, later))
        touched = library.index([folder])
        assert (touched.unchanged_failures, failed(touched)) == (1, {"corrupt.jpg", *moment})
        assert library.index([folder]).unchanged_failures == 2
