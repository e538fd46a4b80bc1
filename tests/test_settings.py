"""PGFACE_* variables as a shell user writes them, and settings that cannot work refused by
name before any photo is read."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from pgface import Settings


def test_list_settings_take_json_or_the_plain_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGFACE_API_ROOTS", "/srv/photos:/srv/more photos")
    monkeypatch.setenv("PGFACE_DET_SIZES", "640, 256")
    monkeypatch.setenv("PGFACE_PROVIDERS", "OpenVINO,CPUExecutionProvider")
    plain = Settings()
    assert plain.api_roots == [Path("/srv/photos"), Path("/srv/more photos")]
    assert plain.det_sizes == [256, 640]  # in the order the detector runs them
    assert plain.providers == ["OpenVINO", "CPUExecutionProvider"]

    monkeypatch.setenv("PGFACE_API_ROOTS", '["/srv/a:b"]')  # JSON: a ":" inside a name
    monkeypatch.setenv("PGFACE_DET_SIZES", "[320]")
    monkeypatch.setenv("PGFACE_PROVIDERS", '["CPUExecutionProvider"]')
    as_json = Settings()
    assert (as_json.api_roots, as_json.det_sizes, as_json.providers) == (
        [Path("/srv/a:b")], [320], ["CPUExecutionProvider"])

    monkeypatch.setenv("PGFACE_API_ROOTS", "")
    assert Settings().api_roots == []


@pytest.mark.parametrize(("sizes", "reason"), [
    ("", "give at least one detector size"),
    ("300", "300 is not a detector size: a multiple of 32"),
    ("640,16", "16 is not a detector size"),
    ("100000", "100000 is not a detector size"),
    ("-32", "-32 is not a detector size"),
])
def test_detector_sizes_that_cannot_work_are_refused(monkeypatch: pytest.MonkeyPatch,
                                                     sizes: str, reason: str) -> None:
    monkeypatch.setenv("PGFACE_DET_SIZES", sizes)
    with pytest.raises(ValidationError, match=reason):
        Settings()
