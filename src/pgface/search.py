"""Search by photo and 1:1 compare. Faces come from the analyzer, matches from the store."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal, overload

import numpy as np
from psycopg_pool import ConnectionPool

from pgface import vector_index, verdicts
from pgface.db import store
from pgface.errors import (
    ANALYSIS_MEMORY,
    ImageError,
    InvalidInputError,
    ModelPackError,
    NoFaceError,
    NotFoundError,
    OpenFilesError,
    describe,
    machine_short,
    shown_name,
)
from pgface.imaging import Photo, warning_given_faces
from pgface.models.analysis import Face, FaceAnalyzer
from pgface.models.quality import FaceQuality, below, below_floor_said
from pgface.paths import NamedFile, with_name_bytes
from pgface.placement import analyze_placed


@dataclass(frozen=True)
class Match(NamedFile):
    face_id: int
    photo_id: int
    path: str
    bbox: list[float]
    person_id: int | None
    person_name: str | None
    similarity: float
    # True when no stored path of the photo exists any more (path is then the last known one).
    missing: bool = False
    # "same": the same person even in a library of this size; "possible": above the 1:1
    # threshold but where strangers of this library may score too (pgface.verdicts).
    verdict: verdicts.Verdict = "possible"


@dataclass
class QueryFace:
    """One face of the query photo and what the database holds of that person."""

    bbox: list[float]
    det_score: float
    matches: list[Match] = field(default_factory=list)
    # score and its parts (pgface.models.quality); None for a stored face never measured
    quality: dict[str, float | None] | None = None
    # False when its quality is below the floor: reported, not searched
    searched: bool = True


@dataclass
class SearchResult:
    source: str
    model: str
    threshold: float
    faces: list[QueryFace]
    # Faces of the model searched, and the similarity from which a match is the same person
    # there (never below the 1:1 threshold; pgface.verdicts).
    library_size: int = 0
    same_person_similarity: float = 0.0
    # Why results may be empty or less sure (a pack that has not analysed the library, a
    # threshold not calibrated for the pack), each with the command that fixes it.
    notices: list[str] = field(default_factory=list)
    # The quality floor: faces of the photo scoring below it were not searched.
    min_quality: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Comparison:
    similarity: float
    threshold: float
    same_person: bool
    face_a: list[float]  # bbox of the face of the first photo in the deciding pair
    face_b: list[float]  # bbox of the face of the second photo in the deciding pair
    faces_in_b: int
    faces_in_a: int = 0
    # the quality scores of the pair's faces (models/quality.py); faces below the floor are
    # not compared
    quality_a: float | None = None
    quality_b: float | None = None
    min_quality: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def analyze_photos(analyzer: FaceAnalyzer, photos: Sequence[Photo]) -> list[list[Face]]:
    """Every face of each photo, embedded. A photo the models cannot analyse is an ImageError
    naming it, never a bare OpenCV or numpy error (so each photo is analysed on its own)."""
    per_photo: list[list[Face]] = []
    for photo in photos:
        try:
            # as indexing analyses it: a large JPEG decoded reduced gives the same embeddings
            per_photo.append(analyze_placed(analyzer, photo))
            photo.warning = warning_given_faces(photo.warning, len(per_photo[-1]))
        except (ModelPackError, OpenFilesError):
            raise  # the models' (a file that cannot be loaded), not the photo's
        except Exception as exc:  # whatever the pixels did to OpenCV, it is this photo's
            # unless memory or open files ran short: the machine's
            machines = machine_short(exc, f"analysing {photo.source}", ANALYSIS_MEMORY)
            if machines:
                raise machines from exc
            raise ImageError(photo.source, f"cannot analyse image ({describe(exc)})") from exc
    return per_photo


def _bbox(face: Face) -> list[float]:
    return [round(float(v), 1) for v in face.bbox]


def _score(face: Face) -> float | None:
    return face.quality.score if face.quality is not None else None


def search_faces(pool: ConnectionPool, model: str, faces: list[Face], top: int,
                 threshold: float, ef_search: int, source: str, one_to_one: float,
                 min_quality: float = 0.0, recognizer_sha256: str | None = None
                 ) -> SearchResult:
    """Each face's matches at or above threshold, each with its verdict for this library's
    size; one_to_one is the 1:1 threshold, the least a same-person similarity can be. Faces
    whose quality is below min_quality are reported, unsearched. recognizer_sha256: the
    recognizer that made the faces' vectors, checked against the library's for the pack."""
    # echoed: -0.0 was said as -0.0; NumPy's float32 went into results json.dumps refuses
    threshold = check_similarity("threshold", threshold)
    min_quality = check_min_quality(min_quality)
    results = []
    # At scale the in-process index finds the nearest faces (HNSW loses face matches there);
    # below vector_index.MIN_FACES PostgreSQL alone answers.
    index = vector_index.shared_index(pool, model) if faces else None
    found: list[list[store.MatchRow]] = []
    with pool.connection() as conn:
        if recognizer_sha256 is not None:
            store.check_recognizer(conn, model, recognizer_sha256)
        synced = False
        for face in faces:
            if below(_score(face), min_quality):
                found.append([])
            elif index is not None:
                # one sync per query photo, before its first face searched (the first face
                # may be left unsearched): every face of it sees the same faces
                found.append(index.search(conn, face.embedding, top, threshold,
                                          sync=not synced))
                synced = True
            else:
                found.append(store.nearest_faces(conn, face.embedding, model, top, threshold,
                                                 ef_search))
        # the synced index holds every face of the model; below its size a count is cheap
        size = len(index) if index is not None and len(index) else store.count_faces(conn,
                                                                                     model)
        # A match points at a file that exists, or says that none of its photo's paths does.
        places = store.photo_places(conn, {r.photo_id: r.path for rows in found for r in rows})
    same = verdicts.same_person_similarity(size, model, one_to_one)
    for face, rows in zip(faces, found, strict=True):
        matches = []
        for r in rows:
            place = places[r.photo_id]
            matches.append(with_name_bytes(Match(
                r.face_id, r.photo_id, place.path, [round(v, 1) for v in r.bbox], r.person_id,
                r.person_name, verdicts.shown(r.similarity), place.missing,
                verdicts.verdict(r.similarity, same)), place.raw))  # by the exact cosine
        results.append(QueryFace(
            bbox=_bbox(face), det_score=round(face.det_score, 4), matches=matches,
            quality=face.quality.to_dict() if face.quality is not None else None,
            searched=not below(_score(face), min_quality)))
    return SearchResult(source=source, model=model, threshold=threshold, faces=results,
                        library_size=size, same_person_similarity=same,
                        min_quality=min_quality)


# Matches per face a search gives at most: the Python API's, the CLI's and the HTTP API's bound.
MAX_TOP = 1000


def photo_notices(source: str, warning: str | None) -> list[str]:
    """The query photo's warning (a blank image: why no face was found), as a notice: a
    search said nothing of it where `pgface index` warns."""
    return [f"{shown_name(source)}: {warning}"] if warning else []


def check_similarity(name: str, value: float) -> float:
    """A similarity argument: a cosine, -1 to 1 (`compare(threshold=5)` said "not the same
    person" of anyone instead of naming the mistake)."""
    # a number: "0.3" was a TypeError from the comparison ('<=' between float and str)
    if not is_number(value) or not -1.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} is a cosine similarity, -1 to 1, not {value!r}")
    return float(value) + 0.0  # -0.0 is 0, as check_min_quality's (it was echoed as -0.0)


