"""The record of people changes and the before-images undo writes back. SQL as constants.

The before-images are written by the triggers of migration 0006 while a change's id is set in
the transaction-local setting pgface.people_change.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from pgface.db.connection import lock_within

START_CHANGE = "INSERT INTO people_changes (actor, kind, undoable) VALUES (%s, %s, %s) RETURNING id"
SET_CURRENT = "SELECT set_config('pgface.people_change', %s, true)"
# One change to people at a time: two namings of the same new name would both create the
# person (the second then breaks the unique name), two merges the reverse of each other would
# each move faces into the person the other deletes. Taken before anything is read, so each
# change reads what the one before it committed. Keyed by the library's schema (the first of
# the search path): libraries in other schemas of the database do not wait for it.
PEOPLE_LOCK = ("SELECT pg_advisory_xact_lock("
               "hashtext('pgface.people.changes.' || current_schema()))")
DISCARD_CHANGE = "DELETE FROM people_changes WHERE id = %s"
FINISH_CHANGE = "UPDATE people_changes SET summary = %s, payload = %s WHERE id = %s"
HISTORY = """
SELECT c.id, c.at, c.actor, c.kind, c.summary, c.payload, c.undoable, c.undone_at, c.undone_by
FROM people_changes c ORDER BY c.id DESC LIMIT %s OFFSET %s
"""
COUNT_CHANGES = "SELECT count(*) FROM people_changes"
# The change undo would take back: the latest one not undone yet.
# The indexer's keep changes are passed over (people_history.undo).
LAST_CHANGE = """
SELECT id, at, actor, kind, summary, payload, undoable, undone_at, undone_by
FROM people_changes WHERE undone_at IS NULL AND kind <> 'keep' ORDER BY id DESC LIMIT 1
"""
GET_CHANGE = """
SELECT id, at, actor, kind, summary, payload, undoable, undone_at, undone_by
FROM people_changes WHERE id = %s
"""
MARK_UNDONE = """
UPDATE people_changes SET undone_at = now(), undone_by = %s WHERE id = %s RETURNING undone_at
"""
# Undo waits for the changes in flight (each holds ROW EXCLUSIVE from its first insert) and
# holds new ones back, so "the latest change" stays the latest while it is undone; the lock
# conflicts with itself, so two undos never take back the same change.
UNDO_LOCK = "LOCK TABLE people_changes IN SHARE ROW EXCLUSIVE MODE"
# Taken before UNDO_LOCK: the kept face counts, which the undo's moves of faces write. An
# indexing batch that starts a pack, or analyses a photo another pack has faces of, locks them
# (migration 0018) and then records its `keep` change in people_changes: an undo that held
# UNDO_LOCK first waited for that batch while the batch waited for it (PostgreSQL failed one,
# "deadlock detected"). In this order the undo waits for the batch to commit.
COUNTS_BEFORE_UNDO = "LOCK TABLE person_face_counts IN ROW EXCLUSIVE MODE"

# Undo, in this order: free the names of every person row the change touched (so restoring
# one never collides with another), write back the people rows as they were (re-creating the
# deleted ones with their ids), write back the faces and the people kept for forgotten photos,
# then delete the people it created.
FREE_NAMES = """
UPDATE people SET name = NULL WHERE id IN (
    SELECT row_id FROM people_change_rows WHERE change_id = %s AND tbl = 'people')
AND name IS NOT NULL
"""
RESTORE_PEOPLE = """
INSERT INTO people (id, name, created_at, updated_at, hidden) OVERRIDING SYSTEM VALUE
SELECT r.row_id, r.before->>'name', (r.before->>'created_at')::timestamptz,
       (r.before->>'updated_at')::timestamptz, coalesce((r.before->>'hidden')::boolean, false)
FROM people_change_rows r WHERE r.change_id = %s AND r.tbl = 'people' AND r.before IS NOT NULL
ON CONFLICT (id) DO UPDATE SET name = excluded.name, created_at = excluded.created_at,
                               updated_at = excluded.updated_at, hidden = excluded.hidden
"""
RESTORE_FACES = """
UPDATE faces f SET person_id = (r.before->>'person_id')::bigint,
                   assigned_by = r.before->>'assigned_by',
                   clustered_at = (r.before->>'clustered_at')::timestamptz
FROM people_change_rows r
WHERE r.change_id = %s AND r.tbl = 'faces' AND f.id = r.row_id
"""
# A forgotten photo's content found again since has its people on its faces, and nothing kept.
# A row that waited at its path (migration 0028) waits again, for the photo it waited for
# where that is still there (else for nothing: kept by the content's hash). A before-image
# with no person is of a face nobody held before the change (REMEMBER_PEOPLE moved it here):
# what is kept for it now goes.
RESTORE_FORGOTTEN = """
INSERT INTO forgotten_faces (id, sha256, model, bbox, person_id, assigned_by, forgotten_at,
                             embedding, waiting_for)
