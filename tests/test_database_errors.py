"""The database driver's own errors in the middle of a Python API call are pgface's: a write
under a read-only role, a statement a statement_timeout cancels, a session terminated during
a call. They came through as psycopg's errors, where README promises a PgfaceError for every
error; now each is a DatabaseError of its kind, in the words the CLI says, psycopg's error its
__cause__, and it pickles whole."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from conftest import a_role, grant_reading
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

import pgface
from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.cli.common import error_line
from pgface.db.connection import database_error
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos


def pickled_whole(error: pgface.StatementFailed) -> None:
    """ERROR comes back from a pickle (a worker process's to its pool) as itself."""
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert (str(again), again.sqlstate) == (str(error), error.sqlstate)


@contextmanager
def tables_locked(url: str) -> Iterator[None]:
    """pgface's photos and people held by another session: a statement reading them waits."""
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE pgface.photos, pgface.people IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


def test_a_write_under_a_read_only_role_is_a_read_only_database_error(
        database_url: str, settings: Settings, analyzer: FaceAnalyzer) -> None:
    photo = sample_photos()[0]
    with Pgface(settings, analyzer=analyzer) as writer:
        writer.index(photo)
        [faces] = writer.photo_faces(photo).values()
        writer.people.name_faces([faces[0].face_id], "Ann")
        person = writer.people.named("Ann")
    with psycopg.connect(database_url, autocommit=True) as admin, a_role(
            admin, database_url, "default_transaction_read_only = on") as reader:
        grant_reading(admin, reader, "pgface")
        as_reader = settings.model_copy(update={"database_url": reader})
        with Pgface(as_reader, analyzer=analyzer) as pf:
            assert pf.stats()["photos"] == 1  # reading is allowed
            with pytest.raises(pgface.DatabaseError) as indexed:
                pf.index(photo, reread=True)
            with pytest.raises(pgface.ReadOnlyDatabase) as renamed:
                pf.people.rename(person.id, "Someone")
        for refused in (indexed.value, renamed.value):
            assert isinstance(refused, pgface.ReadOnlyDatabase), repr(refused)
            assert isinstance(refused, pgface.PgfaceError)
            assert isinstance(refused.__cause__, psycopg.errors.ReadOnlySqlTransaction)
            assert refused.sqlstate == "25006"
            said = str(refused)
            assert said.startswith("the database connection is read-only")
            assert "default_transaction_read_only is on" in said
            assert "need a role that may write" in said
            assert error_line(refused) == error_line(refused.__cause__) == said  # the CLI's
            pickled_whole(refused)
        # over HTTP, a people change under the role is the 503 it was when psycopg's error
        # reached the API's handlers
        with TestClient(create_app(as_reader, analyzer)) as client:
            answer = client.patch(f"/api/people/{person.id}", json={"name": "Someone"})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["code"] == "database_unavailable"
        assert answer.json()["error"]["message"].startswith(
            "the database connection is read-only"), answer.text


def test_a_write_by_a_role_granted_select_alone_is_said_with_the_grant(
        database_url: str, settings: Settings, analyzer: FaceAnalyzer) -> None:
    """A search-only role (README: USAGE on the schema, SELECT on its tables) asked to write:
    the Python API and the CLI said "database: permission denied for table model_packs", and
    an upload, a deletion or a clustering over HTTP was a 500 with a traceback (probe
    operator); said as the role's rights, a 503 as a read-only connection is."""
    photo = sample_photos()[0]
    with Pgface(settings, analyzer=analyzer) as writer:
        writer.index(photo)
        [faces] = writer.photo_faces(photo).values()
        writer.people.name_faces([faces[0].face_id], "Ann")
    with psycopg.connect(database_url, autocommit=True) as admin, a_role(
            admin, database_url) as reader:
        grant_reading(admin, reader, "pgface")
        as_reader = settings.model_copy(update={"database_url": reader})
        with Pgface(as_reader, analyzer=analyzer) as pf:
            assert pf.stats()["photos"] == 1  # it searches
            with pytest.raises(pgface.DatabaseError) as indexed:
                pf.index(photo, reread=True)
        refused = indexed.value
        assert isinstance(refused.__cause__, psycopg.errors.InsufficientPrivilege)
        said = str(refused)
        assert said.startswith("the database role may not do this (permission denied"), said
        assert "GRANT SELECT, INSERT, UPDATE, DELETE" in said and refused.sqlstate == "42501"
        assert error_line(refused) == error_line(refused.__cause__) == said  # the CLI's
        with TestClient(create_app(as_reader, analyzer)) as client:
            answers = [
                client.post("/api/photos", files={"file": ("a.jpg", photo.read_bytes())}),
                client.delete("/api/photos/1"),
                client.post("/api/people/cluster", json={})]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["code"] == "database_unavailable", answer.text
            assert error["message"].startswith("the database role may not do this"), answer.text


def test_a_statement_cancelled_by_statement_timeout_is_said_so(
        database_url: str, settings: Settings, analyzer: FaceAnalyzer) -> None:
    hurried = make_conninfo(database_url, options="-c statement_timeout=300")
    with Pgface(settings.model_copy(update={"database_url": hurried}),
                analyzer=analyzer) as pf:
        assert pf.people.list() == []  # opened, and answering
        with tables_locked(database_url), pytest.raises(pgface.DatabaseError) as listed:
            pf.people.list()
    cancelled = listed.value
    assert isinstance(cancelled, pgface.StatementCancelled), repr(cancelled)
    assert isinstance(cancelled.__cause__, psycopg.errors.QueryCanceled)
    said = str(cancelled)
    assert "cancelled by statement_timeout" in said and "ALTER ROLE" in said, said
    assert cancelled.sqlstate == "57014"
    assert error_line(cancelled) == error_line(cancelled.__cause__) == said
    pickled_whole(cancelled)
    # cancelled as the library opens (its migrations' table held by another session): the
    # same class, not a plain DatabaseError with no sqlstate (probe reprobe27)
    with psycopg.connect(database_url) as holder:
        holder.execute("LOCK TABLE pgface.schema_migrations IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(pgface.StatementCancelled) as opening, Pgface(
                settings.model_copy(update={"database_url": hurried}), analyzer=analyzer) as pf:
            pf.stats()
        holder.rollback()
    assert opening.value.sqlstate == "57014"
    assert "as it opened the library" in str(opening.value), opening.value


def raised_by(call: Callable[[], Any], thread_state: dict) -> None:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
        thread_state["raised"] = exc


def raised_when_its_wait_is_terminated(call: Callable[[], Any],
                                       database_url: str) -> BaseException | None:
    """What CALL raised, run in a thread until it waits for a lock a test holds, and its
    session is terminated then (pg_terminate_backend: a server restarted, say)."""
    state: dict = {}
    thread = threading.Thread(target=raised_by, args=(call, state))
    thread.start()
    with psycopg.connect(database_url, autocommit=True) as admin:
        waiting: list = []
        deadline = time.monotonic() + 60  # a guard against a hang, not a timing requirement
        while not waiting:
            assert time.monotonic() < deadline and thread.is_alive(), state
            time.sleep(0.05)
            waiting = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchall()
        admin.execute("SELECT pg_terminate_backend(%s)", [waiting[0][0]])
    thread.join(60)
    assert not thread.is_alive()
    return state.get("raised")


def test_a_session_terminated_during_a_call_is_a_lost_database(
        database_url: str, settings: Settings, analyzer: FaceAnalyzer) -> None:
    with Pgface(settings, analyzer=analyzer) as pf:
        assert pf.stats()["photos"] == 0
        with tables_locked(database_url):
            lost = raised_when_its_wait_is_terminated(pf.stats, database_url)
        assert isinstance(lost, pgface.DatabaseLost), repr(lost)
        assert isinstance(lost, pgface.DatabaseError)
        assert isinstance(lost.__cause__, psycopg.OperationalError)
        said = str(lost)
        assert said.startswith("lost the database connection (")
        assert "everything stored until then is kept" in said
        assert error_line(lost) == error_line(lost.__cause__) == said
        pickled_whole(lost)
        assert pf.stats()["photos"] == 0  # the next call takes another connection


def test_a_connection_lost_as_the_library_opens_is_not_one_never_made(
        database_url: str, settings: Settings, analyzer: FaceAnalyzer) -> None:
    """Probe upgrade39: PostgreSQL killed while pgface upgraded a library said 'cannot connect
    to the database: the connection is closed', where it had connected and its upgrade (one
    transaction) was rolled back whole."""
    def open_library() -> None:
        with Pgface(settings, analyzer=analyzer) as pf:
            pf.stats()

    open_library()  # the library made; its next opening reads its migrations
    with psycopg.connect(database_url) as holder:
        holder.execute("LOCK TABLE pgface.schema_migrations IN ACCESS EXCLUSIVE MODE")
        lost = raised_when_its_wait_is_terminated(open_library, database_url)
        holder.rollback()
    assert isinstance(lost, pgface.DatabaseLost), repr(lost)
    said = str(lost)
    assert said.startswith("lost the database connection as pgface opened the library (to "
                           "read the library's migrations: "), said
    assert said.endswith("nothing of the library's changes was written (its upgrade is one "
                         "transaction): run the command again"), said
    open_library()  # and it opens the next time


def test_the_database_errors_are_exported_and_pgface_errors_pass_unchanged(
        settings: Settings) -> None:
    for name in ("StatementFailed", "DatabaseLost", "StatementCancelled", "ReadOnlyDatabase"):
        assert name in pgface.__all__
        assert issubclass(getattr(pgface, name), pgface.DatabaseError)
    # pgface's own error raised inside a call is not made another
    # (the settings refuse such a URL themselves; model_copy does not validate)
    with pgface.open(settings.model_copy(update={"database_url": "not a url"})) as unreadable, \
            pytest.raises(pgface.DatabaseError) as refused:
        unreadable.stats()
    assert type(refused.value) is pgface.DatabaseError
    assert "URL is not one PostgreSQL can read" in str(refused.value)


def psycopg_errors(url: str) -> dict[str, psycopg.Error]:
    """Real errors of PostgreSQL's, one of each kind the HTTP API answers apart."""
    found: dict[str, psycopg.Error] = {}
    statements = {
        "read-only": ["SET TRANSACTION READ ONLY", "CREATE TABLE t (v int)"],
        "cancelled": ["SET statement_timeout = 10", "SELECT pg_sleep(1)"],
        "value": ["SELECT 1 / 0"],
        "bug": ["SELECT * FROM no_such_table"],
        "lost": ["SELECT pg_terminate_backend(pg_backend_pid())"],
    }
    for kind, steps in statements.items():
        with psycopg.connect(url) as conn, pytest.raises(psycopg.Error) as raised:
            for step in steps:
                conn.execute(step)
        found[kind] = raised.value
    return found


def test_the_http_api_answers_the_python_apis_database_errors_as_psycopgs(
        database_url: str) -> None:
    # People's and Pgface's calls reach the HTTP API's handlers as pgface's errors now: each
    # is answered as psycopg's own was (503 for a lost or read-only connection, 400 for a
    # value refused, 500 for a bug), not as any DatabaseError's 503.
    from fastapi import FastAPI

    from pgface.api.errors import InternalErrors, install_error_handlers
    from pgface.db.connection import database_error

    errors: dict[str, psycopg.Error] = psycopg_errors(database_url)
    # an upload to a full disk said "the database could not do it: could not extend file
    # ..." where the CLI, a job and a restore say the disk is full (probe operator)
    errors["disk-full"] = psycopg.errors.DiskFull(
        'could not extend file "base/5/16773": No space left on device\nHINT:  Check free '
        'disk space.')
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(InternalErrors)

    @app.get("/{kind}/{how}")
    def failing(kind: str, how: str) -> dict:
        error = errors[kind]
        if how == "raw":
            raise error
        raise database_error(error) from error

    with TestClient(app, raise_server_exceptions=False) as client:
        for kind in errors:
            raw, said = client.get(f"/{kind}/raw"), client.get(f"/{kind}/said")
            assert (said.status_code, said.json()) == (raw.status_code, raw.json()), kind
            assert raw.status_code == {"read-only": 503, "cancelled": 503, "value": 400,
                                       "bug": 500, "lost": 503, "disk-full": 503}[kind], raw.text
        full = client.get("/disk-full/raw").json()["error"]["message"]
        assert full.startswith("the database's disk is full (could not extend file"), full
        assert "free space on the disk that holds PostgreSQL's data folder" in full, full


def test_a_full_disk_is_said_to_be_the_databases() -> None:
    """Probe diskfull24: a full data disk during `index` was `error: database: could not extend
    file "base/5/16773": No space left on device` (a path in no folder the operator knows),
    and its footnote named psycopg's class (`DiskFull: ...`)."""
    full = psycopg.errors.DiskFull('could not extend file "base/5/16773": No space left on '
                                   'device\nHINT:  Check free disk space.')
    said = error_line(full)
    assert said.startswith("the database's disk is full (could not extend file "
                           '"base/5/16773": No space left on device): free space on the disk '
                           "that holds PostgreSQL's data folder"), said
    assert said.endswith("what was stored before is kept") and "HINT" not in said, said
    assert isinstance(database_error(full), pgface.StatementFailed)
