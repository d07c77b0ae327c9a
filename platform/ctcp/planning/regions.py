"""The United Nations regional groups of Member States (reference data,
`ctcp/data/regional_groups.csv`): the matrix's region filter and the map's rows."""

import csv
from enum import StrEnum
from functools import cache
from importlib import resources


class RegionalGroup(StrEnum):
    AFRICAN = "african"
    ASIA_PACIFIC = "asia_pacific"
    EASTERN_EUROPEAN = "eastern_european"
    LATIN_AMERICAN_CARIBBEAN = "latin_american_caribbean"
    WESTERN_EUROPEAN_OTHERS = "western_european_others"


@cache
def regional_groups() -> dict[str, RegionalGroup]:
    """Member State code -> its regional group; a State in none is left out."""
    text = resources.files("ctcp.data").joinpath("regional_groups.csv").read_text("utf-8")
    return {row["code"]: RegionalGroup(row["group"]) for row in csv.DictReader(text.splitlines())}


def states_in(group: RegionalGroup) -> frozenset[str]:
    return frozenset(code for code, found in regional_groups().items() if found is group)


def group_of(code: str) -> RegionalGroup | None:
    return regional_groups().get(code)
