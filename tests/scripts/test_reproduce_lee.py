"""scripts/reproduce_lee.py: the regimes' flags as tfregimes.train parses them, the analyses on constructed runs
whose answer is known, and the --smoke pipeline end to end (every number read back from the run directories)."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

from tfregimes.analysis import same_stop_target

sys.path.insert(0, str(REPO / "scripts"))
from lee import accuracy, curves, exploration_length, lars_tuning, margins, readout, records, regimes  # noqa: E402


def test_regimes_parse_as_train_would_with_goyal_scaling_and_a_common_stop():
    from tfregimes.cli import train_flag_rules
    s = regimes.setting(smoke=False, seed=0)
    grid = {"explore": ["--extra_exploration_epochs=20"],
            regimes.LARS_TUNING: ["--learning_rate=7", "--warmup_epochs=15"]}
    configs = {name: train_flag_rules.parse_run_config(flags + grid.get(name, []) + ["--seed=0"])
               for name, flags in regimes.regime_flags(s, lars=(10.0, 5)).items()}
    assert s.large_learning_rate == pytest.approx(0.02 * 1000 / 32)  # Goyal et al. §2.1: η × B/B_ref.
    assert s.min_lr == pytest.approx(s.large_learning_rate / 10)
    small, large, lars, explore = (configs[name] for name in regimes.REGIMES)
    tuning = configs[regimes.LARS_TUNING]
    assert (small.batch_size, small.learning_rate, small.reference_batch_size, small.warmup_epochs) == (32, 0.02, 0, 0)
    for config in configs.values():  # One stop rule and cap for every run, the tuning's included.
        assert (config.stop_at_train_loss, config.stop_check_examples, config.epochs) == (0.1, 0, 100)
        assert config.validation_split == (0.2 if config is tuning else 0.0)
    for config in (large, lars, explore, tuning):
        assert config.batch_size == 1000
    assert (large.warmup_epochs, explore.warmup_epochs, lars.warmup_epochs, tuning.warmup_epochs) == (5, 5, 5, 15)
    assert (large.reference_batch_size, explore.reference_batch_size) == (32, 32)
    assert (lars.optimizer, lars.learning_rate, lars.reference_batch_size, lars.lars_trust_coefficient) == (
        "lars", 10.0, 0, 0.001)
    assert (explore.lr_schedule, explore.flat_window, explore.extra_exploration_epochs) == ("explore", 5, 20)
    assert large.lr_schedule == small.lr_schedule == lars.lr_schedule == "step"
    assert small.lr_boundaries == large.lr_boundaries == (20.0, 30.0)  # 50 % and 75 % of the 40-epoch budget.
    assert "lars" not in regimes.regime_flags(s)  # No LARS sweep before its tuning has chosen.
    assert len(s.lars_learning_rates) >= 5 and len(s.lars_warmups) >= 2 and len(s.lars_seeds) >= 3


NOISE = ((-1, 0, 1), (0, 1, -1), (1, -1, 0), (1, 0, -1))  # Per regime and seed: any two rows differ by seed.


def constructed(means: dict[str, float], spread=(-0.005, 0.0, 0.005), decay=None, margin=None, noise=0.0):
    """Runs per regime at mean + spread[seed] (+ `noise` × a regime-dependent pattern, so that paired differences
    vary by seed), with curves whose last inter-quartile margin is `margin` + the same offset, and one diverged
    run (seed 9) that every analysis leaves out."""
    out = {}
    for k, (regime, mean) in enumerate(means.items()):
        runs = []
        for seed, offset in enumerate(spread):
            offset += noise * NOISE[k][seed]
            final = (margin or {}).get(regime, 0.1) + offset
            runs.append({"seed": seed, "diverged": False, "test_accuracy": mean + offset, "train_loss": 0.1,
                         "validation_accuracy": mean + offset, "reached_target": True, "epochs_run": 40,
                         "learning_rate": 1.0, "warmup_epochs": 5.0, "extra_exploration_epochs": None,
                         "decay_epoch": (decay or {}).get(regime, [None] * len(spread))[seed], "flat_epoch": None,
                         "curves": {"epoch": [1, 2], "lr_events": {}, "loss": [1.0, 0.5 + offset],
                                    "val_accuracy": [0.5, mean + offset], "learning_rate": [0.1, 0.1],
                                    "margin_q1": [-0.1, final - 0.05], "margin_median": [0.0, final],
                                    "margin_q3": [0.1, final + 0.05], "margin_mean": [0.0, final]}})
        runs.append({**runs[0], "seed": 9, "diverged": True, "test_accuracy": None})
        out[regime] = runs
    return out


def stop_frame(runs: dict[str, list[dict]], reached=True, target: float = 0.1) -> pd.DataFrame:
    """`collect`'s rows of the constructed runs: regime and stop columns (every run trained to `target`)."""
    rows = [{"regime": regime, "seed": r["seed"], "stop/criterion": "train_loss", "stop/target": target,
             "stop/reached_target": reached} for regime, rs in runs.items() for r in rs]
    return pd.DataFrame(rows)


