-- Migration 0027 was two other scripts on main for a while, never at a release (6ef3270 for 12
-- minutes: linked_folders.root renamed place, which 47ceb31 took back by giving 0027 to the
-- names in any case; 7ae53b1 for 45 minutes: an index on lower(name), which 75a5435 made the
-- folded name's). A library that applied either holds 27 as applied and was never given what
-- 0027 does now: from the first, every index run failed with "column lf.root does not exist";
-- from the second, the folded-name lookup had no index (probe upgrade30). Each is put as 0027
-- leaves it; elsewhere nothing changes. (Only where not done, as every migration.)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'linked_folders'
                 AND column_name = 'place')
       AND NOT EXISTS (SELECT 1 FROM information_schema.columns
                       WHERE table_schema = current_schema() AND table_name = 'linked_folders'
                         AND column_name = 'root') THEN
        ALTER TABLE linked_folders RENAME COLUMN place TO root;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS people_name_folded_idx
    ON people (lower(replace(translate(name, 'ςẞ', 'σß'), 'ß', 'ss')));
DROP INDEX IF EXISTS people_name_lower_idx;
UPDATE schema_migrations SET name = 'people_names_in_any_case'
WHERE version = 27 AND name IS DISTINCT FROM 'people_names_in_any_case';
