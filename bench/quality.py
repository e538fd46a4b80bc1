"""The face-quality floor measured: faces it drops on photos with no face, on hard photos, on
PASCAL VOC photos with hand-drawn face boxes, on group photos, and on LFW View 1, where no
labelled (central) face may be lost and the DevTest pair accuracy must not change.

Runs pgface's own analyzer (detection, alignment, quality, embedding) over
../shared/data/photos/* and all 4,992 LFW View 1 photos; no database.

    python bench/quality.py             # writes docs/benchmarks-quality.md
    python bench/quality.py --lfw 300   # the first 300 LFW photos only, nothing written
"""

from __future__ import annotations

import argparse
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import DATA, DOCS, machine, markdown_table, photos_under, require

from pgface.config import CALIBRATED_THRESHOLDS, Settings
from pgface.imaging import read_photo
from pgface.lfw import central_face_index, evaluate, read_pairs
from pgface.library import build_analyzer
from pgface.models import quality
from pgface.models.analysis import FaceAnalyzer

PHOTO_SETS = ("not-faces", "tricky", "detection-truth", "groups", "people", "queries")
FLOORS = (0.05, 0.1, 0.15, 0.2, 0.3)
THRESHOLD = CALIBRATED_THRESHOLDS["buffalo_sc"]


@dataclass
class Measured:
    photo: str  # relative to its set
    index: int  # largest face first
    central: bool  # the face LFW labels (the one nearest the photo's centre)
    bbox: np.ndarray
    det_score: float
    quality: quality.FaceQuality
    embedding: np.ndarray
    truth: bool | None = None  # detection-truth: overlaps a hand-drawn face box


def measure(analyzer: FaceAnalyzer, settings: Settings, path: Path, root: Path
            ) -> list[Measured]:
    photo = read_photo(path, settings.max_file_bytes, settings.max_pixels)
    faces = analyzer.detect(photo.image)
    if not faces:
        return []
    central = central_face_index([f.bbox for f in faces], photo.width, photo.height)
    crops = [analyzer.align(photo.image, face) for face in faces]  # measures each quality
    vectors = analyzer.embed_aligned(crops)
    return [Measured(str(path.relative_to(root)), i, i == central, f.bbox, f.det_score,
                     f.quality, vectors[i])
            for i, f in enumerate(faces)]


