"""The platform's roles and the kinds of organization each may be held in."""

from enum import StrEnum

from ctcp.organizations.models import OrganizationKind


class Role(StrEnum):
    STATE_FOCAL_POINT = "state_focal_point"
    ENTITY_FOCAL_POINT = "entity_focal_point"
    CTED_ANALYST = "cted_analyst"
    CONSENT_OFFICER = "consent_officer"
    PLATFORM_ADMIN = "platform_admin"
    AUDITOR = "auditor"


ROLE_ORG_KINDS: dict[Role, frozenset[OrganizationKind]] = {
    Role.STATE_FOCAL_POINT: frozenset({OrganizationKind.MEMBER_STATE}),
    Role.ENTITY_FOCAL_POINT: frozenset(
        {OrganizationKind.COMPACT_ENTITY, OrganizationKind.SECRETARIAT}
    ),
    Role.CTED_ANALYST: frozenset({OrganizationKind.SECRETARIAT}),
    Role.CONSENT_OFFICER: frozenset({OrganizationKind.SECRETARIAT}),
    Role.PLATFORM_ADMIN: frozenset({OrganizationKind.SECRETARIAT}),
    Role.AUDITOR: frozenset({OrganizationKind.SECRETARIAT}),
}


def role_fits(role: str, organization_kind: str) -> bool:
    """Whether `role` may be held by a member of an organization of this kind."""
    try:
        return OrganizationKind(organization_kind) in ROLE_ORG_KINDS[Role(role)]
    except ValueError:
        return False
