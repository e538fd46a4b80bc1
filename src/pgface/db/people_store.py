"""Reads and writes of people and of which person each face is. SQL as constants, always bound."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
from psycopg import sql as pgsql
from psycopg.rows import dict_row

from pgface.boxes import best_pairs, overlaps
from pgface.db import store
from pgface.db.sql import KEEP_PAIRS, SOMEONE, shown_face
from pgface.errors import PgfaceError

# Two detectors box the same face a little differently (SCRFD's 500m and 10g, or one at other
# input sizes); neighbouring faces rarely overlap by half: the usual bar for "the same object".
# Two packs' faces of a photo overlapping so are one face (people_from_other_packs, twins).
PACK_FACE_OVERLAP = 0.5
USER = "user"  # a human put the face in its person: clustering leaves it alone
CLUSTER = "cluster"  # clustering put it there: a full re-cluster may change it

INSERT_PERSON = "INSERT INTO people (name) VALUES (%s) RETURNING id"
GET_PERSON = "SELECT id, name, hidden, created_at, updated_at FROM people WHERE id = %s"
# Whether an id was ever given to a person (not above the last the people's ids reached).
PERSON_ID_GIVEN = """
SELECT %s <= coalesce((SELECT last_value FROM pg_sequences
                       WHERE schemaname = current_schema() AND sequencename = 'people_id_seq'),
                      0)
"""
PERSON_BY_NAME = "SELECT id, name, hidden, created_at, updated_at FROM people WHERE name = %s"
# The people whose names are NAME in other letter case: lower case, with final sigma as sigma
# and sharp s as "ss", as Python's casefold has them (migration 0027 indexes this expression;
# lower() alone kept "ΟΔΥΣΣΕΎΣ" from "Οδυσσεύς" and "STRASSE" from "Straße"). People._named
# keeps those casefold finds equal too (what lower() maps alike and casefold does not,
# Turkish's dotted and dotless i, stays apart; ligatures, which casefold alone spells out,
# are not found here). All of them: a limit taken before casefold's check let the names lower()
# alone folds together (every 'i'/'İ' spelling) crowd out the one casefold finds (probe
# reprobe21: the ninth by id was never looked at, and a tenth person was made beside it).
FOLDED_NAME = "lower(replace(translate({}, 'ςẞ', 'σß'), 'ß', 'ss'))"
PEOPLE_NAMED_IN_OTHER_CASE = (
    f"SELECT id, name FROM people WHERE {FOLDED_NAME.format('name')} = "
    f"{FOLDED_NAME.format('%s')} ORDER BY id")
# The people whose names are not in the form names are stored in today (an older pgface's:
# not NFC, a format character, a Hangul filler, a mark that shows nothing, spaces not
# collapsed): few, looked through in Python (names.name_form) when a name reaches nobody else,
# through an index of them alone whose predicate is this WHERE, word for word (migration 0039;
# 0038's missed some format characters, U+FFF9 and others, and the spaces Python's split()
# takes that PostgreSQL's \s does not: probe reprobe38).
# "ㅤAda" stored so was not reached by "Ada", and naming faces "Ada" made a second person
# reading Ada (probe reprobe37b).
PEOPLE_NAMED_IN_ANOTHER_FORM = r"""
SELECT id, name FROM people WHERE name IS NOT NULL AND (name IS NOT NFC NORMALIZED
    OR name ~ '[\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160]'
    OR name ~ '[\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202f\u205f-\u206f\u2800]'
    OR name ~ '[\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd]'
    OR name ~ '[\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a]'
    OR name ~ '[\U000e0000-\U000e01ef]'
    OR name ~ '^\s|\s$|\s\s|[\t-\r\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u3000]')
ORDER BY id
"""
# `name_has`: only named people whose name holds that text, in any case: both folded as a
# name typed in other case is (FOLDED_NAME: lower() alone missed a Greek name ending in a
# final sigma typed in capitals, and "STRASSE" for "Straße", probe reprobe28); lower() follows
# the database's locale (the embedded server's builtin C.UTF-8 and any UTF-8 one lower every
# script, a libc "C" locale ASCII alone). NULL: no such filter. Unnamed people have no name.
# name_has_ids: the people whose names, stored by an older pgface in another form, hold it as
# they read (people._older_forms_holding).
NAME_HAS = f"""(%(name_has)s::text IS NULL
              OR strpos({FOLDED_NAME.format('p.name')},
                        {FOLDED_NAME.format('%(name_has)s::text')}) > 0
              OR p.id = ANY(%(name_has_ids)s::bigint[]))"""
# The faces a person is shown with: the active pack's, and in a photo the active pack has not
# analysed yet, those of the photo's first pack by name (migration 0025, pgface_first_pack,
# which the counts' triggers use). A photo two packs analysed holds each face twice, once per
# pack (its people carried to the new pack's faces, index.people_from_other_packs): shown once,
# however many packs analysed it (every other pack's faces were shown: three packs, twice).
SHOWN_FACE = shown_face("f")
# An unnamed person with no face left (its photos removed, pruned or their faces deleted) is
# nobody to show or review (sql.SOMEONE, which stats counts by too): kept while it holds what
# was kept for a forgotten photo (found again, its faces come back to it), removed by the next
# people change otherwise. Deleting it outside a recorded change would leave undo a person it
# cannot give faces back to. In no order: People.list (people.py) orders them as a reader
# orders names, which no server's collation does alike (C, the embedded one's, by code point).
LIST_PEOPLE = f"""
SELECT p.id, p.name, p.hidden, p.created_at, p.updated_at, count(f.id) AS faces,
       count(DISTINCT f.photo_id) AS photos
FROM people p LEFT JOIN faces f ON f.person_id = p.id AND {SHOWN_FACE}
WHERE (%(unnamed)s OR p.name IS NOT NULL) AND (%(hidden)s OR NOT p.hidden) AND {SOMEONE}
  AND {NAME_HAS}
