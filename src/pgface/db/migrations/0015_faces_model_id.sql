-- The search index checks now and then that it holds every face of its model up to its
-- watermark (vector_index.SignIndex, RECONCILE_S): a count and, where it differs, the ids, of
-- one model below an id. With (model) alone PostgreSQL read them from the table itself, the
-- embeddings and crops around them: seconds at a million faces; here, an index-only scan.
CREATE INDEX IF NOT EXISTS faces_model_id_idx ON faces (model, id);
DROP INDEX IF EXISTS faces_model_idx;
