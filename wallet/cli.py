"""``onceonly wallet``: the citizen's wallet from the command line.

Every command works on one data directory (``--data-dir``): ``wallet.db`` (the
encrypted store), ``account.json`` (the Matrix login, from ``onceonly account``),
``trust-anchors.json`` (the trust authority keys given to ``init``) and the trust
list cache that ``onceonly trust fetch --data-dir`` fills.

The wallet passphrase comes from the environment variable named by
``--passphrase-env`` (default ``ONCEONLY_WALLET_PASSPHRASE``) or is asked for
without echo. ``run`` and ``request`` use the Matrix account; the wallet service
locks the data directory (:mod:`onceonly.service.instance_lock`) so that only one
process drives the wallet's device at a time, and a second one fails with
``already_running``. The other commands only read or write the store (safe while
``run`` is running).

A damaged record (its seal fails: tampered, or a disk error) does not stop
``list``, ``offers``, ``history`` or ``export``: they show or save every intact
record, name each damaged one (``damaged`` in the output and, with ``--json``, a
``warnings`` entry with code ``store_corrupt``; else a warning on stderr) and
exit with :data:`EXIT_INCOMPLETE` (3) instead of 0. ``import`` of a backup that
names damaged records exits 3 the same way. Exit 1 still means nothing was done.
A damaged status verdict shows as ``status: null`` (unknown) beside its credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import click

from onceonly import jose
from onceonly.cli import LazyGroup, emit, json_option
from onceonly.credential_types import all_types
from onceonly.errors import ConfigError, StoreCorrupt, StoreError, TrustError
from onceonly.sdjwt import parse_sd_jwt
from onceonly.trust import TrustList
from onceonly.trust.claim_paths import format_claim_path
from onceonly.trust_cache import TrustCache
from onceonly.trust_cli.common import load_anchors, read_json, reports_errors
from onceonly.types import Vct
from wallet.backup import NOT_CARRIED, BackupContents
from wallet.passphrase import generate_passphrase as new_passphrase
from wallet.passphrase import require_strong
from wallet.policy import DENY_ALL, load_policy
from wallet.records import DamagedRecord
from wallet.requests import approve_offer, decline_offer
from wallet.store import WalletStore

WALLET_FILE: Final = "wallet.db"
ANCHORS_FILE: Final = "trust-anchors.json"
PASSPHRASE_ENV: Final = "ONCEONLY_WALLET_PASSPHRASE"  # noqa: S105 - a variable name
BACKUP_PASSPHRASE_ENV: Final = "ONCEONLY_BACKUP_PASSPHRASE"  # noqa: S105
EXIT_INCOMPLETE: Final = 3
"""Exit status of a command that did its work but lacks damaged records."""

F = TypeVar("F", bound=Callable[..., Any])


def _data_dir_options(func: F) -> F:
    func = click.option(
        "--passphrase-env",
        default=PASSPHRASE_ENV,
        show_default=True,
        help="Environment variable holding the wallet passphrase (else it is asked for).",
    )(func)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        envvar="ONCEONLY_WALLET_DIR",
        help="The wallet's data directory.",
    )(func)


def _secret(env: str, prompt: str, *, confirm: bool = False) -> str:
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin.isatty():
        raise ConfigError(f"no passphrase: set {env} or run in a terminal")
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


@contextlib.contextmanager
def _opened(data_dir: Path, passphrase_env: str) -> Iterator[WalletStore]:
    path = data_dir / WALLET_FILE
    if not path.is_file():
        raise StoreError(f"no wallet in {data_dir}; run 'onceonly wallet init' first")
    with WalletStore.open(path, passphrase=_secret(passphrase_env, "Wallet passphrase")) as store:
        yield store


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _type_name(vct: str) -> str:
    kind = all_types().get(Vct(vct))
    return f"{kind.name_de} / {kind.name_en}" if kind else vct


def _damage_report(
    ctx: click.Context, damaged: Sequence[DamagedRecord], consequence: str
) -> list[dict[str, Any]]:
    """Warn about damaged records and return their ``warnings`` entries (for ``--json``)."""
    warnings = []
    for record in damaged:
        error = StoreCorrupt(
            f"{record.table} record {record.row_id} is damaged or was altered; {consequence}",
            detail={"table": record.table, "id": record.row_id},
        )
        if not ctx.find_root().obj.get("json"):
            click.echo(f"warning: {error}", err=True)
        warnings.append(error.to_dict())
    return warnings


def _emit_readable(
    ctx: click.Context, data: dict[str, Any], human: str, damaged: Sequence[DamagedRecord]
) -> None:
    """Emit a listing; with damaged records name them and exit :data:`EXIT_INCOMPLETE`."""
    if damaged:
        data["damaged"] = [record.model_dump() for record in damaged]
        data["warnings"] = _damage_report(ctx, damaged, "not listed")
    emit(ctx, data, human)
    if damaged:
        ctx.exit(EXIT_INCOMPLETE)


def _trust_source(data_dir: Path) -> Callable[[int], TrustList]:
    anchors_file = data_dir / ANCHORS_FILE
    if not anchors_file.is_file():
        raise ConfigError(f"no {ANCHORS_FILE} in {data_dir}; give --authority-key to init")
    document = read_json(anchors_file)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ConfigError(f"{ANCHORS_FILE} must hold a JWK Set with at least one key")
    cache = TrustCache.in_data_dir(data_dir, [jose.public_key_from_jwk(key) for key in keys])

    def current(now: int) -> TrustList:
        verified = cache.current(now=now)
        if verified is None:
            raise TrustError(
                "no trust list cached; run 'onceonly trust fetch --data-dir' for this wallet"
            )
        return verified.trust_list

    return current


# ``devices`` lives in its own module (which uses the helpers above).
@click.group(cls=LazyGroup, lazy={"devices": "wallet.devices_cli:devices"})
def wallet() -> None:
    """The citizen's wallet: keep credentials, answer requests, see what was disclosed."""


