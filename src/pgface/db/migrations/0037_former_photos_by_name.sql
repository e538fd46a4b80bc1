-- A former recorded by its file name (a photo moved and edited in one step: the photo at a
-- path of the same file name in another folder, store.gone_namesakes and
-- store.present_namesakes) rather than by its path (an edit saved over the file). A pack
-- that analyses the new version after (the former kept for it: index.people_of_waiting_formers)
-- gives the former's people over only as a move and edit is taken for one: each of its faces
-- with a person one of the new version's at cosine 0.8 (index.MOVED_EDIT_SIMILARITY), where an
-- edit at the same path gives each face at 0.6. Before, a prune under a pack that had not
-- analysed the original deleted it with its names (probe packs56).
ALTER TABLE former_photos ADD COLUMN IF NOT EXISTS by_name boolean NOT NULL DEFAULT false;
