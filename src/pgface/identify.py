"""Identify: who each face of a photo most likely is, with a confidence; search results
grouped by person. Thresholds and the figures that chose them are in docs/people.md."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgface import engine, verdicts
from pgface.db import people_store as ps
from pgface.db import store
from pgface.models.analysis import Face
from pgface.models.quality import below
from pgface.search import Match

# Confidence of identify: logistic in similarity, 0.5 at the match threshold; slope fitted by
# maximum likelihood on LFW View 1 DevTrain pairs (free fit: centre 0.23, slope 36).
CONFIDENCE_SLOPE = 36.0
IDENTIFY_CANDIDATES = 50  # nearest assigned faces looked at per query face
# At scale, counting the faces that belong to a person took 1.5-2.6 s at 1M faces (18.8 s
# cold), on every identify: the count is kept until the faces table's statistics change,
# recounted at most every ASSIGNED_RECOUNT_S while they do and at least every
# ASSIGNED_MAX_AGE_S. The count only sets the bar of the same-person verdict, which moves with
# the logarithm of the library's size, so a count seconds late moves it by nothing visible.
ASSIGNED_RECOUNT_S = 5.0
ASSIGNED_MAX_AGE_S = 300.0
_assigned_counts: weakref.WeakKeyDictionary[ConnectionPool, store.KeptCounts] = (
    weakref.WeakKeyDictionary())


@dataclass
class Candidate:
    person_id: int
    name: str | None
    similarity: float  # to the person's nearest stored face
    confidence: float


@dataclass
class IdentifiedFace:
    """One face of a photo: the person it most likely is, or nobody (person_id None)."""

    bbox: list[float]
    det_score: float
    person_id: int | None
    name: str | None
    similarity: float | None
    confidence: float | None
    candidates: list[Candidate] = field(default_factory=list)
    # "same" where the best similarity clears the same-person similarity of the named faces'
    # library (pgface.verdicts), "possible" below it, None with nobody
    verdict: verdicts.Verdict | None = None
    # score and its parts (pgface.models.quality), as a search's query face has them
    quality: dict[str, float | None] | None = None
    # False when its quality is below the floor: reported, not identified (search's rule)
    searched: bool = True


@dataclass
class Identification:
    source: str
    model: str
    threshold: float
    faces: list[IdentifiedFace]
    # Faces that belong to a person (identify's library) and the same-person similarity there.
    library_size: int = 0
    same_person_similarity: float = 0.0
    # The quality floor: faces of the photo scoring below it were not identified.
    min_quality: float = 0.0
    # The photo's warning (a blank image: why no face was found; said in the notices of the
    # CLI's and the HTTP API's answers, as a search's are)
    warning: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PersonMatches:
    """The matches of one query face that belong to one person (person_id None: to nobody)."""

    person_id: int | None
    name: str | None
    best_similarity: float
    matches: list[Match]


def confidence(similarity: float, threshold: float) -> float:
    """Probability-like score: 0.5 at the match threshold, steep where pairs are ambiguous."""
    return round(1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (similarity - threshold))), 4)



def group_by_person(matches: Sequence[Match]) -> list[PersonMatches]:
    """Matches grouped by person, groups in order of their best match; unassigned ones last."""
    groups: dict[int | None, PersonMatches] = {}
    for m in matches:
        group = groups.get(m.person_id)
        if group is None:
            group = groups[m.person_id] = PersonMatches(m.person_id, m.person_name,
                                                        m.similarity, [])
        group.matches.append(m)
        group.best_similarity = max(group.best_similarity, m.similarity)
    return sorted(groups.values(),
                  key=lambda g: (g.person_id is None, -g.best_similarity))


def _candidates(rows: Sequence[dict], one_to_one: float, skip: int | None = None
                ) -> list[Candidate]:
    """One candidate per person, by their nearest face (rows come best first). The confidence
    is centred on the pack's calibrated 1:1 threshold, as it was fitted, whatever threshold
    the search used: centred on that, a lower one made a likely stranger (0.207) 96 % sure
    and a higher one an obvious match (0.565) 63 %."""
    found: dict[int, Candidate] = {}
    for r in rows:
        if r["person_id"] not in found and r["id"] != skip:
            sim = float(r["similarity"])
            found[r["person_id"]] = Candidate(r["person_id"], r["name"], round(sim, 4),
                                              confidence(sim, one_to_one))
    return list(found.values())


def assigned_faces(pool: ConnectionPool, conn: psycopg.Connection, model: str) -> int:
    """Faces of the model that belong to a person (the library identify looks through),
    kept per pool until PostgreSQL's statistics say the faces changed (ASSIGNED_RECOUNT_S)."""
    kept = _assigned_counts.setdefault(pool, store.KeptCounts())
    return kept.get(model, lambda: nullcontext(conn), ps.faces_stamp,
                    lambda c: ps.count_assigned(c, model), ASSIGNED_RECOUNT_S, ASSIGNED_MAX_AGE_S)


