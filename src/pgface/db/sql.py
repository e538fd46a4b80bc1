"""Every SQL statement of the core, as constants. Parameters are always bound, never formatted."""

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""
# Serialises concurrent start-ups so a migration runs exactly once.
MIGRATIONS_LOCK = "SELECT pg_advisory_xact_lock(hashtext('pgface.migrations'))"
# The other sessions holding a lock on a table, index or sequence of the library's schema,
# for a migration that waits: their process id, application, role and state
LIBRARY_LOCK_HOLDERS = """
SELECT DISTINCT a.pid, a.application_name, a.usename, a.state
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE n.nspname = %s AND l.granted AND l.pid <> pg_backend_pid()
ORDER BY a.pid
"""
TRY_MIGRATIONS_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('pgface.migrations'))"
CURRENT_LOCK_TIMEOUT = "SELECT current_setting('lock_timeout')"  # LOCK_TIMEOUT sets it
APPLIED_MIGRATIONS = "SELECT version FROM schema_migrations"
RECORD_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)"

# pgface's own schema (connection.py): where the vector extension lives, and whether this is a
# database made before pgface had a schema (its schema_migrations in public, none in ours).
SCHEMA_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)"
VECTOR_SCHEMA = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector'
"""
# pgvector's schema where this role may not use it (its type unseen: "type vector does not
# exist", or every pooled connection's set-up failing until the pool's 30 s were out)
VECTOR_SCHEMA_UNUSABLE = """
SELECT n.nspname, current_user::text FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'vector' AND NOT has_schema_privilege(n.oid, 'USAGE')
"""
CURRENT_ROLE_NAME = "SELECT current_user::text"
SET_SEARCH_PATH = "SELECT set_config('search_path', %s, %s)"
# A library's table of migrations, read before anything is written (connection.migrate):
# an up-to-date library is only read.
SCHEMA_MIGRATIONS_TABLE = "SELECT to_regclass(format('%%I.schema_migrations', %s::text))"
# Whether this connection may write what a library needs: (transaction_read_only, a standby,
# the database, the role, whether it may create schemas, whether the schema exists).
MAY_WRITE = """
SELECT current_setting('transaction_read_only'), pg_is_in_recovery(), current_database(),
       current_user::text, has_database_privilege(current_database(), 'CREATE'),
       EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)
"""
# The role, the schema's owner (NULL where there is no such schema), and the other roles that
# own tables in it, for a start-up refused a right (connection._not_permitted).
SCHEMA_OWNERS = """
SELECT current_user::text, pg_get_userbyid(n.nspowner)::text,
       coalesce((SELECT array_agg(DISTINCT pg_get_userbyid(c.relowner)::text)
                 FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
                   AND pg_get_userbyid(c.relowner) <> current_user), '{}')
FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = %s
"""
# A library of pgface's in public, made before pgface had a schema (or by such an older pgface
# since): its schema_migrations a table with pgface's columns, beside its photos (sha256) and
# faces (embedding), which every version had: an application's own schema_migrations of those
# columns was taken for a library, and pgface moved and migrated the application's tables, and
# failed (probe pgserver36). The view a move leaves in its
# place (MOVED_STUB) is no library. pg_attribute, as information_schema.columns shows only the
# columns this role may read. Nor is a photo application's own photos(sha256) and
# faces(embedding) beside its schema_migrations (probe reprobe37): every column the first
# pgface's photos and faces had, and its integer version, are asked for too, which the catalog
# shows a role that may not read the tables (reprobe37b, reprobe37c: an application's, not
# granted, with sha256, face_count, embedding, landmarks and det_score of its own), and
# where this role may read that table, PUBLIC_FIRST_MIGRATION says whether it holds pgface's
# first migration (connection.public_library); the second column says whether it may.
_PUBLIC_LIBRARY = """
EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass('public.schema_migrations')
          AND c.relkind IN ('r', 'p')
          AND (SELECT count(*) = 3 FROM pg_attribute a WHERE a.attrelid = c.oid
               AND NOT a.attisdropped AND a.attname IN ('version', 'name', 'applied_at')))
AND (SELECT count(*) = 7 FROM pg_attribute a WHERE a.attrelid = to_regclass('public.photos')
     AND a.attname IN ('sha256', 'path', 'size_bytes', 'width', 'height', 'indexed_at',
                       'face_count') AND NOT a.attisdropped)
AND (SELECT count(*) = 7 FROM pg_attribute a WHERE a.attrelid = to_regclass('public.faces')
     AND a.attname IN ('photo_id', 'model', 'embedding', 'bbox', 'landmarks', 'det_score',
                       'crop') AND NOT a.attisdropped)
AND (SELECT format_type(a.atttypid, a.atttypmod) = 'integer' FROM pg_attribute a
     WHERE a.attrelid = to_regclass('public.schema_migrations') AND a.attname = 'version')
"""
_READ_PUBLIC_MIGRATIONS = """
CASE WHEN found THEN has_table_privilege('public.schema_migrations', 'SELECT') ELSE false END
"""
PUBLIC_LIBRARY = f"""
SELECT found, {_READ_PUBLIC_MIGRATIONS} FROM (SELECT {_PUBLIC_LIBRARY} AS found) library
"""
LEGACY_PUBLIC_TABLES = f"""
SELECT found, {_READ_PUBLIC_MIGRATIONS} FROM (SELECT {_PUBLIC_LIBRARY}
    AND to_regclass(format('%%I.schema_migrations', %s::text)) IS NULL AS found) library
"""
# pgface records its first migration so; a column of another type is read as its text
PUBLIC_FIRST_MIGRATION = """
SELECT EXISTS (SELECT 1 FROM public.schema_migrations
               WHERE version::text = '1' AND name::text = 'initial')
"""
# The roles owning pgface's tables in public (their names given), for a move this role may not
# make (connection._check_may_write, _not_permitted).
PUBLIC_TABLE_OWNERS = """
SELECT coalesce(array_agg(DISTINCT pg_get_userbyid(c.relowner)::text), '{}')
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)
  AND c.relkind IN ('r', 'p')
"""
# What a move leaves in public for an older pgface, from before pgface had a schema: its
# start-up runs CREATE TABLE IF NOT EXISTS schema_migrations (skipped: a view has the name),
# then reads it, and the view's function stops it with MESSAGE. Without it, that pgface made
# a new, empty library in public and indexed into it (probe upgrade22). Formatted with
# psycopg.sql: MESSAGE and COMMENT are literals.
MOVED_STUB = """
CREATE FUNCTION public.pgface_library_moved()
RETURNS TABLE (version integer, name text, applied_at timestamptz)
LANGUAGE plpgsql AS $moved$
BEGIN
    RAISE EXCEPTION USING MESSAGE = {message};
END
$moved$;
CREATE VIEW public.schema_migrations AS SELECT * FROM public.pgface_library_moved();
COMMENT ON VIEW public.schema_migrations IS {comment};
"""
# (kind, name) of the objects of ours in public: pg_class relkinds r table, v view,
# m materialized view, S sequence (identity sequences move with their table), and types.
OBJECTS_IN_PUBLIC = """
SELECT CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
                      WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'SEQUENCE' END, c.relname
FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT 'TYPE', t.typname FROM pg_type t
WHERE t.typnamespace = 'public'::regnamespace AND t.typname = ANY(%s)
  AND (t.typtype IN ('e', 'd') OR t.typrelid <> 0 AND (SELECT relkind FROM pg_class
                                                       WHERE oid = t.typrelid) = 'c')
"""

KNOWN_HASHES = "SELECT sha256 FROM photos WHERE sha256 = ANY(%s)"
PHOTO_ID_BY_SHA256 = "SELECT id FROM photos WHERE sha256 = %s"
# Each known photo among these hashes, whether this pack has analysed it, and whether that
# analysis is of an older revision than %(revision)s (models.ANALYSIS_REVISION).
PHOTOS_BY_SHA256 = """
SELECT ph.sha256, ph.id, a.photo_id IS NOT NULL, coalesce(a.revision < %(revision)s, false)
FROM photos ph
LEFT JOIN photo_analyses a ON a.photo_id = ph.id AND a.model = %(model)s
WHERE ph.sha256 = ANY(%(hashes)s)
"""
PHOTO_IDS_BY_SHA256 = "SELECT sha256, id FROM photos WHERE sha256 = ANY(%s)"
# The same, each row kept until the transaction ends (a delete of it waits): a photo another
# upload or run had just stored, deleted before this one recorded its path there, failed that
# insert on the foreign key (store.add_photos).
PHOTO_IDS_BY_SHA256_KEPT = PHOTO_IDS_BY_SHA256 + " FOR KEY SHARE"
# The pack's analysis of each photo; a photo another indexer analysed first returns nothing,
# so its faces are stored once.
INSERT_ANALYSES = """
INSERT INTO photo_analyses (photo_id, model, face_count, revision)
SELECT photo_id, %s, face_count, %s
FROM unnest(%s::bigint[], %s::integer[]) AS a(photo_id, face_count)
ON CONFLICT (photo_id, model) DO NOTHING
RETURNING photo_id
"""
# Of these photos, those whose analysis by this pack is still of an older revision than the
# one given, locked until the transaction ends: another run analysing them again meanwhile
# waits, then finds them current and passes over them (index.Indexer._store).
LOCK_OUTDATED_ANALYSES = """
SELECT photo_id FROM photo_analyses
WHERE model = %s AND photo_id = ANY(%s) AND revision < %s
ORDER BY photo_id
FOR UPDATE
"""
# The faces of a pack in these photos, each with its photo: those an analysis replaces.
FACES_OF_PACK_IN_PHOTOS = """
SELECT photo_id, id FROM faces WHERE photo_id = ANY(%s) AND model = %s ORDER BY id
"""
# A photo analysed again: its analysis takes the new revision, time and face count.
ANALYSED_AGAIN = """
UPDATE photo_analyses a SET revision = %s, analysed_at = now(), face_count = n.face_count
FROM unnest(%s::bigint[], %s::integer[]) AS n(photo_id, face_count)
WHERE a.photo_id = n.photo_id AND a.model = %s
"""
# Faces an analysis replaced (their people given to the new faces, or kept waiting for the
# photo: REMEMBER_PEOPLE): deleted with the before-images of those whose people the new faces
# took (CARRY_BEFORE_IMAGES copied them there).
DELETE_REPLACED_FACES = """
WITH carried AS (
    DELETE FROM people_change_rows WHERE tbl = 'faces' AND row_id = ANY(%(carried)s)
)
DELETE FROM faces WHERE id = ANY(%(faces)s)
"""

INSERT_PHOTOS = """
INSERT INTO photos (sha256, path, size_bytes, width, height, taken_at, face_count)
SELECT * FROM unnest(%s::bytea[], %s::text[], %s::bigint[], %s::integer[], %s::integer[],
                     %s::timestamp[], %s::integer[])
ON CONFLICT (sha256) DO NOTHING
RETURNING id, sha256
"""

COPY_FACES = """
COPY faces (photo_id, model, embedding, bbox, landmarks, det_score, crop,
           quality, face_size, yaw, pitch, sharpness)
FROM STDIN WITH (FORMAT BINARY)
"""
COPY_FACES_TYPES = ["int8", "text", "vector", "float4[]", "float4[]", "float4", "bytea",
                    "float4", "float4", "float4", "float4", "float4"]

# Session knobs for the nearest-neighbour scan, bound as parameters through set_config.
SET_EF_SEARCH = "SELECT set_config('hnsw.ef_search', %s, true)"
SET_ITERATIVE_SCAN = "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"

# The k nearest inside a materialised CTE so the HNSW index serves the ORDER BY ... LIMIT;
# the threshold is applied outside it (pgvector README, "Filtering").
# %(scan)s rows a few more than %(k)s, the k nearest of them in (distance, id) order: faces at
# the same distance (pixel-identical copies of a photo: a PNG saved again, a JPEG without its
# EXIF) were cut at k in the scan's order, so the top 2 was not the start of the top 10 (the
# photo itself gave way to its copies). The HNSW index orders by the distance alone, and
# a second key would keep PostgreSQL from using it. Each row says the scan's last distance
# and its rows: where the k-th ties with the last, more may tie past it (store.nearest_faces
# scans further).
NEAREST_FACES = """
WITH nearest AS MATERIALIZED (
    SELECT id, photo_id, person_id, bbox, embedding <=> %(query)s AS distance
    FROM faces
    WHERE model = %(model)s
    ORDER BY embedding <=> %(query)s
    LIMIT %(scan)s
)
SELECT n.id, n.photo_id, ph.path, n.bbox, n.person_id, pe.name, 1 - n.distance AS similarity,
       n.distance, (SELECT max(distance) FROM nearest), (SELECT count(*) FROM nearest)