GROUP BY p.id
"""
# The people page's order: named people first, then whoever has the most faces. The cover is
# the face detected with the most confidence. `named` NULL: both named and unnamed people.
# `after_*`: the place (named?, faces, name, id) of the last person of the previous page, as
# it was listed; the page starts after that place (keyset paging), so a person named, merged
# or hidden meanwhile moves only themselves, where an offset shifted everyone after them (one
# tile shown twice, another never). Names are never empty, so '' stands for no name.
# Every person's faces come from the counts kept by triggers (migration 0018: rows that add
# up, under the pack in use, or under '*' while that pack has analysed nothing), not from the
# faces; their photos and cover only for the page. A person whose changes are all added up has
# one row per pack: unnamed people's are read in the page's order from an index (0021), only
# as many as the page needs; named people, and people with changes pending (a few thousand at
# most: they are added up before a page), are summed. `total`, how many the filter holds, is
# counted from the same rows (an index alone for unnamed people, less the named and hidden
# among them); it comes once even for a page past the end (a row with no person then).
COUNTS_PACK = """(SELECT coalesce(max(pack), '*') FROM person_face_count_packs
                  WHERE pack = %(model)s)"""
# A person's one row under the pack is their count, unless a change of theirs is pending (under
# any pack): a lookup in the pending rows' index for each row read. OFFSET 0 keeps PostgreSQL
# from making it a join, which it planned reading every pending row for each row read when its
# statistics held fewer pending rows than there were (30 ms instead of 3 at 20,000 faces).
NOTHING_PENDING = """NOT EXISTS (
    SELECT 1 FROM person_face_counts d WHERE d.person_id = c.person_id AND d.pending OFFSET 0)"""
# A person's added-up row under the pack, of a face or more (`-faces`: the order index's key).
ADDED_UP = f"c.pack = {COUNTS_PACK} AND NOT c.pending AND -c.faces < 0"
PEOPLE_PAGE = f"""
WITH named AS (
    SELECT p.id, p.name, p.hidden, greatest(coalesce(kept.faces, 0), 0)::bigint AS faces
    FROM people p LEFT JOIN (
        SELECT c.person_id, sum(c.faces) AS faces FROM person_face_counts c
        WHERE c.pack = {COUNTS_PACK} AND c.person_id = ANY (ARRAY(  -- looked up one by one
            SELECT id FROM people p WHERE name IS NOT NULL AND {NAME_HAS}))
        GROUP BY c.person_id) kept ON kept.person_id = p.id
    WHERE p.name IS NOT NULL AND %(named)s::boolean IS DISTINCT FROM false
      AND (%(hidden)s OR NOT p.hidden) AND {NAME_HAS}
      AND (%(after_id)s::bigint IS NULL OR NOT %(after_unnamed)s)  -- not past them
), unnamed_pending AS (
    SELECT p.id, p.name, p.hidden, pending.faces
    FROM (SELECT c.person_id, sum(c.faces)::bigint AS faces FROM person_face_counts c
          WHERE c.pack = {COUNTS_PACK} AND c.person_id IN (
              SELECT person_id FROM person_face_counts WHERE pending)
          GROUP BY c.person_id HAVING sum(c.faces) > 0) pending
    JOIN people p ON p.id = pending.person_id
    WHERE p.name IS NULL AND %(named)s::boolean IS DISTINCT FROM true
      AND (%(hidden)s OR NOT p.hidden) AND %(name_has)s::text IS NULL
), unnamed_settled AS (  -- read in the index's order, from the page's place on
    SELECT p.id, p.name, p.hidden, c.faces::bigint AS faces
    FROM person_face_counts c JOIN people p ON p.id = c.person_id
    WHERE {ADDED_UP} AND {NOTHING_PENDING}
      AND (-c.faces, c.person_id) > (%(unnamed_from_faces)s::integer, %(unnamed_from_id)s::bigint)
      AND p.name IS NULL AND (%(hidden)s OR NOT p.hidden)
      AND %(named)s::boolean IS DISTINCT FROM true AND %(name_has)s::text IS NULL
    ORDER BY -c.faces, c.person_id
    LIMIT %(limit)s::bigint + %(offset)s::bigint  -- sent as smallint, the sum overflowed
), listed AS (
    SELECT * FROM (SELECT * FROM named UNION ALL SELECT * FROM unnamed_pending
                   UNION ALL SELECT * FROM unnamed_settled) counted
    WHERE %(after_id)s::bigint IS NULL
       OR (counted.name IS NULL, -counted.faces, coalesce(counted.name, ''), counted.id)
          > (%(after_unnamed)s::boolean, -%(after_faces)s::bigint, %(after_name)s::text,
             %(after_id)s::bigint)
    ORDER BY counted.name IS NULL, counted.faces DESC, counted.name, counted.id
    LIMIT %(limit)s OFFSET %(offset)s
), total AS (  -- unnamed people: every added-up count, less those of the people read apart
    SELECT (SELECT count(*) FROM people p
            WHERE p.name IS NOT NULL AND %(named)s::boolean IS DISTINCT FROM false
              AND (%(hidden)s OR NOT p.hidden) AND {NAME_HAS})
        + (SELECT count(*) FROM unnamed_pending)
        + CASE WHEN %(named)s::boolean IS DISTINCT FROM true
                AND %(name_has)s::text IS NULL THEN
            (SELECT count(*) FROM person_face_counts c WHERE {ADDED_UP})
            - (SELECT count(*) FROM person_face_counts c  -- looked up one by one
               WHERE {ADDED_UP} AND c.person_id = ANY (ARRAY(
                     SELECT person_id FROM person_face_counts WHERE pending
                     UNION SELECT p.id FROM people p
                     WHERE (p.name IS NOT NULL OR p.hidden)
                       AND (p.name IS NOT NULL OR NOT %(hidden)s))))
          ELSE 0 END AS total
)
SELECT listed.id, listed.name, listed.hidden, listed.faces, shown.photos,
       cover.cover_face_id, total.total
FROM total
LEFT JOIN listed ON true
LEFT JOIN LATERAL (  -- from faces_person_shown_idx alone (0017)
    SELECT count(DISTINCT f.photo_id) AS photos
    FROM faces f WHERE f.person_id = listed.id AND {SHOWN_FACE}
) shown ON true
LEFT JOIN LATERAL (  -- the first of faces_person_cover_idx's order (0023) that is shown
    SELECT f.id AS cover_face_id
    FROM faces f WHERE f.person_id = listed.id AND {SHOWN_FACE}
    ORDER BY f.det_score DESC, f.id LIMIT 1
) cover ON true
ORDER BY listed.name IS NULL, listed.faces DESC, listed.name, listed.id
"""
PERSON_SUMMARY = f"""
SELECT count(f.id) AS faces, count(DISTINCT f.photo_id) AS photos,
       (SELECT f.id FROM faces f WHERE f.person_id = %(person)s AND {SHOWN_FACE}
        ORDER BY f.det_score DESC, f.id LIMIT 1) AS cover_face_id  -- as PEOPLE_PAGE's
FROM faces f WHERE f.person_id = %(person)s AND {SHOWN_FACE}
"""
# Only a real change is written (and so recorded in the history).
SET_HIDDEN = "UPDATE people SET hidden = %s, updated_at = now() WHERE id = %s AND hidden <> %s"
# The photos a person is in, newest indexed first, with their faces of this person.
# `after_at`, `after_id`: the place (indexed_at, id) of the last photo of the previous page.
PERSON_PHOTOS = f"""
SELECT ph.id, ph.path, ph.width, ph.height, ph.indexed_at,
       array_agg(f.id ORDER BY f.id) AS face_ids
FROM faces f JOIN photos ph ON ph.id = f.photo_id
WHERE f.person_id = %(person)s AND {SHOWN_FACE}
  AND (%(after_id)s::bigint IS NULL
       OR (ph.indexed_at, ph.id) < (%(after_at)s::timestamptz, %(after_id)s::bigint))
GROUP BY ph.id
ORDER BY ph.indexed_at DESC, ph.id DESC
LIMIT %(limit)s OFFSET %(offset)s
"""
COUNT_PERSON_PHOTOS = f"""
SELECT count(DISTINCT f.photo_id) FROM faces f WHERE f.person_id = %(person)s AND {SHOWN_FACE}
"""
RENAME_PERSON = "UPDATE people SET name = %s, updated_at = now() WHERE id = %s"
TOUCH_PEOPLE = "UPDATE people SET updated_at = now() WHERE id = ANY(%s)"
DELETE_PERSON = "DELETE FROM people WHERE id = %s"
PERSON_FACES = f"""
SELECT f.id, f.photo_id, ph.path, f.bbox, f.det_score, f.model, f.assigned_by
FROM faces f JOIN photos ph ON ph.id = f.photo_id
WHERE f.person_id = %(person)s AND {SHOWN_FACE}
  AND (%(after)s::bigint IS NULL OR f.id > %(after)s::bigint) ORDER BY f.id
LIMIT %(limit)s OFFSET %(offset)s
"""
COUNT_PERSON_FACES = f"""
SELECT count(*) FROM faces f WHERE f.person_id = %(person)s AND {SHOWN_FACE}
"""
# Locked: who holds a face is decided on what the next statements read, not on a stale copy.
EXISTING_FACES = "SELECT id, photo_id, person_id FROM faces WHERE id = ANY(%s) FOR UPDATE"
# Only the faces it changes (a face already the person's by hand is no change to record).
ASSIGN_FACES = """
UPDATE faces SET person_id = %(person)s, assigned_by = %(by)s
WHERE id = ANY(%(ids)s)
  AND (person_id IS DISTINCT FROM %(person)s OR assigned_by IS DISTINCT FROM %(by)s)
"""
MOVE_ALL_FACES = "UPDATE faces SET person_id = %s, assigned_by = %s WHERE person_id = %s"
MOVE_FORGOTTEN = "UPDATE forgotten_faces SET person_id = %s WHERE person_id = %s"
# The people of the faces of these photos' content when it was forgotten by path.
FORGOTTEN_OF_PHOTOS = """
SELECT ph.id, ff.bbox, ff.person_id, ff.assigned_by, ff.id
FROM forgotten_faces ff JOIN photos ph ON ph.sha256 = ff.sha256
WHERE ph.id = ANY(%s) ORDER BY ph.id, ff.model = %s DESC
"""
UNHELD_FACES_OF_PHOTOS = """
SELECT photo_id, id, bbox FROM faces
WHERE photo_id = ANY(%s) AND model = %s AND person_id IS NULL ORDER BY id
"""
# ... with their before-images: those the faces found again could take, they took
# (CARRY_BEFORE_IMAGES), and, left behind, an undo put the row back once the photo was
# forgotten again, beside the row kept then: the face kept twice.
DROP_FORGOTTEN = """
WITH dropped AS (
    DELETE FROM forgotten_faces ff USING photos ph
    WHERE ph.sha256 = ff.sha256 AND ph.id = ANY(%s) RETURNING ff.id)
