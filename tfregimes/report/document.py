"""A report as a list of blocks, rendered to Markdown (figures linked) or to one HTML file (figures embedded)."""

from __future__ import annotations

import base64
import dataclasses
import html
from pathlib import Path

from tfregimes.results import markdown_table


@dataclasses.dataclass
class Heading:
    text: str
    level: int = 2


@dataclasses.dataclass
class Paragraph:
    text: str  # plain text; `code` spans in backquotes


@dataclasses.dataclass
class Code:
    text: str


@dataclasses.dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclasses.dataclass
class Figure:
    path: Path  # a PNG in the report's folder
    caption: str


def to_markdown(blocks, base: Path) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Code):
            parts.append(f"```bash\n{block.text}\n```")
        elif isinstance(block, Table):
            parts.append(markdown_table(block.header, block.rows))
        elif isinstance(block, Figure):
            parts.append(f"![{block.path.stem}]({block.path.relative_to(base).as_posix()})\n\n*{block.caption}*")
    return "\n\n".join(parts) + "\n"


def _inline(text: str) -> str:
    """Backquoted spans as <code>, the rest escaped."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{piece}</code>" if i % 2 else piece for i, piece in enumerate(pieces))


def to_html(blocks, title: str) -> str:
    body = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{html.escape(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Code):
            body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(c)}</th>" for c in block.header)
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure):
            data = base64.b64encode(block.path.read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
    style = ("body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#111;background:#fff}"
             "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #999;padding:2px 6px}"
             "img{max-width:100%}pre{background:#f3f3f3;padding:.5em;overflow-x:auto}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