FROM nearest n
JOIN photos ph ON ph.id = n.photo_id
LEFT JOIN people pe ON pe.id = n.person_id
WHERE n.distance <= %(max_distance)s
ORDER BY n.distance, n.id
LIMIT %(k)s
"""

# A person to show or count (people p): named, or holding a face shown under the active pack
# (%(model)s; people_store.SHOWN_FACE): an unnamed person founded by clustering under another
# pack was listed and reviewed with 0 faces and no cover. An unnamed person with no face left
# is kept while it holds what was kept for a forgotten photo (people_store.py).
def shown_face(face: str) -> str:
    """Whether the face aliased FACE is shown under the pack %(model)s: that pack's, or, in a
    photo it has not analysed, one of the photo's first pack by name (migration 0025's rule,
    pgface_first_pack, which the counts' triggers use; written out here, as a call of that
    function would not be inlined by the planner)."""
    return f"""({face}.model = %(model)s OR (NOT EXISTS (
    SELECT 1 FROM photo_analyses a WHERE a.photo_id = {face}.photo_id AND a.model = %(model)s)
 AND {face}.model = (SELECT b.model FROM photo_analyses b WHERE b.photo_id = {face}.photo_id
                     ORDER BY b.model COLLATE "C" LIMIT 1)))"""


SOMEONE = f"""(p.name IS NOT NULL OR EXISTS (
    SELECT 1 FROM faces h WHERE h.person_id = p.id AND {shown_face("h")}))"""
STATS = f"""
SELECT (SELECT count(*) FROM photos) AS photos,
       (SELECT count(*) FROM faces) AS faces,
       (SELECT count(*) FROM people p WHERE {SOMEONE}) AS people,
       (SELECT count(*) FROM people p WHERE p.hidden AND {SOMEONE}) AS hidden_people,
       (SELECT count(*) FROM photos WHERE face_count = 0) AS photos_without_faces,
       pg_database_size(current_database()) AS database_bytes,
       current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector_version
"""
FACES_PER_MODEL = "SELECT model, count(*) FROM faces GROUP BY model ORDER BY model"

# NO KEY UPDATE, not SHARE: an upload keeping its file updates the row (REFRESH_DISPLAY_PATHS);
# two uploads of one photo holding it FOR SHARE each waited for the other's lock, one holding
# the file's lock too: a deadlock, answered 503 (probe api39). Faces' and paths' inserts, which
# take KEY SHARE, do not wait for it.
LOCK_PHOTO = "SELECT 1 FROM photos WHERE id = %s FOR NO KEY UPDATE"
# An uploaded photo's kept file is written, and unlinked, under this lock of its path (until
# the transaction ends): a delete's unlink, which runs after its commit, removed the file of an
# upload that had stored the same bytes again meanwhile (one file name per content).
UPLOAD_FILE_LOCK = """
SELECT pg_advisory_xact_lock(hashtext('pgface.upload ' || current_schema() || ' ' || %s))
"""
PATH_HELD = "SELECT EXISTS (SELECT 1 FROM photo_paths WHERE path_bytes = %s)"
GET_PHOTO = """
SELECT id, path, sha256, size_bytes, width, height, taken_at, indexed_at, face_count
FROM photos WHERE id = %s
"""
LIST_PHOTOS = """
SELECT id, path, sha256, size_bytes, width, height, taken_at, indexed_at, face_count
FROM photos ORDER BY id LIMIT %s OFFSET %s
"""
COUNT_PHOTOS = "SELECT count(*) FROM photos"
DELETE_PHOTO = "DELETE FROM photos WHERE id = %s"
FACES_OF_PHOTO = """
SELECT f.id, f.photo_id, f.model, f.bbox, f.landmarks, f.det_score, f.person_id, pe.name,
       f.quality, f.face_size, f.yaw, f.pitch, f.sharpness
FROM faces f LEFT JOIN people pe ON pe.id = f.person_id
WHERE f.photo_id = %s ORDER BY f.id
"""
GET_FACE = """
SELECT f.id, f.photo_id, f.model, f.bbox, f.landmarks, f.det_score, f.person_id, pe.name,
       f.quality, f.face_size, f.yaw, f.pitch, f.sharpness
FROM faces f LEFT JOIN people pe ON pe.id = f.person_id
WHERE f.id = %s
"""
FACE_CROP = "SELECT crop FROM faces WHERE id = %s"
# A stored face as a query: its vector, box and the size of its photo.
FACE_AS_QUERY = """
SELECT f.model, f.embedding, f.bbox, f.landmarks, f.det_score, ph.width, ph.height,
       f.quality, f.face_size, f.yaw, f.pitch, f.sharpness
FROM faces f JOIN photos ph ON ph.id = f.photo_id WHERE f.id = %s
"""
# Faces of a model whose quality is below a floor (pgface.models.quality): not clustered.
FACES_BELOW_QUALITY = "SELECT id FROM faces WHERE model = %s AND quality < %s"
DELETE_FACE = "DELETE FROM faces WHERE id = %s RETURNING photo_id"
# photos.face_count stays the number of faces stored for the photo after faces are deleted.
RECOUNT_FACES = """
UPDATE photos ph SET face_count = (SELECT count(*) FROM faces f WHERE f.photo_id = ph.id)
WHERE ph.id = ANY(%s)
"""
# ... and each pack's analysis of it: an erased face was still counted there (probe erase35)
RECOUNT_ANALYSED_FACES = """
UPDATE photo_analyses a SET face_count = (
    SELECT count(*) FROM faces f WHERE f.photo_id = a.photo_id AND f.model = a.model)
WHERE a.photo_id = ANY(%s)
"""

# Where each photo is: paths (exact bytes and readable text), newest first.
PATHS_OF_PHOTOS = """
SELECT photo_id, path_bytes, path FROM photo_paths
WHERE photo_id = ANY(%s) ORDER BY photo_id, seen_at DESC, path_bytes
"""
# Held by every index run for its life (a session lock, shared: runs go on side by side), so
# that a run can tell whether another may still record paths: only a run alone forgets the
# former versions that stopped runs left (index.forget_formers). Per schema.
INDEX_RUN_LOCK = ("SELECT pg_advisory_lock_shared(hashtext('pgface.index-run'), "
                  "hashtext(current_schema()))")
INDEX_RUN_UNLOCK = ("SELECT pg_advisory_unlock_shared(hashtext('pgface.index-run'), "
                    "hashtext(current_schema()))")
# Taken by a run holding INDEX_RUN_LOCK, for what it does alone, then given back: granted only
# where no other session holds the lock (a session's own shared lock does not stand in its
# way); while held, a run starting waits for its shared one.
INDEX_RUN_ALONE = ("SELECT pg_try_advisory_lock(hashtext('pgface.index-run'), "
                   "hashtext(current_schema()))")
INDEX_RUN_ALONE_DONE = ("SELECT pg_advisory_unlock(hashtext('pgface.index-run'), "
                        "hashtext(current_schema()))")
RECORD_FORMERS = """
INSERT INTO former_photos (former_id, photo_id, by_name)
SELECT f, p, %s FROM unnest(%s::bigint[], %s::bigint[]) t(f, p) ON CONFLICT DO NOTHING
"""
# The recorded formers of these photos (kept for a pack, or a stopped run's), with the photos
# now at their paths.
RECORDED_FORMERS = """
SELECT former_id, photo_id FROM former_photos WHERE former_id = ANY(%s) ORDER BY 1, 2
"""
FORGET_FORMERS_RECORDED = """
DELETE FROM former_photos fp
USING unnest(%(formers)s::bigint[], %(now)s::bigint[]) p(former, now)
WHERE fp.former_id = p.former AND fp.photo_id = p.now
"""
# Which packs analysed each of these photos.
PACKS_BY_PHOTO = "SELECT photo_id, model FROM photo_analyses WHERE photo_id = ANY(%s)"
# The recorded formers whose new version is at one of %(roots)s (files given to a run) or under
# one of its folders ([low, high) byte ranges: paths.prefix_range).
STORED_FORMERS_UNDER = """
SELECT DISTINCT fp.former_id, fp.photo_id FROM former_photos fp
JOIN photo_paths pp ON pp.photo_id = fp.photo_id
WHERE pp.path_bytes = ANY(%(roots)s) OR EXISTS (
    SELECT 1 FROM unnest(%(lows)s::bytea[], %(highs)s::bytea[]) r(low, high)
    WHERE pp.path_bytes >= r.low AND pp.path_bytes < r.high)
"""
# Of (former photo, a photo that holds its content now) pairs: the named people of the
# former's faces (hidden ones aside: nothing of theirs to tell) who hold no face of that
# photo, and how many faces they had there (one pack's: each pack found the same faces), by
# photo: the names an edit lost (cropped out, or turned so that the detector misses the
# face), which index._forget_formers warns of before the formers go.
PEOPLE_LEFT_BEHIND = """
SELECT c.place, p.id, p.name, max(c.faces) FROM (
    SELECT pair.place, f.person_id, count(*) AS faces
    FROM unnest(%(formers)s::bigint[], %(places)s::bigint[]) pair(former, place)
    JOIN faces f ON f.photo_id = pair.former AND f.person_id IS NOT NULL
    WHERE NOT EXISTS (SELECT 1 FROM faces g
                      WHERE g.photo_id = pair.place AND g.person_id = f.person_id)
    GROUP BY pair.place, f.person_id, f.model) c
JOIN people p ON p.id = c.person_id
WHERE p.name IS NOT NULL AND NOT p.hidden
GROUP BY c.place, p.id, p.name ORDER BY c.place, p.name, p.id
"""
# Each keep change's (keep, face, former) pairs: the faces it gave the person of a former face,
# its payload's faces and former_faces, pairwise (index._give_kept); a null former (a face
# found again, given what was kept for it) left out, and a keep's lists of unequal length
# (before d339da4 a face found again had no former face) pair none. Read by a removal's
# named list (NAMED_ON_PHOTOS) and by the splits a full clustering keeps (people_store).
KEEP_PAIRS = """
SELECT c.id AS keep, k.face::bigint AS face, k.former::bigint AS former
FROM people_changes c
CROSS JOIN LATERAL ROWS FROM (jsonb_array_elements_text(c.payload->'faces'),
                              jsonb_array_elements_text(c.payload->'former_faces')
                             ) k(face, former)
WHERE c.kind = 'keep'
  AND jsonb_typeof(c.payload->'faces') = 'array'
  AND jsonb_typeof(c.payload->'former_faces') = 'array'
  AND jsonb_array_length(c.payload->'faces') = jsonb_array_length(c.payload->'former_faces')
  AND k.former IS NOT NULL
"""
# The names of the named, shown people of these photos' faces (a removal tells them), but a
# face whose person another version of it holds too (one a keep change gave its person, or
# a chain of them: edited twice, probe reprobe50; or a version of the face it is a version
# of: probe upgrade50; the keeps' payload faces and former_faces, pairwise): a photo edited
# in place while a copy kept its old content, the copy deleted, or a former self given over
# at the prune, lost nobody (a prune said it had lost the names of people it had not: probe
# living49).
NAMED_ON_PHOTOS = f"""
WITH RECURSIVE named AS (
    SELECT f.id, f.person_id, p.name FROM faces f JOIN people p ON p.id = f.person_id
    WHERE f.photo_id = ANY(%(photos)s) AND p.name IS NOT NULL AND NOT p.hidden),
edited AS (
    SELECT p.face, p.former FROM ({KEEP_PAIRS}) p WHERE EXISTS (SELECT 1 FROM named)),
