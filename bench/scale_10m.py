"""Towards 10M faces: the in-process index and its snapshot at growing sizes, and the curve.

    .venv/bin/python bench/scale_10m.py --sizes 1000000 2000000 4000000
    .venv/bin/python bench/scale_10m.py --render      # docs figure + table from saved results

PostgreSQL is not what is measured here, so the index is built from arrays directly: one
index grows through the sizes (faces generated chunk by chunk with LFW's geometry, as
bench/search_scale.py does, plus the real LFW faces), and at each size it measures
- memory a face: the index arrays, the snapshot file, and the resident memory of a fresh
  process that opened the snapshot and answered searches;
- search p50/p95 (one query at a time, every core) and identity recall: the share of the
  true same-person faces at or above the threshold (up to the 10 most similar) that a top-10
  search finds. The exact cosine of the candidates, which PostgreSQL gives pgface, comes from a
  float16 copy of the vectors on disk here (within 0.001 of float32);
- the snapshot's write time and its open time in a fresh process (header, hashes, mapping),
  with the file in the page cache and evicted from it (posix_fadvise DONTNEED), and that
  process's first search.
Results go to bench/results/scale-10m.json; a fit (time and bytes linear in faces) projects
each to 10M (recall: linear in log2 of the faces), drawn in docs/benchmarks-scale.png; the
table printed goes into docs/benchmarks-search.md (bench/search_notes.md).

    .venv/bin/python bench/scale_10m.py --latency 10   # search times again, sizes interleaved
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_embeddings  # noqa: E402
from common import machine  # noqa: E402
from search_scale import Generator  # noqa: E402

from pgface.config import CALIBRATED_THRESHOLDS  # noqa: E402
from pgface.index_snapshot import SnapshotStore  # noqa: E402
from pgface.vector_index import SignIndex, quantize, sign_bits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("PGFACE_BENCH_DIR", "/tmp/pgface-search-bench"))
RESULTS = REPO / "bench" / "results" / "scale-10m.json"
LFW_CACHE = WORK / "lfw.npz"  # bench/lfw_embeddings.py's cache
DOCS = REPO / "docs"
MODEL = "buffalo_sc"
THRESHOLD = CALIBRATED_THRESHOLDS[MODEL]
K = 10
CHUNK = 250_000
RAM_GIB = 24  # this machine's memory, for the projection's ceiling
IDENTITY = ("bench", 1, "pgface", MODEL)  # a snapshot store of no real database


def store(folder: Path) -> SnapshotStore:
    return SnapshotStore(folder, *IDENTITY)


# ---------------------------------------------------------------- a fresh process's view

CHILD = r"""
import json, os, sys, time
t0 = time.perf_counter()
from pathlib import Path
import numpy as np
sys.path.insert(0, sys.argv[1])
from scale_10m import store
from pgface.vector_index import SignIndex
imported = time.perf_counter()
s = store(Path(sys.argv[2]))
header, arrays = s.read()
index = SignIndex.restored("buffalo_sc", arrays, int(header["watermark"]), header["lsn"])
opened = time.perf_counter()
queries = np.load(sys.argv[3])
first = None
for q in queries:
    index.approximate(q, 10, 0.23)
    first = first or time.perf_counter()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
rss = int(status["VmHWM"].split()[0]) * 1024  # this process's peak (ru_maxrss outlives exec)
print(json.dumps({"import_s": imported - t0, "open_s": opened - imported,
                  "first_search_s": first - opened, "rss_bytes": rss}))
