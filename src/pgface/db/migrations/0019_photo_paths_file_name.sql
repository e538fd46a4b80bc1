-- A photo moved and edited in one step (re-saved, cropped or turned, and filed elsewhere) is
-- new content at a new path, and its former self, whose file is gone, lost its people at the
-- next prune. The former is found by its file's name, which a move keeps
-- (index.people_of_moved_and_edited): from this index, for every batch that stores a new photo.
CREATE INDEX IF NOT EXISTS photo_paths_file_name_idx
    ON photo_paths ((regexp_replace(path, '^.*/', '')));
