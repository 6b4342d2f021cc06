"""``onceonly verifier``: run a verifier agency from the command line.

::

    onceonly verifier init --data-dir D --id https://familienkasse.example \\
        --trust-anchor authority.pub.jwk [--store postgresql://...]
    onceonly verifier run --data-dir D
    onceonly verifier request @erika:gov.example --data-dir D --query query.json \\
        --purpose child_benefit_application --wait [--timeout 600]
    onceonly verifier status --data-dir D [EXCHANGE_ID]

The data directory also needs the Matrix login (``onceonly account ...``) and the
trust list (``onceonly trust fetch``). ``request --wait`` prints the verified claims
as JSON and exits 0, or prints the result with its error code and exits 1. Only
one process may use a data directory's Matrix account at a time: run ``request``
while ``run`` is stopped, or use the Python API (:mod:`verifier.api`) in the service.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import click

from onceonly.cli import emit, fail, json_option
from onceonly.errors import ConfigError, OnceOnlyError
from onceonly.jose import EDDSA, ES256, strict_json_loads
from onceonly.query import parse_query
from onceonly.types import UserId
from verifier.api import VerifierApi
from verifier.audit_log_cli import load_public_key
from verifier.config import CONFIG_FILE, init_verifier, load_config
from verifier.requests import RequestStore, StoredRequest
from verifier.service import VerifierService

_MAX_QUERY_FILE_BYTES = 64 * 1024

data_dir_option = click.option(
    "--data-dir",
    required=True,
    envvar="ONCEONLY_VERIFIER_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="The verifier's data directory (or $ONCEONLY_VERIFIER_DIR).",
)


@click.group()
def verifier() -> None:
    """Ask citizens for proofs, verify them fully, keep the audit trail."""


@verifier.command()
@data_dir_option
@click.option("--id", "verifier_id", required=True, help="Our agency id on the trust list.")
@click.option(
    "--trust-anchor",
    "anchors",
    multiple=True,
    required=True,
    help="A trust authority public JWK (file or JSON); repeatable.",
)
@click.option("--store", help="SQLite file (relative to the data dir) or postgresql:// DSN.")
@click.option(
    "--trust-room",
    help="Where the trust list is published: the authority's #onceonly-trust.<account>:<server>"
    " alias, or a room id.",
)
@click.option("--alg", type=click.Choice([ES256, EDDSA]), default=ES256, show_default=True)
@json_option
@click.pass_context
def init(
    ctx: click.Context,
    data_dir: Path,
    verifier_id: str,
    anchors: tuple[str, ...],
    store: str | None,
    trust_room: str | None,
    alg: str,
) -> None:
    """Create the configuration and the key that signs the audit log's heads."""
    ctx.find_root().ensure_object(dict)
    try:
        keys = [load_public_key(anchor) for anchor in anchors]
        config, public = init_verifier(
            data_dir,
            verifier_id=verifier_id,
            anchors=keys,
            store=store,
            alg=alg,
            trust_room=trust_room,
        )
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    data = {"config": str(data_dir / CONFIG_FILE), "audit_key": public.to_jwk()}
    emit(
        ctx,
        data,
        f"verifier {config.verifier_id} initialised in {data_dir}\n"
        f"audit log key (give it to auditors): {json.dumps(public.to_jwk())}",
    )


@verifier.command()
@data_dir_option
@click.pass_context
def run(ctx: click.Context, data_dir: Path) -> None:
    """Answer presentation responses until interrupted (Ctrl-C or SIGTERM)."""
    ctx.find_root().ensure_object(dict)
    try:
        asyncio.run(_run(data_dir))
    except OnceOnlyError as exc:
        fail(ctx, exc)


async def _run(data_dir: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with VerifierService(data_dir) as service:
        click.echo(f"verifier running as {service.runtime.user_id}", err=True)
        await stop.wait()


def _read_query(value: str) -> Any:
    if value.lstrip().startswith("{"):
        return parse_query(value)
    try:
        with Path(value).open("rb") as handle:
            data = handle.read(_MAX_QUERY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read query file {value!r}: {exc.strerror}") from exc
    return parse_query(strict_json_loads(data, max_bytes=_MAX_QUERY_FILE_BYTES))


@verifier.command()
@click.argument("citizen")
@data_dir_option
@click.option("--query", "query_text", required=True, help="DCQL query: a JSON file or JSON.")
@click.option("--purpose", required=True, help="A purpose code registered for us.")
@click.option("--ttl", type=click.IntRange(10, 7 * 24 * 3600), help="Seconds to answer.")
@click.option("--wait", is_flag=True, help="Wait for the answer and print the verified claims.")
@click.option("--timeout", type=click.FloatRange(1), default=600.0, show_default=True)
@json_option
@click.pass_context
def request(
    ctx: click.Context,
    citizen: str,
    data_dir: Path,
    query_text: str,
    purpose: str,
    ttl: int | None,
    wait: bool,
    timeout: float,
) -> None:
    """Ask CITIZEN (a Matrix user id) for the claims in a DCQL query."""
    ctx.find_root().ensure_object(dict)
    try:
        query = _read_query(query_text)
        outcome = asyncio.run(
            _request(data_dir, UserId(citizen), query, purpose, ttl, wait, timeout)
        )
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    if not wait:
        emit(ctx, outcome, f"request sent: exchange {outcome['exchange_id']}")
        return
    emit(ctx, outcome)
    ctx.exit(0 if outcome["verified"] else 1)


async def _request(
    data_dir: Path,
    citizen: UserId,
    query: Any,
    purpose: str,
    ttl: int | None,
    wait: bool,
    timeout: float,
) -> dict[str, Any]:
    async with VerifierService(data_dir) as service:
        if wait:
            result = await VerifierApi(service).request_proof(
                citizen, query, purpose, timeout, ttl=ttl
            )
            return result.to_json()
        pending = await service.request(citizen, query, purpose, ttl=ttl)
        return {"exchange_id": pending.exchange_id, "expires_at": pending.expires_at}


def _describe(stored: StoredRequest) -> dict[str, Any]:
    pending = stored.pending
    return {
        "exchange_id": pending.exchange_id,
        "citizen": pending.citizen,
        "purpose": pending.purpose,
        "created_at": pending.created_at,
        "expires_at": pending.expires_at,
        "outcome": stored.outcome,
        "result": stored.result,
    }


@verifier.command()
@click.argument("exchange_id", required=False)
@data_dir_option
@json_option
@click.pass_context
def status(ctx: click.Context, exchange_id: str | None, data_dir: Path) -> None:
    """Show one request (EXCHANGE_ID) or every open one."""
    ctx.find_root().ensure_object(dict)
    try:
        config = load_config(data_dir)
        with RequestStore.open(config.store_location(data_dir)) as store:
            found = [store.get(exchange_id)] if exchange_id else store.open_requests()
    except OnceOnlyError as exc:
        fail(ctx, exc)
        return
    described = [_describe(item) for item in found]
    lines = [
        f"{d['exchange_id']}  {d['citizen']}  {d['purpose']}  {d['outcome'] or 'open'}"
        for d in described
    ]
    emit(
        ctx,
        described if exchange_id is None else described[0],
        "\n".join(lines) or "no open requests",
    )
