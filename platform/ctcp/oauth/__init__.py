"""OAuth2 client credentials for Compact-entity systems: clients, tokens, bearer checks."""
