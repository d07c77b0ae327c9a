"""Authorization: Casbin decides (role, organization, resource, action) and the data scope."""
