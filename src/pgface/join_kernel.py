"""The compiled inner loop of similarity_join.py (numba): imported only when a join runs."""

from __future__ import annotations

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic


@intrinsic
def popcount(typingctx, x):  # noqa: ANN001, ANN201, ARG001
    """The CPU's popcount of a uint64 (LLVM's ctpop)."""
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202, ARG001
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@numba.njit(nogil=True, cache=True, fastmath=True, boundscheck=False)
def join(first, second, vectors, lo, hi, t1, t2, min_similarity, column_block,  # noqa: ANN001, ANN201
         out_i, out_j, out_c):
    """Pairs (i, j), lo <= i < hi, i < j, that pass both bit limits and whose cosine is
    >= min_similarity, written to out_*; returns how many, or -1 when they do not fit.
    Columns go by tiles of column_block (their codes stay in L2), the row's codes in
    registers."""
    n = first.shape[0]
    dim = vectors.shape[1]
    capacity = out_i.shape[0]
    found = 0
    for c0 in range(lo, n, column_block):
        c1 = min(c0 + column_block, n)
        for i in range(lo, hi):
            a0, a1, a2, a3 = first[i, 0], first[i, 1], first[i, 2], first[i, 3]
            a4, a5, a6, a7 = first[i, 4], first[i, 5], first[i, 6], first[i, 7]
            for j in range(max(c0, i + 1), c1):
                h = (popcount(a0 ^ first[j, 0]) + popcount(a1 ^ first[j, 1])
                     + popcount(a2 ^ first[j, 2]) + popcount(a3 ^ first[j, 3])
                     + popcount(a4 ^ first[j, 4]) + popcount(a5 ^ first[j, 5])
                     + popcount(a6 ^ first[j, 6]) + popcount(a7 ^ first[j, 7]))
                if h > t1:
                    continue
                for w in range(8):
                    h += popcount(second[i, w] ^ second[j, w])
                if h > t2:
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
