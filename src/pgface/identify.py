"""Identify: who each face of a photo most likely is, with a confidence; search results
grouped by person. One person is at most one face of a photo (one_face_per_person).
Thresholds and the figures that chose them are in docs/people.md."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgface import engine, vector_index, verdicts
from pgface.db import people_store as ps
from pgface.db import store
from pgface.models.analysis import Face
from pgface.models.quality import below
from pgface.search import Match, photo_notices

# Confidence of identify: logistic in similarity, 0.5 at the match threshold; slope fitted by
# maximum likelihood on LFW View 1 DevTrain pairs (free fit: centre 0.23, slope 36).
CONFIDENCE_SLOPE = 36.0
IDENTIFY_CANDIDATES = 50  # nearest assigned faces looked at per query face
CANDIDATES_SHOWN = 5  # people an identified face lists as its candidates
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
class TakenCandidate:
    """A person this face is like whom another face of the photo, more like them, is: one
    person is at most one face of a photo (one_face_per_person)."""

    person_id: int
    name: str | None
    similarity: float  # this face's, to the person's nearest stored face
    face: int  # the face of the photo that is the person: its place in the photo's faces
    face_similarity: float  # that face's


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
    # The people ranked above its answer (all of them, for an unknown face) that other faces
    # of the photo are, each more like them: why this face is not that person.
    taken: list[TakenCandidate] = field(default_factory=list)


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

    def notices(self) -> list[str]:
        """What makes its answer less than it seems: the photo's warning (a blank image), and
        a library where no face belongs to a person, where every face is unknown (said of a
        visitor whose own faces `search` found, nothing more said: probe verdicts39)."""
        said = photo_notices(self.source, self.warning)
        if self.library_size == 0 and any(f.searched for f in self.faces):
            said.append("no face of this library belongs to a person yet, so every face is "
                        "unknown: enrol people (pgface people enrol FOLDER), name faces "
                        "(pgface people name NAME FACE_ID) or group them (pgface people "
                        "cluster)")
        return said


@dataclass
class PersonMatches:
    """The matches of one query face that belong to one person (person_id None: to nobody)."""

    person_id: int | None
    name: str | None
    best_similarity: float
    matches: list[Match]
    # Another face of the photo is this person, more like them (one_face_per_person): its
    # place in the photo's faces, and its best similarity to them; None where none is.
    taken_by: int | None = None
    taken_by_similarity: float | None = None


def confidence(similarity: float, threshold: float) -> float:
    """Probability-like score: 0.5 at the match threshold, steep where pairs are ambiguous."""
    return round(1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (similarity - threshold))), 4)



def one_face_per_person(claims: Sequence[Sequence[tuple[int, float]]]
                        ) -> list[int | None]:
    """The person each face of one photo is, one to one: claims[i] are face i's (person,
    similarity), best first; the answer, per face, the place in its claims of the person it
    is, or None (nobody left for it).

    Best first over every (face, person) pair by similarity: the strongest claim on a person
    wins, and a face whose person is taken falls to its next claim on a person still free.
    The claims of a face that come before its answer are so all held by other faces, each
    more like the person. Not an assignment of the greatest total similarity: that one gives
    a face a weaker person when two weaker claims of other faces outweigh its strong one
    (face 1: A 0.62, B 0.60; face 2: A 0.61 makes face 1 B), which no one reading the
    similarities would call right, and no single similarity explains.
    Ties: by face, then by rank in its claims, so one photo always gets one answer."""
    pairs = sorted(((-similarity, face, rank, person)
                    for face, face_claims in enumerate(claims)
                    for rank, (person, similarity) in enumerate(face_claims)))
    answer: list[int | None] = [None] * len(claims)
    taken: set[int] = set()
    for _, face, rank, person in pairs:
        if answer[face] is None and person not in taken:
            answer[face] = rank
            taken.add(person)
    return answer


def _holders(claims: Sequence[Sequence[tuple[int, float]]], answer: Sequence[int | None]
             ) -> dict[int, tuple[int, float]]:
    """person -> (the face that is them, its similarity to them)."""
    return {claims[face][rank][0]: (face, claims[face][rank][1])
            for face, rank in enumerate(answer) if rank is not None}


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


def group_photo_by_person(faces_matches: Sequence[Sequence[Match]]
                          ) -> list[list[PersonMatches]]:
    """Each face's matches of one photo grouped by person (group_by_person), a person that
    another face of the photo is (one_face_per_person) marked taken_by it and put after the
    people the face may be, before the unassigned matches: a face's first group is who it
    most likely is, and two faces of one photo never have one person first (a stranger
    beside Howard had Howard first, as Howard had: probe verdicts56)."""
    grouped = [group_by_person(matches) for matches in faces_matches]
    claims = [[(g.person_id, g.best_similarity) for g in groups if g.person_id is not None]
              for groups in grouped]
    holders = _holders(claims, one_face_per_person(claims))
    for face, groups in enumerate(grouped):
        for g in groups:
            holder = holders.get(g.person_id) if g.person_id is not None else None
            if holder is not None and holder[0] != face:
                g.taken_by, g.taken_by_similarity = holder
        groups.sort(key=lambda g: (g.person_id is None, g.taken_by is not None,
                                   -g.best_similarity))
    return grouped


def _nearest_of_enough_people(conn: psycopg.Connection, index: vector_index.SignIndex | None,
                              queries: np.ndarray, model: str, k: int, limit: float,
                              ef_search: int, people: int = CANDIDATES_SHOWN
                              ) -> list[list[dict]]:
    """engine.nearest_assigned's k nearest assigned faces of each query, and where those
    (all at or above LIMIT) belong to fewer than PEOPLE people, the nearest of the others,
    until PEOPLE or none are left: a person enrolled from 60 video frames held all 50 nearest
    faces, so identify listed one candidate, and a face whose person another face of the photo
    took had no next one to fall to ("unknown" where a second person was a sure match; probe
    verdicts39). Each look leaves out the people found; what it finds is further than them,
    so the rows stay best first."""
    found = engine.nearest_assigned(conn, index, queries, model, k, limit, ef_search)
    for i, rows in enumerate(found):
        last = rows
        while len(last) >= k and len(found_people := {r["person_id"] for r in rows}) < people:
            last = engine.nearest_assigned(conn, index, queries[i:i + 1], model, k, limit,
                                           ef_search, exclude=sorted(found_people))[0]
            rows = [*rows, *last]
        found[i] = rows
    return found


def _nearest_of_people(rows: Sequence[dict], skip: int | None = None) -> list[dict]:
    """Each person's nearest face among rows (which come best first), best first."""
    found: dict[int, dict] = {}
    for r in rows:
        if r["person_id"] not in found and r["id"] != skip:
            found[r["person_id"]] = r
    return list(found.values())


