"""The people page at scale: one page of the grid (and its total) as it was at e87bf4b, with
migration 0017's index (036d15b: every person's faces counted from an index alone), with the
counts migration 0018's triggers keep, summed for every person (e347a9d), and now, unnamed
people read in the page's order from migration 0021's index; and what keeping the counts
costs a bulk assignment.

    python bench/people_page.py --faces 100000 300000 1000000   # prints the table, writes the doc
    python bench/people_page.py --faces 20000 --smoke             # a quick look, nothing written

Each page of the grid sorts everyone by their face count. The baselines are the page queries as
they were at e87bf4b (the page, then a count of the people, each person's faces read through
(person_id) and their rows), at 036d15b and at e347a9d, run in the same database, with the same
indexes present, interleaved with pgface's own `people_page`; all give the same rows (checked).
Faces: bench/http_load.py's synthetic identities, loaded by COPY (no HNSW index: nothing here
searches); people: runs of 1 to 10 faces of consecutive ids (every other run, up to three
quarters of the library), two people of 5,000 faces, one in ten named, given their faces by one
UPDATE, timed with the counting triggers off and on (then the counts added up, timed too).
Medians of the rounds, each walking the first page and 9 more by their `after` place, as the
grid does (named people first: these pages are all named people); then 10 pages from the middle
of the order (unnamed people), the first 10 again with changes pending (400 faces of as
many people moved to another, not added up yet), and 10 pages of the people found by part of
their name (`name_has`, the page's "find" box: "son 1", a ninth of the named), against
e347a9d's page with that filter added.
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
# e347a9d's people_store.PEOPLE_PAGE, as it was (every person's kept counts summed, migration
# 0018, then joined with the people and sorted): the third baseline.
KEPT_FACES_PER_PERSON = """
    SELECT c.person_id, sum(c.faces)::bigint AS faces FROM person_face_counts c
    WHERE c.pack = (SELECT coalesce(max(pack), '*') FROM person_face_count_packs
                    WHERE pack = %(model)s)
    GROUP BY c.person_id HAVING sum(c.faces) > 0
