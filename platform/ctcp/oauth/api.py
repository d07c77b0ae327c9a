"""The OAuth endpoints: token (client credentials), revocation, introspection."""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from authlib.oauth2.rfc6749 import InsecureTransportError, InvalidRequestError, OAuth2Error
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.audit import service as audit
from ctcp.audit.service import AuditContext, Outcome
from ctcp.authz.guard import authorize
from ctcp.authz.oauth_scopes import OAuthScope
from ctcp.core.config import Settings
from ctcp.core.db import Database, SessionDep
from ctcp.core.rate_limits import RateLimiter
from ctcp.core.routes import PUBLIC
from ctcp.core.schemas import problem_responses
from ctcp.identity.dependencies import audit_context_of
from ctcp.oauth import service
from ctcp.oauth.bearer import address_limit, client_limit, record_refusal, too_many
from ctcp.oauth.schemas import Introspection, OAuthError, TokenResponse
from ctcp.oauth.server import (
    ClientRecord,
    CtcpAuthorizationServer,
    Exchange,
    Response,
    StarletteOAuth2Request,
    check_single_parameters,
    claimed_client,
    introspection_of,
)

router = APIRouter(prefix="/oauth", tags=["oauth"])

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_CLIENT_FIELDS = {
    "client_id": {"type": "string", "maxLength": 64},
    "client_secret": {"type": "string", "maxLength": 200},
}

_TOKEN_FIELDS = {
    "token": {"type": "string", "maxLength": 200},
    "token_type_hint": {"type": "string", "enum": ["access_token"]},
}


def _form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """OpenAPI for a form body, which the endpoint reads itself to answer RFC 6749 errors."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                FORM_MEDIA_TYPE: {
                    "schema": {
                        "type": "object",
                        "properties": properties | _CLIENT_FIELDS,
                        "required": required,
                    }
                }
            },
        },
        "security": [{"clientBasic": []}, {}],
    }


def _oauth_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    errors: dict[int | str, dict[str, Any]] = {
        status: {"model": OAuthError, "description": "An RFC 6749 error"} for status in statuses
    }
    return errors | problem_responses(429)


@dataclass
class _Call:
    """One OAuth request as read, counted and loaded, before Authlib decides."""

    server: CtcpAuthorizationServer
    exchange: Exchange
    request: StarletteOAuth2Request | None
    error: OAuth2Error | None
    claimed: str | None
    basic: bool
    fields: dict[str, str]
    context: AuditContext

    @property
    def client(self) -> ClientRecord | None:
        """The client Authlib authenticated (it sets it on the request), if any."""
        client: ClientRecord | None = self.request.client if self.request else None
        return client

    def decide(self, run: Callable[[StarletteOAuth2Request], Response]) -> Response:
        """Authlib's answer, or the RFC 6749 error the request already earned."""
        if self.error is not None or self.request is None:
            return self.server.error_response(self.error or InvalidRequestError())
        return run(self.request)


async def _read_form(request: Request) -> list[tuple[str, str]]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise InvalidRequestError(f"Send the parameters as {FORM_MEDIA_TYPE}.")
    form = await request.form()
    return [(key, value) for key, value in form.multi_items() if isinstance(value, str)]


async def _begin(request: Request, *, load_token: bool) -> _Call:
    """Read the form, count the call against its address and client, load what Authlib needs."""
    settings: Settings = request.app.state.settings
    database: Database = request.app.state.database
    limiter: RateLimiter = request.app.state.rate_limiter
    exchange = Exchange()
    server = CtcpAuthorizationServer(exchange, expires_in=settings.access_token_minutes * 60)
    context = audit_context_of(request)
    oauth_request: StarletteOAuth2Request | None = None
    error: OAuth2Error | None = None
    claimed = None
    fields: list[tuple[str, str]] = []
    try:
        fields = await _read_form(request)
        check_single_parameters(fields)
        claimed = claimed_client(request.headers, fields)
        oauth_request = StarletteOAuth2Request(
            request.method, str(request.url), request.headers, fields
        )
    except OAuth2Error as failure:
        error = failure
    client_id = claimed.client_id if claimed else None
    values = dict(fields)
    limits = [address_limit(settings, context)]
    if client_id:
        limits.append(client_limit(settings, client_id[:64]))
    refusal = await limiter.hit(database, limits)
    async with database.transaction() as loading:
        if refusal is not None:
            record_refusal(loading, context, refusal)
        else:
            if client_id and error is None:
                exchange.client = await service.client_by_client_id(loading, client_id)
            if load_token and values.get("token"):
                exchange.token = await service.token_record(loading, values["token"])
    if refusal is not None:
        raise too_many(refusal)
    return _Call(
        server,
        exchange,
        oauth_request,
        error,
        client_id,
        bool(claimed and claimed.basic),
        values,
        context,
    )


