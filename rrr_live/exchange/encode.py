"""Venue-neutral ticks (integer ticks and lots) encoded into one venue's wire frames.

The bars expansion and the synthetic universe speak in book levels and trades; a
:class:`TickEncoder` turns them into :class:`~rrr_live.exchange.tape.TapeEvent` s with the venue's
JSON, numbering (Binance ``U``/``u`` and trade ids, Coinbase ``trade_id`` and ``sequence``, all per
product) and decimal strings. Binance: a book change is a ``depthUpdate`` (one update id), a trade
is a ``trade`` and an ``aggTrade`` frame. Coinbase: a book change is an ``l2update``, a trade a
``match``. The initial book is a snapshot (Binance: only the server's book, served by REST depth at
``lastUpdateId`` 0; Coinbase: a ``snapshot`` frame on the level-2 channel).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rrr_live.exchange.tape import (
    BOOK_ONLY,
    DEPTH,
    LEVEL2,
    MATCHES,
    InstrumentSpec,
    PriceSize,
    ProtocolName,
    TapeEvent,
)
from rrr_live.exchange.venue import iso_time

Levels = Sequence[tuple[int, int]]  # (price_ticks, size_lots); size 0 deletes


class _Scaled:
    """Integer multiples of an increment as decimal strings, cached (prices repeat a lot)."""

    __slots__ = ("_cache", "_mantissa", "_places")

    def __init__(self, increment: Decimal) -> None:
        _sign, digits, exponent = increment.normalize().as_tuple()
        assert isinstance(exponent, int)
        self._places = max(0, -exponent)
        self._mantissa = int("".join(map(str, digits))) * 10 ** max(0, exponent)
        self._cache: dict[int, tuple[str, bytes]] = {}

    def __call__(self, units: int) -> str:
        return self.both(units)[0]

    def both(self, units: int) -> tuple[str, bytes]:
        """The decimal string of ``units`` increments, as str and as bytes."""
        found = self._cache.get(units)
        if found is None:
            scaled = str(units * self._mantissa)
            if self._places:
                scaled = scaled.rjust(self._places + 1, "0")
                scaled = f"{scaled[: -self._places]}.{scaled[-self._places :]}"
            found = self._cache[units] = (scaled, scaled.encode())
        return found


class _Symbol:
    __slots__ = ("price", "seq", "size", "spec", "trade_id", "wire")

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.wire = spec.symbol.encode()
        self.price = _Scaled(spec.tick)
        self.size = _Scaled(spec.lot)
        self.seq = 0
        self.trade_id = 0


class TickEncoder:
    """Encode neutral ticks for one venue.

    Args:
        protocol: ``binance`` or ``coinbase``.
        instruments: the instruments (tick and lot sizes) by symbol.
    """

    def __init__(self, protocol: ProtocolName, instruments: Sequence[InstrumentSpec]) -> None:
        self.protocol = protocol
        self._symbols = {spec.symbol: _Symbol(spec) for spec in instruments}

    def _pairs(self, sym: _Symbol, levels: Levels) -> tuple[tuple[PriceSize, ...], list[bytes]]:
        """Levels as (price, size) strings for the server's book, and as JSON ``["p","s"]``."""
        price, size = sym.price, sym.size
        prices, sizes = price._cache, size._cache  # hot path: skip the method call on a hit
        pairs: list[PriceSize] = []
        json: list[bytes] = []
        for p, s in levels:
            ps, pb = prices.get(p) or price.both(p)
            ss, sb = sizes.get(s) or size.both(s)
            pairs.append((ps, ss))
            json.append(b'["%b","%b"]' % (pb, sb))
        return tuple(pairs), json

    def snapshot(self, symbol: str, ts_ns: int, bids: Levels, asks: Levels) -> TapeEvent:
        """The initial book of ``symbol``."""
        sym = self._symbols[symbol]
        (b, jb), (a, ja) = self._pairs(sym, bids), self._pairs(sym, asks)
        if self.protocol == "binance":
            return TapeEvent(ts_ns, symbol, BOOK_ONLY, b"", b, a, snapshot=True)
        body = b'{"type":"snapshot","product_id":"%b","bids":[%b],"asks":[%b]}' % (
            sym.wire,
            b",".join(jb),
            b",".join(ja),
        )
        return TapeEvent(ts_ns, symbol, LEVEL2, body, b, a, snapshot=True)

    def book(
        self, symbol: str, ts_ns: int, bids: Levels, asks: Levels, closes_bar: int = 0
    ) -> TapeEvent:
        """A change of some levels (absolute sizes; 0 deletes)."""
        sym = self._symbols[symbol]
        (b, jb), (a, ja) = self._pairs(sym, bids), self._pairs(sym, asks)
        if self.protocol == "binance":
            sym.seq += 1
            body = (
                b'{"e":"depthUpdate","E":%d,"s":"%b","U":%d,"u":%d,"b":[%b],"a":[%b]}'
                % (ts_ns // 1_000_000, sym.wire, sym.seq, sym.seq, b",".join(jb), b",".join(ja))
            )  # fmt: skip
            return TapeEvent(ts_ns, symbol, DEPTH, body, b, a, False, sym.seq, sym.seq, closes_bar)
        changes = [b'["buy",' + j[1:] for j in jb] + [b'["sell",' + j[1:] for j in ja]
        body = b'{"type":"l2update","product_id":"%b","changes":[%b],"time":"%b"}' % (
            sym.wire, b",".join(changes), iso_time(ts_ns).encode(),
        )  # fmt: skip
        return TapeEvent(ts_ns, symbol, LEVEL2, body, b, a, closes_bar=closes_bar)

    def trade(
        self, symbol: str, ts_ns: int, price: int, lots: int, buyer_maker: bool, closes_bar: int = 0
    ) -> list[TapeEvent]:
        """A trade of ``lots`` at ``price`` ticks (``buyer_maker``: the seller took liquidity)."""
        sym = self._symbols[symbol]
        sym.trade_id += 1
        p, q = sym.price.both(price)[1], sym.size.both(lots)[1]
        ms, maker = ts_ns // 1_000_000, b"true" if buyer_maker else b"false"
        if self.protocol == "binance":
            tid = sym.trade_id
            trade = b'{"e":"trade","E":%d,"s":"%b","t":%d,"p":"%b","q":"%b","T":%d,"m":%b,"M":true}'
            agg = b'{"e":"aggTrade","E":%d,"s":"%b","a":%d,"p":"%b","q":"%b","f":%d,"l":%d,"T":%d,"m":%b,"M":true}'  # noqa: E501
            return [
                TapeEvent(ts_ns, symbol, "trade", trade % (ms, sym.wire, tid, p, q, ms, maker),
                          closes_bar=closes_bar),
                TapeEvent(ts_ns, symbol, "aggTrade",
                          agg % (ms, sym.wire, tid, p, q, tid, tid, ms, maker)),
            ]  # fmt: skip
        sym.seq += 1
        side = b"sell" if buyer_maker else b"buy"  # Coinbase: the maker's side
        body = (
            b'{"type":"match","trade_id":%d,"sequence":%d,"maker_order_id":"m%d",'
            b'"taker_order_id":"t%d","side":"%b","size":"%b","price":"%b",'
            b'"product_id":"%b","time":"%b"}'
            % (sym.trade_id, sym.seq, sym.trade_id, sym.trade_id, side, q, p, sym.wire,
               iso_time(ts_ns).encode())
        )  # fmt: skip
        event = TapeEvent(ts_ns, symbol, MATCHES, body, closes_bar=closes_bar)
        event.last_seq = sym.trade_id
        return [event]
