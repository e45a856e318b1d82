"""scripts/reproduce_keskar.py: the analysis of each part on constructed runs whose answer is known, and the --smoke
pipeline end to end, its numbers checked against the run directories."""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
from keskar import batch_size, common, curves, remedies, table, weight_box  # noqa: E402
from reproduction import claim_lines  # noqa: E402

from tfregimes.analysis import summarize  # noqa: E402

KEYS = common.SHARPNESS_KEYS
SB, LB = 256, 6000  # The full setting's batch sizes.
JITTER = (0.0, 0.003, -0.002)  # Per-seed offsets: a spread across seeds, so every interval has a width.
WORDS = ("supports", "contradicts", "inconclusive", "not comparable")


def make_run(batch, seed, test_accuracy, sharpness, *, augment="none", regularizer="none", reached=True):
    """A finished run as common.row reads it, trained to a 0.15 clean-loss stop (stop/... as collect's); its
    weights-box sharpness a tenth of its sharpness, its weight norm 30."""
    return {"run": f"b{batch}_s{seed}", "batch_size": batch, "seed": seed, "augment": augment,
            "regularizer": regularizer, "state": "done", "train_accuracy": 0.995, "test_accuracy": test_accuracy,
            "train_loss": 0.02, "test_loss": 0.4, "epochs_run": 10, "reached_target": reached,
            "stopped_at_epoch": 10 if reached else None, "wall_seconds": 1.0,
            "sharpness": {key: sharpness for key in KEYS}, "status": {key: "STOP" for key in KEYS},
            "weight_norm": 30.0, "weight_box": sharpness / 10, "stop/criterion": "train_loss", "stop/target": 0.15,
            "stop/reached_target": reached}


def words(claims):
    return [verdict.word for _, verdict, _ in claims]


def test_local_rise_is_the_curvature_of_a_quadratic_on_each_side():
    # f(a) = 2a² around a = 0 and 8(a − 1)² around a = 1: the mean rise one step of 0.1 out is k·0.01.
    alphas = np.linspace(-1, 2, 31)
    curve = {"alpha": alphas, "train_loss": np.where(alphas < 0.5, 2 * alphas ** 2, 8 * (alphas - 1) ** 2)}
    assert table.local_rise(curve, 0.0) == pytest.approx(0.02)
    assert table.local_rise(curve, 1.0) == pytest.approx(0.08)


def _curve(k_sb, k_lb):
    alphas = np.linspace(-1, 2, 31)
    return {"alpha": alphas, "train_loss": np.where(alphas < 0.5, k_sb * alphas ** 2, k_lb * (alphas - 1) ** 2)}


def _sb_lb(lb_accuracy, lb_sharpness, seeds=(0, 1, 2)):
    """SB at 90 % test accuracy and sharpness 1 + seed; LB at `lb_accuracy[seed]` and `lb_sharpness[seed]` times
    SB's sharpness."""
    return [make_run(SB, s, 0.90 + s / 1000, 1.0 + s) for s in seeds] + \
           [make_run(LB, s, lb_accuracy[s] + s / 1000, lb_sharpness[s] * (1.0 + s)) for s in seeds]


