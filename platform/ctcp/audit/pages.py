"""Portal pages of audit (HTML), over the same endpoint functions as the JSON API."""

from fastapi import APIRouter

from ctcp.web.portal import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)
