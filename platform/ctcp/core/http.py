"""Pure-ASGI middleware: request ids, security headers, body limits, foreign origins."""

import html
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
PROBLEM = "application/problem+json"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_is_trusted(scope: Scope, proxies: Sequence[Network]) -> bool:
    """Whether the connection itself comes from one of the trusted reverse proxies."""
    client = scope.get("client")
    if not client or not proxies:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    return any(address in network for network in proxies)


def _sane_request_id(value: str) -> bool:
    return 8 <= len(value) <= 64 and value.isascii() and value.replace("-", "").isalnum()


def _wants_html(scope: Scope | None) -> bool:
    """A browser navigating or posting a form (it asks for HTML), not an API client."""
    return scope is not None and "text/html" in Headers(scope=scope).get("accept", "")


async def _send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    *,
    extra: dict[str, object] | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    scope: Scope | None = None,
) -> None:
    """A problem document; to a browser, a minimal page saying the same (no raw JSON)."""
    if _wants_html(scope):
        media_type = "text/html; charset=utf-8"
        body = (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{status} {html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>"
            f'<p><a href="/portal">CTCP</a></p></body></html>'
        ).encode()
    else:
        media_type = PROBLEM
        problem = {"type": "about:blank", "title": title, "status": status, "detail": detail}
        body = json.dumps(problem | (extra or {})).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Give every request an id (a trusted proxy's, else our own) and a sensitive site's headers.

    Outside the proxy-headers middleware: it judges the connection's own peer, before
    X-Forwarded-For replaces it with the client's address.
    """

    def __init__(
        self, app: ASGIApp, *, hsts: bool = False, trusted_proxies: Sequence[Network] = ()
    ) -> None:
        self.app = app
        self.hsts = hsts
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A client's own X-Request-ID would let it file its events under another request's id.
        incoming = ""
        if peer_is_trusted(scope, self.trusted_proxies):
            incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _sane_request_id(incoming) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        if b"%00" in scope.get("query_string", b"") or "\x00" in scope.get("path", ""):
            # PostgreSQL cannot store or compare NUL in text; no legitimate value carries it.
            detail = "NUL characters are not accepted."
            await _send_problem(
                send,
                422,
                "Validation failed",
                detail,
                extra={"errors": [{"loc": ["query"], "msg": detail}]},
                headers=((b"x-request-id", request_id.encode()), (b"cache-control", b"no-store")),
            )
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Read now: the proxy-headers middleware inside sets the scheme the proxy saw.
                https = scope.get("scheme") == "https"
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` with
                # form posts, and the origin check (a CSRF defence) would refuse our own forms.
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                # A page that needs its own sets it first (the API docs: ctcp.core.api_docs).
                headers.setdefault(
                    "Content-Security-Policy",
                    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                    "form-action 'self'; object-src 'none'",
                )
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if self.hsts and https:
                    headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuse bodies over the limit with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_multipart_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_multipart_bytes = max_multipart_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").startswith("multipart/form-data")
        limit = self.max_multipart_bytes if multipart else self.max_json_bytes
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _send_problem(
                send,
                413,
                "Payload too large",
                f"The request body is larger than {limit} bytes.",
                scope=scope,
            )
            return
        received = 0
        refused = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Answer now; the app sees a client that went away.
                    refused = True
                    if not response_started:
                        await _send_problem(
                            send,
                            413,
                            "Payload too large",
                            f"The request body is larger than {limit} bytes.",
                            scope=scope,
                        )
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


class OriginCheckMiddleware:
    """Refuse unsafe requests sent from a foreign web origin (a CSRF defence in depth)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_origins: Iterable[str] = (),
        on_refusal: Callable[[Scope, str], Awaitable[None]] | None = None,
    ) -> None:
        self.app = app
        self.trusted = frozenset(origin.rstrip("/") for origin in trusted_origins)
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not self._allowed(origin, scope, headers):
                if self.on_refusal is not None:
                    await self.on_refusal(scope, origin)
                await _send_problem(
                    send,
                    403,
                    "Forbidden",
                    "Requests from another web origin are refused.",
                    scope=scope,
                )
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str, scope: Scope, headers: Headers) -> bool:
        origin = origin.rstrip("/")
        if origin in self.trusted:
            return True
        host = headers.get("host")
        scheme = scope.get("scheme", "http")
        return host is not None and origin == f"{scheme}://{host}"
