"""Clustering: give the faces no person holds a person, never against a human's decision.

Thresholds and the figures that chose them are in docs/people.md.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import count

import numpy as np
import psycopg

from pgface.db import people_store as ps
from pgface.db import store
from pgface.neighbours import (  # noqa: F401 - NEIGHBOURS_K re-exported
    NEIGHBOURS_K,
    NeighbourSource,
    VectorCache,
)
from pgface.vector_index import SignIndex

# Clustering: cosine similarity at which two faces count as neighbours, per model pack, and how
# many neighbours (in other photos) make a face core. Chosen on LFW View 1; docs/people.md.
CLUSTER_SIMILARITY: dict[str, float] = {"buffalo_sc": 0.40}
CLUSTER_MARGIN = 0.17  # packs not measured: as much stricter than their match threshold
MIN_NEIGHBOURS = 1
# One HNSW query costs about as much as fetching 200 vectors in bulk (docs/people.md): bulk
# when the new faces are at least this many and a 1/BULK_SHARE of the library.
BULK_FROM = 64
BULK_SHARE = 100



@dataclass
class ClusterReport:
    considered: int = 0  # unassigned faces looked at
    joined: int = 0  # faces that joined an existing person
    founded: int = 0  # new (unnamed) people
    # faces in the people clustering formed: new ones, and those of found_again
    in_new_people: int = 0
    # people a full re-cluster formed again, keeping their earlier ids (not new people), or
    # taking the ids of the people another pack's clustering gave their twins
    found_again: int = 0
    unassigned: int = 0  # faces left without a person (too few close neighbours)
    below_quality: int = 0  # unassigned faces left out: quality below the floor
    released: int = 0  # faces a full re-cluster took from the person clustering gave them
    # faces given another person than they had (joined, founded, or moved by a full run):
    # none and none released, the run changed no one's faces and is not recorded
    changed: int = 0
    # where neighbours came from: "index" (the search index, at scale), "bulk" (numpy) or
    # "sql" (pgvector), see pgface.neighbours
    mode: str = "sql"
    refused: int = 0  # joins refused because the face is not like the person as a whole
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)



def found_again_text(report: ClusterReport) -> str:
    """The summary's words for the people a full re-cluster formed again, if any."""
    return f" and {report.found_again} found again" if report.found_again else ""


