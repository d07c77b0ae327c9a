"""Portal forms: reading the submitted fields, and a schema's errors per form field.

A page validates a form with the API's own request schema, so both refuse the same
input; the messages are said in the reader's language (pydantic's are English).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.datastructures import FormData

from ctcp.core.http import UNSAFE_METHODS

ModelT = TypeVar("ModelT", bound=BaseModel)
Gettext = Callable[[str], str]


async def form_of(request: Request) -> FormData | None:
    """The submitted form of a state-changing request, if it sent one."""
    if request.method not in UNSAFE_METHODS:
        return None
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return await request.form()
    return None


def csrf_token_in(form: FormData | None) -> str:
    """The form's `csrf_token` field ('' when absent)."""
    value = form.get("csrf_token") if form is not None else None
    return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class Fields:
    """The text fields of a submitted form (none for a GET page)."""

    form: FormData | None

    def field(self, name: str) -> str:
        """A text field, stripped ('' when absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else ""

    def fields(self, name: str) -> list[str]:
        """Every value of a repeated field, stripped."""
        if self.form is None:
            return []
        return [value.strip() for value in self.form.getlist(name) if isinstance(value, str)]


def validate(
    schema: type[ModelT], data: dict[str, Any], gettext: Gettext
) -> tuple[ModelT | None, dict[str, str]]:
    """The API's request schema built from a form, or the errors per form field.

    Nothing is written before this passes, so a form with errors is shown again,
    filled in, with status 422. Field names are the schema's (nested: `a.0.b`).
    """
    try:
        return schema.model_validate(data), {}
    except PydanticValidationError as error:
        errors: dict[str, str] = {}
        for item in error.errors():
            name = ".".join(str(part) for part in item.get("loc", ())) or "_"
            errors.setdefault(name, message_for(item, gettext))
        return None, errors


def message_for(item: Any, gettext: Gettext) -> str:
    """A schema error in the reader's language."""
    kind = item.get("type", "")
    if kind == "missing" or (kind == "string_too_short" and not item.get("input")):
        return gettext("Fill in this field.")
    if kind in ("string_too_short", "too_short"):
        return gettext("This is too short.")
    if kind in ("string_too_long", "too_long"):
        return gettext("This is too long.")
    if kind.startswith(("date", "datetime")):
        return gettext("Enter a valid date.")
    if kind.startswith(("int", "float", "decimal", "greater", "less")):
        return gettext("Enter a valid number.")
    if kind in ("enum", "literal_error", "uuid_parsing", "uuid_type"):
        return gettext("Choose a value from the list.")
    if kind == "string_pattern_mismatch":
        return gettext("This is not in the expected format.")
    if "email" in str(item.get("msg", "")).lower():
        return gettext("Enter a valid e-mail address.")
    if kind == "value_error":
        return str(item.get("msg", "")).removeprefix("Value error, ")
    return str(item.get("msg", ""))
