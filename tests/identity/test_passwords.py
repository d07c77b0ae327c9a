"""Password rules, argon2id parameters, and hash upgrades at sign-in."""

import pytest
from argon2 import PasswordHasher as RawArgon2
from argon2 import extract_parameters
from fastapi import FastAPI
from sqlmodel import update

from ctcp.core.db import Database
from ctcp.identity.models import User
from ctcp.identity.passwords import password_problems
from tests.factories import (
    PASSWORD,
    PRODUCTION_ARGON2,
    another_instance,
    make_user,
    new_client,
    sign_in,
)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-one", "at least 12"),
        ("password1234", "too common"),
        ("Qwertyuiop123", "too common"),
        ("jane.doe-secure-2024", "e-mail"),
        ("x" * 257, "at most 256"),
    ],
)
def test_weak_passwords_are_refused(password: str, problem: str) -> None:
    problems = password_problems(password, email="Jane.Doe@un.org")
    assert any(problem in p for p in problems), problems


def test_a_long_uncommon_password_is_accepted() -> None:
    assert password_problems("Lantern-orbit-meadow-71", email="jane.doe@un.org") == []


async def test_hashes_are_argon2id_with_at_least_owasp_cost(app: FastAPI) -> None:
    async with another_instance(app, **PRODUCTION_ARGON2) as deployed:
        stored = await deployed.state.hasher.hash("Lantern-orbit-meadow-71")
    parameters = extract_parameters(stored)
    assert stored.startswith("$argon2id$")
    assert parameters.memory_cost >= 19 * 1024
    assert parameters.time_cost >= 2
    assert parameters.parallelism == 1


async def test_an_old_hash_is_upgraded_at_sign_in(app: FastAPI, database: Database) -> None:
    user = await make_user(database)
    weak_hash = RawArgon2(time_cost=1, memory_cost=8192, parallelism=2).hash(PASSWORD)
    async with database.transaction() as session:
        await session.exec(
            update(User)
            .where(User.id == user.id)  # type: ignore[arg-type]
            .values(password_hash=weak_hash)
        )
    async with (
        another_instance(app, **PRODUCTION_ARGON2) as deployed,
        new_client(deployed) as client,
    ):
        await sign_in(client, user.email)
    async with database.sessionmaker() as session:
        stored = await session.get(User, user.id)
    assert stored is not None and stored.password_hash != weak_hash
    parameters = extract_parameters(stored.password_hash)
    assert (parameters.time_cost, parameters.parallelism) == (2, 1)
    assert parameters.memory_cost >= 19 * 1024
