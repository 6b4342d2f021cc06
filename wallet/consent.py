"""Interactive consent in the terminal: who asks, why, and exactly which values would leave.

Everything shown about the verifier comes from the trust list (its registered
name and purpose wording), not from the request, which the verifier writes
itself. The values are exactly the leaves the verifier would see - the claims
asked for and the plain members of every object opened to reach them (asking
for the locality of the place of birth also shows its country, if the issuer
did not make that selectively disclosable) - labelled with the credential
type's claim names in German and English.

A request nothing in the wallet answers is shown too (the citizen learns that
someone asked, and the verifier cannot tell her "no" from "nothing fits", not
even by how long the answer took): she is told the wallet will decline, and
acknowledges.

Every cell is a rich ``Text`` (never markup), so a value such as ``[red]`` is
shown literally. The answer defaults to no; end of input counts as no.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.prompt import Confirm
from rich.table import Table
from rich.text import Text

from onceonly.credential_types import CredentialType, all_types
from onceonly.types import Vct
from wallet.present import DisclosurePlan
from wallet.records import PendingOffer

ClaimPath = tuple[str | int | None, ...]


def _label(kind: CredentialType | None, path: ClaimPath, lang: str) -> str:
    if kind is None:
        return ".".join(str(part) for part in path)
    known = {claim.path for claim in kind.claims}
    if path in known:
        return kind.label(path, lang)
    wildcard = tuple(None if isinstance(part, int) else part for part in path)
    last = path[-1]
    if isinstance(last, int):
        # An array element: its array's label and its number ("Staatsangehörigkeit 2").
        base = kind.label(wildcard, lang) if wildcard in known else _label(kind, path[:-1], lang)
        return f"{base} {last + 1}"
    if wildcard in known:
        return kind.label(wildcard, lang)
    if len(path) > 1:
        # A member the type metadata does not name (a plain one riding along with its
        # object): never just the object's label, or "Place of birth: DE" would mislead.
        return f"{_label(kind, path[:-1], lang)} ({last})"
    return kind.label(path, lang)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "ja / yes" if value else "nein / no"
    if value == {} or value == []:
        return "(leer / empty)"
    return str(value)


def claim_rows(vct: str, shown: Iterable[tuple[ClaimPath, Any]]) -> list[tuple[str, str, str]]:
    """Rows ``(German label, English label, value)`` for every leaf the verifier would see."""
    kind = all_types().get(Vct(vct))
    return [
        (_label(kind, path, "de"), _label(kind, path, "en"), _shown(value)) for path, value in shown
    ]


def render_plan(plan: DisclosurePlan, console: Console) -> None:
    """Print the consent screen for ``plan``."""
    verifier, purpose = plan.verifier, plan.purpose
    console.print(Text(f"{verifier.name.de} / {verifier.name.en}", style="bold"))
    console.print(Text(f"  {verifier.id}  ({verifier.matrix_user_id})", style="dim"))
    console.print(Text(f"Zweck / Purpose: {purpose.text.de} / {purpose.text.en}"))
    deadline = datetime.fromtimestamp(plan.request.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    console.print(Text(f"Anfrage gültig bis / request valid until: {deadline}", style="dim"))
    if plan.unanswerable is not None:
        console.print(
            Text(
                "Ihre Nachweise beantworten diese Anfrage nicht; die Stelle erhält eine "
                "Ablehnung. / Your credentials do not answer this request; the office will "
                "be told no.",
                style="bold",
            )
        )
        console.print(Text(f"  {plan.unanswerable.message}", style="dim"))
        return
    for item in plan.presentations:
        kind = all_types().get(Vct(item.holding.stored.vct))
        title = f"{kind.name_de} / {kind.name_en}" if kind else item.holding.stored.vct
        table = Table(title=Text(title), show_lines=False)
        table.add_column(Text("Angabe"))
        table.add_column(Text("Claim"))
        table.add_column(Text("Wert / Value"))
        rows = claim_rows(item.holding.stored.vct, item.shown)
        for label_de, label_en, value in rows:
            table.add_row(Text(label_de), Text(label_en), Text(value))
        if not rows:
            table.add_row(
                Text("(nur Aussteller und Typ)"), Text("(issuer and type only)"), Text("")
            )
        console.print(table)


def ask(question: str, console: Console, stream: TextIO | None) -> bool:
    """A y/N question; end of input or an interrupt is a no."""
    try:
        return bool(Confirm.ask(Text(question), console=console, default=False, stream=stream))
    except (EOFError, KeyboardInterrupt):
        console.print(Text("nein / no"))
        return False


def acknowledge(prompt: str, console: Console, stream: TextIO | None) -> None:
    """Wait until the citizen presses Enter (end of input or an interrupt counts)."""
    console.print(Text(prompt), end=" ")
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        (stream or sys.stdin).readline()
    console.print()


class TerminalConsent:
    """Ask the citizen at the terminal; usable as the ``consent`` callback.

    Args:
        console: Where to print (default: a new stdout console).
        stream: Where answers are read from (default: standard input); tests pass
            a ``StringIO``.
    """

    def __init__(self, console: Console | None = None, *, stream: TextIO | None = None) -> None:
        self.console = console or Console()
        self.stream = stream

    def __call__(self, plan: DisclosurePlan) -> bool:
        """Show ``plan`` and return whether the citizen agrees to disclose it.

        For a plan nothing answers, she acknowledges the refusal instead (the
        answer is then always no).
        """
        render_plan(plan, self.console)
        if plan.unanswerable is not None:
            acknowledge("Weiter mit Eingabe / Press Enter", self.console, self.stream)
            return False
        return ask("Diese Angaben übermitteln? / Disclose these claims?", self.console, self.stream)

    def accept_offer(self, offer: PendingOffer, *, issuer_name: str) -> bool:
        """Ask whether to request the credential ``offer`` describes."""
        kind = all_types().get(Vct(offer.vct))
        name = f"{kind.name_de} / {kind.name_en}" if kind else offer.vct
        self.console.print(Text(f"{issuer_name}: {name}", style="bold"))
        if offer.reason:
            self.console.print(Text(f"Anlass / reason: {offer.reason}"))
        return ask("Nachweis anfordern? / Request this credential?", self.console, self.stream)
