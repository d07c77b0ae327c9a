"""Portal pages of identity: sign-in, sign-out and multi-factor enrolment."""

from typing import Annotated

import segno
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from ctcp.core.config import SettingsDep
from ctcp.core.db import DatabaseDep
from ctcp.core.errors import TooManyRequestsError, UnauthorizedError
from ctcp.identity import mfa, service
from ctcp.identity.dependencies import (
    HasherDep,
    RequestContextDep,
    actor_context,
    set_device_cookie,
    set_session_cookie,
)
from ctcp.web.paths import PREFIX, local_path
from ctcp.web.portal import AnonymousForm, SignedInBeforeMfa

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(
    portal: AnonymousForm,
    next_path: Annotated[str | None, Query(alias="next", max_length=500)] = None,
    expired: Annotated[bool, Query()] = False,
) -> Response:
    message = (
        portal.gettext("Your session has expired. Sign in again to continue.") if expired else None
    )
    return await portal.render(
        "identity/sign_in.html",
        next_path=local_path(next_path),
        email="",
        message=message,
        need_code=False,
        errors={},
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(
    portal: AnonymousForm,
    database: DatabaseDep,
    settings: SettingsDep,
    hasher: HasherDep,
    context: RequestContextDep,
) -> Response:
    """The same sign-in as the API: throttled per account, audited, TOTP once enrolled."""
    email = portal.field("email")[:254]
    next_path = local_path(portal.field("next"))
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = portal.gettext("Enter your e-mail address.")
    if not portal.field("password"):
        errors["password"] = portal.gettext("Enter your password.")
    code = portal.field("otp").replace(" ", "") or None
    if not errors:
        try:
            signed_in = await service.sign_in(
                database,
                email=email,
                password=portal.field("password")[:1024],
                otp=code,
                previous_token=portal.request.cookies.get(settings.session_cookie_name),
                device_cookie=portal.request.cookies.get(settings.device_cookie_name),
                hasher=hasher,
                settings=settings,
                context=context,
            )
        except TooManyRequestsError as error:
            seconds = int(error.headers.get("Retry-After", "60"))
            minutes = max(1, (seconds + 59) // 60)
            message = portal.translations.ngettext(
                "Too many failed attempts for this account. Try again in %(num)d minute.",
                "Too many failed attempts for this account. Try again in %(num)d minutes.",
                minutes,
            ) % {"num": minutes}
            response = await portal.render(
                "identity/sign_in.html",
                status=429,
                next_path=next_path,
                email=email,
                message=None,
                need_code=False,
                errors={"_": message},
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        except UnauthorizedError as error:
            need_code = bool(error.extra.get("mfa_required"))
            errors["_" if not need_code else "otp"] = (
                portal.gettext("Enter the six-digit code from your authenticator app.")
                if need_code
                else portal.gettext("The e-mail address or the password is not correct.")
            )
            return await portal.render(
                "identity/sign_in.html",
                status=401,
                next_path=next_path,
                email=email,
                message=None,
                need_code=need_code,
                errors=errors,
            )
        roles = signed_in.account.roles
        must_enrol = bool(roles & settings.mfa_required_roles) and (
            signed_in.account.user.mfa_enabled_at is None
        )
        redirect = RedirectResponse(f"{PREFIX}/mfa" if must_enrol else next_path, status_code=303)
        set_session_cookie(redirect, portal.request, signed_in.token, settings)
        set_device_cookie(redirect, portal.request, signed_in.device_cookie, settings)
        return redirect
    return await portal.render(
        "identity/sign_in.html",
        status=422,
        next_path=next_path,
        email=email,
        message=None,
        need_code=False,
        errors=errors,
    )


@router.post("/sign-out")
async def sign_out(
    portal: SignedInBeforeMfa, settings: SettingsDep, context: RequestContextDep
) -> Response:
    await service.sign_out(
        portal.session,
        principal=portal.principal,
        context=actor_context(context, portal.principal),
    )
    response = portal.redirect(f"{PREFIX}/sign-in", notice=portal.gettext("You have signed out."))
    response.delete_cookie(settings.session_cookie_name, path="/")
    return response


@router.get("/mfa", response_class=HTMLResponse)
async def mfa_page(portal: SignedInBeforeMfa, settings: SettingsDep) -> Response:
    """Enrolment; a started one (after a mistyped code, say) is shown again to finish."""
    user = portal.principal.user
    required = bool(portal.principal.roles & settings.mfa_required_roles)
    enrolment = None
    if user.mfa_enabled_at is None and user.totp_secret_encrypted:
        secret = mfa.decrypt_secret(user.totp_secret_encrypted, settings.secret())
        if secret is not None:
            uri = mfa.provisioning_uri(secret, email=user.email, issuer=settings.mfa_issuer)
            enrolment = {"secret": secret, "qr": qr_svg(uri)}
    return await portal.render(
        "identity/mfa.html",
        enabled=user.mfa_enabled_at is not None,
        required=required,
        enrolment=enrolment,
        recovery_codes=None,
        errors={},
    )


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code (segno), with no script and no style."""
    code = segno.make(uri, error="m")
    svg = code.svg_inline(scale=4, border=2, dark="#000", light="#fff", omitsize=False)
    return Markup(svg)  # noqa: S704 - generated by segno from our own URI


@router.post("/mfa/start", response_class=HTMLResponse)
async def mfa_start(
    portal: SignedInBeforeMfa, settings: SettingsDep, context: RequestContextDep
) -> Response:
    """A new secret, shown as a QR code and as text, pending until a first code confirms it."""
    secret, uri = await service.begin_mfa_enrolment(
        portal.session,
        principal=portal.principal,
        settings=settings,
        context=actor_context(context, portal.principal),
    )
    return await portal.render(
        "identity/mfa.html",
        enabled=False,
        required=bool(portal.principal.roles & settings.mfa_required_roles),
        enrolment={"secret": secret, "qr": qr_svg(uri)},
        recovery_codes=None,
        errors={},
    )


@router.post("/mfa/confirm", response_class=HTMLResponse)
async def mfa_confirm(
    portal: SignedInBeforeMfa, settings: SettingsDep, context: RequestContextDep
) -> Response:
    """Enable TOTP with a first code; the recovery codes are shown this once."""
    codes = await service.confirm_mfa_enrolment(
        portal.session,
        principal=portal.principal,
        otp=portal.field("otp").replace(" ", "")[:16],
        settings=settings,
        context=actor_context(context, portal.principal),
    )
    return await portal.render(
        "identity/mfa.html",
        enabled=True,
        required=bool(portal.principal.roles & settings.mfa_required_roles),
        enrolment=None,
        recovery_codes=codes,
        errors={},
    )
