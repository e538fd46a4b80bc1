"""HTTP load run: p50/p95 of POST /api/search with 1 and 8 concurrent clients.

Fills a database with N faces (synthetic unit vectors with an identity structure, loaded with
binary COPY, plus a few real indexed photos of the query people), starts `pgface serve` on
127.0.0.1 only, and times a bounded number of searches. Prints a markdown table and writes it
to docs/benchmarks-http.md.

    python bench/http_load.py --faces 100000

The latency of a search is the whole request: upload, decode, detection and embedding of
every face in the query photo, and one nearest-neighbour query per face.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import numpy as np
import psycopg
from common import machine  # the CPU's model and flags, as every page names it
from pgvector.psycopg import register_vector
from psycopg import sql
from seed import SEED_L2_RULE, SEED_SEARCH, SeedPipeline

from pgface import Pgface, Settings, vector_index
from pgface.db import sql as core_sql
from pgface.db.connection import migrate
from pgface.db.server import ensure_server, stop_server
from pgface.imaging import face_crop_jpeg
from pgface.models import ANALYSIS_REVISION
from pgface.models.packs import resolve_pack
from pgface.models.sessions import default_threads
from pgface.search import search_faces

# quality, face_size, yaw, pitch, sharpness (migration 0009): unknown for synthetic faces
NO_QUALITY = (None,) * 5

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PGFACE_TEST_DATA", REPO.parent / "shared" / "data")) / "photos"
REAL_PEOPLE = ["obama", "biden", "kit_harington", "rose_leslie", "alex_lacamoire"]
QUERIES = ["obama1.jpg", "obama_and_biden.jpg", "johnsnow_test1.jpg", "kit_with_rose.jpg",
           "alex_lacamoire1.jpg"]
DIM = 512

INDEX_DEF = "SELECT pg_get_indexdef('faces_embedding_hnsw_idx'::regclass)"
DROP_INDEX = "DROP INDEX faces_embedding_hnsw_idx"
INSERT_PHOTOS = """
INSERT INTO photos (sha256, path, size_bytes, width, height, face_count)
SELECT sha256(convert_to('synthetic-' || g, 'UTF8')), '/synthetic/' || g || '.jpg',
       250000, 1024, 768, c
