"""The shape of the package: arrows point down, so no module of ``afcli`` imports, directly or through
others, a module that imports it back — imports inside functions included, which hide a cycle from
Python's import machinery but not from a reader."""

import ast

from conftest import ROOT


def import_graph() -> dict[str, set[str]]:
    """Module → the ``afcli`` modules it imports anywhere in its body (``from afcli.x import y``
    counts ``afcli.x``, and ``afcli.x.y`` when that is a module)."""
    package = ROOT / "afcli"
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("afcli"):
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in graph[node]:
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_afcli_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_module_is_over_400_lines():
    """A module that grows past this is doing several jobs: split it by job (the method folders show how)."""
    long = {
        str(path.relative_to(ROOT)): count
        for path in (ROOT / "afcli").rglob("*.py")
        if (count := len(path.read_text().splitlines())) > 400
    }
    assert long == {}


def test_nothing_below_the_methods_imports_one():
    """Arrows point down: shared packages reach a method only through the table's lazy specs."""
    graph = import_graph()
    upward = {
        (module, target)
        for module, targets in graph.items()
        if not module.startswith(("afcli.methods", "afcli.cli"))
        for target in targets
        if target.startswith("afcli.methods.")
    }
    assert upward == set()
