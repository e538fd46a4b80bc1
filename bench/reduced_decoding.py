"""Reduced JPEG decoding on the phone-size set: the indexer's decode, detect and align stages
with every photo decoded in full (PGFACE_DECODE_KEEP_SIDE=0) against the default, in one
thread, alternating; faces found, hand-drawn faces missed, and how far each face's embedding
moved.

    python bench/reduced_decoding.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import machine
from indexing import photo_sets
from truth import missed, overlap

from pgface import Settings
from pgface.index import Indexer, _Read
from pgface.library import build_analyzer


def analyse(indexer: Indexer, photo_set) -> tuple[float, dict[str, float], list]:  # noqa: ANN001
    timings: dict[str, float] = {}
    started = time.perf_counter()
    out = []
    for path in photo_set.paths:
        data = path.read_bytes()
        out.append(indexer._decode_and_analyze(_Read(path, data, b""), timings))
    return time.perf_counter() - started, timings, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    phone = photo_sets(1, smoke=False)[2]
    analyzer = build_analyzer(Settings())
    analyzer.warm_up()
    keep_sides = (0, Settings().decode_keep_side)
    runs: dict[int, list] = {k: [] for k in keep_sides}
    for _ in range(args.repeat):
        for keep in keep_sides:
            runs[keep].append(analyse(Indexer(analyzer, None, Settings(decode_keep_side=keep)),
                                      phone))  # type: ignore[arg-type]
    print(f"{machine()}; {len(phone.paths)} photos; median of {args.repeat}, one thread")
    results = {}
    for keep in keep_sides:
        wall, timings, out = sorted(runs[keep], key=lambda r: r[0])[len(runs[keep]) // 2]
        results[keep] = out
        faces_of = dict(zip(phone.paths, out, strict=True))
        lost = sum(len(missed(boxes, [f.bbox for f in faces_of[path].faces]))  # type: ignore[arg-type]
                   for path, boxes in phone.truth.items())
        stages = ", ".join(f"{k} {v:.2f}" for k, v in timings.items())
        print(f"keep_side {keep}: wall {wall:.2f} s ({stages}); faces "
              f"{sum(len(a.faces) for a in out)}; hand-drawn missed {lost} of "
              f"{phone.truth_faces}")
    full, reduced = results[keep_sides[0]], results[keep_sides[1]]
    cosines = []
    for a, b in zip(full, reduced, strict=True):
        va, vb = analyzer.embed_aligned(a.aligned), analyzer.embed_aligned(b.aligned)
        boxes_a = np.array([f.bbox for f in a.faces]).reshape(-1, 4)
        boxes_b = np.array([f.bbox for f in b.faces]).reshape(-1, 4)
        same = overlap(boxes_a, boxes_b)
        for i, face in enumerate(a.faces):
            j = int(np.argmax(same[i])) if same.shape[1] else -1
            if j >= 0 and same[i, j] >= 0.5:
                side = min(face.bbox[2] - face.bbox[0], face.bbox[3] - face.bbox[1])
                cosines.append((side, float(va[i] @ vb[j])))
    for low, high in ((0, 100), (100, 200), (200, 10**6)):
        values = [c for side, c in cosines if low <= side < high]
        if values:
            print(f"faces {low}-{high} px in the photo: {len(values)}, cosine full vs reduced "
                  f"mean {np.mean(values):.3f}, min {min(values):.3f}")


if __name__ == "__main__":
    main()
