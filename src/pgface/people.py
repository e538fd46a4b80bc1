"""People: name faces, cluster the unnamed ones, identify faces in new photos.

Thresholds and the figures that chose them are in docs/people.md.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
import unicodedata
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import count
from pathlib import Path

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgface.config import Settings
from pgface.db import people_store as ps
from pgface.errors import InvalidInputError, NotFoundError, PgfaceError
from pgface.imaging import IMAGE_SUFFIXES, Photo, decode_photo, read_photo
from pgface.index import Indexer, IndexReport
from pgface.models.analysis import FaceAnalyzer
from pgface.paths import expand
from pgface.search import Match, SearchResult, analyze_photos, search_photo

PersonRef = int | str
PhotoInput = str | Path | bytes

# Clustering: cosine similarity at which two faces count as neighbours, per model pack, and how
# many neighbours (in other photos) make a face core. Chosen on LFW View 1; docs/people.md.
CLUSTER_SIMILARITY: dict[str, float] = {"buffalo_sc": 0.40}
CLUSTER_MARGIN = 0.17  # packs not measured: as much stricter than their match threshold
MIN_NEIGHBOURS = 1
# Confidence of identify: logistic in similarity, 0.5 at the match threshold; slope fitted by
# maximum likelihood on LFW View 1 DevTrain pairs (free fit: centre 0.23, slope 36).
CONFIDENCE_SLOPE = 36.0
IDENTIFY_CANDIDATES = 50  # nearest assigned faces looked at per query face
NEIGHBOURS_K = 64  # nearest faces looked at per face when clustering
# One HNSW query costs about as much as fetching 200 vectors in bulk (docs/people.md): bulk
# when the new faces are at least this many and a 1/BULK_SHARE of the library.
BULK_FROM = 64
BULK_SHARE = 100
MAX_ID = 2**63 - 1  # ids are bigint: a larger number names nobody


class PersonError(PgfaceError):
    """A people operation that cannot be done as asked (a taken name, a face of someone else)."""


@dataclass(frozen=True)
class Person:
    id: int
    name: str | None
    faces: int
    photos: int

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"person {self.id} (unnamed)"


@dataclass(frozen=True)
class PersonFace:
    face_id: int
    photo_id: int
    path: str
    bbox: list[float]
    assigned_by: str | None


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


@dataclass
class Identification:
    source: str
    model: str
    threshold: float
    faces: list[IdentifiedFace]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PersonMatches:
    """The matches of one query face that belong to one person (person_id None: to nobody)."""

    person_id: int | None
    name: str | None
    best_similarity: float
    matches: list[Match]


@dataclass
class ClusterReport:
    considered: int = 0  # unassigned faces looked at
    joined: int = 0  # faces that joined an existing person
    founded: int = 0  # new (unnamed) people
    in_new_people: int = 0  # faces in those new people
    unassigned: int = 0  # faces left without a person (too few close neighbours)
    released: int = 0  # faces a full re-cluster took from the person clustering gave them
    mode: str = "sql"  # where neighbours came from: "sql" (HNSW) or "bulk" (numpy)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EnrolReport:
    people: dict[str, int] = field(default_factory=dict)  # name -> faces enrolled now
    index: IndexReport | None = None
    no_face: list[str] = field(default_factory=list)  # photos in which no face was found
    several_faces: list[str] = field(default_factory=list)  # photos where one face was chosen


def confidence(similarity: float, threshold: float) -> float:
    """Probability-like score: 0.5 at the match threshold, steep where pairs are ambiguous."""
    return round(1.0 / (1.0 + math.exp(-CONFIDENCE_SLOPE * (similarity - threshold))), 4)


class People:
    """The people verbs over one database and one model pack."""

    def __init__(self, pool: ConnectionPool, analyzer: FaceAnalyzer, settings: Settings) -> None:
        self.pool = pool
        self.analyzer = analyzer
        self.settings = settings

    @property
    def model(self) -> str:
        return self.analyzer.model_name

    @property
    def threshold(self) -> float:
        return self.settings.match_threshold(self.model)

    @property
    def cluster_similarity(self) -> float:
        return CLUSTER_SIMILARITY.get(self.model, self.threshold + CLUSTER_MARGIN)

    # Reading

    def list(self, unnamed: bool = False) -> list[Person]:
        """Named people, by name; with `unnamed`, also the people clustering found."""
        with self.pool.connection() as conn:
            rows = ps.list_people(conn, unnamed)
        return [Person(r["id"], r["name"], r["faces"], r["photos"]) for r in rows]

    def get(self, person: PersonRef) -> Person:
        with self.pool.connection() as conn:
            return self._person(conn, self._resolve(conn, person))

    def faces(self, person: PersonRef) -> list[PersonFace]:
        with self.pool.connection() as conn:
            rows = ps.person_faces(conn, self._resolve(conn, person))
        return [PersonFace(r["id"], r["photo_id"], r["path"], list(r["bbox"]), r["assigned_by"])
                for r in rows]

    # Naming

    def name_faces(self, face_ids: Sequence[int], name: str) -> Person:
        """Put these faces in the person called `name` (created if new); a human decision."""
        name = _clean_name(name)
        with self.pool.connection() as conn, conn.transaction():
            self._check_faces(conn, face_ids)
            found = ps.person_by_name(conn, name)
            person_id = found["id"] if found else ps.create_person(conn, name)
            ps.assign_faces(conn, face_ids, person_id, ps.USER)
            ps.touch_people(conn, [person_id])
            ps.delete_empty_unnamed(conn)
            return self._person(conn, person_id)

    def rename(self, person: PersonRef, name: str) -> Person:
        """Give a person (named or found by clustering) a new name."""
        name = _clean_name(name)
        with self.pool.connection() as conn, conn.transaction():
            person_id = self._resolve(conn, person)
            taken = ps.person_by_name(conn, name)
            if taken and taken["id"] != person_id:
                raise PersonError(f"a person named {name!r} already exists (id {taken['id']}); "
                                  f"merge the two instead")
            ps.rename_person(conn, person_id, name)
            return self._person(conn, person_id)

    def merge(self, source: PersonRef, target: PersonRef) -> Person:
        """Move every face of `source` into `target` and delete `source`; target's name stays."""
        with self.pool.connection() as conn, conn.transaction():
            source_id = self._resolve(conn, source)
            target_id = self._resolve(conn, target)
            if source_id == target_id:
                raise PersonError(f"cannot merge person {source_id} into itself")
            ps.move_all_faces(conn, source_id, target_id)
            ps.delete_person(conn, source_id)
            ps.touch_people(conn, [target_id])
            return self._person(conn, target_id)

    def split(self, person: PersonRef, face_ids: Sequence[int], name: str | None = None
              ) -> Person:
        """Move some faces out of a person into a new one (named, or unnamed)."""
        name = _clean_name(name) if name is not None else None
        with self.pool.connection() as conn, conn.transaction():
            person_id = self._resolve(conn, person)
            found = self._check_faces(conn, face_ids)
            strangers = sorted(f for f, (_, owner) in found.items() if owner != person_id)
            if strangers:
                raise PersonError(f"faces {_ids(strangers)} are not faces of person {person_id}")
            if name is not None and ps.person_by_name(conn, name):
                raise PersonError(f"a person named {name!r} already exists")
            new_id = ps.create_person(conn, name)
            ps.assign_faces(conn, face_ids, new_id, ps.USER)
            ps.touch_people(conn, [person_id])
            ps.delete_empty_unnamed(conn)
            return self._person(conn, new_id)

    def delete(self, person: PersonRef) -> int:
        """Delete the person; their faces stay, unassigned. Returns how many faces were theirs."""
        with self.pool.connection() as conn, conn.transaction():
            return ps.delete_person(conn, self._resolve(conn, person))

    def erase(self, person: PersonRef) -> tuple[int, int]:
        """Delete the person, every face of theirs (embedding and crop) and every photo only
        they were in. Returns (faces, photos) deleted."""
        with self.pool.connection() as conn, conn.transaction():
            return ps.erase_person(conn, self._resolve(conn, person))

    # Clustering

    def cluster(self, full: bool = False, similarity: float | None = None,
                min_neighbours: int = MIN_NEIGHBOURS, bulk: bool | None = None
                ) -> ClusterReport:
        """Give the faces no person holds a person: join one or found one (docs/people.md).

        Incremental: new faces and the unassigned faces near them are looked at, and existing
        people only grow. `full` redoes every decision clustering made (never a human's: their
        faces and named people stay). `bulk` None: numpy for many faces, HNSW for a few.
        """
        with self.pool.connection() as conn, conn.transaction():
            return run_clustering(
                conn, self.model, self.cluster_similarity if similarity is None else similarity,
                min_neighbours, full=full, ef_search=self.settings.ef_search, bulk=bulk)

    # Recognising

    def identify(self, photo: PhotoInput, threshold: float | None = None) -> Identification:
        """For each face in the photo, the person whose nearest stored face is most similar, if
        at or above the threshold (default: the pack's calibrated match threshold)."""
        limit = self.threshold if threshold is None else threshold
        loaded = self._load(photo)
        faces = analyze_photos(self.analyzer, [loaded])[0]
        answers = []
        with self.pool.connection() as conn:
            for face in faces:
                rows = ps.nearest_assigned(conn, face.embedding, self.model, IDENTIFY_CANDIDATES,
                                           limit, self.settings.ef_search)
                candidates: dict[int, Candidate] = {}
                for r in rows:  # best first, so each person's first row is its nearest face
                    if r["person_id"] not in candidates:
                        sim = round(float(r["similarity"]), 4)
                        candidates[r["person_id"]] = Candidate(
                            r["person_id"], r["name"], sim, confidence(sim, limit))
                ranked = list(candidates.values())
                best = ranked[0] if ranked else None
                answers.append(IdentifiedFace(
                    bbox=[round(float(v), 1) for v in face.bbox],
                    det_score=round(face.det_score, 4),
                    person_id=best.person_id if best else None,
                    name=best.name if best else None,
                    similarity=best.similarity if best else None,
                    confidence=best.confidence if best else None,
                    candidates=ranked[:5],
                ))
        return Identification(loaded.source, self.model, limit, answers)

    def search(self, photo: PhotoInput, top: int | None = None, threshold: float | None = None
               ) -> tuple[SearchResult, list[list[PersonMatches]]]:
        """Search, then group each query face's matches by person, best person first."""
        result = search_photo(
            self.analyzer, self.pool, self._load(photo), top=top or self.settings.top_k,
            threshold=self.threshold if threshold is None else threshold,
            ef_search=self.settings.ef_search,
        )
        return result, [group_by_person(face.matches) for face in result.faces]

    # Enrolment

    def enrol(self, folder: str | Path) -> EnrolReport:
        """Index folder/<name>/*.jpg and put each photo's face in the person <name>.

        In a photo with several faces, the one most like the person's single-face photos is
        taken (the largest if there are none); such photos are listed in the report.
        """
        folders = _person_folders(expand(folder))
        report = EnrolReport()
        report.index = Indexer(self.analyzer, self.pool, self.settings).index(
            [f for f, _ in folders])
        with self.pool.connection() as conn, conn.transaction():
            for person_folder, files in folders:
                chosen = self._enrol_faces(conn, files, report)
                if chosen:
                    name = person_folder.name
                    found = ps.person_by_name(conn, name)
                    person_id = found["id"] if found else ps.create_person(conn, name)
                    ps.assign_faces(conn, chosen, person_id, ps.USER)
                    ps.touch_people(conn, [person_id])
                report.people[person_folder.name] = len(chosen)
            ps.delete_empty_unnamed(conn)
        return report

    def _enrol_faces(self, conn: psycopg.Connection, files: list[Path], report: EnrolReport
                     ) -> list[int]:
        hashes = {hashlib.sha256(f.read_bytes()).digest(): f for f in files}
        by_photo: dict[bytes, list[tuple[int, list[float]]]] = {}
        for sha, face_id, bbox, _ in ps.faces_of_hashes(conn, list(hashes), self.model):
            by_photo.setdefault(sha, []).append((face_id, bbox))
        chosen = [faces[0][0] for faces in by_photo.values() if len(faces) == 1]
        crowded = {sha: faces for sha, faces in by_photo.items() if len(faces) > 1}
        if crowded:
            reference = ps.embeddings(conn, self.model, chosen)[1] if chosen else None
            for sha, faces in crowded.items():
                report.several_faces.append(str(hashes[sha]))
                chosen.append(_likeliest(conn, self.model, faces, reference))
        failed = {f.source for f in report.index.failures} if report.index else set()
        report.no_face.extend(str(f) for sha, f in hashes.items()
                              if sha not in by_photo and str(f) not in failed)
        return chosen

    # Helpers

    def _load(self, photo: PhotoInput) -> Photo:
        s = self.settings
        if isinstance(photo, bytes):
            return decode_photo(photo, "upload", s.max_file_bytes, s.max_pixels)
        return read_photo(expand(photo), s.max_file_bytes, s.max_pixels, s.read_timeout_s)

    def _resolve(self, conn: psycopg.Connection, person: PersonRef) -> int:
        """A person id from an id or a name; a name is tried first for strings."""
        if isinstance(person, str):
            if _storable(person):  # a name PostgreSQL could not store names nobody
                found = ps.person_by_name(conn, person)
                if found:
                    return found["id"]
            # ASCII digits only: str.isdigit() also takes '²' and '٣', which int() refuses
            if not re.fullmatch(r"[0-9]+", person.strip()):
                raise NotFoundError(f"no person named {person!r}")
            person = int(person)
        if not 0 < person <= MAX_ID or ps.get_person(conn, person) is None:
            raise NotFoundError(f"no person with id {person}")
        return person

    def _person(self, conn: psycopg.Connection, person_id: int) -> Person:
        row = ps.get_person(conn, person_id)
        if row is None:
            raise NotFoundError(f"no person with id {person_id}")
        faces = ps.person_faces(conn, person_id)
        return Person(person_id, row["name"], len(faces), len({f["photo_id"] for f in faces}))

    def _check_faces(self, conn: psycopg.Connection, face_ids: Sequence[int]
                     ) -> dict[int, tuple[int, int]]:
        if not face_ids:
            raise PersonError("no face ids given")
        found = ps.existing_faces(conn, face_ids)
        missing = sorted(set(face_ids) - set(found))
        if missing:
            raise NotFoundError(f"no face with id {_ids(missing)}")
        return found


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


