-- Keep each face's vector(512) (2 KB) in its row instead of TOAST: every search reads it
-- (the sign index's re-rank by id, the exact scan, HNSW's distance in the SELECT list), and
-- a TOAST fetch per face made the re-rank of 300 candidates about 1.5x slower
-- (docs/benchmarks-search.md). Applies to rows written from now on; `VACUUM FULL faces`
-- moves older ones. The crop stays in TOAST, so a row is about 2.3 KB, 3 to a page.
ALTER TABLE faces ALTER COLUMN embedding SET STORAGE MAIN;
