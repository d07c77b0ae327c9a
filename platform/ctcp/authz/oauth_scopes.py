"""OAuth scopes of API clients, and the Casbin pseudo-roles that say what each reaches
(the policy's side of OAuth: `ctcp.oauth` issues and checks the tokens)."""

from enum import StrEnum

# The realm of every bearer-token challenge (RFC 6750 §3).
REALM = 'Bearer realm="CTCP"'
# A scope's policy lines name it as `scope:<scope>` in the role column (policies/policy.csv).
SCOPE_ROLE_PREFIX = "scope:"
# The role whose rights, in the client's organization, every scope narrows.
CLIENT_ROLE = "entity_focal_point"


class OAuthScope(StrEnum):
    PUBLICATIONS_READ = "publications:read"
    NEEDS_READ = "needs:read"
    REQUESTS_READ = "requests:read"
    OFFERS_WRITE = "offers:write"
    CONTACTS_READ = "contacts:read"
    ACTIVITIES_READ = "activities:read"


def scope_role(scope: str) -> str:
    return f"{SCOPE_ROLE_PREFIX}{scope}"
