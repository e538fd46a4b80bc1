"""Indexing a library again with nothing changed: each file's stamp (size, modification time)
against reading and hashing every file, which every run did before the stamps (`--reread`
still does).

Sets: LFW View 1 (4,992 photos of 13 KB) and a phone-size library: the phone-size photos
(bench/phone_set.py, 12 to 48 MP JPEGs) copied into enough folders to make --phone-files
files. A copy costs a run what a distinct photo does: the file is read, hashed and looked up
(or its stamp checked), and its path recorded. Each set is indexed into a fresh database
first; then the two ways alternate, --rounds times each, with the files in the page cache
(warm) and, where this process may drop the kernel's caches (root), read from disk (cold).
Prints a table and writes docs/benchmarks-reindex.md.

    python bench/reindex.py [--rounds 3] [--phone-files 600]
    python bench/reindex.py --smoke   # one round of 40 phone-size files, nothing written
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from common import DATA, DOCS, HostClock, fresh_database, machine, markdown_table, require
from phone_set import phone_set

from pgface import Pgface, Settings
from pgface.index import STAMP_SETTLE_S, IndexReport

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_caches() -> bool:
    """Empty the kernel's page cache (root only); False where this process may not."""
    os.sync()
    try:
        DROP_CACHES.write_text("1\n")
    except OSError:
        return False
    return True


def phone_library(files: int) -> Path:
    """FILES copies of the phone-size photos, a folder per round of copies, made once."""
    sources = sorted(p for p in (DATA / "photos").rglob("*.jpg")
                     if p.parent.name in ("groups", "detection-truth"))
    photos = [p.path for p in phone_set(sources)]
    folder = Path(tempfile.gettempdir()) / f"pgface-bench-reindex-{files}"
    done = folder / "complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        for number in range(files):
            copy = folder / f"{number // len(photos):03d}" / photos[number % len(photos)].name
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(photos[number % len(photos)], copy)
        done.touch()
        time.sleep(STAMP_SETTLE_S)  # written a moment ago, a file is read again, unstamped
    return folder


def timed(run: Callable[[], IndexReport], cold: bool) -> tuple[float, IndexReport]:
    if cold:
        drop_caches()
    started = time.perf_counter()
    report = run()
    return time.perf_counter() - started, report


def measure(name: str, folder: Path, rounds: int, cold: bool, spreads: list[float]
            ) -> list[list[object]]:
    url = fresh_database(f"reindex_{name.split()[0].lower()}")
    rows = []
    with Pgface(Settings(database_url=url)) as pf:
        first = pf.index([folder])
        files = first.files
        size = sum(p.stat().st_size for p in folder.rglob("*.jpg"))
        print(f"{name}: {files} files, {size / 2**20:,.0f} MiB; first index "
              f"{first.seconds:.1f} s ({first.indexed} photos, {first.skipped} copies)")
        pf.index([folder])  # stamps for any file written within STAMP_SETTLE_S of the first
        for state in ("warm", "cold") if cold else ("warm",):
            times: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(rounds):
                for reread in (True, False):
                    seconds, report = timed(lambda r=reread: pf.index([folder], reread=r),
                                            state == "cold")
                    assert report.indexed == 0 and report.skipped == files, report
                    times[reread].append(seconds)
            spreads += [max(t) / min(t) for t in times.values()]
            stamps, reads = statistics.median(times[False]), statistics.median(times[True])
            rows.append([name, files, f"{size / files / 2**20:.2f}", state,
                         # milliseconds shown: a run of stamps alone can take 0.02 s, where
                         # two decimals could not check the ratio beside it
                         f"{reads:.3f}", f"{stamps:.3f}", f"{reads / stamps:.1f}x",
                         f"{files / stamps:,.0f}"])
            print(" | ".join(map(str, rows[-1])))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phone-files", type=int, default=600)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.phone_files = 1, 40
    print(machine())
    clock = HostClock()
    # a smoke run checks the script, warm: dropping the whole machine's page cache (as root)
    # slowed everything else running beside it (probe bench49)
    cold = not args.smoke and drop_caches()
    if not cold:
        print("warm runs only: the kernel's caches "
              + ("are kept in a smoke run" if args.smoke else "cannot be dropped here (not root)"))
    spreads: list[float] = []
    rows = measure("LFW View 1", require(DATA / "lfw-view1" / "images"), args.rounds, cold,
                   spreads)
    rows += measure("phone-size library", phone_library(args.phone_files), args.rounds, cold,
                    spreads)
    table = markdown_table(
        ["set", "files", "MiB a file", "page cache", "every file read (s)",
         "stamps checked (s)", "ratio", "files/s with stamps"], rows)
    print(table)
    if args.smoke:
        return
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (DOCS / "benchmarks-reindex.md").write_text(
        f"## Indexing again with nothing changed\n\n"
        f"`python bench/reindex.py --rounds {args.rounds} --phone-files {args.phone_files}`, "
        f"{when}, on {machine()}; {clock.note(max(spreads) if args.rounds > 1 else None)}.\n\n"
        "A run over a library indexed before reads no file whose size and modification time "
        "are those recorded when it was last read (its photo analysed by the active pack): "
        "it lists the folders, takes each file's stat, and asks the database which stamps it "
        "knows, a batch at a time. \"Every file read\" is the same run with `--reread`, which "
        "is what every run did before the stamps: each file read whole and hashed (SHA-256), "
        "and its hash looked up. Both are the library's `index` call in one process, after a "
        "first index of the set into a fresh database; medians of the rounds, the two ways "
        "alternated. Warm: the files in the page cache, as after a recent read; cold: the "
        "kernel's caches dropped before each run, so the files come from the disk (this "
        "machine's virtual disk; a network share or a spinning disk reads slower, which only "
        "the reading way pays).\n\n"
        f"{table}\n\n"
        "The phone-size library is the phone-size photos of the indexing benchmark "
        "(bench/phone_set.py) copied into folders: a copy costs a run what a distinct photo "
        "does (read, hashed and looked up, or its stat checked).\n")


if __name__ == "__main__":
    main()
