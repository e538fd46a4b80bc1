"""People: name faces, cluster the unnamed ones, identify faces in new photos.

Thresholds and the figures that chose them are in docs/people.md.
"""

from __future__ import annotations

import builtins
import contextlib
import operator
import os
import re
import shlex
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
from psycopg_pool import ConnectionPool

from pgface import engine, people_history, vector_index
from pgface.clustering import (  # noqa: F401 - re-exported: the people API's clustering names
    CLUSTER_MARGIN,
    CLUSTER_SIMILARITY,
    MIN_NEIGHBOURS,
    ClusterReport,
    found_again_text,
    plan_clusters,
    run_clustering,
)
from pgface.config import Settings
from pgface.db import people_store as ps
from pgface.db import store
from pgface.db.connection import DatabaseError, one_line, public_calls_said_plainly
from pgface.enrolment import EnrolReport, enrol_faces, loose_photos, person_folders
from pgface.errors import (
    InvalidInputError,
    NotFoundError,
    PersonError,
    PgfaceError,
    counted,
    kind_of,
    shown_name,
)
from pgface.identify import (  # noqa: F401 - re-exported: the people API's identify names
    IDENTIFY_CANDIDATES,
    Candidate,
    Identification,
    IdentifiedFace,
    PersonMatches,
    TakenCandidate,
    confidence,
    group_by_person,
    group_photo_by_person,
    identify_faces,
    suggest_people,
)
from pgface.imaging import Photo, PhotoInput, load_photo
from pgface.index import Failure, Indexer, ProgressCallback, check_progress
from pgface.models.analysis import FaceAnalyzer
from pgface.models.exiting import whole
from pgface.names import name_form, shows_nothing, storable
from pgface.paths import (
    NamedFile,
    expand,
    one_path,
    readable,
    refused_text,
    with_name_bytes,
)
from pgface.people_history import Change, UndoError
from pgface.search import (
    SearchResult,
    analyze_photos,
    check_flag,
    check_min_quality,
    check_similarity,
    is_whole_number,
    photo_notices,
    search_photo,
)

PersonRef = int | str
# One face id, or any number of them.
FaceIds = int | Iterable[int]
MAX_ID = 2**63 - 1  # ids are bigint: a larger number names nobody
# The largest offset of a page: PostgreSQL's OFFSET is a bigint, and offset + limit must be one
# too (2**63 was "bigint out of range", exit 1, where the CLI says a bad option with 2).
MAX_OFFSET = 2**62
# Changes to the kept face counts pending before they are added up (people_store): reading
# a few thousand more rows costs a page less than a millisecond; a full clustering of a
# million faces leaves a million.
ADD_UP_FACE_COUNTS_AT = 2000


def face_id_list(face_ids: FaceIds) -> list[int]:
    """FACE_IDS as a list of ints (NumPy's integers too); a str or a float is refused, naming
    the value (a str would have been taken as its characters)."""
    if isinstance(face_ids, str | bytes):
        raise InvalidInputError(f"a face id is a whole number, not {face_ids!r}")
    ids = []
    for face_id in _one_or_many(face_ids):
        if not is_whole_number(face_id):
            raise InvalidInputError(f"a face id is a whole number, not {face_id!r}")
        ids.append(operator.index(face_id))
    return ids


def _one_or_many(value: object) -> list:
    """One value alone (a number, NumPy's too, a str, or anything not iterable) as a list of
    one; a NumPy array (which has __index__ when it holds one element) or any other iterable as
    its items."""
    if isinstance(value, np.ndarray):
        return list(np.ravel(value))
    if isinstance(value, str | bytes) or hasattr(value, "__index__"):
        return [value]
    try:
        return list(value)
    except TypeError:  # not iterable (1.5, None): one value, which its caller refuses by name
        return [value]


class PersonConflict(PersonError):
    """Refused until the caller says what to do; `details` says what is at stake (the people
    whose faces would move, the two names of a merge), for a client to ask its user."""

    def __init__(self, message: str, details: dict) -> None:
        super().__init__(message)
        self.details = details

    def __reduce__(self) -> tuple:  # as ImageError's: pickled with both arguments
        return type(self), (str(self), self.details)


@dataclass(frozen=True)
class HeldFace:
    """A face a human placed in a person (assigned it, or it is in a named person)."""

    face_id: int
    person_id: int
    name: str | None

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"person {self.person_id} (unnamed)"


class _Unchecked:
    """A rename whose caller did not say what name it expects the person to have."""


UNCHECKED = _Unchecked()


@dataclass
class Naming:
    """What naming did: the person the faces went to, and the faces it left where they were."""

    person: Person | None  # None when every face was left
    named: list[int]
    left: list[HeldFace]
    moved: list[HeldFace]  # held faces taken from their person because the caller said so


@dataclass(frozen=True)
class Erasure:
    faces: int  # faces deleted, with their embeddings and crops
    photos: int  # photos deleted: no face was left in them
    files: list[str]  # uploaded photo files deleted from the upload folder
    scrub_seconds: float | None  # rewriting the tables; None when not scrubbed
    files_failed: list[str] = field(default_factory=list)  # "path: reason" of those not deleted
    # Why the tables could not be rewritten (a full disk: the rewrite needs room for a copy),
    # or None. The erase itself stands: the rows are deleted, but their bytes may remain in
    # the tables' files until `pgface people scrub` succeeds.
    scrub_failed: str | None = None


@dataclass(frozen=True)
class Person:
    id: int
    name: str | None
    faces: int
    photos: int
    hidden: bool = False  # left out of the people page (and `people list`) unless asked
    cover_face_id: int | None = None  # the face that shows the person: most confidently found

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"person {self.id} (unnamed)"


@dataclass(frozen=True)
class PersonPhoto(NamedFile):
    photo_id: int
    path: str
    width: int
    height: int
    face_ids: list[int]  # the person's faces in it
    indexed_at: datetime | None = None  # the photos' order: latest indexed first
    # True when no stored path of the photo exists any more (path is then the last known one),
    # as a search's match says (search.Match)
    missing: bool = False


@dataclass(frozen=True)
class PersonFace(NamedFile):
    face_id: int
    photo_id: int
    path: str
    bbox: list[float]
    assigned_by: str | None
    # True when no stored path of the photo exists any more (path is then the last known one),
    # as a search's match says (search.Match)
    missing: bool = False


