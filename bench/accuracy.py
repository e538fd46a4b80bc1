"""LFW View 1 accuracy: pgface's defaults against the seed's rule, in one table, and the
calibration of the match threshold (chosen on DevTrain, reported on DevTest).

    python bench/accuracy.py [--pack buffalo_sc] [--skip-seed]

Prints the tables (the threshold chosen is in the first row) and, for buffalo_sc, writes
docs/calibration.md. Takes about 15 minutes on 2 cores; --skip-seed about half that.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
from common import DATA, DOCS, fresh_database, machine, markdown_table, require

from pgface import Pgface, Settings
from pgface.errors import PgfaceError
from pgface.index import IndexReport
from pgface.lfw import (
    MISLABELLED_SAME_PAIRS,
    Pair,
    Verification,
    calibrate,
    central_face_index,
    evaluate,
    pair_similarities,
    rank1,
    read_pairs,
    same_pair_photos,
)

LFW = DATA / "lfw-view1"


def seed_faces(det: int, pack: Path, images: Path, photos: list[str]
               ) -> dict[str, dict[str, np.ndarray | None]]:
    """Per face choice (`faces[0]` or `central face`), each photo's raw seed embedding."""
    from seed import SeedPipeline  # needs insightface, which only test.sh installs

    seed = SeedPipeline(pack, det)
    chosen: dict[str, dict[str, np.ndarray | None]] = {"faces[0]": {}, "central face": {}}
    for relative in photos:
        found = seed.faces(images / relative)
        centre = central_face_index([f.bbox for f in found], 250, 250) if found else 0
        chosen["faces[0]"][relative] = found[0].embedding if found else None
        chosen["central face"][relative] = found[centre].embedding if found else None
    return chosen


def l2_distances(embeddings: dict[str, np.ndarray | None], pairs: list[Pair]) -> np.ndarray:
    """Raw L2 distance per pair; a photo without a face is infinitely far."""
    out = []
    for pair in pairs:
        a, b = embeddings[pair.left], embeddings[pair.right]
        out.append(np.inf if a is None or b is None else float(np.linalg.norm(a - b)))
    return np.array(out)


