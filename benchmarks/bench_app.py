"""The benchmark's own entry point: the shipped app plus unguarded, unaudited baselines.

The baseline routes exist only here, never in the shipped application. Each runs the same
queries as its guarded twin, scoped for the organization named by `?as=CODE` (its data
scopes computed once per process from the loaded policy), with no authentication, no
policy decision and no audit event.

CTCP_BENCH_PROFILE=DIR: each worker profiles itself (cProfile) and writes its stats to
DIR/worker-<pid>.prof on SIGUSR1 (sent by load.py --profile before it stops the server).

CTCP_BENCH_EXPERIMENT=async-counters: an experiment, not a fix: the rate-limit counting
transaction commits with `synchronous_commit = off` on PostgreSQL, so the hot counter rows
(one per address, one per client) are locked for the upsert, not through a WAL flush.
"""

import cProfile
import os
import signal
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, status
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.app import create_app
from ctcp.audit import service as audit
from ctcp.audit.service import PENDING_KEY, AuditContext
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access, guard
from ctcp.authz.oauth_scopes import CLIENT_ROLE, OAuthScope, scope_role
from ctcp.consent import service as consent_service
from ctcp.consent.models import Publication
from ctcp.consent.schemas import PublicationRead
from ctcp.core.db import SessionDep
from ctcp.core.errors import NotFoundError
from ctcp.core.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, keyset, page_of
from ctcp.identity import service
from ctcp.identity.schemas import UserRead
from ctcp.organizations.models import Organization
from ctcp.reports import service as reports
from ctcp.reports.models import VisitReport
from ctcp.reports.schemas import ReportCreate, ReportRead, ReportSummary

AsCode = Annotated[str, Query(alias="as", max_length=32)]


