"""Small metadata helpers for bar frames: summary numbers and a PNG price chart as markdown."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import pandas as pd

MAX_POINTS = 1500  # per symbol; longer series are thinned evenly before plotting


def bars_summary(bars: pd.DataFrame) -> dict[str, Any]:
    """Return row count, symbol count and date range of a canonical bar frame.

    Args:
        bars: Canonical bar frame (may be empty).
    """
    if bars.empty:
        return {"rows": 0, "symbols": 0, "first_ts": "", "last_ts": ""}
    return {
        "rows": len(bars),
        "symbols": int(bars["symbol"].nunique()),
        "first_ts": bars["ts"].min().isoformat(),
        "last_ts": bars["ts"].max().isoformat(),
    }


def agg_figure(figsize: tuple[float, float], dpi: int = 100) -> Any:
    """Return a matplotlib ``Figure`` on its own Agg canvas (no pyplot, no global state).

    Args:
        figsize: Width and height in inches.
        dpi: Dots per inch.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Any) -> bytes:
    """Lay out ``fig`` tightly and return it as PNG bytes.

    Args:
        fig: A figure from :func:`agg_figure`.
    """
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def price_chart_png(bars: pd.DataFrame, max_symbols: int = 5) -> bytes:
    """Render close prices of up to ``max_symbols`` symbols as a PNG (matplotlib, Agg).

    With more than one symbol the lines are rebased to 100 at their first bar so they share an
    axis. Synthetic data says so in the title.

    Args:
        bars: Canonical bar frame.
        max_symbols: Plot at most this many symbols (the first ones in sorted order).
    """
    fig = agg_figure((6.0, 2.6), dpi=80)
    ax = fig.add_subplot(1, 1, 1)
    symbols = sorted(bars["symbol"].unique())[:max_symbols] if len(bars) else []
    rebase = len(symbols) > 1
    for sym in symbols:
        part = bars.loc[bars["symbol"] == sym, ["ts", "close"]].sort_values("ts")
        if len(part) > MAX_POINTS:
            part = part.iloc[np.linspace(0, len(part) - 1, MAX_POINTS).astype(int)]
        y = part["close"].to_numpy(dtype=float)
        if rebase and y.size and y[0] != 0:
            y = 100.0 * y / y[0]
        ax.plot(part["ts"].dt.tz_convert(None).to_numpy(), y, linewidth=0.9, label=str(sym))
    sources = sorted(bars["source"].unique()) if len(bars) else []
    title = "close" + (" (rebased to 100)" if rebase else "")
    if "synthetic" in sources:
        title = "SYNTHETIC data - " + title
    ax.set_title(f"{title}: {', '.join(map(str, sources))}" if sources else "no bars", fontsize=9)
    ax.tick_params(labelsize=7)
    if symbols:
        ax.legend(fontsize=7, loc="best")
    return figure_png(fig)


def price_chart_markdown(bars: pd.DataFrame, max_symbols: int = 5) -> str:
    """Return ``![chart](data:image/png;base64,…)`` for Dagster markdown metadata.

    Args:
        bars: Canonical bar frame.
        max_symbols: Plot at most this many symbols.
    """
    png = price_chart_png(bars, max_symbols=max_symbols)
    return f"![chart](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
