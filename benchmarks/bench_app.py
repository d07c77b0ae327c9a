"""The benchmark's own entry point: the shipped app plus an unguarded, unaudited baseline.

The baseline route exists only here, never in the shipped application.
"""

import uuid

from fastapi import FastAPI

from ctcp.app import create_app
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

    from ctcp.audit import service as audit_service
    from ctcp.audit.service import AuditContext
    from ctcp.identity.dependencies import PrincipalDep

    @app.get("/diag/auth/users/{user_id}", include_in_schema=False)
    async def auth_only(user_id: uuid.UUID, session: SessionDep, p: PrincipalDep) -> UserRead:
        account = await service.load_account(session, user_id=user_id)
        assert account is not None
        return UserRead.of(account)

    @app.get("/diag/audit/users/{user_id}", include_in_schema=False)
    async def audit_only(user_id: uuid.UUID, session: SessionDep) -> UserRead:
        account = await service.load_account(session, user_id=user_id)
        assert account is not None
        audit_service.record(session, AuditContext(), "user.read", object_id=user_id, read=True)
        return UserRead.of(account)

    return app
