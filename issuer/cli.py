"""``onceonly issuer``: set up and run an issuing agency.

- ``init DIR``: configuration, signing key (0600) and register import;
- ``run``: the Matrix service (answers requests, sends offers for life events,
  keeps the status lists published) until interrupted or ``--for`` seconds pass;
- ``offer USER VCT`` / ``offer --pending``: send offers now (stop ``run`` first:
  one Matrix device must not be driven by two processes);
- ``revoke``: revoke by credential id or person (and type), republish the lists
  (safe while ``run`` is running: it only uses the database and public room state);
  with the homeserver unreachable the revocation is recorded and its publication
  stays pending until ``run``, the next ``revoke`` or ``publish`` completes it;
- ``publish``: sign, write and publish every status list now;
- ``status``: what was issued, the lists, pending life events;
- ``eid-check``: the **simulated** eID check of the identity agency.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from issuer.citizen_devices import CitizenDevices
from issuer.config import CONFIG_FILE, AgencyConfig, init_agency, load_config, load_signing_key
from issuer.eid_check import complete_eid_check, start_eid_check
from issuer.issuance_log import IssuanceLog
from issuer.nonce_ledger import NonceLedger
from issuer.register import Register
from issuer.service import STATUS_DIR, IssuerService, Stores
from issuer.status_publisher import (
    publish_status_lists,
    revoke_credentials,
    sign_status_lists,
    write_status_files,
)
from onceonly.cli import emit, json_option
from onceonly.errors import ConfigError, TransportError
from onceonly.matrix.accounts import load_credentials
from onceonly.trust import TrustList
from onceonly.trust_cache import TrustCache, read_token_file
from onceonly.trust_cli.common import load_anchors, reports_errors
from onceonly.types import UserId, Vct

T = TypeVar("T")

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=Path(CONFIG_FILE),
    show_default=True,
    help="The agency configuration file.",
)
trust_options = [
    click.option(
        "--authority-key",
        "anchor_paths",
        multiple=True,
        type=click.Path(path_type=Path),
        help="Trust authority public JWK file (repeatable).",
    ),
    click.option(
        "--trust-list",
        "trust_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A signed trust list file to verify and cache (else the cached one is used).",
    ),
]


def with_trust(func: Any) -> Any:
    """Decorator: add the trust list options."""
    for option in reversed(trust_options):
        func = option(func)
    return func


def load_trust(
    config: AgencyConfig, anchor_paths: tuple[Path, ...], trust_file: Path | None
) -> TrustList:
    """The verified trust list: ``trust_file`` (verified, then cached) or the cached one.

    Raises:
        ConfigError: no anchors, or no trust list at all.
        VerificationError, TrustError, StoreError: the list does not verify.
    """
    cache = TrustCache.in_data_dir(config.matrix_data_dir, load_anchors(anchor_paths))
    now = int(time.time())
    if trust_file is not None:
        return cache.offer(read_token_file(trust_file), now=now).trust_list
    current = cache.current(now=now)
    if current is None:
        raise ConfigError("no trust list yet: give --trust-list or run 'onceonly trust fetch'")
    return current.trust_list


def run_async(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh event loop."""
    return asyncio.run(work())  # type: ignore[arg-type]


@click.group()
def issuer() -> None:
    """Run an issuing agency: register, credentials, offers, revocation."""


@issuer.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "agency_id", required=True, help="Agency id (https URL), the 'iss'.")
@click.option("--name-de", required=True)
@click.option("--name-en", required=True)
@click.option("--matrix-user", required=True, help="The agency's Matrix account.")
@click.option("--vct", "vcts", multiple=True, required=True, help="A credential type issued.")
@click.option("--alg", type=click.Choice(["ES256", "EdDSA"]), default="ES256", show_default=True)
@click.option("--register", "register_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--register-db", default="register.sqlite3", show_default=True)
@click.option("--issuer-db", default="issuer.sqlite3", show_default=True)
@json_option
@click.pass_context
@reports_errors
def init(
    ctx: click.Context,
    directory: Path,
    agency_id: str,
    name_de: str,
    name_en: str,
    matrix_user: str,
    vcts: tuple[str, ...],
    alg: str,
    register_file: Path | None,
    register_db: str,
    issuer_db: str,
) -> None:
    """Create an agency in DIRECTORY (configuration, signing key, optional register import)."""
    config = init_agency(
        directory,
        agency_id=agency_id,
        name_de=name_de,
        name_en=name_en,
        matrix_user_id=matrix_user,
        credentials=list(vcts),
        alg=alg,
        register_database=register_db,
        issuer_database=issuer_db,
    )
    imported = (0, 0)
    if register_file is not None:
        with Register.open(config.register_database) as register:
            imported = register.import_file(register_file)
    public = load_signing_key(config).public().to_jwk()
    data = {
        "config": str(config.path),
        "agency_id": config.agency_id,
        "issues": list(config.issues()),
        "public_jwk": public,
        "register": {"persons": imported[0], "moves": imported[1]},
    }
    emit(ctx, data, f"created {config.path} (key {config.active_kid}, {imported[0]} persons)")


