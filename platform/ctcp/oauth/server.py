"""Authlib's authorization server, on Starlette requests (Authlib ships no FastAPI server).

Authlib is synchronous, so it never touches the database here: the endpoint loads the
client (and, to revoke or introspect, the token) asynchronously first, hands Authlib an
`Exchange` that already holds them, and afterwards writes what Authlib decided (a token
to save, a token to revoke) in the request's own transaction.
"""

import base64
import binascii
import hmac
import re
import secrets
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientCredentialsGrant,
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from ctcp.authz.oauth_scopes import OAuthScope
from ctcp.core.clock import clock
from ctcp.identity.tokens import token_hash
from ctcp.oauth.models import AccessToken, ApiClient
from ctcp.organizations.models import Organization

CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
# Recognisable prefixes, so secret scanners can find a leaked credential.
CLIENT_SECRET_PREFIX = "ctcp_cs_"  # noqa: S105
ACCESS_TOKEN_PREFIX = "ctcp_at_"  # noqa: S105
# Parameters RFC 6749 §3.2 forbids sending twice.
PLAUSIBLE_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,64}")
SINGLE_PARAMETERS = ("grant_type", "scope", "client_id", "client_secret", "token")


def new_client_secret() -> str:
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)


def _new_access_token(**_: Any) -> str:
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def normalized_scope(scopes: list[str] | set[str] | frozenset[str]) -> str:
    return " ".join(sorted(set(scopes)))


@dataclass
class ClientRecord(ClientMixin):  # type: ignore[misc]
    """What Authlib sees of an API client, loaded before Authlib runs."""

    client: ApiClient
    organization: Organization

    @property
    def allowed_scopes(self) -> frozenset[str]:
        return frozenset(self.client.scopes.split())

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """All of the client's scopes when none is asked for; a subset, never more."""
        if not scope:
            return normalized_scope(self.allowed_scopes)
        requested = set(scope_to_list(scope) or [])
        if not requested or not requested <= self.allowed_scopes:
            return None  # Authlib answers invalid_scope
        return normalized_scope(requested)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        # Bytes: compare_digest refuses non-ASCII str.
        return bool(self.client.active) and hmac.compare_digest(
            token_hash(client_secret).encode(), self.client.secret_hash.encode()
        )

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in CLIENT_AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return bool(grant_type == ClientCredentialsGrant.GRANT_TYPE)