@wallet.command()
@_data_dir_options
@click.option(
    "--authority-key",
    "anchor_paths",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Trust authority public JWK (repeatable).",
)
@click.option(
    "--generate-passphrase",
    is_flag=True,
    help="Make a strong random passphrase (recovery key) and print it once, instead of"
    " reading one.",
)
@json_option
@click.pass_context
@reports_errors
def init(
    ctx: click.Context,
    data_dir: Path,
    passphrase_env: str,
    anchor_paths: tuple[Path, ...],
    generate_passphrase: bool,
) -> None:
    """Create an empty, encrypted wallet (and remember the trust authority keys).

    A chosen passphrase needs at least 12 characters, at least 5 of them different;
    a weaker one is refused (``weak_passphrase``) before anything is written.
    """
    anchors = load_anchors(anchor_paths) if anchor_paths else []
    if generate_passphrase:
        passphrase = new_passphrase()
    else:
        passphrase = _secret(passphrase_env, "New wallet passphrase", confirm=True)
        require_strong(passphrase)  # refused before the directory is made
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    WalletStore.create(data_dir / WALLET_FILE, passphrase=passphrase).close()
    if anchors:
        document = {"keys": [key.to_jwk() for key in anchors]}
        (data_dir / ANCHORS_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
    data: dict[str, Any] = {"wallet": WALLET_FILE, "anchors": len(anchors)}
    human = f"wallet created in {data_dir} ({len(anchors)} trust authority key(s))"
    if generate_passphrase:
        # Shown this once and stored nowhere: without it the wallet cannot be opened.
        data["passphrase"] = passphrase
        human += f"\nyour wallet passphrase (write it down, it is shown only now): {passphrase}"
    emit(ctx, data, human)


@wallet.command(name="list")
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def list_credentials(ctx: click.Context, data_dir: Path, passphrase_env: str) -> None:
    """List the credentials held, with what their status lists last said.

    A revoked or suspended credential is never presented; ``status`` is
    ``null`` until the wallet first checked it (before answering a request), or
    when that verdict's record is damaged (then named, and the exit status is 3).
    """
    with _opened(data_dir, passphrase_env) as store:
        held, damaged = store.readable_credentials()
        statuses, damaged_verdicts = store.readable_credential_statuses()
        damaged += damaged_verdicts
    rows = []
    lines = []
    for c in held:
        known = statuses.get(c.credential_id)
        rows.append(
            {
                "id": c.credential_id,
                "vct": c.vct,
                "name": _type_name(c.vct),
                "issuer": c.issuer,
                "received_at": c.received_at,
                "status": known.state if known else None,
                "status_checked_at": known.checked_at if known else None,
            }
        )
        flag = ""
        if known is not None and known.state != "valid":
            flag = f"  {known.state.upper()} (seen {_when(known.checked_at)}; not presented)"
        lines.append(
            f"{c.credential_id}  {_type_name(c.vct)}  from {c.issuer}  ({_when(c.received_at)})"
            + flag
        )
    _emit_readable(ctx, {"credentials": rows}, "\n".join(lines) or "no credentials", damaged)


@wallet.command()
@click.argument("credential_id")
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def show(ctx: click.Context, credential_id: str, data_dir: Path, passphrase_env: str) -> None:
    """Show one credential's claims (all of them: this is the citizen's own view)."""
    with _opened(data_dir, passphrase_env) as store:
        stored = store.credential(credential_id)
    claims = parse_sd_jwt(stored.sd_jwt).claims
    shown = {k: v for k, v in claims.items() if k not in ("cnf", "_sd_alg")}
    data = {
        "id": stored.credential_id,
        "vct": stored.vct,
        "name": _type_name(stored.vct),
        "issuer": stored.issuer,
        "received_at": stored.received_at,
        "expires_at": claims.get("exp"),
        "status": stored.status.model_dump() if stored.status else None,
        "claims": shown,
    }
    human = [f"{data['name']} ({stored.vct})", f"issuer: {stored.issuer}"]
    human += [f"  {name}: {value}" for name, value in shown.items()]
    emit(ctx, data, "\n".join(human))


@wallet.command()
@_data_dir_options
@click.option("--state", help="Only offers in this state (pending, approved, requested, ...).")
@json_option
@click.pass_context
@reports_errors
def offers(ctx: click.Context, data_dir: Path, passphrase_env: str, state: str | None) -> None:
    """List credential offers and requests and where each stands."""
    with _opened(data_dir, passphrase_env) as store:
        every, damaged = store.readable_offers()
    rows = [o.model_dump(mode="json") for o in every if state in (None, o.state)]
    lines = [
        f"{r['offer_id']}  {r['state']:<9}  {_type_name(r['vct'])}  from {r['issuer']}"
        + (f"  ({r['reason']})" if r["reason"] else "")
        for r in rows
    ]
    _emit_readable(ctx, {"offers": rows}, "\n".join(lines) or "no offers", damaged)


@wallet.command()
@click.argument("offer_id")
@_data_dir_options
@click.option("--decline", is_flag=True, help="Decline the offer instead.")
@json_option
@click.pass_context
@reports_errors
def accept(
    ctx: click.Context, offer_id: str, data_dir: Path, passphrase_env: str, decline: bool
) -> None:
    """Accept (or --decline) a pending offer; a running wallet tells the agency."""
    now = int(time.time())
    with _opened(data_dir, passphrase_env) as store:
        if decline:
            decline_offer(store, offer_id, now=now)
        else:
            approve_offer(store, offer_id, now=now)
        state = store.offer(offer_id).state
    emit(ctx, {"offer_id": offer_id, "state": state}, f"{offer_id}: {state}")


@wallet.command()
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def history(ctx: click.Context, data_dir: Path, passphrase_env: str) -> None:
    """Every disclosure the wallet made or refused: to whom, what, why, when."""
    with _opened(data_dir, passphrase_env) as store:
        entries, damaged = store.readable_disclosure_history()
    rows = [entry.model_dump(mode="json") for entry in entries]
    lines = [
        f"{_when(e.at)}  {e.outcome:<9} {e.verifier_id} ({e.verifier_user})  purpose {e.purpose}: "
        + (", ".join(format_claim_path(path) for path in e.claim_paths) or "-")
        for e in entries
    ]
    _emit_readable(ctx, {"history": rows}, "\n".join(lines) or "nothing disclosed yet", damaged)


@wallet.command(name="export")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def export_backup(
    ctx: click.Context, backup_file: Path, data_dir: Path, passphrase_env: str
) -> None:
    """Write an encrypted backup (its passphrase: ONCEONLY_BACKUP_PASSPHRASE or asked).

    It holds holder keys, credentials, their status verdicts, approved devices,
    the device-list counter, history and offers; the output says what it does not
    hold (``not_carried``) and names records left out because they are damaged.
    """
    with _opened(data_dir, passphrase_env) as store:
        secret = _secret(BACKUP_PASSPHRASE_ENV, "Backup passphrase", confirm=True)
        contents = store.export(backup_file, secret)
    _report_backup(ctx, contents, str(backup_file), "backed up", "not in the backup")


@wallet.command(name="import")
@click.argument("backup_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@_data_dir_options
@json_option
@click.pass_context
@reports_errors
def import_backup(
    ctx: click.Context, backup_file: Path, data_dir: Path, passphrase_env: str
) -> None:
    """Restore a backup into this (empty) wallet, e.g. on a second device."""
    with _opened(data_dir, passphrase_env) as store:
        contents = store.import_(backup_file, _secret(BACKUP_PASSPHRASE_ENV, "Backup passphrase"))
    _report_backup(ctx, contents, str(backup_file), "imported", "it was lost before the backup")


def _report_backup(
    ctx: click.Context,
    contents: BackupContents,
    backup_file: str,
    done: str,
    consequence: str,
) -> None:
    counts = contents.counts
    data: dict[str, Any] = {
        "backup": backup_file,
        "format_version": contents.version,
        "credentials": counts["credentials"],
        "counts": counts,
        "complete": contents.complete,
        "not_carried": list(NOT_CARRIED),
    }
    summary = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in counts.items())
    human = [f"{counts['credentials']} credential(s) {done} ({summary})"]
    human += ["not in any backup:", *(f"  - {what}" for what in NOT_CARRIED)]
    if contents.damaged:
        data["damaged"] = [r.model_dump() for r in contents.damaged]
        data["warnings"] = _damage_report(ctx, contents.damaged, consequence)
        human.append(f"INCOMPLETE: {len(contents.damaged)} damaged record(s) missing")
    emit(ctx, data, "\n".join(human))
    if contents.damaged:
        ctx.exit(EXIT_INCOMPLETE)


@wallet.command()
@_data_dir_options
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Consent policy file (JSON or TOML) for unattended approvals.",
)
@click.option(
    "--unattended", is_flag=True, help="Never prompt: what the policy does not approve is refused."
)
@json_option
@click.pass_context
@reports_errors
def run(
    ctx: click.Context,
    data_dir: Path,
    passphrase_env: str,
    policy_file: Path | None,
    unattended: bool,
) -> None:
    """Run the wallet on Matrix until interrupted: receive, answer, request approved offers."""
    from wallet.consent import TerminalConsent
    from wallet.service import Notice, WalletService

    policy = load_policy(policy_file) if policy_file else DENY_ALL
    trust = _trust_source(data_dir)
    interactive = not unattended and sys.stdin.isatty()
    prompt = TerminalConsent() if interactive else None
    as_json = bool(ctx.find_root().obj.get("json"))

    def notify(notice: Notice) -> None:
        data = {"kind": notice.kind, "exchange_id": notice.exchange_id, **notice.detail}
        click.echo(json.dumps(data, ensure_ascii=False) if as_json else _describe(notice))

    async def main(store: WalletStore) -> None:
        service = WalletService(
            data_dir=data_dir,
            store=store,
            trust=trust,
            policy=policy,
            consent=prompt,
            offer_consent=(lambda o, name: prompt.accept_offer(o, issuer_name=name))
            if prompt
            else None,
            notify=notify,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with service:
            click.echo(f"wallet running as {service.runtime.user_id}", err=True)
            await stop.wait()

    with _opened(data_dir, passphrase_env) as store:
        asyncio.run(main(store))


@wallet.command()
@_data_dir_options
@click.option("--issuer", "issuer_id", required=True, help="The agency's trust-list id.")
@click.option("--vct", required=True, help="The credential type.")
@click.option(
    "--wait", default=120.0, show_default=True, help="Seconds to wait for the credential."
)
@json_option
@click.pass_context
@reports_errors
def request(
    ctx: click.Context,
    data_dir: Path,
    passphrase_env: str,
    issuer_id: str,
    vct: str,
    wait: float,
) -> None:
    """Ask an agency for a credential and wait for it (not while 'run' is running)."""
    from wallet.service import WalletService

    trust = _trust_source(data_dir)

    async def main(store: WalletStore) -> dict[str, Any]:
        async with WalletService(data_dir=data_dir, store=store, trust=trust) as service:
            exchange_id = await service.request(issuer_id, vct)
            deadline = time.monotonic() + wait
            while store.offer(exchange_id).state == "requested" and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
            record = store.offer(exchange_id)
            return {
                "exchange_id": exchange_id,
                "state": record.state,
                "credential_id": record.credential_id,
            }

    with _opened(data_dir, passphrase_env) as store:
        result = asyncio.run(main(store))
    emit(ctx, result, f"{result['exchange_id']}: {result['state']}")
    if result["state"] != "accepted":
        ctx.exit(1)


def _describe(notice: Any) -> str:
    detail = ", ".join(f"{key}={value}" for key, value in notice.detail.items())
    return f"[{notice.kind}] {notice.exchange_id or '-'} {detail}".rstrip()
