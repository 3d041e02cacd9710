"""Synthetic universe for scale: N symbols tied by a factor model, always labelled ``synthetic``.

Model, per bar ``t`` and symbol ``i`` (all shocks unit-variance Student-t with ``df`` degrees):

* shocks are truncated at ±12 standard deviations;
* factor ``k`` return ``s_k,t f_k,t`` and idiosyncratic return ``s_i,t e_i,t``, each with its own
  GARCH(1,1) variance ``s² = ω + (α z² + β) s²`` (``ω = 1 - α - β`` so the long-run variance is 1);
* standardized return ``x_i,t = Σ_k B_ik s_k,t f_k,t + sqrt(1 - |B_i|²) s_i,t e_i,t`` so
  ``corr(x_i, x_j) = (B Bᵀ)_ij`` — the configured factor correlations;
* a market-wide two-state Markov regime (calm / turbulent) multiplies volatility by
  ``regime_vol`` in the turbulent state; switch probabilities are per bar;
* log return ``r_i,t = vol_bar_i · m_t · x_i,t``; OHLC built consistently, volume > 0.

Determinism and consistency: the path is cut into chunks (one UTC day for intraday bars, one
calendar year for daily bars), each generated from ``SeedSequence([seed, chunk])``; chunk start
prices come from a coarse anchor path cumulated from ``origin``, and each chunk is bridged onto its
anchors, so any window gives the same bars for the same timestamps and the same seed gives
identical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from rrr_live.domain.bars import interval_ns
from rrr_pipelines.lib.quality.calendar_gaps import ALWAYS_OPEN, expected_timestamps
from rrr_pipelines.lib.sources.base import SourceError, SourceInstrument, empty_bars, require_aware

_NS_DAY = 86_400 * 1_000_000_000
_GARCH_BLOCK = 512  # steps per closed-form block of the variance recursion (keeps products finite)
_ANCHOR_TAG = 7_777
_MAX_SHOCK = 12.0  # standardized shocks are truncated at ±12 sd (absurd one-bar moves otherwise)


@dataclass(frozen=True)
class SyntheticPaths:
    """Raw simulated paths for ``n_bars`` x ``n_symbols`` (time-major arrays)."""

    log_returns: np.ndarray  # (T, N)
    sigma: np.ndarray  # (T, N) per-bar volatility of the log return (incl. regime)
    regimes: np.ndarray  # (T,) 0 = calm, 1 = turbulent


def default_loadings(n_symbols: int, n_factors: int, rng: np.random.Generator) -> np.ndarray:
    """Return a market factor plus sector factors: ``B[:, 0] ~ U(0.4, 0.7)``, sector 0.35.

    Args:
        n_symbols: Universe size.
        n_factors: Number of factors (1 = market only).
        rng: Generator for the market loadings.
    """
    loadings = np.zeros((n_symbols, n_factors))
    loadings[:, 0] = rng.uniform(0.4, 0.7, n_symbols)
    if n_factors > 1:
        sector = np.arange(n_symbols) % (n_factors - 1)
        loadings[np.arange(n_symbols), 1 + sector] = 0.35
    return loadings


def _garch_variance(a: np.ndarray, omega: float, start: np.ndarray) -> np.ndarray:
    """Solve ``v_t = omega + a_{t-1} v_{t-1}`` for all t (v_0 = start), vectorized in blocks.

    Within a block, ``v_t = P_t (v_0 + omega Σ_{s<=t} 1/P_s)`` with ``P_t = Π_{u<t} a_u``.
    """
    n_steps = a.shape[0]
    out = np.empty_like(a)
    v0 = start.astype(np.float64)
    smallest = float(a.min()) if a.size else 1.0
    block_len = _GARCH_BLOCK
    if smallest < 1.0:  # keep Π a above 1e-200 so 1/P stays finite
        block_len = int(np.clip(-460.0 / np.log(max(smallest, 1e-300)), 1, _GARCH_BLOCK))
    for lo in range(0, n_steps, block_len):
        hi = min(lo + block_len, n_steps)
        block = a[lo:hi]
        prod = np.cumprod(np.vstack([np.ones((1, a.shape[1])), block[:-1]]), axis=0)
        out[lo:hi] = prod * (
            v0 + omega * np.cumsum(np.vstack([np.zeros((1, a.shape[1])), 1.0 / prod[1:]]), axis=0)
        )
        v0 = omega + block[-1] * out[hi - 1]
    return out


def _regime_path(rng: np.random.Generator, n: int, p_up: float, p_down: float) -> np.ndarray:
    """Two-state Markov chain via alternating geometric sojourns (vectorized)."""
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    stationary_turbulent = p_up / (p_up + p_down) if p_up + p_down > 0 else 0.0
    state = int(rng.random() < stationary_turbulent)
    path = np.empty(n, dtype=np.int8)
    filled = 0
    while filled < n:
        k = max(8, int(2 * n * max(p_up, p_down)) + 8)
        p_first, p_second = (p_down, p_up) if state else (p_up, p_down)
        lengths = np.empty(2 * k, dtype=np.int64)
        lengths[0::2] = rng.geometric(p_first, k) if p_first > 0 else n
        lengths[1::2] = rng.geometric(p_second, k) if p_second > 0 else n
        states = np.resize(np.array([state, 1 - state], dtype=np.int8), 2 * k)
        seq = np.repeat(states, lengths)[: n - filled]
        path[filled : filled + seq.size] = seq
        filled += seq.size
        state = int(1 - path[filled - 1]) if filled < n else state
    return path


@dataclass(frozen=True)
class SyntheticModel:
    """Parameters of the synthetic universe (see module docstring)."""

    n_symbols: int = 100
    n_factors: int = 3
    df: float = 5.0
    garch_alpha: float = 0.08
    garch_beta: float = 0.90
    regime_vol: float = 2.5
    p_calm_to_turbulent: float = 0.002
    p_turbulent_to_calm: float = 0.01
    seed: int = 0
    loadings: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        """Validate parameters; raise SourceError naming the bad one."""
        if not 1 <= self.n_symbols <= 5000:
            raise SourceError(f"synthetic n_symbols must be in 1..5000, got {self.n_symbols}")
        if self.df <= 2:
            raise SourceError(f"synthetic df must be > 2 for a finite variance, got {self.df}")
        if self.garch_alpha < 0 or self.garch_beta < 0 or self.garch_alpha + self.garch_beta >= 1:
            raise SourceError("synthetic GARCH needs alpha, beta >= 0 and alpha + beta < 1")
        for name in ("p_calm_to_turbulent", "p_turbulent_to_calm"):
            if not 0 <= getattr(self, name) <= 1:
                raise SourceError(f"synthetic {name} must be a probability")
        norms = np.linalg.norm(self.factor_loadings(), axis=1)
        if np.any(norms >= 1):
            raise SourceError("synthetic loadings need |B_i| < 1 for every symbol")

    def _static_rng(self) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 0]))

    def factor_loadings(self) -> np.ndarray:
        """Return B (n_symbols x n_factors)."""
        if self.loadings is not None:
            b = np.asarray(self.loadings, dtype=np.float64)
            if b.shape[0] != self.n_symbols:
                raise SourceError(f"loadings has {b.shape[0]} rows for {self.n_symbols} symbols")
            return b
        return default_loadings(self.n_symbols, self.n_factors, self._static_rng())

    def implied_correlation(self) -> np.ndarray:
        """Return the configured return correlation matrix ``B Bᵀ`` with a unit diagonal."""
        b = self.factor_loadings()
        corr = b @ b.T
        np.fill_diagonal(corr, 1.0)
        return np.asarray(corr, dtype=np.float64)

    def symbol_params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (annual volatility, start price, base volume) per symbol."""
        rng = self._static_rng()
        rng.uniform(size=self.n_symbols)  # skip the draw used by the default market loadings
        vol = rng.uniform(0.15, 0.60, self.n_symbols)
        price = np.exp(rng.uniform(np.log(5.0), np.log(500.0), self.n_symbols))
        volume = np.exp(rng.uniform(np.log(1e3), np.log(1e6), self.n_symbols))
        return vol, price, volume

    def simulate(self, n_bars: int, rng: np.random.Generator) -> SyntheticPaths:
        """Simulate standardized paths with unit long-run per-bar volatility.

        Args:
            n_bars: Number of bars.
            rng: Random generator (the only randomness used).
        """
        b = self.factor_loadings()
        n_fac, n_sym = b.shape[1], self.n_symbols
        scale = np.sqrt((self.df - 2.0) / self.df)
        z = rng.standard_t(self.df, size=(n_bars, n_fac + n_sym)) * scale
        np.clip(z, -_MAX_SHOCK, _MAX_SHOCK, out=z)
        omega = 1.0 - self.garch_alpha - self.garch_beta
        var = _garch_variance(self.garch_alpha * z * z + self.garch_beta, omega,
                              np.ones(n_fac + n_sym))  # fmt: skip
        shocks = np.sqrt(var) * z
        idio_w = np.sqrt(1.0 - np.sum(b * b, axis=1))
        x = shocks[:, :n_fac] @ b.T + shocks[:, n_fac:] * idio_w
        regimes = _regime_path(rng, n_bars, self.p_calm_to_turbulent, self.p_turbulent_to_calm)
        mult = np.where(regimes == 1, self.regime_vol, 1.0)
        # normalise the regime mix so the long-run per-bar variance stays 1
        p_turb = self.p_calm_to_turbulent / max(
            self.p_calm_to_turbulent + self.p_turbulent_to_calm, 1e-300
        )
        mult = mult / np.sqrt(1.0 + p_turb * (self.regime_vol**2 - 1.0))
        sigma = mult[:, None] * np.sqrt(var[:, :n_fac] @ (b.T**2) + var[:, n_fac:] * idio_w**2)
        return SyntheticPaths(log_returns=x * mult[:, None], sigma=sigma, regimes=regimes)


