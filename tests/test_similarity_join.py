"""The join a full clustering at scale uses (similarity_join.py, neighbours "join" mode):
every pair at or above a similarity, against exact search, on planted pairs at the limit and
on the real LFW View 1 faces, and clustering through it against clustering by exact search.
Real PostgreSQL for the clustering."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_engine import clusterings_through_join_and_bulk, full_clustering_rolled_back, lfw_subset

from pgface import Pgface, similarity_join
from pgface.batch_knn import exact_knn
from pgface.db import store
from pgface.neighbours import NEIGHBOURS_K, join_neighbours
from pgface.vector_index import SignIndex

MODEL = "buffalo_sc"


def exact_pairs(vectors: np.ndarray, similarity: float) -> set[tuple[int, int]]:
    sims = vectors @ vectors.T
    i, j = np.nonzero(np.triu(sims >= similarity, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def test_pairs_just_above_the_limit_are_found_but_for_the_stated_few() -> None:
    """4,000 planted pairs at cosine 0.401 (where the bit limits are tightest), among 8,000
    unrelated vectors: the join finds what an exact scan finds, less at most a few tenths of
    a percent (MISS_1 + MISS_2 + MISS_3 = 0.021 % expected), nothing else, with exact
    cosines."""
    rng = np.random.default_rng(7)
    base = rng.standard_normal((4000, 512))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    other = rng.standard_normal((4000, 512))
    other -= (other * base).sum(axis=1, keepdims=True) * base  # orthogonal to its base
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    cos = 0.401
    twin = cos * base + np.sqrt(1 - cos**2) * other
    vectors = np.concatenate([base, twin, rng.standard_normal((8000, 512))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    i, j, sims = similarity_join.similar_pairs(vectors, 0.40)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    exact = exact_pairs(vectors, 0.40)
    assert len(exact) >= 4000 and found <= exact
    assert len(exact - found) <= 10, len(exact - found)
    assert np.all(i < j)
    np.testing.assert_allclose(sims, np.einsum("ij,ij->i", vectors[i], vectors[j]), atol=1e-5)
    t1, t2, t3 = similarity_join.bit_limits(0.40)
    # between a pair at 0.40 (differing in 36.9 % of the bits) and strangers (50 %), on average
    assert 189 < t1 < 256 and 378 < t2 < 512 and 567 < t3 < 768
    assert similarity_join.bit_limits(0.60)[0] < t1  # closer pairs, tighter limits


def test_top_neighbours_best_first_ties_by_row() -> None:
    i = np.array([0, 0, 1, 2])
    j = np.array([1, 2, 2, 3])
    sims = np.array([0.5, 0.7, 0.5, 0.9], np.float32)
    near = similarity_join.top_neighbours(5, i, j, sims, k=2)
    assert [r.tolist() for r, _ in near] == [[2, 1], [0, 2], [3, 0], [2], []]
    assert near[2][1].tolist() == pytest.approx([0.9, 0.7])


def test_near_pairs_give_every_rows_best_k_while_dropping_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A person of 700 faces (244,650 pairs) among 3,000 strangers, faces in photos of two:
    the pairs kept while the join goes (dropped whenever more than 20,000 are held, so dozens
    of times here) give each face the same k best of other photos as all the pairs do, and
    are far fewer. A full clustering held every pair: 6 GiB for a person of 10,000 faces."""
    rng = np.random.default_rng(11)
    centre = rng.standard_normal(512)
    centre /= np.linalg.norm(centre)
    person = centre + rng.normal(0, 0.036, (700, 512))
    vectors = np.concatenate([person, rng.standard_normal((3000, 512))]).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    photo = np.arange(len(vectors)) // 2

    def other_photos(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return photo[i] != photo[j]

    k = 16
    i, j, sims = similarity_join.similar_pairs(vectors, 0.40)
    every = other_photos(i, j)
    want = similarity_join.top_neighbours(len(vectors), i[every], j[every], sims[every], k)
    monkeypatch.setattr(similarity_join, "COMPACT_PAIRS", 20_000)
    ni, nj, nsims = similarity_join.near_pairs(vectors, 0.40, k, other_photos)
    got = similarity_join.top_neighbours(len(vectors), ni, nj, nsims, k)
    assert every.sum() > 240_000 and len(ni) <= len(vectors) * k
    for row, ((want_rows, want_sims), (got_rows, got_sims)) in enumerate(
            zip(want, got, strict=True)):
        assert got_rows.tolist() == want_rows.tolist(), row
        assert got_sims.tolist() == want_sims.tolist(), row
    assert sum(len(rows) for rows, _ in got[:700]) == 700 * k


def test_join_and_clustering_through_it_equal_exact_search_on_lfw(lfw_library: Pgface) -> None:
    """All 4,992 LFW View 1 faces: each face's neighbours from the join are those of an exact
    scan, and a full clustering through the join (the engine at scale) gives the people the
    exact in-memory path gives."""
    with lfw_library.pool.connection() as conn:
        rows = conn.execute("SELECT id, photo_id, embedding FROM faces WHERE model = %s "
                            "ORDER BY id", [MODEL]).fetchall()
        ids = np.array([r[0] for r in rows], np.int64)
        vectors = np.stack([np.asarray(r[2].to_numpy(), np.float32) for r in rows])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        photo_of = {r[0]: r[1] for r in rows}
        joined = join_neighbours(ids, vectors, photo_of, 0.40)
        exact = exact_knn(ids, vectors, vectors, NEIGHBOURS_K + 8, 0.40)
        for face, (near, sims) in zip(ids.tolist(), exact, strict=True):
            want = [(int(g), float(s)) for g, s in zip(near, sims, strict=True)
                    if photo_of[int(g)] != photo_of[face]][:NEIGHBOURS_K]
            got = joined[face]
            assert [g for g, _ in got] == [g for g, _ in want], face
            assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
        assert sum(map(len, joined.values())) >= 1000

        joined, bulk = clusterings_through_join_and_bulk(conn)
        assert joined == bulk and len(joined) >= 500
        assert store.count_faces(conn, MODEL) == len(ids)


def test_full_clustering_without_numba_goes_through_the_index(
        pf: Pgface, monkeypatch: pytest.MonkeyPatch) -> None:
    """numba is the optional `scale` extra: where it cannot be imported, a full clustering at
    scale asks the search index instead, and gives the same people."""
    pf.index(lfw_subset(60))
    with pf.pool.connection() as conn:
        index = SignIndex(MODEL)
        index.sync(conn)
        found = {}
        for mode in ("join", "index"):
            if mode == "index":
                monkeypatch.setitem(sys.modules, "numba", None)  # import numba: ImportError
            assert similarity_join.available() == (mode == "join")
            took, found[mode] = full_clustering_rolled_back(conn, index)
            assert took == mode
        assert found["join"] == found["index"] and len(found["join"]) >= 10
