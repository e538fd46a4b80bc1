"""Faults and user errors: PostgreSQL killed under `pgface index` and under the HTTP app, the
same photo uploaded by 8 clients at once, and every error a user can cause answered in one
`error:` line (CLI) or a JSON 4xx with a code (HTTP). No mocks: real servers, real kills."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from conftest import LFW, PHOTOS, in_pgface_schema, require_data
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

import pgface
from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.api.errors import InternalErrors, install_error_handlers
from pgface.api.photos import upload_dir
from pgface.cli import app as cli_app
from pgface.cli.common import error_line
from pgface.db import server, watch
from pgface.db.connection import DatabaseError, connection_lost, migrate, open_pool
from pgface.db.server import (
    RESTART_MARK,
    crashed,
    ensure_server,
    server_status,
    stop_server,
    stopped,
)
from pgface.db.watch import revive
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos

SRC = Path(pgface.__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture(scope="module")
def own_server() -> Iterator[Path]:
    """A data folder with an embedded server of its own: these tests kill it, so not the
    session's server that the other tests use."""
    folder = Path(tempfile.mkdtemp(prefix="pgface-faults-", dir="/tmp"))
    folder.chmod(0o755)  # as root the server runs as the pgface user, which must enter it
    data = folder / "data"
    ensure_server(data)
    yield data
    stop_server(data)
    shutil.rmtree(folder, ignore_errors=True)


def _emptied(data: Path) -> str:
    """The URL of the own server's database, migrated and without photos or people."""
    url = ensure_server(data)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE pgface.photos, pgface.people RESTART IDENTITY CASCADE")
    return in_pgface_schema(url)


def _kill_postmaster(data: Path) -> int:
    # the status's liveness probe can miss a server just restarted on a loaded machine (the
    # whole suite beside a second one: pid None once): asked again until it answers
    deadline = time.monotonic() + 30
    while (pid := server_status(data)["pid"]) is None:
        assert time.monotonic() < deadline, f"no server running in {data} to kill"
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return pid


def _crash(data: Path) -> int:
    """SIGKILL the postmaster and wait until it is gone, so that the server counts as crashed;
    returns its pid."""
    killed = _kill_postmaster(data)
    deadline = time.monotonic() + 60  # a guard against a hang, not a timing requirement
    while not crashed(data):  # the kernel is still tearing the postmaster down
        assert time.monotonic() < deadline, "the killed postmaster never went"
        time.sleep(0.01)
    return killed


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        photos, distinct, half = conn.execute(
            "SELECT count(*), count(DISTINCT sha256), count(*) FILTER (WHERE face_count <> "
            "(SELECT count(*) FROM faces f WHERE f.photo_id = p.id)) FROM photos p").fetchone()
    return {"photos": photos, "distinct": distinct, "half_written": half}