def _bars_per_year(interval: str, calendar: str) -> float:
    step_s = interval_ns(interval) / 1e9
    if calendar == ALWAYS_OPEN:
        return 365.0 * 86_400 / step_s
    return 252.0 if interval == "1d" else 252.0 * 23_400 / step_s


class SyntheticSource:
    """The synthetic universe as a :class:`~rrr_pipelines.lib.sources.base.BarSource`."""

    name = "synthetic"
    synthetic = True
    keeps_updating = False
    span: tuple[datetime, datetime] | None = None

    def __init__(
        self,
        n_symbols: int = 100,
        interval: str = "1d",
        seed: int = 0,
        calendar: str = ALWAYS_OPEN,
        symbols: list[str] | None = None,
        origin: datetime | None = None,
        **model_params: object,
    ) -> None:
        """Configure the universe.

        Args:
            n_symbols: Universe size, 1 … 5000 (symbols ``SYN0000`` …).
            interval: Bar interval (``1s`` … ``1d``).
            seed: Random seed; the same seed gives identical bars.
            calendar: ``"24/7"`` (crypto-style) or an exchange calendar (``"XNYS"``: 390 one-minute
                bars per session).
            symbols: Optional subset of the universe to return.
            origin: Where the price path starts (default 1990-01-01 for daily bars,
                2020-01-01 for intraday bars); windows before it are rejected.
            **model_params: Further :class:`SyntheticModel` fields (``df``, ``garch_alpha`` …).

        Raises:
            SourceError: for bad parameters.
        """
        try:
            self.step_ns = interval_ns(interval)
        except ValueError as e:
            raise SourceError(str(e)) from e
        if origin is None:
            origin = datetime(1990 if interval == "1d" else 2020, 1, 1, tzinfo=UTC)
        if origin.tzinfo is None:
            raise SourceError("synthetic origin must be tz-aware")
        try:
            self.model = SyntheticModel(n_symbols=n_symbols, seed=seed, **model_params)  # type: ignore[arg-type]
        except TypeError as e:
            raise SourceError(f"bad synthetic parameter: {e}") from e
        self.interval = interval
        self.calendar = calendar
        self.origin = pd.Timestamp(origin).tz_convert("UTC").as_unit("ns")
        self.universe = [f"SYN{i:04d}" for i in range(n_symbols)]
        unknown = sorted(set(symbols or []) - set(self.universe))
        if unknown:
            raise SourceError(f"synthetic universe of {n_symbols} has no symbols {unknown[:5]}")
        self.symbols = list(symbols) if symbols else list(self.universe)
        self.span_ns = 365 * _NS_DAY if interval == "1d" else _NS_DAY
        vol, self.start_price, self.base_volume = self.model.symbol_params()
        self.vol_bar = vol / np.sqrt(_bars_per_year(interval, calendar))

    def instruments(self) -> list[SourceInstrument]:
        """Return the synthetic symbols (asset class and source ``synthetic``)."""
        return [
            SourceInstrument(s, self.name, "synthetic", self.calendar, "USD",
                       f"synthetic factor-model symbol (seed {self.model.seed})")
            for s in self.symbols
        ]  # fmt: skip

    def _anchors(self, last_chunk: int) -> np.ndarray:
        """Log price at the start of chunks 0 … last_chunk + 1 (prefix-stable in ``last_chunk``)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.model.seed, _ANCHOR_TAG]))
        b = self.model.factor_loadings()
        z = rng.standard_normal((last_chunk + 1, b.shape[1] + self.model.n_symbols))
        x = z[:, : b.shape[1]] @ b.T + z[:, b.shape[1] :] * np.sqrt(1 - np.sum(b * b, axis=1))
        per_chunk = self.span_ns / self.step_ns
        if self.calendar != ALWAYS_OPEN:
            per_chunk = (
                _bars_per_year(self.interval, self.calendar) * self.span_ns / (365 * _NS_DAY)
            )
        steps = x * self.vol_bar * np.sqrt(per_chunk)
        start = np.log(self.start_price)[None, :]
        return np.vstack([start, start + np.cumsum(steps, axis=0)])

    def _chunk(self, k: int, anchors: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        lo = self.origin + pd.Timedelta(k * self.span_ns, unit="ns")
        hi = lo + pd.Timedelta(self.span_ns - 1, unit="ns")
        ts = expected_timestamps(self.calendar, self.interval, lo, hi)
        n = ts.size
        if n == 0:
            return ts, {}
        rng = np.random.default_rng(np.random.SeedSequence([self.model.seed, 1, k]))
        paths = self.model.simulate(n, rng)
        r = paths.log_returns * self.vol_bar
        r += (anchors[k + 1] - anchors[k] - r.sum(axis=0)) / n  # bridge onto the next anchor
        log_close = anchors[k] + np.cumsum(r, axis=0)
        close = np.exp(log_close)
        open_ = np.exp(np.vstack([anchors[k][None, :], log_close[:-1]]))
        sigma = paths.sigma * self.vol_bar
        wick = rng.exponential(0.5, size=(2, n, r.shape[1])) * sigma
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        noise = np.exp(0.5 * rng.standard_normal((n, r.shape[1])))
        volume = self.base_volume * noise * (1.0 + np.abs(r) / sigma)
        cols = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
        return ts, cols

    def fetch(self, start: datetime, end: datetime) -> pd.DataFrame:
        """Return bars with ``start <= ts < end`` sorted by (symbol, ts).

        Raises:
            SourceError: for naive datetimes or a window before ``origin``.
        """
        require_aware(self.name, start, end)
        lo, hi = pd.Timestamp(start).as_unit("ns"), pd.Timestamp(end).as_unit("ns")
        if lo < self.origin:
            raise SourceError(f"synthetic window starts {lo} before origin {self.origin}")
        if hi <= lo:
            return empty_bars()
        first = (lo - self.origin).value // self.span_ns
        last = ((hi - self.origin).value - 1) // self.span_ns
        anchors = self._anchors(int(last))
        stamps, parts = [], []
        for k in range(int(first), int(last) + 1):
            ts, cols = self._chunk(k, anchors)
            keep = (ts >= lo.value) & (ts < hi.value)
            if keep.any():
                stamps.append(ts[keep])
                parts.append({c: v[keep] for c, v in cols.items()})
        if not stamps:
            return empty_bars()
        return self._frame(np.concatenate(stamps), parts)

    def _frame(self, ts: np.ndarray, parts: list[dict[str, np.ndarray]]) -> pd.DataFrame:
        """Assemble the canonical frame, symbol-major, copying each float column once."""
        idx = np.array([self.universe.index(s) for s in self.symbols])
        whole = idx.size == len(self.universe)
        n_t, n_s = ts.size, idx.size
        n = n_t * n_s
        floats = ("open", "high", "low", "close", "adj_close", "volume")
        block = np.empty((len(floats), n))
        for j, col in enumerate(floats):
            src = "close" if col == "adj_close" else col
            target = block[j].reshape(n_s, n_t)
            offset = 0
            for part in parts:
                values = part[src] if whole else part[src][:, idx]
                target[:, offset : offset + values.shape[0]] = values.T
                offset += values.shape[0]
        frame = pd.DataFrame(block.T, columns=list(floats), copy=False)
        constant = np.zeros(n, dtype=np.intp)
        frame.insert(0, "source", _fixed_width_str([self.name], constant))
        frame.insert(1, "symbol", _fixed_width_str(self.symbols, np.repeat(np.arange(n_s), n_t)))
        frame.insert(2, "interval", _fixed_width_str([self.interval], constant))
        stamps = np.tile(ts, n_s).view("datetime64[ns]")
        frame.insert(3, "ts", pd.DatetimeIndex(stamps, tz="UTC", copy=False))
        return frame


def _fixed_width_str(names: list[str], codes: np.ndarray) -> pd.Series:
    """Build a pandas ``str`` column of ``names[codes]`` straight from Arrow buffers.

    ~50x faster than converting millions of Python strings; all ``names`` share one width.
    """
    import pyarrow as pa

    width = len(names[0].encode())
    if any(len(x.encode()) != width for x in names):
        raise ValueError("fixed-width string column needs names of one byte length")
    raw = np.array([x.encode() for x in names], dtype=f"S{width}")[codes]
    offsets = np.arange(codes.size + 1, dtype=np.int64) * width
    arr = pa.LargeStringArray.from_buffers(
        codes.size, pa.py_buffer(offsets.tobytes()), pa.py_buffer(raw.tobytes())
    )
    return pd.Series(pd.array(arr, dtype=pd.StringDtype("pyarrow", na_value=np.nan)))
