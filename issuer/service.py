"""The issuing agency on Matrix: answers requests, sends offers, publishes status lists.

Built on the shared runtime (:class:`~onceonly.service.ProtocolService`), which
keeps the exchange state machines and answers every refused event with an
``error`` event. This module adds the agency's reactions:

- ``credential.request`` -> :func:`~issuer.issuance.handle_credential_request`,
  then ``credential.issue`` into the mailbox; a typed error refuses it, nothing is
  issued and the service keeps running;
- ``device.list`` -> verified with the citizen's PID key (or kept until that key is
  known), and from then on room keys go only to the listed devices
  (:class:`~issuer.citizen_devices.SignedDeviceListPolicy`). A credential other
  than the PID is refused until a verified list exists (spec section 12);
- pending register life events -> ``credential.offer`` (:meth:`send_pending_offers`);
- status lists -> files and the public status room, on start and after revocation;
  a publication the homeserver refused stays pending (:mod:`issuer.status_pending`)
  and the maintenance round retries it;
- maintenance, every ``maintenance_interval`` seconds: pending status lists are
  published; nonces expired, and device lists left unverified, for longer than
  ``nonce_retention_seconds`` are purged.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from issuer.citizen_devices import CitizenDevices, SignedDeviceListPolicy
from issuer.config import AgencyConfig, load_signing_key
from issuer.identity_binding import BoundIdentity
from issuer.issuance import IssuerContext, handle_credential_request
from issuer.issuance_log import IssuanceLog, IssuanceRecord
from issuer.nonce_ledger import NonceLedger
from issuer.offers import PendingOffer, make_offer, offers_for_life_events
from issuer.register import PID_VCT, Register
from issuer.status_pending import StatusPublication
from issuer.status_publisher import (
    publish_status_lists,
    revoke_credentials,
    sign_status_lists,
    write_status_files,
)
from issuer.status_registry import StatusRegistry
from onceonly.errors import OnceOnlyError, TransportError, UntrustedIssuer, UntrustedParty
from onceonly.matrix.accounts import Credentials, load_credentials
from onceonly.protocol import CredentialRequest, DeviceList, ExchangeStatus, LocalizedText
from onceonly.service import PartyService, ProtocolService, Received
from onceonly.status_fetch import check_status_via_matrix
from onceonly.status_list import StatusReference
from onceonly.trust import TrustList
from onceonly.types import RoomId, UserId, Vct

logger = logging.getLogger(__name__)

STATUS_DIR: Final = "status"
"""Directory (next to the agency configuration) of the published status list files."""


def _anyone_may_invite(inviter: str, room_id: str) -> bool:
    # Any citizen may open a mailbox with an agency; what they may get is decided
    # per request (identity binding, device list), not by who may write to us.
    return True


@dataclass
class Stores:
    """The agency's open stores (one connection each)."""

    register: Register
    registry: StatusRegistry
    log: IssuanceLog
    ledger: NonceLedger
    devices: CitizenDevices
    publication: StatusPublication

    @classmethod
    def open(cls, config: AgencyConfig, *, random_bytes: Callable[[int], bytes]) -> Stores:
        """Open every store the configuration names (SQLite files or PostgreSQL)."""
        return cls(
            register=Register.open(config.register_database),
            registry=StatusRegistry.open(
                config.issuer_database,
                base_uri=config.status_base_uri,
                bits=config.status_bits,
                list_size=config.status_list_size,
                random_bytes=random_bytes,
            ),
            log=IssuanceLog.open(config.issuer_database),
            ledger=NonceLedger.open(config.issuer_database),
            devices=CitizenDevices.open(config.issuer_database),
            publication=StatusPublication.open(config.issuer_database),
        )

    def close(self) -> None:
        """Close every store."""
        stores = (self.register, self.registry, self.log, self.ledger, self.devices)
        for store in (*stores, self.publication):
            store.close()


