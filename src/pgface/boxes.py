"""Face boxes compared: how much two boxes overlap, and which of two sets pair up."""

from __future__ import annotations

import numpy as np


def overlaps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of A (N x 4: x1, y1, x2, y2) with every box of B
    (N x M); 0 where a union is empty."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = (np.minimum(a[:, None, 2], b[None, :, 2])
             - np.maximum(a[:, None, 0], b[None, :, 0])).clip(min=0)
    height = (np.minimum(a[:, None, 3], b[None, :, 3])
              - np.maximum(a[:, None, 1], b[None, :, 1])).clip(min=0)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def best_pairs(score: np.ndarray, floor: float) -> list[tuple[int, int, float]]:
    """(row, column, score) pairs of a score matrix, one to one, best first, at FLOOR or
    above; of equal scores the first in row order."""
    pairs, rows, columns = [], set(), set()
    for flat in np.argsort(-score, axis=None, kind="stable"):
        i, j = divmod(int(flat), score.shape[1])
        if score[i, j] < floor:
            break
        if i not in rows and j not in columns:
            rows.add(i)
            columns.add(j)
            pairs.append((i, j, float(score[i, j])))
    return pairs