@public_calls_said_plainly
class People:
    """The people verbs over one database and one model pack.

    Each change is recorded with `actor` (who made it) and can be undone (`undo`), an erase
    excepted. A face a human placed is only ever moved by a call that says `move=True`.
    """

    def __init__(self, pool: ConnectionPool | Callable[[], ConnectionPool],
                 analyzer: FaceAnalyzer, settings: Settings, actor: str | None = None,
                 library_notices: Callable[[], builtins.list[str]] | None = None) -> None:
        # A library passes its pool's getter: a view kept across the library's close() and
        # used after it failed with PoolClosed, where the library itself opens a pool again.
        self._pool = pool
        self.analyzer = analyzer
        self.settings = settings
        self.actor = actor or people_history.default_actor()
        # what makes the library's answers less sure (Pgface.notices), said with a search's
        self._library_notices = library_notices
        # the id of the change this view's last call recorded (None: it changed nothing)
        self.last_change: int | None = None

    def __reduce__(self) -> tuple:
        """The people verbs hold the library's models and connections, as a Pgface does: sent
        to another process (`pool.map(pf.people.identify, files)`) it was an AttributeError,
        "Can't pickle local object 'Pgface.people.<locals>.<lambda>'", no PgfaceError (probe
        pyapp36)."""
        raise PgfaceError("the people of a Pgface cannot be sent to another process (their "
                          "models and database connections are this process's): open a "
                          "Pgface in each worker process, `pgface.Pgface(settings)` with the "
                          "same settings, and use its `people`")

    def acting_as(self, actor: str) -> People:
        """The same verbs, recorded as made by `actor` ('cli:<user>', 'api:<key name>'): text
        of at most MAX_ACTOR_CHARS characters, with no control character."""
        return People(self._pool, self.analyzer, self.settings, _checked_actor(actor),
                      self._library_notices)

    @property
    def pool(self) -> ConnectionPool:
        return self._pool() if callable(self._pool) else self._pool

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
    # (`builtins.list` in this class's annotations: there, as a type checker reads them,
    # `list` is the method below, and `list[Person]` was "not indexable" to mypy)

    def list(self, unnamed: bool = False, hidden: bool = False, name_has: str | None = None
             ) -> builtins.list[Person]:
        """Named people, by name as a reader orders names (accents and letter case set aside:
        "ada", "Ångström", "Émile", "José", "zoë"; then the name itself, then the id); with
        `unnamed`, also the people clustering found, after the named, by id; with `hidden`,
        also the hidden ones; with `name_has`, only the named people whose name holds that
        text, in any case (as page() finds them)."""
        unnamed, hidden = check_flag("unnamed", unnamed), check_flag("hidden", hidden)
        if name_has is not None:
            name_has = _name_part(name_has)
        with self.pool.connection() as conn:
            rows = ps.list_people(conn, unnamed, self.model, hidden, name_has,
                                  _older_forms_holding(conn, name_has))
        people = [Person(r["id"], r["name"], r["faces"], r["photos"], r["hidden"]) for r in rows]
        return sorted(people, key=_list_order)

    def page(self, named: bool | None = None, hidden: bool = False, limit: int = 100,
             offset: int = 0, after: Person | None = None, name_has: str | None = None
             ) -> tuple[builtins.list[Person], int]:
        """People in the people page's order (named first, then by faces, most first, then by
        name and id), each with a cover face: `limit` of them from `offset`, and how many there
        are in all. `named` True or False keeps only named or unnamed people; `hidden` includes
        those. `after`, the last person of the previous page as it was returned: the page
        starts after that place, so people named, merged or hidden meanwhile do not make the
        next page repeat or pass over anyone else (an offset shifts with them). `name_has`:
        only the named people whose name holds this text, in any case ("ann" finds "Joanne")."""
        _check_page(limit, offset)
        named, hidden = check_flag("named", named, none_too=True), check_flag("hidden", hidden)
        # (a count of faces past any is a place before everyone: tests/test_people_page_api)
        if after is not None and not (isinstance(after, Person) and _an_id(after.id)
                                      and is_whole_number(after.faces)
                                      and isinstance(after.name, str | None)):
            raise InvalidInputError(f"after: the last Person of the previous page, as returned, "
                                    f"not {_kind_of_place(after)}")
        place = None if after is None else (after.name, after.faces, after.id)
        if name_has is not None:
            name_has = _name_part(name_has)
        with self.pool.connection() as conn:
            # The changes indexing (people kept) and other writers left, as any change's.
            ps.add_up_face_counts(conn, ADD_UP_FACE_COUNTS_AT)
            rows, total = ps.people_page(conn, named, hidden, limit, offset, self.model, place,
                                         name_has, _older_forms_holding(conn, name_has))
        return [Person(r["id"], r["name"], r["faces"], r["photos"], r["hidden"],
                       r["cover_face_id"]) for r in rows], total

    def review(self, limit: int = 20, offset: int = 0, after: Person | None = None
               ) -> tuple[builtins.list[Person], int]:
        """The review queue: unnamed people nobody hid, the most faces first; `after` as
        page() takes it."""
        return self.page(named=False, hidden=False, limit=limit, offset=offset, after=after)

    def photos(self, person: PersonRef, limit: int = 100, offset: int = 0,
               after: PersonPhoto | None = None) -> tuple[builtins.list[PersonPhoto], int]:
        """The photos the person is in (latest indexed first), with their faces in each.
        `after`: the last PersonPhoto of the previous page, as returned: the page starts after
        its place, so photos indexed or taken from the person meanwhile make it neither repeat
        nor pass over another (an offset shifts with them)."""
        _check_page(limit, offset)
        # its id a bigint (2**70 was PostgreSQL's "bigint out of range"), its time one that
        # says its zone, as returned (a naive one was taken as the server's own zone)
        if after is not None and not (isinstance(after, PersonPhoto) and _an_id(after.photo_id)
                                      and isinstance(after.indexed_at, datetime)
                                      and after.indexed_at.utcoffset() is not None):
            raise InvalidInputError(f"after: the last PersonPhoto of the previous page, as "
                                    f"returned, not {_kind_of_place(after)}")
        place = None if after is None else (after.indexed_at, after.photo_id)
        with self.pool.connection() as conn:
            rows, total = ps.person_photos(conn, self._resolve(conn, person), limit, offset,
                                           self.model, place)
            places = _places(conn, rows, "id")
        return [with_name_bytes(PersonPhoto(
            r["id"], places[r["id"]].path, r["width"], r["height"], list(r["face_ids"]),
            r["indexed_at"], places[r["id"]].missing), places[r["id"]].raw) for r in rows], total

    def get(self, person: PersonRef) -> Person:
        with self.pool.connection() as conn:
            return self._person(conn, self._resolve(conn, person))

    def named(self, name: str) -> Person:
        """The person of this name, by name only: a name of digits, as a library may hold from
        before those were refused, is not taken for an id. NotFoundError when nobody is."""
        with self.pool.connection() as conn:
            found = self._by_name(conn, name) if isinstance(name, str) else None
            if found is None:
                raise NotFoundError(f"no person named {_quoted(name)}", "person")
            return self._person(conn, found)

    def faces(self, person: PersonRef) -> builtins.list[PersonFace]:
        """All the person's faces, in id order (face_page: a page of them)."""
        with self.pool.connection() as conn:
            return _person_faces(conn, ps.person_faces(conn, self._resolve(conn, person),
                                                       self.model))

    def face_page(self, person: PersonRef, limit: int = 100, offset: int = 0,
                  after: int | None = None) -> tuple[builtins.list[PersonFace], int]:
        """`limit` of the person's faces from `offset`, in id order, and how many they have:
        a page reads its own faces (all of a person's, 200,000 of them, took 4 s a page).
        `after`: a face id, the page counted from the faces after it (a face moved away
        meanwhile shifts no other, as it did an offset)."""
        _check_page(limit, offset)
        if after is not None and not _an_id(after):
            raise InvalidInputError(f"after: a face id, not {after!r}")
        with self.pool.connection() as conn:
            person_id = self._resolve(conn, person)
            rows = ps.person_faces(conn, person_id, self.model, limit, offset, after)
            return (_person_faces(conn, rows),
                    ps.count_person_faces(conn, person_id, self.model))

    # Naming

    def name_faces(self, face_ids: FaceIds, name: str, move: bool = False,
                   refuse_held: bool = False,
                   expected_held: Mapping[int, int] | None = None,
                   expected_person_id: int | None = None) -> Naming:
        """Put these faces in the person called `name` (created if new); a human decision.

        A face another person holds by a human decision (assigned by hand, or in a named
        person) is left there unless `move`; with `refuse_held` such a face refuses the whole
        call instead (PersonConflict naming the people), for clients that ask first.
        expected_held: with `move`, the held faces the caller's user agreed to move (face id
        -> the person holding it); a face held by another person by now, PersonConflict with
        the people as they are (a move confirmed for Alice's face took it from Carol, who had
        been given it meanwhile).
        expected_person_id: the person the caller's user was shown with this name (offered to
        move faces into them); where the name reaches another person or nobody by now,
        PersonConflict with that person as they are (`expected_now`), nothing named: the move
        into Alpha, renamed or merged meanwhile, made a new Alpha of the faces alone.
        """
        given, name = name, _clean_name(name)
        face_ids = face_id_list(face_ids)
        move, refuse_held = check_flag("move", move), check_flag("refuse_held", refuse_held)
        _check_ids_to("expected_held", expected_held, "person ids by face id",
                      is_whole_number)
        if expected_person_id is not None:
            if not is_whole_number(expected_person_id) or not 0 < expected_person_id <= MAX_ID:
                raise InvalidInputError(f"expected_person_id: a person's id, not "
                                        f"{expected_person_id!r:.40}")
            expected_person_id = operator.index(expected_person_id)
        with self._change("name") as (conn, change):
            self._check_faces(conn, face_ids)
            reached = self._named_to_give(conn, given)
            if expected_person_id is not None and (reached or (None,))[0] != expected_person_id:
                raise _reached_elsewhere(conn, name, expected_person_id, reached)
            target, name = reached if reached else (None, name)  # named as they are
            held = [HeldFace(*h) for h in ps.held_faces(conn, face_ids) if h[1] != target]
            if held and not move and refuse_held:
                raise _held_conflict(name, held)
            # (a face released meanwhile overrides nobody: named all the same)
            if move and expected_held is not None and any(
                    expected_held.get(h.face_id) != h.person_id for h in held):
                raise _held_conflict(name, held, meanwhile=True)
            left = [] if move else held
            skip = {h.face_id for h in left}
            named = [f for f in dict.fromkeys(face_ids) if f not in skip]
            # The same faces found by other packs go with them, on the same terms (held by a
            # human for another person: left, unless `move`): a name given under buffalo_l
            # was on none of buffalo_sc's faces, and switched back the person had lost it.
            found = [(t, owner) for _, t, owner in ps.twins(conn, named, ps.PACK_FACE_OVERLAP)
                     if t not in skip]
            twins_held = [HeldFace(*h) for h in ps.held_faces(conn, [t for t, _ in found])
                          if h[1] != target]
            held_twins = {h.face_id for h in twins_held}
            found = [(t, owner) for t, owner in found if move or t not in held_twins]
            # told as the faces asked for are (a twin left with Ann, or taken from her, was
            # in neither list nor in the summary: the packs' faces disagreed unsaid)
            left = left if move else [*left, *twins_held]
            twins = [t for t, _ in found]
            changed = changed_named = 0
            owners: set[int] = set()  # the unnamed people whose faces this takes (emptied_into)
            if named:
                owners.update(_unnamed_holders(conn, [*named, *twins], target))
                target = target or ps.create_person(conn, name)
                changed = changed_named = ps.assign_faces(conn, named, target, ps.USER)
                if twins:
                    changed += ps.assign_faces(conn, twins, target, ps.USER)
            if changed:
                ps.touch_people(conn, [target])
                # unnamed people whose every face this took: merged into the person named, as
                # "not this person" reads them (people_store.MERGES_SINCE)
                emptied = [p for p in ps.delete_empty_unnamed(conn) if p in owners]
                if emptied:
                    change.payload.update(emptied_into=[[p, target] for p in emptied])
            moved = [*held, *twins_held] if move else []
            # faces already the person's by hand: no change, and no record for undo to take
            # back in place of the change before it
            change.discard = not changed
            change.involve(target, *(h.person_id for h in held),
                           *(owner for _, owner in found if owner is not None))
            change.payload.update(name=name, faces=named, left=[h.face_id for h in left],
                                  moved=[h.face_id for h in moved], twins=twins)
            # the faces it changed: those the person had by hand already were counted too
            # ("named 3 faces" of one new face, probe reprobe37b)
            change.summary = (f"named {counted(changed_named, 'face')} {quoted(name)}"
                              + (f" (and {len(twins)} of other packs at the same places)"
                                 if twins else "")
                              + _held_summary("moved", moved) + _held_summary("left", left))
            person = self._person(conn, target) if named else None
            return Naming(person, named, left, moved)

    def rename(self, person: PersonRef, name: str,
               expected_name: str | None | _Unchecked = UNCHECKED) -> Person:
        """Give a person (named or found by clustering) a new name. expected_name: the name
        the caller showed (None: unnamed); PersonConflict, with `current`, when the person
        has another by now (a page left open renamed over another client's rename)."""
        given, name = name, _clean_name(name)
        _check_shown_name(expected_name)  # 5 was "renamed meanwhile"
        with self._change("rename") as (conn, change):
            person_id = self._resolve(conn, person)
            before = ps.get_person(conn, person_id)["name"]
            if not isinstance(expected_name, _Unchecked) and not _as_shown(before,
                                                                           expected_name):
                raise PersonConflict(
                    f"{_not_as_shown(conn, person_id, expected_name, before)}: not renamed",
                    {"current": {"person_id": person_id, "name": before}})
            # (a person's own name in other case is theirs)
            taken = self._named_other_than(conn, given, {person_id})
            if taken:  # details: what a client offers instead
                raise PersonConflict(f"a person named {quoted(taken[1])} already exists (id "
                                     f"{taken[0]}); merge the two instead",
                                     {"existing": {"person_id": taken[0], "name": taken[1]}})
            change.discard = before == name  # a rename to the same name changes nothing
            if not change.discard:
                ps.rename_person(conn, person_id, name)
            change.involve(person_id)
            change.payload.update(person_id=person_id, previous_name=before, name=name)
            change.summary = f"renamed {_label(person_id, before)} to {quoted(name)}"
            return self._person(conn, person_id)

    def merge(self, source: PersonRef | Sequence[PersonRef], target: PersonRef,
              name: str | None = None,
              expected_names: Mapping[int, str | None] | None = None) -> Person:
        """Move every face of `source` (one person, or several) into `target` and delete them;
        one change, so one undo takes the whole merge back.

        The merged person keeps the name one of them has; when they have different names,
        `name` must say which it keeps (or give a new one), else PersonConflict.
        expected_names: the names the caller showed, by person id (None: unnamed);
        PersonConflict, with `renamed`, when one of them has another by now (a name chosen
        from a page left open put back the name another client had just changed).
        """
        sources = _one_or_many(source)  # one person (an id or a name), or several
        # a list of ids was an AttributeError ('list' object has no attribute 'items')
        _check_ids_to("expected_names", expected_names, "the names shown by person id (None: "
                      "unnamed)", lambda shown: shown is None or isinstance(shown, str))
        if not sources:
            raise PersonError("no person to merge given")
        with self._change("merge") as (conn, change):
            target_id = self._resolve(conn, target)
            source_ids = list(dict.fromkeys(self._resolve(conn, s) for s in sources))
            if target_id in source_ids:
                raise PersonError(f"cannot merge person {target_id} into itself")
            ids = [*source_ids, target_id]
            rows = [ps.get_person(conn, i) for i in ids]
            names = [row["name"] for row in rows]
            self._check_expected_names(conn, dict(zip(ids, names, strict=True)),
                                       expected_names)
            kept = self._merged_name(conn, names, name, ids)
            for source_id in source_ids:
                ps.move_all_faces(conn, source_id, target_id)
                ps.delete_person(conn, source_id)  # first: its name may be the one kept
            if kept != names[-1]:
                ps.rename_person(conn, target_id, kept)
            # A named person shown on the page, merged into a hidden one, stays shown (they
            # vanished from the list, unsaid); an unnamed cluster merged into a hidden
            # stranger is that stranger, hidden too.
            if rows[-1]["hidden"] and any(r["name"] and not r["hidden"] for r in rows[:-1]):
                ps.set_hidden(conn, target_id, False)
            ps.touch_people(conn, [target_id])
            change.involve(*ids)
            change.payload.update(source=source_ids[0] if len(source_ids) == 1 else source_ids,
                                  target=target_id, names=names, name=kept)
            merged = ", ".join(_label(i, n) for i, n in zip(source_ids, names[:-1], strict=True))
            change.summary = (f"merged {merged} into {_label(target_id, names[-1])}"
                              + (f", named {quoted(kept)}" if kept != names[-1] else ""))
            return self._person(conn, target_id)

    def hide(self, person: PersonRef, hidden: bool = True) -> Person:
        """Hide the person from the people page (or show them again, `hidden=False`); their
        faces stay theirs and keep being found by search and identify."""
        hidden = check_flag("hidden", hidden)
        kind = "hide" if hidden else "unhide"
        with self._change(kind) as (conn, change):
            person_id = self._resolve(conn, person)
            was = ps.get_person(conn, person_id)["name"]
            change.discard = not ps.set_hidden(conn, person_id, hidden)
            change.involve(person_id)
            change.payload.update(person_id=person_id, hidden=hidden)
            change.summary = f"{'hid' if hidden else 'unhid'} {_label(person_id, was)}"
            return self._person(conn, person_id)

    def _check_faces_of(self, conn: psycopg.Connection, person_id: int,
                        face_ids: Sequence[int]) -> None:
        """The faces exist (_check_faces) and are all PERSON_ID's, or PersonError and nothing
        is changed (a split's or a removal's faces moved meanwhile)."""
        found = self._check_faces(conn, face_ids)
        strangers = sorted(f for f, (_, owner) in found.items() if owner != person_id)
        if strangers:
            raise PersonError(
                f"face {strangers[0]} is not a face of person {person_id}"
                if len(strangers) == 1 else
                f"faces {_ids(strangers)} are not faces of person {person_id}")

    def split(self, person: PersonRef, face_ids: FaceIds, name: str | None = None
              ) -> Person:
        """Move some faces out of a person into a new one (named, or unnamed)."""
        given, name = name, _clean_name(name) if name is not None else None
        face_ids = face_id_list(face_ids)
        with self._change("split") as (conn, change):
            person_id = self._resolve(conn, person)
            self._check_faces_of(conn, person_id, face_ids)
            taken = self._named(conn, given) if given is not None else None
            if taken:  # details: what a client offers instead (as a rename's)
                raise PersonConflict(
                    f"the faces are already those of {quoted(taken[1])} (id {taken[0]}): a "
                    f"split moves them to another person (name it otherwise, or give no name)"
                    if taken[0] == person_id else  # "name the faces 'Cy' instead", they were
                    f"a person named {quoted(taken[1])} already exists (id {taken[0]}); name "
                    f"the faces {quoted(taken[1])} instead",
                    {"existing": {"person_id": taken[0], "name": taken[1]}})
            new_id = ps.create_person(conn, name)
            ps.assign_faces(conn, face_ids, new_id, ps.USER)
            # the same faces found by other packs, where they are this person's, go too
            twins = _twins_held(conn, face_ids, person_id)
            if twins:
                ps.assign_faces(conn, twins, new_id, ps.USER)
                change.payload.update(twins=twins)
            ps.touch_people(conn, [person_id])
            ps.delete_empty_unnamed(conn)
            was = ps.get_person(conn, person_id)
            change.involve(person_id, new_id)
            change.payload.update(person_id=person_id, new_person_id=new_id,
                                  faces=sorted(set(face_ids)), name=name)
            change.summary = (f"split {counted(len(set(face_ids)), 'face')} off "
                              f"{_label(person_id, was['name'] if was else None)} into "
                              f"{_label(new_id, name)}")
            return self._person(conn, new_id)

    def remove(self, person: PersonRef, face_ids: FaceIds) -> Person | None:
        """Take faces away from a person: they are not this person, nor anyone known ("not
        X"). The faces, and the same faces other packs found where they are this person's,
        become nobody's; a full re-cluster keeps them out of the person (moved_by_hand reads
        the change, as a split's). Returns the person as they are now; None where they were
        unnamed and had no face left (such a person is deleted, as after a split)."""
        face_ids = face_id_list(face_ids)
        with self._change("remove") as (conn, change):
            person_id = self._resolve(conn, person)
            self._check_faces_of(conn, person_id, face_ids)
            name = ps.get_person(conn, person_id)["name"]
            twins = _twins_held(conn, face_ids, person_id)
            ps.unassign_faces(conn, [*face_ids, *twins], person_id)
            if twins:
                change.payload.update(twins=twins)
            ps.touch_people(conn, [person_id])
            ps.delete_empty_unnamed(conn)
            change.involve(person_id)
            change.payload.update(person_id=person_id, faces=sorted(set(face_ids)), name=name)
            taken = counted(len(set(face_ids)), "face")
            change.summary = f"took {taken} from {_label(person_id, name)} (nobody's now)"
            if ps.get_person(conn, person_id) is None:
                return None
            return self._person(conn, person_id)

    def delete(self, person: PersonRef) -> int:
        """Delete the person; their faces stay, unassigned. Returns how many faces were theirs."""
        with self._change("delete") as (conn, change):
            person_id = self._resolve(conn, person)
            was = ps.get_person(conn, person_id)["name"]
            released = ps.delete_person(conn, person_id)
            change.involve(person_id)
            change.payload.update(person_id=person_id, name=was, faces_released=released)
            change.summary = (f"deleted {_label(person_id, was)}; "
                              f"{counted(released, 'face')} unassigned")
            return released

    def erase(self, person: PersonRef, scrub: bool = True,
              expected_name: str | None | _Unchecked = UNCHECKED,
              expected_faces: int | None = None) -> Erasure:
        """Erase a person: their faces (embeddings, crops), the photos left without a face,
        and of those the files pgface keeps in its upload folder. Cannot be undone.

        `scrub` then rewrites the tables, so no byte of the erased rows stays in their files
        (docs/people.md: what that costs, and what stays elsewhere: WAL, backups).
        expected_name (None: unnamed) and expected_faces: the person as the caller showed
        them; PersonConflict, nothing erased, where they are otherwise by now (a merge into
        them while a confirmation was asked erased the merged person's faces too).
        """
        scrub = check_flag("scrub", scrub)
        _check_shown_name(expected_name)
        if expected_faces is not None and not (
                is_whole_number(expected_faces) and expected_faces >= 0):
            raise InvalidInputError(f"expected_faces: the number of faces the caller showed, "
                                    f"not {expected_faces!r:.40}")
        with self._change("erase", undoable=False) as (conn, change):
            person_id = self._resolve(conn, person)
            name = ps.get_person(conn, person_id)["name"]
            if not isinstance(expected_name, _Unchecked) and not _as_shown(name, expected_name):
                raise PersonConflict(
                    f"{_not_as_shown(conn, person_id, expected_name, name)}: nothing was erased",
                    {"current": {"person_id": person_id, "name": name}})
            if expected_faces is not None:
                now = self._person(conn, person_id).faces
                if now != expected_faces:
                    raise PersonConflict(
                        f"{_label(person_id, name)} has {counted(now, 'face')} now, not the "
                        f"{expected_faces} shown (changed meanwhile): nothing was erased",
                        {"current": {"person_id": person_id, "name": name, "faces": now}})
            face_ids, photos, paths = ps.erase_faces(conn, person_id)
            people_history.forget(conn, change.id, person_id, name)
            change.involve(person_id)
            change.payload.update(faces=len(face_ids), photos=photos)
            change.summary = (f"erased a person: {counted(len(face_ids), 'face')}, "
                              f"{counted(photos, 'photo')} (cannot be undone)")
        files: builtins.list[str] = []
        failed: builtins.list[str] = []
        scrubbed, scrub_failed = None, None
        try:
            files, failed = delete_uploads(paths, self.settings.resolved_upload_dir())
            if scrub:
                # The erase is committed: a rewrite that fails (no room for the tables' copy)
                # is said with it, not raised over it (the erase said "error" and its report
                # was lost, a retry said "no person", and the search index kept the erased
                # faces' copies).
                try:
                    scrubbed = self.scrub()
                except (PgfaceError, psycopg.Error) as exc:
                    scrub_failed = one_line(exc)
        except KeyboardInterrupt as exc:
            # Ctrl-C or SIGTERM in the rewrite, minutes at scale: the erase is committed all
            # the same, which the interruption carries (`erasure`) for its caller to say. A
            # bare "stopped (Ctrl-C)" had the user think nothing was erased, and nothing said
            # the rewrite was still owed (probe crash38).
            exc.erasure = Erasure(  # type: ignore[attr-defined]
                len(face_ids), photos, files, None, failed, "stopped before it was done")
            raise
        finally:
            # The search index's copies: this process's at once, and its snapshot files on
            # disk (after the scrub, which gives the faces table a new file the snapshots
            # name).
            vector_index.forget_erased(self.pool, face_ids)
        return Erasure(len(face_ids), photos, files, scrubbed, failed, scrub_failed)

    def scrub(self) -> float:
        """Rewrite the people tables so deleted rows leave no bytes in their files; seconds."""
        started = time.perf_counter()
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                ps.scrub(conn)
            finally:
                conn.autocommit = False
        return round(time.perf_counter() - started, 3)

    # History

    def history(self, limit: int = 20, offset: int = 0) -> builtins.list[Change]:
        """The latest people changes, newest first: who, what, when, and whether undone."""
        _check_page(limit, offset)
        return people_history.history(self.pool, limit, offset)

    def history_count(self) -> int:
        return people_history.count(self.pool)

    def undo(self, change_id: int | None = None) -> Change:
        """Undo the latest change not undone yet, exactly (an erase cannot be undone).
        change_id: only if that change is still the latest (`last_change` of the call that
        made it), else UndoError: never another client's change made since."""
        if change_id is not None:
            if not is_whole_number(change_id):  # "x" was psycopg's own error, "2" "not the
                # latest change any more" where change 2 was the latest
                raise InvalidInputError(f"change_id is a change's number (`history` lists "
                                        f"them), not {change_id!r}")
            if not 0 < change_id <= MAX_ID:  # past a bigint: PostgreSQL's "out of range"
                raise UndoError(f"there is no change {change_id} (nothing was undone)")
        return people_history.undo(self.pool, self.actor,
                                   None if change_id is None else operator.index(change_id))

    # Clustering

    @whole
    def cluster(self, full: bool = False, similarity: float | None = None,
                min_neighbours: int = MIN_NEIGHBOURS, bulk: bool | None = None,
                min_quality: float | None = None) -> ClusterReport:
        """Give the faces no person holds a person: join one or found one (docs/people.md).

        Incremental: new faces and the unassigned faces near them are looked at, and existing
        people only grow. `full` redoes every decision clustering made (never a human's: their
        faces and named people stay). `bulk` None: numpy for many faces, HNSW for a few.
        Faces below the quality floor (default: settings.min_quality) are left out.
        """
        if similarity is not None:
            check_similarity("similarity", similarity)
        if min_quality is not None:  # NaN or 5: no face is at or above it
            check_min_quality(min_quality)
        full, bulk = check_flag("full", full), check_flag("bulk", bulk, none_too=True)
        # "2" was a TypeError from the comparison, 2.5 taken as it was
        if not is_whole_number(min_neighbours) or min_neighbours < 1:
            raise InvalidInputError(f"min_neighbours is a whole number, 1 or more, not "
                                    f"{min_neighbours!r:.40}")
        min_neighbours = operator.index(min_neighbours)
        index = engine.index_at_scale(self.pool, self.model)
        with self._change("cluster", wait=True) as (conn, change):
            report = run_clustering(
                conn, self.model, self.cluster_similarity if similarity is None else similarity,
                min_neighbours, full=full, ef_search=self.settings.ef_search, bulk=bulk,
                index=index if bulk is None else None, mean_similarity=self.threshold,
                min_quality=self.settings.min_quality if min_quality is None else min_quality)
            change.payload.update(full=full, report=report.to_dict())
            # A run that gave no face another person and took none (a scheduled run with
            # nothing new, faces left alone, marked as looked at all the same, or a full run
            # that formed the same people again) is not recorded: the next undo would take
            # it back in place of the change before it.
            change.discard = not (report.changed or report.released)
            change.summary = (f"clustering{' (full)' if full else ''}: "
                              f"{counted(report.joined, 'face')} joined people, "
                              f"{report.in_new_people} formed "
                              f"{counted(report.founded, 'new person', 'new people')}"
                              f"{found_again_text(report)}, "
                              f"{report.released} released")
            return report

    # Recognising

    @whole
    def identify(self, photo: PhotoInput, threshold: float | None = None,
                 min_quality: float | None = None) -> Identification:
        """For each face in the photo, the person whose nearest stored face is most similar, if
        at or above the threshold (default: the pack's calibrated match threshold). A face
        whose quality is below min_quality (default: the settings' floor) is reported, not
        identified, as search leaves it unsearched."""
        limit = check_similarity("threshold", self.threshold if threshold is None else threshold)
        floor = check_min_quality(self.settings.min_quality if min_quality is None
                                  else min_quality)
        loaded = self._load(photo)
        faces = analyze_photos(self.analyzer, [loaded])[0]
        found = identify_faces(self.pool, self.model, faces, shown_name(loaded.source),
                               limit, self.threshold, self.settings.ef_search, floor,
                               self.analyzer.recognizer_sha256)
        found.warning = loaded.warning
        return found

    @whole
    def suggest(self, face_ids: FaceIds, threshold: float | None = None
                ) -> dict[int, builtins.list[Candidate]]:
        """For stored faces: the people each most likely is (up to five, best first), from
        the faces people hold; for reviewing a cluster or an unassigned face."""
        limit = None if threshold is None else check_similarity("threshold", threshold)
        ids = face_id_list(face_ids)
        suggested = suggest_people(self.pool, ids, limit, self.settings.match_threshold,
                                   self.settings.ef_search)
        # a face no face has (deleted meanwhile) was left out of the answer, unsaid, where
        # every other verb on faces says it is gone (probe pyapi62)
        if missing := sorted(set(ids) - set(suggested)):
            raise NotFoundError(f"no face with id {_ids(missing)}", "face")
        return suggested

    @whole
    def search(self, photo: PhotoInput, top: int | None = None, threshold: float | None = None,
               min_quality: float | None = None
               ) -> tuple[SearchResult, builtins.list[builtins.list[PersonMatches]]]:
        """Search, then group each query face's matches by person, best person first; a
        person another face of the photo is more like goes after the others (PersonMatches
        taken_by says which face): one person is at most one face of a photo."""
        loaded = self._load(photo)
        result = search_photo(
            self.analyzer, self.pool, loaded,
            top=self.settings.top_k if top is None else top,
            threshold=self.threshold if threshold is None else threshold,
            ef_search=self.settings.ef_search, one_to_one=self.threshold,
            min_quality=self.settings.min_quality if min_quality is None else min_quality,
        )
        # the library's notices too, as Pgface.search gives them: a pack that has not
        # analysed every photo was said by search and not here (probe consistency33)
        result.notices = (photo_notices(loaded.source, loaded.warning)
                          + (self._library_notices() if self._library_notices else []))
        return result, group_photo_by_person([face.matches for face in result.faces])

    # Enrolment

    @whole
    def enrol(self, folder: str | Path, move: bool = False,
              progress: ProgressCallback | None = None) -> EnrolReport:
        """Index folder/<name>/*.jpg and put each photo's face in the person <name>.

        In a photo with several faces, the one most like the person's single-face photos is
        taken (the largest if there are none); such photos are listed in the report. A face
        another person holds by a human decision stays there unless `move` (report.left).
        """
        check_progress(progress)
        move = check_flag("move", move)
        report = EnrolReport()
        folders = []
        given: dict[str, str] = {}  # a name as stored -> its folder's name
        where = expand(one_path(folder, "folder"))
        # first: it says what is wrong with the folder itself
        found, unlisted = person_folders(where)
        report.failures += unlisted
        report.failures.extend(loose_photos(where))
        for person_folder, files in found:
            try:  # as a name typed is: spaces collapsed, NFC (macOS names folders NFD)
                text = _folder_name_text(person_folder.name)
                folders.append((person_folder, files, _clean_name(text)))
                given[folders[-1][2]] = text
            except PgfaceError as exc:  # not indexed either: its photos are nobody's yet
                report.failures.append(Failure(str(person_folder), f"not a name: {exc}"))
        report.index = Indexer(self.analyzer, self.pool, self.settings).index(
            [f for f, _, _ in folders], progress)
        with self._change("enrol", wait=True) as (conn, change):
            changed = 0
            enrolled: dict[str, set[int]] = {}
            # unnamed person -> the people their faces went to, how many each (emptied_into)
            went: dict[int, Counter[int]] = {}
            for person_folder, files, name in folders:
                try:
                    target = (self._named_to_give(conn, given[name]) or (None,))[0]
                except PersonConflict as exc:
                    # several people an older pgface named alike: this folder's failure, the
                    # others enrolled (the whole enrolment stopped, advised to "give one's id"
                    # where a folder's name is all there is: probe reprobe38)
                    report.failures.append(Failure(str(person_folder),
                                                   f"{exc}, then enrol again"))
                    continue
                chosen = enrol_faces(conn, self.model, files, report,
                                     self.settings.max_file_bytes, self.settings.read_timeout_s)
                held = [HeldFace(*h) for h in ps.held_faces(conn, chosen) if h[1] != target]
                if not move:
                    report.left.extend(held)
                    chosen = [f for f in chosen if f not in {h.face_id for h in held}]
                else:
                    report.moved.extend(held)
                if chosen:
                    target = target or ps.create_person(conn, name)
                    for owner in _unnamed_holders(conn, chosen, target):
                        went.setdefault(owner, Counter())[target] += 1
                    now = ps.assign_faces(conn, chosen, target, ps.USER)
                    if now:
                        ps.touch_people(conn, [target])
                    changed += now
                else:
                    now = 0
                change.involve(target, *(h.person_id for h in held))
                # two folders may be one person (the name in NFC and NFD, or in other letter
                # case, as a name typed reaches them): their faces add up, each once (the
                # same photo in both counted its face twice), under the person's name ("ZOË:
                # 1 face" and "Zoë: 2 faces" were said of one person, probe i18n37)
                if target is not None:
                    name = ps.get_person(conn, target)["name"]
                enrolled.setdefault(name, set()).update(chosen)
                report.people[name] = len(enrolled[name])
                report.new[name] = report.new.get(name, 0) + now
            if changed:
                # an unnamed person emptied by the enrolment: merged into whoever took most of
                # their faces, as "not this person" reads them (people_store.MERGES_SINCE)
                emptied = [[p, went[p].most_common(1)[0][0]]
                           for p in ps.delete_empty_unnamed(conn) if p in went]
                if emptied:
                    change.payload.update(emptied_into=emptied)
            change.discard = not changed  # enrolled again with nothing new: not recorded
            # the names under a key of their own: `people` holds the ids involved, which an
            # erase looks for (names there kept an erased person's name in the record)
            # the folder as paths are shown (`\xNN`): its name as Python holds it may have
            # lone surrogates (a byte that is not UTF-8, or any non-ASCII under an ASCII
            # locale), which PostgreSQL text and JSON cannot hold; the record failed to
            # commit and the enrolment with it, after its photos were indexed; absolute, as
            # paths are stored (`people enrol .` was recorded "from .", probe scripting)
            shown = readable(where)
            change.payload.update(folder=shown, enrolled=report.people,
                                  left=[h.face_id for h in report.left])
            given_to = sum(1 for n in report.new.values() if n)
            theirs = max(0, sum(report.people.values()) - changed)
            change.summary = (f"enrolled {counted(changed, 'face')} of "
                              f"{counted(given_to, 'person', 'people')} from {shown}"
                              + (f" ({counted(theirs, 'other face')} "
                                 f"{'was' if theirs == 1 else 'were'} theirs already)"
                                 if theirs else "")
                              + _held_summary("left", report.left)
                              + _held_summary("moved", report.moved))
        return report

    # Helpers

    @contextmanager
    def _change(self, kind: people_history.ChangeKind, undoable: bool = True, wait: bool = False
                ) -> Iterator[tuple[psycopg.Connection, people_history.Recording]]:
        """A recorded change, after those before it. `wait`: as long as they take (clustering
        and enrolment run for minutes themselves); else PeopleBusyError after BUSY_WAIT_S."""
        wait_s = None if wait else people_history.BUSY_WAIT_S
        self.last_change = None
        with people_history.recorded(self.pool, self.actor, kind, undoable, wait_s) as recorded:
            yield recorded
        _, recording = recorded
        if not recording.discard:
            self.last_change = recording.id
            self._add_up_face_counts()

    def _add_up_face_counts(self) -> None:
        """The kept face counts added up once enough changes are pending (people_store), after
        a change commits: in a transaction of its own, so its locks never hold up the change.
        Housekeeping: a failure here (the database gone since) is no failure of the change,
        and the next change or page adds them up."""
        with contextlib.suppress(psycopg.Error, DatabaseError), self.pool.connection() as conn:
            ps.add_up_face_counts(conn, ADD_UP_FACE_COUNTS_AT)

    @staticmethod
    def _check_expected_names(conn: psycopg.Connection, names: dict[int, str | None],
                              expected: Mapping[int, str | None] | None) -> None:
        """PersonConflict where a person of NAMES (id -> name now) is not named as EXPECTED."""
        if not expected:
            return
        strangers = sorted(set(expected) - set(names))
        if strangers:
            raise InvalidInputError(f"expected_names names person {strangers[0]}, who is not "
                                    f"one of the people merged")
        renamed = [(i, names[i]) for i, was in expected.items()
                   if not _as_shown(names[i], was)]
        if renamed:
            raise PersonConflict(
                ", ".join(_not_as_shown(conn, i, expected[i], now) for i, now in renamed)
                + ": not merged",
                {"renamed": [{"person_id": i, "name": now} for i, now in renamed]})

    @staticmethod
    def _merged_name(conn: psycopg.Connection, names: builtins.list[str | None],
                     chosen: str | None, merged: Sequence[int]) -> str | None:
        """The name a merge keeps: the chosen one, else the one name the people have."""
        if chosen is not None:
            given, chosen = chosen, _clean_name(chosen)
            taken = People._named_other_than(conn, given, set(merged))
            if taken:
                other = "a third person" if len(merged) == 2 else "another person"
                raise PersonError(f"{other} is named {quoted(taken[1])} (id {taken[0]})")
            return chosen
        named = list(dict.fromkeys(n for n in names if n is not None))
        if len(named) > 1:
            which = "both people have" if len(names) == 2 else "several of them have"
            raise PersonConflict(
                f"{which} names ({', '.join(quoted(n) for n in named)}): say which one the merged "
                f"person keeps (--name on the command line, \"name\" over HTTP, name= from Python)",
                {"names": named})
        return named[0] if named else None

    def _load(self, photo: PhotoInput) -> Photo:
        s = self.settings
        return load_photo(photo, None, s.max_file_bytes, s.max_pixels, s.read_timeout_s,
                          s.decode_keep_side)

    def _resolve(self, conn: psycopg.Connection, person: PersonRef) -> int:
        """A person id from an id or a name. A string of ASCII digits is an id (the API's own
        URLs carry ids: /api/people/12/faces), and a name only where no person has that id (a
        library named someone so before names of digits were refused)."""
        if not isinstance(person, str):
            if not is_whole_number(person):
                raise InvalidInputError(f"a person is an id (a whole number) or a name, not "
                                        f"{person!r:.40}")
            person = operator.index(person)  # NumPy's integers: ints from here on
        if isinstance(person, str):
            # ASCII digits only: str.isdigit() also takes '²' and '٣', which int() refuses
            digits = re.fullmatch(r"[0-9]+", person.strip()) is not None
            if digits and 0 < int(person) <= MAX_ID and ps.get_person(conn, int(person)):
                return int(person)
            found = self._by_name(conn, person)
            if found is not None:
                return found
            if not digits:
                raise NotFoundError(f"no person named {_quoted(person)}", "person")
            person = int(person)
        if not 0 < person <= MAX_ID or ps.get_person(conn, person) is None:
            raise NotFoundError(f"no person with id {person}", "person")
        return person

    @staticmethod
    def _by_name(conn: psycopg.Connection, name: str) -> int | None:
        """The id of the person a name reaches (People._named)."""
        found = People._named(conn, name)
        return found[0] if found else None

    @staticmethod
    def _named_other_than(conn: psycopg.Connection, name: str, own: Collection[int]
                          ) -> tuple[int, str] | None:
        """The person a name reaches (People._named) who is none of OWN (ids): of several
        people it reaches alike (stored by an older pgface), those of OWN are left out.
        Merging exactly two such people under the name they read as, or renaming one of them
        to it, was refused "give one's id" of ids given (probe reprobe38)."""
        try:
            found = People._named(conn, name)
        except PersonConflict as exc:
            others = [(a["person_id"], a["name"]) for a in exc.details.get("alike", [])
                      if a["person_id"] not in own]
            if len(others) > 1:  # "give one's id" of an id given (probe reprobe38b)
                raise _alike_to_merge(exc, others) from None
            return others[0] if others else None
        return found if found and found[0] not in own else None

    @staticmethod
    def _named_to_give(conn: psycopg.Connection, name: str) -> tuple[int, str] | None:
        """The person a name reaches (People._named) for giving that name to faces, where no
        id can be given: several people alike are said with what to do about them, not
        "give one's id" (probe reprobe38b: `people name Ng 3`)."""
        try:
            return People._named(conn, name)
        except PersonConflict as exc:
            raise _alike_to_merge(exc) from None

    @staticmethod
    def _named(conn: psycopg.Connection, name: str) -> tuple[int, str] | None:
        """The person a name reaches, (id, the name as stored): as given (a name stored by an
        older pgface, not NFC or with a format character in it: naming or enrolling with it
        made a second person whose name looked the same), then in the form a name is stored
        in, then in other letter case ("padded name" made a second person beside "Padded
        Name", without a word: probe http19), then a name an older pgface stored in a form
        no longer made ("ㅤAda"), taken in today's; PersonConflict naming them where several
        people have it so (kept from before). Other case as the database's lower() and
        Python's casefold both take it: "STRASSE" is not "Straße", nor a final sigma a sigma."""
        if not storable(name):  # a name PostgreSQL could not store names nobody
            return None
        form = name_form(name)
        found = ps.person_by_name(conn, name) or ps.person_by_name(conn, form)
        if found:
            return found["id"], found["name"]
        # a name stored in a form no longer made, in that form: before other letter case, as
        # the name stored so is this one as it reads ("José" reached a "josé" of today's
        # beside an older pgface's decomposed "José": probe reprobe37c)
        older = ps.people_named_in_another_form(conn)
        alike = [(i, n) for i, n in older if name_form(n) == form]
        how, give = ("as it reads (stored by an older pgface with characters that show "
                     "nothing or in another Unicode form)", "give one's id")
        if not alike:
            how, give = "in other letter case", "give one's name as it is written, or its id"
            alike = [(i, n) for i, n in ps.people_named_in_other_case(conn, form)
                     if n.casefold() == form.casefold()]
            alike += [(i, n) for i, n in older if name_form(n).casefold() == form.casefold()
                      and (i, n) not in alike]
        if len(alike) > 1:  # (kept from before): a third spelling made a third person
            raise _alike(form, how, alike, give)
        return alike[0] if alike else None

    def _person(self, conn: psycopg.Connection, person_id: int) -> Person:
        row = ps.get_person(conn, person_id)
        if row is None:
            raise NotFoundError(f"no person with id {person_id}", "person")
        summary = ps.person_summary(conn, person_id, self.model)
        return Person(person_id, row["name"], summary["faces"], summary["photos"], row["hidden"],
                      summary["cover_face_id"])

    def _check_faces(self, conn: psycopg.Connection, face_ids: Sequence[int]
                     ) -> dict[int, tuple[int, int]]:
        if not face_ids:
            raise PersonError("no face ids given")
        found = ps.existing_faces(conn, face_ids)
        missing = sorted(set(face_ids) - set(found))
        if missing:
            raise NotFoundError(f"no face with id {_ids(missing)}", "face")
        return found


