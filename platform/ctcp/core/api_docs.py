"""The interactive API documentation at /docs, served whole by the app itself.

FastAPI's own page loads Swagger UI from a CDN (a closed network has none) and starts it
with an inline script; here Swagger UI's files come from the installed fastapi-offline
package and the initialiser is a file of ours, so the page's CSP allows only this origin.
"""

from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
_SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
# Exactly the files the page loads; nothing else of the package is served.
ASSETS = {
    "swagger-ui.css": _SWAGGER_UI / "swagger-ui.css",
    "swagger-ui-bundle.js": _SWAGGER_UI / "swagger-ui-bundle.js",
    "favicon.png": _SWAGGER_UI / "favicon.png",
    "init.js": Path(__file__).with_name("api_docs.js"),
}
# Swagger UI's stylesheet draws its icons as data: images; "Try it out" fetches this origin.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


async def docs_page(request: Request) -> HTMLResponse:
    """Swagger UI's page; init.js reads the OpenAPI document's URL from its container."""
    app: FastAPI = request.app
    root = escape(request.scope.get("root_path", "").rstrip("/"))
    assets = f"{root}{ASSETS_PATH}"
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(app.title)} - Swagger UI</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{root}{escape(app.openapi_url or "")}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})


async def docs_asset(request: Request) -> FileResponse:
    """One of the page's files, by name; any other name is not found."""
    path = ASSETS.get(request.path_params["name"])
    if path is None:
        raise HTTPException(404)
    return FileResponse(path)


def install_api_docs(app: FastAPI) -> None:
    """Serve /docs and its files (Starlette routes, outside the schema, like FastAPI's own)."""
    app.add_route(DOCS_PATH, docs_page, include_in_schema=False)
    app.add_route(f"{ASSETS_PATH}/{{name}}", docs_asset, include_in_schema=False)
