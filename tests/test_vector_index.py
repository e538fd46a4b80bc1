"""The sign-bit index against real PostgreSQL: same answers as an exact scan, kept in step."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from conftest import PHOTOS
from pgvector.psycopg import register_vector

from pgface import Pgface, batch_knn, engine, vector_index
from pgface.db import people_store as ps
from pgface.db import store
from pgface.models.analysis import Face
from pgface.models.quality import FaceQuality
from pgface.search import search_faces
from pgface.vector_index import SignIndex, nearest_codes, quantize, sign_bits

MODEL = "buffalo_sc"


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 512)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def add_faces(conn: psycopg.Connection, vectors: np.ndarray, model: str = MODEL,
              commit: bool = True) -> list[int]:
    """One photo holding the given faces; returns the new face ids."""
    sha = hashlib.sha256(vectors.tobytes() + model.encode()).digest()
    faces = [store.FaceRow(v, [0, 0, 10, 10], [1.0] * 10, 0.9, b"jpeg") for v in vectors]
    # A path of its own: two open transactions storing one path would wait on each other.
    row = store.PhotoRow(sha, f"/photos/{sha.hex()}.jpg", 1, 10, 10, None, faces)
    photo_id = store.add_photos(conn, [row], model)[sha]
    ids = [r[0] for r in conn.execute("SELECT id FROM faces WHERE photo_id = %s ORDER BY id",
                                      [photo_id])]
    if commit:
        conn.commit()
    return ids


def connect(url: str) -> psycopg.Connection:
    c = psycopg.connect(url)
    register_vector(c)
    return c


@pytest.mark.parametrize("n", [1000, 300_000])  # one thread; the threads share the scan
def test_nearest_codes_are_the_nearest_by_hamming(n: int) -> None:
    rng = np.random.default_rng(1)
    codes = sign_bits(rng.standard_normal((n, 512), dtype=np.float32))
    assert codes.shape == (n, 64) and codes.dtype == np.uint8
    distances = (np.unpackbits(codes, axis=1) != np.unpackbits(codes[7:8], axis=1)).sum(axis=1)
    chosen = nearest_codes(codes, codes[7], 50)
    assert len(chosen) == len(set(chosen.tolist())) >= 50 and 7 in chosen
    # none nearer was left out, and those tied with the 50th nearest all came
    assert sorted(chosen.tolist()) == np.flatnonzero(distances <= np.sort(distances)[49]).tolist()
    assert (np.sort(nearest_codes(codes[:40], codes[7], 50)) == np.arange(40)).all()


def test_a_forked_child_scans_as_its_parent_did() -> None:
    """Probe pyapi20: the threads that share a large scan were a module's pool, made once; a
    child forked after its parent scanned (Celery's prefork pool, gunicorn --preload, the
    pattern docs/django.md gives) had the pool without its threads, and its first search of a
    library of 250,000 faces or more waited for ever."""
    import os
    import time

    rng = np.random.default_rng(2)
    codes = sign_bits(rng.standard_normal((300_000, 512), dtype=np.float32))
    expected = np.sort(nearest_codes(codes, codes[7], 50))  # the parent's pool has its threads
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit status is the assertion
        same = False
        try:
            same = bool((np.sort(nearest_codes(codes, codes[7], 50)) == expected).all())
        finally:  # whatever happened: the child never goes on as the test process
            os._exit(0 if same else 1)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(child, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(child, 9)
        os.waitpid(child, 0)
        pytest.fail("the forked child's scan never ended")
    assert os.waitstatus_to_exitcode(done[1]) == 0


def faces_tied_at_the_cut(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
    """A query, and faces whose 300th nearest by sign bits has 299 faces tied with it: 250
    at Hamming distance 40 (cosine about 0.5), 300 at 60, 20 of them the query's own face
    (the 60 flipped signs among its smallest values: cosine about 0.98), and 20,000 strangers.
    Returns the query, the faces and the ids of the 20 own faces among ids 1..n in order."""
    query = unit(rng, 1)[0]
    smallest = np.argsort(np.abs(query))[:120]

    def flipped(base: np.ndarray, where: np.ndarray) -> np.ndarray:
        v = base.copy()
        v[where] *= -1
        return v

    def like_query(flips: int) -> np.ndarray:  # the query's signs, other magnitudes
        return flipped(np.sign(query) * np.abs(rng.standard_normal(512)),
                       rng.choice(512, flips, replace=False))

    near = [like_query(40) for _ in range(250)]
    own = [flipped(query, rng.choice(smallest, 60, replace=False)) for _ in range(20)]
    tied = [like_query(60) for _ in range(280)]
    faces = np.vstack([near, own, tied, unit(rng, 20_000)]).astype(np.float32)
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)
    return query, faces, list(range(251, 271))


def in_three_orders(faces: np.ndarray, ids: np.ndarray, rng: np.random.Generator
                    ) -> Iterator[tuple[str, SignIndex, np.ndarray, np.ndarray]]:
    """(name, index, its codes, its ids) of the same faces three ways: as stored, reversed,
    and shuffled with 40 deleted faces (copies of the first 40, ids after the others')
    still in the arrays until the next sync, as a running server holds them."""
    n = len(faces)
    gone = np.arange(n + 1, n + 41, dtype=np.int64)
    orders = {"as stored": (np.arange(n), False),
              "reversed": (np.arange(n)[::-1], False),
              "shuffled, deleted faces pending": (rng.permutation(n + 40), True)}
    for name, (order, pending) in orders.items():
        every = np.vstack([faces, faces[:40]]) if pending else faces
        row_ids = (np.concatenate([ids, gone]) if pending else ids)[order]
        int8, scales = quantize(every[order])
        codes = sign_bits(every[order])
        index = SignIndex.restored(MODEL, {"ids": row_ids, "codes": codes, "int8": int8,
                                           "scales": scales}, n, "0/0")
        if pending:
            index._dead.update(gone.tolist())
        yield name, index, codes, row_ids


def test_faces_tied_at_the_cut_do_not_depend_on_the_rows_order() -> None:
    """Probe scale49: Hamming distances are integers, and which of the faces tied at the
    distance of the 300th candidate were kept depended on the rows' order (a running server
    appends and compacts, a new process loads a snapshot in another order), the threads and
    the deleted faces pending: the same query found a true match in a new process that the
    running server did not. Every face tied at the cut is a candidate now: the same ones, and
    the same best faces, in every order, with deleted rows pending or not."""
    rng = np.random.default_rng(49)
    query, faces, own = faces_tied_at_the_cut(rng)
    n = len(faces)
    ids = np.arange(1, n + 1, dtype=np.int64)
    distances = np.bitwise_count(sign_bits(faces) ^ sign_bits(query)).sum(axis=1)
    assert np.sort(distances)[[249, 250, 299, 549]].tolist() == [40, 60, 60, 60]
    assert np.sort(distances)[550] > 60
    found, best = {}, {}
    for name, index, _, _ in in_three_orders(faces, ids, rng):
        found[name] = sorted(index.candidates(query).tolist())
        best[name] = sorted(index.approximate(query, 10, 0.8).tolist())
    assert found["as stored"] == sorted(ids[distances <= 60].tolist())  # 550: all tied
    assert found["reversed"] == found["as stored"]
    assert found["shuffled, deleted faces pending"] == found["as stored"]
    assert best["as stored"] == best["reversed"] == best["shuffled, deleted faces pending"] == own


def test_the_batch_knn_does_not_depend_on_the_rows_order() -> None:
    """The batch path (approximate_many: people identify, clustering, enrolment, suggestions)
    kept exactly `count` candidates a query, ties at the cut broken by the rows' order, and
    counted the deleted faces pending among them: identify and clustering could differ
    between a running server and a new process. Its candidates follow nearest_codes' rule
    now: the same, and the same best faces, in every order, with deleted rows pending or not."""
    rng = np.random.default_rng(49)
    query, faces, own = faces_tied_at_the_cut(rng)
    n = len(faces)
    ids = np.arange(1, n + 1, dtype=np.int64)
    queries = np.vstack([query, faces[0], faces[300], faces[260], unit(rng, 1)])
    gone = np.arange(n + 1, n + 41, dtype=np.int64)  # in_three_orders' deleted faces
    best, wide = {}, {}
    for name, index, codes, row_ids in in_three_orders(faces, ids, rng):
        best[name] = [i.tolist() for i, _ in index.approximate_many(queries, 10, 0.8)]
        # identify's call: the 310 best of every candidate, whatever their cosine
        wide[name] = [i.tolist() for i, _ in index.approximate_many(queries, 300, -1.0, 300)]
        # the candidates are nearest_codes' for each query
        found = batch_knn.hamming_knn(codes, sign_bits(queries), 300, row_ids, gone)
        for q, at in zip(queries, found, strict=True):
            alone = nearest_codes(codes, sign_bits(q)[0], 300, row_ids, gone)
            assert sorted(row_ids[at].tolist()) == sorted(row_ids[alone].tolist())
    assert sorted(best["as stored"][0]) == own  # all 20 own faces, best first
    assert best["reversed"] == best["as stored"]
    assert best["shuffled, deleted faces pending"] == best["as stored"]
    assert wide["reversed"] == wide["as stored"]
    assert wide["shuffled, deleted faces pending"] == wide["as stored"]


def test_copies_of_a_face_are_cut_by_id_whatever_their_rows() -> None:
    """40 copies of a face (a photo imported twice, and again): the k + EXTRA best by int8
    cosine are the copies of smallest id, in any order of the rows, one query or many (the
    batch kept those that came first from the Hamming scan)."""
    rng = np.random.default_rng(40)
    face = unit(rng, 1)
    faces = np.vstack([unit(rng, 5000), face.repeat(40, axis=0)])
    ids = np.arange(1, len(faces) + 1, dtype=np.int64)
    query = face[0] + 0.02 * unit(rng, 1)[0]
    answers = set()
    for seed in range(6):
        order = np.random.default_rng(seed).permutation(len(faces))
        int8, scales = quantize(faces[order])
        index = SignIndex.restored(MODEL, {"ids": ids[order], "codes": sign_bits(faces[order]),
                                           "int8": int8, "scales": scales}, len(faces), "0/0")
        answers.add(tuple(index.approximate(query, 5, 0.5).tolist()))
        answers.add(tuple(index.approximate_many(query[None], 5, 0.5)[0][0].tolist()))
    assert answers == {tuple(range(5001, 5016))}


@pytest.mark.parametrize("n", [20_000, 300_000])  # one thread; the threads share the scan
def test_every_face_tied_at_the_cut_and_no_deleted_one(n: int) -> None:
    """nearest_codes: the rows at a distance <= the count-th smallest among the live ones,
    the same in any order and with any deleted rows among them."""
    rng = np.random.default_rng(n)
    codes = rng.integers(0, 256, (n, 64), dtype=np.uint8)
    ids = rng.permutation(n).astype(np.int64) + 1
    query = codes[3].copy()
    distances = np.bitwise_count(codes ^ query).sum(axis=1)
    cut = np.sort(distances)[299]
    expected = sorted(ids[distances <= cut].tolist())
    assert len(expected) > 300  # ties at the cut
    assert sorted(ids[nearest_codes(codes, query, 300, ids)].tolist()) == expected
    order = rng.permutation(n)
    assert sorted(ids[order][nearest_codes(codes[order], query, 300, ids[order])].tolist()) \
        == expected
    # 200 deleted rows, copies of the nearest: left out before the cut is taken
    nearest = np.argsort(distances)[:200]
    more = np.ascontiguousarray(np.vstack([codes[order], codes[nearest]]))
    more_ids = np.concatenate([ids[order], np.arange(n + 1, n + 201)])
    at = nearest_codes(more, query, 300, more_ids, np.arange(n + 1, n + 201))
    assert sorted(more_ids[at].tolist()) == expected
    # fewer live rows than asked for: all of them
    at = nearest_codes(more[:250], query, 300, more_ids[:250], more_ids[:10])
    assert sorted(at.tolist()) == list(range(10, 250))


def test_a_huge_block_of_identical_codes_is_cut_by_face_id() -> None:
    """Thousands of faces with one code (copies of a face): the candidates stop at the cap,
    the faces at the cut taken by id whatever the rows' order."""
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (20_000, 64), dtype=np.uint8)
    query = codes[0].copy()
    codes[:5000] = codes[0] ^ np.eye(64, dtype=np.uint8)[0]  # 5,000 faces at distance 1
    ids = rng.permutation(20_000).astype(np.int64) + 1
    for order in (np.arange(20_000), rng.permutation(20_000)):
        at = nearest_codes(np.ascontiguousarray(codes[order]), query, 300, ids[order])
        assert sorted(ids[order][at].tolist()) == sorted(ids[:5000])[:300]