def _check_shown_name(expected_name: object) -> None:
    """An expected_name argument: the name the caller showed, None for unnamed, or unchecked
    (compared in the stored form: _as_shown)."""
    if not isinstance(expected_name, str | _Unchecked | None):
        raise InvalidInputError(f"expected_name: the name the caller showed (None: unnamed), "
                                f"not {kind_of(expected_name)}")


def _as_shown(now: str | None, shown: str | None) -> bool:
    """Whether a person named NOW is as the caller showed them (SHOWN: None for unnamed), both
    in the stored form: a name an older pgface stored otherwise ("ㅤAda", "José" in NFD),
    shown and given back as it is, was refused as "named 'ㅤAda', not 'ㅤAda'" (probe
    reprobe37b)."""
    if now is None or shown is None:
        return now is shown
    return name_form(now) == name_form(shown)


def _not_as_shown(conn: psycopg.Connection, person_id: int, shown: str | None,
                  now: str | None) -> str:
    """Why a person is not as the caller showed them (SHOWN: the name shown, None: unnamed):
    renamed meanwhile where one of the latest changes took that name from them; else as it
    is ("'Nobody' was renamed meanwhile" was said of a name the person never had)."""
    if people_history.was_named(conn, person_id, shown):
        return f"{_label(person_id, shown)} was renamed meanwhile (now {_label(person_id, now)})"
    is_now = f"named {quoted(now)}" if now is not None else "unnamed"
    return (f"person {person_id} is {is_now}, not "
            f"{quoted(shown) if shown is not None else 'unnamed'}")