def words(claims) -> list[str]:
    return [verdict.word for _, verdict, _ in claims]


def test_accuracy_analysis_pairs_the_regimes_by_seed_in_points():
    runs = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.62, "explore": 0.695},
                       decay={"explore": [None, 11, None]})
    analysis = accuracy.analyse(runs, stop_frame(runs))
    assert analysis["regimes"]["small_batch"]["by_seed"] == pytest.approx({0: 69.5, 1: 70.0, 2: 70.5})
    assert analysis["regimes"]["small_batch"]["diverged"] == 1  # The diverged run: counted, left out.
    assert analysis["explore_by_decision"]["decayed"] == pytest.approx({1: 69.5})
    assert analysis["explore_by_decision"]["never decayed"] == pytest.approx({0: 69.0, 2: 70.0})
    gap = accuracy.verdicts(analysis)[0][1].effect
    assert (gap.estimate, gap.n) == (pytest.approx(5.0), 3)  # Same offsets per seed: the pairs differ by 5 exactly.


def test_accuracy_verdicts_follow_the_rule():
    # Clear effects in the claimed directions (differences vary by ±0.1 point across seeds): every claim supported.
    clear = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.62, "explore": 0.699}, noise=0.001)
    assert words(accuracy.verdicts(accuracy.analyse(clear, stop_frame(clear)))) == ["supports"] * 4
    # The opposite: the large batch beats the small one, exploration falls 5 points below it and far below LARS.
    opposite = constructed({"small_batch": 0.65, "large_batch": 0.70, "lars": 0.70, "explore": 0.60}, noise=0.001)
    assert words(accuracy.verdicts(accuracy.analyse(opposite, stop_frame(opposite)))) == ["contradicts"] * 4
    # Inside the seed noise (±3 points a seed, 1–2 points apart): inconclusive, never "partly".
    noisy = constructed({"small_batch": 0.70, "large_batch": 0.69, "lars": 0.70, "explore": 0.695}, noise=0.03)
    assert words(accuracy.verdicts(accuracy.analyse(noisy, stop_frame(noisy)))) == ["inconclusive"] * 4
    # Two seeds: n < 3, not comparable, whatever the means.
    two = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.62, "explore": 0.699}, spread=(0.0, 0.01))
    claims = accuracy.verdicts(accuracy.analyse(two, stop_frame(two)))
    assert words(claims) == ["not comparable"] * 4 and "n = 2 < 3" in claims[0][1].text()
    # The equivalence claim reads its ±1-point margin: 1.5 points below the small batch, tightly, is outside it.
    below = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.62, "explore": 0.685}, noise=0.001)
    assert words(accuracy.verdicts(accuracy.analyse(below, stop_frame(below))))[2] == "contradicts"
    # Non-inferiority to LARS: half a point below it is within the 1-point margin.
    near = constructed({"small_batch": 0.70, "large_batch": 0.65, "lars": 0.70, "explore": 0.695}, noise=0.001)
    claims = accuracy.verdicts(accuracy.analyse(near, stop_frame(near)))
    assert claims[3][1].word == "supports" and claims[3][1].effect.estimate == pytest.approx(0.5)
    # The large batch stopped at the cap (did not reach the loss target): its two claims are not comparable.
    frame = stop_frame(clear)
    short = frame.assign(**{"stop/reached_target": list(frame["regime"] != "large_batch")})
    claims = accuracy.verdicts(accuracy.analyse(clear, short))
    assert words(claims) == ["not comparable", "not comparable", "supports", "supports"]
    assert "4 of 8 runs did not reach train_loss <= 0.1" in claims[0][1].text()


