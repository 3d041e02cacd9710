"""Walk-forward wall time: 1, 5 and all yearly folds of the demo ensemble on the bundled data.

Each fold trains the demo ensemble (``default_config``: MLP, LSTM, transformer, HAR vol) with
the same Lightning code as the one-shot model, on S&P 500 + NASDAQ daily bars 1999-2018, the
holdout left out. CPU time is reported next to wall time (the machine is shared).

Every finished fold prints the elapsed wall time, so one ``--folds all`` run also gives the time
to the first and fifth fold. ``--oos`` then prints the OOS table, the dynamic stress and the
gate verdict of the concatenated span (latency and risk VaR left out: the verdict printed covers
the IC, Sharpe, drawdown and dynamic stress criteria only).

Usage: python bench/bench_walkforward.py [--folds 1,5,all] [--max-epochs 30] [--workers 1] [--oos]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from rrr_live.features import default_spec
from rrr_pipelines.lib.ml.dataset import DatasetConfig, build_training_set
from rrr_pipelines.lib.ml.gate import GateEvidence, RiskFigures, evaluate_gate
from rrr_pipelines.lib.ml.oos import evaluate_oos
from rrr_pipelines.lib.ml.training_config import default_config
from rrr_pipelines.lib.ml.walkforward import (
    WalkForwardConfig,
    holdout_boundary,
    plan_folds,
    run_walk_forward,
)
from rrr_pipelines.lib.sources.bundled import BundledSource


def main() -> None:
    """Time the walk-forward for each requested fold count and print one line per run."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", default="1,5,all")
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--oos", action="store_true")
    args = parser.parse_args()
    bars = BundledSource().fetch(datetime(1999, 1, 1, tzinfo=UTC), datetime(2019, 1, 1, tzinfo=UTC))
    dataset = DatasetConfig()
    frame, segments = build_training_set(bars, default_spec(), dataset)
    plans = plan_folds(frame["ts"], holdout_boundary(segments), WalkForwardConfig())
    cfg = default_config(accelerator="cpu")
    cfg = cfg.__class__(**{**cfg.__dict__, "members": tuple(
        m.__class__(**{**m.__dict__, "max_epochs": args.max_epochs}) for m in cfg.members)})  # fmt: skip
    print(f"{len(plans)} yearly folds: {plans[0].test_start.date()} .. {plans[-1].test_end}")
    for token in args.folds.split(","):
        n = len(plans) if token == "all" else int(token)
        wall, cpu = time.perf_counter(), time.process_time()
        t0 = wall
        result = run_walk_forward(
            frame, list(default_spec().names), cfg, plans[:n], horizon=dataset.horizon,
            embargo=dataset.embargo, workers=args.workers,
            log=lambda line, t0=t0: print(f"[{time.perf_counter() - t0:7.1f}s] {line}", flush=True),
        )  # fmt: skip
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"folds={n} workers={args.workers} wall={wall:.1f}s cpu={cpu:.1f}s "
              f"oos_rows={len(result.predictions)}")  # fmt: skip
        if args.oos:
            _print_oos(bars, result, frame)


def _print_oos(bars: Any, result: Any, frame: Any) -> None:
    from rrr_pipelines.lib.risk.dynamic_stress import (
        crisis_windows,
        dynamic_stress,
        worst_dynamic_loss,
    )

    oos = evaluate_oos(bars, result, frame)
    cols = ["kind", "ic_mean", "ic_t_nw", "ic_ci_low", "sharpe", "max_drawdown", "turnover"]
    print(oos.report.table[cols].round(4).to_string())
    print(oos.folds.round(4).to_string(index=False))
    span = (oos.report.period.start, oos.report.period.end)
    table = dynamic_stress(bars, result.predictions, crisis_windows(bars, span))
    print(table[["scenario", "covered", "loss", "static_loss", "halted", "bars_to_halt"]]
          .round(4).to_string(index=False))  # fmt: skip
    worst = worst_dynamic_loss(table)
    evidence = GateEvidence.from_report(
        oos.report, latency_p95_ms=0.0, risk=RiskFigures(0.0, worst * 1e6, 1e6)
    )
    verdict = evaluate_gate(evidence)
    print("gate (IC, Sharpe, drawdown, dynamic stress; VaR/latency not measured here):",
          "passed" if verdict.passed else "failed")  # fmt: skip
    for reason in verdict.reasons:
        print("  -", reason)


if __name__ == "__main__":
    main()
