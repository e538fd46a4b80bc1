"""Indexing a server path as a background job: progress, failures, cancel, the queue."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from api_jobs import index_path, wait_for_job
from conftest import PHOTOS, require_data
from fastapi.testclient import TestClient
from PIL import Image
from psycopg_pool import PoolTimeout
from test_api import running_server

from pgface import Settings
from pgface.api import create_app
from pgface.api import jobs as jobs_module
from pgface.api.jobs import Jobs, failure_message
from pgface.db.connection import NoConnection
from pgface.errors import PgfaceError
from pgface.library import FROM_PYTHON, STOPPED_ON_PURPOSE
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos

MAX_KEPT_FAILURES = 100  # a job's kept failures, in the test that counts the others


def test_a_job_reports_progress_failures_and_its_report(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    people = require_data(PHOTOS / "people")
    album = tmp_path / "album"
    album.mkdir()
    for person in ("obama", "biden"):
        for photo in (people / person).iterdir():
            shutil.copy(photo, album / photo.name)
    (album / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    # written an hour ago: its failure is remembered however soon the job reads it (a file
    # written within index.STAMP_SETTLE_S gets no stamp, and the next job read it again)
    hour_ago = time.time() - 3600
    os.utime(album / "broken.jpg", (hour_ago, hour_ago))
    # A link out of the allowed folders: a failure, but not one of the photo files to do.
    (album / "elsewhere.jpg").symlink_to(sample_photos()[0])
    settings = settings.model_copy(update={"api_roots": [tmp_path], "photo_batch": 1})
    caplog.set_level(logging.INFO, logger="pgface.api.jobs")
    with TestClient(create_app(settings, analyzer)) as client:
        started = client.post("/api/photos/index-path", json={"path": "album"})
        assert started.status_code == 202, started.text
        job = started.json()
        assert job["state"] in ("queued", "running") and job["report"] is None
        done_so_far = []
        while job["state"] not in ("done", "failed", "cancelled"):
            job = client.get(job["url"]).json()
            shown = job["progress"]
            done_so_far.append(shown["files_done"])
            # the link is told first, before any photo is read
            assert shown["files_done"] == (shown["indexed"] + shown["skipped"]
                                           + max(0, shown["failed"] - 1)), shown
            time.sleep(0.02)
        assert done_so_far == sorted(done_so_far)  # progress only moves forward
        assert job["state"] == "done" and job["error"] is None
        assert job["progress"] == {"files_total": 5, "files_done": 5, "indexed": 4, "skipped": 0,
                                   "faces": job["report"]["faces"], "failed": 2, "stage": None}
        assert job["report"]["faces"] >= 4
        link, failure = job["failures"]
        assert (Path(link["file"]).name, link["reason"]) == (
            "elsewhere.jpg", "outside the allowed folders (a symlink?)")
        assert Path(failure["file"]).name == "broken.jpg" and failure["reason"]
        assert job["report"]["failures"] == job["failures"] and job["failures_omitted"] == 0
        assert job["started_at"] <= job["finished_at"]
        assert client.get("/api/stats").json()["photos"] == 4
        # The server's log tells the job, its failed files and its end: jobs live in memory,
        # so after a restart their failures were told nowhere (it said nothing of jobs).
        said = [r.getMessage() for r in caplog.records if r.name == "pgface.api.jobs"]
        where = str((tmp_path / "album").resolve())
        assert said[0] == f"job {job['id']} ({where}) started", said
        assert sum(line.startswith(f"job {job['id']}: failed ") for line in said) == 2, said
        assert any(f"{Path(failure['file']).name}: {failure['reason']}" in line
                   for line in said), said
        assert f"job {job['id']} ({where}) done: 4 photos indexed, {job['report']['faces']} " \
               f"faces, 0 already indexed, 2 failed" in said, said
        # Indexed again: every photo is skipped, the broken file unchanged is not read again,
        # and the job says so; the link is told again (not a failure of a file's content).
        again = index_path(client, "album")
        assert (again["indexed"], again["skipped"], again["unchanged_failures"]) == (0, 4, 1)
        assert [Path(f["file"]).name for f in again["failures"]] == ["elsewhere.jpg"]
        assert client.get("/api/jobs/0123456789abcdef").status_code == 404
        # What the CLI warns of is in the report too: a photo of one flat grey, and a folder
        # that holds no photo (a share not mounted looks so); both were a plain "done".
        (tmp_path / "flat").mkdir()
        Image.new("RGB", (320, 240), (123, 123, 123)).save(tmp_path / "flat" / "grey.png")
        (tmp_path / "unmounted").mkdir()
        flat = index_path(client, "flat")
        assert [Path(w["file"]).name for w in flat["warnings"]] == ["grey.png"]
        assert "same value" in flat["warnings"][0]["reason"] and flat["empty_folders"] == []
        empty = index_path(client, "unmounted")
        assert empty["empty_folders"] == [str((tmp_path / "unmounted").resolve())]
        assert empty["warnings"] == [] and empty["files"] == 0


def test_a_job_reads_unchanged_files_only_when_asked_to_reread(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    players, yaoming = sample_photos()[:2]
    album = tmp_path / "album"
    album.mkdir()
    shutil.copy(players, album / "a.jpg")
    shutil.copy(yaoming, album / "b.jpg")
    Image.open(players).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(album / "c.jpg")
    long_ago = time.time_ns() - 3600 * 10**9
    for photo in album.iterdir():
        os.utime(photo, ns=(long_ago, long_ago))
    # two processes, a photo a batch: the choice reaches every process
    settings = settings.model_copy(update={"api_roots": [tmp_path], "photo_batch": 1,
                                           "index_processes": 2})
    with TestClient(create_app(settings, analyzer)) as client:
        assert index_path(client, "album")["indexed"] == 3
        # Other bytes behind the stamp recorded (what `reread` is for: a file system that
        # keeps no change times, a database restored from before the file changed)
        (album / "a.jpg").write_bytes(b"\0" * (album / "a.jpg").stat().st_size)
        os.utime(album / "a.jpg", ns=(long_ago, long_ago))
        with psycopg.connect(settings.database_url) as conn:
            conn.execute("UPDATE photo_paths SET ctime_ns = %s WHERE path = %s",
                         [(album / "a.jpg").stat().st_ctime_ns, os.path.realpath(album / "a.jpg")])
        # two new photos: read by the processes, the three unchanged counted before them
        Image.open(yaoming).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(album / "d.jpg")
        Image.open(players).rotate(5).save(album / "e.jpg")
        unread = index_path(client, "album")
        assert (unread["indexed"], unread["skipped"], unread["failures"]) == (2, 3, [])
        reread = index_path(client, "album", reread=True)
        assert [(Path(f["file"]).name, "not an image" in f["reason"])
                for f in reread["failures"]] == [("a.jpg", True)]
        assert reread["skipped"] == 4 and reread["unchanged_failures"] == 0
        # A file whose content failed, unchanged: the next job passes over it, counted, not
        # listed; `reread` reads it
        (album / "f.jpg").write_bytes(b"")
        os.utime(album / "f.jpg", ns=(long_ago, long_ago))
        assert [(Path(f["file"]).name, f["reason"]) for f in index_path(
            client, "album")["failures"]] == [("f.jpg", "file is empty")]
        caplog.set_level(logging.INFO, logger="pgface.api.jobs")
        quiet = index_path(client, "album")
        assert (quiet["unchanged_failures"], quiet["failures"], quiet["skipped"]) == (1, [], 5)
        # and the job's log line counts it (probe reprobe37: its counts were fewer than the
        # files read)
        assert "5 already indexed, 0 failed, 1 that failed before not read again" in (
            caplog.text), caplog.text
        assert index_path(client, "album", reread=True)["unchanged_failures"] == 0


def test_a_job_leaves_out_what_its_exclude_and_the_servers_setting_match(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from test_index import BLANK_SPACED_OR_DOTTED_PATTERNS, excluded_library

    excluded_library(tmp_path / "library")
    settings = settings.model_copy(update={"api_roots": [tmp_path],
                                           "index_exclude": ["Screenshots"]})
    caplog.set_level(logging.INFO, logger="pgface.api.jobs")
    with TestClient(create_app(settings, analyzer)) as client:
        started = client.post("/api/photos/index-path",
                              json={"path": "library", "exclude": ["*.png", "2019/private"]})
        assert started.status_code == 202, started.text
        assert started.json()["exclude"] == ["*.png", "2019/private"]  # the request's own
        job = wait_for_job(client, started.json()["id"])
        assert job["state"] == "done" and job["exclude"] == ["*.png", "2019/private"], job
        # Screenshots/ twice (the setting), f.png and 2019/private/ (the job's)
        assert (job["report"]["excluded"], job["report"]["files"]) == (4, 4), job["report"]
        # and the job's log line says so, as `pgface index` does (it gave the other counts)
        where = str((tmp_path / "library").resolve())
        assert any(line.startswith(f"job {job['id']} ({where}) done: ")
                   and line.endswith(", 0 failed, excluded 4 files and folders")
                   for line in caplog.messages), caplog.messages
        listed = client.get("/api/jobs").json()["jobs"]
        assert [j["exclude"] for j in listed] == [["*.png", "2019/private"]]
        # the path given is read whatever the patterns match
        named = client.post("/api/photos/index-path",
                            json={"path": "library/2020/f.png", "exclude": ["*.png"]})
        assert wait_for_job(client, named.json()["id"])["report"]["indexed"] == 1
        # one photo, said as `pgface index` says it (docs40: "1 photos indexed")
        assert any(line.startswith(f"job {named.json()['id']} (") and
                   "done: 1 photo indexed, " in line for line in caplog.messages), caplog.messages

        # Patterns that match nothing, or no list of them: refused by name, nothing started
        for wrong, said in (([""], "an empty pattern"), (["/srv/photos/2019"], "starts with"),
                            ("*.png", ""), ([3], ""), (None, ""),
                            *BLANK_SPACED_OR_DOTTED_PATTERNS):
            refused = client.post("/api/photos/index-path",
                                  json={"path": "library", "exclude": wrong})
            assert refused.status_code == 422, refused.text
            error = refused.json()["error"]
            assert error["code"] == "invalid_request" and "'exclude" in error["message"], error
            assert said in error["message"], error
        assert len(client.get("/api/jobs").json()["jobs"]) == 2


@pytest.mark.parametrize("processes", [1, 2])
def test_cancel_stops_between_batches_and_leaves_whole_photos(
        settings: Settings, analyzer: FaceAnalyzer, processes: int) -> None:
    """With several indexing processes too: each stops after the batch it is storing, and the
    job's counts are what was stored."""
    people = require_data(PHOTOS / "people")
    settings = settings.model_copy(update={"api_roots": [people], "photo_batch": 1,
                                           "index_processes": processes})
    with TestClient(create_app(settings, analyzer)) as client:
        first = client.post("/api/photos/index-path", json={"path": "."}).json()
        queued = client.post("/api/photos/index-path", json={"path": "obama"}).json()
        # The second waits for the first: cancelled while queued, it never starts.
        cancelled = client.delete(queued["url"])
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        assert cancelled.json()["started_at"] is None
        while (running := client.get(first["url"]).json())["progress"]["files_done"] < 2:
            assert running["state"] in ("queued", "running"), running  # not failed, nor done
            time.sleep(0.02)
        stopping = client.delete(first["url"])
        assert stopping.status_code == 200, stopping.text
        job = wait_for_job(client, first["id"])
        assert job["state"] == "cancelled" and job["report"] is None
        total = job["progress"]["files_total"]
        assert total == 110 and job["progress"]["files_done"] >= 2
        assert job["progress"]["indexed"] < total
        # Every photo stored is whole: counted as indexed, with all its faces.
        photos = client.get("/api/photos?limit=1000").json()
        assert photos["total"] == job["progress"]["indexed"]
        faces = sum(len(client.get(f"/api/photos/{p['id']}").json()["faces"])
                    for p in photos["photos"])
        assert faces == job["progress"]["faces"] == sum(p["face_count"] for p in photos["photos"])
        finished = client.delete(first["url"])
        assert finished.status_code == 409 and finished.json()["error"]["code"] == "job_finished"
        # The queue goes on after a cancel: the rest is indexed by the next job.
        rest = index_path(client, ".")
        assert rest["indexed"] + rest["skipped"] == total - len(rest["failures"])
        assert rest["skipped"] == job["progress"]["indexed"]


