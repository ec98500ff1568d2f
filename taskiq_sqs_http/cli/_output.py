"""Plain-text tables for people and JSON for scripts; no dependency beyond the standard library."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["Cell", "emit_json", "preview", "render_table", "warn"]

Cell = str | int | float | None

_ELLIPSIS = "..."


def _text(cell: Cell) -> str:
    if cell is None:
        return "-"
    return str(cell)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned so counts line up."""
    texts = [[_text(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in texts:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    numeric = [
        all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.rjust(widths[i]) if numeric[i] else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in texts)])


def emit_json(value: Any, out: TextIO | None = None) -> None:
    stream = out or sys.stdout
    stream.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def preview(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with a visible ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    return flat[: max(0, width - len(_ELLIPSIS))] + _ELLIPSIS


def warn(message: str) -> None:
    """Notes for the person at the terminal go to stderr, so ``--json`` output stays parseable."""
    sys.stderr.write(f"taskiq-sqs: {message}\n")
