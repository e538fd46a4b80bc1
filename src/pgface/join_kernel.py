"""The compiled inner loop of similarity_join.py (numba): imported only when a join runs."""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

WORDS = np.uint64(8)  # uint64 words of one face's 512 bits


@intrinsic
def popcount(typingctx, x):  # noqa: ANN001, ANN201, ARG001
    """The CPU's popcount of a uint64 (LLVM's ctpop)."""
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202, ARG001
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@numba.njit(nogil=True, cache=True, fastmath=True, boundscheck=False)
def join(first, second, third, vectors, lo, hi, t1, t2, t3, min_similarity,  # noqa: ANN001, ANN201
         column_block, out_i, out_j, out_c):
    """Pairs (i, j), lo <= i < hi, i < j, that pass the three bit limits and whose cosine is
    >= min_similarity, written to out_*; returns how many, or -1 when they do not fit.

    Columns go by tiles of column_block (their codes stay in L2), the row's codes in
    registers. Why it is written so (1.4x the plain loop over the 2-d arrays, measured):
    the codes are read flat with unsigned indices, so no index needs numba's negative-index
    wrap or a multiply by a run-time stride; and the first test keeps its survivors (about
    one pair in nine for strangers) without a branch, since a branch taken at random one
    time in nine mispredicts often; the survivors' further tests and cosine follow per row."""
    n = first.shape[0]
    dim = vectors.shape[1]
    capacity = out_i.shape[0]
    flat_first = first.ravel()
    flat_second = second.ravel()
    flat_third = third.ravel()
    survivors = np.empty(column_block, np.uint64)
    survivor_bits = np.empty(column_block, np.uint64)
    found = 0
    for c0 in range(lo, n, column_block):
        c1 = min(c0 + column_block, n)
        for i in range(lo, hi):
            r = np.uint64(i) * WORDS
            a0, a1 = flat_first[r], flat_first[r + np.uint64(1)]
            a2, a3 = flat_first[r + np.uint64(2)], flat_first[r + np.uint64(3)]
            a4, a5 = flat_first[r + np.uint64(4)], flat_first[r + np.uint64(5)]
            a6, a7 = flat_first[r + np.uint64(6)], flat_first[r + np.uint64(7)]
            kept = np.uint64(0)
            for j in range(np.uint64(max(c0, i + 1)), np.uint64(c1)):
                q = j * WORDS
                h = (popcount(a0 ^ flat_first[q]) + popcount(a1 ^ flat_first[q + np.uint64(1)])
                     + popcount(a2 ^ flat_first[q + np.uint64(2)])
                     + popcount(a3 ^ flat_first[q + np.uint64(3)])
                     + popcount(a4 ^ flat_first[q + np.uint64(4)])
                     + popcount(a5 ^ flat_first[q + np.uint64(5)])
                     + popcount(a6 ^ flat_first[q + np.uint64(6)])
                     + popcount(a7 ^ flat_first[q + np.uint64(7)]))
                survivors[kept] = j  # written always, kept only when h passes
                survivor_bits[kept] = h
                kept += np.uint64(h <= t1)
            for s in range(kept):
                j = survivors[s]
                h = survivor_bits[s]
                q = j * WORDS
                for w in range(8):
                    h += popcount(flat_second[r + np.uint64(w)] ^ flat_second[q + np.uint64(w)])
                if h > t2:
                    continue
                for w in range(8):
                    h += popcount(flat_third[r + np.uint64(w)] ^ flat_third[q + np.uint64(w)])
                if h > t3:
                    continue
                dot = np.float32(0.0)
                for d in range(dim):
                    dot += vectors[i, d] * vectors[j, d]
                if dot >= min_similarity:
                    if found == capacity:
                        return -1
                    out_i[found] = i
                    out_j[found] = j
                    out_c[found] = dot
                    found += 1
    return found
