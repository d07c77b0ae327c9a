"""Domain errors and their rendering as RFC 9457 problem details."""

import logging
from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
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


class GoneError(DomainError):
    status = 410
    title = "Gone"


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


async def _storage_full(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("database storage full: %s", type(exc).__name__)
    return problem_response(
        507, "The server's storage is full: nothing was saved. Try again later."
    )


async def _database_read_only(_request: Request, exc: Exception) -> JSONResponse:
    logger.error("database read-only: %s", type(exc).__name__)
    return problem_response(
        503,
        "The service is read-only at the moment: nothing was saved. Try again later.",
        headers={"Retry-After": "30"},
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


class DatabaseFault(StrEnum):
    """Why the database could not do its part, when the request itself was fine."""

    UNAVAILABLE = "unavailable"
    STORAGE_FULL = "storage_full"
    READ_ONLY = "read_only"


# PostgreSQL SQLSTATEs (a two-character class, or a full code) of a server that cannot
# serve right now: connection exceptions, shutting down or starting up (57P01-57P05, which
# asyncpg raises as plain PostgresErrors, not OperationalErrors), too many connections,
# out of memory, I/O errors.
_UNAVAILABLE_SQLSTATES = ("08", "57P", "53000", "53200", "53300", "58")
_FULL_SQLSTATES = ("53100",)
_READ_ONLY_SQLSTATES = ("25006",)
# SQLite's primary result codes, as Python's sqlite3 names them on its exceptions.
_UNAVAILABLE_SQLITE = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN")
_FULL_SQLITE = ("SQLITE_FULL",)
_READ_ONLY_SQLITE = ("SQLITE_READONLY",)


def database_fault(exc: BaseException) -> DatabaseFault | None:
    """What is wrong with the database, if `exc` says it cannot serve (not a bad statement)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return DatabaseFault.UNAVAILABLE
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        sqlite_code = getattr(exc.orig, "sqlite_errorname", None)
        for fault, sqlstates, sqlite_codes in (
            (DatabaseFault.STORAGE_FULL, _FULL_SQLSTATES, _FULL_SQLITE),
            (DatabaseFault.READ_ONLY, _READ_ONLY_SQLSTATES, _READ_ONLY_SQLITE),
            (DatabaseFault.UNAVAILABLE, _UNAVAILABLE_SQLSTATES, _UNAVAILABLE_SQLITE),
        ):
            if isinstance(sqlstate, str) and sqlstate.startswith(sqlstates):
                return fault
            # SQLITE_IOERR_WRITE and friends: the primary code is the prefix.
            if isinstance(sqlite_code, str) and sqlite_code.startswith(sqlite_codes):
                return fault
        # Only a driver error with no code at all means "unreachable"; SQLite's coded
        # errors (a bad statement is SQLITE_ERROR) stay 500s, recorded and audited.
        if isinstance(exc, OperationalError) and sqlstate is None and sqlite_code is None:
            return DatabaseFault.UNAVAILABLE
        return None
    if isinstance(exc, ConnectionError | TimeoutError | SQLAlchemyTimeoutError):
        return DatabaseFault.UNAVAILABLE
    return None


_FAULT_HANDLERS = {
    DatabaseFault.UNAVAILABLE: _database_unavailable,
    DatabaseFault.STORAGE_FULL: _storage_full,
    DatabaseFault.READ_ONLY: _database_read_only,
}


async def _dbapi_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, IntegrityError):
        # Two requests raced past a uniqueness check; the database kept one of them.
        return problem_response(409, "The request conflicts with data that already exists.")
    fault = database_fault(exc)
    if fault is not None:
        return await _FAULT_HANDLERS[fault](request, exc)
    return await _unexpected_error(request, exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error of the API as a problem document with no internals."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _dbapi_error)
    app.add_exception_handler(ConnectionError, _database_unavailable)
    # A connection that never came (asyncpg's connect timeout) or a pool with none free.
    app.add_exception_handler(TimeoutError, _database_unavailable)
    app.add_exception_handler(SQLAlchemyTimeoutError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
