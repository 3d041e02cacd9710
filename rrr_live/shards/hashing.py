"""Which runner shard owns a symbol: rendezvous (highest-random-weight) hashing.

Every shard ``k`` of ``n`` gives every symbol a weight, a stable hash of ``(symbol, k)``
(BLAKE2b, never Python's per-process salted ``hash()``); the symbol belongs to the shard with the
highest weight. Any process computes the same owner from the symbol and the shard count alone, so
shards need no coordination to split a universe, and growing from ``n`` to ``n + 1`` shards moves
only the symbols whose new shard outweighs their old one: about ``1 / (n + 1)`` of them, all to
the new shard.

Pure and I/O-free (the sync core's rules).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rrr_live.errors import ConfigError

MAX_SHARDS = 256
_SHARD_RE = re.compile(r"(\d{1,3})/(\d{1,3})")


@dataclass(frozen=True)
class ShardSpec:
    """Shard ``index`` of ``count`` (``0 <= index < count``).

    Attributes:
        index: This shard's number, from 0.
        count: How many shards split the universe.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        """Refuse an index outside ``0..count-1`` or a count outside ``1..MAX_SHARDS``."""
        if not 1 <= self.count <= MAX_SHARDS:
            raise ConfigError(f"shard count {self.count} is not 1..{MAX_SHARDS}")
        if not 0 <= self.index < self.count:
            raise ConfigError(f"shard index {self.index} is not 0..{self.count - 1}")

    def __str__(self) -> str:
        """``"i/n"``, the form :func:`parse_shard` reads."""
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """The runner-name suffix of this shard: ``-s<i>of<n>``."""
        return f"-s{self.index}of{self.count}"


def parse_shard(text: str, setting: str = "runner.shard") -> ShardSpec:
    """Read ``"i/n"`` (shard ``i`` of ``n``, ``0 <= i < n``).

    Args:
        text: The value, e.g. ``"1/4"``.
        setting: The setting or option it came from (named in the error).

    Raises:
        ConfigError: not of the form ``i/n`` or out of range, naming ``setting``.
    """
    m = _SHARD_RE.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f'{setting} = "{text}" is not of the form "i/n" (e.g. "0/4")')
    try:
        return ShardSpec(int(m.group(1)), int(m.group(2)))
    except ConfigError as e:
        raise ConfigError(f'{setting} = "{text}": {e}') from e


def weight(symbol: str, shard: int) -> int:
    """The stable weight of ``symbol`` on shard ``shard`` (64 bits of BLAKE2b)."""
    digest = hashlib.blake2b(f"{symbol}\x00{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(symbol: str, count: int) -> int:
    """The shard (``0..count-1``) that owns ``symbol`` among ``count`` shards."""
    if count < 1:
        raise ValueError(f"shard count must be >= 1, not {count}")
    return max(range(count), key=lambda k: (weight(symbol, k), -k))


def owned(universe: Iterable[str], spec: ShardSpec) -> tuple[str, ...]:
    """The symbols of ``universe`` that shard ``spec`` owns, in the universe's order."""
    return tuple(s for s in universe if owner(s, spec.count) == spec.index)
