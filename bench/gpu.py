"""The PyTorch backend on a GPU: embeddings against ONNX Runtime on the CPU, LFW View 1 DevTest
accuracy at the calibrated threshold, and photos/s and faces/s per stage and end to end, by
batch size and precision.

    python bench/gpu.py                          # on the first CUDA device
    python bench/gpu.py --device cpu --pairs 4 --batches 8,16 --precisions fp32
                                                 # the same code on the CPU: checks the script
                                                 # (PyTorch emulates fp16 on the CPU: slow)

Needs the `gpu` extra (PyTorch, onnx) and ../shared/data/lfw-view1 (PGFACE_TEST_DATA). The
photos are the DevTest pairs' (1,549; --pairs keeps the first N pairs of each kind). Stages:
decode (JPEG bytes already in memory, a thread per core), detect (letterbox, one model run
per batch of photos, decoding the anchors; `forward` is the model run alone), align (the
faces' matrices at once, the warps a thread per core), embed (one run per batch of faces).
End to end chains them per batch of photos, the next batch decoding while this one is
analysed. Before the clock, each setting runs the whole set once both ways, so that cudnn has
tuned every batch shape.
`--profile FILE` adds where one end-to-end pass spends its time (cProfile). Then the photos
are indexed into PostgreSQL through the library, once for each of --photo-batches (photos a
transaction and a detection run: 32, pgface's default, and 256), with the seconds of each stage,
where one can start here; else the report
says "analysis only". Precisions may name a layout: fp16:nhwc. Prints a markdown report and writes
it to --out (default: the GPU section of docs/benchmarks-indexing.md; --device cpu writes nothing
unless --out is given).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, DOCS, fresh_database, machine, markdown_table, require

from pgface import Pgface, Settings
from pgface.config import CALIBRATED_THRESHOLDS
from pgface.imaging import decode_photo
from pgface.lfw import central_face_index, evaluate, read_pairs
from pgface.library import build_analyzer
from pgface.models.align import estimate_norms, warp_crop
from pgface.models.analysis import FaceAnalyzer
from pgface.models.torch_backend import unusable_reason

LFW = DATA / "lfw-view1"
DET_SIZE = (256, 256)  # LFW photos are 250x250: the analyzer's only size for them
MOONSHOT = 1000.0  # LFW photos analysed per second on one GPU


class TimedSession:
    """A session wrapper that adds up the seconds spent in the model runs alone (`run`, and
    `run_pixels` where the session offers it: the torch backend's uint8 input), and keeps each
    run's batch size and seconds (`runs`)."""

    def __init__(self, session: Any) -> None:
        self.session, self.seconds = session, 0.0
        self.runs: list[tuple[int, float]] = []

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.session, name)
        return self._timed(value) if name == "run_pixels" else value

    def _timed(self, call: Any) -> Any:
        def timed(names: Any, batch: Any, *rest: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(names, batch, *rest)
            finally:
                took = time.perf_counter() - started
                self.seconds += took
                count = len(next(iter(batch.values())) if isinstance(batch, dict) else batch)
                self.runs.append((count, took))
        return timed

    def run(self, names: Any, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._timed(self.session.run)(names, feed)


def photo_set(pairs_per_kind: int | None) -> tuple[list[str], list[Any]]:
    pairs = read_pairs(require(LFW / "pairsDevTest.txt"))
    if pairs_per_kind:
        pairs = ([p for p in pairs if p.same][:pairs_per_kind]
                 + [p for p in pairs if not p.same][:pairs_per_kind])
    return sorted({p.left for p in pairs} | {p.right for p in pairs}), pairs


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class Stages:
    """decode -> detect (batched) -> align -> embed over photos held in memory, timed."""

    def __init__(self, analyzer: FaceAnalyzer, pool: ThreadPoolExecutor) -> None:
        self.analyzer, self.pool = analyzer, pool
        detector, recognizer = analyzer._load()
        detector.session = self.det_session = TimedSession(detector.session)
        recognizer.session = self.rec_session = TimedSession(recognizer.session)
        self.detector, self.crop_size = detector, recognizer.input_size[0]

    def decode(self, blobs: Sequence[bytes]) -> list[np.ndarray]:
        return list(self.pool.map(
            lambda b: decode_photo(b, "lfw", max_bytes=1 << 26, max_pixels=10**8).image, blobs))

    def detect(self, images: Sequence[np.ndarray], batch: int) -> list[list[Any]]:
        found = []
        for part in chunks(images, batch):
            for boxes, points in self.detector.detect_batch(part, DET_SIZE, self.pool):
                found.append(list(zip(boxes, points, strict=True)))
        return found

    def align(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Any]]
              ) -> list[np.ndarray]:
        jobs = [(image, points) for image, found in zip(images, faces, strict=True)
                for _, points in found]
        if not jobs:
            return []
        # every face's matrix at once (to the bit what norm_crop computes alone), then the
        # warps on the pool
        matrices = estimate_norms(np.stack([points for _, points in jobs]), self.crop_size)
        return list(self.pool.map(lambda job, matrix: warp_crop(job[0], matrix, self.crop_size),
                                  jobs, matrices))

    def embed(self, crops: Sequence[np.ndarray], batch: int) -> np.ndarray:
        self.analyzer.batch_size = batch
        return self.analyzer.embed_aligned(crops)


