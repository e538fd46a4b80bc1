"""The face models: detection, alignment, embedding (analysis.py) and their packs."""

# The revision of the analysis pgface stores for a photo (photo_analyses.revision, migration
# 0035): raise it whenever a change to detection, alignment or embedding changes the faces
# stored for a photo (their boxes, landmarks, crops or embeddings). `pgface index --pending`
# then analyses every photo stored at an older revision again, each face's person kept (the
# new face most like the old one takes it: index.reanalyse_people), and every search says
# how many are left until it does. A plain `pgface index PATH` passes them over.
#  1: before 1d36905 (or not known: rows written before migration 0035 got 1): SCRFD divided
#     x by the height's scale, so boxes lay right of their faces (up to 24 px on a 6000x4000
#     photo; in a 24000x250 strip most of 96 faces searched as someone else) and the
#     embeddings were of crops off the faces: a photo's own face searched itself at 0.978.
#  2: each axis scaled by its own scale (1d36905).
ANALYSIS_REVISION = 2
