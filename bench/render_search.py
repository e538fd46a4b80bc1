"""docs/benchmarks-search.md and its plots, from bench/results/search-<size>.json."""

from __future__ import annotations

import json
from pathlib import Path

from pgface.config import CALIBRATED_THRESHOLDS

NOTES = Path(__file__).resolve().parent / "search_notes.md"  # the written part of the document


def _faiss_at(methods: list[dict], recall: float) -> dict | None:
    """The fastest FAISS HNSW setting with at least this identity recall (else the best one)."""
    faiss = [m for m in methods if m.get("family") == "faiss"]
    ok = [m for m in faiss if m["recall_identity"] >= recall]
    if ok:
        return min(ok, key=lambda m: m["p50_ms"])
    return max(faiss, key=lambda m: m["recall_identity"]) if faiss else None


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and n % 1_000_000 == 0 else f"{n // 1000}k"


def _table(rows: list[list[object]], head: list[str]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = {"pgface": ("C0", "o", "pgface: sign scan + int8 re-rank + PG check (C)"),
              "pgrerank": ("C6", "P", "sign scan + re-rank of all C in PostgreSQL"),
              "memory": ("C2", "s", "sign scan + float32 re-rank in memory (C)"),
              "faiss": ("C1", "^", "FAISS HNSW in memory (ef)"),
              "pgvector": ("C3", "v", "pgvector (ef_search / probes)"),
              "halfvec": ("C4", "D", "... of all C on halfvec (C)"),
              "pg": ("C7", "x", "PostgreSQL scans (exact, seed)")}
    for fam, (colour, marker, label) in styles.items():
        ms = [m for m in res["methods"] if m.get("family") == fam]
        if fam == "pgvector":
            for variant in sorted({m["method"].split(",")[0] for m in ms}):
                sub = [m for m in ms if m["method"].startswith(variant)]
                ax.plot([m["p50_ms"] for m in sub], [m["recall_identity"] for m in sub],
                        marker=marker, linestyle="--", label=variant)
            continue
        if ms:
            ax.plot([m["p50_ms"] for m in ms], [m["recall_identity"] for m in ms], color=colour,
                    marker=marker, linestyle="-" if fam != "pg" else "none", label=label)
    exact = next(m for m in res["methods"] if m["method"].startswith("numpy exact"))
    ax.plot([exact["p50_ms"]], [exact["recall_identity"]], "k*", ms=10, label="numpy exact")
    ax.axhline(0.99, color="grey", lw=0.6, ls=":")
    ax.axvline(10, color="grey", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel("p50 latency of a top-10 search, ms (log)")
    ax.set_ylabel("recall of true same-identity matches")
    ax.set_title(f"{res['size']:,} faces, {res['machine']['cores']} cores")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def section(res: dict, docs: Path) -> str:
    n, mach = res["size"], res["machine"]
    name = _size(n)
    png = f"benchmarks-search-{name}.png"
    plot(res, docs / png)
    ms = res["methods"]
    exact = next(m for m in ms if m["method"].startswith("numpy exact"))
    rows = []
    for m in ms:
        f = _faiss_at(ms, m["recall_identity"])
        vs_faiss = f"{m['p50_ms'] / f['p50_ms']:.2f}x (ef={f['ef_search']})" if f else "-"
        if f and f["recall_identity"] < m["recall_identity"]:
            vs_faiss += " *"  # FAISS never reached this recall: against its best setting
        rows.append([m["method"], f"{m['p50_ms']:.2f}", f"{m['p95_ms']:.2f}",
                     f"{exact['p50_ms'] / m['p50_ms']:.1f}x", vs_faiss,
                     f"{m['recall_top10']:.3f}",
                     f"{m['recall_top10_threshold']:.3f}" if "recall_top10_threshold" in m
                     else "-", f"{m['recall_identity']:.3f}",
                     f"{m['recall_identity_real']:.3f}", m["queries"]])
    out = [f"## {name} faces ({n:,})\n",
           f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['ram_gb']} GB, no GPU "
           f"(AVX-512 VPOPCNTDQ: {mach['avx512_vpopcntdq']}); numpy {mach['numpy']}. "
           f"Run {res['started']} to {res['finished']}; 1-min load average "
           f"{mach['load_before']:.1f} at the start and {res['load_after']:.1f} at the end "
           "(the benchmark's own threads included), on 2 cores. The ratios compare methods "
           "measured in the same run.\n",
           f"Stored: {n:,} faces ({res['generator']['real_stored']:,} real LFW, the rest "
           f"synthetic, {res['generator']['synthetic_people']:,} synthetic people); queries: "
           f"{res['methods'][1]['queries']:,} ({res['generator']['real_queries']} real LFW "
           "faces whose person has other faces stored). Same-identity truth per query: "
           f"{res['truth_identity_per_query']:.2f} faces on average (cosine >= "
           f"{res.get('threshold', CALIBRATED_THRESHOLDS['buffalo_sc'])}, at most "
           "10). Slow O(N) methods ran on a fixed sample of the queries, half real.\n",
           f"![recall against latency]({png})\n",
           "p50/p95: milliseconds per top-10 search, one client. `vs numpy`: speed-up over the "
           "exact numpy brute force of this run. `vs FAISS`: latency as a multiple of the "
           "fastest FAISS HNSW setting of this run with at least the same identity recall "
           "(`*`: no FAISS setting reached it; against FAISS's most accurate one). "
           "Recalls: `top10` against the true top-10 by cosine, `top10 >= thr` the same cut "
           "at the match threshold (what pgface answers), `identity` of the true "
           "same-identity matches at or above the threshold, `real` the same for the real LFW "
           "queries only.\n",
           _table(rows, ["method", "p50 ms", "p95 ms", "vs numpy", "vs FAISS", "top10",
                         "top10 >= thr", "identity", "real", "queries"]), ""]
    b = res["breakdown"]
    out += ["Where the time of the shipped path goes (medians, ms):\n",
            _table([[c, f"{v['sync_ms']:.2f}", f"{v['memory_ms']:.2f}",
                     f"{v['postgres_ms']:.2f}"] for c, v in b.items()],
                   ["C (candidates)", "sync with PostgreSQL",
                    "in memory: sign scan + int8 re-rank", "exact check in PostgreSQL"]), ""]
    tp = res["throughput"]
    base = tp.get("FAISS HNSW ef=256", {})
    out += ["Throughput, queries per second with concurrent clients (threads, each with its "
            "own connection; 2 cores):\n",
            _table([[k, *(f"{v[c]:.0f}" + (f" ({v[c] / base[c]:.2f}x FAISS)" if base else "")
                          for c in ("1", "2", "8"))] for k, v in tp.items()],
                   ["method", "1 client", "2 clients", "8 clients"]), ""]
    d = res["disk"]
    used = res.get("sign_index_used_bytes_per_face")  # older results: allocated only
    builds = [["pgface index: load from PostgreSQL (COPY, sign bits and int8 here)",
               f"{res['sign_index_load_s']:.1f} s",
               (f"{used:.0f} in use, " if used else "")
               + f"{res['sign_index_bytes_per_face']:.0f} allocated"],
              [f"FAISS HNSW M={res['faiss_hnsw']['M']} efC={res['faiss_hnsw']['efConstruction']}"
               " (2 threads)", f"{res['faiss_hnsw']['build_s']:.0f} s",
               f"~{res['faiss_hnsw']['bytes_per_face']:.0f}"]]
    for k, v in res.get("pgvector_hnsw", {}).items():
        label = k if k.startswith(("HNSW", "IVF")) else f"HNSW {k}"  # older results
        builds.append([f"pgvector {label} (CREATE INDEX)", f"{v['build_s']:.0f} s",
                       f"{v['bytes_per_face']:.0f} (on disk)"])
    out += ["Build / load, and memory per face:\n",
            _table(builds, ["structure", "time", "bytes per face"]), "",
            f"A no-op sync (nothing new) takes {res['sign_index_sync_noop_ms']:.2f} ms.\n",
            "Disk per face (heap + TOAST + indexes, PostgreSQL):\n",
            _table([[t, f"{v['heap'] / n:.0f}", f"{v['toast'] / n:.0f}",
                     f"{v['indexes'] / n:.0f}", f"{v['per_face']:.0f}"]
                    for t, v in d.items() if isinstance(v, dict) and "heap" in v],
                   ["table", "heap", "TOAST", "indexes", "total"]), "",
            f"Column sizes: vector(512) {d['vector_column_bytes']:.0f} bytes, halfvec(512) "
            f"{d['halfvec_column_bytes']:.0f}, binary_quantize bit(512) "
            f"{d['bits_column_bytes']:.0f}. `faces` holds pgface's real columns (a JPEG crop "
            "of real size per face, bbox, landmarks) as migrations 0001-0004 define them "
            "(0004: the vector kept in the row); "
            "`half_faces` only what the re-rank reads, with a halfvec embedding; `seed_faces` "
            "the seed's raw vectors.\n"]
    return "\n".join(out)


def render(results: Path, docs: Path) -> None:
    docs.mkdir(exist_ok=True)
    found = sorted((json.loads(p.read_text()) for p in results.glob("search-*.json")
                    if "smoke" not in p.name), key=lambda r: r["size"])
    parts = [NOTES.read_text() if NOTES.exists() else "# Search at scale\n"]
    if found:
        g = found[-1]["generator"]
        rows = [["real LFW (pgface, buffalo_sc)", *(f"{g['target'][k]:.3f}" for k in
                 ("same_mean", "same_std", "diff_mean", "diff_std"))],
                ["generator", *(f"{g['fitted'][k]:.3f}" for k in
                 ("same_mean", "same_std", "diff_mean", "diff_std"))]]
        parts += ["## The data\n",
                  f"Fitted on {g['lfw_faces']:,} real LFW View 1 faces of {g['lfw_people']:,} "
                  f"people (s = {g['s']:.3f}, t = {g['t']:.3f}); mean synthetic identity "
                  f"size {g['sizes_mean']:.1f} faces.\n",
                  _table(rows, ["cosine", "same person mean", "same std", "different mean",
                                "different std"]), ""]
    parts += [section(r, docs) for r in found]
    (docs / "benchmarks-search.md").write_text("\n".join(parts))
