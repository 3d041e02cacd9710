"""The live runner's TOML configuration: strict, typed, secrets resolved and never shown.

Every table and key is known: an unknown key, a wrong type or a missing secret is a
:class:`~rrr_live.errors.ConfigError` naming it (the CLI prints one line and exits 2). Secrets
(venue key and secret, control token) come from an environment variable or a file named in the
configuration, never from the TOML itself; they are held in :class:`Secret`, whose ``repr`` and
``str`` are ``***``. See ``docs/live-runner.md`` and ``deploy/rrr-live.example.toml``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from rrr_live.errors import ConfigError
from rrr_live.risk.limits import RiskLimits
from rrr_live.service.control import ControlConfigError, check_bind
from rrr_live.shards.hashing import ShardSpec
from rrr_live.shards.plan import shard_ports, shard_runner
from rrr_live.strategy.sizing import StrategyConfig

NAME_RE = re.compile(r"[a-z0-9-]{1,16}")


class Secret:
    """A secret string that never prints (``repr``/``str`` are ``***``).

    Args:
        value: The secret.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """Return the secret itself (only to hand it to the code that uses it)."""
        return self._value

    def __repr__(self) -> str:
        """Redacted."""
        return "***"

    __str__ = __repr__


@dataclass(frozen=True)
class RunnerSection:
    """``[runner]``: the session."""

    name: str = "live"
    open_orders_policy: str = "cancel"
    max_seconds: float = 0.0
    summary_json: str = ""
    bar_interval_s: int = 86400
    watermark_s: float = 5.0
    max_staleness_bars: int = 2
    cache_dir: str = ""
    warmup_source: str = ""  # market_bars.source for warm-up ("": the runner's journal only)
    shard: str = ""  # "i/n": trade only the symbols shard i of n owns ("": all; see docs/shards.md)


@dataclass(frozen=True)
class FeedSection:
    """``[feed]``: market data."""

    protocol: str = "binance"
    url: str = "ws://127.0.0.1:9000"
    rest_url: str = ""
    symbols: list[str] = field(default_factory=list)
    lockstep: bool = False
    idle_timeout_s: float = 10.0  # no frame for this long -> reconnect (quiet markets: raise it)


@dataclass(frozen=True)
class VenueSection:
    """``[venue]``: the Binance-compatible order API (keys from env or files)."""

    url: str = "http://127.0.0.1:9000"
    api_key_env: str = "RRR_VENUE_API_KEY"
    api_key_file: str = ""
    api_secret_env: str = "RRR_VENUE_API_SECRET"
    api_secret_file: str = ""
    initial_cash: float = 0.0  # 0: the venue account's free quote balance
    order_concurrency: int = 16  # orders of one phase (sells, then buys) in flight at once
    order_transport: str = "ws-api"  # ws-api: orders on Binance's WebSocket API; rest: REST
    ws_api_url: str = ""  # "" = ws://<url's host:port>/ws-api/v3


@dataclass(frozen=True)
class ModelSection:
    """``[model]``: the registry and the device."""

    registry_url: str = ""
    name: str = "rrr-ensemble"
    poll_interval_s: float = 10.0
    device: str = "auto"


@dataclass(frozen=True)
class ControlSection:
    """``[control]``: the control/health HTTP listener."""

    port: int = 0
    host: str = "127.0.0.1"
    token_env: str = "RRR_CONTROL_TOKEN"
    token_file: str = ""
    metrics_port: int = 0  # 0 = no Prometheus /metrics endpoint (always on 127.0.0.1)


@dataclass(frozen=True)
class JournalSection:
    """``[journal]``: whether the runner journals (database from ``RRR_DATABASE_URL``)."""

    enabled: bool = True
    book: bool = False  # Binance: also subscribe to and journal the book (parity_report fills)


@dataclass(frozen=True)
class LedgerSection:
    """``[ledger]``: the portfolio-wide risk ledger the shards of one account share."""

    account: str = ""  # "" = the base runner name (without the shard suffix)
    timeout_s: float = 2.0  # longest wait for the ledger's lock before an order is refused


@dataclass(frozen=True)
class LiveConfig:
    """The whole runner configuration (secrets resolved).

    Attributes:
        runner: ``[runner]``.
        feed: ``[feed]``.
        venue: ``[venue]``.
        model: ``[model]``.
        control: ``[control]``.
        journal: ``[journal]``.
        ledger: ``[ledger]``.
        strategy: ``[strategy]`` (the backtest's :class:`StrategyConfig` fields).
        risk: ``[risk]`` (the backtest's :class:`RiskLimits` fields).
        api_key: Venue API key.
        api_secret: Venue API secret.
        control_token: Control bearer token (``None``: none configured).
        source: The file it was read from.
        shard: The shard this runner is (``None``: unsharded); its ``runner.name`` then carries
            the shard suffix (``<name>-s<i>of<n>``), and ``base_name`` is the configured one.
        base_name: ``runner.name`` as configured (the account's name for every shard).
    """

    runner: RunnerSection
    feed: FeedSection
    venue: VenueSection
    model: ModelSection
    control: ControlSection
    journal: JournalSection
    ledger: LedgerSection
    strategy: StrategyConfig
    risk: RiskLimits
    api_key: Secret = field(repr=False)
    api_secret: Secret = field(repr=False)
    control_token: Secret | None = field(repr=False)
    source: Path = Path()
    shard: ShardSpec | None = None
    base_name: str = ""

    @property
    def ledger_account(self) -> str:
        """The account whose risk the ledger keeps (default: the base runner name)."""
        return self.ledger.account or self.base_name or self.runner.name

    @property
    def bar_interval_ns(self) -> int:
        """Bar length in nanoseconds."""
        return self.runner.bar_interval_s * 1_000_000_000

    def limits(self) -> dict[str, Any]:
        """The risk limits as plain values (the run summary's ``limits``)."""
        out = {}
        for k, v in dataclasses.asdict(self.risk).items():
            out[k] = None if isinstance(v, float) and math.isinf(v) else v
        return out


