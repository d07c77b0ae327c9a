"""The source layout keeps the standard library's `platform` and the Alembic library intact."""

import ast
import importlib
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
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


def test_ctcp_demo_imports_from_its_own_folder() -> None:
    import ctcp_demo

    assert Path(ctcp_demo.__file__ or "").parent == ROOT / "demo" / "ctcp_demo"


def _run_at_import(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module that run when it is imported: all but function bodies."""
    for node in ast.iter_child_nodes(tree):
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _run_at_import(node)


def _imports_demo(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(alias.name.split(".")[0] == "ctcp_demo" for alias in node.names)
    return isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ctcp_demo"


def test_product_package_holds_no_demo_code() -> None:
    """The demo lives in demo/ (package ctcp_demo): ctcp imports it only inside `ctcp demo`."""
    package = ROOT / "platform" / "ctcp"
    assert not (package / "demo").exists()
    at_import = [
        f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        for path in sorted(package.rglob("*.py"))
        for node in _run_at_import(ast.parse(path.read_text(encoding="utf-8")))
        if _imports_demo(node)
    ]
    assert at_import == []


def test_wheel_and_sdist_hold_no_demo(tmp_path: Path) -> None:
    """What the product ships (`uv build`, offline: bootstrap cached hatchling) has no demo."""
    uv = ROOT / ".tools" / "bin" / "uv"
    subprocess.run(
        [uv, "build", "--offline", "--wheel", "--sdist", "-o", tmp_path, ROOT],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    [wheel] = tmp_path.glob("ctcp-*.whl")
    [sdist] = tmp_path.glob("ctcp-*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = archive.namelist()
    with tarfile.open(sdist) as archive:
        sdist_files = archive.getnames()
    assert "ctcp/cli.py" in wheel_files
    assert any(name.endswith("platform/ctcp/cli.py") for name in sdist_files)
    demo = [name for name in wheel_files + sdist_files if "ctcp_demo" in name or "/demo/" in name]
    assert demo == []
