-- Which revision of pgface's analysis (models.ANALYSIS_REVISION) stored a photo's faces for a
-- pack: a change to detection, alignment or embedding that changes stored results (1d36905:
-- SCRFD scaled x by the height's scale, boxes right of their faces) raises it, and
-- `pgface index --pending` analyses the photos of an older revision again, keeping their
-- people. The rows there before get 1: analysed before that fix, or by a pgface whose code
-- cannot be told any more (after it, before this migration): analysed again once, to be sure.
-- The default stays 1, so that a writer that does not set it (a pgface older than this
-- migration still running against the library) is taken for an older analysis too.
ALTER TABLE photo_analyses ADD COLUMN IF NOT EXISTS revision integer NOT NULL DEFAULT 1;
