"""The benchmark's own entry point: the shipped app plus an unguarded, unaudited baseline.

The baseline route exists only here, never in the shipped application.
"""

import uuid
from typing import Annotated

from fastapi import FastAPI

from ctcp.app import create_app
from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext
from ctcp.authz.guard import Access, guard
from ctcp.core.db import SessionDep
from ctcp.core.errors import NotFoundError
from ctcp.identity import service
from ctcp.identity.schemas import UserRead


def create() -> FastAPI:
    app = create_app()

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

    return app