"""


def fresh_open(folder: Path, queries: Path, evict: bool) -> dict:
    if evict:
        for path in folder.glob("*.pgfidx"):
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    done = subprocess.run([sys.executable, "-c", CHILD, str(Path(__file__).parent), str(folder),
                           str(queries)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


# ---------------------------------------------------------------- the growing library

class Library:
    """Index arrays preallocated for the largest size, float16 vectors on disk, the truth."""

    def __init__(self, capacity: int, lfw: dict, rng: np.random.Generator, n_queries: int,
                 folder: Path) -> None:
        self.rng = rng
        self.gen = Generator(lfw["unit"], lfw["person"], rng)
        self.ids = np.empty(capacity, np.int64)
        self.codes = np.empty((capacity, 64), np.uint8)
        self.int8 = np.empty((capacity, 512), np.int8)
        self.scales = np.empty(capacity, np.float32)
        folder.mkdir(parents=True, exist_ok=True)
        self.exact = np.lib.format.open_memmap(folder / "vectors-f16.npy", "w+", np.float16,
                                               (capacity, 512))
        self.n = 0
        self.next_person = 0
        # queries: real LFW (one face of each person with 2+, the rest stored) + synthetic
        names, inverse, counts = np.unique(lfw["person"], return_inverse=True,
                                           return_counts=True)
        first = np.zeros(len(inverse), bool)
        seen: set[int] = set()
        for i, p in enumerate(inverse):
            if counts[p] > 1 and p not in seen:
                first[i] = True
                seen.add(int(p))
        self.lfw_stored = lfw["unit"][~first].astype(np.float32)
        self.lfw_person = inverse[~first]
        self.queries = [lfw["unit"][first].astype(np.float32)]
        self.q_person = [inverse[first]]
        self.q_real = [np.ones(first.sum(), bool)]
        self.n_synthetic_queries = n_queries
        self.person_offset = len(names)
        self.truth: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # query -> (rows, sims)

    def _add(self, vectors: np.ndarray) -> np.ndarray:
        lo, hi = self.n, self.n + len(vectors)
        self.ids[lo:hi] = np.arange(lo + 1, hi + 1)  # ids from 1, as PostgreSQL's
        self.codes[lo:hi] = sign_bits(vectors)
        self.int8[lo:hi], self.scales[lo:hi] = quantize(vectors)
        self.exact[lo:hi] = vectors.astype(np.float16)
        self.n = hi
        return np.arange(lo, hi)

    def grow(self, size: int) -> None:
        while self.n < size:
            if self.n == 0:  # the real LFW faces first, then synthetic people
                rows = self._add(self.lfw_stored)
                self._truth(np.concatenate(self.queries), rows, self.lfw_person, 0)
                continue
            n = min(CHUNK, size - self.n)
            sizes = (1 + self.rng.negative_binomial(1, 0.2, n)).clip(max=300)
            sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
            sizes[-1] -= sizes.sum() - n
            sizes = sizes[sizes > 0]
            centres = self.gen.centres(len(sizes), self.rng)
            vectors = self.gen.faces(np.repeat(centres, sizes, axis=0), self.rng)
            person = np.repeat(np.arange(len(sizes)), sizes) + self.next_person
            self.next_person += len(sizes)
            order = self.rng.permutation(len(vectors))
            vectors, person = vectors[order], person[order]
            if self.n_synthetic_queries:  # the synthetic queries: people of the first chunk
                chosen = self.rng.choice(len(sizes), self.n_synthetic_queries, replace=False)
                q = self.gen.faces(centres[chosen], self.rng)
                self.queries.append(q)
                self.q_person.append(chosen + self.next_person - len(sizes)
                                     + self.person_offset)
                self.q_real.append(np.zeros(len(q), bool))
                self.n_synthetic_queries = 0
                start = sum(len(x) for x in self.queries[:-1])
                rows = self._add(vectors)
                self._truth(q, rows, person + self.person_offset, start)
            else:
                self._add(vectors)
            print(f"  {self.n:,} faces", file=sys.stderr, flush=True)

    def _truth(self, queries: np.ndarray, rows: np.ndarray, person: np.ndarray,
               first_query: int) -> None:
        q_person = np.concatenate(self.q_person)
        for j, q in enumerate(queries, start=first_query):
            mine = rows[person == q_person[j]]
            sims = self.exact[mine].astype(np.float32) @ q
            keep = sims >= THRESHOLD
            self.truth[j] = (mine[keep], sims[keep])

    def index(self) -> SignIndex:
        arrays = {"ids": self.ids[: self.n], "codes": self.codes[: self.n],
                  "int8": self.int8[: self.n], "scales": self.scales[: self.n]}
        return SignIndex.restored(MODEL, arrays, self.n, "0/0")

    def search(self, index: SignIndex, q: np.ndarray) -> np.ndarray:
        """Rows of a top-10 search at the threshold: the index's candidates, exact cosine."""
        rows = index.approximate(q, K, THRESHOLD) - 1
        sims = self.exact[np.sort(rows)].astype(np.float32) @ q
        rows = np.sort(rows)
        keep = sims >= THRESHOLD
        rows, sims = rows[keep], sims[keep]
        return rows[np.argsort(-sims)][:K]


