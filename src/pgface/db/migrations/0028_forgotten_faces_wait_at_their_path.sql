-- A named face an edit in place could not carry (cropped out, or the photo turned so that the
-- detector misses it) was kept for the former content's hash alone: the file saved back byte
-- for byte got the name again, but one turned back (a viewer rewrites the EXIF segment: the
-- very pixels, other bytes) or cropped again with the face in it never did (probe living23).
-- Such a face now also waits at its path: waiting_for is the photo now at the path it was at
-- (re-pointed to the newest version when that one is replaced in turn, before it goes), and
-- embedding its vector, so that a later version's face of nobody at index.EDIT_SIMILARITY or
-- above to it takes the person back (people_store.people_waiting_for). Both stay NULL for the
-- rows kept before, and for those not waiting (a prune's, a face the edit carried): those are
-- found again by the hash, as before. A photo waited for that is deleted with no version after
-- it (pruned, removed) leaves its rows waiting for nothing, kept by the hash.
ALTER TABLE forgotten_faces ADD COLUMN IF NOT EXISTS embedding vector;
ALTER TABLE forgotten_faces
    ADD COLUMN IF NOT EXISTS waiting_for bigint REFERENCES photos (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS forgotten_faces_waiting_for_idx ON forgotten_faces (waiting_for)
    WHERE waiting_for IS NOT NULL;
-- A people change is recorded by what it does to the people kept (migration 0012): a merge
-- moves them, a person deleted takes them along. Re-pointing a wait (or the photo waited for
-- deleted) changes whose person nothing: it records no before-image, which an undo would
-- have written back over a row kept for another version.
DROP TRIGGER IF EXISTS forgotten_faces_people_change ON forgotten_faces;
CREATE TRIGGER forgotten_faces_people_change
    AFTER UPDATE OF person_id, assigned_by OR DELETE ON forgotten_faces
    FOR EACH ROW EXECUTE FUNCTION pgface_record_people_change();
