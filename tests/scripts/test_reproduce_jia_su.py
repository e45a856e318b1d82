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


def _runs(axis, settings, errors, metrics, seeds=(0, 1)):
    """A collect()-like frame: one row per (setting, seed), test error and metrics from the given functions."""
    rows = []
    for value in settings:
        for seed in seeds:
            row = {"state": "done", axis: value, "seed": seed, "test_error": errors(value, seed),
                   "train_loss": 0.01 * (seed + 1), "train_accuracy": 1.0, "last_epoch_train_loss": 0.02,
                   "confusion_loss": np.nan, "reached_target": True, "epochs_run": 10 + seed}
            row.update({m: f(value, seed) for m, f in metrics.items()})
            rows.append(row)
    return pd.DataFrame(rows)


def test_summary_is_mean_and_sample_std_per_setting_and_tau_follows_the_ordering():
    settings = [0, 250, 500]
    errors = {0: [10.0, 12.0], 250: [20.0, 22.0], 500: [30.0, 34.0]}
    df = _runs("confusion_size", settings, lambda v, s: errors[v][s], {
        "fisher_logdet": lambda v, s: 100.0 + v + s,  # Orders the runs exactly as the test error does: τ = 1.
        "frobenius": lambda v, s: 1.0 + 0 * v,  # Constant: no τ (scipy gives NaN for a constant input).
        "spectral_radius": lambda v, s: -float(v) - s,  # Exactly reversed: τ = −1.
        "robustness": lambda v, s: [5.0, 1.0][s],  # Only the seed: ties within each seed.
    })
    summary = setup.summarize(df, "confusion_size", settings)
    assert [s["test_error"]["mean"] for s in summary] == [11.0, 21.0, 32.0]
    assert summary[2]["test_error"]["std"] == pytest.approx(np.std([30.0, 34.0], ddof=1))
    assert [s["n"] for s in summary] == [2, 2, 2] and summary[0]["epochs"] == [10, 11]
    ranks = {r["metric"]: r for r in setup.ranking(df, summary)}
    assert ranks["fisher_logdet"]["tau_runs"] == pytest.approx(1.0) and ranks["fisher_logdet"]["n_runs"] == 6
    assert ranks["spectral_radius"]["tau_runs"] == pytest.approx(-1.0)
    assert ranks["fisher_logdet"]["tau_means"] == pytest.approx(1.0)
    assert np.isnan(ranks["frobenius"]["tau_runs"])
    # robustness: errors (10, 20, 30) for seed 0 and (12, 22, 34) for seed 1 against 5 and 1. Of the 15 pairs, 6 tie
    # in robustness (same seed); of the 9 others, concordant when the seed-0 run has the higher error: (20, 12),
    # (30, 12), (30, 22) → 3, discordant 6; τ_b = (3 − 6) / sqrt((15 − 6) · 15).
    assert ranks["robustness"]["tau_runs"] == pytest.approx((3 - 6) / np.sqrt(9 * 15))


def test_verdicts_follow_the_paper_claims_per_scenario():
    summary = [{"setting": v, "n": 3, "reached_target": 3, "test_error": {"mean": e, "std": 0.1},
                "train_loss": {"values": [0.001, 0.002, 0.003]}} for v, e in (("none", 30.0), ("flip", 25.0),
                                                                              ("crop1_flip", 21.0),
                                                                              ("crop4_flip", 20.0))]
    nan = float("nan")
    ranks = [{"metric": "fisher_logdet", "tau_runs": 0.6, "tau_runs_low": 0.2, "tau_runs_high": 0.9, "n_runs": 12,
              "tau_means": 1.0, "n_means": 4},
             {"metric": "frobenius", "tau_runs": 0.7, "tau_runs_low": 0.4, "tau_runs_high": 0.9, "n_runs": 12,
              "tau_means": 1.0, "n_means": 4},
             {"metric": "spectral_radius", "tau_runs": 0.2, "tau_runs_low": -0.2, "tau_runs_high": 0.6, "n_runs": 12,
              "tau_means": 0.3, "n_means": 4},
             {"metric": "robustness", "tau_runs": nan, "tau_runs_low": nan, "tau_runs_high": nan, "n_runs": 2,
              "tau_means": nan, "n_means": 2}]
    found = {claim: verdict for claim, verdict, _ in scenarios.verdicts("augment", summary, ranks)}
    # Error falls from none to crop4_flip: the trend holds (τ of position and error = −1, flipped for augment).
    assert found["The test error rises with a weaker augmentation (reversed order)"] == "holds"
    assert found["γ̂ (Fisher log-det) tracks the test error (paper: it does)"] == "holds"
    # Scenario II's paper says Frobenius and spectral radius fail: a significant τ > 0 contradicts it.
    assert found["Frobenius norm ‖I‖_F² fails to track the test error (paper: it fails)"] == "does not hold"
    assert found["spectral radius ρ fails to track the test error (paper: it fails)"] == "partly"
    assert found["robustness fails to track the test error (paper: it fails)"] == scenarios.NOT_MEASURED
    alone = [dict(summary[0])] + [dict(entry, n=0) for entry in summary[1:]]  # Runs of one setting only.
    assert {v for c, v, _ in scenarios.verdicts("augment", alone, ranks) if "tracks" in c or "fails" in c} \
        == {scenarios.NOT_MEASURED}
    assert found["Every model ends at a near-zero, similar training loss (the paper's premise)"] == "holds"
    summary[3]["reached_target"] = 1
    batch = {claim: verdict for claim, verdict, _ in scenarios.verdicts("batch_size", summary, ranks)}
    assert batch["The test error rises with a larger batch"] == "does not hold"
    assert batch["spectral radius ρ tracks the test error (paper: it does)"] == "partly"
    assert batch["Every model ends at a near-zero, similar training loss (the paper's premise)"] == "partly"