-- each named face's versions: those the keeps made of it, down the chain (edited twice: the
-- middle version's faces are gone with it), and up and down again (a copy's face and the
-- edited photo's, both analysed again by `index --pending`, are versions of one face, the
-- original's: probe upgrade50). UNION keeps each once, so the walk ends.
linked(face, other) AS (
    SELECT former, face FROM edited UNION ALL SELECT face, former FROM edited),
versions(origin, face) AS (
    SELECT n.id, n.id FROM named n
    UNION
    SELECT v.origin, l.other FROM versions v JOIN linked l ON l.face = v.face),
-- The named faces another version of which, outside these photos, holds the same person. As
-- a NOT IN of a set made once: a NOT EXISTS asked of each named face walked every version
-- each time, where the planner took the named faces for a few (the photos' array is no table
-- it has statistics of): 9,000 named faces of 100,000 photos removed took 28 s, in a library
-- of 12,000 people more than 10 minutes (probe scale37).
-- Each version looked up by its id, the few there are: joined through the named faces, every
-- face of their people was read (9,000 named faces of people of 3,000: 27 million rows).
other_versions AS MATERIALIZED (SELECT origin, face FROM versions WHERE face <> origin),
kept_elsewhere AS (
    SELECT v.origin FROM other_versions v
    JOIN faces g ON g.id = v.face
    JOIN faces o ON o.id = v.origin
    WHERE g.person_id = o.person_id AND g.photo_id <> ALL(%(photos)s))
SELECT DISTINCT n.name FROM named n
WHERE n.id NOT IN (SELECT origin FROM kept_elsewhere)
ORDER BY 1
"""
# The photos these faces are of.
PHOTOS_OF_FACES = "SELECT DISTINCT photo_id FROM faces WHERE id = ANY(%s)"
# Of these photos, those none of whose faces holds a person.
PHOTOS_WITH_NOBODY = """
SELECT ph.id FROM unnest(%s::bigint[]) ph(id)
WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.photo_id = ph.id AND f.person_id IS NOT NULL)
"""
# Of (former, photo now at its path) pairs, the formers with a face a person holds in a pack
# that has not analysed the photo now there, the person holding no face of that photo (in
# any pack: where they do, that pack's faces give them over by place): index._forget_formers
# keeps them for that pack.
FORMERS_WAITING_FOR_PACKS = """
SELECT DISTINCT p.former FROM unnest(%(formers)s::bigint[], %(now)s::bigint[]) p(former, now)
JOIN faces f ON f.photo_id = p.former AND f.person_id IS NOT NULL
WHERE NOT EXISTS (SELECT 1 FROM photo_analyses a WHERE a.photo_id = p.now AND a.model = f.model)
  AND NOT EXISTS (SELECT 1 FROM faces g WHERE g.photo_id = p.now AND g.person_id = f.person_id)
  -- a pack that analysed both versions could not place them (their face cropped out): no
  -- other pack will
  AND NOT EXISTS (SELECT 1 FROM faces h JOIN photo_analyses b
                  ON b.photo_id = p.now AND b.model = h.model
                  WHERE h.photo_id = p.former AND h.person_id = f.person_id)
"""
# The formers recorded for these photos about to be deleted as formers themselves (an edit
# edited again) go to the photos now at their paths: the cascade dropped them, and a former
# kept for a pack was left with no path and no record, its people on it for good.
FORMERS_OF_DELETED = """
SELECT DISTINCT fp.former_id FROM former_photos fp WHERE fp.photo_id = ANY(%s)
"""
REPOINT_FORMERS = """
INSERT INTO former_photos (former_id, photo_id, by_name)
SELECT fp.former_id, p.now, fp.by_name
FROM former_photos fp
JOIN unnest(%(deleted)s::bigint[], %(now)s::bigint[]) p(deleted, now) ON fp.photo_id = p.deleted
WHERE fp.former_id <> p.now
ON CONFLICT DO NOTHING
RETURNING photo_id
"""
PACKS_OF_PHOTOS = "SELECT DISTINCT model FROM photo_analyses WHERE photo_id = ANY(%s) ORDER BY 1"
# The recorded (former, new version) pairs of these photos whose former this pack analysed, and
# whether the pair was found by file name (a move and edit: migration 0037).
FORMERS_OF_PACK = """
SELECT fp.former_id, fp.photo_id, fp.by_name FROM former_photos fp
WHERE fp.photo_id = ANY(%s)
  AND EXISTS (SELECT 1 FROM photo_analyses a WHERE a.photo_id = fp.former_id AND a.model = %s)
ORDER BY fp.former_id, fp.photo_id
"""
# Formers no longer such: found at a path again (a swap, a move the run reached). Those
# deleted went with their rows; those kept for a file a run did not read stay, to be looked
# at again.
DROP_SETTLED_FORMERS = """
DELETE FROM former_photos fp
WHERE fp.former_id = ANY(%s) AND EXISTS (SELECT 1 FROM photo_paths pp
                                         WHERE pp.photo_id = fp.former_id)
"""
STAMPS_OF_PHOTOS = """
SELECT path_bytes, size_bytes, mtime_ns, ctime_ns FROM photo_paths WHERE photo_id = ANY(%s)
"""
OWNERS_OF_PATHS = """
SELECT path_bytes, photo_id, size_bytes, mtime_ns, ctime_ns FROM photo_paths
WHERE path_bytes = ANY(%s)
"""
# A path holds one photo: a path seen with new content moves to that photo. Unchanged paths are
# not rewritten, so only new and moved paths come back.
RECORD_PATHS = """
INSERT INTO photo_paths (path_bytes, photo_id, path, size_bytes, mtime_ns, ctime_ns)
SELECT s.path_bytes, ph.id, s.path, s.size_bytes, s.mtime_ns, s.ctime_ns
FROM unnest(%s::bytea[], %s::bytea[], %s::text[], %s::bigint[], %s::bigint[], %s::bigint[])
     AS s(sha256, path_bytes, path, size_bytes, mtime_ns, ctime_ns)
JOIN photos ph ON ph.sha256 = s.sha256
ON CONFLICT (path_bytes) DO UPDATE
SET photo_id = EXCLUDED.photo_id, path = EXCLUDED.path, seen_at = now(),
    size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns,
    ctime_ns = EXCLUDED.ctime_ns
WHERE photo_paths.photo_id IS DISTINCT FROM EXCLUDED.photo_id
RETURNING path_bytes, photo_id
"""
# An upload's kept copy of a photo stored from a folder, recorded as its oldest path: the
# photo's shown path (the newest) stays the folder's file, where the kept copy, newest, named
# a hash in the upload folder in every answer, the library's own file no more (probe docs31)
KEPT_COPY_OLDEST = """
UPDATE photo_paths pp
SET seen_at = (SELECT min(o.seen_at) FROM photo_paths o
               WHERE o.photo_id = pp.photo_id AND o.path_bytes <> pp.path_bytes)
              - interval '1 microsecond'
WHERE pp.path_bytes = %s
  AND EXISTS (SELECT 1 FROM photo_paths o
              WHERE o.photo_id = pp.photo_id AND o.path_bytes <> pp.path_bytes)
"""
# Of these contents, those no photo holds (deleted since they were found stored).
UNSTORED_CONTENTS = """
SELECT s.sha256 FROM unnest(%s::bytea[]) AS s(sha256)
WHERE NOT EXISTS (SELECT 1 FROM photos ph WHERE ph.sha256 = s.sha256)
"""
# A new stamp (size, modification and change time) for paths that keep their photo, where the
# path holds the photo read.
STAMP_PATHS = """
UPDATE photo_paths pp SET size_bytes = s.size_bytes, mtime_ns = s.mtime_ns,
                          ctime_ns = s.ctime_ns
FROM unnest(%s::bytea[], %s::bytea[], %s::bigint[], %s::bigint[], %s::bigint[])
     AS s(sha256, path_bytes, size_bytes, mtime_ns, ctime_ns)
JOIN photos ph ON ph.sha256 = s.sha256
WHERE pp.path_bytes = s.path_bytes AND pp.photo_id = ph.id
  AND (pp.size_bytes, pp.mtime_ns, pp.ctime_ns)
      IS DISTINCT FROM (s.size_bytes, s.mtime_ns, s.ctime_ns)
"""
# A path recorded before change times (0026) holds its file's content as it was read if the file
# has not changed since the path was recorded (seen_at): a file whose change time is later may
# have swapped names with another of its size and time meanwhile, and is read once (a hash).
_CHANGE_TIME_KEPT = """(pp.ctime_ns = s.ctime_ns OR (
    pp.ctime_ns IS NULL AND s.ctime_ns <= (extract(epoch FROM pp.seen_at) * 1e9)::bigint))"""
# A path's file as it was when the path was recorded (pp): the stamp s has now is its stamp.
_STAMP_KEPT = f"""(pp.size_bytes = s.size_bytes AND pp.mtime_ns = s.mtime_ns
    AND {_CHANGE_TIME_KEPT})"""
# The paths whose file has the stamp recorded when it was last read (size, modification and
# change time), and whose photo this pack has analysed (at the revision given or later: an
# older analysis is read again by `index --pending` alone); with whether the path has its
# change time yet.
UNCHANGED_PATHS = f"""
SELECT pp.path_bytes, pp.ctime_ns IS NOT NULL
FROM unnest(%s::bytea[], %s::bigint[], %s::bigint[], %s::bigint[])
     AS s(path_bytes, size_bytes, mtime_ns, ctime_ns)
JOIN photo_paths pp ON pp.path_bytes = s.path_bytes AND {_STAMP_KEPT}
WHERE EXISTS (SELECT 1 FROM photo_analyses a WHERE a.photo_id = pp.photo_id AND a.model = %s
              AND a.revision >= %s)
"""
# A path recorded before change times, found unchanged, gets the change time its file has (what
# the next run compares). Rows another writer holds are passed over, not waited for (the next
# run fills them): two runs given their folders in other orders locked rows in those orders
# and deadlocked, one failing.
RECORD_CHANGE_TIMES = f"""
WITH s AS (
    SELECT * FROM unnest(%s::bytea[], %s::bigint[], %s::bigint[], %s::bigint[])
        AS s(path_bytes, size_bytes, mtime_ns, ctime_ns)
), unfilled AS (
    SELECT pp.path_bytes, s.ctime_ns FROM photo_paths pp JOIN s USING (path_bytes)
    WHERE pp.ctime_ns IS NULL AND {_STAMP_KEPT}
    ORDER BY pp.path_bytes
    FOR UPDATE OF pp SKIP LOCKED
)
UPDATE photo_paths pp SET ctime_ns = unfilled.ctime_ns
FROM unfilled WHERE pp.path_bytes = unfilled.path_bytes
"""
DELETE_PATHS = "DELETE FROM photo_paths WHERE path_bytes = ANY(%s) RETURNING photo_id"
# failed_files (migration 0030): the files whose content failed to decode, each with its stamp
# then and what read it (store.remember_failures). Written and deleted in path order: two runs
# never lock rows in other orders.
REMEMBER_FAILURES = """
INSERT INTO failed_files AS f (path_bytes, path, size_bytes, mtime_ns, ctime_ns, inode, device,
                               reason, pgface_version, max_file_bytes, max_pixels)
SELECT s.*, %(version)s, %(max_bytes)s, %(max_pixels)s
FROM unnest(%(paths)s::bytea[], %(texts)s::text[], %(sizes)s::bigint[], %(mtimes)s::bigint[],
            %(ctimes)s::bigint[], %(inodes)s::numeric[], %(devices)s::numeric[],
            %(reasons)s::text[])
     AS s(path_bytes, path, size_bytes, mtime_ns, ctime_ns, inode, device, reason)
ORDER BY s.path_bytes
ON CONFLICT (path_bytes) DO UPDATE SET
    path = EXCLUDED.path, size_bytes = EXCLUDED.size_bytes, mtime_ns = EXCLUDED.mtime_ns,
    ctime_ns = EXCLUDED.ctime_ns, inode = EXCLUDED.inode, device = EXCLUDED.device,
    reason = EXCLUDED.reason,
    pgface_version = EXCLUDED.pgface_version, max_file_bytes = EXCLUDED.max_file_bytes,
    max_pixels = EXCLUDED.max_pixels, failed_at = now()