@overload
def check_flag(name: str, value: object, none_too: Literal[False] = False) -> bool: ...
@overload
def check_flag(name: str, value: object, none_too: Literal[True]) -> bool | None: ...
def check_flag(name: str, value: object, none_too: bool = False) -> bool | None:
    """A yes-or-no argument: True or False (NumPy's too; with `none_too`, None as well), else
    InvalidInputError naming it. Any value was taken for its truth: hide(person, "no") hid,
    "maybe" reached PostgreSQL as a StatementFailed, None did nothing (probe pyapi30)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if value is None and none_too:
        return None
    raise InvalidInputError(f"{name} is True{', False or None' if none_too else ' or False'}, "
                            f"not {value!r:.40}")


def is_number(value: object) -> bool:
    """An int, a float or NumPy's, not a bool (True is no similarity or floor)."""
    return isinstance(value, int | float | np.floating | np.integer) \
        and not isinstance(value, bool)


def is_whole_number(value: object) -> bool:
    """An int or NumPy's integer, not a bool (True is an int to Python, not an id or a count).
    Asked of operator.index itself: a NumPy array of one or more numbers has __index__, which
    raises (top=np.array([3]) escaped as NumPy's TypeError, probe searchface)."""
    if isinstance(value, bool | np.bool_):
        return False
    try:
        operator.index(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def check_search_bounds(top: int, threshold: float, min_quality: float) -> int:
    """The Python API's search arguments, refused by name where no answer could be right:
    top=2000 came back as pgvector's "outside the valid range for parameter hnsw.ef_search",
    top=-5 as "LIMIT must not be negative"."""
    if isinstance(top, float) and top.is_integer():
        # 10.0 is ten matches, as the CLI's --top 10.0 and HTTP's ?top=10.0 take it
        top = int(top)
    if not is_whole_number(top) or not 1 <= top <= MAX_TOP:
        raise InvalidInputError(f"top is 1 to {MAX_TOP} matches per face, not {top!r}")
    check_similarity("threshold", threshold)
    check_min_quality(min_quality)
    return operator.index(top)


def check_min_quality(value: float) -> float:
    """A quality floor: a number from 0 to 1 (NaN is none: every comparison with it is false).
    "0.5" was a raw TypeError and True a floor of 1, as check_similarity refuses them."""
    if not is_number(value) or not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"min_quality is 0 to 1, not {value!r}")
    return float(value) + 0.0  # -0.0 is 0


