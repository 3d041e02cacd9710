"""Killing one shard mid-run: the other keeps trading its symbols within the ledger's limits;
the killed shard restarts, reconciles, and resumes without duplicate orders.

Two shards of one universe on one lockstep replay exchange (``lockstep_clients=2``) with the
paper venue, one ledger account whose gross limit each shard alone stays under but the two
together would break. Shard 0 runs in-process, shard 1 as ``python -m rrr_live --shard 1/2``.
Once shard 1 has journaled some trading batches, the paper venue SIGKILLs it as it takes its
next order (the order is at the venue, its answer never reaches the shard: in doubt). Shard 0
decides on alone; then the exchange pauses while shard 1 restarts (same command) and resumes
once it has subscribed again, and both run to the end of the tape.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from rrr_live.config import get_settings
from rrr_live.exchange import ExchangeServer
from rrr_live.exchange.bars import Bar
from rrr_live.exchange.paper.account import NewOrder, PaperOrder
from rrr_live.exchange.tape import TapeEvent
from rrr_live.service.app import LiveService
from rrr_live.service.assemble import run_live
from rrr_live.service.config import load_config
from rrr_live.service.trader import BatchReport, Trader
from rrr_live.shards.hashing import owned, parse_shard
from tests.live.service.runner_kit import BALANCES, T0, S, paper, random_bars, runner_env, tape_of

pytestmark = [pytest.mark.pg, pytest.mark.asyncio]

UNIVERSE = ("AAA", "BBB", "DDD", "XXX")  # shard 0/2 owns DDD and XXX, shard 1/2 AAA and BBB
MINE = {i: owned(UNIVERSE, parse_shard(f"{i}/2")) for i in (0, 1)}
N_BARS = 60
MAX_WEIGHT = 0.005  # [strategy] max_weight of the runner TOML: one position's share of equity
POSITION = MAX_WEIGHT * float(BALANCES["USDT"])  # a full position's notional (sign sizing)
LIMIT = POSITION * (len(UNIVERSE) - 1)  # [risk] max_gross_notional: one position short of all
KILL_AFTER = 3  # shard 1 dies at its first order after this many journaled trading batches
ALONE = 8  # shard-0 batches decided while shard 1 is down
S0, S1 = "t1-s0of2", "t1-s1of2"
HELD0 = Decimal(1_000)  # the paper account's starting amount of every base asset
GROSS_SQL = "SELECT coalesce(sum(gross), 0) FROM risk_shard WHERE account = 'acct'"


@pytest.fixture
def env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch):
    """The runners' database, home, keys and a champion for ``UNIVERSE``."""
    yield runner_env(pg_server, mlflow_tracking_uri, tmp_path, monkeypatch, symbols=UNIVERSE)
    get_settings.cache_clear()


def _price_ratio(bars: list[Bar]) -> float:
    """The largest max/min close of any symbol: how much a notional sized at one close of the
    run can grow when valued at another."""
    out = 1.0
    for sym in UNIVERSE:
        closes = [b.close for b in bars if b.symbol == sym]
        out = max(out, max(closes) / min(closes))
    return out


def _held_gross(ex: ExchangeServer, closes: dict[str, float], symbols=UNIVERSE) -> float:
    """The paper account's gross exposure in ``symbols`` (base held beyond the start) at
    ``closes``."""
    bal = ex.paper.account.balances
    return sum(abs(float(bal[s].free + bal[s].locked - HELD0)) * closes[s] for s in symbols)


def _seq(client_id: str) -> int:
    return int(client_id.rsplit("-", 2)[1], 16)