"""
# The paths of these failed files (REMEMBER_FAILURES' rows) that a photo holds, where the file
# is not as it was when the photo was recorded there (_STAMP_KEPT is not true; one recorded
# without a stamp is not known to be so): the file holds something else now, and the path is
# that photo's no more, as a path seen with other content moves to it (RECORD_PATHS). A file
# read again with the very stamp it was indexed with (--reread under a lower limit) keeps its
# photo. Locked and deleted in path order, as the other writers of photo_paths; returns the
# photos whose path went.
DROP_FAILED_PATHS = f"""
DELETE FROM photo_paths pp USING (
    SELECT pp.path_bytes
    FROM unnest(%(paths)s::bytea[], %(sizes)s::bigint[], %(mtimes)s::bigint[],
                %(ctimes)s::bigint[]) AS s(path_bytes, size_bytes, mtime_ns, ctime_ns)
    JOIN photo_paths pp ON pp.path_bytes = s.path_bytes
    WHERE {_STAMP_KEPT} IS NOT TRUE
    ORDER BY pp.path_bytes FOR UPDATE OF pp) doomed
WHERE pp.path_bytes = doomed.path_bytes
RETURNING pp.photo_id
"""
# The failures remembered with the stamp these files have now, failed by this reader (the same
# decoding, index.reader_version, and limits): (path now, path remembered). At the same path,
# nothing there to read again (by the stamp alone: an inode or device may change when a share
# is mounted again); at another, for a path with no failure remembered, where the file may have
# been before its folder was renamed or moved: the same file, its device and inode the ones
# remembered (an inode is unique on one file system only: probe reprobe45; a row with none,
# remembered before migration 0032 or 0034, is never taken; store.unchanged_failures checks
# the name and that the file there is gone). Each part by a key: the path (the primary key),
# or the stamp and inode (migration 0033's index; the device compared on the rows it finds):
# joined on the stamp alone and filtered after, files sharing a stamp were each compared with
# all (probe scale42).
UNCHANGED_FAILURES = """
WITH s AS (
    SELECT * FROM unnest(%(paths)s::bytea[], %(sizes)s::bigint[], %(mtimes)s::bigint[],
                         %(ctimes)s::bigint[], %(inodes)s::numeric[], %(devices)s::numeric[])
        AS s(path_bytes, size_bytes, mtime_ns, ctime_ns, inode, device)
), f AS NOT MATERIALIZED (  -- each part's own lookup by its key, not one scan of all
    SELECT * FROM failed_files
    WHERE pgface_version = %(version)s AND max_file_bytes = %(max_bytes)s
      AND max_pixels = %(max_pixels)s
)
SELECT s.path_bytes, f.path_bytes
FROM s JOIN f ON f.path_bytes = s.path_bytes AND f.mtime_ns = s.mtime_ns
                 AND f.size_bytes = s.size_bytes AND f.ctime_ns = s.ctime_ns
UNION ALL
SELECT s.path_bytes, f.path_bytes
FROM s JOIN f ON f.mtime_ns = s.mtime_ns AND f.size_bytes = s.size_bytes
                 AND f.ctime_ns = s.ctime_ns AND f.inode = s.inode AND f.device = s.device
WHERE f.path_bytes <> s.path_bytes
  AND NOT EXISTS (SELECT 1 FROM failed_files here WHERE here.path_bytes = s.path_bytes)
"""
# Failures whose file was moved (store.unchanged_failures): each row goes to its new path, with
# its stamp, inode and device (the same file's), in path order as the other writes (a row
# another run moved or wrote meanwhile is left as it is). Returns the new paths.
MOVE_FAILURES = """
WITH m AS (
    SELECT * FROM unnest(%(olds)s::bytea[], %(news)s::bytea[], %(texts)s::text[])
        AS m(old, new, path)
), locked AS (
    SELECT f.path_bytes FROM failed_files f JOIN m ON f.path_bytes = m.old
    ORDER BY f.path_bytes FOR UPDATE OF f
), gone AS (
    DELETE FROM failed_files f USING locked, m
    WHERE f.path_bytes = locked.path_bytes AND m.old = f.path_bytes
    RETURNING m.new, m.path, f.size_bytes, f.mtime_ns, f.ctime_ns, f.inode, f.device, f.reason,
              f.pgface_version, f.max_file_bytes, f.max_pixels, f.failed_at
)
INSERT INTO failed_files (path_bytes, path, size_bytes, mtime_ns, ctime_ns, inode, device,
                          reason, pgface_version, max_file_bytes, max_pixels, failed_at)
SELECT * FROM gone ORDER BY new
ON CONFLICT (path_bytes) DO NOTHING
RETURNING path_bytes
"""
FORGET_FAILURES = """
DELETE FROM failed_files f USING (
    SELECT path_bytes FROM failed_files WHERE path_bytes = ANY(%s)
    ORDER BY path_bytes FOR UPDATE) doomed
WHERE f.path_bytes = doomed.path_bytes
"""
# The failed files at or inside these paths (PATHS_UNDER's way)
FAILURES_UNDER = """
SELECT path_bytes FROM failed_files
WHERE path_bytes = ANY(%(exact)s) OR path = ANY(%(texts)s)
UNION
SELECT f.path_bytes
FROM unnest(%(lows)s::bytea[], %(highs)s::bytea[]) AS r(low, high)
JOIN failed_files f ON f.path_bytes >= r.low AND f.path_bytes < r.high
"""
# The paths, of photos other than these, named like these files (migration 0019's index) whose
# photo has faces this pack gave a person (how many, and when it was taken): where a photo
# moved and edited may have been.
HELD_PATHS_NAMED = """
SELECT pp.photo_id, pp.path_bytes, regexp_replace(pp.path, '^.*/', ''), ph.taken_at, held.faces
FROM photo_paths pp JOIN photos ph ON ph.id = pp.photo_id
CROSS JOIN LATERAL (SELECT count(*) AS faces FROM faces f
                    WHERE f.photo_id = pp.photo_id AND f.model = %(model)s
                      AND f.person_id IS NOT NULL) held
WHERE regexp_replace(pp.path, '^.*/', '') = ANY(%(names)s) AND pp.photo_id <> ALL(%(photos)s)
  AND held.faces > 0
"""
# Of the photos with these contents (the files in the server's upload folder), the paths
# outside that folder (%s, with its final slash) whose file name is the photo's sha256 in hex
# and a suffix, as an upload's is named (api.photos): the data folder moved or copied, or a
# library restored into another. Read by content (photos.sha256 is unique): a start of the
# server reads as many rows as it keeps uploads, not a scan of every path of the library.
# An upload's path in the upload folder of the data folder this one was copied from: the
# copy's row names its own file instead (store.rehome_uploads).
FORGET_FOREIGN_UPLOAD_PATH = "DELETE FROM photo_paths WHERE photo_id = %s AND path_bytes = %s"
# A path (pp) of a photo (ph) that is an upload's file: named by the photo's sha256.
_UPLOAD_PATH = r"substring(pp.path FROM '/([0-9a-f]{64})\.[a-z0-9]+$') = encode(ph.sha256, 'hex')"
UPLOADS_ELSEWHERE = f"""
SELECT pp.path_bytes, pp.photo_id, ph.sha256
FROM photos ph JOIN photo_paths pp ON pp.photo_id = ph.id
WHERE ph.sha256 = ANY(%s)
  AND {_UPLOAD_PATH}
  AND NOT starts_with(pp.path, %s)
"""
# The photos stored from uploads (a file named by its sha256, as the HTTP API keeps them), by
# the folder their file is in: what a backup of the library does not hold.
UPLOADS_BY_FOLDER = f"""
SELECT pp.path_bytes, ph.id
FROM photos ph JOIN photo_paths pp ON pp.photo_id = ph.id
WHERE {_UPLOAD_PATH}
"""
# photos.path shows the path where the photo was seen last, among those it still has.
REFRESH_DISPLAY_PATHS = """
UPDATE photos ph SET path = pp.path
FROM (SELECT DISTINCT ON (photo_id) photo_id, path FROM photo_paths
      WHERE photo_id = ANY(%s) ORDER BY photo_id, seen_at DESC, path_bytes) pp
WHERE ph.id = pp.photo_id AND ph.path IS DISTINCT FROM pp.path
"""
# The paths at or inside these (exact bytes, or the readable text someone copied from output),
# and those inside the [low, high) byte ranges of folders.
PATHS_UNDER = """
SELECT path_bytes, photo_id FROM photo_paths
WHERE path_bytes = ANY(%(exact)s) OR path = ANY(%(texts)s)
UNION
SELECT pp.path_bytes, pp.photo_id
FROM unnest(%(lows)s::bytea[], %(highs)s::bytea[]) AS r(low, high)
JOIN photo_paths pp ON pp.path_bytes >= r.low AND pp.path_bytes < r.high
"""
# Photos no path holds (a broken file written over their only one: store.remember_failures)
# shown at one of these paths (photos.path, readable text), or inside one of these folders
# ([low, high) ranges of text, compared byte by byte: `~>=~`, `~<~`, which migration 0036's
# index serves whatever the database's collation): what `remove` of that file or folder forgets
# with the paths there. A `starts_with(ph.path, folder)` for each folder read every photo once
# per path given: 19.7 s to remove 200 paths of a 250,000-photo library (probe scale49). Each
# range is looked up on its own, its photos' paths too (OFFSET 0 keeps the subquery whole):
# joined, the planner, who takes a range of unknown bounds for 0.5% of the photos, may read
# them all once and compare each with every range, or hash every photo's paths.
PATHLESS_SHOWN_UNDER = """
SELECT ph.id FROM photos ph
WHERE ph.path = ANY(%(files)s)
  AND NOT EXISTS (SELECT 1 FROM photo_paths pp WHERE pp.photo_id = ph.id)
UNION
SELECT inside.id
FROM unnest(%(lows)s::text[], %(highs)s::text[]) AS r(low, high)
CROSS JOIN LATERAL (
    SELECT ph.id FROM photos ph
    WHERE ph.path ~>=~ r.low AND ph.path ~<~ r.high
      AND NOT EXISTS (SELECT 1 FROM photo_paths pp WHERE pp.photo_id = ph.id)
    OFFSET 0) inside
"""
# Whether any path is stored strictly inside {folder} ([folder/, folder0): paths.prefix_range);
# STORED_UNDER_FOLDER: inside linked_folders' lf.folder.
_STORED_UNDER = """EXISTS (
    SELECT 1 FROM photo_paths pp
    WHERE pp.path_bytes >= {folder} || '/'::bytea AND pp.path_bytes < {folder} || '0'::bytea)"""
STORED_UNDER_FOLDER = _STORED_UNDER.format(folder="lf.folder")
# Whether a linked_folders row's root (where the link is; in rows written before links were
# recorded so, the folder walked, at or above the link) is the folder `outer` (a bytea) or
# lies inside it.
_LINK_UNDER = """(lf.root = {outer} OR (lf.root >= {outer} || '/'::bytea
                                        AND lf.root < {outer} || '0'::bytea))"""
# The folders reached through links at or under these roots, recorded by runs before, and
# through links inside those folders in turn (a library's `Phone -> /disk`, whose `inner ->
# /disk2`), that hold stored paths still. UNION ends a loop of links.
LINKED_FOLDERS = f"""
WITH RECURSIVE reached(folder) AS (
    SELECT lf.folder FROM linked_folders lf
    WHERE lf.root = ANY(%(roots)s) OR EXISTS (
          SELECT 1 FROM unnest(%(lows)s::bytea[], %(highs)s::bytea[]) r(low, high)
          WHERE lf.root >= r.low AND lf.root < r.high)
  UNION
    SELECT lf.folder FROM reached r
    JOIN linked_folders lf ON {_LINK_UNDER.format(outer="r.folder")}
)
SELECT lf.folder FROM reached lf WHERE {STORED_UNDER_FOLDER}
ORDER BY 1
"""
# The link records at or under a folder that moved, to its new path (store._move_link_records):
# added there (kept where the new place has that record already), gone from the old.
MOVE_LINK_RECORDS = f"""
WITH moved AS (
    DELETE FROM linked_folders lf WHERE {_LINK_UNDER.format(outer="%(old)s")}
    RETURNING lf.root, lf.folder
)
INSERT INTO linked_folders (root, folder)
SELECT %(new)s || substring(root FROM length(%(old)s) + 1), folder FROM moved
ON CONFLICT DO NOTHING
"""
# Every link record whose folder holds stored paths: where the link was, and that folder
# (library.Pgface.index keeps those whose link is gone from where it was).
STORED_LINK_RECORDS = f"""
SELECT lf.root, lf.folder FROM linked_folders lf WHERE {STORED_UNDER_FOLDER} ORDER BY 1, 2
"""
RECORD_LINKED_FOLDERS = """
INSERT INTO linked_folders (root, folder)
SELECT * FROM unnest(%s::bytea[], %s::bytea[])
ON CONFLICT DO NOTHING
"""
# A folder no run links to now, under which no path is stored and no link is recorded (its
# photos forgotten: pruned, or `remove`d by hand), is no longer any root's: whichever run
# gave it, nothing is left there to prune. A link inside it goes first, its own folder empty.
DROP_LINKED_FOLDERS = f"""
DELETE FROM linked_folders lf_out
WHERE NOT (lf_out.folder = ANY(%(now)s))
  AND NOT {_STORED_UNDER.format(folder="lf_out.folder")}
  AND NOT EXISTS (SELECT 1 FROM linked_folders lf
                  WHERE {_LINK_UNDER.format(outer="lf_out.folder")})
