"""Keyset pagination: `?limit=&cursor=` in, `{"items", "next_cursor"}` out."""

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar, cast

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import bindparam, tuple_

from ctcp.core.errors import ValidationError

T = TypeVar("T")
S = TypeVar("S")  # a sqlmodel Select or SelectOfScalar
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page")
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    """Which page a reader asks a service for: its size and the previous page's cursor."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def _encode(values: Sequence[Any]) -> str:
    plain = [
        v.isoformat()
        if isinstance(v, datetime)
        else str(v)
        if not isinstance(v, int | float | bool | type(None))
        else v
        for v in values
    ]
    raw = json.dumps(plain, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _python_type(column: Any) -> type:
    try:
        python_type: type = column.type.python_type
    except NotImplementedError:
        return str
    # sqlmodel's AutoString reports `object`: its values are plain strings.
    return str if python_type is object else python_type


def _decode(cursor: str, columns: Sequence[Any]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(values, list) or len(values) != len(columns):
            raise ValueError("shape")
        parsed: list[Any] = []
        for value, column in zip(values, columns, strict=True):
            python_type = _python_type(column)
            if value is None:
                parsed.append(None)
            elif python_type is datetime:
                # Every timestamp column is UTC: a cursor without a zone, or one whose
                # instant does not exist in UTC, was not made by this server.
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    raise ValueError("naive timestamp")
                parsed.append(moment.astimezone(UTC))
            elif python_type is date:
                parsed.append(date.fromisoformat(value))
            else:
                item = python_type(value)
                if isinstance(item, int) and not -(2**63) <= item < 2**63:
                    raise ValueError("out of range")
                if isinstance(item, str) and "\x00" in item:
                    raise ValueError("NUL")
                parsed.append(item)
        return parsed
    except (ValueError, TypeError, OverflowError, binascii.Error) as error:
        raise ValidationError("The cursor is not valid.", loc=["query", "cursor"]) from error


def keyset(
    statement: S,
    *,
    order: Sequence[Any],
    descending: bool = False,
    limit: int,
    cursor: str | None,
) -> S:
    """Order by `order` (unique together), start after the cursor, fetch one row extra."""
    query: Any = statement
    if cursor:
        values = _decode(cursor, order)
        bound = [
            bindparam(None, value, type_=column.type)
            for value, column in zip(values, order, strict=True)
        ]
        left, right = tuple_(*order), tuple_(*bound)
        query = query.where(left < right if descending else left > right)
    ordering = [column.desc() if descending else column.asc() for column in order]
    return cast(S, query.order_by(*ordering).limit(limit + 1))


def page_of(
    rows: Sequence[Any],
    *,
    limit: int,
    key: Callable[[Any], Sequence[Any]],
    item: Callable[[Any], T],
) -> Page[T]:
    """Turn the rows of a `keyset` query into a page and the cursor for the next one."""
    more = len(rows) > limit
    shown = rows[:limit]
    return Page[T](
        items=[item(row) for row in shown],
        next_cursor=_encode(key(shown[-1])) if more and shown else None,
    )
