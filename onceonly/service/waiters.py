"""Futures for code that waits until an exchange reaches a state."""

from __future__ import annotations

import asyncio

from onceonly.protocol.exchange import Exchange, State

_Entry = tuple[frozenset[State], "asyncio.Future[Exchange]"]


class ExchangeWaiters:
    """Who waits for which exchange to reach which states."""

    def __init__(self) -> None:
        self._by_exchange: dict[str, list[_Entry]] = {}

    def add(self, exchange_id: str, states: frozenset[State]) -> _Entry:
        """Register a waiter; its future resolves with the exchange once in ``states``."""
        future: asyncio.Future[Exchange] = asyncio.get_running_loop().create_future()
        entry = (states, future)
        self._by_exchange.setdefault(exchange_id, []).append(entry)
        return entry

    def remove(self, exchange_id: str, entry: _Entry) -> None:
        """Forget a waiter (after it resolved or gave up)."""
        entries = self._by_exchange.get(exchange_id, [])
        if entry in entries:
            entries.remove(entry)
        if not entries:
            self._by_exchange.pop(exchange_id, None)

    def notify(self, exchange: Exchange) -> None:
        """Resolve the waiters that this exchange value satisfies."""
        for states, future in self._by_exchange.get(exchange.exchange_id, []):
            if exchange.state in states and not future.done():
                future.set_result(exchange)

    def fail_all(self, error: BaseException) -> None:
        """End every waiter with ``error`` (the service stops)."""
        for entries in self._by_exchange.values():
            for _, future in entries:
                if not future.done():
                    future.set_exception(error)
        self._by_exchange.clear()