"""
# Photos left with no path anywhere: among these ids, or (prune) anywhere in the library.
PATHLESS_PHOTOS = """
SELECT ph.id FROM photos ph
WHERE (ph.id = ANY(%(ids)s) OR %(everywhere)s)
AND NOT EXISTS (SELECT 1 FROM photo_paths pp WHERE pp.photo_id = ph.id)
"""
# Photos a prune is about to delete (no path left) whose faces hold people, and the other
# photos recorded at a path of the file name the former was shown at last (photos.path keeps
# it once the paths are gone; migration 0019 indexes the file names), taken at the same time
# where both say when: only for a photo with at most %(most)s such paths (a camera's
# IMG_0042.JPG is in a hundred folders: never one candidate, and each path would cost a stat).
NAMESAKES_OF_PATHLESS = """
SELECT gone_id, photo_id, path_bytes FROM (
    SELECT gone.id AS gone_id, pp.photo_id, pp.path_bytes,
           count(*) OVER (PARTITION BY gone.id) AS paths
    FROM photos gone
    JOIN photo_paths pp
      ON regexp_replace(pp.path, '^.*/', '') = regexp_replace(gone.path, '^.*/', '')
    JOIN photos ph ON ph.id = pp.photo_id
    WHERE gone.id = ANY(%(ids)s)
      AND (gone.taken_at IS NULL OR ph.taken_at IS NULL OR gone.taken_at = ph.taken_at)
      AND EXISTS (SELECT 1 FROM faces f WHERE f.photo_id = gone.id AND f.person_id IS NOT NULL)
) namesakes
WHERE paths <= %(most)s
"""
# How many faces of each of these photos hold a person, by pack.
ANY_FACE_HELD = """
SELECT EXISTS (SELECT 1 FROM faces WHERE photo_id = ANY(%s) AND person_id IS NOT NULL)
"""
HELD_FACES_BY_PACK = """
SELECT photo_id, model, count(*) FROM faces
WHERE photo_id = ANY(%s) AND person_id IS NOT NULL GROUP BY photo_id, model
"""
COUNT_FACES_OF_PHOTOS = "SELECT count(*) FROM faces WHERE photo_id = ANY(%s)"
FACES_OF_PHOTOS_BY_PACK = """
SELECT model, count(*) FROM faces WHERE photo_id = ANY(%s) GROUP BY model ORDER BY model
"""
DELETE_PHOTOS = "DELETE FROM photos WHERE id = ANY(%s) RETURNING id"
# The people of the faces of photos about to be forgotten by path, kept for when the photo is
# found again (migration 0011); the before-images of people changes that touched those faces
# follow them there (migration 0014), as what is kept for a forgotten photo: undoing such a
# change then gives the photo found again the person its face had before the change. A face
# that nobody holds now but a change can still give a person is kept too, with no person
# (migration 0016), for the photo found again to take its before-images. A face of a former
# version (an edit in place) whose person is on no face of the photo that holds its content
# now (%(formers)s -> %(places)s: cropped out, or turned so that the detector misses it) also
# waits for that photo, with its vector (migration 0028): a later version at its path whose
# face is that close takes the person back (people_store.people_waiting_for).
# %(only)s: these faces of the photos alone (NULL: every face), the faces of a photo analysed
# again that gave nobody their person (store.drop_replaced_faces): each waits for its own photo
# where no other face of it holds the person.
REMEMBER_PEOPLE = """
WITH waits AS MATERIALIZED (
    SELECT f.id AS face_id, min(p.place) AS place
    FROM unnest(%(formers)s::bigint[], %(places)s::bigint[]) p(former, place)
    JOIN faces f ON f.photo_id = p.former AND f.person_id IS NOT NULL
    WHERE (%(only)s::bigint[] IS NULL OR f.id = ANY(%(only)s::bigint[]))
      AND NOT EXISTS (SELECT 1 FROM faces g
                      WHERE g.photo_id = p.place AND g.person_id = f.person_id
                        AND NOT g.id = ANY(coalesce(%(only)s::bigint[], '{}')))
    GROUP BY f.id
), gone AS MATERIALIZED (
    SELECT f.id AS face_id, ph.sha256, f.model, f.bbox, f.person_id, f.assigned_by,
           w.place AS waiting_for,
           CASE WHEN w.place IS NOT NULL THEN f.embedding END AS embedding,
           nextval(pg_get_serial_sequence('forgotten_faces', 'id')) AS kept_id
    FROM faces f JOIN photos ph ON ph.id = f.photo_id
    LEFT JOIN waits w ON w.face_id = f.id
    WHERE f.photo_id = ANY(%(photos)s)
      AND (%(only)s::bigint[] IS NULL OR f.id = ANY(%(only)s::bigint[]))
      AND (f.person_id IS NOT NULL
           OR EXISTS (SELECT 1 FROM people_change_rows r
                      WHERE r.tbl = 'faces' AND r.row_id = f.id))
), kept AS (
    INSERT INTO forgotten_faces (id, sha256, model, bbox, person_id, assigned_by, embedding,
                                 waiting_for)
    OVERRIDING SYSTEM VALUE
    SELECT kept_id, sha256, model, bbox, person_id, assigned_by, embedding, waiting_for FROM gone
)
UPDATE people_change_rows r
SET tbl = 'forgotten_faces', row_id = g.kept_id,
    before = jsonb_build_object('id', g.kept_id, 'sha256', g.sha256, 'model', g.model,
                                'bbox', g.bbox, 'person_id', r.before->'person_id',
                                'assigned_by', r.before->'assigned_by', 'forgotten_at', now(),
                                'embedding', g.embedding, 'waiting_for', g.waiting_for)
FROM gone g WHERE r.tbl = 'faces' AND r.row_id = g.face_id
"""
# What waits for these photos about to be deleted (%(deleted)s, each a former version itself:
# edited again) waits for the photo now at its path (%(places)s) instead: never for a photo
# that is gone (migration 0028).
REPOINT_WAITS = """
UPDATE forgotten_faces ff SET waiting_for = p.place
FROM unnest(%(deleted)s::bigint[], %(places)s::bigint[]) p(deleted, place)
WHERE ff.waiting_for = p.deleted
"""
# Of these photos, those something kept waits for.
PHOTOS_WAITED_FOR = """
SELECT DISTINCT waiting_for FROM forgotten_faces WHERE waiting_for = ANY(%s) ORDER BY 1
"""
# Stored paths of the photos this pack has not analysed yet.
UNANALYSED_PATHS = """
SELECT pp.photo_id, pp.path_bytes FROM photo_paths pp
WHERE NOT EXISTS (SELECT 1 FROM photo_analyses a WHERE a.photo_id = pp.photo_id
                  AND a.model = %s)
ORDER BY pp.path_bytes
"""
# Stored paths of the photos this pack analysed at a revision older than the one given
# (models.ANALYSIS_REVISION): `index --pending` analyses them again.
OUTDATED_PATHS = """
SELECT pp.photo_id, pp.path_bytes FROM photo_paths pp
JOIN photo_analyses a ON a.photo_id = pp.photo_id AND a.model = %s AND a.revision < %s
ORDER BY pp.path_bytes
"""
# How many photos this pack analysed at a revision older than the one given.
OUTDATED_ANALYSES = "SELECT count(*) FROM photo_analyses WHERE model = %s AND revision < %s"
# Of these paths (each as often as given), how many hold a photo this pack has analysed (a run
# skips those).
# A file counts as analysed by its path, or by the size and modification time a path of an
# analysed photo recorded (a file moved or renamed keeps both: a folder renamed was taken for
# new photos, and its run for a bulk load).
ANALYSED_AT_PATHS = """
SELECT count(*) FROM unnest(%(paths)s::bytea[], %(sizes)s::bigint[], %(times)s::bigint[])
    AS given(path_bytes, size_bytes, mtime_ns)
WHERE EXISTS (SELECT 1 FROM photo_paths pp
              JOIN photo_analyses a ON a.photo_id = pp.photo_id AND a.model = %(model)s
              WHERE pp.path_bytes = given.path_bytes)
   OR EXISTS (SELECT 1 FROM photo_paths pp
              JOIN photo_analyses a ON a.photo_id = pp.photo_id AND a.model = %(model)s
              WHERE pp.size_bytes = given.size_bytes AND pp.mtime_ns = given.mtime_ns)
"""
# A pack's recognizer as the library first knew it: recorded once, then what a pack of that
# name must hold (models/packs.py, library.Pgface._check_pack).
RECORD_MODEL_PACK = """
INSERT INTO model_packs (name, recognizer_sha256, recognizer_file) VALUES (%s, %s, %s)
ON CONFLICT (name) DO NOTHING
"""
MODEL_PACK = """
SELECT recognizer_sha256, recognizer_file, first_used FROM model_packs WHERE name = %s
"""
# Held by each store of a pack's faces until it commits (store.add_photos), so that a record
# taken over (ADOPT_MODEL_PACK) waits for it, and then sees what it stored.
MODEL_PACK_STORING = """
SELECT recognizer_sha256, recognizer_file, first_used FROM model_packs WHERE name = %s FOR SHARE
"""
# A record of a pack that stored nothing under its name (its recognizer broken when it was first
# tried: truncated, another model's file) is taken over by the recognizer in use now.
ADOPT_MODEL_PACK = """
UPDATE model_packs SET recognizer_sha256 = %s, recognizer_file = %s, first_used = now()
WHERE name = %s
"""
PACK_STORED_ANYTHING = "SELECT EXISTS (SELECT 1 FROM photo_analyses WHERE model = %s)"
PACK_COVERAGE = """
SELECT (SELECT count(*) FROM photos) AS photos,
       (SELECT count(*) FROM photo_analyses WHERE model = %s) AS analysed
"""
# Photos with no path left (kept until their people are handed over: a file edited in place,
# or written over by a broken one) that this pack has not analysed: no run can, `--pending`
# included, and counting them as its to analyse was a notice no run ended (probe library39).
PATHLESS_UNANALYSED = """
SELECT count(*) FROM photos ph
WHERE NOT EXISTS (SELECT 1 FROM photo_paths pp WHERE pp.photo_id = ph.id)
  AND NOT EXISTS (SELECT 1 FROM photo_analyses pa WHERE pa.photo_id = ph.id AND pa.model = %s)