def identify_faces(pool: ConnectionPool, model: str, faces: Sequence[Face], source: str,
                   limit: float, one_to_one: float, ef_search: int, min_quality: float = 0.0,
                   recognizer_sha256: str | None = None) -> Identification:
    """Each face's likeliest person among the faces that belong to one (engine.py: the search
    index at scale, pgvector below it), at or above `limit`. Faces whose quality is below
    min_quality are reported, not identified, as a search reports them unsearched (identify
    named a 120 px photo's faces that search left unsearched, and said nothing of it)."""
    searched = [not below(_score(face), min_quality) for face in faces]
    asked = [face for face, ask in zip(faces, searched, strict=True) if ask]
    index = engine.index_at_scale(pool, model) if asked else None
    with pool.connection() as conn:
        if recognizer_sha256 is not None:  # the faces' recognizer still the pack's (search's)
            store.check_recognizer(conn, model, recognizer_sha256)
        size = (assigned_faces(pool, conn, model) if index is not None
                else ps.count_assigned(conn, model))  # below scale a count is cheap
        same = verdicts.same_person_similarity(size, model, one_to_one)
        queries = np.array([f.embedding for f in asked], dtype=np.float32)
        found = iter(engine.nearest_assigned(conn, index, queries, model, IDENTIFY_CANDIDATES,
                                             limit, ef_search) if asked else [])
    answers = []
    for face, ask in zip(faces, searched, strict=True):
        rows = next(found) if ask else []
        ranked = _candidates(rows, one_to_one)
        best = ranked[0] if ranked else None
        answers.append(IdentifiedFace(
            bbox=[round(float(v), 1) for v in face.bbox],
            det_score=round(face.det_score, 4),
            person_id=best.person_id if best else None,
            name=best.name if best else None,
            similarity=best.similarity if best else None,
            confidence=best.confidence if best else None,
            candidates=ranked[:5],
            # by the exact cosine, as the threshold kept it (rows come best first)
            verdict=verdicts.verdict(float(rows[0]["similarity"]), same) if best else None,
            quality=face.quality.to_dict() if face.quality is not None else None,
            searched=ask,
        ))
    return Identification(source, model, limit, answers, size, same, min_quality)


def _score(face: Face) -> float | None:
    return face.quality.score if face.quality is not None else None


def suggest_people(pool: ConnectionPool, face_ids: Sequence[int], limit: float | None,
                   one_to_one: Callable[[str], float], ef_search: int, top: int = 5
                   ) -> dict[int, list[Candidate]]:
    """For stored faces (those of a cluster to review, say): the people they most likely are,
    best first, from the other faces of those people, at or above `limit` (None: the pack's
    threshold); confidence as identify's (one_to_one: a pack's calibrated threshold). Each
    face among its own pack's faces: a face of a photo the pack in use has not analysed is
    another pack's (shown on a person's page), whose vector no other pack's compares with."""
    with pool.connection() as conn:
        packs = ps.face_packs(conn, list(face_ids))
        conn.commit()
    suggested: dict[int, list[Candidate]] = {}
    for model, ids_of_pack in packs.items():
        index = engine.index_at_scale(pool, model)
        threshold = one_to_one(model)
        with pool.connection() as conn:
            ids, vectors = ps.embeddings(conn, model, ids_of_pack)
            conn.commit()
            found = engine.nearest_assigned(conn, index, vectors, model,
                                            IDENTIFY_CANDIDATES + 1,
                                            threshold if limit is None else limit, ef_search)
        suggested.update((int(face_id), _candidates(rows, threshold, skip=int(face_id))[:top])
                         for face_id, rows in zip(ids.tolist(), found, strict=True))
    return {face_id: suggested[face_id] for face_id in sorted(suggested)}