def _start_profiler() -> None:
    folder = os.environ.get("CTCP_BENCH_PROFILE")
    if not folder:
        return
    profiler = cProfile.Profile()
    profiler.enable()

    def dump(_signal: int, _frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(str(Path(folder) / f"worker-{os.getpid()}.prof"))

    signal.signal(signal.SIGUSR1, dump)


def _async_counters() -> None:
    """Patch RateLimiter.hit (this process only) to commit its counts asynchronously."""
    from sqlalchemy import text

    from ctcp.core.rate_limits import RateLimiter

    hit = RateLimiter.hit

    async def hit_without_flush_wait(self: RateLimiter, session: AsyncSession, limits: Any) -> Any:
        if (await session.connection()).dialect.name == "postgresql":
            await session.exec(text("SET LOCAL synchronous_commit = off"))  # type: ignore[call-overload]
        return await hit(self, session, limits)

    RateLimiter.hit = hit_without_flush_wait  # type: ignore[method-assign]


def create() -> FastAPI:
    _start_profiler()
    if os.environ.get("CTCP_BENCH_EXPERIMENT") == "async-counters":
        _async_counters()
    app = create_app()
    accesses: dict[tuple[str, str, str], Access] = {}

    async def access_of(
        request: Request, session: AsyncSession, code: str, resource: str, action: str
    ) -> Access:
        """What the guard would grant: an API client (publications:read) of an entity, a
        focal point of a State, an analyst of the Secretariat. Cached per process."""
        key = (code.upper(), resource, action)
        cached = accesses.get(key)
        if cached is not None:
            return cached
        organization = (
            await session.exec(select(Organization).where(col(Organization.code) == key[0]))
        ).first()
        if organization is None:
            raise NotFoundError("No such organization.")
        engine = request.app.state.policy.engine
        roles = {
            "compact_entity": frozenset({CLIENT_ROLE}),
            "member_state": frozenset({"state_focal_point"}),
        }.get(organization.kind, frozenset({"cted_analyst"}))
        scopes = engine.scopes(roles, organization.code, resource, action)
        if organization.kind == "compact_entity":
            narrowed = frozenset({scope_role(OAuthScope.PUBLICATIONS_READ.value)})
            scopes = scopes & engine.scopes(narrowed, organization.code, resource, action)
        subject = Subject(
            user_id=None,
            client_id=None,
            organization=organization,
            roles=roles,
            audit=AuditContext(),
        )
        accesses[key] = Access(subject, resource, action, scopes)
        return accesses[key]

    @app.get("/bench/users/{user_id}", include_in_schema=False)
    async def baseline_user(user_id: uuid.UUID, session: SessionDep) -> UserRead:
        """The same query as GET /api/v1/users/{id}, without guard and audit."""
        account = await service.load_account(session, user_id=user_id)
        if account is None:
            raise NotFoundError("No such user.")
        return UserRead.of(account)

    @app.get("/bench/guard/users/{user_id}", include_in_schema=False)
    async def guard_only(
        user_id: uuid.UUID, session: SessionDep, access: Annotated[Access, guard("user", "manage")]
    ) -> UserRead:
        """With the guard, without the audit event (--breakdown)."""
        return await baseline_user(user_id, session)

    @app.get("/bench/audit/users/{user_id}", include_in_schema=False)
    async def audit_only(user_id: uuid.UUID, session: SessionDep) -> UserRead:
        """With the audit event, without the guard (--breakdown)."""
        result = await baseline_user(user_id, session)
        audit.record(
            session, AuditContext(), "user.read", object_type="user", object_id=user_id, read=True
        )
        return result

    @app.get("/bench/publications/{publication_id}", include_in_schema=False)
    async def baseline_publication(
        publication_id: uuid.UUID, request: Request, session: SessionDep, as_code: AsCode
    ) -> PublicationRead:
        """GET /api/v1/publications/{id}'s queries, without guard and audit."""
        access = await access_of(request, session, as_code, "publication", "read")
        return await consent_service.read_one(session, access, publication_id)

    @app.get("/bench/publications", include_in_schema=False)
    async def baseline_publications(
        request: Request,
        session: SessionDep,
        as_code: AsCode,
        limit: LimitQuery = DEFAULT_LIMIT,
        cursor: CursorQuery = None,
    ) -> Page[PublicationRead]:
        """GET /api/v1/publications' queries (no filter), without guard and audit."""
        access = await access_of(request, session, as_code, "publication", "read")
        order = [col(Publication.published_at), col(Publication.id)]
        statement = keyset(
            consent_service.readable_publications(access),
            order=order,
            descending=True,
            limit=limit,
            cursor=cursor,
        )
        rows = (await session.exec(statement)).all()
        page = page_of(rows, limit=limit, key=lambda p: [p.published_at, p.id], item=lambda p: p)
        return Page[PublicationRead](
            items=await consent_service.read_model(session, page.items),
            next_cursor=page.next_cursor,
        )

    @app.get("/bench/reports/{report_id}", include_in_schema=False)
    async def baseline_report(
        report_id: uuid.UUID, request: Request, session: SessionDep, as_code: AsCode
    ) -> ReportRead:
        """GET /api/v1/reports/{id}'s queries, without guard and audit."""
        access = await access_of(request, session, as_code, "report", "read")
        report = await reports.get_report(session, access, report_id)
        return await reports.full_text(session, report)

    @app.get("/bench/reports", include_in_schema=False)
    async def baseline_reports(
        request: Request,
        session: SessionDep,
        as_code: AsCode,
        limit: LimitQuery = DEFAULT_LIMIT,
        cursor: CursorQuery = None,
    ) -> Page[ReportSummary]:
        """GET /api/v1/reports' queries (no filter), without guard and audit."""
        access = await access_of(request, session, as_code, "report", "read")
        order = [col(VisitReport.visit_start_date), col(VisitReport.id)]
        statement = keyset(
            reports.readable_reports(access),
            order=order,
            descending=True,
            limit=limit,
            cursor=cursor,
        )
        rows = (await session.exec(statement)).all()
        page = page_of(
            rows, limit=limit, key=lambda r: [r.visit_start_date, r.id], item=lambda r: r
        )
        return Page[ReportSummary](
            items=await reports.summaries(session, page.items), next_cursor=page.next_cursor
        )

    @app.post("/bench/reports", include_in_schema=False, status_code=status.HTTP_201_CREATED)
    async def baseline_create_report(
        body: ReportCreate, request: Request, session: SessionDep, as_code: AsCode
    ) -> ReportRead:
        """POST /api/v1/reports' writes, without guard and audit (the event is dropped)."""
        access = await access_of(request, session, as_code, "report", "write")
        written = await reports.create_report(session, access, state_code=body.state, content=body)
        pending: list[Any] = session.info.get(PENDING_KEY, [])
        pending.clear()
        return await reports.full_text(session, written.report, written.sections)

    return app
