"""Running the whole scenario: setup, the six steps, the summary, and cleaning up.

:func:`run_demo` is what ``onceonly demo`` and the end-to-end test both call, so
the test checks exactly what a newcomer sees. A step whose party service is not
in the tree yet is reported as "not yet available" (never simulated); a step that
fails is reported with its error code and the run continues with the next step.
Whatever happens - success, a failed step, Ctrl-C - the party services are stopped,
and so is Synapse unless ``keep_running`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final

from onceonly.errors import OnceOnlyError
from onceonly.matrix.homeserver import Homeserver
from scenario import cast
from scenario.element import login_lines, wait_for_element
from scenario.narrator import Narrator, Outcome
from scenario.scene import DemoOptions, Scene, Step, StepRun
from scenario.world import World, build_world, prepare_data_dir

LOG_FILE: Final = "demo.log"
ISSUER: Final = "issuer.service"
WALLET: Final = "wallet.service"
VERIFIER: Final = "verifier.service"

STEPS: Final = (
    Step(
        1,
        "PID issuance after a (simulated) eID check",
        (ISSUER, WALLET),
        "scenario.issuing:pid_issuance",
    ),
    Step(
        2,
        "Proactive residence offer after a move",
        (ISSUER, WALLET),
        "scenario.issuing:residence_offer",
    ),
    Step(
        3,
        "Child benefit: residence and date of birth, minimal disclosure",
        (WALLET, VERIFIER),
        "scenario.presenting:child_benefit",
    ),
    Step(4, "Status notes, a poll, and a document upload", (), "scenario.talk:talk"),
    Step(
        5,
        "Revocation: the old attestation is rejected, a fresh one issued",
        (ISSUER, WALLET, VERIFIER),
        "scenario.presenting:revocation",
    ),
    Step(
        6,
        "The auditor verifies the office's audit log offline",
        (VERIFIER,),
        "scenario.auditing:audit",
    ),
)


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[None]:
    """Send the libraries' log records to ``path`` instead of the terminal, for the block.

    The parties log every refused event and nio logs every event it cannot
    decrypt (by design: agencies share room keys only with the devices they
    trust); on the terminal that would drown the story.
    """
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def load_step(target: str) -> StepRun:
    """Import a step function named ``module:function`` (only once its services exist)."""
    module_name, attr = target.split(":", 1)
    run: StepRun = getattr(importlib.import_module(module_name), attr)
    return run


def missing_modules(needs: tuple[str, ...]) -> list[str]:
    """The modules of ``needs`` that are not in the tree."""
    missing = []
    for name in needs:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


async def run_steps(scene: Scene, steps: tuple[Step, ...]) -> None:
    """Run each step; report unavailable ones and failures, and go on."""
    narrator = scene.narrator
    for step in steps:
        narrator.begin(step.number, step.title)
        missing = missing_modules(step.needs)
        if missing:
            narrator.end(
                Outcome.NOT_AVAILABLE,
                f"needs {', '.join(missing)}, which is not in this tree yet",
                missing=missing,
            )
            continue
        try:
            await asyncio.wait_for(load_step(step.run)(scene), scene.options.step_timeout)
        except TimeoutError:
            narrator.end(
                Outcome.FAILED,
                f"did not finish within {scene.options.step_timeout:.0f} s",
                error="timeout",
            )
        except OnceOnlyError as exc:
            narrator.end(Outcome.FAILED, f"{exc.code}: {exc.message}", error=exc.code)


async def _setup(options: DemoOptions, narrator: Narrator) -> World:
    world = await build_world(
        options.data_dir,
        port=options.port,
        progress=narrator.progress,
        now=int(time.time()),
        start_timeout=options.start_timeout,
    )
    for agency in cast.AGENCIES:
        narrator.note(f"{agency.name_de} / {agency.name_en}  [{agency.agency_id}]")
    narrator.end(
        Outcome.DONE,
        f"Synapse at {world.homeserver.base_url}, {len(cast.AGENCIES)} agencies,"
        f" trust list {world.trust_list.seq} in {world.trust_room}",
        homeserver=world.homeserver.base_url,
        citizen=world.citizen.user_id,
        agencies={role.key: role.agency_id for role in cast.AGENCIES},
        trust_room=world.trust_room,
    )
    return world


def _leave_or_stop(options: DemoOptions, world: World | None, narrator: Narrator) -> None:
    homeserver = (
        world.homeserver
        if world
        else Homeserver.from_data_dir(options.data_dir.resolve() / "homeserver")
    )
    if options.keep_running and world is not None:
        narrator.console.print(keep_running_note(world))
        return
    if homeserver.stop():
        narrator.progress("Synapse stopped; nothing of the demo is left running")


def keep_running_note(world: World) -> str:
    """How to log in with Element, and how to stop the homeserver afterwards."""
    return "\n".join(
        [
            "",
            "The demo's homeserver keeps running.",
            *login_lines(world),
            "A device that logs in now cannot read the (end-to-end encrypted) history;"
            " run with --wait-for-element to log in before the story starts.",
            "Stop it with:",
            f"  onceonly homeserver stop --data-dir {world.homeserver.data_dir}",
        ]
    )


async def run_demo(
    options: DemoOptions, narrator: Narrator, steps: tuple[Step, ...] | None = None
) -> dict[str, Any]:
    """Set up the world, run the steps, print the summary; return the transcript.

    Raises:
        OnceOnlyError: the setup failed (steps report their own failures instead).
    """
    world: World | None = None
    try:
        async with AsyncExitStack() as services:
            narrator.begin(0, "Setup: homeserver, accounts, agencies, trust list")
            prepare_data_dir(options.data_dir, narrator.progress)
            services.enter_context(logs_to(options.data_dir / LOG_FILE))
            world = await _setup(options, narrator)
            if options.wait_for_element:
                await wait_for_element(world, narrator, options.wait_for_element)
            scene = Scene(world=world, narrator=narrator, options=options, stack=services)
            await run_steps(scene, STEPS if steps is None else steps)
    except OnceOnlyError as exc:
        with contextlib.suppress(RuntimeError):
            narrator.end(Outcome.FAILED, f"{exc.code}: {exc.message}", error=exc.code)
        raise
    finally:
        _leave_or_stop(options, world, narrator)
    narrator.summary()
    extra: dict[str, Any] = {"homeserver": world.homeserver.base_url}
    if options.keep_running:
        extra["citizen_login"] = {
            "user_id": world.citizen.user_id,
            "password": world.citizen_password,
        }
    return narrator.transcript(extra)
