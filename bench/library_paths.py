"""How long keeping paths true costs on LFW View 1 (4,992 photos), in a library that already
holds them (settings from PGFACE_*; index them first with `pgface index IMAGES`).

Measures: `pgface index IMAGES --prune` with nothing gone (the whole command, a subprocess),
the prune step alone, a prune that forgets 4,992 paths (a copy of the folder indexed, then
deleted), and `remove` of the whole folder (4,992 photos with their faces) unless
--keep. Prints one line per figure.

With --remove-scale N, instead: `remove` of 200 and then 2,000 paths whose files are gone, in
a fresh library (a scratch database) of N synthetic photos written by SQL, one path each; it
took time that grew with photos x paths given (probe scale49: 19.7 s for 200 paths at 250,000).
Then `remove` of the whole folder, 9,000 of its photos with a face of one of three named
people (probe scale37: more than 10 minutes at 100,000 photos).

    python bench/library_paths.py [--keep]
    python bench/library_paths.py --remove-scale 250000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import DATA, fresh_database, machine, require

import pgface
from pgface import Pgface, Settings


def timed(action):  # noqa: ANN001, ANN201 - a tiny helper
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


# Faces of named people in remove_at_scale's folder, and the size of its unnamed people
NAMED_PHOTOS, UNNAMED_SIZE = 9_000, 7


def remove_at_scale(photos: int) -> None:
    """remove of 200, then 2,000 gone paths in a fresh library of PHOTOS synthetic photos."""
    url = fresh_database("b_remove_scale")
    with tempfile.TemporaryDirectory(prefix="pgface-bench-") as work, \
            Pgface(Settings(database_url=url, data_dir=work)) as pf:
        pf.stats()  # the library's tables made
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO pgface, public")
            conn.execute("""INSERT INTO photos (sha256, path, size_bytes, width, height,
                                                face_count)
                            SELECT sha256(int8send(g)), '/synthetic/' || g || '.jpg', 1000,
                                   100, 100, 0
                            FROM generate_series(1, %s) g""", [photos])
            conn.execute("""INSERT INTO photo_paths (path_bytes, photo_id, path)
                            SELECT convert_to(path, 'UTF8'), id, path FROM photos""")
            conn.execute("VACUUM ANALYZE photos")
            conn.execute("VACUUM ANALYZE photo_paths")
        print(f"library: {pf.stats()['photos']} synthetic photos, one path each")
        first = 1
        for count in (200, 2000):
            gone = [f"/synthetic/{n}.jpg" for n in range(first, first + count)]
            first += count
            removal, seconds = timed(lambda gone=gone: pf.remove(gone))
            print(f"remove {count} gone paths: {seconds:.2f} s "
                  f"({removal.paths} paths, {removal.photos} photos)")
        # The whole folder, each photo with a face: NAMED_PHOTOS of them of three named people,
        # the others of unnamed people of UNNAMED_SIZE faces, as a clustering leaves them.
        # Saying which names the removal took read every face of those people once per named
        # face (probe scale37: more than 10 minutes at 100,000 photos).
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET search_path TO pgface, public")
            conn.execute("DROP INDEX IF EXISTS faces_embedding_hnsw_idx")  # a bulk load's
            conn.execute("""INSERT INTO faces (photo_id, model, embedding, bbox, landmarks,
                                               det_score, crop, quality)
                            SELECT id, %s, array_fill(0.0442, ARRAY[512])::vector,
                                   '{0,0,10,10}', '{1,1,2,2,3,3,4,4,5,5}', 0.9, '', 0.9
                            FROM photos WHERE id >= %s""", [pf.analyzer.model_name, first])
            # analysed as after an index run; the naming below is newer than the statistics,
            # as a library's is until autovacuum comes by
            conn.execute("VACUUM ANALYZE faces")
            faces = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
            named = faces[:NAMED_PHOTOS]
            people = [conn.execute("INSERT INTO people (name) VALUES (%s) RETURNING id",
                                   [name]).fetchone()[0] for name in ("Ada", "Bo", "Cy")]
            groups = [faces[i:i + UNNAMED_SIZE]
                      for i in range(len(named), len(faces), UNNAMED_SIZE)]
            people += [r[0] for r in conn.execute(
                "INSERT INTO people (name) SELECT NULL FROM generate_series(1, %s) RETURNING id",
                [len(groups)])]
            owners = [people[i % 3] for i in range(len(named))] + [
                person for person, group in zip(people[3:], groups, strict=True)
                for _ in group]
            conn.execute("""UPDATE faces f SET person_id = o.person,
                                   assigned_by = CASE WHEN o.n <= %s THEN 'user' ELSE 'cluster' END
                            FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY
                                 o(face, person, n)
                            WHERE f.id = o.face""", [len(named), faces, owners])
        removal, seconds = timed(lambda: pf.remove(["/synthetic"]))
        print(f"remove the folder: {seconds:.2f} s ({removal.photos} photos, {removal.faces} "
              f"faces, {len(named)} of them of {len(removal.named)} named people, the others "
              f"of {len(groups):,} unnamed)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="do not remove the folder at the end")
    parser.add_argument("--remove-scale", type=int, metavar="PHOTOS",
                        help="time remove of 200 and 2,000 paths among PHOTOS synthetic ones")
    args = parser.parse_args()
    print(machine())
    if args.remove_scale:
        remove_at_scale(args.remove_scale)
        return
    images = require(DATA / "lfw-view1" / "images")
    with pgface.open() as pf:
        photos = pf.stats()["photos"]
        print(f"library: {photos} photos")
        _, seconds = timed(lambda: subprocess.run(
            [sys.executable, "-c", "from pgface.cli import main; main()", "index", "--quiet",
             str(images), "--prune"], check=True))
        print(f"pgface index IMAGES --prune, nothing gone (whole command): {seconds:.2f} s")
        removal, seconds = timed(lambda: pf.remove([images], gone_only=True))
        print(f"prune step alone, nothing gone: {seconds:.3f} s ({removal})")
        with tempfile.TemporaryDirectory(prefix="pgface-copy-") as scratch:
            copy = Path(scratch) / "images"
            shutil.copytree(images, copy)
            report, seconds = timed(lambda: pf.index([copy]))
            print(f"index a copy of the folder (paths recorded, nothing analysed): "
                  f"{seconds:.2f} s ({report.skipped} skipped)")
            shutil.rmtree(copy)
            removal, seconds = timed(lambda: pf.remove([copy], gone_only=True))
            print(f"prune the deleted copy: {seconds:.3f} s ({removal})")
        if not args.keep:
            removal, seconds = timed(lambda: pf.remove([images]))
            print(f"remove the folder: {seconds:.3f} s ({removal})")


if __name__ == "__main__":
    main()
