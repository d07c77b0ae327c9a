"""Sign-in, sign-out, the current user, password change and MFA enrolment."""

from fastapi import APIRouter, Request, Response, status

from ctcp.authn.service import PrincipalBeforeMfaDep, PrincipalDep
from ctcp.core.config import SettingsDep
from ctcp.core.db import DatabaseDep, SessionDep
from ctcp.core.routes import PUBLIC
from ctcp.core.schemas import problem_responses
from ctcp.identity import service, tokens
from ctcp.identity.dependencies import (
    HasherDep,
    RequestContextDep,
    actor_context,
    set_device_cookie,
    set_session_cookie,
)
from ctcp.identity.schemas import (
    CsrfToken,
    MeRead,
    MfaConfirmRequest,
    MfaEnrolment,
    PasswordChangeRequest,
    RecoveryCodes,
    SignInRequest,
    SignInResponse,
)
from ctcp.identity.service import Account, Principal

router = APIRouter(prefix="/api/v1", tags=["session"])


def _account(principal: Principal) -> Account:
    return Account(principal.user, principal.organization, principal.roles)


@router.post(
    "/session",
    response_model=SignInResponse,
    summary="Sign in",
    responses=problem_responses(401, 422, 429),
    dependencies=[PUBLIC],
)
async def sign_in(
    body: SignInRequest,
    request: Request,
    response: Response,
    database: DatabaseDep,
    settings: SettingsDep,
    hasher: HasherDep,
    context: RequestContextDep,
) -> SignInResponse:
    """Open a session with e-mail, password and, once enrolled, a TOTP or recovery code."""
    signed_in = await service.sign_in(
        database,
        email=body.email,
        password=body.password,
        otp=body.otp,
        previous_token=request.cookies.get(settings.session_cookie_name),
        device_cookie=request.cookies.get(settings.device_cookie_name),
        hasher=hasher,
        settings=settings,
        context=context,
    )
    set_session_cookie(response, request, signed_in.token, settings)
    set_device_cookie(response, request, signed_in.device_cookie, settings)
    return SignInResponse(
        user=MeRead.of(signed_in.account),
        csrf_token=tokens.csrf_token_for(signed_in.token, settings.secret()),
    )


@router.delete(
    "/session",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out",
    responses=problem_responses(401, 403, 422),
)
async def sign_out(
    principal: PrincipalBeforeMfaDep,
    session: SessionDep,
    settings: SettingsDep,
    context: RequestContextDep,
) -> Response:
    """End the current session on the server."""
    await service.sign_out(session, principal=principal, context=actor_context(context, principal))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(settings.session_cookie_name, path="/")
    return response


@router.get(
    "/me",
    response_model=MeRead,
    summary="The signed-in user",
    responses=problem_responses(401, 403),
)
async def me(principal: PrincipalBeforeMfaDep) -> MeRead:
    return MeRead.of(_account(principal))


@router.post(
    "/me/password",
    response_model=CsrfToken,
    summary="Change my password",
    responses=problem_responses(401, 403, 422),
)
async def change_password(
    body: PasswordChangeRequest,
    request: Request,
    response: Response,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    hasher: HasherDep,
    context: RequestContextDep,
) -> CsrfToken:
    """Change the password: every session ends; this browser gets a new one."""
    token = await service.change_password(
        session,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
        hasher=hasher,
        settings=settings,
        context=actor_context(context, principal),
    )
    set_session_cookie(response, request, token, settings)
    return CsrfToken(csrf_token=tokens.csrf_token_for(token, settings.secret()))


@router.post(
    "/me/mfa",
    response_model=MfaEnrolment,
    status_code=status.HTTP_201_CREATED,
    summary="Start TOTP enrolment",
    responses=problem_responses(401, 403, 409),
)
async def begin_mfa(
    principal: PrincipalBeforeMfaDep,
    session: SessionDep,
    settings: SettingsDep,
    context: RequestContextDep,
) -> MfaEnrolment:
    """A new TOTP secret and its otpauth URI, pending until confirmed with a first code."""
    secret, uri = await service.begin_mfa_enrolment(
        session, principal=principal, settings=settings, context=actor_context(context, principal)
    )
    return MfaEnrolment(secret=secret, otpauth_uri=uri)


@router.post(
    "/me/mfa/confirm",
    response_model=RecoveryCodes,
    summary="Confirm TOTP enrolment",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def confirm_mfa(
    body: MfaConfirmRequest,
    principal: PrincipalBeforeMfaDep,
    session: SessionDep,
    settings: SettingsDep,
    context: RequestContextDep,
) -> RecoveryCodes:
    """Enable TOTP with a first code; returns one-time recovery codes, shown this once."""
    codes = await service.confirm_mfa_enrolment(
        session,
        principal=principal,
        otp=body.otp,
        settings=settings,
        context=actor_context(context, principal),
    )
    return RecoveryCodes(recovery_codes=codes)
