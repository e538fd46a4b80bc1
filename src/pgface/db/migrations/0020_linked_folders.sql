-- The real folders the library reached through links under a folder given to `index` (its
-- `Phone -> /mnt/phone`), kept while photos are stored under them. `index ROOT --prune` prunes
-- the folders linked from ROOT now, and those it linked to before: a link pointed elsewhere
-- left the old folder's photos where no prune looked, their files gone or not, and nothing said
-- so (store.record_linked_folders, library.Pgface.index).
CREATE TABLE IF NOT EXISTS linked_folders (
    -- where the link is: its folder's real path and its own name (rows written before links
    -- were recorded so hold the folder the run walked, at or above the link; sql.LINKED_FOLDERS
    -- finds both)
    root    bytea NOT NULL,
    folder  bytea NOT NULL,  -- a folder reached through a link under it, its real path
    PRIMARY KEY (root, folder)
);