DELETE FROM people_change_rows
WHERE tbl = 'forgotten_faces' AND row_id IN (SELECT id FROM dropped)
"""
# The people kept for faces an edit lost that wait for these photos (migration 0028), with
# their vectors: this pack's, of people still there.
WAITING_FOR_PHOTOS = """
SELECT ff.waiting_for, ff.id, ff.person_id, ff.assigned_by, ff.embedding
FROM forgotten_faces ff
WHERE ff.waiting_for = ANY(%s) AND ff.model = %s AND ff.person_id IS NOT NULL
  AND ff.embedding IS NOT NULL
ORDER BY ff.waiting_for, ff.id
"""
# Faces a human took away from a person ("not this person"): nobody's, and, as a deleted
# person's, not looked at again by an incremental run (counted as clustered).
UNASSIGN_FACES = """
UPDATE faces SET person_id = NULL, assigned_by = NULL, clustered_at = coalesce(clustered_at, now())
WHERE id = ANY(%s) AND person_id = %s
"""
# Taken back by a later version: not kept any longer, nor their before-images, which the face
# that took the person carries now (CARRY_BEFORE_IMAGES).
DROP_WAITING = """
WITH dropped AS (DELETE FROM forgotten_faces WHERE id = ANY(%s) RETURNING id)
DELETE FROM people_change_rows
WHERE tbl = 'forgotten_faces' AND row_id IN (SELECT id FROM dropped)
"""
# A person a human deleted is not to come back by itself: their faces count as clustered.
RELEASE_FACES = """
UPDATE faces SET person_id = NULL, assigned_by = NULL, clustered_at = coalesce(clustered_at, now())
WHERE person_id = %s
"""

# Erasure: the person's faces (embeddings and crops with them), then the photos that held
# nobody else, since a path and a content hash of a photo of them are theirs too.
ERASE_FACES = "DELETE FROM faces WHERE person_id = %s RETURNING id, photo_id"
# Clustering state of every face of one model; embeddings are fetched separately.
CLUSTER_FACES = """
SELECT f.id, f.photo_id, f.person_id, f.clustered_at IS NULL AS fresh,
       (f.assigned_by = 'user' OR pe.name IS NOT NULL) IS TRUE AS kept
FROM faces f LEFT JOIN people pe ON pe.id = f.person_id
WHERE f.model = %s ORDER BY f.id
"""
# A face a human split off a person ("Move to a new person"), or took from them as nobody's
# (`remove`: "not this person"), is not that person, the human said: a full re-cluster keeps
# the faces it frees of that person out of the person holding the face (probe naming45: the
# rest of a cluster, freed, joined the face split off it, undoing the split), and a face
# nobody holds out of that person (clustering._kept_apart). Each face a split or removal not
# undone moved, with the person it took it from and the change's id, as the change's payload
# says it (its person, faces and their twins; a payload is never pruned): every such change,
# not only the latest (a face split off A, then off the person it went to, is still not A:
# probe reprobe47). One pass over the changes, no join with faces: the caller has every face
# of the model (a join planned on the functions' guesses of 100 rows each compared 12,000
# faces with each of 10,000 moves: 9.4 s at 100,000 faces).
MOVED_BY_HAND = """
SELECT DISTINCT c.id, m.face_id, (c.payload->>'person_id')::bigint
FROM people_changes c
CROSS JOIN LATERAL (
    SELECT f::bigint AS face_id
    FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(c.payload->'faces') = 'array'
                                        THEN c.payload->'faces' ELSE '[]' END
                                   || CASE WHEN jsonb_typeof(c.payload->'twins') = 'array'
                                           THEN c.payload->'twins' ELSE '[]' END) f
) m
WHERE c.kind IN ('split', 'remove') AND c.undone_at IS NULL
"""
# The merges not undone after change %s: (change id, source or sources, target), as
# People.merge records them. A person a split or removal took a face from, merged into another
# since, is that person too: their faces are theirs (moved_by_hand). Read by id alone, the face
# joined the person merged into at the next --full (probe reprobe58). A naming or enrolment
# that took every face of unnamed people, emptied and so deleted (`emptied_into`: [person,
# the person that took their faces] pairs), merged them as surely: the face taken from one
# joined the person named (probe reprobe61: by `people enrol` too).
MERGES_SINCE = """
SELECT c.id, c.payload->'source', (c.payload->>'target')::bigint FROM people_changes c
WHERE c.kind = 'merge' AND c.undone_at IS NULL AND c.id > %(after)s
UNION ALL
SELECT c.id, jsonb_build_array(e->0), (e->>1)::bigint
FROM people_changes c
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(c.payload->'emptied_into') = 'array'
         THEN c.payload->'emptied_into' ELSE '[]' END) e
WHERE c.kind IN ('name', 'enrol') AND c.undone_at IS NULL AND c.id > %(after)s
ORDER BY 1
"""
# The faces the indexer's keep changes after change %s gave the person of a former face:
# (keep id, face, former face), as sql.KEEP_PAIRS reads them. A face split off a person and
# then analysed again (`index --pending`), or of a photo edited in place, moved and edited, or
# analysed by another pack, is a new face the split's record does not name: its former
# face's split holds for it (moved_by_hand; probe reprobe49: `cluster --full` emptied the
# person into the new face).
KEPT_SINCE = f"SELECT p.keep, p.face, p.former FROM ({KEEP_PAIRS}) p WHERE p.keep > %s"
OTHER_PACKS_HOLD_PEOPLE = """
SELECT EXISTS (SELECT 1 FROM model_packs p
               WHERE p.name <> %s AND EXISTS (SELECT 1 FROM faces f WHERE f.model = p.name
                                                              AND f.person_id IS NOT NULL))
"""
# Every write rewrites the face row and its HNSW entry: mark only faces not marked yet.
MARK_CLUSTERED = """
UPDATE faces SET clustered_at = now() WHERE id = ANY(%s) AND clustered_at IS NULL
"""
# An edited photo (a path seen with new content) takes over the people of the faces it had:
# the faces of both photos, this model's.
# recorded: a change that can still be undone touched the face (its before-images follow it;
# only such changes keep any, db/people_history.py)
FACES_OF_PHOTOS = """
SELECT f.photo_id, f.id, f.person_id, f.assigned_by, f.embedding,
       EXISTS (SELECT 1 FROM people_change_rows r
               WHERE r.tbl = 'faces' AND r.row_id = f.id) AS recorded,
       f.bbox, ph.width, ph.height
FROM faces f JOIN photos ph ON ph.id = f.photo_id
WHERE f.photo_id = ANY(%s) AND f.model = %s ORDER BY f.id
"""
# Every pack's faces of these photos with their boxes: another pack's give their people.
BOXES_OF_PHOTOS = """
SELECT photo_id, id, model, person_id, assigned_by, bbox FROM faces
WHERE photo_id = ANY(%s) ORDER BY id
"""
# The people locked first (KEY SHARE, what the foreign key takes too): one a concurrent change
# is deleting is waited for and then passed over, where the foreign key failed the indexing
# batch; one still there cannot be deleted until the batch commits.
ASSIGN_IF_UNHELD = """
WITH alive AS (SELECT id FROM people WHERE id = ANY(%(people)s) FOR KEY SHARE)
UPDATE faces f SET person_id = k.person_id, assigned_by = k.assigned_by
FROM unnest(%(faces)s::bigint[], %(people)s::bigint[], %(by)s::text[])
     AS k(face_id, person_id, assigned_by)
