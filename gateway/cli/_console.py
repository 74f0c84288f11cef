"""The console the shell commands print to, and tables that never lose a value.

rich sizes a console that does not write to a terminal at 80 columns (or at the width of a terminal on stdin
or stderr, or ``COLUMNS``) and cuts a cell that does not fit with an ellipsis: ``pml-gateway stats | less``
lost the ends of the labels. `command_console` keeps the terminal's width on a terminal and, piped, takes
`PIPED_WIDTH`, so that a table is as wide as its longest row and each row stays one line for grep and files;
`folded` makes a table's cells wrap (a word longer than its column too) rather than be cut, wherever the width
runs out. Renderables that stretch to the console's width (a ``Panel``, a ``Rule``) would stretch to
`PIPED_WIDTH` when piped: the commands print tables, grids and text only.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.table import Table

PIPED_WIDTH = 1000
"""Columns of a console that is not a terminal: wider than any row a command prints."""


def command_console(*, file: TextIO | None = None, stderr: bool = False) -> Console:
    """A console on `file` (else stdout, or stderr): the terminal's width on a terminal, `PIPED_WIDTH` when
    it is not one (a pipe, a file, a test's capture)."""
    console = Console(file=file, stderr=stderr)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


def folded(table: Table) -> Table:
    """`table`, every column of it (a grid's too) wrapping what does not fit instead of cutting it with an
    ellipsis. Call it once the rows are added: a grid makes its columns as rows come."""
    for column in table.columns:
        column.overflow = "fold"
        column.no_wrap = False
    return table
