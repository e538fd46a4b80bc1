"""1:N verdicts at 10k, 100k and 1M faces: strangers called the same person, and rank-1.

The library is simulated in numpy (PostgreSQL at 1M is not what is measured here; the rule
is): the 4,992 real LFW View 1 faces (bench/lfw_embeddings.py) plus synthetic faces of
different people, one face each, from search_scale.Generator (fitted to LFW's geometry) until
the library holds N faces. Probes: every LFW face whose person has another face in the library,
searched leave-one-out (its own face removed). Each match gets the verdict pgface gives
(pgface.verdicts, imported): "same" from the same-person similarity for N faces, "possible"
between the 1:1 threshold and it.

    python bench/verdicts.py            # writes docs/benchmarks-verdicts.md
    python bench/verdicts.py --smoke    # 20k faces, nothing written
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import lfw_embeddings
import numpy as np
from common import DOCS, machine, markdown_table, require
from search_scale import Generator

from pgface import verdicts
from pgface.config import CALIBRATED_THRESHOLDS

WORK = Path(os.environ.get("PGFACE_BENCH_DIR", "/tmp/pgface-search-bench"))
MODEL = "buffalo_sc"
ONE_TO_ONE = CALIBRATED_THRESHOLDS[MODEL]
SIZES = (10_000, 100_000, 1_000_000)
BLOCK = 20_000  # synthetic faces scored at a time: probes x BLOCK floats in memory


def synthetic_strangers(gen: Generator, n: int, rng: np.random.Generator):
    """Blocks of n unit embeddings, each face a person of its own."""
    for start in range(0, n, BLOCK):
        size = min(BLOCK, n - start)
        yield gen.faces(gen.centres(size, rng), rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="20k faces, nothing written")
    args = parser.parse_args()
    sizes = (10_000, 20_000) if args.smoke else SIZES
    require(lfw_embeddings.LFW_IMAGES)
    started = time.perf_counter()
    rng = np.random.default_rng(15)
    lfw = lfw_embeddings.load(WORK / "lfw.npz", WORK / "models")
    unit = lfw["unit"].astype(np.float32)
    _, person, counts = np.unique(lfw["person"], return_inverse=True, return_counts=True)
    probes = np.flatnonzero(counts[person] > 1)
    same = person[probes, None] == person[None, :]
    lfw_sims = unit[probes] @ unit.T
    lfw_sims[np.arange(len(probes)), probes] = -2.0  # leave-one-out: not its own face
    best_same = np.where(same, lfw_sims, -2.0).max(axis=1)
    lfw_strangers = np.where(same, -2.0, lfw_sims)

    same_from = {n: verdicts.same_person_similarity(n, MODEL, ONE_TO_ONE) for n in sizes}
    cuts = sorted({ONE_TO_ONE, *same_from.values()})
    # per probe, per size: best stranger (LFW or synthetic), strangers >= each cut
    best_stranger = {}
    above = {}
    best_lfw = lfw_strangers.max(axis=1)
    running_max = best_lfw.copy()
    running_above = {c: (lfw_strangers >= c).sum(axis=1) for c in cuts}
    gen = Generator(lfw["unit"], lfw["person"], rng)
    syn_sample = []
    done = 0
    n_lfw = len(unit)
    for n in sizes:
        for block in synthetic_strangers(gen, n - n_lfw - done, rng):
            sims = unit[probes] @ block.T
            np.maximum(running_max, sims.max(axis=1), out=running_max)
            for c in cuts:
                running_above[c] += (sims >= c).sum(axis=1)
            if len(syn_sample) < 5:
                syn_sample.append(sims[:, :2000].ravel())
            done += len(block)
        best_stranger[n] = running_max.copy()
        above[n] = {c: v.copy() for c, v in running_above.items()}
        print(f"{n:,} faces scored ({time.perf_counter() - started:.0f} s)")

    syn = np.concatenate(syn_sample)
    real = lfw_strangers[lfw_strangers > -2.0]
    geometry = markdown_table(
        ["stranger pairs", "mean cosine", "sd", f"P(>= {ONE_TO_ONE})", "P(>= 0.30)",
         "P(>= 0.35)"],
        [[name, f"{v.mean():.4f}", f"{v.std():.4f}", f"{np.mean(v >= ONE_TO_ONE):.1e}",
          f"{np.mean(v >= 0.30):.1e}", f"{np.mean(v >= 0.35):.1e}"]
         for name, v in (("LFW probe x other LFW people (real)", real),
                         (f"LFW probe x synthetic ({len(syn):,} pairs)", syn))])

    rows = []
    for n in sizes:
        s = same_from[n]
        stranger_same = best_stranger[n] >= s
        right = (best_same >= s) & (best_same > best_stranger[n])
        any_same = (best_same >= s) | stranger_same
        possible_only = ~any_same & (np.maximum(best_same, best_stranger[n]) >= ONE_TO_ONE)
        lfw_only = (best_lfw >= s) & stranger_same
        old_right = (best_same >= ONE_TO_ONE) & (best_same > best_stranger[n])
        rows.append([
            f"{n:,}", f"{s:.3f}",
            f"{np.mean(best_stranger[n] >= ONE_TO_ONE):.1%}",
            f"{above[n][ONE_TO_ONE].mean():.2f}",
            f"{np.mean(stranger_same):.2%} ({stranger_same.sum()}, {lfw_only.sum()} of them "
            "LFW)",
            f"{above[n][s].mean():.3f}",
            f"{np.mean(right):.1%}",
            f"{right.sum() / max(any_same.sum(), 1):.1%} of {any_same.sum():,}",
            f"{np.mean(possible_only):.1%}",
            f"{np.mean(old_right):.1%}",
        ])
    table = markdown_table(
        ["faces in the library", "same person from", f"searches with a stranger >= "
         f"{ONE_TO_ONE}", f"strangers >= {ONE_TO_ONE} per search",
         "searches showing a stranger as 'same' (count, of which real LFW faces)",
         "strangers shown 'same' per search", "rank-1: top 'same' match is the person",
         "rank-1 among searches with a 'same' match", "only 'possible' matches",
         "rank-1 with the 1:1 threshold alone"], rows)
    text = "\n".join([
        "## 1:N verdicts by library size\n",
        f"Machine: {machine()}. Command: `python bench/verdicts.py` "
        f"({time.strftime('%Y-%m-%d')}, {time.perf_counter() - started:.0f} s).\n",
        f"Library: the {n_lfw:,} real LFW View 1 faces of {len(counts):,} people plus "
        "synthetic faces of different people (one face each, bench/search_scale.py's "
        "generator fitted to LFW) up to N faces, in numpy. Probes: the "
        f"{len(probes):,} LFW faces whose person has another face there, each searched "
        "without its own face. Verdicts: pgface.verdicts as shipped (the stranger tail of "
        "bench/stranger_tail.py, at most "
        f"{verdicts.MAX_STRANGERS_PER_SEARCH} strangers per search expected at or above "
        "'same person from'). A search 'shows a stranger as same' when any face of another "
        "person scores at or above it; rank-1 counts a probe when its best 'same' match is "
        "its own person, over all probes.\n",
        table, "",
        "How the simulated strangers compare with real ones (the verdict's tail is measured on "
        "real pairs only):\n",
        geometry, "",
    ])
    print(text)
    if not args.smoke:
        (DOCS / "benchmarks-verdicts.md").write_text(text)
        print(f"wrote {DOCS / 'benchmarks-verdicts.md'}")


if __name__ == "__main__":
    main()
