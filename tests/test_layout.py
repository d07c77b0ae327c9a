"""The source layout keeps the standard library's `platform` and the Alembic library intact."""

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_stdlib_platform_module_is_not_shadowed() -> None:
    platform = importlib.import_module("platform")
    assert platform.__file__ is not None
    assert Path(platform.__file__).parent == Path(sys.modules["os"].__file__ or "").parent
    assert callable(platform.python_version)


def test_platform_source_root_holds_only_the_ctcp_package() -> None:
    children = sorted(p.name for p in (ROOT / "platform").iterdir() if p.name != "__pycache__")
    assert children == ["ctcp"]
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_alembic_folder_does_not_shadow_the_library() -> None:
    assert not (ROOT / "alembic" / "__init__.py").exists()
    import alembic

    assert "site-packages" in (alembic.__file__ or "")


def test_ctcp_imports_from_the_source_root() -> None:
    import ctcp

    assert Path(ctcp.__file__ or "").parent == ROOT / "platform" / "ctcp"
