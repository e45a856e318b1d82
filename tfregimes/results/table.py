"""Mean ± standard deviation over seeds per group of runs, as a DataFrame and as a Markdown table.

Statistics use only the runs that finished without diverging (state "done"); each group still counts its
diverged, unreadable (corrupt) and unfinished runs. The standard deviation is the sample one (ddof = 1; none for
a single run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from tfregimes.analysis import Summary, summarize
from tfregimes.results.collect import FINAL_METRICS, GAP_COLUMNS, measure_columns

SEED_FLAG = "seed"


def default_group_by(df: pd.DataFrame) -> list[str]:
    """Every varied flag except the seed."""
    return [flag for flag in df.attrs.get("varied_flags", []) if flag != SEED_FLAG]


def default_columns(df: pd.DataFrame) -> list[str]:
    return [c for c in (*FINAL_METRICS, *GAP_COLUMNS, *measure_columns(df)) if c in df.columns]


def group_summary(df: pd.DataFrame, group_by: Sequence[str] | None = None,
                  columns: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per group: the group's flag values, `runs` (all), `done`, `diverged`, `corrupt`, and for each column
    `<column>/mean`, `<column>/std` over the group's done runs."""
    group_by = list(default_group_by(df) if group_by is None else group_by)
    unknown = [flag for flag in group_by if flag not in df.columns]
    if unknown:
        raise ValueError(f"--group_by: {', '.join(unknown)} is not a column of the results; the varied flags "
                         f"are {', '.join(df.attrs.get('varied_flags', [])) or 'none'}")
    columns = list(default_columns(df) if columns is None else columns)
    missing = [column for column in columns if column not in df.columns]
    if missing:
        raise ValueError(f"--columns: {', '.join(missing)} is not a column of the results; numeric columns: "
                         f"{', '.join(default_columns(df))}")
    keys = group_keys(df, group_by)
    rows = []
    for key in dict.fromkeys(keys):  # first-seen order
        group = df[keys == key]
        done = group[group["state"] == "done"]
        row = {flag: group[flag].iloc[0] for flag in group_by}
        row.update(runs=len(group), done=len(done), diverged=int(group["diverged"].sum()),
                   corrupt=int((group["state"] == "corrupt").sum()))
        for column in columns:
            summary = summarize(pd.to_numeric(done[column], errors="coerce"))
            row.update({f"{column}/mean": summary.mean, f"{column}/std": summary.std, f"{column}/n": summary.n})
        rows.append(row)
    summary = pd.DataFrame(rows)
    summary.attrs.update(group_by=group_by, columns=columns)
    return summary


def group_keys(df: pd.DataFrame, group_by: Sequence[str]) -> pd.Series:
    """Each row's group: its `group_by` values joined."""
    return df[list(group_by)].astype(str).agg("|".join, axis=1) if group_by else pd.Series("", index=df.index)


# Flags that say which data a run used: groups that differ in one of them are expected to differ in data.
DATA_FLAGS = frozenset({"dataset", "data_dir", "svhn_extra"})


def data_mixes(df: pd.DataFrame, group_by: Sequence[str] | None = None) -> list[str]:
    """What the table would compare across different data (the `data` digest of each run's fingerprint, see
    tfregimes.data.fingerprint): one text per group whose runs were trained on different data (its statistics pool
    them), or else one when the groups differ in data though no grouping flag names the data (e.g. an npz file rewritten
    between two points of a sweep). Runs that recorded no data (corrupt, or older than data.json) are left aside."""
    group_by = list(default_group_by(df) if group_by is None else group_by)
    known = df[df["data"].notna()] if "data" in df.columns else df.iloc[0:0]
    keys = group_keys(known, group_by)
    texts = []
    for key in dict.fromkeys(keys):
        group = known[keys == key]
        if group["data"].nunique() > 1:
            label = ", ".join(f"{flag}={format_value(group[flag].iloc[0])}" for flag in group_by) or "of all runs"
            texts.append(f"group {label} mixes runs trained on different data ({_by_digest(group, 'run')}); its "
                         "statistics pool them")
    if not texts and known["data"].nunique() > 1 and not DATA_FLAGS & set(group_by):
        labels = known.assign(group=[", ".join(f"{f}={format_value(v)}" for f, v in zip(group_by, values))
                                     for values in known[group_by].itertuples(index=False)])
        texts.append(f"the groups compared were trained on different data ({_by_digest(labels, 'group')}), and no "
                     "grouping flag names the data")
    return texts


def _by_digest(rows: pd.DataFrame, column: str, most: int = 4) -> str:
    """`data DIGEST: NAME, NAME; data DIGEST: NAME` (at most `most` names each)."""
    parts = []
    for digest in dict.fromkeys(rows["data"]):
        names = list(dict.fromkeys(rows.loc[rows["data"] == digest, column].astype(str)))
        shown = ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
        parts.append(f"data {digest}: {shown}")
    return "; ".join(parts)


def format_number(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}"


def summary_cells(summary: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the summary as text: flag values, run counts (`corrupt` only where a run is), then
    mean ± std per column."""
    group_by, columns = summary.attrs["group_by"], summary.attrs["columns"]
    counts = ["runs", "done", "diverged"] + (["corrupt"] if summary["corrupt"].any() else [])
    header = [*group_by, *counts, *columns]
    rows = []
    for row in summary.to_dict("records"):  # per-column types kept (iterrows would make every number a float)
        rows.append([format_value(row[flag]) for flag in group_by] + [str(row[k]) for k in counts]
                    + [Summary(row[f"{c}/mean"], row[f"{c}/std"], row[f"{c}/n"]).text(counts=False) for c in columns])
    return header, rows


def format_value(value) -> str:
    """A flag value as a flag would be written: 0.05, 1e+09, 16."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def summary_markdown(summary: pd.DataFrame) -> str:
    return markdown_table(*summary_cells(summary))
