"""The results page's sections: the setting (sweep commands, scale-down, wall time) and one per part, each written
as `<part>.md` with its JSON and figure beside it, so a part can be rerun alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from reproduction import claim_lines, command_lines

from lee import accuracy, curves, exploration_length, lars_tuning, margins, readout, regimes
from tfregimes.analysis import summarize
from tfregimes.base.run_dir import write_atomically

WALL_FILE = "full_wall_time.json"  # In --work_dir's mode folder: the wall time of the last training invocation.


def record_wall_time(work_dir: Path, seconds: float, command: str) -> None:
    write_atomically(work_dir / WALL_FILE, json.dumps({"wall_seconds": seconds, "command": command}))


def split_exploration(frame: pd.DataFrame, runs: dict[str, list[dict]], s: regimes.Setting):
    """((frame, runs) of the compared regimes, `explore` being its runs at the main exploration length),
    ((frame, runs) of the exploration sweep by length)."""
    explore = frame["regime"] == "explore"
    lengths = frame.get("extra_exploration_epochs", pd.Series(index=frame.index, dtype=float))
    main = ~explore | (lengths == s.main_length)
    compared = {name: runs[name] for name in regimes.REGIMES}
    compared["explore"] = [r for r in runs["explore"] if r["extra_exploration_epochs"] == s.main_length]
    by_length = {length: [r for r in runs["explore"] if r["extra_exploration_epochs"] == length]
                 for length in s.exploration_lengths}
    return ((frame[main & frame["regime"].isin(regimes.REGIMES)].reset_index(drop=True), compared),
            (frame[explore].reset_index(drop=True), by_length))


def paper_table(s: regimes.Setting, chosen: tuple[float, int] | None) -> list[str]:
    """The setting beside the paper's (appendix A.2, flags/seed000/cifar10_resnet20_*.cfg)."""
    lars = f"η = {chosen[0]:g}, {chosen[1]} warm-up epochs" if chosen else "not tuned yet"
    return [
        "| | seed 000 (CIFAR-10, appendix A.2) | here |", "|---|---|---|",
        "| data | CIFAR-10, 50,000 / 10,000, augmented | MNIST-1D, 4,000 / 1,000, no augmentation |",
        "| model | ResNet-20 | `mlp` (256, 128) |",
        f"| batch | 128 small, 2048 large (×16) | {s.small_batch} small, {s.large_batch} large "
        f"(×{s.large_batch / s.small_batch:g}) |",
        f"| optimizer | SGD momentum 0.9, Goyal linear scaling, 5 warm-up epochs; LARS trust 0.001 | the same; "
        f"η = {s.learning_rate:g} × {s.large_batch}/{s.small_batch} = {s.large_learning_rate:g}, "
        f"{s.warmup_epochs} warm-up epochs; LARS {lars} |",
        f"| LARS tuning | not stated | η ∈ {{{', '.join(f'{v:g}' for v in s.lars_learning_rates)}}} × warm-up "
        f"{{{', '.join(map(str, s.lars_warmups))}}} × {len(s.lars_seeds)} seeds, mean accuracy on "
        f"{100 * s.validation_split:g} % of the training set held out (`--validation_split`) |",
        f"| epochs | 300, ×0.1 at 50 % and 75 % | step schedules ×0.1 after epochs {s.boundaries[0]:g} and "
        f"{s.boundaries[1]:g} (50 %, 75 % of {s.budget_epochs}), then on at the last rate; cap {s.max_epochs} |",
        f"| stop rule | the epoch budget | clean training loss ≤ {s.stop_loss:g} (inference mode, whole training "
        f"set, checked every epoch), or the cap |",
        f"| extended exploration | flat loss, 20 extra epochs, then ×0.1 every 30 | flat: 0 ≤ relative fall over "
        f"{s.flat_window} epochs < {s.flat_tolerance:g}; {', '.join(map(str, s.exploration_lengths))} extra epochs "
        f"(compared: {s.main_length}); then ×0.1 once (every {s.decay_interval_epochs} epochs down to "
        f"{s.min_lr:g}) |",
        f"| weight decay | 5e-4 (BN excluded) | {s.weight_decay:g} on all weights (no BN) |",
        f"| seeds | not stated | {', '.join(map(str, s.seeds))} |", ""]


