"""The record of people changes: who made each, what it was, when, and how to undo the last.

A change runs in one transaction. Its before-images (each touched face's person, assigned_by
and clustered_at; each touched person row) are written by database triggers (migration 0006),
so undo writes back exactly what was there, whatever statements the change ran.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Literal, TypeVar, get_args

import psycopg
from psycopg_pool import ConnectionPool

from pgface.db import people_history as hs
from pgface.errors import PeopleBusyError, PgfaceError

_T = TypeVar("_T")

# What a recorded change was (people_changes.kind). `keep`: an indexing run gave an edited
# photo's faces the people their former selves had; recorded, never undone.
ChangeKind = Literal["name", "rename", "merge", "split", "remove", "hide", "unhide", "delete",
                     "erase", "cluster", "enrol", "keep"]
CHANGE_KINDS: frozenset[str] = frozenset(get_args(ChangeKind))

# Only the latest changes can be undone (one after another); older before-images are dropped.
UNDO_DEPTH = 100
# How long a change waits for the one before it (a full clustering of a large library holds
# the people for minutes): long enough for any change a person makes, short enough that a
# click on the people page is answered rather than left hanging.
BUSY_WAIT_S = 10.0


class UndoError(PgfaceError):
    """There is nothing undo can take back: no change, an erase, or a change too old."""


@dataclass
class Change:
    id: int
    at: datetime
    actor: str  # 'cli:<OS user>', 'api:<key name>' (or 'api' on an open server), 'python:<user>'
    kind: ChangeKind
    summary: str
    payload: dict
    undoable: bool
    undone_at: datetime | None = None
    undone_by: str | None = None

    def to_dict(self) -> dict:
        return {**asdict(self), "at": self.at.isoformat(),
                "undone_at": self.undone_at.isoformat() if self.undone_at else None}


@dataclass
class Recording:
    """What a change says about itself; filled in by the operation while it runs."""

    id: int
    summary: str = ""
    payload: dict = field(default_factory=dict)
    discard: bool = False  # the change changed nothing: no record of it

    def involve(self, *person_ids: int | None) -> None:
        """Person ids the change is about: an erase redacts the changes that name its person."""
        people = self.payload.setdefault("people", [])
        people.extend(p for p in person_ids if p is not None and p not in people)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME: a container's bare uid
        return str(os.getuid())


def default_actor(interface: str = "python") -> str:
    return f"{interface}:{os_user()}"


@contextmanager
def recorded(pool: ConnectionPool, actor: str, kind: ChangeKind, undoable: bool = True,
             wait_s: float | None = BUSY_WAIT_S
             ) -> Iterator[tuple[psycopg.Connection, Recording]]:
    """One transaction for one change, after the changes before it (PeopleBusyError when one
    holds the people longer than WAIT_S; None waits as long as it takes); the record commits
    with the change, or neither does."""
    with pool.connection() as conn, conn.transaction():
        _lock(conn, wait_s)
        with recorded_in(conn, actor, kind, undoable) as recording:
            yield conn, recording


def hold_people(conn: psycopg.Connection, wait_s: float | None = None) -> None:
    """In the caller's transaction, wait for the people changes under way to end and hold new
    ones off until it ends (a remove or prune, before it locks a row: people_first).
    wait_s: PeopleBusyError after that many seconds, the transaction whole for the caller to
    roll back (an HTTP request, which held one of the server's pool connections while it
    waited: a few deletes during a clustering run left none for the others); None waits as
    long as it takes (the CLI, the Python API, background jobs)."""
    _lock(conn, wait_s)


class PeopleInUse(Exception):  # noqa: N818 - a signal to people_first, never shown
    """A people change holds the people while a transaction that has written rows wants them."""


def hold_people_now(conn: psycopg.Connection) -> None:
    """In the caller's transaction, hold the people before reading whose faces are whose, so
    that no change moves them between the read and the write (a merge that landed there lost
    the name an edited photo kept: it went to the person the merge deleted); PeopleInUse when
    a change holds them. The transaction may hold rows a change is waiting for (an erase, for
    the photo an indexing batch recorded a path of): waiting here would deadlock."""
    if not hs.lock_people(conn, 0):
        raise PeopleInUse


def people_first(pool: ConnectionPool, work: Callable[[psycopg.Connection], _T],
                 wait_s: float | None = None) -> _T:
    """WORK(conn) in a transaction of its own; where it met a people change (PeopleInUse, from
    hold_people_now), rolled back and run again holding the people from the start, as a
    change does, after the changes under way (a clustering run holds them for minutes). WORK
    may run twice: it changes nothing outside its transaction. wait_s: how long to wait for
    them, then PeopleBusyError with nothing changed (hold_people); None: as long as it takes."""
    try:
        with pool.connection() as conn, conn.transaction():
            return work(conn)
    except PeopleInUse:
        pass
    with pool.connection() as conn, conn.transaction():
        hold_people(conn, wait_s)
        return work(conn)


def _lock(conn: psycopg.Connection, wait_s: float | None) -> None:
    if not hs.lock_people(conn, wait_s):
        raise PeopleBusyError(
            f"another change to people (a clustering run, most likely) is still running after "
            f"{wait_s:g} s; nothing was changed: try again when it ends")


@contextmanager
def recorded_in(conn: psycopg.Connection, actor: str, kind: ChangeKind, undoable: bool = True
                ) -> Iterator[Recording]:
    """A change recorded in the caller's transaction (an indexing batch's, where an edited
    photo keeps its people); the record commits with the transaction, or neither does."""
    if kind not in CHANGE_KINDS:  # the history's readers (the HTTP API's schema) know these
        raise ValueError(f"a people change of unknown kind {kind!r}")
    recording = Recording(hs.start_change(conn, actor, kind, undoable))
    yield recording
    if recording.discard:
        hs.discard_change(conn, recording.id)
    else:
        hs.finish_change(conn, recording.id, recording.summary, recording.payload, UNDO_DEPTH)


def history(pool: ConnectionPool, limit: int = 20, offset: int = 0) -> list[Change]:
    """The latest changes, newest first (`offset` of them passed over)."""
    with pool.connection() as conn:
        return [Change(**row) for row in hs.history(conn, limit, offset)]


def count(pool: ConnectionPool) -> int:
    """How many changes the history holds."""
    with pool.connection() as conn:
        return hs.count_changes(conn)


def undo(pool: ConnectionPool, actor: str, change_id: int | None = None) -> Change:
    """Undo the latest change not undone yet, exactly; returns it (now marked undone).

    The indexer's `keep` changes (edited, found-again and other packs' photos given their
    people) are passed over: the faces it gave people to are new rows, which no earlier change
    touched, and what it gave them from (an edited photo's former faces, the people kept for a
    forgotten photo) is gone once it ran, so undoing one took those names off for good (a
    person renamed, moved with their folder and found again was left with no face), and
    stood between a user and the change they meant to undo.

    change_id: undo only that change, which must still be the latest (UndoError otherwise):
    what an Undo offered beside a change says, so that it never takes back another client's
    change, or a scheduled clustering, made since."""
    with pool.connection() as conn, conn.transaction():
        _lock(conn, BUSY_WAIT_S)
        row = hs.last_change(conn)
        if change_id is not None and (row is None or change_id != row["id"]):
            asked = hs.get_change(conn, change_id)
            # any id above the latest was "undone already": one never made, or a keep
            if asked is None:
                raise UndoError(f"there is no change {change_id} (nothing was undone)")
            if asked["undone_at"] is not None:
                raise UndoError(f"change {change_id} was undone already")
            if asked["kind"] == "keep":
                raise UndoError(f"change {change_id} ({asked['summary']}) is the indexer's, "
                                f"which undo passes over; nothing was undone")
        if row is None:
            raise UndoError("there is no change to undo")
        change = Change(**row)
        if change_id is not None and change_id != change.id:
            raise UndoError(f"change {change_id} is not the latest change any more: "
                            f"{change.summary} (change {change.id}, by {change.actor}) came "
                            f"after it; nothing was undone")
        if change.kind == "erase":
            raise UndoError(f"the last change ({change.id}, {change.summary}) is an erase, and "
                            f"an erase cannot be undone: what it deleted is gone")
        if not change.undoable:
            raise UndoError(f"the last change ({change.id}, {change.summary}) is older than "
                            f"the {UNDO_DEPTH} changes that can be undone")
        change.undone_at = hs.undo_change(conn, change.id, actor)
        change.undone_by = actor
        return change


def carry_to_successors(conn: psycopg.Connection, keep_id: int,
                        successors: list[tuple[int, int | None, str, int]]) -> None:
    """Faces given the person of a former self by the keep change keep_id take the former
    self's before-images: an undo puts the person of before on the face there is now.
    successors: (face id, person id given, 'faces' or 'forgotten_faces', former row id)."""
    hs.carry_before_images(conn, keep_id, successors)


def forget(conn: psycopg.Connection, erase_id: int, person_id: int, name: str | None) -> None:
    """An erase's share of the record: nothing before it stays undoable, and the changes that
    involved the erased person (NAME now) keep no name, face or summary of theirs."""
    hs.forget_person(conn, erase_id, person_id, name)


def was_named(conn: psycopg.Connection, person_id: int, name: str | None) -> bool:
    """Whether one of the changes undo can still take back found the person named NAME (None:
    unnamed) and changed that: what a "renamed meanwhile" rests on."""
    return hs.was_named(conn, person_id, name)
