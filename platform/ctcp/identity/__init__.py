"""Users, roles, passwords, sessions, sign-in throttling and multi-factor authentication."""
