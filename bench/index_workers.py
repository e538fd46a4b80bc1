"""The indexer's workers: one more than the cores, the largest files of a batch started first,
and face thumbnails averaged down by a whole factor, each against the way it was before, on
the photo sets of bench/indexing.py.

    python bench/index_workers.py             # about 5 minutes on 2 cores; writes
                                              # docs/benchmarks-index-workers.md
    python bench/index_workers.py --smoke     # seconds; prints, writes nothing

`pgface index` into a fresh database (bench/indexing.py's run_pgface), the ways alternated in
a rotating order so that the machine's changing speed touches all alike; for each way the
median run, and the median over the rounds of its time against the default's in the same
round. Thumbnails: every face the detector finds, cut on one thread, against OpenCV's area
resize of the whole patch in one step (the way before), best of 5 rounds, with how far the
pixels moved (PSNR against the one-step area resize, before JPEG encoding).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import cv2
import numpy as np
from common import DOCS, CpuMeter, HostClock, machine, markdown_table
from indexing import PhotoSet, largest_spread, median_run, photo_sets, run_pgface

from pgface import imaging, index
from pgface.config import Settings
from pgface.errors import ImageError
from pgface.imaging import face_patch, read_photo
from pgface.library import build_analyzer

DATABASE = "b_index_workers"
DEFAULT = "default: a worker more than the cores, largest files first"
WAYS = (DEFAULT, "one worker per core", "files in the order listed")
_T = TypeVar("_T")


def _in_order(workers: ThreadPoolExecutor, analyse: Callable[[index._Read], _T],
              reads: Sequence[index._Read]) -> list[_T]:
    """The way before: a batch's files handed to the workers in the order listed."""
    return list(workers.map(analyse, reads))


@contextmanager
def way(name: str) -> Iterator[None]:
    extra, ordering = index.EXTRA_WORKERS, index._largest_first
    try:
        if name == "one worker per core":
            index.EXTRA_WORKERS = 0
        elif name == "files in the order listed":
            index._largest_first = _in_order
        yield
    finally:
        index.EXTRA_WORKERS, index._largest_first = extra, ordering


def compare(photo_set: PhotoSet, rounds: int) -> tuple[list[list[object]], float]:
    runs: dict[str, list[dict]] = {name: [] for name in WAYS}
    for number in range(rounds):
        order = WAYS[number % len(WAYS):] + WAYS[:number % len(WAYS)]
        for name in order:
            with way(name):
                runs[name].append(run_pgface(photo_set.paths, DATABASE))
            print(f"  {photo_set.name}: {name}: {runs[name][-1]['seconds']:.2f} s", flush=True)
    rows = []
    for name, results in runs.items():
        chosen, times = median_run(results), [r["seconds"] for r in results]
        meter: CpuMeter = chosen["cpu"]
        against = [r["seconds"] / d["seconds"] for r, d in zip(results, runs[DEFAULT],
                                                               strict=True)]
        slower = sum(a > 1 for a in against)
        rows.append([photo_set.name, name, chosen["faces"],
                     f"{chosen['seconds']:.2f} ({min(times):.2f}-{max(times):.2f})",
                     f"{meter.process:.2f}", "-" if meter.idle is None else f"{meter.idle:.2f}",
                     "-" if name == DEFAULT else
                     f"{statistics.median(against):.3f}x ({slower} of {rounds} slower)"])
    return rows, largest_spread(runs)


