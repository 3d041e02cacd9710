"""Backtest-live parity: one recording through the assembled runner and the tick backtest.

The runner side is ``run_live`` from a TOML file (what ``rrr live run`` runs): the champion from
a real MLflow registry, real websockets from the replay exchange in lockstep, its paper venue,
the order store and the runner journal on the real PostgreSQL; its records are read back from
the journal. The backtest side runs the tick backtest (``SimulatedBroker``) on the same tape.
Decisions, orders and fills must be identical (sha256 of the canonical lists); a failure names
the first differing record. Both venues charge the same taker fee (the runner applies the fee
the paper venue reports). The mutation checks inject a one-bar feature lag or another fee into
the backtest side only and assert that the comparison reports the divergence.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rrr_live.config import get_settings
from tests.live.parity.kit import (
    TAKER_FEE,
    Mutation,
    Outcome,
    before,
    first_difference,
    recording,
    run_backtest_side,
    save_parity_model,
)
from tests.live.parity.runner_live import register_champion, run_assembled_runner, runner_env

SYMBOLS = ["AAA", "BBB", "CCC"]


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before_ = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before_)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded ensemble, saved once for the module."""
    return save_parity_model(tmp_path_factory.mktemp("parity") / "model", SYMBOLS)


def assert_same(runner: Outcome, backtest: Outcome) -> None:
    """Equal hashes, or a failure that prints the first differing record."""
    assert runner.hashes() == backtest.hashes(), first_difference(runner, backtest)


async def _runner(tape, model_dir, pg_server, uri, tmp: Path, monkeypatch) -> Outcome:
    """One assembled-runner run on a fresh database and home."""
    env = runner_env(pg_server, tmp, monkeypatch)
    name = f"parity-{tmp.parent.name[:30]}-{tmp.name}"
    register_champion(uri, model_dir, name)
    try:
        return await run_assembled_runner(tape, env, uri, name, tmp)
    finally:
        get_settings.cache_clear()


@pytest.mark.pg
@pytest.mark.asyncio
async def test_runner_and_tick_backtest_agree_and_one_side_mutations_are_caught(
    model_dir, pg_server, mlflow_tracking_uri, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    tape = recording(SYMBOLS)
    runner = await _runner(tape, model_dir, pg_server, mlflow_tracking_uri, tmp_path / "a",
                           monkeypatch)  # fmt: skip
    backtest = run_backtest_side(tape, model_dir)
    again = await _runner(recording(SYMBOLS), model_dir, pg_server, mlflow_tracking_uri,
                          tmp_path / "b", monkeypatch)  # fmt: skip
    # same recording, model and seed
    assert again.hashes() == runner.hashes(), first_difference(runner, again)

    assert len(runner.decisions) == 50  # one journaled decision batch per bar
    assert len(runner.orders) > 50 and len(runner.fills) > 50  # the model trades most bars
    last = runner.decisions[-1][0]
    assert [f for f in backtest.fills if f[0] >= last] == []  # end of data: see kit.before
    assert len([f for f in runner.fills if f[0] >= last]) == len(
        [o for o in runner.orders if o[0] == last and o[3] == "sent"]
    )
    assert_same(before(runner, last), before(backtest, last))

    # the mutation checks: one side changed, this very runner run diverges from it
    lagged = before(run_backtest_side(tape, model_dir, Mutation(feature_lag_bars=1)), last)
    assert before(runner, last).hashes()["orders"] != lagged.hashes()["orders"]
    assert first_difference(before(runner, last), lagged) == (
        f"orders[0]: runner {runner.orders[0]} != backtest {lagged.orders[0]}"
    )  # the lagged side's first order comes a bar later
    with pytest.raises(AssertionError, match=r"runner .* != backtest"):
        assert_same(before(runner, last), lagged)
    charged = before(run_backtest_side(tape, model_dir, Mutation(taker_fee=2 * TAKER_FEE)), last)
    assert charged.orders[0] == runner.orders[0]  # same first order, charged another fee
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
