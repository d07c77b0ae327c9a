"""What a search answers: one hit per matched section, with its highlighted snippet."""

import uuid

from ctcp.core.schemas import ResponseModel


class SearchHit(ResponseModel):
    type: str  # "report" or "publication"
    id: uuid.UUID  # the report or the publication
    section_id: uuid.UUID
    area: str
    title: str
    snippet: str
