"""Read replicas: how soon a face committed on the primary is visible on a streaming hot
standby, and search throughput through one and two `pgface serve` processes that read it.

A primary and a standby (`pg_basebackup -R`) of the embedded PostgreSQL on this machine; LFW
View 1 photos indexed on the primary (real faces), optionally synthetic faces on top (so the
searching processes use their in-process index); then

- lag: photos indexed one at a time on the primary; for each, the time from the return of
  the commit to the first moment a query on the standby sees its faces (polled every 2 ms);
- throughput: POST /api/search of LFW photos, spread evenly over 1 or 2 `pgface serve`
  processes (the load balancer's part), each reading the standby, with N client threads.

    python bench/replica.py --photos 4992 --synthetic 0 --requests 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import httpx
import numpy as np
import psycopg
from common import DOCS, machine, markdown_table, require
from http_load import fill, free_port, start_server

from pgface import Pgface, Settings, vector_index
from pgface.db.connection import migrate
from pgface.db.server import create_standby, ensure_server, stop_server

REPO = Path(__file__).resolve().parents[1]
DOC = DOCS / "benchmarks-replica.md"
LFW = Path(os.environ.get("PGFACE_TEST_DATA", REPO.parent / "shared" / "data")) / "lfw-view1"
VISIBLE = """
SELECT count(*) FROM pgface.faces f JOIN pgface.photos p ON p.id = f.photo_id
WHERE p.path = %s
"""


def wait_replayed(primary: str, standby: str) -> None:
    with psycopg.connect(primary) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    with psycopg.connect(standby, autocommit=True) as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn",
                               [lsn]).fetchone()[0]:
            time.sleep(0.01)


def measure_lag(pf: Pgface, standby: str, photos: list[Path]) -> list[float]:
    """ms from the return of each photo's indexing (its commit) to its faces on the standby."""
    lags = []
    with psycopg.connect(standby, autocommit=True) as reader:
        for photo in photos:
            report = pf.index([photo])
            committed = time.perf_counter()
            if not report.faces:
                continue
            path = str(photo.resolve())
            while not reader.execute(VISIBLE, [path]).fetchone()[0]:
                time.sleep(0.002)
            lags.append((time.perf_counter() - committed) * 1000)
    return lags


def throughput(bases: list[str], queries: list[tuple[str, bytes]], clients: int,
               requests: int) -> tuple[float, float, float]:
    """requests/s, p50 and p95 ms of `requests` searches over `clients` threads, request i
    going to server i mod len(bases)."""
    counter = iter(range(requests))
    lock = threading.Lock()
    times: list[float] = []

    def client(_: int) -> None:
        with httpx.Client(timeout=300) as http:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                name, data = queries[n % len(queries)]
                started = time.perf_counter()
                response = http.post(f"{bases[n % len(bases)]}/api/search?top=10",
                                     files={"file": (name, data)})
                response.raise_for_status()
                with lock:
                    times.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - started
    return requests / seconds, statistics.median(times), float(np.percentile(times, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=4992, help="LFW photos to index")
    parser.add_argument("--synthetic", type=int, default=0, help="synthetic faces on top")
    parser.add_argument("--lag-photos", type=int, default=40)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--smoke", action="store_true", help=f"{DOC.name} not written")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    files = sorted(require(LFW / "images").rglob("*.jpg"))
    indexed, later = files[: args.photos], files[args.photos:][: args.lag_photos]
    if len(later) < args.lag_photos:  # every photo indexed: time the last ones instead
        indexed, later = files[: len(files) - args.lag_photos], files[-args.lag_photos:]

    work = Path(tempfile.mkdtemp(prefix="pgface-replica-", dir="/tmp"))
    work.chmod(0o755)  # under root the servers run as their own user
    servers: list = []
    try:
        primary_server = ensure_server(work / "primary")
        with psycopg.connect(primary_server, autocommit=True) as conn:
            conn.execute("CREATE DATABASE replica_bench")
        primary = primary_server.replace("/postgres?", "/replica_bench?")
        migrate(primary)
        standby = create_standby(work / "primary", work / "standby").replace(
            "/postgres?", "/replica_bench?")
        settings = Settings(database_url=primary, read_database_url=[standby],
                            data_dir=work, models_dir=Settings().resolved_models_dir())
        with Pgface(settings) as pf:
            started = time.perf_counter()
            report = pf.index(indexed)
            indexing_s = time.perf_counter() - started
            print(f"indexed {report.indexed} photos, {report.faces} faces in "
                  f"{indexing_s:.0f} s", file=sys.stderr)
            if args.synthetic:
                fill(primary, args.synthetic, pf.analyzer.model_name, 7)
            wait_replayed(primary, standby)
            lags = measure_lag(pf, standby, later)
            wait_replayed(primary, standby)
            found = sum(any(m.path == str(p.resolve()) for f in pf.search(p).faces
                            for m in f.matches) for p in later[:5])
            faces = pf.stats()["faces"]
            index = vector_index.shared_index(pf.read_pool, pf.analyzer.model_name)
            per_face = index.nbytes(in_use=True) / len(index) if index and len(index) else None

        env = {**os.environ, "PGFACE_DATABASE_URL": primary, "PGFACE_READ_DATABASE_URL": standby,
               "PGFACE_MODELS_DIR": str(settings.models_dir), "PGFACE_DATA_DIR": str(work)}
        queries = [(p.name, p.read_bytes()) for p in indexed[:: max(1, len(indexed) // 50)]]
        rows = []
        for count in (1, 2):
            while len(servers) < count:
                port = free_port()
                servers.append((start_server(env, port, None), f"http://127.0.0.1:{port}"))
            bases = [b for _, b in servers]
            throughput(bases, queries, args.clients, 4 * count)  # warm-up
            rate, p50, p95 = throughput(bases, queries, args.clients, args.requests)
            rows.append([count, args.clients, args.requests, f"{rate:.1f}", f"{p50:.0f}",
                         f"{p95:.0f}", f"{rate / float(rows[0][3]) if rows else 1.0:.2f}x"])
            print(f"{count} process(es): {rate:.1f} searches/s", file=sys.stderr)
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(30)
        stop_server(work / "standby")
        stop_server(work / "primary")

    table = markdown_table(["API processes", "clients", "searches", "searches/s", "p50 ms",
                            "p95 ms", "searches/s vs 1 process"], rows)
    lines = [f"machine: {machine()}; load average {load_before:.1f} before the run, "
             f"{os.getloadavg()[0]:.1f} after",
             f"library: {faces:,} faces ({report.faces:,} real from {report.indexed:,} LFW "
             f"photos in {indexing_s:.0f} s + {args.synthetic:,} synthetic)",
             f"lag over {len(lags)} photos: median {statistics.median(lags):.1f} ms, p95 "
             f"{np.percentile(lags, 95):.1f} ms, max {max(lags):.1f} ms; {found} of the first "
             f"{len(later[:5])} of those photos found by a search reading the standby"]
    if per_face:
        lines.append(f"in-process index: {per_face:.0f} bytes a face in each searching process")
    print("\n".join(lines))
    print(table)
    if args.smoke:
        return
    # docs/scaling.md quotes this file (probe docs21: its figures had no source on disk)
    DOC.write_text(
        "## Read replicas: lag and search throughput\n\n"
        f"`python bench/replica.py {' '.join(sys.argv[1:])}`, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}. {__doc__.split(chr(10) * 2)[0].strip()}\n\n"
        + "".join(f"- {line}\n" for line in lines) + f"\n{table}\n")
    print(f"wrote {DOC}")

if __name__ == "__main__":
    main()
