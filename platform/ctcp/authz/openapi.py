"""The OpenAPI document's security: cookie sessions, and OAuth2 client credentials where a
scope reaches the operation (read from the reviewed policy file Casbin's table is loaded
from)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from ctcp.authz.oauth_scopes import SCOPE_ROLE_PREFIX, OAuthScope
from ctcp.authz.policy import read_policy_file
from ctcp.core.routes import GUARD_MARK, dependency_calls, iter_api_routes

SCOPE_DESCRIPTIONS = {
    OAuthScope.PUBLICATIONS_READ: "Read consented publications (and their attachments)",
    OAuthScope.NEEDS_READ: "Read the technical-assistance needs States share",
    OAuthScope.REQUESTS_READ: "Read circulated assistance requests",
    OAuthScope.OFFERS_WRITE: "Post and read the organization's own offers",
}


def _problem(description: str) -> dict[str, Any]:
    """A documented error response whose body is RFC 9457 problem details."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {"application/problem+json": {"schema": schema}}}


TOO_MANY_REQUESTS = _problem("Too many requests: retry after the `Retry-After` header's seconds")
MALFORMED_BODY = _problem("The body could not be parsed (not JSON, or not the declared encoding)")
TOO_LARGE = _problem("The body is larger than the platform accepts")


VALIDATION_PROBLEM = {
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg"],
                        "properties": {
                            "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                            "msg": {"type": "string"},
                        },
                    },
                }
            },
        },
    ]
}


def _errors_as_problems(responses: dict[str, Any], *, oauth: bool) -> None:
    """Every error is RFC 9457 problem details, whatever FastAPI documents by default; the
    OAuth endpoints' RFC 6749 errors are plain JSON, beside the platform's own problems."""
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            name = "ValidationProblem" if status == "422" else "Problem"
            problem = {"schema": {"$ref": f"#/components/schemas/{name}"}}
            if oauth:
                response.setdefault("content", {})["application/problem+json"] = problem
            else:
                response["content"] = {"application/problem+json": problem}


def _scopes_by_grant() -> dict[tuple[str, str], list[str]]:
    grants: dict[tuple[str, str], list[str]] = {}
    for _, role, _, resource, action, _ in read_policy_file():
        if role.startswith(SCOPE_ROLE_PREFIX):
            scopes = grants.setdefault((resource, action), [])
            scope = role.removeprefix(SCOPE_ROLE_PREFIX)
            if scope not in scopes:
                scopes.append(scope)
    return grants


def install_openapi(app: FastAPI, *, cookie_name: str) -> None:
    """Declare the security schemes, and on each guarded operation the ones it accepts."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {})["securitySchemes"] = {
            "sessionCookie": {
                "type": "apiKey",
                "in": "cookie",
                "name": cookie_name,
                "description": "From POST /api/v1/session. Unsafe methods also send the "
                "X-CSRF-Token header it returned.",
            },
            "clientCredentials": {
                "type": "oauth2",
                "description": "Compact-entity systems: a bearer token from /oauth/token.",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": "/oauth/token",
                        "scopes": {str(k): v for k, v in SCOPE_DESCRIPTIONS.items()},
                    }
                },
            },
            "clientBasic": {
                "type": "http",
                "scheme": "basic",
                "description": "client_id and client_secret (or send them as form fields).",
            },
        }
        schema["components"].setdefault("schemas", {})["ValidationProblem"] = VALIDATION_PROBLEM
        for path, item in schema["paths"].items():
            for operation in item.values():
                if "requestBody" in operation:
                    operation["responses"].setdefault("400", MALFORMED_BODY)
                    operation["responses"].setdefault("413", TOO_LARGE)
                _errors_as_problems(operation["responses"], oauth=path.startswith("/oauth/"))
        grants = _scopes_by_grant()
        for route in iter_api_routes(app.routes):
            if not route.include_in_schema:
                continue
            labels = [
                getattr(call, GUARD_MARK)
                for call in dependency_calls(route)
                if hasattr(call, GUARD_MARK)
            ]
            if not labels:
                continue
            resource, action = labels[0]
            security: list[dict[str, list[str]]] = [{"sessionCookie": []}]
            if (resource, action) in grants:
                security.append({"clientCredentials": grants[(resource, action)]})
            path = schema["paths"].get(route.path, {})
            for method in route.methods or ():
                operation = path.get(method.lower())
                if operation is None:
                    continue
                operation["security"] = security
                if len(security) > 1:  # clients are rate limited
                    operation["responses"].setdefault("429", TOO_MANY_REQUESTS)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
