"""Report rendering: markdown tables and PNG plots embedded as base64 markdown images.

Uses ``matplotlib.figure.Figure`` directly (no pyplot, no global backend switch).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def figure_markdown(fig: Figure, alt: str) -> str:
    """Encode a figure as ``![alt](data:image/png;base64,...)``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()})"


def table_markdown(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """Markdown table of a frame (index dropped)."""
    return str(frame.to_markdown(index=False, floatfmt=floatfmt))


def var_band_plot(frames: dict[str, pd.DataFrame], title: str) -> str:
    """Returns with ``-VaR`` bands per model and the exceedances marked.

    Args:
        frames: Model label -> frame with ``ret`` and ``var`` (same index for all).
        title: Plot title.
    """
    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot()
    first = next(iter(frames.values()))
    ax.plot(first.index, first["ret"], lw=0.5, color="0.5", label="return (%)")
    for label, frame in frames.items():
        line = ax.plot(frame.index, -frame["var"], lw=0.9, label=f"-VaR {label}")[0]
        hit = frame["ret"] < -frame["var"]
        ax.scatter(frame.index[hit], frame["ret"][hit], s=10, color=line.get_color(), zorder=3)
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=7)
    return figure_markdown(fig, title)


def bar_plot(labels: list[str], values: np.ndarray, title: str, xlabel: str) -> str:
    """Horizontal bar chart (e.g. the stress table's P&L)."""
    fig = Figure(figsize=(8, 0.35 * len(labels) + 1))
    ax = fig.add_subplot()
    colors = ["tab:red" if v < 0 else "tab:green" for v in values]
    ax.barh(labels, values, color=colors)
    ax.invert_yaxis()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    return figure_markdown(fig, title)


def line_plot(series: pd.Series, title: str) -> str:
    """A single time series."""
    fig = Figure(figsize=(10, 3))
    ax = fig.add_subplot()
    ax.plot(series.index, series.to_numpy(), lw=0.8)
    ax.set_title(title)
    return figure_markdown(fig, title)
