"""Domain errors and their rendering as RFC 9457 problem details."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("ctcp.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class DomainError(Exception):
    """An error the caller should see, with its HTTP status and problem members."""

    status = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class UnauthorizedError(DomainError):
    status = 401
    title = "Unauthorized"


class ForbiddenError(DomainError):
    status = 403
    title = "Forbidden"


class NotFoundError(DomainError):
    status = 404
    title = "Not found"


class ConflictError(DomainError):
    status = 409
    title = "Conflict"


class PayloadTooLargeError(DomainError):
    status = 413
    title = "Payload too large"


class ValidationError(DomainError):
    status = 422
    title = "Validation failed"

    def __init__(self, detail: str, *, loc: list[str | int] | None = None) -> None:
        errors = [{"loc": loc or [], "msg": detail}]
        super().__init__(detail, extra={"errors": errors})


class TooManyRequestsError(DomainError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


def problem_response(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An `application/problem+json` response."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail or title or phrase,
    }
    body.update(extra or {})
    return JSONResponse(
        body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        # Never echo the rejected input back: it may be a password.
        errors.append({"loc": list(error.get("loc", [])), "msg": str(error.get("msg", ""))})
    return errors


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return problem_response(
        exc.status, exc.detail, title=exc.title, extra=exc.extra, headers=exc.headers
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        422,
        "The request is not valid.",
        title="Validation failed",
        extra={"errors": _validation_errors(exc)},
    )


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("database unavailable: %s", type(exc).__name__)
    return problem_response(
        503, "The service is temporarily unavailable.", headers={"Retry-After": "5"}
    )


ErrorRecorder = Callable[[Request, BaseException], Awaitable[None]]


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    recorder: ErrorRecorder | None = getattr(request.app.state, "error_recorder", None)
    if recorder is not None:
        try:
            await recorder(request, exc)
        except Exception:
            logger.exception("could not record the error in the audit log")
    # Rendered outside the other middleware (Starlette's ServerErrorMiddleware is
    # outermost): give this response the headers they would have added.
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    }
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        headers["X-Request-ID"] = request_id
    return problem_response(500, "An unexpected error occurred.", headers=headers)


def is_connection_error(exc: BaseException) -> bool:
    """Whether the database could not be reached (as opposed to a bad statement)."""
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, IntegrityError):
        # Two requests raced past a uniqueness check; the database kept one of them.
        return problem_response(409, "The request conflicts with data that already exists.")
    if is_connection_error(exc):
        return await _database_unavailable(request, exc)
    return await _unexpected_error(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of the API as a problem document with no internals."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
