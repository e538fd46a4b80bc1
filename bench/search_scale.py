"""Search at scale: pgface's sign-bit index against its baselines, on identity-structured data.

    .venv/bin/python bench/search_scale.py --smoke              # ~5k faces, seconds (CI)
    .venv/bin/python bench/search_scale.py --sizes 100000 1000000
    .venv/bin/python bench/search_scale.py --render             # docs from saved results

Each size runs in one process against one fresh database; results go to
bench/results/search-<size>.json and docs/benchmarks-search.md (+ PNG plots) is rendered from
every saved result. Needs the bench extra (faiss-cpu, matplotlib).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql as pgsql

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lfw_embeddings  # noqa: E402

from pgface.config import CALIBRATED_THRESHOLDS  # noqa: E402
from pgface.db import sql, store  # noqa: E402
from pgface.db.connection import migrate  # noqa: E402
from pgface.db.server import ensure_server  # noqa: E402
from pgface.vector_index import SignIndex, nearest_codes, sign_bits  # noqa: E402

# quality, face_size, yaw, pitch, sharpness (migration 0009): unknown for synthetic faces
NO_QUALITY = (None,) * 5

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("PGFACE_BENCH_DIR", "/tmp/pgface-search-bench"))
RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs"
MODEL = "buffalo_sc"
THRESHOLD = CALIBRATED_THRESHOLDS[MODEL]  # what pgface ships
K = 10
SEED_L2 = 22.0  # the seed's match rule on raw (unnormalised) embeddings
# Searches run without a threshold so the true top-10 is measurable. The threshold only filters
# the final list (outside the k-nearest step), so identity recall is unchanged by this.
QT = -1.0


# ---------------------------------------------------------------- data: fitted to real LFW

def pair_stats(unit: np.ndarray, person: np.ndarray, rng: np.random.Generator,
               n_diff: int = 200_000) -> dict[str, float]:
    """Cosine of every same-person pair and of random different-person pairs."""
    same = []
    for p in np.unique(person):
        idx = np.flatnonzero(person == p)
        if len(idx) > 1:
            s = unit[idx] @ unit[idx].T
            same.append(s[np.triu_indices(len(idx), 1)])
    same = np.concatenate(same)
    a, b = rng.integers(0, len(unit), (2, n_diff))
    keep = person[a] != person[b]
    diff = np.einsum("ij,ij->i", unit[a[keep]], unit[b[keep]])
    return {"same_mean": float(same.mean()), "same_std": float(same.std()),
            "diff_mean": float(diff.mean()), "diff_std": float(diff.std()),
            "same_pairs": int(len(same))}


def identity_sizes(n: int, rng: np.random.Generator) -> np.ndarray:
    """Faces per synthetic person, 1 + NegBin(1, 0.2) (mean 5, a long tail: some people in
    many photos), drawn until they add up to n exactly."""
    sizes = []
    while sum(sizes) < n:
        sizes.extend((1 + rng.negative_binomial(1, 0.2, 10_000)).clip(max=300).tolist())
    sizes = np.array(sizes)
    sizes = sizes[: np.searchsorted(np.cumsum(sizes), n) + 1]
    sizes[-1] -= sizes.sum() - n
    return sizes


class Generator:
    """Identity-structured unit embeddings with LFW's geometry.

    face = normalise(mu + s * (B z_person + t * q_face * W e_face)), z and e standard normal,
    where mu is the mean LFW embedding and B, W square roots of the between-person and
    within-person covariances measured on real LFW faces (people with 2+ photos), and
    q_face = exp(sigma * g), g standard normal, a per-face "quality": some photos of a person
    are much further from the others (pose, age, blur), which is what spreads LFW's
    same-person similarities. s, t and sigma are fitted so the different-person cosine mean
    and the same-person cosine mean and spread equal LFW's.
    """

    def __init__(self, unit: np.ndarray, person: np.ndarray, rng: np.random.Generator) -> None:
        names, inverse, counts = np.unique(person, return_inverse=True, return_counts=True)
        multi = counts[inverse] > 1
        x, pid = unit[multi], inverse[multi]
        means = np.zeros((len(names), unit.shape[1]))
        np.add.at(means, pid, x)
        resid = x - (means / counts[:, None])[pid]
        means = means[counts > 1] / counts[counts > 1, None]
        n_i = counts[pid]
        within = (resid * np.sqrt(n_i / (n_i - 1))[:, None]).T @ (
            resid * np.sqrt(n_i / (n_i - 1))[:, None]) / len(x)
        self.mu = unit.mean(axis=0)
        between = np.cov((means - self.mu).T) - within * float(np.mean(1 / counts[counts > 1]))
        self.B = self._sqrt(between)
        self.W = self._sqrt(within)
        self.target = pair_stats(unit, person, rng)
        self.s, self.t, self.sigma = 1.0, 1.0, 0.0
        self._fit(rng)

    @staticmethod
    def _sqrt(cov: np.ndarray) -> np.ndarray:
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
        return (vecs * np.sqrt(np.clip(vals, 0, None))).astype(np.float32)

    def centres(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((n, len(self.mu)), dtype=np.float32)
        return (self.mu + self.s * (z @ self.B.T)).astype(np.float32)

    def faces(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        e = rng.standard_normal(centres.shape, dtype=np.float32)
        q = np.exp(self.sigma * rng.standard_normal((len(centres), 1))).astype(np.float32)
        v = centres + (self.s * self.t) * q * (e @ self.W.T)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def _stats(self, rng: np.random.Generator, n: int = 3000) -> dict[str, float]:
        c = self.centres(n, rng)
        a, b = self.faces(c, rng), self.faces(c, rng)
        same = np.einsum("ij,ij->i", a, b)
        diff = np.einsum("ij,ij->i", a, np.roll(b, 1, axis=0))
        return {"same_mean": float(same.mean()), "same_std": float(same.std()),
                "diff_mean": float(diff.mean()), "diff_std": float(diff.std()), "same_pairs": n}

    def _fit(self, rng: np.random.Generator) -> None:
        # Bisections, alternated: t moves the same-person mean, s the different-person mean,
        # sigma the same-person spread.
        for _ in range(3):
            lo, hi = 0.0, 1.5
            for _ in range(12):
                self.sigma = (lo + hi) / 2
                if self._stats(rng)["same_std"] < self.target["same_std"]:
                    lo = self.sigma
                else:
                    hi = self.sigma
            lo, hi = 0.05, 20.0
            for _ in range(14):
                self.t = (lo * hi) ** 0.5
                if self._stats(rng)["same_mean"] > self.target["same_mean"]:
                    lo = self.t
                else:
                    hi = self.t
            lo, hi = 0.05, 50.0
            for _ in range(14):
                self.s = (lo * hi) ** 0.5
                if self._stats(rng)["diff_mean"] > self.target["diff_mean"]:
                    lo = self.s
                else:
                    hi = self.s
        self.fitted = self._stats(rng, 20000)


def build_dataset(n_faces: int, lfw: dict, rng: np.random.Generator, n_queries: int,
                  max_real_queries: int | None = None) -> dict:
    """Stored faces (synthetic + real LFW) with identities, and queries of stored identities."""
    gen = Generator(lfw["unit"], lfw["person"], rng)
    # Real LFW: of each person with 2+ faces one face becomes a query, the rest are stored.
    names, inverse, counts = np.unique(lfw["person"], return_inverse=True, return_counts=True)
    first = np.zeros(len(lfw["unit"]), bool)
    seen: set[int] = set()
    for i, p in enumerate(inverse):
        if counts[p] > 1 and p not in seen and len(seen) < (max_real_queries or len(names)):
            first[i] = True
            seen.add(int(p))
    real_q = lfw["unit"][first]
    real_q_person = inverse[first]
    real_stored, real_person = lfw["unit"][~first], inverse[~first]
    # Synthetic: identity sizes 1 + NegBin(1, 0.2) (mean 5, long tail: some people in many
    # photos), until n_faces minus the real ones.
    n_syn = max(0, n_faces - len(real_stored))
    sizes = identity_sizes(n_syn, rng)
    n_people = len(sizes)
    person = np.repeat(np.arange(n_people), sizes) + len(names)  # after the LFW people
    vectors = np.empty((n_syn, 512), np.float32)
    q_people = rng.choice(n_people, min(n_queries, n_people), replace=False)
    q_vectors = np.empty((len(q_people), 512), np.float32)
    q_pos = {int(p): j for j, p in enumerate(q_people)}
    start = 0
    for lo in range(0, n_people, 20_000):
        hi = min(lo + 20_000, n_people)
        centres = gen.centres(hi - lo, rng)
        block = gen.faces(np.repeat(centres, sizes[lo:hi], axis=0), rng)
        vectors[start:start + len(block)] = block
        start += len(block)
        for p in range(lo, hi):
            if p in q_pos:
                q_vectors[q_pos[p]] = gen.faces(centres[p - lo : p - lo + 1], rng)[0]
    # Real faces are scattered among the synthetic ones, as a real library would hold them.
    stored = np.concatenate([vectors, real_stored.astype(np.float32)])
    stored_person = np.concatenate([person, real_person])
    order = rng.permutation(len(stored))
    stored, stored_person = stored[order], stored_person[order]
    real_norms = lfw["norm"]
    return {
        "vectors": stored, "person": stored_person,
        "norms": rng.choice(real_norms, len(stored)).astype(np.float32),
        "crop_bytes": rng.choice(lfw["crop_bytes"], len(stored)),
        "queries": np.concatenate([q_vectors, real_q.astype(np.float32)]),
        "q_person": np.concatenate([q_people + len(names), real_q_person]),
        "q_real": np.concatenate([np.zeros(len(q_vectors), bool), np.ones(len(real_q), bool)]),
        "q_norms": rng.choice(real_norms, len(q_vectors) + len(real_q)).astype(np.float32),
        "generator": {"target": gen.target, "fitted": gen.fitted, "s": gen.s, "t": gen.t,
                      "sigma": gen.sigma,
                      "lfw_faces": int(len(lfw["unit"])), "lfw_people": int(len(names)),
                      "real_stored": int(len(real_stored)), "real_queries": int(len(real_q)),
                      "synthetic_people": int(n_people), "sizes_mean": float(sizes.mean())},
    }


def ground_truth(data: dict) -> dict:
    """Exact top-k and the same-identity faces at or above the threshold, for every query."""
    top, ident, top_sims, ident_top = [], [], [], []
    for lo in range(0, len(data["queries"]), 64):
        sims = data["queries"][lo : lo + 64] @ data["vectors"].T
        for j, s in enumerate(sims, start=lo):
            best = np.argpartition(-s, K)[:K]
            top.append(best[np.argsort(-s[best])])
            top_sims.append(s[top[-1]])
            same = np.flatnonzero((data["person"] == data["q_person"][j]) & (s >= THRESHOLD))
            # a top-10 search can return at most 10 of them: the 10 most similar
            ident.append(same[np.argsort(-s[same])][:K])
            # those the exact top-10 holds (at 1M a few strangers outrank weak true matches)
            t = top[-1]
            ident_top.append(t[(data["person"][t] == data["q_person"][j]) & (s[t] >= THRESHOLD)])
    return {"top": top, "ident": ident, "top_sims": top_sims, "ident_top": ident_top,
            "vectors": data["vectors"], "queries": data["queries"]}


# ---------------------------------------------------------------- PostgreSQL

def database(size: int) -> tuple[str, str]:
    WORK.mkdir(parents=True, exist_ok=True)
    WORK.chmod(0o755)
    server = ensure_server(WORK / "server")
    name = f"search_{size}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(name)))
        conn.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(name)))
    base, _, query = server.partition("?")
    return server, f"{base.rsplit('/', 1)[0]}/{name}?{query}"


def connect(url: str) -> psycopg.Connection:
    conn = psycopg.connect(url)
    conn.execute("SET search_path TO pgface, public")  # pgface's tables, in its schema
    conn.commit()
    register_vector(conn)
    return conn


def load_database(url: str, data: dict, rng: np.random.Generator) -> dict:
    """pgface's schema, faces written the way pgface writes them (binary COPY), then the seed's
    table of raw embeddings and a halfvec copy for the storage trade-off."""
    migrate(url)
    n = len(data["vectors"])
    timings = {}
    with connect(url) as conn:
        # the bulk load goes in before any vector index, as pgface's bench note advises
        conn.execute("DROP INDEX IF EXISTS faces_embedding_hnsw_idx")
        conn.execute("""
            INSERT INTO photos (sha256, path, size_bytes, width, height, face_count)
            SELECT sha256(int8send(g)), '/photos/' || g || '.jpg', 200000, 1200, 900, 2
            FROM generate_series(1, %s) g""", [(n + 1) // 2])
        started = time.perf_counter()
        pool = rng.bytes(1 << 16)  # JPEG crops are incompressible: random bytes, real sizes
        with conn.cursor() as cur, cur.copy(sql.COPY_FACES) as copy:
            copy.set_types(sql.COPY_FACES_TYPES)
            bbox, marks = [10.0, 10.0, 90.0, 90.0], [30.0, 40.0, 70.0, 40.0, 50.0, 60.0,
                                                      35.0, 75.0, 65.0, 75.0]
            for i in range(n):
                off = i % 4096
                copy.write_row((i // 2 + 1, MODEL, data["vectors"][i], bbox, marks, 0.9,
                                pool[off : off + int(data["crop_bytes"][i])], *NO_QUALITY))
        timings["copy_faces_s"] = time.perf_counter() - started
        conn.execute("""CREATE TABLE seed_faces (id bigint PRIMARY KEY, photo_id bigint,
                        embedding vector(512))""")
        conn.execute("""CREATE TABLE half_faces (id bigint PRIMARY KEY, photo_id bigint,
                        person_id bigint, bbox real[], model text, embedding halfvec(512))""")
        conn.commit()
        raw = data["vectors"] * data["norms"][:, None]
        with conn.cursor() as cur, cur.copy(
                "COPY seed_faces FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int8", "vector"])
            for i in range(n):
                copy.write_row((i + 1, i // 2 + 1, raw[i]))
        del raw
        conn.execute("""INSERT INTO half_faces SELECT id, photo_id, person_id, bbox, model,
                        embedding::halfvec(512) FROM faces""")
        conn.commit()
        started = time.perf_counter()
        conn.autocommit = True
        for t in ("faces", "seed_faces", "half_faces", "photos"):
            conn.execute(pgsql.SQL("VACUUM (ANALYZE) {}").format(pgsql.Identifier(t)))
        timings["vacuum_analyze_s"] = time.perf_counter() - started
    return timings


def disk_usage(url: str, n: int) -> dict:
    with connect(url) as conn:
        rows = conn.execute("""
            SELECT c.relname, pg_relation_size(c.oid),
                   coalesce(pg_total_relation_size(c.reltoastrelid), 0),
                   pg_indexes_size(c.oid)
            FROM pg_class c
            WHERE relname IN ('faces', 'half_faces', 'seed_faces')""").fetchall()
        emb = conn.execute("""SELECT avg(pg_column_size(embedding)),
                              avg(pg_column_size(binary_quantize(embedding))) FROM
                              (SELECT embedding FROM faces LIMIT 20000) f""").fetchone()
        half = conn.execute("""SELECT avg(pg_column_size(embedding)) FROM
                               (SELECT embedding FROM half_faces LIMIT 20000) f""").fetchone()
        idx = conn.execute("""SELECT indexrelid::regclass::text, pg_relation_size(indexrelid)
                              FROM pg_index WHERE indrelid = 'faces'::regclass""").fetchall()
    out = {r[0]: {"heap": r[1], "toast": r[2], "indexes": r[3],
                  "per_face": (r[1] + r[2] + r[3]) / n} for r in rows}
    out["vector_column_bytes"] = float(emb[0])
    out["bits_column_bytes"] = float(emb[1])
    out["halfvec_column_bytes"] = float(half[0])
    out["faces_indexes"] = dict(idx)
    return out


# ---------------------------------------------------------------- measuring

def recall(found: list[np.ndarray], truth: list[np.ndarray]) -> float:
    """Micro-averaged: of all true items over all queries, the share found."""
    hit = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    total = sum(len(t) for t in truth)
    return hit / total if total else 1.0


def summary(name: str, latencies: list[float], found: list[np.ndarray], gt: dict,
            qidx: np.ndarray, real: np.ndarray, id_of: Callable[[np.ndarray], np.ndarray],
            **extra: object) -> dict:
    """found: per query the returned rows (positions in the data, via id_of)."""
    pos = [id_of(np.asarray(f, np.int64)) for f in found]
    top = [gt["top"][j] for j in qidx]
    # what pgface answers: the top-10 cut at the threshold
    top_thr = [t[gt["top_sims"][j] >= THRESHOLD] for t, j in zip(top, qidx, strict=True)]
    pos_thr = [p[gt["vectors"][p] @ gt["queries"][j] >= THRESHOLD] if len(p) else p
               for p, j in zip(pos, qidx, strict=True)]
    ident = [gt["ident"][j] for j in qidx]
    realq = real[qidx]
    lat = np.array(latencies) * 1000
    return {
        "method": name, "queries": int(len(qidx)),
        "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
        "recall_top10": recall(pos, top),
        "recall_top10_threshold": recall(pos_thr, top_thr),
        "recall_identity": recall(pos, ident),
        "recall_identity_exact": recall(pos, [gt["ident_top"][j] for j in qidx]),
        "recall_identity_real": recall([p for p, r in zip(pos, realq, strict=True) if r],
                                       [t for t, r in zip(ident, realq, strict=True) if r]),
        **extra,
    }


def timed(fn: Callable[[int], np.ndarray], qidx: np.ndarray) -> tuple[list[float], list]:
    lat, found = [], []
    fn(int(qidx[0]))  # warm
    for j in qidx:
        t = time.perf_counter()
        found.append(fn(int(j)))
        lat.append(time.perf_counter() - t)
    return lat, found


def throughput(make_worker: Callable[[], Callable[[int], object]], qidx: np.ndarray,
               clients: int, per_client: int) -> float:
    """Queries per second with `clients` threads, each with its own worker (connection)."""
    workers = [make_worker() for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)

    def run(w: Callable[[int], object], offset: int) -> None:
        barrier.wait()
        for i in range(per_client):
            w(int(qidx[(offset + i) % len(qidx)]))

    threads = [threading.Thread(target=run, args=(w, c * per_client))
               for c, w in enumerate(workers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return clients * per_client / (time.perf_counter() - started)


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    return {"cpu": cpu, "cores": os.cpu_count(),
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
            "avx512_vpopcntdq": "avx512_vpopcntdq" in flags, "amx": "amx_tile" in flags,
            "load_before": os.getloadavg()[0], "numpy": np.__version__}


def run(size: int, n_queries: int, slow_queries: int, pg_hnsw: bool, faiss_m: int,
        faiss_efc: int, smoke: bool) -> dict:
    import faiss

    faiss.omp_set_num_threads(1)  # one query, one core: as the PostgreSQL backends run
    rng = np.random.default_rng(size)
    lfw = lfw_embeddings.load(WORK / "lfw.npz", WORK / "models")
    result: dict = {"size": size, "machine": machine(), "started": time.strftime("%F %T"),
                    "threshold": THRESHOLD}
    t = time.perf_counter()
    data = build_dataset(size, lfw, rng, n_queries, 100 if smoke else None)
    n = len(data["vectors"])
    result["generator"] = data["generator"]
    result["generate_s"] = time.perf_counter() - t
    t = time.perf_counter()
    gt = ground_truth(data)
    result["ground_truth_s"] = time.perf_counter() - t
    nq = len(data["queries"])
    real = data["q_real"]
    allq = np.arange(nq)
    # slow methods: a fixed sample, half synthetic half real queries
    slow = np.concatenate([allq[~real][: slow_queries // 2], allq[real][: slow_queries // 2]])
    result["truth_identity_per_query"] = float(np.mean([len(x) for x in gt["ident"]]))
    print(f"[{size}] data {n} faces, {nq} queries ({real.sum()} real LFW); "
          f"generator {data['generator']['fitted']}", flush=True)

    server, url = database(size)
    result["load"] = load_database(url, data, rng)
    result["disk"] = disk_usage(url, n)
    print(f"[{size}] loaded {result['load']}", flush=True)
    # face id -> position in data: ids are 1..n in COPY order on a fresh database
    with connect(url) as conn:
        first_id = conn.execute("SELECT min(id) FROM faces").fetchone()[0]
    ids_to_pos = lambda a: a - first_id  # noqa: E731
    pos_to_pos = lambda a: a  # noqa: E731
    methods = []

    def add(entry: dict) -> None:
        methods.append(entry)
        print(f"[{size}] {entry['method']:<44} p50 {entry['p50_ms']:8.2f} ms  p95 "
              f"{entry['p95_ms']:8.2f}  top10 {entry['recall_top10']:.3f}  ident "
              f"{entry['recall_identity']:.3f}  real {entry['recall_identity_real']:.3f}",
              flush=True)

    vectors, queries = data["vectors"], data["queries"]

    # 1. exact numpy brute force, in memory
    def brute(j: int) -> np.ndarray:
        s = vectors @ queries[j]
        best = np.argpartition(-s, K)[:K]
        keep = best[s[best] >= QT]
        return keep[np.argsort(-s[keep])]
    lat, found = timed(brute, slow)
    add(summary("numpy exact (in memory)", lat, found, gt, slow, real, pos_to_pos))

    # 2. the shipped path: SignIndex (sign-bit candidates, int8 re-rank) + exact check in PG
    index = SignIndex(MODEL)
    with connect(url) as conn:
        t = time.perf_counter()
        index.sync(conn)
        result["sign_index_load_s"] = time.perf_counter() - t
        result["sign_index_bytes_per_face"] = index.nbytes() / n  # the arrays grow by half
        result["sign_index_used_bytes_per_face"] = index.nbytes(in_use=True) / n
        t = time.perf_counter()
        index.sync(conn)
        result["sign_index_sync_noop_ms"] = (time.perf_counter() - t) * 1000
        breakdown = {}
        for c in (100, 200, 300, 500, 1000):
            lat, found = timed(lambda j, c=c: np.array(
                [m.face_id for m in index.search(conn, queries[j], K, QT, c)]), allq)
            add(summary(f"pgface: sign scan + int8 re-rank + exact check in PG, C={c}", lat,
                        found, gt, allq, real, ids_to_pos, candidates=c, family="pgface"))
            # where the time goes, for this C
            steps: dict[str, list[float]] = {"sync_ms": [], "memory_ms": [], "postgres_ms": []}
            for j in allq[:300]:
                t0 = time.perf_counter()
                index.sync(conn)
                t1 = time.perf_counter()
                ids = index.approximate(queries[j], K, QT, c)
                t2 = time.perf_counter()
                if len(ids):
                    conn.execute(sql.RERANK_FACES, {"ids": ids.tolist(), "model": MODEL,
                                 "k": K, "query": queries[j], "max_distance": 1 - QT}).fetchall()
                    conn.commit()
                for key, v in zip(steps, (t1 - t0, t2 - t1, time.perf_counter() - t2),
                                  strict=True):
                    steps[key].append(1000 * v)
            breakdown[c] = {key: statistics.median(v) for key, v in steps.items()}
        result["breakdown"] = breakdown
        # the design before: every one of the C candidates re-ranked in PostgreSQL, on the
        # vector of the row or on a halfvec copy
        half_sql = sql.RERANK_FACES.replace("FROM faces", "FROM half_faces").replace(
            "%(query)s", "%(query)s::halfvec(512)")
        for label, text, fam in (("vector", sql.RERANK_FACES, "pgrerank"),
                                 ("halfvec", half_sql, "halfvec")):
            for c in (300, 1000):
                def rerank(j: int, c: int = c, text: str = text) -> np.ndarray:
                    cand = index.candidates(queries[j], c)
                    rows = conn.execute(text, {"ids": cand.tolist(), "model": MODEL, "k": K,
                                        "query": queries[j], "max_distance": 1 - QT})
                    out = np.array([r[0] for r in rows], np.int64)
                    conn.commit()
                    return out
                lat, found = timed(rerank, allq)
                add(summary(f"sign scan + re-rank of all C in PG ({label}), C={c}", lat,
                            found, gt, allq, real, ids_to_pos, candidates=c, family=fam))

    # 3. the sign-bit scan with the exact re-rank in memory, float32 (no PostgreSQL): the floor
    # of the design, at 2 KB a face
    bits = sign_bits(vectors)
    for c in (300, 1000):
        def mem(j: int, c: int = c) -> np.ndarray:
            cand = nearest_codes(bits, sign_bits(queries[j])[0], c)
            s = vectors[cand] @ queries[j]
            best = np.argsort(-s)[:K]
            return cand[best[s[best] >= QT]]
        lat, found = timed(mem, allq)
        add(summary(f"sign scan + float32 re-rank, all in memory, C={c}", lat, found, gt,
                    allq, real, pos_to_pos, candidates=c, family="memory"))

    # 4. FAISS HNSW in memory (inner product on unit vectors = cosine)
    t = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(512, faiss_m, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = faiss_efc
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # the build may use every core
    hnsw.add(vectors)
    faiss.omp_set_num_threads(1)
    result["faiss_hnsw"] = {"M": faiss_m, "efConstruction": faiss_efc,
                            "build_s": time.perf_counter() - t,
                            "bytes_per_face": 512 * 4 + faiss_m * 2 * 4 * 1.1}
    print(f"[{size}] FAISS HNSW built in {result['faiss_hnsw']['build_s']:.0f} s", flush=True)
    for ef in (32, 64, 128, 256, 512, 1024):
        hnsw.hnsw.efSearch = ef

        def fh(j: int) -> np.ndarray:
            s, i = hnsw.search(queries[j : j + 1], K)
            return i[0][s[0] >= QT]
        lat, found = timed(fh, allq)
        add(summary(f"FAISS HNSW M={faiss_m} efC={faiss_efc}, ef={ef}", lat, found, gt, allq,
                    real, pos_to_pos, ef_search=ef, family="faiss"))

    # 5. PostgreSQL alone: exact scan (pgface's NEAREST_FACES, no vector index) and the seed
    with connect(url) as conn:
        def pg_exact(j: int) -> np.ndarray:
            rows = store.nearest_faces(conn, queries[j], MODEL, K, QT, ef_search=40)
            return np.array([r.face_id for r in rows], np.int64)
        lat, found = timed(pg_exact, slow)
        add(summary("PostgreSQL exact scan (NEAREST_FACES, no index)", lat, found, gt, slow,
                    real, ids_to_pos, family="pg"))

        def seed(j: int) -> np.ndarray:
            q = queries[j] * data["q_norms"][j]
            rows = conn.execute("""SELECT id FROM seed_faces WHERE embedding <-> %s < %s
                                   ORDER BY embedding <-> %s LIMIT %s""",
                                [q, SEED_L2, q, K]).fetchall()
            conn.commit()
            return np.array([r[0] for r in rows], np.int64)
        lat, found = timed(seed, slow)
        add(summary("seed: sequential scan, raw L2 < 22", lat, found, gt, slow, real,
                    lambda a: a - 1, family="pg"))

    # 6. pgvector's own indexes: HNSW as migration 0001 ships it, on halfvec, and IVFFlat
    if pg_hnsw:
        result["pgvector_hnsw"] = {}
        lists = max(10, n // 1000)  # pgvector's advice: rows / 1000 up to 1M rows
        with connect(url) as conn:
            conn.autocommit = True
            conn.execute("SET hnsw.iterative_scan = relaxed_order")
            conn.execute("SET ivfflat.iterative_scan = relaxed_order")
            hnsw_efs = [("hnsw.ef_search", ef) for ef in ((40, 200) if smoke else (40, 200, 800))]
            variants = [
                ("HNSW vector m=16 efc=64", "CREATE INDEX hv ON faces USING hnsw "
                 "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
                 "embedding <=> %(q)s", hnsw_efs),
                ("HNSW halfvec m=16 efc=64", "CREATE INDEX hv ON faces USING hnsw "
                 "((embedding::halfvec(512)) halfvec_cosine_ops) "
                 "WITH (m = 16, ef_construction = 64)",
                 "embedding::halfvec(512) <=> %(q)s::halfvec(512)", hnsw_efs),
                (f"IVFFlat vector lists={lists}", "CREATE INDEX hv ON faces USING ivfflat "
                 f"(embedding vector_cosine_ops) WITH (lists = {lists})",
                 "embedding <=> %(q)s",
                 [("ivfflat.probes", p) for p in (1, 4, 16) if p < lists]),
            ]
            for name, ddl, expr, settings in variants:
                t = time.perf_counter()
                conn.execute(ddl)  # ddl: one of this list's literal statements
                build = time.perf_counter() - t
                size_b = conn.execute("SELECT pg_relation_size('hv')").fetchone()[0]
                result["pgvector_hnsw"][name] = {"build_s": build, "bytes_per_face": size_b / n}
                print(f"[{size}] pgvector {name} built in {build:.0f} s", flush=True)
                query = pgsql.SQL(
                    "SELECT id FROM (SELECT id, {expr} AS d FROM faces WHERE model = %(m)s "
                    "ORDER BY {expr} LIMIT %(k)s) n WHERE d <= %(md)s ORDER BY d"
                ).format(expr=pgsql.SQL(expr))  # expr: one of this file's distance expressions
                for setting, value in settings:
                    conn.execute("SELECT set_config(%s, %s, false)", [setting, str(value)])

                    def pgh(j: int, query: pgsql.Composed = query) -> np.ndarray:
                        rows = conn.execute(query, {"q": queries[j], "m": MODEL, "k": K,
                                                    "md": 1 - QT}).fetchall()
                        return np.array([r[0] for r in rows], np.int64)
                    sample = allq if size <= 200_000 else slow
                    lat, found = timed(pgh, sample)
                    label = setting.split(".")[1]
                    add(summary(f"pgvector {name}, {label}={value}", lat, found, gt,
                                sample, real, ids_to_pos, ef_search=value, family="pgvector",
                                build_s=build))
                conn.execute("DROP INDEX hv")

    # 7. concurrent clients: the shipped path, FAISS HNSW and the PostgreSQL exact scan
    hnsw.hnsw.efSearch = 256
    per = 40 if smoke else 200
    result["throughput"] = {}
    conns: list[psycopg.Connection] = []

    def shipped_worker() -> Callable[[int], object]:
        conn = connect(url)
        conns.append(conn)
        return lambda j: index.search(conn, queries[j], K, THRESHOLD)

    def exact_worker() -> Callable[[int], object]:
        conn = connect(url)
        conns.append(conn)
        return lambda j: store.nearest_faces(conn, queries[j], MODEL, K, THRESHOLD, 40)

    for name, make, count in (
            ("pgface (shipped), C=300", shipped_worker, per),
            ("FAISS HNSW ef=256", lambda: lambda j: hnsw.search(queries[j : j + 1], K), per),
            ("PostgreSQL exact scan", exact_worker, max(4, slow_queries // 8))):
        result["throughput"][name] = {
            str(c): throughput(make, allq, c, count if c < 8 else max(2, count // 4))
            for c in (1, 2, 8)}
        print(f"[{size}] throughput {name}: {result['throughput'][name]}", flush=True)
    for c in conns:
        c.close()

    result["methods"] = methods
    result["load_after"] = os.getloadavg()[0]
    result["finished"] = time.strftime("%F %T")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            pgsql.Identifier(f"search_{size}")))
    return result


if __name__ == "__main__":
    from render_search import render  # the document and plots

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000])
    ap.add_argument("--smoke", action="store_true", help="~5k faces, a few seconds")
    ap.add_argument("--render", action="store_true", help="only re-render the docs")
    ap.add_argument("--queries", type=int, default=1000, help="synthetic queries")
    ap.add_argument("--slow-queries", type=int, default=40, help="for the O(N) baselines")
    ap.add_argument("--faiss-m", type=int, default=32)
    ap.add_argument("--faiss-efc", type=int, default=200)
    ap.add_argument("--pg-hnsw-max", type=int, default=200_000,
                    help="build pgvector HNSW indexes up to this size (1M: about an hour)")
    args = ap.parse_args()
    if not args.render:
        sizes = [5000] if args.smoke else args.sizes
        for size in sizes:
            res = run(size, 200 if args.smoke else args.queries, 20 if args.smoke else
                      args.slow_queries, size <= args.pg_hnsw_max, args.faiss_m, args.faiss_efc,
                      args.smoke)
            RESULTS.mkdir(parents=True, exist_ok=True)
            name = "smoke" if args.smoke else str(size)
            (RESULTS / f"search-{name}.json").write_text(json.dumps(res, indent=1,
                                                                    default=float))
    if not args.smoke:
        render(RESULTS, DOCS)
