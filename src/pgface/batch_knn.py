"""Nearest faces of many query vectors at once: the batch form of the sign-bit index's search.

Clustering asks for the neighbours of every face, identify and enrolment for those of a few;
all of them go through the same three steps as a search (vector_index.py): a Hamming scan of
the sign bits (FAISS, many queries per pass over the codes, the cores sharing the queries),
the int8 cosine of those candidates, and the exact cosine of the few that can make the cut,
from float vectors the caller holds. `exact_knn` is the reference the tests hold it to.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pgface.vector_index import (
    APPROX_MARGIN,
    EXTRA,
    exact_within_cut,
    int8_cosines,
    live_cut,
    none_left_behind,
    sign_bits,
    tie_room,
    within_cut,
)

QUERY_BLOCK = 512  # queries per Hamming pass: the heaps stay small, the codes stream once

# (ids, cosines), best first, for each query
Neighbours = list[tuple[np.ndarray, np.ndarray]]


def hamming_knn(codes: np.ndarray, queries: np.ndarray, count: int,
                ids: np.ndarray | None = None, dead: np.ndarray | None = None
                ) -> list[np.ndarray]:
    """Per query of queries [m, 64] (uint8 sign bits), the positions of the rows of codes
    [n, 64] nearest to it by Hamming distance, in no order, by nearest_codes' rule: every live
    row (id, ids[row], not in dead) at a distance <= the count-th nearest live one's, ties at
    that distance included whatever the rows' order, the threads or the dead rows pending; a
    tie block past MAX_TIED * count cut by id. So each query may have its own number."""
    import faiss  # imported on first use: small libraries never scan

    n, m = len(codes), len(queries)
    if count <= 0 or n == 0:
        return [np.empty(0, np.int64) for _ in range(m)]
    drop = dead is not None and ids is not None and len(dead) > 0
    codes, queries = np.ascontiguousarray(codes), np.ascontiguousarray(queries)
    found: list[np.ndarray] = []
    want = min(n, tie_room(count, len(dead) if drop else 0))
    wide: dict[bytes, np.ndarray] = {}  # by query code: copies of a face ask the same
    for lo in range(0, m, QUERY_BLOCK):
        distances, positions = faiss.knn_hamming(queries[lo : lo + QUERY_BLOCK], codes, want)
        live = ~np.isin(ids[positions], dead) if drop else None
        for j in range(len(distances)):
            alive = None if live is None else live[j]
            cut = live_cut(distances[j], count, alive)
            if none_left_behind(distances[j], n, cut):
                found.append(within_cut(distances[j], positions[j], count, cut, ids, alive))
                continue
            # a tie block wider than the slack: every row within the cut, one exact scan
            code = queries[lo + j]
            if code.tobytes() not in wide:
                wide[code.tobytes()] = exact_within_cut(codes, code, count, cut, ids, dead)
            found.append(wide[code.tobytes()])
    return found


def approximate_many(ids: np.ndarray, codes: np.ndarray, int8: np.ndarray, scales: np.ndarray,
                     queries: np.ndarray, k: int, min_similarity: float, candidates: int,
                     rows: np.ndarray | None = None, dead: np.ndarray | None = None
                     ) -> Neighbours:
    """Per query (unit float32 [m, 512]): the ids that can be among its k nearest with cosine
    >= min_similarity, and their int8 cosines, best first (ties by id). rows: only these rows
    are looked at (a subset of the library, such as the faces people hold); dead: ids of
    faces known to be deleted, never candidates. The candidates are hamming_knn's: the same
    whatever the rows' order and the dead rows pending, so the answer is too."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    count = max(candidates, k)
    if rows is None:
        at = hamming_knn(codes, sign_bits(queries), count, ids, dead)
    else:
        at = [rows[a] for a in hamming_knn(codes[rows], sign_bits(queries), count, ids[rows],
                                           dead)]
    found: Neighbours = []
    floor = min_similarity - APPROX_MARGIN
    # one query at a time (each has its own number of candidates): less CPU time than one
    # matmul over a padded block of them
    for query, held in zip(queries, at, strict=True):
        cosines = int8_cosines(int8, scales, held, query)
        rows_ids = ids[held]
        # the k + EXTRA best, best first, ties (copies of a face) by id, not by row; then
        # those that can reach the floor
        best = np.lexsort((rows_ids, -cosines))[: k + EXTRA]
        best = best[cosines[best] >= floor]
        found.append((rows_ids[best], cosines[best]))
    return found


def exact_rerank(candidates: Neighbours, queries: np.ndarray,
                 vectors_of: Callable[[np.ndarray], np.ndarray], k: int,
                 min_similarity: float) -> Neighbours:
    """The candidates' exact cosines (vectors_of: ids -> unit float32 rows), those >=
    min_similarity, the k best, best first (ties by id)."""
    wanted = np.unique(np.concatenate([c for c, _ in candidates] or [np.empty(0, np.int64)]))
    vectors = vectors_of(wanted) if len(wanted) else np.empty((0, queries.shape[1]), np.float32)
    out: Neighbours = []
    for (ids, _), query in zip(candidates, queries, strict=True):
        rows = np.searchsorted(wanted, ids)
        cosines = vectors[rows] @ query
        keep = np.flatnonzero(cosines >= min_similarity)
        keep = keep[np.lexsort((ids[keep], -cosines[keep]))][:k]
        out.append((ids[keep], cosines[keep]))
    return out


def exact_knn(ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int,
              min_similarity: float) -> Neighbours:
    """Exact k nearest by cosine (unit vectors) at or above min_similarity, best first, ties
    by id: the brute-force reference."""
    out: Neighbours = []
    for lo in range(0, len(queries), 256):
        sims = queries[lo : lo + 256] @ vectors.T
        for line in sims:
            keep = np.flatnonzero(line >= min_similarity)
            keep = keep[np.lexsort((ids[keep], -line[keep]))][:k]
            out.append((ids[keep], line[keep]))
    return out
