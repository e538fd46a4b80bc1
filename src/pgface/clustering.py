"""Clustering: give the faces no person holds a person, never against a human's decision.

Thresholds and the figures that chose them are in docs/people.md.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import count

import numpy as np
import psycopg

from pgface.db import people_store as ps
from pgface.db import store

# Clustering: cosine similarity at which two faces count as neighbours, per model pack, and how
# many neighbours (in other photos) make a face core. Chosen on LFW View 1; docs/people.md.
CLUSTER_SIMILARITY: dict[str, float] = {"buffalo_sc": 0.40}
CLUSTER_MARGIN = 0.17  # packs not measured: as much stricter than their match threshold
MIN_NEIGHBOURS = 1
NEIGHBOURS_K = 64  # nearest faces looked at per face when clustering
# One HNSW query costs about as much as fetching 200 vectors in bulk (docs/people.md): bulk
# when the new faces are at least this many and a 1/BULK_SHARE of the library.
BULK_FROM = 64
BULK_SHARE = 100



@dataclass
class ClusterReport:
    considered: int = 0  # unassigned faces looked at
    joined: int = 0  # faces that joined an existing person
    founded: int = 0  # new (unnamed) people
    in_new_people: int = 0  # faces in those new people
    unassigned: int = 0  # faces left without a person (too few close neighbours)
    below_quality: int = 0  # unassigned faces left out: quality below the floor
    released: int = 0  # faces a full re-cluster took from the person clustering gave them
    mode: str = "sql"  # where neighbours came from: "sql" (HNSW) or "bulk" (numpy)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)



def run_clustering(conn: psycopg.Connection, model: str, similarity: float,
                   min_neighbours: int, full: bool = False, ef_search: int = 200,
                   bulk: bool | None = None, min_quality: float = 0.0) -> ClusterReport:
    """Cluster in the caller's transaction (People.cluster commits it; a caller may roll back).

    Looked at: the faces clustering never saw, and the unassigned faces among their neighbours,
    the only old faces whose standing a new face can change (similarity is symmetric). `full`
    looks at every face no human decided on; a person it finds again keeps its id.
    """
    started = time.perf_counter()
    report = ClusterReport()
    ps.lock_clustering(conn)
    stored = ps.cluster_faces(conn, model)
    # Full: forget, in memory, what clustering decided; rows are only written where it changes.
    before = {f.face_id: f.person_id for f in stored if full and f.person_id and not f.kept}
    faces = [replace(f, person_id=None) if f.face_id in before else f for f in stored]
    # Faces below the quality floor that no person holds are neither clustered nor neighbours.
    low = store.faces_below_quality(conn, model, min_quality) - {
        f.face_id for f in faces if f.person_id is not None}
    fresh = [f.face_id for f in faces
             if (f.fresh or full) and f.person_id is None and f.face_id not in low]
    unassigned = {f.face_id for f in faces if f.person_id is None} - low
    source = NeighbourSource.choose(conn, model, faces, fresh, similarity, ef_search, bulk)
    source.skip = low
    woken = {g for f in fresh for g, _ in source.neighbours(f) if g in unassigned}
    todo = sorted(set(fresh) | woken)
    plan = plan_clusters(faces, todo, source.neighbours, min_neighbours, unassigned)
    people = _person_ids(conn, plan, before)
    after = {face: people.get(key, key) for face, key in plan.assignments.items()}
    report.released = ps.release_clustered(conn, [f for f in before if f not in after])
    changed = {f: p for f, p in after.items() if before.get(f) != p}
    ps.assign_clustered(conn, changed)
    report.released += sum(1 for f in changed if f in before)
    ps.mark_clustered(conn, sorted(set(fresh) - set(after)))
    ps.delete_empty_unnamed(conn)
    joined = [key for key in plan.assignments.values() if key > 0]
    ps.touch_people(conn, sorted(set(changed.values())))
    report.considered = len(todo)
    report.joined = len(joined)
    report.founded = len(set(people.values()) - set(before.values()))
    report.in_new_people = len(plan.assignments) - len(joined)
    report.unassigned = len(unassigned) - len(plan.assignments)
    report.mode = source.mode
    report.below_quality = len(low)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _person_ids(conn: psycopg.Connection, plan: ClusterPlan, before: dict[int, int]
                ) -> dict[int, int]:
    """Ids for the people the plan founded: the earlier person they most overlap, else new."""
    overlap = Counter((key, before[face]) for face, key in plan.assignments.items()
                      if key < 0 and face in before)
    ids: dict[int, int] = {}
    reused: set[int] = set()
    for (key, old), _ in overlap.most_common():
        if key not in ids and old not in reused:
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


def plan_clusters(faces: Sequence[ps.ClusterFace], todo: Sequence[int], neighbours: Neighbours,
                  min_neighbours: int, unassigned: set[int] | None = None) -> ClusterPlan:
    """Immich-style density clustering with cannot-link.

    A face is core when at least `min_neighbours` faces of other photos lie within the
    similarity limit. Densest of `todo` first: a core face joins the person of its nearest
    neighbour that has one, or founds a person; that person then grows through its core faces
    into `unassigned` ones (as DBSCAN does). Faces of `todo` that are not core join their
    nearest neighbour's person at the end, if it has one. Two faces of one photo never share a
    person, and existing people are never merged.
    """
    photo_of = {f.face_id: f.photo_id for f in faces}
    person_of: dict[int, int] = {f.face_id: f.person_id for f in faces if f.person_id}
    photos_of: defaultdict[int, set[int]] = defaultdict(set)
    for face_id, person in person_of.items():
        photos_of[person].add(photo_of[face_id])
    pending = set(todo) if unassigned is None else set(unassigned) | set(todo)
    plan = ClusterPlan({}, 0)
    new_keys = count(-1, -1)

    def put(face_id: int, person: int) -> None:
        person_of[face_id] = person
        photos_of[person].add(photo_of[face_id])
        plan.assignments[face_id] = person
        pending.discard(face_id)

    def join_nearest(face_id: int) -> int | None:
        for other, _ in neighbours(face_id):
            person = person_of.get(other)
            if person and photo_of[face_id] not in photos_of[person]:
                put(face_id, person)
                return person
        return None

    def grow(seed: int, person: int) -> None:
        queue = deque([seed])
        while queue:
            core = queue.popleft()
            if len(neighbours(core)) < min_neighbours:
                continue  # a border face belongs but does not spread the person
            for other, _ in neighbours(core):
                if other in pending and photo_of[other] not in photos_of[person]:
                    put(other, person)
                    queue.append(other)

    order = sorted(todo, key=lambda f: (-len(neighbours(f)), f))
    for face_id in order:
        if face_id not in pending or len(neighbours(face_id)) < min_neighbours:
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


class NeighbourSource:
    """Neighbours of the faces to cluster, from HNSW queries or from one bulk fetch."""

    def __init__(self, mode: str, lookup: Neighbours) -> None:
        self.mode = mode
        self._lookup = lookup
        self._cache: dict[int, list[tuple[int, float]]] = {}
        self.skip: set[int] = set()  # faces that are nobody's neighbour (low quality)

    def neighbours(self, face_id: int) -> list[tuple[int, float]]:
        if face_id not in self._cache:
            self._cache[face_id] = [n for n in self._lookup(face_id) if n[0] not in self.skip]
        return self._cache[face_id]

    @classmethod
    def choose(cls, conn: psycopg.Connection, model: str, faces: Sequence[ps.ClusterFace],
               fresh: Sequence[int], similarity: float, ef_search: int, bulk: bool | None
               ) -> NeighbourSource:
        """Bulk when the fresh faces are many for the library (docs/people.md has the costs)."""
        photo_of = {f.face_id: f.photo_id for f in faces}
        if bulk or (bulk is None and len(fresh) >= max(BULK_FROM, len(faces) // BULK_SHARE)):
            return cls("bulk", _bulk_lookup(conn, model, photo_of, fresh, similarity))
        ids, vectors = ps.embeddings(conn, model, fresh)
        vector_of = dict(zip(ids.tolist(), vectors, strict=True))

        def lookup(face_id: int) -> list[tuple[int, float]]:
            if face_id not in vector_of:  # an old face reached through a new one
                vector_of[face_id] = ps.embeddings(conn, model, [face_id])[1][0]
            rows = ps.neighbours(conn, vector_of[face_id], face_id, photo_of[face_id], model,
                                 NEIGHBOURS_K, similarity, ef_search)
            return [(r[0], float(r[2])) for r in rows]

        return cls("sql", lookup)


def _bulk_lookup(conn: psycopg.Connection, model: str, photo_of: dict[int, int],
                 first: Sequence[int], similarity: float) -> Neighbours:
    """Every face's vector in memory; neighbours by matrix products, `first` ones in blocks."""
    ids, vectors = ps.embeddings(conn, model)
    photos = np.array([photo_of[i] for i in ids.tolist()], dtype=np.int64)
    row_of = {face_id: row for row, face_id in enumerate(ids.tolist())}
    found: dict[int, list[tuple[int, float]]] = {}

    def near(rows: np.ndarray) -> None:
        sims = vectors[rows] @ vectors.T
        for row, line in zip(rows.tolist(), sims, strict=True):
            close = np.flatnonzero((line >= similarity) & (photos != photos[row]))
            close = close[np.argsort(-line[close], kind="stable")][:NEIGHBOURS_K]
            found[int(ids[row])] = [(int(ids[c]), float(line[c])) for c in close]

    rows = np.array([row_of[f] for f in first], dtype=np.int64)
    block = max(64, 2**25 // max(1, len(ids)))  # about 128 MB of similarities at a time
    for start in range(0, len(rows), block):
        near(rows[start : start + block])

    def lookup(face_id: int) -> list[tuple[int, float]]:
        if face_id not in found:
            near(np.array([row_of[face_id]]))
        return found[face_id]

    return lookup