OVERRIDING SYSTEM VALUE
SELECT r.row_id, decode(substr(r.before->>'sha256', 3), 'hex'), r.before->>'model',
       ARRAY(SELECT jsonb_array_elements_text(r.before->'bbox')::real),
       (r.before->>'person_id')::bigint, r.before->>'assigned_by',
       (r.before->>'forgotten_at')::timestamptz, (r.before->>'embedding')::vector,
       (SELECT ph.id FROM photos ph WHERE ph.id = (r.before->>'waiting_for')::bigint)
FROM people_change_rows r
WHERE r.change_id = %s AND r.tbl = 'forgotten_faces' AND r.before->>'person_id' IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM photos ph
                  WHERE ph.sha256 = decode(substr(r.before->>'sha256', 3), 'hex'))
ON CONFLICT (id) DO UPDATE SET person_id = excluded.person_id, assigned_by = excluded.assigned_by
"""
# ... unless another change that can still be undone has before-images of it (a deletion's,
# which gives the face its person back): then it stays, holding nobody, to carry them, as a
# photo forgotten with such a face keeps one (migration 0016). Deleted, the photo found again
# came back with nothing to carry, and undoing the deletion gave the face nobody.
RELEASE_FORGOTTEN_UNHELD = """
UPDATE forgotten_faces ff SET person_id = NULL, assigned_by = NULL
WHERE ff.id IN (SELECT row_id FROM people_change_rows
                WHERE change_id = %(change)s AND tbl = 'forgotten_faces'
                  AND before->>'person_id' IS NULL)
  AND EXISTS (SELECT 1 FROM people_change_rows o
              WHERE o.tbl = 'forgotten_faces' AND o.row_id = ff.id
                AND o.change_id <> %(change)s)
"""
DELETE_FORGOTTEN_UNHELD = """
DELETE FROM forgotten_faces ff
WHERE ff.id IN (SELECT row_id FROM people_change_rows
                WHERE change_id = %(change)s AND tbl = 'forgotten_faces'
                  AND before->>'person_id' IS NULL)
  AND NOT EXISTS (SELECT 1 FROM people_change_rows o
                  WHERE o.tbl = 'forgotten_faces' AND o.row_id = ff.id
                    AND o.change_id <> %(change)s)
"""
# Faces given the person of a former self (an edited photo's face, another pack's face of the
# photo, what was kept for a photo forgotten and found again: people_store.KeptFace) take that
# former self's before-images of the changes that can still be undone: undoing one of them
# then puts back the person the face had before it, on the face there is now. Only faces that
# hold the person they were given (another writer may have been first), or nobody where the
# former self had nobody (it carried before-images only).
CARRY_BEFORE_IMAGES = """
INSERT INTO people_change_rows (change_id, tbl, row_id, before)
SELECT r.change_id, 'faces', k.face_id,
       CASE r.tbl WHEN 'faces' THEN r.before
            ELSE jsonb_build_object('person_id', r.before->'person_id',
                                    'assigned_by', r.before->'assigned_by',
                                    'clustered_at', NULL) END
FROM unnest(%(faces)s::bigint[], %(people)s::bigint[], %(tbls)s::text[], %(formers)s::bigint[])
     AS k(face_id, person_id, tbl, former_id)
JOIN faces f ON f.id = k.face_id AND f.person_id IS NOT DISTINCT FROM k.person_id
JOIN people_change_rows r ON r.tbl = k.tbl AND r.row_id = k.former_id
WHERE r.change_id <> %(keep)s
ON CONFLICT DO NOTHING
"""
DELETE_CREATED_PEOPLE = """
DELETE FROM people WHERE id IN (
    SELECT row_id FROM people_change_rows
    WHERE change_id = %s AND tbl = 'people' AND before IS NULL)
"""
FORGET_ROWS = "DELETE FROM people_change_rows WHERE change_id = %s"

# Only the latest changes can be undone, one by one: older before-images are dropped.
# Before-images serve undo alone: a change that cannot be undone (the indexer's keep, an
# erase) keeps none (they were kept for ever, one row a face). So every row here is of a
# change that can still be undone (or of the one running), which the queries above rely on:
# sealed changes lose theirs (PRUNE, FORGET_ROWS_BEFORE), an undone one its (FORGET_ROWS).
FORGET_ROWS_OF_FINAL = """
DELETE FROM people_change_rows
WHERE change_id = %(change)s AND NOT (SELECT undoable FROM people_changes WHERE id = %(change)s)
"""
PRUNE = """
WITH old AS (
    SELECT id FROM people_changes WHERE undoable AND undone_at IS NULL
    ORDER BY id DESC OFFSET %s
), sealed AS (
    UPDATE people_changes SET undoable = false WHERE id IN (SELECT id FROM old)
)
DELETE FROM people_change_rows WHERE change_id IN (SELECT id FROM old)
"""

# Whether a change that can still be undone found the person under this name (None: unnamed)
# and changed it: the before-images, looked up by their key, of the last UNDO_DEPTH changes.
WAS_NAMED = """
SELECT EXISTS (
    SELECT FROM people_changes c
    JOIN people_change_rows r ON r.change_id = c.id AND r.tbl = 'people' AND r.row_id = %(person)s
    WHERE c.undoable AND c.undone_at IS NULL AND r.before IS NOT NULL
      AND r.before->'name' = coalesce(to_jsonb(%(name)s::text), 'null'::jsonb))
