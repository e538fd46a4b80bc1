-- remove finds the photos no path holds (a broken file written over their only one) shown
-- inside the folders given by [low, high) ranges of photos.path compared byte by byte
-- (sql.PATHLESS_SHOWN_UNDER): an index in the database's collation cannot serve those (an
-- en_US one does not sort by bytes), and the starts_with() read before used none, every photo
-- once per path given: `pgface remove` of 200 paths took 19.7 s in a library of 250,000
-- photos, of 10,000 paths over ten minutes (probe scale49). text_pattern_ops sorts by bytes
-- whatever the collation, and serves the equality lookups of photos.path (the only ones)
-- too, so this index takes the place of 0001's.
CREATE INDEX IF NOT EXISTS photos_path_bytewise_idx ON photos (path text_pattern_ops);
DROP INDEX IF EXISTS photos_path_idx;