def test_table_claims_follow_the_paired_effects_and_their_intervals():
    config = common.setting(smoke=False, seed=0)
    # Clear: LB 2 points worse on every seed, ~10 times sharper, its end of the line ~5 times steeper.
    rows = _sb_lb([0.88 + j for j in JITTER], [10.0 + 100 * j for j in JITTER])
    steep_at_lb = {s: _curve(1.0, 5.0 + s) for s in range(3)}
    found = table.claims(rows, steep_at_lb, config)
    assert words(found) == ["supports"] * 7
    gap = found[0][1].effect
    assert gap.estimate == pytest.approx(2.0 - 100 * np.mean(JITTER)) and gap.n == 3 and gap.low > 0
    assert found[1][1].effect.estimate == pytest.approx(np.mean([np.log(10.0 + 100 * j) for j in JITTER]))
    # The weights-box φ is a tenth of φ on every run: the same log-ratio; the weight norms are equal (log-ratio 0).
    assert found[5][1].effect.estimate == pytest.approx(found[1][1].effect.estimate)
    assert "mean log(‖x‖_LB / ‖x‖_SB) +0 " in found[5][2]
    assert found[6][1].effect.estimate == pytest.approx(np.mean([0.01 * (4.0 + s) for s in range(3)]))
    # The opposite on every seed: LB better, flatter, its end of the line shallower.
    flat_lb = _sb_lb([0.92 + j for j in JITTER], [0.1 + j for j in JITTER])
    assert words(table.claims(flat_lb, {s: _curve(5.0 + s, 1.0) for s in range(3)}, config)) == ["contradicts"] * 7
    # Inside the seed noise: the gap is +2, −1.5, +0.5 points, LB/SB 2, 0.5, 1.1, the rises cross.
    noisy = _sb_lb([0.88, 0.915, 0.895], [2.0, 0.5, 1.1])
    assert words(table.claims(noisy, {0: _curve(1, 2), 1: _curve(2, 1), 2: _curve(1, 1.2)}, config)) \
        == ["inconclusive"] * 7
    # One LB run stopped short of the target: every claim compares LB's minima with SB's, so none is comparable.
    short = _sb_lb([0.88 + j for j in JITTER], [10.0 + 100 * j for j in JITTER])
    short[3].update(reached_target=False, **{"stop/reached_target": False})
    found = table.claims(short, steep_at_lb, config)
    assert words(found) == ["not comparable"] * 7 and "1 of 6 runs did not reach" in found[0][1].comparability.why
    # Runs without a stop target (before metrics.json had a `stop`): not comparable either.
    unstopped = [{k: v for k, v in r.items() if not k.startswith("stop/")} for r in rows]
    assert words(table.claims(unstopped, steep_at_lb, config)) == ["not comparable"] * 7
    # Two seeds: n < 3.
    two = _sb_lb([0.88, 0.883], [10.0, 10.3], seeds=(0, 1))
    found = table.claims(two, {0: _curve(1, 5), 1: _curve(1, 6)}, config)
    assert words(found) == ["not comparable"] * 7 and found[0][1].effect.n == 2


def test_table_summaries_are_the_librarys():
    config = common.setting(smoke=False, seed=0)
    analysis = table.analyse(_sb_lb([0.88] * 3, [10.0] * 3), {0: _curve(1.0, 5.0)}, config)
    assert analysis["sb"]["sharpness"]["subspace_eps5e-4"] == summarize([1.0, 2.0, 3.0])
    assert analysis["sb"]["sharpness"]["full_eps1e-3"].text() == "2 ± 1 (n = 3)"
    assert analysis["rise"][0] == pytest.approx({"sb": 0.01, "lb": 0.05})
    assert "| SB | 99.5 ± 0 (n = 3) | 90.1 ± 0.1 (n = 3) |" in "\n".join(table.table_rows(analysis))


def group_done(rows):
    return common.group(rows)


def _batches(sharpness, accuracy, reached=lambda b, s: True):
    return [make_run(b, s, accuracy(i, s), sharpness(i, s), reached=reached(b, s))
            for i, b in enumerate((64, 128, 256, 512, 1000)) for s in range(3)]


