"""Where the indexer's model runs lose time on a GPU: each run timed, inside pgface's indexer
(twice, the same models) and alone (on this thread, on a thread new to the shape, beside a
thread running Python), by model and batch shape. What docs/benchmarks-indexing.md's GPU
section says about threads was measured with it.

    python bench/gpu_threads.py                    # TorchCUDA, LFW View 1 DevTest photos
    python bench/gpu_threads.py --backend TorchCPU --photos 64 --photo-batch 32
                                                   # the same code on the CPU: checks it

Needs the `gpu` extra, PostgreSQL (the benchmark server) and ../shared/data/lfw-view1
(PGFACE_TEST_DATA); prints its report, writes nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from common import fresh_database, require
from gpu import LFW, TimedSession, photo_set

from pgface import Pgface, Settings
from pgface.imaging import decode_photo
from pgface.models.torch_backend import unusable_reason


def report(title: str, sessions: dict[str, TimedSession]) -> None:
    """Each model's runs since the last report, by batch size; then forgotten."""
    for model, session in sessions.items():
        by_batch: dict[int, list[float]] = defaultdict(list)
        for batch, seconds in session.runs:
            by_batch[batch].append(seconds)
        for batch, runs in sorted(by_batch.items()):
            print(f"{title:28s} {model:10s} batch {batch:4d}: {len(runs):3d} runs, first "
                  f"{runs[0] * 1000:8.1f} ms, median {statistics.median(runs) * 1000:7.1f} ms, "
                  f"all {sum(runs):6.2f} s", flush=True)
        session.runs.clear()


def beside_busy_thread(work: Callable[[], Any]) -> None:
    stop = threading.Event()

    def busy() -> None:  # pure Python: holds the interpreter lock until made to give it up
        count = 0
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        work()
    finally:
        stop.set()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="TorchCUDA")
    parser.add_argument("--photos", type=int, default=0, help="the first N photos (0: all)")
    parser.add_argument("--photo-batch", type=int, default=256)
    args = parser.parse_args()
    # pgface falls back to the CPU with a warning: this table would be the CPU's, unsaid
    reason = unusable_reason(args.backend) if args.backend.startswith("Torch") else None
    if reason:
        raise SystemExit(f"{args.backend} cannot run here: {reason}")
    photos, _ = photo_set(None)
    photos = photos[:args.photos or None]
    images_dir = require(LFW / "images")
    paths = [images_dir / p for p in photos]
    settings = Settings(database_url=fresh_database("b_gpu_threads"), providers=[args.backend],
                        photo_batch=args.photo_batch, batch_detection=True)
    with Pgface(settings) as pf:
        analyzer = pf.analyzer
        analyzer.warm_up()
        detector, recognizer = analyzer._load()
        sessions = {"detector": TimedSession(detector.session),
                    "recognizer": TimedSession(recognizer.session)}
        detector.session, recognizer.session = sessions["detector"], sessions["recognizer"]
        pf.pool  # noqa: B018 - migrations before the clock
        for run, name in (("indexer, first run", "b_gpu_threads"),
                          ("indexer, again", "b_gpu_threads_again")):
            with Pgface(settings.model_copy(update={"database_url": fresh_database(name)}),
                        analyzer) as again:
                indexed = again.index(paths)
            print(f"{run}: {indexed.indexed} photos in {indexed.seconds:.2f} s; seconds by "
                  "stage: " + ", ".join(f"{k} {v:.2f}" for k, v in indexed.timings.items()),
                  file=sys.stderr, flush=True)
            report(run, sessions)
        images = [decode_photo(p.read_bytes(), str(p), 1 << 26, 10**8).image
                  for p in paths[:analyzer.batch_size]]

        def five() -> None:
            for _ in range(5):
                analyzer.detect_many(images)

        five()
        report("alone, this thread", sessions)
        five()
        report("alone, this thread again", sessions)
        with ThreadPoolExecutor(1) as fresh:
            fresh.submit(five).result()
        report("alone, a new thread", sessions)
        beside_busy_thread(five)
        report("beside a busy Python thread", sessions)


if __name__ == "__main__":
    main()