def test_margin_claims_are_not_comparable_without_a_common_stop_target():
    runs = constructed({"small_batch": 0.7, "large_batch": 0.65, "lars": 0.6, "explore": 0.7}, noise=0.001,
                       margin={"small_batch": 0.2, "large_batch": 0.1, "lars": 0.05, "explore": 0.18})
    frame = pd.DataFrame({"regime": [r for r in regimes.REGIMES for _ in range(3)]})
    analysis = margins.analyse(runs, frame)
    assert analysis["final"]["small_batch"] == pytest.approx({0: 0.194, 1: 0.2, 2: 0.206})
    assert analysis["curves"]["small_batch"]["margin_q3"] == pytest.approx([0.1, 0.25])  # Mean over 3 seeds.
    assert analysis["explore_by_decision"]["decayed"] == {}
    claims = margins.verdicts(analysis)
    assert words(claims) == ["not comparable"] * 2  # Same epochs, no stop target: the honest answer.
    assert "not every run was trained to a stop target" in claims[0][1].text()
    assert "which not every run of the two regimes reached" in claims[0][2]
    # Trained to the same clean training loss: the rule reads the margins.
    reached = frame.assign(**{"stop/criterion": "train_loss", "stop/target": 0.05, "stop/reached_target": True})
    claims = margins.verdicts(margins.analyse(runs, reached))
    assert words(claims) == ["supports"] * 2 and claims[0][1].effect.estimate == pytest.approx(0.08)
    flipped = constructed({r: 0.7 for r in regimes.REGIMES}, noise=0.001,
                          margin={"small_batch": 0.1, "large_batch": 0.2, "lars": 0.1, "explore": 0.2})
    assert words(margins.verdicts(margins.analyse(flipped, reached))) == ["inconclusive", "contradicts"]
    one_short = reached.assign(**{"stop/reached_target": [True] * 11 + [False]})  # An explore run fell short.
    assert words(margins.verdicts(margins.analyse(runs, one_short))) == ["not comparable", "supports"]


def test_curves_verdicts_count_never_decayed_as_the_last_epoch():
    means = {r: 0.7 for r in regimes.REGIMES}
    for decays, expected in (([30, 25, 28], ["supports", "supports"]),
                             ([10, 12, 15], ["contradicts", "supports"]),
                             ([30, 10, 28], ["inconclusive", "inconclusive"]),
                             # Never decayed: at the peak to the last epoch, later than the step's first decay,
                             # and no decision within the run (decay − last epoch = 0 exactly).
                             ([None, None, None], ["supports", "inconclusive"]),
                             ([30, 25], ["not comparable", "not comparable"])):
        spread = (0.0,) * len(decays)
        analysis = curves.analyse(constructed(means, spread=spread, decay={"explore": decays}), first_step_decay=20)
        claims = curves.verdicts(analysis)
        assert words(claims) == expected, decays
    assert "3 of 3 never decided" in curves.verdicts(curves.analyse(
        constructed(means, decay={"explore": [None] * 3}), first_step_decay=20))[0][2]
    assert curves.mean_curve(constructed(means)["small_batch"], "loss") == ([1, 2], pytest.approx([1.0, 0.5]))


