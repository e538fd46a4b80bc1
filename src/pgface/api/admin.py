"""Health (no key needed), who-am-I, and database statistics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from psycopg_pool import ConnectionPool

from pgface import __version__
from pgface.api.deps import (
    JsonRoute,
    authenticate,
    get_pf,
    proxied,
    proxied_refusal,
    require_read,
    sees_database_words,
)
from pgface.api.errors import ApiError
from pgface.api.models import AuthInfo, Health, Stats, error_responses
from pgface.config import Settings
from pgface.paths import loggable

log = logging.getLogger(__name__)
router = APIRouter(route_class=JsonRoute, tags=["admin"])


@router.get("/health", response_model=Health, responses=error_responses(500, 503))
def health(request: Request) -> dict:
    """200 while the database answers, and each read database searches go to
    (PGFACE_READ_DATABASE_URL), and the models are loaded; 503 otherwise (a standby down
    failed every search while this said ok, and a load balancer kept sending them here)."""
    pf = get_pf(request)
    try:
        _ping(pf.pool)
    except Exception as exc:  # any failure is the answer, not a crash
        raise _unavailable(request, pf.settings, "", exc) from None
    if pf.settings.read_database_url:
        reached = 0  # opening them names the one that fails; a query, by its number
        try:
            for pool in pf.read_pools:
                reached += 1
                _ping(pool)
        except Exception as exc:  # any failure is the answer, not a crash
            where = f"read database {reached} of PGFACE_READ_DATABASE_URL: " if reached else ""
            raise _unavailable(request, pf.settings, where, exc) from None
    return {"status": "ok", "version": __version__, "model": pf.analyzer.model_name}


def _unavailable(request: Request, settings: Settings, where: str, exc: Exception
                 ) -> ApiError:
    """Health's 503. The database's own words name its host or socket path, which this
    endpoint, open to any client, told the network (probe security31): said to clients of a
    server on loopback, where they are this machine's, in requests made to this machine (a
    site's name pointed at 127.0.0.1 would read them from its page, probe reprobe32);
    elsewhere in the server's log alone. Health itself answers every Host: a probe's through
    a proxy of a server with keys was refused as an open server's would be (probe docs31)."""
    if sees_database_words(request):
        return ApiError(503, f"database unavailable: {where}{exc}", "database_unavailable")
    log.warning("health: database unavailable: %s%s", where, loggable(str(exc)))
    return ApiError(503, f"database unavailable: {where}the server's log says why",
                    "database_unavailable")


def _ping(pool: ConnectionPool) -> None:
    with pool.connection(timeout=5) as conn:
        conn.execute("SELECT 1")


@router.get("/auth", response_model=AuthInfo, responses=error_responses(401, 500, 503))
def auth(request: Request) -> dict:
    """Whether this server wants a key, and which key (name, scopes) was sent, if any."""
    key, why = authenticate(request)
    said = proxied(request) if key is None and why is None else None
    if said is not None:  # refused as an open server's (it said none was needed: reprobe36)
        why = proxied_refusal(said)
    return {
        "key_required": why is not None or key is not None,
        "reason": why,
        "key": None if key is None else {"name": key.name, "scopes": key.scopes},
    }


@router.get("/stats", dependencies=[Depends(require_read)], response_model=Stats,
            responses=error_responses(401, 403, 500, 503))
def stats(request: Request) -> dict:
    """Counts, database size, versions, model pack, execution provider, threshold."""
    return get_pf(request).stats()
