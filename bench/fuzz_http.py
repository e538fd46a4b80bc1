"""Fuzz the HTTP API with schemathesis: every operation of its OpenAPI schema, with valid and
invalid data (strings may hold NUL bytes), a bounded number of examples each, sent to a real
uvicorn on 127.0.0.1. Prints the requests made and the 5xx answers (which must be none).

    python bench/fuzz_http.py [--examples 40] [--seed 1]

The test tests/test_fuzz_http.py runs the same fuzz() with fewer examples.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from pgface import Pgface, Settings
from pgface.models.analysis import FaceAnalyzer

# Values that broke pgface before, put in place of one generated value in half the requests:
# schemathesis alone seldom generates a NUL (5 of 692 requests) or a non-ASCII digit.
HOSTILE_TEXT = ["\x00", "a\x00b", "²", "٣", "1²", " 7 ", "9" * 30, "a" * 300, "../" * 30,
                "%00", "a\r\nb", "", " ", "-1", "0", "\u202e", "😀", "NaN"]
HOSTILE_INT = [0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30]


@dataclass
class FuzzReport:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)  # one line per 5xx or dropped request
    operations: int = 0
    with_nul: int = 0  # requests with a NUL byte in a path, query, header or body value


@contextlib.contextmanager
def running_server(app: FastAPI, **config: Any) -> Iterator[str]:
    """A real uvicorn on 127.0.0.1 in a thread; yields its base URL. `config`: more of
    uvicorn.Config's settings (`pgface serve`'s HTTP protocol, for one)."""
    # IPPROTO_TCP named: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets whose
    # protocol says TCP, and one made with protocol 0 held each response ~40 ms (Nagle against
    # the client's delayed ACK), 48 ms a request where `pgface serve`'s own socket takes 3.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the HTTP server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def stock(settings: Settings, analyzer: FaceAnalyzer | None, photos: list[Path]) -> None:
    """Photos, faces and people for the fuzzer's small ids and names to land on."""
    with Pgface(settings, analyzer=analyzer) as pf:
        pf.index(photos)
        pf.people.name_faces([1, 2], "Ada")
        pf.people.cluster()


def fuzz(app: FastAPI, examples: int, seed_value: int = 0) -> FuzzReport:
    """Send `examples` generated requests per operation and mode (valid, invalid) to the app."""
    report = FuzzReport()
    with running_server(app) as base_url, requests.Session() as session:
        schema = schemathesis.openapi.from_dict(session.get(f"{base_url}/openapi.json").json())
        for result in schema.get_all_operations():
            operation = result.ok()
            report.operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _run(operation, mode, base_url, session, examples, seed_value, report)
    return report


def _run(operation: schemathesis.APIOperation, mode: GenerationMode, base_url: str,
         session: requests.Session, examples: int, seed_value: int, report: FuzzReport) -> None:
    @seed(seed_value)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), spoil=st.none() | st.tuples(
        st.integers(0, 99), st.sampled_from(HOSTILE_TEXT), st.sampled_from(HOSTILE_INT)))
    def call(case: schemathesis.Case, spoil: tuple[int, str, int] | None) -> None:
        if spoil is not None:
            _spoil(case, *spoil)
        if mode is GenerationMode.POSITIVE and case.headers:
            # A made-up key is always 401: without one, the open test server lets valid
            # requests through to the endpoints (invalid ones still try made-up keys).
            case.headers.pop("Authorization", None)
        report.requests += 1
        sent = (case.path_parameters, case.query, case.headers, case.body)
        report.with_nul += "\\x00" in repr(sent) or "\\u0000" in repr(sent)
        try:
            response = case.call(base_url=base_url, session=session, timeout=120)
        except requests.RequestException as exc:  # the server dropped the connection: a bug
            report.server_errors.append(f"{case.method} {case.formatted_path}: {exc}")
            return
        report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            report.server_errors.append(
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}")

    try:
        call()
    except Unsatisfiable:
        pass  # no invalid request exists (an operation without parameters or body)


def _spoil(case: schemathesis.Case, which: int, text: str, number: int) -> None:
    """Put a hostile value in place of one of the case's text or integer values."""
    slots = [(holder, key) for holder in (case.path_parameters, case.query, case.body)
             if isinstance(holder, dict) for key, value in holder.items()
             if isinstance(value, (str, int)) and not isinstance(value, bool)]
    if slots:
        holder, key = slots[which % len(slots)]
        holder[key] = text if isinstance(holder[key], str) else number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=40, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    from common import DATA, fresh_database, require

    from pgface.api import create_app

    photos = require(DATA / "photos")
    with tempfile.TemporaryDirectory(prefix="pgface-fuzz-") as scratch:
        settings = Settings(database_url=fresh_database("pgface_fuzz"), data_dir=Path(scratch),
                            models_dir=Path(tempfile.gettempdir()) / "pgface-bench" / "models",
                            api_roots=[photos / "people"])
        stock(settings, None, [photos / "groups" / "friends-6.jpg", photos / "people" / "obama"])
        started = time.perf_counter()
        report = fuzz(create_app(settings), args.examples, args.seed)
    print(f"{report.operations} operations, {report.requests} requests in "
          f"{time.perf_counter() - started:.0f} s; statuses: "
          f"{', '.join(f'{s}: {n}' for s, n in sorted(report.statuses.items()))}")
    print(f"requests with a NUL byte: {report.with_nul}")
    print(f"5xx or dropped: {len(report.server_errors)}")
    for line in report.server_errors:
        print("  " + line)
    raise SystemExit(1 if report.server_errors else 0)


if __name__ == "__main__":
    main()
