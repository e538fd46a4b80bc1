"""Does a low-quality query face need a higher "same person" bar? Measured on LFW View 1
DevTrain only (its photos, blurred and shrunk as phones and CCTV blur them), checked on DevTest.

Each DevTrain photo's central face is embedded as it is and degraded (Gaussian blur, a photo
shrunk and enlarged again); every degraded face is a query against every original face of
another person (the library): the stranger tail P(stranger pair >= s) per band of the query's
quality score, against the tail the verdicts ship (data/stranger_tails.json, all of View 1
sharp). Same-person pairs (DevTrain's, one side degraded) show what a quality rule would cost.
Measured: no heavier tail at low quality, and such a rule would lose most blurred right
answers, so none ships (docs/verdicts.md, "Quality and the bar").

    python bench/quality_verdicts.py [--pairs N]            # DevTrain: the tail per band
    python bench/quality_verdicts.py --devtest [--pairs N]  # the check on DevTest
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from common import DATA, require

from pgface.config import CALIBRATED_THRESHOLDS, Settings
from pgface.imaging import read_photo
from pgface.lfw import Pair, central_face, read_pairs
from pgface.library import build_analyzer
from pgface.models.analysis import FaceAnalyzer
from pgface.verdicts import same_person_similarity, strangers_per_search

LFW = DATA / "lfw-view1"
MODEL = "buffalo_sc"
THRESHOLD = CALIBRATED_THRESHOLDS[MODEL]
# Query quality bands (the floor is 0.1: below it a face is not searched)
BANDS = ((0.1, 0.2), (0.2, 0.3), (0.3, 0.5), (0.5, 0.8), (0.8, 1.01))
SIMILARITIES = (0.23, 0.25, 0.28, 0.30, 0.33, 0.35)
LIBRARY_SIZES = (400, 1_000, 10_000, 100_000)


def blurred(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda image: cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)


def shrunk(factor: int) -> Callable[[np.ndarray], np.ndarray]:
    def degrade(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        small = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return degrade


DEGRADATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sharp": lambda image: image,
    "blur2": blurred(2.0), "blur3": blurred(3.0), "shrunk6": shrunk(6),
}


Faces = dict[str, dict[str, tuple[np.ndarray, float]]]  # degradation -> photo -> (unit, q)


def pair_photos(pair_file: Path, per_kind: int = 0) -> tuple[list[str], list[Pair]]:
    """The photos of the file's pairs (per_kind: of its first same and different pairs only,
    2 cores take about 0.1 s a photo and degradation)."""
    pairs = read_pairs(pair_file)
    if per_kind:
        pairs = ([p for p in pairs if p.same][:per_kind]
                 + [p for p in pairs if not p.same][:per_kind])
    return sorted({p.left for p in pairs} | {p.right for p in pairs}), pairs


def embed(analyzer: FaceAnalyzer, settings: Settings, photos: list[str],
          degrade: Callable[[np.ndarray], np.ndarray]) -> dict[str, tuple[np.ndarray, float]]:
    """photo -> (unit embedding, quality score) of its central face, the photo degraded."""
    found = {}
    for relative in photos:
        photo = read_photo(LFW / "images" / relative, settings.max_file_bytes,
                           settings.max_pixels)
        image = degrade(photo.image)
        face = central_face(analyzer.detect(image), image.shape[1], image.shape[0])
        if face is None:
            continue
        crop = analyzer.align(image, face)  # measures the face's quality
        if face.quality is not None:
            found[relative] = (analyzer.embed_aligned([crop])[0], face.quality.score)
    return found


def measure(analyzer: FaceAnalyzer, settings: Settings, photos: list[str]) -> Faces:
    return {name: embed(analyzer, settings, photos, degrade)
            for name, degrade in DEGRADATIONS.items()}


def band_of(score: float) -> tuple[float, float] | None:
    return next((b for b in BANDS if b[0] <= score < b[1]), None)


def band_text(band: tuple[float, float]) -> str:
    return f"{band[0]:.1f}-{min(band[1], 1.0):.1f}"


def person(relative: str) -> str:
    return relative.split("/")[0]


def stranger_tails(faces: Faces) -> None:
    """Every degraded face against every sharp face of another person, per query band."""
    library = sorted(faces["sharp"])
    vectors = np.stack([faces["sharp"][p][0] for p in library])
    people = np.array([person(p) for p in library])
    pooled: dict[tuple[float, float], list[np.ndarray]] = {b: [] for b in BANDS}
    kinds: dict[tuple[float, float], dict[str, int]] = {b: {} for b in BANDS}
    for name, found in faces.items():
        for relative, (vector, score) in found.items():
            band = band_of(score)
            if band is not None:
                pooled[band].append(vectors[people != person(relative)] @ vector)
                kinds[band][name] = kinds[band].get(name, 0) + 1
    print("shipped tail P(>= s): " + ", ".join(
        f"{s}: {strangers_per_search(s, 1, MODEL):.2e}" for s in SIMILARITIES))
    print("\n| query quality | queries by degradation | stranger pairs | "
          + " | ".join(f"P(>= {s}) (pairs) / shipped" for s in SIMILARITIES) + " |")
    for band, parts in pooled.items():
        if not parts:
            continue
        sims = np.concatenate(parts)
        cells = []
        for s in SIMILARITIES:
            above = int(np.sum(sims >= s))
            rate = above / len(sims)
            cells.append(f"{rate:.1e} ({above}) "
                         f"{rate / strangers_per_search(s, 1, MODEL):.1f}x")
        print(f"| {band_text(band)} | {kinds[band]} | {len(sims)} | "
              + " | ".join(cells) + " |")


def same_pairs(faces: Faces, pairs: list[Pair], min_same_quality: float) -> None:
    """Same-person pairs, the left photo degraded (each way) and the right sharp, and
    different-person pairs so too: called "same" at each library size's bar, without and with
    the rule that a "same" needs the query's quality >= min_same_quality."""
    print(f"\n| library size (bar) | query | same pairs | right 'same' before | after | "
          f"strangers 'same' before | after |  (rule: quality >= {min_same_quality})")
    for size in LIBRARY_SIZES:
        bar = same_person_similarity(size, MODEL, THRESHOLD)
        for name, found in faces.items():
            counts = {True: [0, 0, 0], False: [0, 0, 0]}  # pairs, "same" before, after
            for pair in pairs:
                if pair.left not in found or pair.right not in faces["sharp"]:
                    continue
                vector, score = found[pair.left]
                sim = float(vector @ faces["sharp"][pair.right][0])
                c = counts[pair.same]
                c[0] += 1
                c[1] += sim >= bar
                c[2] += sim >= bar and score >= min_same_quality
            same, diff = counts[True], counts[False]
            print(f"| {size} ({bar}) | {name} | {same[0]} | {same[1]} | {same[2]} | "
                  f"{diff[1]} | {diff[2]} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devtest", action="store_true",
                        help="the check on DevTest of a rule chosen on DevTrain")
    parser.add_argument("--min-same-quality", type=float, default=0.3)
    parser.add_argument("--pairs", type=int, default=0,
                        help="the first N same and N different pairs' photos only")
    args = parser.parse_args()
    require(LFW / "images")
    settings = Settings()
    analyzer = build_analyzer(settings)
    started = time.perf_counter()
    pair_file = LFW / ("pairsDevTest.txt" if args.devtest else "pairsDevTrain.txt")
    photos, pairs = pair_photos(pair_file, args.pairs)
    faces = measure(analyzer, settings, photos)
    print(f"{pair_file.name}: {len(photos)} photos, {len(faces['sharp'])} central faces "
          f"found sharp; {time.perf_counter() - started:.0f} s")
    if not args.devtest:  # the tails are measured on DevTrain only
        stranger_tails(faces)
    same_pairs(faces, pairs, args.min_same_quality)


if __name__ == "__main__":
    main()
