"""The paper venue: Binance's spot order API inside the replay exchange (same port and clock).

:mod:`~rrr_live.exchange.paper.auth` checks HMAC-SHA256 signatures and timestamps,
:mod:`~rrr_live.exchange.paper.account` keeps orders, balances and trades over the one venue
simulation (:class:`~rrr_live.execution.venue.SimulatedVenue`) fed from the replayed tape,
:mod:`~rrr_live.exchange.paper.rest` answers the REST routes with Binance's error codes and rate
limits, :mod:`~rrr_live.exchange.paper.userdata` pushes ``executionReport`` and
``outboundAccountPosition`` on the WebSocket API (``/ws-api/v3``).
"""
