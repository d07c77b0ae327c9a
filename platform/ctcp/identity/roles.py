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


# Roles that read or write a State's content; a platform administrator holds none of them
# unless the operator allows it (separation of duties: who manages accounts does not read).
CONTENT_ROLES = frozenset(
    {Role.STATE_FOCAL_POINT, Role.ENTITY_FOCAL_POINT, Role.CTED_ANALYST, Role.CONSENT_OFFICER}
)


def separation_of_duties(
    roles: frozenset[str], *, admin_may_hold_content_roles: bool
) -> str | None:
    """Why these roles may not be held by one account, or None when they may.

    An auditor audits the acts of every role, its own administrator's included, so holds
    no other; a platform administrator holds no content role unless a setting allows it.
    """
    if Role.AUDITOR in roles and len(roles) > 1:
        return "An auditor holds no other role: the auditor checks the acts of every role."
    if Role.PLATFORM_ADMIN in roles and roles & CONTENT_ROLES and not admin_may_hold_content_roles:
        return (
            "A platform administrator holds no content role "
            "(CTCP_ADMIN_MAY_HOLD_CONTENT_ROLES allows it)."
        )
    return None