async def _poll(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait until ``check()`` holds, looking every 20 ms, for at most a minute."""
    try:
        async with asyncio.timeout(60):
            while not await check():  # noqa: ASYNC110 (a database or process condition)
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


class Shard1:
    """Shard 1 as an OS process (its stderr in a file per start)."""

    def __init__(self, config: Path, logs: Path) -> None:
        self.config, self.logs = config, logs
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        self.starts += 1
        with self.log().open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "rrr_live", "--config", str(self.config), "--shard", "1/2",
                env=dict(os.environ), stdout=asyncio.subprocess.DEVNULL, stderr=err,
            )  # fmt: skip

    def log(self, start: int = 0) -> Path:
        return self.logs / f"shard1-{start or self.starts}.log"

    def alive(self) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError(f"shard 1 exited {self.proc.returncode}: " + self.tail())
        return self.proc is not None

    def tail(self) -> str:
        return self.log().read_text(errors="replace")[-3000:]

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)

    async def exited(self) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), 60)

    def messages(self, start: int) -> list[str]:
        """The log messages of start ``start`` (JSON lines: stderr is not a terminal)."""
        lines = self.log(start).read_text().splitlines()
        return [json.loads(line)["msg"] for line in lines if line.startswith("{")]


class Watch:
    """What the test sees in-process: the venue's orders and holdings, shard 0's batches.

    * ``sent``: every client id the paper venue was asked to place, in order; once ``armed``,
      the venue SIGKILLs shard 1 as it takes shard 1's next order (``killed``: that id);
    * ``venue_gross``: the account's gross at each bar close, valued at the closes, taken when
      the next bar's first event arrives (every connected shard has acknowledged the bar);
    * shard 0's batch reports and the ledger's account-wide gross after each of them.
    """

    def __init__(self, ex: ExchangeServer, shard1: Shard1, close_at: dict[tuple[str, int], float]):
        self.ex, self.shard1, self.close_at = ex, shard1, close_at
        self.sent: list[str] = []
        self.armed, self.killed = asyncio.Event(), asyncio.Event()
        self.killed_ids: list[str] = []
        self.venue_gross: list[float] = []
        self.reports0: list[BatchReport] = []
        self.ledger_gross: list[float] = []
        self.waits: dict[int, asyncio.Event] = {}
        self._bar = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        account, paper_venue = self.ex.paper.account, self.ex.paper
        place, on_tape, on_bars = account.place, paper_venue.on_tape, Trader.on_bars

        def placing(new: NewOrder) -> PaperOrder:
            self.sent.append(new.client_id)
            if self.armed.is_set() and not self.killed.is_set() and new.client_id.startswith(S1):
                self.shard1.signal(signal.SIGKILL)  # it dies before the answer reaches it
                self.killed_ids.append(new.client_id)
                self.killed.set()
            return place(new)

        def watching(event: TapeEvent) -> None:
            k = (event.ts_ns - T0) // S
            if k > self._bar:
                self._bar = k
                self.venue_gross.append(self.gross_at(T0 + k * S))
            on_tape(event)

        async def observed(trader: Trader, *a: Any, **kw: Any) -> BatchReport:
            report = await on_bars(trader, *a, **kw)  # only shard 0 runs in this process
            assert trader.p.ledger is not None
            self.ledger_gross.append(float(await trader.p.ledger.pool.fetchval(GROSS_SQL)))
            self.reports0.append(report)
            for n, ev in self.waits.items():
                if len(self.reports0) >= n:
                    ev.set()
            return report

        monkeypatch.setattr(account, "place", placing)
        monkeypatch.setattr(paper_venue, "on_tape", watching)
        monkeypatch.setattr(Trader, "on_bars", observed)

    def gross_at(self, end_ns: int) -> float:
        return _held_gross(self.ex, {s: self.close_at[s, end_ns] for s in UNIVERSE})

    async def shard0_batches(self, n: int) -> None:
        self.waits[n] = ev = asyncio.Event()
        if len(self.reports0) >= n:
            ev.set()
        await asyncio.wait_for(ev.wait(), 30)


async def test_killed_shard_restarts_reconciles_and_resumes_while_the_other_trades_in_limits(
    env, tmp_path, monkeypatch, live_services
) -> None:
    # each shard alone fits the account's gross limit, the two together do not
    assert POSITION * max(len(MINE[0]), len(MINE[1])) < LIMIT < POSITION * len(UNIVERSE)
    bars = random_bars(N_BARS, seed=11, symbols=UNIVERSE)
    close_at = {(b.symbol, b.ts_ns + b.interval_ns): b.close for b in bars}
    services = live_services
    async with (
        ExchangeServer(
            tape_of(bars), lockstep=True, lockstep_clients=2, paper=paper(UNIVERSE)
        ) as ex,
        asyncpg.create_pool(env.dsn, min_size=1, max_size=2) as pool,
    ):
        path = env.toml(ex.http_url, tmp_path / "runner.toml")
        text = path.read_text().replace("lockstep = true", "lockstep = true\nidle_timeout_s = 60")
        assert f"max_weight = {MAX_WEIGHT}" in text
        text = text.replace("[risk]", f"[risk]\nmax_gross_notional = {LIMIT}")
        path.write_text(text + '[ledger]\naccount = "acct"\n')
        shard1 = Shard1(path, tmp_path)
        watch = Watch(ex, shard1, close_at)
        watch.install(monkeypatch)
        try:
            got = await _run(ex, pool, path, shard1, watch, services)
        finally:
            shard1.signal(signal.SIGKILL)
            for svc in services:  # on a failure: stop shard 0 too (a no-op once it stopped)
                svc.request_stop()
        final = watch.gross_at(T0 + N_BARS * S)
    _check_limits(watch, got, final, bars)
    _check_alone(watch, got)
    _check_restart(watch, got, shard1, tmp_path)
    _check_once(watch, got, ex)


async def _run(
    ex: ExchangeServer,
    pool: asyncpg.Pool,
    path: Path,
    shard1: Shard1,
    watch: Watch,
    services: list[LiveService],
) -> dict[str, Any]:
    """Run both shards, kill shard 1, restart it, run to the tape's end; what the checks need."""
    got: dict[str, Any] = {}
    shard0 = asyncio.create_task(run_live(load_config(path, shard="0/2")))
    await shard1.start()

    async def trading1() -> bool:
        if shard0.done():
            shard0.result()
        shard1.alive()
        n = await pool.fetchval(
            "SELECT count(*) FROM runner_batches WHERE runner = $1 AND n_orders > 0", S1
        )
        return int(n) >= KILL_AFTER

    await _poll(trading1, f"{KILL_AFTER} journaled trading batches of shard 1")
    watch.armed.set()
    await asyncio.wait_for(watch.killed.wait(), 30)
    assert await shard1.exited() == -signal.SIGKILL
    got["journaled"] = {
        r["seq"] for r in await pool.fetch("SELECT seq FROM runner_batches WHERE runner = $1", S1)
    }
    # shard 0 decides on alone: the exchange no longer waits for the killed connection
    got["at_kill"], sent_at_kill = len(watch.reports0), len(watch.sent)
    await watch.shard0_batches(got["at_kill"] + ALONE)
    ex.pause()  # shard 1's start takes seconds: hold the market meanwhile
    got["sent_alone"] = watch.sent[sent_at_kill:]
    got["row1"] = await pool.fetchrow(
        "SELECT gross, heartbeat_ts_ns FROM risk_shard WHERE shard = $1", S1
    )
    await shard1.start()  # the same command

    async def subscribed() -> bool:
        return shard1.alive() and ex.connections == 2

    await _poll(subscribed, "the restarted shard 1 to subscribe")
    ex.resume()
    await asyncio.wait_for(ex.finished(), 60)
    for svc in services:
        svc.request_stop()
    shard1.signal(signal.SIGTERM)
    assert await asyncio.wait_for(shard0, 60) == 0
    assert await shard1.exited() == 0, shard1.tail()
    got["batches"] = {
        (r["runner"], r["seq"]): json.loads(r["report"])
        for r in await pool.fetch("SELECT runner, seq, report FROM runner_batches")
    }
    got["rows"] = {
        r["shard"]: float(r["gross"])
        for r in await pool.fetch("SELECT shard, gross FROM risk_shard WHERE account = 'acct'")
    }
    got["settled"] = {
        r["client_id"]: r["state"]
        for r in await pool.fetch(
            "SELECT client_id, state FROM orders WHERE client_id = ANY($1)", watch.killed_ids
        )
    }
    return got


def _check_limits(watch: Watch, got: dict[str, Any], final: float, bars: list[Bar]) -> None:
    """The ledger denied what would break the gross limit, and the account never broke it."""
    denied = Counter(why for rep in got["batches"].values() for _, why in rep["denied"])
    assert denied["PORTFOLIO_GROSS"] > 0, denied
    # the ledger's rows after every shard-0 batch and at the end, the venue's holdings at every
    # bar close and at the end: sized within LIMIT at one close, valued at another
    bound = LIMIT * _price_ratio(bars)
    assert len(watch.ledger_gross) >= N_BARS - 1 and max(watch.ledger_gross) <= bound
    assert sum(got["rows"].values()) <= bound
    assert len(watch.venue_gross) >= N_BARS - 1 and max(watch.venue_gross) <= bound
    assert final <= bound, (final, bound)


def _check_alone(watch: Watch, got: dict[str, Any]) -> None:
    """Shard 0 kept deciding and trading its symbols while shard 1 was down."""
    at_kill = got["at_kill"]
    alone = [r for r in watch.reports0[at_kill : at_kill + ALONE] if r.decision is not None]
    assert len(alone) >= ALONE - 1
    assert any(c.startswith(f"{S0}-") for c in got["sent_alone"])
    assert {o.symbol for r in watch.reports0 for o in r.intents} <= set(MINE[0])
    # while down, shard 1's last exposure still counted against the account
    row1 = got["row1"]
    assert row1["gross"] > 0 and row1["heartbeat_ts_ns"] < alone[-1].ts_ns


def _check_restart(watch: Watch, got: dict[str, Any], shard1: Shard1, tmp_path: Path) -> None:
    """Shard 1 settled its in-doubt order by a query and continued after it."""
    (killed,) = watch.killed_ids
    kill_seq, journaled = _seq(killed), got["journaled"]
    assert journaled and max(journaled) < kill_seq  # the killed batch was never journaled
    recon = [m for m in shard1.messages(2) if m.startswith(f"start-up reconciliation of {S1}:")]
    assert len(recon) == 1 and f"({killed} " in recon[0], recon
    assert recon[0].endswith(f"batches continue after {kill_seq}"), recon
    venue = watch.ex.paper.account
    assert got["settled"][killed] == venue.orders[venue.by_client[killed]].status
    ours = {seq: rep for (runner, seq), rep in got["batches"].items() if runner == S1}
    assert {seq for seq in ours if seq <= kill_seq} == journaled  # nothing journaled twice
    resumed = [rep for seq, rep in ours.items() if seq > kill_seq]
    assert resumed and all(rep["decision"] is not None for rep in resumed)
    orders = [o for rep in ours.values() for o in rep["orders"]]
    assert orders and {o["symbol"] for o in orders} <= set(MINE[1])
    summary = json.loads((tmp_path / "summary-s1of2.json").read_text())
    assert summary["exit"] == "sigterm" and summary["batches"] == len(resumed)
    # each shard's ledger row is what the venue holds of its symbols (shard 1's includes the
    # killed order's fill, which only the reconciliation could tell it)
    closes = {s: watch.close_at[s, T0 + N_BARS * S] for s in UNIVERSE}
    for i, shard in enumerate((S0, S1)):
        held = _held_gross(watch.ex, closes, MINE[i])
        assert got["rows"][shard] == pytest.approx(held, rel=1e-9), shard


def _check_once(watch: Watch, got: dict[str, Any], ex: ExchangeServer) -> None:
    """Every client id reached the venue exactly once; every journaled order is one of them."""
    attempts = Counter(watch.sent)
    assert attempts and max(attempts.values()) == 1, attempts.most_common(3)
    at_venue = Counter(o.client_id for o in ex.paper.account.orders.values())
    assert max(at_venue.values()) == 1 and set(at_venue) <= set(attempts)
    assert all(c.startswith((f"{S0}-", f"{S1}-")) for c in attempts)
    journaled = {o["client_id"] for rep in got["batches"].values() for o in rep["orders"]}
    assert journaled | set(watch.killed_ids) <= set(at_venue)
    kill_seq = _seq(watch.killed_ids[0])
    after = [c for c in journaled if c.startswith(f"{S1}-") and _seq(c) >= kill_seq]
    assert after and all(_seq(c) > kill_seq for c in after)  # no id of the killed batch reused
