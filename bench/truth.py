"""Hand-drawn face boxes of photos/detection-truth (dlib's imglab XML) and how many of them a
detector's boxes find."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TRUTH_FILES = ("training.xml", "testing.xml")
# dlib's boxes hold eyes to mouth; SCRFD's reach forehead and chin, so the two overlap by
# 0.3 to 0.6 for the same face, and by far less for a neighbour's.
MIN_OVERLAP = 0.25


def truth_boxes(folder: Path) -> dict[str, np.ndarray]:
    """File name -> N x 4 boxes (x1, y1, x2, y2) of every hand-marked face."""
    boxes: dict[str, list[list[float]]] = {}
    for name in TRUTH_FILES:
        for image in ET.parse(folder / name).getroot().iter("image"):
            rows = boxes.setdefault(image.attrib["file"], [])
            for box in image.iter("box"):
                if box.attrib.get("ignore") == "1":
                    continue
                left, top = float(box.attrib["left"]), float(box.attrib["top"])
                rows.append([left, top, left + float(box.attrib["width"]),
                             top + float(box.attrib["height"])])
    return {name: np.array(rows, dtype=np.float64).reshape(-1, 4) for name, rows in boxes.items()}


def overlap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of A with every box of B (N x M)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def missed(truth: np.ndarray, found: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the truth boxes that no found box overlaps enough (each found box counts
    for one truth box at most: the best-overlapping pairs first)."""
    found_boxes = np.array([list(b)[:4] for b in found], dtype=np.float64).reshape(-1, 4)
    scores = overlap(truth, found_boxes)
    matched: set[int] = set()
    used: set[int] = set()
    for flat in np.argsort(-scores, axis=None):
        t, f = divmod(int(flat), scores.shape[1])
        if scores[t, f] < MIN_OVERLAP:
            break
        if t not in matched and f not in used:
            matched.add(t)
            used.add(f)
    return [t for t in range(len(truth)) if t not in matched]
