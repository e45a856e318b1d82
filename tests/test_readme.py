"""The README's first section gives exactly two commands, CI runs the second one verbatim, and every command the
README shows runs as written."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

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


# -- every command in the README's code blocks runs as written --------------------------------------------------
#
# Each command the README shows is listed here with how the test runs it: the command as written, with placeholders
# (RUN, DIR, ports, output files) filled in and, where it trains, a tiny budget appended (later flags override
# earlier ones, as the README says). A command that needs data this machine does not have must stop with the
# instructions (exit 2, "tfds build"). A README command missing from this table fails the first test.

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
    "python -m tfregimes.train --flagfile=flags/smoke.cfg": ("{cmd} --model_dir={tmp}/smoke --verbose=0", "ok"),
    "python -m tfregimes.train --helpfull": ("{cmd}", "help"),
    "MULTI_WORKER_BLOCK": ("{block}\nwait", "multi_worker"),
    "python -m tfregimes.train --flagfile=flags/seed004/cifar10_resnet20_fisher.cfg --data_dir=DIR": (
        "{cmd}", DATA_MISSING),
    "python -m tfregimes.benchmark --suite=regularizers": (
        "{cmd} --model=mlp --input_shape=8,8,1 --batch_size=16 --steps=1 --rounds=1 --warmup_steps=1 "
        "--variants=proximal", "json"),
    "python -m tfregimes.evaluate --model=RUN/export --dataset=digits --output=eval.json": ("{cmd}", "after_run"),
    "python -m tfregimes.evaluate --model=RUN/export/model.keras --dataset=digits --split=train": (
        "{cmd}", "after_run"),
    "python -m tfregimes.evaluate --model=RUN/export --dataset=cifar10 --output=eval.json --metrics=sharpness,"
    "fisher_logdet,spectral_radius,frobenius,hessian_top,hessian_trace,hessian_frobenius,robustness": (
        "{cmd}", DATA_MISSING),
    "python -m tfregimes.evaluate --model=RUN_A/export --dataset=cifar10 --interpolate_with=RUN_B/export "
    "--interpolation_output=a_to_b": ("{cmd}", DATA_MISSING),
}


def readme_commands():
    """Every command of the README's bash blocks: continuations joined, trailing comments dropped; the
    multi-worker example (two commands started together) is one block."""
    readme = (REPO / "README.md").read_text()
    commands = {}
    for block in re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S):
        if "TF_CONFIG" in block:
            commands["MULTI_WORKER_BLOCK"] = block
            continue
        for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command:
                commands[command] = command
    return commands


def test_every_readme_command_has_a_plan():
    assert set(readme_commands()) == set(PLANS)


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


def start(command, tmp):
    # `python` is this interpreter, as it is in the activated virtualenv the README installs into.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(["bash", "-c", f"set -e\n{command}"], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def check(key, expectation, process, tmp):
    out, err = process.communicate(timeout=600)
    report = f"{key}\n--- stdout\n{out[-1500:]}\n--- stderr\n{err[-2500:]}"
    if expectation == DATA_MISSING:
        assert process.returncode == 2 and "tfds build" in err and "Traceback" not in err, report
        return
    if expectation == "help":  # absl's --helpfull exits 1 after printing the help.
        assert process.returncode in (0, 1) and "--lr_boundaries" in out and "--weight_decay" in out, report
        return
    assert process.returncode == 0, report
    if expectation == "json":
        assert "proximal" in json.loads(out.strip().splitlines()[-1]), report
    elif expectation == "after_run":
        assert re.search(r"accuracy", out), report
    elif expectation == "multi_worker":
        assert json.loads((tmp / "mw" / "metrics.json").read_text())["epochs_run"] == 2, report
    else:
        assert re.search(r"status\s+ok", out), report


def test_every_readme_command_runs_as_written(tmp_path):
    (tmp_path / "empty").mkdir()
    started = time.monotonic()
    commands = readme_commands()
    first = [k for k, (_, e) in PLANS.items() if e not in ("ci", "after_run")]
    # Two waves of parallel processes (the second evaluates the run the first trains), a few at a time.
    for wave in (first, [k for k, (_, e) in PLANS.items() if e == "after_run"]):
        for chunk in (wave[i:i + 4] for i in range(0, len(wave), 4)):
            running = [(k, start(shell_command(k, commands[k], tmp_path), tmp_path)) for k in chunk]
            for key, process in running:
                check(key, PLANS[key][1], process, tmp_path)
                print(f"{time.monotonic() - started:6.1f} s  {key[:90]}")
