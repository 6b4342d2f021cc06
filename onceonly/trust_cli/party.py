"""Commands every party uses: ``show``, ``verify`` (files) and ``fetch`` (Matrix)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import click

from onceonly import jose
from onceonly.cli import emit, json_option
from onceonly.dids import StandardDidResolver, check_agency_dids
from onceonly.errors import ConfigError
from onceonly.trust import TrustList, verify_trust_list, verify_trust_list_signature
from onceonly.trust.specs import describe, iso_time, parse_time, summary_of
from onceonly.trust.token import parse_trust_list_payload
from onceonly.trust_cache import TrustCache, read_token_file
from onceonly.trust_cli.common import (
    SIGNED_FILE,
    account_options,
    dir_option,
    load_account,
    load_anchors,
    reports_errors,
)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@dir_option
@click.option("--authority-key", "anchor_paths", multiple=True, type=click.Path(path_type=Path))
@json_option
@click.pass_context
@reports_errors
def show(
    ctx: click.Context, file: Path | None, directory: Path, anchor_paths: tuple[Path, ...]
) -> None:
    """Show a signed trust list (its signature is checked when --authority-key is given)."""
    token = read_token_file(file or directory / SIGNED_FILE)
    if anchor_paths:
        trust_list = verify_trust_list_signature(token, load_anchors(anchor_paths)).trust_list
        verified: bool | None = True
    else:
        trust_list = parse_trust_list_payload(jose.parse_compact(token).payload)
        verified = None
    emit(
        ctx,
        {"verified": verified, "trust_list": trust_list.model_dump(mode="json")},
        describe(trust_list, verified),
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--authority-key", "anchor_paths", multiple=True, type=click.Path(path_type=Path), required=True
)
@click.option("--cached", type=click.Path(dir_okay=False, path_type=Path), help="Held list.")
@click.option("--now", "now_text", help="Check validity at this time instead of now.")
@click.option("--check-dids", is_flag=True, help="Resolve every agency DID and match its keys.")
@click.option(
    "--did-web-base",
    "web_bases",
    multiple=True,
    help="DOMAIN=URL: fetch did:web documents of DOMAIN from URL (http: loopback only).",
)
@click.option("--loopback-http", is_flag=True, help="Fetch loopback did:web over plain http.")
@json_option
@click.pass_context
@reports_errors
def verify(
    ctx: click.Context,
    file: Path,
    anchor_paths: tuple[Path, ...],
    cached: Path | None,
    now_text: str | None,
    check_dids: bool,
    web_bases: tuple[str, ...],
    loopback_http: bool,
) -> None:
    """Verify a signed trust list file: signature, validity period, no rollback.

    With --check-dids, every DID on the list must resolve to a document that names
    one of the keys the list gives its agency.
    """
    anchors = load_anchors(anchor_paths)
    held = verify_trust_list_signature(read_token_file(cached), anchors) if cached else None
    now = parse_time(now_text) if now_text else int(time.time())
    verified = verify_trust_list(
        read_token_file(file), anchors, now=now, cached=held.trust_list if held else None
    )
    summary: dict[str, Any] = summary_of(verified.trust_list)
    if check_dids:
        resolver = StandardDidResolver(
            web_base_urls=_web_bases(web_bases), loopback_http=loopback_http
        )
        summary["dids"] = asyncio.run(_check_dids(verified.trust_list, resolver))
    emit(
        ctx,
        {"valid": True, **summary},
        f"valid: trust list {summary['seq']} of {summary['iss']}, "
        f"{len(summary['agencies'])} agencies, until {iso_time(verified.trust_list.exp)}",
    )


def _web_bases(specs: tuple[str, ...]) -> dict[str, str]:
    bases = {}
    for spec in specs:
        domain, sep, url = spec.partition("=")
        if not sep or not domain or not url:
            raise ConfigError(f"--did-web-base wants DOMAIN=URL, got {spec!r}")
        bases[domain] = url
    return bases


async def _check_dids(trust_list: TrustList, resolver: StandardDidResolver) -> dict[str, Any]:
    matches: dict[str, Any] = {}
    for agency in trust_list.agencies:
        matches.update(await check_agency_dids(agency, resolver))
    return matches


@click.command()
@click.option("--room", help="Room alias or id of the trust list.")
@click.option(
    "--file",
    "from_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Take the signed list from this file instead of Matrix.",
)
@click.option(
    "--authority-key", "anchor_paths", multiple=True, type=click.Path(path_type=Path), required=True
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The party's data dir (the cache file goes there).",
)
@click.option("--authority-id", help="Read this authority's list if the room holds several.")
@click.option(
    "--publisher",
    help="The Matrix account the authority publishes with (the room's creator and the"
    " list's sender must be it); needed when --room is an alias other than the"
    " authority's #onceonly-trust.<account> alias.",
)
@account_options
@json_option
@click.pass_context
@reports_errors
def fetch(
    ctx: click.Context,
    room: str | None,
    from_file: Path | None,
    anchor_paths: tuple[Path, ...],
    data_dir: Path,
    authority_id: str | None,
    publisher: str | None,
    account_dir: Path | None,
    homeserver: str | None,
    user_id: str | None,
    access_token: str | None,
    device_id: str,
) -> None:
    """Fetch the published list (or --file), verify it and update the party's cache.

    A rejected list or an unreachable homeserver leaves the cache as it was and
    exits 1 with the error code.
    """
    if (room is None) == (from_file is None):
        raise ConfigError("give exactly one of --room and --file")
    cache = TrustCache.in_data_dir(data_dir, load_anchors(anchor_paths))
    source = str(from_file)

    async def run() -> Any:
        if from_file is not None:
            token = read_token_file(from_file)

            async def from_disk() -> str | None:
                return token

            return await cache.refresh(from_disk, now=int(time.time()))
        from onceonly.matrix import state_rooms

        # Explicit account options win; otherwise the party's own account.json.
        default_dir = None if homeserver else data_dir
        credentials = load_account(
            account_dir or default_dir, homeserver, user_id, access_token, device_id
        )
        alias = state_rooms.room_alias(str(room), state_rooms.server_name_of(credentials.user_id))
        nonlocal source
        source = alias
        async with state_rooms.state_client(credentials) as client:
            return await cache.refresh(
                lambda: state_rooms.read_trust_list(
                    client, alias, authority_id, publisher=publisher
                ),
                now=int(time.time()),
            )

    outcome = asyncio.run(run())
    if outcome.error is not None:
        if outcome.current is not None:
            outcome.error.detail["cached_seq"] = outcome.current.trust_list.seq
        raise outcome.error
    if outcome.current is None:
        raise ConfigError(f"no trust list is published in {source}")
    emit(
        ctx,
        {"updated": outcome.updated, **summary_of(outcome.current.trust_list)},
        f"trust list {outcome.current.trust_list.seq}"
        f" {'cached' if outcome.updated else 'unchanged'} in {cache.path}",
    )
