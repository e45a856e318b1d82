"""What every `scripts/reproduce_<paper>.py` shares: its common flags and the results page (README.md) that gathers
the sections its parts wrote, so a part can be rerun alone and the page stays whole."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from absl import flags

from tfregimes.base.run_dir import write_atomically

REPO = Path(__file__).resolve().parents[1]


def define_common_flags(paper: str, parts: Sequence[str], work_dir_help: str) -> None:
    """--part, --smoke, --output (docs/results/<paper>) and --work_dir (runs/reproduce/<paper>)."""
    flags.DEFINE_multi_enum("part", list(parts), list(parts), "Parts of the paper to run (repeat the flag).")
    flags.DEFINE_bool("smoke", False, "Tiny sizes: runs the whole pipeline in about a minute, reproduces nothing.")
    flags.DEFINE_string("output", str(REPO / "docs" / "results" / paper), "Folder of the results page.")
    flags.DEFINE_string("work_dir", str(REPO / "runs" / "reproduce" / paper), work_dir_help)


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
