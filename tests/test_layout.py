"""The package's layout: no module imports itself back, however indirectly, and the pipelines
hand one run context around instead of many values.

Every ``import`` and ``from ... import`` of a ``cotvtm`` module counts, at module level or inside
a function (a lazy import is still a dependency). ``from cotvtm.x import y`` depends on the
module ``cotvtm.x.y`` when there is one, else on ``cotvtm.x``.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "cotvtm").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            deps |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            subs = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
            deps |= subs if len(subs) == len(node.names) else subs | {base}
    return {dep for dep in deps if dep in modules and dep != name}


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]

    def visit(start):
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_imports_of_every_kind():
    edges = graph()
    assert "cotvtm.storage.open" in edges["cotvtm.storage"]  # from a package's face
    assert "cotvtm.storage.s3" in edges["cotvtm.storage.open"]  # a lazy import inside a function
    assert "cotvtm.pipelines.runner" in edges["cotvtm.api"]


@pytest.mark.parametrize("planted", [("cotvtm.storage.store", "cotvtm.storage.local")])
def test_a_planted_cycle_is_found(planted):
    edges = graph()
    edges[planted[0]] = edges[planted[0]] | {planted[1]}
    assert any(set(planted) <= set(component) for component in cycles(edges))


def test_no_module_imports_itself_back():
    assert cycles(graph()) == []


def test_pipeline_functions_take_at_most_five_parameters():
    """The run's context travels as one object (``RunContext``), not value by value."""
    longest = []
    for path in (ROOT / "cotvtm" / "pipelines").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs if a.arg not in ("self", "cls")]
                names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
                longest.append((len(names), f"{path.name}:{node.name}"))
    assert max(longest)[0] <= 5, sorted(longest)[-3:]
