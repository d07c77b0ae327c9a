"""Where the portal lives, and which addresses it will redirect to."""

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Request

PREFIX = "/portal"


def local_path(candidate: str | None, default: str = PREFIX) -> str:
    """A redirect target only if it is a path of the portal (never another site)."""
    if (
        candidate
        and candidate.startswith(PREFIX)
        and not candidate.startswith("//")
        and "\\" not in candidate
        and all(32 < ord(character) < 127 for character in candidate)
    ):
        return candidate
    return default


def sign_in_url(next_path: str, *, expired: bool = False) -> str:
    """The sign-in page, returning to `next_path` afterwards."""
    query = f"?next={quote(local_path(next_path))}"
    return f"{PREFIX}/sign-in{query}{'&expired=1' if expired else ''}"


def url_with(request: Request, **changes: Any) -> str:
    """The request's address with some query parameters changed (None or '' removes one)."""
    query = dict(request.query_params)
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    path = request.url.path
    return f"{path}?{urlencode(query)}" if query else path