_SECTIONS: dict[str, type[Any]] = {
    "runner": RunnerSection,
    "feed": FeedSection,
    "venue": VenueSection,
    "model": ModelSection,
    "control": ControlSection,
    "journal": JournalSection,
    "ledger": LedgerSection,
    "strategy": StrategyConfig,
    "risk": RiskLimits,
}


def load_config(
    path: Path, environ: Mapping[str, str] | None = None, shard: str | None = None
) -> LiveConfig:
    """Read, validate and resolve a runner configuration file.

    Args:
        path: The TOML file.
        environ: Environment to read secrets from (default ``os.environ``).
        shard: ``--shard i/n`` of the command line (``None``: ``runner.shard`` of the file).

    Raises:
        ConfigError: unreadable file, unknown table or key, wrong type, bad value, missing
            secret, or a non-loopback control listener without a token.
    """
    env = os.environ if environ is None else environ
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown table [{unknown[0]}]")
    parts = {name: _section(path, name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    _check(path, parts)
    base_name = parts["runner"].name
    spec, parts["runner"] = shard_runner(path, parts["runner"], shard)
    parts["control"] = shard_ports(path, parts["control"], spec)
    venue, control = parts["venue"], parts["control"]
    token = _optional_secret(path, "control", control.token_env, control.token_file, env)
    if control.port:
        try:
            check_bind(control.host, token.get() if token else None)
        except ControlConfigError as e:
            raise ConfigError(f"{path}: {e}") from e
    return LiveConfig(
        **parts,
        api_key=_secret(path, "venue api key", venue.api_key_env, venue.api_key_file, env),
        api_secret=_secret(
            path, "venue api secret", venue.api_secret_env, venue.api_secret_file, env
        ),
        control_token=token,
        source=path,
        shard=spec,
        base_name=base_name,
    )


def _section(path: Path, name: str, cls: type[Any], values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{path}: unknown key {name}.{key}")
        _check_type(path, f"{name}.{key}", hints[key], value)
    try:
        return cls(**{k: _coerce(hints[k], v) for k, v in values.items()})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: [{name}] {e}") from e


def _check_type(path: Path, key: str, hint: Any, value: Any) -> None:
    text = str(hint)
    ok: bool
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float or text in ("float | None", "typing.Optional[float]"):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif hint is str or text.startswith("typing.Literal"):
        ok = isinstance(value, str)
    elif text == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{path}: {key} has the wrong type ({type(value).__name__})")


def _coerce(hint: Any, value: Any) -> Any:
    if hint is float and isinstance(value, int):
        return float(value)
    return value


def _check(path: Path, parts: dict[str, Any]) -> None:
    runner, feed, model = parts["runner"], parts["feed"], parts["model"]
    problems = [
        (not NAME_RE.fullmatch(runner.name), f"runner.name {runner.name!r} is not [a-z0-9-]{{1,16}}"),  # noqa: E501
        (runner.open_orders_policy not in ("cancel", "leave"), "runner.open_orders_policy must be cancel or leave"),  # noqa: E501
        (runner.max_seconds < 0, "runner.max_seconds must be >= 0"),
        (runner.bar_interval_s <= 0, "runner.bar_interval_s must be > 0"),
        (runner.watermark_s < 0, "runner.watermark_s must be >= 0"),
        (runner.max_staleness_bars < 1, "runner.max_staleness_bars must be >= 1"),
        (feed.protocol not in ("binance", "coinbase"), "feed.protocol must be binance or coinbase"),
        (model.device not in ("auto", "cpu", "cuda"), "model.device must be auto, cpu or cuda"),
        (model.poll_interval_s <= 0, "model.poll_interval_s must be > 0"),
        (feed.idle_timeout_s <= 0, "feed.idle_timeout_s must be > 0"),
        (not 1 <= parts["venue"].order_concurrency <= 64, "venue.order_concurrency must be 1..64"),
        (parts["venue"].order_transport not in ("ws-api", "rest"), "venue.order_transport must be ws-api or rest"),  # noqa: E501
        (not 0 <= parts["control"].port <= 65535, "control.port must be 0..65535"),
        (not 0 <= parts["control"].metrics_port <= 65535, "control.metrics_port must be 0..65535"),
        (not parts["ledger"].timeout_s > 0, "ledger.timeout_s must be > 0"),
    ]  # fmt: skip
    for bad, message in problems:
        if bad:
            raise ConfigError(f"{path}: {message}")


def _read_secret(path: Path, what: str, env_name: str, file: str, env: Mapping[str, str]) -> str:
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"{path}: {what} file {file} cannot be read ({e.strerror})") from e
    return env.get(env_name, "") if env_name else ""


def _secret(path: Path, what: str, env_name: str, file: str, env: Mapping[str, str]) -> Secret:
    value = _read_secret(path, what, env_name, file, env)
    if not value:
        where = f"file {file}" if file else f"environment variable {env_name}"
        raise ConfigError(f"{path}: {what} missing (set {where})")
    return Secret(value)


def _optional_secret(
    path: Path, what: str, env_name: str, file: str, env: Mapping[str, str]
) -> Secret | None:
    value = _read_secret(path, what, env_name, file, env)
    return Secret(value) if value else None
