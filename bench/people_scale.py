"""People at scale: clustering time and quality, and indexing speed, in libraries of up to 1M faces.

    PGFACE_BENCH_DIR=/tmp/bench-engine .venv/bin/python bench/people_scale.py
    .venv/bin/python bench/people_scale.py --smoke        # small sizes, nothing written
    .venv/bin/python bench/people_scale.py --render       # docs from bench/results only

Faces: the 4,992 real LFW View 1 faces (bench/lfw_embeddings.py, pgface's own pipeline) mixed
into synthetic faces from bench/search_scale.py's generator, fitted to LFW: strangers' cosine
mean ~0.008, sd ~0.071; people of 1 + NegBin(1, 0.2) faces (mean 5). One face a photo. Rows go
in by binary COPY, as pgface writes them. Measured, each in a fresh database on one server:

1. full clustering from scratch at growing sizes, through pgface's own `run_clustering` with
   the search index (the engine at scale), with and without the average-linkage check;
2. a 1M-face library whose synthetic faces are already clustered (their true people, as a
   perfect earlier run would leave them): 10,000 new faces (all LFW View 1 faces and 5,008
   synthetic ones, half of known people, half new) clustered incrementally;
3. indexing 300 LFW photos end to end into an empty library and into the 1M one, interleaved;
4. neighbour recall of the index against exact search, on a sample.
Quality: pairwise precision and recall and BCubed F over the LFW faces (their names; faces left
alone count as clusters of one), and the same over the synthetic ones.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql as pgsql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_embeddings  # noqa: E402
from common import DATA, DOCS, machine, markdown_table, require  # noqa: E402
from search_scale import Generator, identity_sizes  # noqa: E402

from pgface import Pgface, Settings  # noqa: E402
from pgface.clustering import CLUSTER_SIMILARITY, MIN_NEIGHBOURS, run_clustering  # noqa: E402
from pgface.config import CALIBRATED_THRESHOLDS  # noqa: E402
from pgface.db.connection import migrate  # noqa: E402
from pgface.db.server import ensure_server  # noqa: E402
from pgface.engine import keep_hnsw_in_step  # noqa: E402
from pgface.imaging import read_photo  # noqa: E402
from pgface.library import build_analyzer  # noqa: E402
from pgface.neighbours import (  # noqa: E402
    NEIGHBOURS_K,
    VectorCache,
    _index_compute,
    join_neighbours,
)
from pgface.vector_index import SignIndex  # noqa: E402

WORK = Path(os.environ.get("PGFACE_BENCH_DIR", "/tmp/bench-engine"))
RESULTS = Path(__file__).resolve().parent / "results" / "people-scale.json"
MODEL = "buffalo_sc"
SIMILARITY = CLUSTER_SIMILARITY[MODEL]
MEAN_SIMILARITY = CALIBRATED_THRESHOLDS[MODEL]  # what People.cluster passes
NEW_FACES = 10_000
PHOTOS_300 = 300
SINGLE_LINK_UP_TO = 50_000  # the run without the check, for comparison, up to this size
INDEX_PATH_UP_TO = 100_000  # the full clustering through the index (no join), up to this size
# the join's neighbour recall needs a second join of all faces: measured up to this size (its
# misses follow from the bit limits, whatever the library's size)
JOIN_RECALL_UP_TO = 250_000
# measured, not re-run: the partition code was not kept
TRIED = (
    '\n\nTried on 2026-11-30 and measured on this machine (a script in the session, not kept): '
    'the scan itself, `faiss.knn_hamming` on 512-bit codes, runs at 0.32 G pairs/s on the 2 '
    'cores (k 64 or 128, its heap or counting variant alike), so the 10^12 pairs of 1M faces '
    'take 52 min before anything else. A coarse partition of the codes (FAISS IndexBinaryIVF, '
    'k-means on the sign bits) on 204,992 faces (LFW View 1 + synthetic), 20,000 sampled faces '
    "and LFW's 4,992 as queries: the candidates came 2 to 3.5x faster than the full scan, but "
    'the share of the exact neighbours (>= 0.40) found fell from 0.9999 to 0.69-0.90 (204 cells'
    ' with 16 or 32 probed, 409 with 32, 102 with 32). Neighbours at cosine 0.40 differ in '
    'about 190 of the 512 sign bits (strangers in about 256): they are not close enough to '
    'share cells, and the synthetic faces, like real ones at this threshold, give a partition '
    'little to hold on to. So the partition was not adopted. The join is the other way: a '
    'popcount kernel of our own, half the pairs by symmetry. Measured on 2026-12-01 (scripts in '
    'the session, not kept; 60,000 synthetic faces, the first 4,096 rows against all, one '
    'thread): the first kernel, a loop over the 2-d code arrays, 0.12-0.13 G pairs/s; its '
    "survivors kept without a branch 0.14; also read flat with unsigned indices (numba's "
    'negative-index wrap and the run-time stride multiply gone) 0.176, the kernel shipped; '
    'two rows against each column 0.16, two columns a step 0.17, a branch-free second test '
    '0.17, no better. Split of the shipped one: the first 512 bits alone 77 % of its time, the '
    'second 13 %, the cosines 10 % (0.26 % of the pairs, each reading two vectors from memory),'
    ' which a third 512 bits cut to 0.05 % of the pairs: 5-9 % faster on two threads (6.6-7.2 '
    's against 7.2-7.3 s for the 1.8 G pairs of all 60,000). Shorter codes first do not help at '
    'this similarity: in 256 bits a pair at 0.40 and a stranger overlap so much that half the '
    'strangers pass. Left: a GPU.'
)
COPY_FACES = """COPY faces (photo_id, model, embedding, bbox, landmarks, det_score, crop,
                person_id, assigned_by, clustered_at) FROM STDIN WITH (FORMAT BINARY)"""
COPY_TYPES = ["int8", "text", "vector", "float4[]", "float4[]", "float4", "bytea", "int8",
              "text", "timestamptz"]


def rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# ---------------------------------------------------------------- data

def synthetic(gen: Generator, n: int, rng: np.random.Generator, first_person: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n faces of people of 1 + NegBin(1, 0.2) faces: (vectors, person, centres of people)."""
    sizes = identity_sizes(n, rng)
    centres = gen.centres(len(sizes), rng)
    vectors = np.empty((n, 512), np.float32)
    at = 0
    for lo in range(0, len(sizes), 20_000):
        block = gen.faces(np.repeat(centres[lo : lo + 20_000], sizes[lo : lo + 20_000], axis=0),
                          rng)
        vectors[at : at + len(block)] = block
        at += len(block)
    return vectors, np.repeat(np.arange(len(sizes)), sizes) + first_person, centres


