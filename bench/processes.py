"""Several pgface processes on one machine: do they share out its cores?

    python bench/processes.py [--lfw 400] [--repeat 5] [--smoke]

OpenVINO pins the calling thread of an inference to the first core of the process's set by
default, and processes do not share the cores out among themselves. pgface's sessions pin
only where they have every core (models/sessions.py, cpu_pinning). Two measurements, each
with pgface's sessions and with OpenVINO's default pinning, as many processes as cores, one
thread each, all starting together after loading their models:

- recognition alone: each process embeds the same LFW photos (scaled to the recognizer's
  112x112), 32 a run; faces/s of all processes together;
- indexing: each process indexes its share of LFW photos into one database; against one
  process with a thread per core on all of them.

Rows are interleaved in a rotating order, REPEAT times; the median is reported with the
range. Prints the tables and writes docs/benchmarks-processes.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from common import DATA, DOCS, fresh_database, machine, markdown_table, require

from pgface import Pgface, Settings
from pgface.models import sessions
from pgface.models.packs import resolve_pack

INDEXING = {  # name: (a process per core with one thread each, pinned as OpenVINO's default)
    "1 process, a thread per core": (False, False),
    "a process per core, 1 thread each (pgface)": (True, False),
    "a process per core, 1 thread each, pinned as OpenVINO's default": (True, True),
}
RECOGNITION = {  # name: pinned as OpenVINO's default
    "a process per core, 1 thread each (pgface)": False,
    "a process per core, 1 thread each, pinned as OpenVINO's default": True,
}
INDEXING_SINGLE, INDEXING_PGFACE, INDEXING_PINNED = INDEXING
RECOGNITION_PGFACE, RECOGNITION_PINNED = RECOGNITION
RUNS_OF_32 = 20  # recognizer runs per process


def pin_as_openvino_does(pin: bool) -> None:
    if pin:  # what pgface's sessions did before cpu_pinning: OpenVINO's default
        sessions.cpu_pinning = lambda threads: True


def index_share(url: str, threads: int, paths: list[Path], pin: bool, start: Any,
                done: Any) -> None:
    """One indexing process: load, wait for the others, index, report (start, end, faces)."""
    pin_as_openvino_does(pin)
    with Pgface(Settings(database_url=url, threads=threads)) as pf:
        pf.analyzer.warm_up()
        pf.pool  # noqa: B018 - open the pool (migrations) before the clock
        start.wait()
        began = time.perf_counter()
        report = pf.index(paths)
        done.put((began, time.perf_counter(), report.faces, report.indexed,
                  len(report.failures)))


def embed_runs(crops: np.ndarray, pin: bool, start: Any, done: Any) -> None:
    """One recognition process: a one-thread session, RUNS_OF_32 runs of the crops."""
    pin_as_openvino_does(pin)
    recognizer = resolve_pack("buffalo_sc", Settings().resolved_models_dir()).recognizer
    session = sessions.create_session(recognizer, ["OpenVINO"], threads=1)
    feed = {session.get_inputs()[0].name: crops}
    session.run(None, feed)  # the first run allocates
    start.wait()
    began = time.perf_counter()
    for _ in range(RUNS_OF_32):
        session.run(None, feed)
    done.put((began, time.perf_counter(), RUNS_OF_32 * len(crops), 0, 0))


def together(target: Callable[..., None], per_process: list[tuple]) -> list[tuple]:
    """Run target in a process per argument tuple, started together; their reports."""
    context = mp.get_context("spawn")
    start, done = context.Barrier(len(per_process)), context.Queue()
    workers = [context.Process(target=target, args=(*args, start, done))
               for args in per_process]
    for worker in workers:
        worker.start()
    results = [done.get(timeout=1800) for _ in workers]
    for worker in workers:
        worker.join()
    return results


def indexing_run(setup: str, paths: list[Path], cores: int) -> dict:
    per_core, pin = INDEXING[setup]
    processes, threads = (cores, 1) if per_core else (1, cores)
    url = fresh_database("b_processes")
    results = together(index_share, [(url, threads, paths[i::processes], pin)
                                     for i in range(processes)])
    assert not any(r[4] for r in results), "a photo failed"
    return {"seconds": max(r[1] for r in results) - min(r[0] for r in results),
            "faces": sum(r[2] for r in results), "photos": sum(r[3] for r in results),
            "processes": processes, "threads": threads}


def recognition_run(setup: str, crops: np.ndarray, cores: int) -> dict:
    results = together(embed_runs, [(crops, RECOGNITION[setup])] * cores)
    return {"seconds": max(r[1] for r in results) - min(r[0] for r in results),
            "faces": sum(r[2] for r in results), "processes": cores, "threads": 1}


def interleaved(setups: list[str], measure: Callable[[str], dict], repeat: int
                ) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {name: [] for name in setups}
    for number in range(repeat):
        shift = number % len(setups)
        for name in setups[shift:] + setups[:shift]:
            runs[name].append(measure(name))
            print(f"  {name}: {runs[name][-1]['seconds']:.2f} s", flush=True)
    return runs


def medians(runs: dict[str, list[dict]]) -> dict[str, float]:
    return {name: sorted(r["seconds"] for r in results)[len(results) // 2]
            for name, results in runs.items()}


def spread(results: list[dict], median: float) -> str:
    times = sorted(r["seconds"] for r in results)
    return f"{median:.2f} ({times[0]:.2f}-{times[-1]:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=int, default=400, help="LFW View 1 photos to index")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a few photos, once, nothing written")
    args = parser.parse_args()
    cores = sessions.default_threads()
    if cores < 2:
        raise SystemExit("this benchmark needs at least two cores")
    lfw = sorted(require(DATA / "lfw-view1" / "images").rglob("*.jpg"))
    random.Random(7).shuffle(lfw)
    paths = lfw[: 20 if args.smoke else args.lfw]
    repeat = 1 if args.smoke else args.repeat
    crops = np.stack([cv2.resize(cv2.imread(str(p)), (112, 112), interpolation=cv2.INTER_AREA)
                      for p in lfw[:32]]).transpose(0, 3, 1, 2).astype(np.float32)
    crops = (crops - 127.5) / 127.5
    started = time.strftime("%Y-%m-%d %H:%M")

    recognition = interleaved(list(RECOGNITION),
                              lambda name: recognition_run(name, crops, cores), repeat)
    rec_medians = medians(recognition)
    rec_table = markdown_table(
        ["setup", "processes", "threads each", "faces", f"s, median of {repeat} (range)",
         "faces/s, all processes", "speed vs pgface"],
        [[name, results[0]["processes"], results[0]["threads"], results[0]["faces"],
          spread(results, rec_medians[name]), f"{results[0]['faces'] / rec_medians[name]:.0f}",
          f"{rec_medians[RECOGNITION_PGFACE] / rec_medians[name]:.2f}x"]
         for name, results in recognition.items()])
    print(rec_table)

    indexing = interleaved(list(INDEXING), lambda name: indexing_run(name, paths, cores),
                           repeat)
    index_medians = medians(indexing)
    index_table = markdown_table(
        ["setup", "processes", "threads each", "photos", "faces",
         f"s, median of {repeat} (range)", "photos/s", "speed vs one process"],
        [[name, results[0]["processes"], results[0]["threads"], results[0]["photos"],
          results[0]["faces"], spread(results, index_medians[name]),
          f"{results[0]['photos'] / index_medians[name]:.1f}",
          f"{index_medians[INDEXING_SINGLE] / index_medians[name]:.2f}x"]
         for name, results in indexing.items()])
    print(index_table)
    if args.smoke:
        return
    pinned_rec = rec_medians[RECOGNITION_PINNED] / rec_medians[RECOGNITION_PGFACE]
    pinned_index = index_medians[INDEXING_PINNED] / index_medians[INDEXING_PGFACE]
    text = (
        "## Several pgface processes on one machine\n\n"
        f"Machine: {machine()}; shared with other work while it ran (the ranges show how "
        f"much). Run on {started} with `python bench/processes.py --lfw {args.lfw} --repeat "
        f"{repeat}`.\n\n"
        "OpenVINO pins the thread that calls an inference to the first core of the process's "
        "set while the inference runs, and processes do not share the cores out among "
        f"themselves: {cores} processes of one thread each all ran on the first core. pgface's "
        "sessions now pin only where they have every core of their process (`cpu_pinning` "
        "in src/pgface/models/sessions.py); the rows 'pinned as OpenVINO's default' are what "
        "a pgface process with fewer threads than cores did before. Each process loads its "
        "models before a shared start; the time runs from that start to the last process's "
        "end.\n\n"
        f"**Recognition alone**: {cores} processes, each a one-thread recognizer session "
        f"embedding the same 32 LFW photos (scaled to 112x112) {RUNS_OF_32} times:\n\n"
        f"{rec_table}\n\n"
        f"**Indexing** {len(paths)} LFW View 1 photos into one database of the embedded "
        "server, split among the processes, against one process with a thread per core:\n\n"
        f"{index_table}\n\n"
        f"Pinned, recognition took {pinned_rec:.2f}x its time with pgface's sessions, and "
        f"indexing {pinned_index:.2f}x: while indexing, a process spends much of its time "
        "outside inferences (decoding, aligning, storing), which pinning does not hold to "
        "one core.\n")
    (DOCS / "benchmarks-processes.md").write_text(text)
    print(f"wrote {DOCS / 'benchmarks-processes.md'}")


if __name__ == "__main__":
    main()