def tuning_run(learning_rate, warmup, seed, validation_accuracy, diverged=False):
    return {"learning_rate": learning_rate, "warmup_epochs": float(warmup), "seed": seed, "diverged": diverged,
            "validation_accuracy": None if diverged else validation_accuracy, "test_accuracy": 0.99,
            "reached_target": not diverged, "epochs_run": 30}


def test_lars_is_chosen_by_mean_held_out_accuracy_never_by_test():
    runs = [tuning_run(5.0, 5, seed, a) for seed, a in enumerate((0.60, 0.62, 0.64))]  # Mean 62 %.
    runs += [tuning_run(10.0, 5, seed, a) for seed, a in enumerate((0.70, 0.50, 0.69))]  # Mean 63 %: chosen.
    runs += [tuning_run(10.0, 15, seed, a) for seed, a in enumerate((0.75, 0.75, 0.0))]  # A diverged seed: 50 %.
    runs[-1] = tuning_run(10.0, 15, 2, None, diverged=True)
    runs += [tuning_run(20.0, 5, seed, 0.63) for seed in range(3)]  # Ties 63 %: the smaller rate wins.
    assert lars_tuning.scores(runs)[(10.0, 15)] == pytest.approx([75.0, 75.0, 0.0])
    assert lars_tuning.choose(runs) == (10.0, 5)
    assert lars_tuning.choose([{**r, "test_accuracy": 1.0 if r["learning_rate"] == 20 else 0.0} for r in runs]) == (
        10.0, 5)  # The test accuracy is never read.
    assert lars_tuning.choose([]) is None
    table = lars_tuning.rows(runs)
    assert sum("**chosen**" in row for row in table) == 1 and "| 10 | 5 | 63 ± 11.3 (n = 3) |" in table[3]


def test_exploration_length_compares_longest_with_shortest_at_the_same_target():
    means = {r: 0.7 for r in regimes.REGIMES}
    short = constructed(means, noise=0.001, margin={r: 0.05 for r in regimes.REGIMES})["explore"]
    long = constructed({**means, "explore": 0.72}, noise=0.001, margin={r: 0.08 for r in regimes.REGIMES})["explore"]
    by_length = {0: [{**r, "extra_exploration_epochs": 0} for r in short],
                 20: [{**r, "extra_exploration_epochs": 20} for r in long]}
    frame = pd.DataFrame([{"extra_exploration_epochs": n, "stop/criterion": "train_loss", "stop/target": 0.1,
                           "stop/reached_target": True} for n, rs in by_length.items() for _ in rs])
    analysis = exploration_length.analyse(frame, by_length)
    assert analysis["by_length"][20]["quartiles"]["margin_q3"] == pytest.approx(
        {0: 0.08 - 0.005 + 0.05 + 0.001, 1: 0.08 + 0.05, 2: 0.08 + 0.005 + 0.05 - 0.001})
    claims = exploration_length.verdicts(analysis)
    assert words(claims) == ["supports", "supports"]
    assert claims[0][1].effect.estimate == pytest.approx(0.03) and claims[1][1].effect.estimate == pytest.approx(2.0)
    capped = frame.assign(**{"stop/reached_target": [True] * 4 + [False] * 4})  # The long runs hit the cap.
    claims = exploration_length.verdicts(exploration_length.analyse(capped, by_length))
    assert words(claims) == ["not comparable"] * 2 and "4 of 8 runs did not reach" in claims[0][1].text()
    assert len(exploration_length.rows(analysis)) == 4


