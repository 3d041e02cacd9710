"""The pure exposure/drawdown rules the risk engine and the ledger share, and external REDUCING."""

from __future__ import annotations

import numpy as np

from rrr_live.portfolio.portfolio import Portfolio
from rrr_live.risk.limits import RiskEngine, RiskLimits
from rrr_live.risk.reasons import DenyReason
from rrr_live.risk.rules import check_aggregate, drawdown_hit, exposure_deltas, not_reducing
from rrr_live.risk.state import TradingState

R = DenyReason


def test_exposure_deltas_reductions_flips_and_growth() -> None:
    pos = np.array([10.0, 10.0, -5.0, 0.0])
    qty = np.array([-4.0, -15.0, -5.0, 3.0])
    d_gross, d_net = exposure_deltas(pos, qty, np.array([2.0, 2.0, 10.0, 1.0]))
    assert d_gross.tolist() == [-8.0, -10.0, 50.0, 3.0]
    assert d_net.tolist() == [-8.0, -30.0, -50.0, 3.0]
    assert not_reducing(pos, qty).tolist() == [False, True, True, True]


def test_drawdown_hit_at_the_limit_and_without_a_mark() -> None:
    assert drawdown_hit(95.0, 100.0, 0.05)
    assert not drawdown_hit(95.01, 100.0, 0.05)
    assert drawdown_hit(1.0, 0.0, 0.5)  # no positive high-water mark: fail closed


def test_check_aggregate_denies_in_order_with_the_given_codes() -> None:
    codes = np.array([0, 0, 0, R.RATE], dtype=np.int8)
    d_gross = np.array([60.0, 50.0, -30.0, 999.0])
    d_net = np.array([60.0, 50.0, -30.0, 999.0])
    check_aggregate(codes, d_gross, d_net, 0.0, 0.0, 100.0, 1e9,
                    R.PORTFOLIO_GROSS, R.PORTFOLIO_NET)  # fmt: skip
    # the second would pass 100; the reduction is never denied; an earlier denial is kept
    assert codes.tolist() == [0, R.PORTFOLIO_GROSS, 0, R.RATE]
    codes = np.zeros(3, dtype=np.int8)
    check_aggregate(codes, np.array([10.0, 10.0, 10.0]), np.array([-10.0, -10.0, 10.0]),
                    0.0, -85.0, 1e9, 100.0)  # fmt: skip
    assert codes.tolist() == [0, R.NET, 0]  # the short past -100 is denied, the long shrinks |net|


def test_external_reason_makes_the_engine_reducing_until_cleared() -> None:
    port = Portfolio(["X"], 1000.0)
    port.mark_symbol("X", 10.0)
    port.apply_fills(np.array([0]), np.array([5]), np.array([10.0]), np.array([0.0]))
    risk = RiskEngine(RiskLimits(), port)
    assert risk.set_external(1, "risk ledger unreachable") is TradingState.REDUCING
    assert risk.machine.history[-1].reason == "risk ledger unreachable"
    assert risk.on_mark(2) is TradingState.REDUCING  # stays while the reason stands
    buy_sell = risk.check_batch(3, np.array([0]), np.array([1.0]), np.array([10.0]))
    assert buy_sell.tolist() == [R.REDUCING_ONLY]
    assert risk.check("X", -2.0, 10.0, 3).ok
    assert risk.set_external(4, None) is TradingState.ACTIVE
    assert risk.check("X", 1.0, 10.0, 5).ok