"""
# Changes to photos and photo_analyses by any session, from PostgreSQL's statistics (flushed
# within seconds of a commit): while they are unchanged, PACK_COVERAGE's answer is too, and
# OUTDATED_ANALYSES' (an analysis made again is an update of photo_analyses; updates of photos,
# a path or a face count recorded, change neither count, and recounting for them put two
# scans of every photo back on searches made while a library is indexed).
COVERAGE_STAMP = """
SELECT pg_stat_get_tuples_inserted(t), pg_stat_get_tuples_deleted(t),
       CASE WHEN t = 'photo_analyses'::regclass THEN pg_stat_get_tuples_updated(t) END
FROM unnest(ARRAY['photos'::regclass, 'photo_analyses'::regclass]) t ORDER BY t
"""
ANALYSES_PER_MODEL = "SELECT model, count(*) FROM photo_analyses GROUP BY model ORDER BY model"

# The stored paths shown as these texts (readable: `\xNN` for a byte that is not UTF-8).
PATHS_SHOWN_AS = "SELECT path_bytes FROM photo_paths WHERE path = ANY(%s)"
FACES_OF_PATHS = """
SELECT pp.path, ph.width, ph.height, f.id, f.bbox, f.det_score, f.embedding, f.person_id,
       pp.path_bytes
FROM photo_paths pp JOIN photos ph ON ph.id = pp.photo_id JOIN faces f ON f.photo_id = ph.id
WHERE pp.path_bytes = ANY(%s) AND f.model = %s
ORDER BY pp.path, f.id
"""

# The in-process index (pgface/vector_index.py): load and catch up, then the exact check of
# the nearest faces it found.
# Ids the faces sequence may have handed out, and ids it surely has (0 before the first face).
# A hot standby reads the sequence as WAL-logged: up to 32 (SEQ_LOG_VALS) + its cache ahead.
# And the faces table's oid: a restore makes the table anew, its ids then other faces'.
FACES_ID_TAKEN = """
SELECT coalesce(pg_sequence_last_value(s.seq), 0),
       greatest(coalesce(pg_sequence_last_value(s.seq), 0)
                - CASE WHEN pg_is_in_recovery() THEN 32 + q.seqcache ELSE 0 END, 0),
       pg_stat_get_tuples_deleted('faces'::regclass), 'faces'::regclass::oid::bigint
FROM (SELECT pg_get_serial_sequence('faces', 'id')::regclass AS seq) s
JOIN pg_sequence q ON q.seqrelid = s.seq
"""
# xmin, and a bound above every transaction id assigned so far. A snapshot's xmax is not one:
# it is the latest *completed* id + 1, so a transaction still running with the newest id (an
# indexer's batch between its COPY of faces and its commit) is at or above it, and was taken
# for one that began after the sync read the sequence: the watermark passed its faces, and the
# in-process index never loaded them. Every transaction that has an id holds an exclusive
# lock on it (pg_locks, ids of 32 bits: taken relative to xmax's low 32 bits).
SNAPSHOT_BOUNDS = """
WITH s AS (SELECT pg_snapshot_xmin(c)::text::bigint AS xmin,
                  pg_snapshot_xmax(c)::text::bigint AS xmax
           FROM pg_current_snapshot() c),
