"""A people library made from the indexed LFW View 1 photos, without indexing them again.

`lfw_library`'s database is copied whole (CREATE DATABASE ... TEMPLATE: a file copy, a few
seconds), then each LFW folder becomes a person: its photos' largest faces. Folders A-L are
named people (named by hand: 'user'), the others unnamed people as clustering would leave them
('cluster'), so the people page has both kinds.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from pgface import Pgface

# Updating every face's person would insert each face into the HNSW index again, and building
# the index anew takes as long (30 s on a loaded machine): the copy goes without it, since the
# people pages never search by vector.
HNSW_INDEXES = """
SELECT indexname, indexdef FROM pg_indexes
WHERE tablename = 'faces' AND indexdef LIKE '%USING hnsw%'
"""

# Each photo's largest face, and the LFW folder (the person) the photo is in.
CHOSEN_FACES = """
CREATE TEMP TABLE chosen AS
SELECT DISTINCT ON (f.photo_id) f.id AS face_id,
       replace(split_part(ph.path, '/', -2), '_', ' ') AS folder
FROM faces f JOIN photos ph ON ph.id = f.photo_id
ORDER BY f.photo_id, (f.bbox[3] - f.bbox[1]) * (f.bbox[4] - f.bbox[2]) DESC, f.id
"""
PEOPLE_OF_FOLDERS = "INSERT INTO people (name) SELECT DISTINCT folder FROM chosen ORDER BY 1"
ASSIGN = """
UPDATE faces f SET person_id = p.id, clustered_at = now(),
       assigned_by = CASE WHEN p.name < 'M' THEN 'user' ELSE 'cluster' END
FROM chosen c JOIN people p ON p.name = c.folder
WHERE f.id = c.face_id
"""
UNNAME = "UPDATE people SET name = NULL WHERE name >= 'M'"
COUNTS = """
SELECT count(*) FILTER (WHERE name IS NOT NULL), count(*) FILTER (WHERE name IS NULL)
FROM people
"""


def copy_database(library: Pgface, server_url: str, source: str, target: str) -> None:
    """A copy of the library's database; its pool is closed for that (a template database
    takes no other connection) and opens again on its next use."""
    library.close()
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(target),
                                                              sql.Identifier(source))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(target)))
        for attempt in range(20):  # a connection closing may still be leaving the server
            try:
                conn.execute(create)
                return
            except psycopg.errors.ObjectInUse:
                if attempt == 19:
                    raise
                time.sleep(0.5)


def make_people(url: str) -> tuple[int, int]:
    """One person per LFW folder, the HNSW index dropped; returns (named, unnamed) people."""
    with psycopg.connect(url) as conn:
        for name, _ in conn.execute(HNSW_INDEXES).fetchall():
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
        for statement in (CHOSEN_FACES, PEOPLE_OF_FOLDERS, ASSIGN, UNNAME):
            conn.execute(statement)
        named, unnamed = conn.execute(COUNTS).fetchone()
    return named, unnamed
