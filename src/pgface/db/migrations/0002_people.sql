-- The people layer: who put a face in a person, so clustering never overrides a human.
ALTER TABLE faces ADD COLUMN IF NOT EXISTS assigned_by text
    CHECK (assigned_by IN ('user', 'cluster'));
ALTER TABLE people ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
-- Clustering reads the faces no person holds yet; this keeps that scan small.
CREATE INDEX IF NOT EXISTS faces_unassigned_idx ON faces (model, id) WHERE person_id IS NULL;
