-- Face quality (pgface/models/quality.py): the score and what it is made of. Faces stored
-- before: face_size, yaw and pitch come from their stored box and landmarks (the same
-- arithmetic as quality.pose); sharpness needs the aligned crop, which is not stored, so it
-- and the score stay NULL, and a NULL score is never below the floor.
ALTER TABLE faces ADD COLUMN IF NOT EXISTS quality real;
ALTER TABLE faces ADD COLUMN IF NOT EXISTS face_size real;
ALTER TABLE faces ADD COLUMN IF NOT EXISTS yaw real;
ALTER TABLE faces ADD COLUMN IF NOT EXISTS pitch real;
ALTER TABLE faces ADD COLUMN IF NOT EXISTS sharpness real;

UPDATE faces f
SET face_size = greatest(least(f.bbox[3] - f.bbox[1], f.bbox[4] - f.bbox[2]), 0),
    yaw = CASE WHEN g.len < 1e-6 THEN 0
               ELSE (g.nx * -g.ay + g.ny * g.ax) / (g.len * g.len) END,
    pitch = CASE WHEN g.len < 1e-6 THEN 0
                 ELSE (g.nx * g.ax + g.ny * g.ay) / (g.len * g.len) END
FROM (
    SELECT a.id, a.ax, a.ay, a.nx, a.ny, sqrt(a.ax * a.ax + a.ay * a.ay) AS len
    FROM (
        -- axis: eyes' midpoint to mouth's; n: nose from the eyes' midpoint
        SELECT id,
               (l[7] + l[9]) / 2 - (l[1] + l[3]) / 2 AS ax,
               (l[8] + l[10]) / 2 - (l[2] + l[4]) / 2 AS ay,
               l[5] - (l[1] + l[3]) / 2 AS nx,
               l[6] - (l[2] + l[4]) / 2 AS ny
        FROM (SELECT id, landmarks::float8[] AS l FROM faces WHERE face_size IS NULL) r
    ) a
) g
WHERE f.id = g.id;
