"""The UN regional groups (reference data): every Member State in exactly one, and the
lookups the matrix's region filter uses."""

import csv
from collections import Counter
from importlib import resources

import pytest

from ctcp.planning import regions
from ctcp.planning.regions import RegionalGroup

# The sizes `regional_groups.csv` sets (its README says why): the United States, in no
# group, is listed with the Western European and Others, which it attends as an
# observer; Kiribati with Asia-Pacific, since 2010.
EXPECTED_SIZES = {
    RegionalGroup.AFRICAN: 54,
    RegionalGroup.ASIA_PACIFIC: 54,
    RegionalGroup.EASTERN_EUROPEAN: 23,
    RegionalGroup.LATIN_AMERICAN_CARIBBEAN: 33,
    RegionalGroup.WESTERN_EUROPEAN_OTHERS: 29,
}


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("ctcp.data").joinpath(name).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_every_member_state_is_in_exactly_one_group() -> None:
    states = [row["code"] for row in _rows("member_states.csv")]
    listed = [row["code"] for row in _rows("regional_groups.csv")]
    assert len(states) == 193
    # Each code once, in the order of the Member States' list.
    assert listed == states
    assert set(regions.regional_groups()) == set(states)


def test_the_groups_have_their_sizes() -> None:
    sizes = Counter(regions.regional_groups().values())
    assert sizes == EXPECTED_SIZES
    assert sum(sizes.values()) == 193
    for group, size in EXPECTED_SIZES.items():
        assert len(regions.states_in(group)) == size


@pytest.mark.parametrize(
    ("code", "group"),
    [
        ("KEN", RegionalGroup.AFRICAN),
        ("SSD", RegionalGroup.AFRICAN),
        ("IDN", RegionalGroup.ASIA_PACIFIC),
        ("JOR", RegionalGroup.ASIA_PACIFIC),
        ("CYP", RegionalGroup.ASIA_PACIFIC),
        ("KIR", RegionalGroup.ASIA_PACIFIC),
        ("UKR", RegionalGroup.EASTERN_EUROPEAN),
        ("RUS", RegionalGroup.EASTERN_EUROPEAN),
        ("COL", RegionalGroup.LATIN_AMERICAN_CARIBBEAN),
        ("KNA", RegionalGroup.LATIN_AMERICAN_CARIBBEAN),
        ("FRA", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
        ("TUR", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
        ("ISR", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
        ("AUS", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
        ("NZL", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
        ("CAN", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
        ("USA", RegionalGroup.WESTERN_EUROPEAN_OTHERS),
    ],
)
def test_a_state_is_found_in_its_group(code: str, group: RegionalGroup) -> None:
    assert regions.group_of(code) is group
    assert code in regions.states_in(group)
    others = [other for other in RegionalGroup if other is not group]
    assert all(code not in regions.states_in(other) for other in others)


@pytest.mark.parametrize("code", ["PSE", "VAT", "XKX", "ken", "", "CTED"])
def test_what_is_no_member_state_has_no_group(code: str) -> None:
    """Observer States, lower case, an organization: no group, and in none of the sets."""
    assert regions.group_of(code) is None
    assert all(code not in regions.states_in(group) for group in RegionalGroup)
