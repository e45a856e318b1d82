"""scripts/reproduce_lee.py: the regimes' flags as tfregimes.train parses them, the analyses on constructed runs
whose answer is known, and the --smoke pipeline end to end (every number read back from the run directories)."""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from lee import accuracy, curves, margins, records, regimes  # noqa: E402


def test_regimes_parse_as_train_would_with_goyal_scaling():
    from tfregimes.cli import train_flag_rules
    s = regimes.setting(smoke=False, seed=0)
    configs = {name: train_flag_rules.parse_run_config(flags[:-1] + ["--verbose=0", "--seed=0"])
               for name, flags in regimes.regime_flags(s).items()}
    assert s.large_learning_rate == pytest.approx(0.02 * 1000 / 32)  # Goyal et al. §2.1: η × B/B_ref.
    assert s.min_lr == pytest.approx(s.large_learning_rate / 100)
    small, large, lars, explore = (configs[name] for name in regimes.REGIMES)
    assert (small.batch_size, small.learning_rate, small.reference_batch_size, small.warmup_epochs) == (32, 0.02, 0, 0)
    for config in (large, lars, explore):
        assert (config.batch_size, config.warmup_epochs, config.epochs) == (1000, 5, small.epochs)
    assert (large.reference_batch_size, explore.reference_batch_size) == (32, 32)
    assert (lars.optimizer, lars.reference_batch_size, lars.lars_trust_coefficient) == ("lars", 0, 0.001)
    assert (explore.lr_schedule, explore.flat_window, explore.extra_exploration_epochs) == ("explore", 5, 2)
    assert large.lr_schedule == small.lr_schedule == lars.lr_schedule == "step"


def test_difference_and_its_standard_error():
    d = accuracy.difference([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert d["difference"] == 2.0 and d["se"] == pytest.approx(math.sqrt(1 / 3))  # var 1 (ddof 1) / 3 runs.
    assert d["significant"]  # 2 > 2 · 0.577.
    assert not accuracy.difference([1.0, 2.0, 3.0], [1.5, 1.5, 1.5])["significant"]  # 0.5 < 1.15.
    assert not accuracy.difference([0.9], [0.1])["significant"]  # One run a side: no spread to judge by.


def constructed(means: dict[str, float], spread=(-0.005, 0.0, 0.005), decay=None, margin=None):
    """Three runs per regime at mean ± 0.5 points, with curves whose last inter-quartile margin is `margin`."""
    out = {}
    for regime, mean in means.items():
        runs = []
        for seed, offset in enumerate(spread):
            final = (margin or {}).get(regime, 0.1) + offset
            runs.append({"seed": seed, "diverged": False, "test_accuracy": mean + offset,
                         "decay_epoch": (decay or {}).get(regime, [None] * 3)[seed], "flat_epoch": None,
                         "curves": {"epoch": [1, 2], "lr_events": {}, "loss": [1.0, 0.5 + offset],
                                    "val_accuracy": [0.5, mean + offset], "learning_rate": [0.1, 0.1],
                                    "margin_q1": [-0.1, final - 0.05], "margin_median": [0.0, final],
                                    "margin_q3": [0.1, final + 0.05], "margin_mean": [0.0, final]}})
        runs.append({**runs[0], "seed": 9, "diverged": True, "test_accuracy": None})  # Left out everywhere.
        out[regime] = runs
    return out


def test_accuracy_verdicts_follow_the_constructed_means():
    runs = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.62, "explore": 0.695})
    analysis = accuracy.analyse(runs)
    assert analysis["regimes"]["small_batch"]["mean"] == pytest.approx(0.70)
    assert analysis["regimes"]["small_batch"]["std"] == pytest.approx(0.005)
    assert analysis["regimes"]["small_batch"]["diverged"] == 1
    assert analysis["gap"]["difference"] == pytest.approx(0.05)
    assert analysis["gap"]["se"] == pytest.approx(math.sqrt(2 * 0.005 ** 2 / 3))
    assert [v for _, v, _ in accuracy.verdicts(analysis)] == ["holds", "holds", "holds"]
    assert analysis["explore_by_decision"]["never decayed"]["accuracies"] == pytest.approx([0.69, 0.695, 0.7])
    split = accuracy.analyse(constructed({"small_batch": 0.7, "large_batch": 0.65, "lars": 0.6, "explore": 0.6},
                                         decay={"explore": [None, 11, None, 11]}))["explore_by_decision"]
    assert split["decayed"]["accuracies"] == pytest.approx([0.6]) and split["never decayed"]["mean"] == 0.6
    # Exploration no better than the large batch: the gap stays open; LARS above it.
    stuck = accuracy.analyse(constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.68, "explore": 0.65}))
    assert [v for _, v, _ in accuracy.verdicts(stuck)] == ["holds", "does not hold", "does not hold"]
    # Halfway: better than the large batch, still below the small one.
    half = accuracy.analyse(constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.6, "explore": 0.675}))
    assert [v for _, v, _ in accuracy.verdicts(half)][1] == "partly"
    # No gap: the large batch is as good as the small one.
    none = accuracy.analyse(constructed({"small_batch": 0.70, "large_batch": 0.70, "lars": 0.7, "explore": 0.7}))
    assert [v for _, v, _ in accuracy.verdicts(none)][:2] == ["does not hold", "does not hold"]
    # Within the noise of the small batch but not significantly above the large one: partly.
    noisy = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.6, "explore": 0.67},
                        spread=(-0.05, 0.0, 0.05))
    assert [v for _, v, _ in accuracy.verdicts(accuracy.analyse(noisy))][:2] == ["partly", "partly"]