def test_regularizer_paired_differences_and_verdicts():
    def entry(values, seeds=(0, 1, 2)):
        return {"values": values, "mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)),
                "seeds": list(seeds)}
    summary = [{"setting": "none", "n": 3, "reached_target": 3, "test_error": entry([20.0, 21.0, 22.0]),
                "fisher_logdet": entry([100.0, 110.0, 120.0]), "train_loss": entry([0.01, 0.01, 0.01])},
               {"setting": "fisher", "n": 3, "reached_target": 2, "test_error": entry([19.0, 19.5, 21.5]),
                "fisher_logdet": entry([105.0, 112.0, 124.0]), "train_loss": entry([0.02, 0.02, 0.02])}]
    error = regularizer.paired(summary, "test_error")
    assert error["values"] == [-1.0, -1.5, -0.5] and error["mean"] == pytest.approx(-1.0)
    assert error["std"] == pytest.approx(0.5)
    gamma = regularizer.paired(summary, "fisher_logdet")
    assert gamma["mean"] == pytest.approx(11 / 3)
    # Pairs by seed: a seed one side lacks is left out, and the order of the runs does not matter.
    summary[1]["fisher_logdet"] = entry([124.0, 105.0], seeds=(2, 0))
    assert regularizer.paired(summary, "fisher_logdet")["values"] == [5.0, 4.0]
    summary[1]["fisher_logdet"] = entry([105.0, 112.0, 124.0])
    found = {c: v for c, v, _ in regularizer.verdicts(summary, {"test_error": error, "fisher_logdet": gamma})}
    assert found["The regularizer lowers the test error (Table 1)"] == "holds"  # −1.0 + 0.5 < 0
    assert found["The regularizer lowers γ̂ at the end of training (Table 2)"] == "does not hold"
    assert found["Both reach minima of similar training loss (Table 2 compares such minima)"] == "partly"
    nothing = {"values": [], "mean": float("nan"), "std": 0.0, "n": 0}
    assert {v for _, v, _ in regularizer.verdicts(summary, {"test_error": nothing, "fisher_logdet": nothing})} \
        == {regularizer.NOT_MEASURED}


def test_downsample_averages_each_two_by_two_block():
    images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
    small = setup.downsample_2x2(images)
    assert small.shape == (2, 2, 2, 1) and small.dtype == np.uint8
    # Block (0, 0) of image 0: pixels 0, 1, 4, 5 → 2.5, rounded half to even: 2; block (1, 1): 10, 11, 14, 15 → 12.5.
    assert small[0, :, :, 0].tolist() == [[2, 4], [10, 12]]
    assert small[1, 0, 0, 0] == np.rint((16 + 17 + 20 + 21) / 4)


@pytest.mark.slow(100)
def test_smoke_run_writes_the_pages_from_the_sweeps(tmp_path):
    output, work = tmp_path / "out", tmp_path / "work"
    result = subprocess.run([sys.executable, "scripts/reproduce_jia_su.py", "--smoke", "--part=confusion",
                             "--part=regularizer", f"--output={output}", f"--work_dir={work}"], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (output / "README.md").read_text()
    assert "## Scenario I: size of the confusion set (Figure 1)" in page
    assert "## The Fisher-trace regularizer (§7.2, Tables 1 and 2)" in page
    assert "Parts not run into this folder yet: augmentation, batch_size." in page
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
    history = (work / "smoke" / "default" / "seed-0" / "history.csv").read_text()
    assert "lr_event" in history.splitlines()[0]  # The plateau schedule's column.
