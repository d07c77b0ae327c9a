"""The publication scopes stay single-table: `read_one` carries only their WHERE clause.

A scope that joined another table would lose the join (and so its restriction) there,
so every shape a grant can take is held to selecting from `publications` alone.
"""

import itertools

import pytest
from sqlalchemy.sql.util import find_tables

from ctcp.audit.service import AuditContext
from ctcp.authn.subject import Subject
from ctcp.authz.guard import Access
from ctcp.authz.scopes import DataScope
from ctcp.consent.models import Publication
from ctcp.consent.service import public_publications, readable_publications
from ctcp.organizations.models import Organization, OrganizationKind

SCOPE_SETS = [
    frozenset(combination)
    for size in range(len(DataScope) + 1)
    for combination in itertools.combinations(DataScope, size)
]


def _access(kind: OrganizationKind, scopes: frozenset[DataScope]) -> Access:
    organization = Organization(code="X", kind=kind.value, name_en="X")
    subject = Subject(
        user_id=None,
        client_id=None,
        organization=organization,
        roles=frozenset(),
        audit=AuditContext(),
    )
    return Access(subject, "publication", "read", scopes)


@pytest.mark.parametrize("kind", list(OrganizationKind))
@pytest.mark.parametrize("scopes", SCOPE_SETS, ids=lambda s: "+".join(sorted(s)) or "none")
def test_every_publication_scope_selects_from_publications_alone(
    kind: OrganizationKind, scopes: frozenset[DataScope]
) -> None:
    statement = readable_publications(_access(kind, scopes))
    assert statement.get_final_froms() == [Publication.__table__]
    assert statement.whereclause is not None
    # No other table (a scope granting nothing is plain `false`: no table at all).
    assert set(find_tables(statement.whereclause, check_columns=True)) <= {Publication.__table__}


def test_the_public_scope_selects_from_publications_alone() -> None:
    statement = public_publications()
    assert statement.get_final_froms() == [Publication.__table__]
    assert statement.whereclause is not None
    # No other table (a scope granting nothing is plain `false`: no table at all).
    assert set(find_tables(statement.whereclause, check_columns=True)) <= {Publication.__table__}
