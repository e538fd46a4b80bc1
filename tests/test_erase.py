"""Erase means erased: no face, crop, embedding or uploaded file of the person stays, and no
byte of their crops or embeddings stays in the database's table files."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
from conftest import PHOTOS, require_data
from fastapi.testclient import TestClient
from test_api import upload
from test_people import photos_of

from pgface import Pgface, Settings
from pgface.api import create_app
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos
from pgface.people import delete_uploads


def table_files(conn: psycopg.Connection, server_dir: Path) -> list[Path]:
    """Every file of this database under the session server's data folder (tests/conftest.py),
    after a checkpoint has written what is in shared buffers to them."""
    conn.execute("CHECKPOINT")
    pgdata = server_dir / "pgdata"
    oid = conn.execute("SELECT oid FROM pg_database WHERE datname = current_database()"
                       ).fetchone()[0]
    folder = pgdata / "base" / str(oid)
    # The rows, their TOAST (the crops) and the HNSW index (the vectors) live there.
    for relation in ("faces", "pg_toast.pg_toast_" + str(conn.execute(
            "SELECT 'faces'::regclass::oid").fetchone()[0]), "faces_embedding_hnsw_idx"):
        path = conn.execute("SELECT pg_relation_filepath(%s)", [relation]).fetchone()[0]
        assert (pgdata / path).parent == folder, path
    return [p for p in folder.iterdir() if p.is_file()]


def found_in(files: list[Path], needles: dict[str, bytes]) -> set[str]:
    contents = []
    for f in files:
        try:
            contents.append(f.read_bytes())
        except FileNotFoundError:
            # The server removes files of its own between the listing and the read (its
            # relation cache's pg_internal.init was one); a relation's files stay while it does.
            if not f.name.startswith("pg_"):
                raise
    return {name for name, needle in needles.items() if any(needle in c for c in contents)}


def needles_of(conn: psycopg.Connection, face_ids: list[int]) -> dict[str, bytes]:
    """64 bytes of each face's crop past its JPEG header, and the first 16 floats of its vector
    as stored (float32, little-endian).

    A crop over about 2 kB is stored out of line in TOAST chunks of 1,996 bytes (8 kB pages),
    so the needle is taken inside the first chunk: one across a chunk's end is stored in two
    pieces and found in neither (a crop of 3,969 bytes had its middle 64 bytes there)."""
    needles = {}
    for face_id, crop, vector in conn.execute(
            "SELECT id, crop, embedding::real[] FROM faces WHERE id = ANY(%s)", [face_ids]):
        start = min(len(crop) // 2, 1000)  # OpenCV's JPEG header (tables) is about 620 bytes
        needles[f"crop {face_id}"] = bytes(crop[start:start + 64])
        needles[f"embedding {face_id}"] = np.asarray(vector[:16], dtype="<f4").tobytes()
    return needles


def test_erase_leaves_no_byte_and_no_upload(settings: Settings, analyzer: FaceAnalyzer,
                                            pf: Pgface, server_dir: Path, tmp_path: Path) -> None:
    group = require_data(PHOTOS / "queries" / "obama_and_biden.jpg")
    uploads = tmp_path / "uploads"
    settings = settings.model_copy(update={"upload_dir": uploads})
    with TestClient(create_app(settings, analyzer)) as client:
        faces: dict[str, list[int]] = {}
        for path in photos_of("obama") + photos_of("biden") + [group]:
            photo = client.post("/api/photos", files=upload(path)).json()["photo"]
            faces.setdefault(path.parent.name, []).extend(f["id"] for f in photo["faces"])
        obama, biden = faces["obama"], faces["biden"]
        assert len(list(uploads.iterdir())) == len(photos_of("obama")) + len(photos_of("biden")) + 1
        client.post("/api/people/name", json={"face_ids": obama, "name": "obama"})
        client.post("/api/people/name", json={"face_ids": biden, "name": "biden"})

        with pf.pool.connection() as conn:
            theirs, others = needles_of(conn, obama), needles_of(conn, biden)
            files = table_files(conn, server_dir)
            erased_id = conn.execute("SELECT id FROM people WHERE name = 'obama'").fetchone()[0]
            assert conn.execute("SELECT count(*) FROM person_face_counts WHERE person_id = %s",
                                [erased_id]).fetchone()[0] > 0
        # Positive control: before the erase, every needle is in the table files.
        assert found_in(files, theirs | others) == set(theirs | others)

        erased = client.post("/api/people/obama/erase").json()
        assert erased["faces_deleted"] == len(obama)
        assert erased["photos_deleted"] == erased["files_deleted"] == len(photos_of("obama"))
        assert erased["scrub_seconds"] is not None

    kept = sorted(p.name for p in uploads.iterdir())
    assert len(kept) == len(photos_of("biden")) + 1  # Biden's and the group photo stay
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM faces WHERE id = ANY(%s)", [obama]
                            ).fetchone()[0] == 0
        # Nor the counts the people page keeps for them (migration 0018): only their id.
        assert conn.execute("SELECT count(*) FROM person_face_counts WHERE person_id = %s",
                            [erased_id]).fetchone()[0] == 0
        files = table_files(conn, server_dir)
        stored = {Path(p).name for (p,) in conn.execute("SELECT path FROM photos")}
    assert stored == set(kept)
    assert found_in(files, theirs) == set()
    assert found_in(files, others) == set(others)  # the scan still sees what is there


def test_an_erase_leaves_no_name_or_path_in_the_planners_statistics(
        pf: Pgface, tmp_path: Path, server_dir: Path) -> None:
    """Probe erase35: the erased person's name and their photos' paths stayed in pg_stats
    (pg_statistic) after the scrub: VACUUM FULL leaves the statistics ANALYZE (autovacuum's
    too) took of the rows, and a table the erase emptied is never analysed again."""
    folders = {"Zyxwv Erased": tmp_path / "qqmarkerfolder", "Kept Person": tmp_path / "kept"}
    for folder, who in zip(folders.values(), ("obama", "biden"), strict=True):
        folder.mkdir()
        for photo in photos_of(who):
            shutil.copyfile(photo, folder / photo.name)
    pf.index(list(folders.values()))
    for name, folder in folders.items():
        faces = [face.face_id for faces in pf.photo_faces([folder]).values() for face in faces]
        pf.people.name_faces(faces, name)
    pf.people.rename("Zyxwv Erased", "Zyxwv Renamed")  # names in the changes' records too
    pf.people.rename("Zyxwv Renamed", "Zyxwv Erased")
    marks = ("Zyxwv", "qqmarker")

    def in_statistics() -> set[str]:
        with pf.pool.connection() as conn:
            conn.execute("ANALYZE")  # as autovacuum does, unasked
            rows = conn.execute(
                "SELECT tablename, attname, concat_ws(' ', most_common_vals::text, "
                "histogram_bounds::text) FROM pg_stats WHERE schemaname = current_schema()"
            ).fetchall()
        return {f"{table}.{column}" for table, column, values in rows
                if any(mark in (values or "") for mark in marks)}

    assert {"people.name", "photos.path"} <= in_statistics()  # the control: they were there
    needles = {mark: mark.encode() for mark in marks}
    with pf.pool.connection() as conn:
        assert found_in(table_files(conn, server_dir), needles) == set(marks)
    erased = pf.people.erase("Zyxwv Erased")
    assert erased.scrub_seconds is not None
    # nor in the catalog's file, the old rows' bytes (probe reprobe35: the statistics taken
    # again left the old ones there, dead rows of pg_statistic)
    with pf.pool.connection() as conn:
        assert found_in(table_files(conn, server_dir), needles) == set()
    assert in_statistics() == set()
    pf.people.erase("Kept Person")  # the last person: tables emptied, never analysed again
    with pf.pool.connection() as conn:
        left = conn.execute("SELECT tablename, attname FROM pg_stats WHERE schemaname = "
                            "current_schema() AND tablename IN ('people', 'photos', "
                            "'people_name_folded_idx', 'people_change_rows')").fetchall()
    assert left == [], left


def test_only_uploaded_files_are_deleted_and_failures_named(tmp_path: Path) -> None:
    uploads, elsewhere = tmp_path / "uploads", tmp_path / "Pictures"
    uploads.mkdir()
    elsewhere.mkdir()
    kept_photo = elsewhere / "mine.jpg"
    kept_photo.write_bytes(b"x")
    uploaded = uploads / "aa.jpg"
    uploaded.write_bytes(b"x")
    stuck = uploads / "bb.jpg"  # a folder where the file should be: unlink must fail
    (stuck / "inside").mkdir(parents=True)
    deleted, failed = delete_uploads([str(kept_photo), str(uploaded), str(stuck),
                                      str(uploads / "gone.jpg")], uploads)
    assert deleted == [str(uploaded), str(uploads / "gone.jpg")]
    assert len(failed) == 1 and failed[0].startswith(f"{stuck}: ")
    assert kept_photo.exists() and not uploaded.exists() and stuck.exists()


def test_a_photo_at_two_paths_erased_is_one_photo(pf: Pgface, tmp_path: Path) -> None:
    """The erase counted the deleted photos by their paths: one photo at two paths (a copy in
    another folder) was "photos_deleted": 2, in the answer and in the history."""
    photo = sample_photos()[1]  # yaoming.jpg: one face
    for folder in ("album", "copies"):
        (tmp_path / folder).mkdir()
        shutil.copyfile(photo, tmp_path / folder / photo.name)
    pf.index([tmp_path])
    with pf.pool.connection() as conn:
        assert conn.execute("SELECT count(*) FROM photo_paths").fetchone() == (2,)
        [(face,)] = conn.execute("SELECT id FROM faces").fetchall()
    pf.people.name_faces([face], "Yao")
    erased = pf.people.erase("Yao", scrub=False)
    assert (erased.faces, erased.photos) == (1, 1)
    assert pf.people.history(1)[0].summary == ("erased a person: 1 face, 1 photo "
                                               "(cannot be undone)")
    assert pf.stats()["photos"] == 0


def test_a_scrub_does_not_hold_every_reader_behind_a_long_transaction(
        pf: Pgface, database_url: str) -> None:
    """VACUUM FULL waits for every open transaction that has read the tables, and every reader
    after it waits behind it: an erase while a Django project's report held a transaction open
    stalled the project's reads of pgface's tables for as long (15 s for a count). The scrub
    waits a few seconds at most; the erase stands, and says the scrub is left to do."""
    pf.index(sample_photos()[1:2])
    with pf.pool.connection() as conn:
        [(face,)] = conn.execute("SELECT id FROM faces").fetchall()
    pf.people.name_faces([face], "Yao")
    with ThreadPoolExecutor(1) as pool, psycopg.connect(database_url) as reader:
        reader.execute("SELECT count(*) FROM faces").fetchone()  # holds them until it ends
        erased = pool.submit(pf.people.erase, "Yao").result(timeout=60)
    assert erased.faces == 1 and erased.scrub_seconds is None
    assert erased.scrub_failed is not None and "another session holds the tables" in (
        erased.scrub_failed), erased.scrub_failed
    assert pf.people.scrub() >= 0  # the reader gone, the rewrite is done
