"""The project's documentation explains the repository as it is, from the repository alone.

No database: these read files, the settings class, the policy file and the OpenAPI
document, and run in well under a second.
"""

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctcp.app import create_app
from ctcp.authz.oauth_scopes import SCOPE_ROLE_PREFIX
from ctcp.authz.policy import read_policy_file
from ctcp.core.config import PROJECT_ROOT, Settings

DOCS = PROJECT_ROOT / "docs"
# The project's own Markdown: the short path in and every page it leads to.
MARKDOWN = [PROJECT_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
# A path outside the repository: the notes beside it, or the build machine's tree.
# (Written so that this file does not match its own patterns.)
OUTSIDE_REFERENCES = re.compile(r"\.\.[/]shared|(?<![\w.~-])[/]work(?![\w-])")
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
SETTING = re.compile(r"\bCTCP_[A-Z0-9_]+\b")
# Environment variables named in the documentation that are not settings, each with the
# file that reads it, so this list cannot outlive them.
READ_ELSEWHERE = {
    "CTCP_ADMIN_PASSWORD": "platform/ctcp/cli.py",  # create-admin's password
    "CTCP_ADMIN_DATABASE_URL": "platform/ctcp/cli.py",  # db create-roles, setup
    "CTCP_SYNC_CLIENT_SECRET": "platform/ctcp/cli.py",  # sync pull's client secret
    "CTCP_DEMO_ADMIN_EMAIL": "scripts/run-portal",
    "CTCP_TEST_DATABASE_URL": "tests/conftest.py",
    "CTCP_TEST_WORKERS": "scripts/test",
    "CTCP_CHROMIUM": "tests/browser/conftest.py",
    "CTCP_TEST_ARTIFACTS": "tests/browser/conftest.py",
    "CTCP_DB_OWNER_PASSWORD": "docker-compose.yml",
    "CTCP_DB_APP_PASSWORD": "docker-compose.yml",
    "CTCP_PUBLIC_ORIGIN": "docker-compose.yml",
}
MATRIX_BEGIN = "<!-- policy-matrix:begin -->"
MATRIX_END = "<!-- policy-matrix:end -->"


def _repository_files() -> list[Path]:
    """Every file the repository holds or is about to (tracked, or new and not ignored)."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    try:
        listed = subprocess.run(
            [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError:
        pytest.skip("not a git checkout")
    paths = (PROJECT_ROOT / name for name in listed.decode().split("\0") if name)
    return [path for path in paths if path.is_file()]


def _text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def settings_variables() -> set[str]:
    """The environment variables `Settings` reads."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def policy_matrix() -> str:
    """The permission matrix of policies/policy.csv as a Markdown table: one row per
    resource and action, one column per role, the data scopes each role is granted, and
    the OAuth scopes that open the action to an API client."""
    roles: list[str] = []
    grants: dict[tuple[str, str], dict[str, list[str]]] = {}
    for _, role, domain, resource, action, scope in read_policy_file():
        granted = scope if domain == "*" else f"{scope} in {domain}"
        if not role.startswith(SCOPE_ROLE_PREFIX) and role not in roles:
            roles.append(role)
        grants.setdefault((resource, action), {}).setdefault(role, []).append(granted)
    resources = list(dict.fromkeys(resource for resource, _ in grants))
    header = ["resource · action", *(f"`{role}`" for role in roles), "API client scope"]
    rows = [header, ["---"] * len(header)]
    for resource in resources:
        for (row_resource, action), by_role in grants.items():
            if row_resource != resource:
                continue
            cells = [" + ".join(by_role[role]) if role in by_role else "—" for role in roles]
            clients = [
                f"`{role.removeprefix(SCOPE_ROLE_PREFIX)}`"
                for role in by_role
                if role.startswith(SCOPE_ROLE_PREFIX)
            ]
            rows.append([f"{resource} · {action}", *cells, ", ".join(clients) or "—"])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _links(path: Path) -> Iterator[str]:
    """The targets of a Markdown file's links that point into the repository."""
    for target in LINK.findall(path.read_text("utf-8")):
        if not re.match(r"[a-z][a-z0-9+.-]*:", target):
            yield target


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings."""
    headings = re.findall(r"^#{1,6} +(.+?) *$", path.read_text("utf-8"), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_no_file_refers_outside_the_repository() -> None:
    offenders = []
    for path in _repository_files():
        text = _text_of(path)
        for number, line in enumerate((text or "").splitlines(), start=1):
            if OUTSIDE_REFERENCES.search(line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_relative_link_resolves() -> None:
    broken = []
    for path in MARKDOWN:
        for target in _links(path):
            name, _, anchor = target.partition("#")
            linked = path.parent / name if name else path
            if not linked.exists() or (
                anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
            ):
                broken.append(f"{path.relative_to(PROJECT_ROOT)}: {target}")
    assert not broken, "\n".join(broken)


def test_every_setting_is_documented_in_operations() -> None:
    operations = (DOCS / "operations.md").read_text("utf-8")
    missing = sorted(name for name in settings_variables() if name not in operations)
    assert not missing, f"name these settings in docs/operations.md: {missing}"


def test_every_variable_named_in_the_docs_is_read_somewhere() -> None:
    known = settings_variables() | set(READ_ELSEWHERE)
    unknown = sorted(
        f"{path.relative_to(PROJECT_ROOT)}: {name}"
        for path in MARKDOWN
        for name in set(SETTING.findall(path.read_text("utf-8")))
        if name not in known
    )
    assert not unknown, "neither a setting nor an allowed variable:\n" + "\n".join(unknown)


@pytest.mark.parametrize(("name", "reader"), sorted(READ_ELSEWHERE.items()))
def test_allowed_variables_are_still_read(name: str, reader: str) -> None:
    assert name in (PROJECT_ROOT / reader).read_text("utf-8")


def test_design_matrix_is_the_policy_file() -> None:
    design = (DOCS / "design.md").read_text("utf-8")
    documented = design.split(MATRIX_BEGIN, 1)[1].split(MATRIX_END, 1)[0].strip()
    expected = policy_matrix()
    assert documented == expected, f"replace the matrix in docs/design.md with:\n{expected}"


def test_every_operation_is_in_the_api_contract() -> None:
    contract = (DOCS / "api.md").read_text("utf-8")
    operations = create_app(Settings(environment="test")).openapi()["paths"]
    missing = [
        f"{method.upper()} {path}"
        for path, item in operations.items()
        for method in item
        if f"`{method.upper()} {path}`" not in contract
    ]
    assert not missing, f"document these operations in docs/api.md: {missing}"
