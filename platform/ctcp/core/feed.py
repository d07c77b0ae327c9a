"""What a unit of work changed that the change feed must tell (`ctcp.changes`).

A feature calls `touch` for each object of the feed's kinds it writes (publications,
needs, requests, contact points, activities), and `touch_state` when it changes what a
State shares (a consent decision, a needs-sharing decision): every need, request and
activity of that State may then read differently. Nothing is evaluated here. The feed's
recorder, installed once by `ctcp.changes`, runs right before the unit commits, in its
transaction: it decides who can read each touched object now, numbers the changes in
commit order and queues their webhook deliveries, so a change and its entry in the feed
are committed together or not at all.

`core` imports no feature: the recorder installs itself from above (`install`) when its
module is imported, which the first `touch` of a process makes sure of (by name, so any
command or task that writes has it, not only the app). A unit that touches something
with no recorder installed fails instead of committing a change the feed would never tell.
"""

import importlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from ctcp.core.db import SessionCallback, on_before_commit

TOUCHED_KEY = "ctcp.feed.touched"
RECORDER_MODULE = "ctcp.changes.recorder"

_recorder: SessionCallback | None = None


@dataclass
class Touched:
    """The objects (by kind) and the States this unit changed, not yet recorded."""

    objects: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    states: set[uuid.UUID] = field(default_factory=set)


def install(recorder: SessionCallback) -> None:
    """Set the callback that records the touched objects before each commit."""
    global _recorder
    _recorder = recorder


def _pending(session: AsyncSession) -> Touched:
    if _recorder is None:
        importlib.import_module(RECORDER_MODULE)
    if _recorder is None:
        raise RuntimeError("the change feed's recorder is not installed (import ctcp.changes)")
    touched: Touched | None = session.info.get(TOUCHED_KEY)
    if touched is None:
        touched = session.info[TOUCHED_KEY] = Touched()
    on_before_commit(session, _recorder, first=True)
    return touched


def touch(session: AsyncSession, kind: str, ids: Iterable[uuid.UUID]) -> None:
    """These objects of `kind` were written in this unit: the feed tells of them."""
    _pending(session).objects.setdefault(kind, set()).update(ids)


def touch_state(session: AsyncSession, state_id: uuid.UUID) -> None:
    """What this State shares changed: its needs, requests and activities may read
    differently now."""
    _pending(session).states.add(state_id)


def take(session: AsyncSession) -> Touched:
    """The touched objects and States, forgotten here (the recorder calls this)."""
    touched: Touched | None = session.info.pop(TOUCHED_KEY, None)
    return touched or Touched()