@issuer.command()
@config_option
@with_trust
@click.option("--offer-interval", type=float, default=30.0, show_default=True)
@click.option("--status-interval", type=float, default=3600.0, show_default=True)
@click.option("--for", "run_for", type=float, help="Stop after this many seconds.")
@click.pass_context
@reports_errors
def run(
    ctx: click.Context,
    config_path: Path,
    anchor_paths: tuple[Path, ...],
    trust_file: Path | None,
    offer_interval: float,
    status_interval: float,
    run_for: float | None,
) -> None:
    """Run the agency on Matrix until interrupted (Ctrl-C / SIGTERM)."""
    config = load_config(config_path)
    trust = load_trust(config, anchor_paths, trust_file)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if run_for is not None:
            loop.call_later(run_for, stop.set)
        async with IssuerService(config, trust) as service:
            click.echo(f"{config.agency_id} running as {config.matrix_user_id}", err=True)
            last_status = loop.time()
            while not stop.is_set():
                await service.send_pending_offers()
                if loop.time() - last_status >= status_interval:
                    try:
                        await service.publish_status()
                    except TransportError as exc:  # stays pending; maintenance retries
                        click.echo(f"status lists not published: {exc.message}", err=True)
                    last_status = loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), offer_interval)

    run_async(serve)


@issuer.command()
@config_option
@with_trust
@click.argument("user", required=False)
@click.argument("vct", required=False)
@click.option("--pending", is_flag=True, help="Offer for every pending life event instead.")
@json_option
@click.pass_context
@reports_errors
def offer(
    ctx: click.Context,
    config_path: Path,
    anchor_paths: tuple[Path, ...],
    trust_file: Path | None,
    user: str | None,
    vct: str | None,
    pending: bool,
) -> None:
    """Offer VCT to Matrix USER (bound in the register), or offer for pending life events."""
    if pending == (user is not None and vct is not None):
        raise click.UsageError("give USER and VCT, or --pending")
    config = load_config(config_path)
    trust = load_trust(config, anchor_paths, trust_file)

    async def send() -> list[dict[str, str]]:
        async with IssuerService(config, trust, publish_status=False) as service:
            if pending:
                offers = await service.send_pending_offers()
            else:
                assert user is not None and vct is not None
                offers = [await service.offer(UserId(user), Vct(vct))]
        return [
            {"matrix_user_id": o.matrix_user_id, "vct": o.record.vct,
             "exchange_id": o.record.exchange_id}
            for o in offers
        ]  # fmt: skip

    sent = run_async(send)
    emit(ctx, {"offers": sent}, f"{len(sent)} offer(s) sent")


@issuer.command()
@config_option
@click.option("--credential", "credential_id", help="Credential id from the issuance log.")
@click.option("--person", "person_id", help="Register person id: revoke their credentials.")
@click.option("--vct", help="With --person: only this type.")
@click.option("--no-publish", is_flag=True, help="Only write the status files.")
@json_option
@click.pass_context
@reports_errors
def revoke(
    ctx: click.Context,
    config_path: Path,
    credential_id: str | None,
    person_id: str | None,
    vct: str | None,
    no_publish: bool,
) -> None:
    """Revoke credentials and republish the status lists (files and status room)."""
    config = load_config(config_path)
    now = int(time.time())
    stores = Stores.open(config, random_bytes=secrets.token_bytes)
    try:
        # Pending before the change: a crash or an unreachable homeserver after it
        # leaves the publication to the next run, revoke or publish.
        stores.publication.request(now=now)
        revoked = revoke_credentials(
            stores.registry,
            stores.log,
            now=now,
            credential_id=credential_id,
            person_id=person_id,
            vct=vct,
        )
    finally:
        stores.close()
    published = _publish_lists(config, now=now, to_room=not no_publish)
    data = {
        "revoked": [r.model_dump(mode="json") for r in revoked],
        "published": published,
        "pending": not published,
    }
    outcome = "published" if published else "recorded; publishing pending"
    if not published and not no_publish:
        outcome += " (homeserver unreachable; run, revoke or publish will publish it)"
    emit(ctx, data, f"revoked {len(revoked)} credential(s); {outcome}")


