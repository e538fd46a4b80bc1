"""LFW View 1 protocol: pair files, the face LFW means, threshold calibration and accuracy.

Choose the threshold on DevTrain, report on DevTest (View 2 is the final test and is not used).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pgface.models.analysis import Face

if TYPE_CHECKING:
    from pgface.db.store import StoredFace
    from pgface.library import Pgface
    from pgface.search import Match


@dataclass(frozen=True)
class Pair:
    left: str  # path relative to the images folder
    right: str
    same: bool


def image_path(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(pair_file: Path) -> list[Pair]:
    """pairsDevTrain.txt / pairsDevTest.txt: `Name n1 n2` or `Name1 n1 Name2 n2`, no header."""
    pairs = []
    for line in pair_file.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            pairs.append(Pair(image_path(parts[0], int(parts[1])),
                              image_path(parts[0], int(parts[2])), True))
        elif len(parts) == 4:
            pairs.append(Pair(image_path(parts[0], int(parts[1])),
                              image_path(parts[2], int(parts[3])), False))
    return pairs


def central_face_index(bboxes: Sequence[Sequence[float]], width: int, height: int) -> int:
    """Which face LFW means: its crops are centred on the labelled person."""
    cx, cy = width / 2, height / 2
    offsets = [((b[0] + b[2]) / 2 - cx) ** 2 + ((b[1] + b[3]) / 2 - cy) ** 2 for b in bboxes]
    return int(np.argmin(offsets))


def central_face(faces: Sequence[Face], width: int, height: int) -> Face | None:
    if not faces:
        return None
    return faces[central_face_index([f.bbox for f in faces], width, height)]


@dataclass(frozen=True)
class Verification:
    threshold: float
    accuracy: float
    false_accept_rate: float
    false_reject_rate: float


def evaluate(similarities: np.ndarray, same: np.ndarray, threshold: float) -> Verification:
    """Decide `same person` when similarity >= threshold and score that against the labels."""
    decided = similarities >= threshold
    same = same.astype(bool)
    far = float(np.mean(decided[~same])) if (~same).any() else 0.0
    frr = float(np.mean(~decided[same])) if same.any() else 0.0
    return Verification(threshold, float(np.mean(decided == same)), far, frr)


def calibrate(similarities: np.ndarray, same: np.ndarray) -> Verification:
    """The threshold of best accuracy; ties go to the middle of the best interval."""
    values = np.sort(np.unique(similarities))
    candidates = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2,
                                 [values[-1] + 1e-6]])
    scores = np.array([evaluate(similarities, same, t).accuracy for t in candidates])
    best = np.flatnonzero(scores == scores.max())
    # Contiguous best thresholds: take the centre of the widest run for a robust margin.
    runs = np.split(best, np.flatnonzero(np.diff(best) != 1) + 1)
    widest = max(runs, key=len)
    threshold = float(candidates[widest[len(widest) // 2]])
    return evaluate(similarities, same, round(threshold, 2))  # two decimals: a number to quote


def pair_similarities(
    library: Pgface, images: Path, pairs: Sequence[Pair]
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of the stored central faces of each pair, and the same/different labels.

    Every photo must be indexed already; a photo without a stored face raises ValueError.
    """
    paths = sorted({str((images / p.left).resolve()) for p in pairs}
                   | {str((images / p.right).resolve()) for p in pairs})
    stored = library.photo_faces(paths)
    missing = [p for p in paths if not stored.get(p)]
    if missing:
        raise ValueError(f"{len(missing)} photos have no stored face, e.g. {missing[:3]}")

    def embedding(relative: str) -> np.ndarray:
        faces = stored[str((images / relative).resolve())]
        chosen = central_face_index([f.bbox for f in faces], faces[0].photo_width,
                                    faces[0].photo_height)
        return faces[chosen].embedding

    similarities = np.array([float(embedding(p.left) @ embedding(p.right)) for p in pairs])
    return similarities, np.array([p.same for p in pairs])


