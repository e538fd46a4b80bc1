"""How long keeping paths true costs on LFW View 1 (4,992 photos), in a library that already
holds them (settings from PGFACE_*; index them first with `pgface index IMAGES`).

Measures: `pgface index IMAGES --prune` with nothing gone (the whole command, a subprocess),
the prune step alone, a prune that forgets 4,992 paths (a copy of the folder indexed, then
deleted), and `remove` of the whole folder (4,992 photos with their faces) unless
--keep. Prints one line per figure.

    python bench/library_paths.py [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DATA, machine, require

import pgface


def timed(action):  # noqa: ANN001, ANN201 - a tiny helper
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", action="store_true", help="do not remove the folder at the end")
    args = parser.parse_args()
    images = require(DATA / "lfw-view1" / "images")
    print(machine())
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