def test_readout_cuts_each_run_at_its_first_epoch_at_the_loss():
    curves = {"epoch": [1, 2, 3, 4], "stop_clean_loss": [0.5, 0.25, 0.19, 0.08], "val_accuracy": [0.5, 0.6, 0.65, 0.7],
              "margin_mean": [0.01, 0.02, 0.03, 0.04], "lr_events": {2: "flat: …", 4: "decay: …"}}
    run = {"seed": 3, "diverged": False, "reached_target": True, "epochs_run": 4, "test_accuracy": 0.7,
           "train_loss": 0.08, "flat_epoch": 2, "decay_epoch": 4, "curves": curves}
    cut = readout.at_loss(run, 0.2)  # Epoch 3 is the first at most 0.2 (0.19); the run as if stopped there.
    assert (cut["epochs_run"], cut["test_accuracy"], cut["train_loss"], cut["reached_target"]) == (3, 0.65, 0.19, True)
    assert (cut["flat_epoch"], cut["decay_epoch"]) == (2, None)  # The decay came after the cut.
    assert cut["curves"]["margin_mean"] == [0.01, 0.02, 0.03] and cut["curves"]["lr_events"] == {2: "flat: …"}
    assert readout.at_loss(run, 0.25)["epochs_run"] == 2  # At most the target: 0.25 itself counts.
    never = readout.at_loss(run, 0.05)
    assert never["reached_target"] is False and never["epochs_run"] == 4  # Out of reach: left as it is.
    assert readout.at_loss({**run, "diverged": True}, 0.2)["reached_target"] is False
    frame = readout.frame_at({"small_batch": [cut, never]}, 0.2, "regime")
    assert list(frame["stop/reached_target"]) == [True, False] and set(frame["stop/target"]) == {0.2}
    assert "1 of 2 runs did not reach train_loss <= 0.2" in same_stop_target(frame).why


def test_run_curves_keeps_the_controllers_events_and_gaps():
    history = pd.DataFrame({"epoch": [1, 2, 3], "loss": [2.0, 1.0, 0.9], "learning_rate": [0.1, 0.1, 0.01],
                            "margin_mean": [np.nan, 0.1, 0.2], "lr_event": [np.nan, "flat: …", "decay: …"]})
    c = records.run_curves(history)
    assert c["epoch"] == [1, 2, 3] and c["margin_mean"] == [None, 0.1, 0.2]
    assert c["lr_events"] == {2: "flat: …", 3: "decay: …"}
    assert "val_accuracy" not in c  # Not logged: absent, not invented.


CLAIM_LINE = re.compile(r"^- \*\*(.+?)\*\*: (supports|contradicts|inconclusive|not comparable)\. .*"
                        r"\((supports|contradicts|inconclusive|not comparable): .*; claimed .*; "
                        r"(rule: supports if|not comparable: ).*; compared: .*\)$")


def claim_lines_of(text: str) -> list[str]:
    """The sections' claim lines (the summary at the top repeats each claim and word without the verdict's text)."""
    return [line for line in text.splitlines() if line.startswith("- **") and "; compared: " in line]


