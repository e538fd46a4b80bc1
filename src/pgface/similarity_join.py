"""Every pair of faces at or above a cosine similarity, among many faces: the neighbours a full
clustering needs, without one search per face.

A search per face scans every face's sign bits once per face and keeps a heap of candidates;
a full clustering of n faces does that n times (10^12 pairs at 1M faces, and each pair twice).
The join below looks at each pair once (j > i), in tiles that stay in the CPU's caches, and
keeps only the pairs that can reach the similarity, in four steps of rising cost:

1. 512 sign bits of a random rotation of the faces: the pair goes on when they differ in at
   most `t1` bits (about one stranger pair in ten does);
2. 512 more bits, of a second rotation: at most `t2` of the 1,024 (one in 400);
3. 512 more, of a third: at most `t3` of the 1,536 (one in 2,000), since the cosine that
   follows reads two vectors from memory, which costs more than the bits;
4. the exact cosine of the float vectors, kept when >= min_similarity.

Why random rotations and not the stored sign bits of the coordinates: for bits that are signs
of random directions, two vectors at angle theta differ in each bit with probability
theta / pi whatever the faces look like (Charikar's SimHash), so the bit limits follow from
the similarity alone (`bit_limits`) and miss a pair at the limit with a known, small
probability (MISS_1, MISS_2, MISS_3) on faces nobody measured. Pairs above the similarity are
missed far less often. docs/benchmarks-people-scale.md has the figures.

The kernel (join_kernel.py) is compiled by numba (LLVM, the CPU's popcount instruction) on
first use and cached; threads share the pairs by blocks of rows (the kernel releases the GIL).
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice
from statistics import NormalDist

import numpy as np

BITS = 512  # bits per stage: one rotation of the 512-d embedding
ROW_BLOCK = 256  # rows of one task: their codes stay in registers and L1
COLUMN_BLOCK = 2048  # columns per tile: 128 KB of stage-1 codes, in L2
ROTATION_SEED = 20261130  # fixed, so a library's joins agree from run to run
# Probability that a pair exactly at the similarity is dropped by each bit limit (normal
# approximation to the binomial; the bits of an orthogonal rotation vary a little less).
MISS_1 = 1e-5
MISS_2 = 1e-4
MISS_3 = 1e-4
FIRST_CAPACITY = 1 << 16  # pairs a task may hold before it starts again with 4x the room


def available() -> bool:
    """Whether numba is installed (the `scale` extra); without it a full clustering goes
    through the search index (neighbours.py)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def bit_limits(min_similarity: float) -> tuple[int, int, int]:
    """(t1, t2, t3): the most differing bits of 512, 1,024 and 1,536 that a pair at
    min_similarity reaches but with probability MISS_1, MISS_2, MISS_3."""
    p = math.acos(max(-1.0, min(1.0, min_similarity))) / math.pi

    def limit(bits: int, miss: float) -> int:
        z = NormalDist().inv_cdf(1 - miss)
        return min(bits, math.ceil(bits * p + z * math.sqrt(bits * p * (1 - p))))

    return limit(BITS, MISS_1), limit(2 * BITS, MISS_2), limit(3 * BITS, MISS_3)


def rotation_codes(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three [n, 8] uint64 arrays: the signs of the vectors under three fixed random
    rotations."""
    rng = np.random.default_rng(ROTATION_SEED)
    dim = vectors.shape[1]
    codes = []
    for _ in range(3):
        rotation = np.linalg.qr(rng.standard_normal((dim, BITS)))[0].astype(np.float32)
        signs = np.empty((len(vectors), BITS // 8), np.uint8)
        for lo in range(0, len(vectors), 65_536):  # 128 MB of projections at a time
            signs[lo : lo + 65_536] = np.packbits(vectors[lo : lo + 65_536] @ rotation > 0,
                                                  axis=1)
        codes.append(np.ascontiguousarray(signs).view(np.uint64))
    return codes[0], codes[1], codes[2]


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (i, j, cosine)
# Pairs held before those that no row's top k needs are dropped (near_pairs): 2M pairs, 24 MB
# held and about 200 MB while they are ranked; or twice what the last compaction kept, so that
# it is not redone each block.
COMPACT_PAIRS = 1 << 21


def similar_pairs(vectors: np.ndarray, min_similarity: float, threads: int | None = None
                  ) -> Pairs:
    """(i, j, cosine) with i < j for the pairs of rows of vectors (unit float32 [n, 512]) whose
    cosine is >= min_similarity, but for the few the bit limits drop (module docstring).

    Every pair: m faces of one person are m^2 / 2 of them (5,000 faces, 12.5M pairs). A
    clustering needs only each face's best k: near_pairs."""
    parts = list(_pair_blocks(vectors, min_similarity, threads))
    if not parts:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.float32)
    return _joined(parts)


