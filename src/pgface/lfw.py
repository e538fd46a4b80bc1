"""LFW View 1 protocol: pair files, the face LFW means, threshold calibration and accuracy.

Choose the threshold on DevTrain, report on DevTest (View 2 is the final test and is not used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pgface.models.analysis import Face


@dataclass(frozen=True)
class Pair:
    left: str  # path relative to the images folder
    right: str
    same: bool


def image_path(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(pair_file: Path) -> list[Pair]:
    """pairsDevTrain.txt / pairsDevTest.txt: `Name n1 n2` or `Name1 n1 Name2 n2`, no header."""
    pairs = []
    for line in pair_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            pairs.append(Pair(image_path(parts[0], int(parts[1])),
                              image_path(parts[0], int(parts[2])), True))
        elif len(parts) == 4:
            pairs.append(Pair(image_path(parts[0], int(parts[1])),
                              image_path(parts[2], int(parts[3])), False))
    return pairs


def central_face_index(bboxes: Sequence[Sequence[float]], width: int, height: int) -> int:
    """Which face LFW means: its crops are centred on the labelled person."""
    cx, cy = width / 2, height / 2
    offsets = [((b[0] + b[2]) / 2 - cx) ** 2 + ((b[1] + b[3]) / 2 - cy) ** 2 for b in bboxes]
    return int(np.argmin(offsets))


def central_face(faces: Sequence[Face], width: int, height: int) -> Face | None:
    if not faces:
        return None
    return faces[central_face_index([f.bbox for f in faces], width, height)]


@dataclass(frozen=True)
class Verification:
    threshold: float
    accuracy: float
    false_accept_rate: float
    false_reject_rate: float


def evaluate(similarities: np.ndarray, same: np.ndarray, threshold: float) -> Verification:
    """Decide `same person` when similarity >= threshold and score that against the labels."""
    decided = similarities >= threshold
    same = same.astype(bool)
    far = float(np.mean(decided[~same])) if (~same).any() else 0.0
    frr = float(np.mean(~decided[same])) if same.any() else 0.0
    return Verification(threshold, float(np.mean(decided == same)), far, frr)


def calibrate(similarities: np.ndarray, same: np.ndarray) -> Verification:
    """The threshold of best accuracy; ties go to the middle of the best interval."""
    values = np.sort(np.unique(similarities))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2,
                                 [values[-1] + 1e-6]])
    scores = np.array([evaluate(similarities, same, t).accuracy for t in candidates])
    best = np.flatnonzero(scores == scores.max())
    # Contiguous best thresholds: take the centre of the widest run for a robust margin.
    runs = np.split(best, np.flatnonzero(np.diff(best) != 1) + 1)
    widest = max(runs, key=len)
    threshold = float(candidates[widest[len(widest) // 2]])
    return evaluate(similarities, same, round(threshold, 3))
