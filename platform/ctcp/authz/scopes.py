"""Data scopes a policy line grants; each resource turns them into one SQL filter."""

from enum import StrEnum


class DataScope(StrEnum):
    OWN_STATE = "own_state"  # the object's State is the caller's organization
    OWN_ORG = "own_org"  # the object belongs to the caller's organization
    CONSENTED = "consented"  # a live publication / shared need for the caller's audience
    ALL = "all"  # every object of the type


ALL_SCOPES = tuple(DataScope)
