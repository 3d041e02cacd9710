"""``[runner] shard`` / ``--shard`` and ``[ledger]``: the shard's name, paths and symbols."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rrr_live.__main__ import main
from rrr_live.errors import ConfigError
from rrr_live.service.config import load_config
from rrr_live.shards.hashing import ShardSpec, owned
from rrr_live.shards.plan import shard_plan
from rrr_live.venue.model import MAX_PREFIX, Decision, client_order_id, owns_client_id
from rrr_pipelines.cli.main import cli

ENV = {"RRR_VENUE_API_KEY": "k-123", "RRR_VENUE_API_SECRET": "s3cr3t-value"}
BASE = """
[runner]
name = "acct"
bar_interval_s = 60
summary_json = "/tmp/x/summary.json"
cache_dir = "/tmp/x/cache"
"""
UNIVERSE = tuple(f"SYN{i:04d}USDT" for i in range(100))


def _write(tmp_path, text):
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


def test_unsharded_by_default_and_the_ledger_account_is_the_runner(tmp_path):
    cfg = load_config(_write(tmp_path, BASE), ENV)
    assert cfg.shard is None and cfg.runner.name == "acct" and cfg.runner.shard == ""
    assert cfg.ledger_account == "acct" and cfg.ledger.timeout_s == 2.0
    assert cfg.runner.summary_json == "/tmp/x/summary.json"
    plan = shard_plan(cfg, UNIVERSE)
    assert plan.symbols == UNIVERSE and plan.name == "acct" and plan.spec is None


def test_a_shard_gets_its_own_name_paths_and_symbols(tmp_path):
    text = BASE.replace('name = "acct"', 'name = "acct"\nshard = "1/4"')
    cfg = load_config(_write(tmp_path, text + "[ledger]\ntimeout_s = 0.5\n"), ENV)
    assert cfg.shard == ShardSpec(1, 4) and cfg.runner.name == "acct-s1of4"
    assert cfg.base_name == "acct" and cfg.ledger_account == "acct"
    assert cfg.ledger.timeout_s == 0.5
    assert cfg.runner.summary_json == "/tmp/x/summary-s1of4.json"
    assert cfg.runner.cache_dir == "/tmp/x/cache/acct-s1of4"
    plan = shard_plan(cfg, UNIVERSE)
    assert plan.symbols == owned(UNIVERSE, ShardSpec(1, 4)) and 0 < len(plan.symbols) < 100
    assert plan.universe == UNIVERSE
    # the command line overrides the file
    other = load_config(_write(tmp_path, text), ENV, shard="3/4")
    assert other.runner.name == "acct-s3of4" and other.runner.shard == "3/4"
    # shards started from one file listen on their own ports (port + shard index)
    ports = load_config(
        _write(tmp_path, text + "[control]\nport = 9100\nmetrics_port = 9200\n"), ENV
    )
    assert (ports.control.port, ports.control.metrics_port) == (9101, 9201)
    # one shard of one is the unsharded runner (rrr-live@0 with RRR_LIVE_SHARDS=1)
    single = load_config(_write(tmp_path, text), ENV, shard="0/1")
    assert single.shard is None and single.runner.name == "acct" and single.runner.shard == ""


def test_a_shard_owning_nothing_is_refused(tmp_path):
    cfg = load_config(_write(tmp_path, BASE), ENV, shard="0/8")
    tiny = tuple(s for s in UNIVERSE[:20] if owned((s,), ShardSpec(0, 8)) == ())[:3]
    with pytest.raises(ConfigError, match="owns none of the 3 symbols"):
        shard_plan(cfg, tiny)


@pytest.mark.parametrize(
    ("text", "shard", "message"),
    [
        (BASE.replace('"acct"', '"acct"\nshard = "4/4"'), None, "runner.shard"),
        (BASE.replace('"acct"', '"acct"\nshard = "x"'), None, 'runner.shard = "x"'),
        (BASE, "2/2", '--shard = "2/2": shard index 2 is not 0..1'),
        (BASE.replace('"acct"', '"a-very-long-name"'), "10/12", "shorten runner.name"),
        (BASE + "[ledger]\ntimeout_s = 0\n", None, "ledger.timeout_s must be > 0"),
        (BASE + "[ledger]\nlock = 1\n", None, "unknown key ledger.lock"),
    ],
)
def test_bad_shard_settings_are_one_clear_error(tmp_path, text, shard, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config(_write(tmp_path, text), ENV, shard=shard)


def test_the_longest_accepted_prefix_still_makes_valid_client_ids(tmp_path):
    name = "n" * (MAX_PREFIX - len("-s10of12"))
    cfg = load_config(_write(tmp_path, BASE.replace('"acct"', f'"{name}"')), ENV, shard="10/12")
    assert len(cfg.runner.name) == MAX_PREFIX
    cid = client_order_id(cfg.runner.name, Decision("v", "f", 16**10 - 1), leg=9999)
    assert len(cid) == 36 and owns_client_id(cfg.runner.name, cid)


def test_a_prefix_never_owns_another_runners_ids():
    shard_id = client_order_id("live-s0of2", Decision("v", "f", 26))
    assert owns_client_id("live-s0of2", shard_id)
    assert not owns_client_id("live", shard_id)  # the unsharded runner of that name
    assert not owns_client_id("live-s0of2", "live-s0of20-1a-0")
    assert not owns_client_id("live-s0of2", "live-s0of2-zz-0")


def test_both_entries_take_shard(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RRR_VENUE_API_KEY", "k-123")
    monkeypatch.setenv("RRR_VENUE_API_SECRET", "s3cr3t-value")
    path = _write(tmp_path, BASE)
    assert main(["--config", str(path), "--shard", "5/5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and '--shard = "5/5"' in err
    result = CliRunner().invoke(cli, ["live", "run", "--config", str(path), "--shard", "1"])
    assert result.exit_code == 2 and '--shard = "1" is not of the form "i/n"' in result.output
