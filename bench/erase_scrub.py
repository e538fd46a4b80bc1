"""What erasing a person costs on a large library: the erase itself, then the scrub that
rewrites the tables (VACUUM FULL) so no byte of the erased rows stays in their files.

    python bench/erase_scrub.py ../shared/data/lfw-view1/images --person George_W_Bush
    python bench/erase_scrub.py IMAGES --copies 9   # the faces 10 times over, for the trend

Indexes IMAGES (folders per person) into an embedded PostgreSQL under --data-dir (kept, so
a second run reuses it), names the person's faces, erases them and prints the timings.
`--copies` adds that many copies of every face row first (same crops, vectors
with a little noise).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pgface
from pgface import Settings

SIZES = """
SELECT (SELECT count(*) FROM faces),
       pg_total_relation_size('faces'), pg_indexes_size('faces'), pg_total_relation_size('photos')
"""
# Copies with a little noise in each vector: HNSW stores identical vectors as one element,
# which would make the index (the costly part of the rewrite) look smaller than it would be.
COPY_FACES = """
INSERT INTO faces (photo_id, model, embedding, bbox, landmarks, det_score, crop)
SELECT photo_id, model,
       (SELECT array_agg(x + (random()::real - 0.5) * 0.01) FROM unnest(embedding::real[]) x
       )::vector, bbox, landmarks, det_score, crop
FROM faces, generate_series(1, %s)
"""
FACES_OF_FOLDER = """
SELECT f.id FROM faces f JOIN photos ph ON ph.id = f.photo_id WHERE ph.path LIKE %s
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("images", type=Path)
    parser.add_argument("--person", default="George_W_Bush")
    parser.add_argument("--copies", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/pgface-bench-erase"))
    args = parser.parse_args()

    with pgface.open(Settings(data_dir=args.data_dir)) as pf:
        started = time.perf_counter()
        report = pf.index([args.images])
        print(f"index: {report.indexed} new, {report.skipped} skipped, "
              f"{time.perf_counter() - started:.1f} s")
        with pf.pool.connection() as conn, conn.transaction():
            if args.copies:
                conn.execute(COPY_FACES, [args.copies])
            folder = str((args.images / args.person).resolve())
            faces = [r[0] for r in conn.execute(FACES_OF_FOLDER, [folder + "/%"])]
        pf.people.name_faces(faces, args.person, move=True)
        with pf.pool.connection() as conn:
            count, table, indexes, photos = conn.execute(SIZES).fetchone()
        print(f"library: {count} faces; faces {table / 2**20:.0f} MiB (indexes "
              f"{indexes / 2**20:.0f} MiB), photos {photos / 2**20:.1f} MiB")
        started = time.perf_counter()
        erased = pf.people.erase(args.person, scrub=False)
        erase_s = time.perf_counter() - started
        scrub_s = pf.people.scrub()
        print(f"erase {args.person}: {erased.faces} faces, {erased.photos} photos in "
              f"{erase_s:.2f} s; scrub (VACUUM FULL + CHECKPOINT) {scrub_s:.2f} s")


if __name__ == "__main__":
    main()
