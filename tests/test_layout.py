"""The package's layout: no module imports itself back, however indirectly, the pipelines hand
one run context around instead of many values, no two public classes share a name, and no file
points at a document that is not in the repository.

Every ``import`` and ``from ... import`` of a ``cotvtm`` module counts, at module level or inside
a function (a lazy import is still a dependency). ``from cotvtm.x import y`` depends on the
module ``cotvtm.x.y`` when there is one, else on ``cotvtm.x``.
"""

import ast
import re
import subprocess
from collections import defaultdict
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


def test_no_two_public_classes_share_a_name():
    """A class name says which class it is wherever it is imported: ``Entry`` of the report and
    ``Entry`` of the evaluation could not be told apart in a traceback or a search."""
    where = defaultdict(list)
    for name, path in sorted(_modules().items()):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                where[node.name].append(name)
    shared = {cls: modules for cls, modules in where.items() if len(modules) > 1}
    assert not shared, "; ".join(f"{cls} in {', '.join(modules)}" for cls, modules in sorted(shared.items()))


# Pointers to documents that live outside the repository: a reader of a clone cannot follow
# them. The paper is cited by its title or arXiv id; a design note the repository needs is in
# docs/. Each pattern is matched case-insensitively against every tracked text file.
OUTSIDE_DOCUMENTS = (
    r"\bDESIGN\.md\b",  # a design note kept beside the repository, not in it
    r"(?:\.\./)+shared\b",  # a folder next to the checkout
    r"\bshared/paper",  # the paper as a local file
    r"\bpaper[\w-]*\.(?:pdf|md|tex|txt)\b",  # likewise, by its file name
    r"(?<![\w.])/work\b/",  # an absolute path on one machine
)


def _outside_documents(text: str) -> list[str]:
    return [match.group(0) for pattern in OUTSIDE_DOCUMENTS for match in re.finditer(pattern, text, re.IGNORECASE)]


def _tracked_text_files() -> dict[str, str]:
    try:
        listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    texts = {}
    for name in filter(None, listed.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


# Each plant is joined from two halves when the test runs, so that this file, which the check
# reads too, holds no pointer itself.
@pytest.mark.parametrize("planted", [("see DESIGN", ".md, section 3"), ("the notes in ..", "/shared/notes.txt"),
                                     ("as in shared", "/paper/method.md"), ("Table 5 of paper", ".pdf"),
                                     ("read /wo", "rk/main/docs first")])
def test_a_planted_pointer_outside_the_repository_is_found(planted):
    assert _outside_documents("some text\n" + "".join(planted) + "\nmore text")


def test_the_paper_may_be_cited_by_title_and_arxiv_id():
    assert _outside_documents("CoT-VTM (arXiv:2501.00001), Section 4.1; https://arxiv.org/pdf/2501.00001") == []


def test_no_file_cites_a_document_outside_the_repository():
    texts = _tracked_text_files()
    assert "README.md" in texts and "docs/ARCHITECTURE.md" in texts
    found = []
    for name, text in sorted(texts.items()):
        for number, line in enumerate(text.splitlines(), 1):
            found += [f"{name}:{number}: {hit}" for hit in _outside_documents(line)]
    assert not found, "\n".join(found)


def _calls(name: str) -> list[tuple[str, ast.Call]]:
    """Every call of a function or method called ``name`` in the package, with its module."""
    found = []
    for module, path in sorted(_modules().items()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if called == name:
                    found.append((module, node))
    return found


def _stages_added() -> list[tuple[str, str]]:
    """(module, stage name) of every stage handed to ``add_stage``: a name, or each name of a
    tuple the call's loop runs over."""
    added = []
    for module, path in sorted(_modules().items()):
        tree = ast.parse(path.read_text())
        loops = {loop.target.id: loop.iter for loop in ast.walk(tree)
                 if isinstance(loop, ast.For) and isinstance(loop.target, ast.Name)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "add_stage":
                arg = node.args[1]
                arg = loops.get(arg.id, arg) if isinstance(arg, ast.Name) else arg
                names = arg.elts if isinstance(arg, ast.Tuple) else [arg]
                added += [(module, name.id) for name in names]
    return added


def test_every_ray_data_stage_takes_the_one_shape():
    """``stage.add_stage`` is the one place that hands work to Ray Data's ``map_batches``, and
    it is given only subclasses of ``stage.Stage`` (that declare a placement and a ``run``)."""
    import importlib

    from cotvtm.stage import Stage

    assert [module for module, _ in _calls("map_batches")] == ["cotvtm.stage"]
    added = _stages_added()
    assert {module for module, _ in added} >= {"cotvtm.pipelines.condition", "cotvtm.pipelines.soundtrack",
                                                "cotvtm.teacher.stage", "cotvtm.training.embed"}
    for module, name in added:
        stage = getattr(importlib.import_module(module), name)
        assert isinstance(stage, type) and issubclass(stage, Stage), f"{module}.{name} is not a Stage"
        assert "placement" in {k for c in stage.__mro__ if c is not Stage for k in vars(c)}, f"{name}: no placement"
        assert "run" in {k for c in stage.__mro__ if c is not Stage for k in vars(c)}, f"{name}: no run"
        assert stage.takes is not Stage.takes, f"{name} does not say which records it takes"
    assert len(added) >= 10, added
