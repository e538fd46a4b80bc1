-- The real folders the library reached through links under a folder given to `index` (its
-- `Phone -> /mnt/phone`), kept while photos are stored under them. `index ROOT --prune` prunes
-- the folders linked from ROOT now, and those it linked to before: a link pointed elsewhere
-- left the old folder's photos where no prune looked, their files gone or not, and nothing said
-- so (store.record_linked_folders, library.Pgface.index).
CREATE TABLE IF NOT EXISTS linked_folders (
    root    bytea NOT NULL,  -- the folder given, as pgface stores paths (links resolved)
    folder  bytea NOT NULL,  -- a folder reached through a link under it, its real path
    PRIMARY KEY (root, folder)
);