def test_batch_size_claims_are_kendalls_tau_over_the_runs():
    rows = _batches(lambda i, s: (i + 1) * 2.0 + s / 10, lambda i, s: 0.9 - i / 100 + s / 1000)
    found = batch_size.claims(rows)
    assert words(found) == ["supports"] * 5
    # Perfectly concordant, with 5 groups of 3 tied batch sizes: τ_b = 90 / sqrt((105 − 15) · 105) over 105 pairs.
    assert found[0][1].effect.estimate == pytest.approx(90 / np.sqrt(90 * 105)) and found[0][1].effect.n == 15
    assert found[4][1].direction == "less" and found[4][1].effect.estimate < -0.8
    assert batch_size.analyse(rows)["per_batch"][128]["sharpness"]["full_eps1e-3"].mean == pytest.approx(4.1)
    flatter = _batches(lambda i, s: 100 - (i + 1) * 2.0 - s / 10, lambda i, s: 0.8 + i / 100 + s / 1000)
    assert words(batch_size.claims(flatter)) == ["contradicts"] * 5
    # Sharpness and accuracy set by the seed alone: τ_b with the batch size is 0, inside the seed noise.
    seed_only = _batches(lambda i, s: 1.0 + s, lambda i, s: 0.9 + s / 100)
    found = batch_size.claims(seed_only)
    assert words(found) == ["inconclusive"] * 5 and found[0][1].effect.estimate == pytest.approx(0.0)
    short = _batches(lambda i, s: (i + 1) * 2.0 + s / 10, lambda i, s: 0.9 - i / 100 + s / 1000,
                     reached=lambda b, s: (b, s) != (64, 0))
    found = batch_size.claims(short)  # Batch 64 is left out of the trend: τ_b over the 12 runs of the other four.
    assert words(found) == ["supports"] * 5 and "left out of the trend: batch 64 (2/3 reached)" in found[0][2]
    assert found[0][1].effect.n == 12 and found[0][1].effect.estimate == pytest.approx(54 / np.sqrt(54 * 66))
    assert batch_size.analyse(group_done(short))["in_trend"] == [128, 256, 512, 1000]
    assert words(batch_size.claims(_batches(lambda i, s: i, lambda i, s: -i)[:2])) == ["not comparable"] * 5


def _remedies(conservative_accuracy, conservative_sharpness, reached=True):
    return {"sb": [make_run(SB, s, 0.90 + JITTER[s], 1.0 + s) for s in range(3)],
            "lb": [make_run(LB, s, 0.86 + JITTER[s], 20.0 * (1 + s)) for s in range(3)],
            "conservative": [make_run(LB, s, conservative_accuracy[s], conservative_sharpness[s] * (1 + s),
                                      regularizer="proximal", reached=reached) for s in range(3)]}


def test_remedy_claims_pair_conservative_training_with_plain_lb_and_sb():
    groups = _remedies([0.89 - j for j in JITTER], [15.0 + 10 * j for j in JITTER])
    found = remedies.claims(groups)
    assert [claim for claim, _, _ in found] == [
        "Conservative LB raises the test accuracy above plain LB's (Table 7)",
        "Conservative LB minima stay sharper than SB's: φ full_eps1e-3 (Table 7)",
        "Conservative LB minima stay sharper than SB's: φ full_eps5e-4 (Table 7)"]
    assert words(found) == ["supports"] * 3
    raised = found[0][1].effect
    assert raised.estimate == pytest.approx(3.0 - 200 * np.mean(JITTER)) and raised.n == 3
    assert found[1][1].effect.estimate == pytest.approx(np.mean([np.log(15.0 + 10 * j) for j in JITTER]))
    # Worse than LB on every seed and flatter than SB.
    assert words(remedies.claims(_remedies([0.84 - j for j in JITTER], [0.5 + j for j in JITTER]))) \
        == ["contradicts"] * 3
    # Within the seed noise of LB: +1, −1, +0.5 points; sharpness ratios to SB 2, 0.5, 1.2.
    assert words(remedies.claims(_remedies([0.87, 0.853, 0.863], [2.0, 0.5, 1.2]))) == ["inconclusive"] * 3
    # Runs short of the target, or none finished: not comparable.
    short = _remedies([0.89 - j for j in JITTER], [15.0 + 10 * j for j in JITTER], reached=False)
    assert words(remedies.claims(short)) == ["not comparable"] * 3
    assert words(remedies.claims({**groups, "conservative": []})) == ["not comparable"] * 3


def test_weights_box_is_epsilon_times_each_weights_magnitude():
    x = np.array([-2.0, 0.0, 0.5])
    assert weight_box.half_widths(x, 1e-3) == pytest.approx([2e-3, 0.0, 5e-4])