"""

# Erasure: what the record holds of the erased person goes, and nothing before it is undoable.
SEAL_BEFORE = "UPDATE people_changes SET undoable = false WHERE id < %s AND undoable"
FORGET_ROWS_BEFORE = "DELETE FROM people_change_rows WHERE change_id < %s"
# payload->'people' holds the ids of the people a change involved; an enrolment recorded
# before 2026-12-03 held its names and counts there instead (an object), matched by name.
REDACT = """
UPDATE people_changes
SET summary = kind || ': involved a person since erased',
    payload = jsonb_build_object('people', CASE jsonb_typeof(payload->'people')
                                     WHEN 'array' THEN payload->'people' ELSE '[]' END,
                                 'redacted', true)
WHERE id < %(change)s
  AND (payload->'people' @> to_jsonb(%(person)s::bigint)
       OR (jsonb_typeof(payload->'people') = 'object' AND payload->'people' ? %(name)s))
"""


def lock_people(conn: psycopg.Connection, wait_s: float | None) -> bool:
    """Hold the people lock until the transaction ends; False if another transaction held it
    for WAIT_S seconds (None: wait as long as it takes)."""
    if wait_s is None:
        conn.execute(PEOPLE_LOCK)
        return True
    return lock_within(conn, PEOPLE_LOCK, wait_s)


def start_change(conn: psycopg.Connection, actor: str, kind: str, undoable: bool) -> int:
    """A new change, current in this transaction: the triggers record what it overwrites."""
    change_id = conn.execute(START_CHANGE, [actor, kind, undoable]).fetchone()[0]
    if undoable:
        conn.execute(SET_CURRENT, [str(change_id)])
    return change_id


def finish_change(conn: psycopg.Connection, change_id: int, summary: str, payload: dict,
                  keep: int) -> None:
    conn.execute(SET_CURRENT, [""])
    conn.execute(FINISH_CHANGE, [summary, Jsonb(payload), change_id])
    conn.execute(FORGET_ROWS_OF_FINAL, {"change": change_id})
    conn.execute(PRUNE, [keep])


def discard_change(conn: psycopg.Connection, change_id: int) -> None:
    conn.execute(SET_CURRENT, [""])
    conn.execute(DISCARD_CHANGE, [change_id])


def history(conn: psycopg.Connection, limit: int, offset: int = 0) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(HISTORY, [limit, offset]).fetchall()


def count_changes(conn: psycopg.Connection) -> int:
    return conn.execute(COUNT_CHANGES).fetchone()[0]


def last_change(conn: psycopg.Connection) -> dict | None:
    conn.execute(COUNTS_BEFORE_UNDO)
    conn.execute(UNDO_LOCK)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(LAST_CHANGE).fetchone()


def get_change(conn: psycopg.Connection, change_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(GET_CHANGE, [change_id]).fetchone()


def undo_change(conn: psycopg.Connection, change_id: int, actor: str) -> datetime:
    """Write back the rows the change touched as they were; returns when it was undone."""
    conn.execute(FREE_NAMES, [change_id])
    conn.execute(RESTORE_PEOPLE, [change_id])
    conn.execute(RESTORE_FACES, [change_id])
    conn.execute(RESTORE_FORGOTTEN, [change_id])
    conn.execute(RELEASE_FORGOTTEN_UNHELD, {"change": change_id})
    conn.execute(DELETE_FORGOTTEN_UNHELD, {"change": change_id})
    conn.execute(DELETE_CREATED_PEOPLE, [change_id])
    conn.execute(FORGET_ROWS, [change_id])
    return conn.execute(MARK_UNDONE, [actor, change_id]).fetchone()[0]


def carry_before_images(conn: psycopg.Connection, keep_id: int,
                        successors: list[tuple[int, int | None, str, int]]) -> None:
    """Faces given the person of a former self (face id, person id, 'faces' or
    'forgotten_faces', the former row's id) take its before-images (CARRY_BEFORE_IMAGES);
    keep_id: the keep change giving them."""
    if successors:
        faces, people, tbls, formers = (list(c) for c in zip(*successors, strict=True))
        conn.execute(CARRY_BEFORE_IMAGES, {"faces": faces, "people": people, "tbls": tbls,
                                           "formers": formers, "keep": keep_id})


def was_named(conn: psycopg.Connection, person_id: int, name: str | None) -> bool:
    """Whether one of the latest changes (those undo can still take back) changed the person
    from being named NAME (None: from being unnamed)."""
    return conn.execute(WAS_NAMED, {"person": person_id, "name": name}).fetchone()[0]


def forget_person(conn: psycopg.Connection, change_id: int, person_id: int,
                  name: str | None) -> None:
    """After erasing a person: earlier changes can no longer be undone, and those that
    involved the person lose their summary and payload (names, faces)."""
    conn.execute(SEAL_BEFORE, [change_id])
    conn.execute(FORGET_ROWS_BEFORE, [change_id])
    conn.execute(REDACT, {"change": change_id, "person": person_id, "name": name})
