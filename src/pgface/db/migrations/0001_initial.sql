-- Photos, the faces found in them, and the people those faces belong to.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE IF NOT EXISTS people (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS photos (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256      bytea NOT NULL UNIQUE CHECK (length(sha256) = 32),
    path        text NOT NULL,
    size_bytes  bigint NOT NULL,
    width       integer NOT NULL,
    height      integer NOT NULL,
    taken_at    timestamp,
    indexed_at  timestamptz NOT NULL DEFAULT now(),
    face_count  integer NOT NULL
);
CREATE INDEX IF NOT EXISTS photos_path_idx ON photos (path);
CREATE INDEX IF NOT EXISTS photos_indexed_at_idx ON photos (indexed_at);

CREATE TABLE IF NOT EXISTS faces (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    photo_id    bigint NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    model       text NOT NULL,
    embedding   vector(512) NOT NULL,
    bbox        real[] NOT NULL CHECK (cardinality(bbox) = 4),
    landmarks   real[] NOT NULL CHECK (cardinality(landmarks) = 10),
    det_score   real NOT NULL,
    crop        bytea NOT NULL,
    person_id   bigint REFERENCES people (id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS faces_photo_id_idx ON faces (photo_id);
CREATE INDEX IF NOT EXISTS faces_person_id_idx ON faces (person_id);
CREATE INDEX IF NOT EXISTS faces_model_idx ON faces (model);
-- Cosine distance over unit vectors; m/ef_construction chosen in docs/benchmarks.md.
CREATE INDEX IF NOT EXISTS faces_embedding_hnsw_idx ON faces
    USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);
