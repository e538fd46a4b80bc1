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

from pgface.vector_index import APPROX_MARGIN, EXTRA, sign_bits

QUERY_BLOCK = 512  # queries per Hamming pass: the heaps stay small, the codes stream once
RERANK_BLOCK = 64  # queries per int8 re-rank: 64 x candidates x 512 floats in memory

# (ids, cosines), best first, for each query
Neighbours = list[tuple[np.ndarray, np.ndarray]]


def hamming_knn(codes: np.ndarray, queries: np.ndarray, count: int) -> np.ndarray:
    """[m, min(count, n)] positions of the rows of codes [n, 64] nearest to each of queries
    [m, 64] (uint8 sign bits) by Hamming distance, nearest first; ties at the cut arbitrary."""
    import faiss  # imported on first use: small libraries never scan

    count = min(count, len(codes))
    out = np.empty((len(queries), count), np.int64)
    if count == 0:
        return out
    codes = np.ascontiguousarray(codes)
    for lo in range(0, len(queries), QUERY_BLOCK):
        block = np.ascontiguousarray(queries[lo : lo + QUERY_BLOCK])
        out[lo : lo + len(block)] = faiss.knn_hamming(block, codes, count)[1]
    return out


def approximate_many(ids: np.ndarray, codes: np.ndarray, int8: np.ndarray, scales: np.ndarray,
                     queries: np.ndarray, k: int, min_similarity: float, candidates: int,
                     rows: np.ndarray | None = None) -> Neighbours:
    """Per query (unit float32 [m, 512]): the ids that can be among its k nearest with cosine
    >= min_similarity, and their int8 cosines, best first. rows: only these rows are looked
    at (a subset of the library, such as the faces people hold)."""
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if rows is None:
        at = hamming_knn(codes, sign_bits(queries), max(candidates, k))
    else:
        at = rows[hamming_knn(codes[rows], sign_bits(queries), max(candidates, k))]
    found: Neighbours = []
    keep_n = min(k + EXTRA, at.shape[1])
    for lo in range(0, len(queries), RERANK_BLOCK):
        rows = at[lo : lo + RERANK_BLOCK]
        q = queries[lo : lo + RERANK_BLOCK]
        cosines = np.matmul(int8[rows].astype(np.float32), q[:, :, None])[:, :, 0]
        cosines *= scales[rows]
        # the k + EXTRA best of each row, best first, then those that can reach the floor
        best = np.argpartition(-cosines, keep_n - 1, axis=1)[:, :keep_n]
        best_cos = np.take_along_axis(cosines, best, axis=1)
        order = np.argsort(-best_cos, axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        best_cos = np.take_along_axis(best_cos, order, axis=1)
        enough = best_cos >= min_similarity - APPROX_MARGIN
        best_ids = ids[np.take_along_axis(rows, best, axis=1)]
        for line_ids, line_cos, line_ok in zip(best_ids, best_cos, enough, strict=True):
            found.append((line_ids[line_ok], line_cos[line_ok]))
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
