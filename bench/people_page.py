"""The people page at scale: one page of the grid (and its total) before and after migration
0017, which counts every person's faces from an index alone.

    python bench/people_page.py --faces 100000      # prints the table, writes the doc
    python bench/people_page.py --faces 20000 --smoke  # a quick look, nothing written

Each page of the grid sorts everyone by their face count, so every person's faces are counted
for every page. The baseline is the query pair as it was at e87bf4b (the page, then a count of
the people, each person's faces read through (person_id) and their rows), run in the same
database, with the same index present, interleaved with pgface's own `people_page`; both give
the same rows (checked). Faces: bench/http_load.py's synthetic identities, loaded by COPY;
people: runs of 1 to 10 faces of consecutive ids (every other run, up to three quarters of the
library), two people of 5,000 faces, one in ten named. Medians of the rounds, each walking the
first page and 9 more by their `after` place, as the grid does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import fresh_database, machine, markdown_table  # noqa: E402
from http_load import fill  # noqa: E402

from pgface.db import people_store as ps  # noqa: E402
from pgface.db.connection import migrate  # noqa: E402
from pgface.db.sql import SOMEONE  # noqa: E402

MODEL = "buffalo_sc"
DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks-people-page.md"
PAGE = 60  # the web page's PEOPLE_PAGE
PAGES = 10

# e87bf4b's people_store.PEOPLE_PAGE and COUNT_PEOPLE, as they were: the baseline.
BEFORE_FILTER = f"""
(%(named)s::boolean IS NULL OR (p.name IS NOT NULL) = %(named)s)
AND (%(hidden)s OR NOT p.hidden) AND {SOMEONE}
"""
BEFORE_PAGE = f"""
SELECT * FROM (
    SELECT p.id, p.name, p.hidden, count(f.id) AS faces, count(DISTINCT f.photo_id) AS photos,
           (array_agg(f.id ORDER BY f.det_score DESC, f.id) FILTER (WHERE f.id IS NOT NULL))[1]
               AS cover_face_id
    FROM people p LEFT JOIN faces f ON f.person_id = p.id AND {ps.SHOWN_FACE}
    WHERE {BEFORE_FILTER}
    GROUP BY p.id
) listed
WHERE %(after_id)s::bigint IS NULL
   OR (listed.name IS NULL, -listed.faces, coalesce(listed.name, ''), listed.id)
      > (%(after_unnamed)s::boolean, -%(after_faces)s::bigint, %(after_name)s::text,
         %(after_id)s::bigint)
ORDER BY listed.name IS NULL, listed.faces DESC, listed.name, listed.id
LIMIT %(limit)s OFFSET %(offset)s
"""
BEFORE_COUNT = f"SELECT count(*) FROM people p WHERE {BEFORE_FILTER}"


def before_page(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    name, faces, person_id = after if after is not None else (None, None, None)
    params = {"named": None, "hidden": False, "after_unnamed": name is None,
              "after_faces": faces, "after_name": name or "", "after_id": person_id,
              "limit": PAGE, "offset": 0, "model": MODEL}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(BEFORE_PAGE, params).fetchall()
    return rows, conn.execute(BEFORE_COUNT, params).fetchone()[0]


def after_page(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    return ps.people_page(conn, None, False, PAGE, 0, MODEL, after)


def walk(conn: psycopg.Connection, page) -> tuple[float, list]:  # noqa: ANN001
    """PAGES pages by their `after` place: seconds, and every row seen."""
    seen: list = []
    after = None
    started = time.perf_counter()
    for _ in range(PAGES):
        rows, total = page(conn, after)
        seen.append((total, [tuple(sorted(r.items())) for r in rows]))
        if not rows:
            break
        last = rows[-1]
        after = (last["name"], last["faces"], last["id"])
    return time.perf_counter() - started, seen


def make_people(conn: psycopg.Connection, seed: int) -> int:
    """Half the faces into runs of 1-10 consecutive ids, two people of 5,000; 1 in 10 named."""
    rng = np.random.default_rng(seed)
    ids = [r[0] for r in conn.execute("SELECT id FROM faces ORDER BY id")]
    groups = [ids[:5000], ids[5000:10000]]
    at = 10000
    while at < len(ids) * 3 // 4:
        size = int(rng.integers(1, 11))
        groups.append(ids[at:at + size])
        at += size * 2  # every other run stays unassigned
    people = [r[0] for r in conn.execute(
        "INSERT INTO people (name) SELECT CASE WHEN g %% 10 = 0 THEN 'Person ' || g END "
        "FROM generate_series(1, %s) g ORDER BY g RETURNING id", [len(groups)])]
    pairs = [(face, person) for person, group in zip(people, groups, strict=True)
             for face in group]
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE held (face bigint, person bigint)")
        with cur.copy("COPY held FROM STDIN") as copy:
            for pair in pairs:
                copy.write_row(pair)
        cur.execute("UPDATE faces f SET person_id = h.person, assigned_by = 'cluster' "
                    "FROM held h WHERE f.id = h.face")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE faces")
    conn.execute("VACUUM ANALYZE people")
    conn.autocommit = False
    return len(people)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="nothing written")
    args = parser.parse_args()
    url = fresh_database("bench_people_page")
    migrate(url)
    fill(url, args.faces, MODEL, seed=17)
    with psycopg.connect(url + "&options=-csearch_path%3Dpgface%2Cpublic"
                         if "?" in url else url + "?options=-csearch_path%3Dpgface%2Cpublic"
                         ) as conn:
        people = make_people(conn, seed=17)
        times: dict[str, list[float]] = {"before": [], "after": []}
        answers = {}
        for _ in range(args.rounds):  # interleaved: the machine's drift hits both alike
            for name, page in (("before", before_page), ("after", after_page)):
                took, answers[name] = walk(conn, page)
                times[name].append(took)
        assert answers["before"] == answers["after"], "the two queries differ"
    before, after = (statistics.median(times[k]) for k in ("before", "after"))
    rows = [[f"{args.faces:,} faces, {people:,} people", f"{1000 * before / PAGES:.0f} ms",
             f"{1000 * after / PAGES:.0f} ms", f"{before / after:.2f}x"]]
    table = markdown_table(["library", "a page before (e87bf4b)", "a page now", "ratio"], rows)
    print(table)
    if args.smoke:
        return
    DOC.write_text(
        "# The people page at scale\n\n"
        f"`python bench/people_page.py --faces {args.faces}` on {machine()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}. {__doc__.split(chr(10) * 2)[2].strip()}\n\n"
        f"{table}\n\n"
        "Both still count every person's faces for every page, so a page grows with the "
        "library; a count kept per person would make it independent of the library's size.\n")


if __name__ == "__main__":
    main()
