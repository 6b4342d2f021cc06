"""Following along in Element: wait until the citizen has logged in with a Matrix client.

End-to-end encryption means a device can only read what was sent after it
existed (the demo keeps no key backup). So a reader who wants to watch the
story in Element logs in *before* the steps run: ``onceonly demo
--wait-for-element`` prints the login details after the setup and waits until
a new device with encryption keys appears on the citizen's account.
"""

from __future__ import annotations

import asyncio
from typing import Final

from onceonly.errors import ExchangeTimeout, TransportError
from onceonly.matrix.homeserver_http import request_json
from scenario.narrator import Narrator
from scenario.world import World

POLL_SECONDS: Final = 2.0


def device_ids(world: World) -> set[str]:
    """The citizen's devices that have published encryption keys.

    Only those can be sent room keys; a client that has logged in but not yet
    uploaded its keys would miss the first messages.

    Raises:
        TransportError: the homeserver refused or is unreachable.
    """
    citizen = world.citizen.credentials
    answer = request_json(
        "POST",
        f"{world.homeserver.base_url}/_matrix/client/v3/keys/query",
        body={"device_keys": {citizen.user_id: []}},
        access_token=citizen.access_token,
    )
    keys = answer.body.get("device_keys")
    devices = keys.get(citizen.user_id) if isinstance(keys, dict) else None
    if answer.status != 200 or not isinstance(devices, dict):
        raise TransportError(f"cannot query the citizen's device keys (HTTP {answer.status})")
    return {str(device_id) for device_id in devices}


def login_lines(world: World) -> list[str]:
    """What to type into Element's login screen."""
    return [
        "Log in with Element (Web or Desktop) - 'Sign in', then 'Edit' the homeserver:",
        f"  homeserver:  {world.homeserver.base_url}",
        f"  user:        {world.citizen.user_id}",
        f"  password:    {world.citizen_password}",
    ]


async def wait_for_element(world: World, narrator: Narrator, timeout: float) -> str:
    """Print the login details and wait until a new device logs in; return its id.

    Raises:
        ExchangeTimeout: nobody logged in within ``timeout`` seconds.
    """
    known = await asyncio.to_thread(device_ids, world)
    for line in login_lines(world):
        narrator.note(line)
    narrator.progress(f"waiting up to {timeout:.0f} s for a new login of {world.citizen.user_id}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        new = await asyncio.to_thread(device_ids, world) - known
        if new:
            device = sorted(new)[0]
            narrator.progress(f"device {device} logged in; the story starts")
            return device
        await asyncio.sleep(POLL_SECONDS)
    raise ExchangeTimeout(f"no new device logged in within {timeout:.0f} s")