FROM unnest(%s::int[]) WITH ORDINALITY AS t(c, g)
RETURNING id
"""


def synthetic_faces(count: int, rng: np.random.Generator) -> np.ndarray:
    """Unit vectors in identities: ~10 faces each (geometric), same-identity cosine ~0.4-0.7,
    like ArcFace's same-person pairs; different identities are near-orthogonal, as in 512-d."""
    sizes = []
    while sum(sizes) < count:
        sizes.append(int(min(200, rng.geometric(0.1))))
    centres = rng.standard_normal((len(sizes), DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    owner = np.repeat(np.arange(len(sizes)), sizes)[:count]
    spread = rng.uniform(0.03, 0.05, size=(count, 1)).astype(np.float32)
    vectors = centres[owner] + spread * rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors[rng.permutation(count)]


def fill(url: str, faces: int, model: str, seed: int, hnsw: bool = True) -> float:
    """COPY `faces` synthetic faces into photos of 1-4 faces; returns seconds spent.
    `hnsw` False: the embeddings' HNSW index is not rebuilt (a benchmark that never searches
    the database; its build is most of the time at a million faces)."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    vectors = synthetic_faces(faces, rng)
    per_photo, placed = [], 0
    while placed < faces:  # a running sum: summing the list each time was quadratic
        per_photo.append(int(rng.integers(1, 5)))
        placed += per_photo[-1]
    per_photo[-1] -= placed - faces
    grey = np.full((160, 160, 3), 128, dtype=np.uint8)
    crop = face_crop_jpeg(grey, np.array([40, 40, 120, 120]), 112)
    with psycopg.connect(url) as conn:
        register_vector(conn)
        conn.execute("SET search_path TO pgface, public")  # pgface's tables, in its schema
        definition = conn.execute(INDEX_DEF).fetchone()[0]
        # One index build after the load is many times faster than 100k index inserts.
        conn.execute(DROP_INDEX)
        photo_ids = [r[0] for r in conn.execute(INSERT_PHOTOS, [per_photo]).fetchall()]
        # each photo analysed by the pack, as indexing records it: a person's faces are
        # counted and shown under the packs that analysed their photos (migration 0025; with
        # none, no count ever changed and bench/people_page.py's add-up found nothing to do)
        conn.execute(core_sql.INSERT_ANALYSES, [model, ANALYSIS_REVISION, photo_ids, per_photo])
        owners = np.repeat(np.array(photo_ids), per_photo)
        with conn.cursor().copy(core_sql.COPY_FACES) as copy:
            copy.set_types(core_sql.COPY_FACES_TYPES)
            for photo_id, vector in zip(owners, vectors, strict=True):
                copy.write_row((int(photo_id), model, vector, [300.0, 200.0, 420.0, 350.0],
                                [330.0, 250.0, 390.0, 250.0, 360.0, 280.0, 335.0, 315.0,
                                 385.0, 315.0], 0.8, crop, *NO_QUALITY))
        conn.commit()
        conn.autocommit = True
        if hnsw:
            conn.execute("SET maintenance_work_mem = '1GB'")
            conn.execute(sql.SQL(definition))  # the migration's own definition, m and ef unchanged
        conn.execute("ANALYZE photos")
        conn.execute("ANALYZE faces")
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, workers: int | None) -> subprocess.Popen:
    command = [sys.executable, "-c", "from pgface.cli import app; app()", "serve",
               "--host", "127.0.0.1", "--port", str(port)]
    if workers:
        command += ["--inference-workers", str(workers)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"pgface serve exited:\n{server.stderr.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise SystemExit("pgface serve did not become healthy in 180 s")


def run_clients(open_client: Callable[[], AbstractContextManager[Callable[[int], int]]],
                clients: int, requests: int) -> tuple[list[float], float, int]:
    """`requests` searches spread over `clients` threads, each with its own `open_client()`: a
    function that runs a thread's nth search and returns the faces it matched. (latencies in
    ms, seconds, matches)."""
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]

    def client(index: int) -> tuple[list[float], int]:
        times, matched = [], 0
        with open_client() as search:
            for n in range(per_client[index]):
                started = time.perf_counter()
                matched += search(index + n)
                times.append((time.perf_counter() - started) * 1000)
        return times, matched

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    seconds = time.perf_counter() - started
    return [t for r in results for t in r[0]], seconds, sum(r[1] for r in results)


@contextmanager
def http_client(base: str, queries: list[tuple[str, bytes]]) -> Iterator[Callable[[int], int]]:
    """pgface's search: POST /api/search of the nth query photo, top 10."""
    with httpx.Client(base_url=base, timeout=300) as http:
        def search(n: int) -> int:
            name, data = queries[n % len(queries)]
            response = http.post("/api/search?top=10", files={"file": (name, data)})
            response.raise_for_status()
            return sum(1 for f in response.json()["faces"] if f["matches"])
        yield search


def load_seed_table(url: str, faces: int, seed: int, real_photos: list[Path]) -> SeedPipeline:
    """The seed's table beside pgface's, in the same database: the real people's photos through
    the seed's own indexing loop (det 256, one INSERT per face), then fill()'s synthetic faces
    (the same vectors: the same generator and seed), each scaled to a raw embedding norm drawn
    from those real faces' (the seed stores ArcFace's output unnormalised)."""
    pipeline = SeedPipeline(resolve_pack("buffalo_sc", Settings().resolved_models_dir()).folder)
    pipeline.index(real_photos, url)
    vectors = synthetic_faces(faces, np.random.default_rng(seed))
    with psycopg.connect(url) as conn:
        register_vector(conn)
        norms = np.array([r[0] for r in conn.execute(
            "SELECT vector_norm(embedding) FROM seed_faces").fetchall()], np.float32)
        scale = np.random.default_rng(seed + 1).choice(norms, faces)
        with conn.cursor().copy("COPY seed_faces (path, bbox, det_score, embedding) "
                                "FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "float4[]", "float4", "vector"])
            for i, vector in enumerate(vectors):
                copy.write_row((f"/synthetic/{i}.jpg", [300.0, 200.0, 420.0, 350.0], 0.8,
                                vector * scale[i]))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) seed_faces")
    return pipeline


@contextmanager
def seed_client(pipeline: SeedPipeline, url: str, photos: list[Path]
                ) -> Iterator[Callable[[int], int]]:
    """The seed's search of the nth query photo, in process: cv2.imread, app.get at det 256
    and one query per face over its table (raw L2 < 22, nearest 10), on a connection of its
    own."""
    with psycopg.connect(url, autocommit=True) as conn:
        register_vector(conn)

        def search(n: int) -> int:
            return sum(1 for matches in pipeline.search(conn, photos[n % len(photos)], 10)
                       if matches)
        yield search


def time_database(pf: Pgface, photos: list[Path], clients: int, queries: int) -> list[float]:
    """The database part of a search for one face, as the API runs it (search_faces), in
    process: ms per face."""
    faces = [f for photo in photos for f in pf.analyzer.analyze([pf.load_photo(photo).image])[0]]

    def worker(index: int) -> list[float]:
        times = []
        for n in range(queries // clients):
            face = faces[(index + n) % len(faces)]
            started = time.perf_counter()
            search_faces(pf.pool, pf.analyzer.model_name, [face], 10, pf.threshold,
                         pf.settings.ef_search, "bench", pf.threshold)
            times.append((time.perf_counter() - started) * 1000)
        return times

    with ThreadPoolExecutor(clients) as pool:
        return [t for times in pool.map(worker, range(clients)) for t in times]


def time_seed_lookup(url: str, pipeline: SeedPipeline, photos: list[Path], clients: int,
                     queries: int) -> list[float]:
    """The seed's query alone for one face (its raw embedding), in process: ms per face."""
    faces = [f.embedding for photo in photos for f in pipeline.faces(photo)]

    def worker(index: int) -> list[float]:
        times = []
        with psycopg.connect(url, autocommit=True) as conn:
            register_vector(conn)
            for n in range(queries // clients):
                started = time.perf_counter()
                conn.execute(SEED_SEARCH, {"q": faces[(index + n) % len(faces)],
                                           "rule": SEED_L2_RULE, "top": 10}).fetchall()
                times.append((time.perf_counter() - started) * 1000)
        return times

    with ThreadPoolExecutor(clients) as pool:
        return [t for times in pool.map(worker, range(clients)) for t in times]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100_000, help="synthetic faces to store")
    parser.add_argument("--requests", type=int, default=40, help="searches per concurrency level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--inference-workers", type=int,
                        help="photos the server analyses at once (default: its own, one per core)")
    parser.add_argument("--database-url", help="an empty database to fill (default: a "
                                               "temporary embedded PostgreSQL)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks-http.md")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if not DATA.exists():
        raise SystemExit(f"photo data not found at {DATA} (set PGFACE_TEST_DATA)")

    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    workdir = None
    url = args.database_url
    if url is None:
        # Under root the server runs as its own user: the folder must be reachable by it.
        workdir = Path(tempfile.mkdtemp(prefix="pgface-http-load-", dir="/tmp"))
        workdir.chmod(0o755)
        url = ensure_server(workdir / "server")
    server = None
    try:
        migrate(url)
        models_dir = Settings().resolved_models_dir()
        settings = Settings(database_url=url, models_dir=models_dir,
                            data_dir=workdir or Settings().resolved_data_dir())
        with Pgface(settings) as pf:
            model = pf.analyzer.model_name
            pf.analyzer.warm_up()  # first inferences in one thread, before the clients
            report = pf.index([DATA / "people" / p for p in REAL_PEOPLE])
            print(f"indexed {report.indexed} real photos ({report.faces} faces)", file=sys.stderr)
            fill_seconds = fill(url, args.faces, model, args.seed)
            stats = pf.stats()
            # the baseline's table, the same faces, before anything is timed
            seed_pipeline = load_seed_table(url, args.faces, args.seed, sorted(
                f for p in REAL_PEOPLE for f in (DATA / "people" / p).iterdir() if f.is_file()))
            engine = ("in-process index in the server's memory (sign-bit scan, int8 "
                      "re-rank), exact check of the nearest in PostgreSQL"
                      if vector_index.shared_index(pf.pool, model) is not None
                      else "PostgreSQL HNSW")
            photos = [DATA / "queries" / name for name in QUERIES]
            time_database(pf, photos, 1, 20)  # warm-up: builds the index, pages in memory
            db_rows = []
            for clients in args.clients:
                times = time_database(pf, photos, clients, 200)
                db_rows.append(("pgface search_faces", clients, len(times),
                                statistics.median(times), percentile(times, 95)))
            for clients in args.clients:
                times = time_seed_lookup(url, seed_pipeline, photos, clients, 40)
                db_rows.append(("seed, raw L2 < 22", clients, len(times),
                                statistics.median(times), percentile(times, 95)))
        print(f"stored {stats['faces']:,} faces in {fill_seconds:.0f} s", file=sys.stderr)

        env = {**os.environ, "PGFACE_DATABASE_URL": url, "PGFACE_MODELS_DIR": str(models_dir),
               "PGFACE_DATA_DIR": str(settings.resolved_data_dir())}
        port = free_port()
        server = start_server(env, port, args.inference_workers)
        base = f"http://127.0.0.1:{port}"
        queries = [(name, (DATA / "queries" / name).read_bytes()) for name in QUERIES]
        contenders = {
            "pgface serve, POST /api/search": lambda: http_client(base, queries),
            "seed as written, in process": lambda: seed_client(seed_pipeline, url, photos),
        }
        for open_client in contenders.values():  # warm-up: caches, first-call costs
            run_clients(open_client, 1, len(queries))
        rows = []
        load_before = os.getloadavg()[0]
        for clients in args.clients:  # the two in turn at each level
            for name, open_client in contenders.items():
                times, seconds, matched = run_clients(open_client, clients, args.requests)
                rows.append((name, clients, len(times), statistics.median(times),
                             percentile(times, 95), len(times) / seconds, matched))
                print(f"{name}, {clients} clients: p50 {rows[-1][3]:.0f} ms, "
                      f"p95 {rows[-1][4]:.0f} ms", file=sys.stderr)
        load_after = os.getloadavg()[0]
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if workdir is not None:
            stop_server(workdir / "server")
            shutil.rmtree(workdir, ignore_errors=True)

    lines = [
        "## HTTP search latency",
        "",
        f"`python bench/http_load.py --faces {args.faces}"
        f"{f' --inference-workers {args.inference_workers}' if args.inference_workers else ''}` "
        "(`pgface serve` on 127.0.0.1, "
        f"{args.inference_workers or default_threads()} inference worker(s), model {model} on "
        f"{stats['provider']}).",
        "",
        f"- Machine: {machine()}; 1-minute load average {load_before:.1f} before and "
        f"{load_after:.1f} after the timed runs (other work shares the machine above ~0.5)",
        f"- Database: {stats['faces']:,} faces in {stats['photos']:,} photos "
        f"(synthetic identities plus {report.faces} real faces), PostgreSQL "
        f"{stats['server_version']}, pgvector {stats['pgvector_version']}; nearest faces "
        f"found by the {engine} (src/pgface/search.py)",
        f"- Queries: {', '.join(QUERIES)} in turn ({sum(1 for _ in QUERIES)} photos, 1-3 faces "
        f"each), top 10; latency is the whole search (pgface: the HTTP request with its upload, "
        f"decode, detection, embedding, one nearest-neighbour query per face, calibrated "
        f"threshold)",
        "- Baseline, measured in the same run: the seed as written (bench/seed.py), in process "
        "and without HTTP, so without an upload to pay for: `cv2.imread`, `app.get` at det "
        "256, and per face one query over its own table of the same faces with raw "
        "embeddings (`embedding <-> q < 22`, nearest 10; no vector index, as the seed has "
        "none), its threads sharing one `FaceAnalysis` and a connection each",
        f"- Run: {started_at}",
        "",
        "| search | clients | requests | p50 ms | p95 ms | searches/s | vs the seed | "
        "faces matched |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    seed_rate = {c: rate for name, c, _, _, _, rate, _ in rows if name.startswith("seed")}
    lines += [f"| {name} | {c} | {n} | {p50:.0f} | {p95:.0f} | {rate:.2f} | "
              f"{rate / seed_rate[c]:.2f}x | {m} |"
              for name, c, n, p50, p95, rate, m in rows]
    lines += [
        "",
        "Of which the nearest-face lookup, in process on the same database, with as many "
        "threads: pgface's `search_faces` for one face (top 10), and the seed's query "
        "(sequential scan of its table):",
        "",
        "| lookup | threads | faces | p50 ms | p95 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {c} | {n} | {p50:.1f} | {p95:.1f} |"
              for name, c, n, p50, p95 in db_rows]
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)


if __name__ == "__main__":
    main()
