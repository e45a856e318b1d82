"""Seed 003 Tables 2–4 and Figure 3: SB against LB from the same initialization, each trained to the same clean
training loss; accuracy, ε-sharpness (full space and random 100-dim subspace, ε = 1e-3 and 5e-4), weight norm and
sharpness with the box scaled to the weights alone (weight_box) of each minimum; loss and accuracy along the line
from the SB minimum (a = 0) to the LB one (a = 1).

Claims: LB minima generalize worse than SB minima at the same training loss (Table 2); LB minima are sharper in the
full space and in random subspaces (Tables 3–4), and still with the box scaled to the weights; along the SB→LB line
the loss rises more steeply around the LB minimum than around the SB one (Figure 3).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
from reproduction import Claim, command_lines, shown

from keskar import weight_box
from keskar.common import (
    SHARPNESS_KEYS,
    Setting,
    by_seed,
    describe,
    group,
    read_rows,
    sharpness_log_ratio,
    start_part,
    stopped_alike,
    summary,
    test_points,
    write_part,
)
from tfregimes.analysis import paired_difference, summarize, verdict
from tfregimes.base.run_files import write_json
from tfregimes.report import style

# How A is scaled, which the page states (our copy of the paper gives no scale for A).
SUBSPACE_NOTE = (
    "**The random subspace.** A is n × 100 with independent standard normal entries "
    "(`tfregimes.diagnostics.minimum.sharpness.random_subspace`), so its columns have norm ≈ √n (≈ 1,208 for F1's "
    "n = 1,460,234), not 1; our copy of the paper gives no scale for A. Why √n: the box bounds y, the coordinates "
    "along A's columns, by ε(|(A⁺x)_i| + 1). What the first term lets Ay move does not depend on A's scale (A⁺x "
    "shrinks as A grows); what the constant 1 lets it move does. With unit columns, Ay would have norm at most "
    "≈ ε√100 = 10ε, √(100/n) ≈ 1/120 of the ε√n the full-space box allows, ~0.008ε per weight, and φ in the "
    "subspace would be ~0 for every minimum. With N(0, 1) entries each weight can move by ~ε√100 along the subspace, "
    "the order of the full-space box's ε per weight, only in 100 directions.")
WEIGHT_BOX_NOTE = (
    "**The weights' share of the ratio.** Seed 003's box ε(|x_i| + 1) is ≈ ε for every weight with |x_i| ≪ 1 "
    "(nearly all of them), so a minimum with smaller weights is perturbed by relatively more. The table gives "
    "each minimum's ‖x‖₂ and φ again with a box scaled to the weights alone, |z_i| ≤ ε|x_i| (full space, "
    "ε = 1e-3, the same objective and 10 L-BFGS-B iterations: `scripts/keskar/weight_box.py`), which a "
    "rescaling of the weights rescales with them; the claim below compares the two ratios LB/SB.")
INTERPOLATION_POINTS = 31  # a in [−1, 2] in steps of 0.1, as tfregimes.evaluate's default.


def interpolation_command(config: Setting, rows: list[dict], seed: int, prefix: Path) -> list[str]:
    """`tfregimes.evaluate` from the seed's SB minimum to its LB minimum on that run's training subset."""
    sb, lb = (next(r for r in rows if r["seed"] == seed and r["batch_size"] == b)
              for b in (config.small_batch, config.large_batch))
    sweep = prefix.parent
    return [sys.executable, "-m", "tfregimes.evaluate", f"--model={sweep / sb['run'] / 'export'}",
            f"--interpolate_with={sweep / lb['run'] / 'export'}", f"--dataset={config.dataset}",
            f"--train_subset={config.train_subset}", f"--train_subset_seed={seed}",
            f"--interpolation_points={INTERPOLATION_POINTS}", f"--interpolation_output={prefix}",
            f"--output={prefix}.json"]


def interpolate(config: Setting, rows: list[dict], seed: int, prefix: Path, command: str) -> None:
    """What `interpolation_command` runs, in this process (`tfregimes.evaluation.evaluate_model`, no interpreter to
    start): PREFIX.csv and PREFIX.png, then PREFIX.json (the result, written last: a finished interpolation is
    reused)."""
    from tfregimes.evaluation import EvaluationConfig, evaluate_model
    sb, lb = (next(r for r in rows if r["seed"] == seed and r["batch_size"] == b)
              for b in (config.small_batch, config.large_batch))
    evaluation = EvaluationConfig(
        model=str(prefix.parent / sb["run"] / "export"), interpolate_with=str(prefix.parent / lb["run"] / "export"),
        dataset=config.dataset, train_subset=config.train_subset, train_subset_seed=seed,
        interpolation_points=INTERPOLATION_POINTS, interpolation_output=str(prefix))
    result = {"command": command, **evaluate_model(evaluation)}
    write_json(f"{prefix}.json", result)  # As the CLI writes its --output.


def read_curve(path: Path) -> dict[str, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def local_rise(curve: dict[str, np.ndarray], at: float, key: str = "train_loss") -> float:
    """Mean rise of `key` one grid step (0.1 of the SB→LB distance) either side of a = `at`: the same distance in
    weight space on both ends, so the two ends' rises compare their curvature along the line."""
    alphas = curve["alpha"]
    i = int(np.argmin(np.abs(alphas - at)))
    return float((curve[key][i - 1] + curve[key][i + 1]) / 2 - curve[key][i])