@dataclass
class TokenRecord(TokenMixin):  # type: ignore[misc]
    """What Authlib sees of a stored access token, for revocation and introspection."""

    token: AccessToken
    client: ApiClient
    organization: Organization

    def check_client(self, client: ClientRecord) -> bool:
        return self.token.api_client_id == client.client.id

    def get_scope(self) -> str:
        return self.token.scopes

    def get_expires_in(self) -> int:
        return int((self.token.expires_at - self.token.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return clock.now() >= self.token.expires_at

    def is_revoked(self) -> bool:
        return self.token.revoked_at is not None or not self.client.active

    def get_client(self) -> ClientRecord:
        return ClientRecord(self.client, self.organization)

    def get_user(self) -> None:
        return None


def introspection_of(record: TokenRecord | None) -> dict[str, Any]:
    """RFC 7662 §2.2: inactive tells nothing more; active names client, scope and times."""
    if record is None or record.is_expired() or record.is_revoked():
        return {"active": False}
    return {
        "active": True,
        "client_id": record.client.client_id,
        "scope": record.token.scopes,
        "token_type": "Bearer",
        "exp": int(record.token.expires_at.timestamp()),
        "iat": int(record.token.issued_at.timestamp()),
        "sub": record.client.client_id,
        "organization": record.organization.code,
    }


class _FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in fields:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):  # type: ignore[misc]
    """A Starlette request's method, URL, headers and form, as Authlib reads them."""

    def __init__(
        self, method: str, uri: str, headers: Mapping[str, str], fields: list[tuple[str, str]]
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _FormPayload(fields)

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @property
    def args(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class ClaimedClient:
    """The client id a request names, from HTTP Basic or the form, before any check."""

    client_id: str | None
    basic: bool


def claimed_client(headers: Mapping[str, str], fields: list[tuple[str, str]]) -> ClaimedClient:
    """Who the caller says it is; a malformed Basic header is refused as invalid_client."""
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise InvalidClientError(
                status_code=401, description="Malformed HTTP Basic credentials."
            ) from error
        username, colon, _ = decoded.partition(":")
        if not colon or not username:
            raise InvalidClientError(
                status_code=401, description="Malformed HTTP Basic credentials."
            )
        if any(key == "client_secret" for key, _ in fields):
            # RFC 6749 §2.3.1: one authentication method per request.
            raise InvalidRequestError("Use either HTTP Basic or client_secret, not both.")
        return ClaimedClient(_plausible(unquote(username)), basic=True)
    form_ids = [value for key, value in fields if key == "client_id"]
    return ClaimedClient(_plausible(form_ids[0]) if form_ids else None, basic=False)


def _plausible(client_id: str) -> str:
    """A client id we issued is short printable ASCII; anything else is no client of ours
    (and must not reach the database: PostgreSQL refuses NUL in text)."""
    if not PLAUSIBLE_CLIENT_ID.fullmatch(client_id):
        raise InvalidClientError(status_code=401, description="Unknown client.")
    return client_id


def check_single_parameters(fields: list[tuple[str, str]]) -> None:
    seen: set[str] = set()
    for key, _ in fields:
        if key in SINGLE_PARAMETERS:
            if key in seen:
                raise InvalidRequestError(f"The '{key}' parameter is repeated.")
            seen.add(key)


class _ClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        exchange: Exchange = self.server.exchange
        return exchange.token_for(token_string)

    def revoke_token(self, token: TokenRecord, request: OAuth2Request) -> None:
        self.server.exchange.revoked = token


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenRecord | None:
        exchange: Exchange = self.server.exchange
        return exchange.token_for(token_string)

    def check_permission(
        self, token: TokenRecord, client: ClientRecord, request: OAuth2Request
    ) -> bool:
        # A client introspects only its own tokens (administrators use their session).
        return bool(token.check_client(client))

    def create_introspection_payload(self, token: TokenRecord | None) -> dict[str, Any]:
        return introspection_of(token)


@dataclass
class Exchange:
    """One token-endpoint request: what was loaded for Authlib, and what it decided."""

    client: ClientRecord | None = None
    token: TokenRecord | None = None
    issued: dict[str, Any] | None = None
    revoked: TokenRecord | None = None

    def token_for(self, token_string: str) -> TokenRecord | None:
        if self.token is not None and hmac.compare_digest(
            token_hash(token_string).encode(), self.token.token.token_hash.encode()
        ):
            return self.token
        return None


Response = tuple[int, dict[str, Any], list[tuple[str, str]]]


class CtcpAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Client credentials, revocation (RFC 7009) and introspection (RFC 7662), per request."""

    def __init__(self, exchange: Exchange, *, expires_in: int) -> None:
        super().__init__(scopes_supported=[scope.value for scope in OAuthScope])
        self.exchange = exchange
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=_new_access_token, expires_generator=expires_in
            ),
        )
        self.register_grant(_ClientCredentialsGrant)
        self.register_endpoint(_Revocation)
        self.register_endpoint(_Introspection)

    def query_client(self, client_id: str) -> ClientRecord | None:
        loaded = self.exchange.client
        if loaded is None or not loaded.client.active or loaded.client.client_id != client_id:
            return None
        return loaded

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.exchange.issued = token  # saved by the endpoint, in the request's transaction

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals: the authenticated client is on the request already."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # built by the endpoint from the Starlette request

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        return status, body, list(headers)

    def error_response(self, error: OAuth2Error) -> Response:
        response: Response = self.handle_error_response(None, error)
        return response