def _likeliest(conn: psycopg.Connection, model: str, faces: list[tuple[int, list[float]]],
               reference: np.ndarray | None) -> int:
    """Of several faces in one photo, the one nearest the person's other faces, else largest."""
    if reference is None or len(reference) == 0:
        return max(faces, key=lambda f: (f[1][2] - f[1][0]) * (f[1][3] - f[1][1]))[0]
    ids, vectors = ps.embeddings(conn, model, [f[0] for f in faces])
    scores = (vectors @ reference.T).max(axis=1)
    return int(ids[int(scores.argmax())])


def _person_folders(folder: Path) -> list[tuple[Path, list[Path]]]:
    if not folder.is_dir():
        raise NotFoundError(f"{folder}: no such folder")
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        files = sorted(p for p in sub.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if files:
            found.append((sub, files))
    if not found:
        raise PersonError(f"{folder}: no person folders with photos in it "
                          f"(expected {folder}/<name>/*.jpg)")
    return found


def _storable(text: str) -> bool:
    """Whether PostgreSQL can store text: no NUL, no lone surrogate (not encodable as UTF-8)."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise PersonError("a person's name cannot be empty")
    if not _storable(cleaned) or any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise InvalidInputError(
            f"a person's name cannot contain control characters or invalid Unicode: {name!r}")
    return cleaned


def _ids(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)


def run_clustering(conn: psycopg.Connection, model: str, similarity: float,
                   min_neighbours: int, full: bool = False, ef_search: int = 200,
                   bulk: bool | None = None) -> ClusterReport:
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
    fresh = [f.face_id for f in faces if (f.fresh or full) and f.person_id is None]
    unassigned = {f.face_id for f in faces if f.person_id is None}
    source = NeighbourSource.choose(conn, model, faces, fresh, similarity, ef_search, bulk)
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

    def neighbours(self, face_id: int) -> list[tuple[int, float]]:
        if face_id not in self._cache:
            self._cache[face_id] = self._lookup(face_id)
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
