"""Guards: every route declares one; it returns who acts, for whom, and with which scope."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authz.policy import PolicyWatcher
from ctcp.authz.scopes import DataScope
from ctcp.core.db import SessionDep
from ctcp.core.errors import DomainError, ForbiddenError
from ctcp.core.routes import mark_guard
from ctcp.identity.dependencies import PrincipalDep, RequestContextDep
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

    Refusals raised inside the route (404 outside the scope, 403 from a rule) are
    audited here too, and survive the request's rollback.
    """

    async def dependency(
        request: Request, session: SessionDep, principal: PrincipalDep, context: RequestContextDep
    ) -> AsyncIterator[Access]:
        subject = Subject(
            user_id=principal.user.id,
            client_id=None,
            organization=principal.organization,
            roles=principal.roles,
            audit=context.as_user(principal.user.id, principal.organization.code),
        )
        scopes = policy_of(request).engine.scopes(
            subject.roles, subject.organization.code, resource, action
        )
        object_id = next(iter(request.path_params.values()), None)
        if not scopes:
            audit.record(
                session,
                subject.audit,
                f"{resource}.{action}",
                outcome=Outcome.DENIED,
                object_type=resource,
                object_id=object_id,
                details=_denial_details(request, "role", 403),
            )
            raise ForbiddenError(f"Your roles do not allow {action} on {resource}.")
        try:
            yield Access(subject, resource, action, scopes)
        except DomainError as error:
            if error.status in (403, 404):
                audit.record(
                    session,
                    subject.audit,
                    f"{resource}.{action}",
                    outcome=Outcome.DENIED,
                    object_type=resource,
                    object_id=object_id,
                    details=_denial_details(request, error.detail, error.status),
                )
            raise

    mark_guard(dependency, (resource, action))
    dependency.__name__ = f"guard_{resource}_{action}"
    return Depends(dependency, scope="function")