def command_arguments(argv: Sequence[str]) -> str:
    """The arguments that shaped the run (not where its report went)."""
    kept = [a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out")
            and not a.startswith("--out=")]
    return " ".join(kept)


def per_s(count: int, seconds: float) -> str:
    rate = count / seconds
    return f"{rate:.0f}" if rate >= 10 else f"{rate:.1f}"


def measure(stages: Stages, blobs: Sequence[bytes], batch: int) -> tuple[Any, ...]:
    """Each stage over every photo, then all of them chained per batch (end to end)."""
    # A first pass of each kind tunes kernels for every batch shape it will see (cudnn tunes
    # each new shape: seconds), off the clock.
    end_to_end(stages, blobs, batch)
    warm = stages.decode(blobs)
    stages.embed(stages.align(warm, stages.detect(warm, batch)), batch)
    stages.det_session.seconds = stages.rec_session.seconds = 0.0
    seconds: dict[str, float] = {}

    def timed(name: str, work: Any) -> Any:
        started = time.perf_counter()
        out = work()
        seconds[name] = time.perf_counter() - started
        return out

    images = timed("decode", lambda: stages.decode(blobs))
    faces = timed("detect", lambda: stages.detect(images, batch))
    seconds["detect forward"] = stages.det_session.seconds
    crops = timed("align", lambda: stages.align(images, faces))
    vectors = timed("embed", lambda: stages.embed(crops, batch))
    seconds["embed forward"] = stages.rec_session.seconds  # before the end to end adds to it
    timed("total", lambda: end_to_end(stages, blobs, batch))
    return images, faces, crops, vectors, seconds


def end_to_end(stages: Stages, blobs: Sequence[bytes], batch: int) -> None:
    """Every stage per batch of photos, the next batch decoding (on the thread pool) while
    this one is analysed: how an indexer keeps a GPU fed."""
    parts = chunks(blobs, batch)
    with ThreadPoolExecutor(1) as prefetch:
        pending = prefetch.submit(stages.decode, parts[0])
        for following in [*parts[1:], None]:
            decoded = pending.result()
            if following is not None:
                pending = prefetch.submit(stages.decode, following)
            stages.embed(stages.align(decoded, stages.detect(decoded, batch)), batch)


