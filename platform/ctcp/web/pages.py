"""The portal's own pages: the dashboard, the language switch, static files."""

from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from ctcp.core.routes import PUBLIC
from ctcp.web import i18n
from ctcp.web.errors import install_portal_error_pages
from ctcp.web.paths import PREFIX, local_path

STATIC_DIR = i18n.TRANSLATIONS_DIR.parent / "static"
router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/language/{code}", dependencies=[PUBLIC])
async def choose_language(
    code: str, request: Request, next_path: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """Remember the chosen language (a preference cookie, nothing stored on the server)."""
    response = RedirectResponse(local_path(next_path), status_code=303)
    if code in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANGUAGE_COOKIE,
            code,
            max_age=365 * 24 * 3600,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


def install_portal(app: FastAPI, routers: list[APIRouter]) -> None:
    """Mount the portal: its pages, static files and HTML error pages."""
    app.include_router(router)
    for feature_router in routers:
        app.include_router(feature_router)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC_DIR), name="portal-static")
    install_portal_error_pages(app)