def search_photo(analyzer: FaceAnalyzer, pool: ConnectionPool, photo: Photo, top: int,
                 threshold: float, ef_search: int, one_to_one: float,
                 min_quality: float = 0.0) -> SearchResult:
    """Every face in the photo, each with its matches ranked by cosine similarity."""
    top = check_search_bounds(top, threshold, min_quality)
    # A new process opens the index (PostgreSQL and the snapshot file) while models load.
    vector_index.open_in_background(pool, analyzer.model_name)
    faces = analyze_photos(analyzer, [photo])[0]
    return search_faces(pool, analyzer.model_name, faces, top, threshold, ef_search,
                        shown_name(photo.source), one_to_one, min_quality,
                        analyzer.recognizer_sha256)


@dataclass(frozen=True)
class StoredQuery:
    """A stored face searched as a query: its matches, and its photo's size (the box's frame)."""

    result: SearchResult
    photo_width: int
    photo_height: int


def search_stored_face(pool: ConnectionPool, face_id: int, top: int, threshold: float | None,
                       ef_search: int, min_quality: float,
                       pack_threshold: Callable[[str], float]) -> StoredQuery:
    """The stored faces most like stored face FACE_ID, the face itself left out, in the shape
    of a photo search of one face. Searched among its own pack's faces, with that pack's
    threshold (pack_threshold) unless one is given. No photo is read or analysed: "where else
    is this person" from a face already found takes a query of the database alone."""
    if not is_whole_number(face_id):
        raise InvalidInputError(f"a face id is a whole number, not {face_id!r}")
    top = check_search_bounds(top, 0.0 if threshold is None else threshold, min_quality)
    face_id = operator.index(face_id)
    row = None
    if 0 < face_id < 2**63:  # ids are bigint: a larger number names no face ("out of range")
        with pool.connection() as conn:
            row = store.face_as_query(conn, face_id)
    if row is None:
        raise NotFoundError(f"face {face_id} not found", "face")
    query = Face(bbox=np.asarray(row["bbox"], dtype=np.float32),
                 landmarks=np.asarray(row["landmarks"], dtype=np.float32).reshape(-1, 2),
                 det_score=float(row["det_score"]), embedding=row["embedding"],
                 quality=stored_quality(row))
    # The face's own pack's threshold: it is searched among that pack's faces (another pack's
    # face, shown where the pack in use has not analysed its photo, was answered with the
    # pack in use's threshold).
    own = pack_threshold(row["model"])
    chosen = own if threshold is None else float(threshold)
    # One more than asked: the face itself is its own best match, and is left out.
    found = search_faces(pool, row["model"], [query], top + 1, chosen, ef_search,
                         f"face {face_id}", own, min_quality)
    found.faces[0].quality = store.quality_json(row)  # a migrated face has some parts
    face = found.faces[0]
    face.matches = [m for m in face.matches if m.face_id != face_id][:top]
    return StoredQuery(found, row["width"], row["height"])


def stored_quality(row: dict) -> FaceQuality | None:
    """A stored face's quality; None when it has no score (stored before it was measured)."""
    if row.get("quality") is None:
        return None
    return FaceQuality(*(float(row[c]) for c in ("quality", "face_size", "yaw", "pitch",
                                                  "sharpness")))