def profile_end_to_end(stages: Stages, blobs: Sequence[bytes], batch: int, out: Path) -> None:
    """Where one end-to-end pass spends the main thread's time: the functions by own time."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(end_to_end, stages, blobs, batch)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
    out.write_text(text.getvalue())


def central_embeddings(photos: Sequence[str], faces: Sequence[Sequence[Any]],
                       vectors: np.ndarray, shapes: Sequence[tuple[int, ...]]
                       ) -> dict[str, np.ndarray | None]:
    """Each photo's central face's embedding (the face LFW means), None where none was found."""
    out: dict[str, np.ndarray | None] = {}
    at = 0
    for photo, found, shape in zip(photos, faces, shapes, strict=True):
        if found:
            pick = central_face_index([box for box, _ in found], shape[1], shape[0])
            out[photo] = vectors[at + pick]
        else:
            out[photo] = None
        at += len(found)
    return out


def accuracy(embeddings: dict[str, np.ndarray | None], pairs: Sequence[Any],
             threshold: float) -> float:
    sims = np.array([-1.0 if embeddings[p.left] is None or embeddings[p.right] is None
                     else float(embeddings[p.left] @ embeddings[p.right]) for p in pairs])
    return evaluate(sims, np.array([p.same for p in pairs]), threshold).accuracy


def reference(photos: Sequence[str], images: Sequence[np.ndarray]
              ) -> tuple[dict[str, np.ndarray | None], list[int]]:
    """ONNX Runtime on the CPU, one photo at a time through the analyzer: the yardstick's
    central-face embeddings and face counts."""
    analyzer = build_analyzer(Settings(providers=["CPUExecutionProvider"]))
    out: dict[str, np.ndarray | None] = {}
    counts = []
    for photo, image in zip(photos, images, strict=True):
        found = analyzer.detect(image)
        counts.append(len(found))
        if not found:
            out[photo] = None
            continue
        pick = central_face_index([f.bbox for f in found], image.shape[1], image.shape[0])
        out[photo] = analyzer.embed_aligned([analyzer.align(image, found[pick])])[0]
    return out, counts


def index_into_postgres(paths: Sequence[Path], backend: str, photo_batch: int,
                        cudnn_search: bool = True) -> tuple[list[Any] | None, list[str]]:
    """pgface's own indexer through this backend, end to end into PostgreSQL, PHOTO_BATCH
    photos a transaction (and a detection run), twice with the same models: first with every
    batch shape new to the models' sessions (cudnn searches an algorithm for each), then again
    into another empty database, each shape met (a long run's pace). The indexer table's row
    and a line for each run; or no row, and why not."""
    lines = []
    runs = []
    analyzer = None
    for run, name in (("first run", "b_gpu"), ("again, the same models", "b_gpu_again")):
        try:
            settings = Settings(database_url=fresh_database(name), providers=[backend],
                                photo_batch=photo_batch)
            with Pgface(settings, analyzer) as pf:
                if analyzer is None:
                    analyzer = pf.analyzer
                    analyzer.warm_up()
                    if not cudnn_search:
                        import torch

                        torch.backends.cudnn.benchmark = False
                detector, recognizer = analyzer._load()
                detector.session = det = TimedSession(detector.session)
                recognizer.session = rec = TimedSession(recognizer.session)
                pf.pool  # noqa: B018 - migrations before the clock
                try:
                    report = pf.index(list(paths))
                finally:
                    detector.session, recognizer.session = det.session, rec.session
                provider = analyzer.provider
                batched = analyzer.detects_in_batches
        except Exception as exc:  # noqa: BLE001 - any reason PostgreSQL cannot run here
            return None, [f"analysis only: PostgreSQL could not run here "
                          f"({type(exc).__name__}: {exc})"]
        runs.append((report, det.seconds, rec.seconds))
        stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in report.timings.items())
        lines.append(
            f"pgface index into PostgreSQL through {provider}, {photo_batch} photos a batch, "
            f"{run}" + ("" if cudnn_search else " (cudnn's algorithm search off)") + ": "
            f"{report.indexed} photos, {report.faces} faces in {report.seconds:.1f} s = "
            f"{per_s(report.indexed, report.seconds)} photos/s, "
            f"{per_s(report.faces, report.seconds)} faces/s (the indexer detects "
            + ("each batch of photos in shared model runs" if batched
               else "one photo per model run")
            + f"; seconds by stage, summed over threads: {stages}; the model runs alone: "
            f"detection {det.seconds:.2f}, recognition {rec.seconds:.2f})")
        print(lines[-1], file=sys.stderr, flush=True)
    (first, det1, rec1), (again, det2, rec2) = runs
    row = [photo_batch, "on" if cudnn_search else "off",
           f"{per_s(first.indexed, first.seconds)} ({per_s(first.faces, first.seconds)})",
           f"{per_s(again.indexed, again.seconds)} ({per_s(again.faces, again.seconds)})",
           f"{det1:.2f} / {det2:.2f}", f"{rec1:.2f} / {rec2:.2f}"]
    return row, lines


def gpu_name(device: str) -> str:
    if device != "cuda":
        return "no GPU (--device cpu)"
    import torch

    props = torch.cuda.get_device_properties(0)
    return (f"{props.name}, {props.total_memory / 2**30:.0f} GiB, PyTorch {torch.__version__} "
            f"(CUDA {torch.version.cuda})")


def analysis(args: argparse.Namespace, base: str, photos: Sequence[str], pairs: Sequence[Any],
             blobs: Sequence[bytes], threads: int, threshold: float) -> tuple[list[Any], list[str]]:
    """The table's rows (each precision and batch size) and the lines under it."""
    batches = [int(b) for b in args.batches.split(",")]
    rows: list[Any] = []
    summary: list[str] = []
    with ThreadPoolExecutor(threads) as pool:
        cpu_images = [decode_photo(b, p, max_bytes=1 << 26, max_pixels=10**8).image
                      for b, p in zip(blobs, photos, strict=True)]
        print(f"{len(photos)} photos: ONNX Runtime on the CPU...", file=sys.stderr, flush=True)
        yardstick, yardstick_counts = reference(photos, cpu_images)
        best: tuple[float, str, str] = (0.0, "", "")
        bound = ""
        fastest: tuple[Stages, int] | None = None
        for precision in args.precisions.split(","):
            stages = Stages(build_analyzer(Settings(providers=[f"{base}:{precision}"])), pool)
            for batch in batches:
                print(f"{precision}, batch {batch}...", file=sys.stderr, flush=True)
                images, faces, crops, vectors, seconds = measure(stages, blobs, batch)
                t_decode, t_detect, t_align, t_embed, t_total, det_forward, rec_forward = (
                    seconds[k] for k in ("decode", "detect", "align", "embed", "total",
                                         "detect forward", "embed forward"))
                n_photos, n_faces = len(photos), len(crops)
                ours = central_embeddings(photos, faces, vectors, [i.shape for i in images])
                both = [p for p in photos if ours[p] is not None and yardstick[p] is not None]
                cosines = [float(ours[p] @ yardstick[p]) for p in both]
                found_differs = sum(len(f) != n for f, n in zip(faces, yardstick_counts,
                                                                strict=True))
                acc = accuracy(ours, pairs, threshold)
                stage_times = {"decode": t_decode, "detect": t_detect, "align": t_align,
                               "embed": t_embed}
                slowest = max(stage_times, key=lambda s: stage_times[s])
                rate = n_photos / t_total
                if rate > best[0]:
                    best = (rate, f"{precision}, batch {batch}", slowest)
                    fastest = (stages, batch)
                    bound = where_the_time_goes(seconds, n_photos, n_faces)
                rows.append([
                    precision, batch, f"{min(cosines):.6f} / {np.mean(cosines):.6f}",
                    found_differs, f"{acc * 100:.2f} %", per_s(n_photos, t_decode),
                    f"{per_s(n_photos, t_detect)} ({per_s(n_photos, det_forward)})",
                    per_s(n_faces, t_align),
                    f"{per_s(n_faces, t_embed)} ({per_s(n_faces, rec_forward)})",
                    per_s(n_photos, t_total), per_s(n_faces, t_total), slowest])
                print(" | ".join(str(v) for v in rows[-1]), file=sys.stderr, flush=True)
        if args.profile and fastest is not None:
            profile_end_to_end(fastest[0], blobs, fastest[1], args.profile)
        reference_acc = accuracy(yardstick, pairs, threshold)
        summary.append(f"ONNX Runtime on the CPU, same photos: DevTest accuracy "
                       f"{reference_acc * 100:.2f} % at cosine >= {threshold}.")
    moonshot = ("met" if best[0] >= MOONSHOT else "missed")
    summary.append(f"Moonshot (>= {MOONSHOT:.0f} LFW photos/s analysed): {moonshot}, "
                   f"{best[0]:.1f} photos/s ({best[1]}); the slowest stage there: {best[2]}.")
    if best[0]:
        summary.append(bound)
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--pairs", type=int, default=0,
                        help="DevTest pairs of each kind (0: all 500 + 500)")
    parser.add_argument("--batches", default="128,512,1024", help="batch sizes to try")
    parser.add_argument("--precisions", default="fp16,fp32",
                        help="precisions to try, each optionally with a layout: fp16:nhwc")
    parser.add_argument("--no-postgres", action="store_true", help="skip the indexing runs")
    parser.add_argument("--index-only", action="store_true",
                        help="only the indexing runs (no table of the analysis stages)")
    parser.add_argument("--no-cudnn-search", action="store_true",
                        help="index with cudnn's algorithm search off (it is on by default: "
                             "each new batch shape is tuned)")
    parser.add_argument("--photo-batches", default="32,256",
                        help="photos a batch (PGFACE_PHOTO_BATCH) for the indexing runs")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None,
                        help="write where the fastest end-to-end pass spends the main thread's "
                             "time (cProfile, by own time) to this file")
    args = parser.parse_args()
    base = "TorchCUDA" if args.device == "cuda" else "TorchCPU"
    reason = unusable_reason(base)
    if reason:
        raise SystemExit(f"{base} cannot run here: {reason}")
    started = time.perf_counter()
    photos, pairs = photo_set(args.pairs or None)
    images_dir = require(LFW / "images")
    blobs = [(images_dir / p).read_bytes() for p in photos]
    threads = len(os.sched_getaffinity(0))
    threshold = CALIBRATED_THRESHOLDS["buffalo_sc"]

    rows: list[Any] = []
    summary: list[str] = []
    if not args.index_only:
        rows, summary = analysis(args, base, photos, pairs, blobs, threads, threshold)
    index_rows: list[list[Any]] = []
    if args.no_postgres:
        summary.append("analysis only: the indexing run was skipped (--no-postgres)")
    else:
        for photo_batch in (int(b) for b in args.photo_batches.split(",")):
            print(f"indexing into PostgreSQL, {photo_batch} photos a batch...", file=sys.stderr,
                  flush=True)
            row, lines = index_into_postgres([images_dir / p for p in photos], base,
                                             photo_batch, not args.no_cudnn_search)
            summary += lines
            if row is not None:
                index_rows.append(row)
    table = markdown_table(
        ["precision", "batch", "cosine vs ONNX Runtime CPU (min / mean)",
         "photos with another face count", f"DevTest accuracy at {threshold}",
         "decode photos/s", "detect photos/s (forward alone)", "align faces/s",
         "embed faces/s (forward alone)", "end to end photos/s", "end to end faces/s",
         "slowest stage"], rows) if rows else "(analysis stages not measured: --index-only)"
    text = (f"## GPU: the PyTorch backend\n\nMachine: {machine().replace(', no GPU', '')}; "
            f"GPU: {gpu_name(args.device)}; Python {platform.python_version()}. Command: "
            f"`{' '.join(['python bench/gpu.py', command_arguments(sys.argv[1:])]).strip()}`"
            + f" ({time.strftime('%Y-%m-%d')}, "
            f"{time.perf_counter() - started:.0f} s). {len(photos)} LFW View 1 DevTest photos "
            f"({len(pairs)} pairs), held in memory as JPEG bytes; {threads} CPU threads for "
            "decoding and aligning.\n\n" + table + "\n\n" + "\n".join(f"- {s}" for s in summary)
            + "\n" + indexer_table(index_rows))
    print(text)
    if args.out:
        args.out.write_text(text)
    elif args.device == "cuda":
        write_section(DOCS / "benchmarks-indexing.md", text)


