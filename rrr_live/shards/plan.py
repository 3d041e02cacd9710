"""What a shard is: its runner name (client-order-id prefix, journal runner) and its symbols.

A sharded runner named ``<name>`` with ``shard = "i/n"`` runs as ``<name>-s<i>of<n>``: its orders'
client ids, its order-store rows and its runner-journal rows carry that name, so each shard owns
its prefix and its part of the journal; the account (``[ledger] account``) keeps the base name.
It trades only the symbols :func:`~rrr_live.shards.hashing.owned` gives it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrr_live.errors import ConfigError
from rrr_live.shards.hashing import ShardSpec, owned, parse_shard
from rrr_live.venue.model import MAX_ID, MAX_PREFIX

if TYPE_CHECKING:
    from rrr_live.service.config import LiveConfig


@dataclass(frozen=True)
class ShardPlan:
    """What one runner process trades.

    Attributes:
        name: The runner name (``<name>-s<i>of<n>`` when sharded).
        symbols: The symbols it trades, in the universe's order.
        spec: Its shard (``None``: unsharded, it trades the whole universe).
        universe: The whole universe the shards split (the model's).
    """

    name: str
    symbols: tuple[str, ...]
    spec: ShardSpec | None
    universe: tuple[str, ...]


def shard_name(base: str, spec: ShardSpec | None) -> str:
    """The runner name of shard ``spec`` of runner ``base`` (``base`` itself when unsharded)."""
    return base if spec is None else f"{base}{spec.suffix}"


def shard_runner(path: Path, runner: Any, override: str | None) -> tuple[ShardSpec | None, Any]:
    """Apply ``runner.shard`` (or the ``--shard`` override) to a ``[runner]`` section.

    A shard's name gets the shard suffix; a configured ``cache_dir`` gets a folder per shard and
    ``summary_json`` the suffix before its extension, so shards started from one file never
    share a spill folder or overwrite each other's summary.

    Args:
        path: The configuration file (named in errors).
        runner: Its ``RunnerSection``.
        override: ``--shard`` of the command line (``None`` or ``""``: the file's value).

    Returns:
        The shard (``None``: unsharded, also for ``"0/1"``) and the section to run with.

    Raises:
        ConfigError: a malformed shard, or a name too long for the venue's client order ids.
    """
    text, setting = (override, "--shard") if override else (runner.shard, "runner.shard")
    if not text:
        return None, runner
    spec = parse_shard(text, setting)
    if spec.count == 1:  # "0/1": the one runner of the account, unsharded (systemd's @0 of 1)
        return None, dataclasses.replace(runner, shard="")
    name = shard_name(runner.name, spec)
    if len(name) > MAX_PREFIX:
        raise ConfigError(
            f"{path}: runner.name {runner.name!r} as shard {spec} is {name!r}, {len(name)}"
            f" characters; a client-order-id prefix holds at most {MAX_PREFIX} (Binance allows"
            f" {MAX_ID} per newClientOrderId): shorten runner.name to"
            f" {MAX_PREFIX - len(spec.suffix)} characters"
        )
    summary = runner.summary_json
    if summary:
        p = Path(summary)
        summary = str(p.with_name(f"{p.stem}{spec.suffix}{p.suffix}"))
    cache = str(Path(runner.cache_dir) / name) if runner.cache_dir else ""
    section = dataclasses.replace(
        runner, name=name, shard=str(spec), summary_json=summary, cache_dir=cache
    )
    return spec, section


def shard_ports(path: Path, control: Any, spec: ShardSpec | None) -> Any:
    """Offset a ``[control]`` section's ports by the shard index (shards share one file).

    Shard ``i`` listens on ``port + i`` and ``metrics_port + i`` (0 stays 0: no listener).

    Raises:
        ConfigError: an offset port past 65535.
    """
    if spec is None:
        return control
    port = control.port + spec.index if control.port else 0
    metrics = control.metrics_port + spec.index if control.metrics_port else 0
    if max(port, metrics) > 65535:
        raise ConfigError(f"{path}: control ports + shard index {spec.index} pass 65535")
    return dataclasses.replace(control, port=port, metrics_port=metrics)


def shard_plan(cfg: LiveConfig, universe: tuple[str, ...]) -> ShardPlan:
    """The symbols this runner trades out of ``universe`` (all of them when unsharded).

    Raises:
        ConfigError: the shard owns no symbol of the universe (more shards than it needs).
    """
    if cfg.shard is None:
        return ShardPlan(cfg.runner.name, universe, None, universe)
    symbols = owned(universe, cfg.shard)
    if not symbols:
        raise ConfigError(
            f"runner.shard = {cfg.shard}: this shard owns none of the {len(universe)} symbols"
            f" of the universe; run fewer shards"
        )
    return ShardPlan(cfg.runner.name, symbols, cfg.shard, universe)