def rises(curves: dict[int, dict[str, np.ndarray]]) -> dict[int, dict[str, float]]:
    """{seed: the training loss's local rise at the SB end (a = 0) and at the LB end (a = 1)}."""
    return {seed: {"sb": local_rise(c, 0.0), "lb": local_rise(c, 1.0)} for seed, c in curves.items()}


def analyse(rows: list[dict], curves: dict[int, dict[str, np.ndarray]], config: Setting) -> dict:
    """The tables' summaries of SB and LB (with the weights-box sharpness), and each seed's rises along its SB→LB
    line."""
    sb, lb = group(rows, batch_size=config.small_batch), group(rows, batch_size=config.large_batch)
    return {"sb": _with_weight_box(sb), "lb": _with_weight_box(lb), "rise": rises(curves)}


def _with_weight_box(runs: list[dict]) -> dict:
    return {**summary(runs), "weight_box": summarize(r.get("weight_box") for r in runs)}


def _log(key: str):
    def value(row: dict) -> float:
        number = row.get(key)
        return float(np.log(number)) if number is not None and number > 0 else float("nan")
    return value


def claims(rows: list[dict], curves: dict[int, dict[str, np.ndarray]], config: Setting) -> list[Claim]:
    """Tables 2–4 and Figure 3's claims, each an effect paired by seed (SB and LB share the initialization) compared
    at the same stop target; and the sharpness ratio again with the box scaled to the weights alone, beside the
    ratio of the weight norms."""
    sb, lb = group(rows, batch_size=config.small_batch), group(rows, batch_size=config.large_batch)
    summaries = {"sb": _with_weight_box(sb), "lb": _with_weight_box(lb)}
    compared = stopped_alike(sb, lb)
    reached = f"reached the target: SB {summaries['sb']['reached']}/{summaries['sb']['runs']}, " \
              f"LB {summaries['lb']['reached']}/{summaries['lb']['runs']}"
    gap = paired_difference(by_seed(sb, test_points), by_seed(lb, test_points),
                            name="mean test accuracy difference SB − LB (points)")
    out = [("LB minima generalize worse than SB minima at the same training loss (Table 2)",
            verdict(gap, "greater", comparability=compared),
            f"test accuracy (%) SB {summaries['sb']['test_accuracy'].text(100)}, LB "
            f"{summaries['lb']['test_accuracy'].text(100)}; "
            f"train accuracy (%) SB {summaries['sb']['train_accuracy'].text(100)}, LB "
            f"{summaries['lb']['train_accuracy'].text(100)}; " + reached)]
    for key in SHARPNESS_KEYS:  # One claim per space and ε: each is a row of Tables 3–4.
        ratio = sharpness_log_ratio(lb, sb, key, "φ_LB / φ_SB")
        out.append((f"LB minima are sharper than SB minima: φ {key} (Tables 3–4)",
                    verdict(ratio, "greater", comparability=compared),
                    f"φ {key}: SB {summaries['sb']['sharpness'][key].text()}, "
                    f"LB {summaries['lb']['sharpness'][key].text()}"))
    norms = paired_difference(by_seed(lb, _log("weight_norm")), by_seed(sb, _log("weight_norm")),
                              name="mean log(‖x‖_LB / ‖x‖_SB)")
    boxed = paired_difference(by_seed(lb, _log("weight_box")), by_seed(sb, _log("weight_box")),
                              name=f"mean log(φ_LB / φ_SB) with the box ε|x_i|, ε = {weight_box.EPSILON:g}")
    out.append(("LB minima are sharper than SB minima with the box scaled to the weights alone, ε|x_i| "
                "(the paper's box ε(|x_i| + 1) is relatively larger around smaller weights)",
                verdict(boxed, "greater", comparability=compared),
                f"φ with the box ε|x_i|: SB {summaries['sb']['weight_box'].text()}, LB "
                f"{summaries['lb']['weight_box'].text()}; weight norm ‖x‖₂ SB {summaries['sb']['weight_norm'].text()}, "
                f"LB {summaries['lb']['weight_norm'].text()} ({norms.text()}); with the paper's box: "
                f"{sharpness_log_ratio(lb, sb, 'full_eps1e-3', 'φ_LB / φ_SB').text()}"))
    rise = rises(curves)
    steeper = paired_difference({s: r["lb"] for s, r in rise.items()}, {s: r["sb"] for s, r in rise.items()},
                                name="mean rise of the training loss, LB end − SB end")
    seeds = set(rise)
    out.append(("Along the SB→LB line the training loss rises more steeply around the LB minimum (Figure 3)",
                verdict(steeper, "greater", comparability=stopped_alike(*(
                    [r for r in runs if r["seed"] in seeds] for runs in (sb, lb)))),
                "rise of the training loss 0.1 of the way out on either side, SB end vs LB end, per seed: "
                + ", ".join(f"seed {s}: {r['sb']:.4f} vs {r['lb']:.4f}" for s, r in rise.items())))
    return out