def indexer_table(rows: list[list[Any]]) -> str:
    """pgface's indexer into PostgreSQL, each photo batch indexed twice with the same models."""
    if not rows:
        return ""
    return ("\npgface's indexer into PostgreSQL, the photos indexed twice with the same models "
            "(the second run after the first met every batch shape):\n\n" + markdown_table(
                ["photos a batch", "cudnn's algorithm search", "first run: photos/s (faces/s)",
                 "again: photos/s (faces/s)", "detection's model runs, s (first / again)",
                 "recognition's model runs, s (first / again)"], rows) + "\n")


def where_the_time_goes(seconds: dict[str, float], photos: int, faces: int) -> str:
    """The bottleneck in words: the model runs alone against the CPU's work, per photo."""
    ms = {name: 1000 * value / photos for name, value in seconds.items()}
    gpu = ms["detect forward"] + ms["embed forward"]
    cpu = {"decoding the JPEG": ms["decode"],
           "letterbox and anchor decoding": ms["detect"] - ms["detect forward"],
           "alignment": ms["align"], "packing the crops": ms["embed"] - ms["embed forward"]}
    parts = ", ".join(f"{name} {value:.2f}" for name, value in cpu.items())
    verdict = ("the CPU's work bounds the end to end, not the GPU: its threads share one "
               "interpreter lock, so the stages' CPU times add up rather than overlap"
               if sum(cpu.values()) > gpu else "the model runs bound the end to end")
    return (f"Where the time goes at that setting ({faces / photos:.2f} faces a photo): the model "
            f"runs alone take {gpu:.3f} ms a photo (on their own {1000 / gpu:.0f} photos/s); "
            f"the CPU's work {sum(cpu.values()):.2f} ms a photo ({parts}); {verdict}.")


def write_section(page: Path, section: str) -> None:
    """Replace the page's GPU section (from its heading to the end) with this one."""
    text = page.read_text() if page.exists() else ""
    start = text.find("\n## GPU")
    page.write_text((text[:start + 1] if start >= 0 else text + "\n") + section)


if __name__ == "__main__":
    main()
