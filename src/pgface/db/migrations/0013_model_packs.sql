-- The packs whose embeddings the library holds, known by name (faces.model) and by the
-- content of their recognizer: a folder named like a pack the library knows but holding
-- another recognizer (a retrained model, a copy of other files) wrote its embeddings under
-- that name, and searches compared two models' vectors as one (the same photo scored -0.05
-- against itself). Recorded at a pack's first use; a library made before holds its packs'
-- names only from then on.
CREATE TABLE IF NOT EXISTS model_packs (
    name                text PRIMARY KEY,
    recognizer_sha256   text NOT NULL CHECK (recognizer_sha256 ~ '^[0-9a-f]{64}$'),
    recognizer_file     text NOT NULL,
    first_used          timestamptz NOT NULL DEFAULT now()
);