# LFW labels only the central face of each photo, and View 1 has label errors: DevTest
# "same person" pairs whose two photos show two different people (anyone can check by eye; see
# docs/calibration.md), and one man filed under two spellings of his name.
MISLABELLED_SAME_PAIRS = (
    ("Cristina_Fernandez", 1, 2),
    ("Denise_Johnson", 1, 2),
    ("Elisabeth_Schumacher", 1, 2),
    ("Janica_Kostelic", 1, 2),
    ("Surakait_Sathirathai", 1, 2),
)
NAME_ALIASES = {"Hasan_Wirayuda": "Hassan_Wirajuda"}


@dataclass
class Rank1:
    """Search rank-1 over LFW: hits, and each miss with the match that came first instead."""

    queries: int
    hits: int
    misses: list[tuple[str, str | None, float | None]]

    @property
    def rate(self) -> float:
        return self.hits / self.queries if self.queries else 0.0


def _person(path: str | Path) -> str:
    name = Path(path).parent.name
    return NAME_ALIASES.get(name, name)


def rank1(library: Pgface, images: Path, queries: Sequence[str], by_photo: bool = True
          ) -> tuple[Rank1, Rank1]:
    """Search with each photo's central face: is the best match other than the photo itself
    the same person (the folder name)? One search a query, scored two ways:

    - literal: every query, as LFW labels them, so a person seen in the background of someone
      else's photo who comes first is a miss;
    - labelled: the queries without LFW's label errors (`without_label_errors`), counting only
      matches that are the central face of their photo, whose identity LFW gives.

    by_photo: each query photo is read and analysed again and searched (`Pgface.search`), as a
    user's search is; False searches the query's stored central face (`Pgface.search_face`):
    the same database search without the detection and recognition that are most of a photo
    search's time, for the test suite (whose other tests search by photo)."""
    labelled_queries = set(without_label_errors(queries))
    literal, labelled = Rank1(len(queries), 0, []), Rank1(len(labelled_queries), 0, [])
    paths = {relative: (images / relative).resolve() for relative in queries}
    stored = {} if by_photo else library.photo_faces(list(paths.values()))
    for relative, path in paths.items():
        matches = _central_face_matches(library, path, stored.get(str(path)), by_photo)
        others = [m for m in matches if m.path != str(path)]
        first = others[0] if others else None
        first_labelled = None
        if relative in labelled_queries and others:
            faces = library.photo_faces([m.path for m in others])
            central = [m for m in others if _is_central(faces[m.path], m.face_id)]
            first_labelled = central[0] if central else None
        _score(literal, relative, path, first)
        if relative in labelled_queries:
            _score(labelled, relative, path, first_labelled)
    return literal, labelled


def _central_face_matches(library: Pgface, path: Path, stored: list[StoredFace] | None,
                          by_photo: bool) -> list[Match]:
    """The top 10 matches of the central face of the photo at PATH: of its faces found again
    (by_photo), or of its stored faces (STORED; none: no match)."""
    if by_photo:
        result = library.search(path, top=10)
        if not result.faces:
            return []
        photo = library.load_photo(path)
        return result.faces[central_face_index([f.bbox for f in result.faces], photo.width,
                                               photo.height)].matches
    if not stored:
        return []
    chosen = central_face_index([f.bbox for f in stored], stored[0].photo_width,
                                stored[0].photo_height)
    return library.search_face(stored[chosen].face_id, top=10).faces[0].matches


def _score(tally: Rank1, relative: str, path: Path, best: Match | None) -> None:
    if best is not None and _person(best.path) == _person(path):
        tally.hits += 1
    else:
        tally.misses.append((relative, best.path if best else None,
                             best.similarity if best else None))


def _is_central(faces: Sequence[StoredFace], face_id: int) -> bool:
    chosen = central_face_index([f.bbox for f in faces], faces[0].photo_width,
                                faces[0].photo_height)
    return faces[chosen].face_id == face_id


def without_label_errors(photos: Sequence[str]) -> list[str]:
    wrong = {image_path(name, n) for name, *numbers in MISLABELLED_SAME_PAIRS for n in numbers}
    return [p for p in photos if p not in wrong]


def same_pair_photos(pairs: Sequence[Pair]) -> list[str]:
    """Every photo of the same-person pairs, once each."""
    return sorted({photo for p in pairs if p.same for photo in (p.left, p.right)})
