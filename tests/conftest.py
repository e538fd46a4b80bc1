"""Shared fixtures: one real embedded PostgreSQL per test run, one database per test that
needs a clean one, the real buffalo_sc models loaded once, and the shared photo data."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pgface import Pgface, Settings
from pgface.db.connection import migrate
from pgface.db.server import ensure_server, stop_server
from pgface.library import build_analyzer
from pgface.models.analysis import FaceAnalyzer
from pgface.models.sessions import default_threads

# Under pytest-xdist each test process gets its share of the cores for inference: two
# processes of two threads each on two cores, each analysing photos, took 13 s where one thread
# each took 8 s (300 LFW photos each, OpenVINO; a thread spins waiting for a core the other
# process holds). A PGFACE_THREADS given wins; tests that need a thread count set their own.
if (_workers := os.environ.get("PYTEST_XDIST_WORKER_COUNT")) and "PGFACE_THREADS" not in os.environ:
    os.environ["PGFACE_THREADS"] = str(max(1, default_threads() // int(_workers)))

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PGFACE_TEST_DATA", REPO.parent / "shared" / "data"))
LFW = DATA / "lfw-view1"
PHOTOS = DATA / "photos"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def require_data(path: Path) -> Path:
    """Skip, with the reason, when the shared photo data is not beside the checkout."""
    if not path.exists():
        pytest.skip(f"test data not found at {path} (set PGFACE_TEST_DATA to ../shared/data)")
    return path


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (test.sh: `--dist loadgroup`), the tests of the indexed LFW library
    run in one process, which indexes its 4,992 photos once (a minute or more on two cores).
    They come first: the group is the longest piece of work (five minutes here), and begun last
    it kept one process busy while the other had nothing left to run."""
    for item in items:
        if "lfw_library" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("lfw_library"))
    items.sort(key=lambda item: "lfw_library" not in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    # Under root the server runs as its own user, so the folder must be reachable by it:
    # pytest's tmp_path lives in a 0700 folder.
    folder = Path(tempfile.mkdtemp(prefix="pgface-tests-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# Room the session server's data folder needs in memory: the LFW library, the few databases
# alive at once, and its WAL (kept under max_wal_size, below), with a margin.
SERVER_IN_MEMORY_BYTES = 4 * 2**30


@pytest.fixture(scope="session")
def server_dir(work_dir: Path) -> Iterator[Path]:
    """The session server's data folder: in /dev/shm where that is a tmpfs with room, else
    beside the other files of the run. Each test's database is made and dropped there (about
    500 in a run): on this VM's ext4 disk CREATE DATABASE took 0.13 to 0.4 s of the backend's
    CPU, most of it the kernel's work on the new files, growing as the run went on; on tmpfs
    0.03 s. The server is the same PostgreSQL either way; what a test of durability or of a
    full disk needs, it starts on a server of its own in the test's folder."""
    shm = Path("/dev/shm")
    try:
        room = shutil.disk_usage(shm).free if shm.is_dir() and os.access(shm, os.W_OK) else 0
    except OSError:
        room = 0
    if room < SERVER_IN_MEMORY_BYTES:
        yield work_dir / "server"
        return
    folder = Path(tempfile.mkdtemp(prefix="pgface-tests-server-", dir=shm))
    folder.chmod(0o755)  # reachable by the server's own user under root, as work_dir
    yield folder / "server"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(server_dir: Path) -> Iterator[str]:
    server_dir.mkdir()
    url = ensure_server(server_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        # The WAL of ~500 databases made (9 MB each) is checkpointed away sooner than the
        # 4 GB a library's server keeps: it lies in memory here.
        conn.execute("ALTER SYSTEM SET max_wal_size = '512MB'")
        conn.execute("SELECT pg_reload_conf()")
    yield url
    stop_server(server_dir)


def with_database(url: str, name: str) -> str:
    """The server URL pointed at another database."""
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def in_pgface_schema(url: str) -> str:
    """The URL with pgface's schema first on the search path, for a test's raw connections."""
    return url + ("&" if "?" in url else "?") + "options=-csearch_path%3Dpgface%2Cpublic"


@pytest.fixture(scope="session")
def migrated_template(server_url: str) -> str:
    """A database with every migration applied, made once per test process. Each test's
    database is a copy of it: 0.05 s, where migrating an empty one took 0.2 s and about 600
    tests open a library (tests of the migrations themselves take `empty_database_url`)."""
    name = f"t_migrated_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    migrate(with_database(server_url, name))  # closes its connection: a template has none
    return name


@pytest.fixture(scope="session")
def people_enrolled_template(server_url: str, migrated_template: str, models_dir: Path,
                             work_dir: Path, analyzer: FaceAnalyzer) -> str:
    """The labelled people of photos/people enrolled by pgface (`people enrol`), once per test
    process: the database that `enrolled_database_url` copies. Enrolling them again for each
    test that starts from them took 8 s a test."""
    people = require_data(PHOTOS / "people")
    name = f"t_enrolled_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(migrated_template)))
    settings = Settings(database_url=with_database(server_url, name), models_dir=models_dir,
                        data_dir=work_dir)
    with Pgface(settings, analyzer=analyzer) as library:  # closed: a template has no session
        assert not library.people.enrol(people).index.failures
    return name


@pytest.fixture
def enrolled_database_url(server_url: str, people_enrolled_template: str) -> Iterator[str]:
    """A fresh database for one test: a copy of the labelled people enrolled, nothing else."""
    yield from fresh_database(server_url, people_enrolled_template)


@pytest.fixture
def enrolled(enrolled_database_url: str, models_dir: Path, work_dir: Path,
             analyzer: FaceAnalyzer) -> Iterator[Pgface]:
    """A library of the labelled people enrolled, the test's own copy."""
    settings = Settings(database_url=enrolled_database_url, models_dir=models_dir,
                        data_dir=work_dir)
    with Pgface(settings, analyzer=analyzer) as library:
        yield library


@pytest.fixture
def database_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """A fresh database for one test, with pgface's migrations applied and nothing in it."""
    yield from fresh_database(server_url, migrated_template)


@pytest.fixture
def empty_database_url(server_url: str) -> Iterator[str]:
    """A fresh, empty database: no schema of pgface's, no pgvector."""
    yield from fresh_database(server_url)


def fresh_database(server_url: str, template: str | None = None) -> Iterator[str]:
    """A new database's URL, dropped when the generator is closed (a fixture's body): empty,
    or a copy of the database named TEMPLATE (which nothing may be connected to)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("{} TEMPLATE {}").format(create, sql.Identifier(template))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(create)
    # Raw connections of tests see pgface's schema first, as pgface's own connections do.
    yield in_pgface_schema(with_database(server_url, name))
    with psycopg.connect(server_url, autocommit=True) as conn:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to a fresh, migrated database, with pgvector's types registered."""
    migrate(database_url)
    with psycopg.connect(database_url) as c:
        register_vector(c)
        yield c


@pytest.fixture(scope="session")
def models_dir(work_dir: Path) -> Path:
    return work_dir / "models"


@pytest.fixture(scope="session")
def analyzer(models_dir: Path) -> FaceAnalyzer:
    return build_analyzer(Settings(models_dir=models_dir))


@pytest.fixture
def settings(database_url: str, models_dir: Path, work_dir: Path) -> Settings:
    return Settings(database_url=database_url, models_dir=models_dir, data_dir=work_dir)


@pytest.fixture
def empty_settings(settings: Settings, empty_database_url: str) -> Settings:
    """The settings on a database pgface never used: no schema of its own, no pgvector."""
    return settings.model_copy(update={"database_url": empty_database_url})


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The environment that points the CLI at this test's database and models."""
    return {
        "PGFACE_DATABASE_URL": settings.database_url or "",
        "PGFACE_MODELS_DIR": str(settings.models_dir),
        "PGFACE_DATA_DIR": str(settings.data_dir),
    }


@pytest.fixture
def pf(settings: Settings, analyzer: FaceAnalyzer) -> Iterator[Pgface]:
    with Pgface(settings, analyzer=analyzer) as library:
        yield library


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One headless Chromium (Playwright's Browser) for a module's browser tests. A test opens
    its pages with new_page, each in a browser context of its own that shares nothing with
    another test's (cookies, storage, cache, connections), and closes that context at its end:
    Playwright's driver and Chromium, started again for each test, took 1.5 s or more a test."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip("Chromium not found at /usr/bin/chromium: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def lfw_library(server_url: str, models_dir: Path, work_dir: Path, analyzer: FaceAnalyzer
                ) -> Iterator[Pgface]:
    """All 4,992 LFW View 1 photos indexed once, shared by the LFW tests (read-only)."""
    require_data(LFW / "images")
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "lfw" WITH (FORCE)')
        conn.execute('CREATE DATABASE "lfw"')
    settings = Settings(database_url=with_database(server_url, "lfw"), models_dir=models_dir,
                        data_dir=work_dir)
    with Pgface(settings, analyzer=analyzer) as library:
        report = library.index([LFW / "images"])
        assert not report.failures, report.failures
        yield library


def turned_pack(pack: FaceAnalyzer, folder: Path) -> Path:
    """A pack in FOLDER: PACK's detector, and its recognizer with the output turned by a fixed
    rotation, so that its faces compare among themselves as PACK's do, and not with PACK's
    (another model's vectors, as a retrained recognizer's would be). Needs onnx."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    import numpy as np
    from onnx import helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pack.pack.detector, folder / pack.pack.detector.name)
    model = onnx.load(str(pack.pack.recognizer))
    output = model.graph.output[0]
    rotation, _ = np.linalg.qr(np.random.default_rng(7).standard_normal((512, 512)))
    model.graph.initializer.append(numpy_helper.from_array(rotation.astype(np.float32), "turn"))
    model.graph.node.append(helper.make_node("MatMul", [output.name, "turn"], ["turned"]))
    model.graph.output.remove(output)
    model.graph.output.append(helper.make_tensor_value_info("turned", onnx.TensorProto.FLOAT,
                                                            ["N", 512]))
    onnx.save(model, str(folder / pack.pack.recognizer.name))
    return folder


@contextmanager
def a_role(admin: psycopg.Connection, url: str, *settings: str) -> Iterator[str]:
    """A login role (it may not create in the database), its URL; each of SETTINGS set for it
    (`statement_timeout = '200ms'`); dropped, with what it owns, afterwards."""
    role = f"app_{uuid.uuid4().hex[:8]}"
    admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    for setting in settings:
        admin.execute(sql.SQL("ALTER ROLE {} SET " + setting).format(sql.Identifier(role)))
    try:
        yield make_conninfo(url, user=role)
    finally:
        admin.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def grant_reading(admin: psycopg.Connection, url: str, schema: str) -> str:
    """SELECT on the tables in SCHEMA (and USAGE on it) for the role of URL; its name."""
    name = conninfo_to_dict(url)["user"]
    for grant in ("GRANT USAGE ON SCHEMA {} TO {}",
                  "GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}"):
        admin.execute(sql.SQL(grant).format(sql.Identifier(schema), sql.Identifier(name)))
    return name