def test_curves_drop_from_the_best_epoch_and_the_overfitting_claim(tmp_path):
    # Test accuracy rising to its last epoch: no drop; peaking at epoch 2 then 1.5 points lower: a drop of 1.5.
    assert curves.drop_from_best({"test": [0.80, 0.85, 0.86]}) == pytest.approx(0.0)
    assert curves.drop_from_best({"test": [0.80, 0.87, float("nan"), 0.855]}) == pytest.approx(1.5)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "history.csv").write_text("epoch,val_accuracy,stop_clean_accuracy\n1,0.8,0.85\n2,0.82,0.9\n")
    assert curves.curve(tmp_path / "run") == {"epoch": [1, 2], "train": [0.85, 0.9], "test": [0.8, 0.82]}
    rows = [make_run(b, s, 0.9, 1.0) for b in (SB, LB) for s in range(3)]
    flat = {r["run"]: {"test": [0.8, 0.85, 0.85 - s / 1000]} for s, r in zip([0, 1, 2] * 2, rows)}
    falling = {**flat, **{r["run"]: {"test": [0.88, 0.86 - s / 100]} for s, r in zip(range(3), rows[3:])}}
    found = curves.claims(rows, falling, {"SB": SB, "LB": LB})
    # SB: drops 0, 0.1, 0.2 points, mean 0.1 − 0.5 < 0 with its CI; LB: 2, 3, 4 points, CI above the margin.
    assert words(found) == ["supports", "contradicts"]
    assert found[0][1].effect.estimate == pytest.approx(0.1 - curves.OVERFIT_MARGIN)
    assert found[1][1].effect.estimate == pytest.approx(3.0 - curves.OVERFIT_MARGIN)


def test_claim_lines_give_the_word_then_the_verdicts_effect_and_rule():
    lines = claim_lines(batch_size.claims(_batches(lambda i, s: i + s / 10, lambda i, s: 0.9 - i / 100)))
    claims = [line for line in lines if line.startswith("- **")]
    assert len(claims) == 5
    for line in claims:
        assert line.split("**: ", 1)[1].split(".", 1)[0] in WORDS
        assert "rule: supports if the 95 % CI lies" in line and "compared: all 15 runs reached" in line