def _an_id(value: object) -> bool:
    """Whether VALUE can be a row's id (a bigint, 0 or more)."""
    return is_whole_number(value) and 0 <= value <= MAX_ID


def _kind_of_place(after: object) -> str:
    """What an `after` that names no place is, as an error says it."""
    if isinstance(after, Person | PersonPhoto):
        return f"a {type(after).__name__} of fields no page returns ({after!r:.120})"
    return kind_of(after)


def _check_ids_to(name: str, given: object, what: str, value_fits: Callable[[object], bool]
                  ) -> None:
    """An argument that maps ids to values (expected_names, expected_held): None, or a mapping
    of whole numbers to values VALUE_FITS takes; else InvalidInputError naming it."""
    if given is None:
        return
    if not isinstance(given, Mapping):
        raise InvalidInputError(f"{name}: {what}, as a dict, not {kind_of(given)}")
    for key, value in given.items():
        if not is_whole_number(key) or not value_fits(value):
            raise InvalidInputError(f"{name}: {what}, not {key!r:.40}: {value!r:.40}")


def _reached_elsewhere(conn: psycopg.Connection, name: str, expected_id: int,
                       reached: tuple[int, str] | None) -> PersonConflict:
    """A naming into the person EXPECTED_ID, whose name NAME reaches REACHED by now (another
    person, or nobody: no one to move the faces into, and a new person would take them).
    "Meanwhile" only where it was so: a renaming the history holds, an id a person had (an
    id never given was "merged or deleted meanwhile", a name the person never had was
    "renamed meanwhile": probe hostile62)."""
    row = ps.get_person(conn, expected_id)  # an id in range: name_faces checked it
    now = None if row is None else {"person_id": expected_id, "name": row["name"]}
    if row is None:
        what = (f"person {expected_id} was merged or deleted meanwhile"
                if ps.person_id_given(conn, expected_id) else f"no person has id {expected_id}")
    elif people_history.was_named(conn, expected_id, name):
        is_now = "unnamed" if row["name"] is None else quoted(row["name"])
        what = f"person {expected_id} is {is_now} now (renamed meanwhile)"
    else:
        is_now = "unnamed" if row["name"] is None else f"named {quoted(row['name'])}"
        what = f"person {expected_id} is {is_now}, not {quoted(name)}"
    elsewhere = f"; {quoted(name)} names person {reached[0]} now" if reached else ""
    return PersonConflict(f"not named {quoted(name)}: {what}{elsewhere}; nothing was named",
                          {"expected_now": now})


