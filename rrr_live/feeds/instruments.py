"""Instrument metadata (tick, lot, minimum notional) from the venues' REST endpoints.

Coinbase ``/products`` and Binance ``/api/v3/exchangeInfo``, parsed from the venue's own JSON
and fetched with httpx.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import httpx
import msgspec

from rrr_live.domain.errors import InstrumentError
from rrr_live.domain.instrument import Instrument
from rrr_live.feeds.errors import FatalFeedError, FeedError

HTTP_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class CoinbaseProduct(msgspec.Struct):
    """One entry of Coinbase ``GET /products`` (fields we use; others ignored)."""

    id: str
    quote_currency: str
    quote_increment: str
    base_increment: str
    min_market_funds: str = "0"


class BinanceFilter(msgspec.Struct):
    """One symbol filter of Binance ``exchangeInfo`` (price, lot and notional fields)."""

    filterType: str
    tickSize: str = ""
    stepSize: str = ""
    minNotional: str = ""


class BinanceSymbol(msgspec.Struct):
    """One symbol of Binance ``exchangeInfo``."""

    symbol: str
    status: str
    quoteAsset: str
    filters: list[BinanceFilter]
    baseAssetPrecision: int = 8
    quoteAssetPrecision: int = 8


class BinanceExchangeInfo(msgspec.Struct):
    """Binance ``GET /api/v3/exchangeInfo`` (the symbols; rate limits are not used here)."""

    symbols: list[BinanceSymbol]


def _dec(text: str, what: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as e:
        raise FeedError(f"{what}: {text!r} is not a decimal") from e


def coinbase_instruments(raw: bytes | str) -> dict[str, Instrument]:
    """Parse a Coinbase ``/products`` response into instruments keyed by product id.

    Raises:
        FeedError: if the response is not the documented shape.
    """
    try:
        products = msgspec.json.decode(raw, type=list[CoinbaseProduct])
        return {
            p.id: Instrument.create(
                p.id,
                _dec(p.quote_increment, p.id),
                _dec(p.base_increment, p.id),
                _dec(p.min_market_funds or "0", p.id),
                p.quote_currency,
            )
            for p in products
        }
    except (msgspec.DecodeError, InstrumentError) as e:
        raise FeedError(f"unreadable Coinbase /products response: {e}") from e


def binance_instruments(raw: bytes | str, grid: str = "book") -> dict[str, Instrument]:
    """Parse a Binance ``exchangeInfo`` response into instruments keyed by symbol.

    ``grid="order"`` takes tick and lot from ``PRICE_FILTER``/``LOT_SIZE`` (what an order must
    respect). ``grid="book"`` (market data) uses the assets' precision instead: resting levels
    placed before a filter change stay off the current filter grid (the recorded NKNUSDT
    snapshot has 34 prices and 49 sizes off it), and a book must hold them exactly.
    Symbols without a ``PRICE_FILTER`` or ``LOT_SIZE`` are skipped (not tradable here).

    Raises:
        FeedError: if the response is not the documented shape.
    """
    try:
        info = msgspec.json.decode(raw, type=BinanceExchangeInfo)
    except msgspec.DecodeError as e:
        raise FeedError(f"unreadable Binance exchangeInfo response: {e}") from e
    out: dict[str, Instrument] = {}
    for s in info.symbols:
        f = {x.filterType: x for x in s.filters}
        if "PRICE_FILTER" not in f or "LOT_SIZE" not in f:
            continue
        notional = f.get("MIN_NOTIONAL") or f.get("NOTIONAL")
        try:
            tick, lot = (
                _dec(f["PRICE_FILTER"].tickSize, s.symbol),
                _dec(f["LOT_SIZE"].stepSize, s.symbol),
            )
            if grid == "book":
                tick, lot = (
                    Decimal(1).scaleb(-s.quoteAssetPrecision),
                    Decimal(1).scaleb(-s.baseAssetPrecision),
                )
            out[s.symbol] = Instrument.create(
                s.symbol,
                tick,
                lot,
                _dec(notional.minNotional if notional and notional.minNotional else "0", s.symbol),
                s.quoteAsset,
            )
        except InstrumentError as e:
            raise FeedError(f"Binance exchangeInfo: {e}") from e
    return out


async def fetch_json(
    client: httpx.AsyncClient, path: str, params: dict[str, str] | None = None
) -> bytes:
    """GET ``path`` and return the body; 4xx is fatal, transport errors and 5xx retryable.

    Raises:
        FatalFeedError: on a 4xx answer (other than 429).
        FeedError: on a transport error or a 5xx/429 answer.
    """
    try:
        resp = await client.get(path, params=params)
    except httpx.TransportError as e:
        raise FeedError(f"GET {path}: {type(e).__name__}: {e}") from e
    if resp.status_code == 429 or resp.status_code >= 500:
        raise FeedError(f"GET {path}: HTTP {resp.status_code}")
    if resp.status_code >= 400:
        raise FatalFeedError(f"GET {path}: HTTP {resp.status_code}: {resp.text[:200]}")
    return resp.content


async def fetch_instruments(venue: str, rest_url: str) -> dict[str, Instrument]:
    """Fetch and parse the venue's instrument list from ``rest_url``.

    Raises:
        FeedError: if it cannot be fetched or read.
    """
    async with httpx.AsyncClient(base_url=rest_url, timeout=HTTP_TIMEOUT) as client:
        if venue == "coinbase":
            return coinbase_instruments(await fetch_json(client, "/products"))
        if venue == "binance":
            return binance_instruments(await fetch_json(client, "/api/v3/exchangeInfo"))
    raise FatalFeedError(f"unknown venue {venue!r} (coinbase or binance)")
