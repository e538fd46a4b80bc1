"""A page of one person's faces, the person holding many: as it was read before migration
0022 (c138b6f^: every face of the person read, joined with its photo, sorted by id, made into
objects, then the page sliced off in Python) against now (the page read in SQL, in
(person_id, id) order, and its total counted).

    python bench/person_faces.py --faces 300000 --person 20000 100000 200000
    python bench/person_faces.py --faces 50000 --person 20000 --smoke   # nothing written

The library: bench/http_load.py's synthetic faces, loaded by COPY into photos of 1 to 4 faces
(nothing here searches: no HNSW index). One person is given the first N faces by one UPDATE
for each size measured. Both ways run in the same database with the same indexes (migration
0022's), interleaved, medians of the rounds, a page of 60 (the web page's) at the start, the
middle and the end of the person's faces; both give the same faces (checked).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_database, machine, markdown_table  # noqa: E402
from http_load import fill  # noqa: E402

from pgface.db import people_store as ps  # noqa: E402
from pgface.db.connection import migrate  # noqa: E402
from pgface.people import _person_faces  # noqa: E402

MODEL = "buffalo_sc"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-person-faces.md"
PAGE = 60  # the web page's faces page

# c138b6f^'s people_store.PERSON_FACES: every face of the person.
BEFORE = f"""
SELECT f.id, f.photo_id, ph.path, f.bbox, f.det_score, f.model, f.assigned_by
FROM faces f JOIN photos ph ON ph.id = f.photo_id
WHERE f.person_id = %(person)s AND {ps.SHOWN_FACE} ORDER BY f.id
"""


def before_page(conn: psycopg.Connection, person: int, offset: int) -> list[int]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(BEFORE, {"person": person, "model": MODEL}).fetchall()
    # every face read, the page cut in Python; the rows made no objects here (1f58221 gave
    # _person_faces the connection, for the places of a page's photos): if anything, this
    # makes the old way look faster than it was
    return [r["id"] for r in rows[offset: offset + PAGE]]


def now_page(conn: psycopg.Connection, person: int, offset: int) -> list[int]:
    rows = ps.person_faces(conn, person, MODEL, PAGE, offset)
    ps.count_person_faces(conn, person, MODEL)
    return [f.face_id for f in _person_faces(conn, rows)]


def measure(conn: psycopg.Connection, size: int, rounds: int) -> list[object]:
    conn.execute("UPDATE faces SET person_id = NULL, assigned_by = NULL "
                 "WHERE person_id IS NOT NULL")
    person = conn.execute("INSERT INTO people (name) VALUES (%s) RETURNING id",
                          [f"Many {size}"]).fetchone()[0]
    conn.execute("UPDATE faces SET person_id = %s, assigned_by = 'user' WHERE id IN "
                 "(SELECT id FROM faces ORDER BY id LIMIT %s)", [person, size])
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE faces")
    conn.autocommit = False
    row: list[object] = [f"{size:,} faces"]
    for place, offset in (("start", 0), ("middle", size // 2), ("end", size - PAGE)):
        times: dict[str, list[float]] = {"before": [], "now": []}
        answers = {}
        for _ in range(rounds):
            for name, page in (("before", before_page), ("now", now_page)):
                started = time.perf_counter()
                answers[name] = page(conn, person, offset)
                times[name].append(time.perf_counter() - started)
                conn.commit()
        assert answers["before"] == answers["now"] and len(answers["now"]) == PAGE, place
        before, now = (1000 * statistics.median(times[n]) for n in ("before", "now"))
        row.append(f"{before:,.0f} / {now:,.1f} ms ({before / now:,.0f}x)")
    print(" | ".join(str(v) for v in row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=300_000)
    parser.add_argument("--person", type=int, nargs="+", default=[20_000, 100_000, 200_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="nothing written")
    args = parser.parse_args()
    url = fresh_database("bench_person_faces")
    migrate(url)
    fill(url, args.faces, MODEL, seed=17, hnsw=False)
    options = "options=-csearch_path%3Dpgface%2Cpublic"
    with psycopg.connect(url + ("&" if "?" in url else "?") + options) as conn:
        rows = [measure(conn, size, args.rounds) for size in args.person]
    table = markdown_table([f"person (library of {args.faces:,} faces)",
                            f"page of {PAGE} at the start: before / now",
                            "in the middle", "at the end"], rows)
    print(table)
    if args.smoke:
        return
    sizes = " ".join(str(s) for s in args.person)
    DOC.write_text(
        "# A person's faces, a page at a time\n\n"
        f"`python bench/person_faces.py --faces {args.faces} --person {sizes}` on {machine()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}. {__doc__.split(chr(10) * 2)[2].strip()}\n\n"
        f"{table}\n\n"
        "Before, every page cost the whole person: their faces read, joined, sorted and made "
        "into objects, whatever the page. Now a page reads its own faces from the (person_id, "
        "id) index, and those its offset passes over; the total is a count of the person's "
        "faces (an index scan), which is most of a page's time for a large person. A page deep "
        "in a large person still reads the faces before it: keyset paging (after a face id) "
        "would not, and is not built.\n")


if __name__ == "__main__":
    main()
