"""Hand-drawn face boxes of photos/detection-truth (dlib's imglab XML) and how many of them a
detector's boxes find."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pgface.boxes import best_pairs, overlaps

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


# Intersection over union of every box of A with every box of B (N x M).
overlap = overlaps


def missed(truth: np.ndarray, found: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the truth boxes that no found box overlaps enough (each found box counts
    for one truth box at most: the best-overlapping pairs first)."""
    found_boxes = np.array([list(b)[:4] for b in found], dtype=np.float64).reshape(-1, 4)
    matched = {t for t, _, _ in best_pairs(overlap(truth, found_boxes), MIN_OVERLAP)}
    return [t for t in range(len(truth)) if t not in matched]
