"""The package's layout: no module imports itself back, however indirectly, the pipelines hand
one run context around instead of many values, no two public classes share a name, and no file
points at a document that is not in the repository; the package's rooms stand on floors, model
math below the jobs that use it (``python tests/test_layout.py`` prints them).

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


def _statements(name: str, path: Path):
    """(module, names taken from it) of each import statement; ``import a.b``: ("a.b", ())."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            yield base, tuple(alias.name for alias in node.names)


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    deps = set()
    for base, names in _statements(name, path):
        subs = {f"{base}.{taken}" for taken in names} & modules.keys()
        deps |= subs if len(subs) == len(names) else subs | {base}
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
    assert {module for module, _ in added} >= {"cotvtm.pipelines.condition", "cotvtm.pipelines.finish",
                                                "cotvtm.teacher.stage", "cotvtm.training.embed"}
    for module, name in added:
        stage = getattr(importlib.import_module(module), name)
        assert isinstance(stage, type) and issubclass(stage, Stage), f"{module}.{name} is not a Stage"
        assert "placement" in {k for c in stage.__mro__ if c is not Stage for k in vars(c)}, f"{name}: no placement"
        assert "run" in {k for c in stage.__mro__ if c is not Stage for k in vars(c)}, f"{name}: no run"
        assert stage.takes is not Stage.takes, f"{name} does not say which records it takes"
    assert len(added) >= 10, added


# -- rooms and floors --
# A room is a top-level module of the package or one of its sub-packages (``cotvtm.api``,
# ``cotvtm.music``); an arrow from room A to room B is any import of a B module by an A module.
# The floors are the longest-path layering of the rooms: a room with no arrows out is on floor 0,
# any other one floor above the highest room it imports. An arrow inside a cycle of rooms runs
# back up (the rooms of a cycle share one floor): the house has none.

# Model math: what the jobs are made of, on floors below the jobs' settings, stages and commands.
MODEL_MATH = ("cotvtm.music", "cotvtm.prior", "cotvtm.encoders", "cotvtm.teacher")
JOBS = ("cotvtm.settings", "cotvtm.pipelines", "cotvtm.eval", "cotvtm.api", "cotvtm.cli", "cotvtm.commands",
        "*.cli")  # "*.cli": a sub-package's command line

# (what a rule keeps apart, the rooms whose modules import, the rooms they must not import)
RULES = (
    ("model math never imports a job's settings, stages or commands", MODEL_MATH, JOBS),
    ("the student never imports the teacher: the teacher side writes a bank, the prior reads it",
     ("cotvtm.prior",), ("cotvtm.teacher",)),
    ("the soundtrack pass never imports the evaluation", ("cotvtm.pipelines",), ("cotvtm.eval",)),
)


def room(module: str) -> str:
    """``cotvtm.music.engine`` -> ``cotvtm.music``; ``cotvtm.api`` -> itself."""
    return ".".join(module.split(".")[:2])