def one_step_area(patch: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def whole_factor_then_bilinear(patch: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(imaging._reduced_by_whole_factor(patch, size), (size, size),
                      interpolation=cv2.INTER_LINEAR)


def thumbnails(photo_set: PhotoSet, limit: int) -> list[object]:
    """One row: the set's faces cut both ways on one thread, and how far the pixels moved."""
    settings = Settings(threads=1)
    analyzer = build_analyzer(settings)
    patches = []
    for path in photo_set.paths[:limit]:
        try:
            photo = read_photo(path, settings.max_file_bytes, settings.max_pixels)
        except ImageError:
            continue
        patches += [face_patch(photo.image, face.bbox) for face in analyzer.detect(photo.image)]
    size = settings.crop_size
    best = {}
    for resize in (one_step_area, whole_factor_then_bilinear) * 5:
        started = time.perf_counter()
        for patch in patches:
            cv2.imencode(".jpg", resize(patch, size), [cv2.IMWRITE_JPEG_QUALITY, 85])
        seconds = time.perf_counter() - started
        best[resize] = min(best.get(resize, seconds), seconds)
    psnr = []
    for patch in patches:
        error = np.mean((one_step_area(patch, size).astype(np.float64)
                         - whole_factor_then_bilinear(patch, size)) ** 2)
        psnr.append(99.0 if error == 0 else 10 * np.log10(255**2 / error))
    larger = [p for p, patch in zip(psnr, patches, strict=True) if min(patch.shape[:2]) >= size]
    before, after = best[one_step_area], best[whole_factor_then_bilinear]
    return [photo_set.name, len(patches), f"{1000 * before / len(patches):.2f}",
            f"{1000 * after / len(patches):.2f}", f"{before / after:.2f}x",
            f"{np.median(psnr):.1f}", f"{np.percentile(larger, 5):.1f}", f"{min(larger):.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a short run that writes nothing")
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos to index")
    parser.add_argument("--rounds", type=int, default=8, help="runs of each way")
    args = parser.parse_args()
    host = HostClock()
    rounds = 1 if args.smoke else args.rounds
    sets = photo_sets(args.lfw, args.smoke)
    started = time.time()
    rows, spreads = [], []
    for photo_set in sets:
        set_rows, spread = compare(photo_set, rounds)
        rows += set_rows
        spreads.append(spread)
    thumbnail_rows = [thumbnails(photo_set, 20 if args.smoke else 10**6)
                      for photo_set in sets[:2]]
    minutes = (time.time() - started) / 60
    text = (
        "## The indexer's workers\n\n"
        f"Machine: {machine()}; {host.note(None if rounds == 1 else max(spreads))}. "
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/index_workers.py"
        f"{' --smoke' if args.smoke else ''}` ({minutes:.0f} minutes).\n\n"
        "`pgface index` into a fresh database, end to end (bench/indexing.py's sets and its "
        f"run_pgface), {rounds} rounds, the ways alternated in a rotating order; the median "
        "run of each way (range), its CPU as in docs/benchmarks-indexing.md, and the median "
        "over the rounds of its time against the default's in the same round. The default: "
        "a worker per core and one more (`index.EXTRA_WORKERS`), each batch's largest files "
        "handed to the workers first (`index._largest_first`). The other ways change one of "
        "the two back.\n\n"
        + markdown_table(["photos", "indexing", "faces", "s, median (range)",
                          "the process's CPU s", "cores idle, s",
                          "time against the default's, median of the rounds"], rows)
        + "\n\nThumbnails (`imaging.face_crop_jpeg`, "
        f"{Settings().crop_size} pixels a side): every face the detector finds in the set, cut "
        "and JPEG-encoded on one thread, best of 5 rounds: OpenCV's area resize of the whole "
        "patch in one step (the way before) against the patch averaged down by the largest "
        "whole factor that keeps it at least the thumbnail's size, then resized bilinearly "
        "(pgface's way). How far the pixels moved: PSNR of the two resizes against each "
        "other, before JPEG (whose own loss at quality 85 is of the same order); for faces "
        "smaller than the thumbnail, OpenCV's area resize enlarges like nearest-neighbour, "
        "where bilinear is smoother, so they are left out of the low percentiles:\n\n"
        + markdown_table(["photos", "faces", "one-step area ms a face",
                          "whole factor, then bilinear ms a face", "faster",
                          "PSNR median dB", "PSNR 5th percentile, faces >= the thumbnail",
                          "PSNR lowest, faces >= the thumbnail"], thumbnail_rows)
        + "\n")
    print(text)
    if not args.smoke:
        (DOCS / "benchmarks-index-workers.md").write_text(text)


if __name__ == "__main__":
    main()
