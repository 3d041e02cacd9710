"""Deterministic cost and timing models shared by the L2 venue and the bar venue.

* :class:`FeeModel` – maker/taker fees as a fraction of notional (negative maker = rebate).
* :class:`ImpactModel` – the synthesized book used when only bars exist: a fill pays the
  modelled half-spread plus square-root market impact ``coef * sqrt(qty / adv)`` on top of the
  reference price (``adv`` = trailing average volume, known at decision time).
* :class:`LatencyModel` – order-to-venue delay in event-time nanoseconds, ``base_ns`` plus a
  jitter that is a pure function of ``(seed, key)`` (no random state, so runs repeat exactly).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from rrr_live.domain.events import Liquidity

_MASK64: Final[int] = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """Return the SplitMix64 hash of ``x`` (a fast, well-mixed 64-bit integer hash)."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


@dataclass(frozen=True, slots=True)
class FeeModel:
    """Fees as fractions of traded notional.

    Args:
        maker_rate: fee on liquidity-adding fills (e.g. 0.0002 = 2 bp; negative is a rebate).
        taker_rate: fee on liquidity-removing fills.
    """

    maker_rate: float = 0.0
    taker_rate: float = 0.0

    def rate(self, liquidity: Liquidity) -> float:
        """Return the fee rate of a fill that adds (maker) or removes (taker) liquidity."""
        return self.maker_rate if liquidity is Liquidity.MAKER else self.taker_rate

    def fee(self, notional: float, liquidity: Liquidity) -> float:
        """Return the fee for a fill of ``notional`` (absolute value is used)."""
        return abs(notional) * self.rate(liquidity)

    def taker_fees(self, notional: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Vectorized taker fees (the same rule as :meth:`fee`)."""
        return np.abs(notional) * self.rate(Liquidity.TAKER)


@dataclass(frozen=True, slots=True)
class ImpactModel:
    """Half-spread plus square-root impact, as a fraction of the reference price.

    Args:
        half_spread_bps: modelled half bid-ask spread in basis points.
        impact_coef: coefficient of ``sqrt(|qty| / adv)``; 0 disables impact.
    """

    half_spread_bps: float = 0.0
    impact_coef: float = 0.0

    def __post_init__(self) -> None:
        if self.half_spread_bps < 0 or self.impact_coef < 0:
            raise ValueError(
                f"ImpactModel needs non-negative half_spread_bps and impact_coef, got "
                f"{self.half_spread_bps} and {self.impact_coef}"
            )

    def cost_fraction(
        self, qty_abs: npt.NDArray[np.float64], adv: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Return half-spread + impact as a fraction of price (no impact where ``adv`` unknown)."""
        base = np.full(qty_abs.shape, self.half_spread_bps * 1e-4)
        if self.impact_coef == 0.0:
            return base
        ok = np.isfinite(adv) & (adv > 0)
        participation = np.divide(qty_abs, adv, out=np.zeros_like(qty_abs), where=ok)
        return base + self.impact_coef * np.sqrt(participation)

    def fill_prices(
        self,
        reference: npt.NDArray[np.float64],
        side: npt.NDArray[np.int64],
        qty_abs: npt.NDArray[np.float64],
        adv: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Return the float fill prices: ``reference * (1 + side * cost_fraction)``."""
        return reference * (1.0 + side * self.cost_fraction(qty_abs, adv))


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Order-to-venue latency in nanoseconds.

    Args:
        base_ns: fixed delay.
        jitter_ns: extra delay in ``[0, jitter_ns]``, a hash of ``(seed, key)``.
        seed: jitter seed.
    """

    base_ns: int = 0
    jitter_ns: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.base_ns < 0 or self.jitter_ns < 0:
            raise ValueError(
                f"LatencyModel needs base_ns >= 0 and jitter_ns >= 0, got "
                f"{self.base_ns} and {self.jitter_ns}"
            )

    def delay_ns(self, key: int) -> int:
        """Return the delay for the action identified by ``key`` (e.g. a sequence number)."""
        if self.jitter_ns == 0:
            return self.base_ns
        return self.base_ns + splitmix64(self.seed * 1_000_003 + key) % (self.jitter_ns + 1)