def rooms(edges: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """The room graph of a module graph (``graph()`` unless given)."""
    edges = graph() if edges is None else edges
    found = {room(name): set() for name in edges}
    for name, deps in edges.items():
        found[room(name)] |= {room(dep) for dep in deps} - {room(name)}
    return found


def levels(edges: dict[str, set[str]]) -> dict[str, int]:
    """Each room's floor; the rooms of one cycle share the floor of the cycle."""
    home = {node: node for node in edges}
    for component in cycles(edges):
        home |= {member: component[0] for member in component}
    above = defaultdict(set)
    for node, deps in edges.items():
        above[home[node]] |= {home[dep] for dep in deps} - {home[node]}
    floor = {}

    def visit(start):
        work = [start]
        while work:
            node = work[-1]
            waiting = [dep for dep in above[node] if dep not in floor]
            if waiting:
                work += waiting
                continue
            work.pop()
            floor[node] = 1 + max((floor[dep] for dep in above[node]), default=-1)

    for node in sorted(set(home.values())):
        visit(node)
    return {node: floor[home[node]] for node in edges}


def floors(edges: dict[str, set[str]]) -> tuple[int, list[tuple[str, str]]]:
    """(number of floors, the arrows running back up: those inside a cycle of rooms)."""
    back = [(a, b) for component in cycles(edges) for a in component for b in sorted(edges[a]) if b in component]
    return 1 + max(levels(edges).values(), default=-1), back


def _inside(module: str, places: tuple[str, ...]) -> bool:
    """``module`` is one of ``places``, inside one, or ends as a ``*``-place does."""
    return any(module == place or module.startswith(place + ".") or place[0] == "*" and module.endswith(place[1:])
               for place in places)


def broken(edges: dict[str, set[str]], sources: tuple[str, ...], targets: tuple[str, ...]) -> list[str]:
    """The imports from a module of ``sources`` of a module of ``targets``."""
    return [f"{name} -> {dep}" for name, deps in sorted(edges.items()) if _inside(name, sources)
            for dep in sorted(deps) if _inside(dep, targets)]


def missing(modules: dict[str, Path]) -> list[str]:
    """Imports of a package module that is not there (moved, or renamed): ``graph()`` would not see them."""
    return [f"{name} imports {base}" for name, path in sorted(modules.items()) for base, _ in _statements(name, path)
            if base.split(".")[0] == "cotvtm" and base not in modules]


def test_every_import_of_the_package_finds_its_module():
    assert missing(_modules()) == []


def test_a_planted_missing_module_is_found():
    modules = _modules()
    del modules["cotvtm.errors"]
    assert any(line.endswith(" imports cotvtm.errors") for line in missing(modules))


def test_no_room_imports_itself_back():
    assert floors(rooms())[1] == []


@pytest.mark.parametrize("planted", [("cotvtm.storage.store", "cotvtm.api")])
def test_a_planted_arrow_back_up_is_found(planted):
    edges = graph()
    edges[planted[0]] = edges[planted[0]] | {planted[1]}
    assert (room(planted[0]), room(planted[1])) in floors(rooms(edges))[1]


def test_floors_are_the_longest_path_layering():
    edges = {"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"e"}, "e": {"d"}}
    assert levels(edges) == {"a": 2, "b": 1, "c": 0, "d": 0, "e": 0}
    assert floors(edges) == (3, [("d", "e"), ("e", "d")])


@pytest.mark.parametrize("rule", RULES, ids=[rule[0] for rule in RULES])
def test_the_house_keeps_its_rules(rule):
    _, sources, targets = rule
    assert broken(graph(), sources, targets) == []


@pytest.mark.parametrize("planted", [("cotvtm.music.engine", "cotvtm.settings"), ("cotvtm.encoders.clip", "cotvtm.cli"),
                                     ("cotvtm.teacher.prompt", "cotvtm.training.cli"),
                                     ("cotvtm.prior.retrieval", "cotvtm.teacher.offline"),
                                     ("cotvtm.pipelines.condition", "cotvtm.eval.methods")])
def test_a_planted_broken_rule_is_found(planted):
    edges = graph()
    edges[planted[0]] = edges.get(planted[0], set()) | {planted[1]}
    assert " -> ".join(planted) in {line for _, sources, targets in RULES for line in broken(edges, sources, targets)}


def describe(edges: dict[str, set[str]]) -> str:
    """Rooms, floors, arrows back up and each room's floor, for a note."""
    count, back = floors(edges)
    lines = [f"rooms: {len(edges)}", f"floors: {count}", f"arrows back up: {len(back)}"]
    lines += [f"  {a} -> {b}" for a, b in back]
    lines += [f"{floor:3d}  {name}" for name, floor in sorted(levels(edges).items(), key=lambda item: (-item[1], item[0]))]
    return "\n".join(lines)


# -- docs --
# The docs name modules and scripts by path (``cotvtm/music/engine.py``, ``music/engine.py``, or
# ``engine.py`` in a section about its folder): each must be a file of the repository.
DOCS = ("README.md", "docs/ARCHITECTURE.md", "cluster/README.md")
CODE_PATH = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w-]+\.(?:py|sh))\b")


def unknown_paths(text: str, files: set[str]) -> list[str]:
    """The module and script paths ``text`` names that no file of ``files`` (repository paths) is."""
    def known(path: str) -> bool:
        return any(f == path or f.endswith("/" + path) for f in files)
    return sorted({m.group(1) for m in CODE_PATH.finditer(text) if not known(m.group(1))})


def test_every_module_path_the_docs_name_exists():
    files = {str(p.relative_to(ROOT)) for top in ("cotvtm", "jobs", "bench", "tests", "cluster")
             for p in (ROOT / top).rglob("*") if p.suffix in (".py", ".sh")}
    assert unknown_paths("see `eval/captioner.py`, music/engine.py", files) == ["eval/captioner.py"]
    found = {doc: unknown_paths((ROOT / doc).read_text(encoding="utf-8"), files) for doc in DOCS}
    assert {doc: paths for doc, paths in found.items() if paths} == {}


