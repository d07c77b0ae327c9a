"""Redirects inside the portal, with a one-time notice shown on the page they lead to.

The notice travels in a short-lived cookie signed with the platform's secret, so no
other site can make the portal say something.
"""

import base64
import hashlib
import hmac
import json

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from ctcp.core.config import Settings
from ctcp.web.paths import PREFIX, local_path

NOTICE_COOKIE = "ctcp_notice"


def _mac(request: Request, value: bytes) -> str:
    settings: Settings = request.app.state.settings
    digest = hmac.new(settings.secret(), b"notice:" + value, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redirect(request: Request, url: str, notice: str | None = None) -> RedirectResponse:
    """303 to a page of the portal, with a one-time notice shown there."""
    response = RedirectResponse(local_path(url), status_code=303)
    if notice:
        payload = base64.urlsafe_b64encode(json.dumps(notice).encode()).decode()
        response.set_cookie(
            NOTICE_COOKIE,
            f"{payload}.{_mac(request, payload.encode())}",
            max_age=120,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path=PREFIX,
        )
    return response


def notice_of(request: Request) -> str | None:
    """The notice this request carries, if its signature holds."""
    raw = request.cookies.get(NOTICE_COOKIE, "")
    payload, _, signature = raw.rpartition(".")
    if not payload or not hmac.compare_digest(
        signature.encode(), _mac(request, payload.encode()).encode()
    ):
        return None
    try:
        text = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except ValueError:
        return None
    return text if isinstance(text, str) else None


def forget_notice(response: Response) -> None:
    """The notice is shown once: the page that shows it deletes the cookie."""
    response.delete_cookie(NOTICE_COOKIE, path=PREFIX)
