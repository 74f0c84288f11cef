"""Collecting the problems of a DAG, and the "did you mean" hints that go with them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from gateway.errors import DagProblem, DagValidationError

MAX_SUGGESTED_LEN = 200


class Problems:
    """The problems found so far, in order. Past `LIMIT` they are only counted, so that garbage input costs
    little and the answer stays readable."""

    LIMIT = 100

    def __init__(self) -> None:
        self._found: list[DagProblem] = []
        self._more = 0

    def __bool__(self) -> bool:
        return bool(self._found)

    @property
    def full(self) -> bool:
        """Whether further problems are only counted (so a costly hint is not worth computing)."""
        return len(self._found) >= self.LIMIT

    def add(self, task: str | None, field: str, message: str) -> None:
        self.add_all([DagProblem(task, field, message)])

    def add_all(self, problems: Iterable[DagProblem]) -> None:
        for problem in problems:
            if self.full:
                self._more += 1
            else:
                self._found.append(problem)

    def error(self) -> DagValidationError:
        """The error to raise: every problem kept, then how many more there were."""
        more = (
            [DagProblem(None, "tasks", f"... and at least {self._more} more problems")] if self._more else []
        )
        return DagValidationError([*self._found, *more])


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x' or 'y'?)`` for the candidates close to `word`, or an empty string."""
    close = [] if len(word) > MAX_SUGGESTED_LEN else difflib.get_close_matches(word, list(candidates), n=3)
    return suggestion(close)


def suggestion(close: Sequence[str]) -> str:
    """`` (did you mean 'x' or 'y'?)``, or an empty string when nothing is close."""
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
