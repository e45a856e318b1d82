"""`build_report(paths, output_dir, ...)`: a run directory, or a sweep / several runs, as report.md (and
report.html) with PNG figures. Every number comes from the run files (via tfregimes.results); the only derived
numbers are the generalization gaps (differences of two recorded metrics), means and standard deviations over
seeds, and the measure ranking's rank correlations (tfregimes.analysis: τ, partial τ, Ψ with their CIs)."""

from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pandas as pd

from tfregimes.analysis import same_stop_target
from tfregimes.analysis.rank import RESAMPLES
from tfregimes.base.run_files import write_atomically
from tfregimes.report import document as doc
from tfregimes.report import figures_run, figures_sweep
from tfregimes.report.events import last_histogram
from tfregimes.report.ranking import GAPS, rank_measures, ranking_cells
from tfregimes.report.style import save
from tfregimes.results import (
    RunRecord,
    evaluation_metrics,
    flags_differing_from_defaults,
    frame,
    group_summary,
    load_runs,
    measure_columns,
)
from tfregimes.results.table import (
    SEED_FLAG,
    format_number,
    format_value,
    summary_cells,
)

FORMATS = ("md", "html")


@dataclasses.dataclass
class Report:
    documents: dict[str, Path]  # format -> file
    figures: dict[str, Path]  # name -> PNG
    tables: dict[str, pd.DataFrame]
    corrupt: dict[str, str] = dataclasses.field(default_factory=dict)  # run -> why its files cannot be read


