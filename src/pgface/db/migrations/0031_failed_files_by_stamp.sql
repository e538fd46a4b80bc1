-- A folder renamed or moved keeps each file's size, modification and change time (renaming a
-- folder changes no file's ctime): a file there that failed before was read again at its new
-- path, failed again, and its former path stayed in failed_files for ever, no prune reaching
-- it (probe reprobe39). Each batch's lookup of remembered failures finds them by their stamp
-- too (sql.UNCHANGED_FAILURES), from this index.
CREATE INDEX IF NOT EXISTS failed_files_stamp_idx ON failed_files (mtime_ns, size_bytes, ctime_ns);