def _held_conflict(name: str, held: Sequence[HeldFace], meanwhile: bool = False
                   ) -> PersonConflict:
    people: dict[int, dict] = {}
    for h in held:
        entry = people.setdefault(h.person_id, {"person_id": h.person_id, "name": h.name,
                                                "face_ids": []})
        entry["face_ids"].append(h.face_id)
    who = ", ".join(f"{_label(p['person_id'], p['name'])} ({len(p['face_ids'])})"
                    for p in people.values())
    if meanwhile:
        return PersonConflict(
            f"naming these faces {quoted(name)}: the faces people placed changed since the move "
            f"was confirmed (now held by: {who}); nothing was named", {
                "affected": list(people.values()), "meanwhile": True})
    return PersonConflict(
        f"naming these faces {quoted(name)} would move faces that people placed in: {who}; "
        f"confirm the move (--move on the command line, \"move\": true over HTTP, move=True "
        f"from Python)",
        {"affected": list(people.values())})


def _held_summary(verb: str, held: Sequence[HeldFace]) -> str:
    if not held:
        return ""
    people = sorted({h.label for h in held})
    return f"; {verb} {counted(len(held), 'face')} of {', '.join(people)}"


def quoted(name: str) -> str:
    """A person's name in a message or a change's summary, in quotes and as it is: repr()
    showed 'O\\'Brien' and 'back\\\\slash' (a name holds no control character to escape)."""
    return f"'{name}'"


