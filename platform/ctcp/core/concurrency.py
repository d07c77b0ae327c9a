"""Optimistic concurrency over HTTP: an object's version is its ETag, and a change names
the version it is based on in `If-Match` (or in its body); a stale one is refused (409)."""

from typing import Annotated

from fastapi import Depends, Header

from ctcp.core.errors import ValidationError


async def if_match_version(
    if_match: Annotated[
        str | None,
        Header(description='The version the change is based on, as the ETag gave it: "3"'),
    ] = None,
) -> int | None:
    """The version an `If-Match` header names (an object's ETag is its version)."""
    if if_match is None:
        return None
    value = if_match.strip()
    if value == "*":  # any current version: the object only has to exist
        return None
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    # ASCII digits only: "²".isdigit() is true, and int() refuses it.
    if not (value.isascii() and value.isdigit()) or len(value) > 9:
        raise ValidationError('If-Match must be an ETag, e.g. "3".', loc=["header", "if-match"])
    return int(value)


IfMatch = Annotated[int | None, Depends(if_match_version)]
