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

import pytest

from tests.live.parity.conftest import SYMBOLS, ParityRuns
from tests.live.parity.kit import (
    TAKER_FEE,
    Mutation,
    Outcome,
    before,
    first_difference,
    recording,
    run_backtest_side,
)


def assert_same(runner: Outcome, backtest: Outcome) -> None:
    """Equal hashes, or a failure that prints the first differing record."""
    assert runner.hashes() == backtest.hashes(), first_difference(runner, backtest)


@pytest.mark.pg
def test_runner_and_tick_backtest_agree_and_one_side_mutations_are_caught(
    parity_runs: ParityRuns,
):
    tape, model_dir = parity_runs.tape, parity_runs.model_dir
    runner = parity_runs.a.outcome  # the assembled runner on a fresh database and home
    backtest = run_backtest_side(tape, model_dir)
    again = parity_runs.b.outcome  # the same again, on another database and home
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
