-- Files whose content failed to decode (not an image, corrupt or truncated, empty, over the
-- byte or pixel limit, a format pgface does not read), with their file's stamp when read (as
-- photo_paths keeps it: size, modification and change time, in ns), why, and what read them: the
-- pgface version and the limits. A run passes over such a file unread while its stamp and the
-- reader are the same (index.files_to_read; counted in the report's unchanged_failures, not a
-- failure): a NAS library with a thousand empty .jpg files printed a thousand failures on every
-- nightly run, read them each time and exited 1 for ever. A failure of the moment (permission,
-- a timeout, a file gone or changed while read, memory, the database) is never kept. A path
-- stored as a photo loses its row (store.record_paths); `index --prune` forgets those of files
-- gone under its paths, `remove` those under its paths; `--reread` reads them all again.
CREATE TABLE IF NOT EXISTS failed_files (
    path_bytes      bytea PRIMARY KEY,  -- canonical, as photo_paths keys it
    path            text NOT NULL,      -- readable (`\xNN` for a byte that is not UTF-8)
    size_bytes      bigint NOT NULL,
    mtime_ns        bigint NOT NULL,
    ctime_ns        bigint NOT NULL,
    reason          text NOT NULL,
    pgface_version  text NOT NULL,
    max_file_bytes  bigint NOT NULL,
    max_pixels      bigint NOT NULL,
    failed_at       timestamptz NOT NULL DEFAULT now()
);
