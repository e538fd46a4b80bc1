-- The people page read every person's kept counts to sort them (0018): 117 ms a page at a
-- million faces and 67,352 people, most of it summing, joining and sorting them all. A person
-- whose changes are added up has one row per pack, their faces; this index holds those rows in
-- the page's order for unnamed people (most faces first, then id), so a page of them reads its
-- own rows and a few more (people_store.PEOPLE_PAGE; named people, and people with changes not
-- added up yet, are summed as before: far fewer). `-faces`: the order as one ascending key, which a
-- page's place compares as a row; `faces` included, so a count of them reads the index alone.
CREATE INDEX IF NOT EXISTS person_face_counts_order_idx
    ON person_face_counts (pack, (-faces), person_id) INCLUDE (faces) WHERE NOT pending;
-- The people the page leaves out of unnamed people's order (named, or hidden while hidden
-- people are not listed): counted apart, and taken from the total.
CREATE INDEX IF NOT EXISTS people_named_or_hidden_idx
    ON people (id) WHERE name IS NOT NULL OR hidden;
-- Each person's rows under a pack, with whether they are pending: a named person's count, and
-- whether someone's added-up row is their count, from the index alone.
DROP INDEX IF EXISTS person_face_counts_pack_idx;
CREATE INDEX IF NOT EXISTS person_face_counts_pack_idx
    ON person_face_counts (pack, person_id) INCLUDE (faces, pending);
-- Two add-ups at once could leave a person two added-up rows under a pack (people_store.
-- ADD_UP_LOCK now keeps them apart), which the page would list as two people: made again.
SELECT pgface_recount_person_faces();
