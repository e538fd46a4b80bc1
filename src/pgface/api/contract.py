"""What /openapi.json says beyond FastAPI's own reading of the routes: the scope an operation
needs, the headers clients act on, what a person's `{ref}` in a path is, and operationIds
that read as method names. A client generated
from the document alone knew none of them (probe apiclient60): it met a 403 for a read key's
write, could not read the X-Pgface-Change that a safe undo names, nor a job's Location."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant

from pgface.api.deps import require_read, require_write
from pgface.api.people import CHANGE_HEADER

SCOPES = {require_read: "read", require_write: "write"}

REF_DESCRIPTION = (
    "The person's id, or their name as given. A name that is a word of these paths (`review`, "
    "`history`) or holds a `/` is found with `GET /api/people?name=...`, then by its id.")

CHANGE = {CHANGE_HEADER: {
    "description": "The id of the people change this request recorded: `POST "
                   "/api/people/undo {\"change_id\": N}` takes back that change and no other. "
                   "Absent where nothing changed.",
    "schema": {"type": "integer"}}}
# An undo records no change of its own (none is sent); an erase's cannot be undone.
NO_CHANGE_HEADER = {"/api/people/undo"}
ERASE_CHANGE = {CHANGE_HEADER: {
    "description": "The id of the change this erase recorded, in the history (an erase "
                   "cannot be undone).", "schema": {"type": "integer"}}}

# Headers of particular operations (path, method, status): what a client reads from them.
HEADERS = {
    ("/api/photos/index-path", "post", "202"): {"Location": {
        "description": "The job's URL (`GET` follows it, `DELETE` cancels it).",
        "schema": {"type": "string"}}},
    **{("/api/photos/{photo_id}/image", "get", status): {"ETag": {
        "description": "The photo's version: send it back as `If-None-Match` for a 304 "
                       "while it has not changed.", "schema": {"type": "string"}}}
       for status in ("200", "304")},
}


def operation_id(route: routing.APIRoute) -> str:
    """An operation's operationId: its function's name (`list_people`, `merge_people`), the
    method name a generated client gives it, where FastAPI's own joins name, path and method
    (`merge_api_people_merge_post`; probe apiclient60). The names are unique (a test says)."""
    return route.name


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def route_scope(dependant: Dependant) -> str | None:
    """The scope a route's dependencies require of an API key: "write", "read" or None."""
    found = {SCOPES[call] for call in _calls(dependant) if call in SCOPES}
    return "write" if "write" in found else "read" if found else None


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes with their full paths: FastAPI from 0.16x keeps an included
    router as one entry (its routes read through routing.iter_route_contexts), before it as
    its APIRoutes."""
    contexts = getattr(routing, "iter_route_contexts", None)
    for route in contexts(app.routes) if contexts is not None else app.routes:
        if (getattr(route, "include_in_schema", False) and hasattr(route, "dependant")
                and hasattr(route, "path_format")):
            yield route


def declare_contract(app: FastAPI) -> None:
    """Amend the app's OpenAPI document, once: each operation's scope (in its security
    requirements, as OpenAPI 3.1 lets a scheme other than OAuth name roles, and in its
    description), the headers of HEADERS and every people change's X-Pgface-Change, and the
    description of a person's `{ref}`."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()  # cached on app.openapi_schema: amended in place, once
            for route in _api_routes(app):
                for method in route.methods:
                    operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        _amend(operation, route.path_format, method.lower(),
                               route_scope(route.dependant))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _amend(operation: dict, path: str, method: str, scope: str | None) -> None:
    responses = operation.setdefault("responses", {})
    if scope is not None and "422" not in responses:
        # the key's check refuses a query parameter the route does not read, where the route
        # reads none too (deps.refuse_unknown_parameters): GET /api/stats?limit=5
        responses["422"] = {"description": "Invalid request", "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
    if scope is not None and operation.get("security"):
        operation["security"] = [{name: [scope] for name in requirement}
                                 for requirement in operation["security"]]
        operation["description"] = (operation.get("description", "").rstrip() + "\n\n"
                                    f"Needs the `{scope}` scope, where API keys are in use.")
    people_change = (path.startswith("/api/people") and scope == "write"
                     and path not in NO_CHANGE_HEADER)
    change = ERASE_CHANGE if path.endswith("/erase") else CHANGE
    for status, response in operation.get("responses", {}).items():
        headers = {**HEADERS.get((path, method, status), {}),
                   **(change if people_change and status.startswith("2") else {})}
        if headers:
            response.setdefault("headers", {}).update(headers)
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path" and parameter.get("name") == "ref":
            parameter["description"] = REF_DESCRIPTION
