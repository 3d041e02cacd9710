"""``parity_report``: the runner's capture replayed through the tick backtest, divergences named.

The journal of the package's assembled-runner runs (``conftest.parity_runs``) is read back
(``runner_batches``, the session events, the market data the runner journaled: book and
trades), replayed with the champion version downloaded from the real MLflow registry, and
compared. A clean capture shows no divergence; one altered fill (its average price changed in
the journal) is named as the first divergence: kind, client order id, field, both values.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import asyncpg
import dagster as dg
import pytest
from click.testing import CliRunner

from rrr_live.backtest.parity import (
    Outcome,
    compare,
    decision_record,
    fill_record,
    first_difference,
    order_record,
    tick_frame,
    venue_fee,
)
from rrr_live.backtest.ticks import prepare_ticks
from rrr_live.config import get_settings
from rrr_live.domain.events import TradeTick
from rrr_live.domain.instrument import Instrument
from rrr_live.domain.market import BookUpdate, BookUpdateKind
from rrr_live.domain.orders import Side
from rrr_live.models import load_model
from rrr_live.persistence.journal.replay import CaptureError, RunnerCapture, read_capture
from rrr_live.persistence.urls import ServerAddress
from rrr_live.service.parity import notes_of, parity_report, replay_config, report_of
from rrr_pipelines.cli.main import cli
from rrr_pipelines.defs.live_parity import parity_report as parity_asset
from tests.live.parity.conftest import ParityRuns, RunnerRun
from tests.live.parity.runner_live import RUNNER

T = 1_700_000_001_000_000_000


def _outcome(price: str = "100.01", lots: int = 3) -> Outcome:
    out = Outcome()
    out.decisions += [decision_record(T, "active", 1000.0), decision_record(T + 1, "active", 999.5)]
    out.orders += [order_record(T, "AAA", lots, "sent"), order_record(T, "BBB", -2, "denied")]
    out.fills.append(fill_record(T, "AAA", lots, Decimal(price), venue_fee(0.1 + 0.2)))
    out.client_ids[(T, "AAA")] = "par-1-0"
    out.seqs.update({T: 1, T + 1: 2})
    return out


def test_compare_names_the_first_divergent_record_field_and_client_id():
    assert venue_fee(0.1 + 0.2) == Decimal("0.3")  # the float's noise is off the 1e-8 grid
    assert str(venue_fee(0.0244325)) == "0.02443250"
    same = compare(_outcome(), _outcome())
    assert same.ok and same.first is None
    assert same.counts == {"decisions": 2, "orders": 2, "fills": 1, "pnl": 1}
    assert same.summary().startswith("no divergence")

    report = compare(_outcome(), _outcome(price="100.02"))
    assert report.divergences == {"decisions": 0, "orders": 0, "fills": 1, "pnl": 0}
    first = report.first
    assert first is not None
    assert (first.kind, first.seq, first.symbol, first.client_id, first.field) == (
        "fills", 1, "AAA", "par-1-0", "avg_price"
    )  # fmt: skip
    assert (first.live, first.replay) == ("100.01000000", "100.02000000")
    assert report.summary() == (
        "divergence: 1 fills; first: fills at 1700000001000000000 (batch 1) AAA par-1-0:"
        " avg_price live 100.01000000 != replay 100.02000000"
    )

    # at one decision time, orders come before fills; a record on one side only is "missing"
    other = _outcome(lots=4)
    report = compare(_outcome(), other)
    assert report.divergences["orders"] == 1 and report.divergences["fills"] == 1
    assert report.first is not None and (report.first.kind, report.first.field) == (
        "orders", "lots"
    )  # fmt: skip
    gone = _outcome()
    gone.decisions.pop()
    report = compare(_outcome(), gone)
    assert report.first is not None
    assert (report.first.kind, report.first.ts_ns, report.first.seq, report.first.field) == (
        "decisions", T + 1, 2, "missing"
    )  # fmt: skip
    assert report.first.replay is None
    assert report.divergences["pnl"] == 1  # the equity path ends elsewhere
    assert first_difference(_outcome(), gone, "live", "replay").startswith("decisions[1]: live")


def test_tick_frame_keeps_the_receive_order_and_dates_rest_snapshots():
    inst = {"AAA": Instrument.create("AAA", "0.01", "0.01")}
    snap, diff = BookUpdateKind.SNAPSHOT, BookUpdateKind.DIFF
    events = [
        BookUpdate(snap, "AAA", 0, ((10000, 5),), ((10001, 7),), 9, 9),  # REST: no event time
        TradeTick(T, "AAA", 10001, 3, Side.BUY, 1),
        BookUpdate(diff, "AAA", T + 5, ((10000, 0),), (), 10, 10),
        BookUpdate(snap, "AAA", 0, (), (), 11, 11),  # a resync that found an empty book
        TradeTick(T + 9, "ZZZ", 1, 1, Side.SELL, 2),  # not in the universe
    ]
    frame = tick_frame(events, inst)
    assert frame.to_numpy().tolist() == [
        [T, "AAA", "snapshot", "bid", 100.0, 0.05],
        [T, "AAA", "snapshot", "ask", 100.01, 0.07],
        [T, "AAA", "trade", "buy", 100.01, 0.03],
        [T + 5, "AAA", "diff", "bid", 100.0, 0.0],
        [T + 5, "AAA", "snapshot", "bid", 0.01, 0.0],
    ]
    messages = prepare_ticks(frame, ["AAA"], list(inst.values()))
    assert [(t, kind, len(rows)) for t, _, kind, rows in messages] == [
        (T, "snapshot", 2), (T, "trade", 1), (T + 5, "diff", 1), (T + 5, "snapshot", 0)
    ]  # fmt: skip


def test_a_session_without_commission_rates_cannot_be_replayed():
    with pytest.raises(CaptureError, match="no commission rates"):
        replay_config({"fees": {}, "cash": 1.0})


def test_what_the_replay_cannot_reproduce_is_noted():
    assert notes_of(RunnerCapture("par", "s", {"warmup_depth": 5})) == []
    restarted = RunnerCapture("par", "s2", {}, earlier_batches=7)  # an older runner's journal
    notes = notes_of(restarted)
    assert len(notes) == 2
    assert "7 batches of earlier sessions" in notes[0] and "no warm-up depth" in notes[1]


def _report(runs: ParityRuns, dsn: str):
    return asyncio.run(parity_report(dsn, RUNNER, "", runs.registry_uri))


@pytest.fixture
def runner_db(pg_server: ServerAddress, monkeypatch: pytest.MonkeyPatch):
    """Point the settings at a run's database and home, as the runner had them; no venue keys."""

    def use(run: RunnerRun) -> None:
        monkeypatch.setenv("RRR_HOME", str(run.env.home))
        monkeypatch.setenv("RRR_DATABASE_URL", pg_server.url("postgres", "libpq"))
        monkeypatch.setenv("RRR_RRR_DB", run.env.dsn.rsplit("/", 1)[1].split("?", 1)[0])
        for name in ("RRR_VENUE_API_KEY", "RRR_VENUE_API_SECRET"):
            monkeypatch.delenv(name, raising=False)  # the report sends nothing to the venue
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