running AS (SELECT (l.transactionid::text::bigint - s.xmax % 4294967296 + 4294967296)
                   % 4294967296 AS ahead
            FROM pg_locks l, s
            WHERE l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock' AND l.granted)
SELECT s.xmin,
       s.xmax + coalesce((SELECT max(ahead) + 1 FROM running WHERE ahead < 2147483648), 0)
FROM s
"""
COPY_FACE_VECTORS = """
COPY (SELECT id, embedding FROM faces WHERE model = %s AND id > %s) TO STDOUT (FORMAT BINARY)
"""
COPY_FACE_VECTORS_OF = """
COPY (SELECT id, embedding FROM faces WHERE model = %s AND id = ANY(%s)) TO STDOUT (FORMAT BINARY)
"""
# The candidates are materialised first so no vector index can serve the ORDER BY; `present`
# counts the candidates that still exist (the index forgets the others).
RERANK_FACES = """
WITH candidates AS MATERIALIZED (
    SELECT id, photo_id, person_id, bbox, embedding
    FROM faces
    WHERE id = ANY(%(ids)s) AND model = %(model)s
), nearest AS MATERIALIZED (
    SELECT id, photo_id, person_id, bbox, embedding <=> %(query)s AS distance,
           count(*) OVER () AS present
    FROM candidates
    ORDER BY distance, id  -- ties (copies of a photo) by id, as NEAREST_FACES
    LIMIT %(k)s
)
SELECT n.id, n.photo_id, ph.path, n.bbox, n.person_id, pe.name, 1 - n.distance AS similarity,
       n.present, n.distance <= %(max_distance)s AS close_enough
FROM nearest n
JOIN photos ph ON ph.id = n.photo_id
LEFT JOIN people pe ON pe.id = n.person_id
ORDER BY n.distance, n.id
"""
PRESENT_FACES = "SELECT id FROM faces WHERE id = ANY(%s)"
FACES_OF_MODEL = "SELECT count(*) FROM faces WHERE model = %s"
FACES_UP_TO = "SELECT count(*) FROM (SELECT 1 FROM faces WHERE model = %s LIMIT %s) f"

# The persisted snapshot of that index (pgface/index_snapshot.py): which database it belongs
# to, how far the server's WAL had come, and which of its faces still exist.
DATABASE_IDENTITY = """
SELECT (SELECT system_identifier FROM pg_control_system())::text,
       (SELECT oid FROM pg_database WHERE datname = current_database())::bigint,
       'faces'::regclass::oid::bigint, pg_relation_filenode('faces')::bigint
"""
_WAL_NOW = ("CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
            "ELSE pg_current_wal_lsn() END")
WAL_POSITION = f"SELECT ({_WAL_NOW})::text"
# Whether the server has come as far as a snapshot, and how many of the model's faces up to
# its watermark remain: every face counted minus those above (a few, by the primary key), so
# the count is an index-only scan of faces_model_id_idx rather than a read of every row.
SNAPSHOT_CHECK = f"""
SELECT pg_wal_lsn_diff({_WAL_NOW}, %(lsn)s::pg_lsn) >= 0,
       (SELECT count(*) FROM faces WHERE model = %(model)s)
       - (SELECT count(*) FROM faces WHERE model = %(model)s AND id > %(watermark)s)
"""
# One index run at a time over the same paths of a library and pack (Pgface.index): a session
# lock of a connection the run holds, keyed by them (8123: pgface's runs over paths; runs over
# other paths go on beside it, each holding INDEX_RUN_LOCK, shared, as well).
TRY_SAME_PATHS_RUN_LOCK = "SELECT pg_try_advisory_lock(8123, %s::int4)"
SAME_PATHS_RUN_LOCK = "SELECT pg_advisory_lock(8123, %s::int4)"
# A few faces' embeddings by id, which a snapshot's copies of them must match (SnapshotStore.
# open): the same ids may hold other faces in a database restored to an earlier point and
# written to since.
EMBEDDINGS_BY_ID = "SELECT id, embedding::text FROM faces WHERE id = ANY(%s)"
# Every face id <= the watermark, of any model, as one bytea of big-endian int8s (the primary
# key alone: an index-only scan; one value, not a row a face).
FACE_IDS_UP_TO = "SELECT string_agg(int8send(id), ''::bytea) FROM faces WHERE id <= %s"
# The same of one model, and their count and sum (index-only scans of faces_model_id_idx):
# what the search index checks itself against now and then (SignIndex.sync); the sum, so that
# a face missed and another deleted do not pass for none of either.
FACES_OF_MODEL_UP_TO = """
SELECT count(*), coalesce(sum(id), 0) FROM faces WHERE model = %s AND id <= %s
"""
FACE_IDS_OF_MODEL_UP_TO = """
SELECT string_agg(int8send(id), ''::bytea ORDER BY id) FROM faces WHERE model = %s AND id <= %s
"""

# The HNSW index on faces.embedding serves pgvector's searches below the in-process index's
# threshold only (pgface/engine.py): built and dropped as the library crosses it.
HNSW_EXISTS = "SELECT to_regclass('faces_embedding_hnsw_idx') IS NOT NULL"
ALL_FACES_UP_TO = "SELECT count(*) FROM (SELECT 1 FROM faces LIMIT %s) f"
LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %s, true)"
DROP_HNSW = "DROP INDEX IF EXISTS faces_embedding_hnsw_idx"
# as in migration 0001
CREATE_HNSW = """
CREATE INDEX IF NOT EXISTS faces_embedding_hnsw_idx ON faces
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)
"""
# Identify at scale: the exact cosine of the index's candidates that belong to someone, with
# their people (no vector index serves it).
ASSIGNED_FACE_IDS = ("SELECT id FROM faces WHERE model = %s AND person_id IS NOT NULL "
                     "AND person_id <> ALL(%s::bigint[]) ORDER BY id")
RERANK_ASSIGNED = """
WITH candidates AS MATERIALIZED (
    SELECT id, photo_id, person_id, embedding
    FROM faces
    WHERE id = ANY(%(ids)s) AND model = %(model)s AND person_id IS NOT NULL
      AND person_id <> ALL(%(exclude)s::bigint[])
), nearest AS MATERIALIZED (
    SELECT id, photo_id, person_id, embedding <=> %(query)s AS distance FROM candidates
)
SELECT n.id, n.photo_id, n.person_id, pe.name, 1 - n.distance AS similarity
FROM nearest n JOIN people pe ON pe.id = n.person_id
WHERE n.distance <= %(max_distance)s
ORDER BY n.distance, n.id
LIMIT %(k)s
"""

# The catalogs of objects that are in a schema themselves (RESTORE_GUARD's `home`): each
# placed by its own schema column, as its own "parent".
_SCHEMA_OBJECT_HOMES = "".join(
    f"        UNION ALL SELECT '{catalog}'::regclass, oid, {schema}, '{catalog}'::regclass, "
    f"oid FROM {catalog}\n"
    for catalog, schema in (
        ("pg_type", "typnamespace"), ("pg_proc", "pronamespace"),
        ("pg_operator", "oprnamespace"), ("pg_opclass", "opcnamespace"),
        ("pg_opfamily", "opfnamespace"), ("pg_collation", "collnamespace"),
        ("pg_conversion", "connamespace"), ("pg_ts_config", "cfgnamespace"),
        ("pg_ts_dict", "dictnamespace"), ("pg_ts_parser", "prsnamespace"),
        ("pg_ts_template", "tmplnamespace"), ("pg_statistic_ext", "stxnamespace"),
        ("pg_extension", "extnamespace")))

# Backups (db/backup.py). Whether SCHEMA holds a library, and what it holds.
SCHEMA_HAS_LIBRARY = "SELECT to_regclass(format('%%I.photos', %s::text))"
# Which cluster and database a connection reached: a streaming standby has its primary's
# system identifier and databases. pg_control_system() is PUBLIC's to run unless revoked.
SYSTEM_IDENTIFIER = "SELECT system_identifier FROM pg_control_system()"
CURRENT_DATABASE = "SELECT current_database()"
# Whether a server follows another (a standby), and when it started: told apart, a read
# database that is no standby is the primary itself only where it started when the primary did
SERVER_STATE = "SELECT pg_is_in_recovery(), pg_postmaster_start_time()"


def counted_people(schema: str = "") -> str:
    """The count of people as `pgface stats` counts them, of any pack: named, or holding a
    face, in SCHEMA (quoted, with its dot; none: the search path's). An unnamed person kept
    only for what it held in a photo forgotten (people_store.py) is backed up and restored
    with the rest, uncounted: a backup said "20 people" of a library whose stats and people
    list said 19 (probe living42)."""
    return (f"(SELECT count(*) FROM {schema}people p WHERE p.name IS NOT NULL OR EXISTS ("
            f"SELECT 1 FROM {schema}faces h WHERE h.person_id = p.id))")


LIBRARY_COUNTS = f"""
SELECT (SELECT count(*) FROM photos), (SELECT count(*) FROM faces), {counted_people()}
"""
# The API keys a library holds, revoked or not (a library made before migration 0003 has none).
HAS_API_KEYS = "SELECT to_regclass('api_keys') IS NOT NULL"
LIBRARY_KEYS = "SELECT count(*) FROM api_keys"
EXPORT_SNAPSHOT = "SELECT pg_export_snapshot()"
# Other clients of this database, and the other roles among them: a restore waits for none
# of them, it refuses. A role that is not a superuser (nor of pg_read_all_stats) sees another
# role's session with backend_type NULL, so `= 'client backend'` left out a `pgface serve`
# running as a search-only role (probe pgint31): a NULL one with a role is a client's too (a
# background process of the server's own, an autovacuum worker, has no role).
OTHER_SESSIONS = """
SELECT count(*),
       coalesce(array_agg(DISTINCT usename::text ORDER BY usename::text)
                FILTER (WHERE usename IS DISTINCT FROM current_user), '{}')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND (backend_type = 'client backend' OR (backend_type IS NULL AND usesysid IS NOT NULL))
  AND application_name IS DISTINCT FROM %s
"""
# Held by a restore's first connection for the whole restore (backup.restore): restores of one
# library go one after the other, each reading what it replaces after the one before it ended.
RESTORE_SESSION_LOCK = """
SELECT pg_advisory_lock(hashtext('pgface.restore.session'), hashtext(%s::text))
"""
# A backup shares it: one during a restore failed with "cache lookup failed for relation"
# (the tables dropped under pg_dump); it waits for the restore, then backs up what it wrote.
TRY_RESTORE_SESSION_LOCK_SHARED = """
SELECT pg_try_advisory_lock_shared(hashtext('pgface.restore.session'), hashtext(%s::text))
"""
RESTORE_SESSION_LOCK_SHARED = """
SELECT pg_advisory_lock_shared(hashtext('pgface.restore.session'), hashtext(%s::text))
"""
# The first statements of a restore's transaction, formatted with the schema (as a literal)
# and whether it may replace a library that holds something (true or false). Decided inside
# the transaction that drops the schema, not on a connection before it: two restores at once
# go one after the other (the second then finds the first's library and refuses without
# --replace), an index run that started meanwhile has committed or waits (the tables locked),
# and what the schema drop would take with it outside the schema (an application's view or
# foreign key on pgface's tables: DROP SCHEMA ... CASCADE dropped them without a word) stops
# the restore by name. `pgface-refused: ` starts each refusal (backup.py looks for it).
RESTORE_GUARD = """
SELECT pg_advisory_xact_lock(hashtext('pgface.restore'), hashtext({literal}));
DO {tag}
DECLARE
    library oid := (SELECT oid FROM pg_namespace WHERE nspname = {literal});
    tables text;
    photos bigint;
    people bigint;
    api_keys bigint := 0;
    dependents text;
    path text := current_setting('search_path');
BEGIN
    IF library IS NULL THEN
        RETURN;
    END IF;
    -- (those this role may lock: another role's table in the schema, which its owner may
    -- drop, is locked by the drop; LOCK refused it, "permission denied for table ...")
    SELECT string_agg(format('%I.%I', {literal}, relname), ', ') INTO tables
    FROM pg_class WHERE relnamespace = library AND relkind IN ('r', 'p')
      AND has_table_privilege(oid, 'UPDATE, DELETE, TRUNCATE');
    IF tables IS NOT NULL THEN
        EXECUTE 'LOCK TABLE ' || tables || ' IN ACCESS EXCLUSIVE MODE';
    END IF;
    IF NOT {replace} AND to_regclass(format('%I.photos', {literal})) IS NOT NULL THEN
        -- people as `pgface stats` counts them (counted_people): an unnamed one kept only
        -- for a photo forgotten refused a restore into a library stats called empty
        EXECUTE format('SELECT (SELECT count(*) FROM %1$I.photos), {people}',
                       {literal}) INTO photos, people;
        IF to_regclass(format('%I.api_keys', {literal})) IS NOT NULL THEN
            EXECUTE format('SELECT count(*) FROM %I.api_keys', {literal}) INTO api_keys;
        END IF;
        IF photos > 0 OR people > 0 OR api_keys > 0 THEN
            -- counted in words, as pgface's other messages (it said "1 photos", "key(s)")
            RAISE EXCEPTION 'pgface-refused: the library holds % %, % % and % API %; restore '
                            'into an empty data folder, or give --replace to replace them '
                            'with the backup',
                photos, CASE WHEN photos = 1 THEN 'photo' ELSE 'photos' END,
                people, CASE WHEN people = 1 THEN 'person' ELSE 'people' END,
                api_keys, CASE WHEN api_keys = 1 THEN 'key' ELSE 'keys' END;
        END IF;
    END IF;
    -- Objects outside the schema that depend on one the restore drops (RESTORE_EMPTY_SCHEMA):
    -- a view, a foreign key, a column of its row type or collation, a function, a trigger, an
    -- operator family's entry, a cast, a publication, named as PostgreSQL does. Each object
    -- is placed by its schema, a part of one (a column, a view's rule, a default, a
    -- constraint, a trigger, a policy, an index, an operator family's entry) by that of what
    -- it belongs to; one with no schema (a cast, a publication's table) is outside. What the
    -- restore keeps is not dropped: an extension installed in the schema, and its members.
    -- Each named with its schema (pg_describe_object leaves out those on the search path).
    PERFORM set_config('search_path', 'pg_catalog', true);
    WITH home(classid, objid, nsp, pclassid, pobjid) AS (
        SELECT 'pg_class'::regclass::oid, c.oid, c.relnamespace, 'pg_class'::regclass::oid,
               coalesce(i.indrelid, c.oid)
        FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
""" + _SCHEMA_OBJECT_HOMES + """
        UNION ALL SELECT 'pg_constraint'::regclass, oid, connamespace,
                         CASE WHEN conrelid <> 0 THEN 'pg_class'::regclass
                              WHEN contypid <> 0 THEN 'pg_type'::regclass
                              ELSE 'pg_constraint'::regclass END,
                         CASE WHEN conrelid <> 0 THEN conrelid
                              WHEN contypid <> 0 THEN contypid ELSE oid END
                  FROM pg_constraint
        UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, c.relnamespace, 'pg_class'::regclass,
                         c.oid FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
        UNION ALL SELECT 'pg_trigger'::regclass, t.oid, c.relnamespace, 'pg_class'::regclass,
                         c.oid FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        UNION ALL SELECT 'pg_attrdef'::regclass, a.oid, c.relnamespace, 'pg_class'::regclass,
                         c.oid FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid
        UNION ALL SELECT 'pg_policy'::regclass, p.oid, c.relnamespace, 'pg_class'::regclass,
                         c.oid FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
        UNION ALL SELECT 'pg_amop'::regclass, a.oid, f.opfnamespace, 'pg_opfamily'::regclass,
                         f.oid FROM pg_amop a JOIN pg_opfamily f ON f.oid = a.amopfamily
        UNION ALL SELECT 'pg_amproc'::regclass, a.oid, f.opfnamespace,
                         'pg_opfamily'::regclass, f.oid
                  FROM pg_amproc a JOIN pg_opfamily f ON f.oid = a.amprocfamily
    ), dropped AS (
        SELECT h.classid, h.objid FROM home h
        WHERE h.nsp = library AND h.pclassid <> 'pg_extension'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = h.pclassid
                          AND e.objid = h.pobjid AND e.deptype = 'e')
    ), outside AS (
        SELECT CASE WHEN r.rulename = '_RETURN'  -- a view: its rule's name is no help
                    THEN pg_describe_object('pg_class'::regclass, r.ev_class, 0)
                    ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END AS what,
               pg_describe_object(d.refclassid, d.refobjid, 0) AS uses
        FROM pg_depend d
        JOIN dropped i ON i.classid = d.refclassid AND i.objid = d.refobjid
        LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
        -- (part of what it depends on, as a toast table is, or an extension's member: not
        -- dropped on its own)
        WHERE d.deptype NOT IN ('i', 'e')
          AND NOT EXISTS (SELECT 1 FROM dropped o
                          WHERE o.classid = d.classid AND o.objid = d.objid)
    )
    SELECT string_agg(what || ' (on ' || uses || ')', ', ' ORDER BY what) INTO dependents
    FROM (SELECT what, string_agg(DISTINCT uses, ', ') AS uses FROM outside GROUP BY what) o;
    PERFORM set_config('search_path', path, true);
    IF dependents IS NOT NULL THEN
        RAISE EXCEPTION 'pgface-refused: objects outside schema % depend on the library, and '
                        'a restore would drop them with it: %; drop them first (and create '
                        'them again after the restore)', {literal}, dependents;
    END IF;
END {tag};
"""
# the library's people counted in its schema (format()'s %1$I) as stats counts them
RESTORE_GUARD = RESTORE_GUARD.replace("{people}", counted_people("%1$I."))
# Before a restore (backup._check_rights): whether the schema exists, whether this role owns it
# (or is a member of its owner), whether the role may create schemas; then the schema, its
# owner, the role and the database, each quoted where it must be.
RESTORE_RIGHTS = """
SELECT n.oid IS NOT NULL, coalesce(pg_has_role(current_user, n.nspowner, 'USAGE'), false),
       has_database_privilege(current_database(), 'CREATE'), quote_ident(%(schema)s),
       quote_ident(pg_get_userbyid(n.nspowner)), quote_ident(current_user),
       quote_ident(current_database())
FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = %(schema)s
"""
# The library's tables, views, sequences (the identity ones too) and routines, each as GRANT
# names it (the kind, TABLE, SEQUENCE or ROUTINE, and the name with its schema's), who owns
# it and its ACL; inside a DO block whose `library` is the schema's oid.
LIBRARY_ACL_OBJECTS = """
SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
       format('%I.%I', n.nspname, c.relname) AS name, c.oid AS rel, c.relowner AS owner,
       coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
                                     c.relowner)) AS acl
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relnamespace = library AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
UNION ALL
SELECT 'ROUTINE', format('%I.%I(%s)', n.nspname, p.proname,
                         pg_get_function_identity_arguments(p.oid)),
       NULL, p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.pronamespace = library
"""
# Each grant those objects and their tables' columns hold, as (kind, name, attname: '' for
# the object's own, grantee: -1 its owner, whoever that is, 0 PUBLIC, else the role's oid,
# privilege, grantable): an object with no ACL of its own holds its kind's default.
LIBRARY_ACL = """
SELECT o.kind, o.name, '' AS attname,
       CASE WHEN a.grantee = o.owner THEN -1 ELSE a.grantee::bigint END AS grantee,
       a.privilege_type AS privilege, bool_or(a.is_grantable) AS grantable
FROM (""" + LIBRARY_ACL_OBJECTS + """) o CROSS JOIN LATERAL aclexplode(o.acl) a
GROUP BY 1, 2, 3, 4, 5
UNION ALL
SELECT o.kind, o.name, t.attname::text,
       CASE WHEN a.grantee = o.owner THEN -1 ELSE a.grantee::bigint END,
       a.privilege_type, bool_or(a.is_grantable)
FROM (""" + LIBRARY_ACL_OBJECTS + """) o JOIN pg_attribute t ON t.attrelid = o.rel
CROSS JOIN LATERAL aclexplode(t.attacl) a
WHERE t.attnum > 0 AND NOT t.attisdropped AND t.attacl IS NOT NULL
GROUP BY 1, 2, 3, 4, 5
"""
# After RESTORE_GUARD, in the same transaction: the schema emptied where it exists (each object
# in it dropped, the schema kept with its owner and grants), created where it does not.
# DROP SCHEMA and CREATE SCHEMA took the CREATE right on the database, which the role of
# least privilege (README: it owns its schema, an administrator made it) lacks, so it could
# not restore even its own backup ("permission denied for database"); the rights it does need
# are checked before (RESTORE_RIGHTS). The objects are those that record the schema as their
# namespace (as DROP SCHEMA ... CASCADE finds them), less those that go with another (an
# extension's members, identity sequences) and an extension installed in the schema (kept,
# with its members: pg_dump --schema leaves extensions out, so the archive holds none to put
# back; dropped, it took an application's index on its operator class with it); each dropped
# with CASCADE (RESTORE_GUARD refused what outside the schema depends on them). Formatted
# with the schema as a literal.
RESTORE_EMPTY_SCHEMA = """
DO {tag}
DECLARE
    library oid := (SELECT oid FROM pg_namespace WHERE nspname = {literal});
    item record;
