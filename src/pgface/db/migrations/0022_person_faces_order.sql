-- A person's faces are listed in id order, a page at a time (people_store.PERSON_FACES): with
-- only (person_id) indexed, a page of a person of 200,000 faces read, joined and sorted all of
-- them (4 to 5 s through the API, most of it the rows made into objects before the slice).
-- In (person_id, id) order a page reads its own rows, and those its offset passes over. It
-- finds a person's faces as the index it replaces did.
CREATE INDEX IF NOT EXISTS faces_person_id_order_idx ON faces (person_id, id);
DROP INDEX IF EXISTS faces_person_id_idx;
