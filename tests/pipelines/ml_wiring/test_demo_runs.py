"""The demo judges a step by its own Dagster run: status, failed steps, its checks."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from rrr_pipelines.demo import RunOutcome, _failure_line, _run_id_from, read_run


@dg.asset
def upstream() -> int:
    return 1


@dg.asset
def broken(upstream: int) -> int:
    raise RuntimeError("training diverged")


@dg.asset_check(asset=upstream)
def upstream_positive(upstream: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=upstream > 0)


@dg.asset_check(asset=upstream)
def upstream_huge(upstream: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=upstream > 10, metadata={"verdict": "failed"})


@pytest.fixture
def instance(tmp_path: Path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as inst:
        yield inst


def test_a_failed_step_fails_the_demo_step_and_is_named(instance) -> None:
    result = dg.materialize([upstream, broken], instance=instance, raise_on_error=False)
    outcome = read_run(instance, result.run_id)
    assert outcome.status == "FAILURE" and outcome.failed_steps == ["broken"]
    assert not outcome.ok and outcome.materialized.keys() == {"upstream"}
    step = {"title": "train", "run_id": result.run_id, "status": outcome.status,
            "failed_steps": outcome.failed_steps, "failed_checks": []}  # fmt: skip
    assert _failure_line(step) == (
        f"'train' (Dagster run {result.run_id} FAILURE; failed Dagster steps: broken)"
    )


def test_checks_of_the_run_decide_except_verdicts(instance, monkeypatch) -> None:
    result = dg.materialize(
        [upstream, upstream_positive, upstream_huge], instance=instance, selection=[upstream]
    )
    outcome = read_run(instance, result.run_id)
    assert outcome.status == "SUCCESS" and outcome.checks == {
        "upstream:upstream_positive": True, "upstream:upstream_huge": False,
    }  # fmt: skip
    assert outcome.failed_checks == ["upstream:upstream_huge"] and not outcome.ok
    assert outcome.check_metadata["upstream:upstream_huge"] == {"verdict": "failed"}
    # a verdict check (the promotion gate) failing is an outcome to report, not a broken step
    monkeypatch.setattr("rrr_pipelines.demo.VERDICT_CHECKS", {"upstream:upstream_huge"})
    assert outcome.ok
    # an earlier, unrelated run does not leak into this run's judgment
    later = read_run(instance, dg.materialize([upstream], instance=instance).run_id)
    assert later.checks == {} and later.ok


def test_the_run_id_comes_from_the_materialize_output() -> None:
    line = (
        "2026-12-03 15:26:25 +0000 - dagster - DEBUG - __ASSET_JOB - "
        "c71e7f95-0200-462b-a426-3ef80e73c5a8 - 23241 - RUN_START - Started execution"
    )
    assert _run_id_from(["noise", line]) == "c71e7f95-0200-462b-a426-3ef80e73c5a8"
    assert _run_id_from(["2026 - dagster - INFO - job - not-a-run - x"]) is None
    assert RunOutcome("", "NOT RECORDED").ok is False
