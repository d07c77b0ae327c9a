"""Per-process caches of resolved credentials, invalidated by the grants version.

Resolving a session cookie or a bearer token costs a query per request; most requests of
one caller come within seconds of each other. An entry is used only while (a) no
session, role, account, client or token change has been seen since it was read
(`bump_grants` clears this process at commit, the others on NOTIFY or within the 0.5 s
poll), and (b) it was confirmed against the database recently enough for its kind
(sessions: `TOUCH_INTERVAL`, when their last-seen time is written; tokens:
`TOKEN_RECHECK`).
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from ctcp.identity.service import Principal

Value = TypeVar("Value")


@dataclass(frozen=True)
class Cached(Generic[Value]):
    value: Value
    version: int
    confirmed_at: datetime


class GrantsCache(Generic[Value]):
    """Credential hash -> what it resolved to, bounded (LRU), all dropped when grants change."""

    def __init__(self, max_entries: int = 5000) -> None:
        self.max_entries = max_entries
        self.version = 0
        self._entries: OrderedDict[str, Cached[Value]] = OrderedDict()

    def get(self, key: str) -> Cached[Value] | None:
        entry = self._entries.get(key)
        if entry is None or entry.version != self.version:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: Cached[Value]) -> None:
        if entry.version != self.version:
            return  # read before a change this process has since heard of
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self) -> None:
        """Forget everything; entries read before now can no longer be stored."""
        self.version += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


PrincipalCache = GrantsCache[Principal]
CachedPrincipal = Cached[Principal]
