"""A per-process cache of resolved sessions, invalidated by the grants version.

Resolving a session cookie costs a query per request; most requests of a session come
within a minute of each other. An entry is used only while (a) no session, role or
account change has been seen since it was read (`bump_grants` clears this process at
commit, the others on NOTIFY or within the 0.5 s poll), and (b) the session was
confirmed against the database less than `TOUCH_INTERVAL` ago, when it is read again
and its last-seen time written.
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from ctcp.identity.service import Principal

CACHE_KEY = "ctcp.principal_cache"


@dataclass(frozen=True)
class CachedPrincipal:
    principal: Principal
    version: int
    confirmed_at: datetime


class PrincipalCache:
    """Token hash -> principal, bounded (LRU), all dropped when grants change."""

    def __init__(self, max_entries: int = 5000) -> None:
        self.max_entries = max_entries
        self.version = 0
        self._entries: OrderedDict[str, CachedPrincipal] = OrderedDict()

    def get(self, key: str) -> CachedPrincipal | None:
        entry = self._entries.get(key)
        if entry is None or entry.version != self.version:
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: CachedPrincipal) -> None:
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
