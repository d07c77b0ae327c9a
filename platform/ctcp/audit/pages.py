"""Portal pages of the audit trail (HTML), over the same trail reads as the JSON API."""

import json
from datetime import datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ctcp.audit import trail
from ctcp.audit.service import Outcome
from ctcp.audit.trail import AuditFilters
from ctcp.core.config import SettingsDep
from ctcp.core.db import DatabaseDep
from ctcp.core.errors import ValidationError
from ctcp.core.pagination import CursorQuery, PageRequest
from ctcp.web.paths import PREFIX
from ctcp.web.portal import GuardedPortal, page_guard

router = APIRouter(prefix=PREFIX, include_in_schema=False)
ReadAudit = Annotated[GuardedPortal, page_guard("audit", "read")]
ExportAudit = Annotated[GuardedPortal, page_guard("audit", "export")]
VerifyAudit = Annotated[GuardedPortal, page_guard("audit", "verify")]
FILTERS = ("actor", "action", "outcome", "object_id", "since", "until")
OUTCOMES = [outcome.value for outcome in Outcome]


class AuditQuery(BaseModel):
    """The API's audit filters, from the filter form (times in UTC)."""

    actor: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=64)
    outcome: Outcome | None = None
    object_id: str | None = Field(default=None, max_length=64)
    since: datetime | None = None
    until: datetime | None = None


def _typed(portal: GuardedPortal) -> dict[str, str]:
    return {name: portal.request.query_params.get(name, "").strip() for name in FILTERS}


def _filters(
    portal: GuardedPortal, typed: dict[str, str]
) -> tuple[AuditFilters | None, dict[str, str]]:
    """The same filters the API builds from its query (naive times taken as UTC)."""
    query, errors = portal.validate(AuditQuery, {k: v for k, v in typed.items() if v})
    if query is None:
        return None, errors
    filters = AuditFilters(
        actor=query.actor,
        action=query.action,
        outcome=query.outcome,
        object_id=query.object_id,
        since=query.since,
        until=query.until,
    )
    return filters, {}


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(portal: ReadAudit, cursor: CursorQuery = None) -> Response:
    """The audit log, newest first, with the API's filters; reading it is itself audited."""
    typed = _typed(portal)
    filters, errors = _filters(portal, typed)
    events = []
    next_cursor = None
    if filters is not None:
        page = await trail.list_events(
            portal.session, portal.access, filters, PageRequest(cursor=cursor)
        )
        next_cursor = page.next_cursor
        events = [
            (event, json.dumps(event.details, ensure_ascii=False, sort_keys=True))
            for event in page.items
        ]
    used = {name: value for name, value in typed.items() if value}
    return await portal.render(
        "audit/list.html",
        status=422 if errors else 200,
        events=events,
        next_cursor=next_cursor,
        typed=typed,
        errors=errors,
        outcomes=portal.options(OUTCOMES),
        export_url=f"{PREFIX}/audit/export" + (f"?{urlencode(used)}" if used else ""),
        may_export=portal.granted("audit", "export"),
        may_verify=portal.granted("audit", "verify"),
    )


@router.get("/audit/export")
async def export_download(portal: ExportAudit, database: DatabaseDep) -> Response:
    """The API's JSON Lines export of the filtered events, as a download (audited alike)."""
    filters, errors = _filters(portal, _typed(portal))
    if filters is None:
        name, message = next(iter(errors.items()))
        raise ValidationError(f"{name}: {message}", loc=["query", name])
    return trail.export_events(portal.session, database, portal.access, filters)


@router.get("/audit/verify", response_class=HTMLResponse)
async def verify_page(
    portal: VerifyAudit, database: DatabaseDep, settings: SettingsDep
) -> Response:
    """Recompute every hash and link of the chain and check it against the signed
    checkpoints, as the API verifies it."""
    result = await trail.verify(portal.session, database, portal.access, settings)
    return await portal.render("audit/verify.html", result=result)
