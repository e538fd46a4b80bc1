"""Searches served by a streaming hot standby (made with the embedded server's own binaries,
`pg_basebackup -R`) while writes go to the primary."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import fresh_database, with_database
from fastapi.testclient import TestClient
from pgvector.psycopg import register_vector
from psycopg import sql as psql
from test_schema import samples
from test_vector_index import MODEL, add_faces, unit

from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.db.connection import DatabaseError, _configure, migrate
from pgface.db.server import create_standby, ensure_server, stop_server
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos
from pgface.vector_index import SignIndex

CATCH_UP_S = 60  # generous: a loaded 2-core machine; the lag itself is in docs/scaling.md


@pytest.fixture(scope="module")
def servers(work_dir: Path) -> Iterator[tuple[str, str]]:
    primary, standby = work_dir / "replica-primary", work_dir / "replica-standby"
    primary_url = ensure_server(primary)
    try:
        yield primary_url, create_standby(primary, standby)
    finally:
        stop_server(standby)
        stop_server(primary)


def caught_up(primary_url: str, standby_url: str) -> None:
    """Wait until the standby has replayed everything the primary has written so far."""
    with psycopg.connect(primary_url) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + CATCH_UP_S
    with psycopg.connect(standby_url, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                               [lsn]).fetchone()[0]:
            assert time.monotonic() < deadline, f"the standby did not replay up to {lsn}"
            time.sleep(0.05)


@pytest.fixture
def urls(servers: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """A fresh database on the primary, as reached on the primary and on the standby."""
    primary, standby = servers
    name = f"r_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(primary, autocommit=True) as conn:
        conn.execute(psql.SQL("CREATE DATABASE {}").format(psql.Identifier(name)))
    urls = with_database(primary, name), with_database(standby, name)
    migrate(urls[0])
    caught_up(*servers)
    yield urls
    with psycopg.connect(primary, autocommit=True) as conn:
        conn.execute(psql.SQL("DROP DATABASE {} WITH (FORCE)").format(psql.Identifier(name)))


def found_paths(result: object) -> set[str]:
    return {Path(m.path).name for face in result.faces for m in face.matches}  # type: ignore[attr-defined]


def test_a_search_reading_the_standby_finds_what_the_primary_indexed(
        urls: tuple[str, str], servers: tuple[str, str], analyzer: FaceAnalyzer,
        models_dir: Path, work_dir: Path) -> None:
    primary, standby = urls
    photos = samples()
    settings = Settings(database_url=primary, read_database_url=[standby],
                        models_dir=models_dir, data_dir=work_dir)
    with Pgface(settings, analyzer=analyzer) as pf, \
            Pgface(settings.model_copy(update={"read_database_url": []}),
                   analyzer=analyzer) as on_primary:
        pf.index([photos["players.jpg"]])
        caught_up(*servers)
        assert "players.jpg" in found_paths(pf.search(photos["yaoming.jpg"]))

        # with the standby's replay paused, a face indexed now is on the primary only:
        # searches that read the standby do not see it until replay resumes
        with psycopg.connect(standby, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
            try:
                pf.index([photos["yaoming.jpg"]])
                assert "yaoming.jpg" in found_paths(on_primary.search(photos["yaoming.jpg"]))
                assert "yaoming.jpg" not in found_paths(pf.search(photos["yaoming.jpg"]))
            finally:
                conn.execute("SELECT pg_wal_replay_resume()")
        caught_up(*servers)
        assert {"players.jpg", "yaoming.jpg"} <= found_paths(pf.search(photos["yaoming.jpg"]))

    with TestClient(create_app(settings, analyzer)) as client:
        files = {"file": ("yaoming.jpg", photos["yaoming.jpg"].read_bytes(), "image/jpeg")}
        body = client.post("/api/search", files=files).json()
    names = {Path(m["path"]).name for face in body["faces"] for m in face["matches"]}
    assert {"players.jpg", "yaoming.jpg"} <= names


def test_the_index_syncing_from_a_standby_misses_no_late_commit(
        urls: tuple[str, str], servers: tuple[str, str]) -> None:
    """A standby reads the faces sequence as WAL-logged, up to 32 ids ahead of those handed
    out. An index that took those ids as settled would skip a face that a transaction starting
    after its sync takes from that range."""
    primary, standby = urls
    rng = np.random.default_rng(7)
    with psycopg.connect(primary) as writer, psycopg.connect(standby, autocommit=True) as reader:
        register_vector(writer)
        writer.execute("SET search_path TO pgface, public")
        _configure("pgface")(reader)
        ids = add_faces(writer, unit(rng, 3))
        caught_up(*servers)
        index = SignIndex(MODEL)
        for _ in range(3):  # a watermark advances only once a later snapshot passes a sync
            index.sync(reader)
        late = add_faces(writer, unit(rng, 2))  # ids from the range the standby reads as taken
        assert max(late) < reader.execute(
            "SELECT last_value FROM pgface.faces_id_seq").fetchone()[0]
        caught_up(*servers)
        index.sync(reader)
        assert sorted(index._ids[: len(index)].tolist()) == ids + late


def test_read_database_urls_are_a_json_list_or_comma_separated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    several_hosts = "postgresql://u@h1,h2/db?target_session_attrs=any"
    monkeypatch.setenv("PGFACE_READ_DATABASE_URL",
                       f"postgresql://u@a/db, {several_hosts},postgres://u@b/db")
    assert Settings().read_database_url == ["postgresql://u@a/db", several_hosts,
                                            "postgres://u@b/db"]
    monkeypatch.setenv("PGFACE_READ_DATABASE_URL", '["host=a dbname=x", "host=b dbname=x"]')
    assert Settings().read_database_url == ["host=a dbname=x", "host=b dbname=x"]
    monkeypatch.delenv("PGFACE_READ_DATABASE_URL")
    assert Settings().read_database_url == []


def test_a_read_database_that_cannot_serve_says_why(
        settings: Settings, analyzer: FaceAnalyzer, server_url: str) -> None:
    # Without pgvector every connection's set-up failed: the pool's 30 s wait, then "pool
    # initialization incomplete"; without pgface's tables, each search failed with
    # "relation faces does not exist", naming no read database.
    bare = fresh_database(server_url)
    database_url = next(bare)  # another database than the library's, with nothing in it
    try:
        for fix, reason in ((None, "this database has no pgvector extension"),
                            ("CREATE EXTENSION vector",
                             "this database holds no pgface library in schema 'pgface'")):
            if fix:
                with psycopg.connect(database_url, autocommit=True) as admin:
                    admin.execute(fix)
            reading = settings.model_copy(update={"read_database_url": [database_url]})
            with Pgface(reading, analyzer=analyzer) as pf, pytest.raises(
                    DatabaseError, match="^" + re.escape(
                        f"read database 1 of PGFACE_READ_DATABASE_URL: {reason}")):
                pf.search(sample_photos()[0])
    finally:
        next(bare, None)  # the rest of its body: the database dropped


HIDE_PGVECTOR = ("CREATE SCHEMA nopgvector; CREATE VIEW nopgvector.pg_available_extensions AS "
                 "SELECT * FROM pg_catalog.pg_available_extensions WHERE false")
# a search path on which that view hides the server's pgvector: a server without it
WITHOUT_PGVECTOR = "-c search_path=nopgvector,pg_catalog,public"


def test_a_server_without_pgvector_is_named_with_the_command_lines_advice(
        server_url: str) -> None:
    """The error named neither the server nor the database ("the database server has no
    pgvector extension"); pgface's command line keeps its advice."""
    bare = fresh_database(server_url)
    database_url = next(bare)
    try:
        with psycopg.connect(database_url, autocommit=True) as admin:
            admin.execute(HIDE_PGVECTOR)
            name, folder = admin.info.dbname, admin.info.host
        url = database_url.split("&options=")[0] + "&options=" + WITHOUT_PGVECTOR.replace(
            " ", "%20").replace("=", "%3D").replace(",", "%2C")
        with pytest.raises(DatabaseError, match="^" + re.escape(
                f"the database server on socket folder {folder} (port ") + r"\d+" + re.escape(
                f") (database {name!r}) has no pgvector extension; install pgvector >= 0.7 on "
                "it or unset PGFACE_DATABASE_URL to use the embedded server") + "$"):
            migrate(url)
    finally:
        next(bare, None)


def test_a_read_database_that_is_down_is_named_with_its_reason(
        settings: Settings, analyzer: FaceAnalyzer) -> None:
    # A stopped standby cost every search the pool's 30 s wait, then "pool initialization
    # incomplete after 30 sec", naming neither the server nor why.
    down = "postgresql://pgface@/pgface?host=/nonexistent"
    with Pgface(settings.model_copy(update={"read_database_url": [settings.database_url, down]}),
                analyzer=analyzer) as pf:
        for _ in range(2):  # and the next search says so again, at once
            with pytest.raises(DatabaseError, match=r'^read database 2 of PGFACE_READ_DATABASE_'
                               r'URL: cannot connect to the database: .*"/nonexistent/\.s\.PGSQL'):
                pf.search(sample_photos()[0])
        assert pf._read_pools == []  # the first one's pool was closed again
    # /api/health says so too: it said ok while every search failed (a load balancer kept
    # sending searches to this server)
    with TestClient(create_app(settings.model_copy(update={
            "read_database_url": [settings.database_url, down]}), analyzer)) as client:
        health = client.get("/api/health")
        assert health.status_code == 503, health.text
        assert "read database 2 of PGFACE_READ_DATABASE_URL" in health.json()["error"]["message"]
    with TestClient(create_app(settings.model_copy(update={
            "read_database_url": [settings.database_url]}), analyzer)) as client:
        assert client.get("/api/health").status_code == 200


def test_a_read_database_of_another_library_is_refused_by_name(
        settings: Settings, analyzer: FaceAnalyzer, server_url: str,
        urls: tuple[str, str]) -> None:
    # A read URL naming another server's library, or another database of the primary's
    # server, was searched without a word: another library's faces (or none) answered.
    elsewhere = fresh_database(server_url)
    other_database = next(elsewhere)  # the primary's server, another database, a library
    migrate(other_database)
    try:
        for url, reason in (
                (urls[1], r"this server is not the primary nor a standby of it \(system "
                          r"identifier \d+, the primary's \d+\)"),
                (other_database, r"this is database 't_\w+', the library's is "
                                 r"'\w+': a standby holds")):
            reading = settings.model_copy(update={"read_database_url": [url]})
            with Pgface(reading, analyzer=analyzer) as pf, pytest.raises(
                    DatabaseError, match="^read database 1 of PGFACE_READ_DATABASE_URL: "
                                         + reason):
                pf.search(sample_photos()[0])
        # the primary itself as a read database is the same library: it serves
        itself = settings.model_copy(update={"read_database_url": [settings.database_url]})
        with Pgface(itself, analyzer=analyzer) as pf:
            assert pf.search(sample_photos()[0]).faces
    finally:
        next(elsewhere, None)


def test_a_promoted_standby_is_refused_as_a_read_database(
        urls: tuple[str, str], servers: tuple[str, str], analyzer: FaceAnalyzer,
        models_dir: Path, work_dir: Path) -> None:
    # A standby promoted keeps the primary's system identifier and databases: taken as a read
    # database, it answered searches from a copy the primary no longer writes to (2 matches
    # where the primary had 4, probe pgint31). A read database that is not in recovery must
    # be the primary itself.
    primary, _ = urls
    name = psycopg.conninfo.conninfo_to_dict(primary)["dbname"]
    promoted_dir = work_dir / f"replica-promoted-{uuid.uuid4().hex[:8]}"
    promoted = create_standby(work_dir / "replica-primary", promoted_dir)
    try:
        with psycopg.connect(promoted, autocommit=True) as conn:
            assert conn.execute("SELECT pg_promote(true, 60)").fetchone()[0]
        reading = Settings(database_url=primary, read_database_url=[with_database(promoted, name)],
                           models_dir=models_dir, data_dir=work_dir)
        with Pgface(reading, analyzer=analyzer) as pf, pytest.raises(
                DatabaseError, match=r"^read database 1 of PGFACE_READ_DATABASE_URL: this server "
                                     r"is not in recovery, so it is no standby of the primary, "
                                     r"nor is it the primary itself \(started .*promoted"):
            pf.search(sample_photos()[0])
        # the primary itself, and a standby that follows it, still serve
        for url in urls:
            with Pgface(reading.model_copy(update={"read_database_url": [url]}),
                        analyzer=analyzer) as pf:
                pf.search(sample_photos()[0])
    finally:
        stop_server(promoted_dir)
        shutil.rmtree(promoted_dir, ignore_errors=True)