JOIN alive a ON a.id = k.person_id
WHERE f.id = k.face_id AND f.person_id IS NULL
"""
EMBEDDINGS = "SELECT id, embedding FROM faces WHERE model = %s ORDER BY id"
# Of the model's faces only: another pack's vectors are not comparable with its (suggest()
# compared one pack's face with another's, 0.04 for the same person; face_packs sorts them).
EMBEDDINGS_OF = "SELECT id, embedding FROM faces WHERE id = ANY(%s) AND model = %s ORDER BY id"
FACE_PACKS = "SELECT model, array_agg(id ORDER BY id) FROM faces WHERE id = ANY(%s) GROUP BY model"
# A face clustering had given a person, which a full re-cluster left without one.
RELEASE_CLUSTERED = """
UPDATE faces SET person_id = NULL, assigned_by = NULL, clustered_at = now()
WHERE id = ANY(%s) AND assigned_by = 'cluster'
"""

DELETE_EMPTY_UNNAMED = """
DELETE FROM people p WHERE p.name IS NULL
AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = p.id)
AND NOT EXISTS (SELECT 1 FROM forgotten_faces ff WHERE ff.person_id = p.id)
RETURNING p.id
"""

# Nearest faces of one model within a distance, faces of the query's own photo left out.
NEIGHBOURS = """
WITH nearest AS MATERIALIZED (
    SELECT id, photo_id, person_id, embedding <=> %(query)s AS distance
    FROM faces
    WHERE model = %(model)s AND id <> %(face)s
    ORDER BY embedding <=> %(query)s
    LIMIT %(k)s
)
SELECT id, person_id, 1 - distance AS similarity FROM nearest
WHERE distance <= %(max_distance)s AND photo_id <> %(photo)s
ORDER BY distance, id
"""
# Nearest faces that belong to somebody: the iterative scan keeps going past unassigned ones.
NEAREST_ASSIGNED = """
WITH nearest AS MATERIALIZED (
    SELECT id, photo_id, person_id, embedding <=> %(query)s AS distance
    FROM faces
    WHERE model = %(model)s AND person_id IS NOT NULL
      AND person_id <> ALL(%(exclude)s::bigint[])
    ORDER BY embedding <=> %(query)s
    LIMIT %(k)s
)
SELECT n.id, n.photo_id, n.person_id, pe.name, 1 - n.distance AS similarity
FROM nearest n JOIN people pe ON pe.id = n.person_id
WHERE n.distance <= %(max_distance)s
ORDER BY n.distance, n.id
"""
ASSIGNED_FACES = "SELECT count(*) FROM faces WHERE model = %s AND person_id IS NOT NULL"
# Changes whenever rows of faces are inserted, updated or deleted (statistics: seconds late).
FACES_STAMP = """
SELECT pg_stat_get_tuples_inserted(t), pg_stat_get_tuples_updated(t),
       pg_stat_get_tuples_deleted(t)
FROM (SELECT 'faces'::regclass AS t) f
"""
# One clustering run of a library at a time: two would both found a person for the same new
# faces. Keyed by the library's schema, as people_history.PEOPLE_LOCK.
CLUSTER_LOCK = ("SELECT pg_advisory_xact_lock("
                "hashtext('pgface.people.cluster.' || current_schema()))")
INSERT_UNNAMED_PEOPLE = """
INSERT INTO people (name) SELECT NULL FROM generate_series(1, %s) RETURNING id
"""
# Never a face a human assigned meanwhile.
ASSIGN_CLUSTERED = """
UPDATE faces f SET person_id = v.person_id, assigned_by = 'cluster', clustered_at = now()
FROM unnest(%s::bigint[], %s::bigint[]) AS v(face_id, person_id)
WHERE f.id = v.face_id AND (f.person_id IS NULL OR f.assigned_by = 'cluster')
"""
FACES_OF_HASHES = """
SELECT ph.sha256, f.id, f.bbox, f.person_id
FROM photos ph JOIN faces f ON f.photo_id = ph.id
WHERE ph.sha256 = ANY(%s) AND f.model = %s ORDER BY f.id
"""


@dataclass(frozen=True)
class ClusterFace:
    face_id: int
    photo_id: int
    person_id: int | None
    fresh: bool  # clustering has never looked at it
    kept: bool  # a human's: they put it in its person, or named that person


def create_person(conn: psycopg.Connection, name: str | None) -> int:
    return conn.execute(INSERT_PERSON, [name]).fetchone()[0]


def get_person(conn: psycopg.Connection, person_id: int) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(GET_PERSON, [person_id]).fetchone()


def person_id_given(conn: psycopg.Connection, person_id: int) -> bool:
    """Whether PERSON_ID was ever a person's (one gone since was merged or deleted)."""
    return bool(conn.execute(PERSON_ID_GIVEN, [person_id]).fetchone()[0])


def person_by_name(conn: psycopg.Connection, name: str) -> dict | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(PERSON_BY_NAME, [name]).fetchone()


def people_named_in_another_form(conn: psycopg.Connection) -> list[tuple[int, str]]:
    """(id, name) of the people whose names are stored in a form no longer made."""
    return [(r[0], r[1]) for r in conn.execute(PEOPLE_NAMED_IN_ANOTHER_FORM)]


def people_named_in_other_case(conn: psycopg.Connection, name: str) -> list[tuple[int, str]]:
    """(id, name) of the people whose names lower() takes to NAME's."""
    return [(r[0], r[1]) for r in conn.execute(PEOPLE_NAMED_IN_OTHER_CASE, [name])]


# The reads below count and list the faces SHOWN_FACE keeps for the active pack (model).


def list_people(conn: psycopg.Connection, unnamed: bool, model: str, hidden: bool = False,
                name_has: str | None = None, name_has_ids: Sequence[int] = ()) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(LIST_PEOPLE, {"unnamed": unnamed, "hidden": hidden,
                                         "model": model, "name_has": name_has,
                                         "name_has_ids": list(name_has_ids)}).fetchall()


FORGET_FACE_COUNTS = "DELETE FROM person_face_counts WHERE person_id = %s"
# The changes to the counts not added up yet, up to a bound (an index of them alone).
PENDING_FACE_COUNTS = """
SELECT count(*) FROM (SELECT 1 FROM person_face_counts WHERE pending LIMIT %s) pending
"""
# Each person with a change pending gets their rows replaced by one per pack, their sum (none
# for a person no longer there). One add-up at a time, each after the one before committed
# (ADD_UP_LOCK, then a statement whose snapshot sees it): two at once, the second also summed
# a change committed between their snapshots, which the first had left, into a second row for
# the pack, and the page, which reads an added-up row as the person's count, listed them twice.
ADD_UP_LOCK = ("SELECT pg_advisory_xact_lock("
               "hashtext('pgface.people.face_counts.' || current_schema()))")
ADD_UP_FACE_COUNTS = """
WITH gone AS (
    DELETE FROM person_face_counts c
    WHERE c.person_id IN (SELECT person_id FROM person_face_counts WHERE pending)
    RETURNING c.person_id, c.pack, c.faces
)
INSERT INTO person_face_counts (person_id, pack, faces, pending)
SELECT gone.person_id, gone.pack, sum(gone.faces), false FROM gone
WHERE EXISTS (SELECT 1 FROM people p WHERE p.id = gone.person_id)
GROUP BY gone.person_id, gone.pack
HAVING sum(gone.faces) <> 0
"""


def add_up_face_counts(conn: psycopg.Connection, at_least: int) -> bool:
    """Add up the kept face counts when at least AT_LEAST changes are pending; whether it did.
    A server that takes no writes (a standby) leaves them as they are: they add up all the
    same, a little slower to read."""
    if conn.execute(PENDING_FACE_COUNTS, [at_least]).fetchone()[0] < at_least:
        return False
    try:
        with conn.transaction():
            conn.execute(ADD_UP_LOCK)
            conn.execute(ADD_UP_FACE_COUNTS)
    except psycopg.errors.ReadOnlySqlTransaction:
        return False
    return True


def people_page(conn: psycopg.Connection, named: bool | None, hidden: bool, limit: int,
                offset: int, model: str, after: tuple[str | None, int, int] | None = None,
                name_has: str | None = None, name_has_ids: Sequence[int] = ()
                ) -> tuple[list[dict], int]:
    """One page of people in the people page's order, and how many the filter holds.
    `after`: (name, faces, id) of the last person of the previous page as it was listed;
    `name_has`: only named people whose name holds this text, in any case."""
    with conn.cursor(row_factory=dict_row) as cur:
        return page_rows(cur.execute(PEOPLE_PAGE, page_parameters(
            named, hidden, limit, offset, model, after, name_has, name_has_ids)).fetchall())


