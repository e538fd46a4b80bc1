-- A failed file moved with its folder is found by its stamp and its inode (0032,
-- sql.UNCHANGED_FAILURES): on the stamp alone (0031's index), every file was compared with every
-- failure remembered with the same stamp, and on a disk whose times have whole seconds (ext4's
-- 128-byte inodes, FAT, HFS+), where a thousand empty files share one, the run that read
-- nothing took time that grew with the square of their number: 42 s for 16,000 files that the
-- run before read in 7 s (probe scale42). This index finds each by all four; it serves the
-- stamp's lookups too, so 0031's is dropped.
CREATE INDEX IF NOT EXISTS failed_files_moved_idx
    ON failed_files (mtime_ns, size_bytes, ctime_ns, inode);
DROP INDEX IF EXISTS failed_files_stamp_idx;
