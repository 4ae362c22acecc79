"""Hushpost's modules import each other in layers, never in a loop.

Lib is the bottom layer, crypto just above it (of the apps it knows only the
``OrgKey`` model its organisation keys live in, the ``DerivationRoot`` and ``DkimKey`` beside it); notifications and audit sit
below accounts and messaging; an e-mail kind is registered by the app that owns
it, so the outbox needs nothing above it. An import written inside a function to
dodge a loop would hide one: only the places Django requires
(``AppConfig.ready``) and the command line's start-up (after settings are
loaded) may import there.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hushpost"
# The bottom layers, and all of Hushpost each may import.
BOTTOM = {
    "hushpost.lib": ("hushpost.lib",),
    "hushpost.crypto": ("hushpost.lib", "hushpost.crypto", "hushpost.orgs.models"),
}
# Where an import inside a function is how Django or start-up works, not a dodge.
ALLOWED_INSIDE = {("hushpost.cli", "main")} | {
    (f"hushpost.{app}.apps", "ready") for app in ("accounts", "gateway", "messaging", "ops", "regions", "server")
}


def _modules():
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text())


def _imports(tree):
    """(imported module, enclosing function or None) for each hushpost import."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("hushpost"):
                targets = [child.module] + [f"{child.module}.{a.name}" for a in child.names]
                found.extend((t, function) for t in targets)
            elif isinstance(child, ast.Import):
                found.extend((a.name, function) for a in child.names if a.name.startswith("hushpost"))
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            visit(child, inner)

    visit(tree, None)
    return found


def _graph():
    modules = dict(_modules())
    graph = {name: set() for name in modules}
    inside = []
    for name, tree in modules.items():
        for target, function in _imports(tree):
            if target in modules and target != name:
                graph[name].add(target)
            if function is not None and (name, function) not in ALLOWED_INSIDE:
                inside.append(f"{name}.{function} imports {target}")
    return graph, inside


def _cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_no_module_imports_another_that_imports_it_back():
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_no_import_hides_inside_a_function():
    _, inside = _graph()
    assert inside == []


def test_the_outbox_knows_nothing_of_accounts_or_messages():
    graph, _ = _graph()
    below = [m for m in graph if m.startswith(("hushpost.notifications", "hushpost.audit", "hushpost.lib"))
             and ".management." not in m]
    reaches = {m: sorted(t for t in graph[m] if t.startswith(("hushpost.accounts", "hushpost.messaging")))
               for m in below}
    assert {m: t for m, t in reaches.items() if t} == {}


def _within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_lib_and_crypto_import_nothing_above_them():
    graph, _ = _graph()
    beyond = {m: sorted(t for t in targets if not _within(t, allowed))
              for layer, allowed in BOTTOM.items() for m, targets in graph.items() if _within(m, (layer,))}
    assert {m: t for m, t in beyond.items() if t} == {}


def test_retention_sits_below_the_portals_and_the_worker():
    # The worker and the admin area run the purge; the purge knows neither.
    above = ("hushpost.senders", "hushpost.recipients", "hushpost.orgadmin", "hushpost.ops", "hushpost.gateway",
             "hushpost.regions", "hushpost.server")
    graph, _ = _graph()
    reaches = {m: sorted(t for t in targets if _within(t, above))
               for m, targets in graph.items() if _within(m, ("hushpost.retention",))}
    assert {m: t for m, t in reaches.items() if t} == {}