def test_the_last_100_finished_jobs_are_kept(settings: Settings, analyzer: FaceAnalyzer,
                                             tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()  # each job is done at once
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    with TestClient(create_app(settings, analyzer)) as client:
        ids = [client.post("/api/photos/index-path", json={"path": "empty"}).json()["id"]
               for _ in range(103)]
        wait_for_job(client, ids[-1])
        kept = [job_id for job_id in ids if client.get(f"/api/jobs/{job_id}").status_code == 200]
        assert kept == ids[-100:], (len(kept), ids.index(kept[0]))


def test_get_jobs_lists_the_jobs_this_server_knows_with_their_state_and_counts(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    # Probe ops21: a client that lost a job's id (a restarted script) could not find it.
    shutil.copy(sample_photos()[0], tmp_path / "one.jpg")
    (tmp_path / "empty").mkdir()
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    with running_server(create_app(settings, analyzer)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        assert http.get("/api/jobs").json() == {"jobs": []}
        ids = [http.post("/api/photos/index-path", json={"path": path}).json()["id"]
               for path in ("one.jpg", "empty")]
        for job_id in ids:
            wait_for_job(http, job_id)
        listed = http.get("/api/jobs")
        assert listed.status_code == 200, listed.text
        jobs = listed.json()["jobs"]
        assert [j["id"] for j in jobs] == ids  # oldest first
        assert [(j["path"], j["state"]) for j in jobs] == [
            (str(tmp_path / "one.jpg"), "done"), (str(tmp_path / "empty"), "done")]
        assert jobs[0]["progress"]["indexed"] == 1 and jobs[0]["progress"]["faces"] >= 1
        assert jobs[1]["progress"]["files_total"] == 0
        # a summary: the failures and report are the job's own (its url)
        assert "report" not in jobs[0] and "failures" not in jobs[0]
        assert http.get(jobs[0]["url"]).json()["report"]["indexed"] == 1


def empty_photos(folder: Path, count: int) -> None:
    """`count` empty .jpg files in `folder`: each a failure ("file is empty"), and quick."""
    folder.mkdir()
    for number in range(count):
        (folder / f"{number:05d}.jpg").touch()


def test_the_job_list_builds_no_failures_and_a_job_holds_its_failures_once(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    # Probe scale39: GET /api/jobs built every kept job's failures (under the lock the running
    # job's progress waits on) to delete them from its answer, and a finished job held its
    # failures twice, as Failures and as its report's dicts: 1 GB of the server's memory for
    # 20 jobs of 40,000 failures, and 1 s for an answer of 8.5 KB.
    failing = 300  # the same code for any number: 3,000 took 10 s
    empty_photos(tmp_path / "broken", failing)
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    with TestClient(create_app(settings, analyzer)) as client:
        started = client.post("/api/photos/index-path", json={"path": "broken"}).json()
        job = wait_for_job(client, started["id"])
        assert job["progress"]["failed"] == len(job["failures"]) == failing, job["progress"]
        listed = client.get("/api/jobs")
        assert listed.status_code == 200, listed.text
        [summary] = listed.json()["jobs"]
        assert not {"failures", "failures_omitted", "report"} & summary.keys(), summary
        assert summary["progress"]["failed"] == failing
        jobs: Jobs = client.app.state.jobs
        held = jobs.known(started["id"])  # finished: nothing changes it
        # the report's failures are the job's, made when answered: not held a second time
        assert held.report is not None and "failures" not in held.report, held.report.keys()
        assert len(held.failures) == failing


def test_a_job_keeps_its_first_failures_and_counts_the_others(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    # Probe scale39: a job kept every failure, and the server the last 100 finished jobs: a
    # folder of 40,000 broken files took gigabytes of the server's memory. Kept: the first
    # 100 here, where the server keeps 10,000 (whose files took 23 s to fail).
    assert jobs_module.MAX_KEPT_FAILURES == 10_000
    monkeypatch.setattr(jobs_module, "MAX_KEPT_FAILURES", MAX_KEPT_FAILURES)
    empty_photos(tmp_path / "broken", MAX_KEPT_FAILURES + 5)
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    caplog.set_level(logging.INFO, logger="pgface.api.jobs")
    with TestClient(create_app(settings, analyzer)) as client:
        started = client.post("/api/photos/index-path", json={"path": "broken"}).json()
        job = wait_for_job(client, started["id"])
    assert job["state"] == "done", job["state"]
    assert job["progress"]["failed"] == MAX_KEPT_FAILURES + 5, job["progress"]
    assert len(job["failures"]) == MAX_KEPT_FAILURES, len(job["failures"])
    assert job["failures_omitted"] == 5
    assert job["report"]["failures"] == job["failures"]
    # the first ones kept, and the server's log has every one
    said = [r.getMessage() for r in caplog.records if r.name == "pgface.api.jobs"]
    logged = [line for line in said if line.startswith(f"job {job['id']}: failed ")]
    assert len(logged) == MAX_KEPT_FAILURES + 5, len(logged)
    assert [f"job {job['id']}: failed {f['file']}: {f['reason']}" for f in job["failures"]] == (
        logged[:MAX_KEPT_FAILURES])
    assert any(f"0 already indexed, {MAX_KEPT_FAILURES + 5} failed" in line
               for line in said), said[-1]


def test_a_job_is_known_to_its_own_process_only_and_says_so(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    # Two server processes behind one load balancer: the other one's 404 said "a restart
    # forgets them", and a cancel's 404 said nothing at all.
    shutil.copy(sample_photos()[0], tmp_path / "one.jpg")
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    with (TestClient(create_app(settings, analyzer)) as first,
          TestClient(create_app(settings, analyzer)) as second):
        started = first.post("/api/photos/index-path", json={"path": "one.jpg"}).json()
        for answer in (second.get(started["url"]), second.delete(started["url"])):
            assert answer.status_code == 404
            assert "another process behind the same load balancer" in answer.json()[
                "error"]["message"]
        assert wait_for_job(first, started["id"])["state"] == "done"


def test_a_job_that_lost_its_database_says_so_and_what_was_kept() -> None:
    gone = failure_message(PoolTimeout("couldn't get a connection after 30.00 sec"))
    assert gone.startswith("the database went away while indexing (PoolTimeout: couldn't")
    assert "every photo stored until then is kept" in gone and "pgface db start" in gone
    dropped = failure_message(psycopg.OperationalError("server closed the connection "
                                                       "unexpectedly"))
    assert dropped.startswith("the database went away") and "OperationalError" in dropped
    # stopped by hand: how to start it, not advice for Python programs (an HTTP client has
    # no Pgface to close)
    stopped = failure_message(NoConnection(STOPPED_ON_PURPOSE + FROM_PYTHON))
    assert stopped.startswith(f"the database went away while indexing ({STOPPED_ON_PURPOSE})")
    assert "from Python" not in stopped
    # anything else is its own message, not blamed on the database
    assert failure_message(ValueError("bad\nvalue")) == "ValueError: bad value"
    ended = PgfaceError("an indexing process ended unexpectedly (exit code -9)")
    assert failure_message(ended) == "an indexing process ended unexpectedly (exit code -9)"
    full = psycopg.errors.DiskFull("could not extend file")
    assert failure_message(full) == "DiskFull: could not extend file"


def test_a_file_name_cannot_forge_a_line_of_the_servers_log(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    # Probe http19: a job's failed file was logged with its name raw, and a file name may hold
    # a newline (a line that looked like the server's own) or an ESC (a terminal's colours).
    album = tmp_path / "al\x1b[31mbum"
    album.mkdir()
    forged = "2026-12-05T00:00:00+0000 INFO: job 1 done.jpg"
    (album / f"bad\n{forged}").write_bytes(b"\xff\xd8 not really a JPEG")
    settings = settings.model_copy(update={"api_roots": [tmp_path]})
    caplog.set_level(logging.INFO, logger="pgface.api.jobs")
    with TestClient(create_app(settings, analyzer)) as client:
        report = index_path(client, album.name)
    assert [Path(f["file"]).name for f in report["failures"]] == [f"bad\n{forged}"]
    said = [r.getMessage() for r in caplog.records if r.name == "pgface.api.jobs"]
    assert all(line.isprintable() for line in said), said
    where = str(album.resolve()).replace("\x1b", "\\x1b")
    assert any(line.endswith(f": failed {where}/bad\\n{forged}: not an image (unrecognised "
                             f"format)") for line in said), said
    assert f"({where}) started" in said[0], said