def measure(lib: Library, folder: Path) -> dict:
    queries = np.concatenate(lib.queries)
    real = np.concatenate(lib.q_real)
    index = lib.index()
    latencies, hit, total, hit_real, total_real = [], 0, 0, 0, 0
    for j, q in enumerate(queries):
        started = time.perf_counter()
        found = lib.search(index, q)
        latencies.append(time.perf_counter() - started)
        rows, sims = lib.truth[j]
        truth = rows[np.argsort(-sims)][:K]
        got = len(np.intersect1d(found, truth))
        hit, total = hit + got, total + len(truth)
        if real[j]:
            hit_real, total_real = hit_real + got, total_real + len(truth)
    snap = store(folder / "index")
    started = time.perf_counter()
    snap.write({"ids": lib.ids[: lib.n], "codes": lib.codes[: lib.n],
                "int8": lib.int8[: lib.n], "scales": lib.scales[: lib.n]}, lib.n, "0/0")
    write_s = time.perf_counter() - started
    sample = folder / "queries.npy"
    np.save(sample, queries[:20])
    warm = fresh_open(folder / "index", sample, evict=False)
    cold = fresh_open(folder / "index", sample, evict=True)
    lat = np.array(latencies) * 1000
    return {"faces": lib.n, "queries": len(queries), "real_queries": int(real.sum()),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "identity_recall": hit / max(total, 1),
            "identity_recall_real": hit_real / max(total_real, 1),
            "index_bytes": index.nbytes(in_use=True),
            "snapshot_bytes": snap.path.stat().st_size, "snapshot_write_s": write_s,
            "open_page_cache": warm, "open_evicted": cold,
            "load_avg": os.getloadavg()[0], "at": time.strftime("%F %T")}