def run_clustering(conn: psycopg.Connection, model: str, similarity: float,
                   min_neighbours: int, full: bool = False, ef_search: int = 200,
                   bulk: bool | None = None, index: SignIndex | None = None,
                   mean_similarity: float | None = None, min_quality: float = 0.0,
                   join: bool = True) -> ClusterReport:
    """Cluster in the caller's transaction (People.cluster commits it; a caller may roll back).

    Looked at: the faces clustering never saw, and the unassigned faces among their neighbours,
    the only old faces whose standing a new face can change (similarity is symmetric). `full`
    looks at every face no human decided on; a person it finds again keeps its id.
    index: the search index of the model, synced, when the library is at scale.
    mean_similarity: the least average similarity of a face to a person's faces for it to
    join them (None: no such check).
    join: False asks the index face by face even where one join of all faces would answer
    (what happens without numba; the benchmark compares the two).
    """
    started = time.perf_counter()
    report = ClusterReport()
    ps.lock_clustering(conn)
    stored = ps.cluster_faces(conn, model)
    # Full: forget, in memory, what clustering decided; rows are only written where it changes.
    before = {f.face_id: f.person_id for f in stored if full and f.person_id and not f.kept}
    faces = [replace(f, person_id=None) if f.face_id in before else f for f in stored]
    carried, hints = _people_of_twins(conn, model, faces, full)
    faces = [replace(f, person_id=carried[f.face_id]) if f.face_id in carried else f
             for f in faces]
    # Faces below the quality floor that no person holds are neither clustered nor neighbours.
    low = store.faces_below_quality(conn, model, min_quality) - {
        f.face_id for f in faces if f.person_id is not None}
    fresh = [f.face_id for f in faces
             if (f.fresh or full) and f.person_id is None and f.face_id not in low]
    unassigned = {f.face_id for f in faces if f.person_id is None} - low
    photo_of = {f.face_id: f.photo_id for f in faces}
    source = NeighbourSource.choose(conn, model, photo_of, fresh, similarity, ef_search, bulk,
                                    index, BULK_FROM, BULK_SHARE, join)
    source.skip = low
    source.prefetch(fresh)
    woken = {g for f in fresh for g, _ in source.neighbours(f) if g in unassigned}
    todo = sorted(set(fresh) | woken)
    # every unassigned face a person can grow into from these, in batches, before planning
    frontier = todo
    while frontier:
        source.prefetch(frontier)
        frontier = sorted({g for f in frontier for g, _ in source.neighbours(f)
                           if g in unassigned} - set(source.known()))
    if mean_similarity is not None:  # the faces of the people these faces may join
        person_of = {f.face_id: f.person_id for f in faces if f.person_id}
        touched = {person_of[g] for near in source.known().values() for g, _ in near
                   if g in person_of}
        source.vectors.need([f for f, p in person_of.items() if p in touched])
        source.vectors.need(source.known())
    apart = _kept_apart(conn, stored, before)
    plan = plan_clusters(faces, todo, source.neighbours, min_neighbours, unassigned,
                         source.vectors if mean_similarity is not None else None,
                         mean_similarity, apart, before)
    people = _person_ids(conn, plan, before, hints,
                         {f.person_id for f in faces if f.person_id is not None})
    # A face a human took out of a person, clustered with that person's freed faces, formed
    # them again under their id (apart holds off only the people that stand): left out.
    for face, key in list(plan.assignments.items()):
        if people.get(key, key) in apart.get(face, ()):
            del plan.assignments[face]
    after = {face: people.get(key, key) for face, key in plan.assignments.items()} | carried
    report.released = ps.release_clustered(conn, [f for f in before if f not in after])
    changed = {f: p for f, p in after.items() if before.get(f) != p}
    ps.assign_clustered(conn, changed)
    report.released += sum(1 for f in changed if f in before)
    ps.mark_clustered(conn, sorted(set(fresh) - set(after)))
    if report.released or changed:  # else the run is not recorded (People.cluster): nor this
        ps.delete_empty_unnamed(conn)
    joined = [key for key in plan.assignments.values() if key > 0]
    ps.touch_people(conn, sorted(set(changed.values())))
    report.considered = len(todo) + len(carried)  # "0 faces ...: 5 joined" (reprobe22)
    report.changed = len(changed)
    report.joined = len(joined) + len(carried)
    earlier = set(before.values()) | set(hints.values())  # a twin's person: not new either
    report.founded = len(set(people.values()) - earlier)
    report.found_again = len(set(people.values()) & earlier)
    report.in_new_people = len(plan.assignments) - len(joined)
    report.unassigned = len(unassigned) - len(plan.assignments)
    report.mode = source.mode
    report.refused = plan.refused
    report.below_quality = len(low)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _kept_apart(conn: psycopg.Connection, stored: Sequence[ps.ClusterFace],
                before: dict[int, int]) -> dict[int, set[int]]:
    """The people each face a full run freed may not join: those holding, by a human's
    decision, a face a human split off the person the freed face was in (not undone since),
    which says that face is not the same person as the rest, or a face the indexer gave that
    face's person since (analysed again, edited: probe reprobe49). Freed, the rest joined it
    as the only person left near them, and the human's split was undone (probe naming45).
    And a face a human took out of a person (a split, or `remove`: "not this person"), free
    in this run (nobody's, or freed), may not go back into that person: taken away as nobody's,
    it was the nearest person's again at the next run (probe web56)."""
    taken_from = ps.moved_by_hand(conn)
    if not taken_from:
        return {}
    holders: defaultdict[int, set[int]] = defaultdict(set)
    for f in stored:
        if f.kept and f.person_id is not None:
            for former in taken_from.get(f.face_id, ()):
                if former != f.person_id:
                    holders[former].add(f.person_id)
    apart = {face: set(holders[person]) for face, person in before.items()
             if person in holders}
    for f in stored:
        if f.face_id in taken_from and (f.person_id is None or f.face_id in before):
            apart.setdefault(f.face_id, set()).update(taken_from[f.face_id])
    return apart