@pytest.mark.slow(90)
def test_smoke_run_then_notrain_writes_the_page_from_the_run_directories(tmp_path):
    output, work = tmp_path / "page", tmp_path / "work"
    command = [sys.executable, "scripts/reproduce_lee.py", "--smoke", f"--output={output}", f"--work_dir={work}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    finished = {p: p.stat().st_mtime_ns for p in (work / "smoke").rglob("metrics.json")}
    assert len(finished) == 6  # Small, large, two exploration lengths, LARS' one tuning point and LARS.
    (output / "README.md").unlink()
    # --notrain: no sweep started, the same runs read back, the page rewritten with the same words.
    result = subprocess.run([*command, "--notrain"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--notrain: reading the runs" in result.stdout and "tfregimes.sweep" not in result.stdout
    assert {p: p.stat().st_mtime_ns for p in (work / "smoke").rglob("metrics.json")} == finished
    page = (output / "README.md").read_text()
    for section in ("## Setting", "## Test accuracy at the same training loss", "## Learning curves",
                    "## Margin distribution", "## Margins against the length", "### LARS tuning on the validation",
                    "## A second read-out at clean training loss 0.2"):
        assert section in page
    wall = json.loads((work / "smoke" / "full_wall_time.json").read_text())  # Recorded by the training ...
    assert wall["command"].startswith("python scripts/reproduce_lee.py --smoke")
    assert f"{wall['wall_seconds'] / 60:.1f} min (`{wall['command']}`) for the training" in page  # ... by --notrain.
    lines = claim_lines_of(page)
    assert len(lines) == 18  # Four accuracy claims, two each for curves, margins and exploration length; the
    # read-out repeats the accuracy, margins and exploration-length ones.
    for line in lines:  # One of the four words, then the verdict's effect, claim, rule and comparability.
        assert CLAIM_LINE.match(line), line
    summary = [line for line in page.splitlines() if line.startswith("- **") and line not in lines]
    assert len(summary) == 18 and all(re.match(r"^- \*\*.+\*\*: (supports|contradicts|inconclusive|not "
                                               r"comparable)\. \((accuracy|curves|margins|exploration_length|"
                                               r"readout)\)$", s)
                                      for s in summary)
    saved = json.loads((output / "accuracy.json").read_text())
    analysis = saved["analysis"]
    for claim, verdict, _ in accuracy.verdicts(analysis):  # In the section and in the summary at the top.
        assert page.count(f"**{claim}**: {verdict.word}.") == 2
        assert verdict.word == "not comparable"  # One seed a regime, and no run reached the 0.05 target.
    assert [v["word"] for v in saved["verdicts"]] == ["not comparable"] * 4
    table = analysis["regimes"]
    saved = json.loads((output / "curves.json").read_text())["runs"]
    s = regimes.setting(smoke=True, seed=0)
    point = {regime: f"seed-{s.seeds[0]}" for regime in regimes.REGIMES}
    point["explore"] = f"extra_exploration_epochs-{s.main_length}_seed-{s.seeds[0]}"  # The compared length.
    for regime in regimes.REGIMES:
        state = json.loads((work / "smoke" / regime / "sweep.json").read_text())
        assert {p["state"] for p in state["points"]} == {"done"}
        run_dir = work / "smoke" / regime / point[regime]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["stop"]["target"] == s.stop_loss and metrics["epochs_run"] == s.max_epochs
        assert table[regime]["by_seed"] == {"0": 100 * metrics["test_accuracy"]}
        history = pd.read_csv(run_dir / "history.csv")
        assert saved[regime][0]["curves"]["margin_mean"] == pytest.approx(list(history["margin_mean"]))
    tuning = json.loads((work / "smoke" / regimes.LARS_TUNING / "sweep.json").read_text())["points"]
    held_out = json.loads((work / "smoke" / regimes.LARS_TUNING / tuning[0]["run_dir"] / "metrics.json").read_text())
    assert (held_out["num_train"], held_out["num_validation"]) == (384, 128)  # 25 % of the 512 held out.
    lars = json.loads((work / "smoke" / "lars" / point["lars"] / "metrics.json").read_text())
    assert (lars["num_train"], lars["num_validation"]) == (512, 0)  # The chosen LARS trains on them all.
    explore_dir = work / "smoke" / "explore" / point["explore"]
    decided = json.loads((explore_dir / "metrics.json").read_text())["exploration"]["decay_epoch"]
    assert saved["explore"][0]["decay_epoch"] == decided is not None  # Smoke's tolerance makes it decide.
    lr = pd.read_csv(explore_dir / "history.csv")["learning_rate"].tolist()
    assert lr[decided - 1] == pytest.approx(s.large_learning_rate)  # The peak up to the decision, ×0.1 after.
    assert lr[decided] == pytest.approx(max(s.large_learning_rate * 0.1, s.min_lr))
    lengths = json.loads((output / "exploration_length.json").read_text())["analysis"]
    assert lengths["lengths"] == list(s.exploration_lengths)
    for name in ("curves", "margins", "exploration_length"):
        assert (output / f"{name}.png").stat().st_size > 10_000
