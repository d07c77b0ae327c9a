"""Errors on portal pages: HTML pages (404, 403, 409, 422, 429, 500, 503) with no internals.

The API's problem handlers stay in charge (they log, audit and choose the status); for a
path under the portal their answer is re-rendered as a page in the reader's language,
and a missing or expired session becomes a redirect to the sign-in page.
"""

from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.authn.subject import current
from ctcp.core.config import Settings
from ctcp.core.errors import DomainError
from ctcp.identity import tokens
from ctcp.web import i18n
from ctcp.web.paths import PREFIX, sign_in_url
from ctcp.web.portal import Portal

Handler = Any
KEPT_HEADERS = ("retry-after", "x-request-id", "cache-control", "content-security-policy")


def _is_portal(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def _field_errors(exc: BaseException) -> list[str]:
    if isinstance(exc, DomainError):
        return [str(error.get("msg", "")) for error in exc.extra.get("errors", [])]
    if isinstance(exc, RequestValidationError):
        return [
            f"{'.'.join(str(part) for part in error.get('loc', [])[1:])}: {error.get('msg', '')}"
            for error in exc.errors()
        ]
    return []


async def render_error(request: Request, status: int, exc: BaseException) -> HTMLResponse:
    """The error page; it reads nothing from the database (which may be what failed)."""
    subject = current(request)
    principal = subject.principal if subject is not None else None
    settings: Settings = request.app.state.settings
    portal = Portal(
        request=request,
        # No query runs for an error page: organization names are not needed.
        session=cast(AsyncSession, None),
        locale=i18n.negotiate(request),
        subject=subject,
        principal=principal,
        # The page's sign-out form must work from an error page too.
        csrf_token=(
            tokens.csrf_token_for(principal.session_token, settings.secret()) if principal else ""
        ),
        _names={},
    )
    detail = exc.detail if isinstance(exc, DomainError) and status < 500 else None
    return await portal.render(
        "error.html", status=status, status_code=status, detail=detail, errors=_field_errors(exc)
    )


def _portal_answer(original: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        response: Response = await original(request, exc)
        if not _is_portal(request):
            return response
        status = response.status_code
        if status == 401:
            expired = isinstance(exc, DomainError) and bool(exc.extra.get("session_expired"))
            target = request.url.path if request.method == "GET" else PREFIX
            if request.url.query and request.method == "GET":
                target += "?" + request.url.query
            return RedirectResponse(sign_in_url(target, expired=expired), status_code=303)
        if isinstance(exc, DomainError) and exc.extra.get("mfa_enrollment_required"):
            return RedirectResponse(f"{PREFIX}/mfa", status_code=303)
        page = await render_error(request, status, exc)
        for name in KEPT_HEADERS:
            if name in response.headers:
                page.headers[name] = response.headers[name]
        return page

    return handler


def install_portal_error_pages(app: FastAPI) -> None:
    """Wrap every installed error handler so portal paths answer in HTML."""
    for key, original in list(app.exception_handlers.items()):
        if key is WebSocketRequestValidationError:
            continue
        app.add_exception_handler(key, _portal_answer(original))
