"""The marking every publication, need, request, activity and contact point carries: the
audience the platform lets it reach, and the equivalent Traffic Light Protocol label
(FIRST, TLP version 2.0, https://www.first.org/tlp/), so that a system that pulls a copy
can keep honouring the State's decision (docs/markings.md has the table).

- `public` (anyone, signed in or not): `TLP:CLEAR`, no limit on disclosure.
- `member_states` (the Compact and every Member State's focal points): `TLP:GREEN`,
  within the community, never through publicly accessible channels.
- `compact` (the Compact entities and the Secretariat): `TLP:AMBER`, within the
  recipient's organization and its clients, on a need-to-know basis.
- `restricted` (the State, the Secretariat and the organizations named on the object:
  an activity's lead and partners, a request's offerers) and a contact point's
  `secretariat` (its State and the Secretariat): `TLP:AMBER+STRICT`, within the
  recipient's organization only.

The first three are the consent's audiences, mapped as issue 21 asks. The last two mark
what the State has not shared: an unshared need, a request or an activity the Compact
may not read. `TLP:AMBER+STRICT`, not `TLP:RED`: the State's ministries and the
Secretariat's analysts must work on it within their organizations, which TLP:RED
("for the eyes and ears of individual recipients only") forbids, and the organizations
named on it brief their own staff; what no recipient may do is pass it to another
organization or to a client, which is exactly the "organization only" of AMBER+STRICT.

The audience is the object's, not the caller's: a State reading its own unshared need
and the Secretariat reading it see the same `restricted`. It is decided at read time,
so it moves with sharing: a need is `compact` while its State shares it, `restricted`
again from the moment the sharing is withdrawn or expires.
"""

import uuid
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession


class Tlp(StrEnum):
    """The TLP 2.0 labels, written as the standard writes them (capitals, no spaces)."""

    CLEAR = "TLP:CLEAR"
    GREEN = "TLP:GREEN"
    AMBER = "TLP:AMBER"
    AMBER_STRICT = "TLP:AMBER+STRICT"


PUBLIC = "public"
MEMBER_STATES = "member_states"
COMPACT = "compact"
# Not shared beyond the State, the Secretariat and the organizations named on the object.
RESTRICTED = "restricted"
# A contact point's narrowest audience: its State and the Secretariat.
SECRETARIAT = "secretariat"
# The audience of a need, request or activity: shared with the Compact now, or not.
SharedAudience = Literal["compact", "restricted"]

TLP_OF: dict[str, Tlp] = {
    PUBLIC: Tlp.CLEAR,
    MEMBER_STATES: Tlp.GREEN,
    COMPACT: Tlp.AMBER,
    RESTRICTED: Tlp.AMBER_STRICT,
    SECRETARIAT: Tlp.AMBER_STRICT,
}
# Where the labels are defined: the IATI export names it as its tag vocabulary.
TLP_URI = "https://www.first.org/tlp/"

TLP_DESCRIPTION = (
    "The Traffic Light Protocol 2.0 label equivalent to `audience`: public TLP:CLEAR, "
    "member_states TLP:GREEN, compact TLP:AMBER, restricted and secretariat "
    "TLP:AMBER+STRICT (docs/markings.md)."
)
SHARED_AUDIENCE_DESCRIPTION = (
    "compact while the State shares it with the Compact now; restricted while it stays "
    "with the State, the Secretariat and the organizations named on it."
)

CHUNK = 500


def tlp_of(audience: str) -> Tlp:
    """The TLP 2.0 label of an audience; an unknown audience is a bug, never a guess."""
    return TLP_OF[audience]


def shared_audience(shared: bool) -> SharedAudience:
    """`compact` for what the Compact may read now, else `restricted`."""
    return "compact" if shared else "restricted"


def shared_marking(shared: bool) -> dict[str, Any]:
    """The `audience` and `tlp` fields of a need, request or activity's read model."""
    audience = shared_audience(shared)
    return {"audience": audience, "tlp": tlp_of(audience)}


async def matching(
    session: AsyncSession,
    id_column: Any,
    condition: ColumnElement[bool],
    ids: Iterable[uuid.UUID],
) -> set[uuid.UUID]:
    """The ids among `ids` whose rows meet `condition` now: one statement per batch of
    up to CHUNK ids, never one per object.

    The condition is selected, not filtered on: in a WHERE clause SQLite may drive the
    statement from the condition's side (every shared section's needs, 35 ms on the
    large data set) instead of from the batch's ids (1.5 ms).
    """
    wanted = sorted(set(ids))
    found: set[uuid.UUID] = set()
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        statement = select(id_column, condition.label("meets")).where(id_column.in_(chunk))
        found.update(row_id for row_id, meets in (await session.exec(statement)).all() if meets)
    return found
