"""OAuth and API-client payloads."""

import uuid
from datetime import datetime

from pydantic import Field

from ctcp.authz.oauth_scopes import OAuthScope
from ctcp.core.schemas import RequestModel, ResponseModel
from ctcp.identity.schemas import OrganizationSummary
from ctcp.oauth.models import ApiClient
from ctcp.organizations.models import Organization


class ApiClientCreate(RequestModel):
    organization_id: uuid.UUID
    name: str = Field(min_length=2, max_length=200)
    scopes: list[OAuthScope] = Field(min_length=1, max_length=len(OAuthScope))


class ApiClientRead(ResponseModel):
    id: uuid.UUID
    client_id: str
    name: str
    organization: OrganizationSummary
    scopes: list[str]
    active: bool
    created_at: datetime
    secret_rotated_at: datetime | None
    disabled_at: datetime | None

    @classmethod
    def of(cls, client: ApiClient, organization: Organization) -> "ApiClientRead":
        return cls(
            id=client.id,
            client_id=client.client_id,
            name=client.name,
            organization=OrganizationSummary(
                id=organization.id,
                code=organization.code,
                kind=organization.kind,
                name=organization.name_en,
            ),
            scopes=client.scopes.split(),
            active=client.active,
            created_at=client.created_at,
            secret_rotated_at=client.secret_rotated_at,
            disabled_at=client.disabled_at,
        )


class ApiClientIssued(ApiClientRead):
    """A client with its secret: shown in this answer only, never again."""

    client_secret: str


class ClientSecret(ResponseModel):
    client_id: str
    client_secret: str


class TokenResponse(ResponseModel):
    """RFC 6749 §5.1."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the RFC 6750 token type)
    expires_in: int
    scope: str


class OAuthError(ResponseModel):
    """RFC 6749 §5.2."""

    error: str
    error_description: str | None = None


class Introspection(ResponseModel):
    """RFC 7662 §2.2; an inactive token tells nothing but `active: false`."""

    active: bool
    client_id: str | None = None
    scope: str | None = None
    token_type: str | None = None
    exp: int | None = None
    iat: int | None = None
    sub: str | None = None
    organization: str | None = None