@pytest.mark.pg
def test_parity_report_on_the_clean_capture_shows_no_divergence(
    parity_runs: ParityRuns, runner_db, tmp_path
):
    report = _report(parity_runs, parity_runs.a.env.dsn)
    assert report.first is None, report.summary()
    assert report.notes == ()  # a first session, no warm-up: all of it is replayed
    live = parity_runs.a.outcome
    assert report.counts["decisions"] == len(live.decisions) == 50
    assert report.counts["orders"] == len(live.orders)
    assert report.counts["fills"] == len([f for f in live.fills if f[0] < live.decisions[-1][0]])
    assert report.counts["fills"] > 50

    # the command line: exit 0, one line, the JSON report
    runner_db(parity_runs.a)
    toml, out = str(parity_runs.a.toml), tmp_path / "report.json"
    args = ["live", "parity-report", "--config", toml]
    result = CliRunner().invoke(cli, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("no divergence") and result.stdout.count("\n") == 1
    assert json.loads(out.read_text())["counts"] == report.counts
    bad = CliRunner().invoke(cli, [*args, "--session", "x"])
    assert bad.exit_code == 2
    assert bad.stdout == ""
    assert bad.stderr.endswith("Error: runner 'par' journaled no batch in session 'x'\n")
    missing = CliRunner().invoke(cli, ["live", "parity-report", "--config", str(tmp_path / "no")])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr

    # the Dagster asset: the counts as metadata, the no_divergence check passes
    run_config = {"ops": {"parity_report": {"config": {"config_path": toml}}}}
    res = dg.materialize([parity_asset], run_config=run_config)
    mat = res.asset_materializations_for_node("parity_report")[0]
    assert mat.metadata["divergences_fills"].value == 0
    assert mat.metadata["compared_fills"].value == report.counts["fills"]
    (check,) = res.get_asset_check_evaluations()
    assert check.passed


async def _alter_one_fill(dsn: str) -> tuple[int, str, str, str]:
    """Raise the average price of one filled order in the journal by one tick.

    Returns its batch sequence, client id, the average price it had and the one it has now.
    """
    con = await asyncpg.connect(dsn)
    try:
        rows = await con.fetch(
            "SELECT seq, report FROM runner_batches WHERE runner = $1 ORDER BY seq", RUNNER
        )
        seq, report = rows[len(rows) // 2]["seq"], json.loads(rows[len(rows) // 2]["report"])
        k, order = next((k, o) for k, o in enumerate(report["orders"]) if o["avg_price"])
        was = Decimal(order["avg_price"])
        now = was + Decimal("0.01")
        await con.execute(
            "UPDATE runner_batches SET report = jsonb_set(report, $3::text[], to_jsonb($4::text))"
            " WHERE runner = $1 AND seq = $2",
            RUNNER, seq, ["orders", str(k), "avg_price"], str(now),
        )  # fmt: skip
    finally:
        await con.close()
    q = Decimal("1e-8")
    return seq, order["client_id"], str(was.quantize(q)), str(now.quantize(q))


@pytest.mark.pg
def test_parity_report_names_the_one_altered_fill(parity_runs: ParityRuns, runner_db):
    dsn = parity_runs.b.env.dsn
    seq, cid, was, now = asyncio.run(_alter_one_fill(dsn))
    report = _report(parity_runs, dsn)
    assert report.divergences == {"decisions": 0, "orders": 0, "fills": 1, "pnl": 0}
    first = report.first
    assert first is not None
    assert (first.kind, first.seq, first.client_id, first.field) == ("fills", seq, cid, "avg_price")
    assert (first.live, first.replay) == (now, was)

    runner_db(parity_runs.b)
    result = CliRunner().invoke(cli, ["live", "parity-report", "--config", str(parity_runs.b.toml)])
    assert result.exit_code == 1
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("divergence: 1 fills")
    assert f"{cid}: avg_price live {now} != replay {was}" in result.stdout


@pytest.mark.pg
def test_parity_report_replays_the_warm_up_on_published_bars(
    parity_runs: ParityRuns, warm_run: RunnerRun
):
    report = _report(parity_runs, warm_run.env.dsn)
    assert report.first is None, report.summary()
    assert report.notes == ()
    cold = parity_runs.a.outcome
    assert warm_run.outcome.orders[0][0] < cold.orders[0][0]  # warm features: it traded sooner
    assert report.counts["orders"] == len(warm_run.outcome.orders)

    # replayed cold, the same capture diverges at the first warm decision's orders
    cap = asyncio.run(_capture(warm_run.env.dsn))
    cold_report = report_of(cap, load_model(parity_runs.model_dir))
    assert cold_report.first is not None
    assert (cold_report.first.kind, cold_report.first.ts_ns) == (
        "orders", warm_run.outcome.orders[0][0]
    )  # fmt: skip


async def _capture(dsn: str) -> RunnerCapture:
    con = await asyncpg.connect(dsn)
    try:
        return await read_capture(con, RUNNER)
    finally:
        await con.close()
