-- The people layer: who put a face in a person, so clustering never overrides a human, and
-- whether clustering has looked at a face yet, so incremental runs start from new faces only.
ALTER TABLE faces ADD COLUMN IF NOT EXISTS assigned_by text
    CHECK (assigned_by IN ('user', 'cluster'));
ALTER TABLE faces ADD COLUMN IF NOT EXISTS clustered_at timestamptz;
ALTER TABLE people ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL DEFAULT now();