def _people_of_twins(conn: psycopg.Connection, model: str, faces: list[ps.ClusterFace],
                     full: bool) -> tuple[dict[int, int], dict[int, int]]:
    """Faces this run may place (never looked at, or every free one in a full run) whose twins
    hold a person: another pack's face of the same photo at the same place, as indexing hands
    people over to a new pack's faces. Clustered under each pack, one face was two people, and a
    name given under one pack was nowhere under the other (probe packs21).

    Returns (carried, hints), face id -> person. Carried: the face takes the person before
    anything is clustered. An incremental run carries every twin's person, as indexing does: a
    new face has nothing better. A full run carries only a human's decision (a twin a user
    assigned, or in a named person): it looks again at every face no human decided on, and a
    person clustering made under another pack, carried, could never be clustered away there
    (a careless --similarity under one pack stayed through both packs' --full: probe
    reprobe23). Hints: in a full run, the twins' people clustering made, which a person the
    run forms takes the id of when it overlaps no earlier person of this pack (_person_ids),
    so that both packs' clusterings of the same faces stay one person."""
    if not ps.other_packs_hold_people(conn, model):
        return {}, {}
    free = {f.face_id for f in faces if f.person_id is None and (f.fresh or full)}
    photos = sorted({f.photo_id for f in faces if f.face_id in free})
    kept = ps.people_from_other_packs(conn, photos, model, ps.PACK_FACE_OVERLAP, free)
    if not full:
        return {k.face_id: k.person_id for k in kept}, {}
    human = {h[0] for h in ps.held_faces(conn, [k.former_face_id for k in kept])}
    return ({k.face_id: k.person_id for k in kept if k.former_face_id in human},
            {k.face_id: k.person_id for k in kept if k.former_face_id not in human})


def _person_ids(conn: psycopg.Connection, plan: ClusterPlan, before: dict[int, int],
                hints: dict[int, int] | None = None, taken: Collection[int] = ()
                ) -> dict[int, int]:
    """Ids for the people the plan founded: the earlier person they most overlap, else the
    person their faces' twins most hold (hints) unless a face of this pack holds them already
    (taken: the plan's existing people, never merged), else new."""
    ids: dict[int, int] = {}
    reused: set[int] = set()
    for earlier, passed in ((before, set()), (hints or {}, set(taken))):
        overlap = Counter((key, earlier[face]) for face, key in plan.assignments.items()
                          if key < 0 and face in earlier)
        for (key, old), _ in overlap.most_common():
            if key not in ids and old not in reused and old not in passed:
                ids[key] = old
                reused.add(old)
    new_keys = [key for key in range(-1, -plan.new_people - 1, -1) if key not in ids]
    ids.update(zip(new_keys, ps.create_unnamed_people(conn, len(new_keys)), strict=True))
    return ids


# Clustering, apart from the database: faces, their neighbours, and who each face is.

# face id -> (face id, similarity) of its neighbours in other photos, best first
Neighbours = Callable[[int], list[tuple[int, float]]]


@dataclass
class ClusterPlan:
    assignments: dict[int, int]  # face id -> person id, or -n for the n-th new person
    new_people: int
    refused: int = 0  # joins the average-similarity check refused


