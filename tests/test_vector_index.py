"""The sign-bit index against real PostgreSQL: same answers as an exact scan, kept in step."""

from __future__ import annotations

import hashlib

import numpy as np
import psycopg
import pytest
from conftest import PHOTOS, require_data
from pgvector.psycopg import register_vector

from pgface import Pgface, vector_index
from pgface.db import store
from pgface.db.connection import migrate
from pgface.vector_index import SignIndex, hamming, nearest_by_hamming, sign_bits

MODEL = "buffalo_sc"


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 512)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_faces(conn: psycopg.Connection, vectors: np.ndarray, model: str = MODEL,
              commit: bool = True) -> list[int]:
    """One photo holding the given faces; returns the new face ids."""
    sha = hashlib.sha256(vectors.tobytes() + model.encode()).digest()
    faces = [store.FaceRow(v, [0, 0, 10, 10], [1.0] * 10, 0.9, b"jpeg") for v in vectors]
    photo_id = store.add_photos(conn, [store.PhotoRow(sha, "x.jpg", 1, 10, 10, None, faces)],
                                model)[sha]
    ids = [r[0] for r in conn.execute("SELECT id FROM faces WHERE photo_id = %s ORDER BY id",
                                      [photo_id])]
    if commit:
        conn.commit()
    return ids


@pytest.fixture
def conn(database_url: str) -> psycopg.Connection:
    migrate(database_url)
    with psycopg.connect(database_url) as c:
        register_vector(c)
        yield c


def connect(url: str) -> psycopg.Connection:
    c = psycopg.connect(url)
    register_vector(c)
    return c


@pytest.mark.parametrize("n", [1000, 300_000])  # one thread; the threads share the scan
def test_hamming_and_selection(n: int) -> None:
    rng = np.random.default_rng(1)
    v = rng.standard_normal((n, 512), dtype=np.float32)
    bits = sign_bits(v)
    expected = (np.unpackbits(bits.view(np.uint8), axis=1)
                != np.unpackbits(bits[7:8].view(np.uint8), axis=1)).sum(axis=1)
    distances = hamming(np.ascontiguousarray(bits.T), bits[7])
    assert (distances == expected).all() and distances[7] == 0
    chosen = nearest_by_hamming(distances, 50)
    assert len(chosen) >= 50 and distances[chosen].max() <= np.sort(distances)[49]


def test_bits_equal_binary_quantize(conn: psycopg.Connection) -> None:
    vectors = unit(np.random.default_rng(2), 40)
    ids = add_faces(conn, vectors)
    index = SignIndex(MODEL)
    assert index.sync(conn) == 40
    order = np.argsort(index._ids[: len(index)])
    assert index._ids[order].tolist() == ids
    assert (index._bits[:, : len(index)].T[order] == sign_bits(vectors)).all()


def test_same_answers_as_an_exact_scan(pf: Pgface) -> None:
    require_data(PHOTOS / "people")
    pf.index([PHOTOS / "people"])
    with pf.pool.connection() as c:
        rows = c.execute("SELECT embedding FROM faces WHERE model = %s", [MODEL]).fetchall()
        queries = [np.asarray(r[0].to_numpy(), dtype=np.float32) for r in rows]
        assert 10 < len(queries) <= vector_index.DEFAULT_CANDIDATES
        index = SignIndex(MODEL)
        c.execute("SET enable_indexscan = off")  # the exact scan, not HNSW
        c.commit()
        for query in queries:  # default candidates cover a small set: exactly the exact scan
            found = index.search(c, query, 10, pf.threshold)
            exact = store.nearest_faces(c, query, MODEL, 10, pf.threshold, ef_search=40)
            assert [(m.face_id, round(m.similarity, 4)) for m in found] == \
                [(m.face_id, round(m.similarity, 4)) for m in exact]
            assert all(m.similarity >= pf.threshold for m in found)


def test_sync_sees_faces_added_by_another_connection(conn: psycopg.Connection,
                                                     database_url: str) -> None:
    rng = np.random.default_rng(3)
    add_faces(conn, unit(rng, 5))
    index = SignIndex(MODEL)
    index.sync(conn)
    newcomer = unit(rng, 1)
    with connect(database_url) as other:
        (new_id,) = add_faces(other, newcomer)
    found = index.search(conn, newcomer[0], 1, 0.99)
    assert [m.face_id for m in found] == [new_id] and len(index) == 6


def test_faces_of_a_late_commit_are_not_missed(conn: psycopg.Connection,
                                               database_url: str) -> None:
    rng = np.random.default_rng(4)
    index = SignIndex(MODEL)
    index.sync(conn)
    with connect(database_url) as slow, connect(database_url) as fast:
        slow_ids = add_faces(slow, unit(rng, 3), commit=False)  # takes the lower ids ...
        fast_ids = add_faces(fast, unit(rng, 3))  # ... but this one commits first
        assert max(slow_ids) < min(fast_ids)
        index.sync(conn)
        assert len(index) == 3
        slow.commit()
    index.sync(conn)
    assert sorted(index._ids[: len(index)].tolist()) == sorted(slow_ids + fast_ids)
    index.sync(conn)  # and nothing twice once the watermark passes them
    assert len(index) == 6


def test_deleted_faces_never_come_back(conn: psycopg.Connection, database_url: str) -> None:
    rng = np.random.default_rng(5)
    vectors = unit(rng, 20)
    ids = add_faces(conn, vectors)
    index = SignIndex(MODEL)
    index.sync(conn)
    with connect(database_url) as other:
        store.delete_face(other, ids[0])
        other.commit()
    for _ in range(2):
        found = index.search(conn, vectors[0], 5, -1.0)
        assert ids[0] not in {m.face_id for m in found} and len(found) == 5
    assert len(index) == 19  # the re-rank noticed and the next sync forgot it


def test_another_models_faces_never_appear(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(6)
    mine, theirs = unit(rng, 4), unit(rng, 4)
    my_ids = add_faces(conn, mine)
    add_faces(conn, theirs, model="other_pack")
    index = SignIndex(MODEL)
    index.sync(conn)
    assert len(index) == 4
    found = index.search(conn, theirs[0], 10, -1.0)
    assert {m.face_id for m in found} == set(my_ids)


def test_pgface_search_through_the_index(pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    require_data(PHOTOS / "people")
    pf.index([PHOTOS / "people"])
    query = PHOTOS / "queries" / "obama_and_biden.jpg"
    plain = pf.search(query)  # few faces: PostgreSQL alone
    assert vector_index.shared_index(pf.pool, MODEL) is None
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    monkeypatch.setattr(vector_index, "_RECHECK_S", 0.0)
    indexed = pf.search(query)
    assert isinstance(vector_index.shared_index(pf.pool, MODEL), SignIndex)
    assert indexed.to_dict() == plain.to_dict()