def _label(person_id: int, name: str | None) -> str:
    return quoted(name) if name is not None else f"person {person_id} (unnamed)"


def _alike(form: str, how: str, alike: builtins.list[tuple[int, str]], give: str
           ) -> PersonConflict:
    """Several people (ALIKE: id, name) that the name FORM reaches HOW; GIVE: what to do."""
    conflict = PersonConflict(
        f"{len(alike)} people are named {quoted(form)} {how} ("
        + ", ".join(f"{quoted(n)} (id {i})" for i, n in alike) + f"): {give}",
        {"alike": [{"person_id": i, "name": n} for i, n in alike]})
    conflict.reading = (form, how)  # type: ignore[attr-defined]  # _alike_to_merge's
    return conflict


def _alike_to_merge(conflict: PersonConflict,
                    alike: builtins.list[tuple[int, str]] | None = None) -> PersonConflict:
    """CONFLICT, several people a name reaches alike (People._named), said with what to do
    where no id can be given, or one was: merge them, or rename all but one. ALIKE: those of
    them to say (all, unless given)."""
    if alike is None:
        alike = [(a["person_id"], a["name"]) for a in conflict.details["alike"]]
    form = conflict.reading[0]  # type: ignore[attr-defined]
    # --name: people with names are merged under the one given (without it, the merge advised
    # was refused, probe reprobe39); the name as it reads, which they all read as
    return _alike(*conflict.reading, alike,  # type: ignore[attr-defined]
                  f"merge them (pgface people merge {' '.join(str(i) for i, _ in alike)} "
                  f"--name {shlex.quote(form)}) or rename all but one")


