"""The README's first section gives exactly two commands, and CI runs the second one verbatim."""

import re

from helpers import REPO


def quick_start_commands():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)


def test_quick_start_has_an_install_and_train_command_and_an_install_and_test_command():
    commands = quick_start_commands()
    assert len(commands) == 2
    train, test = commands
    assert "pip install -e ." in train and train.endswith("python -m tfregimes.train")
    assert 'pip install -e ".[test]"' in test and test.endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command():
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert quick_start_commands()[1] in ci_lines


def test_ci_runs_the_linter_after_the_tests_with_the_test_extra_providing_it():
    import tomllib
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert ci_lines.index("ruff check .") > ci_lines.index(quick_start_commands()[1])
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert any(requirement.startswith("ruff") for requirement in project["project"]["optional-dependencies"]["test"])
    assert project["tool"]["ruff"]["line-length"] == 120
