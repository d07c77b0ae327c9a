"""Liveness and readiness probes."""

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ctcp.core.db import DatabaseDep
from ctcp.core.errors import problem_response
from ctcp.core.migrations import head_revision
from ctcp.core.routes import PUBLIC

router = APIRouter(tags=["health"], dependencies=[PUBLIC])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz", summary="The database is reachable and migrated to head", response_model=None
)
async def readyz(database: DatabaseDep) -> dict[str, str] | JSONResponse:
    try:
        async with database.read_engine.connect() as connection:
            current = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
            policy_lines = (
                await connection.execute(text("SELECT count(*) FROM casbin_rules"))
            ).scalar_one()
    except Exception:
        return problem_response(503, "The database is not reachable.")
    head = head_revision()
    if current != head:
        return problem_response(503, f"The database is at revision {current}, not {head}.")
    if not policy_lines:
        return problem_response(503, "No access policy is loaded: run `ctcp policy load`.")
    return {"status": "ready", "revision": head}