def run(sizes: list[int], n_queries: int) -> None:
    folder = WORK / "scale-10m"
    lfw = lfw_embeddings.load(LFW_CACHE, LFW_CACHE.parent / "models")
    lib = Library(max(sizes), lfw, np.random.default_rng(10), n_queries, folder)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = machine()
    for size in sorted(sizes):
        started = time.perf_counter()
        lib.grow(size)
        grown = time.perf_counter() - started
        entry = measure(lib, folder)
        entry["grow_s"] = grown
        entry["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        results[str(size)] = entry
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
        print(json.dumps(entry), file=sys.stderr, flush=True)


def latency(rounds: int) -> None:
    """Search latency at every saved size, interleaved size by size and round by round so
    that a shared machine's load falls on every size alike: the largest snapshot's first N
    rows are the index at N (the library only grew). Wall and CPU (every thread) per search."""
    folder = WORK / "scale-10m"
    results = json.loads(RESULTS.read_text())
    sizes = sorted(int(k) for k in results if k.isdigit())
    header, arrays = store(folder / "index").read()
    queries = np.load(folder / "queries.npy")
    indexes = {n: SignIndex.restored(MODEL, {k: a[:n] for k, a in arrays.items()}, n, "0/0")
               for n in sizes}
    wall: dict[int, list[float]] = {n: [] for n in sizes}
    cpu: dict[int, list[float]] = {n: [] for n in sizes}
    for n in sizes:  # pages touched once before timing
        for q in queries:
            indexes[n].approximate(q, K, THRESHOLD)
    for _ in range(rounds):
        for q in queries:
            for n in sizes:
                started, used = time.perf_counter(), time.process_time()
                indexes[n].approximate(q, K, THRESHOLD)
                wall[n].append((time.perf_counter() - started) * 1000)
                cpu[n].append((time.process_time() - used) * 1000)
    for n in sizes:
        results[str(n)]["interleaved"] = {
            "p50_ms": float(np.percentile(wall[n], 50)),
            "p95_ms": float(np.percentile(wall[n], 95)),
            "cpu_p50_ms": float(np.percentile(cpu[n], 50)), "searches": len(wall[n]),
            "load_avg": os.getloadavg()[0]}
        print(n, results[str(n)]["interleaved"], file=sys.stderr)
    RESULTS.write_text(json.dumps(results, indent=1))


# ---------------------------------------------------------------- the curve

def fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares y = a + b x."""
    b, a = np.polyfit(x, y, 1)
    return float(a), float(b)


def render() -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads(RESULTS.read_text())
    rows = [results[k] for k in sorted((k for k in results if k.isdigit()), key=int)]
    x = np.array([r["faces"] for r in rows], float)
    target = 10_000_000

    def timed(r: dict, key: str) -> float:  # the interleaved run where there is one
        return r.get("interleaved", r)[key]

    def opened(r: dict, how: str) -> float:
        return r[how]["open_s"] + r[how]["first_search_s"]

    series = {
        "search p50, wall (ms)": np.array([timed(r, "p50_ms") for r in rows]),
        "search p50, CPU (ms)": np.array([r.get("interleaved", {}).get("cpu_p50_ms", np.nan)
                                          for r in rows]),
        "open + first search, page cache (s)": np.array(
            [opened(r, "open_page_cache") for r in rows]),
        "open + first search, evicted (s)": np.array([opened(r, "open_evicted") for r in rows]),
        "fresh process peak RSS (GiB)": np.array(
            [r["open_page_cache"]["rss_bytes"] / 2**30 for r in rows]),
    }
    recall = np.array([r["identity_recall"] for r in rows])
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    projected = {}
    panels = (["search p50, wall (ms)", "search p50, CPU (ms)"],
              ["open + first search, page cache (s)", "open + first search, evicted (s)"],
              ["fresh process peak RSS (GiB)"])
    xs = np.linspace(0, target, 50)
    for ax, keys in zip(axes, panels, strict=False):
        for key in keys:
            y = series[key]
            if np.isnan(y).any():
                continue
            a, b = fit(x, y)
            projected[key] = a + b * target
            ax.plot(x / 1e6, y, "o", label=f"{key}: measured")
            ax.plot(xs / 1e6, a + b * xs, "--", label=f"linear fit: {projected[key]:.2f} at 10M")
    # recall falls by a step a doubling: linear in log2(faces)
    a_r, b_r = fit(np.log2(x), recall)
    projected["identity recall"] = a_r + b_r * np.log2(target)
    axes[3].plot(x / 1e6, recall, "o", label="identity recall: measured")
    axes[3].plot(xs[1:] / 1e6, a_r + b_r * np.log2(xs[1:]), "--",
                 label=f"log fit: {projected['identity recall']:.3f} at 10M")
    axes[2].axhline(RAM_GIB, color="red", lw=0.8, label=f"this machine's {RAM_GIB} GiB")
    for ax in axes:
        ax.set_xlabel("faces (millions)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"pgface's in-process index towards 10M faces: measured to "
                 f"{x.max() / 1e6:.0f}M (dots), projected (dashed); 2 cores shared, load "
                 f"{min(r['load_avg'] for r in rows):.0f}-{max(r['load_avg'] for r in rows):.0f}")
    fig.tight_layout()
    fig.savefig(DOCS / "benchmarks-scale.png", dpi=100)
    a_i, b_i = fit(x, np.array([r["index_bytes"] for r in rows], float))
    a_s, b_s = fit(x, np.array([r["snapshot_bytes"] for r in rows], float))
    lines = ["| faces | index RAM a face | snapshot a face | fresh process peak RSS | search "
             "p50 / p95, wall (ms) | search p50, CPU (ms) | identity recall (real LFW "
             "queries) | snapshot write | open + first search: in page cache / evicted |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cpu = r.get("interleaved", {}).get("cpu_p50_ms")
        lines.append(
            f"| {r['faces']:,} | {r['index_bytes'] / r['faces']:.0f} B | "
            f"{r['snapshot_bytes'] / r['faces']:.0f} B | "
            f"{r['open_page_cache']['rss_bytes'] / 2**30:.2f} GiB | "
            f"{timed(r, 'p50_ms'):.1f} / {timed(r, 'p95_ms'):.1f} | "
            f"{'-' if cpu is None else f'{cpu:.1f}'} | {r['identity_recall']:.3f} "
            f"({r['identity_recall_real']:.3f}) | {r['snapshot_write_s']:.1f} s | "
            f"{opened(r, 'open_page_cache'):.2f} / {opened(r, 'open_evicted'):.2f} s |")
    cpu_10m = projected.get("search p50, CPU (ms)")
    lines.append(
        f"| **10M, projected** | {b_i:.0f} B | {b_s:.0f} B | "
        f"{projected['fresh process peak RSS (GiB)']:.1f} GiB | "
        f"{projected['search p50, wall (ms)']:.0f} / - | "
        f"{'-' if cpu_10m is None else f'{cpu_10m:.0f}'} | "
        f"{projected['identity recall']:.3f} | - | "
        f"{projected['open + first search, page cache (s)']:.1f} / "
        f"{projected['open + first search, evicted (s)']:.1f} s |")
    return "\n".join(lines) + (
        f"\n\nAt 10M: the index {(a_i + b_i * target) / 2**30:.1f} GiB in RAM, its snapshot "
        f"{(a_s + b_s * target) / 2**30:.1f} GiB on disk.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 2_000_000, 4_000_000])
    ap.add_argument("--queries", type=int, default=500, help="synthetic queries (plus LFW's)")
    ap.add_argument("--render", action="store_true")
    ap.add_argument("--latency", type=int, default=0, metavar="ROUNDS",
                    help="only time searches again at every saved size, interleaved")
    ap.add_argument("--smoke", action="store_true", help="20k and 40k faces, nothing kept")
    args = ap.parse_args()
    if args.smoke:
        global RESULTS, WORK
        RESULTS = Path(tempfile.mkdtemp()) / "scale-10m.json"
        WORK = RESULTS.parent
        run([20_000, 40_000], 20)
        return
    if args.latency:
        latency(args.latency)
    elif not args.render:
        run(args.sizes, args.queries)
    print(render())


if __name__ == "__main__":
    main()
