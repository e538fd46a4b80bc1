"""How long keeping paths true costs on LFW View 1 (4,992 photos), in a library that already
holds them (settings from PGFACE_*; index them first with `pgface index IMAGES`).

Measures: `pgface index IMAGES --prune` with nothing gone (the whole command, a subprocess),
the prune step alone, a prune that forgets 4,992 paths (a copy of the folder indexed, then
deleted), and `remove` of the whole folder (4,992 photos with their faces) unless
--keep. Prints one line per figure.

With --remove-scale N, instead: `remove` of 200 and then 2,000 paths whose files are gone, in
a fresh library (a scratch database) of N synthetic photos written by SQL, one path each; it
took time that grew with photos x paths given (probe scale49: 19.7 s for 200 paths at 250,000).

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
