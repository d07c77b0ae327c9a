"""Authenticate a request: a bearer token (API clients) or the session cookie (people)."""

from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.authn.subject import Subject, remember
from ctcp.authz.oauth_scopes import CLIENT_ROLE
from ctcp.core.db import SessionDep
from ctcp.core.routes import mark_guard
from ctcp.identity.dependencies import (
    audit_context_of,
    check_csrf,
    check_enrolment,
    session_principal,
)
from ctcp.identity.service import Principal
from ctcp.oauth.bearer import authenticate_bearer, bearer_token


async def person(
    request: Request,
    session: AsyncSession,
    *,
    require_enrolment: bool = True,
    form_csrf_token: str | None = None,
) -> tuple[Principal, Subject]:
    """The person behind the session cookie (CSRF and the MFA gate checked; 401/403):
    their session, and the subject that acts for them."""
    principal = await session_principal(request, session)
    subject = Subject.of_person(principal, audit_context_of(request))
    # Remembered before the checks below, so their error page still shows who is signed in.
    remember(request, subject)
    check_csrf(request, session, subject.audit, principal, form_csrf_token)
    if require_enrolment:
        check_enrolment(request, session, subject.audit, principal)
    return principal, subject


async def subject_of(
    request: Request,
    session: AsyncSession,
    *,
    sessions_only: bool = False,
    form_csrf_token: str | None = None,
) -> Subject:
    """The caller: an API client by its bearer token, else the person by the session.

    Portal pages accept sessions only, with the CSRF token of their form.
    """
    token = None if sessions_only else bearer_token(request)
    if token is None:
        _, subject = await person(request, session, form_csrf_token=form_csrf_token)
        return subject
    client = await authenticate_bearer(request, session, token)
    client_subject = Subject(
        user_id=None,
        client_id=client.client_id,
        organization=client.organization,
        roles=frozenset({CLIENT_ROLE}),
        audit=audit_context_of(request).as_client(client.client_id, client.organization.code),
        oauth_scopes=client.scopes,
    )
    remember(request, client_subject)
    return client_subject


async def _signed_in(request: Request, session: SessionDep) -> Principal:
    principal, _ = await person(request, session)
    return principal


async def _signed_in_before_mfa(request: Request, session: SessionDep) -> Principal:
    principal, _ = await person(request, session, require_enrolment=False)
    return principal


# Self-service routes (me, MFA, sign-out) are guarded by authentication alone.
mark_guard(_signed_in, ("self", "any"))
mark_guard(_signed_in_before_mfa, ("self", "any"))

PrincipalDep = Annotated[Principal, Depends(_signed_in)]
PrincipalBeforeMfaDep = Annotated[Principal, Depends(_signed_in_before_mfa)]