def full_wall_time(work_dir: Path) -> str:
    path = work_dir / WALL_FILE
    if not path.exists():
        return "not recorded (no training invocation finished in this --work_dir)"
    record = json.loads(path.read_text())
    run_by = f" (`{record['command']}`)" if "command" in record else ""
    return f"{record['wall_seconds'] / 60:.1f} min{run_by}"


def write_setting(output: Path, s: regimes.Setting, sweeps: dict, runs: dict[str, list[dict]],
                  command: str, minutes: float, work_dir: Path) -> None:
    train_minutes = sum(r["wall_seconds"] for rs in runs.values() for r in rs) / 60
    chosen = lars_tuning.choose(runs.get(regimes.LARS_TUNING, []))
    text = "\n".join([
        "## Setting", "", *paper_table(s, chosen),
        f"Wall time of the full mode on this machine (2 CPU cores shared with other jobs; the sweeps run at once, "
        f"one thread a run): {full_wall_time(work_dir)} for the training invocation. Command: `{command}`; the "
        f"{sum(len(r) for r in runs.values())} runs took {train_minutes:.1f} min of wall time in all, one after the "
        f"other; this invocation took {minutes:.1f} min (runs finished before are reused, not rerun). The sweeps "
        "(rerunning one resumes it):", "",
        *command_lines(sweep.command() for sweep in sweeps.values()), "",
        regimes.__doc__.split("\n\n", 1)[1].strip(), "",
        "Every verdict is `tfregimes.analysis.verdict`'s: **supports** when the 95 % confidence interval of the "
        "effect over seeds lies on the claimed side (inside the margin for an equivalence), **contradicts** when it "
        "lies on the other side, **inconclusive** when it straddles, and **not comparable** when the runs do not "
        "meet the comparison's condition (minima: every run of both sides reached the same clean-loss target; fewer "
        "than 3 pairs). Each claim line gives the effect, its interval and the rule.", "",
        "### LARS tuning on the validation split", "",
        *lars_tuning.rows(runs.get(regimes.LARS_TUNING, [])), ""])
    write_atomically(output / "setting.md", text)


def write_accuracy(output: Path, frame: pd.DataFrame, runs: dict[str, list[dict]]) -> list:
    analysis = accuracy.analyse(runs, frame)
    claims = accuracy.verdicts(analysis)
    write_atomically(output / "accuracy.json", json.dumps({"analysis": analysis,
                                                           "verdicts": [v.as_dict() for _, v, _ in claims]}, indent=1))
    text = "\n".join([
        "## Test accuracy at the same training loss (seed 000's tables)", "",
        accuracy.__doc__.split("\n\n", 1)[1].strip(), "",
        *accuracy.rows(analysis, regimes.LABELS), "",
        "Every final metric per regime, mean ± sample std over seeds (`tfregimes.results.group_summary`):", "",
        accuracy.summary_table(frame), "", *claim_lines(claims)])
    write_atomically(output / "accuracy.md", text)
    return claims


def write_curves(output: Path, runs: dict[str, list[dict]], s: regimes.Setting) -> list:
    analysis = curves.analyse(runs, s.boundaries[0])
    claims = curves.verdicts(analysis)
    curves.plot(runs, regimes.LABELS, output / "curves.png")
    write_atomically(output / "curves.json", json.dumps({"analysis": analysis, "verdicts": [
        v.as_dict() for _, v, _ in claims], "runs": {
        regime: [{k: v for k, v in r.items()} for r in rs] for regime, rs in runs.items()}}))
    decisions = ["| seed | loss flat after epoch | decay from epoch | test accuracy (%) | controller's record "
                 "(history.csv `lr_event`) |", "|---|---|---|---|---|"]
    for d in analysis["decisions"]:
        events = "; ".join(f"epoch {e}: {t}" for e, t in sorted(d["events"].items())) or "none"
        accuracy_text = "diverged" if d["test_accuracy"] is None else f"{100 * d['test_accuracy']:.1f}"
        decisions.append(f"| {d['seed']} | {d['flat_epoch'] or 'never'} | {d['decay_epoch'] or 'never'} | "
                         f"{accuracy_text} | {events} |")
    text = "\n".join([
        "## Learning curves with the run-time decay points (appendix A.3, Figures 4–7)", "",
        curves.__doc__.split("\n\n", 1)[1].strip(), "", "![learning curves](curves.png)", "", *decisions, "",
        *claim_lines(claims)])
    write_atomically(output / "curves.md", text)
    return claims