def _candidate(row: dict, one_to_one: float) -> Candidate:
    """A person by their nearest face. The confidence is centred on the pack's calibrated 1:1
    threshold, as it was fitted, whatever threshold the search used: centred on that, a lower
    one made a likely stranger (0.207) 96 % sure and a higher one an obvious match (0.565)
    63 %."""
    sim = float(row["similarity"])
    return Candidate(row["person_id"], row["name"], verdicts.shown(sim),
                     confidence(sim, one_to_one))


def _candidates(rows: Sequence[dict], one_to_one: float, skip: int | None = None
                ) -> list[Candidate]:
    """One candidate per person, by their nearest face, best first."""
    return [_candidate(r, one_to_one) for r in _nearest_of_people(rows, skip)]


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
        found = iter(_nearest_of_enough_people(conn, index, queries, model,
                                               IDENTIFY_CANDIDATES, limit, ef_search)
                     if asked else [])
    # each person's nearest face, per face of the photo (none for a face left unsearched)
    nearest = [_nearest_of_people(next(found)) if ask else [] for ask in searched]
    # by the exact cosine, as the threshold kept them
    claims = [[(r["person_id"], float(r["similarity"])) for r in rows] for rows in nearest]
    chosen = one_face_per_person(claims)
    holders = _holders(claims, chosen)
    answers = []
    for face, ask, rows, rank in zip(faces, searched, nearest, chosen, strict=True):
        best = rows[rank] if rank is not None else None
        answer = _candidate(best, one_to_one) if best is not None else None
        passed_over = rows if rank is None else rows[:rank]  # each held by another face
        answers.append(IdentifiedFace(
            bbox=[round(float(v), 1) for v in face.bbox],
            det_score=round(face.det_score, 4),
            person_id=answer.person_id if answer else None,
            name=answer.name if answer else None,
            similarity=answer.similarity if answer else None,
            confidence=answer.confidence if answer else None,
            candidates=[_candidate(r, one_to_one) for r in rows[:CANDIDATES_SHOWN]],
            verdict=(verdicts.verdict(float(best["similarity"]), same)
                     if best is not None else None),
            quality=face.quality.to_dict() if face.quality is not None else None,
            searched=ask,
            taken=[_taken(r, holders[r["person_id"]]) for r in passed_over],
        ))
    return Identification(source, model, limit, answers, size, same, min_quality)


def _taken(row: dict, holder: tuple[int, float]) -> TakenCandidate:
    face, similarity = holder
    return TakenCandidate(row["person_id"], row["name"], verdicts.shown(float(row["similarity"])),
                          face, verdicts.shown(similarity))


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
            found = _nearest_of_enough_people(conn, index, vectors, model,
                                              IDENTIFY_CANDIDATES + 1,
                                              threshold if limit is None else limit,
                                              ef_search, max(top, CANDIDATES_SHOWN))
        suggested.update((int(face_id), _candidates(rows, threshold, skip=int(face_id))[:top])
                         for face_id, rows in zip(ids.tolist(), found, strict=True))
    return {face_id: suggested[face_id] for face_id in sorted(suggested)}

