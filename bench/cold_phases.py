"""Where a cold `pgface search` spends its time: one fresh process, phase by phase.

    PGFACE_DATABASE_URL=... PGFACE_DATA_DIR=... .venv/bin/python bench/cold_phases.py PHOTO

Runs, in a new interpreter, what `pgface search PHOTO --json` runs, in the same order, with a
timestamp after each phase: wall seconds and the process's CPU seconds (every thread), so a
loaded machine's figures can be read as well (CPU time is inflated less by other processes
than wall time is). Prints one JSON object; bench/cold_start.py --phases records it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The child: the CLI's own code path (pgface.cli's search command), cut into phases.
CHILD = r"""
import json, os, sys, time
started, marks = float(os.environ["COLD_T0"]), []
def mark(name):
    marks.append((name, time.time() - started, time.process_time()))
mark("interpreter")
import pgface.cli  # what the `pgface` entry point imports
from pgface.cli.common import open_library, print_json
from pgface import vector_index
from pgface.search import analyze_photos, search_faces
mark("imports")
pf = open_library()
threshold = pf.settings.threshold
mark("settings")
pool = pf.read_pool
mark("database")
analyzer = pf.analyzer
# as Pgface.search and search_photo do (an older pgface, timed for comparison, did neither)
if hasattr(pf, "_count_ahead"):
    pf._count_ahead(analyzer.model_name)
    vector_index.open_in_background(pool, analyzer.model_name)
analyzer._load()
mark("models")
photo = pf.load_photo(sys.argv[1])
mark("read photo")
faces = analyze_photos(analyzer, [photo])[0]
mark("detect + embed")
index = vector_index.shared_index(pool, analyzer.model_name)
mark("index open")  # what is left of it: it began in the background before "models"
if index is not None:
    with pool.connection() as conn:
        index.sync(conn)
mark("catch-up")
result = search_faces(pool, analyzer.model_name, faces, pf.settings.top_k, pf.threshold,
                      pf.settings.ef_search, photo.source, pf.threshold)
mark("search")
result.notices = pf.notices()
mark("notices")
print_json(result.to_dict())
sys.stdout.flush()
mark("print")
pf.close()
mark("close")
sys.stderr.write("PHASES " + json.dumps(marks) + "\n")
"""


def phases(photo: Path, env: dict[str, str] | None = None) -> dict:
    """Seconds (wall, CPU) of each phase of one cold search, plus the load average."""
    env = dict(env or os.environ)
    env.setdefault("PYTHONPATH", str(REPO / "src"))
    env["COLD_T0"] = repr(time.time())
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", CHILD, str(photo)], env=env,
                          capture_output=True, text=True)
    total = float(env["COLD_T0"])
    line = next((x for x in done.stderr.splitlines() if x.startswith("PHASES ")), None)
    if done.returncode or line is None:
        raise RuntimeError(f"cold search failed: {done.stderr[-2000:]}")
    marks = json.loads(line[len("PHASES "):])
    out, wall0, cpu0 = {}, 0.0, 0.0
    for name, wall, cpu in marks:
        out[name] = {"wall_s": round(wall - wall0, 4), "cpu_s": round(cpu - cpu0, 4)}
        wall0, cpu0 = wall, cpu
    total = time.time() - total
    return {"phases": out, "answered_s": round(marks[-2][1] if len(marks) > 1 else 0, 4),
            "exit_s": round(total, 3), "load_avg": [load, os.getloadavg()[0]]}


def main() -> None:
    photo = Path(sys.argv[1])
    print(json.dumps(phases(photo), indent=1))


if __name__ == "__main__":
    main()