def near_pairs(vectors: np.ndarray, min_similarity: float, k: int,
               keep: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
               threads: int | None = None) -> Pairs:
    """The pairs of similar_pairs that KEEP(i, j) (a mask) allows and that are among the k
    best of one of their two rows at least: top_neighbours gives the same from them as from
    every pair, with memory for about n * k pairs and COMPACT_PAIRS more.

    A full clustering held every pair: one person of 10,000 faces (50M pairs) took 6 GiB,
    about 115 bytes a pair, and a person of 20,000 would take 23. A pair outside both its
    rows' best k among the pairs found so far stays outside (more pairs only push it down), so
    it is dropped whenever the held pairs pass the limit.
    """
    n = len(vectors)
    held: list[Pairs] = []
    count, limit = 0, COMPACT_PAIRS
    for i, j, c in _pair_blocks(vectors, min_similarity, threads):
        if keep is not None:
            wanted = keep(i, j)
            i, j, c = i[wanted], j[wanted], c[wanted]
        if n < 2**31:  # rows as int32: half the memory of the pairs held and ranked
            i, j = i.astype(np.int32), j.astype(np.int32)
        held.append((i, j, c))
        count += len(i)
        if count > limit:
            held = [_best_of_rows(n, *_joined(held), k)]
            count = len(held[0][0])
            limit = max(COMPACT_PAIRS, 2 * count)
    if not held:
        empty = np.empty(0, np.int64)
        return empty, empty.copy(), np.empty(0, np.float32)
    return _best_of_rows(n, *_joined(held), k)


def _joined(parts: list[Pairs]) -> Pairs:
    if len(parts) == 1:
        return parts[0]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


def _best_of_rows(n: int, i: np.ndarray, j: np.ndarray, cosine: np.ndarray, k: int) -> Pairs:
    """The pairs among the k best of row i or of row j, in top_neighbours' order (best
    first, ties by the other row)."""
    rows = np.concatenate([i, j])
    others = np.concatenate([j, i])
    order = np.lexsort((others, -np.concatenate([cosine, cosine]), rows))
    ranked = rows[order]
    rank = np.arange(len(order)) - np.searchsorted(ranked, ranked)
    kept = np.zeros(len(i), bool)
    kept[order[rank < k] % len(i)] = True
    return i[kept], j[kept], cosine[kept]


def _pair_blocks(vectors: np.ndarray, min_similarity: float, threads: int | None
                 ) -> Iterator[Pairs]:
    """similar_pairs' pairs by blocks of ROW_BLOCK rows, in order; at most two blocks per
    thread are ahead of the caller (they were all held until the last was found)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n < 2:
        return
    first, second, third = rotation_codes(vectors)
    t1, t2, t3 = bit_limits(min_similarity)
    kernel = _kernel()
    if threads is None:  # the cores this process may use (sched_getaffinity: Linux only)
        affinity = getattr(os, "sched_getaffinity", None)
        threads = len(affinity(0)) if affinity else os.cpu_count() or 1

    def task(lo: int) -> Pairs:
        hi = min(lo + ROW_BLOCK, n)
        capacity = FIRST_CAPACITY
        while True:
            out_i = np.empty(capacity, np.int64)
            out_j = np.empty(capacity, np.int64)
            out_c = np.empty(capacity, np.float32)
            found = kernel(first, second, third, vectors, lo, hi, np.uint64(t1),
                           np.uint64(t2), np.uint64(t3), np.float32(min_similarity),
                           COLUMN_BLOCK, out_i, out_j, out_c)
            if found >= 0:
                return out_i[:found], out_j[:found], out_c[:found]
            capacity *= 4  # a dense block (many photos of one person): rare, start again

    starts = iter(range(0, n, ROW_BLOCK))
    with ThreadPoolExecutor(threads) as pool:
        ahead: deque[Future[Pairs]] = deque(pool.submit(task, lo)
                                            for lo in islice(starts, 2 * threads))
        while ahead:
            part = ahead.popleft().result()
            for lo in islice(starts, 1):
                ahead.append(pool.submit(task, lo))
            yield part


def top_neighbours(n: int, i: np.ndarray, j: np.ndarray, cosine: np.ndarray, k: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per row 0..n-1: (rows, cosines) of its k most similar rows among the pairs, best first,
    ties by row."""
    rows = np.concatenate([i, j])
    others = np.concatenate([j, i])
    sims = np.concatenate([cosine, cosine])
    order = np.lexsort((others, -sims, rows))
    rows, others, sims = rows[order], others[order], sims[order]
    starts = np.searchsorted(rows, np.arange(n + 1))
    return [(others[a : min(b, a + k)], sims[a : min(b, a + k)])
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)]


def _kernel():  # noqa: ANN202 - a numba dispatcher
    """The join kernel (numba, and its compile on first use, only when a join runs)."""
    from pgface.join_kernel import join

    return join
