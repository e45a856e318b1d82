"""The console scripts of pyproject.toml (issue 23, item 6): one per front end, each the function its `python -m`
shim calls, so the two ways to start a command cannot drift apart."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib

import pytest
from helpers import REPO, run_cli

SCRIPTS = {"tfregimes-train": "tfregimes.train", "tfregimes-evaluate": "tfregimes.evaluate",
           "tfregimes-sweep": "tfregimes.sweep.__main__", "tfregimes-results": "tfregimes.results.__main__",
           "tfregimes-report": "tfregimes.report.__main__", "tfregimes-benchmark": "tfregimes.benchmark.__main__"}


def declared_scripts() -> dict[str, str]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]


def _source(module: str) -> ast.Module:
    return ast.parse((REPO / (module.replace(".", "/") + ".py")).read_text())


def test_every_front_end_has_a_console_script():
    assert set(declared_scripts()) == set(SCRIPTS)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_script_calls_what_its_python_m_shim_calls(script):
    module, _, function = declared_scripts()[script].partition(":")
    # Read, not imported: the front ends define absl flags (two of them the same), and four import TensorFlow.
    assert function in {node.name for node in _source(module).body if isinstance(node, ast.FunctionDef)}
    shim_imports = [(node.module, alias.name) for node in _source(SCRIPTS[script]).body
                    if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert shim_imports == [(module, function)]


@pytest.mark.parametrize("script", ["tfregimes-results", "tfregimes-report"])
def test_a_script_that_reads_results_imports_and_is_callable(script):
    module, _, function = declared_scripts()[script].partition(":")
    code = f"import {module} as m; assert callable(m.{function})"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_an_installed_script_runs_its_front_end(tmp_path):
    path = shutil.which("tfregimes-results")
    if path is None:
        pytest.skip("tfregimes-results is not on the PATH: the package was installed before it declared scripts")
    completed = subprocess.run([path, str(tmp_path / "missing")], cwd=REPO, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode != 0 and "not a run directory" in completed.stderr, completed.stderr


@pytest.mark.parametrize("command", ["results", "report", "sweep", "benchmark"])
def test_help_starts_with_the_front_ends_usage(command):
    # absl's --help prints the __main__ module's docstring: without cli_common.run's doc= it was the shim's one line.
    usage = ast.get_docstring(_source(f"tfregimes.cli.{command}")).splitlines()[0]
    shown = run_cli(f"tfregimes.{command}", "--help")  # Preloaded: runpy runs the module as __main__, as python -m.
    assert shown.stdout.strip().splitlines()[0] == usage, (shown.stdout, shown.stderr)  # absl's --help exits 1.
