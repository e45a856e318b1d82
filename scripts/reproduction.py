"""What every `scripts/reproduce_<paper>.py` shares: its common flags, the loop that runs its parts and prints their
claims, the pieces every part's section and figure are made of, and the results page (README.md) that gathers the
sections its parts wrote, so a part can be rerun alone and the page stays whole."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from absl import app, flags

from tfregimes.analysis import Verdict
from tfregimes.base.run_dir import write_atomically

REPO = Path(__file__).resolve().parents[1]
# (claim, verdict, numbers): what every part's run returns, one per claim it tests. The verdict comes from
# tfregimes.analysis.verdict (the one rule: supports / contradicts / inconclusive / not comparable); `numbers` is
# the context a reader needs beside the verdict's own effect, interval and rule.
Claim = tuple[str, Verdict, str]


def define_common_flags(paper: str, parts: Sequence[str], work_dir_help: str) -> None:
    """--part, --smoke, --train, --output (docs/results/<paper>) and --work_dir (runs/reproduce/<paper>)."""
    flags.DEFINE_multi_enum("part", list(parts), list(parts), "Parts of the paper to run (repeat the flag).")
    flags.DEFINE_bool("smoke", False, "Tiny sizes: runs the whole pipeline in about a minute, reproduces nothing.")
    flags.DEFINE_bool("train", True, "Run (or resume) the part's runs; --notrain writes the pages from the runs "
                      "already in --work_dir, training nothing (runs that did not finish are left out; each "
                      "verdict's n says how many it rests on).")
    flags.DEFINE_string("output", str(REPO / "docs" / "results" / paper), "Folder of the results page.")
    flags.DEFINE_string("work_dir", str(REPO / "runs" / "reproduce" / paper), work_dir_help)


def start(paper: str, argv: Sequence[str]) -> tuple[Path, Path, str]:
    """The common flags' folders and the command line as the sections show it: --output, --work_dir's `smoke` or
    `full` subfolder (so a smoke run never mixes with the full one) and `python scripts/reproduce_<paper>.py ...`.
    Arguments other than flags are an error."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    values = flags.FLAGS
    return (Path(values.output), Path(values.work_dir) / ("smoke" if values.smoke else "full"),
            " ".join([f"python scripts/reproduce_{paper}.py", *sys.argv[1:]]))


def run_parts(parts: Sequence[str], run: Callable[[str], Iterable[Claim]], write_page: Callable[[], None],
              output: Path) -> None:
    """Runs each of `parts` (`run(part)`: its claims) in order, printing every claim as `[part] verdict: claim` over
    the verdict's effect, interval and rule and the claim's numbers as it comes, then writes the page (README.md in
    `output`) and says so."""
    for part in parts:
        for claim, verdict, numbers in run(part):
            print(f"[{part}] {verdict.word}: {claim}\n    {verdict.text()}\n    {numbers}", flush=True)
    write_page()
    print(f"wrote {output / 'README.md'}")


def shown(argv: Sequence[str]) -> str:
    """A command as a section shows it: `python ...`, paths relative to the repository."""
    return " ".join(["python", *argv[1:]]).replace(f"{REPO}/", "")


def command_lines(commands: Iterable[Sequence[str]]) -> list[str]:
    """The commands a part ran, as a section's indented code block."""
    return [f"    {shown(argv)}" for argv in commands]


def claim_lines(claims: Iterable[Claim]) -> list[str]:
    """The end of every part's section: its claims, one `- **claim**: word. numbers. (verdict's effect, interval,
    rule and comparability)` line each (the lee page's summary reads the part before the first '. ' back)."""
    return ["### Claims", "", *(f"- **{claim}**: {verdict.word}. {numbers}. ({verdict.text()})"
                                for claim, verdict, numbers in claims), ""]


def new_figure(*args, **kwargs):
    """`plt.subplots(*args, **kwargs)` under the report's style (`tfregimes.report.style`: Agg backend, opaque white
    background, grid), so the pages' figures look like `python -m tfregimes.report`'s."""
    import matplotlib.pyplot as plt

    from tfregimes.report import style
    with plt.rc_context(style.RC):
        return plt.subplots(*args, **kwargs)


def save_figure(fig, path: Path, dpi: int = 80) -> None:
    """Lays `fig` out under the report's style, writes it to `path` and closes it (one process draws every part's
    figures)."""
    import matplotlib.pyplot as plt

    from tfregimes.report import style
    with plt.rc_context(style.RC):
        fig.tight_layout()
        fig.savefig(path, dpi=dpi, facecolor="white")
    plt.close(fig)


def part_sections(output: Path, names: Sequence[str]) -> dict[str, str]:
    """The sections (`<name>.md` in `output`) that exist, in the order of `names`."""
    return {name: (output / f"{name}.md").read_text() for name in names if (output / f"{name}.md").exists()}


def write_page(output: Path, title: str, intro: Sequence[str], sections: dict[str, str],
               parts: Sequence[str]) -> None:
    """README.md: the title, the intro lines, the sections, and which of `parts` have no section yet."""
    missing = [part for part in parts if part not in sections]
    text = "\n".join([f"# {title}", "", *intro, *sections.values(),
                      *([f"Parts not run into this folder yet: {', '.join(missing)}.", ""] if missing else [])])
    output.mkdir(parents=True, exist_ok=True)
    write_atomically(output / "README.md", text)