# ---------------------------------------------------------------- PostgreSQL

def fresh_database(name: str) -> str:
    WORK.mkdir(parents=True, exist_ok=True)
    WORK.chmod(0o755)
    server = ensure_server(WORK / "server")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(name)))
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    base, _, query = server.partition("?")
    url = f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    migrate(url)
    return url


def connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url)
    conn.execute("SET search_path TO pgface, public")
    conn.commit()
    register_vector(conn)
    return conn


def load_faces(conn: psycopg.Connection, vectors: np.ndarray, person: np.ndarray | None,
               first_photo_key: int = 0) -> np.ndarray:
    """One photo a face; person: the person row ids to put faces in (clustered), or None.
    Returns the face ids, in the order of vectors."""
    n = len(vectors)
    photo_ids = np.array([r[0] for r in conn.execute("""
        INSERT INTO photos (sha256, path, size_bytes, width, height, face_count)
        SELECT sha256(int8send(g)), '/synthetic/' || g || '.jpg', 200000, 1200, 900, 1
        FROM generate_series(%s::bigint, %s::bigint) g RETURNING id""",
        [first_photo_key + 1, first_photo_key + n])])
    start = conn.execute("SELECT coalesce(max(id), 0) FROM faces").fetchone()[0]
    crop = b"\xff\xd8" + bytes(62)
    bbox, marks = [10.0, 10.0, 90.0, 90.0], [30.0, 40.0, 70.0, 40.0, 50.0, 60.0,
                                              35.0, 75.0, 65.0, 75.0]
    now = datetime.now(timezone.utc)
    with conn.cursor() as cur, cur.copy(COPY_FACES) as copy:
        copy.set_types(COPY_TYPES)
        for i in range(n):
            p = None if person is None else int(person[i])
            copy.write_row((int(photo_ids[i]), MODEL, vectors[i], bbox, marks, 0.9, crop, p,
                            None if p is None else "cluster", None if p is None else now))
    ids = np.array([r[0] for r in conn.execute(
        "SELECT id FROM faces WHERE id > %s ORDER BY id", [start])], dtype=np.int64)
    conn.commit()
    return ids