def build_report(paths, output_dir, *, x: str | None = None, formats=("md",), command: str | None = None) -> Report:
    """Writes the report of `paths` (one run directory, or sweep directories / several run directories) into
    `output_dir`: report.md and/or report.html, figures under figures/. `x`: the sweep axis (default: the varied
    flag with the most values, seed excluded). `command`: how to regenerate the report (default: the
    `python -m tfregimes.report` command of these arguments)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"--format: {', '.join(unknown) or 'none given'}; valid: {', '.join(FORMATS)}")
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]
    output_dir = Path(output_dir)
    records, sweeps = load_runs(paths)
    command = command or " ".join(["python -m tfregimes.report", *map(str, paths), f"--output={output_dir}",
                                   *([f"--x={x}"] if x else []), f"--format={','.join(formats)}"])
    if len(records) == 1 and not sweeps:
        if x:
            raise ValueError("--x is for a sweep or several runs; the report of one run has no axis")
        blocks, figures, tables = _run_report(records[0], output_dir / "figures", command)
        title = f"Report of the run {records[0].run_dir}"
    else:
        blocks, figures, tables = _sweep_report(records, sweeps, output_dir / "figures", x, command)
        title = f"Report of {len(records)} runs"
    documents = {}
    if "md" in formats:
        documents["md"] = output_dir / "report.md"
        _write(documents["md"], doc.to_markdown([doc.Heading(title, 1), *blocks], output_dir))
    if "html" in formats:
        documents["html"] = output_dir / "report.html"
        _write(documents["html"], doc.to_html([doc.Heading(title, 1), *blocks], title))
    return Report(documents, figures, tables, {r.name: r.reason for r in records if r.state == "corrupt"})


def _write(path: Path, text: str) -> None:
    write_atomically(path, text)


def _figure_blocks(figures: dict[str, Path], captions: dict[str, str]) -> list:
    return [doc.Figure(path, captions[name]) for name, path in figures.items()]


# --- one run --------------------------------------------------------------------------------------------------
RUN_CAPTIONS = {
    "learning_curves": "Loss and accuracy per epoch: train = running mean over the epoch's batches, test = a full "
                       "pass; purple lines: phase switches, red dotted: exploration decisions (history.csv lr_event).",
    "learning_rate": "Learning rate of each epoch's last step (history.csv learning_rate).",
    "angular_update": "Angular update per epoch (seed 002 eq. 11), all weights and the spread over layers "
                      "(diagnostics/angular_update_layers.jsonl).",
    "effective_lr": "Effective learning rate η/‖x‖² (seed 002 eq. 9), weight norm and tuning factor (eq. 27).",
    "momentum": "Momentum scale r_t against 1/(1−μ) (seed 001 eq. 4) and alignment s_t with the final weights "
                "(eq. 3, diagnostics/momentum_alignment.json).",
    "margins": "First-order margins of the training examples (seed 000 A.1): quartiles per epoch (history.csv) "
               "and the last measured distribution (TensorBoard histogram margin/input).",
}


def _run_figures(record: RunRecord, figure_dir: Path) -> dict[str, Path]:
    figures = {}
    for name, draw in figures_run.RUN_FIGURES.items():
        figure = draw(record)
        if figure is not None:
            figures[name] = save(figure, figure_dir / f"{name}.png")
    figure = figures_run.margins(record, last_histogram(record.run_dir / "tensorboard" / "diagnostics"))
    if figure is not None:
        figures["margins"] = save(figure, figure_dir / "margins.png")
    return figures


def minimum_metrics_table(record: RunRecord) -> pd.DataFrame:
    """One row per metric at the minimum: its value, the other fields it recorded (status, iterations, std, …)
    and the seconds it took."""
    rows = []
    for column, entry in evaluation_metrics(record.evaluation).items():
        details = "; ".join(f"{k}={_text(v)}" for k, v in entry.items() if k not in ("value", "seconds"))
        rows.append({"metric": column, "value": entry.get("value"), "details": details,
                     "seconds": entry.get("seconds")})
    return pd.DataFrame(rows, columns=["metric", "value", "details", "seconds"])


def _text(value) -> str:
    return format_number(value) if isinstance(value, float) else str(value)


def _run_report(record: RunRecord, figure_dir: Path, command: str):
    blocks: list = [doc.Heading("How it was made")]
    blocks.append(doc.Paragraph(f"Trained by (flags.cfg): `{record.command or 'not recorded'}`. Repeat it in a "
                                f"new directory with `python -m tfregimes.train --flagfile={record.run_dir}/flags.cfg "
                                "--model_dir=NEW_DIR`. Regenerate this report with:"))
    blocks.append(doc.Code(command))
    changed = flags_differing_from_defaults(record.flags)
    flags_table = pd.DataFrame([(k, v, d) for k, (v, d) in changed.items()], columns=["flag", "value", "default"])
    blocks += [doc.Heading("Flags that differ from the defaults"),
               doc.Table(["flag", "value", "default"], flags_table.astype(str).values.tolist())]
    metrics = {k: v for k, v in record.metrics.items() if not isinstance(v, (dict, list))}
    blocks += [doc.Heading("Final metrics (metrics.json)"),
               doc.Paragraph(f"State: {record.state}" + (f" ({record.reason})" if record.reason else "") + "."),
               doc.Table(["metric", "value"], [[k, _text(v)] for k, v in metrics.items()])]
    figures = _run_figures(record, figure_dir)
    blocks += [doc.Heading("Figures"), *(_figure_blocks(figures, RUN_CAPTIONS) or
                                         [doc.Paragraph("None: the run recorded no completed epoch (history.csv).")])]
    tables = {"flags": flags_table, "final_metrics": pd.DataFrame([metrics])}
    if record.evaluation is not None:
        table = minimum_metrics_table(record)
        tables["minimum_metrics"] = table
        settings = record.evaluation.get("metric_settings", {})
        blocks += [doc.Heading("Metrics at the minimum"),
                   doc.Paragraph(f"From `{record.evaluation_path}`: model `{record.evaluation.get('model')}`, "
                                 f"loss and accuracy on the {record.evaluation.get('split')} split "
                                 f"({_text(record.evaluation.get('loss'))}, "
                                 f"{_text(record.evaluation.get('accuracy'))}), metrics on the "
                                 f"{record.evaluation.get('metrics_split')} split. Settings: "
                                 + ", ".join(f"{k}={v}" for k, v in settings.items()) + "."),
                   doc.Table(list(table.columns), [[r["metric"], _text(r["value"]), r["details"], _text(r["seconds"])]
                                                   for r in table.to_dict("records")])]
    return blocks, figures, tables


# --- a sweep or several runs ----------------------------------------------------------------------------------
def default_x(df: pd.DataFrame) -> str | None:
    """The varied flag (seed excluded) with the most distinct values among the runs."""
    candidates = [f for f in df.attrs.get("varied_flags", []) if f != SEED_FLAG]
    return max(candidates, key=lambda f: df[f].nunique(), default=None)


def _sweep_report(records: list[RunRecord], sweeps: list[dict], figure_dir: Path, x: str | None, command: str):
    df = frame(records)
    varied = df.attrs["varied_flags"]
    if x is not None and x not in varied:
        raise ValueError(f"--x={x}: not a varied flag of these runs; varied: {', '.join(varied) or 'none'}")
    x = x or default_x(df)
    group_by = [f for f in varied if f != SEED_FLAG]
    measures = [c for c in measure_columns(df) if pd.to_numeric(df[c], errors="coerce").notna().any()]
    summary = group_summary(df, group_by)
    ranking = rank_measures(df, measures)
    blocks: list = [doc.Heading("How it was made")]
    for sweep in sweeps:
        blocks += [doc.Paragraph(f"Sweep `{sweep['sweep_dir']}` (sweep.json), made by:"),
                   doc.Code(" ".join(shlex.quote(str(a)) for a in sweep.get("command", [])))]
    blocks += [doc.Paragraph("Each run's own command is in the runs table (from its flags.cfg). "
                             "Regenerate this report with:"), doc.Code(command)]
    blocks += [doc.Heading("Results: mean ± std over seeds"),
               doc.Paragraph(f"Grouped by {', '.join(group_by) or 'nothing (all runs)'}; sample standard deviation "
                             "(ddof = 1) over the runs that finished; diverged, unreadable (corrupt) and unfinished "
                             "runs are counted, not averaged. Gaps: train − test accuracy, test − train loss "
                             "(metrics.json)."),
               doc.Table(*summary_cells(summary))]
    shown = [c for c in ("test_accuracy", "gap_accuracy", "gap_loss") if c in df]
    blocks += [doc.Heading("Runs"),
               doc.Table(["run", *varied, "state", *shown, "command"],
                         [[r["run"], *(format_value(r[f]) for f in varied), r["state"],
                           *(_text(r[c]) for c in shown), f"`{r['command']}`"] for r in df.to_dict("records")])]
    left_out = [r for r in records if r.state != "done"]
    if left_out:
        blocks += [doc.Heading("Diverged, unreadable or unfinished runs (counted, left out of every statistic)"),
                   doc.Table(["run", "state", "why"], [[r.name, r.state, r.reason] for r in left_out])]
    figures = _sweep_figures(records, df, x, measures, group_by, figure_dir)
    captions = {"accuracy_gap_vs_x": f"Test accuracy and generalization gaps against --{x}: mean over seeds, "
                                     "error bars ± one standard deviation.",
                "measures_vs_x": f"Each metric at the minimum (evaluate JSON) against --{x}, mean ± std over seeds.",
                "learning_curves": "Learning curves per group, mean over seeds (history.csv)."}
    blocks += [doc.Heading("Figures"), *_figure_blocks(figures, captions)]
    blocks += [doc.Heading("Measure ranking (seed 004 §7.1)"), *_ranking_blocks(df, ranking)]
    return blocks, figures, {"runs": df, "summary": summary, "ranking": ranking}


def _ranking_blocks(df: pd.DataFrame, ranking: pd.DataFrame) -> list:
    """Whether the runs compared were trained to the same stop target, what the columns mean, one table per gap."""
    compared = same_stop_target(df[df["state"] == "done"])
    covariate = ranking.attrs.get("covariate") or "train_loss"
    blocks: list = [doc.Paragraph(
        f"Runs compared at the same training loss? {'yes' if compared.ok else 'no'}: {compared.why}."
        + ("" if compared.ok else " Minima reached at different training losses differ by how far they were "
           "trained; read τ through the partial τ given the training loss, and rerun to a common stop "
           "(--stop_at_train_loss) before drawing a conclusion.")),
        doc.Paragraph(
            "Over the runs that finished, from `tfregimes.analysis`. τ: Kendall's τ_b between the measure and the "
            f"gap, with its 95 % bootstrap CI over runs ({RESAMPLES} resamples). Sign convention: τ > 0 when runs "
            "with a larger measure have a larger gap, so a good sharpness measure has τ > 0 and a good margin "
            f"measure τ < 0. Partial τ given {covariate}: τ with the training loss held fixed (Kendall 1942), with "
            "its CI; beyond fit? is `yes` when that CI excludes 0 (the measure orders the runs in a way the training "
            "loss does not), `no` when it includes 0. The baseline row is the training loss itself: a measure whose "
            "|τ| is no larger ranks the runs no better than their fit does. Ψ: Jiang et al. 2020's granulated τ "
            "(\"Fantastic Generalization Measures\", eq. 4), the mean over the varied flags (seed excluded) of the "
            "mean τ within the groups of runs where only that flag (and the seed) varies; Ψ per flag lists those "
            "means. n: the runs τ rests on (at least 3). `final/…` is the run's last logged training diagnostic. "
            "Rows sorted by "
            f"|τ| against {next(iter(GAPS))}.")]
    if ranking.attrs.get("psi_why"):
        blocks.append(doc.Paragraph(f"Ψ is not computed: {ranking.attrs['psi_why']}."))
    for gap, meaning in GAPS.items():
        blocks += [doc.Heading(f"Against {gap} ({meaning})", 3), doc.Table(*ranking_cells(ranking, gap))]
    return blocks


def _sweep_figures(records, df, x, measures, group_by, figure_dir: Path) -> dict[str, Path]:
    figures = {}
    evaluated = [m for m in measures if not m.startswith("final/")]
    if x is not None:
        panels = [("accuracy_gap_vs_x", ["test_accuracy", "gap_accuracy", "gap_loss"],
                   f"test accuracy and generalization gap against --{x}")]
        if evaluated:
            panels.append(("measures_vs_x", evaluated, f"metrics at the minimum against --{x}"))
        for name, columns, title in panels:
            figure = figures_sweep.metrics_vs_x(df, x, columns, title)
            if figure is not None:
                figures[name] = save(figure, figure_dir / f"{name}.png")
    figure = figures_sweep.learning_curves_by_group(records, df, group_by)
    if figure is not None:
        figures["learning_curves"] = save(figure, figure_dir / "learning_curves.png")
    return figures
