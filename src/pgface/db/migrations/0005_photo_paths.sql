-- Paths follow files: a photo (one content hash) may live at several paths, and a path holds
-- one photo. path_bytes is the file name exactly as the file system has it (os.fsencode), so
-- names that are not UTF-8 are kept losslessly; path is its readable form (bytes that are not
-- UTF-8 shown as \xNN), for display and JSON. photos.path stays the path last seen, for display.
CREATE TABLE IF NOT EXISTS photo_paths (
    path_bytes  bytea PRIMARY KEY,
    photo_id    bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    path        text NOT NULL,
    seen_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS photo_paths_photo_id_idx ON photo_paths (photo_id);
-- Every photo keeps its current path; of two photos once indexed at one path (a file whose
-- content changed), the later keeps it.
INSERT INTO photo_paths (path_bytes, photo_id, path, seen_at)
SELECT DISTINCT ON (path) convert_to(path, 'UTF8'), id, path, indexed_at
FROM photos ORDER BY path, indexed_at DESC, id DESC
ON CONFLICT (path_bytes) DO NOTHING;

-- Packs are explicit: which model pack analysed which photo, when, and how many faces it found,
-- so indexing with another pack analyses the photos that pack has not seen.
CREATE TABLE IF NOT EXISTS photo_analyses (
    photo_id     bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model        text NOT NULL,
    analysed_at  timestamptz NOT NULL DEFAULT now(),
    face_count   integer NOT NULL,
    PRIMARY KEY (photo_id, model)
);
CREATE INDEX IF NOT EXISTS photo_analyses_model_idx ON photo_analyses (model);
-- Photos with faces were analysed by the packs of their faces. A photo without a face was
-- analysed by a pack not recorded: it is credited to every pack the library has faces of
-- (before this migration indexing skipped known photos, so that was the pack in use).
INSERT INTO photo_analyses (photo_id, model, analysed_at, face_count)
SELECT f.photo_id, f.model, min(ph.indexed_at), count(*)
FROM faces f JOIN photos ph ON ph.id = f.photo_id
GROUP BY f.photo_id, f.model
ON CONFLICT DO NOTHING;
INSERT INTO photo_analyses (photo_id, model, analysed_at, face_count)
SELECT ph.id, m.model, ph.indexed_at, 0
FROM photos ph CROSS JOIN (SELECT DISTINCT model FROM faces) m
WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.photo_id = ph.id)
ON CONFLICT DO NOTHING;