def page_parameters(named: bool | None, hidden: bool, limit: int, offset: int, model: str,
                    after: tuple[str | None, int, int] | None,
                    name_has: str | None = None, name_has_ids: Sequence[int] = ()) -> dict:
    """PEOPLE_PAGE's parameters (bench/people_page.py's baselines take them too)."""
    name, faces, person_id = after if after is not None else (None, None, None)
    # Where unnamed people's order resumes, as the index's key (-faces, id): after the place
    # when it is an unnamed person's, else from the start.
    start = (-(2 ** 31), -(2 ** 63))  # before every count (an integer) and id
    unnamed_from = ((-faces, person_id) if after is not None and name is None
                    and -faces > start[0] else start)
    return {"named": named, "hidden": hidden, "after_unnamed": name is None,
            "after_faces": faces, "after_name": name or "", "after_id": person_id,
            "unnamed_from_faces": unnamed_from[0], "unnamed_from_id": unnamed_from[1],
            "limit": limit, "offset": offset, "model": model, "name_has": name_has,
            "name_has_ids": list(name_has_ids)}


def page_rows(rows: list[dict]) -> tuple[list[dict], int]:
    """PEOPLE_PAGE's rows as (people, total): the total comes on every row, and alone on one
    with no person for a page past the end."""
    total = rows[0].pop("total")
    for row in rows[1:]:
        del row["total"]
    return [row for row in rows if row["id"] is not None], total


def person_summary(conn: psycopg.Connection, person_id: int, model: str) -> dict:
    """A person's face and photo counts and their cover face (None without a face)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(PERSON_SUMMARY, {"person": person_id, "model": model}).fetchone()


def set_hidden(conn: psycopg.Connection, person_id: int, hidden: bool) -> bool:
    """Whether the person's hidden flag changed."""
    return conn.execute(SET_HIDDEN, [hidden, person_id, hidden]).rowcount > 0


def person_photos(conn: psycopg.Connection, person_id: int, limit: int, offset: int,
                  model: str, after: tuple[datetime, int] | None = None
                  ) -> tuple[list[dict], int]:
    """A page of the person's photos, latest indexed first, and how many they are in.
    `after`: (indexed_at, id) of the last photo of the previous page."""
    which = {"person": person_id, "model": model}
    after_at, after_id = after if after is not None else (None, None)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(PERSON_PHOTOS, {**which, "limit": limit, "offset": offset,
                                           "after_at": after_at, "after_id": after_id}
                           ).fetchall()
    return rows, conn.execute(COUNT_PERSON_PHOTOS, which).fetchone()[0]


def rename_person(conn: psycopg.Connection, person_id: int, name: str | None) -> None:
    conn.execute(RENAME_PERSON, [name, person_id])


def unassign_faces(conn: psycopg.Connection, face_ids: Sequence[int], person_id: int) -> int:
    """The faces of PERSON_ID among these made nobody's (UNASSIGN_FACES); how many."""
    return conn.execute(UNASSIGN_FACES, [list(face_ids), person_id]).rowcount


def touch_people(conn: psycopg.Connection, person_ids: Sequence[int]) -> None:
    conn.execute(TOUCH_PEOPLE, [list(person_ids)])


def delete_person(conn: psycopg.Connection, person_id: int) -> int:
    """Delete the person; their faces stay, unassigned. Returns how many faces were released."""
    released = conn.execute(RELEASE_FACES, [person_id]).rowcount
    conn.execute(DELETE_PERSON, [person_id])
    return released


def person_faces(conn: psycopg.Connection, person_id: int, model: str,
                 limit: int | None = None, offset: int = 0, after: int | None = None
                 ) -> list[dict]:
    """The person's faces in id order: LIMIT of them (None: all) from OFFSET, of those after
    face id AFTER (None: from the first)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(PERSON_FACES, {"person": person_id, "model": model, "limit": limit,
                                          "offset": offset, "after": after}).fetchall()


def count_person_faces(conn: psycopg.Connection, person_id: int, model: str) -> int:
    return conn.execute(COUNT_PERSON_FACES, {"person": person_id, "model": model}).fetchone()[0]


def existing_faces(conn: psycopg.Connection, face_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """face id -> (photo id, person id or 0) of those ids that exist."""
    rows = conn.execute(EXISTING_FACES, [list(face_ids)]).fetchall()
    return {r[0]: (r[1], r[2] or 0) for r in rows}


def assign_faces(conn: psycopg.Connection, face_ids: Sequence[int], person_id: int,
                 assigned_by: str) -> int:
    """Put the faces in the person; returns how many changed (were not there so already)."""
    return conn.execute(ASSIGN_FACES, {"person": person_id, "by": assigned_by,
                                       "ids": list(face_ids)}).rowcount


def move_all_faces(conn: psycopg.Connection, source: int, target: int) -> int:
    """Every face of `source` to `target`; a human merged them, so the faces are the user's."""
    conn.execute(MOVE_FORGOTTEN, [target, source])  # a forgotten photo found again: target's
    return conn.execute(MOVE_ALL_FACES, [target, USER, source]).rowcount


def cluster_faces(conn: psycopg.Connection, model: str) -> list[ClusterFace]:
    return [ClusterFace(*r) for r in conn.execute(CLUSTER_FACES, [model])]


def moved_by_hand(conn: psycopg.Connection) -> dict[int, set[int]]:
    """face id -> the people the splits and removals not undone took it out of, and the
    people those were merged into since (MERGES_SINCE), for the faces they moved
    (MOVED_BY_HAND) and the faces that took over their people since, by keep changes made
    after the split (KEPT_SINCE): a face analysed again, or of a photo edited, moved and
    edited or analysed by another pack, and so on down a chain (edited twice)."""
    splits = [(change, face, person) for change, face, person in conn.execute(MOVED_BY_HAND)
              if person is not None]
    if not splits:
        return {}
    merged_into = _merged_into(conn, min(s[0] for s in splits))
    successors: dict[int, list[tuple[int, int]]] = {}  # former face -> (keep id, face)
    for keep, face, former in conn.execute(KEPT_SINCE, [min(s[0] for s in splits)]):
        successors.setdefault(former, []).append((keep, face))
    taken: dict[int, set[int]] = {}
    became: dict[tuple[int, int], set[int]] = {}
    for change, face, person in splits:
        if (person, change) not in became:
            became[person, change] = merged_into(person, change)
        # a keep hands a face on only after the split (and after the keep that made the face)
        since = {face: change}
        todo = [face]
        while todo:
            former = todo.pop()
            taken.setdefault(former, set()).update(became[person, change])
            for keep, successor in successors.get(former, ()):
                if keep > since[former] and keep < since.get(successor, keep + 1):
                    since[successor] = keep
                    todo.append(successor)
    return taken


def _merged_into(conn: psycopg.Connection, after: int
                 ) -> Callable[[int, int], set[int]]:
    """A function of (person, change id): the person and every person it was merged into by
    the merges not undone after that change (MERGES_SINCE, read once), down a chain (A into B,
    then B into C)."""
    merges: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)  # source -> (id, target)
    for change, source, target in conn.execute(MERGES_SINCE, {"after": after}):
        for person in source if isinstance(source, list) else [source]:
            if isinstance(person, int) and target is not None:
                merges[person].append((change, target))

    def people(person: int, since: int) -> set[int]:
        found = {person}
        todo = [(person, since)]
        while todo:
            source, since = todo.pop()
            for change, target in merges.get(source, ()):
                if change > since and target not in found:
                    found.add(target)
                    todo.append((target, change))
        return found

    return people


def other_packs_hold_people(conn: psycopg.Connection, model: str) -> bool:
    """Whether a face of another pack than MODEL belongs to someone (a pack recorded in
    model_packs: every pack is, from its first use on)."""
    return conn.execute(OTHER_PACKS_HOLD_PEOPLE, [model]).fetchone()[0]


