-- A face a people change touched can be replaced after the change: its photo forgotten by
-- path (the person kept in forgotten_faces), found again (a new face takes the person), or
-- edited (the most similar new face takes it). Its before-images follow it there, so undoing
-- the change puts the person back where the face now is (before, undo wrote back a deleted
-- face only: a merge undone left a forgotten photo's face with the merge's target, a split
-- undone left it with nobody). Following them looks before-images up by the row they are of.
CREATE INDEX IF NOT EXISTS people_change_rows_row_idx ON people_change_rows (tbl, row_id);
