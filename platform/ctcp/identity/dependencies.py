"""Request-level identity: the session cookie's principal, CSRF, and the MFA-enrolment gate.

`ctcp.authn` turns the principal into the request's one `Subject`.
"""

from typing import Annotated, Literal

from fastapi import Depends, Request, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.core.clock import clock
from ctcp.core.config import Settings
from ctcp.core.errors import ForbiddenError, UnauthorizedError
from ctcp.core.http import UNSAFE_METHODS
from ctcp.identity import tokens
from ctcp.identity.passwords import PasswordHasher
from ctcp.identity.principal_cache import CachedPrincipal, PrincipalCache
from ctcp.identity.service import TOUCH_INTERVAL, Principal, resolve_session

CSRF_HEADER = "X-CSRF-Token"


async def get_hasher(request: Request) -> PasswordHasher:
    hasher: PasswordHasher = request.app.state.hasher
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(get_hasher)]


async def request_audit_context(request: Request) -> AuditContext:
    return audit_context_of(request)


RequestContextDep = Annotated[AuditContext, Depends(request_audit_context)]


def record_denial(
    session: AsyncSession,
    request: Request,
    context: AuditContext,
    action: str,
    reason: str,
    object_type: str | None = None,
    object_id: object | None = None,
) -> None:
    """Audit a refusal; written even though the request's transaction rolls back."""
    audit.record(
        session,
        context,
        action,
        outcome=Outcome.DENIED,
        object_type=object_type,
        object_id=object_id,
        details={"reason": reason, "method": request.method, "path": request.url.path},
    )


def _cache_of(request: Request) -> PrincipalCache:
    cache: PrincipalCache = request.app.state.principal_cache
    return cache


def _cached_principal(request: Request, token: str) -> Principal | None:
    """The session as read moments ago, while no grant changed and it cannot have expired."""
    entry = _cache_of(request).get(tokens.token_hash(token))
    if entry is None:
        return None
    now = clock.now()
    if now >= entry.value.expires_at or now - entry.confirmed_at >= TOUCH_INTERVAL:
        return None
    return entry.value


def _action_of(request: Request) -> str:
    return f"http.{request.method.lower()}"


def audit_context_of(request: Request) -> AuditContext:
    """Where a request comes from, for its audit events (no actor yet); built once."""
    context: AuditContext | None = getattr(request.state, "audit_context", None)
    if context is None:
        context = AuditContext(
            ip=request.client.host if request.client else None,
            user_agent=(request.headers.get("user-agent") or "")[:400] or None,
            request_id=getattr(request.state, "request_id", None),
        )
        request.state.audit_context = context
    return context


async def session_principal(request: Request, session: AsyncSession) -> Principal:
    """The person behind the session cookie (401, audited, without a live session).

    A plain function rather than a chain of dependencies: it runs on every request, and
    a session confirmed moments ago is taken from this process's cache.
    """
    settings: Settings = request.app.state.settings
    context = audit_context_of(request)
    token = request.cookies.get(settings.session_cookie_name)
    if not token:
        record_denial(session, request, context, _action_of(request), "no_credentials")
        raise UnauthorizedError("Sign in first.")
    principal = _cached_principal(request, token)
    if principal is not None:
        return principal
    cache = _cache_of(request)
    generation = cache.version  # read before the query: a change meanwhile wins
    principal, reason = await resolve_session(session, token=token, settings=settings)
    if principal is None:
        record_denial(session, request, context, _action_of(request), f"session_{reason}")
        expired = reason == "expired"
        detail = "Your session has expired; sign in again." if expired else "Sign in first."
        raise UnauthorizedError(detail, extra={"session_expired": expired})
    cache.put(
        tokens.token_hash(token), CachedPrincipal(principal, generation, confirmed_at=clock.now())
    )
    return principal


def check_csrf(
    request: Request,
    session: AsyncSession,
    actor: AuditContext,
    principal: Principal,
    form_csrf_token: str | None,
) -> None:
    """A state-changing request carries the session's CSRF token (403, audited): in the
    X-CSRF-Token header, or in a portal form's field."""
    if request.method not in UNSAFE_METHODS:
        return
    settings: Settings = request.app.state.settings
    candidate = request.headers.get(CSRF_HEADER) or form_csrf_token
    if not tokens.csrf_token_valid(candidate, principal.session_token, settings.secret()):
        record_denial(session, request, actor, _action_of(request), "csrf")
        raise ForbiddenError("A valid X-CSRF-Token header is required.")


def check_enrolment(
    request: Request, session: AsyncSession, actor: AuditContext, principal: Principal
) -> None:
    """A person whose role requires MFA is refused until enrolled (403, audited)."""
    settings: Settings = request.app.state.settings
    if principal.roles & settings.mfa_required_roles and principal.user.mfa_enabled_at is None:
        record_denial(session, request, actor, _action_of(request), "mfa_enrollment_required")
        raise ForbiddenError(
            "Your role requires multi-factor authentication: enrol first.",
            extra={"mfa_enrollment_required": True},
        )


def actor_context(context: AuditContext, principal: Principal) -> AuditContext:
    return context.as_user(principal.user.id, principal.organization.code)


def _secure(request: Request, settings: Settings) -> bool:
    """Secure over HTTPS, or as configured."""
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, token: str, settings: Settings
) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure over HTTPS (or as configured)."""
    _set_cookie(
        response,
        request,
        settings,
        name=settings.session_cookie_name,
        value=token,
        samesite="lax",
        max_age=settings.session_absolute_hours * 3600,
    )


def set_device_cookie(
    response: Response, request: Request, cookie: str, settings: Settings
) -> None:
    """The device cookie of a sign-in: kept across sign-outs, sent only to this site."""
    _set_cookie(
        response,
        request,
        settings,
        name=settings.device_cookie_name,
        value=cookie,
        samesite="strict",
        max_age=settings.device_cookie_days * 24 * 3600,
    )


def _set_cookie(
    response: Response,
    request: Request,
    settings: Settings,
    *,
    name: str,
    value: str,
    samesite: Literal["lax", "strict"],
    max_age: int,
) -> None:
    """An HttpOnly cookie for the whole site, Secure under the session cookie's rule."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite=samesite,
        secure=_secure(request, settings),
        path="/",
        max_age=max_age,
    )
