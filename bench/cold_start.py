"""Cold start: a fresh process's first `pgface search`, end to end, at growing library sizes.

    .venv/bin/python bench/cold_start.py --sizes 200000 500000 1000000
    .venv/bin/python bench/cold_start.py --measure-only   # at the size it has: cold runs with
                                                          # the snapshot, phases, warm p50/p95

One database (`coldstart` on the bench server in $PGFACE_BENCH_DIR, default
/tmp/pgface-search-bench) grows to each size in turn; at each size it times, as separate
processes, `pgface search PHOTO` without the index snapshot (the index loaded from PostgreSQL,
as before) and with it (opened memory-mapped, caught up from its watermark), plus the
snapshot's write time, size and open time. Results go to bench/results/cold-start.json and the
table is printed as markdown for docs/benchmarks-search.md.

The faces are random unit vectors (the cost of loading and scanning does not depend on what
they look like) written by binary COPY before any vector index, with 64-byte crops: the
embedding stays in the row (migration 0004), so the heap the load reads weighs what it does
with real crops, which go to TOAST.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql as pgsql

from pgface.db import sql
from pgface.db.connection import migrate
from pgface.db.server import ensure_server

# quality, face_size, yaw, pitch, sharpness (migration 0009): unknown for synthetic faces
NO_QUALITY = (None,) * 5

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("PGFACE_BENCH_DIR", "/tmp/pgface-search-bench"))
RESULTS = REPO / "bench" / "results" / "cold-start.json"
DATA = Path(os.environ.get("PGFACE_TEST_DATA", REPO.parent / "shared" / "data"))
MODEL = "buffalo_sc"
DB = "coldstart"
BATCH = 50_000


def database_url() -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    WORK.chmod(0o755)
    server = ensure_server(WORK / "server")
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB]).fetchone():
            conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(DB)))
    base, _, query = server.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{DB}?{query}"


def grow(url: str, size: int, rng: np.random.Generator) -> float:
    """Adds random faces until the model has `size`; returns the seconds it took."""
    migrate(url)
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("SET search_path TO pgface, public")
        register_vector(conn)
        # bulk load before any vector index, as pgface's bench note advises
        conn.execute("DROP INDEX IF EXISTS faces_embedding_hnsw_idx")
        have = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
        crop = rng.bytes(64)
        bbox, marks = [10.0, 10.0, 90.0, 90.0], [30.0, 40.0, 70.0, 40.0, 50.0, 60.0,
                                                  35.0, 75.0, 65.0, 75.0]
        while have < size:
            n = min(BATCH, size - have)
            photo = conn.execute("""
                INSERT INTO photos (sha256, path, size_bytes, width, height, face_count)
                VALUES (sha256(int8send(%s)), '/photos/' || %s || '.jpg', 200000, 1200, 900,
                        %s) RETURNING id""", [have, have, n]).fetchone()[0]
            vectors = rng.standard_normal((n, 512), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            with conn.cursor() as cur, cur.copy(sql.COPY_FACES) as copy:
                copy.set_types(sql.COPY_FACES_TYPES)
                for v in vectors:
                    copy.write_row((photo, MODEL, v, bbox, marks, 0.9, crop, *NO_QUALITY))
            conn.commit()
            have += n
            print(f"  {have:,} faces", file=sys.stderr, flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) pgface.faces")
    return time.perf_counter() - started


def cli_search(url: str, data_dir: Path, photo: Path, snapshot: bool) -> dict:
    """One fresh `pgface search` process: seconds from exec to its answer on stdout, and to
    its exit (a snapshot rewrite, when due, finishes in between)."""
    env = dict(os.environ, PGFACE_DATABASE_URL=url, PGFACE_DATA_DIR=str(data_dir),
               PGFACE_MODELS_DIR=str(WORK / "models"),
               PGFACE_INDEX_SNAPSHOT="true" if snapshot else "false",
               PYTHONPATH=str(REPO / "src"))
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "pgface"), "search", str(photo),
                                 "--json"], env=env, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        first = proc.stdout.read(1)
        answered = time.perf_counter() - started
        rest = proc.stdout.read()
        proc.wait()
        exited = time.perf_counter() - started
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"pgface search failed: {err.read().strip()[-2000:]}")
    faces = json.loads(first + rest)["faces"]
    return {"answer_s": answered, "exit_s": exited,
            "matches": [[m["face_id"] for m in f["matches"]] for f in faces]}


def snapshot_costs(url: str, data_dir: Path) -> dict:
    """Write, size and open of the snapshot, in this process (the index loaded first)."""
    from pgface.db.connection import open_pool
    from pgface.index_snapshot import SnapshotStore
    from pgface.vector_index import SignIndex

    with open_pool(url) as pool, pool.connection() as conn:
        store = SnapshotStore.for_database(conn, data_dir / "index", "pgface", MODEL)
        index = SignIndex(MODEL)
        index.snapshot = store
        started = time.perf_counter()
        index.sync(conn)  # the first load starts the snapshot's writer when it returns
        load = time.perf_counter() - started
        started = time.perf_counter()
        for thread in threading.enumerate():
            if thread.name == "pgface-index-snapshot":
                thread.join()
        write = time.perf_counter() - started
        assert index._saved_watermark == index._watermark
        size = store.path.stat().st_size
        started = time.perf_counter()
        opened = store.open(conn)
        open_s = time.perf_counter() - started
        assert opened is not None and len(opened) == len(index)
        started = time.perf_counter()
        opened.sync(conn)
        catch_up = time.perf_counter() - started
    return {"load_from_pg_s": load, "write_s": write, "bytes": size,
            "bytes_per_face": size / max(len(index), 1), "open_s": open_s,
            "catch_up_s": catch_up}


def warm_searches(url: str, data_dir: Path, photo: Path, rounds: int) -> dict:
    """Warm `pf.search` in one process, p50/p95 in ms: the notices' photo counts kept between
    searches (what ships) against counted on every search (as before), interleaved."""
    from pgface import library
    from pgface.config import Settings

    settings = Settings(database_url=url, data_dir=data_dir, models_dir=WORK / "models")
    times: dict[str, list[float]] = {"counted every search": [], "kept (ships)": []}
    with library.Pgface(settings) as pf:
        pf.search(photo)  # models, index and caches warm
        for _ in range(rounds):
            for name, max_age in (("counted every search", 0.0),
                                  ("kept (ships)", library.COVERAGE_MAX_AGE_S)):
                library.COVERAGE_MAX_AGE_S, saved = max_age, library.COVERAGE_MAX_AGE_S
                started = time.perf_counter()
                pf.search(photo)
                times[name].append((time.perf_counter() - started) * 1000)
                library.COVERAGE_MAX_AGE_S = saved
        with pf.pool.connection() as conn:
            photos = conn.execute("SELECT count(*) FROM photos").fetchone()[0]
    return {"photos": photos, "load_avg": os.getloadavg()[0], **{
        name: {"p50_ms": float(np.percentile(t, 50)), "p95_ms": float(np.percentile(t, 95)),
               "runs": len(t)} for name, t in times.items()}}


def phases_of(url: str, data_dir: Path, photo: Path, runs: int,
              before: Path | None = None) -> dict[str, list[dict]]:
    """bench/cold_phases.py's phase timings of `runs` cold searches with the snapshot; with
    `before` (the src folder of an earlier pgface), its runs too, alternated with these."""
    from cold_phases import phases

    env = dict(os.environ, PGFACE_DATABASE_URL=url, PGFACE_DATA_DIR=str(data_dir),
               PGFACE_MODELS_DIR=str(WORK / "models"))
    timed: dict[str, list[dict]] = {"this": [], "before": []}
    for _ in range(runs):
        timed["this"].append(phases(photo, dict(env, PYTHONPATH=str(REPO / "src"))))
        if before is not None:
            timed["before"].append(phases(photo, dict(env, PYTHONPATH=str(before))))
    return timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[200_000])
    ap.add_argument("--runs", type=int, default=1, help="cold searches without the snapshot")
    ap.add_argument("--runs-with", type=int, default=3, help="cold searches with it")
    ap.add_argument("--catch-up", type=int, default=10_000,
                    help="faces added after the snapshot, for the last size's catch-up run")
    ap.add_argument("--photo", type=Path, default=DATA / "photos" / "queries" / "obama1.jpg")
    ap.add_argument("--measure-only", action="store_true",
                    help="no growing, no run without the snapshot: the cold searches with it, "
                         "their phases and the warm searches, at the database's size")
    ap.add_argument("--warm", type=int, default=30, help="warm searches of each kind")
    ap.add_argument("--phases", type=int, default=3, help="cold searches timed by phase")
    ap.add_argument("--before", type=Path, help="src folder of an earlier pgface whose cold "
                    "searches are timed by phase too, alternated (e.g. from git archive)")
    args = ap.parse_args()
    if args.measure_only:
        measure_only(args)
        return
    url = database_url()
    rng = np.random.default_rng(15)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["machine"] = {"cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "python": platform.python_version()}
    for size in sorted(args.sizes):
        print(f"growing to {size:,} faces", file=sys.stderr)
        grow_s = grow(url, size, rng)
        data_dir = WORK / "coldstart-data"
        shutil.rmtree(data_dir / "index", ignore_errors=True)
        data_dir.mkdir(parents=True, exist_ok=True)
        costs = snapshot_costs(url, data_dir)
        load1 = os.getloadavg()[0]
        without = [cli_search(url, data_dir, args.photo, False) for _ in range(args.runs)]
        with_ = [cli_search(url, data_dir, args.photo, True) for _ in range(args.runs_with)]
        results[str(size)] = {"grow_s": grow_s, "snapshot": costs,
                              "without": without, "with": with_,
                              "matches_equal": all(r["matches"] == (without + with_)[0]["matches"]
                                                   for r in without + with_),
                              "load_avg": [load1, os.getloadavg()[0]],
                              "at": time.strftime("%Y-%m-%d %H:%M:%S")}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
        print(json.dumps(results[str(size)]), file=sys.stderr)
    if args.catch_up:  # faces added since the snapshot: caught up, then a rewrite before exit
        size = max(args.sizes)
        grow(url, size + args.catch_up, rng)
        runs = [cli_search(url, data_dir, args.photo, True)]  # the one that catches up
        results[str(size)]["catch_up"] = {"faces": args.catch_up, "runs": runs}
        RESULTS.write_text(json.dumps(results, indent=1))
        print(json.dumps(runs), file=sys.stderr)
    print(table(results))


def measure_only(args: argparse.Namespace) -> None:
    url = database_url()
    data_dir = WORK / "coldstart-data"
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT count(*) FROM pgface.faces").fetchone()[0]
    entry = {"faces": size, "at": time.strftime("%Y-%m-%d %H:%M:%S"),
             "with": [cli_search(url, data_dir, args.photo, True)
                      for _ in range(args.runs_with)],
             "phases": phases_of(url, data_dir, args.photo, args.phases, args.before),
             "warm": warm_searches(url, data_dir, args.photo, args.warm)}
    results.setdefault("measured", {})[str(size)] = entry
    RESULTS.write_text(json.dumps(results, indent=1))
    print(json.dumps(entry, indent=1))


def table(results: dict) -> str:
    def med(runs: list[dict], key: str) -> str:
        return f"{np.median([r[key] for r in runs]):.2f}"

    lines = ["| faces | first search, no snapshot: answer / exit (s) | with the snapshot "
             "(s) | snapshot + new faces caught up (s) | snapshot on disk | write | "
             "open (checked, mmap) | load from PostgreSQL |",
             "|---|---|---|---|---|---|---|---|"]
    for key in sorted((k for k in results if k.isdigit()), key=int):
        if "snapshot" not in results[key]:
            continue
        r, s = results[key], results[key]["snapshot"]
        up = r.get("catch_up")
        caught = (f"{med(up['runs'], 'answer_s')} / {med(up['runs'], 'exit_s')} "
                  f"(+{up['faces']:,})" if up else "-")
        lines.append(
            f"| {int(key):,} | {med(r['without'], 'answer_s')} / {med(r['without'], 'exit_s')} "
            f"| {med(r['with'], 'answer_s')} / {med(r['with'], 'exit_s')} | {caught} | "
            f"{s['bytes'] / 2**20:.0f} MiB ({s['bytes_per_face']:.0f} B a face) | "
            f"{s['write_s']:.2f} s | {s['open_s']:.2f} s | {s['load_from_pg_s']:.1f} s |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