def _actor(call: _Call) -> AuditContext:
    client = call.client
    if client is None:
        return call.context
    return call.context.as_client(client.get_client_id(), client.organization.code)


def _record_failure(session: AsyncSession, call: _Call, action: str, result: Response) -> None:
    status, body, _ = result
    audit.record(
        session,
        _actor(call),
        action,
        outcome=Outcome.DENIED,
        details={
            "error": body.get("error"),
            "status": status,
            "claimed_client_id": (call.claimed or "")[:64] or None,
        },
    )


def _respond(result: Response) -> JSONResponse:
    status, body, headers = result
    return JSONResponse(body, status_code=status, headers=dict(headers))


@router.post(
    "/token",
    summary="Issue an access token (client credentials)",
    response_model=TokenResponse,
    responses=_oauth_errors(400, 401),
    dependencies=[PUBLIC],
    openapi_extra=_form_body(
        {
            "grant_type": {"type": "string", "enum": ["client_credentials"]},
            "scope": {
                "type": "string",
                "description": "Space-separated subset of the client's scopes: "
                + ", ".join(scope.value for scope in OAuthScope),
            },
        },
        ["grant_type"],
    ),
)
async def issue_token(request: Request, session: SessionDep) -> JSONResponse:
    """RFC 6749 §4.4. Authenticate with HTTP Basic or `client_id`/`client_secret` in the form.

    The token is opaque, lives `CTCP_ACCESS_TOKEN_MINUTES` (15 by default) and carries the
    scopes asked for (a subset of the client's; all of them when `scope` is left out).
    """
    call = await _begin(request, load_token=False)
    if call.error is None and not call.fields.get("grant_type"):
        call.error = InvalidRequestError("Missing 'grant_type'.")
    result = call.decide(call.server.create_token_response)
    issued, client = call.exchange.issued, call.client
    if result[0] == 200 and issued is not None and client is not None:
        await service.save_token(session, client=client, token=issued, context=_actor(call))
    else:
        _record_failure(session, call, "oauth.token", result)
    return _respond(result)


@router.post(
    "/revoke",
    summary="Revoke an access token (RFC 7009)",
    response_model=dict[str, Any],
    responses=_oauth_errors(400, 401),
    dependencies=[PUBLIC],
    openapi_extra=_form_body(_TOKEN_FIELDS, ["token"]),
)
async def revoke_token(request: Request, session: SessionDep) -> JSONResponse:
    """A client revokes one of its own tokens; refused from the next request on.

    As RFC 7009 says, an unknown or already dead token also answers 200.
    """
    call = await _begin(request, load_token=True)
    result = call.decide(partial(call.server.create_endpoint_response, "revocation"))
    revoked = call.exchange.revoked
    if result[0] == 200:
        if revoked is not None:
            await service.revoke_token(session, record=revoked, context=_actor(call))
    else:
        _record_failure(session, call, "oauth.revoke", result)
    return _respond(result)


@router.post(
    "/introspect",
    summary="Introspect an access token (RFC 7662)",
    response_model=Introspection,
    responses=_oauth_errors(400, 401) | problem_responses(403),
    dependencies=[PUBLIC],
    openapi_extra=_form_body(_TOKEN_FIELDS, ["token"])
    | {"security": [{"clientBasic": []}, {"sessionCookie": []}]},
)
async def introspect_token(request: Request, session: SessionDep) -> JSONResponse:
    """A client introspects its own tokens (authenticated as at the token endpoint); a
    platform administrator, signed in, introspects any token."""
    call = await _begin(request, load_token=True)
    settings: Settings = request.app.state.settings
    by_client = call.basic or "client_secret" in call.fields
    by_session = settings.session_cookie_name in request.cookies
    # Authlib's https check guards client credentials; a signed-in session has its own rules.
    parsed = call.error is None or isinstance(call.error, InsecureTransportError)
    if parsed and by_session and not by_client:
        access = await authorize(request, session, "api_client", "manage")
        payload = introspection_of(call.exchange.token)
        audit.record(
            session,
            access.audit,
            "oauth.introspect",
            object_type="access_token",
            object_id=call.exchange.token.token.id if call.exchange.token else None,
            details={"active": payload["active"]},
            read=True,
        )
        return JSONResponse(payload, headers={"Cache-Control": "no-store"})
    result = call.decide(partial(call.server.create_endpoint_response, "introspection"))
    if result[0] != 200:
        _record_failure(session, call, "oauth.introspect", result)
    return _respond(result)