def new_people(conn: psycopg.Connection, n: int) -> np.ndarray:
    ids = [r[0] for r in conn.execute(
        "INSERT INTO people (name) SELECT NULL FROM generate_series(1, %s) RETURNING id", [n])]
    conn.commit()
    return np.array(ids, dtype=np.int64)


def vacuum(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) pgface.faces")
        conn.execute("VACUUM (ANALYZE) pgface.photos")


# ---------------------------------------------------------------- scoring

def scores(cluster: list, label: list) -> dict:
    """Pairwise precision/recall and BCubed F; cluster None: a cluster of one."""
    cluster = [c if c is not None else f"alone-{i}" for i, c in enumerate(cluster)]
    both, per_c, per_l = Counter(zip(cluster, label, strict=True)), Counter(cluster), Counter(label)

    def pairs(counts: Counter) -> int:
        return sum(v * (v - 1) // 2 for v in counts.values())

    together, predicted, true = pairs(both), pairs(per_c), pairs(per_l)
    bp = np.mean([both[c, lab] / per_c[c] for c, lab in zip(cluster, label, strict=True)])
    br = np.mean([both[c, lab] / per_l[lab] for c, lab in zip(cluster, label, strict=True)])
    return {"precision": together / predicted if predicted else 1.0,
            "recall": together / true if true else 1.0,
            "bcubed_f": 2 * bp * br / (bp + br), "wrong_pairs": predicted - together,
            "true_pairs": true}


def person_of(conn: psycopg.Connection, ids: np.ndarray) -> list:
    found = dict(conn.execute("SELECT id, person_id FROM faces WHERE id = ANY(%s)",
                              [ids.tolist()]).fetchall())
    return [found.get(int(i)) for i in ids]


def quality(conn: psycopg.Connection, groups: dict[str, tuple[np.ndarray, list]]) -> dict:
    return {name: scores(person_of(conn, ids), labels) for name, (ids, labels) in groups.items()}


def confusions(conn: psycopg.Connection, lfw_ids: np.ndarray, names: np.ndarray) -> list:
    """LFW names that share a person with another name: the wrong joins, biggest first."""
    people = person_of(conn, lfw_ids)
    by_person: dict[int, Counter] = {}
    for p, name in zip(people, names.tolist(), strict=True):
        if p is not None:
            by_person.setdefault(p, Counter())[name] += 1
    mixed = [dict(c) for c in by_person.values() if len(c) > 1]
    return sorted(mixed, key=lambda c: -sum(c.values()))[:15]


# ---------------------------------------------------------------- measurements

def synced_index(url: str) -> tuple[SignIndex, float]:
    index = SignIndex(MODEL)
    started = time.perf_counter()
    with connect(url) as conn:
        index.sync(conn)
    return index, time.perf_counter() - started


def cluster(url: str, index: SignIndex, full: bool, mean: float | None, join: bool = True,
            keep: bool = True) -> dict:
    """One clustering; keep=False rolls it back (after its writes, which it times)."""
    with connect(url) as conn:
        started = time.perf_counter()
        report = run_clustering(conn, MODEL, SIMILARITY, MIN_NEIGHBOURS, full=full, index=index,
                                mean_similarity=mean, join=join)
        if keep:
            conn.commit()
        else:
            conn.rollback()
        return {"seconds": time.perf_counter() - started, "report": report.to_dict(),
                "rss_gib": rss_gib()}


def full_clustering(size: int, lfw: dict, gen: Generator, rng: np.random.Generator) -> dict:
    """size synthetic faces + LFW View 1, clustered from scratch, with and without the check."""
    url = fresh_database("people_full")
    vectors, person, _ = synthetic(gen, size, rng, 0)
    with connect(url) as conn:
        conn.execute("DROP INDEX IF EXISTS faces_embedding_hnsw_idx")  # the engine's state
        conn.commit()
        lfw_ids = load_faces(conn, lfw["unit"].astype(np.float32), None, 10_000_000)
        syn_ids = load_faces(conn, vectors, None)
    vacuum(url)
    index, load_s = synced_index(url)
    out = {"faces": size + len(lfw_ids), "synthetic": size, "index_load_s": load_s}
    groups = {"lfw": (lfw_ids, lfw["person"].tolist()),
              "synthetic": (syn_ids, person.tolist())}
    if size <= INDEX_PATH_UP_TO:  # the same clustering through the index: the baseline
        out["through_index"] = cluster(url, index, True, MEAN_SIMILARITY, join=False, keep=False)
        print(f"  {size:,} through the index: {out['through_index']['seconds']:.1f} s",
              flush=True)
    runs = (("checked", MEAN_SIMILARITY), ("single_link", None))
    for label, mean in runs[: 2 if size <= SINGLE_LINK_UP_TO else 1]:
        out[label] = cluster(url, index, True, mean)
        with connect(url) as conn:
            out[label]["quality"] = quality(conn, groups)
            if mean is not None:
                out[label]["lfw_confusions"] = confusions(conn, lfw_ids, lfw["person"])
        print(f"  {size:,} {label}: {out[label]['seconds']:.1f} s "
              f"{json.dumps(out[label]['quality'])}", flush=True)
    print(f"  {size:,}: index load {load_s:.1f} s", flush=True)
    out["neighbour_recall"] = neighbour_recall(url, index, np.concatenate([lfw_ids, syn_ids]),
                                               np.concatenate([lfw["unit"], vectors]), rng)
    return out


def neighbour_recall(url: str, index: SignIndex, ids: np.ndarray, vectors: np.ndarray,
                     rng: np.random.Generator, sample: int = 2000) -> dict:
    """Of the exact neighbours (>= SIMILARITY, other photos: here other faces) of sampled
    faces, the share each engine finds: the join (full clusterings) and the index (new
    faces into a library at scale)."""
    pick = rng.choice(len(ids), min(sample, len(ids)), replace=False)
    order = np.argsort(ids)
    photo_of = {int(i): int(i) for i in ids}  # one face a photo
    unit = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    with connect(url) as conn:
        cache = VectorCache(conn, MODEL)
        found = {"index": _index_compute(index, cache, photo_of, SIMILARITY)(
            ids[pick].tolist())}
    if len(ids) <= JOIN_RECALL_UP_TO:
        found["join"] = join_neighbours(ids[order], unit[order], photo_of, SIMILARITY)
    hit, total = Counter(), 0
    for j in pick:
        sims = unit @ unit[j]
        exact = set(ids[np.flatnonzero(sims >= SIMILARITY)].tolist()) - {int(ids[j])}
        exact = set(sorted(exact, key=lambda i: -sims[order[np.searchsorted(ids[order], i)]])
                    [:NEIGHBOURS_K])
        for engine, lists in found.items():
            hit[engine] += len(exact & {g for g, _ in lists[int(ids[j])]})
        total += len(exact)
    return {"sampled_faces": len(pick), "exact_neighbours": total,
            "found": hit["index"], "recall": hit["index"] / total if total else 1.0,
            **({"join_found": hit["join"], "join_recall": hit["join"] / total if total else 1.0}
               if "join" in found else {})}


def library_1m(size: int, lfw: dict, gen: Generator, rng: np.random.Generator) -> dict:
    """A clustered library of `size` synthetic faces; 10,000 new faces clustered into it."""
    url = fresh_database("people_1m")
    started = time.perf_counter()
    vectors, person, centres = synthetic(gen, size, rng, 0)
    with connect(url) as conn:
        conn.execute("DROP INDEX IF EXISTS faces_embedding_hnsw_idx")
        conn.commit()
        people = new_people(conn, int(person.max()) + 1)
        load_faces(conn, vectors, people[person])
    del vectors
    vacuum(url)
    out = {"faces": size, "people": int(person.max()) + 1, "lfw_faces": len(lfw["unit"]),
           "build_s": time.perf_counter() - started}
    print(f"  built {size:,} faces in {out['build_s']:.0f} s", flush=True)
    index, out["index_load_s"] = synced_index(url)
    out["index_bytes"] = index.nbytes(in_use=True)
    # 10,000 new faces: LFW View 1, and synthetic ones of known and of new people
    n_syn = NEW_FACES - len(lfw["unit"])
    known = rng.choice(len(centres), n_syn // 2, replace=False)
    known_faces = gen.faces(centres[known], rng)
    fresh, fresh_person, _ = synthetic(gen, n_syn - len(known), rng, len(centres))
    with connect(url) as conn:
        lfw_ids = load_faces(conn, lfw["unit"].astype(np.float32), None, 10_000_000)
        known_ids = load_faces(conn, known_faces, None, 20_000_000)
        fresh_ids = load_faces(conn, fresh, None, 30_000_000)
    started = time.perf_counter()
    with connect(url) as conn:
        index.sync(conn)
    out["index_catch_up_s"] = time.perf_counter() - started
    out["incremental"] = cluster(url, index, False, MEAN_SIMILARITY)
    with connect(url) as conn:
        out["incremental"]["quality"] = quality(conn, {
            "lfw": (lfw_ids, lfw["person"].tolist()),
            "new synthetic": (fresh_ids, fresh_person.tolist())})
        joined = person_of(conn, known_ids)
        out["incremental"]["known_joined_right"] = float(np.mean(
            [p == people[k] for p, k in zip(joined, known, strict=True)]))
        out["incremental"]["lfw_confusions"] = confusions(conn, lfw_ids, lfw["person"])
    print(f"  incremental {NEW_FACES:,}: {json.dumps(out['incremental'])}", flush=True)
    out["url"] = url
    return out


def indexing(url_big: str, runs: int) -> dict:
    """300 LFW photos indexed end to end into an empty library and into the big one."""
    photos = sorted((DATA / "lfw-view1" / "images").glob("*/*.jpg"))[:PHOTOS_300]
    out: dict[str, list] = {"empty": [], "big": []}
    analyzer = build_analyzer(Settings(models_dir=WORK / "models"))
    analyzer.analyze([read_photo(photos[0], 1 << 26, 1 << 26).image])  # models loaded first
    for run in range(runs):
        for where in ("empty", "big"):
            url = fresh_database("people_empty") if where == "empty" else url_big
            settings = Settings(database_url=url, models_dir=WORK / "models",
                                data_dir=WORK / "data", index_snapshot=False)
            with Pgface(settings, analyzer=analyzer) as pf:
                with pf.pool.connection() as conn:
                    conn.execute("DELETE FROM photos WHERE path LIKE %s",
                                 [str(DATA / "lfw-view1") + "%"])
                    conn.commit()
                    keep_hnsw_in_step(conn)
                    hnsw = conn.execute("SELECT to_regclass('faces_embedding_hnsw_idx') "
                                        "IS NOT NULL").fetchone()[0]
                    faces = conn.execute("SELECT count(*) FROM faces").fetchone()[0]
                report = pf.index(photos)
            out[where].append({"run": run, "faces_before": faces, "hnsw": hnsw,
                               "seconds": report.seconds, "store_s": report.timings["store"],
                               "indexed": report.indexed})
            print(f"  indexing into {where}: {out[where][-1]}", flush=True)
    out["measured"] = {"date": time.strftime("%Y-%m-%d %H:%M UTC"),
                       "load": f"{os.getloadavg()[0]:.1f}"}
    return out


# ---------------------------------------------------------------- report

def fmt(value: float | str) -> str:
    return value if isinstance(value, str) else f"{value:.4f}"


def render(results: dict) -> str:
    full = results.get("full", {})
    sizes = sorted(full, key=int)
    lines = [
        "# People at scale: clustering and indexing up to 1M faces\n",
        f"Machine: {results.get('machine', machine())}; load average "
        f"{results.get('load', '?')} at the end of the run. Command: `python "
        f"bench/people_scale.py {results.get('args', '')}` "
        f"({results.get('date', '')}). Data and method: the docstring of bench/people_scale.py."
        " Clustering is pgface's own `run_clustering` (neighbours from the join at scale, "
        f"similarity >= {SIMILARITY}, one neighbour, average-linkage check "
        f">= {MEAN_SIMILARITY}; docs/people.md).\n",
        "## Targets\n",
        targets(results), "",
        "## Clustering from scratch\n",
    ]
    rows = []
    for s in sizes:
        r = full[s]
        c, q = r["checked"], r["checked"]["quality"]
        single = r.get("single_link", {}).get("quality")
        if single is None:  # not run at this size
            single = {k: {"precision": "-", "recall": "-"} for k in q}
        base = r.get("through_index", {}).get("seconds")
        rows.append([f"{r['faces']:,}", f"{c['seconds']:.0f}",
                     f"{base:.0f} ({base / c['seconds']:.2f}x)" if base else "-",
                     f"{r['index_load_s']:.1f}",
                     f"{q['lfw']['precision']:.4f} / {q['lfw']['recall']:.4f} / "
                     f"{q['lfw']['bcubed_f']:.4f}",
                     f"{fmt(single['lfw']['precision'])} / {fmt(single['lfw']['recall'])}",
                     f"{q['synthetic']['precision']:.4f} / {q['synthetic']['recall']:.4f} / "
                     f"{q['synthetic']['bcubed_f']:.4f}",
                     f"{fmt(single['synthetic']['precision'])} / "
                     f"{fmt(single['synthetic']['recall'])}",
                     c["report"]["refused"], c["report"].get("mode", "index"),
                     f"{fmt(r['neighbour_recall'].get('join_recall', '-'))} / "
                     f"{r['neighbour_recall']['recall']:.4f}", f"{c['rss_gib']:.1f}"])
    lines.append(markdown_table(
        ["faces (LFW View 1 + synthetic)", "clustering s",
         "through the index s (its time / the join's)", "index load s",
         "LFW precision / recall / BCubed F", "LFW without the check: P / R",
         "synthetic P / R / F", "synthetic without the check: P / R", "joins refused",
         "neighbours from", "neighbour recall vs exact: join / index", "peak RSS GiB"],
        rows))
    if full:
        a, b = fitted(full)
        lines.append(
            "\nA full clustering at scale takes its neighbours from one join of all faces "
            "(similarity_join.py, mode `join`): each pair of faces is looked at once, by 512 "
            "sign bits of a random rotation, then 512 more of a second and of a third, then "
            "the exact cosine, so its time grows as the square of the library. Fitted to the "
            f"sizes above, seconds = {a:.3g} n^2 + {b:.3g} n: "
            f"{projected_minutes(full, 1e6):.0f} min at 1M faces, "
            f"{projected_minutes(full, 2e6):.0f} min at 2M, "
            f"{projected_minutes(full, 1e7) / 60:.0f} h at 10M. The first 512 bits of every "
            "pair are the floor: 8 XORs, 8 popcounts and 7 additions a pair, about 8 cycles "
            "at 2 GHz on this CPU, 10^12 / 2 pairs at 1M. "
            "The neighbour recall of the join against exact search is in the table (column "
            "'join', measured up to "
            f"{JOIN_RECALL_UP_TO:,} faces: it takes a second join); 'index' is the path new "
            "faces take into a library at scale. 'Through "
            "the index': the same full clustering (with the check) asking the search index "
            "face by face, as pgface did before the join and does without numba; run first, "
            "in the same database, and rolled back."
            + TRIED + "\n")
        lines.append(drift(full))
        lines.append("![clustering time](benchmarks-people-scale.png)\n")
    big = results.get("library")
    if big:
        inc = big["incremental"]
        q = inc["quality"]
        lines += [
            f"## {NEW_FACES:,} new faces into a clustered {big['faces']:,}-face library\n",
            f"The library: {big['faces']:,} synthetic faces of {big['people']:,} people, "
            f"clustered (their true people). New: all {big['lfw_faces']:,} LFW "
            "View 1 faces, synthetic faces of known people (half of the rest) and of new "
            "people. Incremental clustering, through the search index (loaded once: "
            f"{big['index_load_s']:.0f} s from PostgreSQL, {big['index_bytes'] / 2**20:.0f} MiB;"
            f" catching up the {NEW_FACES:,} new faces {big['index_catch_up_s']:.1f} s).\n",
            markdown_table(["", "value"], [
                ["incremental clustering, seconds", f"{inc['seconds']:.0f}"],
                ["faces looked at", inc["report"]["considered"]],
                ["LFW precision / recall / BCubed F",
                 f"{q['lfw']['precision']:.4f} / {q['lfw']['recall']:.4f} / "
                 f"{q['lfw']['bcubed_f']:.4f}"],
                ["new synthetic people P / R / F",
                 f"{q['new synthetic']['precision']:.4f} / {q['new synthetic']['recall']:.4f}"
                 f" / {q['new synthetic']['bcubed_f']:.4f}"],
                ["new faces of known people that joined their person",
                 f"{inc['known_joined_right']:.3f}"],
                ["joins refused by the average-linkage check", inc["report"]["refused"]],
                ["peak RSS of the benchmark process, GiB", f"{inc['rss_gib']:.1f}"],
            ]), "",
            "LFW names that ended in one person: "
            + ("; ".join(", ".join(f"{k} ({v})" for k, v in c.items())
                         for c in inc["lfw_confusions"]) or "none") + ".\n",
            "The issue's full-LFW failures (one neighbour >= 0.40 joining look-alikes) as "
            "View 1 holds those people: no pair of them reaches 0.40 here, so View 1 cannot "
            "show the failure; the brothers average above the 0.23 check, so it would not stop "
            "them either (docs/people.md).\n",
            lookalikes(), ""]
    ix = results.get("indexing")
    if ix:
        def med(where: str, key: str) -> float:
            return float(np.median([r[key] for r in ix[where]]))

        lines += [
            f"## Indexing {PHOTOS_300} photos: into an empty library and into "
            f"{ix['big'][0]['faces_before']:,} faces\n",
            "Runs interleaved (empty, big, empty, big, ...); medians. The empty library keeps "
            "its HNSW index (it serves its searches); the big one has none (the engine drops "
            "it from 20,000 faces). Measured "
            f"{ix.get('measured', {}).get('date', 'with the rest')}, load average "
            f"{ix.get('measured', {}).get('load', results.get('load', '?'))}.\n",
            markdown_table(["", "empty", "big", "speed into big / into empty"], [
                ["store stage, s", f"{med('empty', 'store_s'):.2f}",
                 f"{med('big', 'store_s'):.2f}",
                 f"{med('empty', 'store_s') / med('big', 'store_s'):.2f}"],
                ["end to end, s", f"{med('empty', 'seconds'):.2f}",
                 f"{med('big', 'seconds'):.2f}",
                 f"{med('empty', 'seconds') / med('big', 'seconds'):.2f}"]]), ""]
    return "\n".join(lines) + "\n"


def measured(full: dict) -> tuple[np.ndarray, np.ndarray]:
    """Faces and seconds of the full clusterings, by size."""
    sizes = sorted(full, key=int)
    return (np.array([full[s]["faces"] for s in sizes], float),
            np.array([full[s]["checked"]["seconds"] for s in sizes], float))


def drift(full: dict) -> str:
    """How the synthetic faces' precision moves from the smallest size to the largest."""
    lo, hi = (full[s] for s in (min(full, key=int), max(full, key=int)))
    q0, q1 = (r["checked"]["quality"]["synthetic"] for r in (lo, hi))
    return (
        f"The synthetic faces' pairwise precision goes from {q0['precision']:.4f} at "
        f"{lo['faces']:,} faces to {q1['precision']:.4f} at {hi['faces']:,} (BCubed F "
        f"{q0['bcubed_f']:.4f} to {q1['bcubed_f']:.4f}): wrong pairs {q0['wrong_pairs']:,} "
        f"to {q1['wrong_pairs']:,}, for {hi['faces'] / lo['faces']:.0f}x the faces, while the "
        "LFW faces mixed in keep theirs. Pairwise precision counts a wrongly joined pair of "
        "people by the product of their faces, and the chance that two of n people look "
        "alike at 0.40 grows with n: the one-neighbour rule with the average-linkage "
        "check (refusals in the table) holds LFW's people apart at 1M, but not every "
        "synthetic pair. A neighbour similarity that rises with the library, as the 1:N "
        "verdicts do (docs/benchmarks-threshold.md), is not built.\n")


def fitted(full: dict) -> tuple[float, float]:
    """(a, b) of seconds = a n^2 + b n, least squares over the full clusterings: the pair
    scan grows as the square of the faces, the rest (loading, planning, writing) as the
    faces."""
    x, y = measured(full)
    (a, b), *_ = np.linalg.lstsq(np.stack([x**2, x], axis=1), y, rcond=None)
    return max(float(a), 0.0), max(float(b), 0.0)


def projected_minutes(full: dict, faces: float) -> float:
    a, b = fitted(full)
    return (a * faces**2 + b * faces) / 60


def lookalikes() -> str:
    """The pairs the issue saw chained on the full LFW, as View 1 holds them."""
    lfw = lfw_embeddings.load(WORK / "lfw.npz", WORK / "models")
    unit, names = lfw["unit"].astype(np.float32), lfw["person"]
    rows = []
    for a, b in (("George_W_Bush", "Jeb_Bush"), ("Serena_Williams", "Venus_Williams"),
                 ("Angelina_Jolie", "Jennifer_Lopez")):
        va, vb = unit[names == a], unit[names == b]
        cross, within = va @ vb.T, [v @ v.T for v in (va, vb)]
        rows.append([f"{a} ({len(va)}) / {b} ({len(vb)})", f"{cross.mean():.3f}",
                     f"{cross.max():.3f}"] + [f"{w[np.triu_indices(len(w), 1)].mean():.3f}"
                                              for w in within])
    return markdown_table(["LFW View 1 people (faces)", "mean cosine between", "max between",
                           "mean within the first", "within the second"], rows)


def targets(results: dict) -> str:
    full, big, ix = results.get("full", {}), results.get("library"), results.get("indexing")
    rows = []
    if full:
        last = full[max(full, key=int)]
        if last["faces"] >= 1_000_000:  # measured at 1M
            minutes = last["checked"]["seconds"] / 60
            rows.append(["clustering 1M faces from scratch <= 30 min",
                         f"{last['faces']:,} faces: {minutes:.1f} min",
                         "met" if minutes <= 30 else "missed"])
        else:
            minutes = projected_minutes(full, 1e6)
            rows.append(["clustering 1M faces from scratch <= 30 min",
                         f"not run at 1M; {last['faces']:,} faces took "
                         f"{last['checked']['seconds'] / 60:.1f} min; projected to 1M from the "
                         f"measured sizes (a n^2 + b n): {minutes:.0f} min",
                         "met (projected)" if minutes <= 30 else "missed (projected)"])
    if big:
        inc = big["incremental"]
        rows.append([f"{NEW_FACES:,} new faces into {big['faces']:,} <= 2 min",
                     f"{inc['seconds']:.0f} s", "met" if inc["seconds"] <= 120 else "missed"])
        q = inc["quality"]["lfw"]
        rows.append(["LFW View 1 mixed into the 1M: precision >= 0.99, recall >= 0.95",
                     f"{q['precision']:.4f} / {q['recall']:.4f} (BCubed F {q['bcubed_f']:.4f})",
                     "met" if q["precision"] >= 0.99 and q["recall"] >= 0.95 else "missed"])
    if ix:
        ratio = {k: float(np.median([r[k] for r in ix["empty"]]) /
                          np.median([r[k] for r in ix["big"]])) for k in ("store_s", "seconds")}
        rows.append([f"indexing into {ix['big'][0]['faces_before']:,} faces >= 0.85 of into "
                     "an empty library", f"store stage {ratio['store_s']:.2f}, end to end "
                     f"{ratio['seconds']:.2f}",
                     "met" if min(ratio.values()) >= 0.85 else "missed"])
    return markdown_table(["target (issue 15)", "measured", ""], rows)


def plot(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = measured(results["full"])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, y / 60, "o-", label="full clustering, measured")
    grid = np.linspace(x[0], max(1e6, x[-1]), 100)
    ax.plot(grid, projected_minutes(results["full"], grid), "--",
            label="a n^2 + b n, fitted to the measured sizes")
    ax.axhline(30, color="red", lw=0.8, label="target, 30 min at 1M")
    ax.set_xlabel("faces")
    ax.set_ylabel("full clustering, minutes")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(DOCS / "benchmarks-people-scale.png", dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full-sizes", type=int, nargs="*", default=[20_000, 50_000, 100_000])
    ap.add_argument("--library", type=int, default=1_000_000)
    ap.add_argument("--indexing-runs", type=int, default=2)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--render", action="store_true")
    args = ap.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not args.render:
        require(lfw_embeddings.LFW_IMAGES)
        if args.smoke:
            args.full_sizes, args.library, args.indexing_runs = [25_000], 30_000, 1
        rng = np.random.default_rng(15)
        lfw = lfw_embeddings.load(WORK / "lfw.npz", WORK / "models")
        gen = Generator(lfw["unit"], lfw["person"], rng)
        results.update(machine=machine(), date=time.strftime("%Y-%m-%d %H:%M UTC"),
                       args=" ".join(sys.argv[1:]), generator=gen.fitted)
        results.setdefault("full", {})
        for size in args.full_sizes:
            results["full"][str(size)] = full_clustering(size, lfw, gen, rng)
            if not args.smoke:
                RESULTS.write_text(json.dumps(results, indent=1))
        if args.library:
            results["library"] = library_1m(args.library, lfw, gen, rng)
            if not args.smoke:
                RESULTS.write_text(json.dumps(results, indent=1))
            if args.indexing_runs:
                results["indexing"] = indexing(results["library"]["url"], args.indexing_runs)
        results["load"] = f"{os.getloadavg()[0]:.1f}"
    text = render(results)
    print(text)
    if not args.smoke:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=1))
        (DOCS / "benchmarks-people-scale.md").write_text(text)
        if results.get("full"):
            plot(results)


if __name__ == "__main__":
    main()
