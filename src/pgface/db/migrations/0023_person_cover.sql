-- A person's cover is their face detected with the most confidence (people_store.PEOPLE_PAGE,
-- PERSON_SUMMARY). Picked from an aggregate over all their faces, it read every face's row:
-- for a person of 200,000 faces 172 ms of the 276 a people page spent on them, in a library of
-- 300,000. In this order, with what the shown-face test needs (model, photo), the cover is the
-- first entry that passes it. Faces nobody holds (most, while indexing) are not in it.
CREATE INDEX IF NOT EXISTS faces_person_cover_idx ON faces (person_id, det_score DESC, id)
    INCLUDE (model, photo_id) WHERE person_id IS NOT NULL;
