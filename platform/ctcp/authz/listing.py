"""A scoped list, newest first, one keyset page at a time, its read audited with the ids."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from ctcp.audit import service as audit
from ctcp.authz.guard import Access
from ctcp.core.pagination import Page, PageRequest, keyset, page_of

T = TypeVar("T")
R = TypeVar("R")
ReadModels = Callable[[AsyncSession, Sequence[T]], Awaitable[list[R]]]


async def audited_page(
    session: AsyncSession,
    access: Access,
    statement: SelectOfScalar[T],
    *,
    order: Sequence[Any],
    page: PageRequest,
    read_models: ReadModels[T, R],
    key: Callable[[T], Sequence[Any]] | None = None,
    ascending: bool = False,
) -> Page[R]:
    """One page of `statement` (already scoped), ordered by `order` (model attributes,
    unique together; descending unless `ascending`), audited as `<resource>.list` with
    the ids shown, and answered as the read models `read_models` builds from its rows.

    `key` gives a row's values of `order` where they are not all the row's own
    attributes (a column of a joined table)."""
    columns = [col(attribute) for attribute in order]
    names = [attribute.key for attribute in order]
    rows = (
        await session.exec(
            keyset(
                statement,
                order=columns,
                descending=not ascending,
                limit=page.limit,
                cursor=page.cursor,
            )
        )
    ).all()
    shown = page_of(
        rows,
        limit=page.limit,
        key=key or (lambda row: [getattr(row, n) for n in names]),
        item=lambda r: r,
    )
    audit.record(
        session,
        access.audit,
        f"{access.resource}.list",
        object_type=access.resource,
        details={"ids": [str(getattr(item, "id", "")) for item in shown.items]},
        read=True,
    )
    return Page[R](items=await read_models(session, shown.items), next_cursor=shown.next_cursor)