@issuer.command()
@config_option
@json_option
@click.pass_context
@reports_errors
def publish(ctx: click.Context, config_path: Path) -> None:
    """Sign, write and publish every status list now (completes a pending publication)."""
    config = load_config(config_path)
    published = _publish_lists(config, now=int(time.time()), to_room=True)
    data = {"published": published, "pending": not published}
    if not published:
        emit(ctx, data, "homeserver unreachable; publishing still pending")
        ctx.exit(1)
    emit(ctx, data, "status lists published")


def _publish_lists(config: AgencyConfig, *, now: int, to_room: bool) -> bool:
    """Sign and write every list and (``to_room``) set it in the status room.

    Returns whether the room now holds the lists; the pending marker is cleared
    only then, and only for the changes made before they were signed
    (:mod:`issuer.status_pending`).
    """
    stores = Stores.open(config, random_bytes=secrets.token_bytes)
    try:
        snapshot = stores.publication.snapshot()
        lists = sign_status_lists(stores.registry, load_signing_key(config), now=now)
        write_status_files(lists, config.path.parent / STATUS_DIR)
        if not to_room:
            return False
        if lists:
            credentials = load_credentials(config.matrix_data_dir)
            try:
                run_async(lambda: publish_status_lists(credentials, config, lists))
            except TransportError:
                return False
        stores.publication.published(snapshot)
        return True
    finally:
        stores.close()


@issuer.command()
@config_option
@json_option
@click.pass_context
@reports_errors
def status(ctx: click.Context, config_path: Path) -> None:
    """What the agency issued, its status lists and pending life events."""
    config = load_config(config_path)
    with (
        IssuanceLog.open(config.issuer_database) as log,
        Register.open(config.register_database) as register,
    ):
        counts = {str(k): v for k, v in log.count_by_vct().items()}
        pending = [e.model_dump(mode="json") for e in register.pending_life_events()]
    stores = Stores.open(config, random_bytes=secrets.token_bytes)
    try:
        uris = stores.registry.list_uris()
        publication_pending = stores.publication.pending
    finally:
        stores.close()
    data = {
        "agency_id": config.agency_id,
        "issued_by_vct": counts,
        "status_lists": uris,
        "pending_life_events": pending,
        "publication_pending": publication_pending,
    }
    lines = [f"{config.agency_id}: {sum(counts.values())} credential(s) issued"]
    lines += [f"  {vct}: {n}" for vct, n in sorted(counts.items())]
    lines += [f"  status list {uri}" for uri in uris]
    lines.append(f"  {len(pending)} pending life event(s)")
    if publication_pending:
        lines.append("  status lists changed since the last publication: publishing pending")
    emit(ctx, data, "\n".join(lines))


@issuer.command("eid-check")
@config_option
@click.argument("card_number")
@click.option("--code", help="The one-time code the card showed (second step).")
@click.option("--matrix-user", help="The citizen's Matrix account (second step).")
@click.option("--device-id", help="The wallet device to pin (second step).")
@json_option
@click.pass_context
@reports_errors
def eid_check(
    ctx: click.Context,
    config_path: Path,
    card_number: str,
    code: str | None,
    matrix_user: str | None,
    device_id: str | None,
) -> None:
    """SIMULATED eID check: without --code show a one-time code, with it bind the account."""
    config = load_config(config_path)
    now = int(time.time())
    with (
        Register.open(config.register_database) as register,
        NonceLedger.open(config.issuer_database) as ledger,
    ):
        if code is None:
            shown = start_eid_check(
                register, ledger, card_number, now=now, random_bytes=secrets.token_bytes
            )
            emit(ctx, {"simulated": True, "code": shown}, f"(simulation) card shows code {shown}")
            return
        if matrix_user is None:
            raise click.UsageError("--code needs --matrix-user")
        devices = CitizenDevices.open(config.issuer_database)
        try:
            person_id = complete_eid_check(
                register,
                ledger,
                card_number=card_number,
                code=code,
                matrix_user_id=matrix_user,
                now=now,
                device_id=device_id,
                devices=devices if device_id else None,
            )
        finally:
            devices.close()
    emit(
        ctx,
        {"simulated": True, "person_id": person_id, "matrix_user_id": matrix_user},
        f"(simulation) {matrix_user} bound to {person_id}",
    )