def _vectors(rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    if not rows:
        return ids, np.empty((0, 0), dtype=np.float32)
    return ids, np.stack([store.as_array(r[1]) for r in rows])


@dataclass(frozen=True)
class KeptFace:
    """A face given the person its former self had: in an edited photo (similarity: the
    embeddings' cosine), in a photo another pack analysed or one forgotten by path and found
    again (the boxes' overlap, IoU)."""

    face_id: int
    person_id: int | None  # None: nobody, the former self carried before-images only
    assigned_by: str | None
    former_face_id: int | None  # None: a face of a photo forgotten by path, found again
    similarity: float
    forgotten_id: int | None = None  # of a photo found again: what was kept for the face

    def former(self) -> tuple[str, int]:
        """The row the person came from: (table, id)."""
        if self.former_face_id is not None:
            return "faces", self.former_face_id
        assert self.forgotten_id is not None
        return "forgotten_faces", self.forgotten_id


def _faces_by_photo(conn: psycopg.Connection, photo_ids: Collection[int], model: str
                    ) -> dict[int, list[tuple]]:
    """FACES_OF_PHOTOS' rows of MODEL's faces of these photos, by photo."""
    by_photo: dict[int, list[tuple]] = {}
    if not photo_ids:
        return by_photo
    with conn.cursor(binary=True) as cur:
        for row in cur.execute(FACES_OF_PHOTOS, [sorted(photo_ids), model]):
            by_photo.setdefault(row[0], []).append(row)
    return by_photo


def _similarities(rows: Sequence[tuple], others: Sequence[tuple]) -> np.ndarray:
    """The cosine of every row's vector (its fifth field) with every other's."""
    return (np.stack([store.as_array(r[4]) for r in rows])
            @ np.stack([store.as_array(r[4]) for r in others]).T)


def _alike(rows: Sequence[tuple], others: Sequence[tuple], min_similarity: float
           ) -> list[tuple[int, int, float]]:
    """best_pairs of two lists of rows by the cosine of their vectors: one to one, best
    first, at min_similarity or above."""
    return best_pairs(_similarities(rows, others), min_similarity)


# A face of an edit at its former self's place (the boxes' overlap, each box taken as a part
# of its photo: an export made smaller keeps it) takes it over from this similarity up, where
# the embeddings alone fall short: small faces of a crowd re-saved at half size lay at 0.56 to
# 0.59 of their former selves, at overlaps of 0.89 to 0.95, and their names were lost (probe
# living36). 0.4 is far above the calibrated match threshold (0.23), which a stranger's face
# at the same place (another photo saved over it) seldom reaches.
PLACE_OVERLAP = 0.5
PLACE_SIMILARITY = 0.4


def people_for_replacements(conn: psycopg.Connection, replaced: Sequence[tuple[int, int]],
                            model: str, min_similarity: float, by_place: bool = False
                            ) -> list[KeptFace]:
    """For each (former photo, photo now at its path): the former faces' people, each given to
    the most similar face of the new photo that has no person, one to one, best pairs first,
    at min_similarity or above; BY_PLACE (an edit at the same path), then to one at the same
    place from PLACE_SIMILARITY. Nothing is written (assign_kept does)."""
    by_photo = _faces_by_photo(conn, {photo for pair in replaced for photo in pair}, model)
    kept = []
    for former, now in replaced:
        kept += _given_over(by_photo.get(former, []), by_photo.get(now, []), min_similarity,
                            by_place)
    return kept


def people_for_reanalysed(conn: psycopg.Connection, old: Mapping[int, Collection[int]],
                          model: str, min_similarity: float) -> list[KeptFace]:
    """For each photo analysed again (OLD: photo id -> the ids of its faces of before, the new
    ones stored beside them): the old faces' people, each given to the most similar new face
    of the photo, one to one, best pairs first, at min_similarity or above, then by place,
    as an edited photo's are (people_for_replacements). Nothing is written (assign_kept
    does)."""
    by_photo = _faces_by_photo(conn, old, model)
    kept = []
    for photo, faces in old.items():
        rows = by_photo.get(photo, [])
        kept += _given_over([r for r in rows if r[1] in faces],
                            [r for r in rows if r[1] not in faces], min_similarity, True)
    return kept


def _given_over(former: Sequence[tuple], now: Sequence[tuple], min_similarity: float,
                by_place: bool = False) -> list[KeptFace]:
    """FACES_OF_PHOTOS rows of a former self (FORMER) and of its new faces (NOW): the former
    faces' people, each to the most similar new face that has none; BY_PLACE, those left
    then to a face at their place (_at_same_place)."""
    # a former face nobody holds that a change touched passes its before-images on
    held = [r for r in former if r[2] is not None or r[5]]
    free = [r for r in now if r[2] is None]
    if not held or not free:
        return []
    similarity = _similarities(held, free)
    pairs = best_pairs(similarity, min_similarity)
    if by_place and len(pairs) < min(len(held), len(free)):
        pairs += _at_same_place(held, free, similarity, pairs)
    return [KeptFace(free[j][1], held[i][2], held[i][3], held[i][1], score)
            for i, j, score in pairs]


def _at_same_place(held: Sequence[tuple], free: Sequence[tuple], similarity: np.ndarray,
                   paired: Sequence[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """(held, free, similarity) pairs of the rows PAIRED left alone whose boxes, each as a part
    of its photo, overlap by PLACE_OVERLAP or more, at PLACE_SIMILARITY or above: one to one,
    the most similar first. SIMILARITY: held by free, as _similarities gave it (not written)."""
    def placed(rows: Sequence[tuple]) -> np.ndarray:
        return np.array([np.asarray(r[6], dtype=np.float64) / [r[7], r[8], r[7], r[8]]
                         for r in rows])

    similarity = similarity.copy()
    similarity[overlaps(placed(held), placed(free)) < PLACE_OVERLAP] = -1.0
    for i, j, _ in paired:  # taken: neither pairs again
        similarity[i, :] = -1.0
        similarity[:, j] = -1.0
    return best_pairs(similarity, PLACE_SIMILARITY)


def people_waiting_for(conn: psycopg.Connection, pairs: Sequence[tuple[int, int]], model: str,
                       min_similarity: float) -> list[KeptFace]:
    """For each (photo, photo now at its path) pair: the people an earlier edit at that path
    lost (cropped out, or turned so that the detector missed the face), kept waiting for the
    photo (sql.REMEMBER_PEOPLE), each given to the most similar face of the new photo that
    has no person, one to one, best pairs first, at min_similarity or above, as an edit's
    own faces are (people_for_replacements); not a person already on a face of it. The photo
    turned back, or cropped again with the face in it, so gets the name it lost; a different
    photo saved there gets nobody's. Nothing is written (assign_kept, drop_waiting)."""
    if not pairs:
        return []
    waiting: dict[int, list[tuple]] = {}
    with conn.cursor(binary=True) as cur:
        for row in cur.execute(WAITING_FOR_PHOTOS, [sorted({w for w, _ in pairs}), model]):
            waiting.setdefault(row[0], []).append(row)
    if not waiting:
        return []
    by_photo = _faces_by_photo(conn, {now for waited, now in pairs if waited in waiting}, model)
    kept: list[KeptFace] = []
    taken: set[int] = set()  # rows already given (a photo waited for at two paths)
    for waited, now in pairs:
        faces = by_photo.get(now, [])
        present = {r[2] for r in faces if r[2] is not None}
        rows = [r for r in waiting.get(waited, []) if r[1] not in taken and r[2] not in present]
        free = [r for r in faces if r[2] is None and r[1] not in {k.face_id for k in kept}]
        if not rows or not free:
            continue
        for i, j, score in _alike(rows, free, min_similarity):
            kept.append(KeptFace(free[j][1], rows[i][2], rows[i][3], None, score, rows[i][1]))
            taken.add(rows[i][1])
    return kept


def drop_waiting(conn: psycopg.Connection, forgotten_ids: Sequence[int]) -> None:
    """What was kept for these faces an edit lost: taken back by a later version."""
    if forgotten_ids:
        conn.execute(DROP_WAITING, [list(forgotten_ids)])


def formers_with_people_left(conn: psycopg.Connection, formers: Mapping[int, Collection[int]],
                             model: str, min_similarity: float) -> list[int]:
    """Of these former photos (each with the photos at its paths now): those with a face
    whose person no new version of theirs carried, a face of that person at min_similarity
    or above to it. A person merely in a photo now at the former's path carried nothing: two
    files of one shoot swapped and one edited, Sheldon in both, and the edit's face kept no
    name (nor was it said)."""
    by_photo = _faces_by_photo(
        conn, {*formers, *(now for nows in formers.values() for now in nows)}, model)
    left = []
    for former, nows in formers.items():
        for face in (r for r in by_photo.get(former, []) if r[2] is not None):
            alike = [store.as_array(r[4]) for now in nows for r in by_photo.get(now, [])
                     if r[2] == face[2]]
            if not alike or float(np.max(np.stack(alike) @ store.as_array(face[4]))) < (
                    min_similarity):
                left.append(former)
                break
    return left


def people_from_other_packs(conn: psycopg.Connection, photo_ids: Sequence[int], model: str,
                            min_overlap: float, free: set[int] | None = None
                            ) -> list[KeptFace]:
    """For each photo MODEL has just analysed: the people of other packs' faces of it, each
    given to the face of MODEL without a person whose box overlaps it most (intersection over
    union), one to one, best pairs first, at min_overlap or above. Embeddings of two packs
    cannot be compared; the same face in the same pixels lies in the same place. Nothing is
    written (assign_kept does). free: the faces of MODEL taken as without a person (a full
    clustering's, which it forgets in memory); by default those whose row has none."""
    rows = conn.execute(BOXES_OF_PHOTOS, [sorted(set(photo_ids))]).fetchall()
    by_photo: dict[int, list[tuple]] = {}
    for row in rows:
        by_photo.setdefault(row[0], []).append(row)
    kept = []
    for faces in by_photo.values():
        held = [r for r in faces if r[2] != model and r[3] is not None]
        mine = [r for r in faces if r[2] == model
                and (r[1] in free if free is not None else r[3] is None)]
        if not held or not mine:
            continue
        overlap = overlaps(np.array([r[5] for r in held], dtype=np.float64),
                               np.array([r[5] for r in mine], dtype=np.float64))
        kept += [KeptFace(mine[j][1], held[i][3], held[i][4], held[i][1], score)
                 for i, j, score in best_pairs(overlap, min_overlap)]
    return kept


def people_found_again(conn: psycopg.Connection, photo_ids: Sequence[int], model: str,
                       min_overlap: float) -> tuple[list[KeptFace], list[int]]:
    """For each photo just stored whose content was forgotten by path before: the people its
    faces had then, each given to the face of MODEL without a person whose box overlaps the
    former face's most, one to one, best pairs first, at min_overlap or above (the same pack
    boxes a face in the same place again); and the ids of the photos that had such people.
    Nothing is written (assign_kept, drop_forgotten)."""
    if not photo_ids:
        return [], []
    forgotten: dict[int, list[tuple]] = {}
    for row in conn.execute(FORGOTTEN_OF_PHOTOS, [list(photo_ids), model]):
        forgotten.setdefault(row[0], []).append(row)
    if not forgotten:
        return [], []
    free: dict[int, list[tuple]] = {}
    for row in conn.execute(UNHELD_FACES_OF_PHOTOS, [sorted(forgotten), model]):
        free.setdefault(row[0], []).append(row)
    kept = []
    for photo_id, former in forgotten.items():
        faces = free.get(photo_id, [])
        if not faces:
            continue
        overlap = overlaps(np.array([r[1] for r in former], dtype=np.float64),
                               np.array([r[2] for r in faces], dtype=np.float64))
        # A row that held someone pairs before one that held nobody (kept for before-images
        # only): two packs' rows of one face, the empty one won (row order, or a closer box),
        # the other pack's row with the person was dropped with it, and the face lost them.
        held = np.array([r[2] is not None for r in former])[:, None]
        preferred = np.where(held & (overlap >= min_overlap), overlap + 1.0, overlap)
        kept += [KeptFace(faces[j][1], former[i][2], former[i][3], None, float(overlap[i, j]),
                          former[i][4])
                 for i, j, _ in best_pairs(preferred, min_overlap)]
    return kept, sorted(forgotten)


def drop_forgotten(conn: psycopg.Connection, photo_ids: Sequence[int]) -> None:
    """The forgotten people of these photos' content: found again, not kept any longer."""
    if photo_ids:
        conn.execute(DROP_FORGOTTEN, [list(photo_ids)])


def assign_kept(conn: psycopg.Connection, kept: Sequence[KeptFace]) -> int:
    """Give each kept face its person, unless another writer gave it one first or deleted
    the person meanwhile."""
    return conn.execute(ASSIGN_IF_UNHELD, {"faces": [k.face_id for k in kept],
                                           "people": [k.person_id for k in kept],
                                           "by": [k.assigned_by for k in kept]}).rowcount


def embeddings(conn: psycopg.Connection, model: str,
               face_ids: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unit vectors) of every face of the model, or of the given faces that are the
    model's; ordered by id."""
    # Binary transfer: the vectors arrive as raw float32, about 4x faster than text.
    with conn.cursor(binary=True) as cur:
        if face_ids is None:
            rows = cur.execute(EMBEDDINGS, [model]).fetchall()
        else:
            rows = cur.execute(EMBEDDINGS_OF, [list(face_ids), model]).fetchall()
    return _vectors(rows)


def face_packs(conn: psycopg.Connection, face_ids: Sequence[int]) -> dict[str, list[int]]:
    """The given faces that exist, by the pack that made them."""
    return dict(conn.execute(FACE_PACKS, [list(face_ids)]).fetchall())


def release_clustered(conn: psycopg.Connection, face_ids: Sequence[int]) -> int:
    if not face_ids:
        return 0
    return conn.execute(RELEASE_CLUSTERED, [list(face_ids)]).rowcount


def mark_clustered(conn: psycopg.Connection, face_ids: Sequence[int]) -> None:
    conn.execute(MARK_CLUSTERED, [list(face_ids)])


def delete_empty_unnamed(conn: psycopg.Connection) -> list[int]:
    """Deletes the unnamed people left with no face; returns their ids."""
    return [row[0] for row in conn.execute(DELETE_EMPTY_UNNAMED)]


def neighbours(conn: psycopg.Connection, query: np.ndarray, face_id: int, photo_id: int,
               model: str, k: int, min_similarity: float, ef_search: int
               ) -> list[tuple[int, int | None, float]]:
    """(face id, person id, similarity) of up to k nearest faces of other photos, best first."""
    with conn.transaction():
        store.set_knn(conn, ef_search, k)
        return conn.execute(NEIGHBOURS, {
            "query": np.asarray(query, dtype=np.float32), "model": model, "face": face_id,
            "photo": photo_id, "k": k, "max_distance": 1.0 - min_similarity,
        }).fetchall()


def faces_stamp(conn: psycopg.Connection) -> tuple[int, ...]:
    """A value that changes whenever faces rows are added, changed or deleted (PostgreSQL's
    statistics: seconds late, all zeros if they are off)."""
    return tuple(int(v) for v in conn.execute(FACES_STAMP).fetchone())


def count_assigned(conn: psycopg.Connection, model: str) -> int:
    """Faces of the model that belong to a person: the library identify looks through."""
    return int(conn.execute(ASSIGNED_FACES, [model]).fetchone()[0])


def nearest_assigned(conn: psycopg.Connection, query: np.ndarray, model: str, k: int,
                     min_similarity: float, ef_search: int, exclude: Sequence[int] = ()
                     ) -> list[dict]:
    """Up to k nearest faces that belong to a person (none of EXCLUDE's), with that person,
    best first."""
    with conn.transaction():
        store.set_knn(conn, ef_search, k)
        with conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(NEAREST_ASSIGNED, {
                "query": np.asarray(query, dtype=np.float32), "model": model, "k": k,
                "exclude": list(exclude),
                "max_distance": 1.0 - min_similarity,
            }).fetchall()


def faces_of_hashes(conn: psycopg.Connection, hashes: Sequence[bytes], model: str
                    ) -> list[tuple[bytes, int, list[float], int | None]]:
    rows = conn.execute(FACES_OF_HASHES, [list(hashes), model]).fetchall()
    return [(bytes(r[0]), r[1], list(r[2]), r[3]) for r in rows]


def lock_clustering(conn: psycopg.Connection) -> None:
    conn.execute(CLUSTER_LOCK)


def create_unnamed_people(conn: psycopg.Connection, count: int) -> list[int]:
    if count <= 0:
        return []
    return [r[0] for r in conn.execute(INSERT_UNNAMED_PEOPLE, [count])]


def assign_clustered(conn: psycopg.Connection, assignments: dict[int, int]) -> int:
    """face id -> person id, for faces nobody assigned meanwhile; returns how many were."""
    if not assignments:
        return 0
    faces = list(assignments)
    return conn.execute(ASSIGN_CLUSTERED, [faces, [assignments[f] for f in faces]]).rowcount


# The person (and name, and whether hidden) of each of these faces that has one.
PEOPLE_OF_FACES = """
SELECT f.id, f.person_id, pe.name, pe.hidden
FROM faces f JOIN people pe ON pe.id = f.person_id
WHERE f.id = ANY(%s) ORDER BY f.id
"""
# Naming never moves, unasked, a face a human placed: one they assigned, or one in a named
# person. Those of the given faces, with the person holding each.
HELD_FACES = """
SELECT f.id, f.person_id, pe.name
FROM faces f JOIN people pe ON pe.id = f.person_id
WHERE f.id = ANY(%s) AND (f.assigned_by = 'user' OR pe.name IS NOT NULL)
ORDER BY f.id
"""
# Every path of each deleted photo: the statement's snapshot still sees the photo_paths rows
# that the foreign key's cascade deletes.
ERASED_PHOTOS = """
WITH gone AS (
    DELETE FROM photos ph WHERE ph.id = ANY(%s)
    AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.photo_id = ph.id)
    RETURNING ph.id, ph.path
)
SELECT id, path FROM gone
UNION
SELECT pp.photo_id, pp.path FROM photo_paths pp JOIN gone ON gone.id = pp.photo_id
"""
# Deleted rows stay in their table's pages (and TOAST's, and the HNSW index's) until the pages
# are rewritten: VACUUM FULL writes each table and its indexes anew and unlinks the old files.
SCRUB_TABLES = ("faces", "photos", "photo_paths", "photo_analyses", "people", "people_changes",
                "people_change_rows", "forgotten_faces", "person_face_counts")
CHECKPOINT = "CHECKPOINT"


FACES_OF_THEIR_PHOTOS = """
SELECT f.id, f.photo_id, f.model, f.bbox, f.person_id FROM faces f
WHERE f.photo_id IN (SELECT g.photo_id FROM faces g WHERE g.id = ANY(%s))
ORDER BY f.id
"""


def twins(conn: psycopg.Connection, face_ids: Sequence[int], min_overlap: float
          ) -> list[tuple[int, int, int | None]]:
    """(face, its twin, the twin's person) for each of these faces and each other pack that
    analysed its photo: the same face found by that pack, the box overlapping it most, one to
    one among all the faces of both packs in the photo, best pairs first, at min_overlap or
    above (index.PACK_FACE_OVERLAP: the rule a new pack's faces take their people by)."""
    asked = set(face_ids)
    by_photo: dict[int, dict[str, list[tuple]]] = {}
    for row in conn.execute(FACES_OF_THEIR_PHOTOS, [list(asked)]):
        by_photo.setdefault(row[1], {}).setdefault(row[2], []).append(row)
    found = []
    for packs in by_photo.values():
        for pack, faces in packs.items():
            if not any(f[0] in asked for f in faces):
                continue
            boxes = np.array([f[3] for f in faces], dtype=np.float64)
            for other, theirs in packs.items():
                if other == pack:
                    continue
                score = overlaps(boxes, np.array([t[3] for t in theirs], dtype=np.float64))
                found += [(faces[i][0], theirs[j][0], theirs[j][4])
                          for i, j, _ in best_pairs(score, min_overlap) if faces[i][0] in asked]
    return found


def people_of_faces(conn: psycopg.Connection, face_ids: Sequence[int]
                    ) -> dict[int, tuple[int, str | None, bool]]:
    """face id -> (person id, name, hidden) of those of these faces that have a person."""
    return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(PEOPLE_OF_FACES, [list(face_ids)])}


def held_faces(conn: psycopg.Connection, face_ids: Sequence[int]
               ) -> list[tuple[int, int, str | None]]:
    """(face id, person id, person name) of the faces a human placed in a person."""
    return [tuple(r) for r in conn.execute(HELD_FACES, [list(face_ids)])]


def erase_faces(conn: psycopg.Connection, person_id: int
                ) -> tuple[list[int], int, list[str]]:
    """Delete the person, their faces and the photos left without a face: (ids of the faces
    deleted, how many photos were deleted, every path of those photos)."""
    deleted = conn.execute(ERASE_FACES, [person_id]).fetchall()
    photo_ids = sorted({photo_id for _, photo_id in deleted})
    gone = conn.execute(ERASED_PHOTOS, [photo_ids]).fetchall() if photo_ids else []
    # a photo at two paths is one photo deleted (it was counted by its paths)
    photos, paths = len({photo_id for photo_id, _ in gone}), [path for _, path in gone]
    store.recount_faces(conn, photo_ids)
    conn.execute(DELETE_PERSON, [person_id])
    # else kept until added up, and not scrubbed; after an add-up under way, whose rows for
    # the person this would pass over
    conn.execute(ADD_UP_LOCK)
    conn.execute(FORGET_FACE_COUNTS, [person_id])
    return [face_id for face_id, _ in deleted], photos, paths


# How long the scrub waits for each table's lock where the database sets no bound. VACUUM FULL
# waits for every transaction that has read the table (an application's report in a long
# transaction), and every reader that comes after waits behind it: an erase held a Django
# project's reads of pgface's tables for as long as one such transaction (20 s, 15 s for a
# count). The erase stands without it (scrub_failed), and `pgface people scrub` finishes it.
SCRUB_LOCK_TIMEOUT = "3s"


# The statistics of a scrubbed table, and of its expression indexes, that ANALYZE keeps:
# a table with no row left is not analysed again, its old values stay (PostgreSQL 18 clears
# them with pg_clear_attribute_stats; before it, a superuser deletes them).
STATISTICS_OF_EMPTIED = """
SELECT s.schemaname, s.tablename, s.attname, s.inherited
FROM pg_stats s
JOIN pg_class c ON c.relname = s.tablename
JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE n.nspname = current_schema() AND coalesce(i.indrelid, c.oid) = ANY(%s::regclass[])
"""
CLEAR_STATISTICS = "SELECT pg_clear_attribute_stats(%s, %s, %s, %s)"
DELETE_STATISTICS = """
DELETE FROM pg_statistic WHERE starelid IN (
    SELECT c.oid FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
    WHERE coalesce(i.indrelid, c.oid) = ANY(%s::regclass[]))
"""


def clear_statistics_of_emptied_tables(conn: psycopg.Connection) -> None:
    """Drop the planner's statistics of the scrubbed tables that hold no row now (an erase of
    the last person, the before-images every erase drops): ANALYZE leaves an empty table's
    old ones, values of the erased rows among them. Where the server allows neither way
    (before PostgreSQL 18, not a superuser), they stay until rows come again (docs/people.md)."""
    emptied = [t for t in SCRUB_TABLES if conn.execute(pgsql.SQL(
        "SELECT NOT EXISTS (SELECT FROM {})").format(pgsql.Identifier(t))).fetchone()[0]]
    if not emptied:
        return
    if conn.info.server_version >= 180000:
        for row in conn.execute(STATISTICS_OF_EMPTIED, [emptied]).fetchall():
            conn.execute(CLEAR_STATISTICS, list(row))
        return
    try:
        conn.execute(DELETE_STATISTICS, [emptied])
    except psycopg.errors.InsufficientPrivilege:
        pass


def scrub(conn: psycopg.Connection) -> None:
    """Rewrite the tables that held erased rows; needs autocommit (VACUUM cannot run in a
    transaction). CHECKPOINT, where allowed, lets the server recycle the older WAL sooner."""
    if conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0] == "0":
        conn.execute(pgsql.SQL("SET lock_timeout = {}").format(
            pgsql.Literal(SCRUB_LOCK_TIMEOUT)))
    try:
        # ANALYZE too: the planner's statistics (pg_statistic, shown in pg_stats) sample
        # values of the rows, erased names and paths among them, and VACUUM FULL leaves them
        # (probe erase35); analysed again, a table's are of the rows it holds now
        conn.execute(pgsql.SQL("VACUUM (FULL, ANALYZE) {}").format(
            pgsql.SQL(", ").join(pgsql.Identifier(t) for t in SCRUB_TABLES)))
        clear_statistics_of_emptied_tables(conn)
        # The statistics replaced stay in the catalog's file as dead rows (probe reprobe35):
        # rewritten too, where this role may (a superuser, the database's owner; another is
        # told "skipping it", a warning: docs/people.md says what stays then). Small: a
        # moment's lock.
        conn.execute("VACUUM FULL pg_catalog.pg_statistic")
    except psycopg.errors.LockNotAvailable as exc:
        raise PgfaceError(
            "another session holds the tables (a transaction that has read them, still "
            "open): not waited for, as every reader would have queued behind the wait; "
            f"try again when it has ended ({exc.diag.message_primary})") from exc
    finally:
        conn.execute("RESET lock_timeout")
    try:
        conn.execute(CHECKPOINT)
    except psycopg.errors.InsufficientPrivilege:
        pass  # a shared server's non-superuser: the next scheduled checkpoint does it