BEGIN
    IF library IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', {literal});
        RETURN;
    END IF;
    -- every grant on its tables, views, sequences, their columns and its routines (the
    -- owner's and PUBLIC's too), and which objects they are, for RESTORE_GRANTS
    PERFORM set_config('pgface.restore_acl', jsonb_build_object(
        'objects', coalesce((SELECT jsonb_agg(jsonb_build_object('kind', kind, 'name', name))
                             FROM (""" + LIBRARY_ACL_OBJECTS + """) o), '[]'),
        'acl', coalesce((SELECT jsonb_agg(to_jsonb(a)) FROM (""" + LIBRARY_ACL + """) a), '[]')
        )::text, true);
    LOOP
        SELECT o.type, o.identity INTO item
        FROM pg_depend d CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
        WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = library
          AND d.deptype = 'n' AND d.classid <> 'pg_extension'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_depend m WHERE m.classid = d.classid
                          AND m.objid = d.objid AND m.deptype IN ('e', 'i', 'a'))
        ORDER BY d.classid <> 'pg_class'::regclass, d.objid
        LIMIT 1;
        EXIT WHEN NOT FOUND;
        EXECUTE format('DROP %s %s CASCADE', CASE item.type
            WHEN 'composite type' THEN 'TYPE' WHEN 'statistics object' THEN 'STATISTICS'
            ELSE upper(item.type) END, item.identity);
    END LOOP;
END {tag};
"""
# After the archive's objects are created, in the restore's transaction: each object the
# library held before (RESTORE_EMPTY_SCHEMA kept their ACLs in the transaction's setting
# pgface.restore_acl) grants again exactly what it granted, to the same roles, to PUBLIC and
# to its owner (the restoring role now). pg_restore runs with --no-privileges (the archive's
# roles need not exist here), and each object it creates takes the database's default: no
# grant at all, so the README's search-only role could not read the library after a restore,
# which said nothing of it (probe reprobe23); or, where the schema has default privileges
# (ALTER DEFAULT PRIVILEGES IN SCHEMA ... GRANT SELECT ON TABLES TO searcher), SELECT on
# every table, api_keys' hashes and faces' embeddings too, to a role that had been granted
# photos and three of faces' columns (probe reprobe27): so what each object holds and had not
# is revoked, and what it had and lacks is granted, by the restoring role (the grantor of
# what the restore granted). The objects' own grants first, their columns' after: revoking a
# table's privilege revokes it on its columns too. An object the library did not have (an
# archive's newer table, a schema restored into for the first time) keeps the database's
# default, as a migration's would. Formatted with the schema as a literal.
RESTORE_GRANTS = """
DO {tag}
DECLARE
    library oid := (SELECT oid FROM pg_namespace WHERE nspname = {literal});
    saved jsonb := nullif(current_setting('pgface.restore_acl', true), '')::jsonb;
    change record;
BEGIN
    IF saved IS NULL THEN  -- no schema before: nothing to keep
        RETURN;
    END IF;
    FOR column_pass IN 0..1 LOOP
        FOR change IN
            WITH was AS (
                SELECT * FROM jsonb_to_recordset(saved->'acl')
                    AS (kind text, name text, attname text, grantee bigint, privilege text,
                        grantable boolean)),
            is_now AS (""" + LIBRARY_ACL + """)
            SELECT o.kind, o.name, coalesce(w.attname, i.attname) AS attname,
                   CASE coalesce(w.grantee, i.grantee)
                       WHEN -1 THEN quote_ident(pg_get_userbyid(o.owner))
                       WHEN 0 THEN 'PUBLIC'
                       ELSE quote_ident(pg_get_userbyid(coalesce(w.grantee, i.grantee)::oid))
                   END AS who,
                   coalesce(w.privilege, i.privilege) AS privilege,
                   w.grantable AS wanted, i.grantable AS held
            FROM was w FULL JOIN is_now i
                ON i.kind = w.kind AND i.name = w.name AND i.attname = w.attname
               AND i.grantee = w.grantee AND i.privilege = w.privilege
            JOIN (""" + LIBRARY_ACL_OBJECTS + """) o
                ON o.kind = coalesce(w.kind, i.kind) AND o.name = coalesce(w.name, i.name)
            WHERE (coalesce(w.attname, i.attname) <> '') = (column_pass = 1)
              AND EXISTS (SELECT 1 FROM jsonb_to_recordset(saved->'objects')
                              AS s(kind text, name text)
                          WHERE s.kind = o.kind AND s.name = o.name)
              AND (w.grantable IS DISTINCT FROM i.grantable)
              AND (w.grantee IS NULL OR w.grantee <= 0
                   OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = w.grantee::oid))
              AND (w.attname IS NULL OR w.attname = ''
                   OR EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = o.rel
                              AND t.attname = w.attname AND NOT t.attisdropped))
        LOOP
            EXECUTE CASE
                WHEN change.wanted IS NULL THEN  -- held, not had: revoked
                    format('REVOKE %s%s ON %s %s FROM %s CASCADE', change.privilege,
                           CASE change.attname WHEN '' THEN ''
                                ELSE format(' (%I)', change.attname) END,
                           change.kind, change.name, change.who)
                WHEN change.held AND NOT change.wanted THEN  -- the grant option alone
                    format('REVOKE GRANT OPTION FOR %s%s ON %s %s FROM %s CASCADE',
                           change.privilege, CASE change.attname WHEN '' THEN ''
                                ELSE format(' (%I)', change.attname) END,
                           change.kind, change.name, change.who)
                ELSE format('GRANT %s%s ON %s %s TO %s%s', change.privilege,
                            CASE change.attname WHEN '' THEN ''
                                 ELSE format(' (%I)', change.attname) END,
                            change.kind, change.name, change.who,
                            CASE WHEN change.wanted THEN ' WITH GRANT OPTION' ELSE '' END)
            END;
        END LOOP;
    END LOOP;
END {tag};
"""
# What a restore's transaction restored, told before it commits (`pgface-restored: ` starts
# it): the counts its report gives, not those of whatever commits after it.
RESTORED_COUNTS = """
DO {tag}
DECLARE
    api_keys bigint := 0;
BEGIN
    IF to_regclass(format('%I.api_keys', {literal}::text)) IS NOT NULL THEN  -- before 0003
        SELECT count(*) INTO api_keys FROM {schema}.api_keys;
    END IF;
    RAISE WARNING 'pgface-restored: % % % %', (SELECT count(*) FROM {schema}.photos),
        (SELECT count(*) FROM {schema}.faces), """ + counted_people("{schema}.") + """,
        api_keys;
END {tag};
"""
# The API keys revoked in the library a restore replaces (their key ids and when), and, in
# the restore's transaction, revoked again in what it restores: an older backup brought a key
# revoked since (a leaked one) back to life. Formatted with the schema (as a literal), and the
# two arrays as literals; an archive from before migration 0003 has no keys to revoke.
REVOKED_KEYS = """
SELECT key_id, revoked_at FROM {schema}.api_keys WHERE revoked_at IS NOT NULL
"""
KEEP_REVOCATIONS = """
DO {tag}
DECLARE
    kept text;
BEGIN
    IF to_regclass(format('%I.api_keys', {literal}::text)) IS NOT NULL THEN
        -- each key revoked here (active in the backup) told by name, in hex (whatever it
        -- holds, and however psql's output is decoded): the report's kept_revoked (a key
        -- the backup had revoked itself is not one)
        FOR kept IN EXECUTE format('UPDATE %I.api_keys k SET revoked_at = r.revoked_at
                        FROM unnest($1::text[], $2::timestamptz[]) AS r(key_id, revoked_at)
                        WHERE k.key_id = r.key_id AND k.revoked_at IS NULL
                        RETURNING k.name', {literal}::text)
        USING {key_ids}::text[], {times}::timestamptz[] LOOP
            RAISE WARNING 'pgface-kept-revoked: %', encode(convert_to(kept, 'UTF8'), 'hex');
        END LOOP;
    END IF;
END {tag};
"""
# The last statement of a restore's transaction, formatted with the schema (quoted, and as a
# literal) and the newest migration this pgface has: an archive that holds no library there,
# or one a newer pgface migrated, rolls everything back.
RESTORED_LIBRARY_CHECK = """
DO {tag}
DECLARE
    owned record;
    highest bigint;
    state record;
    fn record;
    path_before text := current_setting('search_path');
    applied integer;
    made_path text;
BEGIN
    IF to_regclass(format('%I.photos', {literal}::text)) IS NULL THEN
        RAISE EXCEPTION 'the backup holds no pgface library in schema %', {literal};
    END IF;
    applied := (SELECT max(version) FROM {schema}.schema_migrations);
    IF applied > {newest} THEN
        RAISE EXCEPTION 'the backup was taken by a newer pgface (migration % applied; this one '
                        'knows up to {newest}): restore it with a pgface that knows migration %'
                        ' (pgface --version names the newest it knows)', applied, applied;
    END IF;
    -- A function damaged in the table of contents: pg_restore's script sets
    -- check_function_bodies off, so it was stored unread, the restore said it was done, and
    -- the next index failed on 'trailing junk after numeric literal at or near "6z"'. Each
    -- function of the library (an extension's are its own) is read by its language's
    -- validator, as CREATE FUNCTION reads it (an SQL function's names on the path it was
    -- made with: its own search_path, which must start at the library's schema: the path's
    -- schema changed was not read at all, restored, and the next index failed on 'relation
    -- "photo_analyses" does not exist', probe reprobe60). A plpgsql body is read for its
    -- syntax alone: a table's name changed in one still restores (no body is compared with
    -- the migrations': they changed while pgface was young, and a library made then has the
    -- bodies of its day).
    PERFORM set_config('check_function_bodies', 'on', true);
    FOR fn IN
        SELECT p.oid, format('%I.%I(%s)', {literal}::text, p.proname,
                              pg_get_function_identity_arguments(p.oid)) AS signature,
               l.lanvalidator::regproc AS validator,
               (SELECT substr(c, length('search_path=') + 1) FROM unnest(p.proconfig) c
                WHERE c LIKE 'search_path=%' LIMIT 1) AS own_path
        FROM pg_proc p
        JOIN pg_language l ON l.oid = p.prolang
        WHERE p.pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = {literal})
          AND l.lanvalidator <> 0
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        made_path := coalesce(fn.own_path, format('%I, public', {literal}::text));
        PERFORM set_config('search_path', made_path, true);
        IF (current_schemas(false))[1] IS DISTINCT FROM {literal} THEN
            RAISE EXCEPTION 'the backup is damaged: function %''s search_path (%) does not '
                            'start at the library''s schema', fn.signature, fn.own_path;
        END IF;
        BEGIN
            EXECUTE format('SELECT %s(%s)', fn.validator, fn.oid);
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION 'the backup is damaged: function % does not read (%)',
                            fn.signature, SQLERRM;
        END;
    END LOOP;
    PERFORM set_config('search_path', path_before, true);
    -- A sequence behind its table's ids: an archive damaged where nothing checks it (its
    -- table of contents, uncompressed, holds the setval); restored, the next index failed
    -- with "duplicate key value violates unique constraint faces_pkey".
    FOR owned IN
        SELECT s.oid::regclass AS seq, t.oid::regclass AS tab, a.attname AS col
        FROM pg_class s
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        JOIN pg_class t ON t.oid = d.refobjid
        JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.relkind = 'S'
          AND s.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = {literal})
    LOOP
        EXECUTE format('SELECT max(%I) FROM %s', owned.col, owned.tab) INTO highest;
        EXECUTE format('SELECT last_value, is_called FROM %s', owned.seq) INTO state;
        IF highest > state.last_value OR (highest = state.last_value AND NOT state.is_called)
        THEN
            RAISE EXCEPTION 'the backup is damaged: sequence % would give % again (%.% holds '
                            'ids up to %)', owned.seq, state.last_value
                            + CASE WHEN state.is_called THEN 1 ELSE 0 END, owned.tab,
                            owned.col, highest;
        END IF;
    END LOOP;
END {tag};
"""
