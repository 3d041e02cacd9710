"""Backtest-live parity: one recording through the runner's path and the tick backtest.

The runner side trades over real websockets against the replay exchange's paper venue in
lockstep, with the champion served from a real MLflow registry; the backtest side runs the
tick backtest (``SimulatedBroker``) on the same tape. Decisions, orders and fills must be
identical (sha256 of the canonical lists); a failure names the first differing record. The
mutation tests inject a one-bar feature lag or a fee into the backtest side only and assert the
comparison reports the divergence.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.live.parity.kit import (
    Mutation,
    Outcome,
    before,
    first_difference,
    recording,
    run_backtest_side,
    save_parity_model,
)
from tests.live.parity.runner_side import register_champion, run_runner_side

SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded ensemble, saved once for the module."""
    return save_parity_model(tmp_path_factory.mktemp("parity") / "model", SYMBOLS)


def assert_same(runner: Outcome, backtest: Outcome) -> None:
    """Equal hashes, or a failure that prints the first differing record."""
    assert runner.hashes() == backtest.hashes(), first_difference(runner, backtest)


@pytest.mark.pg
@pytest.mark.asyncio
async def test_runner_and_tick_backtest_agree_and_one_side_mutations_are_caught(
    model_dir, mlflow_tracking_uri, orders_dsn, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    name = f"parity-{tmp_path.name[:40]}"
    register_champion(mlflow_tracking_uri, model_dir, name)
    tape = recording(SYMBOLS)
    runner = await run_runner_side(tape, mlflow_tracking_uri, name, orders_dsn, tmp_path / "c")
    backtest = run_backtest_side(tape, model_dir)
    again = await run_runner_side(recording(SYMBOLS), mlflow_tracking_uri, name, orders_dsn,
                                  tmp_path / "c2", prefix="par2")  # fmt: skip
    assert again.hashes() == runner.hashes()  # same recording, model and seed

    assert len(runner.decisions) == 50  # one decision batch per bar
    assert len(runner.orders) > 50 and len(runner.fills) > 50  # the model trades most bars
    last = runner.decisions[-1][0]
    assert [f for f in backtest.fills if f[0] >= last] == []  # end of data: see kit.before
    assert len([f for f in runner.fills if f[0] >= last]) == len(
        [o for o in runner.orders if o[0] == last and o[3] == "sent"]
    )
    assert_same(before(runner, last), before(backtest, last))

    # the mutation tests: one side changed, this very runner run diverges from it
    lagged = before(run_backtest_side(tape, model_dir, Mutation(feature_lag_bars=1)), last)
    assert before(runner, last).hashes()["orders"] != lagged.hashes()["orders"]
    assert first_difference(before(runner, last), lagged) == (
        f"orders[0]: runner {runner.orders[0]} != backtest {lagged.orders[0]}"
    )  # the lagged side's first order comes a bar later
    with pytest.raises(AssertionError, match=r"runner .* != backtest"):
        assert_same(before(runner, last), lagged)
    charged = before(run_backtest_side(tape, model_dir, Mutation(taker_fee=0.001)), last)
    assert charged.orders[0] == runner.orders[0]  # same first order, charged a fee
    assert first_difference(before(runner, last), charged) == (
        f"fills[0]: runner {runner.fills[0]} != backtest {charged.fills[0]}"
    )


def test_same_recording_model_and_seed_give_identical_hashes(model_dir):
    tape = recording(SYMBOLS)
    first = run_backtest_side(tape, model_dir)
    again = run_backtest_side(recording(SYMBOLS), model_dir)
    assert first.hashes() == again.hashes()
    assert first.fills, "a run without fills proves nothing"
    other_seed = run_backtest_side(recording(SYMBOLS, seed=6), model_dir)
    assert other_seed.hashes()["orders"] != first.hashes()["orders"]
