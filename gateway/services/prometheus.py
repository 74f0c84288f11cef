"""The Prometheus text exposition format (version 0.0.4), rendered from a snapshot: a pure function over data.

A snapshot is a list of `Family` values: counters (one number per label set, named ``..._total``) and
summaries (count, sum and a few quantiles per label set). `render` writes them sorted by name and labels, each
family under its ``# HELP`` and ``# TYPE`` lines; label values and help texts are escaped as the format says.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
Labels = tuple[tuple[str, str], ...]
"""Label names and values, sorted by name."""


@dataclass(frozen=True, slots=True)
class CounterSeries:
    """One counter of a family: its labels and its value."""

    labels: Labels
    value: float


@dataclass(frozen=True, slots=True)
class SummarySeries:
    """One summary of a family: observations counted, their sum, and ``(quantile, value)`` pairs."""

    labels: Labels
    count: int
    total: float
    quantiles: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Family:
    """A metric family: its name (``..._total`` for a counter), help text, type and series."""

    name: str
    help: str
    kind: Literal["counter", "summary"]
    series: tuple[CounterSeries | SummarySeries, ...]


def render(families: Sequence[Family]) -> str:
    """`families` as Prometheus text, sorted by name then labels; an empty snapshot is an empty text."""
    lines: list[str] = []
    for family in sorted(families, key=lambda f: f.name):
        lines.append(f"# HELP {family.name} {escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for series in sorted(family.series, key=lambda s: s.labels):
            lines.extend(_series_lines(family.name, series))
    return "".join(f"{line}\n" for line in lines)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-quantile of `ordered` (sorted ascending); NaN when it is empty."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def escape_label_value(value: str) -> str:
    """A label value as it goes between double quotes: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """A help text: backslash and newline escaped (quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers without a fraction, infinities and NaN spelled as Prometheus reads them."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _series_lines(name: str, series: CounterSeries | SummarySeries) -> list[str]:
    if isinstance(series, CounterSeries):
        return [f"{name}{_labels(series.labels)} {format_value(series.value)}"]
    lines = [
        f"{name}{_labels((*series.labels, ('quantile', format_value(q))))} {format_value(v)}"
        for q, v in series.quantiles
    ]
    lines.append(f"{name}_sum{_labels(series.labels)} {format_value(series.total)}")
    lines.append(f"{name}_count{_labels(series.labels)} {series.count}")
    return lines


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels) + "}"
