"""``onceonly trust``: the trust authority's tools, and a party's show/verify/fetch.

The authority works in a directory (``--dir``, default ``./trust-authority``):

* ``authority-key.jwk``: the private signing key (mode 0600, never leaves the dir);
* ``authority-key.pub.jwk``: its public key, which parties configure as trust anchor;
* ``draft.json``: the unsigned working copy edited by ``add-agency``;
* ``trust-list.jwt``: the last signed list (what ``publish`` sends).

Matrix is imported only by ``publish`` and ``fetch``, when they run.
"""

from __future__ import annotations

import click

from onceonly.trust_cli.authority import add_agency, init, publish, sign
from onceonly.trust_cli.party import fetch, show, verify


@click.group()
def trust() -> None:
    """Trust list: the authority signs and publishes it, parties fetch and verify it."""


for _command in (init, add_agency, sign, publish, show, verify, fetch):
    trust.add_command(_command)

__all__ = ["trust"]
