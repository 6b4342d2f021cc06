"""Starting the parties' real services for the demo, each from its own data directory.

Every party obtains the trust list the way it would in production: it reads the
signed list from the public trust room through its own Matrix account and
verifies it against the authority key it was configured with (the
:class:`~onceonly.trust_cache.TrustCache` in its data directory). Nothing is
handed over in memory that a real party could not have fetched itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from issuer.register import RESIDENCE_VCT
from issuer.service import IssuerService
from onceonly.errors import TrustError
from onceonly.matrix.accounts import Credentials
from onceonly.matrix.state_rooms import read_trust_list, state_client
from onceonly.trust import TrustList
from onceonly.trust_cache import TrustCache, write_atomically
from scenario import cast
from scenario.scene import Scene
from scenario.world import World
from verifier.service import VerifierService
from verifier.verification import VerifierOptions
from wallet.policy import load_policy
from wallet.service import Notice, WalletService
from wallet.store import WalletStore

WALLET_FILE: Final = "wallet.sqlite3"
WALLET_KEY_FILE: Final = "wallet.key"
POLICY_FILE: Final = "consent-policy.toml"


def consent_policy_text() -> str:
    """Erika's wallet policy: what it may do without asking her (everything else: no)."""
    claims = ", ".join(f'"{".".join(path)}"' for path in cast.CHILD_BENEFIT_CLAIMS)
    return f"""# Erika's unattended consent (demo). No rule, no disclosure.

# Share where I live and when I was born with the family benefits office,
# for my child benefit application - nothing else, and with nobody else.
[[presentations]]
verifier = "{cast.FAMILY_BENEFITS.agency_id}"
purposes = ["{cast.CHILD_BENEFIT_PURPOSE}"]
vcts = ["{RESIDENCE_VCT}"]
claims = [{claims}]

# Take the registration certificate the citizens' office offers after a move.
[[offers]]
issuer = "{cast.REGISTRY_OFFICE.agency_id}"
vcts = ["{RESIDENCE_VCT}"]
"""


async def fetch_trust_list(credentials: Credentials, world: World, data_dir: Path) -> TrustCache:
    """Read the published list through ``credentials`` and cache it in ``data_dir``.

    Raises:
        TrustError: nothing is published in the trust room.
        OnceOnlyError: the published list does not verify against the authority key.
    """
    async with state_client(credentials) as client:
        token = await read_trust_list(client, world.trust_room, cast.TRUST_AUTHORITY_ID)
    if token is None:
        raise TrustError(f"no trust list is published in {world.trust_room}")
    cache = TrustCache.in_data_dir(data_dir, world.anchors)
    cache.offer(token, now=world.now)
    return cache


def _current(cache: TrustCache, now: int) -> TrustList:
    verified = cache.current(now=now)
    if verified is None:
        raise TrustError("the wallet holds no trust list")
    return verified.trust_list


def open_wallet_store(directory: Path) -> WalletStore:
    """Open Erika's wallet file, creating it (and its random key) on first use.

    The key lives in a 0600 file next to the wallet, standing in for the
    operating system's keyring a real wallet app would use.
    """
    key_path = directory / WALLET_KEY_FILE
    if not key_path.exists():
        write_atomically(key_path, os.urandom(32).hex(), mode=0o600)
        return WalletStore.create(directory / WALLET_FILE, raw_key=_read_key(key_path))
    return WalletStore.open(directory / WALLET_FILE, raw_key=_read_key(key_path))


def _read_key(path: Path) -> bytes:
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


@dataclass(frozen=True)
class Services:
    """The running services of the demo's parties."""

    identity_agency: IssuerService
    registry_office: IssuerService
    wallet: WalletService
    family_benefits: VerifierService


async def start_services(
    world: World, stack: AsyncExitStack, notify: Callable[[Notice], None] | None = None
) -> Services:
    """Start every party's service; ``stack`` stops them (and closes the wallet) on exit."""
    caches: dict[str, TrustCache] = {}
    for party in (world.identity_agency, world.registry_office, world.family_benefits):
        caches[party.user_id] = await fetch_trust_list(party.credentials, world, party.data_dir)
    citizen = world.citizen
    wallet_cache = await fetch_trust_list(citizen.credentials, world, citizen.data_dir)
    policy_path = citizen.data_dir / POLICY_FILE
    policy_path.write_text(consent_policy_text(), encoding="utf-8")
    store = open_wallet_store(citizen.data_dir)
    stack.callback(store.close)

    def issuer(party_key: str, user_id: str) -> IssuerService:
        verified = caches[user_id].current(now=world.now)
        assert verified is not None  # just offered above
        return IssuerService(world.agency_configs[party_key], verified.trust_list)

    identity = issuer(cast.IDENTITY_AGENCY.key, world.identity_agency.user_id)
    registry = issuer(cast.REGISTRY_OFFICE.key, world.registry_office.user_id)
    wallet = WalletService(
        data_dir=citizen.data_dir,
        store=store,
        trust=lambda now: _current(wallet_cache, now),
        policy=load_policy(policy_path),
        poll_interval=1.0,
        notify=notify,
    )
    # The office reads status lists fresh (trusts one for a second at most), so a
    # revocation shows at its next check instead of after the issuer's ttl.
    verifier = VerifierService(
        world.family_benefits.data_dir,
        sweep_interval=5.0,
        options=VerifierOptions(status_max_age_seconds=1),
    )
    for service in (identity, registry, wallet, verifier):
        await stack.enter_async_context(service)
    return Services(identity, registry, wallet, verifier)


async def services_of(scene: Scene) -> Services:
    """The scene's running services, started on first use."""
    if scene.services is None:
        scene.narrator.progress("starting the parties' services (issuers, wallet, verifier)...")
        scene.services = await start_services(scene.world, scene.stack, scene.keep_notice)
        scene.narrator.progress("every party fetched and verified the trust list from Matrix")
    services: Services = scene.services
    return services