def reproduce(*flags):
    result = subprocess.run([sys.executable, "scripts/reproduce_keskar.py", *flags], cwd=REPO, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """--smoke, then --smoke --notrain on the same folders (the page rewritten from the runs, training nothing)."""
    tmp = tmp_path_factory.mktemp("keskar")
    output, work = tmp / "page", tmp / "work"
    reproduce("--smoke", f"--output={output}", f"--work_dir={work}")
    trained = (output / "README.md").read_text()
    stdout = reproduce("--smoke", "--notrain", f"--output={output}", f"--work_dir={work}")
    assert "--notrain: reading the runs that finished, training nothing" in stdout
    assert "tfregimes.sweep" not in stdout and "tfregimes.evaluate" not in stdout
    assert json.loads((work / "smoke" / "invocation_table.json").read_text())["command"].endswith(f"--work_dir={work}")
    return output, work / "smoke", trained


@pytest.mark.slow(190)
def test_smoke_run_writes_the_page_with_numbers_from_the_run_directories(smoke):
    import keras
    output, work, trained = smoke
    page = (output / "README.md").read_text()
    # The rewrite changes nothing but the invocation's minutes (the training run's, kept) and the claims' words.
    assert [line for line in page.splitlines() if line.startswith("- **")] \
        == [line for line in trained.splitlines() if line.startswith("- **")]
    for title in ("## SB against LB", "## Training and test accuracy per epoch", "## Sharpness and test accuracy "
                  "against the batch size", "## Remedies for LB", "| data | MNIST, 60,000 training examples | "
                  "`digits`, 400 training examples |", "Wall time of the whole run"):
        assert title in page
    results = json.loads((output / "table.json").read_text())
    assert {(r["batch_size"], r["seed"]) for r in results["runs"]} == {(20, 0), (40, 0)}
    for run in results["runs"]:  # Every number comes from the run's own files.
        run_dir = work / "sb_lb" / run["run"]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        evaluation = json.loads((run_dir / "evaluation.json").read_text())
        assert run["test_accuracy"] == metrics["test_accuracy"]
        assert run["reached_target"] == metrics["stop"]["reached_target"] and run["epochs_run"] == metrics["epochs_run"]
        assert run["sharpness"] == {key: evaluation[f"sharpness/{key}"]["value"] for key in KEYS}
        model = keras.saving.load_model(run_dir / "export" / "model.keras", compile=False)
        norm = np.sqrt(sum(float(np.sum(np.square(w))) for w in model.trainable_weights))
        assert run["weight_norm"] == pytest.approx(norm, rel=1e-6)
    curve = results["curves"][0]
    assert curve["alpha"][0] == pytest.approx(-1.0) and curve["alpha"][-1] == pytest.approx(2.0)
    assert len(curve["alpha"]) == table.INTERPOLATION_POINTS
    for claim in results["claims"]:
        assert f"- **{claim['claim']}**: {claim['word']}. {claim['numbers']}." in page
    # One seed: every claim is not comparable (n < 3), and its line says why.
    lines = [line for line in page.splitlines() if line.startswith("- **")]
    assert len(lines) == 7 + 2 + 5 + 3
    for line in lines:
        word = line.split("**: ", 1)[1].split(".", 1)[0]
        assert word in WORDS, line
        assert "claimed > 0" in line or "claimed < 0" in line
        assert "; not comparable: " in line or "; rule: supports if the 95 % CI lies" in line
        assert "; compared: " in line
    for old_word in ("holds", "partly", "does not hold"):
        assert f"**: {old_word}" not in page
    remedy_runs = json.loads((output / "remedies.json").read_text())["runs"]
    assert set(remedy_runs) == {"sb", "lb", "conservative"}
    assert remedy_runs["conservative"][0]["regularizer"] == "proximal"
    assert "no augmented row" in page and "Table 6 lists no F network" in page
    # Figure 4 of the smoke reuses the SB/LB sweep (no sweep of its own).
    assert sorted(json.loads((output / "batch_size.json").read_text())["analysis"]["batches"]) == [20, 40]
    assert not (work / "batch_size").exists()
    boxed = json.loads((work / "sb_lb" / f"weights_box_{results['runs'][0]['run']}.json").read_text())
    assert results["runs"][0]["weight_box"] == boxed["value"] and boxed["value"] > 0
    history = (work / "sb_lb" / results["runs"][0]["run"] / "history.csv").read_text().splitlines()
    figure2 = json.loads((output / "curves.json").read_text())["curves"][results["runs"][0]["run"]]
    assert len(figure2["epoch"]) == len(history) - 1 and all(0 < v <= 1 for v in figure2["test"] + figure2["train"])
    for name in ("table_interpolation.png", "curves.png", "batch_size.png", "remedies.png"):
        assert (output / name).stat().st_size > 10_000


def test_a_pages_only_rewrite_keeps_the_training_invocation(tmp_path):
    results, kept = tmp_path / "table.json", tmp_path / "invocation_table.json"
    trained = common.invocation(results, "python scripts/reproduce_keskar.py", started=0.0, train=True)
    assert trained["command"] == "python scripts/reproduce_keskar.py" and trained["minutes"] > 1e6
    runs = [{"run": "batch_size-256_seed-0"}, {"run": "batch_size-6000_seed-0"}]
    results.write_text(json.dumps({"invocation": {"command": "python x --part=table", "minutes": 24.4}, "runs": runs}))
    # The part's JSON shows the same runs: its invocation is the training run's.
    assert common.invocation(results, "python x --notrain", 0.0, train=False, runs=runs) == {
        "command": "python x --part=table", "minutes": 24.4}
    # A page of other runs (an older setting's) keeps no wall time; the work directory's copy wins over both.
    other = [{"run": "batch_size-256_seed-0"}, {"run": "batch_size-1000_seed-0"}]
    assert np.isnan(common.invocation(results, "python x --notrain", 0.0, train=False, runs=other)["minutes"])
    kept.write_text(json.dumps({"command": "python x", "minutes": 70.5}))
    assert common.invocation(results, "python x --notrain", 0.0, train=False, runs=other, record=kept)["minutes"] \
        == 70.5
    remedies_runs = {"sb": runs[:1], "lb": runs[1:]}  # The remedies part passes its runs by group.
    results.write_text(json.dumps({"invocation": {"command": "c", "minutes": 3.0}, "runs": remedies_runs}))
    assert common.invocation(results, "x", 0.0, train=False, runs=remedies_runs)["minutes"] == 3.0
    assert np.isnan(common.invocation(tmp_path / "none.json", "python x --notrain", 0.0, train=False)["minutes"])
