"""`--help` lists tfregimes' own flags grouped by concern and exits 0 (issue 12, item 10)."""

import re

import pytest
from helpers import run_cli

TRAIN_GROUPS = ["Data", "Model", "Optimizer and schedule", "Regimes: run-time exploration and decay",
                "Regimes: two phases", "Regimes: regularized steps", "Distribution and precision",
                "Diagnostics during training", "Run"]


def test_every_train_flag_is_in_exactly_one_help_group():
    from absl import flags

    from tfregimes.cli import train_flags
    defined = [flag.name for flag in flags.FLAGS.flags_by_module_dict()["tfregimes.training.run_flags"]]
    grouped = [name for _, names in train_flags.HELP_GROUPS.groups for name in names]
    assert sorted(grouped) == sorted(set(defined)) and len(grouped) == len(set(grouped))
    assert [title for title, _ in train_flags.HELP_GROUPS.groups] == TRAIN_GROUPS


@pytest.mark.parametrize("argument", ["--help", "-h", "--helpfull"])
def test_train_help_shows_our_flags_grouped_and_exits_0(argument, monkeypatch, capsys):
    from tfregimes.cli import common as cli_common
    from tfregimes.cli import train, train_flags
    monkeypatch.setattr("sys.argv", ["tfregimes.train", "--epochs=3", argument])
    monkeypatch.setitem(__import__("sys").modules, "__main__", train)
    with pytest.raises(SystemExit) as exited:
        cli_common.run(train.main, train_flags.HELP_GROUPS, doc=train.__doc__)
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("python -m tfregimes.train [--flagfile")
    headings = re.findall(r"^(\S.*):$", text, flags=re.MULTILINE)
    assert headings[:len(TRAIN_GROUPS)] == TRAIN_GROUPS
    data = text.split("\nData:\n")[1].split("\nModel:\n")[0]
    assert "  --dataset=digits" in data and "  --normalization=auto" in data and "--batch_size" not in data
    assert text.index("--batch_size=64") < text.index("--transition_epoch=0") < text.index("--model_dir=")
    assert "--tpu" not in text.split("Other flags")[0]  # absl's and TensorFlow's flags, if at all, come last
    assert ("Other flags (absl, TensorFlow):" in text) == (argument == "--helpfull")


def test_evaluate_help_exits_0_with_its_flags():  # A real process: the exit status is the one a shell sees.
    completed = run_cli("tfregimes.evaluate", "--help")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "--interpolation_bn=recompute" in completed.stdout and "--metrics_samples=2048" in completed.stdout



@pytest.mark.parametrize("front_end,own_flag", [("results", "--group_by="), ("report", "--output="),
                                                ("sweep", "--sweep_dir="), ("benchmark", "--suite=")])
def test_help_of_each_front_end_lists_its_own_flags(front_end, own_flag):
    """Real processes: the front ends define clashing flags (--output, --model), as separate programs may."""
    completed = run_cli(f"tfregimes.{front_end}", "--help")
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.startswith(f"python -m tfregimes.{front_end}")
    assert "\nFlags:\n" in completed.stdout and own_flag in completed.stdout.split("\nFlags:\n")[1]
