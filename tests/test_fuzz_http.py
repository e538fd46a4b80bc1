"""Schemathesis against the HTTP API's OpenAPI schema (bench/fuzz_http.py has the runner): every
operation, valid and invalid data, NUL bytes allowed in strings. Any 5xx is a bug."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import PHOTOS, REPO, require_data

from pgface import Settings
from pgface.api import create_app
from pgface.models.analysis import FaceAnalyzer

sys.path.insert(0, str(REPO / "bench"))
from fuzz_http import fuzz, stock  # noqa: E402

EXAMPLES = 8  # per operation and mode: 35 operations x 2 modes x 8 requests


@pytest.mark.fuzz
def test_no_request_gets_a_5xx(settings: Settings, analyzer: FaceAnalyzer,
                               tmp_path: Path) -> None:
    people = require_data(PHOTOS / "people")
    settings = settings.model_copy(update={"api_roots": [people], "upload_dir": tmp_path})
    stock(settings, analyzer, [PHOTOS / "groups" / "friends-6.jpg", people / "obama"])
    report = fuzz(create_app(settings, analyzer), EXAMPLES)
    print(f"fuzz: {report.operations} operations, {report.requests} requests, "
          f"{sorted(report.statuses.items())}")
    assert report.operations >= 20 and report.requests >= report.operations * EXAMPLES
    assert report.server_errors == []
