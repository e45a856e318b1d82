"""The package's layers, written once, and a check of its import graph against them (ast only, nothing imported).

A module may import from its own layer and the layers below it, never from a higher one; no import cycle between
modules or between packages; no import inside a function or after the module's first definition (the two ways to
hide a cycle), except of the heavy optional dependencies in LAZY_IMPORTS.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "tfregimes"

# Lowest first. A name covers its subpackages; the longest name that prefixes a module is its package.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Import no other tfregimes package. analysis (numpy, scipy, pandas) and config (the run's settings and option
    # table) import no TensorFlow either, so results and report start without it (tests/test_no_tensorflow.py).
    ("tfregimes.base", "tfregimes.analysis", "tfregimes.config"),
    ("tfregimes.data", "tfregimes.models"),
    ("tfregimes.optim", "tfregimes.steps", "tfregimes.diagnostics.minimum", "tfregimes.diagnostics.dynamics"),
    ("tfregimes.diagnostics.adapters",),  # Training callbacks and evaluate metrics around the pure measures.
    ("tfregimes.training",),
    ("tfregimes.evaluation",),  # A trained model from an EvaluationConfig to its evaluation.
    # Experiments and analysis, built on whole runs.
    ("tfregimes.benchmark", "tfregimes.sweep", "tfregimes.results", "tfregimes.report"),
    ("tfregimes.cli",),  # Every front end; the only code that reads absl FLAGS.
)
# Packages that only group others: their __init__ may import nothing from tfregimes.
GROUPS = ("tfregimes", "tfregimes.diagnostics")
# `python -m` entry points: two-line shims into tfregimes.cli, members of its layer wherever they live, so that
# `tfregimes.results.__main__` importing tfregimes.cli is no upward import (every `*.__main__` is one too).
ENTRY_POINTS = ("tfregimes.train", "tfregimes.evaluate")
# Heavy optional dependencies a function may import on first use (seconds to import, or only some runs need them).
LAZY_IMPORTS = frozenset({"tensorflow_datasets", "sklearn", "mnist1d", "matplotlib", "scipy", "ray", "torch"})
# The one import a group package makes: the package's __init__ has the first import of TensorFlow, wherever it
# happens, filter TensorFlow's C++ start-up lines; it imports no TensorFlow itself (base imports nothing of tfregimes).
GROUP_IMPORTS = {"tfregimes": frozenset({"tfregimes.base.quiet_start"})}


@dataclasses.dataclass(frozen=True)
class Import:
    module: str  # The importing module.
    target: str  # The imported module (tfregimes or third party).
    line: int
    lazy: bool  # Inside a function, or after the module's first definition.


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def read_sources(root: Path = ROOT) -> dict[str, str]:
    return {module_name(path, root): path.read_text() for path in sorted(root.rglob("*.py"))}


def _is_package(name: str, sources: dict[str, str]) -> bool:
    return any(other.startswith(name + ".") for other in sources)


def imports_of(name: str, source: str, sources: dict[str, str]) -> list[Import]:
    """Every import statement of module `name`, resolved to module names (`from a import b` is a.b if that is a
    module of the package, else a)."""
    tree = ast.parse(source)
    package = name if _is_package(name, sources) else name.rpartition(".")[0]
    found = []
    first_definition = min((node.lineno for node in tree.body
                            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))),
                           default=None)
    function_lines = {line for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      for line in range(node.lineno, (node.end_lineno or node.lineno) + 1)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in sources else base for alias in node.names]
        else:
            continue
        lazy = node.lineno in function_lines or (first_definition is not None and node.lineno > first_definition)
        found.extend(Import(name, target, node.lineno, lazy) for target in dict.fromkeys(targets))
    return found


def is_entry_point(module: str) -> bool:
    return module in ENTRY_POINTS or module.endswith(".__main__")


def package_of(module: str) -> str | None:
    if is_entry_point(module):
        return "tfregimes.cli"
    names = [name for layer in LAYERS for name in layer if module == name or module.startswith(name + ".")]
    return max(names, key=len) if names else None


def layer_of(module: str) -> int | None:
    package = package_of(module)
    return next(index for index, layer in enumerate(LAYERS) if package in layer) if package else None


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done.
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return path[path.index(successor):] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_violations(sources: dict[str, str]) -> list[str]:
    """Every breach of the rules in the module docstring, as readable lines (empty: the graph is clean)."""
    problems = []
    module_graph: dict[str, set[str]] = {name: set() for name in sources}
    package_graph: dict[str, set[str]] = {}
    for name, source in sorted(sources.items()):
        for imported in imports_of(name, source, sources):
            internal = imported.target == "tfregimes" or imported.target.startswith("tfregimes.")
            where = f"{name} line {imported.line}: import of {imported.target}"
            top = imported.target.split(".")[0]
            if imported.lazy and top not in LAZY_IMPORTS:
                problems.append(f"{where} inside a function or after the first definition; move it to the top "
                                f"(or add a heavy optional dependency to LAZY_IMPORTS)")
            if not internal:
                continue
            if not imported.lazy:
                module_graph[name].add(imported.target)
            if is_entry_point(name) and package_of(imported.target) != "tfregimes.cli":
                problems.append(f"{where}: an entry point only imports its front end in tfregimes.cli")
            if name in GROUPS and imported.target not in GROUP_IMPORTS.get(name, ()):
                problems.append(f"{where}: {name} only groups packages and imports none of them")
                continue
            source_layer, target_layer = layer_of(name), layer_of(imported.target)
            if source_layer is None or target_layer is None:
                continue  # Reported below, once per module.
            if target_layer > source_layer:
                problems.append(f"{where}: layer {source_layer} ({package_of(name)}) imports layer {target_layer} "
                                f"({package_of(imported.target)})")
            if package_of(name) != package_of(imported.target):
                package_graph.setdefault(package_of(name), set()).add(package_of(imported.target))
        if layer_of(name) is None and name not in GROUPS:
            problems.append(f"{name}: in no layer; add its package to LAYERS in {Path(__file__).name}")
    for graph, kind in ((module_graph, "modules"), (package_graph, "packages")):
        cycle = _find_cycle(graph)
        if cycle:
            problems.append(f"import cycle between {kind}: {' -> '.join(cycle)}")
    return problems


def test_the_package_follows_its_layers():
    sources = read_sources()
    assert len(sources) > 80 and all(layer_of(name) is not None for name in sources
                                     if name.startswith("tfregimes.cli."))
    assert layer_violations(sources) == []


def _planted(module: str, line: str) -> dict[str, str]:
    sources = read_sources()
    sources[module] = line + "\n" + sources[module]
    return sources


@pytest.mark.parametrize("module, line, expected", [
    ("tfregimes.base.registry", "from tfregimes.cli import common",
     "layer 0 (tfregimes.base) imports layer 7 (tfregimes.cli)"),
    ("tfregimes.steps.plain", "from tfregimes.training import trainer",
     "layer 2 (tfregimes.steps) imports layer 4 (tfregimes.training)"),
    ("tfregimes.diagnostics.minimum.hessian", "from tfregimes.diagnostics.adapters import callbacks",
     "layer 2 (tfregimes.diagnostics.minimum) imports layer 3 (tfregimes.diagnostics.adapters)"),
    ("tfregimes.train", "from tfregimes.training import train_and_evaluate",
     "an entry point only imports its front end"),
    ("tfregimes.report.__main__", "from tfregimes.report import build", "an entry point only imports its front end"),
    ("tfregimes.config.options", "from tfregimes.steps import REGULARIZERS",
     "layer 0 (tfregimes.config) imports layer 2 (tfregimes.steps)"),
    ("tfregimes.diagnostics", "from tfregimes.diagnostics import minimum", "only groups packages"),
])
def test_an_upward_import_is_named(module, line, expected):
    problems = layer_violations(_planted(module, line))
    assert problems and expected in problems[0] and module in problems[0], problems
    # An upward import usually closes a cycle too, since the higher layer imports the lower one.
    assert all(problem.startswith("import cycle") for problem in problems[1:]), problems


def test_the_python_m_shims_are_front_ends():
    # They live in the packages `python -m` names, but belong to the cli layer: importing tfregimes.cli is no
    # upward import and closes no cycle between packages.
    assert package_of("tfregimes.results.__main__") == package_of("tfregimes.train") == "tfregimes.cli"
    sources = read_sources()
    assert {"tfregimes.results.__main__", "tfregimes.report.__main__", "tfregimes.sweep.__main__",
            "tfregimes.benchmark.__main__", "tfregimes.models.__main__"} <= set(sources)


def test_a_function_level_import_is_named_unless_allowlisted():
    sources = read_sources()
    sources["tfregimes.optim.lars"] += "\n\ndef _late():\n    from tfregimes.optim import schedules\n"
    sources["tfregimes.optim.schedules"] += "\n\ndef _plot():\n    import matplotlib\n"
    problems = layer_violations(sources)
    assert len(problems) == 1 and "tfregimes.optim.lars line" in problems[0] and "inside a function" in problems[0]


def test_an_import_after_the_first_definition_is_named():
    sources = read_sources()
    sources["tfregimes.models.core"] += "\n\nfrom tfregimes.models import layers  # noqa: E402\n"
    problems = layer_violations(sources)
    assert any("tfregimes.models.core line" in p and "after the first definition" in p for p in problems), problems


def test_a_cycle_within_a_layer_is_named():
    # data and models share a layer, so each may import the other, but not both.
    sources = _planted("tfregimes.data.base", "from tfregimes.models import core")
    sources["tfregimes.models.core"] = "from tfregimes.data import base\n" + sources["tfregimes.models.core"]
    problems = layer_violations(sources)
    assert [p for p in problems if p.startswith("import cycle between modules")]
    cycles = [p for p in problems if p.startswith("import cycle between packages: ")]
    # Where the search enters the cycle depends on the rest of the graph.
    assert len(cycles) == 1 and cycles[0].split(": ")[1] in ("tfregimes.data -> tfregimes.models -> tfregimes.data",
                                                              "tfregimes.models -> tfregimes.data -> tfregimes.models")


def test_a_module_outside_every_layer_is_named():
    sources = {**read_sources(), "tfregimes.extras.thing": "import os\n"}
    assert layer_violations(sources) == [
        "tfregimes.extras.thing: in no layer; add its package to LAYERS in test_layers.py"]


def test_relative_imports_resolve():
    sources = {"tfregimes.optim": "", "tfregimes.optim.a": "from . import b\nfrom .b import c\n",
               "tfregimes.optim.b": "", "tfregimes.base": ""}
    assert [i.target for i in imports_of("tfregimes.optim.a", sources["tfregimes.optim.a"], sources)] == [
        "tfregimes.optim.b", "tfregimes.optim.b"]