def compare_photos(analyzer: FaceAnalyzer, a: Photo, b: Photo, threshold: float,
                   min_quality: float = 0.0) -> Comparison:
    """Whether the main face of either photo is someone in the other: the main face of each
    (its largest, weighed by its quality) against every face of the other; the best pair
    decides, so the order of the photos does not matter. Faces below the quality floor are
    not compared, as a search does not search them.

    The largest face of `a` alone, against every face of `b`, turned on the order given: a
    stranger's face cut by the frame's edge, larger than the subject's, was taken, and the
    same pair was 0.56 one way and -0.06 the other (probe verdicts19); and a face too small
    or blurred for a search to use was called the same person as a stranger's."""
    threshold = check_similarity("threshold", threshold)
    min_quality = check_min_quality(min_quality)
    faces_a, faces_b = analyze_photos(analyzer, [a, b])
    usable_a = _comparable(faces_a, a, min_quality)
    usable_b = _comparable(faces_b, b, min_quality)
    main_a, main_b = _main_face(usable_a), _main_face(usable_b)
    pairs = [(main_a, face) for face in usable_b] + [(face, main_b) for face in usable_a]
    sims = np.array([_cosine(fa.embedding, fb.embedding) for fa, fb in pairs])
    best = int(np.argmax(sims))
    face_a, face_b = pairs[best]
    return Comparison(
        similarity=verdicts.shown(float(sims[best])),
        threshold=threshold,
        # the exact cosine, as search keeps a match by it: on the rounded one, a pair at
        # 0.22996 was "same person" here and no match of a search at 0.23
        same_person=bool(sims[best] >= threshold),
        face_a=_bbox(face_a),
        face_b=_bbox(face_b),
        faces_in_b=len(faces_b),
        faces_in_a=len(faces_a),
        quality_a=_rounded_score(face_a),
        quality_b=_rounded_score(face_b),
        min_quality=min_quality,
    )


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The cosine of two embeddings as pgvector's `<=>` gives a search's: over their norms, in
    double precision. The float32 dot product of two unit vectors gave a face against itself
    0.99999994, shown 0.9999 and "different people" at a threshold of 1, where a search found
    the same face at 1.0 (probe numbers38)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(a64 @ b64 / np.sqrt((a64 @ a64) * (b64 @ b64)))


def _comparable(faces: list[Face], photo: Photo, min_quality: float,
                doing: tuple[str, str] = ("compare", "compares")) -> list[Face]:
    """The faces of PHOTO at or above the quality floor; NoFaceError where it has none, or
    none good enough (said with the best one's score and the floor). doing: what they are
    for, as "compare" and "compares"."""
    source = shown_name(photo.source)
    if not faces:
        # with the photo's warning, as a search gives it: a compare of an animated GIF whose
        # first frame, the only one read, is blank said "no face found" alone (probe hostile42)
        why = f"; {photo.warning}" if photo.warning else ""
        raise NoFaceError(f"{source}: no face found{why}", photo.source)
    kept = [f for f in faces if not below(_score(f), min_quality)]
    if not kept:
        # said as a search says it ("quality 0.1095 is below the floor 0.1096": at 2 decimals
        # the best was "0.11, below the floor 0.1096", probe hostile20)
        best = max(faces, key=lambda f: _score(f) or 0.0)
        raise NoFaceError(
            f"{source}: no face good enough to {doing[0]} ({len(faces)} found, the best's "
            f"{below_floor_said(_score(best), min_quality)}: too small, blurred or cut off); a "
            f"lower min_quality {doing[1]} it all the same", photo.source)
    return kept


def first_searched_face(analyzer: FaceAnalyzer, photo: Photo, min_quality: float) -> Face:
    """The face of PHOTO a search searches first: its largest at or above the quality floor
    (search_faces leaves those below it unsearched). NoFaceError where it has no face, or
    none good enough to search, said as compare_photos says it. For a query of one face
    (Django's similar_to): the largest face alone took a face too small or blurred for a
    search to use, and found strangers."""
    min_quality = check_min_quality(min_quality)
    faces = analyze_photos(analyzer, [photo])[0]
    return _comparable(faces, photo, min_quality, ("search", "searches"))[0]


def _main_face(faces: list[Face]) -> Face:
    """A photo's main face: its largest, weighed by its quality (a stranger cut by the frame's
    edge can be larger than the subject; a face never measured counts whole)."""
    return max(faces, key=lambda f: f.area * (1.0 if (score := _score(f)) is None else score))


def _rounded_score(face: Face) -> float | None:
    score = _score(face)
    return None if score is None else round(score, 4)
