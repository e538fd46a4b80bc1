"""Indexing throughput, end to end (decode, detect, embed, store), CPU only: pgface against the
seed loop on the same photos and the same model files, in the same run.

    python bench/indexing.py [--lfw 1000] [--repeat 3] [--smoke]

Each pipeline runs --repeat times, the three interleaved so that a change in the machine's
state touches all of them alike; the run of median time is reported, with the range.

Prints a table and writes docs/benchmarks-indexing.md.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common import DATA, DOCS, fresh_database, machine, markdown_table, require
from seed import SeedPipeline

from pgface import Pgface, Settings
from pgface.imaging import IMAGE_SUFFIXES
from pgface.models.packs import resolve_pack

STAGES = ("read", "decode", "detect", "crops", "embed", "store")
SEED = "seed loop (FaceAnalysis.get, det 640, INSERT per face)"


def photo_sets(lfw_count: int) -> dict[str, list[Path]]:
    lfw = sorted(require(DATA / "lfw-view1" / "images").rglob("*.jpg"))
    random.Random(7).shuffle(lfw)
    photos = require(DATA / "photos")
    groups = sorted(p for folder in ("groups", "detection-truth", "people")
                    for p in (photos / folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return {f"LFW View 1 ({lfw_count} photos, 250x250)": lfw[:lfw_count],
            f"group, people and detection photos ({len(groups)})": groups}


def run_pgface(paths: list[Path], providers: list[str], database: str) -> dict:
    settings = Settings(database_url=fresh_database(database), providers=providers)
    with Pgface(settings) as pf:
        pf.analyzer.warm_up()  # load and compile the models before the clock
        pf.pool  # noqa: B018 - and open the pool (migrations) before the clock
        report = pf.index(paths)
        provider = pf.analyzer.provider
    assert not report.failures, report.failures
    return {"seconds": report.seconds, "photos": report.indexed, "faces": report.faces,
            "timings": report.timings, "provider": provider}


def run_seed(paths: list[Path], database: str) -> dict:
    pack = resolve_pack("buffalo_sc", Settings().resolved_models_dir())
    seed = SeedPipeline(pack.folder)
    seed.faces(paths[0])
    seconds, faces = seed.index(paths, fresh_database(database))
    return {"seconds": seconds, "photos": len(paths), "faces": faces, "timings": {},
            "provider": "CPUExecutionProvider"}


def plot(rows: list[list[object]], path: Path) -> None:
    """Faces per second of each pipeline, one group of bars per photo set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(str(r[0]) for r in rows))
    pipelines = list(dict.fromkeys(str(r[1]) for r in rows))
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(pipelines)
    for i, pipeline in enumerate(pipelines):
        values = [next(float(r[7]) for r in rows if r[0] == s and r[1] == pipeline) for s in sets]
        ax.bar([x + i * width for x in range(len(sets))], values, width, label=pipeline)
    ax.set_xticks([x + width * (len(pipelines) - 1) / 2 for x in range(len(sets))], sets)
    ax.set_ylabel("faces indexed per second (end to end)")
    ax.set_title(f"Indexing throughput on {machine().split(',')[1].strip()}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=int, default=1000, help="LFW photos to index")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each pipeline")
    parser.add_argument("--smoke", action="store_true", help="a few seconds' run (CI)")
    args = parser.parse_args()
    repeat = 1 if args.smoke else max(1, args.repeat)
    sets = photo_sets(40 if args.smoke else args.lfw)
    if args.smoke:
        sets = {name: paths[:20] for name, paths in sets.items()}
    rows, stage_rows = [], []
    for set_name, paths in sets.items():
        pipelines = {
            SEED: lambda paths=paths: run_seed(paths, "b_seed"),
            "pgface, ONNX Runtime CPU":
                lambda paths=paths: run_pgface(paths, ["CPUExecutionProvider"], "b_ort"),
            "pgface default": lambda paths=paths: run_pgface(paths, Settings().providers,
                                                              "b_default"),
        }
        all_runs: dict[str, list[dict]] = {name: [] for name in pipelines}
        for _ in range(repeat):
            for name, run in pipelines.items():
                all_runs[name].append(run())
        runs = {name: sorted(r, key=lambda x: x["seconds"])[len(r) // 2]
                for name, r in all_runs.items()}
        base = runs[SEED]
        for name, r in runs.items():
            faces_per_s = r["faces"] / r["seconds"]
            times = [x["seconds"] for x in all_runs[name]]
            spread = f" ({min(times):.1f}-{max(times):.1f})" if len(times) > 1 else ""
            rows.append([set_name, name, r["provider"], r["photos"], r["faces"],
                         f"{r['seconds']:.1f}{spread}", f"{r['photos'] / r['seconds']:.1f}",
                         f"{faces_per_s:.1f}",
                         f"{faces_per_s / (base['faces'] / base['seconds']):.2f}x"])
            if r["timings"]:
                stage_rows.append([set_name, name] + [f"{r['timings'].get(s, 0.0):.1f}"
                                                      for s in STAGES] + [f"{r['seconds']:.1f}"])
    table = markdown_table(["photos", "pipeline", "provider", "photos", "faces",
                            f"s, median of {repeat} (range)" if repeat > 1 else "s",
                            "photos/s", "faces/s", "faces/s vs seed"], rows)
    stages = markdown_table(["photos", "pipeline", *[f"{s} s" for s in STAGES], "wall s"],
                            stage_rows)
    text = (f"## Indexing throughput\n\nMachine: {machine()}. Run on "
            f"{time.strftime('%Y-%m-%d')} with "
            f"`python bench/indexing.py --lfw {args.lfw} --repeat {repeat}`"
            f"{' --smoke' if args.smoke else ''}. End to end: read, decode, detect, embed and "
            "store, into the embedded PostgreSQL; models loaded before the clock starts. Ratios "
            "are against the seed loop measured in the same run on the same photos. faces/s "
            "counts the faces each pipeline stored: on the group set the seed stores fewer, as "
            "its detector, at 640 px only, finds no face in the forty 150x150 face crops of "
            "`people/bbt-*` (README, Detection); photos/s compares the same work.\n\n"
            f"{table}\n\nWhere pgface's time goes, in the median run (seconds summed over "
            "threads; one worker per core reads, decodes, detects and aligns while the main "
            "thread embeds and stores, so stages add up to more than the wall time):"
            f"\n\n{stages}\n")
    if not args.smoke:
        plot(rows, DOCS / "benchmarks-indexing.png")
        text += "\n![faces per second, by pipeline](benchmarks-indexing.png)\n"
        (DOCS / "benchmarks-indexing.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