def plan_clusters(faces: Sequence[ps.ClusterFace], todo: Sequence[int], neighbours: Neighbours,
                  min_neighbours: int, unassigned: set[int] | None = None,
                  vectors: VectorCache | None = None,
                  mean_similarity: float | None = None,
                  apart: Mapping[int, Collection[int]] | None = None,
                  formerly: Mapping[int, int] | None = None) -> ClusterPlan:
    """Immich-style density clustering with cannot-link.

    A face is core when at least `min_neighbours` faces of other photos lie within the
    similarity limit. Densest of `todo` first: a core face joins the person of its nearest
    neighbour that has one, or founds a person; that person then grows through its core faces
    into `unassigned` ones (as DBSCAN does). Faces of `todo` that are not core join their
    nearest neighbour's person at the end, if it has one. Two faces of one photo never share a
    person, and existing people are never merged. `apart`: face id -> existing people it may
    not join (a human split a face off the person it was in, into them, or took the face out
    of them: _kept_apart). Such a face is not core by those people's faces, and is looked at
    after the faces no human kept apart: it would found a person as soon as its join was
    refused, and grow it into the new faces of the very person it was taken from (probe
    reprobe58), where alone it stays nobody's.

    Against chaining: with `vectors` (the faces' unit vectors) and `mean_similarity`, a face
    joins a person only when its similarity to the person's faces, on average, is at least
    `mean_similarity` (average linkage, checked against the person as it stands), so one
    close pair cannot pull a face, and through it a second group, into a person it does not
    resemble as a whole.

    `formerly`: face id -> the person a full run freed it from. A full run plans the freed
    faces of a person under a new key, which becomes that person's id only after the plan;
    a face kept apart from the person is kept apart from a new key holding their freed faces
    too, and their freed faces do not make it core: it joined such a key, grew it into a new
    face alike to it alone, and when the key became the person again, was dropped from it
    while the new face stayed in the person (probe reprobe59).
    """
    photo_of = {f.face_id: f.photo_id for f in faces}
    person_of: dict[int, int] = {f.face_id: f.person_id for f in faces if f.person_id}
    photos_of: defaultdict[int, set[int]] = defaultdict(set)
    for face_id, person in person_of.items():
        photos_of[person].add(photo_of[face_id])
    pending = set(todo) if unassigned is None else set(unassigned) | set(todo)
    plan = ClusterPlan({}, 0)
    new_keys = count(-1, -1)
    members: defaultdict[int, list[int]] = defaultdict(list)
    for face_id, person in person_of.items():
        members[person].append(face_id)
    sums: dict[int, np.ndarray] = {}  # person -> sum of their faces' vectors, when needed
    # person (or new key) -> the people its faces were freed from (formerly)
    freed_from: defaultdict[int, set[int]] = defaultdict(set)

    def refused_by(face_id: int) -> Collection[int]:
        """The people FACE_ID may not join: apart's."""
        return apart.get(face_id, ()) if apart else ()

    def kept_from(refused: Collection[int], other: int) -> bool:
        """Whether face OTHER is, or was before this run, of a person in REFUSED."""
        return person_of.get(other) in refused or (
            formerly is not None and formerly.get(other) in refused)


    def admits(face_id: int, person: int) -> bool:
        if photo_of[face_id] in photos_of[person]:
            return False  # cannot-link: one photo, two people
        refused = refused_by(face_id)
        if refused and (person in refused or not freed_from[person].isdisjoint(refused)):
            return False  # cannot-link: a human took a face out of this person (or split it)
        if vectors is None or mean_similarity is None:
            return True
        if person not in sums:
            sums[person] = vectors.get(np.array(members[person], dtype=np.int64)).sum(axis=0)
        if float(vectors.row(face_id) @ sums[person]) / len(members[person]) >= mean_similarity:
            return True
        plan.refused += 1
        return False

    def put(face_id: int, person: int) -> None:
        person_of[face_id] = person
        photos_of[person].add(photo_of[face_id])
        members[person].append(face_id)
        if formerly is not None and face_id in formerly:
            freed_from[person].add(formerly[face_id])
        if person in sums and vectors is not None:
            sums[person] = sums[person] + vectors.row(face_id)
        plan.assignments[face_id] = person
        pending.discard(face_id)

    def core_neighbours(face_id: int) -> int:
        """The neighbours that count for FACE_ID being core: not those of people it may not
        join (taken out of a person, its likeness to their faces makes it no one's core)."""
        refused = refused_by(face_id)
        if not refused:
            return len(neighbours(face_id))
        return sum(1 for other, _ in neighbours(face_id) if not kept_from(refused, other))

    def join_nearest(face_id: int) -> int | None:
        for other, _ in neighbours(face_id):
            person = person_of.get(other)
            if person and admits(face_id, person):
                put(face_id, person)
                return person
        return None

    def grow(seed: int, person: int) -> None:
        queue = deque([seed])
        while queue:
            core = queue.popleft()
            if core_neighbours(core) < min_neighbours:
                continue  # a border face belongs but does not spread the person
            for other, _ in neighbours(core):
                if other in pending and admits(other, person):
                    put(other, person)
                    queue.append(other)

    # faces kept apart last: a new face of the person a face was taken from joins them first
    order = sorted(todo, key=lambda f: (bool(apart and apart.get(f)), -len(neighbours(f)), f))
    for face_id in order:
        if face_id not in pending or core_neighbours(face_id) < min_neighbours:
            continue
        person = join_nearest(face_id)
        if person is None:
            person = next(new_keys)
            plan.new_people += 1
            put(face_id, person)
        grow(face_id, person)
    for face_id in order:  # Immich's deferred pass: the rest join a neighbour's person
        if face_id in pending:
            join_nearest(face_id)
    return plan