def cosines(embeddings: dict[str, np.ndarray | None], pairs: list[Pair]) -> np.ndarray:
    out = []
    for pair in pairs:
        a, b = embeddings[pair.left], embeddings[pair.right]
        out.append(-1.0 if a is None or b is None
                   else float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
    return np.array(out)


def seed_rows(images: Path, photos: list[str], train: list[Pair], test: list[Pair], pack: Path
              ) -> list[list[object]]:
    """The seed pipeline at det 640 and 256, with faces[0] or the central face, L2 < 22 or a
    calibrated cosine: each step from the seed to pgface's choices, one at a time."""
    from seed import SEED_L2_RULE

    rows = []
    same_train = np.array([p.same for p in train])
    same_test = np.array([p.same for p in test])
    for det in (640, 256):
        by_choice = seed_faces(det, pack, images, photos)
        no_face = sum(1 for e in by_choice["faces[0]"].values() if e is None)
        for choice, embeddings in by_choice.items():
            # L2 < 22 is similarity -L2 > -22.
            rule = evaluate(-l2_distances(embeddings, test), same_test, -SEED_L2_RULE)
            rows.append(row(f"seed, det {det}, {choice}, L2 < 22", rule, no_face))
        central = by_choice["central face"]
        chosen = calibrate(cosines(central, train), same_train)
        tested = evaluate(cosines(central, test), same_test, chosen.threshold)
        rows.append(row(f"seed, det {det}, central face, cosine >= {chosen.threshold}", tested,
                        no_face))
    return rows


def row(name: str, result: Verification, no_face: int, rank1: str = "") -> list[object]:
    return [name, f"{result.accuracy * 100:.1f} %", f"{result.false_accept_rate * 100:.1f} %",
            f"{result.false_reject_rate * 100:.1f} %", no_face, rank1]


def say(line: str) -> None:
    """A stage of the run's minutes, on stderr (stdout is the table)."""
    print(line, file=sys.stderr, flush=True)


class IndexingSaid:
    """Indexing's progress every 15 s: a run of several minutes that says nothing looks hung."""

    def __init__(self) -> None:
        self.started = self.said = time.monotonic()

    def __call__(self, report: IndexReport, failure: object) -> None:
        if time.monotonic() - self.said >= 15:
            self.said = time.monotonic()
            say(f"  {report.indexed + report.skipped:,} photos read, {report.faces:,} faces "
                f"({self.said - self.started:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pack", default="buffalo_sc", help="model pack name or folder")
    parser.add_argument("--skip-seed", action="store_true", help="only pgface's figures")
    args = parser.parse_args()
    images = require(LFW / "images")
    # The seed's rows run insightface's own pipeline; pgface's install (setup.sh) leaves
    # insightface out, and a pack's calibration needs only pgface's row: say so before the
    # minutes of indexing, not after them.
    if not args.skip_seed and importlib.util.find_spec("insightface") is None:
        raise SystemExit("the seed's rows need insightface, which setup.sh does not install "
                         "(test.sh does): give --skip-seed for pgface's row alone, which "
                         "calibrates the pack's threshold")
    train, test = read_pairs(LFW / "pairsDevTrain.txt"), read_pairs(LFW / "pairsDevTest.txt")
    started = time.perf_counter()
    settings = Settings(database_url=fresh_database("b_lfw"), model_pack=args.pack)
    with Pgface(settings) as pf:
        say(f"indexing LFW View 1 ({images}) with {args.pack} ...")
        report = pf.index([images], progress=IndexingSaid())
        say("choosing the threshold on DevTrain, testing it on DevTest ...")
        chosen = calibrate(*pair_similarities(pf, images, train))
        tested = evaluate(*pair_similarities(pf, images, test), chosen.threshold)
        queries = same_pair_photos(test)
        say(f"rank-1: {len(queries)} searches by photo ...")
        literal, labelled = rank1(pf, images, queries)
        pack_name = pf.analyzer.model_name
        provider = pf.analyzer.provider
        no_face = pf.stats()["photos_without_faces"]
    rows = [row(f"pgface default ({pack_name}, {provider}), cosine >= {chosen.threshold}",
                tested, no_face, f"{literal.hits}/{literal.queries} = {literal.rate * 100:.1f} %; "
                f"labelled: {labelled.hits}/{labelled.queries} = {labelled.rate * 100:.1f} %")]
    if not args.skip_seed:
        say("the seed's pipeline (insightface), its rows ...")
        pack_folder = pf.analyzer.pack.folder
        rows += seed_rows(images, sorted({p for pair in train + test
                                          for p in (pair.left, pair.right)}),
                          train, test, pack_folder)
    table = markdown_table(["pipeline", "DevTest accuracy", "false accepts", "false rejects",
                            "photos with no face", "rank-1 (DevTest same-pair photos)"], rows)
    mislabelled = ", ".join(f"`{name}` {a} and {b}" for name, a, b in MISLABELLED_SAME_PAIRS)
    misses = "\n".join(f"- `{query}`: {Path(path).parent.name if path else 'no match'}"
                        f"{f' ({similarity:.3f})' if similarity is not None else ''}"
                        for query, path, similarity in literal.misses)
    skip = " --skip-seed" if args.skip_seed else ""
    text = f"""# Match threshold and accuracy on LFW View 1

Machine: {machine()}. Command: `python bench/accuracy.py --pack {args.pack}{skip}` ({time.strftime(
        '%Y-%m-%d')}, {time.perf_counter() - started:.0f} s).

Protocol: LFW View 1 (4,992 deep-funneled 250x250 photos). The threshold is chosen on
DevTrain (2,200 pairs: 1,100 same, 1,100 different) as the cosine similarity of best accuracy
(the middle of the widest best interval); it is reported on DevTest (1,000 pairs). The face used
for a photo is the one nearest the centre (LFW's crops are centred on the labelled person).

**Threshold for {pack_name}: cosine similarity >= {chosen.threshold}** (DevTrain accuracy
{chosen.accuracy * 100:.2f} %). On DevTest: accuracy {tested.accuracy * 100:.2f} %, false-accept
rate {tested.false_accept_rate * 100:.2f} %, false-reject rate
{tested.false_reject_rate * 100:.2f} %. All {report.indexed} photos indexed, {no_face} without
a face.

Rank-1: every photo of DevTest's 500 same-person pairs is searched against all 4,992 photos;
a hit is when the best match other than the photo itself is the same person.

{table}

Rank-1 is given twice. *Literal*: as LFW labels the photos, where a match in the background of
someone else's photo counts as a miss even when it is the same person (LFW names only the
central face). *Labelled*: only LFW's labelled (central) faces count as matches, and the photos
of the DevTest same-person pairs that show two different people are left out:
{mislabelled}. Look at them: each pair is two different people, so these are errors of the
labels, not of the model; every false reject on DevTest above is one of these pairs.
`Hasan_Wirayuda` and `Hassan_Wirajuda` are one man under two spellings and count as one.

Literal misses (query, the match that came first, its similarity):

{misses}

The seed rows rebuild the plain approach step by step (`bench/seed.py`: `FaceAnalysis.get` with
raw embeddings): its detector size, its choice of `faces[0]`, and its `L2 < 22` rule.
"""
    print(text)
    if args.pack == "buffalo_sc":
        (DOCS / "calibration.md").write_text(text)


if __name__ == "__main__":
    try:
        main()
    except PgfaceError as exc:  # a pack not found, the database: said, not a traceback
        raise SystemExit(f"error: {exc}") from None
    except KeyboardInterrupt:  # nothing is written before the end: docs/ stays as it was
        raise SystemExit("stopped (Ctrl-C): nothing written") from None
