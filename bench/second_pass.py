"""The detector's second pass and two ways to make it cheaper, measured (issue 13's "a cheaper
second pass, only where the first pass can have missed faces").

pgface detects at 256 (faces that fill the frame) and, on a photo larger than 256 pixels, again
at 640 (smaller faces). On the shared photos the second pass is about a third of indexing's
wall time. Measured here, on the same photos and models:

1. **Skipping the second pass** where the first shows no sign of a face it could have missed:
   the first pass's candidates below the detection threshold, away from every face it found,
   all score under a gate. For each gate: photos whose second pass would be skipped, the share
   of second-pass time saved, and the faces lost (faces only the second pass finds, in skipped
   photos). Two sets: the shared photos the second pass runs on, and the group and
   detection-truth photos placed on a grey canvas 1.5, 2 and 3 times their size (the same
   faces, relatively smaller: a wide shot).
2. **A canvas cut to the photo's shape**: the detector's input padded only up to the next of
   1/2, 9/16, 2/3 and 3/4 of the size, or to 3/4 alone (multiples of 32), instead of a
   square; the photo is scaled exactly as before. Detection alone, one caller, in rotating
   order; then the indexer end to end into PostgreSQL, every extra shape compiled before the
   clock. The first pass alone is timed beside them: what the second pass costs.

    python bench/second_pass.py [--repeat 5] [--smoke]

Prints the tables and writes docs/benchmarks-second-pass.md (--smoke: a dozen photos, one
round, nothing written).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from common import DATA, DOCS, HostClock, machine, markdown_table, photos_under, require
from indexing import run_pgface
from truth import overlap

from pgface import Settings
from pgface.errors import ImageError
from pgface.imaging import read_photo
from pgface.library import build_analyzer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.scrfd import SCRFD

GATES = (0.05, 0.1, 0.2, 0.3)
PADS = (1.5, 2.0, 3.0)
CANVAS_FRACTIONS = (1 / 2, 9 / 16, 2 / 3, 3 / 4)
LOW_THRESHOLD = 0.01  # the first pass's candidates, read far below the detection threshold
SAME_FACE = 0.3  # a face of both passes that overlaps one of the first pass by this is that face
NEAR_FACE = 0.1  # a candidate overlapping a found face by this is that face's, not a new sign
GREY = 110


class FittedCanvas(FaceAnalyzer):
    """pgface's analyzer with each pass's input cut to the photo's shape (the experiment):
    padded to the next of FRACTIONS of the square that holds the scaled photo."""

    fractions: tuple[float, ...] = CANVAS_FRACTIONS

    def sizes_for(self, image: np.ndarray) -> list[tuple[int, int]]:
        height, width = image.shape[:2]
        return [fitted(size[0], height, width, self.fractions)
                for size in super().sizes_for(image)]

    def warm_up(self) -> None:
        """pgface's warm-up, and the cut canvases' shapes compiled too."""
        super().warm_up()
        self._load()[0].compile_sizes(self.extra_sizes())

    def extra_sizes(self) -> list[tuple[int, int]]:
        """The cut canvases' (width, height) input sizes."""
        sizes = []
        for size, _ in self.det_sizes:
            for side in sorted({canvas_side(size, f) for f in self.fractions} - {size}):
                sizes += [(size, side), (side, size)]
        return sizes


class ThreeQuarterCanvas(FittedCanvas):
    """The cut canvas with one shape per orientation: 4:3, 3:2 and 16:9 photos all fit it."""

    fractions = (3 / 4,)


class FirstPassOnly(FaceAnalyzer):
    """pgface's analyzer without the second pass: what the second pass costs, and finds."""

    def sizes_for(self, image: np.ndarray) -> list[tuple[int, int]]:
        return super().sizes_for(image)[:1]


