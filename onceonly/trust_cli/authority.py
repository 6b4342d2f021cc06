"""The trust authority's commands: ``init``, ``add-agency``, ``sign``, ``publish``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click
from pydantic import ValidationError

from onceonly import jose
from onceonly.cli import emit, json_option
from onceonly.errors import ConfigError, MalformedInput
from onceonly.trust import (
    Agency,
    LocalizedText,
    RequestGrant,
    TrustListDraft,
    build_trust_list,
    sign_trust_list,
    verify_trust_list,
)
from onceonly.trust.claim_paths import ClaimPath
from onceonly.trust.specs import (
    iso_time,
    parse_purpose_spec,
    parse_request_spec,
    summary_of,
    validation_summary,
)
from onceonly.trust_cache import read_token_file, write_atomically
from onceonly.trust_cli.common import (
    DRAFT_FILE,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    SIGNED_FILE,
    account_options,
    dir_option,
    draft_path,
    load_account,
    load_anchors,
    load_draft,
    parse_key_spec,
    read_json,
    reports_errors,
    save_draft,
    write_private,
)


@click.command()
@dir_option
@click.option("--id", "iss", required=True, help="The authority's identifier (list 'iss').")
@click.option("--name-de", required=True, help="Display name in German.")
@click.option("--name-en", required=True, help="Display name in English.")
@click.option("--alg", type=click.Choice([jose.ES256, jose.EDDSA]), default=jose.ES256)
@json_option
@click.pass_context
@reports_errors
def init(
    ctx: click.Context, directory: Path, iss: str, name_de: str, name_en: str, alg: str
) -> None:
    """Create the authority key (private JWK, mode 0600) and an empty draft."""
    private_path = directory / PRIVATE_KEY_FILE
    if private_path.exists():
        raise ConfigError(f"{private_path} exists; refusing to replace the authority key")
    try:
        draft = TrustListDraft(iss=iss, name=LocalizedText(de=name_de, en=name_en))
    except ValidationError as exc:
        raise MalformedInput(validation_summary(exc)) from exc
    generated = jose.generate_private_key(alg)
    key = jose.PrivateKey(generated.alg, generated.key, generated.public().thumbprint())
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(private_path, jose.json_dumps_compact(key.to_jwk()) + "\n")
    write_atomically(directory / PUBLIC_KEY_FILE, jose.json_dumps_compact(key.public().to_jwk()))
    save_draft(directory / DRAFT_FILE, draft)
    emit(
        ctx,
        {"kid": key.kid, "alg": alg, "public_key": str(directory / PUBLIC_KEY_FILE)},
        f"authority key {key.kid} created; give parties {directory / PUBLIC_KEY_FILE}",
    )


@click.command("add-agency")
@dir_option
@click.option("--draft", type=click.Path(dir_okay=False, path_type=Path), help="Draft file.")
@click.option("--id", "agency_id", required=True, help="Agency id (its credentials' 'iss').")
@click.option("--name-de", required=True)
@click.option("--name-en", required=True)
@click.option("--matrix-user", required=True, help="The agency's Matrix user id.")
@click.option("--did", "dids", multiple=True, help="A did:web or did:key of the agency.")
@click.option(
    "--key",
    "key_specs",
    multiple=True,
    help="FILE[@FROM..[UNTIL]]: public JWK (or JWK Set) and its issuance window.",
)
@click.option("--may-issue", multiple=True, help="A vct the agency may issue.")
@click.option("--may-request", multiple=True, help="VCT:PATH it may ask for (a.b, list.*).")
@click.option("--purpose", "purpose_specs", multiple=True, help="CODE:DE:EN for its requests.")
@click.option("--replace", is_flag=True, help="Replace an agency with the same id.")
@json_option
@click.pass_context
@reports_errors
def add_agency(
    ctx: click.Context,
    directory: Path,
    draft: Path | None,
    agency_id: str,
    name_de: str,
    name_en: str,
    matrix_user: str,
    dids: tuple[str, ...],
    key_specs: tuple[str, ...],
    may_issue: tuple[str, ...],
    may_request: tuple[str, ...],
    purpose_specs: tuple[str, ...],
    replace: bool,
) -> None:
    """Add (or with --replace, replace) an agency in the unsigned draft.

    Every --may-request of one call is registered for every --purpose of that call.
    """
    path = draft_path(directory, draft)
    current = load_draft(path)
    now = int(time.time())
    purposes = tuple(parse_purpose_spec(spec) for spec in purpose_specs)
    if may_request and not purposes:
        raise MalformedInput("--may-request needs at least one --purpose")
    paths_by_vct: dict[str, list[ClaimPath]] = {}
    for spec in may_request:
        vct, claim_path = parse_request_spec(spec)
        paths_by_vct.setdefault(vct, []).append(claim_path)
    codes = tuple(p.code for p in purposes)
    try:
        agency = Agency(
            id=agency_id,
            name=LocalizedText(de=name_de, en=name_en),
            matrix_user_id=matrix_user,
            dids=dids,
            keys=tuple(key for spec in key_specs for key in parse_key_spec(spec, now=now)),
            may_issue=may_issue,
            purposes=purposes,
            may_request=tuple(
                RequestGrant(vct=vct, paths=tuple(paths), purposes=codes)
                for vct, paths in paths_by_vct.items()
            ),
        )
        others = tuple(a for a in current.agencies if a.id != agency_id)
        if len(others) != len(current.agencies) and not replace:
            raise MalformedInput(f"agency {agency_id!r} is in the draft; use --replace")
        updated = current.model_copy(update={"agencies": (*others, agency)})
        updated = TrustListDraft.model_validate(updated.model_dump())  # uniqueness checks
    except ValidationError as exc:
        raise MalformedInput(validation_summary(exc)) from exc
    save_draft(path, updated)
    emit(
        ctx,
        {"agency": agency.model_dump(mode="json"), "agencies": len(updated.agencies)},
        f"{agency_id} added to {path} ({len(updated.agencies)} agencies)",
    )


@click.command()
@dir_option
@click.option("--draft", type=click.Path(dir_okay=False, path_type=Path), help="Draft file.")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Signed list file.")
@click.option("--valid-days", type=click.IntRange(1, 3660), default=30, show_default=True)
@json_option
@click.pass_context
@reports_errors
def sign(
    ctx: click.Context,
    directory: Path,
    draft: Path | None,
    key_path: Path | None,
    out: Path | None,
    valid_days: int,
) -> None:
    """Sign the draft as the next trust list (the sequence number goes up by one)."""
    path = draft_path(directory, draft)
    current = load_draft(path)
    key = jose.private_key_from_jwk(read_json(key_path or directory / PRIVATE_KEY_FILE))
    sequence = current.sequence + 1
    signed_list = build_trust_list(
        current, sequence=sequence, now=int(time.time()), valid_for_seconds=valid_days * 86_400
    )
    token = sign_trust_list(signed_list, key)
    target = out or directory / SIGNED_FILE
    write_atomically(target, token)
    # The draft remembers the number only after the list is safely written.
    save_draft(path, current.model_copy(update={"sequence": sequence}))
    emit(
        ctx,
        {**summary_of(signed_list), "file": str(target)},
        f"signed trust list {sequence} -> {target} (valid until {iso_time(signed_list.exp)})",
    )


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@dir_option
@click.option(
    "--room",
    default=None,
    help="Room alias (#trust:server, or trust) or room id; default: the publishing account's"
    " own #onceonly-trust.<localpart>:<server>, which readers find without naming the publisher.",
)
@account_options
@json_option
@click.pass_context
@reports_errors
def publish(
    ctx: click.Context,
    file: Path | None,
    directory: Path,
    room: str | None,
    account_dir: Path | None,
    homeserver: str | None,
    user_id: str | None,
    access_token: str | None,
    device_id: str,
) -> None:
    """Publish the signed list as state of a public room (created with the alias if needed).

    The list is verified with the authority's public key first, so a broken or
    expired file is never published.
    """
    from onceonly.matrix import state_rooms

    token = read_token_file(file or directory / SIGNED_FILE)
    anchors = load_anchors((directory / PUBLIC_KEY_FILE,))
    verified = verify_trust_list(token, anchors, now=int(time.time()))
    credentials = load_account(account_dir, homeserver, user_id, access_token, device_id)
    alias = (
        state_rooms.trust_room_alias(credentials.user_id)
        if room is None
        else state_rooms.room_alias(room, state_rooms.server_name_of(credentials.user_id))
    )

    async def run() -> tuple[str, str, bool]:
        async with state_rooms.state_client(credentials) as client:
            if alias.startswith("!"):
                # Never publish into a room someone else created (see state_rooms).
                await state_rooms.check_room_creator(client, alias, credentials.user_id)
                room_id, created = alias, False
            else:
                room_id, created = await state_rooms.ensure_public_room(
                    client,
                    alias,
                    name=verified.trust_list.name.en,
                    topic="Trust list / Vertrauensliste",
                )
            event_id = await state_rooms.publish_trust_list(
                client, room_id, token, verified.trust_list
            )
            return room_id, event_id, created

    room_id, event_id, created = asyncio.run(run())
    emit(
        ctx,
        {
            "room": alias,
            "room_id": room_id,
            "event_id": event_id,
            "created": created,
            "seq": verified.trust_list.seq,
        },
        f"published trust list {verified.trust_list.seq} in {alias} ({room_id})",
    )
