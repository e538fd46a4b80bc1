-- Each path's file's change time (ctime, ns) as it was when last read, beside its size and
-- modification time (0010). Size and modification time alone took two files of one size and
-- one time that swapped names (`mv` three times: a rename keeps a file's times) for unchanged,
-- so each path went on holding the other's photo and names; and a tool that rewrites a file
-- and sets its modification time back (`exiftool -P` turning a photo, which keeps its size)
-- left the photo as it was. A rename, a write and setting the times all set the change time
-- to now, and no tool sets it back. NULL: recorded before this; such a path gets its change
-- time the first time it is found unchanged with a change time no later than its seen_at
-- (sql.UNCHANGED_PATHS); a later one is read once.
ALTER TABLE photo_paths ADD COLUMN IF NOT EXISTS ctime_ns bigint;