def plot_interpolation(curves: list[dict[str, np.ndarray]], path: Path) -> None:
    fig, (loss_axis,) = style.new_figure(1, "SB (a = 0) to LB (a = 1) minimum, seed 003 Fig. 3", width=7, height=4.2)
    accuracy_axis = loss_axis.twinx()
    for i, curve in enumerate(curves):
        for split, line in (("train", "-"), ("test", "--")):
            label = i == 0
            loss_axis.semilogy(curve["alpha"], curve[f"{split}_loss"], line, color="tab:blue", alpha=0.8,
                               label=f"{split} cross-entropy" if label else None)
            accuracy_axis.plot(curve["alpha"], 100 * curve[f"{split}_accuracy"], line, color="tab:red",
                               alpha=0.8, label=f"{split} accuracy" if label else None)
    loss_axis.set(xlabel="a   (θ = a·θ_LB + (1 − a)·θ_SB; one line per seed)")
    loss_axis.set_ylabel("cross-entropy", color="tab:blue")
    accuracy_axis.set_ylabel("accuracy (%)", color="tab:red")
    accuracy_axis.grid(False)
    for x in (0, 1):
        loss_axis.axvline(x, color="gray", linewidth=0.8)
    lines = loss_axis.get_legend_handles_labels()
    more = accuracy_axis.get_legend_handles_labels()
    loss_axis.legend(lines[0] + more[0], lines[1] + more[1], loc="lower left")
    style.save(fig, path)


