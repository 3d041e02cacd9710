"""The runner's TOML: strict keys and types, secrets from env/files never shown, exit 2 on bad."""

from __future__ import annotations

import pytest

from rrr_live.__main__ import main
from rrr_live.errors import ConfigError
from rrr_live.service.config import load_config

ENV = {"RRR_VENUE_API_KEY": "k-123", "RRR_VENUE_API_SECRET": "s3cr3t-value"}
GOOD = """
[runner]
name = "demo"
bar_interval_s = 60
[feed]
symbols = ["AAA"]
[risk]
max_drawdown = 0.1
[strategy]
max_weight = 0.2
"""


def _write(tmp_path, text):
    p = tmp_path / "r.toml"
    p.write_text(text)
    return p


def test_good_config_resolves_secrets_and_never_shows_them(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret\n")
    cfg = load_config(_write(tmp_path, GOOD + f'[venue]\napi_secret_file = "{secret_file}"\n'), ENV)
    assert cfg.runner.name == "demo" and cfg.bar_interval_ns == 60_000_000_000
    assert cfg.feed.symbols == ["AAA"] and cfg.risk.max_drawdown == 0.1
    assert cfg.strategy.max_weight == 0.2
    assert cfg.api_key.get() == "k-123" and cfg.api_secret.get() == "file-secret"
    assert cfg.control_token is None
    shown = repr(cfg) + str(cfg.api_key) + str(cfg.api_secret)
    assert "k-123" not in shown and "file-secret" not in shown
    assert cfg.limits()["max_drawdown"] == 0.1 and cfg.limits()["max_gross_notional"] is None


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (GOOD + "[runner2]\n", ENV, "unknown table [runner2]"),
        (GOOD.replace('name = "demo"', 'name = "demo"\nnmae = 1'), ENV, "unknown key runner.nmae"),
        (GOOD.replace("bar_interval_s = 60", 'bar_interval_s = "60"'), ENV, "wrong type"),
        (GOOD.replace('"demo"', '"Demo!"'), ENV, "runner.name"),
        (GOOD + "[feed2]\n", ENV, "unknown table"),
        (GOOD, {"RRR_VENUE_API_KEY": "k"}, "venue api secret missing"),
        (GOOD + '[control]\nport = 8080\nhost = "0.0.0.0"\n', ENV, "needs a token"),
        (GOOD + "[risk2]\n", ENV, "unknown table"),
        (GOOD.replace("max_drawdown = 0.1", "max_drawdown = -1.0"), ENV, "[risk]"),
        ("[runner\n", ENV, "not valid TOML"),
        (GOOD + "[venue]\norder_concurrency = 0\n", ENV, "order_concurrency"),
        (GOOD.replace("[feed]", "[feed]\nidle_timeout_s = 0.0"), ENV, "idle_timeout_s"),
    ],
)
def test_bad_config_is_one_clear_error(tmp_path, text, env, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, text), env)


def test_non_loopback_control_with_token_is_accepted(tmp_path):
    env = {**ENV, "RRR_CONTROL_TOKEN": "tok-abc"}
    cfg = load_config(_write(tmp_path, GOOD + '[control]\nport = 8080\nhost = "0.0.0.0"\n'), env)
    assert cfg.control_token is not None and cfg.control_token.get() == "tok-abc"


def test_cli_exits_2_with_one_line_and_starts_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RRR_VENUE_API_KEY", "k-123")
    monkeypatch.setenv("RRR_VENUE_API_SECRET", "s3cr3t-value")
    path = _write(tmp_path, GOOD.replace("bar_interval_s = 60", "bar_interval_s = -5"))
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bar_interval_s must be > 0" in err
    assert "s3cr3t" not in err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_rrr_live_run_is_the_same_entry(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from rrr_pipelines.cli.main import cli

    monkeypatch.setenv("RRR_VENUE_API_KEY", "k-123")
    monkeypatch.setenv("RRR_VENUE_API_SECRET", "s3cr3t-value")
    path = _write(tmp_path, GOOD.replace("[feed]", "[feed]\nprotocol = 'ftx'"))
    result = CliRunner().invoke(cli, ["live", "run", "--config", str(path)])
    assert result.exit_code == 2
    assert "feed.protocol must be binance or coinbase" in result.output


def test_the_deploy_example_is_a_valid_configuration():
    from pathlib import Path

    example = Path(__file__).parents[3] / "deploy" / "rrr-live.example.toml"
    cfg = load_config(example, ENV)
    assert cfg.runner.name == "paper" and cfg.risk.on_halt == "flatten"
