"""The OpenAPI schema promises what the server answers: typed successes, one error shape."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pgface import Settings
from pgface.api import create_app
from pgface.api.models import ErrorResponse
from pgface.models.analysis import FaceAnalyzer
from pgface.models.packs import sample_photos


def resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def test_every_operation_has_a_typed_success_and_the_shared_error_schema(
        settings: Settings) -> None:
    spec = create_app(settings).openapi()
    error_ref = "#/components/schemas/ErrorResponse"
    error = spec["components"]["schemas"]["ErrorResponse"]
    detail = resolve(spec, error["properties"]["error"])
    assert {"code", "message"} <= set(detail["required"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    operations = [(method.upper(), path, op) for path, ops in spec["paths"].items()
                  for method, op in ops.items()]
    assert len(operations) >= 30
    # answered, so declared (an httpdocs probe: 304 and a bad `after`'s 400 were not)
    assert "304" in spec["paths"]["/api/photos/{photo_id}/image"]["get"]["responses"]
    assert "400" in spec["paths"]["/api/people"]["get"]["responses"]
    for method, path, op in operations:
        where = f"{method} {path}"
        successes = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert successes, where
        for status, response in successes.items():
            content = response["content"]
            if "application/json" in content:
                schema = resolve(spec, content["application/json"]["schema"])
                assert schema.get("type") == "object" and schema.get("properties"), (
                    where, status, schema)
            else:  # images: bytes, said so
                [(media, body)] = content.items()
                assert media.startswith("image/"), (where, media)
                assert body["schema"] == {"type": "string", "format": "binary"}, where
        errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        assert "500" in errors, where
        if op.get("parameters") or op.get("requestBody") or op.get("security"):
            # what it was sent can be refused: a parameter it does not read too, also where
            # it reads none (GET /api/stats?limit=5: undeclared, probe jsoncontract35)
            assert "422" in errors, where
        if op.get("requestBody"):  # BodyLimit's, before any route (a probe's find: undeclared)
            assert {"408", "413", "415"} <= errors.keys(), where
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": error_ref}, (where, status, schema)


def test_every_operation_that_needs_a_key_takes_it_in_either_header(settings: Settings) -> None:
    """Probe clients39: the X-API-Key header that docs/http.md offers was read and not
    declared (HTTPBearer alone), so a generated client could not send it."""
    spec = create_app(settings).openapi()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {"type": "http", "scheme": "bearer",
                                     "description": schemes["HTTPBearer"]["description"]}
    assert {k: v for k, v in schemes["APIKeyHeader"].items() if k != "description"} == {
        "type": "apiKey", "in": "header", "name": "X-API-Key"}
    keyed = [(method, path) for path, ops in spec["paths"].items()
             for method, op in ops.items() if op.get("security")]
    assert len(keyed) >= 30
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if op.get("security"):
                # requirements in one list are alternatives: either header will do, each
                # naming the scope the operation needs (OpenAPI 3.1 role names: contract.py)
                assert op["security"] in ([{"HTTPBearer": [scope]}, {"APIKeyHeader": [scope]}]
                                          for scope in ("read", "write")), (
                    method, path, op["security"])
    assert "security" not in spec["paths"]["/api/health"]["get"]  # probes need no key


def test_the_error_model_reads_what_the_server_answers(settings: Settings,
                                                      analyzer: FaceAnalyzer) -> None:
    with TestClient(create_app(settings, analyzer)) as client:
        # a request without a body, sent with a Content-Encoding, has nothing to refuse (it
        # was a 415 no operation without a body declares, probe jsoncontract35)
        assert client.get("/api/stats", headers={"content-encoding": "gzip"}
                          ).status_code == 200
        gzipped = client.post("/api/people/cluster", content=b"\x1f\x8b", headers={
            "content-encoding": "gzip", "content-type": "application/json"})
        assert gzipped.status_code == 415
        for response in (client.get("/api/photos/987654"), client.get("/api/photos?limit=0"),
                         client.get("/api/jobs/nope"), client.get("/api/people/Nobody"),
                         client.get("/api/faces/987654/search")):
            parsed = ErrorResponse.model_validate(response.json())
            assert parsed.error.status == response.status_code >= 400
            assert parsed.error.code and parsed.error.message


def test_every_list_declares_what_a_bad_after_is_answered(settings: Settings,
                                                           analyzer: FaceAnalyzer) -> None:
    """Probe clients39: `GET /api/people/{ref}/photos?after=abc` answered 400 `invalid_input`,
    undeclared there (the test above named the lists it knew of, and a list added later was
    none of them): each operation that takes `after` is sent one no list gave."""
    with TestClient(create_app(settings, analyzer)) as client:
        spec = client.get("/openapi.json").json()
        asked = 0
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if not any(p["name"] == "after" and p["in"] == "query"
                           for p in operation.get("parameters", [])):
                    continue
                # a path's person, photo or face named by an id: the `after` is read first
                url = re.sub(r"\{[^}]+\}", "1", path)
                answered = client.request(method.upper(), url, params={"after": "abc"})
                assert answered.status_code >= 400, (method, path, answered.text)
                assert str(answered.status_code) in operation["responses"], (
                    method.upper(), path, answered.status_code, sorted(operation["responses"]))
                asked += 1
        assert asked >= 4  # people, the review queue, a person's faces and photos


def test_a_photos_taken_at_is_what_its_schema_declares(settings: Settings, analyzer: FaceAnalyzer,
                                                      tmp_path: Path) -> None:
    """Probe clients39: `taken_at`, the camera's clock with no zone, was declared `format:
    date-time` (RFC 3339, an offset required) and sent without one, so a generated client
    (Java's OffsetDateTime, Go's time.Time) refused every page holding one."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="jsonschema-rs is not installed "
                                        "(schemathesis, the dev extra, brings it)")
    dated = tmp_path / "dated.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2012:12:06 15:46:01"  # DateTimeOriginal
    with Image.open(next(p for p in sample_photos() if p.name == "yaoming.jpg")) as photo:
        photo.save(dated, exif=exif, quality=90)
    with TestClient(create_app(settings, analyzer)) as client:
        spec = client.get("/openapi.json").json()
        declared = spec["components"]["schemas"]["PhotoOut"]["properties"]["taken_at"]
        taken_at = jsonschema_rs.validator_for(declared, validate_formats=True)
        uploaded = client.post("/api/photos", files={"file": (dated.name, dated.read_bytes(),
                                                              "image/jpeg")})
        assert uploaded.status_code == 201, uploaded.text
        photo_id = uploaded.json()["photo"]["id"]
        answered = [uploaded.json()["photo"], client.get(f"/api/photos/{photo_id}").json(),
                    *client.get("/api/photos").json()["photos"]]
    for photo in answered:
        # the camera's wall clock as it said it: no zone made up for it
        assert photo["taken_at"] == "2012-12-06T15:46:01", photo
        errors = [error.message for error in taken_at.iter_errors(photo["taken_at"])]
        assert not errors, (declared, photo["taken_at"], errors)
    assert "zone" in declared["description"], declared


def _codes_the_api_answers() -> set[str]:
    """The error codes pgface's HTTP code names (an ApiError's or error_response's code, the
    domain errors' table, the JSON answers its HTTP protocol writes itself), read from its
    source: a code left out of docs/http.md's table was answered all the same."""
    codes: set[str] = set()
    for source in (Path(__file__).parent.parent / "src" / "pgface" / "api").glob("*.py"):
        text = source.read_text(encoding="utf-8")
        codes.update(re.findall(r'"code": "([a-z_]+)"', text))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Call) and getattr(
                    node.func, "id", getattr(node.func, "attr", "")) in ("ApiError",
                                                                       "error_response"):
                given = [*node.args[2:3], *(k.value for k in node.keywords if k.arg == "code")]
                codes.update(v.value for v in given
                             if isinstance(v, ast.Constant) and isinstance(v.value, str))
            elif isinstance(node, ast.Tuple) and len(node.elts) == 3 and all(
                    isinstance(e, ast.Constant) for e in node.elts[1:]) and isinstance(
                    node.elts[1].value, int) and isinstance(node.elts[2].value, str):
                # (error class, status, code)
                codes.add(node.elts[2].value)
    return codes


def test_every_error_code_the_api_answers_is_in_the_docs_table() -> None:
    """Probe docsrun37: host_not_allowed, cross_site_request and proxied_request were answered
    and in no row of docs/http.md's table of codes, which ErrorDetail.code points to."""
    docs = (Path(__file__).parent.parent / "docs" / "http.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\| \d{3} \| `([a-z_]+)` \|", docs, re.MULTILINE))
    answered = _codes_the_api_answers()
    assert {"outside_roots", "host_not_allowed", "headers_too_large", "people_busy"} <= answered
    assert answered <= table, sorted(answered - table)
