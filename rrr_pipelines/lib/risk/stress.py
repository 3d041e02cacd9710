"""Stress tests of a portfolio of position values: historical, hypothetical and reverse.

Positions are a ``dict[str, float]`` of currency values per symbol (negative = short). Returns
are percent returns (``100 * pct_change``), one column per symbol.

Every stress here is **static**: the positions are held fixed (no rebalancing, no stop, no
drawdown halt) through the scenario, and the scenario's cumulative move hits them at once. A
historical scenario applies each symbol's compounded return over its window (buy-and-hold of
the quantities, i.e. the position value moves with the price) to today's position, however
long the window is: the dot-com scenario is the whole 2000-03-24 .. 2002-10-09 fall. A strategy
that rebalances daily could trade out of a slow crisis; a static stress deliberately does not
credit it for that. :func:`stress_summary` is the one place that assembles the scenario set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from rrr_live.risk.ewma import RiskInputError
from rrr_live.risk.var import check_alpha, norm_pdf, norm_ppf


@dataclass(frozen=True)
class NamedScenario:
    """A dated crisis: P&L from the close of ``start`` to the close of ``end``."""

    name: str
    start: str
    end: str


NAMED_CRISES: tuple[NamedScenario, ...] = (
    NamedScenario("Black Monday 1987", "1987-10-13", "1987-10-19"),
    NamedScenario("Dot-com crash 2000-02", "2000-03-24", "2002-10-09"),
    NamedScenario("September 2001", "2001-09-10", "2001-09-21"),
    NamedScenario("WorldCom July 2002", "2002-07-01", "2002-07-23"),
    NamedScenario("Autumn 2008 (Lehman)", "2008-09-12", "2008-11-20"),
    NamedScenario("Flash crash May 2010", "2010-05-05", "2010-05-06"),
    NamedScenario("US downgrade Aug 2011", "2011-07-22", "2011-08-08"),
    NamedScenario("China devaluation Aug 2015", "2015-08-17", "2015-08-25"),
    NamedScenario("Volmageddon Feb 2018", "2018-01-26", "2018-02-08"),
    NamedScenario("Q4 2018 sell-off", "2018-09-20", "2018-12-24"),
    NamedScenario("COVID crash 2020", "2020-02-19", "2020-03-23"),
)


def position_vector(positions: Mapping[str, float], returns: pd.DataFrame) -> pd.Series:
    """Positions aligned to the return columns.

    Raises:
        RiskInputError: if the portfolio is empty, a value is not finite, or a symbol has no
            returns.
    """
    if not positions:
        raise RiskInputError("portfolio has no positions")
    missing = sorted(set(positions) - {str(c) for c in returns.columns})
    if missing:
        raise RiskInputError(f"no returns for symbol(s) {missing}")
    pos = pd.Series({str(k): float(v) for k, v in positions.items()}, dtype="float64")
    if not np.isfinite(pos.to_numpy()).all():
        raise RiskInputError("positions must be finite numbers")
    return pos


def _compound(returns_pct: pd.DataFrame) -> pd.Series:
    return np.expm1(np.log1p(returns_pct / 100.0).sum())


def historical_scenarios(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    scenarios: tuple[NamedScenario, ...] = NAMED_CRISES,
) -> pd.DataFrame:
    """P&L of the portfolio in each named crisis the data covers; the others are marked.

    Returns:
        One row per scenario: ``scenario``, ``start``, ``end``, ``covered``, ``days`` (return
        days in the window, 0 when not covered), ``pnl`` (NaN when not covered), ``pnl_pct`` of
        gross exposure, and a ``pnl[SYMBOL]`` column per symbol.
    """
    pos = position_vector(positions, returns)
    sub = returns[pos.index]
    gross = float(pos.abs().sum())
    rows = []
    for sc in scenarios:
        start, end = pd.Timestamp(sc.start, tz="UTC"), pd.Timestamp(sc.end, tz="UTC")
        window = sub.loc[(sub.index > start) & (sub.index <= end)].dropna()
        covered = bool(sub.index[0] <= start and sub.index[-1] >= end and len(window) > 0)
        per = _compound(window) * pos if covered else pos * np.nan
        pnl = float(per.sum()) if covered else math.nan
        row = {"scenario": sc.name, "start": sc.start, "end": sc.end, "covered": covered}
        row |= {"days": len(window) if covered else 0}
        row |= {"pnl": pnl, "pnl_pct": 100 * pnl / gross if gross else 0.0}
        row |= {f"pnl[{s}]": float(v) for s, v in per.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def worst_windows(
    returns: pd.DataFrame, positions: Mapping[str, float], days: int, count: int = 5
) -> pd.DataFrame:
    """The ``count`` worst non-overlapping ``days``-day windows for the portfolio in the data.

    Returns:
        Rows with ``start`` (the close before the window), ``end``, ``pnl`` and ``pnl_pct``,
        worst first.
    """
    if days < 1 or count < 1:
        raise RiskInputError(f"days and count must be >= 1, got days={days}, count={count}")
    pos = position_vector(positions, returns)
    logs = np.log1p(returns[pos.index].dropna() / 100.0)
    if len(logs) < days:
        raise RiskInputError(f"{len(logs)} days of returns; fewer than the {days}-day window")
    summed = logs.rolling(days).sum().iloc[days - 1 :]
    pnl = (np.expm1(summed) * pos).sum(axis=1).to_numpy()
    order = np.argsort(pnl, kind="stable")
    taken: list[int] = []
    for i in order:
        if all(abs(int(i) - j) >= days for j in taken):
            taken.append(int(i))
            if len(taken) == count:
                break
    gross = float(pos.abs().sum())
    idx = logs.index
    return pd.DataFrame(
        {
            "scenario": [f"worst {days}-day #{k + 1}" for k in range(len(taken))],
            "start": [idx[i - 1].date().isoformat() if i > 0 else "" for i in taken],
            "end": [idx[i + days - 1].date().isoformat() for i in taken],
            "pnl": [float(pnl[i]) for i in taken],
            "pnl_pct": [100 * float(pnl[i]) / gross if gross else 0.0 for i in taken],
        }
    )


def equity_shock(
    positions: Mapping[str, float], shock: float = -0.20, equities: set[str] | None = None
) -> float:
    """P&L of a uniform relative price shock (``-0.20`` = -20 %) to the equity positions."""
    names = set(positions) if equities is None else equities
    return float(sum(v for k, v in positions.items() if k in names) * shock)


def stressed_normal_var(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    alpha: float = 0.01,
    vol_mult: float = 1.0,
    corr_to_one: bool = False,
) -> tuple[float, float]:
    """Zero-mean normal VaR and ES (currency) of the portfolio under a covariance stress.

    The sample covariance of the returns is rebuilt as ``D C D`` with volatilities ``D`` times
    ``vol_mult`` and, with ``corr_to_one``, every correlation set to 1.
    """
    alpha = check_alpha(alpha)
    if vol_mult < 0:
        raise RiskInputError(f"vol_mult must be >= 0, got {vol_mult}")
    pos = position_vector(positions, returns)
    sub = returns[pos.index].dropna() / 100.0
    if len(sub) < 2:
        raise RiskInputError("need at least 2 days of returns for a covariance")
    cov = np.atleast_2d(sub.cov().to_numpy())
    base_sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(base_sd, base_sd)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 1.0)
    if corr_to_one:
        corr = np.ones_like(cov)
    sd = base_sd * vol_mult
    w = pos.to_numpy()
    sigma = math.sqrt(max(float(w @ (corr * np.outer(sd, sd)) @ w), 0.0))
    z = norm_ppf(alpha)
    return -sigma * z, sigma * norm_pdf(z) / alpha


def reverse_stress(
    loss_at: Callable[[float], float], limit: float, upper: float = 100.0
) -> float | None:
    """Smallest scale ``k`` in ``[0, upper]`` with ``loss_at(k) >= limit`` (loss non-decreasing).

    Returns:
        ``k``, ``0.0`` if the limit is already breached, or ``None`` if not even ``upper`` does.
    """
    if loss_at(0.0) >= limit:
        return 0.0
    if loss_at(upper) < limit:
        return None
    return float(optimize.brentq(lambda k: loss_at(k) - limit, 0.0, upper, xtol=1e-12))


def reverse_stress_table(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    limit: float,
    alpha: float = 0.01,
) -> pd.DataFrame:
    """Shock sizes that make the loss reach ``limit`` (currency) for three stress directions.

    * uniform equity move: the relative price fall (short books: rise) that loses ``limit``;
    * volatility multiplier: the factor on all volatilities that lifts normal VaR to ``limit``;
    * worst historical day scaled: the multiple of the portfolio's worst day that loses ``limit``.
    """
    if not limit > 0:
        raise RiskInputError(f"loss limit must be > 0, got {limit}")
    exposure = float(sum(positions.values()))
    direction = -1.0 if exposure >= 0 else 1.0
    move = reverse_stress(lambda k: -equity_shock(positions, direction * k), limit, upper=10.0)
    var1 = stressed_normal_var(returns, positions, alpha)[0]
    vol = reverse_stress(lambda k: var1 * k, limit, upper=1e6)
    worst = worst_windows(returns, positions, days=1, count=1)["pnl"].iloc[0]
    hist = reverse_stress(lambda k: -worst * k, limit, upper=1e6) if worst < 0 else None
    return pd.DataFrame(
        {
            "stress": ["uniform equity move", "volatility multiplier", "worst day multiple"],
            "shock_to_breach": [
                None if move is None else direction * move,
                vol,
                hist,
            ],
            "limit": [limit] * 3,
        }
    )


WORST_WINDOW_DAYS: tuple[int, ...] = (1, 5, 20)
WORST_WINDOWS_PER_LENGTH = 3
EQUITY_SHOCKS: tuple[float, ...] = (-0.20, 0.20)


@dataclass(frozen=True)
class StressSummary:
    """Every stress scenario of one portfolio, and the worst of them.

    Attributes:
        historical: :func:`historical_scenarios` (covered and not covered named crises).
        worst_windows: :func:`worst_windows` for each window length, concatenated.
        hypothetical: Uniform equity moves and the stressed normal VaR rows (``pnl`` = -loss).
        table: The scenarios that count: ``scenario``, ``kind`` (``historical`` / ``window`` /
            ``hypothetical``), ``pnl`` and ``pnl_pct`` (of gross exposure).
        worst_loss: ``-min(pnl)`` over ``table``, floored at 0 (a loss, in currency).
        worst_scenario: The scenario of that loss.
        base_var_99_1d_normal: Unstressed zero-mean normal 99 % 1-day VaR (currency).
    """

    historical: pd.DataFrame
    worst_windows: pd.DataFrame
    hypothetical: pd.DataFrame
    table: pd.DataFrame
    worst_loss: float
    worst_scenario: str
    base_var_99_1d_normal: float


def hypothetical_shocks(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    shocks: tuple[float, ...] = EQUITY_SHOCKS,
) -> pd.DataFrame:
    """Uniform equity moves (both directions: a short book loses in a rally) and VaR stresses.

    The VaR rows are the 99 % 1-day zero-mean normal VaR with volatilities x 2, correlations
    set to 1, and both, entered as a P&L of ``-VaR``.
    """
    names = [f"equity {100 * s:+.0f} %" for s in shocks]
    pnl = [equity_shock(positions, s) for s in shocks]
    for label, mult, one in (("vol x2", 2.0, False), ("corr -> 1", 1.0, True),
                             ("vol x2 corr 1", 2.0, True)):  # fmt: skip
        names.append(f"VaR99 {label}")
        pnl.append(-stressed_normal_var(returns, positions, 0.01, mult, corr_to_one=one)[0])
    return pd.DataFrame({"scenario": names, "pnl": pnl})


def stress_summary(
    returns: pd.DataFrame,
    positions: Mapping[str, float],
    *,
    scenarios: tuple[NamedScenario, ...] = NAMED_CRISES,
    window_days: tuple[int, ...] = WORST_WINDOW_DAYS,
    windows_per_length: int = WORST_WINDOWS_PER_LENGTH,
) -> StressSummary:
    """All static stresses of ``positions`` and the worst loss among them.

    The scenario set: the named crises the returns cover (cumulative move over each window),
    the ``windows_per_length`` worst non-overlapping windows of each length in
    ``window_days`` (default 1, 5 and 20 days) found in the whole return history, and
    :func:`hypothetical_shocks`. Used by the ``stress_report`` asset and by the promotion
    gate's risk figures, so both show the same number for the same book.

    Raises:
        RiskInputError: if the portfolio is empty or names a symbol without returns.
    """
    pos = position_vector(positions, returns)
    gross = float(pos.abs().sum())
    hist = historical_scenarios(returns, positions, scenarios)
    worst = pd.concat(
        [worst_windows(returns, positions, d, windows_per_length) for d in window_days],
        ignore_index=True,
    )
    hypo = hypothetical_shocks(returns, positions)
    covered = hist[hist["covered"]]
    table = pd.concat(
        [
            covered[["scenario", "pnl"]].assign(kind="historical"),
            worst[["scenario", "pnl"]].assign(kind="window"),
            hypo[["scenario", "pnl"]].assign(kind="hypothetical"),
        ],
        ignore_index=True,
    )[["scenario", "kind", "pnl"]]
    table["pnl_pct"] = 100 * table["pnl"] / gross if gross else 0.0
    at = int(table["pnl"].to_numpy().argmin())
    return StressSummary(
        hist,
        worst,
        hypo,
        table,
        max(0.0, float(-table["pnl"].iloc[at])),
        str(table["scenario"].iloc[at]),
        float(stressed_normal_var(returns, positions, 0.01)[0]),
    )
