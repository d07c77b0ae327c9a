"""Base classes for what goes over the wire."""

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator


def _without_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("NUL characters are not accepted")
    if isinstance(value, list | tuple):
        for item in value:
            _without_nul(item)
    return value


class RequestModel(BaseModel):
    """A request body: unknown fields are refused, strings trimmed, NUL refused (PostgreSQL
    cannot store it in text, and no legitimate text carries it)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _without_nul(value)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Problem(BaseModel):
    """RFC 9457 problem details (documented error responses)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting these error statuses as problem details."""
    return {
        status: {"model": Problem, "content": {"application/problem+json": {}}}
        for status in statuses
    }