def by_the_rule(codes: np.ndarray, query: np.ndarray, count: int, ids: np.ndarray,
                dead: np.ndarray) -> list[int]:
    """nearest_codes' rule by brute force: the ids of the live rows within the count-th
    smallest live distance; a tie block past MAX_TIED * count cut by id."""
    distances = np.bitwise_count(codes ^ query).sum(axis=1)
    live = ~np.isin(ids, dead)
    cut = np.sort(distances[live])[count - 1]
    within = live & (distances <= cut)
    if within.sum() <= vector_index.MAX_TIED * count:
        return sorted(ids[within].tolist())
    nearer = ids[live & (distances < cut)]
    tied = np.sort(ids[live & (distances == cut)])[: count - len(nearer)]
    return sorted(nearer.tolist() + tied.tolist())


def test_a_tie_block_wider_than_the_scan_costs_one_exact_scan_more(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe reprobe52: 2,000 copies of a face among 50,000, each asking for its neighbours
    (clustering, identify, enrolment), made the batch path 12 times slower, 100,000 copies
    took 1.1 GB: a k-NN scan whose rows were all tied at the cut asked again for twice as
    many rows, a heap of each size a query, until the tie block fitted. The rows within the
    cut come from one exact range scan now, one a distinct query code (copies ask the same):
    the candidates by the rule, the codes read once a block of queries and once a code."""
    import faiss

    rng = np.random.default_rng(52)
    n = 20_000
    codes = rng.integers(0, 256, (n, 64), dtype=np.uint8)
    copies = rng.choice(n, 3_000, replace=False)
    codes[copies[:2_000]] = codes[copies[0]]  # copies of a face
    codes[copies[2_000:]] = codes[copies[0]] ^ np.eye(64, dtype=np.uint8)[5]  # one bit off
    ids = rng.permutation(n).astype(np.int64) + 1
    dead = ids[copies[::7]]  # deleted, pending: never candidates
    queries = np.vstack([codes[copies[:600]], codes[copies[2_000:2_100]], codes[:20]])
    scans = {"knn_hamming": 0, "hamming_range_search": 0}

    def counted(name: str):
        kernel = getattr(faiss, name)

        def scan(*args, **kwargs):
            scans[name] += 1
            return kernel(*args, **kwargs)
        return scan

    for name in scans:
        monkeypatch.setattr(faiss, name, counted(name))
    found = batch_knn.hamming_knn(codes, queries, 300, ids, dead)
    expected = {q.tobytes(): by_the_rule(codes, q, 300, ids, dead) for q in np.unique(
        queries, axis=0)}
    for query, at in zip(queries, found, strict=True):
        assert sorted(ids[at].tolist()) == expected[query.tobytes()]
    assert len(expected[codes[copies[0]].tobytes()]) == 300  # the copies cut by id
    # 720 queries: two blocks, and one range scan for each of the two tied codes
    assert scans == {"knn_hamming": 2, "hamming_range_search": 2}
    # one query: its k-NN scan, and one range scan
    scans.update(dict.fromkeys(scans, 0))
    at = nearest_codes(codes, codes[copies[2_500]], 300, ids, dead)
    assert sorted(ids[at].tolist()) == expected[codes[copies[2_500]].tobytes()]
    assert scans["hamming_range_search"] == 1


def test_a_first_scan_of_dead_rows_alone_still_cuts_at_count() -> None:
    """Probe reprobe54: where every row the first scan found was a deleted one (ids held by
    several rows, as nothing in pgface makes but nothing refuses), the cut was unknown, the
    exact scan fetched every row, and all 950 live rows came back as candidates for a count
    of 10: the cut is taken again among the rows fetched."""
    rng = np.random.default_rng(54)
    codes = rng.integers(0, 256, (1_000, 64), dtype=np.uint8)
    codes[:60] = codes[0]
    ids = (np.arange(1_000) // 10).astype(np.int64)  # ten rows an id
    dead = np.arange(5, dtype=np.int64)  # rows 0-49: the first scan's 25 nearest all dead
    for count in (10, 20):
        expected = by_the_rule(codes, codes[0], count, ids, dead)
        alone = nearest_codes(codes, codes[0], count, ids, dead)
        [batch] = batch_knn.hamming_knn(codes, codes[:1], count, ids, dead)
        assert sorted(ids[alone].tolist()) == sorted(ids[batch].tolist()) == expected
        assert count <= len(expected) <= vector_index.MAX_TIED * count  # not 950


def test_int8_cosines_are_close_to_the_exact_ones() -> None:
    rng = np.random.default_rng(8)
    people = unit(rng, 50)
    faces = people.repeat(20, axis=0) + 0.045 * rng.standard_normal((1000, 512))
    int8, scales = quantize(faces)  # not unit vectors: quantize normalises
    faces = faces / np.linalg.norm(faces, axis=1, keepdims=True)
    exact = faces @ faces[:10].T
    approx = (int8.astype(np.float32) @ faces[:10].T) * scales[:, None]
    assert exact.min() < 0.1 and np.median(exact[:20]) > 0.4  # strangers and the same person
    assert np.abs(approx - exact).max() < vector_index.APPROX_MARGIN / 4


def test_codes_and_int8_match_what_postgresql_holds(conn: psycopg.Connection,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vector_index, "_BATCH_BYTES", 5000)  # a COPY in several batches
    vectors = unit(np.random.default_rng(2), 40)
    ids = add_faces(conn, vectors)
    index = SignIndex(MODEL)
    assert index.sync(conn) == 40
    order = np.argsort(index._ids[: len(index)])
    assert index._ids[order].tolist() == ids
    server_bits = [r[0] for r in conn.execute(
        "SELECT binary_quantize(embedding)::text FROM faces ORDER BY id")]
    mine = np.unpackbits(index._codes[: len(index)][order], axis=1)
    assert ["".join(map(str, row)) for row in mine] == server_bits
    int8, scales = quantize(vectors)
    assert (index._int8[order] == int8).all() and np.allclose(index._scales[order], scales)
    assert index.nbytes(in_use=True) == 40 * (8 + 64 + 512 + 4) <= index.nbytes()


def test_the_k_nearest_of_many_faces_as_an_exact_scan(conn: psycopg.Connection) -> None:
    """More faces than candidates: every step of the index prunes, yet the answer is exact."""
    rng = np.random.default_rng(9)
    people = unit(rng, 400)
    vectors = people.repeat(5, axis=0) + 0.04 * rng.standard_normal((2000, 512))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    add_faces(conn, vectors)
    index = SignIndex(MODEL)
    index.sync(conn)
    conn.execute("SET enable_indexscan = off")  # the exact scan, not HNSW
    conn.commit()
    for query in vectors[::97]:
        found = index.search(conn, query, 10, 0.3, candidates=100)
        exact = store.nearest_faces(conn, query, MODEL, 10, 0.3, ef_search=40)
        assert 5 <= len(found) <= 10
        assert [(m.face_id, round(m.similarity, 4)) for m in found] == \
            [(m.face_id, round(m.similarity, 4)) for m in exact]


def test_same_answers_as_an_exact_scan(enrolled: Pgface) -> None:
    pf = enrolled
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
    # A pack's first analysis ever starts its kept face counts and holds other writers of
    # analyses back until it commits (migration 0018): here `fast` would wait for `slow`
    # forever. The pack's counts are started first, as any earlier photo of it would have.
    conn.execute("INSERT INTO person_face_count_packs VALUES (%s)", [MODEL])
    conn.commit()
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


def test_faces_of_the_newest_transaction_still_open_during_a_sync_are_not_missed(
        conn: psycopg.Connection, database_url: str) -> None:
    """A batch whose transaction holds the newest id, open while a search syncs: a snapshot's
    xmax is the latest finished id + 1, so it read as a transaction begun after the sync, its
    faces fell under the watermark, and no later sync loaded them (searches never found them;
    helper-36's repro, with indexers running beside a server)."""
    rng = np.random.default_rng(14)
    add_faces(conn, unit(rng, 3))
    index = SignIndex(MODEL)
    index.sync(conn)
    with connect(database_url) as batch:
        late = add_faces(batch, unit(rng, 2), commit=False)
        xmin, xmax = (int(v) for v in conn.execute(
            "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint "
            "FROM pg_current_snapshot() s").fetchone())
        conn.commit()
        held = int(batch.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()[0])
        assert held >= xmax == xmin  # the case: the open batch is beyond the snapshot's xmax
        index.sync(conn)  # a search while the batch is storing
        batch.commit()
    for _ in range(3):
        index.sync(conn)
    assert set(late) <= set(index._ids[: len(index)].tolist())
    assert len(index) == 5


def test_a_face_the_watermark_passed_over_is_loaded_by_the_next_check(
        conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a hot standby a batch storing with ids below a sync's watermark could be missed (its
    transactions do not show in the standby's pg_locks): no later sync fetched below the
    watermark, so searches never found those faces until the process restarted."""
    rng = np.random.default_rng(21)
    first = add_faces(conn, unit(rng, 3))
    gap = [conn.execute("SELECT nextval(pg_get_serial_sequence('faces', 'id'))").fetchone()[0]
           for _ in range(2)]  # ids taken by a batch that has not committed yet
    conn.commit()
    later = add_faces(conn, unit(rng, 2))
    index = SignIndex(MODEL)
    for _ in range(3):
        index.sync(conn)
    assert index._watermark >= max(later)
    # the batch commits with an id below the watermark (the row as the standby replays it),
    # and a face the index holds is deleted meanwhile
    missed = unit(rng, 1)[0]
    conn.execute("INSERT INTO faces OVERRIDING SYSTEM VALUE SELECT * FROM jsonb_populate_record("
                 "NULL::faces, (SELECT to_jsonb(f) || jsonb_build_object('id', %s::bigint) "
                 "FROM faces f WHERE id = %s))", [gap[0], first[0]])
    conn.execute("UPDATE faces SET embedding = %s WHERE id = %s", [missed, gap[0]])
    store.delete_face(conn, later[0])
    conn.commit()
    index.sync(conn)
    assert gap[0] not in index._ids[: len(index)]  # between checks: still missed
    monkeypatch.setattr(vector_index, "RECONCILE_S", 0.0)  # the next check is due
    assert index.sync(conn) == 1
    index.sync(conn)
    held = set(index._ids[: len(index)].tolist())
    assert gap[0] in held and later[0] not in held and len(held) == 5
    assert index.search(conn, missed, 1, 0.9)[0].face_id == gap[0]


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


def test_faces_deleted_anywhere_leave_the_index_and_its_size_at_the_next_sync(
        conn: psycopg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Probe scale30: photos deleted through a running server were still counted in the
    library size its verdicts are judged by (the index's size) for up to a minute, until the
    index's periodic check. PostgreSQL's count of faces rows deleted tells a sync to check."""
    monkeypatch.setattr(vector_index, "RECONCILE_AFTER_DELETE_S", 0.0)
    ids = add_faces(conn, unit(np.random.default_rng(8), 30))
    index = SignIndex(MODEL)
    index.sync(conn)
    index.sync(conn)  # nothing deleted: nothing checked, nothing dropped
    assert len(index) == 30
    with connect(database_url) as other:
        for face_id in ids[:3]:  # never searched: no re-rank sees them gone
            store.delete_face(other, face_id)
        other.execute("SELECT pg_stat_force_next_flush()")  # said at the commit, not in 1 s
        other.commit()
    deadline = time.monotonic() + 10
    while len(index) != 27 and time.monotonic() < deadline:
        time.sleep(0.05)
        index.sync(conn)
    assert len(index) == 27


def test_deleted_neighbours_do_not_hide_the_faces_behind_them(conn: psycopg.Connection,
                                                              database_url: str) -> None:
    # Copies of the query photo indexed, then removed: they filled every place the approximate
    # ranking sends to PostgreSQL (k + EXTRA), so the search found nothing, and went on
    # finding nothing in that process, though the person's own face was there.
    rng = np.random.default_rng(7)
    query = unit(rng, 1)[0]
    noise = unit(rng, 1)[0]
    mixed = 0.75 * query + np.sqrt(1 - 0.75**2) * (noise - (noise @ query) * query)
    (same_person,) = add_faces(conn, (mixed / np.linalg.norm(mixed))[None])
    add_faces(conn, unit(rng, 500))
    copies = 0.999 * query + 0.045 * unit(rng, 2 * vector_index.EXTRA)
    copies /= np.linalg.norm(copies, axis=1, keepdims=True)
    copy_ids = add_faces(conn, copies)
    index = SignIndex(MODEL)
    assert [m.face_id for m in index.search(conn, query, 1, 0.5)][0] in copy_ids
    with connect(database_url) as other:
        other.execute("DELETE FROM faces WHERE id = ANY(%s)", [copy_ids])
        other.commit()
    for sync in (False, True, False):  # the first search after the deletion, and the next
        found = index.search(conn, query, 1, 0.5, sync=sync)
        assert [(m.face_id, round(m.similarity, 3)) for m in found] == [(same_person, 0.75)]
    assert len(index) == 501  # and the sync dropped the copies


def test_deleted_faces_past_the_candidates_do_not_shorten_a_long_answer(
        conn: psycopg.Connection, database_url: str) -> None:
    """Probe reprobe53: a search for more faces than the sign-bit candidates (k 400 > 300)
    ranks the k nearest by sign bits, and forgot the deleted faces among the 300 nearest
    only: faces deleted since the index loaded them, ranked past 300, were sent to
    PostgreSQL round after round, and the answer came back 45 faces short of the k that
    exist. The deleted ones among all the faces ranked are forgotten: the answer of an index
    loaded after the deletion."""
    rng = np.random.default_rng(53)
    query = unit(rng, 1)[0]
    closeness = np.linspace(0.95, 0.5, 600)  # the faces' cosines with the query, about
    noise = unit(rng, 600)
    noise -= (noise @ query)[:, None] * query
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    faces = closeness[:, None] * query + np.sqrt(1 - closeness**2)[:, None] * noise
    ids = np.array(add_faces(conn, faces.astype(np.float32)))
    index = SignIndex(MODEL)
    index.sync(conn)
    gone = ids[np.argsort(-(faces @ query))[310:390]]  # past the 300 nearest, among the 400
    with connect(database_url) as other:
        other.execute("DELETE FROM faces WHERE id = ANY(%s)", [gone.tolist()])
        other.commit()
    found = index.search(conn, query, 400, 0.3, sync=False)
    assert len(found) == 400  # of the 520 faces left, all over 0.3
    assert not {m.face_id for m in found} & set(gone.tolist())
    # what an index loaded after the deletion answers
    fresh = SignIndex(MODEL).search(conn, query, 400, 0.3)
    assert [m.face_id for m in found] == [m.face_id for m in fresh]


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


def test_pgface_search_through_the_index(enrolled: Pgface,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pf = enrolled
    query = PHOTOS / "queries" / "obama_and_biden.jpg"
    plain = pf.search(query)  # few faces: PostgreSQL alone
    assert vector_index.shared_index(pf.pool, MODEL) is None
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    monkeypatch.setattr(vector_index, "_RECHECK_S", 0.0)
    indexed = pf.search(query)
    assert isinstance(vector_index.shared_index(pf.pool, MODEL), SignIndex)
    assert indexed.to_dict() == plain.to_dict()


def test_a_query_photo_whose_first_face_is_not_searched_still_catches_up(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    # The index caught up before a photo's first face only: when that face was below the
    # quality floor (a blurred face beside a sharp one), no face of the photo synced, and a
    # running server never saw the faces indexed since its last search.
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    monkeypatch.setattr(vector_index, "_RECHECK_S", 0.0)
    rng = np.random.default_rng(8)
    with pf.pool.connection() as c:
        add_faces(c, unit(rng, 30))
    blurred, sharp = unit(rng, 2)

    def face(embedding: np.ndarray, score: float) -> Face:
        return Face(np.array([0, 0, 100, 100.0]), np.zeros((5, 2)), 0.9, embedding,
                    FaceQuality(score, 100, 0, 0.55, 100))

    def search() -> list[list[int]]:
        result = search_faces(pf.pool, MODEL, [face(blurred, 0.01), face(sharp, 0.9)], 5, 0.5,
                              40, "query.jpg", 0.3, min_quality=0.1)
        return [[m.face_id for m in f.matches] for f in result.faces]

    assert search() == [[], []]
    with pf.pool.connection() as c:
        (newcomer,) = add_faces(c, sharp[None])
    assert search() == [[], [newcomer]]


def test_faces_nobody_holds_do_not_crowd_out_a_persons_faces(conn: psycopg.Connection) -> None:
    # Identify at scale took the 300 nearest faces by sign bits, then kept those people hold:
    # 400 unassigned photos of someone, nearer than the few he was enrolled with, left none,
    # and identify said "unknown" where PostgreSQL alone (below 20,000 faces) named him.
    rng = np.random.default_rng(9)
    query = unit(rng, 1)[0]

    def near(similarity: float, n: int) -> np.ndarray:
        noise = unit(rng, n)
        noise -= (noise @ query)[:, None] * query
        noise /= np.linalg.norm(noise, axis=1, keepdims=True)
        return (similarity * query + np.sqrt(1 - similarity**2) * noise).astype(np.float32)

    enrolled = add_faces(conn, near(0.75, 3))
    add_faces(conn, near(0.9, vector_index.DEFAULT_CANDIDATES + 100))  # nobody's
    add_faces(conn, unit(rng, 2000))
    person = conn.execute("INSERT INTO people (name) VALUES ('Colin') RETURNING id").fetchone()[0]
    conn.execute("UPDATE faces SET person_id = %s WHERE id = ANY(%s)", [person, enrolled])
    conn.commit()
    index = SignIndex(MODEL)
    index.sync(conn)
    [found] = engine.nearest_assigned(conn, index, query[None], MODEL, 50, 0.3, 40)
    [exact] = [ps.nearest_assigned(conn, query, MODEL, 50, 0.3, 40)]
    assert sorted(r["id"] for r in found) == sorted(r["id"] for r in exact) == enrolled
    assert {r["name"] for r in found} == {"Colin"}


@pytest.mark.parametrize("at_scale", [False, True])
def test_a_face_whose_person_another_took_falls_to_a_person_past_the_nearest_fifty(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch, at_scale: bool) -> None:
    """Probe verdicts39: a person enrolled from 60 video frames held all 50 nearest faces, so
    identify listed one candidate; beside a second face of that person (nearer), the face
    whose person was taken had no next one and was "unknown", where a second person of it
    was a sure match (0.75). The people past the nearest faces are looked for, with pgvector
    and with the search index at scale."""
    from pgface.identify import identify_faces

    if at_scale:
        monkeypatch.setattr(vector_index, "MIN_FACES", 1)
        monkeypatch.setattr(vector_index, "_RECHECK_S", 0.0)
    rng = np.random.default_rng(39)
    e1, e2, e3 = np.linalg.qr(rng.standard_normal((512, 3)))[0].T
    first, second = e1, 0.97 * e1 + np.sqrt(1 - 0.97**2) * e2  # two faces of one man
    noise = unit(rng, 60)
    noise -= np.outer(noise @ e1, e1)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    frames = 0.99 * e1 + np.sqrt(1 - 0.99**2) * noise  # "video": 60 frames near the first
    other = 0.75 * second + np.sqrt(1 - 0.75**2) * e3  # "photos": 0.75 to the second alone
    with pf.pool.connection() as conn:
        add_faces(conn, unit(rng, 200))  # strangers
        video = [add_faces(conn, f[None])[0] for f in frames]
        photos = add_faces(conn, np.stack([other, other]).astype(np.float32))
        for name, ids in (("video", video), ("photos", photos)):
            person = conn.execute("INSERT INTO people (name) VALUES (%s) RETURNING id",
                                  [name]).fetchone()[0]
            conn.execute("UPDATE faces SET person_id = %s WHERE id = ANY(%s)", [person, ids])
        conn.commit()
    faces = [Face(np.array([x, 0, x + 100, 100], np.float32), np.zeros((5, 2), np.float32),
                  0.9, np.asarray(v, np.float32)) for x, v in ((0, first), (200, second))]
    found = identify_faces(pf.pool, MODEL, faces, "two.jpg", 0.23, 0.23, 40)
    assert isinstance(vector_index.shared_index(pf.pool, MODEL), SignIndex) is at_scale
    assert [f.name for f in found.faces] == ["video", "photos"], found.faces
    assert found.faces[1].similarity == pytest.approx(0.75, abs=0.002)
    assert [c.name for c in found.faces[1].candidates] == ["video", "photos"]
    assert [t.name for t in found.faces[1].taken] == ["video"]


def test_clustering_through_the_index_passes_over_faces_deleted_since_it_loaded(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    # In a running process (a server, a Python session) whose index had loaded faces another
    # process then deleted, every incremental clustering failed with numpy's ValueError (no
    # vector to rank a deleted candidate by) until the process was restarted.
    monkeypatch.setattr(vector_index, "MIN_FACES", 1)
    monkeypatch.setattr(vector_index, "_RECHECK_S", 0.0)
    rng = np.random.default_rng(12)
    centre = unit(rng, 1)[0]

    def alike(n: int) -> np.ndarray:  # one person's faces: cosine about 0.8 to the centre
        v = centre + 0.5 * unit(rng, n) / np.sqrt(2)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def photos(vectors: np.ndarray) -> list[int]:
        with pf.pool.connection() as c:
            return [add_faces(c, v[None])[0] for v in vectors]

    photos(unit(rng, 40))  # strangers
    first = photos(alike(4))
    assert pf.people.cluster().founded == 1  # the index is loaded, and holds these faces
    assert isinstance(vector_index.shared_index(pf.pool, MODEL), SignIndex)
    newcomers = photos(alike(2))
    with psycopg.connect(pf.database_url()) as other:  # another process removes the first
        other.execute(f"SET search_path TO {pf.settings.db_schema}, public")
        other.execute("DELETE FROM photos WHERE id IN (SELECT photo_id FROM faces "
                      "WHERE id = ANY(%s))", [first])
    report = pf.people.cluster()  # the newcomers' nearest in the index: the deleted faces
    assert (report.joined, report.founded) == (0, 1)
    [person] = pf.people.list(unnamed=True)
    assert person.faces == len(newcomers)
