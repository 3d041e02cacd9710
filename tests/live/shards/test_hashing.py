"""Rendezvous ownership: one owner per symbol, stable across processes, minimal moves on resize."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rrr_live.errors import ConfigError
from rrr_live.shards.hashing import ShardSpec, owned, owner, parse_shard

UNIVERSE = tuple(f"SYN{i:04d}USDT" for i in range(1000))
symbols = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12)


@given(st.lists(symbols, min_size=1, max_size=60, unique=True), st.integers(1, 16))
@settings(max_examples=60, deadline=None)
def test_every_symbol_has_exactly_one_owner(universe, n):
    parts = [owned(universe, ShardSpec(i, n)) for i in range(n)]
    flat = [s for p in parts for s in p]
    assert sorted(flat) == sorted(universe)  # covered, and no symbol twice
    for i, part in enumerate(parts):
        assert all(owner(s, n) == i for s in part)
        # each shard keeps the universe's order
        assert list(part) == [s for s in universe if s in set(part)]


@given(st.integers(1, 15))
@settings(max_examples=15, deadline=None)
def test_growing_moves_about_one_in_n_plus_one_and_only_to_the_new_shard(n):
    before = {s: owner(s, n) for s in UNIVERSE}
    after = {s: owner(s, n + 1) for s in UNIVERSE}
    moved = [s for s in UNIVERSE if before[s] != after[s]]
    assert {after[s] for s in moved} <= {n}  # only to the new shard
    expected = len(UNIVERSE) / (n + 1)
    # binomial(1000, 1/(n+1)): 5 standard deviations either side
    sd = (len(UNIVERSE) * (1 / (n + 1)) * (n / (n + 1))) ** 0.5
    assert abs(len(moved) - expected) <= 5 * sd, (n, len(moved), expected)


@pytest.mark.parametrize("n", [2, 4, 8])
def test_shards_are_balanced_within_reason(n):
    counts = Counter(owner(s, n) for s in UNIVERSE)
    assert set(counts) == set(range(n))
    mean = len(UNIVERSE) / n
    sd = (len(UNIVERSE) * (1 / n) * (1 - 1 / n)) ** 0.5
    assert max(abs(c - mean) for c in counts.values()) <= 5 * sd, counts


def test_one_shard_owns_everything_and_owners_are_stable_across_processes():
    assert owned(UNIVERSE, ShardSpec(0, 1)) == UNIVERSE
    here = [owner(s, 7) for s in UNIVERSE[:50]]
    code = (
        "from rrr_live.shards.hashing import owner;"
        "print([owner(f'SYN{i:04d}USDT', 7) for i in range(50)])"
    )
    # another interpreter with another hash seed computes the same owners
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=60)  # fmt: skip
    assert out.stdout.strip() == str(here)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'runner.shard = "" is not of the form "i/n"'),
        ("1", 'is not of the form "i/n"'),
        ("a/b", 'is not of the form "i/n"'),
        ("-1/2", 'is not of the form "i/n"'),
        ("2/2", "shard index 2 is not 0..1"),
        ("0/0", "shard count 0 is not 1..256"),
        ("0/300", "shard count 300 is not 1..256"),
    ],
)
def test_bad_shard_text_is_a_config_error_naming_the_setting(text, message):
    with pytest.raises(ConfigError, match=r"runner\.shard") as e:
        parse_shard(text)
    assert message in str(e.value)


def test_parse_shard_round_trips():
    spec = parse_shard(" 3/8 ", "--shard")
    assert spec == ShardSpec(3, 8) and str(spec) == "3/8" and spec.suffix == "-s3of8"
