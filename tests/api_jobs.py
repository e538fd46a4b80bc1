"""Indexing a server path through the HTTP API: start the job, follow it to its end."""

from __future__ import annotations

import time
from typing import Any

FINISHED = {"done", "failed", "cancelled"}


def wait_for_job(client: Any, job_id: str, deadline_s: float = 600) -> dict:
    """The job once finished (client: a TestClient or an httpx.Client)."""
    deadline = time.monotonic() + deadline_s
    while True:
        job = client.get(f"/api/jobs/{job_id}")
        assert job.status_code == 200, job.text
        if job.json()["state"] in FINISHED:
            return job.json()
        assert time.monotonic() < deadline, f"job {job_id} still {job.json()['state']}"
        time.sleep(0.05)


def index_path(client: Any, path: str, prune: bool = False, reread: bool = False) -> dict:
    """The report of indexing `path` on the server, after the job is done."""
    started = client.post("/api/photos/index-path",
                          json={"path": path, "prune": prune, "reread": reread})
    assert started.status_code == 202, started.text
    assert started.headers["location"] == started.json()["url"]
    assert (started.json()["prune"], started.json()["reread"]) == (prune, reread)
    job = wait_for_job(client, started.json()["id"])
    assert job["state"] == "done", job
    return job["report"]
