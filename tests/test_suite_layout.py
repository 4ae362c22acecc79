"""The suite's own layout: a test module imports people from ``tests/personas.py`` and shared
steps from helper modules, never from another test module or from a conftest.

A test module that imports from another runs that module's fixtures and set-up wherever it is
imported, and a reader cannot tell where a person or a step comes from.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_test_module(dotted: str) -> bool:
    last = dotted.rsplit(".", 1)[-1]
    return last == "conftest" or last.startswith("test_")


def borrowed(source: str, package: str = "tests") -> list[str]:
    """The test modules and conftests that ``source`` imports from (a module of ``package``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            if _is_test_module(base):
                found.append(base)
            found += [f"{base}.{alias.name}" for alias in node.names if _is_test_module(alias.name)]
    return found


def test_no_module_of_the_suite_imports_from_a_test_module_or_a_conftest():
    offenders = {}
    for path in sorted(TESTS.rglob("*.py")):
        package = ".".join(path.relative_to(TESTS.parent).parent.parts)
        if found := borrowed(path.read_text(), package):
            offenders[str(path.relative_to(TESTS.parent))] = found
    assert offenders == {}, "move what they share to tests/personas.py, tests/helpers.py or a conftest fixture"


def test_the_check_sees_every_way_of_importing():
    assert borrowed("from tests.conftest import PASSWORD") == ["tests.conftest"]
    assert borrowed("from tests.test_access import World") == ["tests.test_access"]
    assert borrowed("import tests.security.test_open_redirects") == ["tests.security.test_open_redirects"]
    assert borrowed("from tests import test_gateway") == ["tests.test_gateway"]
    assert borrowed("from .test_two_factor import enrol", "tests.security") == ["tests.security.test_two_factor"]
    assert borrowed("from ..browser.test_accessibility import check", "tests.security") == [
        "tests.browser.test_accessibility"]
    assert borrowed("from tests.personas import PASSWORD\nfrom tests.helpers import send") == []