def test_margin_analysis_reads_the_last_inter_quartile_mean():
    runs = constructed({"small_batch": 0.7, "large_batch": 0.65, "lars": 0.6, "explore": 0.7},
                       margin={"small_batch": 0.2, "large_batch": 0.1, "lars": 0.05, "explore": 0.18})
    analysis = margins.analyse(runs)
    assert analysis["final"]["explore"]["values"] == pytest.approx([0.175, 0.18, 0.185])
    assert analysis["explore_vs_large"]["difference"] == pytest.approx(0.08)
    assert analysis["curves"]["small_batch"]["margin_q3"] == pytest.approx([0.1, 0.25])  # Mean over 3 seeds.
    assert [v for _, v, _ in margins.verdicts(analysis)] == ["holds", "holds"]
    assert analysis["explore_by_decision"] == {"never decayed": pytest.approx([0.175, 0.18, 0.185]), "decayed": []}
    flipped = margins.analyse(constructed({r: 0.7 for r in regimes.REGIMES},
                                          margin={"small_batch": 0.1, "large_batch": 0.2, "lars": 0.1,
                                                  "explore": 0.201}))
    assert [v for _, v, _ in margins.verdicts(flipped)] == ["partly", "does not hold"]


def test_curves_verdict_counts_decays_after_the_first_step():
    means = {r: 0.7 for r in regimes.REGIMES}
    for decays, verdict in (([30, 25, 28], "holds"), ([30, 10, 28], "partly"), ([30, None, 28], "partly"),
                            ([None, None, None], "does not hold"), ([10, 12, 20], "does not hold")):
        analysis = curves.analyse(constructed(means, decay={"explore": decays}), epochs=40)
        assert [v for _, v, _ in curves.verdicts(analysis)] == [verdict], decays
    assert curves.mean_curve(constructed(means)["small_batch"], "loss") == ([1, 2], pytest.approx([1.0, 0.5]))


def test_run_curves_keeps_the_controllers_events_and_gaps():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [2.0, 1.0, 0.9], "learning_rate": [0.1, 0.1, 0.01],
                            "margin_mean": [np.nan, 0.1, 0.2], "lr_event": [np.nan, "flat: …", "decay: …"]})
    c = records.run_curves(history)
    assert c["epoch"] == [1, 2, 3] and c["margin_mean"] == [None, 0.1, 0.2]
    assert c["lr_events"] == {2: "flat: …", 3: "decay: …"}
    assert "val_accuracy" not in c  # Not logged: absent, not invented.


@pytest.mark.slow(70)
def test_smoke_run_writes_the_page_from_the_run_directories(tmp_path):
    output, work = tmp_path / "page", tmp_path / "work"
    result = subprocess.run([sys.executable, "scripts/reproduce_lee.py", "--smoke", f"--output={output}",
                             f"--work_dir={work}"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (output / "README.md").read_text()
    for section in ("## Setting", "## Final test accuracy", "## Learning curves", "## Margin distribution"):
        assert section in page
    analysis = json.loads((output / "accuracy.json").read_text())["analysis"]
    for claim, verdict, _ in accuracy.verdicts(analysis):  # In the section and in the summary at the top.
        assert page.count(f"**{claim}**: {verdict}.") == 2
    table = analysis["regimes"]
    saved = json.loads((output / "curves.json").read_text())["runs"]
    s = regimes.setting(smoke=True, seed=0)
    for regime in regimes.REGIMES:
        state = json.loads((work / "smoke" / regime / "sweep.json").read_text())
        assert [p["state"] for p in state["points"]] == ["done"]
        run_dir = work / "smoke" / regime / state["points"][0]["run_dir"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert table[regime]["accuracies"] == [metrics["test_accuracy"]]
        history = pd.read_csv(run_dir / "history.csv")
        assert saved[regime][0]["curves"]["margin_mean"] == pytest.approx(list(history["margin_mean"]))
    explore_dir = work / "smoke" / "explore" / json.loads((work / "smoke" / "explore" / "sweep.json").read_text())[
        "points"][0]["run_dir"]
    decided = json.loads((explore_dir / "metrics.json").read_text())["exploration"]["decay_epoch"]
    assert saved["explore"][0]["decay_epoch"] == decided is not None  # Smoke's tolerance makes it decide.
    lr = pd.read_csv(explore_dir / "history.csv")["learning_rate"].tolist()
    assert lr[decided - 1] == pytest.approx(s.large_learning_rate)  # The peak up to the decision, ×0.1 after.
    assert lr[decided] == pytest.approx(max(s.large_learning_rate * 0.1, s.min_lr))
    for name in ("curves", "margins"):
        assert (output / f"{name}.png").stat().st_size > 10_000
