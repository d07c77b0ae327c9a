"""Portal pages of user administration (HTML), over the same endpoint functions as the API."""

from fastapi import APIRouter

from ctcp.web.portal import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)
