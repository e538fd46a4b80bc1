-- The people of the faces of photos forgotten by path (`index --prune`, `remove`): a photo
-- found again (moved back under an indexed folder, or indexed where it went) gives its faces
-- their people back. A person deleted or erased takes these rows along; a content hash of a
-- photo of them is theirs too.
CREATE TABLE IF NOT EXISTS forgotten_faces (
    sha256        bytea NOT NULL,
    model         text NOT NULL,
    bbox          real[] NOT NULL CHECK (cardinality(bbox) = 4),
    person_id     bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    assigned_by   text,
    forgotten_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS forgotten_faces_sha256_idx ON forgotten_faces (sha256);
CREATE INDEX IF NOT EXISTS forgotten_faces_person_id_idx ON forgotten_faces (person_id);