def truth_boxes(folder: Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """Hand-drawn face boxes (x1, y1, x2, y2) by file name, from dlib's imglab XML files."""
    boxes: dict[str, list[tuple[float, float, float, float]]] = {}
    for name in ("training.xml", "testing.xml"):
        for image in ET.parse(folder / name).getroot().iter("image"):
            for box in image.iter("box"):
                left, top = float(box.get("left")), float(box.get("top"))
                boxes.setdefault(image.get("file"), []).append(
                    (left, top, left + float(box.get("width")), top + float(box.get("height"))))
    return boxes


def overlaps(face_box: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> bool:
    """Whether the detection's centre lies inside a hand-drawn box (those are tighter than
    SCRFD's, so IoU would undercount)."""
    cx, cy = (face_box[0] + face_box[2]) / 2, (face_box[1] + face_box[3]) / 2
    return any(x1 <= cx <= x2 and y1 <= cy <= y2 for x1, y1, x2, y2 in boxes)


def run_photos(analyzer: FaceAnalyzer, settings: Settings) -> dict[str, list[Measured]]:
    root = require(DATA / "photos")
    truth = truth_boxes(root / "detection-truth")
    found: dict[str, list[Measured]] = {}
    for name in PHOTO_SETS:
        folder = root / name
        faces: list[Measured] = []
        for path in photos_under(folder):
            measured = measure(analyzer, settings, path, folder)
            if name == "detection-truth":
                for m in measured:  # photos the XML files do not cover stay None
                    if path.name in truth:
                        m.truth = overlaps(m.bbox, truth[path.name])
            faces += measured
        found[name] = faces
    return found


def run_lfw(analyzer: FaceAnalyzer, settings: Settings, limit: int | None
            ) -> tuple[list[Measured], int]:
    images = require(DATA / "lfw-view1" / "images")
    paths = sorted(images.glob("*/*.jpg"))[:limit]
    faces: list[Measured] = []
    for path in paths:
        faces += measure(analyzer, settings, path, images)
    return faces, len(paths)


def pair_accuracy(central: dict[str, Measured], floor: float | None) -> tuple[float, int]:
    """DevTest accuracy at the calibrated threshold; with a floor, a pair with a face below it
    is decided `different` (such a face is not searched). Also the pairs left out for lack
    of a measured face (only with --lfw)."""
    pairs = read_pairs(DATA / "lfw-view1" / "pairsDevTest.txt")
    kept = [p for p in pairs if p.left in central and p.right in central]
    sims = np.array([float(central[p.left].embedding @ central[p.right].embedding)
                     for p in kept])
    if floor is not None:
        low = np.array([quality.below(central[p.left].quality.score, floor)
                        or quality.below(central[p.right].quality.score, floor) for p in kept])
        sims = np.where(low, -1.0, sims)
    verdict = evaluate(sims, np.array([p.same for p in kept]), THRESHOLD)
    return verdict.accuracy, len(pairs) - len(kept)


def dropped(faces: list[Measured], floor: float) -> list[Measured]:
    return [f for f in faces if quality.below(f.quality.score, floor)]


def describe(face: Measured) -> str:
    q = face.quality
    return (f"{face.photo} #{face.index}: score {q.score:.3f} (detection {face.det_score:.3f}, "
            f"{q.face_size:.0f} px, yaw {q.yaw:+.2f}, pitch {q.pitch:.2f}, "
            f"sharpness {q.sharpness:.0f})")


def report(sets: dict[str, list[Measured]], lfw: list[Measured], lfw_photos: int,
           seconds: float) -> str:
    floor = Settings().min_quality
    central = [f for f in lfw if f.central]
    others = [f for f in lfw if not f.central]
    by_photo = {f.photo: f for f in central}
    rows = []
    for name, faces in sets.items():
        rows.append([f"photos/{name}", len(faces), len(dropped(faces, floor)),
                     *[len(dropped(faces, v)) for v in FLOORS]])
    rows.append([f"LFW central faces ({lfw_photos} photos)", len(central),
                 len(dropped(central, floor)), *[len(dropped(central, v)) for v in FLOORS]])
    rows.append(["LFW other faces (not labelled)", len(others), len(dropped(others, floor)),
                 *[len(dropped(others, v)) for v in FLOORS]])
    lowest = sorted(central, key=lambda f: f.quality.score)[:5]
    truth = sets["detection-truth"]
    false_drops = [f for f in dropped(truth, floor) if f.truth]
    no_box = [f for f in truth if f.truth is False]
    # The rule: the largest multiple of 0.05 at least 0.05 below the lowest LFW labelled face.
    by_rule = np.floor(round((lowest[0].quality.score - 0.05) / 0.05, 6)) * 0.05
    accuracy, unmeasured = pair_accuracy(by_photo, None)
    floored, _ = pair_accuracy(by_photo, floor)
    lfw_vectors = np.stack([f.embedding for f in central])
    lines = [
        "# Face quality: the floor measured",
        "",
        "Made by `python bench/quality.py` (pgface's analyzer: SCRFD at 256 + 640 px, "
        "alignment, quality, ArcFace; no database) in "
        f"{seconds / 60:.0f} min on {machine()}.",
        "",
        "Each face gets a quality score from 0 to 1 (`src/pgface/models/quality.py`): the "
        "product of five factors, each 1 where its signal is good enough and falling linearly "
        "to 0 where the face is unusable:",
        "",
        markdown_table(["signal", "factor 0 at", "factor 1 from", "why"], [
            ["detection score", quality.DETECTION_RAMP[0], quality.DETECTION_RAMP[1],
             "SCRFD stops at 0.5; real faces score about 0.84 (LFW median)"],
            ["face size (shorter box side, px)", quality.SIZE_RAMP[0], quality.SIZE_RAMP[1],
             "the recognizer sees 112 px; below 40 px identity detail goes"],
            ["yaw (nose off the eye-mouth axis, axis lengths)", quality.YAW_RAMP[1],
             quality.YAW_RAMP[0], "0 frontal; about 0.5 near profile"],
            ["pitch (nose along the axis: 0 eyes, 1 mouth)",
             f"{quality.PITCH_LOW_RAMP[0]} / {quality.PITCH_HIGH_RAMP[1]}",
             f"{quality.PITCH_LOW_RAMP[1]} to {quality.PITCH_HIGH_RAMP[0]}",
             "about 0.55 frontal; landmarks beyond the eyes or mouth are not a face"],
            ["sharpness (variance of the Laplacian, aligned grey crop)",
             quality.SHARPNESS_RAMP[0], quality.SHARPNESS_RAMP[1],
             "LFW's blurriest labelled face: 13"],
        ]),
        "",
        f"## Faces dropped by the floor (default {floor}) and by other floors",
        "",
        markdown_table(["set", "faces detected", f"dropped at {floor}",
                        *[f"at {v}" for v in FLOORS]], rows),
        "",
        f"**The floor: {floor}.** Rule: the largest round value that keeps a margin of at "
        f"least 0.05 below the lowest-scoring LFW labelled face (LFW must lose no face). "
        f"The lowest LFW labelled face scores {lowest[0].quality.score:.3f}: the rule gives "
        f"{by_rule:.2f}, and the margin is {lowest[0].quality.score - floor:.3f}. "
        f"LFW View 1 DevTest accuracy at the "
        f"calibrated threshold {THRESHOLD}: {accuracy:.1%} without the floor, "
        f"{floored:.1%} with it (a pair with a face below the floor counts as `different`)"
        + (f"; {unmeasured} pairs lacked a measured photo" if unmeasured else "") + ".",
        "",
        "Lowest-scoring LFW labelled faces:",
        "",
        *[f"- {describe(f)}" for f in lowest],
        "",
        f"### Dropped at {floor}, outside LFW",
        "",
    ]
    for name, faces in sets.items():
        for face in dropped(faces, floor):
            mark = ("" if face.truth is None else
                    " (a hand-drawn face)" if face.truth else " (no hand-drawn face there)")
            lines.append(f"- {name}/{describe(face)}{mark}")
    lines += [
        "",
        f"On detection-truth (the photos its XML files cover), {len(false_drops)} dropped "
        f"face(s) lie in a hand-drawn face box; {len(no_box)} detection(s) lie in none: "
        f"{'; '.join(describe(f) for f in no_box) or 'none'}.",
        "",
        "## The dog of not-faces/dogs.jpg",
        "",
    ]
    for face in sets["not-faces"]:
        below_it = sum(f.quality.score < face.quality.score for f in central)
        best = float(np.max(lfw_vectors @ face.embedding))
        fate = "dropped" if quality.below(face.quality.score, floor) else "kept"
        why = (f"{below_it} LFW labelled faces score lower, so no floor that keeps every LFW "
               "face can drop it: its detection score and landmark geometry lie inside "
               "LFW's range" if below_it else "it scores below every LFW labelled face")
        lines.append(
            f"- {describe(face)}, {fate}: {why}. Its best cosine similarity to any of the "
            f"{len(central)} LFW faces is {best:.3f} (match threshold {THRESHOLD}).")
    lines += [
        "",
        "## Where the floor applies",
        "",
        "- **Search**: a face of the query photo below the floor is reported with its quality "
        "and `searched: false`, and not searched. Faces in the library are all searched: a "
        "low-quality stored face is only returned when a good query face resembles it at or "
        "above the match threshold, which is evidence in itself, and a floor changed later "
        "needs no re-indexing.",
        "- **Clustering**: faces below the floor that no person holds are neither put in a "
        "person nor counted as anyone's neighbour; `people cluster --full` takes them out of "
        "the people clustering gave them. A face a human named stays where it is.",
        "- Faces stored before quality was measured have no score (their size, yaw and pitch "
        "are filled in from their box and landmarks by migration 0009; sharpness needs the "
        "aligned crop, which is not stored) and are never below the floor.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=int, default=None, help="only the first N LFW photos; "
                        "nothing is written")
    args = parser.parse_args()
    settings = Settings()
    analyzer = build_analyzer(settings)
    started = time.perf_counter()
    sets = run_photos(analyzer, settings)
    lfw, lfw_photos = run_lfw(analyzer, settings, args.lfw)
    text = report(sets, lfw, lfw_photos, time.perf_counter() - started)
    print(text)
    if args.lfw is None:
        (DOCS / "benchmarks-quality.md").write_text(text)


if __name__ == "__main__":
    main()