# -- options --
# Every command's options come from one mechanism (``cotvtm.options``): settings classes whose
# fields are the flags, the API's keywords and the checks. So no module but ``options`` makes a
# parser or adds an argument, and across all commands a flag always means one setting.


def _argparse_calls() -> list[str]:
    """Calls that make a parser or add an argument, outside ``cotvtm.options``: in the package and
    in the job entrypoints."""
    found = []
    paths = [*(ROOT / "cotvtm").rglob("*.py"), *(ROOT / "jobs").glob("*.py")]
    for path in paths:
        if path == ROOT / "cotvtm" / "options.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if called in ("ArgumentParser", "add_argument", "add_mutually_exclusive_group"):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} {called}")
    return found


def test_only_the_options_module_makes_a_parser_or_an_option():
    assert _argparse_calls() == []


def _flags() -> dict[str, dict[str, str]]:
    """Each command's listed flags -> the setting (field name) each fills; renamed flags, hidden
    from --help, are not listed."""
    import argparse

    from cotvtm.commands.reference import commands

    found = {}
    for name, command in commands().items():
        found[name] = {}
        for action in command._actions:
            if action.option_strings and action.help != argparse.SUPPRESS and action.dest != "help":
                found[name][action.option_strings[-1] if len(action.option_strings) > 1 and
                            not action.option_strings[0].startswith("--") else action.option_strings[0]] = action.dest
    return found


def test_across_commands_a_flag_is_one_setting_and_a_setting_one_flag():
    flags = _flags()
    assert {"soundtrack", "demo", "label", "bank", "embed", "distill", "evaluate", "build-tiny"} <= set(flags)
    meaning, spelling = defaultdict(set), defaultdict(set)
    for command, options in flags.items():
        assert len(set(options.values())) == len(options), f"{command}: two flags fill one setting"
        for flag_, dest in options.items():
            meaning[flag_].add(dest)
            spelling[dest].add(flag_)
    assert {f: d for f, d in meaning.items() if len(d) > 1} == {}
    assert {d: f for d, f in spelling.items() if len(f) > 1} == {}


def test_the_teacher_endpoint_is_declared_once_for_every_command_that_has_one():
    from cotvtm.options import flag, settings
    from cotvtm.teacher.settings import EndpointConfig

    endpoint = {flag(f) for f in settings(EndpointConfig)}
    assert {"--teacher-url", "--teacher-model", "--teacher-key-env", "--teacher-retries"} <= endpoint
    flags = _flags()
    for command in ("soundtrack", "label", "evaluate"):
        assert endpoint <= set(flags[command]), command
        others = {f for f in flags[command] if re.search(r"(url|model|key-env|retries|timeout)$", f)
                  and "teacher" not in f and "captioner" not in f} - {"--endpoint-url"}
        assert others == set(), f"{command}: endpoint-like flags beside the endpoint's: {others}"


def test_a_renamed_flag_still_works_and_says_so():
    from cotvtm.cli import parser

    from cotvtm.options import given
    from cotvtm.teacher.settings import BuildConfig, LabelEndpoint

    with pytest.warns(FutureWarning, match="--base-url is renamed --teacher-url"):
        a = parser().parse_args(["label", "--out", "o", "--scenes", "1", "--base-url", "http://127.0.0.1:9/v1"])
    assert given(a, BuildConfig, LabelEndpoint)["teacher_url"] == "http://127.0.0.1:9/v1"
    # an earlier spelling lives only where it was: in soundtrack --endpoint is still --endpoint-url's
    assert parser().parse_args(["soundtrack", "in", "out", "--endpoint", "http://127.0.0.1:9"]).endpoint_url
    from cotvtm.commands.soundtrack import settings as soundtrack_settings

    with pytest.warns(FutureWarning, match="--model-actors is renamed --embed-actors, --prior-actors, --music-actors"):
        given = soundtrack_settings(parser().parse_args(["soundtrack", "in", "out", "--model-actors", "2"]))
    assert (given["embed_actors"], given["prior_actors"], given["music_actors"]) == (2, 2, 2)


def test_the_readme_option_tables_are_the_declarations():
    """README's option tables are written from the declarations (``python -m
    cotvtm.commands.reference README.md``): a default or a flag changed in code changes them."""
    from cotvtm.commands.reference import rewritten

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "<!-- options: soundtrack -->" in text
    assert rewritten(text) == text, "README's option tables are out of date: python -m cotvtm.commands.reference README.md"


if __name__ == "__main__":
    print(describe(rooms()))
