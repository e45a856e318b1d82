"""The README's first section gives exactly two commands, CI runs the second one verbatim, and every command the
README and the docs/ pages show runs as written."""

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import REPO, ModuleProcess, run_script


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


# -- every command in the README's code blocks runs as written --------------------------------------------------
#
# Each command the README shows is listed here with how the test runs it: the command as written, with placeholders
# (RUN, DIR, ports, output files) filled in and, where it trains, a tiny budget appended (later flags override
# earlier ones, as the README says). A command that needs data this machine does not have must stop with the
# instructions (exit 2, "tfds build"). A README command missing from this table fails the first test. Commands run
# in a scratch working directory whose flags/ is the repository's, so relative outputs (runs/, sweeps/, reports/)
# land there; they run in waves, each after the outputs of the one before exist.

DATA_MISSING = "data_missing"
QUICK_START_SETUP = "python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
TINY = " --train_subset=128 --verbose=0"  # Digits: 2 steps per epoch.
SHORT = " --epochs=2" + TINY  # For the 30-epoch jobs: flag parsing, the schedule, two epochs, evaluation, export.

PLANS = {
    # The install is what CI does (.ci/run); the job runs here with the installed package.
    QUICK_START_SETUP + "python -m tfregimes.train": (
        "python -m tfregimes.train" + SHORT + " --model_dir={tmp}/default", "ok"),
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m pytest -q':
        (None, "ci"),  # This suite itself; CI runs it verbatim (test_ci_runs_the_readme_test_command).
    "python -m tfregimes.train --flagfile=flags/digits_cnn.cfg": ("{cmd}" + SHORT + " --model_dir={tmp}/digits", "ok"),
    "python -m tfregimes.train --flagfile=flags/digits_cnn.cfg --epochs=10": (
        "{cmd}" + TINY + " --model_dir={tmp}/RUN", "ok"),
    "python -m tfregimes.train --flagfile=flags/digits_cnn.cfg --stop_at_train_loss=0.05 --stop_check_every=2": (
        "{cmd}" + SHORT + " --model_dir={tmp}/stop", "ok"),
    "python -m tfregimes.train --flagfile=flags/smoke.cfg": ("{cmd} --model_dir={tmp}/smoke --verbose=0", "ok"),
    "python -m tfregimes.train --help": ("{cmd}", "help"),
    "MULTI_WORKER_BLOCK": ("{block}\nwait", "multi_worker"),
    "python -m tfregimes.train --flagfile=flags/seed004/cifar10_resnet20_fisher.cfg --data_dir=DIR": (
        "{cmd}", DATA_MISSING),
    "python -m tfregimes.benchmark --suite=regularizers": (
        "{cmd} --model=mlp --input_shape=8,8,1 --batch_size=16 --steps=1 --rounds=1 --warmup_steps=1 "
        "--variants=proximal", "json"),
    # Performance: the measured commands, on tiny jobs (the last line must be the suite's JSON).
    "python -m tfregimes.benchmark --suite=minimum_metrics --rounds=7": (
        "{cmd} --model=mlp --input_shape=8,8,1 --samples=10 --rounds=1 --variants=fisher_statistics", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 python -m tfregimes.benchmark "
    "--suite=minimum_metrics --rounds=9 --variants=fisher_statistics,jacobian_only": (
        "{cmd} --model=mlp --input_shape=8,8,1 --samples=10 --rounds=1", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 python -m tfregimes.benchmark "
    "--suite=throughput --train_subset=1024 --rounds=3": (
        "{cmd} --model=mlp --dataset=digits --batch_size=32 --train_subset=128 --rounds=1 --notorch", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1 python -m tfregimes.benchmark "
    "--suite=throughput --model=cnn_small --rounds=9 --epochs=2 --notorch": (
        "{cmd} --model=mlp --dataset=digits --batch_size=32 --train_subset=128 --rounds=1 --epochs=1", "json_line"),
    "python -m tfregimes.benchmark --suite=throughput --model=cnn_small --rounds=9 --epochs=2 --notorch": (
        "{cmd} --model=mlp --dataset=digits --batch_size=32 --train_subset=128 --rounds=1 --epochs=1", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m tfregimes.benchmark --suite=throughput "
    "--model=resnet20 --train_subset=1024 --rounds=2 --notorch": (
        "{cmd} --model=mlp --dataset=digits --batch_size=32 --train_subset=128 --rounds=1", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m tfregimes.benchmark --suite=throughput "
    "--model=resnet20 --train_subset=1024 --rounds=2 --notorch --nodeterministic": (
        "{cmd} --model=mlp --dataset=digits --batch_size=32 --train_subset=128 --rounds=1", "json_line"),
    "python -m tfregimes.benchmark --suite=regularizers --rounds=5": (
        "{cmd} --model=mlp --input_shape=8,8,1 --batch_size=16 --steps=1 --rounds=1 --warmup_steps=1 "
        "--variants=fisher_m8,fisher_m8_subbatches", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m tfregimes.benchmark --suite=throughput "
    "--model=resnet20 --train_subset=1024 --rounds=2 --notorch --trainer_variants=mixed_bfloat16,jit_compile "
    "--nodeterministic": (
        "{cmd} --model=mlp --dataset=digits --batch_size=32 --train_subset=128 --rounds=1", "json_line"),
    "TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 python -m tfregimes.benchmark --suite=throughput "
    "--model=cnn_small --dataset=fashion_mnist --batch_size=128 --train_subset=4096 --rounds=3 --notorch "
    "--trainer_variants=mixed_bfloat16,jit_compile --nodeterministic": (
        "{cmd} --dataset=digits --batch_size=32 --train_subset=128 --rounds=1", "json_line"),
    "python -m tfregimes.train --flagfile=flags/fashion_mnist_cnn.cfg --epochs=3 --lr_boundaries=2 --train_subset=8192 "
    "--model_dir=runs/perf/float32": ("{cmd} --dataset=digits" + TINY + " --model_dir={tmp}/f32", "ok"),
    "python -m tfregimes.train --flagfile=flags/fashion_mnist_cnn.cfg --epochs=3 --lr_boundaries=2 --train_subset=8192 "
    "--precision=mixed_bfloat16 --model_dir=runs/perf/bfloat16": (
        "{cmd} --dataset=digits" + TINY + " --model_dir={tmp}/bf16", "ok"),
    "python -m tfregimes.evaluate --model=RUN/export --dataset=digits --output=eval.json": ("{cmd}", "after_run"),
    "python -m tfregimes.evaluate --model=RUN/export/model.keras --dataset=digits --split=train": (
        "{cmd}", "after_run"),
    "python -m tfregimes.evaluate --model=RUN/export --dataset=cifar10 --output=eval.json --metrics=sharpness,"
    "fisher_logdet,spectral_radius,frobenius,hessian_top,hessian_trace,hessian_frobenius,robustness": (
        "{cmd}", DATA_MISSING),
    "python -m tfregimes.evaluate --model=RUN_A/export --dataset=cifar10 --interpolate_with=RUN_B/export "
    "--interpolation_output=a_to_b": ("{cmd}", DATA_MISSING),
    # Sweeps: the digits sweep's 4 points on 600 examples for 2 epochs (batch 512 is then one step an epoch).
    "python -m tfregimes.sweep --flagfile=flags/sweeps/digits_batch.cfg --max_parallel=2": (
        "{cmd} --epochs=2 --train_subset=600 --verbose=0", "sweep"),
    "python -m tfregimes.sweep --flagfile=flags/smoke.cfg --zip=batch_size=32,128 --zip=learning_rate=0.05,0.2 "
    "--seeds=0,1 --sweep_dir=sweeps/smoke_scaled --dry_run": ("{cmd}", "dry_run"),
    "python -m tfregimes.sweep --flagfile=flags/digits_cnn.cfg --lr_boundaries=5 --grid=transition_epoch=6:25 "
    "--sample=4 --seeds=0,1 --sweep_dir=sweeps/digits_transition --dry_run": ("{cmd}", "dry_run"),
    # Results and reports, on the smoke run the first command trains and the second evaluates.
    "python -m tfregimes.train --flagfile=flags/smoke.cfg --diagnostics=angular,elr,momentum,margins "
    "--model_dir=runs/smoke": ("{cmd} --verbose=0", "ok"),
    "python -m tfregimes.evaluate --model=runs/smoke/export --dataset=synthetic --metrics=sharpness,margins "
    "--output=runs/smoke/evaluation.json": ("{cmd} --metrics_samples=64 --sharpness_maxiter=2", "after_run"),
    "python -m tfregimes.report runs/smoke": ("{cmd}", "report"),
    "python -m tfregimes.results runs/* --output=runs.csv": ("{cmd}", "results"),
    "python -m tfregimes.report runs/* --output=reports/all --format=md,html": ("{cmd}", "report"),
    # The full reproduction takes about 35 min; tests/scripts/test_reproduce_leclerc_madry.py runs this very
    # command with --smoke (and its outputs in a scratch folder).
    "python scripts/reproduce_leclerc_madry.py": (None, "smoke_tested"),
    # 34 min (--parallel_sweeps); tests/scripts/test_reproduce_lee.py runs it with --smoke.
    "python scripts/reproduce_lee.py": (None, "smoke_tested"),
    # tests/scripts/test_reproduce_keskar.py runs this command with --smoke.
    "python scripts/reproduce_keskar.py": (None, "smoke_tested"),
    # 75 runs of the sweep engine; tests/scripts/test_reproduce_yun.py runs it with --smoke.
    "python scripts/reproduce_yun.py --max_parallel=2": (None, "smoke_tested"),
    # tests/scripts/test_reproduce_jia_su.py runs this command with --smoke.
    "python scripts/reproduce_jia_su.py": (None, "smoke_tested"),
}
WAVES = (("ok", "help", "json", "json_line", "multi_worker", DATA_MISSING, "sweep", "dry_run"), ("after_run",),
         ("report", "results"))


def doc_pages() -> list[Path]:
    """README.md and the reference pages docs/*.md (not docs/results/, which the reproduction scripts write)."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def page_commands():
    """(page, key, command) for every command of the bash blocks of the README and the docs/ pages: continuations
    joined, trailing comments dropped; the multi-worker example (two commands started together) is one block, its
    key MULTI_WORKER_BLOCK."""
    for page in doc_pages():
        for block in re.findall(r"```bash\n(.*?)\n```", page.read_text(), flags=re.S):
            if "TF_CONFIG" in block:
                yield page, "MULTI_WORKER_BLOCK", block
                continue
            for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
                command = re.sub(r"\s+#.*$", "", line).strip()
                if command:
                    yield page, command, command


def readme_commands():
    """Every command of the README and the docs/ pages by its key; a command shown on several pages is one entry,
    so it runs once."""
    return {key: command for _, key, command in page_commands()}


def test_every_readme_command_has_a_plan():
    unplanned = [f"{page.relative_to(REPO)}: {key}" for page, key, _ in page_commands() if key not in PLANS]
    assert not unplanned, "commands without a plan in PLANS:\n" + "\n".join(unplanned)
    assert set(PLANS) <= set(readme_commands()), f"plans of no command: {set(PLANS) - set(readme_commands())}"


def free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def shell_command(key, written, tmp):
    template, _ = PLANS[key]
    if key == "MULTI_WORKER_BLOCK":
        script = written.replace("runs/mw", f"{tmp}/mw")
        for port in ("12345", "12346"):
            script = script.replace(port, str(free_port()))
        return template.format(block=script)
    command = template.format(cmd=written, tmp=tmp)
    if command.startswith(QUICK_START_SETUP):
        command = command[len(QUICK_START_SETUP):]
    command = re.sub(r"\bRUN(_A|_B)?/", f"{tmp}/RUN/", command)
    return (command.replace("--data_dir=DIR", f"--data_dir={tmp}/empty")
            .replace("--output=eval.json", f"--output={tmp}/eval_{abs(hash(key))}.json")
            .replace("--interpolation_output=a_to_b", f"--interpolation_output={tmp}/a_to_b"))


def module_command(command):
    """(variables, module, arguments) of a command that is one `[NAME=VALUE ...] python -m tfregimes.MODULE ARGS`
    with nothing for bash to expand or chain (single-quoted text is literal to bash, and unquoted as bash does); else
    None."""
    unquoted = re.sub(r"'[^'\n]*'", "", command)
    if re.search(r"[^\S ]|[;&|<>$`*?\[\](){}'\"\\~#!]", unquoted):  # A newline, tab or shell syntax.
        return None
    words = shlex.split(command)
    variables = {}
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0], flags=re.S):
        name, value = words.pop(0).split("=", 1)
        variables[name] = value
    if words[:2] != ["python", "-m"] or len(words) < 3 or not words[2].startswith("tfregimes."):
        return None
    return variables, words[2], words[3:]


def module_commands_together(script):
    """[(variables, module, arguments), ...] of a script that starts module commands in the background (`&`), the
    last one in the foreground, then `wait`s: all of them run at once, as the multi-worker example does; else None."""
    lines = [line.strip() for line in re.sub(r"\s*\\\n\s*", " ", script).splitlines() if line.strip()]
    if lines[-1:] == ["wait"]:
        lines.pop()
    if not lines or not all(line.endswith(" &") for line in lines[:-1]):
        return None
    parsed = [module_command(line.removesuffix(" &")) for line in lines]
    return parsed if all(parsed) else None


class Together:
    """Processes started at once, read as one: their outputs joined, the first non-zero exit status."""

    def __init__(self, processes):
        self.processes = processes
        self.returncode = None

    def communicate(self, timeout=None):
        outputs = [process.communicate(timeout=timeout) for process in self.processes]
        self.returncode = next((p.returncode for p in self.processes if p.returncode), 0)
        return "".join(out for out, _ in outputs), "".join(err for _, err in outputs)


def test_commands_run_forked_are_split_as_bash_splits_them_and_the_rest_goes_to_bash():
    json_text = '{"cluster": {"worker": ["localhost:1"]}, "task": {"index": 0}}'
    assert module_command(f"A=1 TF_CONFIG='{json_text}' python -m tfregimes.train --x=y") == (
        {"A": "1", "TF_CONFIG": json_text}, "tfregimes.train", ["--x=y"])
    assert module_commands_together(f"TF_CONFIG='{json_text}' \\\n  python -m tfregimes.train --i=0 &\n"
                                    "python -m tfregimes.train --i=1\nwait") == [
        ({"TF_CONFIG": json_text}, "tfregimes.train", ["--i=0"]), ({}, "tfregimes.train", ["--i=1"])]
    for command in ("python -m tfregimes.train --model_dir=$HOME", "python -m tfregimes.results runs/*",
                    "python -m tfregimes.train && python -m tfregimes.report x", "A='x python -m tfregimes.train",
                    "python scripts/reproduce_lee.py", "python -m tfregimes.train\npython -m tfregimes.train"):
        assert module_commands_together(command) is None, command


def start(command, tmp):
    # `python` is this interpreter, as it is in the activated virtualenv the README installs into.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # Module commands are forked with TensorFlow imported (tests/helpers.py), as bash would run them.
    if together := module_commands_together(command):
        return Together([ModuleProcess(module, arguments, cwd=tmp / "cwd", env={**env, **variables})
                         for variables, module, arguments in together])
    return subprocess.Popen(["bash", "-c", f"set -e\n{command}"], cwd=tmp / "cwd", env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check(key, expectation, process, tmp):
    out, err = process.communicate(timeout=600)
    report = f"{key}\n--- stdout\n{out[-1500:]}\n--- stderr\n{err[-2500:]}"
    if expectation == DATA_MISSING:
        assert process.returncode == 2 and "tfds build" in err and "Traceback" not in err, report
        return
    if expectation == "help":
        assert process.returncode == 0 and "--lr_boundaries" in out and "--weight_decay" in out, report
        return
    assert process.returncode == 0, report
    if expectation == "json":
        assert "proximal" in json.loads(out.strip().splitlines()[-1]), report
    elif expectation == "json_line":
        assert isinstance(json.loads(out.strip().splitlines()[-1]), dict), report
    elif expectation == "after_run":
        assert re.search(r"accuracy", out), report
    elif expectation == "multi_worker":
        assert json.loads((tmp / "mw" / "metrics.json").read_text())["epochs_run"] == 2, report
    elif expectation == "sweep":
        points = json.loads((tmp / "cwd" / "sweeps" / "digits_batch" / "sweep.json").read_text())["points"]
        assert [p["state"] for p in points] == ["done"] * 4, report
    elif expectation == "dry_run":
        assert re.search(r"^\d+ valid points:", out, flags=re.M), report
    elif expectation == "report":
        assert re.search(r"report\.md", out + err), report
    elif expectation == "results":
        assert (tmp / "cwd" / "runs.csv").exists() and "smoke" in (tmp / "cwd" / "runs.csv").read_text(), report
    else:
        assert re.search(r"status\s+ok", out), report


def readme_python_blocks() -> dict[str, str]:
    """The python blocks of the README and the docs/ pages, by page and the section (## or ### heading) they are
    in."""
    blocks = {}
    for page in doc_pages():
        for section in re.split(r"\n(?=#{2,3} )", page.read_text()):
            for index, block in enumerate(re.findall(r"```python\n(.*?)\n```", section, flags=re.S)):
                blocks[f"{page.relative_to(REPO)} {section.splitlines()[0]} [{index}]"] = block
    return blocks


# A python block as `python -c BLOCK` runs it, but forked with TensorFlow imported (tests/helpers.py): executed as
# __main__ from a module whose own body is guarded, since the processes a block's sweep forks import the main module.
BLOCK_RUNNER = """if __name__ == "__main__":
    exec(compile({block!r}, "<string>", "exec"), {{"__name__": "__main__"}})
"""


@pytest.mark.slow(40)
def test_every_readme_python_block_runs_as_written(tmp_path):
    blocks = readme_python_blocks()
    # Each python block is a program: it runs as written, from a scratch directory, with this interpreter.
    diagnostics = "docs/diagnostics.md ### Diagnostics during training [0]"
    assert diagnostics in blocks
    (tmp_path / "cwd").mkdir()
    for key, block in blocks.items():
        process = run_script(BLOCK_RUNNER.format(block=block), tmp_path / "cwd", timeout=600,
                             env={"CUDA_VISIBLE_DEVICES": ""})
        report = f"{key}\n--- stdout\n{process.stdout[-1500:]}\n--- stderr\n{process.stderr[-2500:]}"
        assert process.returncode == 0, report
        if key == diagnostics:
            for name in ("angular_update", "effective_lr", "momentum_scale", "margin_median"):
                assert f"'{name}'" in process.stdout, (name, process.stdout)


@pytest.mark.slow(260)
def test_every_readme_command_runs_as_written(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "flags").symlink_to(REPO / "flags")
    started = time.monotonic()
    commands = readme_commands()
    # Waves of parallel processes (each reads what the one before wrote), a few at a time.
    for wave in ([k for k, (_, e) in PLANS.items() if e in kinds] for kinds in WAVES):
        for chunk in (wave[i:i + 4] for i in range(0, len(wave), 4)):
            running = [(k, start(shell_command(k, commands[k], tmp_path), tmp_path)) for k in chunk]
            for key, process in running:
                check(key, PLANS[key][1], process, tmp_path)
                print(f"{time.monotonic() - started:6.1f} s  {key[:90]}")


# -- every relative link of the README and the docs/ pages resolves -----------------------------------------------

def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation (backticks, colons, ...) dropped, spaces to
    hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def heading_anchors(markdown: str) -> set[str]:
    """The anchors of a page's headings outside code blocks; a repeated heading's gets -1, -2, ... as on GitHub."""
    anchors, fenced = set(), False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.*)", line)):
            anchor = github_anchor(match.group(1))
            anchors.add(next(f"{anchor}-{n}" if n else anchor for n in range(100)
                             if (f"{anchor}-{n}" if n else anchor) not in anchors))
    return anchors


def relative_links(markdown: str) -> list[str]:
    """The targets of a page's Markdown links and images that are not URLs, outside code blocks and code spans."""
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", markdown, flags=re.S))
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", prose) if not re.match(r"[a-z]+:", target)]


def test_github_anchors_of_headings():
    assert github_anchor("Comparing settings: one verdict rule") == "comparing-settings-one-verdict-rule"
    assert github_anchor("What a run writes") == "what-a-run-writes"
    assert heading_anchors("# A\n```\n# not a heading\n```\n## A\n### `b`: c\n") == {"a", "a-1", "b-c"}
    assert relative_links("[x](a.md#b) ![f](fig.png) [u](https://x.org) `[c](code.md)`") == ["a.md#b", "fig.png"]


def test_every_relative_link_of_the_readme_and_the_docs_pages_resolves():
    broken = []
    for page in doc_pages():
        for target in relative_links(page.read_text()):
            path, _, anchor = target.partition("#")
            linked = (page.parent / path) if path else page
            if not linked.exists():
                broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
            elif anchor and anchor not in heading_anchors(linked.read_text()):
                broken.append(f"{page.relative_to(REPO)}: {target} (no heading with that anchor)")
    assert not broken, "\n".join(broken)