class IssuerService(PartyService):
    """One agency's issuer process. Nothing happens before :meth:`start`.

    Args:
        config: The agency configuration.
        trust_list: The verified trust list.
        login: The Matrix login (default: ``account.json`` in the configured data dir).
        clock: Epoch seconds (injected for tests).
        random_bytes: Randomness for salts, nonces and ids.
        publish_status: Publish status lists on start (files and status room).
        maintenance_interval: Seconds between maintenance rounds (:meth:`maintain`).
    """

    label = "issuer service"

    def __init__(
        self,
        config: AgencyConfig,
        trust_list: TrustList,
        *,
        login: Credentials | None = None,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        publish_status: bool = True,
        maintenance_interval: float = 60.0,
    ) -> None:
        super().__init__(clock=clock)
        self.config = config
        self.trust_list = trust_list
        self._login = login
        self._random_bytes = random_bytes
        self._publish_on_start = publish_status
        self._maintenance_interval = maintenance_interval
        self._stores: Stores | None = None
        self._ctx: IssuerContext | None = None
        self._credentials: Credentials | None = None
        self._published: set[str] = set()
        self.issued: list[IssuanceRecord] = []
        """Credentials issued by this process since start (for callers and tests)."""
        self.issued_in: dict[str, IssuanceRecord] = {}
        """The same, by the exchange that delivered them."""

    # --- lifecycle (start/stop: PartyService) ------------------------------------------

    def _lock_dir(self) -> Path:
        return self.config.matrix_data_dir

    async def _open(self) -> ProtocolService:
        """Open the stores and build the Matrix runtime.

        Raises:
            ConfigError, StoreError, AccountError: cannot start.
        """
        stores = self._stores = Stores.open(self.config, random_bytes=self._random_bytes)
        self._credentials = self._login or load_credentials(self.config.matrix_data_dir)
        self._ctx = IssuerContext(
            config=self.config,
            register=stores.register,
            status_registry=stores.registry,
            issuance_log=stores.log,
            ledger=stores.ledger,
            signing_key=load_signing_key(self.config),
            trust_list=self.trust_list,
            pid_status_check=self._check_pid_status,
            random_bytes=self._random_bytes,
        )
        return ProtocolService(
            data_dir=self.config.matrix_data_dir,
            handlers={
                CredentialRequest: self._on_request,
                DeviceList: self._on_device_list,
                ExchangeStatus: self._on_status,
            },
            agency=True,
            device_policy=SignedDeviceListPolicy(stores.devices, self.config.matrix_user_id),
            invite_policy=_anyone_may_invite,
            login=self._login,
            clock=self._clock,
        )

    async def _started(self) -> None:
        """Publish the status lists (TransportError stops the service again); maintain."""
        if self._publish_on_start:
            await self.publish_status()
        self._every(self._maintenance_interval, self.maintain, what="issuer maintenance")

    async def maintain(self) -> None:
        """One maintenance round: purge expired nonces and device lists that never got
        verified (older than ``nonce_retention_seconds``), publish pending status lists.

        An unreachable homeserver leaves the publication pending for the next round.
        """
        retention = self.config.nonce_retention_seconds
        purged = self.stores.ledger.purge(now=self.now(), retention=retention)
        forgotten = self.stores.devices.purge_unverified(before=self.now() - retention)
        if purged or forgotten:
            logger.info(
                "purged %d expired nonce(s), %d unverified device list(s)", purged, forgotten
            )
        if self.stores.publication.pending:
            try:
                await self.publish_status()
            except TransportError as exc:
                logger.warning("status lists still pending publication: %s", exc)

    def _close(self) -> None:
        if self._stores is not None:
            self._stores.close()
            self._stores = None

    @property
    def stores(self) -> Stores:
        """The open stores."""
        if self._stores is None:
            raise RuntimeError("the issuer service is not started")
        return self._stores

    # --- handlers ------------------------------------------------------------------------

    async def _on_request(self, item: Received) -> None:
        assert isinstance(item.content, CredentialRequest)
        assert self._ctx is not None
        issued = await handle_credential_request(
            self._ctx,
            item.content,
            sender=item.sender,
            now=item.now,
            event_id=item.event_id,
            before_signing=lambda identity: self._require_devices(item, identity),
        )
        if issued.record.status_list_uri not in self._published:
            # A new list (the first issuance, or a roll-over) must be readable by
            # verifiers before anyone presents a credential that points at it.
            await self.publish_status()
        # Noted before sending: a waiter on the exchange wakes as soon as it is queued.
        self.issued.append(issued.record)
        self.issued_in[item.content.exchange_id] = issued.record
        await self.runtime.send(item.room_id, issued.content)
        logger.info(
            "issued %s to %s (status %s#%d)",
            issued.record.vct,
            item.sender,
            issued.record.status_list_uri,
            issued.record.status_index,
        )

    def _require_devices(self, item: Received, identity: BoundIdentity) -> None:
        devices = self.stores.devices
        devices.learn_pid_key(item.sender, identity.pid_holder_key, now=item.now)
        if devices.devices_of(item.sender):
            return
        assert isinstance(item.content, CredentialRequest)
        if item.content.vct == PID_VCT:
            raise UntrustedParty("no wallet device was pinned for this account at the eID check")
        raise UntrustedParty("send a device.list signed with your PID key before requesting")

    async def _on_device_list(self, item: Received) -> None:
        assert isinstance(item.content, DeviceList)
        verified = self.stores.devices.accept_device_list(
            item.sender, item.content.device_list, now=item.now
        )
        logger.info("device list of %s %s", item.sender, "verified" if verified else "pending")

    async def _on_status(self, item: Received) -> None:
        assert isinstance(item.content, ExchangeStatus)
        logger.info(
            "exchange %s: %s reports %s",
            item.content.exchange_id,
            item.sender,
            item.content.outcome.value,
        )

    async def _check_pid_status(self, reference: StatusReference, issuer_id: str) -> None:
        agency = self.trust_list.agency(issuer_id)
        if agency is None or self._credentials is None:
            raise UntrustedIssuer("the PID issuer is not on the trust list")
        await check_status_via_matrix(self._credentials, reference, agency=agency, now=self.now())

    # --- offers ----------------------------------------------------------------------------

    async def send_offer(self, offer: PendingOffer) -> RoomId:
        """Send one offer into the citizen's mailbox (created on first contact)."""
        room_id = await self.runtime.room_for(offer.matrix_user_id)
        await self.runtime.send(room_id, offer.content)
        return room_id

    async def send_pending_offers(self) -> list[PendingOffer]:
        """Offer credentials for every pending life event; mark the events handled.

        An event is marked handled only after all its offers went out; one whose
        offers fail stays pending and is offered again next time.
        """
        stores = self.stores
        offers, _waiting = offers_for_life_events(
            self.config,
            stores.register,
            stores.ledger,
            now=self.now(),
            random_bytes=self._random_bytes,
        )
        sent: list[PendingOffer] = []
        failed: set[int | None] = set()
        for offer in offers:
            try:
                await self.send_offer(offer)
                sent.append(offer)
            except OnceOnlyError as exc:
                logger.warning("offer to %s failed: %s", offer.matrix_user_id, exc)
                failed.add(offer.life_event_id)
        for event_id in {o.life_event_id for o in sent} - failed:
            if event_id is not None:
                stores.register.mark_life_event_handled(event_id, self.now())
        return sent

    async def offer(
        self,
        matrix_user_id: UserId,
        vct: Vct,
        *,
        reason_code: str = "available",
        reason: LocalizedText | None = None,
    ) -> PendingOffer:
        """Offer ``vct`` to a Matrix account bound to a register person.

        Raises:
            IdentityNotBound: the account is not bound to anybody in the register.
            UnsupportedCredentialType: the agency does not issue ``vct``.
        """
        person_id = self.stores.register.person_for_matrix_user(matrix_user_id)
        offer = make_offer(
            self.config,
            self.stores.ledger,
            person_id=person_id,
            matrix_user_id=matrix_user_id,
            vct=vct,
            reason_code=reason_code,
            reason=reason or LocalizedText(de="Nachweis verfügbar", en="credential available"),
            now=self.now(),
            random_bytes=self._random_bytes,
        )
        await self.send_offer(offer)
        return offer

    # --- status -----------------------------------------------------------------------------

    @property
    def status_dir(self) -> Path:
        """Where status list files are written (next to the configuration)."""
        return self.config.path.parent / STATUS_DIR

    async def publish_status(self) -> None:
        """Sign every status list; write the files; set the state in the status room.

        Raises:
            TransportError: the homeserver is unreachable; a pending publication stays
                pending (:mod:`issuer.status_pending`).
        """
        assert self._ctx is not None and self._credentials is not None
        publication = self.stores.publication
        snapshot = publication.snapshot()  # before signing: later changes stay pending
        lists = sign_status_lists(self.stores.registry, self._ctx.signing_key, now=self.now())
        write_status_files(lists, self.status_dir)
        if lists:
            await publish_status_lists(self._credentials, self.config, lists)
        publication.published(snapshot)
        self._published.update(signed.uri for signed in lists)

    async def revoke(
        self,
        *,
        credential_id: str | None = None,
        person_id: str | None = None,
        vct: str | None = None,
    ) -> list[IssuanceRecord]:
        """Revoke (see :func:`~issuer.status_publisher.revoke_credentials`) and republish.

        The revocation is recorded even when the homeserver is unreachable; the
        publication then stays pending and :meth:`maintain` retries it.
        """
        self.stores.publication.request(now=self.now())
        revoked = revoke_credentials(
            self.stores.registry,
            self.stores.log,
            now=self.now(),
            credential_id=credential_id,
            person_id=person_id,
            vct=vct,
        )
        try:
            await self.publish_status()
        except TransportError as exc:
            logger.warning("revocation recorded; publishing pending: %s", exc)
        return revoked
