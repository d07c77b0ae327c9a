"""Authentication: who is asking, as one typed `Subject` (a person or an API client).

Above `identity` (sessions, passwords, MFA) and `oauth` (bearer tokens), below `authz`
(the policy, the scopes and the decision), which takes a `Subject` and never a cookie.
"""
