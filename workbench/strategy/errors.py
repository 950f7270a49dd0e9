"""Errors raised while loading or evaluating a strategy spec."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where (a JSON path like ``indicators.rsi.period``) and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: {self.reason}"


class SpecError(WorkbenchError, ValueError):
    """A strategy spec is invalid; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid strategy spec{f' {source}' if source else ''}"
        lines = [f"{head} ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in self.problems]
        super().__init__("\n".join(lines))
