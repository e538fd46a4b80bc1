-- A face is shown under a pack (people_store.SHOWN_FACE) when that pack made it, or, in a photo
-- that pack has not analysed, when its own pack is the photo's first (by name) of those that
-- analysed it. Before, a photo the pack in use had not analysed showed every other pack's
-- faces: with three packs (buffalo_sc, buffalo_l, a third being tried), each face twice, and
-- a person's counts, page and `people show` with them. '*' (the view of a pack that has
-- analysed nothing yet) follows the same rule, where it counted every face.
--
-- The triggers of 0018 count the same way: a face's change under each view where it is shown;
-- an analysis that starts a pack's view counts it from the library; an analysis added hides
-- the photo's former first pack's faces from its own pack's view, and, where it is the new
-- first, moves the other views (those that have not analysed the photo) from the former first's
-- faces to its own; an analysis deleted the other way round. Pack names are compared bytewise
-- (COLLATE "C"): the first is the same whatever the database's collation.

CREATE OR REPLACE FUNCTION pgface_first_pack(photo bigint, except_pack text DEFAULT NULL)
RETURNS text LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT a.model FROM photo_analyses a
    WHERE a.photo_id = photo AND a.model IS DISTINCT FROM except_pack
    ORDER BY a.model COLLATE "C" LIMIT 1
$$;

CREATE OR REPLACE FUNCTION pgface_count_faces_change() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    first text;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.person_id IS NOT NULL THEN
        first := pgface_first_pack(OLD.photo_id);
        INSERT INTO person_face_counts (person_id, pack, faces)
        SELECT OLD.person_id, v.pack, -1
        FROM (SELECT '*'::text AS pack UNION ALL SELECT pack FROM person_face_count_packs) v
        WHERE v.pack = OLD.model OR (OLD.model = first AND NOT EXISTS (
            SELECT 1 FROM photo_analyses a WHERE a.photo_id = OLD.photo_id AND a.model = v.pack));
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.person_id IS NOT NULL THEN
        first := pgface_first_pack(NEW.photo_id);
        INSERT INTO person_face_counts (person_id, pack, faces)
        SELECT NEW.person_id, v.pack, 1
        FROM (SELECT '*'::text AS pack UNION ALL SELECT pack FROM person_face_count_packs) v
        WHERE v.pack = NEW.model OR (NEW.model = first AND NOT EXISTS (
            SELECT 1 FROM photo_analyses a WHERE a.photo_id = NEW.photo_id AND a.model = v.pack));
    END IF;
    IF TG_WHEN = 'BEFORE' THEN
        RETURN OLD;
    END IF;
    RETURN NULL;
END $$;

-- Statement-level, after the analyses are in: `first` is the photo's first pack now, `former`
-- its first among the analyses it had before this statement (none for a photo new to the
-- library). A view that started here is counted whole from the library as it is now.
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
    WHERE f.person_id IS NOT NULL AND (f.model = v.pack OR (NOT EXISTS (
            SELECT 1 FROM photo_analyses a WHERE a.photo_id = f.photo_id AND a.model = v.pack)
        AND f.model = pgface_first_pack(f.photo_id)))
    GROUP BY f.person_id, v.pack;
    WITH photos AS (
        SELECT DISTINCT n.photo_id FROM new_analyses n
    ), firsts AS (
        SELECT p.photo_id, pgface_first_pack(p.photo_id) AS first,
               (SELECT a.model FROM photo_analyses a
                WHERE a.photo_id = p.photo_id AND NOT EXISTS (
                    SELECT 1 FROM new_analyses n
                    WHERE n.photo_id = a.photo_id AND n.model = a.model)
                ORDER BY a.model COLLATE "C" LIMIT 1) AS former
        FROM photos p
    ), changes AS (
        -- the packs that analysed the photo here: they showed its former first's faces
        SELECT f.person_id, n.model AS pack, -1 AS faces
        FROM new_analyses n JOIN firsts x ON x.photo_id = n.photo_id
        JOIN faces f ON f.photo_id = n.photo_id AND f.model = x.former
        WHERE f.person_id IS NOT NULL AND n.model <> ALL (started)
        UNION ALL
        -- the views that have not analysed it, where the first changed: the former's faces
        -- go, the new first's come (none yet, as a rule: its faces are stored after this)
        SELECT f.person_id, v.pack,
               CASE WHEN f.model = x.former THEN -1 ELSE 1 END
        FROM firsts x
        CROSS JOIN (SELECT '*'::text AS pack UNION ALL SELECT pack FROM person_face_count_packs
                    WHERE pack <> ALL (started)) v
        JOIN faces f ON f.photo_id = x.photo_id AND f.model IN (x.former, x.first)
        WHERE x.first IS DISTINCT FROM x.former AND f.person_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM photo_analyses a
                          WHERE a.photo_id = x.photo_id AND a.model = v.pack)
    )
    INSERT INTO person_face_counts (person_id, pack, faces)
    SELECT person_id, pack, sum(faces) FROM changes GROUP BY person_id, pack
    HAVING sum(faces) <> 0;
    RETURN NULL;
END $$;

-- Row-level, BEFORE: the analysis and the faces still there. Its own pack's view sees the
-- photo's next first's faces; where it was the first, the views that have not analysed the
-- photo move from its faces to the next first's.
CREATE OR REPLACE FUNCTION pgface_count_analysis_delete() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
    first text := pgface_first_pack(OLD.photo_id);
    next text := pgface_first_pack(OLD.photo_id, OLD.model);
BEGIN
    INSERT INTO person_face_counts (person_id, pack, faces)
    SELECT f.person_id, OLD.model, count(*)
    FROM faces f
    WHERE f.photo_id = OLD.photo_id AND f.model = next AND f.person_id IS NOT NULL
    GROUP BY f.person_id;
    IF first = OLD.model THEN
        INSERT INTO person_face_counts (person_id, pack, faces)
        SELECT f.person_id, v.pack, sum(CASE WHEN f.model = OLD.model THEN -1 ELSE 1 END)
        FROM faces f
        CROSS JOIN (SELECT '*'::text AS pack UNION ALL SELECT pack FROM person_face_count_packs
                    WHERE pack <> OLD.model) v
        WHERE f.photo_id = OLD.photo_id AND f.model IN (OLD.model, next)
          AND f.person_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM photo_analyses a
                          WHERE a.photo_id = OLD.photo_id AND a.model = v.pack)
        GROUP BY f.person_id, v.pack
        HAVING sum(CASE WHEN f.model = OLD.model THEN -1 ELSE 1 END) <> 0;
    END IF;
    RETURN OLD;
END $$;

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
    WHERE f.person_id IS NOT NULL AND (f.model = v.pack OR (NOT EXISTS (
            SELECT 1 FROM photo_analyses a WHERE a.photo_id = f.photo_id AND a.model = v.pack)
        AND f.model = pgface_first_pack(f.photo_id)))
    GROUP BY f.person_id, v.pack;
$$;
SELECT pgface_recount_person_faces();
