"""The kinds of object the change feed carries, each read through its own feature's scope
function and read models — the feed has no rule of access of its own.

A kind says: its Casbin resource (the caller's grant on it decides whether the kind
reaches the caller at all), how the feature scopes it for a reader, how the feature
renders it, which organizations are tied to one (they may read it where other Compact
entities may not: an activity's lead and partners, a request's offerers), and which
objects follow a State's sharing or a need's.
"""

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.assistance import needs as needs_service
from ctcp.assistance import requests as requests_service
from ctcp.assistance.models import AssistanceRequest, AssistanceRequestNeed, Need, Offer
from ctcp.audit.service import AuditContext
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.consent import service as consent_service
from ctcp.consent.models import Publication
from ctcp.contacts import service as contacts_service
from ctcp.contacts.models import ContactPoint
from ctcp.organizations.models import Organization, OrganizationKind
from ctcp.planning import service as planning_service
from ctcp.planning.models import Activity, ActivityNeed, ActivityPartner

# No organization has this id: an organization tied to nothing, i.e. any of its kind.
ANY_ENTITY = uuid.UUID("00000000-0000-0000-0000-00000000feed")
# What an entity's focal points (and its API clients, narrowed by scope) are granted on
# each kind (policies/policy.csv): the recorder reads as they do. The role exists in
# Compact entities and in the Secretariat's organizations, which read more.
ENTITY_SCOPES = frozenset({DataScope.CONSENTED, DataScope.OWN_ORG})

Rows = Sequence[Any]


@dataclass(frozen=True)
class Kind:
    name: str  # as the feed names it: "publication", "need", ...
    resource: str  # the Casbin resource whose `read` grant reaches it
    model: Any
    scoped: Callable[[Access], SelectOfScalar[Any]]
    render: Callable[[AsyncSession, Access, Rows], Awaitable[Sequence[BaseModel]]]
    # (object id, organization id) of the organizations tied to these objects
    ties: Callable[[Sequence[uuid.UUID]], Any] | None = None
    of_states: Callable[[Iterable[uuid.UUID]], SelectOfScalar[uuid.UUID]] | None = None
    of_needs: Callable[[Iterable[uuid.UUID]], SelectOfScalar[uuid.UUID]] | None = None
    # Whether its payload changes only with who may read it: then an object reached only
    # by widening (a State's or a need's change), whose readers stay the same, needs no
    # entry. Not so for a request or an activity: they show which of their needs the
    # reader may read.
    follows_readers: bool = False


async def _publications(session: AsyncSession, _access: Access, rows: Rows) -> Sequence[BaseModel]:
    return await consent_service.read_model(session, rows)


async def _needs(session: AsyncSession, _access: Access, rows: Rows) -> Sequence[BaseModel]:
    return await needs_service.read_models(session, rows)


async def _requests(session: AsyncSession, _access: Access, rows: Rows) -> Sequence[BaseModel]:
    return await requests_service.read_models(session, rows)


async def _contacts(session: AsyncSession, _access: Access, rows: Rows) -> Sequence[BaseModel]:
    return await contacts_service.read_models(session, rows)


async def _activities(session: AsyncSession, access: Access, rows: Rows) -> Sequence[BaseModel]:
    return await planning_service.read_models(session, rows, access)


def _offerers(ids: Sequence[uuid.UUID]) -> Any:
    return (
        select(col(Offer.request_id), col(Offer.organization_id))
        .where(col(Offer.request_id).in_(ids))
        .distinct()
    )


def _leads_and_partners(ids: Sequence[uuid.UUID]) -> Any:
    leads = select(col(Activity.id), col(Activity.lead_id)).where(col(Activity.id).in_(ids))
    partners = select(col(ActivityPartner.activity_id), col(ActivityPartner.organization_id)).where(
        col(ActivityPartner.activity_id).in_(ids)
    )
    return leads.union(partners)


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "publication",
            "publication",
            Publication,
            consent_service.readable_publications,
            _publications,
        ),
        Kind(
            "need",
            "need",
            Need,
            needs_service.readable_needs,
            _needs,
            follows_readers=True,
            of_states=lambda states: select(col(Need.id)).where(col(Need.state_id).in_(states)),
        ),
        Kind(
            "request",
            "request",
            AssistanceRequest,
            requests_service.readable_requests,
            _requests,
            ties=_offerers,
            of_states=lambda states: select(col(AssistanceRequest.id)).where(
                col(AssistanceRequest.state_id).in_(states)
            ),
            of_needs=lambda needs: select(col(AssistanceRequestNeed.request_id)).where(
                col(AssistanceRequestNeed.need_id).in_(needs)
            ),
        ),
        Kind(
            "contact_point",
            "contact",
            ContactPoint,
            contacts_service.contact_points_in_scope,
            _contacts,
        ),
        Kind(
            "activity",
            "activity",
            Activity,
            planning_service.activities_in_scope,
            _activities,
            ties=_leads_and_partners,
            of_states=lambda states: select(col(Activity.id)).where(
                col(Activity.state_id).in_(states)
            ),
            of_needs=lambda needs: select(col(ActivityNeed.activity_id)).where(
                col(ActivityNeed.need_id).in_(needs)
            ),
        ),
    )
}


def stand_in(kind: OrganizationKind) -> Organization:
    """An organization of `kind` tied to nothing: any of its kind. Never added to a session."""
    return Organization(id=ANY_ENTITY, code="", kind=kind.value, name_en="")


def entity_reader(kind: Kind, organization: Organization) -> Access:
    """How an entity focal point of `organization` reads `kind` (the recorder's reader)."""
    subject = Subject(
        user_id=None,
        client_id=None,
        organization=organization,
        roles=frozenset({"entity_focal_point"}),
        audit=AuditContext(),
    )
    return Access(subject, kind.resource, "read", ENTITY_SCOPES)


def chunks(ids: Sequence[uuid.UUID], size: int = 500) -> Iterable[Sequence[uuid.UUID]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


async def readable(
    session: AsyncSession, kind: Kind, access: Access, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """The rows among `ids` that `access` may read now, by id (the feature's scope)."""
    found: dict[uuid.UUID, Any] = {}
    for chunk in chunks(sorted(set(ids))):
        statement = kind.scoped(access).where(col(kind.model.id).in_(chunk))
        for row in (await session.exec(statement)).all():
            found[row.id] = row
    return found
