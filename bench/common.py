"""What every benchmark shares: the machine it ran on, the data folder, a scratch database."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from pgface.imaging import IMAGE_SUFFIXES

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PGFACE_TEST_DATA", REPO.parent / "shared" / "data"))
DOCS = REPO / "docs"


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"benchmark data not found at {path}: put ../shared/data beside the "
                         "checkout or set PGFACE_TEST_DATA")
    return path


def machine() -> str:
    """One line naming the machine: CPU model, cores, memory, OS."""
    model = "unknown CPU"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown CPU":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    extras = [f for f in ("avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8") if f in flags]
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model} ({', '.join(extras) or 'no AVX-512/AMX'}), {cores} cores, "
            f"{memory:.0f} GiB, {platform.system()} {platform.release()}, no GPU")


class HostClock:
    """What this machine can say about its host over a run. In a virtual machine the load
    average counts only its own threads (a benchmark's included), and a host whose cores other
    machines share slows the same work while steal time, the one counter that could show it,
    stays near zero here: the spread of identical runs is the evidence."""

    def __init__(self) -> None:
        self.load_at_start = os.getloadavg()[0]
        self._start = self._cpu_ticks()

    @staticmethod
    def _cpu_ticks() -> list[int]:
        try:
            return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return []

    def note(self, spread: float | None) -> str:
        """A clause for the page: the load before the run, steal time over it, and SPREAD (the
        largest slowest-to-fastest ratio among identical runs; None where each ran once)."""
        end = self._cpu_ticks()
        steal = ""
        if len(end) == len(self._start) == 8 and sum(end) > sum(self._start):
            ticks = [b - a for a, b in zip(self._start, end, strict=True)]
            steal = f", steal time {100 * ticks[7] / sum(ticks):.1f} % of the run"
        runs = ("each ran once" if spread is None else
                f"identical runs took up to {spread:.2f}x as long as each other")
        return (f"1-minute load average {self.load_at_start:.1f} before it started (the "
                f"benchmark's own threads add to it while it runs){steal}; {runs}")


class CpuMeter:
    """CPU over a stretch of work (a `with` block): this process's, all its threads together;
    the rest of the machine's (PostgreSQL's server among it); and the time the cores sat idle.
    From os.times() and /proc/stat, so in 10 ms ticks: for runs of seconds. Where /proc/stat
    cannot be read, only the process's figure is known (the others stay None)."""

    def __enter__(self) -> CpuMeter:
        self.process: float = 0.0
        self.others: float | None = None
        self.idle: float | None = None
        self._times, self._ticks = os.times(), HostClock._cpu_ticks()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._started
        end_times, end_ticks = os.times(), HostClock._cpu_ticks()
        self.process = (end_times.user + end_times.system
                        - self._times.user - self._times.system)
        if len(end_ticks) == len(self._ticks) == 8:
            # user, nice, system, idle, iowait, irq, softirq, steal
            ticks = [b - a for a, b in zip(self._ticks, end_ticks, strict=True)]
            per_s = os.sysconf("SC_CLK_TCK")
            busy = (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / per_s
            self.others = max(0.0, busy - self.process)
            self.idle = (ticks[3] + ticks[4]) / per_s


def photos_under(folder: Path) -> list[Path]:
    """The photo files under folder (by suffix, as pgface's walk takes them), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def server_url() -> str:
    """PGFACE_DATABASE_URL's server, or an embedded one kept in a benchmark data folder."""
    if os.environ.get("PGFACE_DATABASE_URL"):
        return os.environ["PGFACE_DATABASE_URL"]
    from pgface.db.server import ensure_server

    folder = Path(os.environ.get("PGFACE_BENCH_DIR", Path(tempfile.gettempdir()) / "pgface-bench"))
    if not folder.exists():
        folder.mkdir(mode=0o755)  # our own folder: the server user must be able to enter it
    return ensure_server(folder)


def fresh_database(name: str) -> str:
    """An empty database of that name on the benchmark server; returns its URL."""
    url = server_url()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return with_database(url, name)


def with_database(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


def markdown_table(head: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