def delete_uploads(paths: Sequence[str], folder: Path) -> tuple[list[str], list[str]]:
    """Delete those of these photo files that pgface keeps (under `folder`); never others.
    Returns (deleted, "path: reason" of those that could not be)."""
    deleted, failed = [], []
    root = folder.resolve()
    for path in paths:
        file = Path(path)
        if not file.resolve().is_relative_to(root):
            continue
        try:
            file.unlink(missing_ok=True)
            deleted.append(path)
        except OSError as exc:  # the rows are gone already: say which file stays, go on
            failed.append(f"{path}: {exc.strerror or exc}")
    return deleted, failed


# Letters no decomposition takes to the Latin letter a reader files them under (casefolded)
_READ_AS = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i",
                          "ŧ": "t", "ŀ": "l", "æ": "ae", "œ": "oe", "þ": "th", "ŋ": "n"})


def _reading_form(name: str) -> str:
    """NAME as a reader orders it: decomposed (NFKD), its combining marks dropped, casefolded,
    and the Latin letters with a stroke or ligatures no decomposition reaches read as their
    letters (_READ_AS: "Łukasz" and "Øyvind" came after "zoë", probe reprobe40); "Émile" is
    "emile", "Straße" "strasse", "Æsa" "aesa"."""
    return "".join(c for c in unicodedata.normalize("NFKD", name)
                   if not unicodedata.combining(c)).casefold().translate(_READ_AS)


