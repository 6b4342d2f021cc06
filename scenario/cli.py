"""``onceonly demo``: the once-only scenario on a local Synapse, told step by step."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from onceonly.cli import fail
from onceonly.errors import OnceOnlyError
from scenario.narrator import Narrator, Outcome
from scenario.runner import run_demo
from scenario.scene import DEFAULT_DATA_DIR, DemoOptions

ELEMENT_WAIT_SECONDS = 600.0


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DATA_DIR,
    show_default=True,
    help="Demo data directory (an earlier demo run there is replaced).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Synapse's port on 127.0.0.1 (default: 8008 if free, else any free port).",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave Synapse running at the end and print how to log in with Element.",
)
@click.option(
    "--wait-for-element",
    is_flag=True,
    help="After the setup, print the citizen's login and wait (up to 10 min) until she"
    " logs in with Element, so Element can decrypt everything that follows.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a machine-readable transcript to this file.",
)
@click.option(
    "--step-timeout",
    type=click.FloatRange(1, 3600),
    default=180.0,
    show_default=True,
    help="Seconds one step may take.",
)
@click.pass_context
def demo(
    ctx: click.Context,
    data_dir: Path,
    port: int | None,
    keep_running: bool,
    wait_for_element: bool,
    json_path: Path | None,
    step_timeout: float,
) -> None:
    """Run the once-only scenario: three agencies and a citizen on a local Synapse.

    Exits 0 when every step that is available succeeded, 1 otherwise.
    """
    options = DemoOptions(
        data_dir=data_dir,
        port=port,
        keep_running=keep_running,
        step_timeout=step_timeout,
        wait_for_element=ELEMENT_WAIT_SECONDS if wait_for_element else 0.0,
    )
    narrator = Narrator()
    try:
        transcript = asyncio.run(run_demo(options, narrator))
    except KeyboardInterrupt:
        # run_demo's cleanup has run by now: services and Synapse are stopped.
        click.echo("interrupted; the demo's services and homeserver are stopped", err=True)
        ctx.exit(130)
        return
    except OnceOnlyError as exc:
        if json_path is not None:
            narrator.write_transcript(json_path, {"error": exc.to_dict()})
        fail(ctx, exc)
        return
    if json_path is not None:
        json_path.write_text(
            json.dumps(transcript, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        narrator.progress(f"transcript written to {json_path}")
    if Outcome.FAILED in narrator.outcomes():
        ctx.exit(1)
