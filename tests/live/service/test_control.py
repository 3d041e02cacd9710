"""Control API on loopback: bearer token, halt stops orders, secrets never shown."""

from __future__ import annotations

import logging

import httpx
import numpy as np
import pytest

from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.reasons import DenyReason
from rrr_live.service.control import ControlConfigError, ControlServer, risk_handlers
from rrr_live.strategy.decision import DecisionBatch, DecisionStep, OpenOrders
from rrr_live.strategy.sizing import Strategy, StrategyConfig

TOKEN = "s3cr3t-token-value"


def _step() -> DecisionStep:
    port = Portfolio(["A", "B"], 10_000.0)
    return DecisionStep(Strategy(StrategyConfig()), RiskEngine(RiskLimits(), port), port,
                        np.zeros(2))  # fmt: skip


def _batch(t: int) -> DecisionBatch:
    return DecisionBatch(t, np.array([0, 1]), np.array([10.0, 20.0]), np.array([0.5, -0.5]))


@pytest.mark.asyncio
async def test_halt_ack_stops_orders_and_tokens_are_checked(caplog):
    caplog.set_level(logging.DEBUG)
    step = _step()
    now = [1_000]
    server = ControlServer(
        risk_handlers(step.risk, lambda: now[0], lambda: {"state": step.risk.state.value}), TOKEN
    )
    await server.start()
    assert server.host == "127.0.0.1"
    base = f"http://127.0.0.1:{server.port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5.0) as h:
            assert (await h.get("/health")).json() == {"ok": True}
            assert (await h.get("/status")).status_code == 401
            wrong = {"Authorization": "Bearer s3cr3t-token-valuf"}
            assert (await h.post("/halt", headers=wrong)).status_code == 401
            assert (await h.get("/status", headers=auth)).json() == {"state": "active"}
            first = step.run(_batch(1_000), OpenOrders.empty(2))
            assert len(first.sym) == 2 and (first.codes == DenyReason.OK).all()

            r = await h.post("/halt", headers=auth)
            assert r.json() == {"state": "halted"}
            halted = step.run(_batch(2_000), OpenOrders.empty(2))
            assert len(halted.sym) == 0  # after the acknowledgement nothing is ordered

            now[0] = 3_000
            assert (await h.post("/resume", headers=auth)).json()["state"] == "active"
            assert (await h.get("/halt", headers=auth)).status_code == 405
            assert (await h.post("/nope", headers=auth)).status_code == 404
            assert (await h.post("/flatten", headers=auth)).json() == {"state": "halted"}
            assert step.risk.flatten_pending
    finally:
        await server.close()
    assert TOKEN not in caplog.text and TOKEN not in repr(server)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_non_loopback_without_token_is_refused(host):
    step = _step()
    handlers = risk_handlers(step.risk, lambda: 0, dict)
    with pytest.raises(ControlConfigError, match="needs a token"):
        ControlServer(handlers, None, host=host)
    ControlServer(handlers, None)  # loopback without a token: allowed (commands all 401)
