-- The people page sorts everyone by how many faces they have. Counting every person's faces
-- for every page grew with the library (from the faces' index alone, 0017: 16 ms a page at
-- 100,000 faces, 38 ms at 300,000); the counts are kept here instead, so a page reads a row or
-- so per person, whatever the number of faces (bench/people_page.py).
--
-- A person's faces as the page counts them depend on the pack in use (people_store.SHOWN_FACE:
-- that pack's faces, and another pack's in a photo it has not analysed), so they are kept per
-- pack: under each pack that has analysed a photo (person_face_count_packs), and under '*',
-- every face, for a pack that has analysed none yet.
--
-- The rows are changes that add up: a trigger only ever inserts one, so writers never wait on
-- each other over a count's row, nor deadlock over two of them (a batch that starts a pack or
-- analyses a photo another pack has faces of does wait: the analyses' trigger, below);
-- people_store.add_up_face_counts replaces a person's rows by their sum now and then.
-- `pending`: a change not added up yet.
CREATE TABLE IF NOT EXISTS person_face_count_packs (
    pack  text PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS person_face_counts (
    person_id  bigint NOT NULL,
    pack       text NOT NULL,
    faces      integer NOT NULL,
    pending    boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS person_face_counts_pack_idx
    ON person_face_counts (pack, person_id) INCLUDE (faces);
CREATE INDEX IF NOT EXISTS person_face_counts_pending_idx
    ON person_face_counts (person_id) WHERE pending;

-- A face's change of person (or of pack or photo) under every pack whose view holds it, the
-- statements inline (a call of an SQL function for each made a bulk assignment 1.2x as slow).
-- search_path fixed to the migration's, so a write to faces from any session (psql, another
-- application's search path) counts it in this schema.
CREATE OR REPLACE FUNCTION pgface_count_faces_change() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.person_id IS NOT NULL THEN
        INSERT INTO person_face_counts (person_id, pack, faces)
        SELECT OLD.person_id, v.pack, -1
        FROM (SELECT '*'::text AS pack UNION ALL SELECT pack FROM person_face_count_packs) v
        WHERE v.pack = '*' OR v.pack = OLD.model OR NOT EXISTS (
            SELECT 1 FROM photo_analyses a WHERE a.photo_id = OLD.photo_id AND a.model = v.pack);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.person_id IS NOT NULL THEN
        INSERT INTO person_face_counts (person_id, pack, faces)
        SELECT NEW.person_id, v.pack, 1
        FROM (SELECT '*'::text AS pack UNION ALL SELECT pack FROM person_face_count_packs) v
        WHERE v.pack = '*' OR v.pack = NEW.model OR NOT EXISTS (
            SELECT 1 FROM photo_analyses a WHERE a.photo_id = NEW.photo_id AND a.model = v.pack);
    END IF;
    IF TG_WHEN = 'BEFORE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;

-- Row triggers, whose conditions keep them off every face stored without a person (indexing)
-- and every update that moves no face between people (clustering's marks). Deletions are
-- counted BEFORE, as each row goes: a photo's removal deletes its faces and its analyses in
-- cascades whose AFTER triggers all fire once both are gone, when a face another pack's
-- analysis hid would be taken for one shown.
DROP TRIGGER IF EXISTS faces_count_insert ON faces;
CREATE TRIGGER faces_count_insert AFTER INSERT ON faces FOR EACH ROW
    WHEN (NEW.person_id IS NOT NULL) EXECUTE FUNCTION pgface_count_faces_change();
DROP TRIGGER IF EXISTS faces_count_delete ON faces;
CREATE TRIGGER faces_count_delete BEFORE DELETE ON faces FOR EACH ROW
    WHEN (OLD.person_id IS NOT NULL) EXECUTE FUNCTION pgface_count_faces_change();
DROP TRIGGER IF EXISTS faces_count_update ON faces;
CREATE TRIGGER faces_count_update AFTER UPDATE OF person_id, model, photo_id ON faces
    FOR EACH ROW
    WHEN (OLD.person_id IS DISTINCT FROM NEW.person_id
          OR (NEW.person_id IS NOT NULL AND (OLD.model <> NEW.model
                                             OR OLD.photo_id <> NEW.photo_id)))
    EXECUTE FUNCTION pgface_count_faces_change();

-- A pack analysing a photo hides other packs' faces of it from its view; a pack's first
-- analysis starts its view, counted from the library as it is then (once per pack).
-- Either reads who holds faces, while a people change may be moving them: the face's trigger,
-- in that change's transaction, reads this analysis (or this pack) as not there yet, and this
-- trigger would read the face with its former person. So both wait here for the changes that
-- have counted something to end, and hold off new ones until this transaction does (then they
-- read this analysis): a lock a batch takes only when it analyses a photo another pack has
-- faces of (a switch of pack) or starts a pack.
CREATE OR REPLACE FUNCTION pgface_count_analyses_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    started text[];
BEGIN
    WITH added AS (
        INSERT INTO person_face_count_packs (pack)
        SELECT DISTINCT model FROM new_analyses ON CONFLICT DO NOTHING RETURNING pack
    ) SELECT coalesce(array_agg(pack), '{}') INTO started FROM added;
    IF cardinality(started) > 0 OR EXISTS (
            SELECT 1 FROM new_analyses n JOIN faces f ON f.photo_id = n.photo_id
            WHERE f.model <> n.model) THEN
        LOCK TABLE person_face_counts IN SHARE ROW EXCLUSIVE MODE;
    END IF;
    INSERT INTO person_face_counts (person_id, pack, faces)
    SELECT f.person_id, v.pack, count(*)
    FROM faces f CROSS JOIN unnest(started) v(pack)
    WHERE f.person_id IS NOT NULL AND (f.model = v.pack OR NOT EXISTS (
        SELECT 1 FROM photo_analyses a WHERE a.photo_id = f.photo_id AND a.model = v.pack))
    GROUP BY f.person_id, v.pack;
    INSERT INTO person_face_counts (person_id, pack, faces)
    SELECT f.person_id, n.model, -count(*)
    FROM new_analyses n JOIN faces f ON f.photo_id = n.photo_id AND f.model <> n.model
    WHERE f.person_id IS NOT NULL AND n.model <> ALL (started)
    GROUP BY f.person_id, n.model;
    RETURN NULL;
END $$;

-- An analysis forgotten shows the photo's other packs' faces again: counted as it goes (BEFORE,
-- as the faces' deletions are), with the faces still there at that moment.
CREATE OR REPLACE FUNCTION pgface_count_analysis_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO person_face_counts (person_id, pack, faces)
    SELECT f.person_id, OLD.model, count(*)
    FROM faces f
    WHERE f.photo_id = OLD.photo_id AND f.model <> OLD.model AND f.person_id IS NOT NULL
    GROUP BY f.person_id;
    RETURN OLD;
END $$;

DROP TRIGGER IF EXISTS photo_analyses_count_insert ON photo_analyses;
CREATE TRIGGER photo_analyses_count_insert AFTER INSERT ON photo_analyses
    REFERENCING NEW TABLE AS new_analyses FOR EACH STATEMENT
    EXECUTE FUNCTION pgface_count_analyses_insert();
DROP TRIGGER IF EXISTS photo_analyses_count_delete ON photo_analyses;
CREATE TRIGGER photo_analyses_count_delete BEFORE DELETE ON photo_analyses
    FOR EACH ROW EXECUTE FUNCTION pgface_count_analysis_delete();

-- The counts made again from the faces: here, for the library as it is, and by hand should
-- they ever drift (docs/people.md says when): SELECT pgface_recount_person_faces();
CREATE OR REPLACE FUNCTION pgface_recount_person_faces() RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
    LOCK TABLE person_face_counts IN EXCLUSIVE MODE;  -- no trigger adds a row meanwhile
    INSERT INTO person_face_count_packs (pack)
    SELECT DISTINCT model FROM photo_analyses ON CONFLICT DO NOTHING;
    DELETE FROM person_face_counts;
    INSERT INTO person_face_counts (person_id, pack, faces, pending)
    SELECT f.person_id, v.pack, count(*), false
    FROM faces f CROSS JOIN (SELECT '*'::text AS pack UNION ALL
                             SELECT pack FROM person_face_count_packs) v
    WHERE f.person_id IS NOT NULL AND (v.pack = '*' OR f.model = v.pack OR NOT EXISTS (
        SELECT 1 FROM photo_analyses a WHERE a.photo_id = f.photo_id AND a.model = v.pack))
    GROUP BY f.person_id, v.pack;
$$;
SELECT pgface_recount_person_faces();
