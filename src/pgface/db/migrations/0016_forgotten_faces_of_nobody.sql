-- A face nobody holds can still carry before-images of changes that can be undone (a person
-- deleted, a naming of a face that had nobody): forgotten by path, it is kept here too, with
-- no person, so that the photo found again takes them and an undo then reaches it (without,
-- an undo after the photo was found again left the face with nobody).
ALTER TABLE forgotten_faces ALTER COLUMN person_id DROP NOT NULL;
-- Before-images serve undo only: those of changes that cannot be undone (the indexer's keep,
-- an erase, changes past the undo depth) were kept for ever, one row a face kept.
DELETE FROM people_change_rows r USING people_changes c
WHERE c.id = r.change_id AND (NOT c.undoable OR c.undone_at IS NOT NULL);
