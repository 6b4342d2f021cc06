"""Two party services on one data directory, on a real Synapse: the second is refused.

The defect this guards against: a second issuer started on an agency that already
runs shared its Matrix device, the Megolm state diverged and citizens' requests
were lost. Now the second start fails at once with ``already_running`` before
touching the device, and the running issuer goes on answering requests.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from issuer.service import IssuerService
from onceonly.errors import AlreadyRunning
from onceonly.matrix.homeserver import Homeserver
from tests.integration.test_issuer_service import (
    Wallet,
    identity_agency_and_registry_office,
    obtain_pid,
)
from tests.integration.test_transport_support import register
from tests.unit.issuer.issuer_world import listed, trust_list

pytestmark = pytest.mark.integration


async def test_a_second_issuer_on_a_running_agency_is_refused_and_requests_are_served(
    synapse: Homeserver, tmp_path: Path
) -> None:
    identity, office = identity_agency_and_registry_office(tmp_path, synapse)
    now = int(time.time())
    trust = trust_list(listed(identity, now=now), listed(office, now=now), now=now)
    creds, data_dir = register(synapse, "zweit", tmp_path)
    wallet = Wallet(creds, data_dir)
    wallet.build([identity.config.matrix_user_id])
    running = IssuerService(identity.config, trust)
    async with running, wallet.service:
        second = IssuerService(identity.config, trust)
        with pytest.raises(AlreadyRunning) as caught:
            await second.start()
        assert caught.value.code == "already_running"
        assert caught.value.detail == {"pid": os.getpid()}
        with pytest.raises(RuntimeError, match="not started"):
            second.stores  # noqa: B018 - nothing of the agency was opened
        # The running issuer still owns the device and answers the citizen's request.
        pid = await obtain_pid(wallet, running, "LXH67HC3V")
        assert pid.count("~") > 1
    # Once it stopped, the agency starts again (the lock went with it).
    async with IssuerService(identity.config, trust) as again:
        assert again.stores is not None