def table_rows(analysis: dict) -> list[str]:
    header = ("| | train acc. (%) | test acc. (%) | epochs run | reached | weight norm ‖x‖₂ | "
              + " | ".join(f"φ {key}" for key in SHARPNESS_KEYS) + f" | φ box ε\\|x_i\\|, full, ε = "
              f"{weight_box.EPSILON:g} |")
    rows = [header, "|---" * (7 + len(SHARPNESS_KEYS)) + "|"]
    for name in ("sb", "lb"):
        s = analysis[name]
        rows.append(f"| {name.upper()} | {s['train_accuracy'].text(100)} | {s['test_accuracy'].text(100)} | "
                    f"{s['epochs_run'].text(digits=3)} | {s['reached']}/{s['runs']} | "
                    f"{s['weight_norm'].text()} | "
                    + " | ".join(s["sharpness"][key].text() for key in SHARPNESS_KEYS)
                    + f" | {s['weight_box'].text()} |")
    return rows


def run(output: Path, *, smoke: bool, seed: int, command: str, work_dir: Path,
        train: bool = True) -> list[Claim]:
    started, config, commands = start_part("table", smoke=smoke, seed=seed, work_dir=work_dir, train=train)
    rows = read_rows(work_dir / "sb_lb")
    curves, evaluations = {}, []
    for s in config.seeds:
        prefix = work_dir / "sb_lb" / f"interpolation_seed{s}"
        if not train and not Path(f"{prefix}.json").exists():
            continue
        argv = interpolation_command(config, rows, s, prefix)
        evaluations.append(argv)
        if not Path(f"{prefix}.json").exists():  # Written last: a finished interpolation is reused.
            print(f"[table] {shown(argv)}", flush=True)
            interpolate(config, rows, s, prefix, shown(argv))
        curves[s] = read_curve(Path(f"{prefix}.csv"))
    boxed = weight_box.ensure(work_dir / "sb_lb", rows, dataset=config.dataset, train_subset=config.train_subset,
                              train=train)
    for r in rows:
        r["weight_box"] = boxed.get(r["run"], {}).get("value")
    analysis = analyse(rows, curves, config)
    statuses = sorted({status for r in rows for status in r["status"].values()})
    train_minutes = sum(r["wall_seconds"] or 0 for r in rows) / 60

    def section(record: dict) -> list[str]:  # The part's page above its figure; `record`: its invocation.
        return [
            "## SB against LB: accuracy, sharpness and weight norm (Tables 2–4), interpolation (Figure 3)", "",
            f"Command: `{record['command']}`, {record['minutes']:.1f} min on 2 CPU cores shared with other work "
            f"(sharpness and interpolation included; the {len(rows)} trainings' own `wall_seconds` add up to "
            f"{train_minutes:.1f} min). It ran:", "",
            *command_lines([*(s.command() for s in commands.values()), *evaluations]), "",
            describe(config), "",
            *table_rows(analysis), "",
            "φ: ε-sharpness in percent (seed 003 eq. 3/4); `full` is the whole weight space, `subspace` a random "
            "100-dimensional one (the same matrix A for every run). L-BFGS-B status of every maximization: "
            + "; ".join(f"`{s}`" for s in statuses)
            + " (10 iterations: the paper's budget, so the maxima are inexact).", "",
            SUBSPACE_NOTE, "", WEIGHT_BOX_NOTE, ""]

    return write_part(output, "table", work_dir=work_dir, started=started, command=command, train=train,
                      analysis=analysis, runs=rows,
                      claims=claims(rows, curves, config),
                      plot=lambda path: plot_interpolation(list(curves.values()), path),
                      figure=("table_interpolation.png", "SB to LB interpolation"),
                      extra={"curves": [{k: v.tolist() for k, v in c.items()} for c in curves.values()]},
                      section=section)
