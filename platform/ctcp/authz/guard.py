"""Guards: every route declares one; it returns who acts, for whom, and with which scope."""

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authn.service import subject_of
from ctcp.authn.subject import Subject
from ctcp.authz.oauth_scopes import REALM, OAuthScope, scope_role
from ctcp.authz.policy import PolicyWatcher, load_engine
from ctcp.authz.scopes import DataScope
from ctcp.core.db import SessionDep, on_failure
from ctcp.core.errors import DomainError, ForbiddenError
from ctcp.core.routes import mark_guard
from ctcp.organizations.models import Organization


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


def decide(request: Request, subject: Subject, resource: str, action: str) -> frozenset[DataScope]:
    """The one authorization decision: the data scopes Casbin grants `subject` for
    (resource, action) — its roles' scopes, narrowed to an API client's OAuth scopes.
    Empty means no. Guards, further grants and the portal's links all ask here."""
    engine = policy_of(request).engine
    organization = subject.organization.code
    scopes = engine.scopes(subject.roles, organization, resource, action)
    if subject.oauth_scopes is None or not scopes:
        return scopes
    roles = frozenset(scope_role(scope) for scope in subject.oauth_scopes)
    return scopes & engine.scopes(roles, organization, resource, action)


async def decide_stored(
    session: AsyncSession, roles: frozenset[str], organization: str, resource: str, action: str
) -> frozenset[DataScope]:
    """`decide` for a person acting outside a request (the command line, e.g.
    `ctcp contacts import --as`), from the policy stored in the database."""
    engine = await load_engine(session)
    return engine.scopes(roles, organization, resource, action)


def _refusal(request: Request, subject: Subject, resource: str, action: str) -> ForbiddenError:
    if subject.oauth_scopes is None:
        return ForbiddenError(f"Your roles do not allow {action} on {resource}.")
    # RFC 6750 §3.1: name the scope that would do, if any would.
    engine = policy_of(request).engine
    needed = [
        scope.value
        for scope in OAuthScope
        if engine.scopes({scope_role(scope.value)}, subject.organization.code, resource, action)
    ]
    challenge = f'{REALM}, error="insufficient_scope"'
    if needed:
        challenge += f', scope="{" ".join(needed)}"'
    return ForbiddenError(
        f"This client's scopes do not allow {action} on {resource}.",
        extra={"error": "insufficient_scope"},
        headers={"WWW-Authenticate": challenge},
    )


async def authorize(
    request: Request,
    session: AsyncSession,
    resource: str,
    action: str,
    *,
    sessions_only: bool = False,
    form_csrf_token: str | None = None,
) -> Access:
    """Authenticate the caller, then `admit` them to (resource, action)."""
    subject = await subject_of(
        request, session, sessions_only=sessions_only, form_csrf_token=form_csrf_token
    )
    return admit(request, session, subject, resource, action)


def admit(
    request: Request, session: AsyncSession, subject: Subject, resource: str, action: str
) -> Access:
    """403 unless a role of `subject` may do `action` on `resource`; the grant otherwise.

    Refusals raised later in the route (404 outside the scope, 403 from a rule) are
    audited too, when the request's transaction rolls back, and survive it.
    """
    actor = subject.audit
    scopes = decide(request, subject, resource, action)
    object_id = next(iter(request.path_params.values()), None)
    if not scopes:
        audit.record(
            session,
            actor,
            f"{resource}.{action}",
            outcome=Outcome.DENIED,
            object_type=resource,
            object_id=object_id,
            details=_denial_details(
                request, "role" if subject.oauth_scopes is None else "scope", 403
            ),
        )
        raise _refusal(request, subject, resource, action)

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


def guard(resource: str, action: str) -> Any:
    """A dependency that `authorize`s the caller for (resource, action); on every route."""

    async def dependency(request: Request, session: SessionDep) -> Access:
        return await authorize(request, session, resource, action)

    mark_guard(dependency, (resource, action))
    dependency.__name__ = f"guard_{resource}_{action}"
    return Depends(dependency)


def granted(request: Request, access: Access, resource: str, action: str) -> Access | None:
    """The caller's grant for a further (resource, action), or None: one Casbin decision."""
    scopes = decide(request, access.subject, resource, action)
    return Access(access.subject, resource, action, scopes) if scopes else None


def require(request: Request, access: Access, resource: str, action: str) -> Access:
    """A further grant a route needs beyond its guard (403, audited, when missing)."""
    further = granted(request, access, resource, action)
    if further is None:
        raise _refusal(request, access.subject, resource, action)
    return further
