-- Each path's file as it was when last read: its size and modification time (ns). A run that
-- finds a path's file with the same size and time, its photo analysed by the active pack,
-- skips it without reading it (rsync's quick check); a path without them (recorded before
-- this, or read within seconds of a write) is read, and gets them.
ALTER TABLE photo_paths ADD COLUMN IF NOT EXISTS size_bytes bigint,
                        ADD COLUMN IF NOT EXISTS mtime_ns bigint;
