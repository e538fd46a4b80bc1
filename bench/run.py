"""Every benchmark, one after the other (each on an otherwise idle machine), then
docs/benchmarks.md assembled from their sections.

    python bench/run.py            # the full suite: about two hours on 2 cores
    python bench/run.py --smoke    # seconds-long runs of each script, nothing written
    python bench/run.py --assemble # only rebuild docs/benchmarks.md from the sections

Benchmarks are not tests: nothing here fails on speed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from common import DOCS, machine

BENCH = Path(__file__).resolve().parent
# (script, full-run arguments, smoke arguments, the section it writes)
SUITE = [
    ("indexing.py", [], ["--smoke"], "benchmarks-indexing.md"),
    ("hnsw_bulk.py", [], ["--smoke"], "benchmarks-hnsw-bulk.md"),
    ("reindex.py", [], ["--smoke"], "benchmarks-reindex.md"),
    ("index_workers.py", [], ["--smoke"], "benchmarks-index-workers.md"),
    ("processes.py", [], ["--smoke"], "benchmarks-processes.md"),
    ("second_pass.py", [], ["--smoke"], "benchmarks-second-pass.md"),
    ("detector_input.py", [], ["--smoke"], "benchmarks-detector-input.md"),
    ("accuracy.py", [], None, "calibration.md"),
    ("int8_model.py", [], ["--smoke"], "benchmarks-int8.md"),
    ("threshold_scale.py", [], ["--smoke"], "benchmarks-threshold.md"),
    ("search_scale.py", [], ["--smoke"], "benchmarks-search.md"),
    ("verdicts.py", [], ["--smoke"], "benchmarks-verdicts.md"),
    # its figures and plot are written into benchmarks-search.md's notes (search_notes.md)
    ("scale_10m.py", [], ["--smoke"], None),
    ("people_scale.py", [], ["--smoke"], "benchmarks-people-scale.md"),
    ("join_memory.py", [], ["--sizes", "1000", "--smoke"], "benchmarks-join-memory.md"),
    ("people_page.py", ["--faces", "100000", "300000", "1000000"],
     ["--faces", "20000", "--rounds", "1", "--smoke"], "benchmarks-people-page.md"),
    ("person_cover.py", [], ["--faces", "5000", "--person", "2000", "--rounds", "1", "--smoke"],
     "benchmarks-person-cover.md"),
    ("person_faces.py", [], ["--faces", "5000", "--person", "2000", "--rounds", "1", "--smoke"],
     "benchmarks-person-faces.md"),
    ("quality.py", [], None, "benchmarks-quality.md"),
    ("http_load.py", ["--faces", "100000"],
     ["--faces", "2000", "--requests", "8", "--out", "/tmp/pgface-http-smoke.md"],
     "benchmarks-http.md"),
    ("backup.py", [], ["--smoke"], "benchmarks-backup.md"),
    ("replica.py", ["--photos", "4992", "--synthetic", "20000", "--lag-photos", "40"],
     ["--photos", "20", "--lag-photos", "3", "--requests", "4", "--clients", "1", "--smoke"],
     "benchmarks-replica.md"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--only", nargs="*", help="run only these scripts (e.g. indexing.py)")
    parser.add_argument("--assemble", action="store_true",
                        help="run nothing; rebuild docs/benchmarks.md from the sections")
    args = parser.parse_args()
    started = time.perf_counter()
    for script, full, smoke, _ in SUITE:
        if args.assemble or (args.only and script not in args.only):
            continue
        extra = smoke if args.smoke else full
        if extra is None:
            print(f"skipping {script}: it has no smoke mode")
            continue
        print(f"== {script} {' '.join(extra)}", flush=True)
        subprocess.run([sys.executable, str(BENCH / script), *extra], check=True, cwd=BENCH)
    if args.smoke:
        return
    sections = [(DOCS / name).read_text() for *_, name in SUITE
                if name and (DOCS / name).exists()]
    ran = ("from sections written earlier" if args.assemble
           else f"after {time.perf_counter() - started:.0f} s of benchmarks")
    # Sections may come from other machines (the runs behind them are hours long): each
    # names its own; the header names the machine that assembled them.
    header = (f"# pgface benchmarks\n\nAssembled by `python bench/run.py` on "
              f"{time.strftime('%Y-%m-%d')} on {machine()}, {ran}; each section names its own "
              "machine, command and conditions. A speed is also given as a ratio against its "
              "baseline measured in the same run where the section has one (the 1M-face "
              "clustering times, the 10M projection and the GPU indexer's table have "
              "none).\n\n")
    # calibration.md is a page of its own; its table is the accuracy section here.
    body = "\n\n".join(s.replace("# Match threshold", "## Match threshold", 1) for s in sections)
    (DOCS / "benchmarks.md").write_text(header + body)
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