def _list_order(person: Person) -> tuple[bool, str, str, int]:
    """Where PERSON stands in list(): named by their name's reading form, then by the name
    itself and id (names that read the same keep one order), unnamed last by id. Sorted here,
    not by the database: its collation, C for the embedded server (any for another), put
    every lower-case name after every capital and "Émile" after "zoë"."""
    return (person.name is None, _reading_form(person.name or ""), person.name or "",
            person.id)


def _places(conn: psycopg.Connection, rows: Sequence[dict], key: str
            ) -> dict[int, store.PhotoPlace]:
    """Where the photos of these rows (their ids under KEY, their `path` the photo's newest
    recorded) are now, as a search's matches say (store.photo_places): a path of theirs whose
    file exists, else the last known one, missing. photos.path is the newest path recorded,
    whose file may be gone while another is there: a copy deleted without a prune named the
    gone copy where the photo was still at its first path (probe living42). A page's photos
    only, each path's file looked at once."""
    return store.photo_places(conn, {r[key]: r["path"] for r in rows})


def _person_faces(conn: psycopg.Connection, rows: Sequence[dict]) -> list[PersonFace]:
    places = _places(conn, rows, "photo_id")
    # boxes to a tenth of a pixel, as search and identify give them (float4's digits past
    # that are noise: 85.882034)
    return [with_name_bytes(PersonFace(r["id"], r["photo_id"], places[r["photo_id"]].path,
                                       [round(float(v), 1) for v in r["bbox"]],
                                       r["assigned_by"], places[r["photo_id"]].missing),
                            places[r["photo_id"]].raw) for r in rows]


def _quoted(value: object) -> str:
    """A name for a message, quoted: bytes that are not UTF-8 as `\\xNN`, as paths show them
    (repr wrote a name typed with byte 0xff as '\\udcff'). One longer than any name may be
    (MAX_NAME_CHARS), which no person can have, cut short: a 60,000-character reference was
    echoed whole (probe hostile62)."""
    if isinstance(value, str) and len(value) > MAX_NAME_CHARS:
        return f"{_quoted(value[:40])} and {len(value) - 40:,} characters more"
    if isinstance(value, str):
        try:
            return f"'{readable(value)}'"
        except UnicodeEncodeError:  # a lone surrogate that no file name holds
            pass
    return repr(value)


# Longer is no one's name, and a name's unique index refuses rows past about 2,700 bytes (a
# 3,000-character name came back as PostgreSQL's "index row requires 9016 bytes").
MAX_NAME_CHARS = 200


def _older_forms_holding(conn: psycopg.Connection, part: str | None) -> builtins.list[int]:
    """The people whose names an older pgface stored in a form no longer made, that hold PART
    (a _name_part) as they read: the database folds the name as stored, and "José" typed
    found no decomposed "José Martí" where `people show` reached it (probe reprobe37c)."""
    if part is None:
        return []
    folded = part.casefold()
    return [i for i, n in ps.people_named_in_another_form(conn)
            if folded in name_form(n).casefold()]


def _name_part(text: str) -> str:
    """Text to find in names, in the form names are stored in (NFC, spaces collapsed, format
    characters dropped): "José" typed on macOS (NFD) finds the José named elsewhere."""
    if not isinstance(text, str):
        raise InvalidInputError(f"name_has: the text to find in names, not {kind_of(text)}")
    if not storable(text):
        raise InvalidInputError("name_has: no name holds a NUL or a lone surrogate")
    part = name_form(text)
    if not part:
        raise InvalidInputError("name_has: nothing to find (only spaces or invisible "
                                "characters)")
    return part


def _folder_name_text(name: str) -> str:
    """A folder's name as the text its bytes are in UTF-8, whatever the locale: under an ASCII
    one (LC_ALL=C, PYTHONUTF8=0) Python holds "Zoë" as 'Zo\\udcc3\\udcab', refused as
    invalid Unicode, and the refusal was an "unexpected UnicodeEncodeError" (probe cli31).
    Bytes that are not UTF-8 stay as they are: no name, refused as such."""
    try:
        return os.fsencode(name).decode("utf-8")
    except (UnicodeError, ValueError):
        return name


# room for the HTTP API's "api:" before a key's name of at most api_keys.MAX_KEY_NAME_CHARS
MAX_ACTOR_CHARS = 300


def _checked_actor(actor: str) -> str:
    """ACTOR as given, or refused saying why: bytes were recorded as PostgreSQL's hex form of
    them, a number as its digits, a newline or a terminal's colour code as it was (shown so by
    `pgface people history`), a NUL was the database's error, and "" became the default."""
    if not isinstance(actor, str):
        raise InvalidInputError(f"an actor is text ('app:alice'), not {type(actor).__name__} "
                                f"{actor!r:.40}")
    _refuse_control_characters("an actor", actor)
    if not actor.strip():
        raise InvalidInputError(f"an actor cannot be blank ({actor!r}): say who makes the "
                                f"changes ('app:alice')")
    if len(actor) > MAX_ACTOR_CHARS:
        raise InvalidInputError(f"an actor is at most {MAX_ACTOR_CHARS} characters, not "
                                f"{len(actor):,}: {actor[:40]!r}...")
    return actor


def _refuse_control_characters(what: str, text: str) -> None:
    """InvalidInputError where TEXT holds a control character or what PostgreSQL cannot store
    (a NUL, a lone surrogate), WHAT naming it."""
    if not storable(text) or any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidInputError(f"{what} cannot contain control characters or invalid "
                                f"Unicode: '{refused_text(text)}'")


def _clean_name(name: str) -> str:
    """NAME in its stored form (name_form), or refused saying why."""
    if not isinstance(name, str):  # None or a number from a caller's data: say so by name
        raise InvalidInputError(f"a person's name is text, not {type(name).__name__} "
                                f"{name!r:.40}")
    spaced = " ".join(name.split()) if storable(name) else name
    if not spaced:
        raise InvalidInputError("a person's name cannot be empty")
    # the name as given: a newline or tab is a control character too, not a space to collapse
    # (a folder "New<newline>Line" was enrolled as "New Line"); and before the blank check, a
    # byte that is not UTF-8 alone was "blank", not what it is
    _refuse_control_characters("a person's name", name)
    if all(map(shows_nothing, spaced)):
        raise InvalidInputError(f"a person's name cannot be blank: {name!a} has no character "
                                f"that shows")
    cleaned = name_form(name)
    if re.fullmatch(r"[0-9]+", cleaned):
        raise InvalidInputError(f"a person's name cannot be digits alone ({cleaned!r}): it "
                                f"would read as a person's id")
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInputError(f"a person's name is at most {MAX_NAME_CHARS} characters, not "
                                f"{len(cleaned):,}: {cleaned[:40]!r}...")
    return cleaned


# A page's largest limit and offset: the HTTP API's bound, well inside PostgreSQL's bigint.
MAX_PAGE = 2**62


def _check_page(limit: int, offset: int) -> None:
    """A page's bounds, refused by name (a negative one came back as PostgreSQL's "LIMIT must
    not be negative", one past a bigint as "bigint out of range")."""
    whole = is_whole_number(limit) and is_whole_number(offset)
    if not (whole and 0 <= limit <= MAX_PAGE and 0 <= offset <= MAX_PAGE):
        raise InvalidInputError(f"a page's limit and offset are 0 to {MAX_PAGE:,}, not "
                                f"limit={limit!r}, offset={offset!r}")


# A message names this many ids of a list, and counts the rest: `people remove 1 $(seq 1 3000)`
# answered one 16 KB line (probe reprobe58).
SHOWN_IDS = 10


def _twins_held(conn: psycopg.Connection, face_ids: Sequence[int], person_id: int
                ) -> list[int]:
    """The same faces other packs found at the places of FACE_IDS, where PERSON_ID holds
    them: they go where a split or a removal sends the faces."""
    return [t for _, t, owner in ps.twins(conn, face_ids, ps.PACK_FACE_OVERLAP)
            if owner == person_id]


def _unnamed_holders(conn: psycopg.Connection, face_ids: Sequence[int], target: int | None
                     ) -> list[int]:
    """The unnamed person holding each of these faces that one other than TARGET holds: the
    people a naming or an enrolment taking them may empty (emptied_into)."""
    return [owner for owner, name, _ in ps.people_of_faces(conn, face_ids).values()
            if name is None and owner != target]


def _ids(ids: Sequence[int]) -> str:
    """The ids for a message: the first SHOWN_IDS, then how many more."""
    shown = ", ".join(str(i) for i in ids[:SHOWN_IDS])
    more = len(ids) - SHOWN_IDS
    return f"{shown} and {more:,} more" if more > 0 else shown