def canvas_side(size: int, fraction: float) -> int:
    return min(size, -(-math.ceil(fraction * size) // 32) * 32)


def fitted(size: int, height: int, width: int, fractions: Sequence[float]) -> tuple[int, int]:
    """(width, height) of the smallest canvas of the fractions that holds the photo scaled as
    into a size x size square (letterbox_into then scales it the same way)."""
    ratio = min(height, width) / max(height, width)
    # at least the scaled short side, so that letterbox_into fits the long side as before
    side = next((canvas_side(size, f) for f in fractions
                 if canvas_side(size, f) >= size * ratio), size)
    return (size, side) if width >= height else (side, size)


def shared_images(keep_side: int) -> list[tuple[str, np.ndarray]]:
    """The shared photos the second pass runs on (longest side over 256), decoded as the
    indexer decodes them."""
    out = []
    for path in photos_under(require(DATA / "photos")):
        try:
            image = read_photo(path, 1 << 30, 1 << 30, keep_side=keep_side).image
        except ImageError:
            continue
        if max(image.shape[:2]) > 256:
            out.append((str(path.relative_to(DATA / "photos")), image))
    return out


def padded_images() -> list[tuple[str, np.ndarray]]:
    """Group and detection-truth photos at the top left of a grey canvas PAD times their size."""
    photos = DATA / "photos"
    out = []
    for path in sorted((photos / "groups").glob("*.jpg")) + sorted(
            (photos / "detection-truth").glob("*.jpg")):
        image = read_photo(path, 1 << 30, 1 << 30).image
        height, width = image.shape[:2]
        for pad in PADS:
            canvas = np.full((int(height * pad), int(width * pad), 3), GREY, dtype=np.uint8)
            canvas[:height, :width] = image
            out.append((f"{path.name} x{pad}", canvas))
    return out


def passes(analyzer: FaceAnalyzer, images: Sequence[tuple[str, np.ndarray]]) -> list[dict]:
    """Per photo: faces of both passes, faces only the second finds, the first pass's highest
    score away from its faces, the second pass's time alone."""
    detector, _ = analyzer._load()
    low = SCRFD(detector.session, det_threshold=LOW_THRESHOLD)
    first, second = analyzer.det_sizes[0], analyzer.det_sizes[-1]
    rows = []
    for name, image in images:
        found_first = analyzer._faces(*detector.detect(image, [first]), image.shape)
        first_boxes = np.array([f.bbox for f in found_first]).reshape(-1, 4)
        both = analyzer.detect(image)
        both_boxes = np.array([f.bbox for f in both]).reshape(-1, 4)
        near = overlap(both_boxes, first_boxes)
        added = int((near.max(axis=1, initial=0.0) <= SAME_FACE).sum())
        candidates, _ = low._candidates(image, first)
        away = overlap(candidates[:, :4], first_boxes).max(axis=1, initial=0.0) <= NEAR_FACE
        residual = float(candidates[away, 4].max(initial=0.0))
        started = time.perf_counter()
        detector.detect(image, [second])
        rows.append({"name": name, "faces": len(both), "added": added, "residual": residual,
                     "second_s": time.perf_counter() - started})
    return rows


def gate_tables(sets: dict[str, list[dict]]) -> tuple[str, str]:
    summary, gates = [], []
    for label, rows in sets.items():
        adding = [r for r in rows if r["added"]]
        quiet = [r for r in rows if not r["added"]]
        summary.append([
            label, len(rows), sum(r["faces"] for r in rows), sum(r["added"] for r in rows),
            len(adding), f"{min((r['residual'] for r in adding), default=0):.3f}",
            f"{max((r['residual'] for r in quiet), default=0):.3f}",
            f"{statistics.median([r['residual'] for r in quiet]) if quiet else 0:.3f}"])
        total = sum(r["second_s"] for r in rows)
        for gate in GATES:
            skipped = [r for r in rows if r["residual"] < gate]
            gates.append([label, gate, f"{len(skipped)} of {len(rows)}",
                          f"{100 * sum(r['second_s'] for r in skipped) / total:.0f} %",
                          sum(r["added"] for r in skipped),
                          sum(1 for r in skipped if r["added"])])
    return (markdown_table(
        ["photos", "count", "faces (both passes)", "faces only the second pass finds",
         "photos where it finds any", "lowest first-pass sign among those",
         "highest first-pass sign where it finds none", "median sign where it finds none"],
        summary),
        markdown_table(["photos", "gate", "second passes skipped", "second-pass time saved",
                        "faces lost", "photos losing faces"], gates))


VARIANTS: dict[str, type[FaceAnalyzer]] = {
    "square canvas (pgface)": FaceAnalyzer,
    "canvas cut to 1/2, 9/16, 2/3 or 3/4": FittedCanvas,
    "canvas cut to 3/4": ThreeQuarterCanvas,
    "first pass only (256)": FirstPassOnly,
}


def rotated(names: Sequence[str], number: int) -> list[str]:
    shift = number % len(names)
    return [*names[shift:], *names[:shift]]


def agreement(square: Sequence[Sequence], other: Sequence[Sequence]) -> str:
    """How the boxes of a variant match the square canvas's, photo by photo."""
    lowest, unmatched = 1.0, 0
    for a, b in zip(square, other, strict=True):
        ious = overlap(np.array([f.bbox for f in a]).reshape(-1, 4),
                       np.array([f.bbox for f in b]).reshape(-1, 4))
        best = ious.max(axis=1, initial=0.0)
        unmatched += int((best < 0.5).sum()) + abs(len(a) - len(b))
        lowest = min([lowest, *best[best >= 0.5]])
    return f"{unmatched} unmatched, lowest IoU {lowest:.3f}"


def timed_rows(what: str, times: dict[str, list[float]], photos: int,
               faces: dict[str, int], boxes: dict[str, str], startups: dict[str, float]
               ) -> tuple[list[list[object]], float]:
    """The table's rows, and the largest slowest-to-fastest ratio of one variant's runs."""
    base = statistics.median(times[next(iter(VARIANTS))])
    rows = []
    for name, runs in times.items():
        median = statistics.median(runs)
        rows.append([what, name, photos, faces[name],
                     f"{median:.2f} ({min(runs):.2f}-{max(runs):.2f})", f"{base / median:.2f}x",
                     boxes.get(name, "-"), f"{startups[name]:.1f}"])
    return rows, max(max(runs) / min(runs) for runs in times.values())


def detection_alone(settings: Settings, images: Sequence[tuple[str, np.ndarray]],
                    repeat: int) -> tuple[list[list[object]], float]:
    """Both passes over every image on one thread, the variants in a rotating order."""
    one_thread = settings.model_copy(update={"threads": 1})
    analyzers = {name: build_analyzer(one_thread, cls) for name, cls in VARIANTS.items()}
    startups = {}
    for name, analyzer in analyzers.items():
        started = time.perf_counter()
        analyzer.warm_up()
        startups[name] = time.perf_counter() - started
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    found: dict[str, list] = {}
    for number in range(repeat):
        for name in rotated(list(VARIANTS), number):
            started = time.perf_counter()
            found[name] = [analyzers[name].detect(image) for _, image in images]
            times[name].append(time.perf_counter() - started)
    square = found[next(iter(VARIANTS))]
    boxes = {name: agreement(square, found[name]) for name in list(VARIANTS)[1:]}
    faces = {name: sum(len(f) for f in found[name]) for name in VARIANTS}
    return timed_rows("detection alone (one thread)", times, len(images), faces, boxes,
                      startups)


def indexing(paths: list[Path], repeat: int) -> tuple[list[list[object]], float]:
    """The indexer end to end with each variant (bench/indexing.py's run: a fresh database,
    the models loaded and every shape compiled before the clock), in a rotating order."""
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    faces: dict[str, int] = {}
    startups = dict.fromkeys(VARIANTS, 0.0)
    for number in range(repeat):
        for name in rotated(list(VARIANTS), number):
            run = run_pgface(paths, "b_second_pass", VARIANTS[name])
            times[name].append(run["seconds"])
            faces[name] = run["faces"]
            startups[name] = max(startups[name], run["load"])
            print(f"  indexing, {name}: {run['seconds']:.2f} s", flush=True)
    return timed_rows("pgface index, in process", times, len(paths), faces, {}, startups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="alternated rounds to time")
    parser.add_argument("--smoke", action="store_true", help="a short run that writes nothing")
    args = parser.parse_args()
    repeat = 1 if args.smoke else max(1, args.repeat)
    few = 12 if args.smoke else None
    started = time.time()
    host = HostClock()
    settings = Settings()
    square = build_analyzer(settings.model_copy(update={"threads": 1}))
    square.warm_up()
    shared = shared_images(settings.decode_keep_side)[:few]
    sets = {"shared photos over 256 px": passes(square, shared),
            "group and detection-truth photos on a canvas 1.5, 2, 3x their size":
                passes(square, padded_images()[:few])}
    summary, gates = gate_tables(sets)
    canvas_rows, detection_spread = detection_alone(settings, shared, repeat)
    indexing_rows, indexing_spread = indexing(photos_under(DATA / "photos")[:few], repeat)
    canvas_rows += indexing_rows
    canvas = markdown_table(["what", "detector input", "photos", "faces",
                             f"s, median of {repeat} (range)", "speed vs square",
                             "boxes against the square's",
                             "start-up s (slowest run)"],
                            canvas_rows)
    spread = max(detection_spread, indexing_spread) if repeat > 1 else None
    text = (
        f"## The detector's second pass\n\nMachine: {machine()}; {host.note(spread)} "
        f"({(time.time() - started) / 60:.0f} minutes in all). "
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/second_pass.py --repeat "
        f"{repeat}`.\n\n"
        "pgface detects every photo at 256 and, when it is larger than 256 pixels, again at "
        "640; each pass letterboxes the photo into a square. The second pass finds the "
        "faces too small for the first, and costs what the row \"first pass only\" of the "
        "last table saves. This page measures the two ways of making it cheaper that issue 13 "
        "names; neither is shipped (docs/benchmarks-indexing.md says why).\n\n"
        "### Skipping the second pass where the first shows no sign of a missed face\n\n"
        "A photo's *first-pass sign*: the highest score among the 256 pass's candidates "
        f"(read down to {LOW_THRESHOLD}) that overlap none of the faces it found (intersection "
        f"over union {NEAR_FACE} or less); the detection threshold is "
        f"{settings.det_threshold}. A gate skips the 640 pass where the sign is under it. "
        "Faces only the second pass finds: faces of both passes merged that overlap none of "
        f"the first pass's by more than {SAME_FACE}. Second-pass times: one thread, one "
        "photo at a time.\n\n"
        f"{summary}\n\n{gates}\n\n"
        "### A canvas cut to the photo's shape\n\n"
        "The same scaling of the photo, padded only to the next of 1/2, 9/16, 2/3 and 3/4 of "
        "the square (multiples of 32: 640x320, 384, 448, 480; 256x128, 160, 192), or to 3/4 "
        "alone (one shape per orientation, which 4:3, 3:2 and 16:9 photos all fit), in either "
        "orientation; each shape is one more compiled model per stream setting. The shared "
        "photos; detection alone on one thread (both passes), then `pgface index` in process "
        "into a fresh database. Before the clock, each run loads the models and compiles every "
        "shape it will use (and `pgface index` opens the database): the start-up column, the "
        "slowest of the runs, the first compiling what OpenVINO's cache lacks.\n\n"
        f"{canvas}\n")
    print(text)
    if not args.smoke:
        (DOCS / "benchmarks-second-pass.md").write_text(text)


if __name__ == "__main__":
    main()
