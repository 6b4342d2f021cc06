"""Telling the story: readable progress on the terminal and a machine-readable transcript.

The :class:`Narrator` is the only thing the scenario prints through. Every line it
shows is also kept as a transcript entry, so ``--json FILE`` writes exactly what
the reader saw, plus the outcome of every step for the summary table.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


class Outcome(StrEnum):
    """How a step of the scenario ended."""

    DONE = "done"
    """It ran and everything it asserts held."""
    NOT_AVAILABLE = "not yet available"
    """A party's service it needs does not exist yet; nothing was faked."""
    FAILED = "failed"
    """It ran and something did not hold (the detail says what)."""


@dataclass
class StepRecord:
    """One step as the summary table and the transcript show it.

    Attributes:
        number: Step number (0 for the setup).
        title: Short title.
        outcome: How it ended.
        detail: One line on the result.
        seconds: Wall time it took.
        facts: Named results the tests assert on (ids, claim lists, error codes).
    """

    number: int
    title: str
    outcome: Outcome = Outcome.FAILED
    detail: str = ""
    seconds: float = 0.0
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The transcript form."""
        return {
            "number": self.number,
            "title": self.title,
            "outcome": self.outcome.value,
            "detail": self.detail,
            "seconds": round(self.seconds, 3),
            "facts": self.facts,
        }


class Narrator:
    """Prints the scenario for people and records it for machines.

    Args:
        console: Where to print (a quiet console for tests).
        clock: Monotonic clock for step durations (injected for tests).
    """

    def __init__(self, console: Console | None = None, clock: Any = time.monotonic) -> None:
        self.console = console or Console(highlight=False)
        self._clock = clock
        self.steps: list[StepRecord] = []
        self.lines: list[dict[str, Any]] = []
        self._current: StepRecord | None = None
        self._started = 0.0

    # --- steps ------------------------------------------------------------------------

    def begin(self, number: int, title: str) -> StepRecord:
        """Start a step: print its heading and open its record."""
        record = StepRecord(number=number, title=title)
        self.steps.append(record)
        self._current = record
        self._started = self._clock()
        heading = f"Step {number}: {title}" if number else title
        self.console.rule(f"[bold]{escape(heading)}[/bold]", align="left")
        self._keep("step", heading)
        return record

    def end(self, outcome: Outcome, detail: str, **facts: Any) -> StepRecord:
        """Close the current step with its outcome, a one-line detail and named facts."""
        record = self._require_step()
        record.outcome = outcome
        record.detail = detail
        record.seconds = self._clock() - self._started
        record.facts.update(facts)
        style = {Outcome.DONE: "green", Outcome.NOT_AVAILABLE: "yellow"}.get(outcome, "red")
        self.console.print(f"  [{style}]{outcome.value}[/{style}]: {escape(detail)}")
        self._keep("outcome", f"{outcome.value}: {detail}")
        self._current = None
        return record

    def fact(self, **facts: Any) -> None:
        """Record named facts on the current step without printing them."""
        self._require_step().facts.update(facts)

    # --- lines ------------------------------------------------------------------------

    def progress(self, text: str) -> None:
        """A dim progress line (services starting, waiting for a sync...)."""
        self.console.print(f"  [dim]{escape(text)}[/dim]")
        self._keep("progress", text)

    def say(self, who: str, text: str) -> None:
        """``who`` did or said ``text``."""
        self.console.print(f"  [bold cyan]{escape(who)}[/bold cyan] {escape(text)}")
        self._keep("say", text, who=who)

    def note(self, text: str) -> None:
        """An explanatory remark of the narrator."""
        self.console.print(f"    {escape(text)}")
        self._keep("note", text)

    def body(self, who: str, body: str) -> None:
        """The human-readable ``body`` of an event, as a plain Matrix client shows it."""
        self.console.print(f"  [bold cyan]{escape(who)}[/bold cyan] [dim]sends:[/dim]")
        for line in body.splitlines():
            self.console.print(f"    [italic]{escape(line)}[/italic]")
        self._keep("body", body, who=who)

    def claims(self, disclosed: Iterable[str], withheld: Iterable[str]) -> None:
        """Which claims a presentation disclosed and which it kept back."""
        shown, kept = sorted(disclosed), sorted(withheld)
        self.console.print(f"    [green]disclosed:[/green] {escape(', '.join(shown) or '-')}")
        self.console.print(f"    [yellow]not disclosed:[/yellow] {escape(', '.join(kept) or '-')}")
        self._keep("claims", "", disclosed=shown, withheld=kept)

    # --- the end --------------------------------------------------------------------

    def summary(self) -> None:
        """Print the summary table of every step."""
        table = Table(title="once-only scenario: summary", show_lines=False)
        table.add_column("#", justify="right")
        table.add_column("step")
        table.add_column("outcome")
        table.add_column("s", justify="right")
        table.add_column("result")
        for step in self.steps:
            style = {Outcome.DONE: "green", Outcome.NOT_AVAILABLE: "yellow"}.get(
                step.outcome, "red"
            )
            table.add_row(
                str(step.number),
                escape(step.title),
                f"[{style}]{step.outcome.value}[/{style}]",
                f"{step.seconds:.1f}",
                escape(step.detail),
            )
        self.console.print(table)

    def transcript(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The machine-readable transcript: steps, every printed line, and ``extra``."""
        return {
            "format": "onceonly-demo-transcript/1",
            "steps": [step.to_json() for step in self.steps],
            "lines": self.lines,
            **(extra or {}),
        }

    def write_transcript(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """Write :meth:`transcript` as pretty JSON to ``path``."""
        text = json.dumps(self.transcript(extra), indent=2, ensure_ascii=False, sort_keys=True)
        path.write_text(text + "\n", encoding="utf-8")

    def outcomes(self) -> Sequence[Outcome]:
        """Every step's outcome, in order."""
        return [step.outcome for step in self.steps]

    # --- internals ------------------------------------------------------------------

    def _require_step(self) -> StepRecord:
        if self._current is None:
            raise RuntimeError("no step is open")
        return self._current

    def _keep(self, kind: str, text: str, **extra: Any) -> None:
        step = self._current.number if self._current is not None else None
        self.lines.append({"kind": kind, "step": step, "text": text, **extra})