"""
SUMMED_PAGE = f"""
WITH per_person AS ({KEPT_FACES_PER_PERSON}), counted AS (
    SELECT p.id, p.name, p.hidden, coalesce(pp.faces, 0) AS faces
    FROM people p LEFT JOIN per_person pp ON pp.person_id = p.id
    WHERE (%(named)s::boolean IS NULL OR (p.name IS NOT NULL) = %(named)s)
      AND (%(hidden)s OR NOT p.hidden)
      AND (p.name IS NOT NULL OR pp.faces IS NOT NULL)  -- sql.SOMEONE, by the counts
), listed AS (
    SELECT * FROM counted
    WHERE %(after_id)s::bigint IS NULL
       OR (counted.name IS NULL, -counted.faces, coalesce(counted.name, ''), counted.id)
          > (%(after_unnamed)s::boolean, -%(after_faces)s::bigint, %(after_name)s::text,
             %(after_id)s::bigint)
    ORDER BY counted.name IS NULL, counted.faces DESC, counted.name, counted.id
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT listed.id, listed.name, listed.hidden, listed.faces, shown.photos,
       shown.cover_face_id, total.total
FROM (SELECT count(*) AS total FROM counted) total
LEFT JOIN listed ON true
LEFT JOIN LATERAL (
    SELECT count(DISTINCT f.photo_id) AS photos,
           (array_agg(f.id ORDER BY f.det_score DESC, f.id))[1] AS cover_face_id
    FROM faces f WHERE f.person_id = listed.id AND {ps.SHOWN_FACE}
) shown ON true
ORDER BY listed.name IS NULL, listed.faces DESC, listed.name, listed.id
"""
# 036d15b's people_store.PEOPLE_PAGE, as it was (every person's faces from migration 0017's
# index): the second baseline.
INDEXED_PAGE = SUMMED_PAGE.replace(KEPT_FACES_PER_PERSON, f"""
    SELECT f.person_id, count(*) AS faces FROM faces f
    WHERE f.person_id IS NOT NULL AND {ps.SHOWN_FACE}
    GROUP BY f.person_id
""")


# the text typed into the "find" box: names are "Person <n>" for one n in ten
FOUND_BY = "son 1"
# e347a9d's page with the find box's filter added, the straightforward way: the fourth baseline
FOUND_PAGE = SUMMED_PAGE.replace(
    "AND (%(hidden)s OR NOT p.hidden)\n",
    f"AND (%(hidden)s OR NOT p.hidden) AND strpos({ps.FOLDED_NAME.format('p.name')}, "
    f"{ps.FOLDED_NAME.format('%(name_has)s')}) > 0\n", 1)
assert FOUND_PAGE != SUMMED_PAGE


def page_params(after: tuple | None, name_has: str | None = None) -> dict:
    """A baseline query's parameters: the whole grid's filter, from the `after` place."""
    return ps.page_parameters(None, False, PAGE, 0, MODEL, after, name_has)


def before_page(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    params = page_params(after)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(BEFORE_PAGE, params).fetchall()
    return rows, conn.execute(BEFORE_COUNT, params).fetchone()[0]


def indexed_page(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    with conn.cursor(row_factory=dict_row) as cur:
        return ps.page_rows(cur.execute(INDEXED_PAGE, page_params(after)).fetchall())


def summed_page(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    with conn.cursor(row_factory=dict_row) as cur:
        return ps.page_rows(cur.execute(SUMMED_PAGE, page_params(after)).fetchall())


def after_page(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    return ps.people_page(conn, None, False, PAGE, 0, MODEL, after)


def found_before(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    with conn.cursor(row_factory=dict_row) as cur:
        return ps.page_rows(cur.execute(FOUND_PAGE, page_params(after, FOUND_BY)).fetchall())


def found_now(conn: psycopg.Connection, after: tuple | None) -> tuple[list[dict], int]:
    return ps.people_page(conn, None, False, PAGE, 0, MODEL, after, FOUND_BY)


MOVE_SOME = ("UPDATE faces SET person_id = (SELECT min(id) FROM people) WHERE id IN "
             "(SELECT DISTINCT ON (person_id) id FROM faces WHERE person_id > "
             "(SELECT min(id) FROM people) ORDER BY person_id, id LIMIT 400)")
ASSIGN = ("UPDATE faces f SET person_id = h.person, assigned_by = 'cluster' "
          "FROM held h WHERE f.id = h.face")


def walk(conn: psycopg.Connection, page, after: tuple | None = None  # noqa: ANN001
         ) -> tuple[float, list]:
    """PAGES pages by their `after` place, from AFTER's: seconds, and every row seen."""
    seen: list = []
    started = time.perf_counter()
    for _ in range(PAGES):
        rows, total = page(conn, after)
        seen.append((total, [tuple(sorted(r.items())) for r in rows]))
        if not rows:
            break
        last = rows[-1]
        after = (last["name"], last["faces"], last["id"])
    return time.perf_counter() - started, seen


def make_people(conn: psycopg.Connection, seed: int) -> tuple[int, int, dict[str, float]]:
    """Half the faces into runs of 1-10 consecutive ids, two people of 5,000; 1 in 10 named.
    Returns the people, the faces given them, and the seconds of the assignment with the
    counting triggers off and on, and of adding the counts up after."""
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
        conn.commit()
        seconds = {}
        for counted in (False, True):  # off first, then back to nobody (still off), then on
            if not counted:
                cur.execute("ALTER TABLE faces DISABLE TRIGGER faces_count_update")
            started = time.perf_counter()
            cur.execute(ASSIGN)
            conn.commit()
            seconds["on" if counted else "off"] = time.perf_counter() - started
            if not counted:
                cur.execute("UPDATE faces SET person_id = NULL, assigned_by = NULL "
                            "WHERE person_id IS NOT NULL")
                cur.execute("ALTER TABLE faces ENABLE TRIGGER faces_count_update")
                conn.commit()
                conn.autocommit = True
                conn.execute("VACUUM faces")  # the second UPDATE finds the table as the first
                conn.autocommit = False
        started = time.perf_counter()
        assert ps.add_up_face_counts(conn, 1)
        conn.commit()
        seconds["add up"] = time.perf_counter() - started
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE faces")
    conn.execute("VACUUM ANALYZE people")
    conn.execute("VACUUM ANALYZE person_face_counts")
    conn.autocommit = False
    return len(people), len(pairs), seconds


def measure(faces: int, rounds: int) -> list[object]:
    """One library of FACES faces: its table row."""
    url = fresh_database("bench_people_page")
    migrate(url)
    fill(url, faces, MODEL, seed=17, hnsw=False)
    with psycopg.connect(url + "&options=-csearch_path%3Dpgface%2Cpublic"
                         if "?" in url else url + "?options=-csearch_path%3Dpgface%2Cpublic"
                         ) as conn:
        people, assigned, seconds = make_people(conn, seed=17)
        _, total = after_page(conn, None)
        middle = ps.people_page(conn, None, False, 1, total // 2, MODEL)[0][0]
        middle_place = (middle["name"], middle["faces"], middle["id"])
        pages = {"e87bf4b": before_page, "036d15b": indexed_page, "e347a9d": summed_page,
                 "now": after_page}
        walks = [(name, page, None) for name, page in pages.items()] + [
            (f"{name} middle", pages[name], middle_place) for name in ("e347a9d", "now")] + [
            ("e347a9d found", found_before, None), ("now found", found_now, None)]
        times: dict[str, list[float]] = {name: [] for name, _, _ in walks}
        answers = {}
        for _ in range(rounds):  # interleaved: the machine's drift hits all alike
            for name, page, start in walks:
                took, answers[name] = walk(conn, page, start)
                times[name].append(took)
        assert answers["e87bf4b"] == answers["036d15b"] == answers["e347a9d"] == answers[
            "now"], "the queries differ"
        assert answers["e347a9d middle"] == answers["now middle"], "the queries differ"
        assert answers["e347a9d found"] == answers["now found"], "the queries differ"
        found = answers["now found"][0][0]  # the total the first page said
        assert found and all(FOUND_BY in dict(row)["name"].lower()
                             for _, rows in answers["now found"] for row in rows)
        # A page between two add-ups: 400 faces of as many people moved to another one, 1,600
        # changes pending (under the pack and '*'), fewer than make a page add them up.
        conn.execute(MOVE_SOME)
        conn.commit()
        pending = conn.execute("SELECT count(*) FROM person_face_counts WHERE pending"
                               ).fetchone()[0]
        for _ in range(rounds):
            for name, page in (("e347a9d", summed_page), ("now", after_page)):
                took, answers[f"{name} pending"] = walk(conn, page)
                times.setdefault(f"{name} pending", []).append(took)
        assert answers["e347a9d pending"] == answers["now pending"], "the queries differ"
    ms = {name: 1000 * statistics.median(t) / PAGES for name, t in times.items()}
    row = [f"{faces:,} faces, {people:,} people", f"{ms['e87bf4b']:.1f} ms",
           f"{ms['036d15b']:.1f} ms", f"{ms['e347a9d']:.1f} ms", f"{ms['now']:.1f} ms",
           f"{ms['e87bf4b'] / ms['now']:.0f}x", f"{ms['e347a9d'] / ms['now']:.1f}x",
           f"{ms['e347a9d middle']:.1f} / {ms['now middle']:.1f} ms "
           f"({ms['e347a9d middle'] / ms['now middle']:.1f}x)",
           f"{pending:,}: {ms['e347a9d pending']:.1f} / {ms['now pending']:.1f} ms "
           f"({ms['e347a9d pending'] / ms['now pending']:.1f}x)",
           f"{found:,}: {ms['e347a9d found']:.1f} / {ms['now found']:.1f} ms "
           f"({ms['e347a9d found'] / ms['now found']:.1f}x)",
           f"{assigned:,} faces: {seconds['off']:.1f} s / {seconds['on']:.1f} s "
           f"({seconds['on'] / seconds['off']:.2f}x); added up in {seconds['add up']:.1f} s"]
    print(" | ".join(str(v) for v in row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=int, nargs="+", default=[100_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="nothing written")
    args = parser.parse_args()
    rows = [measure(faces, args.rounds) for faces in args.faces]
    table = markdown_table(["library", "a page at e87bf4b", "at 036d15b (0017)",
                            "at e347a9d (0018, counts summed)", "now (0021, in order)",
                            "now vs e87bf4b", "now vs e347a9d",
                            "10 pages from the middle: e347a9d / now",
                            "changes pending: e347a9d / now",
                            f"found by \"{FOUND_BY}\": e347a9d filtered / now",
                            "one UPDATE giving people their faces: counting off / on"], rows)
    print(table)
    if args.smoke:
        return
    sizes = " ".join(str(f) for f in args.faces)
    DOC.write_text(
        "# The people page at scale\n\n"
        f"`python bench/people_page.py --faces {sizes}` on {machine()}, "
        f"{datetime.now(timezone.utc):%Y-%m-%d}. {__doc__.split(chr(10) * 2)[2].strip()}\n\n"
        f"{table}\n\n"
        "Unnamed people whose counts are added up are read in the page's order from an "
        "index (migration 0021), only as many as the page needs, so a page from the middle of "
        "the order no longer sums, joins and sorts everyone. What a page still does for every "
        "person is count the added-up rows for its total (from that index alone), and for "
        "every named person sum their counts (one in ten people here, all the first pages) "
        "and take them from the total: these grow with the library, at a fraction of the "
        "cost of summing everyone. People with changes pending (fewer than 2,000 changes: "
        "a page adds them up beyond) are summed. Keeping the counts costs the writes that "
        "move faces between people a row per face and pack (rows that add up, so no writer "
        "waits on another over a count), added up now and then "
        "(people_store.add_up_face_counts). A page found by part of a name reads the named "
        "people whose name holds the text (every name compared, lowered: no index), and no "
        "unnamed person.\n")


if __name__ == "__main__":
    main()
