"""Guards: every route declares one; it returns who acts, for whom, and with which scope."""

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authz.policy import PolicyWatcher
from ctcp.authz.scopes import DataScope
from ctcp.core.db import SessionDep, on_failure
from ctcp.core.errors import DomainError, ForbiddenError
from ctcp.core.routes import mark_guard
from ctcp.identity.dependencies import audit_context_of, authenticate
from ctcp.organizations.models import Organization


@dataclass(frozen=True)
class Subject:
    """Who acts: a signed-in person, or (later) an API client with OAuth scopes."""

    user_id: uuid.UUID | None
    client_id: str | None
    organization: Organization
    roles: frozenset[str]
    audit: AuditContext


@dataclass(frozen=True)
class Access:
    """A granted (resource, action) and the data scopes it reaches."""

    subject: Subject
    resource: str
    action: str
    scopes: frozenset[DataScope]

    @property
    def everything(self) -> bool:
        return DataScope.ALL in self.scopes

    @property
    def organization(self) -> Organization:
        return self.subject.organization

    @property
    def audit(self) -> AuditContext:
        return self.subject.audit


def policy_of(request: Request) -> PolicyWatcher:
    watcher: PolicyWatcher = request.app.state.policy
    return watcher


def _denial_details(request: Request, reason: str, status: int) -> dict[str, Any]:
    return {"reason": reason, "status": status, "method": request.method, "path": request.url.path}


def guard(resource: str, action: str) -> Any:
    """A dependency: 403 unless a role of the caller may do `action` on `resource`.

    Refusals raised later in the route (404 outside the scope, 403 from a rule) are
    audited too, when the request's transaction rolls back, and survive it.
    """

    async def dependency(request: Request, session: SessionDep) -> Access:
        principal = await authenticate(request, session)
        actor = audit_context_of(request).as_user(principal.user.id, principal.organization.code)
        subject = Subject(
            user_id=principal.user.id,
            client_id=None,
            organization=principal.organization,
            roles=principal.roles,
            audit=actor,
        )
        scopes = policy_of(request).engine.scopes(
            subject.roles, subject.organization.code, resource, action
        )
        object_id = next(iter(request.path_params.values()), None)
        if not scopes:
            audit.record(
                session,
                actor,
                f"{resource}.{action}",
                outcome=Outcome.DENIED,
                object_type=resource,
                object_id=object_id,
                details=_denial_details(request, "role", 403),
            )
            raise ForbiddenError(f"Your roles do not allow {action} on {resource}.")

        async def audit_refusal(failed: AsyncSession, error: BaseException) -> None:
            if isinstance(error, DomainError) and error.status in (403, 404):
                audit.record(
                    failed,
                    actor,
                    f"{resource}.{action}",
                    outcome=Outcome.DENIED,
                    object_type=resource,
                    object_id=object_id,
                    details=_denial_details(request, error.detail, error.status),
                )

        on_failure(session, audit_refusal)
        return Access(subject, resource, action, scopes)

    mark_guard(dependency, (resource, action))
    dependency.__name__ = f"guard_{resource}_{action}"
    return Depends(dependency)


def granted(request: Request, access: Access, resource: str, action: str) -> Access | None:
    """The caller's grant for a further (resource, action), or None: one Casbin decision."""
    scopes = policy_of(request).engine.scopes(
        access.subject.roles, access.organization.code, resource, action
    )
    return Access(access.subject, resource, action, scopes) if scopes else None


def require(request: Request, access: Access, resource: str, action: str) -> Access:
    """A further grant a route needs beyond its guard (403, audited, when missing)."""
    further = granted(request, access, resource, action)
    if further is None:
        raise ForbiddenError(f"Your roles do not allow {action} on {resource}.")
    return further
