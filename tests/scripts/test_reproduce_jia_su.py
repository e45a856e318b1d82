"""scripts/reproduce_jia_su.py (seed 004): the analysis on constructed runs whose answer is known, and the --smoke
pipeline end to end."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))

from jia_su import regularizer, scenarios, setup  # noqa: E402

WORDS = ("supports", "contradicts", "inconclusive", "not comparable")


def _runs(axis, settings, errors, metrics, seeds=(0, 1), reached=lambda value, seed: True,
          loss=lambda value, seed: 0.001 * (seed + 1)):
    """A collect()-like frame: one finished row per (setting, seed), test error and metrics from the given functions,
    each run trained to a clean training-loss stop of 0.01 (the stop/... columns) and reaching it unless `reached`
    says not; the training loss from `loss` (default: rising with the seed)."""
    rows = []
    for value in settings:
        for seed in seeds:
            row = {"state": "done", axis: value, "seed": seed, "test_error": errors(value, seed),
                   "train_loss": loss(value, seed), "train_accuracy": 1.0, "last_epoch_train_loss": 0.02,
                   "confusion_loss": np.nan, "reached_target": reached(value, seed), "epochs_run": 10 + seed,
                   "stop/criterion": "train_loss", "stop/target": 0.01,
                   "stop/reached_target": reached(value, seed)}
            row.update({m: f(value, seed) for m, f in metrics.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def test_per_setting_summaries_and_rankings_over_the_runs():
    settings = [0, 250, 500]
    errors = {0: [10.0, 12.0], 250: [20.0, 22.0], 500: [30.0, 34.0]}
    df = _runs("confusion_size", settings, lambda v, s: errors[v][s], {
        "fisher_logdet": lambda v, s: 100.0 + v + s,  # Orders the runs exactly as the test error does: τ = 1.
        "frobenius": lambda v, s: 1.0 + 0 * v,  # Constant: no τ.
        "spectral_radius": lambda v, s: -float(v) - s,  # Exactly reversed: τ = −1.
        "robustness": lambda v, s: [5.0, 1.0][s],  # Only the seed: ties within each seed.
    })
    summary = setup.per_setting(df, "confusion_size", settings)
    assert [s["test_error"]["mean"] for s in summary] == [11.0, 21.0, 32.0]
    assert summary[2]["test_error"]["std"] == pytest.approx(np.std([30.0, 34.0], ddof=1))
    assert setup.cell(summary[2]["test_error"]) == "32 ± 2.828 (n = 2)"
    assert [s["n"] for s in summary] == [2, 2, 2] and summary[0]["epochs"] == [10, 11]
    ranks = setup.ranking(df, "confusion_size")
    assert ranks["fisher_logdet"].tau.estimate == pytest.approx(1.0) and ranks["fisher_logdet"].tau.n == 6
    assert ranks["spectral_radius"].tau.estimate == pytest.approx(-1.0)
    assert np.isnan(ranks["frobenius"].tau.estimate)
    # robustness: errors (10, 20, 30) for seed 0 and (12, 22, 34) for seed 1 against 5 and 1. Of the 15 pairs, 6 tie
    # in robustness (same seed); of the 9 others, concordant when the seed-0 run has the higher error: (20, 12),
    # (30, 12), (30, 22) → 3, discordant 6; τ_b = (3 − 6) / sqrt((15 − 6) · 15).
    assert ranks["robustness"].tau.estimate == pytest.approx((3 - 6) / np.sqrt(9 * 15))
    # Within each setting the seed-1 run has the larger γ̂ and error: τ = 1 in all 3; across the settings within each
    # seed too (2 groups).
    assert ranks["fisher_logdet"].within_setting == pytest.approx(1.0)
    assert ranks["fisher_logdet"].groups == {"within_setting": 3, "across_settings": 2}
    # The training loss rises with the seed, as robustness falls: the baseline is robustness's τ reversed, and over
    # the same runs for every metric that has a value (the constant Frobenius norm too).
    assert ranks["fisher_logdet"].baseline.estimate == pytest.approx(-ranks["robustness"].tau.estimate)
    assert ranks["frobenius"].baseline.estimate == pytest.approx(-ranks["robustness"].tau.estimate)


def _scenario(axis, order, error, metrics, seeds=(0, 1, 2), **kwargs):
    df = _runs(axis, order, error, metrics, seeds=seeds, **kwargs)
    kept, apart = scenarios.split_settings(setup.done_runs(df, axis, order), axis, order)
    runs = setup.done_runs(df, axis, kept)
    ranks = setup.ranking(runs, axis)
    found = scenarios.claims(axis, runs, kept, setup.per_setting(df, axis, order), ranks, apart)
    return {claim: verdict for claim, verdict, _ in found}, found


NOISE = (0.0, 0.4, -0.3)  # Per-seed offsets of the test error (%): a spread, far below the settings' differences.


def test_scenario_claims_follow_taus_interval():
    # Confusion: the error rises by 4 points a setting; γ̂ follows it, Frobenius reverses it, the spectral radius
    # follows the seed alone (τ 0), robustness follows the error (the paper says it fails: that contradicts it). The
    # training loss rises with the seed: γ̂ and Frobenius order the error the same given it (partial τ ±1), the
    # spectral radius is the loss's own order (partial τ 0 / 0: no estimate).
    order = [0, 250, 500]
    found, lines = _scenario("confusion_size", order, lambda v, s: 10 + v / 62.5 + NOISE[s], {
        "fisher_logdet": lambda v, s: 50 + v / 10 + NOISE[s], "frobenius": lambda v, s: -v - NOISE[s],
        "spectral_radius": lambda v, s: float(s), "robustness": lambda v, s: v + NOISE[s]})
    assert {c: v.word for c, v in found.items()} == {
        "The test error rises with a larger confusion set": "supports",
        "γ̂ (Fisher log-det) ranks the test error across the runs (paper: it tracks it)": "supports",
        "Frobenius norm ‖I‖_F² ranks the test error across the runs (paper: it tracks it)": "contradicts",
        "spectral radius ρ ranks the test error across the runs (paper: it tracks it)": "inconclusive",
        "γ̂ (Fisher log-det) ranks the test error beyond the training loss (partial τ given it > 0)": "supports",
        "Frobenius norm ‖I‖_F² ranks the test error beyond the training loss (partial τ given it > 0)": "contradicts",
        "spectral radius ρ ranks the test error beyond the training loss (partial τ given it > 0)": "not comparable",
        "robustness is unrelated to the test error, |τ_b| < 0.3 (paper: it fails to track it)": "contradicts"}
    assert found["The test error rises with a larger confusion set"].effect.n == 9
    assert "training-loss baseline τ_b(train loss, test error)" in lines[1][2] and "| train loss)" in lines[1][2]
    # Augmentation: the error falls along the order (the paper's direction "less"); with 12 seeds a setting,
    # robustness set by the seed alone is unrelated to the error: its τ's interval lies inside ±0.3.
    order = ["none", "flip", "crop1_flip", "crop4_flip"]
    seeds = tuple(range(12))
    found, _ = _scenario("augment", order, lambda v, s: 30 - 3 * order.index(v) + s / 100, {
        "fisher_logdet": lambda v, s: -order.index(v) + s / 1000, "frobenius": lambda v, s: 1.0 + s,
        "spectral_radius": lambda v, s: 1.0 + s, "robustness": lambda v, s: float(s % 2)}, seeds=seeds)
    assert found["The test error falls with stronger augmentation"].word == "supports"
    assert found["The test error falls with stronger augmentation"].direction == "less"
    robust = found["robustness is unrelated to the test error, |τ_b| < 0.3 (paper: it fails to track it)"]
    assert robust.word == "supports", robust.text()
    # Batch size: the error set by the seed alone does not rise with the batch: inside the noise.
    found, _ = _scenario("batch_size", [32, 64, 128], lambda v, s: 20 + NOISE[s], {
        m: (lambda v, s: v + s) for m in setup.METRICS})
    assert found["The test error rises with a larger batch"].word == "inconclusive"
    # One run of batch 128 short of the stop: that setting is set apart, the claims rest on the other two, and say so.
    found, lines = _scenario("batch_size", [32, 64, 128], lambda v, s: v + NOISE[s], {m: (lambda v, s: v + s)
                                                                                       for m in setup.METRICS},
                             reached=lambda v, s: (v, s) != (128, 2))
    trend = found["The test error rises with a larger batch"]
    assert trend.word == "supports" and trend.effect.n == 6
    assert trend.comparability.why == "all 6 runs reached train_loss <= 0.01 on the clean training set"
    assert "set apart, not comparable: 128 (1 of 3 runs did not reach train_loss <= 0.01)" in lines[0][2]
    # Two settings short of it: one left, no trend; two runs in all: nothing is comparable.
    found, _ = _scenario("batch_size", [32, 64, 128], lambda v, s: v + NOISE[s], {m: (lambda v, s: v + s)
                                                                                  for m in setup.METRICS},
                         reached=lambda v, s: v == 32)
    assert {v.word for v in found.values()} == {"not comparable"}
    found, _ = _scenario("batch_size", [32, 64], lambda v, s: v, {m: (lambda v, s: v) for m in setup.METRICS},
                         seeds=(0,))
    assert {v.word for v in found.values()} == {"not comparable"}


def test_partial_tau_tells_a_metric_that_is_the_training_loss_from_one_beyond_it():
    # 3 settings × 8 seeds. The test error rises along the axis, the training loss (still different among runs at the
    # stop) follows the test error with noise. A metric that is the training loss plus a little noise ranks the test
    # error as well as the loss does, but holding the loss fixed leaves nothing: its beyond-fit claim is
    # inconclusive and the page says so plainly. A metric that is the test error's own noise, unrelated to the loss,
    # ranks it beyond fit.
    rng = np.random.default_rng(0)
    order, seeds = [32, 64, 128], tuple(range(8))
    error = {(v, s): 10 + order.index(v) + rng.normal(0, 1.0) for v in order for s in seeds}
    loss = {key: 0.005 + 0.001 * e + rng.normal(0, 0.0005) for key, e in error.items()}
    fit_only = {key: 1000 * value + rng.normal(0, 0.3) for key, value in loss.items()}
    df = _runs("batch_size", order, lambda v, s: error[v, s], {
        "fisher_logdet": lambda v, s: fit_only[v, s], "frobenius": lambda v, s: error[v, s],
        "spectral_radius": lambda v, s: float(s), "robustness": lambda v, s: float(s)},
        seeds=seeds, loss=lambda v, s: loss[v, s])
    ranks = setup.ranking(df, "batch_size")
    gamma, frobenius = ranks["fisher_logdet"], ranks["frobenius"]
    assert gamma.tau.low > 0 and gamma.baseline.low > 0
    assert gamma.partial.low < 0 < gamma.partial.high and abs(gamma.partial.estimate) < 0.25
    assert frobenius.tau.estimate == pytest.approx(1.0) and frobenius.partial.low > 0.5
    claims = scenarios.claims("batch_size", df, order, setup.per_setting(df, "batch_size", order), ranks)
    found = {c: v for c, v, _ in claims}
    assert found["γ̂ (Fisher log-det) ranks the test error across the runs (paper: it tracks it)"].word == "supports"
    assert found["γ̂ (Fisher log-det) ranks the test error beyond the training loss (partial τ given it > 0)"
                 ].word == "inconclusive"
    assert found["Frobenius norm ‖I‖_F² ranks the test error beyond the training loss (partial τ given it > 0)"
                 ].word == "supports"
    assert "γ̂ explains nothing beyond the training loss" in scenarios.finding(ranks, claims)
    table = "\n".join(scenarios.claim_table("batch_size", df, order, setup.per_setting(df, "batch_size", order),
                                            ranks, {}))
    row = next(line for line in table.splitlines() if line.startswith("| γ̂ (Fisher log-det) ranks the test error "
                                                                       "beyond"))
    # The claim's verdict and CI, then the baseline, the partial τ and the mean τ within a setting, each as
    # tfregimes.report prints an interval.
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["inconclusive", scenarios.cell(gamma.partial), scenarios.cell(gamma.baseline),
                          scenarios.cell(gamma.partial)]
    assert cells[5] == f"{gamma.within_setting:+.2f} (3 groups)"


def test_settings_that_miss_the_stop_are_set_apart_from_the_compared_ones():
    runs = _runs("augment", ["none", "flip", "crop4_flip"], lambda v, s: 10.0, {m: (lambda v, s: 1.0)
                                                                                 for m in setup.METRICS},
                 seeds=(0, 1, 2), reached=lambda v, s: v != "crop4_flip" and (v, s) != ("flip", 1))
    kept, apart = scenarios.split_settings(runs, "augment", ["none", "flip", "crop1_flip", "crop4_flip"])
    assert kept == ["none"]
    assert apart == {"flip": "1 of 3 runs did not reach train_loss <= 0.01",
                     "crop4_flip": "3 of 3 runs did not reach train_loss <= 0.01"}
    settings = setup.per_setting(runs, "augment", ["none", "flip", "crop4_flip"])
    text = "\n".join(scenarios.tables(settings, setup.done_runs(runs, "augment", kept), apart))
    assert "| crop4_flip (apart) | 3 | 10 ± 0 (n = 3) |" in text and "| none | 3 |" in text
    assert ("**Set apart, not comparable** (left out of every τ below; their numbers are the table's): flip: 1 of 3 "
            "runs did not reach train_loss <= 0.01; crop4_flip: 3 of 3 runs did not reach train_loss <= 0.01.") in text
    assert "The claims over the 3 finished runs of the compared settings" in text


def _regularized(error, gamma, seeds=(0, 1, 2), reached=lambda value, seed: True):
    metrics = {m: (lambda v, s: 1.0 + s) for m in setup.METRICS}
    df = _runs("regularizer", ["none", "fisher"], error, {**metrics, "fisher_logdet": gamma}, seeds=seeds,
               reached=reached)
    settings = setup.per_setting(df, "regularizer", ["none", "fisher"])
    return {c: v for c, v, _ in regularizer.claims(setup.done_runs(df, "regularizer", ["none", "fisher"]),
                                                  settings)}


def test_regularizer_claims_pair_with_and_without_by_seed():
    error, gamma = regularizer.CLAIMS["test_error"][0], regularizer.CLAIMS["fisher_logdet"][0]
    # Lower error on every seed (1, 1.2, 0.8 points: t's interval with 2 df, ±1.2 points, excludes 0), higher γ̂
    # (5, 4, 4.5).
    found = _regularized(lambda v, s: 20 + s - (v == "fisher") * [1.0, 1.2, 0.8][s],
                         lambda v, s: 100 + 10 * s + (v == "fisher") * [5.0, 4.0, 4.5][s])
    assert found[error].word == "supports" and found[gamma].word == "contradicts"
    assert found[error].effect.estimate == pytest.approx(-1.0) and found[error].effect.n == 3
    assert found[gamma].effect.estimate == pytest.approx(4.5)
    # Differences −1, +1.5, −0.2 points: inside the seed noise.
    found = _regularized(lambda v, s: 20 + s + (v == "fisher") * [-1.0, 1.5, -0.2][s], lambda v, s: 100.0 + s)
    assert found[error].word == "inconclusive"
    found = _regularized(lambda v, s: 20 + s - (v == "fisher"), lambda v, s: 100.0 + s,
                         reached=lambda v, s: (v, s) != ("fisher", 1))
    assert {v.word for v in found.values()} == {"not comparable"}
    assert "1 of 6 runs did not reach train_loss <= 0.01" in found[error].comparability.why
    found = _regularized(lambda v, s: 20 + s - (v == "fisher"), lambda v, s: 100.0 + s, seeds=(0, 1))
    assert {v.word for v in found.values()} == {"not comparable"} and found[error].effect.n == 2


def test_full_mode_sweeps_stop_at_the_loss_target_and_train_the_crops_with_fewer_seeds(tmp_path):
    (tmp_path / setup.DATA_FILE).write_bytes(b"")  # prepare_data keeps an existing file: no download here.
    size = setup.sizes(smoke=False)
    made = scenarios.sweeps("augment", size, tmp_path)
    assert list(made) == ["default", "augment", "augment_fewer_seeds"]
    assert made["augment"].spec.grid == {"augment": ["flip"]}
    assert made["augment"].spec.seeds == ["0", "1", "2", "3", "4"]
    assert made["augment_fewer_seeds"].spec.grid == {"augment": ["crop1_flip", "crop4_flip"]}
    assert made["augment_fewer_seeds"].spec.seeds == ["0", "1"]
    command = " ".join(made["default"].command())
    assert f"--stop_at_train_loss={setup.TARGET_LOSS}" in command and "--stop_check_every=1" in command
    assert f"--epochs={setup.MAX_EPOCHS}" in command and "stop_at_train_accuracy" not in command
    assert list(scenarios.sweeps("batch_size", size, tmp_path)) == ["default", "batch_size"]


def test_downsample_averages_each_two_by_two_block():
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    small = setup.downsample_2x2(images)
    assert small.shape == (2, 2, 2, 1) and small.dtype == np.uint8
    # Block (0, 0) of image 0: pixels 0, 1, 4, 5 → 2.5, rounded half to even: 2; block (1, 1): 10, 11, 14, 15 → 12.5.
    assert small[0, :, :, 0].tolist() == [[2, 4], [10, 12]]
    assert small[1, 0, 0, 0] == np.rint((16 + 17 + 20 + 21) / 4)


def reproduce(*flags):
    result = subprocess.run([sys.executable, "scripts/reproduce_jia_su.py", "--smoke", "--part=confusion",
                             "--part=regularizer", *flags], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow(120)
def test_smoke_run_writes_the_pages_from_the_sweeps_and_notrain_rewrites_them(tmp_path):
    output, work = tmp_path / "out", tmp_path / "work"
    reproduce(f"--output={output}", f"--work_dir={work}")
    page = (output / "README.md").read_text()
    trained = [(c["claim"], c["word"], c["numbers"]) for part in ("confusion", "regularizer")
               for c in json.loads((output / f"{part}.json").read_text())["claims"]]
    # --notrain's path, in this process (a second interpreter would cost more than the analysis): it trains nothing
    # (nothing logged) and finds the same claims in the runs as they are.
    started = []
    again = [*scenarios.run("confusion", tmp_path / "again", smoke=True, seed=0, command="c", work_dir=work / "smoke",
                            train=False, log=started.append),
             *regularizer.run(tmp_path / "again", smoke=True, seed=0, command="c", work_dir=work / "smoke",
                              train=False, log=started.append)]
    assert started == [] and [(c, v.word, n) for c, v, n in again] == trained
    lines = [line for line in page.splitlines() if line.startswith("- **")]
    # One run a setting, each stopped at the smoke's loss target after its first epoch: every claim is not
    # comparable (n < 3), and its line says why.
    assert len(lines) == 8 + 2
    for line in lines:
        assert line.split("**: ", 1)[1].split(".", 1)[0] in WORDS, line
        assert "claimed > 0" in line or "claimed < 0" in line or "claimed within ±0.3" in line
        assert "; not comparable: " in line or "; rule: supports if the 95 % CI lies" in line
        assert "; compared: " in line
    for old_word in ("holds", "partly", "does not hold"):
        assert f"**: {old_word}" not in page
    for part in ("confusion", "regularizer"):
        for claim in json.loads((output / f"{part}.json").read_text())["claims"]:
            assert f"- **{claim['claim']}**: {claim['word']}. {claim['numbers']}." in page
    assert "## Scenario I: size of the confusion set (Figure 1)" in page
    assert "## The Fisher-trace regularizer (§7.2, Tables 1 and 2)" in page
    assert "Parts not run into this folder yet: augmentation, batch_size." in page
    # The setting beside the paper's, the wall time, and per scenario the claim table with the training-loss baseline
    # and the partial τ given the training loss.
    assert "| stop rule | none (200 epochs)" in page and "| clean training loss ≤ 3 (inference mode" in page
    assert "**Wall time** (smoke mode): " in page and " min from the first model's start to the last one's end (3 " \
        "models" in page
    assert "| claim | verdict | effect [95 % CI] | train-loss baseline τ_b [95 % CI] | partial τ given train loss " \
        "[95 % CI] | mean τ within a setting |" in page
    assert "| γ̂ (Fisher log-det) ranks the test error beyond the training loss (partial τ given it > 0) | not " \
        "comparable |" in page
    assert "**Beyond fit:** not measured" in page
    for name in ("confusion.png", "confusion.json", "regularizer.json"):
        assert (output / name).stat().st_size > 0
    confusion = json.loads((output / "confusion.json").read_text())
    # The summary's numbers are the run directories' own.
    for entry, point in ((confusion["summary"][0], "default/seed-0"),
                         (confusion["summary"][1], "confusion_size/confusion_size-32_seed-0")):
        metrics = json.loads((work / "smoke" / point / "metrics.json").read_text())
        evaluation = json.loads((work / "smoke" / point / "evaluation.json").read_text())
        assert entry["test_error"]["values"] == [pytest.approx(100 * (1 - metrics["test_accuracy"]))]
        assert entry["fisher_logdet"]["values"] == [pytest.approx(evaluation["fisher_logdet"]["value"])]
        assert entry["train_loss"]["values"] == [pytest.approx(metrics["train_loss"])]
    metrics = json.loads((work / "smoke" / "confusion_size/confusion_size-32_seed-0/metrics.json").read_text())
    assert metrics["num_confusion"] == 32 and metrics["num_train"] == 128
    assert metrics["stop"]["criterion"] == "train_loss" and metrics["stop"]["reached_target"]
    assert metrics["stop"]["clean_loss"] <= 3.0 and metrics["epochs_run"] == 1
    assert confusion["compared"] == [0, 32] and confusion["apart"] == {}
    history = (work / "smoke" / "default" / "seed-0" / "history.csv").read_text()
    assert "lr_event" in history.splitlines()[0]  # The plateau schedule's column.
