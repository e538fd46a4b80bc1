"""Bulk loads and the HNSW index: what keeping pgvector's HNSW index in step costs an insert,
against building it over the same faces afterwards, and `pgface index` into an empty library
with the index off for the run (engine.hnsw_off_for_bulk, the default) against kept in step.

    python bench/hnsw_bulk.py             # about 6 minutes on 2 cores; writes
                                          # docs/benchmarks-hnsw-bulk.md
    python bench/hnsw_bulk.py --smoke     # seconds; prints, writes nothing

The embedded PostgreSQL of the other benchmarks (or PGFACE_DATABASE_URL's server).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
import psycopg
from common import (
    DATA,
    DOCS,
    CpuMeter,
    HostClock,
    fresh_database,
    machine,
    markdown_table,
    require,
    server_url,
    with_database,
)
from indexing import largest_spread, median_run, run_pgface
from pgvector.psycopg import register_vector

from pgface import engine
from pgface.db import sql
from pgface.db.connection import DEFAULT_SCHEMA, search_path

INSERTS_PER_COMMIT = 500
DATABASE = "b_hnsw_bulk"


def table_costs(sizes: list[int]) -> list[list[object]]:
    """Random unit vectors (a face embedding's size) into a table with the HNSW index of
    migration 0001, against the same rows loaded first and the index built after them."""
    rows = []
    rng = np.random.default_rng(0)
    url = fresh_database(DATABASE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        register_vector(conn)
        create_index = sql.CREATE_HNSW.replace("faces_embedding_hnsw_idx", "t_hnsw").replace(
            "ON faces", "ON t").replace("(embedding", "(e")
        for size in sizes:
            vectors = rng.standard_normal((size, 512)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            seconds = {}
            for mode in ("kept in step", "built after"):
                conn.execute("DROP TABLE IF EXISTS t")
                conn.execute("CREATE TABLE t (id bigserial PRIMARY KEY, e vector(512))")
                if mode == "kept in step":
                    conn.execute(create_index)
                started = time.perf_counter()
                with conn.cursor() as cursor:
                    for start in range(0, size, INSERTS_PER_COMMIT):
                        with conn.transaction():
                            cursor.executemany("INSERT INTO t (e) VALUES (%s)", [
                                (v,) for v in vectors[start:start + INSERTS_PER_COMMIT]])
                if mode == "built after":
                    conn.execute(create_index)
                seconds[mode] = time.perf_counter() - started
            kept, built = seconds["kept in step"], seconds["built after"]
            rows.append([f"{size:,}", f"{kept:.2f}", f"{1000 * kept / size:.2f}",
                         f"{built:.2f}", f"{1000 * built / size:.2f}", f"{kept / built:.2f}x"])
            print(rows[-1], flush=True)
        conn.execute("DROP TABLE IF EXISTS t")
    return rows


def index_runs(photos: list, repeat: int) -> tuple[list[list[object]], float]:
    """`pgface index` of PHOTOS into an empty library, bulk and not, alternated; the table's rows
    and the largest slowest-to-fastest ratio of one way's runs."""
    default = "HNSW off for the run, built at the end (default)"
    runs: dict[str, list[dict]] = {default: [], "HNSW kept in step insert by insert": []}
    default_min = engine.BULK_MIN_PHOTOS
    for number in range(repeat):
        order = list(runs) if number % 2 == 0 else list(runs)[::-1]
        for name in order:
            engine.BULK_MIN_PHOTOS = default_min if name == default else 10**12
            try:
                runs[name].append(run_pgface(photos, DATABASE))
            finally:
                engine.BULK_MIN_PHOTOS = default_min
            with psycopg.connect(with_database(server_url(), DATABASE)) as conn:
                conn.execute(sql.SET_SEARCH_PATH, [search_path(conn, DEFAULT_SCHEMA), False])
                assert conn.execute(sql.HNSW_EXISTS).fetchone()[0]  # built again, or kept
            print(f"  {name}: {runs[name][-1]['seconds']:.2f} s", flush=True)
    medians = {name: median_run(r) for name, r in runs.items()}
    rows = []
    for name, results in runs.items():
        chosen, times = medians[name], [r["seconds"] for r in results]
        meter: CpuMeter = chosen["cpu"]
        rows.append([name, chosen["faces"],
                     f"{chosen['seconds']:.2f} ({min(times):.2f}-{max(times):.2f})",
                     f"{meter.process:.2f}",
                     "-" if meter.others is None else f"{meter.others:.2f}",
                     "-" if meter.idle is None else f"{meter.idle:.2f}",
                     f"{chosen['seconds'] / medians[default]['seconds']:.2f}x"])
    return rows, largest_spread(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a short run that writes nothing")
    parser.add_argument("--lfw", type=int, default=500, help="LFW photos to index")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each way of indexing")
    args = parser.parse_args()
    host = HostClock()
    sizes = [600, 2000] if args.smoke else [600, 5_000, 10_000, 20_000]
    repeat = 1 if args.smoke else args.repeat
    lfw = sorted(require(DATA / "lfw-view1" / "images").rglob("*.jpg"))
    random.Random(7).shuffle(lfw)
    photos = lfw[:80 if args.smoke else args.lfw]
    started = time.time()
    table = table_costs(sizes)
    runs, spread = index_runs(photos, repeat)
    minutes = (time.time() - started) / 60
    text = (
        "## Bulk loads and the HNSW index\n\n"
        f"Machine: {machine()}; {host.note(None if repeat == 1 else spread)}. "
        f"Run on {time.strftime('%Y-%m-%d')} with `python bench/hnsw_bulk.py"
        f"{' --smoke' if args.smoke else ''}` ({minutes:.0f} minutes).\n\n"
        "Below 20,000 faces pgvector's HNSW index on `faces.embedding` answers searches "
        "(engine.py), and every insert keeps it in step. Random unit vectors of 512 "
        f"dimensions into a table with that index ({INSERTS_PER_COMMIT} rows a transaction), "
        "against the same rows loaded first and the index built after them "
        "(`CREATE INDEX`, as migration 0001 makes it):\n\n"
        + markdown_table(["faces", "kept in step s", "ms a face", "built after s",
                          "ms a face", "kept / built"], table)
        + f"\n\n`pgface index` of {len(photos)} LFW View 1 photos into an empty library, "
        f"median of {repeat} alternated runs (range); the default's run includes building "
        "the index at its end. CPU as in docs/benchmarks-indexing.md (the process's, the "
        "rest of the machine's, PostgreSQL's server among it, and the cores' idle time), "
        "from the median run:\n\n"
        + markdown_table(["indexing", "faces", "s", "the process's CPU s",
                          "the rest of the machine's CPU s", "cores idle, s",
                          "time against the default's"], runs)
        + "\n\nA run is a bulk load where it adds at least "
        f"{engine.BULK_MIN_PHOTOS} photos this pack has not analysed (as a sample of their "
        "paths says) and at least half as many as the library has faces; it then drops the "
        "index, leaves it off while it runs (searches meanwhile scan exactly, which below "
        "20,000 faces takes milliseconds) and builds it again when it ends, where the library "
        "is still below 10,000 faces (from there to 20,000 pgvector scans exactly, as after a "
        "library shrinks; `engine.hnsw_off_for_bulk`, `index.hnsw_for_run`; "
        "tests/test_engine.py and tests/test_index_processes.py).\n")
    print(text)
    if not args.smoke:
        (DOCS / "benchmarks-hnsw-bulk.md").write_text(text)


if __name__ == "__main__":
    main()