def _faces(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM faces").fetchone()[0]


def _cli(args: list[str], data: Path, models_dir: Path, **extra: str) -> subprocess.Popen:
    """`pgface ARGS` in a child process, on the own server's data folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("PGFACE_DATABASE_URL",)}
    env.update(PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
               PGFACE_DATA_DIR=str(data), PGFACE_MODELS_DIR=str(models_dir), **extra)
    return subprocess.Popen(
        [sys.executable, "-c", "from pgface.cli import app; app(prog_name='pgface')", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _store_state(url: str) -> tuple[int, bool]:
    """(photos stored, whether a batch's transaction is running right now)."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            stored = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
                "state <> 'idle' AND (query LIKE 'COPY faces%%' OR query LIKE "
                "'%%INSERT INTO photos%%')").fetchone()[0]
    except psycopg.OperationalError:
        return 0, False
    return stored, busy > 0


@pytest.mark.parametrize("processes", [1, 2])
def test_postgres_killed_during_cli_index_loses_nothing(own_server: Path, models_dir: Path,
                                                        analyzer: FaceAnalyzer,
                                                        processes: int) -> None:
    # With --processes 2 the children were handed the server's URL, not its data folder, so
    # none restarted it: 30 s of psycopg_pool's log lines, object reprs and all, then the run
    # stopped (probe crash23); they restart it as one process does.
    images = sorted(require_data(LFW / "images").glob("*/*.jpg"))[:120]
    folder = own_server.parent / "photos"
    folder.mkdir(exist_ok=True)
    for image in images:
        (folder / image.name).unlink(missing_ok=True)
        (folder / image.name).symlink_to(image)
    distinct = len({hashlib.sha256(p.read_bytes()).digest() for p in images})
    url = _emptied(own_server)

    # Small batches, so that some are committed before the kill and more come after it.
    indexing = _cli(["index", "--json", "--processes", str(processes), str(folder)],
                    own_server, models_dir, PGFACE_PHOTO_BATCH="8")
    deadline = time.monotonic() + 600  # a guard against a hang, not a timing requirement
    while _store_state(url)[0] < 16:
        assert indexing.poll() is None, indexing.communicate()
        assert time.monotonic() < deadline, "indexing never got going"
    # A kill while a batch is being stored is the harder case: wait a moment for one, but not
    # past half the photos (indexing must still be running). A store takes milliseconds, so
    # the kill may still fall between batches (handled below).
    moment = time.monotonic() + 2
    while time.monotonic() < moment:
        stored, storing = _store_state(url)
        if storing or stored >= len(images) // 2:
            break
    assert indexing.poll() is None, "indexing finished before the kill: nothing was tested"
    killed = _kill_postmaster(own_server)
    out, err = indexing.communicate(timeout=600)

    assert "Traceback" not in err
    lines = err.splitlines()
    if indexing.returncode == 0:
        # The kill fell between two batches: the next connection restarted the server and
        # indexing went on, silently.
        assert lines == [] and json.loads(out)["failures"] == []
    else:
        assert indexing.returncode == 1 and len(lines) == 1, err
        assert lines[0].startswith("error: lost the database connection"), err
        assert "run the command again" in lines[0]

    before = 0
    if indexing.returncode:
        # The failed run may exit before its pool has restarted the server; the next command
        # restarts it (here `pgface stats`), and what the run committed is whole.
        stats = _cli(["stats", "--json"], own_server, models_dir)
        out, err = stats.communicate(timeout=600)
        assert stats.returncode == 0 and "Traceback" not in err, err
        assert server_status(own_server)["pid"] != killed
        committed = _counts(url)
        assert committed["half_written"] == 0 and committed["photos"] == committed["distinct"]
        assert json.loads(out)["photos"] == committed["photos"]
        before = committed["photos"]

    # The next run completes: every photo once, none half-written.
    again = _cli(["index", "--json", str(folder)], own_server, models_dir)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0 and err == "", err
    report = json.loads(out)
    assert server_status(own_server)["pid"] != killed
    assert report["files"] == len(images) and report["failures"] == []
    if indexing.returncode:
        assert report["indexed"] == distinct - before
        assert report["skipped"] == len(images) - report["indexed"]
    assert _counts(url) == {"photos": distinct, "distinct": distinct, "half_written": 0}


def test_postgres_stopped_during_a_bulk_cli_index_is_one_line_at_once(
        own_server: Path, models_dir: Path, analyzer: FaceAnalyzer) -> None:
    # A server stopped on purpose is not restarted: the run failed, then its finally asked
    # the pool for a connection to build the HNSW index again, waited 30 s and logged a
    # traceback above the error line.
    images = sorted(require_data(LFW / "images").glob("*/*.jpg"))[:400]  # a bulk run: >= 64
    folder = own_server.parent / "photos-stopped"
    folder.mkdir(exist_ok=True)
    for image in images:
        (folder / image.name).unlink(missing_ok=True)
        (folder / image.name).symlink_to(image)
    url = _emptied(own_server)
    indexing = _cli(["index", str(folder)], own_server, models_dir, PGFACE_PHOTO_BATCH="8")
    deadline = time.monotonic() + 600  # a guard against a hang, not a timing requirement
    while _store_state(url)[0] < 16:
        assert indexing.poll() is None, indexing.communicate()
        assert time.monotonic() < deadline, "indexing never got going"
    assert indexing.poll() is None, "indexing finished before the stop: nothing was tested"
    stop_server(own_server)  # what `pgface db stop` does
    _, err = indexing.communicate(timeout=600)
    assert indexing.returncode == 1
    assert "Traceback" not in err and "PoolTimeout" not in err, err
    assert "from Python" not in err, err  # the library's advice to a Python caller
    lines = err.splitlines()
    # stopped in a batch's statement, or between batches: said before the pool's wait for a
    # connection (the run waited its 30 s, then "no database connection became free in time")
    assert lines[-1].startswith(("error: lost the database connection",
                                 "error: the embedded PostgreSQL is stopped")), err
    assert len(lines) <= 2, err  # the error, and at most the index's one-line footnote
    ensure_server(own_server)
    counts = _counts(url)
    assert counts["half_written"] == 0
    # and what the run had stored, kept: its user learnt nothing of it, nor whether to start
    # again from nothing
    faces = _faces(url)
    assert lines[-1].endswith(
        f"; {counts['photos']} photos ({faces} faces) of this run were stored before that, and "
        "are kept"), err


def test_a_pool_that_waited_for_a_server_that_is_down_says_so(own_server: Path) -> None:
    """Probe pgint21: with an operator's own server down, every request waited the pool's
    time and said "the database is down or busy", the reason only in the server's log: now
    one connection tried says which, and why."""
    pool = open_pool(_emptied(own_server))
    try:
        stop_server(own_server)
        with pytest.raises(DatabaseError, match="no database connection became free in time: "
                           "the database cannot be reached: connection .* failed"):
            with pool.connection(timeout=0.5) as conn:
                conn.execute("SELECT 1")
    finally:
        pool.close()
        ensure_server(own_server)


def test_http_app_recovers_when_postgres_is_killed(own_server: Path, models_dir: Path,
                                                   analyzer: FaceAnalyzer) -> None:
    obama = require_data(PHOTOS / "queries" / "obama1.jpg")
    _emptied(own_server)
    settings = Settings(database_url=None, data_dir=own_server, models_dir=models_dir)
    with TestClient(create_app(settings, analyzer)) as client:
        stored = client.post("/api/photos", files={"file": (obama.name, obama.read_bytes())})
        assert stored.status_code == 201, stored.text
        photo = f"/api/photos/{stored.json()['photo']['id']}"

        # Killed under a running app: requests go on, at most one fails, as a JSON 503.
        killed = _kill_postmaster(own_server)
        answers = [client.get(photo) for _ in range(10)]
        failed = [r for r in answers if r.status_code != 200]
        assert len(failed) <= 1, [r.text for r in failed]
        for response in failed:
            assert response.status_code == 503
            assert response.json()["error"]["code"] == "database_unavailable"
        assert answers[-1].json()["faces"] and server_status(own_server)["pid"] != killed

        # Killed while no request comes: the app's watchdog restarts it on its own.
        killed = _kill_postmaster(own_server)
        deadline = time.monotonic() + 120  # a guard against a hang, not a timing requirement
        while server_status(own_server)["pid"] in (None, killed):
            assert time.monotonic() < deadline, "the server was not restarted"
            time.sleep(0.1)
        assert client.get(photo).status_code == 200
        assert client.get("/api/health").json()["status"] == "ok"

        # Stopped on purpose (`pgface db stop`): it stays stopped, and requests say so at once.
        stop_server(own_server)
        stopped = client.get(photo)
        assert stopped.status_code == 503, stopped.text
        assert stopped.json()["error"]["code"] == "database_unavailable"
        assert "pgface db start" in stopped.json()["error"]["message"]
        assert not server_status(own_server)["running"]
        ensure_server(own_server)  # `pgface db start`
        assert client.get(photo).status_code == 200


def test_a_crashed_server_restarts_beside_a_backend_still_in_a_query(own_server: Path) -> None:
    """A backend busy in one long statement when its postmaster dies notices only at its next
    wait, and holds the old shared memory, beside which PostgreSQL refuses to start; pgface
    ends such orphans (as the postmaster would on any crash) and starts the server."""
    url = ensure_server(own_server)
    ended: list[BaseException] = []

    def long_query() -> None:
        try:
            with psycopg.connect(url) as conn:
                # the function in the select list: rows made one at a time, none stored
                conn.execute("SELECT count(n) FROM (SELECT generate_series(1, 10000000000) n)")
        except psycopg.Error as exc:
            ended.append(exc)

    busy = threading.Thread(target=long_query, daemon=True)
    busy.start()
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while not conn.execute("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND "
                               "query LIKE '%generate_series%' AND pid <> pg_backend_pid()"
                               ).fetchone():
            assert time.monotonic() < deadline, "the long query never started"
            time.sleep(0.05)
    killed = _crash(own_server)
    assert busy.is_alive()

    ensure_server(own_server)
    status = server_status(own_server)
    assert status["running"] and status["pid"] != killed
    busy.join(timeout=60)
    assert not busy.is_alive() and len(ended) == 1, ended
    with psycopg.connect(ensure_server(own_server)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_restart_that_fails_is_tried_again_not_taken_for_a_stop(
        own_server: Path, caplog: pytest.LogCaptureFixture) -> None:
    """PostgreSQL removes the postmaster.pid of a start that fails; the crashed server must
    still count as crashed (to be restarted by the next try), not as stopped on purpose."""
    ensure_server(own_server)
    control = own_server / "pgdata" / "global" / "pg_control"
    away = control.with_name("pg_control.away")
    _crash(own_server)
    control.rename(away)  # a start now fails after taking the data folder's lock file
    startup = own_server / "pgdata" / "log" / "startup.log"
    try:
        # (the second's wait counts from before this try: measured from after the checks
        # below, a loaded machine reached the next try within it, and the test failed)
        tried = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="pgface.db.watch"):
            assert not revive(own_server)
        written = startup.stat().st_size
        # Tried again once a second at most, however many connections ask meanwhile (a
        # health check and a search made 135 tries in 30 s, each `pg_ctl start` writing to
        # the startup log: probe ops61), and that log kept to about a megabyte.
        while True:
            assert not revive(own_server)
            if time.monotonic() - tried >= watch.RETRY_AFTER_FAILURE_S * 0.8:
                break
        assert startup.stat().st_size == written  # not tried again
        assert "could not be restarted" in caplog.text and "pg_control" in caplog.text
        assert not (own_server / "pgdata" / "postmaster.pid").exists()
        assert crashed(own_server) and not stopped(own_server)
        env = {"PGFACE_DATA_DIR": str(own_server), "PGFACE_DATABASE_URL": ""}
        status = runner.invoke(cli_app, ["db", "status", "--json"], env=env)
        assert status.exit_code == 3 and json.loads(status.stdout)["crashed"] is True
        startup.write_bytes(b"x" * server.STARTUP_LOG_BYTES)  # as days of failing tries
        time.sleep(watch.RETRY_AFTER_FAILURE_S)
        assert not revive(own_server)  # tried: the log moved aside first
        assert startup.with_name("startup.log.1").stat().st_size == server.STARTUP_LOG_BYTES
        assert 0 < startup.stat().st_size < 10_000
    finally:
        away.rename(control)
    time.sleep(watch.RETRY_AFTER_FAILURE_S)
    assert revive(own_server)
    assert server_status(own_server)["running"]
    assert not crashed(own_server) and not stopped(own_server)

    stop_server(own_server)  # on purpose: stopped, and no restart pending
    assert stopped(own_server) and not crashed(own_server) and not revive(own_server)
    ensure_server(own_server)

    # A mark left beside a server that runs (started by another hand) is no pending restart.
    (own_server / RESTART_MARK).touch()
    ensure_server(own_server)
    assert not (own_server / RESTART_MARK).exists()


def _shut_itself_down(data: Path) -> None:
    """Make the server shut itself down after a failure: with restart_after_crash off, a
    crash of one of its processes (the WAL writer, killed) makes PostgreSQL log "shutting
    down because restart_after_crash is off" and exit, removing its postmaster.pid as a clean
    stop does (as it does when a crash recovery fails on a full disk); pg_control says it was
    in production, not shut down."""
    url = ensure_server(data)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET restart_after_crash = off")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 60  # a guard against a hang, not a timing requirement
    while True:  # the reload reaches the postmaster a moment later
        with psycopg.connect(url) as conn:
            if conn.execute("SHOW restart_after_crash").fetchone()[0] == "off":
                break
        assert time.monotonic() < deadline, "the setting was never reloaded"
        time.sleep(0.05)
    postmaster = server_status(data)["pid"]
    writer = next(int(p.name) for p in Path("/proc").glob("[0-9]*")
                  if (p / "stat").exists() and (p / "stat").read_text().rpartition(")")[2]
                  .split()[1] == str(postmaster) and b"walwriter" in (p / "cmdline").read_bytes())
    os.kill(writer, signal.SIGKILL)
    while _proc_alive(postmaster):
        assert time.monotonic() < deadline, "the server never shut itself down"
        time.sleep(0.05)
    assert not (data / "pgdata" / "postmaster.pid").exists()


def _restart_after_crash_again(data: Path) -> None:
    with psycopg.connect(ensure_server(data), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET restart_after_crash")
        conn.execute("SELECT pg_reload_conf()")


def _proc_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_server_that_shut_itself_down_after_a_failure_is_restarted_not_taken_for_a_stop(
        own_server: Path, models_dir: Path, analyzer: FaceAnalyzer) -> None:
    """PostgreSQL that shuts itself down after a failure (a crash recovery on a full disk)
    removes its postmaster.pid: `pgface serve` took that for `pgface db stop`, never restarted
    it once the disk had room, and answered every request "stopped (`pgface db stop`)", which
    nobody had run. pg_control tells them apart; the log too, where it could be written."""
    env = {"PGFACE_DATA_DIR": str(own_server), "PGFACE_DATABASE_URL": ""}
    conf = own_server / "pgdata" / "postgresql.conf"
    settings_before = conf.read_text()
    try:
        _shut_itself_down(own_server)
        assert crashed(own_server) and not stopped(own_server)
        for log in (own_server / "pgdata" / "log").iterdir():
            log.write_text("")  # a disk too full for the log's last lines: pg_control says it
        assert crashed(own_server) and not stopped(own_server)
        status = runner.invoke(cli_app, ["db", "status", "--json"], env=env)
        assert status.exit_code == 3 and json.loads(status.stdout)["crashed"] is True
        conf.write_text(settings_before + "\nshared_buffers = 'plenty'\n")  # cannot start now
        assert not revive(own_server)  # tried, and still due
        assert crashed(own_server) and not stopped(own_server)
        stop_server(own_server)  # on purpose: the restart is called off
        assert stopped(own_server) and not crashed(own_server) and not revive(own_server)
        conf.write_text(settings_before)

        _emptied(own_server)
        settings = Settings(database_url=None, data_dir=own_server, models_dir=models_dir)
        with TestClient(create_app(settings, analyzer)) as client:
            assert client.get("/api/stats").status_code == 200
            conf.write_text(settings_before + "\nshared_buffers = 'plenty'\n")
            _shut_itself_down(own_server)
            time.sleep(1.5)  # the watch finds it down and fails to restart it at least once
            conf.write_text(settings_before)
            deadline = time.monotonic() + 120  # a guard against a hang, not a timing requirement
            while not server_status(own_server)["running"]:
                assert time.monotonic() < deadline, "the server was not restarted"
                time.sleep(0.1)
            stats = client.get("/api/stats")
            assert stats.status_code == 200, stats.text
    finally:
        conf.write_text(settings_before)
        _restart_after_crash_again(own_server)


def test_a_library_whose_data_folder_moves_away_says_so_and_opens_no_other(
        models_dir: Path, analyzer: FaceAnalyzer) -> None:
    """Probe reprobe61: the data folder of a running `pgface serve` moved, every request said
    the server was stopped and to run `pgface db start`, which made a new, empty library at
    the old place; the serve's new connections then went to it."""
    folder = Path(tempfile.mkdtemp(prefix="pgface-moved-", dir="/tmp"))
    folder.chmod(0o755)  # as root the server runs as the pgface user, which must enter it
    data, moved = folder / "data", folder / "moved"
    try:
        ensure_server(data)
        settings = Settings(database_url=None, data_dir=data, models_dir=models_dir)
        with TestClient(create_app(settings, analyzer)) as client:
            assert client.get("/api/stats").status_code == 200
            data.rename(moved)
            answer = client.get("/api/stats")
            said = (f"the data folder {data} that this process opened is gone since (moved, "
                    f"renamed or deleted; a library there now is another)")
            assert answer.status_code == 503, answer.text
            assert answer.json()["error"]["message"].startswith(said)
            with pytest.raises(DatabaseError, match=re.escape(said)):
                client.app.state.pf.stats()
            # a library made there meanwhile (the `db start` it advised) is not taken for it
            ensure_server(data)
            assert client.get("/api/stats").status_code == 503
            stop_server(data)
        assert server_status(moved)["running"]
    finally:
        for place in (data, moved):
            if place.exists():
                stop_server(place)
        shutil.rmtree(folder, ignore_errors=True)


def test_the_first_request_after_a_stop_and_start_gets_a_connection(
        own_server: Path, models_dir: Path) -> None:
    """A pool of 8 connections, all broken by `pgface db stop`, then `pgface db start`:
    psycopg_pool tried them one at a time, sleeping 1, 2, 4, 8, 16 s after each broken one, so
    the first request waited the pool's 30 s and failed ("no database connection became free
    in time"), the database up all along. One broken connection now has them all checked."""
    ensure_server(own_server)
    settings = Settings(database_url=None, data_dir=own_server, models_dir=models_dir)
    with Pgface(settings) as pf:
        pool = pf.pool
        together = threading.Barrier(8)

        def hold(_: int) -> None:
            with pool.connection() as conn:
                together.wait(timeout=60)  # all 8 at once: the pool grows to its maximum
                conn.execute("SELECT 1")

        with ThreadPoolExecutor(8) as threads:
            list(threads.map(hold, range(8)))
        assert pool.get_stats()["pool_size"] == 8
        stop_server(own_server)
        ensure_server(own_server)
        with pool.connection() as conn:  # failed after 30 s
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert pool.get_stats()["connections_lost"] >= 7


def test_a_pool_makes_its_connections_again_soon_after_the_database_comes_back(
        own_server: Path) -> None:
    """Probe serve33: psycopg_pool tried to make each dropped connection again after waits
    that doubled (1, 2, 4, 8, 16 s...), so a server on an external PostgreSQL that came back
    after a minute answered 503 for up to a minute more. An outage of some 9 s puts its next
    try 5 s or more after the restart; now they come every RECONNECT_EVERY_S."""
    ensure_server(own_server)
    url = server_status(own_server)["url"]  # as an external server: no restart of pgface's
    pool = open_pool(url, max_size=2)
    try:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
        stop_server(own_server)
        with pytest.raises(DatabaseError):  # the dropped connection found: tries begin
            with pool.connection(timeout=1) as conn:
                conn.execute("SELECT 1")
        time.sleep(8)
        ensure_server(own_server)
        with pool.connection(timeout=3) as conn:  # the next try 5 s or more away before
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()
        ensure_server(own_server)


def test_a_restore_the_server_stops_under_does_not_blame_the_backup(
        own_server: Path, pf: Pgface, settings: Settings, tmp_path: Path) -> None:
    """Probe backup39: a restore whose server stopped under it (its disk so full that its WAL
    writer PANICked) said "the database refused it", the backup blamed. One of the server's
    processes killed here (the restore's own), which ends every session so. A race: the kill
    must land while the restore runs; tried three times, skipped saying so where it never
    does."""
    from pgface.db import backup as backups

    pf.index(sample_photos())
    pf.close()
    backups.backup(settings.database_url or "", settings.db_schema, tmp_path / "lib.dump")
    _emptied(own_server)
    url = ensure_server(own_server)
    for _ in range(3):
        # (watched from another database: a session of the library's refuses the restore)
        with ThreadPoolExecutor(1) as pool, \
                psycopg.connect(url, dbname="template1", autocommit=True) as watcher:
            restoring = pool.submit(backups.restore, url, "pgface", tmp_path / "lib.dump",
                                    True)
            deadline, pid = time.monotonic() + 60, None
            while pid is None and not restoring.done() and time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = "
                    "'pgface restore' AND query ILIKE '%%copy%%'").fetchone()
                pid = row[0] if row else None
                time.sleep(0.005)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
            try:
                restoring.result(timeout=120)
            except backups.BackupError as exc:
                said = str(exc)
            else:
                continue  # it ended first
        # the server restarts itself after the crash: waited for (a stop sent during its
        # recovery left it hanging)
        time.sleep(1)  # (its postmaster sees the crash first: a connection before it does)
        deadline = time.monotonic() + 120
        while True:
            try:
                psycopg.connect(url).close()
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, "the server never came back"
                time.sleep(0.2)
        assert said.startswith(f"{tmp_path / 'lib.dump'}: the database server stopped during "
                               f"the restore (its disk full, or a process of it killed: its "
                               f"log says which); the backup is not at fault; nothing was "
                               f"restored"), said
        return
    pytest.skip("each restore ended before its server process was killed")


def test_db_commands_start_stop_and_report_the_embedded_server(own_server: Path) -> None:
    env = {"PGFACE_DATA_DIR": str(own_server), "PGFACE_DATABASE_URL": ""}
    ensure_server(own_server)
    status = runner.invoke(cli_app, ["db", "status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    running = json.loads(status.stdout)
    assert running["running"] and not running["crashed"]
    assert running["pid"] > 0 and running["port"] > 0
    assert running["data_dir"] == str(own_server) and running["version"].startswith("18")
    assert running["in_use"] is True
    # PGFACE_DATABASE_URL naming this server (`manage.py pgface` sets it from DATABASES, which
    # names the embedded server so): it is in use, no note (it was "not in use", and `db stop`
    # stopped the project's database saying so; probe django39); another server's is not
    socket = f"host={own_server / 'pgdata'} port={running['port']} dbname=postgres"
    for url, in_use in ((running["url"], True), (socket, True),
                        (f"host={own_server / 'pgdata'} port=1 dbname=postgres", False),
                        ("postgresql://db.example/photos", False)):
        said = runner.invoke(cli_app, ["db", "start"], env={**env, "PGFACE_DATABASE_URL": url})
        assert said.exit_code == 0, said.output
        assert ("PGFACE_DATABASE_URL is set" in said.stderr) is not in_use, (url, said.stderr)
        said = runner.invoke(cli_app, ["db", "status", "--json"],
                             env={**env, "PGFACE_DATABASE_URL": url})
        assert json.loads(said.stdout)["in_use"] is in_use, url

    stopped = runner.invoke(cli_app, ["db", "stop"], env=env)
    assert stopped.exit_code == 0 and f"pid {running['pid']}" in stopped.stdout
    status = runner.invoke(cli_app, ["db", "status", "--json"], env=env)
    assert status.exit_code == 3 and json.loads(status.stdout)["running"] is False
    assert json.loads(status.stdout)["crashed"] is False  # stopped on purpose

    started = runner.invoke(cli_app, ["db", "start", "--json"], env=env)
    assert started.exit_code == 0, started.output
    assert json.loads(started.stdout)["running"] and server_status(own_server)["running"]
    # stop takes --json too, as the docs said (it was "No such option")
    pid = server_status(own_server)["pid"]
    for was_running in (True, False):
        stopped = runner.invoke(cli_app, ["db", "stop", "--json"], env=env)
        assert stopped.exit_code == 0, stopped.output
        said = json.loads(stopped.stdout)
        assert (said["running"], said["was_running"]) == (False, was_running)
        assert said["stopped_pid"] == (pid if was_running else None)
    ensure_server(own_server)


def test_cli_errors_are_one_line(own_server: Path, models_dir: Path,
                                 analyzer: FaceAnalyzer) -> None:
    base = {"PGFACE_DATA_DIR": str(own_server), "PGFACE_MODELS_DIR": str(models_dir),
            "PGFACE_DATABASE_URL": ""}
    _emptied(own_server)
    cases = [
        (["people", "show", "²"], {}, "error: no person named '²'"),
        (["people", "rename", "1", "a\x01b"], {}, "error: a person's name cannot contain"),
        (["stats"], {"PGFACE_PHOTO_BATCH": "abc"}, "error: setting PGFACE_PHOTO_BATCH: "),
        (["stats"], {"PGFACE_DET_SIZES": "[640"}, "error: setting PGFACE_DET_SIZES: "),
        (["stats"], {"PGFACE_DET_SIZES": "640,abc"},
         "error: setting PGFACE_DET_SIZES (item 2): Input should be a valid integer"),
        (["stats"], {"PGFACE_DET_SIZES": "300"},
         "error: setting PGFACE_DET_SIZES: 300 is not a detector size"),
        # named as the setting it is (probe cli23: the words named none)
        (["stats"], {"PGFACE_DATABASE_URL": "not a url"},
         "error: setting PGFACE_DATABASE_URL: not a database URL PostgreSQL can read: "),
        # the password of a URL refused was in the message, and so in a server's log
        (["stats"], {"PGFACE_DATABASE_URL": "mysql://alice:S3cretPW99@host/photos"},
         "error: setting PGFACE_DATABASE_URL: not a database URL PostgreSQL can read: missing "
         '"=" after "mysql://alice:***@host/photos"'),
        # libpq quotes the part it cannot read: a password with a space was shown whole,
        # twice (probe reprobe24)
        (["stats"], {"PGFACE_DATABASE_URL": "postgresql://alice:S3cretPW99 x@host/p"},
         "error: setting PGFACE_DATABASE_URL: not a database URL PostgreSQL can read: "
         'unexpected spaces found in "***"'),
        (["stats"], {"PGFACE_DATABASE_URL": "host=h password=x S3cretPW99"},
         "error: setting PGFACE_DATABASE_URL: not a database URL PostgreSQL can read: "
         'missing "=" after "***"'),
        # a standby's URL that cannot work was let through by commands that do not search
        (["stats"], {"PGFACE_READ_DATABASE_URL": "postgresql://alice:S3cretPW99@standby/p x"},
         "error: setting PGFACE_READ_DATABASE_URL: not a database URL PostgreSQL can read: "),
        (["stats"], {"PGFACE_READ_DATABASE_URL": '["postgresql://alice:S3cretPW99@standby/p"'},
         "error: setting PGFACE_READ_DATABASE_URL: not a JSON list"),
        (["stats"], {"PGFACE_DATABASE_URL": "postgresql://x@/x?host=/nonexistent"},
         "error: cannot connect to the database: "),
        (["index", "/nonexistent/photos"], {}, "failed /nonexistent/photos: no such file"),
    ]
    for args, extra, first in cases:
        result = runner.invoke(cli_app, args, env={**base, **extra})
        assert result.exit_code == 1, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        lines = result.stderr.splitlines()
        assert lines[0].startswith(first), (args, result.stderr)
        assert "S3cretPW99" not in result.stderr, (args, result.stderr)
        if args[0] != "index":  # index also says what it did, on a second line
            assert len(lines) == 1, (args, result.stderr)


def test_user_errors_over_http_are_json_4xx_with_a_code(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    obama = require_data(PHOTOS / "queries" / "obama1.jpg")
    settings = settings.model_copy(update={"api_roots": [tmp_path],
                                           "upload_dir": tmp_path / "uploads"})
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 200)).save(png, "PNG")
    truncated = ("half.jpg", obama.read_bytes()[:8000])
    (tmp_path / "loop").symlink_to("loop")  # a link to itself: resolving it raised a 500
    with TestClient(create_app(settings, analyzer)) as client:
        cases = [
            (client.post("/api/photos/index-path", json={"path": "loop"}), 400, "invalid_path"),
            (client.post("/api/photos/index-path", json={"path": "loop/a.jpg"}), 400,
             "invalid_path"),
            (client.post("/api/photos/remove", json={"paths": ["loop"]}), 400, "invalid_path"),
            (client.post("/api/photos/index-path", json={"path": "a" * 300}), 400,
             "invalid_path"),
            (client.post("/api/photos/index-path", json={"path": "b" * 300 + "/x.jpg"}), 400,
             "invalid_path"),
            (client.post("/api/photos/index-path", json={"path": "a\x00b"}), 400,
             "invalid_path"),
            (client.get("/api/people/%00"), 404, "not_found"),
            (client.get("/api/people/%00/faces"), 404, "not_found"),
            (client.get("/api/people/%C2%B2"), 404, "not_found"),
            (client.delete("/api/people/%C2%B2"), 404, "not_found"),
            (client.get("/api/people/99999999999999999999999"), 404, "not_found"),
            (client.patch("/api/people/1", json={"name": "a\x00b"}), 400, "invalid_input"),
            (client.post("/api/people/name", json={"face_ids": [1], "name": "a\x00b"}), 400,
             "invalid_input"),
            (client.post("/api/people/merge", json={"source": "a\x00b", "target": "c"}), 404,
             "not_found"),
            (client.post("/api/people/merge", json={"source": "²", "target": 1}), 404,
             "not_found"),
            (client.post("/api/photos", files={"file": truncated}), 400, "invalid_image"),
            (client.post("/api/search", files={"file": truncated}), 400, "invalid_image"),
            (client.post("/api/identify", files={"file": truncated}), 400, "invalid_image"),
            (client.post("/api/compare", files={"a": ("a.png", png.getvalue()),
                                                "b": truncated}), 400, "invalid_image"),
            (client.post("/api/compare", files={"a": ("a.png", png.getvalue()),
                                                "b": ("b.png", png.getvalue())}), 422,
             "no_face"),
            (client.get("/api/nothing"), 404, "not_found"),
        ]
        for response, status, code in cases:
            assert response.status_code == status, (code, response.text)
            error = response.json()["error"]
            assert error["code"] == code and error["status"] == status and error["message"]
        # A photo that fails leaves nothing behind in the upload folder.
        folder = upload_dir(settings)
        assert not folder.exists() or list(folder.iterdir()) == []
        assert client.get("/api/stats").json()["photos"] == 0


def test_a_bug_is_a_logged_json_500(caplog: pytest.LogCaptureFixture) -> None:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(InternalErrors)

    @app.get("/broken")
    def broken() -> dict:
        return {"value": 1 / 0}

    with TestClient(app) as client, caplog.at_level(logging.ERROR, "pgface.api.errors"):
        response = client.get("/broken")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal"
    assert "ZeroDivisionError" in response.json()["error"]["message"]
    [record] = [r for r in caplog.records if r.name == "pgface.api.errors"]
    assert record.exc_info and "500 on GET /broken" in record.getMessage()


def test_a_statement_past_a_limit_is_not_taken_for_a_lost_connection(
        database_url: str) -> None:
    # psycopg's OperationalError covers a row too large for an index (SQLSTATE 54000) as well
    # as a server gone away; the first was told "lost the database connection: run the
    # command again" (CLI) and "try again" with a 503 (HTTP), which could only fail again.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE wide (v text)")
        conn.execute("CREATE INDEX ON wide (v)")
        with pytest.raises(psycopg.OperationalError) as too_large:
            conn.execute("INSERT INTO wide SELECT string_agg(md5(n::text), '') "
                         "FROM generate_series(1, 400) n")
        with pytest.raises(psycopg.OperationalError) as gone:
            conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    assert (too_large.value.sqlstate, gone.value.sqlstate) == ("54000", "57P01")
    assert not connection_lost(too_large.value) and connection_lost(gone.value)
    assert error_line(too_large.value).startswith("database: index row requires")
    assert error_line(gone.value).startswith("lost the database connection")

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/{which}")
    def failing(which: str) -> dict:
        raise {"too-large": too_large, "gone": gone}[which].value

    with TestClient(app) as client:
        refused, lost = client.get("/too-large"), client.get("/gone")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_input")
    assert "index row requires" in refused.json()["error"]["message"]
    assert (lost.status_code, lost.json()["error"]["code"]) == (503, "database_unavailable")


def test_concurrent_uploads_of_one_photo_give_one_row_and_one_file(
        settings: Settings, analyzer: FaceAnalyzer, tmp_path: Path) -> None:
    photos = [require_data(PHOTOS / "people" / "obama" / "obama.jpg"),
              require_data(PHOTOS / "people" / "biden" / "biden.jpg"),
              require_data(PHOTOS / "queries" / "kit_with_rose.jpg")]
    settings = settings.model_copy(update={"upload_dir": tmp_path / "uploads"})
    clients = 8
    with TestClient(create_app(settings, analyzer)) as client:
        for photo in photos:
            data = photo.read_bytes()
            start = threading.Barrier(clients)
            answers: list[tuple[int, dict]] = []

            def upload(data: bytes = data, start: threading.Barrier = start,
                       answers: list = answers) -> None:
                start.wait()
                response = client.post("/api/photos", files={"file": ("same.jpg", data)})
                answers.append((response.status_code, response.json()))

            threads = [threading.Thread(target=upload) for _ in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            statuses = sorted(status for status, _ in answers)
            assert statuses == [200] * (clients - 1) + [201], answers
            assert len({body["photo"]["id"] for _, body in answers}) == 1
            assert sum(body["created"] for _, body in answers) == 1
        files = sorted(p.name for p in upload_dir(settings).iterdir())
        expected = sorted(hashlib.sha256(p.read_bytes()).hexdigest() + ".jpg" for p in photos)
        assert files == expected  # one file per photo, no temporary file left over
        assert client.get("/api/stats").json()["photos"] == len(photos)


def test_a_library_whose_server_was_stopped_says_so_at_once(
        own_server: Path, models_dir: Path, analyzer: FaceAnalyzer) -> None:
    # `pgface db stop` under an open Pgface: every call waited the pool's 30 s, then raised
    # psycopg_pool's PoolTimeout (and the log filled with the pool's connection errors)
    with pgface.Pgface(Settings(data_dir=own_server, models_dir=models_dir),
                       analyzer=analyzer) as pf:
        assert pf.stats()["photos"] >= 0
        stop_server(own_server)  # what `pgface db stop` does
        try:
            for _ in range(2):
                with pytest.raises(pgface.DatabaseError, match=r"^the embedded PostgreSQL is "
                                   r"stopped \(`pgface db stop`\): start it with `pgface db "
                                   r"start`"):
                    pf.stats()
            pf.close()
            assert pf.stats()["photos"] >= 0  # a new opening starts it, as a new Pgface does
        finally:
            ensure_server(own_server)
