"""One engine for nearest faces (pgface.engine, batch_knn, neighbours): the batch k-NN against
an exact scan, clustering and identify through the search index against exact search, the
chaining check, and the HNSW index kept only while it can be used (off during a bulk load).
Real PostgreSQL."""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psycopg
import pytest
from conftest import LFW, require_data
from fastapi.testclient import TestClient
from pgvector.psycopg import register_vector

import pgface
from pgface import Pgface, engine, vector_index
from pgface.api import create_app
from pgface.batch_knn import approximate_many, exact_knn, exact_rerank
from pgface.clustering import run_clustering
from pgface.db import sql, store
from pgface.index import REBUILDING, IndexReport
from pgface.library import build_analyzer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos
from pgface.neighbours import CLUSTER_CANDIDATES
from pgface.vector_index import SignIndex, quantize, sign_bits

MODEL = "buffalo_sc"


def people_like(rng: np.random.Generator, people: int, each: int, spread: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of `people` identities, `each` faces each: cosine within a person about
    1 / (1 + spread^2), between people about 0."""
    centres = rng.standard_normal((people, 512)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((people * each, 512)).astype(np.float32) * spread / np.sqrt(512)
    faces = np.repeat(centres, each, axis=0) + noise
    return faces / np.linalg.norm(faces, axis=1, keepdims=True), np.repeat(np.arange(people), each)


def add_photos(conn: psycopg.Connection, vectors: np.ndarray) -> list[int]:
    """One photo a face; returns the face ids in order."""
    rows = []
    for v in vectors:
        sha = hashlib.sha256(v.tobytes()).digest()
        rows.append(store.PhotoRow(sha, f"/photos/{sha.hex()}.jpg", 1, 10, 10, None,
                                   [store.FaceRow(v, [0, 0, 10, 10], [1.0] * 10, 0.9, b"jpeg")]))
    store.add_photos(conn, rows, MODEL)
    ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id DESC LIMIT %s",
                                      [len(vectors)])][::-1]
    conn.commit()
    return ids


def same(found: list, exact: list) -> bool:
    return all(np.array_equal(a[0], b[0]) and np.allclose(a[1], b[1], atol=1e-5)
               for a, b in zip(found, exact, strict=True))


def test_batch_knn_equals_exact_knn_on_random_data() -> None:
    rng = np.random.default_rng(4)

    def data(people: int, queries: int) -> tuple:
        vectors, _ = people_like(rng, people, 5, 1.2)  # same person ~0.4
        ids = np.arange(len(vectors), dtype=np.int64) * 7 + 3
        return (ids, vectors, sign_bits(vectors), *quantize(vectors),
                vectors[rng.choice(len(vectors), queries, replace=False)])

    def rows_of(wanted: np.ndarray) -> np.ndarray:
        return vectors[(wanted - 3) // 7]

    # every face a candidate: the int8 and exact steps alone, at any threshold
    ids, vectors, codes, int8, scales, queries = data(300, 100)
    for k, floor in ((10, -1.0), (50, 0.1)):
        found = exact_rerank(approximate_many(ids, codes, int8, scales, queries, k, floor,
                                              len(ids)), queries, rows_of, k, floor)
        assert same(found, exact_knn(ids, vectors, queries, k, floor))
    # clustering's candidates and threshold: the sign bits keep every neighbour
    ids, vectors, codes, int8, scales, queries = data(2000, 300)
    exact = exact_knn(ids, vectors, queries, 64, 0.40)
    assert sum(len(e[0]) for e in exact) > 300  # the neighbours are there to be missed
    found = exact_rerank(approximate_many(ids, codes, int8, scales, queries, 64, 0.40,
                                          CLUSTER_CANDIDATES), queries, rows_of, 64, 0.40)
    assert same(found, exact)


def test_the_index_batch_knn_against_postgresql(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(5)
    vectors, _ = people_like(rng, 300, 4, 1.0)
    ids = np.array(add_photos(conn, vectors))
    conn.execute("DELETE FROM faces WHERE id = ANY(%s)", [ids[::10].tolist()])
    conn.commit()
    index = SignIndex(MODEL)
    index.sync(conn)
    alive = np.setdiff1d(ids, ids[::10])
    queries = vectors[:50]
    candidates = index.approximate_many(queries, 8, 0.3, 200)
    found = exact_rerank(candidates, queries, lambda w: vectors[np.searchsorted(ids, w)], 8, 0.3)
    assert same(found, exact_knn(alive, vectors[np.isin(ids, alive)], queries, 8, 0.3))
    among = alive[::2]  # a subset of the library (such as the faces people hold)
    found = exact_rerank(index.approximate_many(queries, 8, 0.3, 200, among=among), queries,
                         lambda w: vectors[np.searchsorted(ids, w)], 8, 0.3)
    exact = exact_knn(among, vectors[np.isin(ids, among)], queries, 8, 0.3)
    assert same(found, exact) and all(np.isin(e[0], among).all() for e in exact)


def test_a_large_first_load_of_the_index_is_said_before_it_starts(
        conn: psycopg.Connection, caplog: pytest.LogCaptureFixture) -> None:
    """Probe scale57: the first search of 300,000 faces with no snapshot waited 15-18 s in
    silence. A first load of load_said_from ids or more is said (the CLI shows pgface's
    warnings as notices), once: the syncs after it load only what is new."""
    rng = np.random.default_rng(6)
    vectors, _ = people_like(rng, 60, 3, 1.0)
    add_photos(conn, vectors)
    conn.commit()
    quiet = SignIndex(MODEL)  # below the size said
    with caplog.at_level(logging.WARNING, logger="pgface"):
        quiet.sync(conn)
    assert len(quiet) == 180 and not caplog.records
    index = SignIndex(MODEL)
    index.load_said_from = 150
    with caplog.at_level(logging.WARNING, logger="pgface"):
        index.sync(conn)
        add_photos(conn, people_like(rng, 5, 1, 1.0)[0])
        conn.commit()
        index.sync(conn)
        index.sync(conn)  # (the new ids are settled, and loaded, by a second look)
    said = [r.getMessage() for r in caplog.records]
    assert len(index) == 185 and len(said) == 1, said
    assert re.fullmatch(rf"loading the search index of {MODEL} from PostgreSQL: up to \d+ faces, "
                        r"a while at this size", said[0]), said


def partition(conn: psycopg.Connection) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for face, person in conn.execute("SELECT id, person_id FROM faces WHERE person_id IS NOT "
                                     "NULL"):
        groups.setdefault(person, set()).add(face)
    return {frozenset(g) for g in groups.values()}


def full_clustering_rolled_back(conn: psycopg.Connection, index: SignIndex | None
                                ) -> tuple[str, set[frozenset[int]]]:
    """A full clustering (0.40, one neighbour, the 0.23 check) through the index when given,
    else the exact bulk path, rolled back: the mode it took and the people it made."""
    with conn.transaction(force_rollback=True):
        report = run_clustering(conn, MODEL, 0.40, 1, full=True, index=index,
                                bulk=None if index else True, mean_similarity=0.23)
        return report.mode, partition(conn)


def clusterings_through_join_and_bulk(conn: psycopg.Connection
                                      ) -> tuple[set[frozenset[int]], set[frozenset[int]]]:
    """The people of a full clustering through the join (a synced index: the library at
    scale) and through the exact bulk path, each rolled back, each checked to take its path."""
    index = SignIndex(MODEL)
    index.sync(conn)
    found = {}
    for mode, source in (("join", index), ("bulk", None)):
        took, found[mode] = full_clustering_rolled_back(conn, source)
        assert took == mode
    return found["join"], found["bulk"]


def test_chaining_check_keeps_near_but_distinct_people_apart(conn: psycopg.Connection) -> None:
    """Two people, and a few faces between them (in look, age or light) that link each to the
    next: one close pair at a time would make them one person; as wholes they are not."""
    rng = np.random.default_rng(6)
    a, b = people_like(rng, 2, 1, 0.0)[0]
    b = b - (a @ b) * a
    b /= np.linalg.norm(b)  # two people, cosine 0

    def around(centre: np.ndarray, n: int) -> np.ndarray:
        faces = centre + rng.standard_normal((n, 512)).astype(np.float32) / np.sqrt(512)
        return faces / np.linalg.norm(faces, axis=1, keepdims=True)

    between = [around(((1 - t) * a + t * b) / np.linalg.norm((1 - t) * a + t * b), 1)[0]
               for t in (0.3, 0.5, 0.7)]
    first, second = add_photos(conn, around(a, 8)), add_photos(conn, around(b, 8))
    add_photos(conn, np.array(between))
    found = {}
    for check in (None, 0.23):
        with conn.transaction(force_rollback=True):
            run_clustering(conn, MODEL, 0.40, 1, full=True, bulk=True, mean_similarity=check)
            found[check] = partition(conn)
    assert any(set(first) | set(second) <= g for g in found[None])  # chained into one
    people = found[0.23]
    assert any(set(first) <= g for g in people) and any(set(second) <= g for g in people)
    assert not any(g & set(first) and g & set(second) for g in people)


def has_hnsw_index(url: str) -> bool:
    with psycopg.connect(url) as other:  # a connection of its own: asked while a run goes on
        return other.execute(sql.HNSW_EXISTS).fetchone()[0]


def test_hnsw_dropped_and_built_as_the_library_crosses_the_threshold(
        conn: psycopg.Connection, database_url: str) -> None:
    rng = np.random.default_rng(7)
    vectors, _ = people_like(rng, 15, 4, 1.0)
    ids = add_photos(conn, vectors)  # 60 faces

    def nearest() -> list:
        return [[r.face_id for r in store.nearest_faces(conn, v, MODEL, 5, 0.2, 40)]
                for v in vectors[:20]]

    before = nearest()
    assert has_hnsw_index(database_url)
    assert engine.keep_hnsw_in_step(conn, 50) == "dropped" and not has_hnsw_index(database_url)
    assert engine.keep_hnsw_in_step(conn, 50) is None
    assert nearest() == before  # pgvector's exact scan answers as the index did
    conn.execute("DELETE FROM faces WHERE id = ANY(%s)", [ids[:30]])  # 30 left: in the gap
    conn.commit()
    assert engine.keep_hnsw_in_step(conn, 50) is None and not has_hnsw_index(database_url)
    conn.execute("DELETE FROM faces WHERE id = ANY(%s)", [ids[30:40]])  # 20: below half
    conn.commit()
    assert engine.keep_hnsw_in_step(conn, 50) == "built" and has_hnsw_index(database_url)


def lfw_subset(photos: int) -> list:
    """The photos of LFW View 1 people with at least three, in name order, up to `photos`."""
    chosen = []
    for person in sorted(require_data(LFW / "images").iterdir()):
        files = sorted(person.glob("*.jpg"))
        if len(files) >= 3:
            chosen += files
        if len(chosen) >= photos:
            break
    return chosen[:photos]


def test_bulk_load_is_judged_by_the_photos_against_the_library(
        conn: psycopg.Connection, database_url: str) -> None:
    add_photos(conn, people_like(np.random.default_rng(3), 15, 4, 1.0)[0])  # 60 faces
    assert not engine.hnsw_off_for_bulk(conn, 9, min_photos=10)  # too few photos to bother
    assert not engine.hnsw_off_for_bulk(conn, 29, min_photos=10)  # under half the faces
    assert not engine.hnsw_off_for_bulk(conn, 500, min_faces=50, min_photos=10)  # at scale
    assert has_hnsw_index(database_url)
    assert engine.hnsw_off_for_bulk(conn, 30, min_photos=10)
    assert not has_hnsw_index(database_url)
    assert engine.hnsw_off_for_bulk(conn, 30, min_photos=10)  # still a bulk load, left off
    assert engine.keep_hnsw_in_step(conn) == "built" and has_hnsw_index(database_url)


def test_a_bulk_run_indexes_without_the_hnsw_index_and_builds_it_at_the_end(
        pf: Pgface, database_url: str, tmp_path: Path) -> None:
    photos = lfw_subset(engine.BULK_MIN_PHOTOS + 6)
    during: list[bool] = []
    stages: list[tuple[str | None, int]] = []

    def progress(report: IndexReport, failure: object) -> None:
        during.append(has_hnsw_index(database_url))
        stages.append((report.stage, report.indexed))

    report = pf.index(photos, progress=progress)
    assert report.indexed == len(photos) and report.faces >= len(photos) - 2
    assert during and not any(during) and has_hnsw_index(database_url)
    # The progress said, once every photo was stored, that the index was being built.
    assert stages[-1] == (REBUILDING, len(photos))
    assert all(stage is None for stage, _ in stages[:-1]) and report.stage is None
    # the same photos again: nothing to add, so no bulk load (and no rebuilding)
    during.clear()
    stages.clear()
    assert pf.index(photos, progress=progress).skipped == len(photos)
    assert during and all(during) and all(stage is None for stage, _ in stages)
    # the same photos at other paths, their size and time kept (a folder renamed, the library
    # moved to another disk): nothing to analyse either, so no bulk load. Judged by the paths,
    # the run dropped the index and built it again, and a library of 10,000 to 20,000 faces
    # (vector_index.MIN_FACES) lost it for good.
    moved = tmp_path / "renamed"
    moved.mkdir()
    for n, photo in enumerate(photos):
        shutil.copy2(photo, moved / f"{n}-{photo.name}")
    during.clear()
    stages.clear()
    fresh = build_analyzer(pf.settings)  # a new process's: nothing to analyse, nothing loaded
    with Pgface(pf.settings, analyzer=fresh) as library:
        assert library.index([moved], progress=progress).skipped == len(photos)
    assert during and all(during) and all(stage is None for stage, _ in stages)
    assert fresh._detector is None and fresh._recognizer is None  # 85 MB loaded for no face


def test_a_bulk_run_whose_index_cannot_be_built_again_says_its_photos_are_stored(
        pf: Pgface, database_url: str) -> None:
    """Probe ops61: a disk that filled as a bulk run built the search index again, every
    photo stored, said only the database's disk error, as if storing had failed, and the
    next run said "0 photos indexed". The server refuses the building here as a full disk
    does (SQLSTATE 53100, raised by an event trigger on CREATE INDEX)."""
    photos = lfw_subset(engine.BULK_MIN_PHOTOS + 2)

    def progress(report: IndexReport, failure: object) -> None:
        if report.stage == REBUILDING:
            with psycopg.connect(database_url, autocommit=True) as admin:
                admin.execute(
                    "CREATE FUNCTION public.disk_full() RETURNS event_trigger LANGUAGE plpgsql "
                    "AS $$ BEGIN RAISE EXCEPTION 'could not extend file: No space left on "
                    "device' USING ERRCODE = 'disk_full'; END $$")
                admin.execute("CREATE EVENT TRIGGER disk_full ON ddl_command_start WHEN TAG "
                              "IN ('CREATE INDEX') EXECUTE FUNCTION public.disk_full()")

    with pytest.raises(pgface.DatabaseError) as failed:
        pf.index(photos, progress=progress)
    said = str(failed.value)
    assert said.startswith(f"every photo of this run is stored ({len(photos)} photos "
                           f"indexed, "), said
    assert "building the search index again failed: the database's disk is full" in said
    assert said.endswith("which the next `pgface index` (of any folder) does"), said
    assert not has_hnsw_index(database_url)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("DROP EVENT TRIGGER disk_full")
    assert pf.index(photos).skipped == len(photos)
    assert has_hnsw_index(database_url)  # the next run built it


def test_the_share_of_a_run_already_analysed_is_read_from_the_paths(
        pf: Pgface, tmp_path: Path) -> None:
    photos = sample_photos()
    pf.index(photos)
    others = [tmp_path / f"new-{n}.jpg" for n in range(len(photos))]  # never indexed
    with pf.pool.connection() as conn:
        assert store.analysed_share(conn, photos + others, MODEL) == 0.5
        assert store.analysed_share(conn, photos + others, "another-pack") == 0.0
        alternating = [photos[0], others[0]] * 50  # known, new, known, new, ...
        assert store.analysed_share(conn, alternating, MODEL, sample=100) == 0.5
        # a sample is spread over the run (every other file here), not its first files
        assert store.analysed_share(conn, alternating, MODEL, sample=50) == 1.0


def test_a_bulk_run_that_fails_builds_the_hnsw_index_again(
        pf: Pgface, database_url: str) -> None:
    class Cancelled(Exception):
        pass

    def cancel(report: object, failure: object) -> None:
        raise Cancelled  # as a cancelled HTTP job's progress does, after the first batch

    with pytest.raises(Cancelled):
        pf.index(lfw_subset(engine.BULK_MIN_PHOTOS + 6), progress=cancel)
    assert has_hnsw_index(database_url)
    with psycopg.connect(database_url) as other:
        assert other.execute("SELECT count(*) FROM photos").fetchone()[0] == \
            pf.settings.photo_batch  # the first batch stored, whole


def test_an_hnsw_index_built_by_another_run_at_the_same_moment_is_built(
        pf: Pgface, database_url: str) -> None:
    """Probe cron38: two overlapping index runs of one folder each built the HNSW index as
    they ended; IF NOT EXISTS does not see an index another transaction is making, and the
    second one failed ("duplicate key value violates unique constraint
    pg_class_relname_nsp_index"), exit 1 and no report, of an index the first had built."""
    pf.index([p for p in sample_photos() if p.name == "yaoming.jpg"])
    with psycopg.connect(database_url) as conn:
        conn.execute(sql.DROP_HNSW)
        conn.commit()
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second, \
            ThreadPoolExecutor(1) as pool:
        first.execute(sql.CREATE_HNSW)  # made, not committed yet
        built = pool.submit(engine._change_hnsw, second, sql.CREATE_HNSW, "built")
        time.sleep(0.5)  # the second waits for the first's
        first.commit()
        assert built.result(timeout=60) is True
    assert has_hnsw_index(database_url)


def test_a_server_builds_the_hnsw_index_a_killed_bulk_run_left_off(
        pf: Pgface, database_url: str, analyzer: FaceAnalyzer) -> None:
    # A bulk run killed outright (SIGKILL: no `finally`) leaves the library without its HNSW
    # index; a server that only searches scanned exactly from then on, and nothing said so.
    pf.index(sample_photos())
    with pf.pool.connection() as conn:
        conn.execute(sql.DROP_HNSW)  # where the killed run left it
    assert not has_hnsw_index(database_url)
    with TestClient(create_app(pf.settings, analyzer)) as client:
        deadline = time.monotonic() + 120
        while not has_hnsw_index(database_url):
            assert time.monotonic() < deadline, "the server did not build the HNSW index"
            time.sleep(0.2)
        assert client.get("/api/health").status_code == 200  # served meanwhile, and after


def test_clustering_and_identify_same_through_the_index_as_exact(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = lfw_subset(90)
    pf.index(photos)
    with pf.pool.connection() as conn:
        engine.keep_hnsw_in_step(conn, 1)  # pgvector answers by exact scan from here
        joined, bulk = clusterings_through_join_and_bulk(conn)
        assert joined == bulk and len(joined) >= 15
    report = pf.people.cluster(full=True)
    assert report.mode == "bulk"
    # identify each photo's faces: through pgvector (exact, no HNSW), then through the index
    exact = [pf.people.identify(p) for p in photos[::6]]
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    with Pgface(pf.settings, analyzer=pf.analyzer) as other:  # a pool of its own: the index
        through_index = [other.people.identify(p) for p in photos[::6]]
        assert vector_index.shared_index(other.pool, MODEL) is not None
        assert other.people.cluster().mode == "index"
    answers = [[(f.person_id, f.similarity, [c.person_id for c in f.candidates])
                for f in r.faces] for r in exact]
    assert answers == [[(f.person_id, f.similarity, [c.person_id for c in f.candidates])
                        for f in r.faces] for r in through_index]
    assert sum(f.person_id is not None for r in exact for f in r.faces) >= 12


def test_a_photo_another_stored_and_a_third_deleted_meanwhile_is_stored_again(
        database_url: str) -> None:
    """Probe hostile62: uploads of one new photo racing a delete of it answered 500 now and
    then: a store found the row another store had just committed (its insert did nothing),
    read its id, and the delete committed before the store recorded its path there (a
    foreign key violation on photo_paths). The store keeps the row it found from a delete
    until it commits; one deleted before it looked is stored again, as new. A trigger that
    sleeps in the store, between the two, makes the window wide enough to hit each time."""
    model, vector = "trial", np.ones(512, dtype=np.float32) / np.sqrt(512)

    def row(path: str) -> store.PhotoRow:
        face = store.FaceRow(vector, [0, 0, 10, 10], [1.0] * 10, 0.9, b"jpeg")
        return store.PhotoRow(hashlib.sha256(b"raced").digest(), path, 1, 10, 10, None, [face])

    with psycopg.connect(database_url, autocommit=True) as admin:
        register_vector(admin)
        store.add_photos(admin, [row("/photos/first.jpg")], model)  # another upload's, done
        admin.execute("CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                      "PERFORM pg_sleep(1.5); RETURN NEW; END $$")
        admin.execute("CREATE TRIGGER slow BEFORE INSERT ON photo_analyses FOR EACH ROW "
                      "EXECUTE FUNCTION slow()")
    with psycopg.connect(database_url) as storing, \
            psycopg.connect(database_url, autocommit=True) as deleting:
        register_vector(storing)

        def delete_meanwhile() -> float:
            time.sleep(0.5)  # the store has read the photo's id, and sleeps in the trigger
            started = time.monotonic()
            deleting.execute("DELETE FROM photos WHERE sha256 = %s", [row("").sha256])
            return time.monotonic() - started

        with ThreadPoolExecutor(1) as pool:
            waited = pool.submit(delete_meanwhile)
            store.add_photos(storing, [row("/photos/second.jpg")], model)
            storing.commit()
            assert waited.result() > 0.5  # the delete waited for the store to commit
    with psycopg.connect(database_url) as conn:  # deleted after the store: nothing left over
        assert conn.execute("SELECT count(*) FROM photos").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM photo_paths").fetchone()[0] == 0
