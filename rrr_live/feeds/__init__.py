"""Market-data feeds: wire schemas, parsers to normalized events, reconnecting adapters.

This is async shell code: it may use asyncio, websockets and httpx. The parsers and the
Binance depth synchroniser are plain functions and classes so they test without a socket.
"""
