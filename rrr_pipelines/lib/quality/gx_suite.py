"""The bar invariants as a Great Expectations 1.x suite (ephemeral context, imported lazily).

GX 1.24 is run in code, not through dagster-ge (which only supports GX 0.x, pandas < 3). The
import costs ~3 s, so it happens on first use only. pandas-3 pitfalls (STACK_NOTES §4.5): no
``ExpectColumnValuesToBeInTypeList`` on ``str`` columns; the suite sticks to value expectations.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from rrr_live.domain.bars import PRICE_COLUMNS
from rrr_pipelines.lib.quality.result import MAX_OFFENDING_ROWS, CheckResult

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_CACHE: dict[str, Any] = {}
OHLCV = (*PRICE_COLUMNS, "volume")


def _expectations() -> list[Any]:
    import importlib

    gxe: Any = importlib.import_module("great_expectations.expectations")

    exps: list[Any] = [gxe.ExpectColumnValuesToNotBeNull(column=c) for c in OHLCV]
    exps += [
        gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True)
        for c in PRICE_COLUMNS
    ]
    exps.append(gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0))
    for a, b in (("high", "open"), ("high", "close"), ("open", "low"), ("close", "low")):
        exps.append(
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True)
        )
    exps.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=["source", "symbol", "ts"]))
    return exps


def _validation_definition() -> Any:
    """Build (once per process) the ephemeral context, batch definition and suite."""
    with _LOCK:
        if "vd" not in _CACHE:
            os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
            with warnings.catch_warnings():
                # GX 1.24 imports the deprecated ``sre_constants`` module
                warnings.simplefilter("ignore", DeprecationWarning)
                import great_expectations as gx
                from great_expectations.data_context.types.base import ProgressBarsConfig

            ctx = gx.get_context(mode="ephemeral")
            ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
            batch_def = (
                ctx.data_sources.add_pandas(name="bars_pandas")
                .add_dataframe_asset(name="market_bars")
                .add_batch_definition_whole_dataframe("whole_frame")
            )
            suite = ctx.suites.add(
                gx.ExpectationSuite(name="market_bars_suite", expectations=_expectations())
            )
            _CACHE["vd"] = ctx.validation_definitions.add(
                gx.ValidationDefinition(name="market_bars_vd", data=batch_def, suite=suite)
            )
        return _CACHE["vd"]


def _describe(config: Any) -> str:
    """Return a short label such as ``close not null`` or ``high>=open``."""
    kw = config.kwargs
    if "column_A" in kw:
        return f"{kw['column_A']}>={kw['column_B']}"
    if "column_list" in kw:
        return f"unique({','.join(kw['column_list'])})"
    if config.type == "expect_column_values_to_not_be_null":
        return f"{kw['column']} not null"
    if config.type == "expect_column_values_to_be_between":
        op = ">" if kw.get("strict_min") else ">="
        return f"{kw['column']}{op}{kw.get('min_value', 0):g}"
    return str(config.type)


def run_gx_suite(bars: pd.DataFrame) -> CheckResult:
    """Validate ``bars`` with the GX suite; offending rows come from GX's unexpected indices.

    Args:
        bars: Canonical bar frame.
    """
    return run_gx_suite_split([bars])[0]


def run_gx_suite_split(frames: Sequence[pd.DataFrame]) -> list[CheckResult]:
    """Validate several frames in one GX run (its fixed cost is per run) and judge each apart.

    The frames are stacked and validated once; each unexpected row is then attributed to the
    frame it came from, so each frame gets its own verdict, failed expectations and rows.

    Args:
        frames: Canonical bar frames (e.g. one per partition), in any row order.
    """
    parts = [f.reset_index(drop=True) for f in frames]
    if not parts:
        return []
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    result = _validation_definition().run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "partial_unexpected_count": 0},
    )
    bad_rows: dict[int, list[str]] = {}
    whole_frame_failures: list[str] = []  # an expectation that failed without naming rows
    for r in result.results:
        if r.success:
            continue
        label = _describe(r.expectation_config)
        indices = (r.result or {}).get("unexpected_index_list") or []
        if not indices:
            whole_frame_failures.append(label)
        for idx in indices:
            row = int(idx if not isinstance(idx, dict) else next(iter(idx.values())))
            bad_rows.setdefault(row, []).append(label)
    evaluated = int(result.statistics["evaluated_expectations"])
    offsets = np.cumsum([0] + [len(p) for p in parts])
    return [
        _frame_result(part, int(lo), bad_rows, whole_frame_failures, evaluated)
        for part, lo in zip(parts, offsets[:-1], strict=True)
    ]


def _frame_result(
    part: pd.DataFrame,
    offset: int,
    bad_rows: dict[int, list[str]],
    whole_frame_failures: list[str],
    evaluated: int,
) -> CheckResult:
    """The verdict of one stacked frame: the unexpected rows that fall in its range."""
    own = {r - offset: labels for r, labels in bad_rows.items() if offset <= r < offset + len(part)}
    failed = sorted({label for labels in own.values() for label in labels})
    failed += [f for f in whole_frame_failures if f not in failed]
    positions = sorted(own)[:MAX_OFFENDING_ROWS]
    offending = part.iloc[positions][["symbol", "ts", "open", "high", "low", "close", "volume"]]
    offending = offending.reset_index(drop=True)
    offending.insert(0, "row", positions)
    offending.insert(3, "expectations", [",".join(own[p]) for p in positions])
    successful = evaluated - len(failed)
    return CheckResult(
        name="bars_gx_suite",
        passed=not failed,
        observed={
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "success_percent": 100.0 * successful / evaluated if evaluated else 0.0,
            "failed_expectations": failed,
            "rows_checked": len(part),
        },
        thresholds={"success_percent": 100.0},
        offending=offending,
        description="Great Expectations suite: not-null, prices > 0, volume >= 0, OHLC order, "
        "unique (source, symbol, ts)",
    )
