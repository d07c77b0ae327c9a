"""The one authenticated subject of a request, and where the request remembers it."""

import uuid
from dataclasses import dataclass

from fastapi import Request

from ctcp.audit.service import AuditContext
from ctcp.identity.service import Principal
from ctcp.organizations.models import Organization


@dataclass(frozen=True)
class Subject:
    """Who acts: a signed-in person, or an API client narrowed by its token's scopes."""

    user_id: uuid.UUID | None
    client_id: str | None
    organization: Organization
    roles: frozenset[str]
    audit: AuditContext
    oauth_scopes: frozenset[str] | None = None  # None for a person
    principal: Principal | None = None  # the person's session; None for a client

    @classmethod
    def of_person(cls, principal: Principal, context: AuditContext) -> "Subject":
        return cls(
            user_id=principal.user.id,
            client_id=None,
            organization=principal.organization,
            roles=principal.roles,
            audit=context.as_user(principal.user.id, principal.organization.code),
            principal=principal,
        )


def remember(request: Request, subject: Subject) -> None:
    """Keep the subject for what runs after the route: the error page, the error's audit."""
    request.state.subject = subject


def current(request: Request) -> Subject | None:
    """The subject authenticated so far in this request, if any."""
    subject: Subject | None = getattr(request.state, "subject", None)
    return subject
