"""/docs: Swagger UI from the app's own files, under a CSP that allows only those."""

import re

import httpx

DEFAULT_CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'; object-src 'none'"
)
DOCS_CSP = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}
CONTENT_TYPES = {
    "js": ("text/javascript", "application/javascript"),
    "css": ("text/css",),
    "png": ("image/png",),
}


def _directives(policy: str) -> dict[str, str]:
    pairs = (directive.strip().split(" ", 1) for directive in policy.split(";"))
    return {name: value for name, value in pairs}


async def test_docs_page_runs_only_same_origin_files(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert _directives(response.headers["content-security-policy"]) == DOCS_CSP
    page = response.text
    assert re.findall(r"<script\b[^>]*>", page) == [
        '<script src="/docs/assets/swagger-ui-bundle.js">',
        '<script src="/docs/assets/init.js">',
    ]
    assert " style=" not in page and "<style" not in page
    assert 'data-openapi-url="/openapi.json"' in page
    assets = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(assets) == 4
    for url in assets:
        assert url.startswith("/docs/assets/"), url
        served = await client.get(url)
        assert served.status_code == 200, url
        media_type = served.headers["content-type"].split(";")[0]
        assert media_type in CONTENT_TYPES[url.rsplit(".", 1)[1]], (url, media_type)
        assert served.content


async def test_initialiser_starts_swagger_ui_from_the_page(client: httpx.AsyncClient) -> None:
    script = (await client.get("/docs/assets/init.js")).text
    assert "SwaggerUIBundle(" in script and "dataset.openapiUrl" in script
    assert "validatorUrl: null" in script  # the default would call an outside validator


async def test_only_the_pages_files_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/docs/assets/redoc.standalone.js", "/docs/assets/..%2Fcore.py", "/redoc"):
        assert (await client.get(path)).status_code == 404, path


async def test_other_responses_keep_the_default_policy(client: httpx.AsyncClient) -> None:
    for path in ("/openapi.json", "/docs/assets/init.js", "/portal/sign-in"):
        response = await client.get(path)
        assert response.headers["content-security-policy"] == DEFAULT_CSP, path
