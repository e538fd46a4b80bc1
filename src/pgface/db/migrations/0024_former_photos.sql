-- The former versions of photos edited in place (or moved and edited), each beside the photo
-- now at its path, recorded in the transaction that stored the new version. A run forgets its
-- formers once all its paths are recorded (index.forget_formers); a run stopped before its end
-- (Ctrl-C, a kill, a job cancelled) kept them only in memory, so the former stayed, with no
-- path and its people, until a prune: each of its people counted two faces, and search showed
-- its faces at the path of the new version, "missing". The next complete run of the folder
-- holding the new version, alone, now forgets them too (index.forget_formers).
CREATE TABLE IF NOT EXISTS former_photos (
    former_id  bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    photo_id   bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    PRIMARY KEY (former_id, photo_id)
);
CREATE INDEX IF NOT EXISTS former_photos_photo_id_idx ON former_photos (photo_id);
