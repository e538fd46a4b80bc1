-- A link to a folder is recorded where it is (its folder's real path and its own name), not
-- under the folder the run that found it walked: `index home --prune` recorded home's
-- `Phone -> /disk` under home, so once Phone pointed elsewhere `index home/Phone --prune`
-- never reached /disk; and a link inside a linked folder (`/disk/inner -> /disk2`) was
-- recorded under the link given, so it was lost with the link's record. The rows before this
-- hold the folder walked in this column: a folder walked is at or above the links found in
-- it, so sql.LINKED_FOLDERS, which takes the rows at or under the folders given and at or
-- under the folders those reach, finds them as it did.
-- (Only where not done: a migration may be applied again, as every one of them.)
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_schema = current_schema() AND table_name = 'linked_folders'
                 AND column_name = 'root') THEN
        ALTER TABLE linked_folders RENAME COLUMN root TO place;
    END IF;
END $$;
