"""1:N verdicts: when a search match may be called the same person, for a library of N faces.

A 1:1 threshold (config.CALIBRATED_THRESHOLDS) keeps one stranger pair in ~1,000 above it; a
search compares the query with every stored face, so strangers above it grow with N. A match is
"same" only where the expected number of strangers at or above its similarity in this library,
N x P(stranger pair >= s), is at most MAX_STRANGERS_PER_SEARCH; a match between the 1:1
threshold and that similarity is "possible". P is the stranger tail measured on real LFW View 1
faces and shipped in data/stranger_tails.json (bench/stranger_tail.py; docs/verdicts.md).
"""

from __future__ import annotations

import json
import math
from functools import cache
from importlib import resources
from typing import Literal

MAX_STRANGERS_PER_SEARCH = 0.05
# Packs without a measured tail use buffalo_sc's (ArcFace packs share the cosine geometry).
FALLBACK_PACK = "buffalo_sc"

Verdict = Literal["same", "possible"]


@cache
def stranger_tail(pack: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(similarities ascending, per-pair chance that two strangers score at or above each)."""
    tails = json.loads(resources.files("pgface").joinpath("data/stranger_tails.json")
                       .read_text(encoding="utf-8"))["packs"]
    tail = tails.get(pack, tails[FALLBACK_PACK])
    return tuple(tail["similarity"]), tuple(tail["exceedance"])


def strangers_per_search(similarity: float, library_size: int, pack: str) -> float:
    """Expected strangers at or above `similarity` in one search of `library_size` faces."""
    grid, chance = stranger_tail(pack)
    if similarity <= grid[0]:
        return library_size * chance[0]
    if similarity >= grid[-1]:
        return library_size * chance[-1]
    i = next(j for j, s in enumerate(grid) if s >= similarity)
    # log-linear between grid points: the tail falls about exponentially
    f = (similarity - grid[i - 1]) / (grid[i] - grid[i - 1])
    log_p = (1 - f) * math.log(chance[i - 1]) + f * math.log(chance[i])
    return library_size * math.exp(log_p)


def same_person_similarity(library_size: int, pack: str, threshold: float) -> float:
    """The lowest similarity (0.001 steps, never below the 1:1 threshold) at which at most
    MAX_STRANGERS_PER_SEARCH strangers are expected in a library of library_size faces."""
    grid, _ = stranger_tail(pack)
    lo, hi = max(threshold, grid[0]), grid[-1]
    # On the 0.001 grid, from the first step at or above lo: stepping from an off-grid lo
    # (PGFACE_THRESHOLD=0.2302) and rounding after gave a bar under the threshold (0.23), or
    # one a step short of the rule (0.244 where 0.245 is the first to keep it). The rounding
    # inside ceil: 0.23 * 1000 is 230.00000000000003.
    first, last = math.ceil(round(lo * 1000, 6)), math.ceil(round(hi * 1000, 6))
    for step in range(first, last + 1):  # at most a few hundred steps, each a short scan
        s = step / 1000
        if strangers_per_search(s, library_size, pack) <= MAX_STRANGERS_PER_SEARCH:
            return s
    # past the grid's end: the threshold where it is higher (PGFACE_THRESHOLD=0.9 gave a bar
    # of 0.8, under it, probe verdicts39)
    return max(first, last) / 1000


def shown(similarity: float) -> float:
    """A similarity as results give it: 4 decimals, rounded down. Decisions are taken on the
    exact cosine (a match kept, a verdict, compare's same_person); rounded down, what is shown
    is at or above a threshold of 4 decimals or fewer (the calibrated ones, the same-person
    bar's 3) exactly when the cosine is. Rounded to nearest, a match at 0.259963 showed as
    0.2600 beside "possible" under a bar of 0.26, and compare's 0.3390 as "different people"
    at a threshold of 0.339 (probe verdicts). (1e-7: a cosine on a step, 0.29 as a float is
    0.28999999999999998, stays on it.)"""
    return math.floor(similarity * 10_000 + 1e-7) / 10_000


def verdict(similarity: float, same_similarity: float) -> Verdict:
    return "same" if similarity >= same_similarity else "possible"
