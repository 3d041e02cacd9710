"""A whole runner's surroundings: a registered champion, a replay exchange with the paper venue,
the runner's database and its TOML file (shared by the runner, restart and process tests)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from rrr_live.config import get_settings
from rrr_live.exchange.bars import Bar, expand_bars
from rrr_live.exchange.paper.venue import PaperConfig
from rrr_live.exchange.tape import Tape
from rrr_live.features.spec import FeatureDef, FeatureSpec
from rrr_live.models import save_model
from rrr_live.models import verdict as rule
from rrr_live.persistence.urls import ServerAddress
from rrr_pipelines.lib.model_registry import ModelRegistry
from tests.kit import services
from tests.live.models.conftest import FEATURE_NAMES, make_ensemble
from tests.live.paper.kit import KEYS

S = 1_000_000_000
T0 = 1_700_000_000 * S
SYMBOLS = ("AAA", "BBB", "CCC")
SPEC = FeatureSpec("fs-run", tuple(FeatureDef.of(n, "log_return", window=i + 1)
                                   for i, n in enumerate(FEATURE_NAMES)))  # fmt: skip
BALANCES = {"USDT": Decimal(100_000), **{s: Decimal(1_000) for s in SYMBOLS}}


def random_bars(
    n: int, seed: int = 3, start_ns: int = T0, symbols: Sequence[str] = SYMBOLS
) -> list[Bar]:
    """``n`` one-second bars per symbol of a seeded random walk (every bar traded)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, sym in enumerate(symbols):
        px = 100.0 * (k + 1)
        for i in range(n):
            o = round(px, 2)
            c = round(o * math.exp(0.004 * rng.normal()), 2)
            h, lo = round(max(o, c) * 1.001, 2), round(min(o, c) * 0.999, 2)
            out.append(Bar(sym, start_ns + i * S, S, o, h, lo, c, float(rng.integers(40, 90))))
            px = c
    return out


def tape_of(bars: list[Bar]) -> Tape:
    """The Binance tape of ``bars`` (lot 0.001: orders of a few units)."""
    return expand_bars("binance", bars, lot=Decimal("0.001"))


def paper(symbols: Sequence[str] = SYMBOLS) -> PaperConfig:
    """The paper account: test keys, USDT and some of every base asset."""
    return PaperConfig(KEYS, {"USDT": BALANCES["USDT"], **{s: Decimal(1_000) for s in symbols}})


def _log(registry: ModelRegistry, d: Path, seed: int, symbols: Sequence[str] = SYMBOLS) -> str:
    spec = {**SPEC.to_dict(), "fingerprint": SPEC.fingerprint()}
    save_model(d, make_ensemble(seed=seed), feature_spec=spec,
               metadata={"universe": list(symbols), "bar_interval": "1s"})  # fmt: skip
    return registry.log_training_run({}, {}, spec, {}, "abc", d)


def promote_new(uri: str, tmp: Path, name: str, seed: int) -> str:
    """Register a passing version of another seed and make it the champion; its version."""
    registry = ModelRegistry(uri, model_name=name)
    return _promote(registry, _log(registry, tmp / f"model-{seed}", seed=seed))


def _promote(registry: ModelRegistry, run_id: str) -> str:
    crit = [
        rule.Criterion("sharpe", 1.0, 0.0),
        rule.Criterion("max_drawdown", 0.1, 0.25),
        rule.Criterion("var_99_1d", 0.01, 0.05),
        rule.Criterion("worst_stress_loss", 0.1, 0.5),
    ]
    v = registry.register(run_id, rule.verdict_tags("b", rule.BASELINE_SET, "e", crit)).version
    registry.promote(v, "test", "alice")
    return v


def register_champion(
    uri: str, tmp: Path, name: str, shadow: bool = False, symbols: Sequence[str] = SYMBOLS
) -> str:
    """Save, register and promote a model for ``symbols`` on 1-second bars; its version.

    With ``shadow``, a second version (another seed, no passing verdict) is set as ``shadow``.
    """
    registry = ModelRegistry(uri, model_name=name)
    v = _promote(registry, _log(registry, tmp / "model", seed=4, symbols=symbols))
    if shadow:
        other = registry.register(_log(registry, tmp / "shadow", seed=5), {}).version
        registry.set_alias(other, "shadow")
    return v


@dataclass
class RunnerEnv:
    """Where a test runner's config and state live."""

    db_name: str
    dsn: str
    home: Path
    model_name: str
    registry_url: str

    def toml(self, exchange_url: str, path: Path, **extra: str) -> Path:
        """Write the runner TOML for a replay exchange at ``exchange_url`` (``http://...``)."""
        ws = exchange_url.replace("http://", "ws://")
        runner = {"name": "'t1'", "bar_interval_s": "1", "watermark_s": "2",
                  "summary_json": f'"{path.parent / "summary.json"}"',
                  "cache_dir": f'"{self.home / "cache"}"', **extra}  # fmt: skip
        lines = ["[runner]", *(f"{k} = {v}" for k, v in runner.items()),
                 "[feed]", f'url = "{ws}"', "lockstep = true",
                 "[venue]", f'url = "{exchange_url}"',
                 "[model]", f'registry_url = "{self.registry_url}"',
                 f'name = "{self.model_name}"', "poll_interval_s = 3600", 'device = "cpu"',
                 "[strategy]", "max_weight = 0.005",
                 "[risk]", "max_position_notional = 2000.0", "max_drawdown = 0.5"]  # fmt: skip
        path.write_text("\n".join(lines) + "\n")
        return path


def runner_env(
    pg: ServerAddress,
    uri: str,
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    shadow: bool = False,
    symbols: Sequence[str] = SYMBOLS,
) -> RunnerEnv:
    """A fresh database, RRR_HOME and venue keys in the environment; the champion registered."""
    url = services.fresh_database(pg, prefix="runner")
    db_name = url.rsplit("/", 1)[1].split("?", 1)[0]
    home = tmp / "home"
    monkeypatch.setenv("RRR_HOME", str(home))
    monkeypatch.setenv("RRR_DATABASE_URL", pg.url("postgres", "libpq"))
    monkeypatch.setenv("RRR_RRR_DB", db_name)
    monkeypatch.setenv("RRR_VENUE_API_KEY", KEYS.api_key)
    monkeypatch.setenv("RRR_VENUE_API_SECRET", KEYS.secret)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    get_settings.cache_clear()
    name = f"runner-{tmp.name[:40]}"
    register_champion(uri, tmp, name, shadow, symbols)
    return RunnerEnv(db_name, pg.url(db_name, "libpq"), home, name, uri)
