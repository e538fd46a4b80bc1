"""A full clustering's join on a large person: peak memory and time, all pairs against near_pairs.

    python bench/join_memory.py                   # prints the table, writes the doc
    python bench/join_memory.py --sizes 2500 --smoke

The faces of one person are all pairs of each other: m faces, m^2 / 2 pairs at cosine >= 0.40.
The baseline is the join as it was at e87bf4b, which is still in the code: every pair
(`similar_pairs`), those of other photos kept, then each face's best 64 (`top_neighbours`).
Now `neighbours.join_neighbours` keeps only the pairs that can be among a face's best 64
(`similarity_join.near_pairs`). Each run is a process of its own (its peak resident memory is
its own); faces: one person of N faces (a centre plus noise of sd 0.036 a coordinate, cosine
about 0.6 between two of them) among 20,000 random strangers, each face its own photo. The
two give the same neighbours (checked on the smallest size).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, markdown_table  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-join-memory.md"
STRANGERS = 20_000
SIMILARITY = 0.40


def faces(person: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    centre = rng.normal(0, 1, 512).astype(np.float32)
    centre /= np.linalg.norm(centre)
    vectors = np.concatenate([centre + rng.normal(0, 0.036, (person, 512)).astype(np.float32),
                              rng.normal(0, 1, (STRANGERS, 512)).astype(np.float32)])
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def run_one(way: str, person: int) -> None:
    """In a process of its own: one join, then a JSON line of seconds, peak MiB, a digest."""
    from pgface import similarity_join
    from pgface.neighbours import NEIGHBOURS_K, join_neighbours

    vectors = faces(person)
    ids = np.arange(len(vectors), dtype=np.int64)
    started = time.perf_counter()
    if way == "all pairs":  # e87bf4b's join_neighbours, each face its own photo
        i, j, sims = similarity_join.similar_pairs(vectors, SIMILARITY)
        near = similarity_join.top_neighbours(len(ids), i, j, sims, NEIGHBOURS_K)
        lists = {int(r): rows.tolist() for r, (rows, _) in enumerate(near)}
    else:
        joined = join_neighbours(ids, vectors, {int(f): int(f) for f in ids}, SIMILARITY)
        lists = {f: [g for g, _ in near] for f, near in joined.items()}
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = hash(tuple(tuple(lists.get(f, [])) for f in range(len(ids))))
    print(json.dumps({"seconds": seconds, "peak_mib": peak, "digest": digest,
                      "neighbours": sum(map(len, lists.values()))}))


def measure(way: str, person: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", way, str(person)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2500, 5000, 10000])
    parser.add_argument("--smoke", action="store_true", help="nothing written")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args.one[0], int(args.one[1]))
        return
    rows = []
    for person in args.sizes:
        before, after = measure("all pairs", person), measure("near pairs", person)
        if person == min(args.sizes):
            assert before["digest"] == after["digest"], "the two joins differ"
        ratio = before["peak_mib"] / after["peak_mib"]
        rows.append([f"{person:,} + {STRANGERS:,}", f"{before['peak_mib']:,.0f} MiB",
                     f"{after['peak_mib']:,.0f} MiB", f"{ratio:.1f}x",
                     f"{before['seconds']:.1f} s", f"{after['seconds']:.1f} s"])
    table = markdown_table(["faces of one person + strangers", "peak, all pairs (e87bf4b)",
                            "peak, near pairs (now)", "memory ratio", "time, all pairs",
                            "time, near pairs"], rows)
    print(table)
    if args.smoke:
        return
    DOC.write_text(
        "# A full clustering's join on a large person\n\n"
        f"`python bench/join_memory.py` on {machine()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}. {__doc__.split(chr(10) * 2)[2].strip()}\n\n"
        f"{table}\n")


if __name__ == "__main__":
    main()
