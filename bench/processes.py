"""Several pgface processes on one machine: do they share out its cores, and does indexing
in several processes (PGFACE_INDEX_PROCESSES) pay?

    python bench/processes.py [--lfw 400] [--repeat 5] [--smoke]

OpenVINO pins the calling thread of an inference to the first core of the process's set by
default, and processes do not share the cores out among themselves. pgface's sessions pin
only where they have every core (models/sessions.py, cpu_pinning). Measured:

- recognition alone, with pgface's sessions and with OpenVINO's default pinning: as many
  processes as cores, one thread each, all starting together after loading their models;
  each embeds the same LFW photos (scaled to the recognizer's 112x112), 32 a run; faces/s of
  all processes together;
- indexing LFW photos and the shared photos into a fresh database: one process with a
  thread per core (pgface's default); PGFACE_INDEX_PROCESSES set to the cores (the run
  starts its processes, which load their models, and they take batches from one queue);
  and, for the pinning, a process per core, each given its share of the photos and started
  after loading its models, with pgface's sessions and pinned as OpenVINO's default.

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
from common import DATA, DOCS, fresh_database, machine, markdown_table, photos_under, require

from pgface import Pgface, Settings
from pgface.models import sessions
from pgface.models.packs import resolve_pack

INDEXING = {  # name: (processes started, each given a share, pinned as OpenVINO's default)
    "1 process, a thread per core (pgface's default)": ("one", False),
    "PGFACE_INDEX_PROCESSES = cores: processes started by the run, one queue": ("queue", False),
    "a process per core, 1 thread each, a share of the photos": ("shares", False),
    "a process per core, 1 thread each, a share, pinned as OpenVINO's default": ("shares", True),
}
RECOGNITION = {  # name: pinned as OpenVINO's default
    "a process per core, 1 thread each (pgface)": False,
    "a process per core, 1 thread each, pinned as OpenVINO's default": True,
}
INDEXING_SINGLE, INDEXING_QUEUE, INDEXING_PGFACE, INDEXING_PINNED = INDEXING
RECOGNITION_PGFACE, RECOGNITION_PINNED = RECOGNITION
RUNS_OF_32 = 20  # recognizer runs per process


def pin_as_openvino_does(pin: bool) -> None:
    if pin:  # what pgface's sessions did before cpu_pinning: OpenVINO's default
        sessions.cpu_pinning = lambda threads: True


def index_share(url: str, threads: int, processes: int, paths: list[Path], pin: bool,
                photo_batch: int, start: Any, done: Any) -> None:
    """One indexing process: load, wait for the others, index, report (start, end, faces,
    photos, failures, start-up of the processes the run started)."""
    pin_as_openvino_does(pin)
    with Pgface(Settings(database_url=url, threads=threads, index_processes=processes,
                         photo_batch=photo_batch)) as pf:
        if processes == 1:
            pf.analyzer.warm_up()
        pf.pool  # noqa: B018 - open the pool (migrations) before the clock
        start.wait()
        began = time.perf_counter()
        report = pf.index(paths)
        done.put((began, time.perf_counter(), report.faces, report.indexed,
                  len(report.failures), report.startup))


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
    done.put((began, time.perf_counter(), RUNS_OF_32 * len(crops), 0, 0, 0.0))


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


def indexing_run(setup: str, paths: list[Path], cores: int, photo_batch: int) -> dict:
    how, pin = INDEXING[setup]
    url = fresh_database("b_processes")
    if how == "shares":
        per_process = [(url, 1, 1, paths[i::cores], pin, photo_batch) for i in range(cores)]
    else:
        per_process = [(url, cores, cores if how == "queue" else 1, paths, pin, photo_batch)]
    results = together(index_share, per_process)
    assert not any(r[4] for r in results), "a photo failed"
    return {"seconds": max(r[1] for r in results) - min(r[0] for r in results),
            "faces": sum(r[2] for r in results), "photos": sum(r[3] for r in results),
            "startup": max(r[5] for r in results),
            "processes": 1 if how == "one" else cores, "threads": cores if how == "one" else 1}


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
    shared = photos_under(require(DATA / "photos"))
    lfw, shared = (lfw[:20], shared[:20]) if args.smoke else (lfw[: args.lfw], shared)
    photo_sets = {f"LFW View 1 ({len(lfw)} photos, 250x250)": lfw,
                  f"shared photos ({len(shared)} files, 150x150 to 2000x1428)": shared}
    repeat = 1 if args.smoke else args.repeat
    # A run of no more photos than a batch stays in one process (Pgface.index): the smoke
    # run's batches are made smaller, so that its processes row does start processes.
    photo_batch = 8 if args.smoke else Settings().photo_batch
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

    rows, index_medians, queue_notes = [], {}, []
    for set_name, paths in photo_sets.items():
        indexing = interleaved(list(INDEXING),
                               lambda name, paths=paths: indexing_run(name, paths, cores,
                                                                      photo_batch), repeat)
        index_medians[set_name] = medians(indexing)
        one = index_medians[set_name][INDEXING_SINGLE]
        for name, results in indexing.items():
            seconds = index_medians[set_name][name]
            startup = sorted(r["startup"] for r in results)[len(results) // 2]
            rows.append([set_name, name, results[0]["processes"], results[0]["threads"],
                         results[0]["photos"], results[0]["faces"], spread(results, seconds),
                         f"{startup:.2f}", f"{results[0]['photos'] / seconds:.1f}",
                         f"{one / seconds:.2f}x"])
            if name == INDEXING_QUEUE:
                shares = index_medians[set_name][INDEXING_PGFACE]
                gain = one / shares
                # where one process's time t equals the processes' start + t / gain
                even = startup / (1 - 1 / gain) if gain > 1 else 0.0
                pays = (f"their start is repaid after about {even:.0f} s of one process's "
                        f"indexing ({results[0]['photos'] / one * even:,.0f} such photos)"
                        if gain > 1 else "their start is never repaid")
                queue_notes.append(
                    f"{set_name}: {one / seconds:.2f}x one process's speed with their start "
                    f"({startup:.2f} s, median) in the run, against {gain:.2f}x for "
                    f"processes started before it, so {pays}")
    index_table = markdown_table(
        ["photos", "setup", "processes", "threads each", "photos", "faces",
         f"s, median of {repeat} (range)", "of which the processes' start s", "photos/s",
         "speed vs one process"], rows)
    print(index_table)
    if args.smoke:
        return
    lfw_set = next(iter(photo_sets))
    pinned_rec = rec_medians[RECOGNITION_PINNED] / rec_medians[RECOGNITION_PGFACE]
    pinned_index = (index_medians[lfw_set][INDEXING_PINNED]
                    / index_medians[lfw_set][INDEXING_PGFACE])
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
        "**Indexing** into one fresh database of the embedded server. One process with a "
        "thread per core is pgface's default (its models load before the clock). "
        f"`PGFACE_INDEX_PROCESSES={cores}` (`pgface index --processes {cores}`): the run "
        f"starts {cores} processes of one thread each, which load their models (inside the "
        "clock: the start column) and take batches from one queue "
        "(src/pgface/index_processes.py). 'A share of the photos': a process per core, each "
        f"given one photo in {cores} and started after loading its models, as a run's "
        "processes index once started:\n\n"
        f"{index_table}\n\n"
        f"PGFACE_INDEX_PROCESSES={cores}: " + "; ".join(queue_notes) + ". A process's start "
        "(a fresh interpreter, pgface imported, the models loaded from OpenVINO's cache) is "
        "paid once a run, so it can only pay on a long run; one process stays the default. "
        "What each process adds is an interpreter lock of its own: on a machine with more "
        "cores, where one process's lock is held by more threads, the gain should be larger "
        "(not measured here: run this benchmark there).\n\n"
        f"Pinned, recognition took {pinned_rec:.2f}x its time with pgface's sessions, and "
        f"indexing LFW {pinned_index:.2f}x: while indexing, a process spends much of its time "
        "outside inferences (decoding, aligning, storing), which pinning does not hold to "
        "one core.\n")
    (DOCS / "benchmarks-processes.md").write_text(text)
    print(f"wrote {DOCS / 'benchmarks-processes.md'}")


if __name__ == "__main__":
    main()
