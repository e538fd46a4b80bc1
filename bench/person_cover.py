"""A large person's cover and photo count, as the people page and a person's summary read
them: as before migration 0023 (one aggregate over every face of the person, the cover its
face of the highest detection score) against now (the photo count from the index of 0017
alone, the cover the first shown face in 0023's order).

    python bench/person_cover.py --faces 300000 --person 20000 200000
    python bench/person_cover.py --faces 50000 --person 20000 --smoke   # nothing written

The library: bench/http_load.py's synthetic faces, loaded by COPY into photos of 1 to 4 faces.
One person is given the first N faces for each size measured, and 50 others 1 to 2,000 faces
each. Before is measured without 0023's index, now with it, alternated in rounds in the same
database, medians of 7 calls a round; both give the same pages and summaries (checked).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_database, machine, markdown_table  # noqa: E402
from http_load import fill  # noqa: E402

from pgface.db import people_store as ps  # noqa: E402
from pgface.db.connection import migrate  # noqa: E402

MODEL = "buffalo_sc"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-person-cover.md"
INDEX = ("CREATE INDEX IF NOT EXISTS faces_person_cover_idx ON faces (person_id, det_score DESC,"
         " id) INCLUDE (model, photo_id) WHERE person_id IS NOT NULL")
# Before 0023: the page's aggregate for each listed person, and the summary's.
BEFORE_PAGE = ps.PEOPLE_PAGE.replace(
    """    SELECT count(DISTINCT f.photo_id) AS photos
    FROM faces f WHERE f.person_id = listed.id""",
    """    SELECT count(DISTINCT f.photo_id) AS photos,
           (array_agg(f.id ORDER BY f.det_score DESC, f.id))[1] AS before_cover
    FROM faces f WHERE f.person_id = listed.id""").replace(
    "cover.cover_face_id, total.total", "shown.before_cover AS cover_face_id, total.total")
BEFORE_SUMMARY = f"""
SELECT count(f.id) AS faces, count(DISTINCT f.photo_id) AS photos,
       (array_agg(f.id ORDER BY f.det_score DESC, f.id) FILTER (WHERE f.id IS NOT NULL))[1]
           AS cover_face_id
FROM faces f WHERE f.person_id = %(person)s AND {ps.SHOWN_FACE}
"""
assert BEFORE_PAGE.count("before_cover") == 2, "PEOPLE_PAGE changed: update BEFORE_PAGE"


def median_ms(call: Callable[[], object], times: int = 7) -> tuple[float, object]:
    spent, answer = [], None
    for _ in range(times):
        started = time.perf_counter()
        answer = call()
        spent.append(time.perf_counter() - started)
    return 1000 * statistics.median(spent), answer


def measure(conn: psycopg.Connection, size: int, rounds: int) -> list[object]:
    conn.execute("UPDATE faces SET person_id = NULL, assigned_by = NULL "
                 "WHERE person_id IS NOT NULL")
    conn.execute("DELETE FROM people")
    person = conn.execute("INSERT INTO people (name) VALUES (%s) RETURNING id",
                          [f"Many {size}"]).fetchone()[0]
    conn.execute("UPDATE faces SET person_id = %s, assigned_by = 'user' WHERE id IN "
                 "(SELECT id FROM faces ORDER BY id LIMIT %s)", [person, size])
    for number in range(50):
        other = conn.execute("INSERT INTO people (name) VALUES (NULL) RETURNING id").fetchone()[0]
        conn.execute("UPDATE faces SET person_id = %s, assigned_by = 'cluster' WHERE id IN "
                     "(SELECT id FROM faces WHERE person_id IS NULL ORDER BY id LIMIT %s)",
                     [other, 1 + number * 40])
    ps.add_up_face_counts(conn, 1)  # as a page does first
    conn.execute("VACUUM ANALYZE faces")
    parameters = ps.page_parameters(None, False, 60, 0, MODEL, None)
    summary = {"person": person, "model": MODEL}
    spent: dict[str, list[tuple[float, float]]] = {"before": [], "now": []}
    answers: dict[str, tuple[object, object]] = {}
    for _ in range(rounds):
        for name, page_sql, summary_sql in (("before", BEFORE_PAGE, BEFORE_SUMMARY),
                                            ("now", ps.PEOPLE_PAGE, ps.PERSON_SUMMARY)):
            conn.execute("DROP INDEX IF EXISTS faces_person_cover_idx" if name == "before"
                         else INDEX)
            conn.execute("ANALYZE faces")
            page_ms, page = median_ms(lambda q=page_sql: conn.execute(q, parameters).fetchall())
            summary_ms, one = median_ms(
                lambda q=summary_sql: conn.execute(q, summary).fetchone())
            spent[name].append((page_ms, summary_ms))
            answers[name] = (page, one)
    assert answers["before"] == answers["now"], "before and now differ"
    conn.execute(INDEX)
    before = [statistics.median(s[i] for s in spent["before"]) for i in (0, 1)]
    now = [statistics.median(s[i] for s in spent["now"]) for i in (0, 1)]
    row: list[object] = [f"{size:,} faces"] + [
        f"{b:,.0f} / {n:,.0f} ms ({b / n:,.1f}x)" for b, n in zip(before, now, strict=True)]
    print(" | ".join(str(v) for v in row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=300_000)
    parser.add_argument("--person", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="nothing written")
    args = parser.parse_args()
    url = fresh_database("bench_person_cover")
    migrate(url)
    fill(url, args.faces, MODEL, seed=17, hnsw=False)
    options = "options=-csearch_path%3Dpgface%2Cpublic"
    with psycopg.connect(url + ("&" if "?" in url else "?") + options,
                         autocommit=True) as conn:
        rows = [measure(conn, size, args.rounds) for size in args.person]
    table = markdown_table([f"largest person (library of {args.faces:,} faces)",
                            "people page of 60: before / now",
                            "the person's summary (GET /api/people/{id})"], rows)
    print(table)
    if args.smoke:
        return
    sizes = " ".join(str(s) for s in args.person)
    DOC.write_text(
        "# A large person's cover and photo count\n\n"
        f"`python bench/person_cover.py --faces {args.faces} --person {sizes}` on {machine()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}. {__doc__.split(chr(10) * 2)[2].strip()}\n\n"
        f"{table}\n\n"
        "What is left of a page is mostly the large person's photo count: an index-only scan "
        "of their faces' photos (0017), which a kept count per person would spare; not "
        "built.\n")


if __name__ == "__main__":
    main()