def write_margins(output: Path, frame: pd.DataFrame, runs: dict[str, list[dict]]) -> list:
    analysis = margins.analyse(runs, frame)
    claims = margins.verdicts(analysis)
    margins.plot(analysis, runs, regimes.LABELS, output / "margins.png")
    write_atomically(output / "margins.json", json.dumps({"analysis": analysis,
                                                          "verdicts": [v.as_dict() for _, v, _ in claims]}))
    table = ["| regime | q1 | median | q3 | inter-quartile mean, mean ± std over seeds |", "|---|---|---|---|---|"]
    for regime, c in analysis["curves"].items():
        table.append(f"| {regimes.LABELS[regime]} | " + " | ".join(
            f"{c[q][-1]:.4f}" if c["epoch"] else "—" for q in margins.QUARTILES[:3])
            + f" | {summarize(analysis['final'][regime].values()).text()} |")
    for name, values in analysis["explore_by_decision"].items():
        if values:
            table.append(f"| … exploration runs whose controller {name} | | | | "
                         f"{', '.join(f'{v:.4f}' for v in values.values())} (per seed) |")
    text = "\n".join([
        "## Margin distribution over training (appendix A.1, Figure 1)", "",
        margins.__doc__.split("\n\n", 1)[1].strip(), "", "At the stop (the last epoch), mean over seeds:", "",
        *table, "",
        "![margins](margins.png)", "", *claim_lines(claims)])
    write_atomically(output / "margins.md", text)
    return claims


def write_exploration_length(output: Path, frame: pd.DataFrame, by_length: dict[int, list[dict]],
                             s: regimes.Setting) -> list:
    analysis = exploration_length.analyse(frame, by_length)
    claims = exploration_length.verdicts(analysis)
    exploration_length.plot(analysis, output / "exploration_length.png")
    write_atomically(output / "exploration_length.json", json.dumps(
        {"analysis": analysis, "verdicts": [v.as_dict() for _, v, _ in claims]}))
    text = "\n".join([
        "## Margins against the length of the extended exploration (appendix A.1)", "",
        exploration_length.__doc__.split("\n\n", 1)[1].strip(), "",
        *exploration_length.rows(analysis), "", "![exploration length](exploration_length.png)", "",
        *claim_lines(claims)])
    write_atomically(output / "exploration_length.md", text)
    return claims


def write_readout(output: Path, runs: dict[str, list[dict]], by_length: dict[int, list[dict]]) -> list:
    """The main claims again, on the same runs read at the higher common loss `readout.READOUT_LOSS`."""
    target = readout.READOUT_LOSS
    at, lengths = readout.runs_at(runs, target), readout.runs_at(by_length, target)
    frame = readout.frame_at(at, target, "regime")
    tests = [accuracy.verdicts(accuracy.analyse(at, frame)), margins.verdicts(margins.analyse(at, frame)),
             exploration_length.verdicts(exploration_length.analyse(
                 readout.frame_at(lengths, target, "extra_exploration_epochs"), lengths))]
    claims = [(f"At clean training loss {target:g}: {claim[0].lower()}{claim[1:]}", v, numbers)
              for part in tests for claim, v, numbers in part]
    table = ["| runs | reached the loss (of the runs) | at epoch (per seed) | test accuracy (%) | inter-quartile mean "
             "margin |", "|---|---|---|---|---|"]
    groups = [(regimes.LABELS[name], rs) for name, rs in at.items()]
    groups += [(f"exploration, {length} extra epochs", rs) for length, rs in lengths.items()]
    for label, rs in groups:
        reached = [r for r in rs if r["reached_target"]]
        table.append(f"| {label} | {len(reached)} of {len(rs)} | {', '.join(str(r['epochs_run']) for r in reached)} "
                     f"| {summarize(100 * r['test_accuracy'] for r in reached).text(digits=3)} | "
                     f"{summarize(margins.final_margins(reached).values()).text()} |")
    write_atomically(output / "readout.json", json.dumps({"target": target, "verdicts": [
        {"claim": claim, **v.as_dict()} for claim, v, _ in claims]}))
    text = "\n".join([f"## A second read-out at clean training loss {target:g} (post hoc)", "",
                      readout.__doc__.split("\n\n", 1)[1].strip(), "", *table, "", *claim_lines(claims)])
    write_atomically(output / "readout.md", text)
    return claims
