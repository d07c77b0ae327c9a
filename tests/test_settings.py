"""Settings: defaults, parsing, and refusing weak secrets in production."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from ctcp.core.config import Settings


def test_default_database_is_a_sqlite_file_under_var(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, database_url="")
    assert settings.database_url == f"sqlite:///{tmp_path / 'ctcp.db'}"


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(var_dir=tmp_path).secret()
    second = Settings(var_dir=tmp_path).secret()
    assert first == second and len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("secret", [None, "changeme", "short-secret"])
def test_production_refuses_default_or_weak_secrets(secret: str | None, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CTCP_SECRET_KEY"):
        Settings(environment="production", secret_key=secret, var_dir=tmp_path)


def test_production_accepts_a_strong_secret(tmp_path: Path) -> None:
    settings = Settings(environment="production", secret_key="k" * 48, var_dir=tmp_path)
    assert settings.secret() == b"k" * 48


def test_environment_variables_configure_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CTCP_MFA_REQUIRED_ROLES", "auditor, cted_analyst")
    monkeypatch.setenv("CTCP_SESSION_IDLE_MINUTES", "10")
    monkeypatch.setenv("CTCP_DATABASE_URL", "postgresql://postgres@db:5432/ctcp")
    settings = Settings(var_dir=tmp_path)
    assert settings.mfa_required_roles == frozenset({"auditor", "cted_analyst"})
    assert settings.session_idle_minutes == 10
    assert settings.database_url == "postgresql://postgres@db:5432/ctcp"


def test_argon2_cost_below_the_minimum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings(argon2_memory_kib=4096, var_dir=tmp_path)
