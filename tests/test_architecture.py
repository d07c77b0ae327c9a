"""The shape of the house, held by tests: who may import whom, and who may ask Casbin.

Pages and the API are thin callers of the same service functions, so a page never
imports an API module; every "may I?" goes through `ctcp.authz.guard.decide`; and
authentication (`ctcp.authn`) sits above `identity` and `oauth`, below `authz`.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "platform" / "ctcp"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("ctcp", *path.relative_to(PACKAGE).with_suffix("").parts))
        yield name.removesuffix(".__init__"), ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module) -> set[str]:
    """Every module an import statement names, `from a import b` counting `a` and `a.b`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_api(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("ctcp.") and (last == "api" or last.endswith("_api"))


def _is_page(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return module.startswith("ctcp.web.") or last == "pages" or last.endswith("_pages")


def test_no_page_or_web_module_imports_an_api_module() -> None:
    offenders = {
        module: sorted(name for name in _imports(tree) if _is_api(name))
        for module, tree in _modules()
        if _is_page(module)
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def test_no_api_module_imports_a_page_module() -> None:
    offenders = {
        module: sorted(name for name in _imports(tree) if _is_page(name))
        for module, tree in _modules()
        if _is_api(module)
    }
    assert {module: names for module, names in offenders.items() if names} == {}


def _calls(tree: ast.Module, attribute: str) -> int:
    return sum(
        1
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == attribute
    )


def test_only_the_authorization_module_asks_casbin() -> None:
    """Casbin is loaded in `authz.policy` and asked only in `authz.guard` (`decide`, and
    the refusal naming the OAuth scope that would do)."""
    asking = {
        module
        for module, tree in _modules()
        if _calls(tree, "scopes") or _calls(tree, "enforce") or "casbin" in _imports(tree)
    }
    assert asking <= {"ctcp.authz.guard", "ctcp.authz.policy"}
    users_of_engine = {module for module, tree in _modules() if "policy_of" in ast.unparse(tree)}
    assert users_of_engine <= {"ctcp.authz.guard"}


def test_authentication_sits_between_identity_and_authorization() -> None:
    """authz reads a Subject, never a cookie; identity and oauth (except their routes)
    know nothing of the layers above them."""
    for module, tree in _modules():
        imported = _imports(tree)
        if module.startswith("ctcp.authz."):
            assert not {n for n in imported if n.startswith(("ctcp.identity", "ctcp.web"))}, module
        if module.startswith(("ctcp.identity.", "ctcp.oauth.")) and not (
            _is_api(module) or _is_page(module)
        ):
            above = {n for n in imported if n.startswith(("ctcp.authn", "ctcp.web"))}
            assert not above, (module, above)
